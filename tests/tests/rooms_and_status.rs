//! End to end, with real `baro` processes on loopback and Korean names
//! (issue 18, deliverables 2 and 4; findings of the usability walkthrough):
//! rooms are found as officials name them and never by a stray digit,
//! `send` and `chat` name the room they posted to, group names do not
//! collide, an admin hands a group over, a room made by mistake is hidden
//! for good (and shown again), and what `send`, `history` and `status` say
//! about a message is what happened to it.

use baro_tests::{
    Baro, RunningNode, agency_with, baro_bin, enroll_device, enroll_labelled, eventually,
    listen_address, start_on_loopback,
};

const DIVISION: &str = "행정안전부/디지털정부국/2과";
const MINISTRY: &str = "행정안전부";

fn rooms(device: &Baro, all: bool) -> Vec<serde_json::Value> {
    let mut args = vec!["--json", "room", "list"];
    if all {
        args.push("--all");
    }
    device.run(args).json().as_array().expect("a list").clone()
}

fn room_named(device: &Baro, name: &str) -> serde_json::Value {
    rooms(device, true)
        .into_iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no room {name}"))
}

fn wait_for_peers(device: &Baro, peers: usize) {
    eventually(30, &format!("{peers} peer(s)"), || {
        let status = device.run(["--json", "status"]);
        (status.output.status.success() && status.json()["peers"] == peers).then_some(())
    });
}

/// Kim and Lee in 2과, both running and connected (Kim's node has no
/// bootstrap address and no mDNS).
fn kim_and_lee(dir: &std::path::Path) -> (Baro, Baro, RunningNode, RunningNode) {
    let (_operator, [kim, lee]) = agency_with(dir, DIVISION, ["kim", "lee"]);
    let kim_node = start_on_loopback(&kim, None);
    let bootstrap = listen_address(&kim);
    let lee_node = start_on_loopback(&lee, Some(&bootstrap));
    wait_for_peers(&kim, 1);
    (kim, lee, kim_node, lee_node)
}

/// Findings 3 and 8: `send 1 …` posted to the whole ministry's room; `2과`
/// and name prefixes found nothing; `send` never said where it posted.
/// Finding 4: two groups of one name made the name useless.
#[test]
fn rooms_are_found_as_officials_name_them_and_never_by_a_stray_digit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (kim, _lee, kim_node, _lee_node) = kim_and_lee(dir.path());
    // No bootstrap address, no mDNS: `baro run` says so at start.
    eventually(10, "the warning", || {
        kim_node
            .log()
            .contains("this device has no way to find peers")
            .then_some(())
    });

    let ministry = room_named(&kim, MINISTRY)["id"]
        .as_str()
        .expect("id")
        .to_string();
    for len in 1..6 {
        kim.run(["send", &ministry[..len], "실수로 전체 부처 방에"])
            .fails_with("at least 6 hex characters");
    }
    kim.run(["send", "9", "실수로"]).fails_with("'9'");
    assert_eq!(
        kim.run(["--json", "history", MINISTRY]).json(),
        serde_json::json!([]),
        "nothing reached the ministry's room"
    );

    // A department by its last segment; the answer names the room.
    let sent = kim.run(["send", "2과", "오늘 회의는 3시입니다"]).success();
    assert!(
        sent.contains(&format!("to \"{DIVISION}\" (department, 2 members,")),
        "{sent}"
    );
    let sent = kim
        .run(["--json", "send", &ministry[..6], "전체 공지"])
        .json();
    assert_eq!(sent["room_name"], MINISTRY, "{sent}");
    assert_eq!(sent["room_kind"], "department");
    assert_eq!(sent["room"], ministry.as_str());
    // A prefix of two department paths names neither.
    kim.run(["send", "행정안전부/디", "어디로?"])
        .fails_with("'행정안전부/디' matches 2 rooms: ");

    // Group names: a second group of the same name is refused.
    kim.run(["room", "create", "예산 검토 2", "--member", "lee"])
        .success();
    kim.run(["room", "create", "예산 검토 2", "--member", "lee"])
        .fails_with("already in a room named \"예산 검토 2\" (group ");
    // A unique name prefix (two characters or more).
    let sent = kim.run(["send", "예산", "자료 공유드립니다"]).success();
    assert!(
        sent.contains("to \"예산 검토 2\" (group, 2 members,"),
        "{sent}"
    );
    kim.run(["send", "예", "한 글자"])
        .fails_with("no room named");

    // `chat` names the room in its header and posts there.
    let chat = kim
        .run_with_input(["chat", "2과"], "채팅에서 보냅니다\n")
        .success();
    assert!(
        chat.contains(&format!("— \"{DIVISION}\" (department ")),
        "{chat}"
    );
    eventually(10, "the chat line in 2과", || {
        let history = kim.run(["--json", "history", DIVISION]).json();
        history
            .as_array()?
            .iter()
            .any(|m| m["text"] == "채팅에서 보냅니다")
            .then_some(())
    });
}

