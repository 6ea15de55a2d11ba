//! End to end (real `baro` processes on loopback), usability report
//! findings 1, 5, 7 and 9: officials are found by Korean name, user id and
//! org unit (`baro people`); `@` takes a user id or a display name only one
//! official has; a typo is refused with "did you mean" and opens no room;
//! `--member` and `room invite` refuse unknown users and say who is a
//! member already; and names typed as decomposed Hangul (conjoining jamo,
//! as macOS produces) are the same names everywhere: at enrollment, in
//! room names and in searches.

use std::path::Path;

use baro_tests::{Baro, args, baro_bin, eventually, init_korean_agency, listen_address, texts};

/// "행정안전부/디지털정부국/2과" typed as conjoining jamo.
const DECOMPOSED_ORG: &str = "\u{1112}\u{1162}\u{11bc}\u{110c}\u{1165}\u{11bc}\u{110b}\u{1161}\u{11ab}\u{110c}\u{1165}\u{11ab}\u{1107}\u{116e}/\u{1103}\u{1175}\u{110c}\u{1175}\u{1110}\u{1165}\u{11af}\u{110c}\u{1165}\u{11bc}\u{1107}\u{116e}\u{1100}\u{116e}\u{11a8}/2\u{1100}\u{116a}";
const ORG: &str = "행정안전부/디지털정부국/2과";
/// "김민지" and "2과" typed as conjoining jamo.
const DECOMPOSED_KIM: &str = "\u{1100}\u{1175}\u{11b7}\u{1106}\u{1175}\u{11ab}\u{110c}\u{1175}";
const DECOMPOSED_DIVISION: &str = "2\u{1100}\u{116a}";

/// `device init --name NAME`, `agency enroll --user USER --org ORG`,
/// `device install`; returns the device and its `whoami --json`.
fn enroll(
    operator: &Baro,
    dir: &Path,
    user: &str,
    name: &str,
    org: &str,
) -> (Baro, serde_json::Value) {
    let device = Baro::new(baro_bin(), dir.join(user)).with_passphrase(None);
    let request = dir.join(format!("{user}.request"));
    let bundle = dir.join(format!("{user}.bundle"));
    device
        .run(args(
            &["device", "init", "--name", name, "--out"],
            &[&request],
        ))
        .success();
    operator
        .run(args(
            &["agency", "enroll", "--user", user, "--org", org, "--out"],
            &[&bundle, &request],
        ))
        .success();
    device
        .run(args(&["device", "install"], &[&bundle]))
        .success();
    let whoami = device.run(["--json", "whoami"]).json();
    (device, whoami)
}

