//! What the operator is told about a revocation (issue 17, deliverable 7),
//! over a real in-process mesh: a wipe receipt is an acknowledgement
//! signed by the revoked key, not proof of erasure; the view shows which
//! relays and devices hold the revocation and when the revoked device was
//! last seen.

use std::sync::Arc;
use std::time::Duration;

use baro_node::NodeEvent;
use baro_node::clock::Clock;
use baro_node::store::MemoryStore;
use baro_node::trust::RevocationScope;
use baro_tests::mesh::{SETTLE, TestAgency, listen_address, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sees_the_acknowledgement_who_holds_the_revocation_and_when_the_device_was_last_seen()
 {
    let mut agency = TestAgency::new(93);
    let relay_credentials = agency.relay("relay-sejong");
    let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
    let bootstrap = [listen_address(&relay).await.expect("relay listens")];
    let console = agency.operator_device();
    let operator = agency.spawn(console, &bootstrap);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &bootstrap);
    let phone_credentials = agency.member("lee");
    let phone = agency.spawn(phone_credentials.clone(), &bootstrap);
    for node in [&relay, &operator, &kim, &phone] {
        node.handle().wait_for_peers(3, SETTLE).await.expect("mesh");
    }
    let phone_device = phone.handle().device();
    let mut operator_events = operator.handle().events();
    let before = agency.clock.now();
    let revocation = agency.revocation(
        &phone_credentials.chain,
        RevocationScope::Device,
        "phone lost on the KTX",
        true,
    );
    operator
        .handle()
        .submit_revocation(revocation)
        .await
        .expect("taken");
    wait_for(
        &mut operator_events,
        "the wipe receipt",
        |event| match event {
            NodeEvent::WipeConfirmed { device, .. } => Some(*device),
            _ => None,
        },
    )
    .await;

    // Coverage: the relay and Kim's device come to hold it (they say so
    // when reconciling), each named with its role.
    let deadline = tokio::time::Instant::now() + SETTLE;
    let view = loop {
        let listed = operator.handle().revocations().await.expect("revocations");
        let view = listed.into_iter().next().expect("one revocation");
        let role_of = |user: &str| {
            view.held_by
                .iter()
                .find(|h| h.user.as_deref() == Some(user))
                .and_then(|h| h.role.clone())
        };
        if role_of("relay-sejong").as_deref() == Some("relay")
            && role_of("kim").as_deref() == Some("member")
        {
            break view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "coverage never showed the relay and kim: {view:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view.seen_by.len(), view.held_by.len());
    // The device acknowledged the order with its key: that is all a
    // receipt can say.
    assert_eq!(view.wiped.len(), 1);
    assert_eq!(view.wiped[0].device, phone_device);
    // It was connected when the revocation arrived, and its receipt came.
    let seen = view.device_last_seen.expect("the device was seen");
    assert!(seen >= before, "{seen} < {before}");
}
