//! Room traffic from curious insiders and misbehaving peers, over real
//! in-process meshes: ciphertext that reaches a non-member stays unreadable;
//! tampered and forged envelopes are rejected and cost their forwarder its
//! standing; an old envelope replayed after a restart is not shown again;
//! an old group definition replayed by a removed member, and a backdated
//! grant from a revoked device, change nothing; a new key wrapped to a
//! revoked device after the room moved past it does not end the rotation;
//! a member's grant naming epoch `u64::MAX` freezes nobody (audit H4).

use std::sync::Arc;
use std::time::Duration;

use baro_node::clock::Clock;
use baro_node::crypto::RoomKey;
use baro_node::identity::SeededEntropy;
use baro_node::rooms::{ControlMessage, EpochOrigin, EpochRef, KeyGrant, RoomId};
use baro_node::store::{MemoryStore, MessageLog, Store};
use baro_node::trust::{FrameBody, RevocationScope, Role, SignedFrame};
use baro_node::wire::{self, Content, Domain, Envelope};
use baro_node::{Node, NodeEvent};
use baro_tests::mesh::{
    DIV, SETTLE, TestAgency, lee_restarted_on_sled, listen_address, send, wait_for,
    wait_for_message,
};

/// The id of the department room every [`TestAgency::member`] is in.
async fn division_room(node: &Node) -> RoomId {
    let rooms = node.handle().rooms().await.expect("rooms");
    let room = rooms.iter().find(|r| r.name == DIV).expect("division room");
    room.id.parse().expect("room id")
}

