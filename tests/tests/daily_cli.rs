//! End to end, the CLI as a daily tool (issue 18, deliverables 6 and 7;
//! the usability report's findings 12–23 and 32), with Korean officials
//! of 행정안전부/디지털정부국/2과 and real `baro` processes: local times,
//! tables aligned by display width, a closed pipe, `--json` errors, help
//! and demo options, the message size limit in characters, the node in
//! the background (`run --detach`, `stop`, `send` starting it), `watch`
//! and `chat` across a node restart, one line per event in `run`, and
//! (through a pseudo-terminal) the chat prompt and passphrase retries.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use baro_tests::{
    Baro, PASSPHRASE, PIN, RunningNode, args, baro_bin, eventually, init_korean_agency,
    listen_address,
};

const DIVISION: &str = "행정안전부/디지털정부국/2과";
const NETWORK: [&str; 5] = [
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--no-mdns",
    "--sync-interval",
    "1",
];

/// 행정안전부 with its operator 박지우 and two officials of 2과,
/// 김민지 (kim.minji) and 이준호 (lee.junho).
fn korean_agency(dir: &Path) -> (Baro, Baro, Baro) {
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.join("console"));
    init_korean_agency(&operator, "행정안전부/디지털정부국", &[]).success();
    let kim = official(&operator, dir, "kim.minji", "김민지");
    let lee = official(&operator, dir, "lee.junho", "이준호");
    (operator, kim, lee)
}

/// One more official of 2과, enrolled by `operator`.
fn official(operator: &Baro, dir: &Path, user: &str, name: &str) -> Baro {
    {
        let device = Baro::new(baro_bin(), dir.join(user)).with_passphrase(None);
        let request = dir.join(format!("{user}.request"));
        let bundle = dir.join(format!("{user}.bundle"));
        device
            .run(args(
                &["device", "init", "--name", name, "--out"],
                &[&request],
            ))
            .success();
        operator
            .run(args(
                &[
                    "agency", "enroll", "--user", user, "--org", DIVISION, "--out",
                ],
                &[&bundle, &request],
            ))
            .success();
        device
            .run(args(&["device", "install"], &[&bundle]))
            .success();
        device
    }
}

/// Kim's and Lee's nodes on loopback, Lee connected to Kim.
fn two_nodes(kim: &Baro, lee: &Baro) -> (RunningNode, RunningNode, String) {
    let kim_node = kim.spawn(["run"].into_iter().chain(NETWORK));
    let kim_address = listen_address(kim);
    let lee_node = lee.spawn(
        ["run"]
            .into_iter()
            .chain(NETWORK)
            .chain(["--bootstrap", &kim_address]),
    );
    eventually(30, "Lee admitted by Kim", || {
        (kim.run(["--json", "status"]).json()["peers"] == 1).then_some(())
    });
    (kim_node, lee_node, kim_address)
}

/// Terminal columns of `text` (Hangul two, ASCII one: all this test prints).
fn columns(text: &str) -> usize {
    text.chars()
        .map(|c| {
            if ('\u{ac00}'..='\u{d7a3}').contains(&c) {
                2
            } else {
                1
            }
        })
        .sum()
}

/// The column at which `needle` starts in `line`.
#[track_caller]
fn column_of(line: &str, needle: &str) -> usize {
    let at = line
        .find(needle)
        .unwrap_or_else(|| panic!("'{needle}' not in '{line}'"));
    columns(&line[..at])
}