/// Finding 6: the creator could never leave, and nobody else could be made
/// admin. The change is a signed group definition that Lee's node takes
/// from Kim (an admin); Lee could not make himself admin.
#[test]
fn an_admin_hands_a_group_over_and_the_creator_can_leave() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (kim, lee, _kim_node, _lee_node) = kim_and_lee(dir.path());
    kim.run(["room", "create", "예산 검토", "--member", "lee"])
        .success();
    eventually(30, "lee has the group", || {
        rooms(&lee, false)
            .iter()
            .any(|r| r["name"] == "예산 검토" && r["can_send"] == true)
            .then_some(())
    });
    kim.run(["room", "leave", "예산 검토"])
        .fails_with("the last admin cannot leave");
    lee.run(["room", "admin", "예산 검토", "lee"])
        .fails_with("lee is not an admin of this group");
    let out = kim.run(["room", "admin", "예산", "lee"]).success();
    assert!(
        out.contains("lee is now an admin of \"예산 검토\" (group "),
        "{out}"
    );
    kim.run(["room", "admin", "예산 검토", "lee"])
        .fails_with("already an admin");
    kim.run(["room", "admin", "예산 검토", "choi"])
        .fails_with("choi is not a member");
    eventually(30, "lee's node takes kim's signed change", || {
        (room_named(&lee, "예산 검토")["admins"] == serde_json::json!(["kim", "lee"])).then_some(())
    });
    kim.run(["room", "leave", "예산 검토"]).success();
    eventually(30, "lee sees kim gone", || {
        (room_named(&lee, "예산 검토")["members"] == serde_json::json!(["lee"])).then_some(())
    });
}

/// Finding 1 (the junk room) and 6: a group made by mistake is hidden from
/// `room list` on this device, stays hidden across a restart (the answer
/// came after it was on disk), and can be shown again.
#[test]
fn a_room_made_by_mistake_is_hidden_durably_and_shown_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, [kim]) = agency_with(dir.path(), DIVISION, ["kim"]);
    let node = start_on_loopback(&kim, None);
    listen_address(&kim);
    kim.run(["room", "create", "실수로 만든 방"]).success();
    let out = kim.run(["room", "hide", "실수로"]).success();
    assert!(
        out.contains("\"실수로 만든 방\" (group ") && out.contains("is hidden"),
        "{out}"
    );
    let listed = kim.run(["room", "list"]).success();
    assert!(!listed.contains("실수로 만든 방"), "{listed}");
    assert!(listed.contains("1 hidden"), "{listed}");
    assert!(
        rooms(&kim, false)
            .iter()
            .all(|r| r["name"] != "실수로 만든 방")
    );

    // Kill -9: what the user was told is on disk.
    let mut node = node;
    node.kill9();
    let _node = start_on_loopback(&kim, None);
    listen_address(&kim);
    assert!(
        rooms(&kim, false)
            .iter()
            .all(|r| r["name"] != "실수로 만든 방")
    );
    let all = kim.run(["room", "list", "--all"]).success();
    assert!(
        all.contains("실수로 만든 방") && all.contains("hidden"),
        "{all}"
    );
    // Still found by name, and shown again.
    kim.run(["room", "unhide", "실수로 만든 방"]).success();
    assert!(
        rooms(&kim, false)
            .iter()
            .any(|r| r["name"] == "실수로 만든 방")
    );
}

