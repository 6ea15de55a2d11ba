//! End-to-end encrypted rooms over real in-process meshes.

use std::time::Duration;

use baro_node::NodeEvent;
use baro_node::wire::ReceiptState;
use baro_tests::mesh::{
    DIV, SETTLE, TestAgency, lee_restarted_on_sled, listen_address, send,
    three_connected_officials, wait_for_message,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_officials_in_a_department_room_see_every_message_in_the_same_order() {
    let [kim, lee, choi] = three_connected_officials(21).await;
    let rooms = kim.handle().rooms().await.expect("rooms");
    assert!(
        rooms
            .iter()
            .any(|r| r.name == DIV && r.kind == "department"),
        "{rooms:?}"
    );

    let mut lee_events = lee.handle().events();
    let mut choi_events = choi.handle().events();
    let mut kim_events = kim.handle().events();
    send(&kim, DIV, "Draft budget is in the shared folder").await;
    let got = wait_for_message(&mut lee_events, "Draft budget is in the shared folder").await;
    assert_eq!(got.sender_user, "kim");
    assert_eq!(got.sender_name, "Official kim");
    wait_for_message(&mut choi_events, "Draft budget is in the shared folder").await;
    send(&lee, DIV, "Reviewing it now").await;
    wait_for_message(&mut kim_events, "Reviewing it now").await;
    wait_for_message(&mut choi_events, "Reviewing it now").await;
    send(&choi, DIV, "Thanks both").await;
    wait_for_message(&mut kim_events, "Thanks both").await;
    wait_for_message(&mut lee_events, "Thanks both").await;

    let mut histories = Vec::new();
    for node in [&kim, &lee, &choi] {
        let history = node.handle().history(DIV, 50).await.expect("history");
        let lines: Vec<String> = history
            .iter()
            .map(|m| format!("{}: {}", m.sender_user, m.text))
            .collect();
        histories.push(lines);
    }
    assert_eq!(
        histories[0],
        vec![
            "kim: Draft budget is in the shared folder",
            "lee: Reviewing it now",
            "choi: Thanks both"
        ]
    );
    assert_eq!(histories[0], histories[1]);
    assert_eq!(histories[0], histories[2]);
    for node in [kim, lee, choi] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_written_offline_leaves_when_a_peer_is_admitted() {
    let mut agency = TestAgency::new(22);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &[]);
    let address = listen_address(&kim).await.expect("listening");
    let sent = kim
        .handle()
        .send(DIV, "written on the train")
        .await
        .expect("send");
    assert!(sent.queued, "nobody to send to yet: queued in the outbox");

    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    let mut lee_events = lee.handle().events();
    let got = wait_for_message(&mut lee_events, "written on the train").await;
    assert_eq!(got.sender_user, "kim");
    lee.shutdown().await;
    kim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_rooms_and_keys_survive_a_restart_on_sled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agency = TestAgency::new(23);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &[]);
    let address = listen_address(&kim).await.expect("listening");
    let lee = lee_restarted_on_sled(
        &mut agency,
        &kim,
        &address,
        dir.path(),
        "before the restart",
    )
    .await;
    let history = lee.handle().history(DIV, 10).await.expect("history");
    assert_eq!(
        history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        vec!["before the restart"]
    );
    assert_eq!(
        history[0].sender_user, "kim",
        "the sender's certificate was kept too"
    );
    lee.handle().wait_for_peers(1, SETTLE).await.expect("peer");
    let mut lee_events = lee.handle().events();
    send(&kim, DIV, "after the restart").await;
    wait_for_message(&mut lee_events, "after the restart").await;
    lee.shutdown().await;
    kim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_group_member_cannot_read_what_follows() {
    let [kim, lee, choi] = three_connected_officials(24).await;
    kim.handle()
        .create_group("Budget", vec!["lee".into(), "choi".into()])
        .await
        .expect("group");
    for member in [&lee, &choi] {
        let mut joined = false;
        for _ in 0..100 {
            let rooms = member.handle().rooms().await.expect("rooms");
            if rooms.iter().any(|r| r.name == "Budget" && r.can_send) {
                joined = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(joined, "member adopted the group");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut lee_events, mut choi_events) = (lee.handle().events(), choi.handle().events());
    send(&kim, "Budget", "before").await;
    wait_for_message(&mut lee_events, "before").await;
    wait_for_message(&mut choi_events, "before").await;

    kim.handle().remove("Budget", "choi").await.expect("remove");
    send(&kim, "Budget", "after").await;
    wait_for_message(&mut lee_events, "after").await;
    let leaked = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Ok(NodeEvent::Message(m)) = choi_events.recv().await
                && m.text == "after"
            {
                return;
            }
        }
    })
    .await;
    assert!(
        leaked.is_err(),
        "the removed member read a message sent after the removal"
    );
    for node in [kim, lee, choi] {
        node.shutdown().await;
    }
}

