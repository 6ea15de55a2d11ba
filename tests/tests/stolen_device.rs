//! A stolen device gives nothing up (audit H7, L4), with the real `baro`:
//! a thief's copy of a home is unreadable without the device PIN, wrong PINs
//! are counted and the last allowed one wipes the device, a service's home
//! opens with its key file instead, and the node process cannot dump core.

use std::path::Path;

use baro_tests::{Baro, eventually};
use baro_tests::{PIN, args, baro_bin, enroll_device, init_agency, start_on_loopback};

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("list") {
                stack.push(entry.expect("entry").path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `cp -a`: the thief's copy of the laptop's home, taken while it is off.
fn copy_home(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
}

fn member(dir: &Path, operator: &Baro, user: &str) -> Baro {
    let device = Baro::new(baro_bin(), dir.join(user)).with_passphrase(None);
    enroll_device(operator, &device, dir, user, "MOIS/Division 2", "member");
    device
}

#[test]
fn a_thiefs_copy_of_a_home_is_unreadable_without_the_pin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = Baro::new(baro_bin(), dir.path().join("console"));
    init_agency(&operator, "MOIS");
    // Real PC-class argon2id costs for this device, not the tests' cheap ones.
    let kim = Baro::new(baro_bin(), dir.path().join("kim.minji"))
        .with_passphrase(None)
        .with_env("BARO_TEST_FAST_KDF", "0");
    enroll_device(
        &operator,
        &kim,
        dir.path(),
        "kim.minji",
        "MOIS/Division 2",
        "member",
    );
    let node = start_on_loopback(&kim, None);
    eventually(30, "node started", || {
        kim.run(["status"]).output.status.success().then_some(())
    });
    kim.run(["room", "create", "flood-response"]).success();
    kim.run(["send", "flood-response", "two more pumps by tonight"])
        .success();
    assert!(node.stop(), "stopped cleanly");

    // The laptop is off; the thief copies its home.
    let stolen = dir.path().join("stolen");
    copy_home(kim.home(), &stolen);
    let thief = |pin: Option<&str>| {
        Baro::new(baro_bin(), &stolen)
            .with_passphrase(None)
            .with_pin(pin)
    };
    // No PIN: nothing opens.
    thief(None)
        .run(["whoami"])
        .fails_with("locked by a device PIN");
    // Guesses: each refused.
    for guess in ["000000", "123456", "kim.minji"] {
        let started = std::time::Instant::now();
        thief(Some(guess)).run(["whoami"]).fails_with("wrong PIN");
        println!("one guess took {:?}", started.elapsed());
    }
    // A key file does not open a PIN-locked home, and none is in it.
    let forged = dir.path().join("forged.key");
    thief(None)
        .run(args(&["whoami", "--storage-key-file"], &[&forged]))
        .fails_with("locked by a device PIN");
    // Nothing in the copy names its owner or the room in the clear.
    for (path, bytes) in files_under(&stolen) {
        for secret in [
            &b"kim.minji"[..],
            b"Official kim.minji",
            b"flood-response",
            b"two more pumps",
            PIN.as_bytes(),
        ] {
            assert!(
                !contains(&bytes, secret),
                "{} in the clear in {}",
                String::from_utf8_lossy(secret),
                path.display()
            );
        }
    }
    // The owner, with the PIN, reads the original.
    let me = kim.run(["--json", "whoami"]).json();
    assert_eq!(me["user_id"], "kim.minji");
}

#[test]
fn wrong_pins_are_counted_and_the_eleventh_attempt_finds_the_device_wiped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = Baro::new(baro_bin(), dir.path().join("console"));
    init_agency(&operator, "MOIS");
    let kim = member(dir.path(), &operator, "kim");
    let guessing = kim.with_pin(Some("999999"));
    // A success in between resets the count.
    for _ in 0..4 {
        guessing.run(["whoami"]).fails_with("wrong PIN");
    }
    kim.run(["whoami"]).success();
    for left in (1..10).rev() {
        guessing
            .run(["whoami"])
            .fails_with(&format!("wrong PIN: {left} more wrong attempts"));
    }
    guessing
        .run(["whoami"])
        .fails_with("erased its data after 10 wrong PINs");
    // The eleventh attempt, even with the right PIN, finds the device wiped.
    kim.run(["whoami"])
        .fails_with("erased its data after 10 wrong PINs");
    let left: Vec<_> = std::fs::read_dir(kim.home())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("revoked")]);
}

#[test]
fn a_relay_home_opens_with_its_key_file_and_no_pin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = Baro::new(baro_bin(), dir.path().join("console"));
    init_agency(&operator, "MOIS");
    let key = dir.path().join("relay.key");
    let relay = Baro::new(baro_bin(), dir.path().join("relay"))
        .with_passphrase(None)
        .with_pin(None)
        .with_env("BARO_STORAGE_KEY_FILE", &key);
    enroll_device(
        &operator,
        &relay,
        dir.path(),
        "relay.sejong",
        "MOIS/Sejong",
        "relay",
    );
    assert!(key.exists());
    let me = relay.run(["--json", "whoami"]).json();
    assert_eq!(me["role"], "relay");
    // Without its key file the home is a PIN-less home that does not open.
    Baro::new(baro_bin(), relay.home())
        .with_passphrase(None)
        .with_pin(Some("123456"))
        .run(["whoami"])
        .fails_with("storage key");
}

#[test]
fn the_running_node_cannot_dump_core() {
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = Baro::new(baro_bin(), dir.path().join("console"));
    init_agency(&operator, "MOIS");
    let kim = member(dir.path(), &operator, "kim");
    let node = start_on_loopback(&kim, None);
    let limits = eventually(30, "node started", || {
        kim.run(["status"]).output.status.success().then_some(())?;
        std::fs::read_to_string(format!("/proc/{}/limits", node.pid())).ok()
    });
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core limit line");
    let numbers: Vec<&str> = core.split_whitespace().skip(4).take(2).collect();
    assert_eq!(numbers, ["0", "0"], "{core}");
    assert!(node.stop(), "stopped cleanly");
}
