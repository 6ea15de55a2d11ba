//! Acknowledged means durable, with the real `baro` binary: a node killed
//! with SIGKILL at random moments keeps every message it answered `sent`
//! for, exactly once and still queued, and delivers each exactly once to the
//! first peer it meets. Also killed in the middle of a sync, of group changes
//! (with their key rotations) and of revocations: on restart the node is
//! consistent.
//!
//! `BARO_CRASH_ROUNDS` sets the rounds of the first test (default 20);
//! `tests/crash-soak.sh` runs it with 1,000.

use baro_node::api::{self, Request, Response};
use baro_tests::crash::{
    assert_each_once, history, random_below, sends_until_killed, start_alone, wait_until_answering,
};
use baro_tests::{Baro, baro_bin, enroll_device, eventually, init_agency};

const ROOM: &str = "MOIS/Division 2";

fn listen_address(device: &Baro) -> String {
    eventually(30, "node listening", || {
        match api::request(device.home(), &Request::Status) {
            Ok(Response::Status(status)) => status.listen.first().cloned(),
            _ => None,
        }
    })
}

/// An agency with two officials of one division, Kim and Lee.
fn agency(dir: &std::path::Path) -> (Baro, Baro, Baro) {
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.join("console"));
    init_agency(&operator, "MOIS");
    let [kim, lee] = ["kim", "lee"].map(|user| {
        let device = Baro::new(&bin, dir.join(user)).with_passphrase(None);
        enroll_device(&operator, &device, dir, user, ROOM, "member");
        device
    });
    (operator, kim, lee)
}

fn rounds() -> usize {
    std::env::var("BARO_CRASH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

#[test]
fn no_acknowledged_message_is_lost_when_the_node_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, lee) = agency(dir.path());
    let rounds = rounds();
    let mut acknowledged = Vec::new();
    for round in 0..rounds {
        let sent = sends_until_killed(&kim, ROOM, &format!("round {round}"), 20, 400);
        acknowledged.extend(sent);
        if round % 50 == 49 {
            eprintln!(
                "{} rounds, {} messages acknowledged",
                round + 1,
                acknowledged.len()
            );
        }
    }
    assert!(
        acknowledged.len() >= rounds,
        "the client got only {} answers in {rounds} rounds",
        acknowledged.len()
    );

    // Back up, alone: everything acknowledged is there once, still queued.
    let kim_node = start_alone(&kim);
    let held = history(kim.home(), ROOM);
    assert_each_once(&held, &acknowledged);
    let sent_but_not_queued: Vec<&String> = held
        .iter()
        .filter(|(_, queued)| !queued)
        .map(|(text, _)| text)
        .collect();
    assert!(
        sent_but_not_queued.is_empty(),
        "messages that never left are not queued: {sent_but_not_queued:?}"
    );
    eprintln!(
        "{rounds} kills: {} messages acknowledged, 0 lost",
        acknowledged.len()
    );

    // Lee appears and receives each of them exactly once.
    let kim_address = listen_address(&kim);
    let _lee_node = lee.spawn([
        "run",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
        "--sync-interval",
        "1",
        "--bootstrap",
        kim_address.as_str(),
    ]);
    wait_until_answering(lee.home());
    eventually(120, "lee received every acknowledged message", || {
        let held = api::request(
            lee.home(),
            &Request::History {
                room: ROOM.into(),
                limit: baro_node::net::MAX_HISTORY,
            },
        );
        let Ok(Response::History(messages)) = held else {
            return None;
        };
        let texts: std::collections::HashSet<&str> =
            messages.iter().map(|m| m.text.as_str()).collect();
        acknowledged
            .iter()
            .all(|text| texts.contains(text.as_str()))
            .then_some(())
    });
    let at_lee: Vec<(String, bool)> = history(lee.home(), ROOM);
    assert_each_once(&at_lee, &acknowledged);
    drop(kim_node);
}

/// Sends one request and expects it to be carried out; `None` if the node
/// died under it (then it was never acknowledged).
fn ask(home: &std::path::Path, request: &Request) -> Option<Response> {
    match api::request(home, request) {
        Ok(Response::Error(e)) => panic!("{request:?} failed: {e}"),
        Ok(response) => Some(response),
        Err(_) => None,
    }
}

#[test]
fn groups_changed_and_rekeyed_when_killed_are_consistent_on_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, _lee) = agency(dir.path());
    // Acknowledged groups, with whether Lee was last acknowledged in them.
    let mut groups: Vec<(String, bool)> = Vec::new();
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
                acknowledged.push((name.clone(), true));
                // Removing Lee moves the group to a new key.
                let remove = Request::Remove {
                    room: name.clone(),
                    user: "lee".into(),
                };
                if ask(&home, &remove).is_none() {
                    break;
                }
                if let Some(last) = acknowledged.last_mut() {
                    last.1 = false;
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
        assert_eq!(
            room.members.iter().any(|m| m == "lee"),
            *lee_in,
            "group '{name}' lost an acknowledged membership change: {room:?}"
        );
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
