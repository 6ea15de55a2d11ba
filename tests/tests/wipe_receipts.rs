//! Wipe receipts over a real in-process mesh (audit M5): a receipt is
//! checked against the device chain it carries before anything is done
//! with it, and one for a revocation a node does not know is never passed
//! on; junk costs its publisher.

use std::time::Duration;

use baro_node::NodeEvent;
use baro_node::clock::Clock;
use baro_node::trust::{WipeReceipt, WipeReceiptBody};
use baro_node::wire;
use baro_tests::mesh::{SETTLE, TestAgency, listen_address};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_wipe_receipts_for_unknown_revocations_are_not_forwarded_and_cost_their_publisher() {
    let mut agency = TestAgency::new(91);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &[]);
    let bootstrap = [listen_address(&kim).await.expect("listening")];
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, &bootstrap);
    let mallory_credentials = agency.member("mallory");
    let mallory = agency.spawn(mallory_credentials.clone(), &bootstrap);
    for node in [&kim, &lee, &mallory] {
        node.handle().wait_for_peers(2, SETTLE).await.expect("mesh");
    }
    let mut kim_events = kim.handle().events();
    let mut lee_events = lee.handle().events();
    // Mallory's gossip must reach both before the junk goes out.
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

    // Receipts naming revocations nobody issued, each carrying Mallory's
    // genuine chain but signed by a key that is not the device's.
    let stranger = agency.key();
    let junk: Vec<Vec<u8>> = (0..3u8)
        .map(|i| {
            let body = WipeReceiptBody {
                agency: mallory_credentials.agency.id(),
                revocation: [i.wrapping_add(1); 32],
                device: mallory_credentials.chain.clone(),
                wiped_at: agency.clock.now(),
            };
            wire::encode(&WipeReceipt::sign(body, &stranger))
        })
        .collect();
    for receipt in &junk {
        mallory
            .handle()
            .publish_raw(receipt.clone())
            .await
            .expect("published");
    }
    let mallory_peer = mallory_device.peer_id().expect("peer id");
    let mut rejected = [0usize; 2];
    let deadline = tokio::time::Instant::now() + SETTLE;
    while rejected.iter().sum::<usize>() < junk.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "junk receipts rejected so far: {rejected:?}"
        );
        for (count, events) in rejected.iter_mut().zip([&mut kim_events, &mut lee_events]) {
            while let Ok(event) = events.try_recv() {
                if let NodeEvent::GossipRejected { from, .. } = event {
                    assert_eq!(from, mallory_peer, "an honest node passed junk on");
                    *count += 1;
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
            .peer_score(mallory_device)
            .await
            .expect("score")
            .expect("mallory is scored");
        assert!(score < 0.0, "the publisher is penalised: {score}");
    }
    // Nothing was recorded as acknowledged.
    assert!(kim.handle().revocations().await.expect("list").is_empty());
    // Neither honest node forwarded anything to the other: no rejection
    // names anyone but Mallory (checked above), and none comes late.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for events in [&mut kim_events, &mut lee_events] {
        while let Ok(event) = events.try_recv() {
            if let NodeEvent::GossipRejected { from, .. } = event {
                assert_eq!(from, mallory_peer, "an honest node passed junk on");
            }
        }
    }
}
