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
