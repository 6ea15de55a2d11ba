//! End to end: a `baro relay` process stores a room's messages while an
//! official's `baro run` is off, and the official catches up from the relay
//! alone; relay and member certificates each refuse the other command.

use baro_tests::{Baro, baro_bin, enroll_device, eventually, init_agency, listen_address, texts};

const ROOM: &str = "MOIS/Division 2";

#[test]
fn an_official_catches_up_from_a_relay_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.path().join("console"));
    init_agency(&operator, "MOIS");
    let relay = Baro::new(&bin, dir.path().join("relay")).with_passphrase(None);
    enroll_device(
        &operator,
        &relay,
        dir.path(),
        "relay.sejong",
        "MOIS/Field Offices",
        "relay",
    );
    let [kim, lee] = ["kim", "lee"].map(|user| {
        let device = Baro::new(&bin, dir.path().join(user)).with_passphrase(None);
        enroll_device(&operator, &device, dir.path(), user, ROOM, "member");
        device
    });
    let network = [
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
        "--sync-interval",
        "1",
    ];

    // Each certificate runs only as what it is.
    relay
        .run(["run", "--no-mdns"])
        .fails_with("certified as a relay: start it with `baro relay`");
    kim.run(["relay", "--no-mdns"])
        .fails_with("`baro relay` needs a relay certificate");

    let relay_node = relay.spawn(
        ["relay"]
            .into_iter()
            .chain(network)
            .chain(["--retention-days", "7"]),
    );
    let bootstrap = listen_address(&relay);
    let with_relay = |device: &Baro| {
        device.spawn(
            ["run"]
                .into_iter()
                .chain(network)
                .chain(["--bootstrap", bootstrap.as_str()]),
        )
    };
    let lee_node = with_relay(&lee);
    let kim_node = with_relay(&kim);
    eventually(30, "all three connected", || {
        let status = kim.run(["--json", "status"]);
        (status.output.status.success() && status.json()["peers"] == 2).then_some(())
    });
    eventually(30, "kim's first message sent", || {
        kim.run(["send", ROOM, "Meeting moved to 3pm"])
            .output
            .status
            .success()
            .then_some(())
    });
    eventually(30, "lee has it", || {
        let history = lee.run(["--json", "history", ROOM]);
        (history.output.status.success()
            && texts(&history.json()).contains(&"Meeting moved to 3pm".to_string()))
        .then_some(())
    });
    assert!(lee_node.stop(), "lee stops cleanly");

    let sent = kim.run(["send", ROOM, "Bring the signed forms"]);
    assert!(
        sent.output.status.success(),
        "{}\n{}",
        sent.stderr(),
        kim_node.log()
    );
    eventually(30, "the relay says it stored it", || {
        let history = kim.run(["--json", "history", ROOM]).json();
        let last = history.as_array()?.last()?.clone();
        (last["text"] == "Bring the signed forms"
            && last["receipts"]
                .as_array()?
                .iter()
                .any(|r| r["user"] == "relay.sejong" && r["state"] == "stored_by_relay"))
        .then_some(())
    });
    let status = relay.run(["status"]).success();
    assert!(status.contains("relay: store-and-forward"), "{status}");
    assert!(kim_node.stop(), "kim stops cleanly");

    // Lee is back; Kim is not.
    let lee_node = with_relay(&lee);
    // Lee's node answers first: `history` right after the spawn can find
    // no node yet (it has not locked its home) and start one of its own
    // without the relay's address, which the spawned one then finds locked.
    listen_address(&lee);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let history = lee.run(["--json", "history", ROOM]);
        if history.output.status.success()
            && texts(&history.json()) == ["Meeting moved to 3pm", "Bring the signed forms"]
        {
            break;
        }
        // CI once timed out here with no clue (not reproduced since): say
        // what Lee's history held and what both nodes logged.
        assert!(
            std::time::Instant::now() < deadline,
            "lee did not catch up from the relay in 30 s\nhistory: {}{}\n--- lee's node:\n{}\n--- relay:\n{}",
            history.stdout(),
            history.stderr(),
            lee_node.log(),
            relay_node.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let peers = lee.run(["--json", "peers"]).json();
    assert_eq!(peers.as_array().map(Vec::len), Some(1), "{peers}");
    assert_eq!(peers[0]["user_id"], "relay.sejong");
    assert!(lee_node.stop(), "lee stops cleanly");
    assert!(relay_node.stop(), "the relay stops cleanly");
}
