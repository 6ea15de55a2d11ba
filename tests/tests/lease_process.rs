//! End to end, with real `baro` processes on loopback: the operator sets a
//! lease with `baro agency policy set`; a phone learns it when it meets the
//! console; started alone near the end of its lease it warns; started past
//! it, it erases its home before showing anything. Time is moved with the
//! binary's clock hook (`BARO_TEST_CLOCK_SKIP_SECS`), not waited for.

use baro_tests::{Baro, agency_with, eventually, listen_address, start_on_loopback};

const ROOM: &str = "MOIS/Division 2";
const DAY: u64 = 86_400;
const SKIP: &str = "BARO_TEST_CLOCK_SKIP_SECS";

fn policy_of(device: &Baro) -> Option<serde_json::Value> {
    let status = device.run(["--json", "status"]);
    status
        .output
        .status
        .success()
        .then(|| status.json()["policy"].clone())
}

#[test]
fn a_phone_past_its_lease_erases_its_home_at_start_and_warns_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, [phone]) = agency_with(dir.path(), ROOM, ["kim"]);

    // The console is off: the policy is kept and published at its next start.
    let set = operator.run([
        "agency",
        "policy",
        "set",
        "--lease-days",
        "14",
        "--warn-days",
        "3",
    ]);
    let said = set.success();
    assert!(said.contains("Agency policy version 1"), "{said}");
    assert!(said.contains("when `baro run` next starts"), "{said}");
    // Without the operator passphrase nothing is signed.
    operator
        .with_passphrase(Some("wrong passphrase, long enough"))
        .run([
            "agency",
            "policy",
            "set",
            "--lease-days",
            "1",
            "--warn-days",
            "0",
        ])
        .fails_with("passphrase");

    let console = start_on_loopback(&operator, None);
    let address = listen_address(&operator);
    let node = start_on_loopback(&phone, Some(&address));
    let policy = eventually(30, "the phone takes the policy", || {
        policy_of(&phone).filter(|p| p["version"] == 1)
    });
    assert_eq!(policy["lease_days"], 14);
    let shown = phone.run(["status"]).success();
    assert!(
        shown.contains("policy:       version 1 by operator park")
            && shown.contains("lease runs until"),
        "{shown}"
    );
    // With the console running, a new version is published at once.
    let set = operator.run([
        "agency",
        "policy",
        "set",
        "--lease-days",
        "14",
        "--warn-days",
        "3",
        "--max-pin-attempts",
        "5",
    ]);
    let said = set.success();
    assert!(
        said.contains("Agency policy version 2") && said.contains("published:    now"),
        "{said}"
    );
    eventually(30, "the phone takes version 2", || {
        policy_of(&phone).filter(|p| p["version"] == 2 && p["max_pin_attempts"] == 5)
    });
    // An older version is refused before anything is signed.
    operator
        .run([
            "agency",
            "policy",
            "set",
            "--lease-days",
            "0",
            "--policy-version",
            "1",
        ])
        .fails_with("already holds policy version 2");
    assert!(node.stop());
    assert!(console.stop());

    // Twelve days alone: `baro run` warns, and so does `baro status`.
    let later = phone.with_env(SKIP, (12 * DAY).to_string());
    let node = start_on_loopback(&later, None);
    eventually(30, "the warning", || {
        node.log()
            .contains("warning: lease ends in 2 days")
            .then_some(())
    });
    let shown = later.run(["status"]).success();
    assert!(
        shown.contains("lease:        lease ends in 2 days"),
        "{shown}"
    );
    assert!(node.stop());

    // Fifteen days alone: the phone erases itself at start.
    let stolen = phone.with_env(SKIP, (15 * DAY).to_string());
    let run = stolen.run(["run", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"]);
    run.fails_with("met no admitted peer since");
    assert!(
        run.stderr().contains("lease of 14 days") && run.stderr().contains("local data erased"),
        "{}",
        run.stderr()
    );
    assert!(
        !run.stdout().contains("Baro Mesh node of"),
        "nothing is shown before the wipe: {}",
        run.stdout()
    );
    // The home holds only the notice; every later command says why.
    let left: Vec<String> = std::fs::read_dir(phone.home())
        .expect("home")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["revoked"], "{left:?}");
    phone
        .run(["whoami"])
        .fails_with("met no admitted peer since");
}