/// Findings 12 and 13: `TZ=Asia/Seoul history` shows Seoul time, and
/// `peers` and `room list` have headers and columns aligned by display width.
#[test]
fn times_are_local_and_tables_align_korean_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, lee) = korean_agency(dir.path());
    let (_kim_node, _lee_node, _) = two_nodes(&kim, &lee);
    kim.run([
        "send",
        DIVISION,
        "이준호 주무관님, 회의 자료 확인 부탁드립니다",
    ])
    .success();
    let history = eventually(30, "Lee has Kim's message", || {
        let history = lee.run(["--json", "history", DIVISION]).json();
        (history.as_array()?.len() == 1).then_some(history)
    });
    let secs = history[0]["wall_ms"].as_u64().expect("wall_ms") / 1000;
    let hh_mm = |offset: u64| {
        let day = (secs + offset) % 86_400;
        format!("{:02}:{:02} 김민지:", day / 3600, day % 3600 / 60)
    };
    // A POSIX zone needs no time zone database; Asia/Seoul needs tzdata.
    let seoul = lee
        .with_env("TZ", "KST-9")
        .run(["history", DIVISION])
        .success();
    assert!(seoul.contains(&hh_mm(9 * 3600)), "{seoul}");
    if Path::new("/usr/share/zoneinfo/Asia/Seoul").exists() {
        let named = lee
            .with_env("TZ", "Asia/Seoul")
            .run(["history", DIVISION])
            .success();
        assert!(named.contains(&hh_mm(9 * 3600)), "{named}");
    }
    let utc = lee
        .with_env("TZ", "UTC")
        .run(["history", DIVISION])
        .success();
    assert!(utc.contains(&hh_mm(0)), "{utc}");
    assert!(!seoul.contains("UTC"), "{seoul}");

    let peers = kim.run(["peers"]).success();
    let lines: Vec<&str> = peers.lines().skip(1).collect();
    assert!(
        lines[0].contains("NAME") && lines[0].contains("USER"),
        "{peers}"
    );
    assert_eq!(
        column_of(lines[0], "USER"),
        column_of(lines[1], "lee.junho"),
        "{peers}"
    );
    assert_eq!(
        column_of(lines[0], "ORG UNIT"),
        column_of(lines[1], DIVISION),
        "{peers}"
    );

    kim.run(["room", "create", "예산 검토", "--member", "lee.junho"])
        .success();
    let rooms = kim.run(["room", "list"]).success();
    let lines: Vec<&str> = rooms.lines().collect();
    assert!(
        lines[0].contains("ROOM") && lines[0].contains("KIND"),
        "{rooms}"
    );
    let kind_column = column_of(lines[0], "KIND");
    for (line, kind) in lines[1..].iter().map(|line| {
        let kind = ["department", "group"]
            .into_iter()
            .find(|kind| line.contains(kind))
            .expect("a kind");
        (line, kind)
    }) {
        assert_eq!(column_of(line, kind), kind_column, "{rooms}");
    }
    assert!(rooms.contains("(everyone in it)"), "{rooms}");
}

/// Finding 19: `baro history … | head -1` ends quietly when `head` leaves.
#[test]
fn a_closed_pipe_ends_history_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, lee) = korean_agency(dir.path());
    let (_kim_node, _lee_node, _) = two_nodes(&kim, &lee);
    for text in ["첫째 줄", "둘째 줄", "셋째 줄"] {
        kim.run(["send", DIVISION, text]).success();
    }
    // The reading end is closed before `baro` starts: its first line fails.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = Command::new(baro_bin())
        .arg("--home")
        .arg(kim.home())
        .args(["history", DIVISION])
        .env("BARO_PIN", PIN)
        .env("BARO_TEST_FAST_KDF", "1")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run baro");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(stderr.is_empty(), "{stderr}");
}

/// Finding 32: `--json` errors are one JSON object; `--help` shows the
/// global options apart; `demo` refuses options it would ignore.
#[test]
fn json_errors_help_and_demo_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nobody = Baro::new(baro_bin(), dir.path().join("kim-pcc"));
    let failed = nobody.run(["--json", "send", "2과", "안녕하세요"]);
    assert!(!failed.output.status.success());
    let error: serde_json::Value =
        serde_json::from_str(failed.stderr().trim()).expect("the error is JSON");
    let text = error["error"].as_str().expect("error text");
    assert!(
        text.contains("no Baro Mesh home at") && text.contains("kim-pcc"),
        "{error}"
    );
    // A mistyped command line too, with clap's usage exit status.
    let misused = nobody.run(["--json", "send", "2과"]);
    assert_eq!(misused.output.status.code(), Some(2));
    let error: serde_json::Value =
        serde_json::from_str(misused.stderr().trim()).expect("the usage error is JSON");
    assert!(
        error["error"]
            .as_str()
            .expect("error text")
            .contains("<TEXT>"),
        "{error}"
    );

    let help = nobody.run(["agency", "init", "--help"]).success();
    let global = help.find("Global options").expect("a global section");
    let own = help.find("--org").expect("--org");
    let home = help.find("--home").expect("--home");
    assert!(own < global && global < home, "{help}");

    nobody
        .run(["demo", "--home", "/tmp/elsewhere"])
        .fails_with("`baro demo` does not take --home");
    let json_demo = Command::new(baro_bin())
        .args(["--json", "demo"])
        .env_remove("BARO_HOME")
        .output()
        .expect("run baro");
    assert!(!json_demo.status.success());
    let error: serde_json::Value =
        serde_json::from_slice(&json_demo.stderr).expect("the error is JSON");
    assert!(
        error["error"]
            .as_str()
            .expect("error text")
            .contains("does not take --json"),
        "{error}"
    );
}