/// The envelopes `store` holds for `room`, as the node saved them.
fn stored_envelopes(store: &Arc<MemoryStore>, room: RoomId) -> Vec<Envelope> {
    let store: Arc<dyn Store> = store.clone();
    MessageLog::new(store).history(room, 100).expect("history")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insider_following_a_room_gets_its_ciphertext_but_never_reads_it() {
    let mut agency = TestAgency::new(31);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &[]);
    let address = listen_address(&kim).await.expect("listening");
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    // Same agency, another bureau: admitted to the mesh, not to the room.
    let park_key = agency.key();
    let park_chain = agency.certify(&park_key, "park", "MOIS/Audit Bureau", Role::Member, 365);
    let park = agency.spawn(
        agency.credentials(park_key, park_chain),
        std::slice::from_ref(&address),
    );
    for node in [&kim, &lee, &park] {
        node.handle()
            .wait_for_peers(2, SETTLE)
            .await
            .expect("peers");
    }
    let room = division_room(&kim).await;
    // Park's node is modified to subscribe to the room's topic anyway.
    park.handle().follow(room).await.expect("follow");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (mut lee_events, mut park_events) = (lee.handle().events(), park.handle().events());
    send(&kim, DIV, "Personnel file attached").await;
    wait_for_message(&mut lee_events, "Personnel file attached").await;
    let room_hex = room.to_string();
    wait_for(
        &mut park_events,
        "the ciphertext reaching park",
        |event| match event {
            NodeEvent::Message(m) => panic!("a non-member was shown {m:?}"),
            NodeEvent::Unreadable { room, .. } if *room == room_hex => Some(()),
            _ => None,
        },
    )
    .await;
    assert!(
        park.handle().history(DIV, 10).await.is_err(),
        "park has no such room"
    );
    let rooms = park.handle().rooms().await.expect("rooms");
    assert!(rooms.iter().all(|r| r.name != DIV), "{rooms:?}");
    for node in [kim, lee, park] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_forged_envelopes_are_rejected_and_penalise_the_forwarder() {
    let mut agency = TestAgency::new(32);
    let kim_store = Arc::new(MemoryStore::new());
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn_with_store(kim_credentials, &[], kim_store.clone());
    let address = listen_address(&kim).await.expect("listening");
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    let mallory_credentials = agency.member("mallory");
    let mallory_key = mallory_credentials.key.clone();
    let mallory = agency.spawn(mallory_credentials, std::slice::from_ref(&address));
    let park_key = agency.key();
    let park_chain = agency.certify(&park_key, "park", "MOIS/Audit Bureau", Role::Member, 365);
    let park = agency.spawn(
        agency.credentials(park_key.clone(), park_chain),
        std::slice::from_ref(&address),
    );
    for node in [&kim, &lee, &mallory, &park] {
        node.handle()
            .wait_for_peers(3, SETTLE)
            .await
            .expect("peers");
    }
    let room = division_room(&kim).await;
    let mut lee_events = lee.handle().events();
    send(&kim, DIV, "Genuine").await;
    wait_for_message(&mut lee_events, "Genuine").await;
    let genuine = stored_envelopes(&kim_store, room)
        .into_iter()
        .next()
        .expect("kim stored his message");

    let mut forgeries: Vec<(&str, Envelope)> = Vec::new();
    let mut tampered = genuine.clone();
    tampered.body.ciphertext[0] ^= 1;
    forgeries.push(("flipped ciphertext byte", tampered));
    let mut tampered = genuine.clone();
    tampered.body.header.timestamp.wall_ms += 1;
    forgeries.push(("altered header", tampered));
    let mut resigned = genuine.clone();
    resigned.signature = mallory_key.sign(Domain::Envelope, &resigned.body);
    forgeries.push(("kim's header, mallory's signature", resigned));
    // A member signs ciphertext that was not sealed under the room key.
    let mut body = genuine.body.clone();
    body.header.sender = mallory_key.public();
    body.ciphertext.iter_mut().for_each(|b| *b ^= 0x5a);
    let signature = mallory_key.sign(Domain::Envelope, &body);
    forgeries.push(("member-signed garbage", Envelope { body, signature }));
    // A certified non-member, with the room's real epoch reference.
    let outsider = Envelope::seal(
        &park_key,
        room,
        genuine.body.header.epoch,
        &RoomKey::generate(&mut SeededEntropy::new(5)),
        genuine.body.header.timestamp,
        &Content::Text("let me in".into()),
        &mut SeededEntropy::new(6),
    )
    .expect("sealed");
    forgeries.push(("envelope from a non-member", outsider));

    // One invalid message already graylists its forwarder (it is ignored
    // from then on), so each forgery comes through a fresh member's node
    // that has first proved it reaches lee with a genuine message. It dials
    // lee itself: an honest node in between would drop the forgery, and
    // lee would never see who forwarded it.
    let lee_address = listen_address(&lee).await.expect("lee listening");
    for (i, (what, forged)) in forgeries.into_iter().enumerate() {
        let user = format!("forwarder{i}");
        let credentials = agency.member(&user);
        let forwarder = agency.spawn(credentials, &[address.clone(), lee_address.clone()]);
        forwarder
            .handle()
            .wait_for_peers(4, SETTLE)
            .await
            .expect("peers");
        let hello = format!("hello from {user}");
        send(&forwarder, DIV, &hello).await;
        wait_for_message(&mut lee_events, &hello).await;
        let device = forwarder.handle().status().await.expect("status").device;
        forwarder
            .handle()
            .publish_raw_to_room(room, wire::encode(&forged))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let reason = wait_for(&mut lee_events, what, |event| match event {
            NodeEvent::Message(m) => panic!("{what} was shown: {m:?}"),
            NodeEvent::GossipRejected { from, reason }
                if from.to_string() == device.to_string() =>
            {
                Some(reason.clone())
            }
            _ => None,
        })
        .await;
        let score = lee
            .handle()
            .peer_score(device)
            .await
            .expect("score")
            .expect("the forwarder is scored");
        assert!(
            score < 0.0,
            "{what}: the forwarder's score on lee is {score}"
        );
        println!("{what}: rejected ({reason}); forwarder's score {score:.0}");
        forwarder.shutdown().await;
    }
    let history = lee.handle().history(DIV, 10).await.expect("history");
    assert!(
        history
            .iter()
            .all(|m| m.text == "Genuine" || m.text.starts_with("hello from")),
        "{history:?}"
    );
    for node in [kim, lee, mallory, park] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_envelope_replayed_after_a_restart_is_not_shown_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agency = TestAgency::new(33);
    let kim_store = Arc::new(MemoryStore::new());
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn_with_store(kim_credentials, &[], kim_store.clone());
    let address = listen_address(&kim).await.expect("listening");
    let lee = lee_restarted_on_sled(&mut agency, &kim, &address, dir.path(), "Meeting at 10").await;
    let mut lee_events = lee.handle().events();
    // A fresh node (its gossip caches empty) replays the old envelope.
    let replayer_credentials = agency.member("replayer");
    let replayer = agency.spawn(replayer_credentials, std::slice::from_ref(&address));
    for node in [&lee, &replayer] {
        node.handle()
            .wait_for_peers(2, SETTLE)
            .await
            .expect("peers");
    }
    let room = division_room(&kim).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old = stored_envelopes(&kim_store, room).remove(0);
    replayer
        .handle()
        .publish_raw_to_room(room, wire::encode(&old))
        .await
        .expect("replayed");
    // Sent after the replay on the same connection: once it is shown, the
    // replay has been through lee's checks.
    send(&replayer, DIV, "Moved to 11").await;
    wait_for(&mut lee_events, "the next message", |event| match event {
        NodeEvent::Message(m) if m.text == "Meeting at 10" => {
            panic!("the replayed message was shown again")
        }
        NodeEvent::Message(m) if m.text == "Moved to 11" => Some(()),
        _ => None,
    })
    .await;
    let mut texts: Vec<String> = lee
        .handle()
        .history(DIV, 10)
        .await
        .expect("history")
        .into_iter()
        .map(|m| m.text)
        .collect();
    // The replayer never saw the first message: the two are concurrent and
    // their order is a tie-break, but each is there exactly once.
    texts.sort();
    assert_eq!(texts, vec!["Meeting at 10", "Moved to 11"]);
    for node in [kim, lee, replayer] {
        node.shutdown().await;
    }
}

/// The definition envelopes of `room` among the control frames `store` kept.
fn stored_definitions(store: &Arc<MemoryStore>, room: RoomId) -> Vec<(Vec<u8>, Envelope)> {
    let store: Arc<dyn Store> = store.clone();
    MessageLog::new(store)
        .control_frames()
        .expect("control frames")
        .into_iter()
        .filter_map(|bytes| {
            let frame = wire::decode::<SignedFrame>(&bytes).ok()?;
            match wire::decode::<ControlMessage>(&frame.body.payload).ok()? {
                ControlMessage::RoomDefinition(envelope) if envelope.body.header.room == room => {
                    Some((bytes, envelope))
                }
                _ => None,
            }
        })
        .collect()
}

/// Audit C2 through real nodes: a removed member keeps the envelope of the
/// definition that still named her and, after the admin's node restarted,
/// replays it in a frame of her own and as the admin's original frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_replaying_her_old_group_definition_after_a_restart_stays_removed() {
    let mut agency = TestAgency::new(34);
    let kim_store = Arc::new(MemoryStore::new());
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn_with_store(kim_credentials.clone(), &[], kim_store.clone());
    let address = listen_address(&kim).await.expect("listening");
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    let choi_credentials = agency.member("choi");
    let choi = agency.spawn(choi_credentials, std::slice::from_ref(&address));
    for node in [&kim, &lee, &choi] {
        node.handle()
            .wait_for_peers(2, SETTLE)
            .await
            .expect("peers");
    }
    let (mut lee_events, mut choi_events) = (lee.handle().events(), choi.handle().events());
    let info = kim
        .handle()
        .create_group("Budget", vec!["lee".into(), "choi".into()])
        .await
        .expect("group");
    let room: RoomId = info.id.parse().expect("room id");
    for events in [&mut lee_events, &mut choi_events] {
        wait_for(
            events,
            "the group reaching its members",
            |event| match event {
                NodeEvent::RoomJoined(info) if info.name == "Budget" => Some(()),
                _ => None,
            },
        )
        .await;
    }
    let (old_frame, old_definition) = stored_definitions(&kim_store, room)
        .pop()
        .expect("kim kept the definition's frame");

    kim.handle()
        .remove("Budget", "choi")
        .await
        .expect("removed");
    wait_for(&mut lee_events, "the new definition", |event| match event {
        NodeEvent::RoomJoined(info)
            if info.name == "Budget" && !info.members.contains(&"choi".to_string()) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;

    // Kim's node restarts; its in-memory de-duplication is gone.
    kim.shutdown().await;
    let lee_address = listen_address(&lee).await.expect("lee listening");
    let choi_address = listen_address(&choi).await.expect("choi listening");
    let kim = agency.spawn_with_store(kim_credentials, &[lee_address, choi_address], kim_store);
    kim.handle()
        .wait_for_peers(2, SETTLE)
        .await
        .expect("peers again");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut kim_events = kim.handle().events();
    let choi_device = choi.handle().status().await.expect("status").device;

    // Replayed in a frame of her own: the author is not the signer.
    choi.handle()
        .publish_control(wire::encode(&ControlMessage::RoomDefinition(
            old_definition,
        )))
        .await
        .expect("published");
    let reason = wait_for(&mut kim_events, "the replay refused", |event| match event {
        NodeEvent::RoomJoined(info) => panic!("the old definition was taken: {info:?}"),
        NodeEvent::GossipRejected { from, reason }
            if from.to_string() == choi_device.to_string() =>
        {
            Some(reason.clone())
        }
        _ => None,
    })
    .await;
    assert!(reason.contains("signed it"), "{reason}");
    // Replayed as kim's own frame, byte for byte, by a fresh node (its
    // gossip caches empty): old, so refused, or known as a duplicate.
    let replayer_credentials = agency.member("replayer");
    let kim_address = listen_address(&kim).await.expect("kim listening");
    let replayer = agency.spawn(replayer_credentials, std::slice::from_ref(&kim_address));
    replayer
        .handle()
        .wait_for_peers(1, SETTLE)
        .await
        .expect("peer");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    replayer
        .handle()
        .publish_raw(old_frame)
        .await
        .expect("replayed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(&kim, "Budget", "After choi left").await;
    wait_for_message(&mut lee_events, "After choi left").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let budget = kim.handle().find_room("Budget").await.expect("room");
    assert!(!budget.members.contains(&"choi".to_string()), "{budget:?}");
    let choi_saw = choi
        .handle()
        .history("Budget", 10)
        .await
        .unwrap_or_default();
    assert!(
        choi_saw.iter().all(|m| m.text != "After choi left"),
        "{choi_saw:?}"
    );
    for node in [kim, lee, choi, replayer] {
        node.shutdown().await;
    }
}

/// Audit C1 through real nodes: the thief of a revoked phone signs a grant
/// of epoch 1000 backdated to before the revocation, in a frame backdated
/// the same way, and a colluding insider publishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_phone_rekeying_its_room_with_a_backdated_grant_is_refused() {
    let mut agency = TestAgency::new(35);
    let kim_store = Arc::new(MemoryStore::new());
    let kim_credentials = agency.member("kim");
    let kim_key = kim_credentials.key.public();
    let kim = agency.spawn_with_store(kim_credentials, &[], kim_store.clone());
    let address = listen_address(&kim).await.expect("listening");
    let lee_credentials = agency.member("lee");
    let lee_key = lee_credentials.key.public();
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    let mallory_credentials = agency.member("mallory");
    let mallory = agency.spawn(mallory_credentials, std::slice::from_ref(&address));
    let phone_credentials = agency.member("choi");
    let (phone_key, phone_chain) = (
        phone_credentials.key.clone(),
        phone_credentials.chain.clone(),
    );
    let phone = agency.spawn(phone_credentials, std::slice::from_ref(&address));
    for node in [&kim, &lee, &mallory, &phone] {
        node.handle()
            .wait_for_peers(3, SETTLE)
            .await
            .expect("peers");
    }
    let room = division_room(&kim).await;
    let mut lee_events = lee.handle().events();
    send(&kim, DIV, "Before the loss").await;
    wait_for_message(&mut lee_events, "Before the loss").await;
    let topic = {
        let store: Arc<dyn Store> = kim_store.clone();
        let frames = MessageLog::new(store).control_frames().expect("frames");
        let frame = frames.first().expect("a control frame");
        wire::decode::<SignedFrame>(frame)
            .expect("frame")
            .body
            .topic
    };

    let mut kim_events = kim.handle().events();
    let revocation = agency.revocation(&phone_chain, RevocationScope::Device, "lost", false);
    let revoked_at = agency.clock.now();
    kim.handle()
        .submit_revocation(revocation)
        .await
        .expect("taken");
    wait_for(&mut lee_events, "lee enforcing it", |event| {
        matches!(event, NodeEvent::Revoked(_)).then_some(())
    })
    .await;
    phone.shutdown().await;

    let stolen = RoomKey::generate(&mut SeededEntropy::new(350));
    let grant = KeyGrant::issue(
        &phone_key,
        room,
        1000,
        &stolen,
        &[kim_key, lee_key],
        revoked_at - 60,
    )
    .expect("grant")
    .remove(0);
    let frame = SignedFrame::sign(
        &phone_key,
        FrameBody {
            author: phone_chain,
            topic,
            sent_at: revoked_at - 60,
            nonce: [35; 16],
            payload: wire::encode(&ControlMessage::Grant(grant)),
        },
    );
    let mallory_device = mallory.handle().status().await.expect("status").device;
    mallory
        .handle()
        .publish_raw(wire::encode(&frame))
        .await
        .expect("published");
    let reason = wait_for(
        &mut kim_events,
        "the backdated grant refused",
        |event| match event {
            NodeEvent::GossipRejected { from, reason }
                if from.to_string() == mallory_device.to_string() =>
            {
                Some(reason.clone())
            }
            _ => None,
        },
    )
    .await;
    assert!(reason.contains("revoked"), "{reason}");

    send(&kim, DIV, "After the loss").await;
    wait_for_message(&mut lee_events, "After the loss").await;
    let after = stored_envelopes(&kim_store, room)
        .into_iter()
        .filter(|e| e.body.header.sender == kim_key)
        .max_by_key(|e| e.body.header.timestamp)
        .expect("kim's message");
    assert_ne!(after.body.header.epoch.number, 1000);
    assert!(after.open(&stolen).is_err(), "the thief cannot read it");
    for node in [kim, lee, mallory] {
        node.shutdown().await;
    }
}

/// Audit C1 (issue 16) through real nodes: after the revocation, the room
/// moved past the phone; then an insider (standing in for a member that has
/// not heard of the revocation yet) moves the room to a new key of its own
/// and wraps it to the revoked phone too. The members who know of the
/// revocation do not take that key as a move past the phone: the room's
/// next message goes under a key the phone never gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unaware_member_rotating_to_the_revoked_phone_does_not_end_the_rotation() {
    let mut agency = TestAgency::new(36);
    let kim_store = Arc::new(MemoryStore::new());
    let kim_credentials = agency.member("kim");
    let kim_key = kim_credentials.key.public();
    let kim = agency.spawn_with_store(kim_credentials, &[], kim_store.clone());
    let address = listen_address(&kim).await.expect("listening");
    let lee_credentials = agency.member("lee");
    let lee_key = lee_credentials.key.public();
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    let mallory_credentials = agency.member("mallory");
    let (mallory_key, mallory_chain) = (
        mallory_credentials.key.clone(),
        mallory_credentials.chain.clone(),
    );
    let mallory = agency.spawn(mallory_credentials, std::slice::from_ref(&address));
    let phone_credentials = agency.member("choi");
    let (phone_key, phone_chain) = (
        phone_credentials.key.public(),
        phone_credentials.chain.clone(),
    );
    let phone = agency.spawn(phone_credentials, std::slice::from_ref(&address));
    for node in [&kim, &lee, &mallory, &phone] {
        node.handle()
            .wait_for_peers(3, SETTLE)
            .await
            .expect("peers");
    }
    let room = division_room(&kim).await;
    let mut lee_events = lee.handle().events();
    send(&kim, DIV, "Before the loss").await;
    wait_for_message(&mut lee_events, "Before the loss").await;
    let topic = {
        let store: Arc<dyn Store> = kim_store.clone();
        let frames = MessageLog::new(store).control_frames().expect("frames");
        let frame = frames.first().expect("a control frame");
        wire::decode::<SignedFrame>(frame)
            .expect("frame")
            .body
            .topic
    };
    let kims_latest = || {
        stored_envelopes(&kim_store, room)
            .into_iter()
            .filter(|e| e.body.header.sender == kim_key)
            .max_by_key(|e| e.body.header.timestamp)
            .expect("kim's message")
    };

    let revocation = agency.revocation(&phone_chain, RevocationScope::Device, "lost", false);
    kim.handle()
        .submit_revocation(revocation)
        .await
        .expect("taken");
    wait_for(&mut lee_events, "lee enforcing it", |event| {
        matches!(event, NodeEvent::Revoked(_)).then_some(())
    })
    .await;
    phone.shutdown().await;
    send(&kim, DIV, "After the loss").await;
    wait_for_message(&mut lee_events, "After the loss").await;
    let moved = kims_latest().body.header.epoch;

    // A new key, one above, made as by a member unaware of the revocation:
    // its origin leaves nobody out, and it is wrapped to the phone as well.
    let unaware_key = RoomKey::generate(&mut SeededEntropy::new(360));
    let epoch = EpochRef {
        number: moved.number + 1,
        key_id: unaware_key.key_id(),
    };
    let origin = EpochOrigin::sign(&mallory_key, room, epoch, Vec::new());
    let grant = KeyGrant::issue_with_origin(
        &mallory_key,
        room,
        epoch.number,
        &unaware_key,
        &[kim_key, lee_key, mallory_key.public(), phone_key],
        Some(&origin),
        agency.clock.now(),
    )
    .expect("grant")
    .remove(0);
    let frame = wire::encode(&SignedFrame::sign(
        &mallory_key,
        FrameBody {
            author: mallory_chain,
            topic,
            sent_at: agency.clock.now(),
            nonce: [36; 16],
            payload: wire::encode(&ControlMessage::Grant(grant)),
        },
    ));
    mallory
        .handle()
        .publish_raw(frame.clone())
        .await
        .expect("published");
    // Taken by kim (an authorised member's grant): kim stores its frame.
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let store: Arc<dyn Store> = kim_store.clone();
        if MessageLog::new(store)
            .control_frames()
            .expect("frames")
            .contains(&frame)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "kim never took the grant"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    send(&kim, DIV, "After the insider's key").await;
    wait_for_message(&mut lee_events, "After the insider's key").await;
    let after = kims_latest();
    assert!(
        after.body.header.epoch.number > epoch.number,
        "kim moved past the key wrapped to the phone: {:?}",
        after.body.header.epoch
    );
    assert!(
        after.open(&unaware_key).is_err(),
        "the phone cannot read it"
    );
    for node in [kim, lee, mallory] {
        node.shutdown().await;
    }
}

/// Audit H4 through real nodes: a member of the division publishes a valid
/// grant of the division room's key at epoch `u64::MAX`, wrapped to every
/// member. Nobody takes it as the room's epoch: every member goes on
/// sending and reading under the room's own small epoch numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_granting_epoch_u64_max_freezes_nobody() {
    let mut agency = TestAgency::new(38);
    let kim_store = Arc::new(MemoryStore::new());
    let kim_credentials = agency.member("kim");
    let kim_key = kim_credentials.key.public();
    let kim = agency.spawn_with_store(kim_credentials, &[], kim_store.clone());
    let address = listen_address(&kim).await.expect("listening");
    let lee_credentials = agency.member("lee");
    let lee_key = lee_credentials.key.public();
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    let mallory_credentials = agency.member("mallory");
    let mallory_key = mallory_credentials.key.clone();
    let mallory = agency.spawn(mallory_credentials, std::slice::from_ref(&address));
    for node in [&kim, &lee, &mallory] {
        node.handle()
            .wait_for_peers(2, SETTLE)
            .await
            .expect("peers");
    }
    let room = division_room(&kim).await;
    let (mut kim_events, mut lee_events, mut mallory_events) = (
        kim.handle().events(),
        lee.handle().events(),
        mallory.handle().events(),
    );
    send(&kim, DIV, "Before the poison").await;
    wait_for_message(&mut lee_events, "Before the poison").await;
    wait_for_message(&mut mallory_events, "Before the poison").await;

    let poison = RoomKey::generate(&mut SeededEntropy::new(380));
    let grant = KeyGrant::issue(
        &mallory_key,
        room,
        u64::MAX,
        &poison,
        &[kim_key, lee_key, mallory_key.public()],
        agency.clock.now(),
    )
    .expect("grant")
    .remove(0);
    let mallory_device = mallory.handle().status().await.expect("status").device;
    // Then a frame every node refuses (a relay receipt on the control
    // topic): once kim says so, it has judged the grant before it.
    for message in [
        ControlMessage::Grant(grant),
        ControlMessage::Stored(Vec::new()),
    ] {
        mallory
            .handle()
            .publish_control(wire::encode(&message))
            .await
            .expect("published");
    }
    let reason = wait_for(
        &mut kim_events,
        "the frame after the grant refused",
        |event| match event {
            NodeEvent::GossipRejected { from, reason }
                if from.to_string() == mallory_device.to_string() =>
            {
                Some(reason.clone())
            }
            _ => None,
        },
    )
    .await;
    assert!(reason.contains("stored receipts"), "{reason}");

    // Everyone still sends and reads, kim, lee and mallory alike.
    send(&kim, DIV, "After the poison, from kim").await;
    wait_for_message(&mut lee_events, "After the poison, from kim").await;
    wait_for_message(&mut mallory_events, "After the poison, from kim").await;
    send(&lee, DIV, "After the poison, from lee").await;
    wait_for_message(&mut kim_events, "After the poison, from lee").await;
    wait_for_message(&mut mallory_events, "After the poison, from lee").await;
    send(&mallory, DIV, "After the poison, from mallory").await;
    wait_for_message(&mut kim_events, "After the poison, from mallory").await;
    for node in [&kim, &lee, &mallory] {
        let info = node.handle().rooms().await.expect("rooms");
        let division = info.iter().find(|r| r.name == DIV).expect("division");
        assert!(division.can_send, "a member cannot send any more");
    }
    let envelopes = stored_envelopes(&kim_store, room);
    assert!(envelopes.len() >= 4, "{} envelopes", envelopes.len());
    for envelope in envelopes {
        assert!(
            envelope.body.header.epoch.number < 1_000,
            "an envelope under epoch {}",
            envelope.body.header.epoch.number
        );
        assert!(
            envelope.open(&poison).is_err(),
            "sealed under the poison key"
        );
    }
    for node in [kim, lee, mallory] {
        node.shutdown().await;
    }
}
