//! The agency policy and the lease over real in-process nodes, with the
//! agency's controlled clock: an operator's policy reaches a device through
//! the mesh; a device that meets no admitted peer for longer than its lease
//! erases itself at its next start, or at the next tick while it runs, and
//! warns ahead; meeting a peer renews the lease; a clock set back does not
//! buy time; old, forged and revoked operators' policies are refused; the
//! policy's wrong-PIN limit applies at the device's next unlock.

use std::sync::Arc;
use std::time::Duration;

use baro_node::clock::Clock;
use baro_node::crypto::{KdfParams, Passphrase};
use baro_node::identity::KeyPair;
use baro_node::store::{Home, MAX_PIN_ATTEMPTS, MemoryStore, SledStore, Store, StoreError, Unlock};
use baro_node::trust::{
    AgencyPolicy, AgencyPolicyBody, Certificate, CertificateBody, CertificateChain, DAY_SECS,
    Issuer, POLICY_FORMAT, PolicySettings, Revocation, RevocationBody, RevocationScope, Role,
};
use baro_node::wire;
use baro_node::{Credentials, Node, NodeBuilder, NodeError, NodeEvent};
use baro_tests::mesh::{SETTLE, TestAgency, listen_address, memory_config, subject, wait_for};

/// Starts `credentials` on `store` with the agency's clock; `Err` if the
/// node refused to start (it erased itself).
fn start(
    agency: &TestAgency,
    credentials: Credentials,
    store: Arc<dyn Store>,
    bootstrap: &[libp2p::Multiaddr],
) -> Result<Node, NodeError> {
    NodeBuilder::new(credentials)
        .config(memory_config(bootstrap))
        .transport(baro_node::net::TransportKind::Memory)
        .clock(Arc::new(agency.clock.clone()))
        .store(store)
        .spawn()
}

/// Lee (who holds the agency policy) and Kim's device, met once: Kim
/// leaves with the policy. Returns Lee's node and its address.
async fn kim_meets_lee_and_learns_the_policy(
    agency: &mut TestAgency,
    kim: &Credentials,
    kim_store: &Arc<dyn Store>,
    lease_days: u32,
    warning_days: u32,
) -> (Node, libp2p::Multiaddr) {
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, &[]);
    lee.handle()
        .submit_policy(agency.policy(1, lease_days, warning_days))
        .await
        .expect("the operator's policy is taken");
    let address = listen_address(&lee).await.expect("listening");
    let node = start(
        agency,
        kim.clone(),
        kim_store.clone(),
        std::slice::from_ref(&address),
    )
    .expect("starts");
    let mut events = node.handle().events();
    wait_for(&mut events, "the policy", |event| match event {
        NodeEvent::PolicyChanged(view) => Some(view.clone()),
        _ => None,
    })
    .await;
    let status = node.handle().status().await.expect("status");
    assert_eq!(status.policy.lease_days, lease_days);
    assert_eq!(status.policy.version, 1);
    node.shutdown().await;
    (lee, address)
}

