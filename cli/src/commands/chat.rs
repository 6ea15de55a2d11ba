//! `baro chat`: one room in one terminal.
//!
//! - At a terminal the line being typed sits on a prompt at the bottom (a
//!   small line editor in raw mode: Backspace, Ctrl-U, Enter; Ctrl-C, or
//!   Ctrl-D on an empty line, leaves). Whatever arrives is printed above
//!   the prompt, which is then drawn again with what was typed so far.
//!   From a pipe, each line read is sent, with no prompt.
//! - Lines starting with `/` are commands (`/help`), never sent; `//` sends
//!   a line that starts with `/`.
//! - A follower thread asks the node for the room's last messages every
//!   second, or at once after a send: new ones are shown (and marked
//!   read), own messages whose receipts changed get a line of their own,
//!   and unread counts of other rooms are summed up. Asking, not a watch
//!   stream, so a node that stops and starts again is simply asked again:
//!   the chat says when the node stopped and when it is back, keeps the
//!   lines typed meanwhile, and sends them then.
//! - No node running: one is started in the background, as for `send`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use baro_node::api::{self, ApiError, MessageView, Request, Response, RoomInfo};

use super::rooms::{line, named, own_revocation_notice, receipts, sent_line};
use crate::display_width::{truncate, width};
use crate::message_size;
use crate::sanitize::printable;

/// How often the follower asks the node.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// Messages asked for each time (more than arrive in a second).
const FOLLOW_LIMIT: usize = 50;
/// Messages shown when the chat opens.
const OPENING_LIMIT: usize = 20;

const HELP: &str = "commands: /help this list · /history [N] the last N messages (20) · /quit leave (or Ctrl-D) · //text sends \"/text\"";

pub fn chat(home: &Path, room: String, key_file: Option<&Path>) -> Result<()> {
    super::background::ensure_running(home, key_file)?;
    // Found (or, for a new @USER, opened) first, then addressed by id.
    let Response::Room(found) = ask(home, Request::FindRoom { room })? else {
        bail!("the node answered something else than a room");
    };
    let screen = Arc::new(Screen::new(&found));
    screen.say(&format!(
        "— {} — type a message and press Enter; /help lists commands; Ctrl-D leaves",
        named(&found)
    ));
    let mut follower = Follower::new(home, &found, Arc::clone(&screen));
    follower.open()?;
    let notices_home = home.to_path_buf();
    let notices_screen = Arc::clone(&screen);
    std::thread::spawn(move || own_revocations(&notices_home, &notices_screen));
    let (wake, woken) = mpsc::sync_channel(1);
    let pending = Arc::clone(&follower.pending);
    std::thread::spawn(move || follower.run(&woken));
    let sender = Sender {
        home: home.to_path_buf(),
        room: found.id.clone(),
        screen: Arc::clone(&screen),
        pending,
        wake,
    };
    let read = if screen.raw.is_some() {
        read_keys(&screen, &sender)
    } else {
        read_lines(&sender)
    };
    screen.leave();
    read?;
    let left = sender
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .len();
    if left > 0 {
        eprintln!("{left} line(s) not sent: the node is not running");
    }
    Ok(())
}

fn ask(home: &Path, request: Request) -> Result<Response, ApiError> {
    api::request(home, &request)
}

/// What typed lines go through.
struct Sender {
    home: PathBuf,
    room: String,
    screen: Arc<Screen>,
    /// Lines typed while the node was not running.
    pending: Arc<Mutex<Vec<String>>>,
    /// Asks the follower to look now (a sent line shows at once).
    wake: mpsc::SyncSender<()>,
}

impl Sender {
    /// Handles one typed line; `false` to leave.
    fn typed(&self, typed: &str) -> bool {
        let text = match typed.strip_prefix('/') {
            Some(rest) if rest.starts_with('/') => rest,
            Some(command) => return self.command(command),
            None => typed,
        };
        if text.trim().is_empty() {
            return true;
        }
        if let Err(e) = message_size::check(text) {
            self.screen.say(&format!("  not sent: {e}"));
            return true;
        }
        if !self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            self.keep(text);
            return true;
        }
        send(&self.home, &self.room, text, &self.screen, || {
            self.keep(text)
        });
        let _ = self.wake.try_send(());
        true
    }

    fn keep(&self, text: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(text.to_string());
        self.screen
            .say("  (the node is not running: kept, and sent when it is back)");
    }

    /// A `/command`; `false` to leave.
    fn command(&self, command: &str) -> bool {
        let mut words = command.split_whitespace();
        match words.next().unwrap_or("") {
            "quit" | "exit" | "q" => return false,
            "help" | "h" | "?" | "" => self.screen.say(&format!("  {HELP}")),
            "history" => {
                let limit = words
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(OPENING_LIMIT);
                match ask(
                    &self.home,
                    Request::History {
                        room: self.room.clone(),
                        limit,
                    },
                ) {
                    Ok(Response::History(messages)) => {
                        for message in &messages {
                            self.screen.say(&line(message));
                        }
                    }
                    Ok(_) => self.screen.say("  (the node answered something else)"),
                    Err(e) => self.screen.say(&format!("  {}", printable(&e.to_string()))),
                }
            }
            other => self.screen.say(&format!(
                "  unknown command /{}: not sent ({HELP})",
                printable(other)
            )),
        }
        true
    }
}

