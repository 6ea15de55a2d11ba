//! Acknowledged means durable, with the real `baro` binary: a node killed
//! with SIGKILL at random moments keeps every message it answered `sent`
//! for, exactly once and still queued, and delivers each exactly once to the
//! first peer it meets. Also killed in the middle of a sync, of group changes
//! (with their key rotations) and of revocations: on restart the node is
//! consistent.
//!
//! `BARO_CRASH_ROUNDS` sets the rounds of the first test (default 20),
//! `BARO_CRASH_MIN_MS` and `BARO_CRASH_MAX_MS` the window of the kill after
//! the node answers (default 20 to 400 ms);
//! `tests/crash-soak.sh` runs it with 1,000 rounds.

use baro_node::api::{self, Request, Response};
use baro_tests::crash::{
    assert_each_once, history, random_below, sends_until_killed, start_alone, wait_until_answering,
};
use baro_tests::{
    Baro, agency_with, baro_bin, enroll_device, eventually, init_agency, introduce, listen_address,
    start_on_loopback,
};

const ROOM: &str = "MOIS/Division 2";

/// An agency with two officials of one division, Kim and Lee.
/// Kim and Lee have met once, so each can name the other in a group.
fn agency(dir: &std::path::Path) -> (Baro, Baro, Baro) {
    let (operator, [kim, lee]) = agency_with(dir, ROOM, ["kim", "lee"]);
    introduce(&[&kim, &lee]);
    (operator, kim, lee)
}

fn rounds() -> usize {
    std::env::var("BARO_CRASH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

/// Rounds whose messages go to one room, unless `BARO_CRASH_ROUNDS_PER_ROOM`
/// says otherwise: a room's history is read whole, in one answer of at most
/// 1 MiB (about 2,000 messages).
fn rounds_per_room() -> usize {
    std::env::var("BARO_CRASH_ROUNDS_PER_ROOM")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
}

/// A new group of Kim and Lee, made while Kim's node runs alone; its id.
fn new_group(kim: &Baro, name: &str) -> String {
    let node = start_alone(kim);
    let created = ask(
        kim.home(),
        &Request::CreateRoom {
            name: name.into(),
            members: vec!["lee".into()],
        },
    );
    let Some(Response::Room(room)) = created else {
        panic!("no group: {created:?}");
    };
    assert!(node.stop(), "kim stops cleanly");
    room.id
}

/// Whether `home`'s history of `room` holds every text of `expected`; if
/// not, why (the room unknown there, or how many are missing).
fn holds_all(home: &std::path::Path, room: &str, expected: &[String]) -> Result<(), String> {
    let request = Request::History {
        room: room.into(),
        limit: baro_node::net::MAX_HISTORY,
    };
    let messages = match api::request(home, &request) {
        Ok(Response::History(messages)) => messages,
        Ok(other) => return Err(format!("history answered {other:?}")),
        Err(e) => return Err(format!("no history: {e}")),
    };
    let texts: std::collections::HashSet<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|text| !texts.contains(text.as_str()))
        .collect();
    match missing.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} of {} held, {} missing, the first {first:?}",
            messages.len(),
            expected.len(),
            missing.len()
        )),
    }
}

