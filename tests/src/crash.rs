//! Crash rounds against a real `baro run`: a client sends through the
//! control socket while the node is killed with SIGKILL at a random moment;
//! every message the node answered `sent` for must survive.
//!
//! Used by `tests/tests/crash.rs` (20 rounds) and by `tests/crash-soak.sh`
//! (any number, `BARO_CRASH_ROUNDS`).

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use baro_node::api::{self, Request, Response};

use crate::{Baro, RunningNode, eventually, start_on_loopback};

/// A number below `bound`, different on every call (the kill moments).
pub fn random_below(bound: u64) -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(bound);
    hasher.finish() % bound.max(1)
}

/// Starts `baro run` on loopback, alone, and waits until its control socket answers.
pub fn start_alone(device: &Baro) -> RunningNode {
    let node = start_on_loopback(device, None);
    wait_until_answering(device.home());
    node
}

/// Waits until the node on `home` answers a status request.
pub fn wait_until_answering(home: &Path) {
    eventually(60, "the node answering on its control socket", || {
        api::request(home, &Request::Status).ok().map(|_| ())
    });
}

/// One crash round: a client sends `prefix-N` texts to `room` one after the
/// other until the node is killed, between `min_ms` and `max_ms` after it
/// answered. Returns the texts it acknowledged, in order.
pub fn sends_until_killed(
    device: &Baro,
    room: &str,
    prefix: &str,
    min_ms: u64,
    max_ms: u64,
) -> Vec<String> {
    let mut node = start_alone(device);
    let killed = Arc::new(AtomicBool::new(false));
    let client = {
        let home: PathBuf = device.home().to_path_buf();
        let (room, prefix, killed) = (room.to_string(), prefix.to_string(), killed.clone());
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let text = format!("{prefix}-{i}");
                let request = Request::Send {
                    room: room.clone(),
                    text: text.clone(),
                };
                match api::request(&home, &request) {
                    Ok(Response::Sent(_)) => acknowledged.push(text),
                    Ok(other) => panic!("unexpected answer to a send: {other:?}"),
                    // The node died under us: this one was never acknowledged.
                    Err(_) if killed.load(Ordering::SeqCst) => break,
                    Err(e) => panic!("a send failed while the node ran: {e}"),
                }
            }
            acknowledged
        })
    };
    std::thread::sleep(Duration::from_millis(
        min_ms + random_below(max_ms.saturating_sub(min_ms) + 1),
    ));
    killed.store(true, Ordering::SeqCst);
    node.kill9();
    client.join().expect("the client thread")
}

/// The node's history of `room` as (text, queued) pairs, oldest first.
pub fn history(home: &Path, room: &str) -> Vec<(String, bool)> {
    let request = Request::History {
        room: room.to_string(),
        limit: baro_node::net::MAX_HISTORY,
    };
    match api::request(home, &request) {
        Ok(Response::History(messages)) => messages
            .into_iter()
            .map(|message| (message.text, message.queued))
            .collect(),
        other => panic!("history failed: {other:?}"),
    }
}

/// Checks that every acknowledged text is in `history` exactly once, and that
/// no text (acknowledged or not) is there twice; panics saying which.
pub fn assert_each_once(history: &[(String, bool)], acknowledged: &[String]) {
    let mut counts = std::collections::HashMap::new();
    for (text, _) in history {
        *counts.entry(text.as_str()).or_insert(0usize) += 1;
    }
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|text| !counts.contains_key(text.as_str()))
        .collect();
    let doubled: Vec<(&&str, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        lost.is_empty() && doubled.is_empty(),
        "{} of {} acknowledged messages lost ({:?}...), {} doubled ({:?}...)",
        lost.len(),
        acknowledged.len(),
        lost.iter().take(5).collect::<Vec<_>>(),
        doubled.len(),
        doubled.iter().take(5).collect::<Vec<_>>()
    );
}
