//! Negentropy messages (the bytes inside a sync `Reconcile` request or
//! response): a responder answers them against its set, an initiator takes
//! them as the reply to its first message and, if it goes on, its next
//! message is answered too. The first input byte picks the sets.
#![no_main]

use baro_fuzz::fixture;
use baro_node::sync::{Reconciler, Step, SyncItem, respond};
use libfuzzer_sys::fuzz_target;

/// One of four subsets of the fixture's items, so the two sides differ.
fn subset(which: u8) -> Vec<SyncItem> {
    fixture()
        .items
        .iter()
        .enumerate()
        .filter(|(i, _)| match which & 3 {
            0 => true,
            1 => i % 2 == 0,
            2 => i % 3 != 0,
            _ => false,
        })
        .map(|(_, item)| *item)
        .collect()
}

fuzz_target!(init: baro_fuzz::tolerate_negentropy_panics(), |data: &[u8]| {
    let Some((&sets, message)) = data.split_first() else {
        return;
    };
    let (ours, theirs) = (subset(sets), subset(sets >> 2));
    let _ = respond(ours.iter().copied(), message);
    let (mut reconciler, _first) =
        Reconciler::initiate(ours.iter().copied()).expect("initiate on a valid set");
    if let Ok(Step::Continue(next)) = reconciler.step(message) {
        assert!(next.len() <= baro_node::sync::MAX_RECONCILE_MESSAGE + 1024);
        if let Ok(reply) = respond(theirs.iter().copied(), &next) {
            let _ = reconciler.step(&reply);
        }
    }
});
