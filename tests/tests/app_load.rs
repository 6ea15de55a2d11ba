//! The app with a long history: a room of 10,000 messages opens in the
//! browser within a second (the newest page only; older ones on demand).
//! An in-process node (MemoryStore) so the history is written in seconds.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use baro_node::testing::TestAgency;
use baro_tests::browser::Browser;
use tokio_util::sync::CancellationToken;

const MESSAGES: usize = 10_000;

#[test]
fn a_room_of_ten_thousand_messages_opens_within_a_second() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let written = Instant::now();
    let (node, room, ui) = runtime.block_on(async {
        let mut agency = TestAgency::new(20);
        let kim = agency.member("kim");
        let node = agency.spawn(kim, &[]);
        let handle = node.handle();
        let room = handle
            .rooms()
            .await
            .expect("rooms")
            .into_iter()
            .find(|r| r.kind == "department")
            .expect("the department room");
        for i in 0..MESSAGES {
            handle
                .send(&room.id, &format!("보고 {i}: 오늘 회의 자료"))
                .await
                .expect("send");
        }
        let addr = "127.0.0.1:0".parse().expect("addr");
        let ui = baro_ui::bind(addr, home.path())
            .await
            .expect("bind the app");
        (node, room, ui)
    });
    println!("{MESSAGES} messages written in {:?}", written.elapsed());
    let url = ui.url().to_string();
    let shutdown = CancellationToken::new();
    runtime.spawn(ui.serve(node.handle(), shutdown.clone()));

    let Some(browser) = Browser::start("en-US") else {
        return;
    };
    browser.goto(&url);
    let item = browser.wait_for(
        20,
        &format!("[data-testid=room-item][data-room-id='{}']", room.id),
    );
    let clicked = Instant::now();
    browser.click(&item);
    let list = browser.wait_for(10, "#messages[data-load-ms]");
    let shown = clicked.elapsed();
    let load_ms: u64 = browser
        .attr(&list, "data-load-ms")
        .and_then(|ms| ms.parse().ok())
        .expect("the page's own measure");
    let count = browser.find_all("[data-testid=message]").len();
    assert_eq!(count, 50, "the newest page");
    let texts = browser.find_all("[data-testid=message] .text");
    let last = texts.last().map(|m| browser.text(m)).unwrap_or_default();
    assert!(
        last.starts_with(&format!("보고 {}", MESSAGES - 1)),
        "{last}"
    );
    println!(
        "a room of {MESSAGES} messages: history read and shown in {load_ms} ms (page), {shown:?} from the click (WebDriver included)"
    );
    assert!(load_ms < 1000, "{load_ms} ms");

    // Older messages come in pages.
    let older = browser.wait_for(5, "#older");
    browser.click(&older);
    baro_tests::eventually(10, "the next page", || {
        (browser.find_all("[data-testid=message]").len() == 250).then_some(())
    });

    drop(browser);
    shutdown.cancel();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), node.shutdown())
            .await
            .expect("the node stops");
    });
}
