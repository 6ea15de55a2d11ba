//! The app's notifications (issue 20, deliverable 3): with the browser's
//! permission, a message that arrives while the app's tab is hidden shows
//! a notification naming its sender and room, with its text; one that
//! arrives while the tab is shown does not. Headless Chromium shows no
//! notification on a screen, so the page's `Notification` is wrapped by
//! the test to record what the app asks the browser to show, in the
//! origin's localStorage: the other tab, of the same origin, reads it
//! there while the app's tab stays hidden.

use baro_node::api::{self, Request, Response};
use baro_tests::browser::{Browser, run_with_app};
use baro_tests::{agency_with, eventually, listen_address};

const ROOM: &str = "MOIS/Division 2";

/// Wraps the page's `Notification` to record every one the app makes.
const RECORD: &str = "
    localStorage.setItem('test.shown', '[]');
    const Real = window.Notification;
    window.Notification = class extends Real {
        constructor(title, options) {
            super(title, options);
            const shown = JSON.parse(localStorage.getItem('test.shown'));
            shown.push({ title, body: options && options.body, hidden: document.hidden });
            localStorage.setItem('test.shown', JSON.stringify(shown));
        }
    };
    return Real.permission;";

/// The notifications recorded so far (read in any tab of the app's origin).
fn shown(browser: &Browser) -> Vec<serde_json::Value> {
    let json = browser.execute(
        "return localStorage.getItem('test.shown');",
        serde_json::json!([]),
    );
    serde_json::from_str(json.as_str().unwrap_or("[]")).unwrap_or_default()
}

/// Lee sends `text` to the room through his node's control API.
fn lee_sends(lee: &baro_tests::Baro, text: &str) {
    let sent = api::request(
        lee.home(),
        &Request::Send {
            room: ROOM.into(),
            text: text.into(),
        },
    );
    assert!(matches!(sent, Ok(Response::Sent(_))), "{sent:?}");
}

#[test]
fn a_message_arriving_while_the_tab_is_hidden_shows_a_notification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, [kim, lee]) = agency_with(dir.path(), ROOM, ["kim", "lee"]);
    let (_kim_node, kim_addr, kim_url) = run_with_app(&kim, None);
    let _lee_node = baro_tests::start_on_loopback(&lee, Some(&listen_address(&kim)));
    eventually(30, "lee admitted", || {
        (kim.run(["--json", "status"]).json()["peers"] == 1).then_some(())
    });

    let Some(browser) = Browser::start("en-US") else {
        return;
    };
    browser.goto(&kim_url);
    browser.wait_for(
        20,
        &format!("[data-testid=room-item][data-room-name='{ROOM}']"),
    );
    browser.grant("notifications");
    assert_eq!(
        browser.execute(RECORD, serde_json::json!([])),
        "granted",
        "the permission, as a user gives it"
    );

    // Shown: the message appears in the room list, no notification.
    lee_sends(&lee, "while you look");
    browser.wait_for(
        20,
        &format!("[data-testid=room-item][data-room-name='{ROOM}'] [data-testid=unread-badge]"),
    );
    assert_eq!(shown(&browser), Vec::<serde_json::Value>::new());

    // Hidden behind another tab (of the app's origin, showing its style
    // sheet): a notification with who, where and what.
    browser.new_tab();
    browser.goto(&format!("http://{kim_addr}/style.css"));
    lee_sends(&lee, "while you are away");
    let notes = eventually(20, "a notification", || {
        let notes = shown(&browser);
        (!notes.is_empty()).then_some(notes)
    });
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    assert_eq!(note["body"], "while you are away", "{note}");
    assert_eq!(note["hidden"], true, "{note}");
    let title = note["title"].as_str().unwrap_or_default();
    assert!(
        title.contains("Official lee") && title.contains(ROOM),
        "{title}"
    );
}