/// Finding 14: a message too long is refused before anything is sent,
/// in characters a Korean official typed.
#[test]
fn a_too_long_korean_message_is_refused_in_characters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, _lee) = korean_agency(dir.path());
    let longest = "가".repeat(20_475);
    let too_long = format!("{longest}나");
    let refused = kim.run(["send", DIVISION, &too_long]);
    refused.fails_with("20476 characters");
    refused.fails_with("about 20,475 Korean characters");
    kim.run(["status"]).fails_with("no node is running");
    let _node = kim.spawn(["run"].into_iter().chain(NETWORK));
    listen_address(&kim);
    kim.run(["send", DIVISION, &longest]).success();
}

/// Finding 18: `run --detach` returns once the node answers, `stop`
/// stops it, and `send` starts one when none runs; the background node's
/// log names no message text.
#[test]
fn the_node_runs_in_the_background_and_send_starts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, _lee) = korean_agency(dir.path());
    let _stop = StopOnDrop(&kim);
    let started = kim
        .run(["run", "--detach"].into_iter().chain(NETWORK))
        .success();
    assert!(started.contains("baro stop"), "{started}");
    assert_eq!(kim.run(["--json", "status"]).json()["user_id"], "kim.minji");
    kim.run(["run", "--detach"].into_iter().chain(NETWORK))
        .fails_with("already running");
    let stopped = kim.run(["stop"]).success();
    assert!(stopped.contains("stopped the node"), "{stopped}");
    kim.run(["status"]).fails_with("no node is running");
    assert!(kim.run(["stop"]).success().contains("no node is running"));

    let sent = kim.run(["send", DIVISION, "배경 노드로 보낸 메시지"]);
    let said = sent.stderr();
    sent.success();
    assert!(
        said.contains("started the node in the background"),
        "{said}"
    );
    let history = kim.run(["--json", "history", DIVISION]).json();
    assert_eq!(history[0]["text"], "배경 노드로 보낸 메시지");
    kim.run(["stop"]).success();
    let log = std::fs::read_to_string(kim.home().join("node.log")).expect("node.log");
    assert!(log.contains("Baro Mesh node of 김민지"), "{log}");
    assert!(!log.contains("배경 노드로"), "{log}");

    // A wrong PIN is refused before any node starts, in one line.
    kim.with_pin(Some("wrong pin 1357"))
        .run(["run", "--detach"].into_iter().chain(NETWORK))
        .fails_with("wrong PIN");
    kim.run(["status"]).fails_with("no node is running");
}

/// Stops a background node however the test ends.
struct StopOnDrop<'a>(&'a Baro);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(["stop"]);
    }
}

/// Finding 17 (and 15 for `watch`): `watch` says when the node stops,
/// waits, and shows messages again once it is back.
#[test]
fn watch_says_when_the_node_stops_and_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, lee) = korean_agency(dir.path());
    let (kim_node, _lee_node, _) = two_nodes(&kim, &lee);
    let lee_address = listen_address(&lee);
    let watch = kim.spawn(["--json", "watch"]);
    let lines = |watch: &RunningNode| -> Vec<serde_json::Value> {
        watch
            .log()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    };
    eventually(30, "the first message watched", || {
        lee.run(["send", DIVISION, "재시작 전"]).success();
        lines(&watch)
            .iter()
            .any(|m| m["text"] == "재시작 전")
            .then_some(())
    });
    assert!(kim_node.stop(), "Kim's node stops");
    eventually(30, "watch says the node stopped", || {
        lines(&watch)
            .iter()
            .any(|m| m["node"] == "stopped")
            .then_some(())
    });
    let _kim_node = kim.spawn(
        ["run"]
            .into_iter()
            .chain(NETWORK)
            .chain(["--bootstrap", &lee_address]),
    );
    eventually(30, "watch says the node is back", || {
        lines(&watch)
            .iter()
            .any(|m| m["node"] == "running")
            .then_some(())
    });
    eventually(30, "a message after the restart watched", || {
        lee.run(["send", DIVISION, "재시작 후 응답"]).success();
        lines(&watch)
            .iter()
            .any(|m| m["text"] == "재시작 후 응답")
            .then_some(())
    });
}

