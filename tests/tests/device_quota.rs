//! What one member can make a member device keep, over a real in-process
//! mesh (audit H6 on devices): flooding a room with valid, readable
//! messages, she has a colleague's device keep only its per-author quota of
//! hers, her first received going first, and nobody else's message goes.
//! Its own binary: the flood's load would skew the rate-timed tests beside it.

use std::sync::Arc;

use baro_node::store::MemoryStore;
use baro_node::testing::memory_config;
use baro_node::{Node, NodeBuilder, NodeConfig, NodeEvent};
use baro_tests::mesh::{DIV, SETTLE, TestAgency, listen_address, send, wait_for, wait_for_message};

async fn stored_bytes(node: &Node) -> u64 {
    node.handle().status().await.expect("status").stored_bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_flooding_a_room_makes_a_member_device_keep_only_its_quota_of_her_messages() {
    let mut agency = TestAgency::new(168);
    // Kim's device keeps at most 1 MiB of room envelopes per other author.
    let kim_credentials = agency.member("kim");
    let kim = NodeBuilder::new(kim_credentials)
        .config(NodeConfig {
            author_room_mb: 1,
            ..memory_config(&[])
        })
        .transport(baro_node::net::TransportKind::Memory)
        .clock(Arc::new(agency.clock.clone()))
        .store(Arc::new(MemoryStore::new()))
        .spawn()
        .expect("kim starts");
    let address = listen_address(&kim).await.expect("listening");
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    let mallory_credentials = agency.member("mallory");
    let mallory = agency.spawn(mallory_credentials, std::slice::from_ref(&address));
    for node in [&kim, &lee, &mallory] {
        node.handle()
            .wait_for_peers(2, SETTLE)
            .await
            .expect("peers");
    }
    let mut kim_events = kim.handle().events();
    send(&lee, DIV, "the agenda").await;
    wait_for_message(&mut kim_events, "the agenda").await;
    send(&kim, DIV, "noted").await;
    let before = stored_bytes(&kim).await;

    // Mallory writes 25 messages of 50 KB: 1.25 MB of valid, readable junk.
    const JUNK: usize = 25;
    for n in 0..JUNK {
        send(
            &mallory,
            DIV,
            &format!("junk {n:02} {}", "x".repeat(50_000)),
        )
        .await;
    }
    let last = format!("junk {:02} ", JUNK - 1);
    wait_for(
        &mut kim_events,
        "mallory's last message",
        |event| match event {
            NodeEvent::Message(message) if message.text.starts_with(&last) => Some(()),
            _ => None,
        },
    )
    .await;
    let grown = stored_bytes(&kim).await - before;
    assert!(
        grown <= 1 << 20,
        "kim keeps {grown} bytes of mallory's, past her 1 MiB"
    );
    assert!(grown > (1 << 20) - 60_000, "kim keeps {grown} bytes");
    let history = kim.handle().history(DIV, 100).await.expect("history");
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert!(texts.contains(&"the agenda"), "lee's message went");
    assert!(texts.contains(&"noted"), "kim's own went");
    let junk: Vec<&&str> = texts.iter().filter(|t| t.starts_with("junk")).collect();
    assert!(
        junk.len() * 50_000 <= 1 << 20 && junk.len() >= 19,
        "{} of mallory's kept",
        junk.len()
    );
    assert!(
        junk.iter()
            .any(|t| t.starts_with(&format!("junk {:02}", JUNK - 1))),
        "her newest stays, her first received went"
    );
    assert!(!junk.iter().any(|t| t.starts_with("junk 00 ")));
    for node in [kim, lee, mallory] {
        node.shutdown().await;
    }
}
