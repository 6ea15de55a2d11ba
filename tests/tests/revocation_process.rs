//! End to end, with real `baro` processes on loopback: a revoked device
//! erases its home, also when killed in the middle of the wipe; an official
//! revokes their lost phone from their PC; a revocation issued while the
//! operator's console is off is published at its next start.

use std::path::Path;
use std::time::Instant;

use baro_tests::{
    Baro, baro_bin, enroll_device, eventually, init_agency, listen_address, start_on_loopback,
    texts,
};

const ROOM: &str = "MOIS/Division 2";

/// The notice every command on a wiped home prints (the time varies).
const NOTICE: &str = "this device was revoked by operator park at";

fn wait_for_peers(device: &Baro, peers: usize) {
    eventually(30, &format!("{peers} peer(s)"), || {
        let status = device.run(["--json", "status"]);
        (status.output.status.success() && status.json()["peers"] == peers).then_some(())
    });
}

/// A new official's device, enrolled by `operator`; returns it and its id.
fn official(operator: &Baro, dir: &Path, name: &str, user: &str) -> (Baro, String) {
    let device = Baro::new(baro_bin(), dir.join(name)).with_passphrase(None);
    // Requests and bundles are named after the user: one folder per device.
    let files = dir.join(format!("{name}.files"));
    std::fs::create_dir(&files).expect("files dir");
    let me = enroll_device(operator, &device, &files, user, ROOM, "member");
    let id = me["device_id"].as_str().expect("device id").to_string();
    (device, id)
}