/// Sends `text`; `keep` it when the node is not running.
fn send(home: &Path, room: &str, text: &str, screen: &Screen, keep: impl FnOnce()) {
    match ask(
        home,
        Request::Send {
            room: room.to_string(),
            text: text.to_string(),
        },
    ) {
        Ok(Response::Sent(sent)) if sent.queued => screen.say(&format!("  ({})", sent_line(&sent))),
        Ok(_) => {}
        Err(ApiError::NotRunning(_) | ApiError::Io(_)) => keep(),
        Err(e) => screen.say(&format!("  not sent: {}", printable(&e.to_string()))),
    }
}

/// Shows revocations of the user's other devices as the node hears of
/// them (its watch stream carries them), watching again after a restart.
fn own_revocations(home: &Path, screen: &Screen) {
    loop {
        let _ = api::stream(home, &Request::Watch { room: None }, |response| {
            if let Response::Revocation(view) = &response {
                screen.say(&format!("  ! {}", own_revocation_notice(view)));
            }
            true
        });
        std::thread::sleep(FOLLOW_EVERY);
    }
}

/// The thread that shows what arrives.
struct Follower {
    home: PathBuf,
    room: String,
    screen: Arc<Screen>,
    pending: Arc<Mutex<Vec<String>>>,
    seen: HashSet<String>,
    /// Own messages' receipt lines as last shown.
    receipts: HashMap<String, String>,
    unread_elsewhere: BTreeMap<String, usize>,
    node_up: bool,
}

impl Follower {
    fn new(home: &Path, room: &RoomInfo, screen: Arc<Screen>) -> Self {
        Follower {
            home: home.to_path_buf(),
            room: room.id.clone(),
            screen,
            pending: Arc::default(),
            seen: HashSet::new(),
            receipts: HashMap::new(),
            unread_elsewhere: BTreeMap::new(),
            node_up: true,
        }
    }

    /// Shows the last messages and the unread counts elsewhere.
    fn open(&mut self) -> Result<()> {
        let Response::History(messages) = ask(
            &self.home,
            Request::History {
                room: self.room.clone(),
                limit: OPENING_LIMIT,
            },
        )?
        else {
            bail!("the node answered something else than a history");
        };
        for message in &messages {
            self.screen.say(&line(message));
            self.remember(message);
        }
        self.mark_read();
        self.look_elsewhere();
        Ok(())
    }

    fn remember(&mut self, message: &MessageView) {
        self.seen.insert(message.id.clone());
        if message.from_me {
            self.receipts
                .insert(message.id.clone(), receipts(message).trim().to_string());
        }
    }

    fn run(mut self, woken: &mpsc::Receiver<()>) {
        loop {
            match woken.recv_timeout(FOLLOW_EVERY) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.look();
        }
    }

    fn look(&mut self) {
        let request = Request::History {
            room: self.room.clone(),
            limit: FOLLOW_LIMIT,
        };
        let messages = match ask(&self.home, request) {
            Ok(Response::History(messages)) => messages,
            Ok(_) => return,
            Err(ApiError::NotRunning(_) | ApiError::Io(_)) => {
                if self.node_up {
                    self.node_up = false;
                    self.screen.say(
                        "  (the node stopped: waiting for it to come back; lines you type are kept)",
                    );
                }
                return;
            }
            Err(e) => {
                self.screen
                    .say(&format!("  ({})", printable(&e.to_string())));
                return;
            }
        };
        if !self.node_up {
            self.node_up = true;
            self.screen.say("  (the node is back)");
            self.send_kept();
        }
        let mut new_from_others = false;
        for message in &messages {
            if !self.seen.contains(&message.id) {
                self.screen.say(&line(message));
                new_from_others |= !message.from_me;
                self.remember(message);
                continue;
            }
            if message.from_me {
                let now = receipts(message).trim().to_string();
                let before = self.receipts.insert(message.id.clone(), now.clone());
                if before.is_some_and(|before| before != now) && !now.is_empty() {
                    self.screen.say(&format!(
                        "  {now}  ← \"{}\"",
                        truncate(&printable(&message.text), 30)
                    ));
                }
            }
        }
        if new_from_others {
            self.mark_read();
        }
        self.look_elsewhere();
    }