fn wiped(store: &Arc<dyn Store>) -> bool {
    matches!(store.get("messages", b"x"), Err(StoreError::Wiped))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_past_its_lease_wipes_itself_at_its_next_start() {
    let mut agency = TestAgency::new(170);
    let kim = agency.member("kim");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (lee, _) = kim_meets_lee_and_learns_the_policy(&mut agency, &kim, &store, 14, 3).await;
    // The phone is stolen and kept offline for 15 days.
    agency.clock.advance(15 * DAY_SECS);
    let refused = start(&agency, kim.clone(), store.clone(), &[]).expect_err("no start");
    let notice = refused.to_string();
    assert!(
        notice.contains("met no admitted peer since") && notice.contains("lease of 14 days"),
        "{notice}"
    );
    assert!(
        wiped(&store),
        "the store was erased before the node started"
    );
    lee.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_a_peer_renews_the_lease() {
    let mut agency = TestAgency::new(171);
    let kim = agency.member("kim");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (lee, address) =
        kim_meets_lee_and_learns_the_policy(&mut agency, &kim, &store, 14, 3).await;
    // Ten days later Kim is back in the office and meets Lee again.
    agency.clock.advance(10 * DAY_SECS);
    let node = start(&agency, kim.clone(), store.clone(), &[address]).expect("within its lease");
    node.handle()
        .wait_for_peers(1, SETTLE)
        .await
        .expect("meets Lee");
    let status = node.handle().status().await.expect("status");
    assert_eq!(status.policy.last_met, agency.clock.now());
    node.shutdown().await;
    // Ten more days: twenty since the first meeting, ten since the last.
    agency.clock.advance(10 * DAY_SECS);
    let node = start(&agency, kim.clone(), store.clone(), &[]).expect("renewed lease");
    let status = node.handle().status().await.expect("status");
    assert_eq!(status.policy.lease_days_left, None, "{:?}", status.policy);
    assert!(
        status
            .policy
            .lease
            .as_deref()
            .is_some_and(|l| l.starts_with("lease runs until")),
        "{:?}",
        status.policy
    );
    node.shutdown().await;
    lee.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_near_its_lease_end_warns_and_wipes_at_the_tick_when_it_ends() {
    let mut agency = TestAgency::new(172);
    let kim = agency.member("kim");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (lee, _) = kim_meets_lee_and_learns_the_policy(&mut agency, &kim, &store, 14, 3).await;
    agency.clock.advance(12 * DAY_SECS);
    let node = start(&agency, kim.clone(), store.clone(), &[]).expect("two days left");
    let mut events = node.handle().events();
    let status = node.handle().status().await.expect("status");
    assert_eq!(status.policy.lease_days_left, Some(2));
    assert!(
        status
            .policy
            .lease
            .as_deref()
            .is_some_and(|l| l.starts_with("lease ends in 2 days")),
        "{:?}",
        status.policy
    );
    // One day later, still alone, the node warns again (one day left)...
    agency.clock.advance(DAY_SECS);
    let warning = wait_for(&mut events, "the lease warning", |event| match event {
        NodeEvent::LeaseEnding(view) => view.lease_days_left.filter(|days| *days == 1),
        _ => None,
    })
    .await;
    assert_eq!(warning, 1);
    // ...and when the lease ends while it runs, it erases itself at the next tick.
    agency.clock.advance(DAY_SECS);
    let notice = wait_for(&mut events, "the wipe", |event| match event {
        NodeEvent::Wiped { notice } => Some(notice.clone()),
        _ => None,
    })
    .await;
    assert!(notice.contains("lease of 14 days"), "{notice}");
    assert!(wiped(&store));
    lee.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_back_does_not_extend_the_lease() {
    let mut agency = TestAgency::new(173);
    let kim = agency.member("kim");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (lee, _) = kim_meets_lee_and_learns_the_policy(&mut agency, &kim, &store, 14, 3).await;
    let met = agency.clock.now();
    // Ten days offline; the thief starts the phone once, then sets its
    // clock back to the day after the last meeting.
    agency.clock.advance(10 * DAY_SECS);
    start(&agency, kim.clone(), store.clone(), &[])
        .expect("starts")
        .shutdown()
        .await;
    agency.clock.set(met + DAY_SECS);
    let node = start(&agency, kim.clone(), store.clone(), &[]).expect("starts");
    let status = node.handle().status().await.expect("status");
    assert_eq!(
        status.policy.lease_days_left, None,
        "not warning yet: {:?}",
        status.policy
    );
    assert!(
        status
            .policy
            .lease
            .as_deref()
            .is_some_and(|l| l.contains(&baro_node::clock::format_utc(met + 14 * DAY_SECS))),
        "{:?}",
        status.policy
    );
    node.shutdown().await;
    // Started again with the clock still held back, the lease still ends
    // fourteen days after the meeting, not fourteen days after the clock.
    agency.clock.set(met + 6 * DAY_SECS);
    let node = start(&agency, kim.clone(), store.clone(), &[]).expect("starts");
    assert!(
        node.handle()
            .status()
            .await
            .expect("status")
            .policy
            .lease
            .is_some_and(|l| l.contains(&baro_node::clock::format_utc(met + 14 * DAY_SECS)))
    );
    node.shutdown().await;
    lee.shutdown().await;
}

/// A second operator certified by the root, and its key.
fn second_operator(agency: &TestAgency) -> (KeyPair, CertificateChain) {
    let key = KeyPair::generate(&mut baro_node::identity::SeededEntropy::new(9));
    let root = &agency.agency.root;
    let body = CertificateBody {
        agency: agency.agency.operator.agency.id(),
        serial: 77,
        key: key.public(),
        subject: subject("choi.op", "MOIS"),
        role: Role::Operator,
        not_before: baro_node::testing::T0,
        not_after: baro_node::testing::T0 + 365 * DAY_SECS,
        issuer: root.public(),
    };
    let chain = CertificateChain {
        certificates: vec![Certificate::issue(body, root)],
    };
    (key, chain)
}

fn policy_by(
    agency: &TestAgency,
    issuer: &CertificateChain,
    key: &KeyPair,
    version: u64,
    lease_days: u32,
) -> Vec<u8> {
    wire::encode(&AgencyPolicy::sign(
        AgencyPolicyBody {
            agency: agency.agency.operator.agency.id(),
            format: POLICY_FORMAT,
            version,
            issued_at: agency.clock.now(),
            settings: PolicySettings {
                lease_days,
                lease_warning_days: 0,
                ..PolicySettings::default()
            },
            extensions: Vec::new(),
            issuer: issuer.clone(),
        },
        key,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_forged_and_revoked_operators_policies_are_refused() {
    let mut agency = TestAgency::new(174);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials.clone(), &[]);
    let bootstrap = [listen_address(&kim).await.expect("listening")];
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials.clone(), &bootstrap);
    kim.handle().wait_for_peers(1, SETTLE).await.expect("mesh");
    let handle = kim.handle();
    let v5 = agency.policy(5, 14, 3);
    handle
        .submit_policy(v5.clone())
        .await
        .expect("version 5 taken");

    // An older version (a replay of the policy before the lease), and the
    // same policy again.
    for replay in [agency.policy(4, 0, 0), v5] {
        let error = handle
            .submit_policy(replay)
            .await
            .expect_err("not newer")
            .to_string();
        assert!(
            error.contains("already holds agency policy version 5"),
            "{error}"
        );
    }
    // Signed by Lee's member device: a thief holding a phone cannot lift the lease.
    let by_member = policy_by(&agency, &lee_credentials.chain, &lee_credentials.key, 9, 0);
    let error = handle
        .submit_policy(by_member.clone())
        .await
        .expect_err("a member cannot set it")
        .to_string();
    assert!(error.contains("cannot set the agency policy"), "{error}");
    // The same, gossiped by Lee: rejected, and Kim's policy stays.
    let mut events = handle.events();
    let deadline = tokio::time::Instant::now() + SETTLE;
    while lee.handle().publish_raw(by_member.clone()).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "no gossip mesh");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reason = wait_for(&mut events, "the rejection", |event| match event {
        NodeEvent::GossipRejected { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("cannot set the agency policy"), "{reason}");
    // The operator's policy with the lease cut out after signing.
    let mut altered: AgencyPolicy =
        wire::decode(&agency.policy(10, 14, 3)).expect("policy decodes");
    altered.body.settings.lease_days = 0;
    let error = handle
        .submit_policy(wire::encode(&altered))
        .await
        .expect_err("forged")
        .to_string();
    assert!(error.contains("bad signature"), "{error}");
    // A second operator, revoked by the root: its policy is refused at receipt.
    let (choi_key, choi_chain) = second_operator(&agency);
    let root_revocation = Revocation::sign(
        RevocationBody {
            agency: agency.agency.operator.agency.id(),
            scope: RevocationScope::Device,
            target: choi_chain.clone(),
            reason: "operator left the agency".into(),
            issued_at: agency.clock.now(),
            wipe: false,
            issuer: Issuer::Root,
        },
        &agency.agency.root,
    );
    handle
        .submit_revocation(wire::encode(&root_revocation))
        .await
        .expect("root revocation taken");
    let error = handle
        .submit_policy(policy_by(&agency, &choi_chain, &choi_key, 11, 0))
        .await
        .expect_err("revoked operator")
        .to_string();
    assert!(error.contains("its operator was revoked"), "{error}");

    let status = handle.status().await.expect("status");
    assert_eq!((status.policy.version, status.policy.lease_days), (5, 14));
    // A relay holds no lease: it shows none.
    let relay_credentials = agency.relay("field-office");
    let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
    relay
        .handle()
        .submit_policy(agency.policy(5, 14, 3))
        .await
        .expect("taken");
    let relay_status = relay.handle().status().await.expect("status");
    assert_eq!(relay_status.policy.lease_days, 14);
    assert_eq!(relay_status.policy.lease, None);
    for node in [kim, lee, relay] {
        node.shutdown().await;
    }
}

/// A PIN unlock with tiny argon2id costs (the limit is under test, not the KDF).
fn pin(text: &str) -> Unlock {
    Unlock::Pin {
        pin: Passphrase::new(text.into()),
        kdf: KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        max_attempts: MAX_PIN_ATTEMPTS,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agencys_wrong_pin_limit_reaches_the_device_and_applies_at_its_next_unlock() {
    let mut agency = TestAgency::new(175);
    let kim = agency.member("kim");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("kim");
    let home = Home::open_or_create_with(&root, &pin("kim 2468 pin")).expect("home");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(home).expect("store"));

    // The operator allows 3 wrong PINs (the default is 10); Kim's phone
    // learns the policy from Lee.
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, &[]);
    let operator = &agency.agency.operator;
    let strict = wire::encode(&AgencyPolicy::sign(
        AgencyPolicyBody {
            agency: operator.agency.id(),
            format: POLICY_FORMAT,
            version: 1,
            issued_at: agency.clock.now(),
            settings: PolicySettings {
                max_pin_attempts: 3,
                ..PolicySettings::default()
            },
            extensions: Vec::new(),
            issuer: operator.chain.clone(),
        },
        &operator.key,
    ));
    lee.handle().submit_policy(strict).await.expect("taken");
    let address = listen_address(&lee).await.expect("listening");
    let node = start(&agency, kim, store.clone(), &[address]).expect("starts");
    let mut events = node.handle().events();
    let view = wait_for(&mut events, "the policy", |event| match event {
        NodeEvent::PolicyChanged(view) => Some(view.clone()),
        _ => None,
    })
    .await;
    assert_eq!((view.version, view.max_pin_attempts), (1, 3));
    node.shutdown().await;
    drop(store);
    lee.shutdown().await;

    // The phone is stolen; the thief guesses PINs.
    for left in [2, 1] {
        match Home::open_with(&root, &pin("000000")) {
            Err(StoreError::WrongPin { left: l }) => assert_eq!(l, left),
            other => panic!("expected a wrong PIN with {left} left, got {other:?}"),
        }
    }
    let erased = Home::open_with(&root, &pin("000000")).expect_err("erased");
    assert!(
        matches!(&erased, StoreError::Revoked(notice) if notice.contains("3 wrong PINs")),
        "{erased}"
    );
    // Even the right PIN opens nothing now.
    let after = Home::open_with(&root, &pin("kim 2468 pin")).expect_err("gone");
    assert!(matches!(after, StoreError::Revoked(_)), "{after}");
}
