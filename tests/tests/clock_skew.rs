//! Audit M4 over a real in-process mesh: whether an item is valid can
//! depend on a node's own state (here its clock). Such a refusal must
//! neither stick (the item arrives once the clock is right) nor cost the
//! honest peer that passed the item on.

use std::sync::Arc;

use baro_node::clock::{Clock, ManualClock};
use baro_node::net::TransportKind;
use baro_node::store::MemoryStore;
use baro_node::trust::RevocationScope;
use baro_node::{NodeBuilder, NodeEvent};
use baro_tests::mesh::{SETTLE, TestAgency, listen_address, memory_config, wait_for};

/// Publishes `bytes` on the control topic from `node`, once a peer is
/// subscribed to hear it.
async fn publish_until_sent(node: &baro_node::Node, bytes: &[u8]) {
    for _ in 0..200 {
        if node.handle().publish_raw(bytes.to_vec()).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("could not publish");
}

/// Ten minutes: twice the clock skew a revocation may have.
const AHEAD_SECS: u64 = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_from_a_fast_clock_arrives_once_the_slow_clock_catches_up_and_costs_nobody() {
    let mut agency = TestAgency::new(171);
    let fast_credentials = agency.member("fast");
    let slow_credentials = agency.member("slow");
    let early = agency.member("early");
    let lost = agency.member("lost");
    // Revokes `early` at the slow side's time: valid everywhere.
    let in_time = agency.revocation(&early.chain, RevocationScope::Device, "broken", false);

    // The fast node runs on the agency clock, set 10 minutes ahead of the
    // slow node's own clock.
    let slow_clock = ManualClock::new(agency.clock.now());
    agency.clock.advance(AHEAD_SECS);
    let fast = agency.spawn(fast_credentials, &[]);
    let address = listen_address(&fast).await.expect("listening");
    let slow = NodeBuilder::new(slow_credentials)
        .config(memory_config(std::slice::from_ref(&address)))
        .transport(TransportKind::Memory)
        .clock(Arc::new(slow_clock.clone()))
        .store(Arc::new(MemoryStore::new()))
        .spawn()
        .expect("slow node starts");
    slow.handle()
        .wait_for_peers(1, SETTLE)
        .await
        .expect("the two admit each other");
    let mut slow_events = slow.handle().events();

    // The fast side's operator revokes a lost phone: issued 10 minutes
    // ahead of the slow clock. The fast node passes it on by gossip; then
    // it takes one revocation valid for both, which the slow node gets by
    // gossip or sync (after judging the first).
    let ahead = agency.revocation(&lost.chain, RevocationScope::Device, "lost", true);
    publish_until_sent(&fast, &ahead).await;
    fast.handle()
        .submit_revocation(in_time)
        .await
        .expect("the fast side takes the one in time");
    wait_for(
        &mut slow_events,
        "the revocation in time",
        |event| match event {
            NodeEvent::Revoked(view) if view.reason == "broken" => Some(()),
            _ => None,
        },
    )
    .await;
    let revoked = |views: Vec<baro_node::revocations::RevocationView>| {
        views.iter().map(|v| v.reason.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        revoked(slow.handle().revocations().await.expect("revocations")),
        ["broken"],
        "the future-dated one is not taken on a slow clock"
    );
    // The fast node passed on an item the slow one cannot judge yet: it is
    // not penalised, nor cut off.
    let score = slow
        .handle()
        .peer_score(fast.handle().device())
        .await
        .expect("score")
        .unwrap_or(0.0);
    assert!(score >= 0.0, "honest forwarder penalised: score {score}");
    assert!(slow.handle().blocked().await.expect("blocked").is_empty());

    // The fast node holds it too (for sync).
    fast.handle()
        .submit_revocation(ahead)
        .await
        .expect("the fast side takes its own revocation");

    // Sync on the slow clock: still refused (and remembered for a while).
    slow.handle().sync_now().await.expect("sync");
    wait_for(&mut slow_events, "a sync round", |event| {
        matches!(event, NodeEvent::Synced(_)).then_some(())
    })
    .await;
    assert_eq!(
        revoked(slow.handle().revocations().await.expect("revocations")),
        ["broken"]
    );

    // The slow clock is put right: the next round brings the revocation.
    slow_clock.advance(AHEAD_SECS);
    slow.handle().sync_now().await.expect("sync");
    wait_for(
        &mut slow_events,
        "the revocation from the fast side",
        |event| match event {
            NodeEvent::Revoked(view) if view.reason == "lost" => Some(()),
            _ => None,
        },
    )
    .await;
    let peers = slow.handle().peers().await.expect("peers");
    assert_eq!(peers.len(), 1, "still connected to the fast node");

    slow.shutdown().await;
    fast.shutdown().await;
}