fn users(people: &serde_json::Value) -> Vec<String> {
    people["people"]
        .as_array()
        .map(|people| {
            people
                .iter()
                .filter_map(|p| p["user"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn room_names(device: &Baro) -> Vec<String> {
    device
        .run(["--json", "room", "list"])
        .json()
        .as_array()
        .map(|rooms| {
            rooms
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn officials_are_found_and_named_by_korean_name_and_typos_open_no_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = Baro::new(baro_bin(), dir.path().join("console"));
    init_korean_agency(&operator, "행정안전부", &[]).success();
    // Kim types her name and her division as macOS does: decomposed.
    let (kim, whoami) = enroll(
        &operator,
        dir.path(),
        "kim.minji",
        DECOMPOSED_KIM,
        DECOMPOSED_ORG,
    );
    assert_eq!(whoami["display_name"], "김민지", "{whoami}");
    assert_eq!(whoami["org_unit"], ORG, "certified in NFC: {whoami}");
    let (lee, _) = enroll(&operator, dir.path(), "lee.junho", "이준호", ORG);

    let listen = ["run", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
    let kim_node = kim.spawn(listen);
    let bootstrap = listen_address(&kim);
    let lee_node = lee.spawn(listen.iter().copied().chain(["--bootstrap", &bootstrap]));

    // Finding 9: the directory, by Korean name, user id and org unit.
    let found = eventually(30, "kim knows lee", || {
        let found = kim.run(["--json", "people", "이준호"]).json();
        (users(&found) == ["lee.junho"]).then_some(found)
    });
    assert_eq!(found["people"][0]["name"], "이준호");
    assert_eq!(found["people"][0]["org_unit"], ORG);
    assert_eq!(found["local_only"], true, "no relay here: {found}");
    let division = kim.run(["--json", "people", DECOMPOSED_DIVISION]).json();
    assert_eq!(users(&division), ["kim.minji", "lee.junho"], "{division}");
    let everyone = kim.run(["people"]).success();
    assert!(everyone.contains("이준호"), "{everyone}");
    assert!(everyone.contains("lee.junho"), "{everyone}");
    assert!(
        everyone.contains("only the officials this device knows"),
        "{everyone}"
    );
    let by_unit = lee
        .run(["--json", "people", "--unit", DECOMPOSED_ORG])
        .json();
    assert_eq!(users(&by_unit), ["kim.minji", "lee.junho"], "{by_unit}");

    // Finding 1: a typo is refused with a suggestion, and opens no room.
    kim.run(["send", "@lee.junhoo", "typo test"]).fails_with(
        "no official 'lee.junhoo' is known to this device; did you mean @lee.junho (이준호, 행정안전부/디지털정부국/2과)?",
    );
    kim.run(["send", "@최서연", "nobody"])
        .fails_with("no official '최서연' is known to this device");
    kim.run(["history", "@lee.junhoo"])
        .fails_with("did you mean @lee.junho");
    assert!(
        !room_names(&kim).iter().any(|name| name.contains("junhoo")),
        "no room for a user who does not exist: {:?}",
        room_names(&kim)
    );

    // `@` with the display name (Korean, in either form) reaches Lee.
    kim.run(["send", "@이준호", "표시 이름으로"]).success();
    let private = eventually(30, "lee has the 1:1 message", || {
        let history = lee.run(["--json", "history", &format!("@{DECOMPOSED_KIM}")]);
        history
            .output
            .status
            .success()
            .then(|| history.json())
            .filter(|h| texts(h).contains(&"표시 이름으로".to_string()))
    });
    assert_eq!(private[0]["sender_user"], "kim.minji");

    // Finding 5: --member and invite refuse unknown users; "already a member".
    kim.run(["room", "create", "예산 검토", "--member", "lee.junhoo"])
        .fails_with("group not created: no official 'lee.junhoo' is known to this device; did you mean @lee.junho");
    assert!(!room_names(&kim).contains(&"예산 검토".to_string()));
    let created = kim
        .run(["room", "create", "예산 검토", "--member", "이준호"])
        .success();
    assert!(created.contains("lee.junho"), "{created}");
    kim.run(["room", "invite", "예산 검토", "lee.junho"])
        .fails_with("lee.junho is already a member of this group");
    kim.run(["room", "invite", "예산 검토", "choi.seoyeon"])
        .fails_with("no official 'choi.seoyeon' is known to this device");
    let group = kim.run(["--json", "room", "list"]).json();
    let group = group
        .as_array()
        .and_then(|rooms| rooms.iter().find(|r| r["name"] == "예산 검토"))
        .expect("group listed")
        .clone();
    let mut members: Vec<&str> = group["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["kim.minji", "lee.junho"], "{group}");

    // Finding 7: the department typed decomposed is the real one, and
    // there is no phantom department beside it.
    kim.run(["send", DECOMPOSED_ORG, "2과 공지"]).success();
    let history = kim.run(["--json", "history", ORG]).json();
    assert_eq!(texts(&history), ["2과 공지"]);
    let departments = room_names(&kim);
    assert_eq!(
        departments.iter().filter(|n| n.ends_with("2과")).count(),
        1,
        "{departments:?}"
    );

    assert!(lee_node.stop(), "lee's node stops cleanly");
    assert!(kim_node.stop(), "kim's node stops cleanly");
}