/// Findings 2, 11 and 20: the first 1:1 message said "queued" while Lee was
/// connected; `history` showed neither a waiting message nor the relay that
/// stored one; `status` had no outbox, relays or last sync.
#[test]
fn send_history_and_status_say_what_happened_to_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, [kim, lee]) = agency_with(dir.path(), DIVISION, ["kim", "lee"]);

    // Alone: queued, waiting, counted in the outbox.
    let kim_node = start_on_loopback(&kim, None);
    let kim_address = listen_address(&kim);
    let sent = kim.run(["send", "2과", "혼자 보내는 메시지"]).success();
    assert!(
        sent.starts_with(&format!("queued for \"{DIVISION}\"")),
        "{sent}"
    );
    let history = kim.run(["history", "2과"]).success();
    assert!(
        history.contains("혼자 보내는 메시지  ⏳ waiting to send"),
        "{history}"
    );
    let status = kim.run(["status"]).success();
    assert!(
        status.contains("outbox:       1 message(s) no member or relay holds yet"),
        "{status}"
    );
    assert!(status.contains("relays:       none reachable"), "{status}");
    assert!(
        status.contains("last sync:    never since start"),
        "{status}"
    );
    assert!(status.contains("discovery:    none"), "{status}");

    // Lee connects: the waiting message leaves; the first 1:1 message is
    // "sent", not "queued".
    let lee_node = start_on_loopback(&lee, Some(&kim_address));
    wait_for_peers(&kim, 1);
    eventually(30, "the outbox empties", || {
        (kim.run(["--json", "status"]).json()["outbox"] == 0).then_some(())
    });
    let sent = kim
        .run([
            "send",
            "@lee",
            "이준호 주무관님, 잠시 통화 가능하신가요? 🙏",
        ])
        .success();
    assert!(
        sent.starts_with("sent to \"kim & lee\" (direct, 2 members,"),
        "{sent}"
    );
    eventually(30, "lee's delivered receipt", || {
        let history = kim.run(["history", "@lee"]).success();
        history
            .contains("잠시 통화 가능하신가요? 🙏  ✓ delivered to Official lee")
            .then_some(())
    });
    let status = kim.run(["--json", "status"]).json();
    assert!(status["last_sync"].as_u64().is_some(), "{status}");

    // A relay stores what Lee, now away, has not fetched: history names it.
    lee_node.stop();
    let relay = Baro::new(baro_bin(), dir.path().join("relay")).with_passphrase(None);
    enroll_device(
        &operator,
        &relay,
        dir.path(),
        "relay.sejong",
        "행정안전부/현장",
        "relay",
    );
    let relay_node = relay.spawn([
        "relay",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
        "--bootstrap",
        kim_address.as_str(),
    ]);
    eventually(30, "kim reaches the relay", || {
        let status = kim.run(["--json", "status"]).json();
        (status["relays"] == serde_json::json!(["Official relay.sejong"])).then_some(())
    });
    let status = kim.run(["status"]).success();
    assert!(
        status.contains("relays:       Official relay.sejong"),
        "{status}"
    );
    let sent = kim
        .run(["send", "@lee", "부재 중에 남기는 메시지"])
        .success();
    assert!(sent.starts_with("sent to \"kim & lee\""), "{sent}");
    eventually(30, "the relay's stored receipt", || {
        let history = kim.run(["history", "@lee"]).success();
        history
            .contains("부재 중에 남기는 메시지  ✓ stored by Official relay.sejong")
            .then_some(())
    });
    let json = kim.run(["--json", "history", "@lee"]).json();
    let stored = json
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["text"] == "부재 중에 남기는 메시지")
        .expect("the message")
        .clone();
    assert_eq!(stored["progress"], "stored_by_relay", "{stored}");

    // Kim listens through the relay too; once the relay is gone, neither
    // it nor its relayed address is shown any more.
    let circuits = |status: &serde_json::Value| {
        status["listen"].as_array().map_or(0, |l| {
            l.iter()
                .filter(|a| a.as_str().is_some_and(|a| a.contains("/p2p-circuit")))
                .count()
        })
    };
    // (Kim asks a relay she dialled for a circuit: restart her towards it.)
    let relay_address = listen_address(&relay);
    kim_node.stop();
    let kim_node = start_on_loopback(&kim, Some(&relay_address));
    listen_address(&kim);
    eventually(30, "a relayed address", || {
        (circuits(&kim.run(["--json", "status"]).json()) > 0).then_some(())
    });
    relay_node.stop();
    eventually(30, "the relay and its address gone from status", || {
        let status = kim.run(["--json", "status"]).json();
        (circuits(&status) == 0 && status["relays"] == serde_json::json!([])).then_some(())
    });
    drop(kim_node);
}

