//! End to end, with the real `baro` binary: the agency's authority on the
//! operator console. The root key moves off the console and back (audit
//! L5).

use baro_tests::{Baro, args, baro_bin, init_agency};

#[test]
fn the_root_key_moves_off_the_console_and_back_and_is_needed_only_to_revoke_an_operator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let console = Baro::new(&bin, dir.path().join("console"));
    init_agency(&console, "MOIS");
    let shown = console.run(["--json", "agency", "show"]).json();
    assert_eq!(shown["root_key_on_console"], true);
    let operator_key = shown["operator"]["key"]
        .as_str()
        .expect("operator key")
        .to_string();
    let root_file = console.home().join("agency").join("root.key");
    assert!(root_file.exists());

    let offline = dir.path().join("usb").join("root.key");
    std::fs::create_dir_all(offline.parent().expect("dir")).expect("usb dir");
    console
        .run(args(&["agency", "export-root"], &[&offline]))
        .success();
    assert!(offline.exists(), "the root key is on the removable disk");
    assert!(!root_file.exists(), "and no longer on the console");
    let shown = console.run(["--json", "agency", "show"]).json();
    assert_eq!(shown["root_key_on_console"], false);
    // Exporting twice is refused: the key is no longer here.
    console
        .run(args(
            &["agency", "export-root"],
            &[&dir.path().join("again")],
        ))
        .fails_with("offline");

    // Revoking an operator needs the root key: the console says where it is.
    let revoke = [
        "agency",
        "revoke",
        "--device",
        &operator_key,
        "--reason",
        "operator retired",
    ];
    console
        .run(revoke)
        .fails_with("baro agency import-root FILE");
    // Enrolling still works with the operator key alone.
    let kim = Baro::new(&bin, dir.path().join("kim")).with_passphrase(None);
    let request = dir.path().join("kim.request");
    let bundle = dir.path().join("kim.bundle");
    kim.run(args(
        &["device", "init", "--name", "Kim", "--out"],
        &[&request],
    ))
    .success();
    console
        .run(args(
            &[
                "agency", "enroll", "--user", "kim", "--org", "MOIS", "--out",
            ],
            &[&bundle, &request],
        ))
        .success();

    // A wrong passphrase or another agency's root key is not imported.
    console
        .with_passphrase(Some("not the passphrase at all"))
        .run(args(&["agency", "import-root"], &[&offline]))
        .fails_with("passphrase");
    let rogue = Baro::new(&bin, dir.path().join("rogue"));
    init_agency(&rogue, "Rogue Agency");
    let rogue_root = dir.path().join("rogue-root.key");
    rogue
        .run(args(&["agency", "export-root"], &[&rogue_root]))
        .success();
    console
        .run(args(&["agency", "import-root"], &[&rogue_root]))
        .fails_with("is not the root key of agency");
    assert!(!root_file.exists());

    console
        .run(args(&["agency", "import-root"], &[&offline]))
        .success();
    assert!(root_file.exists());
    console.run(revoke).success();
}

#[test]
fn a_fake_agencys_bundle_is_refused_with_the_real_root_fingerprint() {
    // Audit L8: a first bundle was trusted on first use, so a fake
    // "Ministry" bundle handed to a new official was accepted.
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let console = Baro::new(&bin, dir.path().join("console"));
    init_agency(&console, "Ministry of the Interior and Safety");
    let fingerprint = console.run(["--json", "agency", "show"]).json()["root_fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    assert_eq!(fingerprint.split(' ').count(), 10, "{fingerprint}");
    let fake = Baro::new(&bin, dir.path().join("fake-console"));
    init_agency(&fake, "Ministry of the Interior and Safety");

    let kim = Baro::new(&bin, dir.path().join("kim")).with_passphrase(None);
    let request = dir.path().join("kim.request");
    kim.run(args(
        &["device", "init", "--name", "Kim", "--out"],
        &[&request],
    ))
    .success();
    let enroll = |operator: &Baro, bundle: &std::path::Path| {
        operator
            .run(args(
                &[
                    "agency", "enroll", "--user", "kim", "--org", "MOIS", "--out",
                ],
                &[bundle, &request],
            ))
            .success();
    };
    let fake_bundle = dir.path().join("fake.bundle");
    let real_bundle = dir.path().join("real.bundle");
    enroll(&fake, &fake_bundle);
    enroll(&console, &real_bundle);

    // The official types the fingerprint the operator read out, without
    // spaces and in capitals.
    let typed = fingerprint.replace(' ', "").to_uppercase();
    kim.run(args(
        &["device", "install", "--expect-root", &typed],
        &[&fake_bundle],
    ))
    .fails_with("not from your agency");
    assert_eq!(kim.run(["--json", "whoami"]).json()["enrolled"], false);
    let installed = kim
        .run(args(
            &["--json", "device", "install", "--expect-root", &typed],
            &[&real_bundle],
        ))
        .json();
    assert_eq!(installed["root_fingerprint"], fingerprint.as_str());
    assert_eq!(installed["root_checked"], true);

    // Without --expect-root, a first install shows the fingerprint to compare.
    let lee = Baro::new(&bin, dir.path().join("lee")).with_passphrase(None);
    let request = dir.path().join("lee.request");
    let bundle = dir.path().join("lee.bundle");
    lee.run(args(
        &["device", "init", "--name", "Lee", "--out"],
        &[&request],
    ))
    .success();
    console
        .run(args(
            &[
                "agency", "enroll", "--user", "lee", "--org", "MOIS", "--out",
            ],
            &[&bundle, &request],
        ))
        .success();
    let text = lee.run(args(&["device", "install"], &[&bundle])).success();
    assert!(text.contains(&fingerprint), "{text}");
    assert!(text.contains("Compare this fingerprint"), "{text}");
}
