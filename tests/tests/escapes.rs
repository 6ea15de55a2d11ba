//! End to end, the audit's M8: a member sends terminal escape sequences
//! (clear the screen, recolour, write the clipboard with OSC 52, set the
//! window title) and a line that fakes another message's header, in a
//! message and in a group's name, over the real mesh between two `baro run`
//! processes. The other official's `history`, `chat`, `watch`, `room list`
//! and `baro run` output show them as visible escapes, never as ESC bytes;
//! `--json` still carries the text exactly as sent.

use baro_tests::{agency_with, eventually, listen_address, texts};

const ROOM: &str = "MOIS/Division 2";
const ESC: u8 = 0x1b;

/// Clears the screen, turns red, writes "rm -rf ~" to the clipboard (OSC 52,
/// ended by BEL), then fakes a second message from the operator.
const ATTACK: &str = "\x1b[2J\x1b[31mFAKE\x1b]52;c;cm0gLXJmIH4=\x07\n\
                      2025-03-14 09:12 UTC Park Jiwoo: approved\x1b[0m";
/// How `history` shows it: escapes visible, the second line indented.
const SHOWN: &str = "\\e[2J\\e[31mFAKE\\e]52;c;cm0gLXJmIH4=\\u{7}\n    \
                     2025-03-14 09:12 UTC Park Jiwoo: approved\\e[0m";
/// A group name that sets the window title and reverses what follows it.
const GROUP: &str = "\x1b]0;pwned\x07Ops\u{202e}txt.exe";
const GROUP_SHOWN: &str = "\\e]0;pwned\\u{7}Ops\\u{202e}txt.exe";

#[track_caller]
fn assert_no_escape(what: &str, output: &[u8]) {
    assert!(
        !output.contains(&ESC),
        "{what} printed an ESC byte: {:?}",
        String::from_utf8_lossy(output)
    );
}

#[test]
fn terminal_escapes_from_another_member_are_shown_not_executed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, [kim, lee]) = agency_with(dir.path(), ROOM, ["kim", "lee"]);
    let listen = ["run", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
    let kim_node = kim.spawn(listen);
    let bootstrap = listen_address(&kim);
    let lee_node = lee.spawn(listen.iter().copied().chain(["--bootstrap", &bootstrap]));
    eventually(30, "lee admitted", || {
        (kim.run(["--json", "status"]).json()["peers"] == 1).then_some(())
    });
    let lee_watch = lee.spawn(["watch"]);

    eventually(30, "kim's message sent", || {
        kim.run(["send", ROOM, ATTACK])
            .output
            .status
            .success()
            .then_some(())
    });
    let json = eventually(30, "the message reaches lee", || {
        let history = lee.run(["--json", "history", ROOM]).json();
        texts(&history)
            .contains(&ATTACK.to_string())
            .then_some(history)
    });
    assert_eq!(texts(&json), vec![ATTACK], "--json keeps the text as sent");

    let history = lee.run(["history", ROOM]);
    assert_no_escape("history", &history.output.stdout);
    let shown = history.success();
    assert!(shown.contains(&format!("Official kim: {SHOWN}")), "{shown}");
    assert!(
        !shown.lines().any(|line| line.starts_with("2025-03-14")),
        "a line of the message passes for a message of its own: {shown}"
    );

    let chat = lee.run_with_input(["chat", ROOM], "");
    assert_no_escape("chat", &chat.output.stdout);
    assert!(chat.success().contains(SHOWN), "{}", chat.stdout());

    let watched = eventually(30, "lee's watch shows it", || {
        let log = lee_watch.log();
        log.contains("approved").then_some(log)
    });
    assert_no_escape("watch", watched.as_bytes());
    assert!(watched.contains(&format!("[{ROOM}] ")), "{watched}");
    assert!(watched.contains(SHOWN), "{watched}");

    // A group name is text from another member too.
    kim.run(["room", "create", GROUP, "--member", "lee"])
        .success();
    let rooms = eventually(30, "lee is in kim's group", || {
        let rooms = lee.run(["room", "list"]);
        rooms.stdout().contains("Ops").then_some(rooms)
    });
    assert_no_escape("room list", &rooms.output.stdout);
    assert!(rooms.stdout().contains(GROUP_SHOWN), "{}", rooms.stdout());

    // `baro run` prints the message (one line, cut to 60 columns, its line
    // feed shown as `\n`) and the group it joined; its log also holds
    // stderr (where log lines may be coloured), so only the lines that
    // carry the attacker's text are checked.
    let log = eventually(30, "lee's node prints both", || {
        let log = lee_node.log();
        (log.contains("FAKE") && log.contains("joined room")).then_some(log)
    });
    let attacker_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("FAKE") || line.contains("approved") || line.contains("Ops"))
        .collect();
    assert!(attacker_lines.len() >= 2, "{log}");
    for line in &attacker_lines {
        assert_no_escape("baro run", line.as_bytes());
    }
    assert!(
        log.contains(&format!("joined room \"{GROUP_SHOWN}\"")),
        "{log}"
    );
    assert!(log.contains("FAKE\\e]52;c;"), "{log}");

    drop(lee_watch);
    assert!(lee_node.stop(), "lee's node stops cleanly");
    assert!(kim_node.stop(), "kim's node stops cleanly");
}