/// Findings 29 and 30: a second revocation of a device already revoked was
/// taken and waited forever; revocation lists named peers by id fragments;
/// the owner's other devices were not told.
#[test]
fn a_revoked_device_is_not_revoked_twice_and_its_owner_is_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, [lee]) = agency_with(dir.path(), DIVISION, ["lee"]);
    // Kim's PC and phone, named 김민지 and labelled.
    let official = |home: &str, label: &str| {
        enroll_labelled(
            &operator,
            dir.path(),
            home,
            ("kim", "김민지", DIVISION),
            label,
        )
    };
    let (pc, _) = official("kim-pc", "PC");
    let (phone, phone_id) = official("kim-phone", "휴대폰");
    let _console = start_on_loopback(&operator, None);
    let bootstrap = listen_address(&operator);
    let _pc_node = start_on_loopback(&pc, Some(&bootstrap));
    let mut phone_node = start_on_loopback(&phone, Some(&bootstrap));
    let _lee_node = start_on_loopback(&lee, Some(&bootstrap));
    wait_for_peers(&operator, 3);
    eventually(30, "the pc has met the phone", || {
        let peers = pc.run(["--json", "peers"]).json();
        peers
            .as_array()?
            .iter()
            .any(|p| p["device"] == phone_id.as_str())
            .then_some(())
    });
    let pc_watch = pc.spawn(["watch"]);

    operator
        .run([
            "agency",
            "revoke",
            "--device",
            &phone_id,
            "--reason",
            "테스트 회수",
            "--wipe",
        ])
        .success();
    phone_node
        .wait_exit(30)
        .unwrap_or_else(|| panic!("the phone wiped: {}", phone_node.log()));

    // Kim's PC says one of her devices was revoked: in `watch` and `status`.
    let short = &phone_id[phone_id.len() - 8..];
    eventually(30, "the pc's watch tells kim", || {
        pc_watch
            .log()
            .contains("! one of your devices was revoked: ")
            .then_some(())
    });
    let status = pc.run(["status"]).success();
    assert!(
        status.contains("revoked:      one of your devices was revoked: ")
            && status.contains("by operator park")
            && status.contains("테스트 회수"),
        "{status}"
    );
    assert!(
        status.contains(&format!("was revoked: 휴대폰 ({short}) by operator park")),
        "{status}"
    );

    // Revoking it again adds nothing, from the PC or the console.
    pc.run(["device", "revoke", &phone_id, "--reason", "분실"])
        .fails_with(&format!(
            "device {short} (휴대폰) of kim (김민지) is already revoked by operator park"
        ));
    operator
        .run([
            "agency", "revoke", "--device", &phone_id, "--reason", "다시", "--wipe",
        ])
        .fails_with("nothing was added");
    let listed = operator.run(["--json", "agency", "revocations"]).json();
    assert_eq!(listed.as_array().expect("list").len(), 1, "{listed}");

    // Holders are named by who they are.
    let plain = eventually(30, "holders named", || {
        let plain = operator.run(["agency", "revocations"]).success();
        (plain.contains("Official lee (lee, ") && plain.contains("김민지 (PC) (kim, "))
            .then_some(plain)
    });
    assert!(
        plain.contains(&format!(
            "device {short} (휴대폰) of 김민지 (kim), by operator park"
        )),
        "{plain}"
    );
}

/// Finding 20: with its relay down, a node said nothing about the bootstrap
/// address it could not reach.
#[test]
fn a_node_says_when_its_bootstrap_address_does_not_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, [kim]) = agency_with(dir.path(), DIVISION, ["kim"]);
    // A port nobody listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let address = format!("/ip4/127.0.0.1/tcp/{port}");
    let node = start_on_loopback(&kim, Some(&address));
    let line = eventually(30, "the unreachable bootstrap line", || {
        node.log()
            .lines()
            .find(|l| l.starts_with(&format!("bootstrap {address} does not answer (")))
            .map(str::to_string)
    });
    assert!(line.contains("keeps trying"), "{line}");
    let status = kim.run(["status"]).success();
    assert!(status.contains("relays:       none reachable"), "{status}");
    assert_eq!(
        node.log().matches("does not answer").count(),
        1,
        "one line, not one per dial: {}",
        node.log()
    );
}

/// Finding 20: after its relay restarted, a device took about 30 s (the
/// discovery period) to reconnect, and said nothing meanwhile.
#[test]
fn a_device_finds_its_relay_again_within_seconds_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, [kim]) = agency_with(dir.path(), DIVISION, ["kim"]);
    let relay = Baro::new(baro_bin(), dir.path().join("relay")).with_passphrase(None);
    enroll_device(
        &operator,
        &relay,
        dir.path(),
        "relay.sejong",
        "행정안전부/현장",
        "relay",
    );
    // A fixed port, so the relay comes back where the device looks for it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let address = format!("/ip4/127.0.0.1/tcp/{port}");
    let start_relay = || relay.spawn(["relay", "--listen", &address, "--no-mdns"]);
    let relay_node = start_relay();
    listen_address(&relay);
    let kim_node = start_on_loopback(&kim, Some(&address));
    let relay_reachable = |reachable: bool| {
        let status = kim.run(["--json", "status"]);
        (status.output.status.success()
            && (status.json()["relays"] == serde_json::json!(["Official relay.sejong"]))
                == reachable)
            .then_some(())
    };
    eventually(30, "kim reaches the relay", || relay_reachable(true));

    relay_node.stop();
    eventually(30, "kim sees the relay gone", || relay_reachable(false));
    eventually(10, "kim says the relay does not answer", || {
        kim_node
            .log()
            .contains(&format!("bootstrap {address} does not answer"))
            .then_some(())
    });
    let _relay_node = start_relay();
    // Well within the 30 s discovery period.
    eventually(10, "kim finds the relay again", || relay_reachable(true));
}
