//! End to end: two officials' `baro run` processes on loopback, driven by
//! the commands a user types: `send`, `watch --json`, `chat` (lines on
//! stdin), `history --json` with receipts, `room list --json` with unread
//! counts, and a 1:1 conversation by `@user`.

use baro_tests::{agency_with, eventually, listen_address, texts};

const ROOM: &str = "MOIS/Division 2";

#[test]
fn two_officials_chat_through_the_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, [kim, lee]) = agency_with(dir.path(), ROOM, ["kim", "lee"]);
    let listen = ["run", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
    let kim_node = kim.spawn(listen);
    let bootstrap = listen_address(&kim);
    let lee_node = lee.spawn(listen.iter().copied().chain(["--bootstrap", &bootstrap]));
    eventually(30, "lee admitted", || {
        (kim.run(["--json", "status"]).json()["peers"] == 1).then_some(())
    });
    let lee_watch = lee.spawn(["--json", "watch"]);

    eventually(30, "kim's message sent", || {
        kim.run(["send", ROOM, "Draft is in the folder"])
            .output
            .status
            .success()
            .then_some(())
    });
    eventually(30, "lee's watch shows it", || {
        lee_watch
            .log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|m| m["text"] == "Draft is in the folder" && m["sender_user"] == "kim")
    });
    let rooms = lee.run(["--json", "room", "list"]).json();
    let room = rooms
        .as_array()
        .and_then(|rooms| rooms.iter().find(|r| r["name"] == ROOM))
        .expect("division room listed");
    assert_eq!(room["unread"], 1, "{room}");

    // `chat` shows the history, sends what is typed, and leaves on EOF.
    let chat = lee.run_with_input(["chat", ROOM], "Reviewing now\n\n");
    let shown = chat.success();
    assert!(shown.contains("Draft is in the folder"), "{shown}");
    let rooms = lee.run(["--json", "room", "list"]).json();
    assert_eq!(
        rooms
            .as_array()
            .expect("rooms")
            .iter()
            .find(|r| r["name"] == ROOM)
            .expect("room")["unread"],
        0,
        "opening the chat read it"
    );
    let history = eventually(30, "lee's reply and read receipt reach kim", || {
        let history = kim.run(["--json", "history", ROOM]).json();
        let own = history
            .as_array()?
            .iter()
            .find(|m| m["from_me"] == true)?
            .clone();
        let read_by_lee = own["receipts"]
            .as_array()?
            .iter()
            .any(|r| r["user"] == "lee" && r["state"] == "read");
        (read_by_lee && texts(&history).contains(&"Reviewing now".to_string())).then_some(history)
    });
    assert_eq!(
        texts(&history),
        vec!["Draft is in the folder", "Reviewing now"]
    );
    let plain = kim.run(["history", ROOM]).success();
    assert!(plain.contains("read by Official lee"), "{plain}");

    // 1:1 by user id: the room appears on the other side with the message.
    kim.run(["send", "@lee", "A word in private?"]).success();
    let private = eventually(30, "the 1:1 message", || {
        // The room appears on Lee's side with the message: not found before.
        let history = lee.run(["--json", "history", "@kim"]);
        let history = history.output.status.success().then(|| history.json())?;
        texts(&history)
            .contains(&"A word in private?".to_string())
            .then_some(history)
    });
    assert_eq!(private[0]["sender_user"], "kim");
    kim.run(["send", "@kim", "note to self"])
        .fails_with("cannot open a 1:1 room with 'kim'");
    kim.run(["send", "nowhere", "hello"])
        .fails_with("no room named or with id 'nowhere'");
    // Looking a 1:1 room up does not create one; sending does.
    kim.run(["history", "@nobody"])
        .fails_with("no official 'nobody' is known to this device");
    kim.run(["watch", "nowhere"])
        .fails_with("no room named or with id 'nowhere'");

    drop(lee_watch);
    assert!(lee_node.stop(), "lee's node stops cleanly");
    assert!(kim_node.stop(), "kim's node stops cleanly");
}
