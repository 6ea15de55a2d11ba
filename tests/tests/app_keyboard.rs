//! The app with the keyboard alone (issue 20, deliverable 7): from the
//! page's start, Tab reaches a room and Enter opens it with the focus in
//! the composer, Shift+Enter starts a new line and Enter sends; Tab then
//! reaches the send button, which Enter presses. Every key goes
//! through headless Chromium's keyboard (W3C key actions) to whatever has
//! the focus: no click, no script setting the focus.

use baro_tests::browser::{Browser, run_with_app};
use baro_tests::{agency_with, eventually};

const ROOM: &str = "MOIS/Division 2";
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const SHIFT: &str = "\u{E008}";

/// Presses Tab until the focused element's `attribute` is `value` (at
/// most `most` presses); how many it took.
#[track_caller]
fn tab_to(browser: &Browser, attribute: &str, value: &str, most: usize) -> usize {
    for presses in 1..=most {
        browser.keyboard(TAB);
        if browser.focused(attribute).as_deref() == Some(value) {
            return presses;
        }
    }
    panic!(
        "{attribute}={value} not reached with {most} Tab presses; the focus is on {:?}",
        browser.focused("id")
    );
}

#[test]
fn an_official_opens_a_room_and_sends_with_the_keyboard_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, [kim]) = agency_with(dir.path(), ROOM, ["kim"]);
    let (_node, _, url) = run_with_app(&kim, None);
    let Some(browser) = Browser::start("en-US") else {
        return;
    };
    browser.goto(&url);
    let room = format!("[data-testid=room-item][data-room-name='{ROOM}']");
    browser.wait_for(20, &room);

    // To the room, Enter opens it.
    let presses = tab_to(&browser, "data-room-name", ROOM, 30);
    browser.keyboard(ENTER);
    browser.wait_for(10, &format!("{room}[aria-current=true]"));
    browser.wait_for(10, "#composer-form:not([hidden]) [data-testid=composer]");

    // Opening the room put the focus in the composer: two lines, then
    // Enter sends them as one message.
    eventually(10, "the focus in the composer", || {
        (browser.focused("data-testid").as_deref() == Some("composer")).then_some(())
    });
    browser.keyboard("first line");
    browser.chord(SHIFT, ENTER);
    browser.keyboard("second line");
    assert!(
        browser.find_all("[data-testid=message]").is_empty(),
        "Shift+Enter sent nothing"
    );
    browser.keyboard(ENTER);
    let message = browser.wait_for(10, "[data-testid=message] .text");
    assert_eq!(browser.text(&message), "first line\nsecond line");
    let composer = || {
        browser.execute(
            "return document.querySelector('[data-testid=composer]').value;",
            serde_json::json!([]),
        )
    };
    assert_eq!(composer(), "", "the composer is emptied once sent");
    assert_eq!(
        browser.focused("data-testid").as_deref(),
        Some("composer"),
        "the focus stays in the composer for the next message"
    );

    // The send button is the next stop, and Enter presses it.
    browser.keyboard("by the button");
    let to_send = tab_to(&browser, "data-testid", "send-button", 3);
    browser.keyboard(ENTER);
    eventually(10, "the second message shown", || {
        (browser.find_all("[data-testid=message]").len() == 2).then_some(())
    });
    let texts: Vec<String> = browser
        .find_all("[data-testid=message] .text")
        .iter()
        .map(|m| browser.text(m))
        .collect();
    assert_eq!(texts, ["first line\nsecond line", "by the button"]);
    assert_eq!(composer(), "");
    println!("Tab presses: {presses} to the room, {to_send} from the composer to Send");
}
