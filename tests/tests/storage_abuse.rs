//! What a member can make other nodes store, keep and answer, over real
//! in-process meshes (audit H5, H6, M13): notices are not kept, future-dated
//! items are refused, one author's junk on a relay displaces only its own,
//! a forged grant neither opens a room (department, 1:1 or group) to its
//! author nor closes it to its members, and reconciliation requests are answered at a bounded rate.

use std::sync::Arc;
use std::time::Duration;

use baro_node::clock::Clock;
use baro_node::config::RelayConfig;
use baro_node::crypto::RoomKey;
use baro_node::identity::{Entropy, OsEntropy};
use baro_node::net::topics;
use baro_node::rooms::{ControlMessage, EpochRef, KeyGrant, RoomId};
use baro_node::store::MemoryStore;
use baro_node::sync::{Hlc, Reconciler, SyncRequest, SyncResponse, SyncScope};
use baro_node::testing::memory_config;
use baro_node::trust::{FrameBody, Role, SignedFrame};
use baro_node::wire::{self, Content, Envelope};
use baro_node::{Credentials, Node, NodeBuilder, NodeConfig, NodeEvent};
use baro_tests::mesh::{DIV, SETTLE, TestAgency, listen_address, send, wait_for, wait_for_message};

/// The division room's id.
fn division(agency: &TestAgency) -> RoomId {
    RoomId::department(
        &agency.agency.operator.agency.id(),
        &DIV.parse().expect("org"),
    )
}

async fn stored_bytes(node: &Node) -> u64 {
    node.handle().status().await.expect("status").stored_bytes
}

async fn stored_items(node: &Node) -> usize {
    node.handle().status().await.expect("status").stored_items
}

/// What `node` holds once a sync round it starts with `peer` fetches
/// nothing new (a freshly met peer's items arrive over the first rounds).
async fn settled_items(node: &Node, peer: &Node) -> usize {
    let mut events = node.handle().events();
    let peer = peer.handle().device();
    for _ in 0..10 {
        let before = stored_items(node).await;
        node.handle().sync_now().await.expect("sync");
        let fetched = wait_for(&mut events, "a sync round", |event| match event {
            NodeEvent::Synced(report) if report.peer == peer => Some(report.fetched),
            _ => None,
        })
        .await;
        let after = stored_items(node).await;
        if fetched == 0 && after == before {
            return after;
        }
    }
    panic!("sync did not settle in 10 rounds");
}

/// A relay keeping at most `max_store_mb` megabytes.
fn spawn_small_relay(agency: &TestAgency, credentials: Credentials, max_store_mb: u64) -> Node {
    NodeBuilder::new(credentials)
        .config(NodeConfig {
            relay: Some(RelayConfig {
                retention_days: 30,
                max_store_mb,
                ..RelayConfig::default()
            }),
            ..memory_config(&[])
        })
        .transport(baro_node::net::TransportKind::Memory)
        .clock(Arc::new(agency.clock.clone()))
        .store(Arc::new(MemoryStore::new()))
        .spawn()
        .expect("relay starts")
}

/// A validly signed envelope by `credentials`' device in `room`, under a
/// key nobody else holds, dated `wall_ms`, with `len` bytes of text.
fn junk_envelope(credentials: &Credentials, room: RoomId, wall_ms: u64, len: usize) -> Envelope {
    let key = RoomKey::generate(&mut OsEntropy);
    Envelope::seal(
        &credentials.key,
        room,
        EpochRef {
            number: 1,
            key_id: key.key_id(),
        },
        &key,
        Hlc {
            wall_ms,
            counter: 0,
        },
        &Content::Text("x".repeat(len)),
        &mut OsEntropy,
    )
    .expect("seal")
}