/// Findings 15 and 16 (from a pipe): `/help` is not sent, lines typed
/// while the node is down are kept and sent once it is back, replies
/// after the restart are shown, and Lee's read receipt shows live.
#[test]
fn chat_survives_a_node_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, lee) = korean_agency(dir.path());
    let (kim_node, _lee_node, _) = two_nodes(&kim, &lee);
    let lee_address = listen_address(&lee);
    let mut chat = Chat::start(&kim, DIVISION);
    chat.wait_for("— \"행정안전부/디지털정부국/2과\" (department ");
    chat.type_line("/help");
    chat.wait_for("commands: /help");
    chat.type_line("재시작 전에 보낸 줄");
    eventually(30, "Lee has Kim's first line", || {
        let history = lee.run(["--json", "history", DIVISION]).json();
        baro_tests::texts(&history)
            .contains(&"재시작 전에 보낸 줄".to_string())
            .then_some(())
    });
    chat.wait_for("read by 이준호");

    assert!(kim_node.stop(), "Kim's node stops");
    chat.wait_for("(the node stopped");
    chat.type_line("노드가 멈춘 동안 쓴 줄");
    chat.wait_for("kept, and sent when it is back");
    let _kim_node = kim.spawn(
        ["run"]
            .into_iter()
            .chain(NETWORK)
            .chain(["--bootstrap", &lee_address]),
    );
    chat.wait_for("(the node is back)");
    eventually(30, "Lee has the kept line", || {
        let history = lee.run(["--json", "history", DIVISION]).json();
        baro_tests::texts(&history)
            .contains(&"노드가 멈춘 동안 쓴 줄".to_string())
            .then_some(())
    });
    eventually(30, "Kim's node admits Lee again", || {
        (kim.run(["--json", "status"]).json()["peers"] == 1).then_some(())
    });
    lee.run(["send", DIVISION, "재시작 후 응답"]).success();
    chat.wait_for("이준호: 재시작 후 응답");
    let history = lee.run(["--json", "history", DIVISION]).json();
    assert!(
        !baro_tests::texts(&history)
            .iter()
            .any(|t| t.starts_with('/')),
        "{history}"
    );
}

/// Finding 22: one line per event in `run`: a group Lee is in changes
/// twice (a member added, then removed), and Lee's node says it joined once.
#[test]
fn run_shows_a_group_join_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, kim, lee) = korean_agency(dir.path());
    let (kim_node, lee_node, kim_address) = two_nodes(&kim, &lee);
    // A third official whose node Kim's has met, to add and remove.
    let choi = official(&operator, dir.path(), "choi.seoyeon", "최서연");
    let choi_node = choi.spawn(
        ["run"]
            .into_iter()
            .chain(NETWORK)
            .chain(["--bootstrap", &kim_address]),
    );
    eventually(30, "최서연 admitted by Kim", || {
        (kim.run(["--json", "status"]).json()["peers"] == 2).then_some(())
    });
    kim.run(["room", "create", "예산 검토", "--member", "lee.junho"])
        .success();
    let members = |wanted: usize| {
        let rooms = lee.run(["--json", "room", "list"]).json();
        rooms
            .as_array()?
            .iter()
            .find(|r| r["name"] == "예산 검토")
            .filter(|r| r["members"].as_array().map(Vec::len) == Some(wanted))
            .map(|_| ())
    };
    eventually(30, "Lee joined the group", || members(2));
    kim.run(["room", "invite", "예산 검토", "choi.seoyeon"])
        .success();
    eventually(30, "Lee sees the new member", || members(3));
    kim.run(["room", "remove", "예산 검토", "choi.seoyeon"])
        .success();
    eventually(30, "Lee sees the member removed", || members(2));
    let log = lee_node.log();
    assert_eq!(log.matches("joined room \"예산 검토\"").count(), 1, "{log}");
    // Peers are named, not shown as ids, once admitted.
    assert!(choi_node.stop(), "최서연's node stops");
    eventually(30, "Kim's node names who left", || {
        kim_node
            .log()
            .contains("disconnected 최서연 (choi.seoyeon)")
            .then_some(())
    });
}