    fn send_kept(&mut self) {
        let kept = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for (i, text) in kept.iter().enumerate() {
            let mut stopped = false;
            send(&self.home, &self.room, text, &self.screen, || {
                stopped = true
            });
            if stopped {
                // Down again: keep this line and the rest, in order.
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                let rest: Vec<String> = kept[i..].to_vec();
                pending.splice(0..0, rest);
                return;
            }
        }
    }

    fn mark_read(&self) {
        let request = Request::MarkRead {
            room: self.room.clone(),
        };
        if let Err(e) = ask(&self.home, request) {
            tracing::debug!(error = %e, "cannot mark messages read");
        }
    }

    /// "(unread elsewhere — 2과: 3)" when other rooms' counts change.
    fn look_elsewhere(&mut self) {
        let Ok(Response::Rooms(rooms)) = ask(&self.home, Request::Rooms) else {
            return;
        };
        let unread: BTreeMap<String, usize> = rooms
            .iter()
            .filter(|r| r.id != self.room && r.unread > 0)
            .map(|r| (r.name.clone(), r.unread))
            .collect();
        if unread != self.unread_elsewhere && !unread.is_empty() {
            let summary: Vec<String> = unread
                .iter()
                .map(|(room, n)| format!("{}: {n}", printable(room)))
                .collect();
            self.screen
                .say(&format!("  (unread elsewhere — {})", summary.join(", ")));
        }
        self.unread_elsewhere = unread;
    }
}

/// The terminal: lines printed above the prompt, which is drawn again.
struct Screen {
    /// The terminal's settings before raw mode, when stdin is a terminal.
    raw: Option<rustix::termios::Termios>,
    prompt: String,
    typed: Mutex<String>,
}

impl Screen {
    fn new(room: &RoomInfo) -> Self {
        // A department by its own unit ("2과"), as officials call it.
        let name = room.name.rsplit('/').next().unwrap_or(&room.name);
        let prompt = format!("{}> ", truncate(&printable(name), 20));
        Screen {
            raw: raw_mode(),
            prompt,
            typed: Mutex::new(String::new()),
        }
    }

    /// Prints `text` (it may span lines) above the prompt.
    fn say(&self, text: &str) {
        let typed = self.typed.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::io::stdout().lock();
        if self.raw.is_some() {
            // Output processing stays on: "\n" is a new line at column 0.
            let _ = write!(out, "\r\x1b[K{text}\n");
            self.draw(&mut out, &typed);
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
    }

    /// The prompt and the end of what was typed that fits on the line.
    fn draw(&self, out: &mut impl Write, typed: &str) {
        let columns = rustix::termios::tcgetwinsize(std::io::stdout())
            .map(|size| usize::from(size.ws_col))
            .ok()
            .filter(|&columns| columns > 0)
            .unwrap_or(80);
        let room = columns.saturating_sub(width(&self.prompt) + 1);
        let shown = printable(typed);
        let mut start = 0;
        while width(&shown[start..]) > room {
            start += shown[start..].chars().next().map_or(1, char::len_utf8);
        }
        let _ = write!(out, "\r\x1b[K{}{}", self.prompt, &shown[start..]);
    }

    fn edit(&self, change: impl FnOnce(&mut String)) {
        let mut typed = self.typed.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut typed);
        let mut out = std::io::stdout().lock();
        self.draw(&mut out, &typed);
        let _ = out.flush();
    }

    /// Takes the typed line, leaving the prompt empty.
    fn take_line(&self) -> String {
        let mut typed = self.typed.lock().unwrap_or_else(|p| p.into_inner());
        let line = std::mem::take(&mut *typed);
        let mut out = std::io::stdout().lock();
        self.draw(&mut out, &typed);
        let _ = out.flush();
        line
    }

    /// Puts the terminal back as it was.
    fn leave(&self) {
        if let Some(original) = &self.raw {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                original,
            );
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
        }
    }
}