/// The names in a home, sorted.
fn entries(home: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(home)
        .expect("home readable")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every later command on a wiped home fails with the notice alone.
#[track_caller]
fn assert_wiped(device: &Baro) {
    for args in [
        vec!["whoami"],
        vec!["status"],
        vec!["send", ROOM, "still here?"],
        vec!["--json", "history", ROOM],
    ] {
        let outcome = device.run(&args);
        if args.contains(&"--json") {
            // With --json the one line is a JSON object.
            assert!(!outcome.output.status.success());
            let error: serde_json::Value =
                serde_json::from_str(outcome.stderr().trim()).expect("a JSON error");
            assert!(
                error["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with(NOTICE)),
                "{error}"
            );
        } else {
            outcome.fails_with(NOTICE);
        }
        assert!(
            outcome.stderr().contains("local data erased"),
            "{args:?}: {}",
            outcome.stderr()
        );
    }
    assert_eq!(
        entries(device.home()),
        ["revoked"],
        "only the notice is left"
    );
}

/// `agency revocations --json` on the operator's home.
fn revocations(operator: &Baro) -> Vec<serde_json::Value> {
    operator
        .run(["--json", "agency", "revocations"])
        .json()
        .as_array()
        .expect("a list")
        .clone()
}

/// The revocation of `device` the operator knows, once `check` holds for it.
fn revocation_of(
    operator: &Baro,
    device: &str,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let last = revocations(operator);
        if let Some(found) = last.iter().find(|r| r["device"] == device && check(r)) {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {last:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn wiped_by(revocation: &serde_json::Value, device: &str) -> bool {
    revocation["wiped"]
        .as_array()
        .is_some_and(|w| w.iter().any(|w| w["device"] == device))
}

#[test]
fn kill_9_in_the_middle_of_a_wipe_is_finished_by_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.path().join("console"));
    init_agency(&operator, "MOIS");
    let (phone, phone_id) = official(&operator, dir.path(), "phone", "kim");
    let (tablet, tablet_id) = official(&operator, dir.path(), "tablet", "kim");

    let _console = start_on_loopback(&operator, None);
    let bootstrap = listen_address(&operator);
    // Each step of the wipe pauses 4 s: time to kill it in the middle.
    let mut phone_node = start_on_loopback(
        &phone.with_env("BARO_TEST_WIPE_STEP_DELAY_MS", "4000"),
        Some(&bootstrap),
    );
    wait_for_peers(&operator, 1);
    wait_for_peers(&phone, 1);
    eventually(30, "kim's message sent", || {
        phone
            .run(["send", ROOM, "Site visit notes attached"])
            .output
            .status
            .success()
            .then_some(())
    });
    assert!(phone.home().join("db").is_dir());

    let revoked_at = Instant::now();
    let out = operator
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
    let submitted = revoked_at.elapsed();
    assert!(out.contains("published:    now"), "{out}");
    let (intent, key) = (
        phone.home().join("wipe.intent"),
        phone.home().join("storage.key"),
    );
    eventually(30, "the phone in the middle of its wipe", || {
        (intent.exists() && !key.exists()).then_some(())
    });
    let wipe_began = revoked_at.elapsed();
    let status = phone_node.kill9();
    assert!(!status.success());
    eprintln!(
        "revoke → wipe begun (storage key destroyed) on the phone: {wipe_began:?} \
         (the `agency revoke` command itself: {submitted:?})"
    );
    assert!(intent.exists(), "killed before the wipe finished");
    assert!(!phone.home().join("revoked").exists());
    let log = phone_node.log();
    assert!(log.contains(NOTICE), "the phone said why: {log}");

    // The next command finishes the wipe before anything else.
    assert_wiped(&phone);
    let notice = std::fs::read_to_string(phone.home().join("revoked")).expect("notice");
    assert!(notice.starts_with(NOTICE), "{notice}");

    let revocation = revocation_of(&operator, &phone_id, "the wipe receipt", |r| {
        wiped_by(r, &phone_id)
    });
    assert_eq!(revocation["user"], "kim", "{revocation}");
    assert_eq!(revocation["scope"], "device");
    assert_eq!(revocation["wipe"], true);
    assert_eq!(revocation["published"], true);
    assert_eq!(revocation["reason"], "phone lost");
    // Honest reporting (deliverable 7): a receipt is the device's
    // acknowledgement, signed by its key; the operator is told no more, and
    // sees who holds the revocation and when the phone was last seen.
    assert!(revocation["device_last_seen"].is_u64(), "{revocation}");
    let listing = operator.run(["agency", "revocations"]).success();
    assert!(listing.contains("acknowledged by the device"), "{listing}");
    assert!(
        listing.contains("not that its data was erased"),
        "{listing}"
    );
    assert!(!listing.contains("erased itself"), "{listing}");
    assert!(listing.contains("held by"), "{listing}");
    assert!(
        listing.contains("device last seen by this node: 20"),
        "{listing}"
    );

    // A clean wipe, without the test hook: revoke → the process has exited.
    let mut tablet_node = start_on_loopback(&tablet, Some(&bootstrap));
    wait_for_peers(&tablet, 1);
    let revoked_at = Instant::now();
    operator
        .run([
            "agency",
            "revoke",
            "--device",
            &tablet_id,
            "--reason",
            "tablet stolen",
            "--wipe",
        ])
        .success();
    let submitted = revoked_at.elapsed();
    let status = tablet_node
        .wait_exit(30)
        .unwrap_or_else(|| panic!("the tablet wiped and stopped: {}", tablet_node.log()));
    let exited = revoked_at.elapsed();
    eprintln!(
        "revoke → revoked tablet's process exited after a clean wipe: {exited:?} \
         (the `agency revoke` command itself: {submitted:?})"
    );
    assert!(!status.success(), "a wiped node exits with failure");
    let log = tablet_node.log();
    assert!(log.contains(&format!("error: {NOTICE}")), "{log}");
    assert_wiped(&tablet);
    revocation_of(&operator, &tablet_id, "the tablet's wipe receipt", |r| {
        wiped_by(r, &tablet_id)
    });
}

#[test]
fn an_official_revokes_their_lost_phone_from_their_pc_and_the_pc_keeps_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.path().join("console"));
    init_agency(&operator, "MOIS");
    let (pc, _) = official(&operator, dir.path(), "kim-pc", "kim");
    let (phone, phone_id) = official(&operator, dir.path(), "kim-phone", "kim");
    let (lee, lee_id) = official(&operator, dir.path(), "lee", "lee");

    let _console = start_on_loopback(&operator, None);
    let bootstrap = listen_address(&operator);
    let _pc_node = start_on_loopback(&pc, Some(&bootstrap));
    let mut phone_node = start_on_loopback(&phone, Some(&bootstrap));
    let _lee_node = start_on_loopback(&lee, Some(&bootstrap));
    wait_for_peers(&operator, 3);
    let phone_seen = |device: &Baro| {
        let peers = device.run(["--json", "peers"]).json();
        peers
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["device"] == phone_id.as_str()))
    };
    eventually(30, "kim's pc and lee have met the phone", || {
        (phone_seen(&pc) && phone_seen(&lee)).then_some(())
    });

    let revoked_at = Instant::now();
    let out = pc
        .run(["device", "revoke", &phone_id, "--reason", "lost my phone"])
        .success();
    let submitted = revoked_at.elapsed();
    assert!(out.contains("lost my phone"), "{out}");
    let status = phone_node
        .wait_exit(30)
        .unwrap_or_else(|| panic!("the phone wiped and stopped: {}", phone_node.log()));
    eprintln!(
        "device revoke on the pc → the phone's process exited: {:?} \
         (the `device revoke` command itself: {submitted:?})",
        revoked_at.elapsed()
    );
    assert!(!status.success(), "a wiped node exits with failure");
    let notice = std::fs::read_to_string(phone.home().join("revoked")).expect("notice");
    assert!(notice.contains("local data erased"), "{notice}");
    assert_eq!(entries(phone.home()), ["revoked"]);

    // The PC keeps working.
    pc.run(["send", ROOM, "New phone next week"]).success();
    eventually(30, "lee has the pc's message", || {
        let history = lee.run(["--json", "history", ROOM]);
        (history.output.status.success()
            && texts(&history.json()).contains(&"New phone next week".to_string()))
        .then_some(())
    });
    eventually(30, "neither lee nor the pc lists the phone", || {
        (!phone_seen(&lee) && !phone_seen(&pc)).then_some(())
    });
    revocation_of(&operator, &phone_id, "the operator has the receipt", |r| {
        r["issued_by"].as_str().is_some_and(|by| by.contains("kim")) && wiped_by(r, &phone_id)
    });

    // Only an operator revokes another official's device.
    pc.run(["device", "revoke", &lee_id, "--reason", "not mine"])
        .fails_with("belongs to lee");
    assert!(lee.run(["whoami"]).output.status.success());
}

