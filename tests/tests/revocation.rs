//! Revocation and wipe over real in-process meshes: a revoked device is shut
//! out by every peer and erases itself, online or weeks later through a
//! relay; forged revocations wipe nothing and cost their forwarder; an
//! official revokes their own lost phone from their PC.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baro_node::clock::Clock;
use baro_node::crypto::RoomKey;
use baro_node::identity::DeviceId;
use baro_node::rooms::RoomId;
use baro_node::store::{Home, MemoryStore, MessageLog, SledStore, StoreError};
use baro_node::trust::{Issuer, Revocation, RevocationScope};
use baro_node::wire::{self, Envelope};
use baro_node::{Node, NodeEvent};
use baro_tests::mesh::{DIV, SETTLE, TestAgency, listen_address, send, wait_for, wait_for_message};

/// Polls until `node` has no connection to `device` any more.
async fn until_gone(node: &Node, device: DeviceId) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let peers = node.handle().peers().await.expect("peers");
        if peers.iter().all(|p| p.device != device) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{device} is still connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `node` is connected to `device` again.
async fn until_connected(node: &Node, device: DeviceId) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let peers = node.handle().peers().await.expect("peers");
        if peers.iter().any(|p| p.device == device) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{device} did not come back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn department(agency: &TestAgency) -> RoomId {
    RoomId::department(
        &agency.agency.operator.agency.id(),
        &DIV.parse().expect("org"),
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("list") {
                stack.push(entry.expect("entry").path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

fn sled_store(home: &Path) -> Arc<SledStore> {
    let home = Home::open_or_create_with(home, &baro_tests::test_unlock()).expect("home");
    Arc::new(SledStore::open(home).expect("sled"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_device_is_shut_out_by_every_peer_and_wipes_itself_within_five_seconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agency = TestAgency::new(61);
    let room = department(&agency);
    let console = agency.operator_device();
    let operator = agency.spawn(console, &[]);
    let bootstrap = [listen_address(&operator).await.expect("listening")];
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &bootstrap);
    let lee_store = Arc::new(MemoryStore::new());
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn_with_store(lee_credentials, &bootstrap, lee_store.clone());
    // Choi's phone keeps its data in a real home on disk.
    let phone_credentials = agency.member("choi");
    let phone_home = dir.path().join("choi-phone");
    let phone_store = sled_store(&phone_home);
    let phone = agency.spawn_with_store(phone_credentials.clone(), &bootstrap, phone_store.clone());
    for node in [&operator, &kim, &lee, &phone] {
        node.handle().wait_for_peers(3, SETTLE).await.expect("mesh");
    }
    let mut phone_events = phone.handle().events();
    send(&kim, DIV, "Budget draft: 4.2 billion won").await;
    wait_for_message(&mut phone_events, "Budget draft: 4.2 billion won").await;
    // What the phone holds, to look for on its disk afterwards.
    let phone_keys: Vec<RoomKey> = MessageLog::new(phone_store.clone())
        .keys()
        .expect("keys")
        .into_iter()
        .map(|(_, _, key)| key)
        .collect();
    assert!(!phone_keys.is_empty(), "the phone holds the room key");
    let secret = phone_credentials.key.secret().0;
    let chain_bytes = wire::encode(&phone_credentials.chain);
    let phone_device = phone.handle().device();

    let mut operator_events = operator.handle().events();
    let revocation = agency.revocation(
        &phone_credentials.chain,
        RevocationScope::Device,
        "phone lost on the KTX",
        true,
    );
    let issued = Instant::now();
    let view = operator
        .handle()
        .submit_revocation(revocation)
        .await
        .expect("the operator's node takes it");
    assert!(view.published, "published at once: {view:?}");
    let notice = wait_for(&mut phone_events, "the phone's wipe", |event| match event {
        NodeEvent::Wiped { notice } => Some(notice.clone()),
        _ => None,
    })
    .await;
    let wiped_after = issued.elapsed();
    for node in [&operator, &kim, &lee] {
        until_gone(node, phone_device).await;
    }
    let shut_out_after = issued.elapsed();
    eprintln!(
        "in-process: revocation issued → phone wiped in {wiped_after:?}; shut out by all 3 peers in {shut_out_after:?}"
    );
    assert!(wiped_after < Duration::from_secs(5), "{wiped_after:?}");
    assert!(
        shut_out_after < Duration::from_secs(5),
        "{shut_out_after:?}"
    );
    assert!(
        notice.starts_with("this device was revoked by operator operator at ")
            && notice.ends_with(": local data erased"),
        "{notice}"
    );
    // The operator hears the phone's wipe receipt.
    let confirmed = wait_for(
        &mut operator_events,
        "the wipe receipt",
        |event| match event {
            NodeEvent::WipeConfirmed { device, .. } => Some(*device),
            _ => None,
        },
    )
    .await;
    assert_eq!(confirmed, phone_device);
    let listed = operator.handle().revocations().await.expect("revocations");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].wiped.len(), 1, "{listed:?}");
    assert!(!listed[0].seen_by.is_empty(), "{listed:?}");

    // Nothing readable is left on the phone's disk, and it says why.
    drop(phone_store);
    for (path, bytes) in files_under(&phone_home) {
        assert!(
            !contains(&bytes, b"4.2 billion won"),
            "plaintext in {path:?}"
        );
        assert!(!contains(&bytes, &secret), "device key in {path:?}");
        assert!(!contains(&bytes, &chain_bytes), "certificate in {path:?}");
        assert!(!contains(&bytes, b"choi"), "user id in {path:?}");
        for key in &phone_keys {
            assert!(
                !contains(&bytes, key.expose_bytes()),
                "room key in {path:?}"
            );
        }
    }
    match Home::open(&phone_home) {
        Err(StoreError::Revoked(said)) => assert_eq!(said, notice),
        other => panic!("expected the revocation notice, got {other:?}"),
    }
    // The phone cannot come back: refused at admission by everyone.
    let again = agency.spawn(phone_credentials, &bootstrap);
    let mut again_events = again.handle().events();
    wait_for(&mut again_events, "the revived phone's wipe", |event| {
        matches!(event, NodeEvent::Wiped { .. }).then_some(())
    })
    .await;

    // The room moves on with a key the phone never held.
    let mut kim_events = kim.handle().events();
    send(&lee, DIV, "New figures after the phone was lost").await;
    wait_for_message(&mut kim_events, "New figures after the phone was lost").await;
    let last: Envelope = MessageLog::new(lee_store.clone())
        .history(room, 1)
        .expect("history")
        .pop()
        .expect("lee's message");
    for key in &phone_keys {
        assert!(
            last.open(key).is_err(),
            "readable with a key the phone held"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_device_learns_its_revocation_weeks_later_from_a_relay_before_anything_else() {
    let mut agency = TestAgency::new(62);
    let relay_credentials = agency.relay("relay-sejong");
    let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
    let bootstrap = [listen_address(&relay).await.expect("relay listens")];
    let operator_credentials = agency.operator_device();
    let operator = agency.spawn(operator_credentials, &bootstrap);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &bootstrap);
    let phone_credentials = agency.member("lee");
    let phone_store = Arc::new(MemoryStore::new());
    let phone = agency.spawn_with_store(phone_credentials.clone(), &bootstrap, phone_store.clone());
    for node in [&relay, &operator, &kim, &phone] {
        node.handle().wait_for_peers(3, SETTLE).await.expect("mesh");
    }
    let mut phone_events = phone.handle().events();
    send(&kim, DIV, "see you at the ministry").await;
    wait_for_message(&mut phone_events, "see you at the ministry").await;
    phone.shutdown().await;

    // The phone is lost and off; the operator revokes it; Kim writes on.
    let mut relay_events = relay.handle().events();
    let revocation = agency.revocation(
        &phone_credentials.chain,
        RevocationScope::Device,
        "left in a taxi",
        true,
    );
    operator
        .handle()
        .submit_revocation(revocation)
        .await
        .expect("taken");
    wait_for(&mut relay_events, "the relay enforcing it", |event| {
        matches!(event, NodeEvent::Revoked(_)).then_some(())
    })
    .await;
    send(&kim, DIV, "the new access codes are 4471").await;
    operator.shutdown().await;
    kim.shutdown().await;

    // Three weeks later the phone is switched on; only the relay is there.
    agency.clock.advance(21 * 86_400);
    let phone = agency.spawn_with_store(phone_credentials, &bootstrap, phone_store);
    let mut phone_events = phone.handle().events();
    let mut seen = Vec::new();
    let notice = wait_for(&mut phone_events, "the phone's wipe", |event| {
        seen.push(format!("{event:?}"));
        match event {
            NodeEvent::Wiped { notice } => Some(notice.clone()),
            _ => None,
        }
    })
    .await;
    assert!(notice.contains("revoked by operator operator"), "{notice}");
    for event in &seen {
        assert!(
            !event.contains("access codes")
                && !event.starts_with("Synced")
                && !event.starts_with("PeerAdmitted")
                && !event.starts_with("Message"),
            "the phone got something before its revocation: {event}"
        );
    }
    // The relay refused it at admission, and it answered with its wipe
    // receipt on the refused connection.
    let (mut refused, mut confirmed) = (None, false);
    wait_for(&mut relay_events, "the refusal and the receipt", |event| {
        match event {
            NodeEvent::PeerRefused { reason, .. } if reason.contains("revoked") => {
                refused = Some(reason.clone())
            }
            NodeEvent::WipeConfirmed { .. } => confirmed = true,
            _ => {}
        }
        (refused.is_some() && confirmed).then_some(())
    })
    .await;
    let refused = refused.unwrap_or_default();
    assert!(refused.contains("left in a taxi"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_revocations_wipe_nothing_and_their_forwarder_is_penalised() {
    let mut agency = TestAgency::new(63);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &[]);
    let bootstrap = [listen_address(&kim).await.expect("listening")];
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials.clone(), &bootstrap);
    let mallory_credentials = agency.member("mallory");
    let mallory = agency.spawn(mallory_credentials.clone(), &bootstrap);
    for node in [&kim, &lee, &mallory] {
        node.handle().wait_for_peers(2, SETTLE).await.expect("mesh");
    }
    let now = agency.clock.now();
    let body = |issuer: Issuer| baro_node::trust::RevocationBody {
        agency: agency.agency.operator.agency.id(),
        scope: RevocationScope::Device,
        target: lee_credentials.chain.clone(),
        reason: "forged".into(),
        issued_at: now,
        wipe: true,
        issuer,
    };
    // Signed by a member (another user's device).
    let by_member = Revocation::sign(
        body(Issuer::Chain(mallory_credentials.chain.clone())),
        &mallory_credentials.key,
    );
    // Signed by another agency's operator.
    let other = TestAgency::new(64);
    let mut foreign_body = body(Issuer::Chain(other.agency.operator.chain.clone()));
    foreign_body.agency = other.agency.operator.agency.id();
    let foreign = Revocation::sign(foreign_body, &other.agency.operator.key);
    // A genuine revocation (of Mallory's old phone) replayed at Lee.
    let old_phone = agency.member("mallory");
    let genuine: Revocation = wire::decode(&agency.revocation(
        &old_phone.chain,
        RevocationScope::Device,
        "replaced",
        true,
    ))
    .expect("genuine");
    let mut retargeted = genuine.clone();
    retargeted.body.target = lee_credentials.chain.clone();
    // Malformed: a revocation header over garbage.
    let mut malformed = wire::encode(&genuine);
    malformed.truncate(40);

    let mut kim_events = kim.handle().events();
    let mut lee_events = lee.handle().events();
    // Kim and Lee each stop listening to Mallory after two invalid messages:
    // before the four forgeries go out, Mallory's gossip must reach both.
    let mallory_device = mallory.handle().device();
    for (i, events) in [&mut kim_events, &mut lee_events].into_iter().enumerate() {
        let notice = format!("notice {i}");
        let deadline = tokio::time::Instant::now() + SETTLE;
        'heard: loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "mallory's notice {i} never arrived"
            );
            let _ = mallory
                .handle()
                .publish_control(notice.clone().into_bytes())
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            while let Ok(event) = events.try_recv() {
                if let NodeEvent::Gossip {
                    author, payload, ..
                } = event
                    && author == mallory_device
                    && payload == notice.as_bytes()
                {
                    break 'heard;
                }
            }
        }
    }
    let forgeries = [
        wire::encode(&by_member),
        wire::encode(&foreign),
        wire::encode(&retargeted),
        malformed,
    ];
    for forged in &forgeries {
        mallory
            .handle()
            .publish_raw(forged.clone())
            .await
            .expect("published");
    }
    let mallory_peer = mallory.handle().device().peer_id().expect("peer id");
    // Each forgery is rejected by whichever of Kim and Lee Mallory sent it
    // to (gossip does not forward what it rejects).
    let mut rejected = [0usize; 2];
    let deadline = tokio::time::Instant::now() + SETTLE;
    while rejected.iter().sum::<usize>() < forgeries.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "forgeries rejected so far: {rejected:?}"
        );
        for (count, events) in rejected.iter_mut().zip([&mut kim_events, &mut lee_events]) {
            while let Ok(event) = events.try_recv() {
                match event {
                    NodeEvent::GossipRejected { from, .. } if from == mallory_peer => *count += 1,
                    NodeEvent::Wiping { .. } | NodeEvent::Wiped { .. } => {
                        panic!("a forged revocation wiped a device: {event:?}")
                    }
                    _ => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (count, node) in rejected.iter().zip([&kim, &lee]) {
        if *count == 0 {
            continue;
        }
        let score = node
            .handle()
            .peer_score(mallory.handle().device())
            .await
            .expect("score")
            .expect("mallory is scored");
        assert!(score < 0.0, "the forwarder is penalised: {score}");
    }
    assert!(
        kim.handle().revocations().await.expect("list").is_empty(),
        "nothing was taken"
    );
    // Lee was not wiped: it still works, and nothing said otherwise.
    send(&lee, DIV, "still here").await;
    wait_for_message(&mut kim_events, "still here").await;
    while let Ok(event) = lee_events.try_recv() {
        assert!(
            !matches!(event, NodeEvent::Wiping { .. } | NodeEvent::Wiped { .. }),
            "{event:?}"
        );
    }
    // A forged revocation handed to a node directly is refused with a reason.
    let refused = kim
        .handle()
        .submit_revocation(wire::encode(&by_member))
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("revoke"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_revokes_their_lost_phone_from_their_pc_which_keeps_working() {
    let mut agency = TestAgency::new(65);
    let pc_credentials = agency.member("kim");
    let pc = agency.spawn(pc_credentials, &[]);
    let bootstrap = [listen_address(&pc).await.expect("listening")];
    let phone_credentials = agency.member("kim");
    let phone = agency.spawn(phone_credentials.clone(), &bootstrap);
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, &bootstrap);
    for node in [&pc, &phone, &lee] {
        node.handle().wait_for_peers(2, SETTLE).await.expect("mesh");
    }
    let mut phone_events = phone.handle().events();
    // Not someone else's device…
    let refused = pc
        .handle()
        .revoke_own_device(lee.handle().device(), "not mine")
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("belongs to lee"), "{refused}");
    // …but one's own lost phone.
    let view = pc
        .handle()
        .revoke_own_device(phone.handle().device(), "lost my phone")
        .await
        .expect("revoked");
    assert_eq!(view.user, "kim");
    assert!(view.issued_by.starts_with("kim's device"), "{view:?}");
    wait_for(&mut phone_events, "the phone's wipe", |event| {
        matches!(event, NodeEvent::Wiped { .. }).then_some(())
    })
    .await;
    until_gone(&lee, phone.handle().device()).await;
    // The PC notices the closed connection in its own time (a point-in-time
    // count failed once under load, the phone's connection not yet closed).
    until_gone(&pc, phone.handle().device()).await;
    let mut lee_events = lee.handle().events();
    send(&pc, DIV, "from my PC, phone is gone").await;
    wait_for_message(&mut lee_events, "from my PC, phone is gone").await;
    let peers = pc.handle().peers().await.expect("peers");
    assert_eq!(
        peers.iter().map(|p| p.device).collect::<Vec<_>>(),
        vec![lee.handle().device()],
        "the PC keeps Lee, and only Lee"
    );
}

/// Audit M10: a restart re-derives the same revocation set. Kim's PC
/// revokes her phone; then an operator revokes the PC with a revocation
/// dated earlier. Lee's node took both, in that order. Replaying them by
/// date at a restart made the PC's revocation look issued by a revoked
/// device, so the phone was let back in on Lee's node alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_revocation_the_node_took_whatever_their_dates() {
    let mut agency = TestAgency::new(66);
    let pc = agency.member("kim");
    let phone = agency.member("kim");
    let lee_credentials = agency.member("lee");
    let store = Arc::new(MemoryStore::new());
    let lee = agency.spawn_with_store(lee_credentials.clone(), &[], store.clone());

    let now = agency.clock.now();
    let mut body = baro_node::trust::RevocationBody {
        agency: agency.agency.operator.agency.id(),
        scope: RevocationScope::Device,
        target: phone.chain.clone(),
        reason: "lost my phone".into(),
        issued_at: now + 200,
        wipe: true,
        issuer: Issuer::Chain(pc.chain.clone()),
    };
    let by_pc = wire::encode(&Revocation::sign(body.clone(), &pc.key));
    lee.handle()
        .submit_revocation(by_pc)
        .await
        .expect("the PC revokes the phone");
    body.target = pc.chain.clone();
    body.issued_at = now;
    body.reason = "PC reported stolen".into();
    body.issuer = Issuer::Chain(agency.agency.operator.chain.clone());
    let by_operator = wire::encode(&Revocation::sign(body, &agency.agency.operator.key));
    lee.handle()
        .submit_revocation(by_operator)
        .await
        .expect("then the operator revokes the PC");
    let before = lee.handle().revocations().await.expect("list");
    assert_eq!(before.len(), 2);
    lee.shutdown().await;

    let lee = agency.spawn_with_store(lee_credentials, &[], store);
    let after = lee.handle().revocations().await.expect("list");
    assert_eq!(
        after.iter().map(|v| &v.id).collect::<Vec<_>>(),
        before.iter().map(|v| &v.id).collect::<Vec<_>>(),
        "the same set after the restart"
    );
}

/// Audit H3(b), with the rule that the older of a user's two devices wins:
/// a thief holding Kim's newer phone revokes her PC and orders its wipe.
/// The PC is shut out but not wiped; its answer (its own revocation of the
/// phone) overrules the phone's, wherever it arrives, and takes the PC back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thief_with_the_newer_phone_cannot_wipe_the_pc_and_the_pc_s_answer_takes_it_back() {
    let mut agency = TestAgency::new(67);
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, &[]);
    let bootstrap = [listen_address(&lee).await.expect("listening")];
    let pc_credentials = agency.member("kim");
    let pc = agency.spawn(pc_credentials.clone(), &bootstrap);
    // The phone was enrolled an hour after the PC.
    let phone_credentials = agency.member_at("kim", baro_node::testing::T0 + 3_600);
    let both = [
        bootstrap[0].clone(),
        listen_address(&pc).await.expect("listening"),
    ];
    let phone = agency.spawn(phone_credentials.clone(), &both);
    for node in [&lee, &pc, &phone] {
        node.handle().wait_for_peers(2, SETTLE).await.expect("mesh");
    }
    let mut pc_events = pc.handle().events();
    let strike = phone
        .handle()
        .revoke_own_device(pc.handle().device(), "stolen")
        .await
        .expect("the phone may revoke Kim's other device");
    assert!(strike.wipe, "a wipe was asked for");
    wait_for(&mut pc_events, "the PC hears of it", |event| {
        matches!(event, NodeEvent::Revoked(view) if view.id == strike.id).then_some(())
    })
    .await;
    until_gone(&lee, pc.handle().device()).await;

    // Kim answers from the PC, which still runs: it was not wiped.
    let answer = pc
        .handle()
        .revoke_own_device(phone.handle().device(), "my phone was stolen")
        .await
        .expect("the PC is still running and may answer");
    // However the answer reaches Lee (here handed over directly: the PC is
    // shut out of Lee's node), it takes the PC back and the phone out.
    let body = baro_node::trust::RevocationBody {
        agency: agency.agency.operator.agency.id(),
        scope: RevocationScope::Device,
        target: phone_credentials.chain.clone(),
        reason: answer.reason.clone(),
        issued_at: answer.issued_at,
        wipe: true,
        issuer: Issuer::Chain(pc_credentials.chain.clone()),
    };
    let bytes = wire::encode(&Revocation::sign(body, &pc_credentials.key));
    lee.handle()
        .submit_revocation(bytes)
        .await
        .expect("Lee takes the PC's answer");
    let mut lee_events = lee.handle().events();
    until_gone(&lee, phone.handle().device()).await;
    until_connected(&lee, pc.handle().device()).await;
    send(&pc, DIV, "I am back, the phone is not").await;
    wait_for_message(&mut lee_events, "I am back, the phone is not").await;
}

/// Issue 17, deliverable 6: a phone revoked while it was off, and whose
/// certificate ran out before it came back, is still shown its revocation
/// at its first contact (peers keep a revocation 90 days past the
/// certificates it covers) and wipes itself, although no peer admits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_whose_certificate_ran_out_while_it_was_off_still_learns_its_revocation_and_wipes()
{
    let mut agency = TestAgency::new(68);
    let lee_key = agency.key();
    let lee_chain = agency.certify(
        &lee_key,
        "lee",
        "MOIS/Digital Government Bureau",
        baro_node::trust::Role::Member,
        365,
    );
    let lee = agency.spawn(agency.credentials(lee_key, lee_chain), &[]);
    let bootstrap = [listen_address(&lee).await.expect("listening")];
    // Choi's phone is certified for 30 days only.
    let phone_key = agency.key();
    let phone_chain = agency.certify(
        &phone_key,
        "choi",
        "MOIS/Digital Government Bureau",
        baro_node::trust::Role::Member,
        30,
    );
    let phone_credentials = agency.credentials(phone_key, phone_chain);
    let phone_store = Arc::new(MemoryStore::new());
    let phone = agency.spawn_with_store(phone_credentials.clone(), &bootstrap, phone_store.clone());
    phone
        .handle()
        .wait_for_peers(1, SETTLE)
        .await
        .expect("peer");
    phone.shutdown().await;

    // Revoked while off; back two months later, its certificate expired.
    let revocation = agency.revocation(
        &phone_credentials.chain,
        RevocationScope::Device,
        "phone lost on the KTX",
        true,
    );
    lee.handle()
        .submit_revocation(revocation)
        .await
        .expect("Lee takes it");
    agency.clock.advance(60 * 86_400);
    let phone = agency.spawn_with_store(phone_credentials, &bootstrap, phone_store);
    let mut events = phone.handle().events();
    let notice = wait_for(
        &mut events,
        "the expired phone's wipe",
        |event| match event {
            NodeEvent::Wiped { notice } => Some(notice.clone()),
            _ => None,
        },
    )
    .await;
    assert!(notice.contains("revoked by operator"), "{notice}");
}
