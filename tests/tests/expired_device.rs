//! End to end, with real `baro` processes (issue 17, deliverable 6): a
//! device whose own certificate has expired still obeys what it holds.
//! `baro run` used to refuse to start it, so a phone kept off until its
//! certificate ran out never wiped. Now it starts in a restricted mode (no
//! network, no control API), obeys its lease and the revocations in its
//! store, and stops. Time is moved with the binary's clock hook.

use std::path::Path;

use baro_tests::{
    Baro, args, baro_bin, eventually, init_agency, listen_address, start_on_loopback,
};

const DAY: u64 = 86_400;
const SKIP: &str = "BARO_TEST_CLOCK_SKIP_SECS";

/// An agency whose phone (kim) is certified for two days only, and which
/// has taken a 14-day lease from the console; both stopped.
fn phone_with_a_two_day_certificate_and_a_lease(dir: &Path) -> Baro {
    let bin = baro_bin();
    let console = Baro::new(&bin, dir.join("console"));
    init_agency(&console, "MOIS");
    let phone = Baro::new(&bin, dir.join("phone")).with_passphrase(None);
    let request = dir.join("phone.request");
    let bundle = dir.join("phone.bundle");
    phone
        .run(args(
            &["device", "init", "--name", "Kim", "--out"],
            &[&request],
        ))
        .success();
    console
        .run(args(
            &[
                "agency", "enroll", "--user", "kim", "--org", "MOIS", "--days", "2", "--out",
            ],
            &[&bundle, &request],
        ))
        .success();
    phone
        .run(args(&["device", "install"], &[&bundle]))
        .success();
    console
        .run(["agency", "policy", "set", "--lease-days", "14"])
        .success();
    let console_node = start_on_loopback(&console, None);
    let address = listen_address(&console);
    let phone_node = start_on_loopback(&phone, Some(&address));
    eventually(30, "the phone takes the lease", || {
        let status = phone.run(["--json", "status"]);
        (status.output.status.success() && status.json()["policy"]["lease_days"] == 14)
            .then_some(())
    });
    assert!(phone_node.stop());
    assert!(console_node.stop());
    phone
}

fn entries(home: &Path) -> Vec<String> {
    std::fs::read_dir(home)
        .expect("home")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn an_expired_phone_past_its_lease_still_erases_itself_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let phone = phone_with_a_two_day_certificate_and_a_lease(dir.path());
    // Fifteen days later: the certificate ran out on day 2, the lease on
    // day 14. Before, `baro run` stopped at "certificate is not valid".
    let run = phone.with_env(SKIP, (15 * DAY).to_string()).run([
        "run",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
    ]);
    run.fails_with("met no admitted peer since");
    assert_eq!(
        entries(phone.home()),
        ["revoked"],
        "only the notice is left"
    );
}

#[test]
fn an_expired_phone_that_holds_nothing_against_it_stops_without_showing_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let phone = phone_with_a_two_day_certificate_and_a_lease(dir.path());
    let run = phone.with_env(SKIP, (3 * DAY).to_string()).run([
        "run",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
    ]);
    run.fails_with("holds no revocation of itself: ask an operator for a new bundle");
    let shown = run.stdout();
    assert!(shown.contains("certificate expired at"), "{shown}");
    assert!(!shown.contains("Baro Mesh node of"), "{shown}");
    // Its home is intact: a new bundle brings it back.
    assert!(phone.run(["whoami"]).success().contains("kim"));
}

/// Opens `home`'s message log in this process (the home is locked with the
/// test PIN, as every `baro` the helpers start locks it).
fn message_log(home: &Path) -> baro_node::store::MessageLog {
    let home = baro_node::store::Home::open_with(home, &baro_tests::test_unlock()).expect("home");
    let store = baro_node::store::SledStore::open(home).expect("sled");
    baro_node::store::MessageLog::new(std::sync::Arc::new(store))
}

#[test]
fn an_expired_phone_obeys_a_revocation_it_holds_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let console = Baro::new(&bin, dir.path().join("console"));
    init_agency(&console, "MOIS");
    let phone = Baro::new(&bin, dir.path().join("phone")).with_passphrase(None);
    let request = dir.path().join("phone.request");
    let bundle = dir.path().join("phone.bundle");
    phone
        .run(args(
            &["device", "init", "--name", "Kim", "--out"],
            &[&request],
        ))
        .success();
    console
        .run(args(
            &[
                "agency", "enroll", "--user", "kim", "--org", "MOIS", "--days", "2", "--out",
            ],
            &[&bundle, &request],
        ))
        .success();
    phone
        .run(args(&["device", "install"], &[&bundle]))
        .success();
    let phone_id = phone.run(["--json", "whoami"]).json()["device_id"]
        .as_str()
        .expect("device id")
        .to_string();
    // The two met once, so the console knows the phone's certificate.
    let console_node = start_on_loopback(&console, None);
    let address = listen_address(&console);
    let phone_node = start_on_loopback(&phone, Some(&address));
    eventually(30, "the console meets the phone", || {
        let peers = console.run(["--json", "peers"]);
        (peers.output.status.success() && peers.stdout().contains(&phone_id)).then_some(())
    });
    assert!(phone_node.stop());
    assert!(console_node.stop());
    // The phone is lost; the operator revokes it (kept on the console),
    // and the revocation reaches the phone's store while the phone is off
    // (brought in, or taken just before the process was killed).
    console
        .run([
            "agency",
            "revoke",
            "--device",
            &phone_id,
            "--reason",
            "phone lost",
            "--wipe",
        ])
        .success();
    let held = message_log(console.home())
        .signed_revocations()
        .expect("revocations");
    assert_eq!(held.len(), 1);
    {
        let log = message_log(phone.home());
        let at = baro_node::clock::unix_now();
        log.save_signed_revocation(&held[0], at).expect("saved");
        log.save_revocation_arrival(&baro_node::store::Arrival {
            id: baro_node::wire::decode::<baro_node::trust::Revocation>(&held[0])
                .expect("a revocation")
                .id(),
            number: 0,
            received_at: at,
        })
        .expect("arrival");
        log.flush().expect("flush");
    }
    // Three days later the phone's certificate has expired: it starts
    // anyway, obeys the revocation it holds, and erases itself.
    let run = phone.with_env(SKIP, (3 * DAY).to_string()).run([
        "run",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
    ]);
    // (The node also logs the wipe as a warning, so not `fails_with`.)
    assert!(!run.output.status.success(), "{}", run.stdout());
    let said = run.stderr();
    assert!(
        said.lines()
            .last()
            .is_some_and(|l| l.starts_with("error: this device was revoked by operator park")),
        "{said}"
    );
    assert_eq!(
        entries(phone.home()),
        ["revoked"],
        "only the notice is left"
    );
}
