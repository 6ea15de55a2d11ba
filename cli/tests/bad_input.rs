//! Every bad input to the enrollment commands ends with a non-zero exit and
//! one `error: …` line: never a panic, never a backtrace, nothing lost.

use std::path::{Path, PathBuf};

use baro_node::crypto::{KdfParams, Passphrase};
use baro_node::enrollment::{self, AgencyInit};
use baro_node::trust::{DAY_SECS, Enrollment, Role, Subject};
use baro_node::wire;
use baro_tests::{Baro, PASSPHRASE, args, enroll_device, init_agency};

fn baro(home: &Path) -> Baro {
    Baro::new(env!("CARGO_BIN_EXE_baro"), home)
}

struct Setup {
    dir: tempfile::TempDir,
    operator: Baro,
    device: Baro,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let operator = baro(&dir.path().join("console"));
        init_agency(&operator, "MOIS");
        let device = baro(&dir.path().join("device"));
        Setup {
            dir,
            operator,
            device,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn request(&self) -> PathBuf {
        let request = self.path("device.request");
        if !request.exists() {
            self.device
                .run(args(
                    &["device", "init", "--name", "Kim Minji", "--out"],
                    &[&request],
                ))
                .success();
        }
        request
    }

    fn bundle(&self) -> PathBuf {
        let bundle = self.path("device.bundle");
        self.operator
            .run(args(
                &[
                    "agency",
                    "enroll",
                    "--user",
                    "kim",
                    "--org",
                    "MOIS/Division 2",
                    "--out",
                ],
                &[&bundle, &self.request()],
            ))
            .success();
        bundle
    }

    fn install(&self, bundle: &Path) -> baro_tests::Outcome {
        self.device.run(args(&["device", "install"], &[bundle]))
    }
}

#[test]
fn missing_files_are_named() {
    let s = Setup::new();
    s.request();
    s.install(&s.path("nowhere.bundle"))
        .fails_with("cannot read the bundle");
    s.operator
        .run(args(
            &[
                "agency", "enroll", "--user", "kim", "--org", "MOIS", "--out",
            ],
            &[&s.path("b"), &s.path("nowhere.request")],
        ))
        .fails_with("cannot read the enrollment request");
    s.install(s.dir.path()).fails_with("is not a file");
}

#[test]
fn garbage_and_wrong_files_are_refused() {
    let s = Setup::new();
    s.request();
    let garbage = s.path("garbage.bundle");
    std::fs::write(&garbage, b"this is not a bundle at all, just text").expect("write");
    s.install(&garbage)
        .fails_with("is not a valid enrollment bundle");
    std::fs::write(&garbage, []).expect("write");
    s.install(&garbage).fails_with("truncated");
    std::fs::write(&garbage, vec![1u8; 100 * 1024]).expect("write");
    s.install(&garbage).fails_with("too large");
    // The request handed over where the bundle belongs.
    s.install(&s.request())
        .fails_with("expected an enrollment bundle but the input is an enrollment request");
}

#[test]
fn tampered_bundle_is_refused_and_nothing_is_installed() {
    let s = Setup::new();
    let bundle = s.bundle();
    let mut bytes = std::fs::read(&bundle).expect("read");
    // Change the last byte of the org unit text inside the certificate.
    let needle = b"MOIS/Division 2";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("org in bundle");
    bytes[at + needle.len() - 1] = b'3';
    let tampered = s.path("tampered.bundle");
    std::fs::write(&tampered, &bytes).expect("write");
    s.install(&tampered).fails_with("bad signature");
    assert!(
        s.device
            .run(["whoami"])
            .success()
            .contains("not enrolled yet")
    );
    // The genuine bundle still installs afterwards.
    s.install(&bundle).success();
}

#[test]
fn wrong_passphrase_and_missing_passphrase_are_refused() {
    let s = Setup::new();
    let request = s.request();
    let out = s.path("b.bundle");
    let enroll = args(
        &[
            "agency", "enroll", "--user", "kim", "--org", "MOIS", "--out",
        ],
        &[&out, &request],
    );
    s.operator
        .with_passphrase(Some("not the passphrase"))
        .run(&enroll)
        .fails_with("wrong passphrase");
    s.operator
        .with_passphrase(None)
        .run(&enroll)
        .fails_with("BARO_PASSPHRASE");
    assert!(!out.exists(), "no bundle written on failure");
    let fresh = baro(&s.path("other")).with_passphrase(Some("short"));
    fresh
        .run([
            "agency",
            "init",
            "--name",
            "X",
            "--user",
            "u",
            "--display-name",
            "U",
            "--org",
            "X",
        ])
        .fails_with("at least 8 characters");
}

#[test]
fn expired_certificate_is_refused() {
    // The old console below is made in this process: its home is sealed
    // under the tests' PIN, which the `baro` runs are given too.
    baro_node::store::set_unlock(baro_tests::test_unlock());
    let s = Setup::new();
    let request = std::fs::read(s.request()).expect("request");
    // An agency whose operator enrolled this device 30 days ago for 1 day.
    let past = baro_node::clock::unix_now() - 30 * DAY_SECS;
    let old_console = s.path("old-console");
    let subject = |user: &str| Subject {
        user_id: user.into(),
        display_name: "Someone".into(),
        org_unit: "MOIS".parse().expect("org"),
    };
    let passphrase = Passphrase::new(PASSPHRASE.into());
    enrollment::init_agency(
        &old_console,
        AgencyInit {
            name: "MOIS".into(),
            operator: subject("park"),
            kdf: KdfParams::default(),
            bootstrap: Vec::new(),
            label: None,
        },
        &passphrase,
        past,
    )
    .expect("agency");
    let bundle = enrollment::enroll(
        &old_console,
        &passphrase,
        &request,
        Enrollment {
            subject: subject("kim"),
            role: Role::Member,
            days: 1,
            bootstrap: vec![],
        },
        past,
    )
    .expect("enroll in the past");
    let file = s.path("expired.bundle");
    std::fs::write(&file, wire::encode(&bundle)).expect("write");
    s.install(&file).fails_with("expired at");
}

#[test]
fn bundle_of_another_agency_is_refused_once_enrolled() {
    let s = Setup::new();
    s.install(&s.bundle()).success();
    let rogue = baro(&s.path("rogue-console"));
    init_agency(&rogue, "Rogue Agency");
    // The device is tricked into requesting again and the rogue signs it.
    let request = s.path("again.request");
    s.device
        .run(args(
            &["device", "init", "--name", "Kim", "--out"],
            &[&request],
        ))
        .fails_with("already holds a device identity");
    let first_request = s.request();
    let rogue_bundle = s.path("rogue.bundle");
    rogue
        .run(args(
            &[
                "agency", "enroll", "--user", "kim", "--org", "Rogue", "--out",
            ],
            &[&rogue_bundle, &first_request],
        ))
        .success();
    s.install(&rogue_bundle)
        .fails_with("already enrolled in agency");
    let me = s.device.run(["--json", "whoami"]).json();
    assert_eq!(
        me["agency"]["name"], "MOIS",
        "the genuine enrollment is kept"
    );
}

#[test]
fn someone_elses_bundle_says_whose_it_is() {
    let s = Setup::new();
    let bundle = s.bundle();
    let other = baro(&s.path("other-device"));
    other
        .run(args(
            &["device", "init", "--name", "Lee", "--out"],
            &[&s.path("other.request")],
        ))
        .success();
    other
        .run(args(&["device", "install"], &[&bundle]))
        .fails_with("this bundle is for Kim Minji (kim)'s device");
}

#[test]
fn member_home_cannot_enroll_and_bad_arguments_are_explained() {
    let s = Setup::new();
    let member = baro(&s.path("member"));
    enroll_device(&s.operator, &member, s.dir.path(), "lee", "MOIS", "member");
    let request = s.request();
    let out = s.path("x.bundle");
    member
        .run(args(
            &[
                "agency", "enroll", "--user", "kim", "--org", "MOIS", "--out",
            ],
            &[&out, &request],
        ))
        .fails_with("no operator key");
    let enroll = |extra: &[&str]| {
        let mut words = vec!["agency", "enroll", "--user", "kim"];
        words.extend_from_slice(extra);
        words.push("--out");
        s.operator.run(args(&words, &[&out, &request]))
    };
    enroll(&["--org", "/MOIS"]).fails_with("org unit");
    enroll(&["--org", "MOIS", "--role", "boss"]).fails_with("unknown role");
    enroll(&["--org", "MOIS", "--days", "0"]).fails_with("--days");
    enroll(&["--org", "MOIS", "--bootstrap", "not-an-address"]).fails_with("not a multiaddr");
    enroll(&["--org", "MOIS", "--display-name", "bad\tname"]).fails_with("display name");
    s.operator
        .run(args(
            &[
                "agency", "enroll", "--user", "kim lee", "--org", "MOIS", "--out",
            ],
            &[&out, &request],
        ))
        .fails_with("user id");
    assert!(!out.exists());
    // An existing output file is never overwritten.
    std::fs::write(&out, b"keep me").expect("write");
    enroll(&["--org", "MOIS"]).fails_with("already exists");
    assert_eq!(std::fs::read(&out).expect("read"), b"keep me");
}

#[test]
fn commands_on_a_missing_or_fresh_home_explain_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    baro(&dir.path().join("nothing"))
        .run(["whoami"])
        .fails_with("no Baro Mesh home");
    let operator = baro(&dir.path().join("console"));
    init_agency(&operator, "MOIS");
    operator
        .run([
            "agency",
            "init",
            "--name",
            "X",
            "--user",
            "u",
            "--display-name",
            "U",
            "--org",
            "X",
        ])
        .fails_with("already holds");
    // A damaged key file is reported, not replaced.
    let device = baro(&dir.path().join("dev"));
    device
        .run(args(
            &["device", "init", "--name", "Kim", "--out"],
            &[&dir.path().join("r")],
        ))
        .success();
    std::fs::write(dir.path().join("dev/identity/device.key"), b"junk").expect("write");
    device.run(["whoami"]).fails_with("damaged");
}
