//! A backlog larger than the messenger's bounded buffers: a device that
//! joins late must still end with every message, once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use baro_node::store::MemoryStore;
use baro_tests::mesh::{DIV, TestAgency, listen_address};

/// More than [`baro_node::rooms::MAX_PENDING_PER_ROOM`] envelopes of one room.
const BACKLOG: usize = 1_500;
/// Kim's node restarts this many times while alone.
const RESTARTS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_device_gets_every_message_of_a_backlog_larger_than_the_held_buffers() {
    let mut agency = TestAgency::new(91);
    let (kim_credentials, lee_credentials) = (agency.member("kim"), agency.member("lee"));
    let kim_store = Arc::new(MemoryStore::new());
    // Kim is alone, and restarts now and then: nobody to gossip to,
    // everything waits in the outbox.
    let mut sent = 0;
    for _ in 0..RESTARTS {
        let kim = agency.spawn_with_store(kim_credentials.clone(), &[], kim_store.clone());
        for _ in 0..BACKLOG / RESTARTS {
            kim.handle()
                .send(DIV, &format!("backlog {sent:04}"))
                .await
                .expect("send");
            sent += 1;
        }
        kim.shutdown().await;
    }
    let kim = agency.spawn_with_store(kim_credentials, &[], kim_store);
    let bootstrap = [listen_address(&kim).await.expect("kim listens")];
    let lee = agency.spawn(lee_credentials, &bootstrap);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let history = loop {
        let history = lee.handle().history(DIV, 10_000).await.unwrap_or_default();
        if history.len() >= BACKLOG || tokio::time::Instant::now() >= deadline {
            break history;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let texts: BTreeSet<String> = history.iter().map(|m| m.text.clone()).collect();
    let missing: Vec<usize> = (0..BACKLOG)
        .filter(|i| !texts.contains(&format!("backlog {i:04}")))
        .collect();
    assert!(
        missing.is_empty(),
        "held {} of {BACKLOG}, missing {} (first {:?})",
        history.len(),
        missing.len(),
        missing.first()
    );
    let ids: BTreeSet<String> = history.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids.len(), history.len(), "each message once");
    assert_eq!(history.len(), BACKLOG, "nothing else, nothing twice");
}