/// Finding 21: every address `run` prints, relayed ones included, parses
/// and names the node once (`/p2p-circuit/p2p/ID`, not `.../p2p/ID/p2p/ID`).
#[test]
fn listening_addresses_name_the_node_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, kim, _lee) = korean_agency(dir.path());
    let relay = Baro::new(baro_bin(), dir.path().join("relay")).with_passphrase(None);
    baro_tests::enroll_device(
        &operator,
        &relay,
        dir.path(),
        "relay.sejong",
        "행정안전부/현장사무소/세종",
        "relay",
    );
    let _relay_node = relay.spawn(["relay"].into_iter().chain(NETWORK));
    let relay_address = listen_address(&relay);
    let kim_node = kim.spawn(
        ["run"]
            .into_iter()
            .chain(NETWORK)
            .chain(["--bootstrap", &relay_address]),
    );
    let me = kim.run(["--json", "whoami"]).json()["device_id"]
        .as_str()
        .expect("device id")
        .to_string();
    let circuit = eventually(30, "a relayed address printed", || {
        kim_node
            .log()
            .lines()
            .find(|line| line.starts_with("listening on") && line.contains("p2p-circuit"))
            .map(str::to_string)
    });
    for line in kim_node
        .log()
        .lines()
        .filter(|l| l.starts_with("listening on "))
    {
        let address = &line["listening on ".len()..];
        assert_eq!(address.matches(&format!("/p2p/{me}")).count(), 1, "{line}");
        assert!(address.ends_with(&format!("/p2p/{me}")), "{line}");
        address
            .parse::<libp2p::Multiaddr>()
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    assert!(circuit.contains("/p2p-circuit/p2p/"), "{circuit}");
}

/// A `baro` command on a pseudo-terminal (util-linux `script`), for what
/// only a terminal shows; `None` where `script` is not installed.
struct Terminal {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn start(home: &Path, words: &[&str], env: &[(&str, &str)]) -> Option<Terminal> {
        let quote = |word: &str| format!("'{}'", word.replace('\'', r"'\''"));
        let line: Vec<String> = std::iter::once(baro_bin().display().to_string())
            .chain(["--home".to_string(), home.display().to_string()])
            .chain(words.iter().map(|w| w.to_string()))
            .map(|w| quote(&w))
            .collect();
        let mut command = Command::new("script");
        command
            .args(["-q", "-f", "-e", "-c", &line.join(" "), "/dev/null"])
            .env_remove("BARO_HOME")
            .env_remove("BARO_PASSPHRASE")
            .env_remove("BARO_PIN")
            .env("BARO_TEST_FAST_KDF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("skipped: no `script` (util-linux) for a pseudo-terminal");
                return None;
            }
            Err(e) => panic!("script: {e}"),
        };
        let input = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        let output = Arc::new(Mutex::new(Vec::new()));
        let filled = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                filled
                    .lock()
                    .expect("output")
                    .extend_from_slice(&buffer[..n]);
            }
        });
        Some(Terminal {
            child,
            input,
            output,
        })
    }

    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().expect("output")).into_owned()
    }

    /// Waits until the terminal shows `needle` after byte `from`; returns
    /// where it ends.
    #[track_caller]
    fn wait_for(&self, needle: &str, from: usize) -> usize {
        eventually(30, needle, || {
            let shown = self.shown();
            shown
                .get(from..)
                .and_then(|rest| rest.find(needle))
                .map(|at| from + at + needle.len())
        })
    }

    fn press(&mut self, keys: &str) {
        self.input.write_all(keys.as_bytes()).expect("keys");
        self.input.flush().expect("keys");
    }

    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "still running");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finding 16 at a terminal: a prompt at the bottom, a message arriving
