//! The agency directory kept by relays (control plane v2): a device finds
//! officials by name, user id and org unit through the relay it is
//! connected to, revoked devices are not answered, and without a relay
//! a device answers with the officials it knows, saying so.

use std::sync::Arc;
use std::time::Duration;

use baro_node::Node;
use baro_node::api::People;
use baro_node::store::MemoryStore;
use baro_node::trust::{DirectoryQuery, RevocationScope};
use baro_tests::mesh::{SETTLE, TestAgency, listen_address};

fn users(people: &People) -> Vec<String> {
    people.people.iter().map(|p| p.user.clone()).collect()
}

/// Asks until `check` holds (the relay learns chains as peers connect).
async fn ask_until(node: &Node, query: DirectoryQuery, check: impl Fn(&People) -> bool) -> People {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let answer = node.handle().people(query.clone()).await;
        match answer {
            Ok(people) if check(&people) => return people,
            Ok(people) if tokio::time::Instant::now() >= deadline => {
                panic!("the directory never answered as expected: {people:?}")
            }
            Err(e) if tokio::time::Instant::now() >= deadline => panic!("{e}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_finds_colleagues_through_its_relay_by_name_id_and_unit() {
    let mut agency = TestAgency::new(61);
    let relay_credentials = agency.relay("relay-seoul");
    let relay = agency.spawn_relay(relay_credentials, &[], Arc::new(MemoryStore::new()));
    let relay_device = relay.handle().device();
    let bootstrap = [listen_address(&relay).await.expect("relay listens")];
    let (kim, lee) = (agency.member("kim.minji"), agency.member("lee.jun"));
    let kim = agency.spawn(kim, &bootstrap);
    let lee = agency.spawn(lee, &bootstrap);
    let park_phone = agency.member("park.sora");
    let park = agency.spawn(park_phone.clone(), &bootstrap);
    for node in [&relay, &kim, &lee, &park] {
        node.handle().wait_for_peers(3, SETTLE).await.expect("mesh");
    }

    let found = ask_until(&kim, DirectoryQuery::Search("PARK".into()), |p| {
        !p.people.is_empty()
    })
    .await;
    assert_eq!(users(&found), ["park.sora"]);
    assert_eq!(found.people[0].devices, [park.handle().device()]);
    assert_eq!(found.from, Some(relay_device), "the relay answered");

    let by_id = ask_until(&kim, DirectoryQuery::User("lee.jun".into()), |p| {
        !p.people.is_empty()
    })
    .await;
    assert_eq!(users(&by_id), ["lee.jun"]);

    let unit = DirectoryQuery::Unit {
        unit: "MOIS/Digital Government Bureau".parse().expect("org"),
        below: true,
        after: None,
    };
    let members = ask_until(&kim, unit.clone(), |p| p.people.len() == 3).await;
    assert_eq!(users(&members), ["kim.minji", "lee.jun", "park.sora"]);
    assert!(!members.more);

    // Park's phone is revoked: the directory stops answering it.
    let revocation = agency.revocation(
        &park_phone.chain,
        RevocationScope::Device,
        "phone lost on the KTX",
        false,
    );
    kim.handle()
        .submit_revocation(revocation)
        .await
        .expect("revocation taken");
    let after = ask_until(&kim, unit, |p| p.people.len() == 2).await;
    assert_eq!(users(&after), ["kim.minji", "lee.jun"]);
    ask_until(&lee, DirectoryQuery::Search("park".into()), |p| {
        p.people.is_empty()
    })
    .await;

    for node in [kim, lee, park, relay] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_relay_a_device_lists_the_officials_it_knows_and_says_so() {
    let mut agency = TestAgency::new(62);
    let (kim, lee) = (agency.member("kim.minji"), agency.member("lee.jun"));
    let kim = agency.spawn(kim, &[]);
    let bootstrap = [listen_address(&kim).await.expect("kim listens")];
    let lee = agency.spawn(lee, &bootstrap);
    for node in [&kim, &lee] {
        node.handle().wait_for_peers(1, SETTLE).await.expect("mesh");
    }
    let found = ask_until(&lee, DirectoryQuery::Search("kim".into()), |p| {
        !p.people.is_empty()
    })
    .await;
    assert_eq!(users(&found), ["kim.minji"]);
    assert_eq!(found.people[0].devices, [kim.handle().device()]);
    assert!(found.local_only, "no relay was asked: {found:?}");
    assert_eq!(found.from, None);
    let everyone = lee.handle().known_people().await.expect("answered");
    assert_eq!(users(&everyone), ["kim.minji", "lee.jun"]);
    for node in [kim, lee] {
        node.shutdown().await;
    }
}