/// The operator's console meets Kim's phone (and Lee's PC if `lee`), is
/// stopped, revokes the phone offline, and starts again.
fn revoke_while_the_console_is_off(lee: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.path().join("console"));
    init_agency(&operator, "MOIS");
    let (phone, phone_id) = official(&operator, dir.path(), "phone", "kim");
    let lee = lee.then(|| official(&operator, dir.path(), "lee", "lee").0);

    let mut phone_node = start_on_loopback(&phone, None);
    let phone_address = listen_address(&phone);
    let lee_node = lee
        .as_ref()
        .map(|lee| start_on_loopback(lee, Some(&phone_address)));
    let console = start_on_loopback(&operator, Some(&phone_address));
    wait_for_peers(&phone, 1 + usize::from(lee.is_some()));
    eventually(30, "kim's message sent", || {
        phone
            .run(["send", ROOM, "Leaving for the site"])
            .output
            .status
            .success()
            .then_some(())
    });
    assert!(console.stop(), "the console stops cleanly");

    let out = operator
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
    assert!(out.contains("when `baro run` next starts"), "{out}");
    let kept = revocations(&operator);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["device"], phone_id.as_str());
    assert_eq!(kept[0]["published"], false);
    assert_eq!(kept[0]["wipe"], true);
    assert!(kept[0]["seen_by"].as_array().is_some_and(Vec::is_empty));
    assert_eq!(phone_node.wait_exit(0), None, "the phone knows nothing yet");

    // Back on: through Lee if there is a Lee, else straight to the phone.
    let bootstrap = match &lee {
        Some(lee) => listen_address(lee),
        None => phone_address,
    };
    let _console = start_on_loopback(&operator, Some(&bootstrap));
    let status = phone_node
        .wait_exit(30)
        .unwrap_or_else(|| panic!("the phone wiped and stopped: {}", phone_node.log()));
    assert!(!status.success());
    assert_wiped(&phone);
    revocation_of(&operator, &phone_id, "published, with the receipt", |r| {
        r["published"] == true && wiped_by(r, &phone_id)
    });
    drop(lee_node);
}

#[test]
fn a_revocation_issued_while_the_operator_console_is_off_is_published_at_its_next_start() {
    revoke_while_the_console_is_off(true);
}

/// A revoked device that meets no one but the operator learns of its
/// revocation at admission (refused, shown it), answers with its wipe
/// receipt on that connection, and wipes; the operator notes both.
#[test]
fn a_phone_shown_its_revocation_at_admission_gets_its_wipe_receipt_to_the_operator() {
    revoke_while_the_console_is_off(false);
}