#[test]
fn no_acknowledged_message_is_lost_when_the_node_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, lee) = agency(dir.path());
    let rounds = rounds();
    // The latest kill after the node answers (a shorter window keeps long
    // soaks to fewer messages per round).
    let env_ms = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(default)
    };
    let (min_ms, max_ms) = (
        env_ms("BARO_CRASH_MIN_MS", 20),
        env_ms("BARO_CRASH_MAX_MS", 400),
    );
    // Per room: its id and the texts acknowledged in it.
    let mut rooms: Vec<(String, Vec<String>)> = Vec::new();
    let per_room = rounds_per_room();
    for round in 0..rounds {
        if round % per_room == 0 {
            let room = match round {
                0 => ROOM.to_string(),
                _ => new_group(&kim, &format!("crash batch {}", round / per_room)),
            };
            rooms.push((room, Vec::new()));
        }
        let (room, acknowledged) = rooms.last_mut().expect("a room");
        let sent = sends_until_killed(&kim, room, &format!("round {round}"), min_ms, max_ms);
        acknowledged.extend(sent);
        if round % 50 == 49 {
            let total: usize = rooms.iter().map(|(_, sent)| sent.len()).sum();
            eprintln!("{} rounds, {total} messages acknowledged", round + 1);
        }
    }
    let total: usize = rooms.iter().map(|(_, sent)| sent.len()).sum();
    assert!(
        total >= rounds,
        "the client got only {total} answers in {rounds} rounds"
    );

    // Back up, alone: everything acknowledged is there once, still queued.
    let kim_node = start_alone(&kim);
    for (room, acknowledged) in &rooms {
        let held = history(kim.home(), room);
        assert_each_once(&held, acknowledged);
        let acknowledged: std::collections::HashSet<&String> = acknowledged.iter().collect();
        let sent_but_not_queued: Vec<&String> = held
            .iter()
            .filter(|(text, queued)| !queued && acknowledged.contains(text))
            .map(|(text, _)| text)
            .collect();
        assert!(
            sent_but_not_queued.is_empty(),
            "messages that never left are not queued: {sent_but_not_queued:?}"
        );
    }
    eprintln!("{rounds} kills: {total} messages acknowledged, 0 lost");

    // Lee appears and receives each of them exactly once.
    let kim_address = listen_address(&kim);
    let _lee_node = start_on_loopback(&lee, Some(&kim_address));
    wait_until_answering(lee.home());
    for (room, acknowledged) in &rooms {
        let patience = 120 + acknowledged.len() as u64 / 50;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(patience);
        while let Err(why) = holds_all(lee.home(), room, acknowledged) {
            assert!(
                std::time::Instant::now() < deadline,
                "lee did not receive every acknowledged message of {room}: {why}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_each_once(&history(lee.home(), room), acknowledged);
    }
    eprintln!("lee received each of the {total} messages once");
    drop(kim_node);
}

/// Sends one request and expects it to be carried out; `None` if the node
/// died under it (then it was never acknowledged).
fn ask(home: &std::path::Path, request: &Request) -> Option<Response> {
    match api::request(home, request) {
        Ok(response) => Some(response),
        Err(api::ApiError::Node(e)) => panic!("{request:?} failed: {e}"),
        Err(_) => None,
    }
}

#[test]
fn groups_changed_and_rekeyed_when_killed_are_consistent_on_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, _lee) = agency(dir.path());
    // Acknowledged groups, with whether Lee is in them: `None` while a
    // change is in flight (either outcome is right if the kill comes then).
    let mut groups: Vec<(String, Option<bool>)> = Vec::new();
    for round in 0..8 {
        let mut node = start_alone(&kim);
        let home = kim.home().to_path_buf();
        let client = std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let name = format!("project {round}-{i}");
                let create = Request::CreateRoom {
                    name: name.clone(),
                    members: vec!["lee".into()],
                };
                if ask(&home, &create).is_none() {
                    break;
                }
                acknowledged.push((name.clone(), Some(true)));
                // Removing Lee moves the group to a new key.
                let remove = Request::Remove {
                    room: name.clone(),
                    user: "lee".into(),
                };
                if let Some(last) = acknowledged.last_mut() {
                    last.1 = None;
                }
                if ask(&home, &remove).is_none() {
                    break;
                }
                if let Some(last) = acknowledged.last_mut() {
                    last.1 = Some(false);
                }
            }
            acknowledged
        });
        std::thread::sleep(std::time::Duration::from_millis(50 + random_below(400)));
        node.kill9();
        groups.extend(client.join().expect("client"));
    }
    assert!(!groups.is_empty(), "no group change was acknowledged");

    let _node = start_alone(&kim);
    let Some(Response::Rooms(rooms)) = ask(kim.home(), &Request::Rooms) else {
        panic!("no room list");
    };
    for (name, lee_in) in &groups {
        let room = rooms
            .iter()
            .find(|r| &r.name == name)
            .unwrap_or_else(|| panic!("acknowledged group '{name}' is gone"));
        if let Some(lee_in) = lee_in {
            assert_eq!(
                room.members.iter().any(|m| m == "lee"),
                *lee_in,
                "group '{name}' lost an acknowledged membership change: {room:?}"
            );
        }
        // Its key is there: Kim can write to it at once.
        let sent = ask(
            kim.home(),
            &Request::Send {
                room: room.id.clone(),
                text: "still here".into(),
            },
        );
        assert!(
            matches!(sent, Some(Response::Sent(_))),
            "group '{name}' has no key after the crash"
        );
    }
}