/// Raw mode on stdin if it is a terminal (and stdout too): no echo, no
/// line buffering, Ctrl-C read as a key (so the terminal is always put
/// back); output processing stays on. Returns the settings to restore.
fn raw_mode() -> Option<rustix::termios::Termios> {
    use rustix::termios::{InputModes, LocalModes, OptionalActions, SpecialCodeIndex};
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return None;
    }
    let original = rustix::termios::tcgetattr(std::io::stdin()).ok()?;
    let mut raw = original.clone();
    raw.local_modes -=
        LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG | LocalModes::IEXTEN;
    raw.input_modes -= InputModes::IXON | InputModes::ICRNL;
    raw.special_codes[SpecialCodeIndex::VMIN] = 1;
    raw.special_codes[SpecialCodeIndex::VTIME] = 0;
    rustix::termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &raw).ok()?;
    Some(original)
}

/// Reads lines from a pipe until its end or `/quit`.
fn read_lines(sender: &Sender) -> Result<()> {
    for typed in std::io::stdin().lock().lines() {
        if !sender.typed(&typed?) {
            break;
        }
    }
    Ok(())
}

/// Reads keys until the user leaves.
fn read_keys(screen: &Screen, sender: &Sender) -> Result<()> {
    let mut keys = Keys::default();
    let mut stdin = std::io::stdin().lock();
    let mut buffer = [0u8; 256];
    loop {
        let n = stdin.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        for key in keys.decode(&buffer[..n]) {
            match key {
                Key::Text(text) => screen.edit(|typed| typed.push_str(&text)),
                Key::Backspace => screen.edit(|typed| {
                    typed.pop();
                }),
                Key::ClearLine => screen.edit(String::clear),
                Key::Enter => {
                    let line = screen.take_line();
                    if !sender.typed(&line) {
                        return Ok(());
                    }
                }
                Key::Interrupt => return Ok(()),
                Key::EndOfInput => {
                    if screen
                        .typed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .is_empty()
                    {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// What the user pressed.
#[derive(Debug, PartialEq, Eq)]
enum Key {
    Text(String),
    Backspace,
    ClearLine,
    Enter,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D.
    EndOfInput,
}

/// Bytes from a raw terminal to keys: UTF-8 split across reads is put
/// together, escape sequences (arrows, function keys) are skipped.
#[derive(Debug, Default)]
struct Keys {
    partial: Vec<u8>,
    escape: Escape,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    /// After ESC.
    Started,
    /// After ESC [ or ESC O, until a final byte.
    Sequence,
}

impl Keys {
    fn decode(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut keys = Vec::new();
        for &byte in bytes {
            match self.escape {
                Escape::Started => {
                    self.escape = if byte == b'[' || byte == b'O' {
                        Escape::Sequence
                    } else {
                        Escape::None
                    };
                    continue;
                }
                Escape::Sequence => {
                    if (0x40..=0x7e).contains(&byte) {
                        self.escape = Escape::None;
                    }
                    continue;
                }
                Escape::None => {}
            }
            let key = match byte {
                0x1b => {
                    self.escape = Escape::Started;
                    None
                }
                b'\r' | b'\n' => Some(Key::Enter),
                0x7f | 0x08 => Some(Key::Backspace),
                0x15 => Some(Key::ClearLine),
                0x03 => Some(Key::Interrupt),
                0x04 => Some(Key::EndOfInput),
                b'\t' => Some(Key::Text(" ".into())),
                0x00..=0x1f => None,
                _ => {
                    self.partial.push(byte);
                    self.text()
                }
            };
            if let Some(key) = key {
                keys.push(key);
            }
        }
        keys
    }

    /// Complete characters gathered so far; invalid bytes are dropped.
    fn text(&mut self) -> Option<Key> {
        match std::str::from_utf8(&self.partial) {
            Ok(text) => {
                let text = text.to_string();
                self.partial.clear();
                Some(Key::Text(text))
            }
            // Incomplete: wait for the rest.
            Err(e) if e.error_len().is_none() => None,
            Err(_) => {
                self.partial.clear();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangul_split_across_reads_is_one_character() {
        let mut keys = Keys::default();
        let bytes = "한".as_bytes();
        assert_eq!(keys.decode(&bytes[..2]), vec![]);
        assert_eq!(keys.decode(&bytes[2..]), vec![Key::Text("한".into())]);
    }

    #[test]
    fn arrows_are_skipped_and_control_keys_recognised() {
        let mut keys = Keys::default();
        assert_eq!(
            keys.decode(b"a\x1b[Db\x7f\x15\x03\x04\r"),
            vec![
                Key::Text("a".into()),
                Key::Text("b".into()),
                Key::Backspace,
                Key::ClearLine,
                Key::Interrupt,
                Key::EndOfInput,
                Key::Enter,
            ]
        );
    }

    #[test]
    fn invalid_bytes_are_dropped() {
        let mut keys = Keys::default();
        assert_eq!(keys.decode(&[0xff, b'x']), vec![Key::Text("x".into())]);
    }
}
