//! End to end (real `baro` processes on loopback), usability report
//! findings 24 to 28: devices carry a label set at `device init` ("PC",
//! "휴대폰") shown in `peers` and `device list`; the owner's PC lists her
//! devices with when each was last seen, and revokes the lost phone by its
//! label; a mistyped or shortened device id says which devices there are;
//! the console revokes a device it enrolled that no node has met, with its
//! node stopped or running; and `agency init` takes `--bootstrap`. A label
//! that would rewrite the terminal or is too long is refused by every
//! node (in-process attack test).

use std::path::Path;

use std::time::Duration;

use baro_node::NodeEvent;
use baro_node::rooms::ControlMessage;
use baro_node::wire;
use baro_tests::mesh::{SETTLE, TestAgency, wait_for};
use baro_tests::{
    Baro, baro_bin, enroll_labelled, eventually, init_korean_agency, listen_address,
    start_on_loopback,
};

/// Kim's (김민지) device labelled `label` in 2과, enrolled as `user`.
fn enroll(operator: &Baro, dir: &Path, home: &str, user: &str, label: &str) -> (Baro, String) {
    enroll_labelled(
        operator,
        dir,
        home,
        (user, "김민지", "행정안전부/디지털정부국/2과"),
        label,
    )
}

fn listed(device: &Baro) -> Vec<serde_json::Value> {
    device
        .run(["--json", "device", "list"])
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn entry(devices: &[serde_json::Value], label: &str) -> serde_json::Value {
    devices
        .iter()
        .find(|d| d["label"] == label)
        .cloned()
        .unwrap_or_else(|| panic!("no device labelled {label}: {devices:?}"))
}

#[test]
fn the_pc_lists_its_owners_devices_by_label_and_revokes_the_lost_phone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = Baro::new(baro_bin(), dir.path().join("console"));
    // Finding 28: the console is told where the relay is, like a device.
    init_korean_agency(&operator, "행정안전부", &["--bootstrap", "nonsense"])
        .fails_with("bootstrap address 'nonsense' is not a multiaddr");
    init_korean_agency(
        &operator,
        "행정안전부",
        &["--label", "콘솔", "--bootstrap", "/ip4/127.0.0.1/tcp/47001"],
    )
    .success();
    let console = operator.run(["--json", "whoami"]).json();
    assert_eq!(
        console["bootstrap"][0], "/ip4/127.0.0.1/tcp/47001",
        "{console}"
    );

    let (pc, pc_id) = enroll(&operator, dir.path(), "kim-pc", "kim.minji", "PC");
    let (phone, phone_id) = enroll(&operator, dir.path(), "kim-phone", "kim.minji", "휴대폰");

    let pc_node = start_on_loopback(&pc, None);
    let address = listen_address(&pc);
    let phone_node = start_on_loopback(&phone, Some(&address));

    // Finding 24: the two devices of one official are told apart.
    let peers = eventually(30, "the phone's label reaches the PC", || {
        let peers = pc.run(["--json", "peers"]).json();
        (peers[0]["label"] == "휴대폰").then_some(peers)
    });
    assert_eq!(peers[0]["device"], phone_id.as_str());
    let shown = pc.run(["peers"]).success();
    assert!(shown.contains("(휴대폰)"), "{shown}");
    let me = pc.run(["--json", "people", "--user", "kim.minji"]).json();
    let mut labels: Vec<&str> = me["people"][0]["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    labels.sort_unstable();
    assert_eq!(labels, ["PC", "휴대폰"], "{me}");
    let shown = pc.run(["people", "김민지"]).success();
    assert!(
        shown.contains("2 (PC, 휴대폰)") || shown.contains("2 (휴대폰, PC)"),
        "{shown}"
    );

    // Finding 25: the PC lists its owner's devices.
    let devices = listed(&pc);
    assert_eq!(devices.len(), 2, "{devices:?}");
    let own = entry(&devices, "PC");
    assert_eq!(own["this_device"], true);
    assert_eq!(own["device"], pc_id.as_str());
    let lost = entry(&devices, "휴대폰");
    assert_eq!(lost["connected"], true);
    assert_eq!(lost["device"], phone_id.as_str());
    assert!(lost["revoked"].is_null());

    // The phone goes away; the PC remembers when it last saw it.
    assert!(phone_node.stop(), "the phone stops cleanly");
    let lost = eventually(30, "the phone is gone", || {
        let lost = entry(&listed(&pc), "휴대폰");
        (lost["connected"] == false).then_some(lost)
    });
    assert!(lost["last_seen"].as_u64().is_some(), "{lost}");
    let text = pc.run(["device", "list"]).success();
    assert!(text.contains("휴대폰"), "{text}");
    assert!(text.contains("last seen"), "{text}");

    // Finding 26: a wrong or shortened id says which devices there are.
    pc.run(["device", "revoke", "노트북", "--reason", "분실"])
        .fails_with("no device of yours is labelled '노트북'");
    pc.run(["device", "revoke", "12D3KooW", "--reason", "분실"])
        .fails_with("names 2 of your devices");
    pc.run(["device", "revoke", "PC", "--reason", "분실"])
        .fails_with("a device cannot revoke itself");

    // Revoked by its label, from the PC.
    pc.run(["device", "revoke", "휴대폰", "--reason", "지하철에서 분실"])
        .success();
    let lost = entry(&listed(&pc), "휴대폰");
    assert!(
        lost["revoked"]
            .as_str()
            .is_some_and(|r| r.contains("kim.minji")),
        "{lost}"
    );
    assert!(pc_node.stop(), "the PC stops cleanly");
    // With the node stopped, the list comes from the PC's store.
    let at_rest = listed(&pc);
    assert_eq!(at_rest.len(), 2, "{at_rest:?}");
    assert!(entry(&at_rest, "휴대폰")["revoked"].is_string());
    assert_eq!(entry(&at_rest, "PC")["this_device"], true);
}

#[test]
fn the_console_revokes_devices_it_enrolled_that_no_node_has_met() {
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = Baro::new(baro_bin(), dir.path().join("console"));
    init_korean_agency(&operator, "행정안전부", &[]).success();
    let (_lee, lee_id) = enroll(&operator, dir.path(), "lee-phone", "lee.junho", "휴대폰");
    let (_choi, choi_id) = enroll(&operator, dir.path(), "choi-phone", "choi.yuna", "휴대폰");

    // Finding 27, node stopped: kept, published at the next start.
    let kept = operator
        .run([
            "--json",
            "agency",
            "revoke",
            "--device",
            &lee_id,
            "--reason",
            "테스트 회수",
            "--wipe",
        ])
        .json();
    assert_eq!(kept["device"], lee_id.as_str(), "{kept}");
    assert_eq!(kept["user"], "lee.junho");

    // Node running: the node never met Choi's phone; the console still
    // holds the chain it issued.
    let console_node = start_on_loopback(&operator, None);
    listen_address(&operator);
    let revoked = operator
        .run([
            "--json", "agency", "revoke", "--device", &choi_id, "--reason", "분실", "--wipe",
        ])
        .json();
    assert_eq!(revoked["device"], choi_id.as_str(), "{revoked}");
    let list = operator.run(["--json", "agency", "revocations"]).json();
    let targets: Vec<&str> = list
        .as_array()
        .expect("revocations")
        .iter()
        .filter_map(|r| r["device"].as_str())
        .collect();
    assert!(targets.contains(&lee_id.as_str()), "{list}");
    assert!(targets.contains(&choi_id.as_str()), "{list}");
    assert!(console_node.stop(), "the console stops cleanly");
}

/// A device announcing a label with terminal escapes, an overlong one or an
/// empty one is refused (and its forwarder penalised); its next valid
/// label is taken. A label always names the frame's own signer, so nobody
/// can label another's device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_that_rewrite_the_terminal_or_flood_the_list_are_refused() {
    let mut agency = TestAgency::new(71);
    let (kim, lee) = (agency.member("kim"), agency.member("lee"));
    let kim = agency.spawn(kim, &[]);
    let bootstrap = [baro_tests::mesh::listen_address(&kim)
        .await
        .expect("kim listens")];
    let lee = agency.spawn(lee, &bootstrap);
    for node in [&kim, &lee] {
        node.handle().wait_for_peers(1, SETTLE).await.expect("mesh");
    }
    // Lee's node follows the control topic of Kim's once it is subscribed.
    let mut events = kim.handle().events();
    let long = "x".repeat(200);
    for bad in ["PC\u{1b}[2J\u{1b}]52;c;aGk=\u{7}", long.as_str(), "   "] {
        let payload = wire::encode(&ControlMessage::Label(bad.into()));
        let deadline = tokio::time::Instant::now() + SETTLE;
        while lee.handle().publish_control(payload.clone()).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "never published");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // By gossip, or by sync once gossip from Lee is penalised.
        wait_for(&mut events, "the bad label refused", |event| match event {
            NodeEvent::GossipRejected { reason, .. } | NodeEvent::SyncRejected { reason, .. }
                if reason.contains("invalid device label") =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    }
    let peers = kim.handle().peers().await.expect("peers");
    assert_eq!(peers[0].label, None, "no bad label was taken: {peers:?}");

    let good = wire::encode(&ControlMessage::Label("휴대폰".into()));
    lee.handle().publish_control(good).await.expect("published");
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let peers = kim.handle().peers().await.expect("peers");
        if peers[0].label.as_deref() == Some("휴대폰") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the valid label never arrived: {peers:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for node in [kim, lee] {
        node.shutdown().await;
    }
}