/// Polls `check` every 50 ms until it holds, for at most [`SETTLE`].
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + SETTLE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_sees_delivered_then_read_per_recipient_device() {
    let [kim, lee, choi] = three_connected_officials(25).await;
    let mut lee_events = lee.handle().events();
    send(&kim, DIV, "Please confirm the figures").await;
    wait_for_message(&mut lee_events, "Please confirm the figures").await;
    let receipts = |node: &baro_node::Node| {
        let handle = node.handle();
        async move {
            let history = handle.history(DIV, 10).await.expect("history");
            let mine = history
                .into_iter()
                .find(|m| m.from_me)
                .expect("own message");
            let mut states: Vec<(String, ReceiptState)> = mine
                .receipts
                .into_iter()
                .map(|r| (r.user, r.state))
                .collect();
            states.sort();
            states
        }
    };
    until("delivered receipts from lee and choi", || async {
        receipts(&kim).await
            == vec![
                ("choi".to_string(), ReceiptState::Delivered),
                ("lee".to_string(), ReceiptState::Delivered),
            ]
    })
    .await;
    let unread = |node: &baro_node::Node| {
        let handle = node.handle();
        async move {
            let rooms = handle.rooms().await.expect("rooms");
            rooms
                .into_iter()
                .find(|r| r.name == DIV)
                .expect("room")
                .unread
        }
    };
    assert_eq!(unread(&lee).await, 1);
    assert_eq!(unread(&kim).await, 0, "one's own messages are never unread");
    assert_eq!(lee.handle().mark_read(DIV).await.expect("read"), 1);
    assert_eq!(unread(&lee).await, 0);
    until("a read receipt from lee", || async {
        receipts(&kim).await
            == vec![
                ("choi".to_string(), ReceiptState::Delivered),
                ("lee".to_string(), ReceiptState::Read),
            ]
    })
    .await;
    let lee_view = lee.handle().history(DIV, 10).await.expect("history");
    assert!(
        lee_view.iter().all(|m| !m.from_me && m.receipts.is_empty()),
        "receipts are shown to the sender only"
    );
    for node in [kim, lee, choi] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_two_devices_reads_on_both() {
    let mut agency = TestAgency::new(26);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &[]);
    let address = listen_address(&kim).await.expect("listening");
    let (phone, pc) = (agency.member("lee"), agency.member("lee"));
    let phone = agency.spawn(phone, std::slice::from_ref(&address));
    let pc = agency.spawn(pc, std::slice::from_ref(&address));
    for node in [&kim, &phone, &pc] {
        node.handle()
            .wait_for_peers(2, SETTLE)
            .await
            .expect("peers");
    }
    kim.handle()
        .create_group("Budget", vec!["lee".into()])
        .await
        .expect("group");
    for device in [&phone, &pc] {
        until("lee's device adopts the group", || async {
            let rooms = device.handle().rooms().await.expect("rooms");
            rooms.iter().any(|r| r.name == "Budget" && r.can_send)
        })
        .await;
    }
    let (mut phone_events, mut pc_events) = (phone.handle().events(), pc.handle().events());
    send(&kim, "Budget", "Numbers for Q3").await;
    wait_for_message(&mut phone_events, "Numbers for Q3").await;
    wait_for_message(&mut pc_events, "Numbers for Q3").await;

    send(&phone, "Budget", "Looking from my phone").await;
    let on_pc = wait_for_message(&mut pc_events, "Looking from my phone").await;
    assert_eq!(on_pc.sender_user, "lee");
    assert!(!on_pc.from_me, "written on the other device");
    let rooms = pc.handle().rooms().await.expect("rooms");
    let budget = rooms.iter().find(|r| r.name == "Budget").expect("room");
    assert_eq!(
        budget.unread, 1,
        "kim's message only: lee wrote the other one"
    );
    for node in [kim, phone, pc] {
        node.shutdown().await;
    }
}