/// while Kim types is printed above it, and what she had typed is drawn
/// again and sent whole; Ctrl-D leaves with the terminal as it was.
#[test]
fn chat_prompt_survives_incoming_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, lee) = korean_agency(dir.path());
    let (_kim_node, _lee_node, _) = two_nodes(&kim, &lee);
    let Some(mut chat) = Terminal::start(kim.home(), &["chat", DIVISION], &[("BARO_PIN", PIN)])
    else {
        return;
    };
    let prompt = "2과> ";
    let at = chat.wait_for(prompt, 0);
    chat.press("반쯤 입력한");
    let at = chat.wait_for("반쯤 입력한", at);
    lee.run(["send", DIVISION, "중간에 끼어든 메시지"])
        .success();
    let at = chat.wait_for("이준호: 중간에 끼어든 메시지", at);
    // The line is cleared before the message, and the prompt comes back
    // with the half-typed text after it.
    let shown = chat.shown();
    let before = &shown[..at];
    let message_at = before.rfind("이준호: 중간에").expect("message");
    let cleared = before[..message_at]
        .rfind("\r\x1b[K")
        .expect("line cleared");
    let between = &before[cleared..message_at];
    assert!(!between.contains("반쯤"), "{between:?}");
    chat.wait_for(&format!("{prompt}반쯤 입력한"), at);
    chat.press(" 문장\r");
    eventually(30, "Lee has the whole line", || {
        let history = lee.run(["--json", "history", DIVISION]).json();
        baro_tests::texts(&history)
            .contains(&"반쯤 입력한 문장".to_string())
            .then_some(())
    });
    chat.press("\x04");
    assert!(chat.wait().success());
}

/// Finding 23: a wrong operator passphrase is asked again at a terminal.
#[test]
fn a_wrong_passphrase_is_asked_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, _kim, _lee) = korean_agency(dir.path());
    let phone = Baro::new(baro_bin(), dir.path().join("kim-phone")).with_passphrase(None);
    let request = dir.path().join("kim-phone.request");
    phone
        .run(args(
            &["device", "init", "--name", "김민지", "--out"],
            &[&request],
        ))
        .success();
    let bundle = dir.path().join("kim-phone.bundle");
    let words = [
        "agency",
        "enroll",
        "--user",
        "kim.minji",
        "--org",
        DIVISION,
        "--out",
        bundle.to_str().expect("path"),
        request.to_str().expect("path"),
    ];
    let Some(mut enroll) =
        Terminal::start(&dir.path().join("console"), &words, &[("BARO_PIN", PIN)])
    else {
        return;
    };
    let at = enroll.wait_for("Operator passphrase:", 0);
    enroll.press("틀린 암호\r");
    let at = enroll.wait_for("wrong passphrase; try again (2 tries left)", at);
    let at = enroll.wait_for("Operator passphrase:", at);
    enroll.press(&format!("{PASSPHRASE}\r"));
    enroll.wait_for("Enrolled a member device", at);
    assert!(enroll.wait().success());
    assert!(bundle.exists());
}

/// `chat` with its input on a pipe, output to a file.
struct Chat {
    child: std::process::Child,
    input: std::process::ChildStdin,
    log: std::path::PathBuf,
}

impl Chat {
    fn start(device: &Baro, room: &str) -> Chat {
        let log = device.home().with_extension("chat.log");
        let out = std::fs::File::create(&log).expect("log");
        let mut child = Command::new(baro_bin())
            .arg("--home")
            .arg(device.home())
            .args(["chat", room])
            .env("BARO_PIN", PIN)
            .env("BARO_TEST_FAST_KDF", "1")
            .env_remove("BARO_HOME")
            .stdin(Stdio::piped())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start chat");
        let input = child.stdin.take().expect("stdin");
        Chat { child, input, log }
    }

    fn type_line(&mut self, line: &str) {
        writeln!(self.input, "{line}").expect("type");
    }

