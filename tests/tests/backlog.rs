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

/// Groups Kim created while Lee was away, across restarts of Kim's node,
/// each with messages: Lee, once it appears, must join every one and read
/// every message (the 1,000-round crash soak found a group Lee never joined).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_device_joins_every_group_made_while_it_was_away() {
    const GROUPS: usize = 8;
    const PER_GROUP: usize = 40;
    let mut agency = TestAgency::new(92);
    let (kim_credentials, lee_credentials) = (agency.member("kim"), agency.member("lee"));
    let kim_store = Arc::new(MemoryStore::new());
    // Kim and Lee met once before Lee went away: Kim can name Lee in a
    // group (a user she never met would be refused).
    {
        let kim = agency.spawn_with_store(kim_credentials.clone(), &[], kim_store.clone());
        let bootstrap = [listen_address(&kim).await.expect("kim listens")];
        let lee = agency.spawn(lee_credentials.clone(), &bootstrap);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !kim
            .handle()
            .known_people()
            .await
            .is_ok_and(|known| known.people.iter().any(|p| p.user == "lee"))
        {
            assert!(tokio::time::Instant::now() < deadline, "kim never met lee");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        lee.shutdown().await;
        kim.shutdown().await;
    }
    let mut groups = Vec::new();
    for batch in 0..GROUPS {
        let kim = agency.spawn_with_store(kim_credentials.clone(), &[], kim_store.clone());
        let name = format!("crash batch {batch}");
        let group = kim
            .handle()
            .create_group(&name, vec!["lee".into()])
            .await
            .expect("group");
        for i in 0..PER_GROUP {
            kim.handle()
                .send(&group.id, &format!("{name} message {i}"))
                .await
                .expect("send");
        }
        groups.push(group.id);
        kim.shutdown().await;
    }
    let kim = agency.spawn_with_store(kim_credentials, &[], kim_store);
    let bootstrap = [listen_address(&kim).await.expect("kim listens")];
    let lee = agency.spawn(lee_credentials, &bootstrap);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut complete = 0;
        for group in &groups {
            if let Ok(history) = lee.handle().history(group, 1_000).await
                && history.len() == PER_GROUP
            {
                complete += 1;
            }
        }
        if complete == GROUPS {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let rooms = lee.handle().rooms().await.expect("rooms");
            panic!(
                "Lee has {complete} of {GROUPS} groups complete; its rooms: {:?}",
                rooms
                    .iter()
                    .map(|r| (&r.name, r.can_send))
                    .collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
