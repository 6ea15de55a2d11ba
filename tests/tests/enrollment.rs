//! End to end: an operator and four devices, each its own home, enrolled
//! with the real `baro` binary as separate processes.

use baro_tests::{Baro, args, baro_bin, enroll_device, init_agency};

#[test]
fn operator_enrolls_three_officials_and_a_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.path().join("console"));
    let created = init_agency(&operator, "Ministry of the Interior and Safety");
    let agency_id = created["agency"]["id"]
        .as_str()
        .expect("agency id")
        .to_string();
    // The console's device issues nothing: operator authority is the
    // passphrase-sealed operator key's (audit H2).
    assert_eq!(created["device"]["role"], "member");

    let console = operator.run(["--json", "whoami"]).json();
    assert_eq!(console["operator_console"], true);
    assert_eq!(console["agency"]["id"], agency_id.as_str());

    let people = [
        (
            "kim.minji",
            "MOIS/Digital Government Bureau/Division 2",
            "member",
        ),
        (
            "lee.junho",
            "MOIS/Digital Government Bureau/Division 2",
            "member",
        ),
        ("choi.seoyeon", "MOIS/Local Autonomy Office", "member"),
        ("relay.sejong", "MOIS/Field Offices/Sejong", "relay"),
    ];
    let mut device_ids = Vec::new();
    for (user, org, role) in people {
        let device = Baro::new(&bin, dir.path().join(user)).with_passphrase(None);
        let me = enroll_device(&operator, &device, dir.path(), user, org, role);
        assert_eq!(me["enrolled"], true);
        assert_eq!(me["valid_now"], true);
        assert_eq!(me["user_id"], user);
        assert_eq!(me["display_name"], format!("Official {user}"));
        assert_eq!(me["org_unit"], org);
        assert_eq!(me["role"], role);
        assert_eq!(me["issued_by"], "park");
        assert_eq!(me["agency"]["id"], agency_id.as_str());
        assert_eq!(me["operator_console"], false);
        let id = me["device_id"].as_str().expect("device id").to_string();
        assert!(id.starts_with("12D3KooW"), "{id}");
        device_ids.push(id);
    }
    device_ids.sort();
    device_ids.dedup();
    assert_eq!(device_ids.len(), 4, "every device has its own id");

    // Human output names the same facts.
    let text = Baro::new(&bin, dir.path().join("kim.minji"))
        .run(["whoami"])
        .success();
    assert!(text.contains("kim.minji") && text.contains("Ministry of the Interior and Safety"));
    assert!(text.contains("member") && text.contains("valid"));
}

#[test]
fn device_keeps_its_identity_across_runs_and_home_files_hold_no_plaintext_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.path().join("console"));
    init_agency(&operator, "MOIS");
    let device = Baro::new(&bin, dir.path().join("kim"));
    let first = enroll_device(
        &operator,
        &device,
        dir.path(),
        "kim",
        "MOIS/Division 2",
        "member",
    );
    let again = device.run(["--json", "whoami"]).json();
    assert_eq!(first["device_id"], again["device_id"]);

    // Nothing in the device's home shows its user id or org in the clear.
    let mut pending = vec![device.home().to_path_buf()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).expect("read");
            for needle in [&b"MOIS/Division 2"[..], b"Official kim"] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds plaintext",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn a_device_enrolled_with_role_operator_is_refused() {
    // Audit H2: an ordinary device with operator authority would issue
    // certificates and revocations with a key held without a passphrase.
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.path().join("console"));
    init_agency(&operator, "MOIS");
    let device = Baro::new(&bin, dir.path().join("kim")).with_passphrase(None);
    let request = dir.path().join("kim.request");
    let bundle = dir.path().join("kim.bundle");
    device
        .run(args(
            &["device", "init", "--name", "Kim", "--out"],
            &[&request],
        ))
        .success();
    operator
        .run(args(
            &[
                "agency", "enroll", "--user", "kim", "--org", "MOIS", "--role", "operator", "--out",
            ],
            &[&bundle, &request],
        ))
        .fails_with("--role operator is refused");
    assert!(!bundle.exists(), "no bundle is written");
}