/// Waits until `node` reports a rejection whose reason contains `needle`.
async fn rejected(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    needle: &str,
) -> String {
    wait_for(events, needle, |event| match event {
        NodeEvent::GossipRejected { reason, .. } if reason.contains(needle) => Some(reason.clone()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_notices_is_neither_stored_nor_synced() {
    let mut agency = TestAgency::new(161);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &[]);
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
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = [stored_bytes(&kim).await, stored_bytes(&lee).await];
    let mut lee_events = lee.handle().events();
    const NOTICES: usize = 40;
    const SIZE: usize = 30_000;
    for n in 0..NOTICES {
        let mut notice = vec![0u8; SIZE];
        notice[..8].copy_from_slice(&(n as u64).to_le_bytes());
        mallory
            .handle()
            .publish_control(notice)
            .await
            .expect("publish");
    }
    // Gossip still carries them to whoever is online.
    wait_for(&mut lee_events, "a notice", |event| match event {
        NodeEvent::Gossip { payload, .. } if payload.len() == SIZE => Some(()),
        _ => None,
    })
    .await;
    // Two sync rounds later, nothing of them is kept, anywhere.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = [stored_bytes(&kim).await, stored_bytes(&lee).await];
    for (before, after) in before.iter().zip(after) {
        assert!(
            after.saturating_sub(*before) < SIZE as u64,
            "{} bytes stored for {} bytes of notices",
            after - before,
            NOTICES * SIZE
        );
    }
    assert!(
        stored_bytes(&mallory).await < SIZE as u64,
        "not even by its author"
    );
    for node in [kim, lee, mallory] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_dated_frames_and_envelopes_are_refused() {
    let mut agency = TestAgency::new(162);
    let relay_credentials = agency.relay("relay-seoul");
    let relay = spawn_small_relay(&agency, relay_credentials, 1024);
    let address = listen_address(&relay).await.expect("listening");
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, std::slice::from_ref(&address));
    let mallory_credentials = agency.member("mallory");
    let mallory = agency.spawn(mallory_credentials.clone(), std::slice::from_ref(&address));
    for node in [&relay, &kim, &mallory] {
        node.handle()
            .wait_for_peers(2, SETTLE)
            .await
            .expect("peers");
    }
    let room = division(&agency);
    let now = agency.clock.now();
    let day_ahead = now + 86_400;
    let mut relay_events = relay.handle().events();
    let before = stored_items(&relay).await;

    // A control frame dated a day ahead.
    let frame = SignedFrame::sign(
        &mallory_credentials.key,
        FrameBody {
            author: mallory_credentials.chain.clone(),
            topic: topics::control(&agency.agency.operator.agency.id())
                .hash()
                .to_string(),
            sent_at: day_ahead,
            nonce: OsEntropy.array(),
            payload: wire::encode(&ControlMessage::Presence),
        },
    );
    mallory
        .handle()
        .publish_raw(wire::encode(&frame))
        .await
        .expect("publish");
    let reason = rejected(&mut relay_events, "ahead").await;
    assert!(reason.contains("control frame"), "{reason}");

    // An envelope dated a day ahead: it would sort after, and outlive,
    // everything real.
    let envelope = junk_envelope(&mallory_credentials, room, day_ahead * 1000, 100);
    mallory
        .handle()
        .publish_raw_to_room(room, wire::encode(&envelope))
        .await
        .expect("publish");
    let reason = rejected(&mut relay_events, "ahead").await;
    assert!(reason.contains("envelope"), "{reason}");
    assert_eq!(stored_items(&relay).await, before, "nothing stored");
    for node in [relay, kim, mallory] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_flooding_a_relay_displaces_only_its_own_items() {
    let mut agency = TestAgency::new(163);
    // A relay of 1 MB: one author may hold 64 KiB of it.
    let relay_credentials = agency.relay("relay-seoul");
    let relay = spawn_small_relay(&agency, relay_credentials, 1);
    let address = listen_address(&relay).await.expect("listening");
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, std::slice::from_ref(&address));
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    let mallory_credentials = agency.member("mallory");
    let mallory = agency.spawn(mallory_credentials.clone(), std::slice::from_ref(&address));
    for node in [&relay, &kim, &lee, &mallory] {
        node.handle()
            .wait_for_peers(3, SETTLE)
            .await
            .expect("peers");
    }
    let room = division(&agency);
    let mut lee_events = lee.handle().events();
    send(&kim, DIV, "budget draft v3").await;
    let genuine = wait_for_message(&mut lee_events, "budget draft v3").await;
    let genuine_id: [u8; 32] = hex::decode(&genuine.id)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let fetch = SyncRequest::Fetch {
        scope: SyncScope::Room(room),
        ids: vec![genuine_id],
    };
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let answer = lee
            .handle()
            .raw_sync_request(relay.handle().device(), fetch.clone())
            .await
            .expect("answer");
        if matches!(&answer, SyncResponse::Items(items) if items.len() == 1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay never stored kim's message"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = stored_bytes(&relay).await;

    // Mallory floods the room with 40 envelopes of 20 KB: valid signatures,
    // current times (future ones are refused), a key nobody holds.
    let now_ms = agency.clock.now() * 1000;
    for n in 0..40u64 {
        let junk = junk_envelope(&mallory_credentials, room, now_ms + n, 20_000);
        mallory
            .handle()
            .publish_raw_to_room(room, wire::encode(&junk))
            .await
            .expect("publish");
    }
    // Eviction runs with every sync round (2 s here).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = stored_bytes(&relay).await;
    assert!(
        after.saturating_sub(before) <= 64 << 10,
        "{} bytes of 800 KB junk kept",
        after.saturating_sub(before)
    );
    // Kim's message is still served.
    match lee
        .handle()
        .raw_sync_request(relay.handle().device(), fetch)
        .await
        .expect("answer")
    {
        SyncResponse::Items(items) => assert_eq!(items.len(), 1, "kim's message was evicted"),
        other => panic!("refused: {other:?}"),
    }
    for node in [relay, kim, lee, mallory] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_grant_neither_opens_a_relay_room_to_its_author_nor_closes_it_to_members() {
    let mut agency = TestAgency::new(164);
    let relay_credentials = agency.relay("relay-seoul");
    let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
    let address = listen_address(&relay).await.expect("listening");
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, std::slice::from_ref(&address));
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    // Another bureau's official: admitted, not a member of the division.
    let mallory_key = agency.key();
    let mallory_chain = agency.certify(
        &mallory_key,
        "mallory",
        "MOIS/Audit Bureau",
        Role::Member,
        365,
    );
    let mallory = agency.spawn(
        agency.credentials(mallory_key.clone(), mallory_chain),
        std::slice::from_ref(&address),
    );
    for node in [&relay, &kim, &lee, &mallory] {
        node.handle()
            .wait_for_peers(3, SETTLE)
            .await
            .expect("peers");
    }
    let room = division(&agency);
    let mut lee_events = lee.handle().events();
    send(&kim, DIV, "minutes of the meeting").await;
    wait_for_message(&mut lee_events, "minutes of the meeting").await;

    // Mallory grants herself the division room at the highest epoch.
    let mut relay_events = relay.handle().events();
    let key = RoomKey::generate(&mut OsEntropy);
    let forged = KeyGrant::issue(
        &mallory_key,
        room,
        u64::MAX,
        &key,
        &[mallory_key.public()],
        agency.clock.now(),
    )
    .expect("grant")
    .remove(0);
    mallory
        .handle()
        .publish_control(wire::encode(&ControlMessage::Grant(forged)))
        .await
        .expect("publish");
    rejected(&mut relay_events, "not a member").await;

    let (_, first) = Reconciler::initiate(Vec::new()).expect("initiate");
    let ask = SyncRequest::Reconcile {
        scope: SyncScope::Room(room),
        message: first,
    };
    let answer = mallory
        .handle()
        .raw_sync_request(relay.handle().device(), ask.clone())
        .await
        .expect("answer");
    assert!(
        matches!(answer, SyncResponse::Refused(_)),
        "mallory served: {answer:?}"
    );
    for member in [&kim, &lee] {
        let answer = member
            .handle()
            .raw_sync_request(relay.handle().device(), ask.clone())
            .await
            .expect("answer");
        assert!(
            matches!(answer, SyncResponse::Reconcile(_)),
            "member refused: {answer:?}"
        );
    }
    // The relay did not pass the forged grant on: members keep it in good standing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let score = kim
        .handle()
        .peer_score(relay.handle().device())
        .await
        .expect("score");
    assert!(
        score.is_none_or(|score| score >= 0.0),
        "relay scored {score:?}"
    );
    for node in [relay, kim, lee, mallory] {
        node.shutdown().await;
    }
}

/// Asks `relay` for `room` as `node`: `true` if it answers, `false` if it refuses.
async fn served(node: &Node, relay: &Node, room: RoomId) -> bool {
    let (_, first) = Reconciler::initiate(Vec::new()).expect("initiate");
    let ask = SyncRequest::Reconcile {
        scope: SyncScope::Room(room),
        message: first,
    };
    match node
        .handle()
        .raw_sync_request(relay.handle().device(), ask)
        .await
        .expect("answer")
    {
        SyncResponse::Reconcile(_) => true,
        SyncResponse::Refused(_) => false,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certified_non_member_granting_herself_a_group_is_not_served_it_by_a_relay() {
    let mut agency = TestAgency::new(167);
    let relay_credentials = agency.relay("relay-seoul");
    let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
    let address = listen_address(&relay).await.expect("listening");
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, std::slice::from_ref(&address));
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    // Mallory is a certified official of another bureau, not in the group.
    let mallory_key = agency.key();
    let mallory_chain = agency.certify(
        &mallory_key,
        "mallory",
        "MOIS/Audit Bureau",
        Role::Member,
        365,
    );
    let mallory = agency.spawn(
        agency.credentials(mallory_key.clone(), mallory_chain),
        std::slice::from_ref(&address),
    );
    for node in [&relay, &kim, &lee, &mallory] {
        node.handle()
            .wait_for_peers(3, SETTLE)
            .await
            .expect("peers");
    }
    let info = kim
        .handle()
        .create_group("Budget", vec!["lee".into()])
        .await
        .expect("group");
    let group: RoomId = info.id.parse().expect("room id");
    let mut lee_events = lee.handle().events();
    send(&kim, &info.id, "the budget draft").await;
    wait_for_message(&mut lee_events, "the budget draft").await;
    // The relay takes the founder's grant and serves the members.
    let deadline = tokio::time::Instant::now() + SETTLE;
    while !(served(&kim, &relay, group).await && served(&lee, &relay, group).await) {
        assert!(tokio::time::Instant::now() < deadline, "members not served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Mallory, who saw the group's id go by, grants herself its key at the
    // highest epoch, then the division's room, which she is not in (refused
    // outright: once the relay says so, it has judged the first grant too).
    let mut relay_events = relay.handle().events();
    let key = RoomKey::generate(&mut OsEntropy);
    let forged = |room: RoomId| {
        KeyGrant::issue(
            &mallory_key,
            room,
            u64::MAX,
            &key,
            &[mallory_key.public()],
            agency.clock.now(),
        )
        .expect("grant")
        .remove(0)
    };
    for room in [group, division(&agency)] {
        mallory
            .handle()
            .publish_control(wire::encode(&ControlMessage::Grant(forged(room))))
            .await
            .expect("publish");
    }
    rejected(&mut relay_events, "not a member").await;
    assert!(
        !served(&mallory, &relay, group).await,
        "a non-member was served the group"
    );
    assert!(served(&kim, &relay, group).await && served(&lee, &relay, group).await);
    for node in [relay, kim, lee, mallory] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_reconcile_requests_is_answered_at_a_bounded_rate() {
    let mut agency = TestAgency::new(165);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &[]);
    let address = listen_address(&kim).await.expect("listening");
    let mallory_credentials = agency.member("mallory");
    let mallory = agency.spawn(mallory_credentials, std::slice::from_ref(&address));
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    for node in [&kim, &mallory, &lee] {
        node.handle()
            .wait_for_peers(1, SETTLE)
            .await
            .expect("peers");
    }
    let (_, first) = Reconciler::initiate(Vec::new()).expect("initiate");
    let ask = SyncRequest::Reconcile {
        scope: SyncScope::Control,
        message: first,
    };
    // 400 requests in waves of 4 at once (Kim takes 8 sync streams per
    // connection), as fast as Kim answers.
    const REQUESTS: u64 = 400;
    let started = tokio::time::Instant::now();
    let (mut answered, mut refused) = (0u64, 0u64);
    for _ in 0..REQUESTS.div_ceil(4) {
        let mut wave = tokio::task::JoinSet::new();
        let left = REQUESTS - answered - refused;
        for _ in 0..left.min(4) {
            let (mallory, kim, ask) = (mallory.handle(), kim.handle().device(), ask.clone());
            wave.spawn(async move { mallory.raw_sync_request(kim, ask).await });
        }
        while let Some(answer) = wave.join_next().await {
            match answer.expect("task").expect("answer") {
                SyncResponse::Reconcile(_) => answered += 1,
                SyncResponse::Refused(reason) => {
                    assert!(reason.contains("too many"), "{reason}");
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(answered + refused, REQUESTS);
    // A burst of 256, then 20 a second while the flood lasts: the bound
    // follows how long the flood took here (a busy machine answers slower,
    // so more of it is allowed), and the flood is refused past it.
    let seconds = started.elapsed().as_secs() + 1;
    let allowed = 256 + 20 * seconds;
    assert!(
        answered <= allowed,
        "{answered} answered in {seconds} s (at most {allowed})"
    );
    assert!(answered >= 256, "the burst is answered: {answered}");
    assert!(
        allowed >= REQUESTS || refused > 0,
        "nothing refused in {seconds} s"
    );
    // Lee is answered all the same.
    let answer = lee
        .handle()
        .raw_sync_request(kim.handle().device(), ask)
        .await
        .expect("answer");
    assert!(matches!(answer, SyncResponse::Reconcile(_)), "{answer:?}");
    for node in [kim, mallory, lee] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_does_not_follow_topics_a_member_subscribes_to_at_random() {
    let mut agency = TestAgency::new(166);
    let relay_credentials = agency.relay("relay-seoul");
    let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
    let address = listen_address(&relay).await.expect("listening");
    let mallory_credentials = agency.member("mallory");
    let mallory = agency.spawn(mallory_credentials.clone(), std::slice::from_ref(&address));
    for node in [&relay, &mallory] {
        node.handle()
            .wait_for_peers(1, SETTLE)
            .await
            .expect("peers");
    }
    let before = settled_items(&relay, &mallory).await;
    // Mallory subscribes to rooms nobody granted a key for.
    let rooms: Vec<RoomId> = (0..50).map(|_| RoomId(OsEntropy.array())).collect();
    for room in &rooms {
        mallory.handle().follow(*room).await.expect("follow");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now_ms = agency.clock.now() * 1000;
    let mut published = 0;
    for room in &rooms {
        let envelope = junk_envelope(&mallory_credentials, *room, now_ms, 100);
        // No one else listens on these topics: nothing to publish to.
        if mallory
            .handle()
            .publish_raw_to_room(*room, wire::encode(&envelope))
            .await
            .is_ok()
        {
            published += 1;
        }
    }
    assert_eq!(published, 0, "the relay followed mallory's topics");
    assert_eq!(
        settled_items(&relay, &mallory).await,
        before,
        "the relay stored them"
    );
    for node in [relay, mallory] {
        node.shutdown().await;
    }
}
