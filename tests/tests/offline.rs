//! Offline delivery over real in-process meshes: relays store and forward,
//! and peers reconcile what they hold (revocations, control frames, rooms)
//! whenever they meet.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use baro_node::api::MessageView;
use baro_node::node::SyncReport;
use baro_node::store::MemoryStore;
use baro_node::sync::{Reconciler, SyncRequest, SyncResponse, SyncScope};
use baro_node::{Node, NodeEvent};
use baro_tests::mesh::{DIV, SETTLE, TestAgency, listen_address, send, wait_for, wait_for_message};

/// Polls `node`'s history of `room` until it holds `count` messages.
async fn history_of(node: &Node, room: &str, count: usize) -> Vec<MessageView> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let history = node
            .handle()
            .history(room, 10_000)
            .await
            .unwrap_or_default();
        if history.len() >= count || tokio::time::Instant::now() >= deadline {
            return history;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ids(history: &[MessageView]) -> Vec<String> {
    history.iter().map(|m| m.id.clone()).collect()
}

async fn next_sync_with(node: &Node, peer: baro_node::identity::DeviceId) -> SyncReport {
    let mut events = node.handle().events();
    node.handle().sync_now().await.expect("sync");
    wait_for(&mut events, "a sync with the peer", |event| match event {
        NodeEvent::Synced(report) if report.peer == peer => Some(report.clone()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_device_catches_up_through_a_relay_with_every_message_once_in_order() {
    let mut agency = TestAgency::new(51);
    let relay_credentials = agency.relay("relay-seoul");
    let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
    let bootstrap = [listen_address(&relay).await.expect("relay listens")];
    let ahn_credentials = agency.member("ahn");
    let ahn_store = Arc::new(MemoryStore::new());
    let ahn = agency.spawn_with_store(ahn_credentials.clone(), &bootstrap, ahn_store.clone());
    let baek_credentials = agency.member("baek");
    let baek = agency.spawn(baek_credentials, &bootstrap);
    let cho_credentials = agency.member("cho");
    let cho = agency.spawn(cho_credentials, &bootstrap);
    for node in [&relay, &ahn, &baek, &cho] {
        node.handle().wait_for_peers(3, SETTLE).await.expect("mesh");
    }
    let mut ahn_events = ahn.handle().events();
    send(&baek, DIV, "before the trip").await;
    wait_for_message(&mut ahn_events, "before the trip").await;
    ahn.shutdown().await;

    // Ahn is on a train: Baek and Cho talk on.
    for i in 0..200 {
        let node = if i % 2 == 0 { &baek } else { &cho };
        node.handle()
            .send(DIV, &format!("update {i:03}"))
            .await
            .expect("send");
    }
    let expected = history_of(&baek, DIV, 201).await;
    assert_eq!(expected.len(), 201, "Baek has every message");
    // The relay's next reconciliation with Baek leaves it nothing to miss.
    let baek_device = baek.handle().device();
    next_sync_with(&relay, baek_device).await;
    baek.shutdown().await;
    cho.shutdown().await;

    // Ahn is back, and only the relay is there.
    let ahn = agency.spawn_with_store(ahn_credentials, &bootstrap, ahn_store);
    let caught_up = history_of(&ahn, DIV, 201).await;
    assert_eq!(caught_up.len(), 201, "every message arrived");
    assert_eq!(ids(&caught_up), ids(&expected), "same messages, same order");
    let unique: BTreeSet<String> = ids(&caught_up).into_iter().collect();
    assert_eq!(unique.len(), 201, "each exactly once");
    let peers = ahn.handle().peers().await.expect("peers");
    assert_eq!(peers.len(), 1, "only the relay: {peers:?}");
    assert_eq!(peers[0].user_id, "relay-seoul");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_a_device_never_online_at_the_same_time_as_its_sender() {
    let mut agency = TestAgency::new(52);
    let relay_credentials = agency.relay("relay-busan");
    let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
    let bootstrap = [listen_address(&relay).await.expect("relay listens")];

    // Morning: Jung's phone is on for a while, then off.
    let jung_credentials = agency.member("jung");
    let jung_store = Arc::new(MemoryStore::new());
    let jung = agency.spawn_with_store(jung_credentials.clone(), &bootstrap, jung_store.clone());
    jung.handle()
        .wait_for_peers(1, SETTLE)
        .await
        .expect("relay");
    next_sync_with(&relay, jung.handle().device()).await;
    jung.shutdown().await;

    // Noon: Kang writes while Jung is away; the relay introduced Jung's device.
    let kang_credentials = agency.member("kang");
    let kang = agency.spawn(kang_credentials, &bootstrap);
    kang.handle()
        .wait_for_peers(1, SETTLE)
        .await
        .expect("relay");
    next_sync_with(&kang, relay.handle().device()).await;
    send(&kang, DIV, "The minister arrives at 3").await;
    next_sync_with(&relay, kang.handle().device()).await;
    kang.shutdown().await;

    // Evening: Jung is back; Kang is not.
    let jung = agency.spawn_with_store(jung_credentials, &bootstrap, jung_store);
    let history = history_of(&jung, DIV, 1).await;
    assert_eq!(history.len(), 1, "the message arrived through the relay");
    assert_eq!(history[0].text, "The minister arrives at 3");
    assert_eq!(history[0].sender_user, "kang");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_field_offices_converge_after_healing() {
    let mut agency = TestAgency::new(53);
    // Two offices, each a relay and two officials, with no link between them.
    let mut offices = Vec::new();
    for (relay_name, users) in [
        ("relay-seoul", ["ahn", "baek"]),
        ("relay-busan", ["cho", "do"]),
    ] {
        let relay_credentials = agency.relay(relay_name);
        let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
        let address = listen_address(&relay).await.expect("relay listens");
        let devices: Vec<Node> = users
            .iter()
            .map(|user| {
                let credentials = agency.member(user);
                agency.spawn(credentials, std::slice::from_ref(&address))
            })
            .collect();
        for node in devices.iter().chain([&relay]) {
            node.handle()
                .wait_for_peers(2, SETTLE)
                .await
                .expect("office mesh");
        }
        offices.push((relay, address, devices));
    }
    // Both sides chat while cut off from each other.
    for (i, (_, _, devices)) in offices.iter().enumerate() {
        for (j, device) in devices.iter().enumerate() {
            for k in 0..3 {
                send(device, DIV, &format!("office {i} official {j} note {k}")).await;
            }
        }
    }
    for (_, _, devices) in &offices {
        for device in devices {
            assert_eq!(history_of(device, DIV, 6).await.len(), 6);
        }
    }
    // The link between the offices comes back.
    let busan_address = offices[1].1.clone();
    offices[0]
        .0
        .handle()
        .dial(busan_address)
        .await
        .expect("dial");
    let everyone: Vec<&Node> = offices
        .iter()
        .flat_map(|(relay, _, devices)| devices.iter().chain([relay]))
        .collect();
    for node in &everyone {
        node.handle()
            .wait_for_peers(5, SETTLE)
            .await
            .expect("healed mesh");
    }
    let mut histories = Vec::new();
    for (_, _, devices) in &offices {
        for device in devices {
            histories.push(ids(&history_of(device, DIV, 12).await));
        }
    }
    assert_eq!(histories[0].len(), 12, "every note from both offices");
    for history in &histories[1..] {
        assert_eq!(history, &histories[0], "every device, the same history");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_already_in_sync_with_ten_thousand_messages_confirm_it_in_a_few_kib() {
    let mut agency = TestAgency::new(54);
    let kim_credentials = agency.member("kim");
    let lee_credentials = agency.member("lee");
    // 10,000 real envelopes of their department room, stored on both.
    let stores: [Arc<dyn baro_node::store::Store>; 2] =
        [Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new())];
    let count = baro_tests::history::fill_department_history(&kim_credentials, &stores, 10_000);
    assert_eq!(count, 10_000);
    let kim = agency.spawn_with_store(kim_credentials, &[], stores[0].clone());
    let address = listen_address(&kim).await.expect("listens");
    let lee = agency.spawn_with_store(lee_credentials, &[address], stores[1].clone());
    kim.handle().wait_for_peers(1, SETTLE).await.expect("peer");
    let report = next_sync_with(&lee, kim.handle().device()).await;
    assert_eq!(report.fetched, 0, "{report:?}");
    assert!(
        report.scopes.iter().any(|s| s.starts_with("room")),
        "{report:?}"
    );
    let bytes = report.bytes_sent + report.bytes_received;
    assert!(
        bytes < 4096,
        "{bytes} bytes to confirm 10,000 messages: {report:?}"
    );
    assert_eq!(
        lee.handle()
            .history(DIV, 10_000)
            .await
            .expect("history")
            .len(),
        10_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_rejects_invalid_envelopes_and_serves_a_room_to_its_members_only() {
    let mut agency = TestAgency::new(55);
    let relay_credentials = agency.relay("relay-seoul");
    let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
    let bootstrap = [listen_address(&relay).await.expect("relay listens")];
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials.clone(), &bootstrap);
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, &bootstrap);
    // An official of another bureau: certified, admitted, not a member.
    let key = agency.key();
    let chain = agency.certify(
        &key,
        "oh",
        "MOIS/Audit Office",
        baro_node::trust::Role::Member,
        365,
    );
    let outsider = agency.spawn(agency.credentials(key, chain), &bootstrap);
    for node in [&relay, &kim, &lee, &outsider] {
        node.handle().wait_for_peers(3, SETTLE).await.expect("mesh");
    }
    let mut lee_events = lee.handle().events();
    send(&kim, DIV, "budget draft v3").await;
    let message = wait_for_message(&mut lee_events, "budget draft v3").await;
    let room: baro_node::rooms::RoomId = message.room.parse().expect("room id");
    next_sync_with(&relay, kim.handle().device()).await;
    let stored = relay.handle().status().await.expect("status").stored_items;

    // A forged envelope (Kim's, one ciphertext byte flipped) is refused by the relay.
    let original = kim.handle().history(DIV, 1).await.expect("history");
    assert_eq!(original.len(), 1);
    let mut relay_events = relay.handle().events();
    let (forged_room, forged) = baro_tests::history::forged_envelope(&kim_credentials);
    assert_eq!(forged_room, room);
    lee.handle()
        .publish_raw_to_room(room, forged)
        .await
        .expect("publish");
    let reason = wait_for(
        &mut relay_events,
        "the relay's rejection",
        |event| match event {
            NodeEvent::GossipRejected { reason, .. } => Some(reason.clone()),
            _ => None,
        },
    )
    .await;
    assert!(reason.contains("signature"), "{reason}");
    assert_eq!(
        relay.handle().status().await.expect("status").stored_items,
        stored,
        "nothing stored"
    );

    // The outsider asks the relay for the room: refused, both ways of asking.
    let (_, first) = Reconciler::initiate(Vec::new()).expect("initiate");
    let ask = |message: Vec<u8>| SyncRequest::Reconcile {
        scope: SyncScope::Room(room),
        message,
    };
    let answer = outsider
        .handle()
        .raw_sync_request(relay.handle().device(), ask(first.clone()))
        .await
        .expect("answer");
    assert!(matches!(answer, SyncResponse::Refused(_)), "{answer:?}");
    let id: [u8; 32] = hex::decode(&message.id)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let fetch = SyncRequest::Fetch {
        scope: SyncScope::Room(room),
        ids: vec![id],
    };
    let answer = outsider
        .handle()
        .raw_sync_request(relay.handle().device(), fetch.clone())
        .await
        .expect("answer");
    assert!(matches!(answer, SyncResponse::Refused(_)), "{answer:?}");
    // A member asking the same gets the envelope.
    let answer = lee
        .handle()
        .raw_sync_request(relay.handle().device(), fetch.clone())
        .await
        .expect("answer");
    match answer {
        SyncResponse::Items(items) => assert_eq!(items.len(), 1),
        other => panic!("member refused: {other:?}"),
    }
    // And Kim's history says the relay stored the message.
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let history = kim.handle().history(DIV, 1).await.expect("history");
        let stored = history[0].receipts.iter().any(|r| {
            r.user == "relay-seoul" && r.state == baro_node::wire::ReceiptState::StoredByRelay
        });
        if stored {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no stored receipt: {:?}",
            history[0].receipts
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_cannot_be_dialed_is_reachable_through_a_relay_circuit() {
    let mut agency = TestAgency::new(56);
    let relay_credentials = agency.relay("relay-seoul");
    let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
    let relay_address = listen_address(&relay).await.expect("relay listens");
    // Behind NAT: Ahn's device listens nowhere; it only reserves a relayed address.
    let ahn_credentials = agency.member("ahn");
    let ahn = baro_node::NodeBuilder::new(ahn_credentials)
        .config(baro_node::NodeConfig {
            listen: Vec::new(),
            ..baro_node::testing::memory_config(std::slice::from_ref(&relay_address))
        })
        .transport(baro_node::net::TransportKind::Memory)
        .clock(Arc::new(agency.clock.clone()))
        .spawn()
        .expect("ahn starts");
    let circuit = {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let status = ahn.handle().status().await.expect("status");
            if let Some(address) = status.listen.iter().find(|a| a.contains("p2p-circuit")) {
                break address.clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "no relayed address");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // The relayed address ends with Ahn's own peer id.
    let dial: libp2p::Multiaddr = circuit.parse().expect("address");
    let baek_credentials = agency.member("baek");
    let baek = agency.spawn(baek_credentials, &[]);
    let mut baek_events = baek.handle().events();
    baek.handle()
        .dial(dial)
        .await
        .expect("dial through the relay");
    let admitted = wait_for(&mut baek_events, "Ahn admitted", |event| match event {
        NodeEvent::PeerAdmitted(peer) if peer.user_id == "ahn" => Some(peer.clone()),
        _ => None,
    })
    .await;
    assert!(admitted.address.contains("p2p-circuit"), "{admitted:?}");
    let mut ahn_events = ahn.handle().events();
    send(&baek, DIV, "can you hear me through the relay?").await;
    wait_for_message(&mut ahn_events, "can you hear me through the relay?").await;
}