    #[track_caller]
    fn wait_for(&self, needle: &str) {
        eventually(30, needle, || {
            std::fs::read_to_string(&self.log)
                .ok()
                .filter(|shown| shown.contains(needle))
                .map(|_| ())
        });
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finding 22: a device that was away does not dump what it missed into
/// the `run` terminal: one line says it is catching up. Lee's node runs
/// half an hour ahead (the clock test hook), so Kim's messages of a moment
/// ago were written well before it started, as after a long absence.
#[test]
fn run_sums_up_a_catch_up_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, lee) = korean_agency(dir.path());
    let _kim_node = kim.spawn(["run"].into_iter().chain(NETWORK));
    let kim_address = listen_address(&kim);
    let missed = ["부재 중 메시지 1", "부재 중 메시지 2", "부재 중 메시지 3"];
    for text in missed {
        kim.run(["send", DIVISION, text]).success();
    }
    let lee_node = lee.with_env("BARO_TEST_CLOCK_SKIP_SECS", "1800").spawn(
        ["run"]
            .into_iter()
            .chain(NETWORK)
            .chain(["--bootstrap", &kim_address]),
    );
    eventually(30, "Lee caught up", || {
        let history = lee.run(["--json", "history", DIVISION]).json();
        (baro_tests::texts(&history).len() == missed.len()).then_some(())
    });
    let log = lee_node.log();
    assert_eq!(log.matches("catching up on messages").count(), 1, "{log}");
    assert!(!log.contains("부재 중 메시지"), "{log}");
}

/// Finding 22: a revocation is one line in `run`, not a log line and a
/// human line.
#[test]
fn run_shows_a_revocation_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, kim, lee) = korean_agency(dir.path());
    // The console meets both, so it knows Lee's certificate.
    let _console_node = operator.spawn(["run"].into_iter().chain(NETWORK));
    let console_address = listen_address(&operator);
    let with_console = |device: &Baro| {
        device.spawn(
            ["run"]
                .into_iter()
                .chain(NETWORK)
                .chain(["--bootstrap", &console_address]),
        )
    };
    let kim_node = with_console(&kim);
    let _lee_node = with_console(&lee);
    eventually(30, "Kim and Lee admitted by the console", || {
        (operator.run(["--json", "status"]).json()["peers"] == 2).then_some(())
    });
    operator
        .run([
            "agency",
            "revoke",
            "--user",
            "lee.junho",
            "--reason",
            "퇴직",
        ])
        .success();
    let log = eventually(30, "Kim's node shows the revocation", || {
        let log = kim_node.log();
        log.lines()
            .any(|line| line.starts_with("revocation: ") && line.contains("퇴직"))
            .then_some(log)
    });
    // Lee's device, dropped and refused if it dials again, may also be
    // named in a "refused …" line quoting the reason: another event.
    let told: Vec<&str> = log
        .lines()
        .filter(|line| line.starts_with("revocation: ") && line.contains("퇴직"))
        .collect();
    assert_eq!(told.len(), 1, "{log}");
    assert!(!log.contains("revocation received"), "{log}");
    assert!(
        !log.contains("revoked device refused at admission"),
        "{log}"
    );
}

/// Finding 18 for field offices: `relay --detach` keeps the relay's own
/// options, and `stop` stops it.
#[test]
fn a_relay_runs_in_the_background_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, _kim, _lee) = korean_agency(dir.path());
    let relay = Baro::new(baro_bin(), dir.path().join("relay")).with_passphrase(None);
    baro_tests::enroll_device(
        &operator,
        &relay,
        dir.path(),
        "relay.sejong",
        "행정안전부/현장사무소/세종",
        "relay",
    );
    let _stop = StopOnDrop(&relay);
    relay
        .run(
            ["relay", "--detach"]
                .into_iter()
                .chain(NETWORK)
                .chain(["--retention-days", "7"]),
        )
        .success();
    let status = relay.run(["--json", "status"]).json();
    assert_eq!(status["relay"], true, "{status}");
    assert!(relay.run(["stop"]).success().contains("stopped the node"));
    relay.run(["status"]).fails_with("no node is running");
}

/// Finding 18: `history` right after `baro run` was started, before the
/// node answers, waits for that node instead of starting a second one in
/// the background (which could win the home, leaving the first to fail).
#[test]
fn history_waits_for_a_node_that_is_starting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, kim, _lee) = korean_agency(dir.path());
    let _stop = StopOnDrop(&kim);
    let mut node = kim.spawn(["run"].into_iter().chain(NETWORK));
    let history = kim.run(["--json", "history", DIVISION]);
    history.json();
    assert!(
        !history
            .stderr()
            .contains("started the node in the background"),
        "{}",
        history.stderr()
    );
    assert_eq!(node.wait_exit(0), None, "the node started first still runs");
}