#[test]
fn a_node_killed_in_the_middle_of_a_sync_ends_up_with_each_message_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, lee) = agency(dir.path());
    // Lee writes while alone: everything waits for Kim.
    let lee_node = start_alone(&lee);
    let written: Vec<String> = (0..300).map(|i| format!("field report {i}")).collect();
    for text in &written {
        let sent = ask(
            lee.home(),
            &Request::Send {
                room: ROOM.into(),
                text: text.clone(),
            },
        );
        assert!(matches!(sent, Some(Response::Sent(_))), "{sent:?}");
    }
    let lee_address = listen_address(&lee);
    // Kim catches up, killed again and again part-way.
    let mut partial = Vec::new();
    for _ in 0..6 {
        let mut kim_node = start_on_loopback(&kim, Some(&lee_address));
        wait_until_answering(kim.home());
        std::thread::sleep(std::time::Duration::from_millis(random_below(1500)));
        kim_node.kill9();
        // What a killed sync left must already be consistent.
        let node = start_alone(&kim);
        let held = history(kim.home(), ROOM);
        assert_each_once(&held, &[]);
        partial.push(held.len());
        drop(node);
    }
    let _kim_node = start_on_loopback(&kim, Some(&lee_address));
    wait_until_answering(kim.home());
    eventually(120, "kim caught up", || {
        (history(kim.home(), ROOM).len() >= written.len()).then_some(())
    });
    let held = history(kim.home(), ROOM);
    assert_each_once(&held, &written);
    assert_eq!(held.len(), written.len(), "nothing but Lee's messages");
    eprintln!("messages held after each killed sync: {partial:?}");
    drop(lee_node);
}

#[test]
fn revocations_acknowledged_before_a_kill_are_enforced_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.path().join("console"));
    init_agency(&operator, "MOIS");
    // Kim's PC and four phones, each enrolled in its own folder.
    let devices: Vec<(Baro, String)> = ["pc", "phone1", "phone2", "phone3", "phone4"]
        .iter()
        .map(|name| {
            let device = Baro::new(&bin, dir.path().join(name)).with_passphrase(None);
            let files = dir.path().join(format!("{name}.files"));
            std::fs::create_dir(&files).expect("files dir");
            let me = enroll_device(&operator, &device, &files, "kim", ROOM, "member");
            let id = me["device_id"].as_str().expect("device id").to_string();
            (device, id)
        })
        .collect();
    let ((pc, _), phones) = devices.split_first().expect("devices");
    // The PC meets every phone once, so it can name them.
    let pc_node = start_alone(pc);
    let pc_address = listen_address(pc);
    let phone_nodes: Vec<_> = phones
        .iter()
        .map(|(phone, _)| start_on_loopback(phone, Some(&pc_address)))
        .collect();
    eventually(60, "the pc met every phone", || {
        match api::request(pc.home(), &Request::Status) {
            Ok(Response::Status(status)) => (status.devices_met >= phones.len()).then_some(()),
            _ => None,
        }
    });
    drop(phone_nodes);
    assert!(pc_node.stop(), "the pc stops cleanly");

    // Each phone is revoked from the PC, which is killed at a random moment
    // around the answer (every other round: the moment it answered).
    let mut acknowledged = Vec::new();
    for (round, (_, phone_id)) in phones.iter().enumerate() {
        let mut node = start_alone(pc);
        let home = pc.home().to_path_buf();
        let device = phone_id.clone();
        let client = std::thread::spawn(move || {
            let request = Request::RevokeOwnDevice {
                device,
                reason: "lost on the train".into(),
            };
            match api::request(&home, &request) {
                Ok(Response::Revocation(view)) => Ok(Some(view.id)),
                Ok(other) => Err(format!("revoking failed: {other:?}")),
                Err(api::ApiError::Node(e)) => Err(format!("revoking failed: {e}")),
                Err(_) => Ok(None),
            }
        });
        let answered = if round % 2 == 1 {
            let answered = client.join().expect("client");
            node.kill9();
            answered
        } else {
            std::thread::sleep(std::time::Duration::from_millis(random_below(15)));
            node.kill9();
            client.join().expect("client")
        };
        let answered = answered
            .unwrap_or_else(|e| panic!("round {round}: {e}\nthe pc's log:\n{}", node.log()));
        assert!(
            round % 2 == 0 || answered.is_some(),
            "the revocation was answered"
        );
        acknowledged.extend(answered);
    }

    let _node = start_alone(pc);
    let Some(Response::Revocations(enforced)) = ask(pc.home(), &Request::Revocations) else {
        panic!("no revocation list");
    };
    for id in &acknowledged {
        assert_eq!(
            enforced.iter().filter(|r| &r.id == id).count(),
            1,
            "acknowledged revocation {id} is not enforced once: {enforced:?}"
        );
    }
    eprintln!(
        "{} of {} revocations acknowledged before the kill; all enforced after",
        acknowledged.len(),
        phones.len()
    );
}
