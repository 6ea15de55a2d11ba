//! Rooms and messages: `baro room …`, `send`, `history`, `watch`, `chat`,
//! all asking the running node over its control socket.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::{Result, bail};
use baro_node::api::MessageView;
use baro_node::api::{self, Request, Response};
use baro_node::wire::ReceiptState;

use super::print_json;
use crate::sanitize::{CONTINUATION, printable, printable_lines};

fn ask(home: &Path, request: Request) -> Result<Response> {
    Ok(api::request(home, &request)?)
}

pub fn create(home: &Path, name: String, members: Vec<String>, json: bool) -> Result<()> {
    let Response::Room(room) = ask(home, Request::CreateRoom { name, members })? else {
        bail!("the node answered something else than a room");
    };
    if json {
        return print_json(&serde_json::to_value(&room)?);
    }
    println!(
        "Created group \"{}\" ({}) with {}",
        printable(&room.name),
        printable(room.id.get(..12).unwrap_or(&room.id)),
        printable(&room.members.join(", "))
    );
    Ok(())
}

pub fn list(home: &Path, json: bool) -> Result<()> {
    let Response::Rooms(rooms) = ask(home, Request::Rooms)? else {
        bail!("the node answered something else than a room list");
    };
    if json {
        return print_json(&serde_json::to_value(&rooms)?);
    }
    for room in rooms {
        let mut notes = Vec::new();
        if room.unread > 0 {
            notes.push(format!("{} unread", room.unread));
        }
        if !room.can_send {
            notes.push("waiting for a key".to_string());
        }
        println!(
            "  {:<40} {:<10} {:<12} {}{}",
            printable(&room.name),
            printable(&room.kind),
            printable(room.id.get(..12).unwrap_or(&room.id)),
            printable(&room.members.join(", ")),
            if notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", notes.join(", "))
            }
        );
    }
    Ok(())
}

pub fn invite(home: &Path, room: String, user: String) -> Result<()> {
    ask(
        home,
        Request::Invite {
            room: room.clone(),
            user: user.clone(),
        },
    )?;
    println!(
        "{} added to {}; their devices get the key",
        printable(&user),
        printable(&room)
    );
    Ok(())
}

pub fn remove(home: &Path, room: String, user: String) -> Result<()> {
    ask(
        home,
        Request::Remove {
            room: room.clone(),
            user: user.clone(),
        },
    )?;
    println!(
        "{} removed from {}; the group moved to a new key they never get",
        printable(&user),
        printable(&room)
    );
    Ok(())
}

pub fn leave(home: &Path, room: String) -> Result<()> {
    ask(home, Request::Leave { room: room.clone() })?;
    println!("left {}", printable(&room));
    Ok(())
}

pub fn send(home: &Path, room: String, text: String, json: bool) -> Result<()> {
    if text.trim().is_empty() {
        bail!("nothing to send: the message is empty");
    }
    let Response::Sent(sent) = ask(home, Request::Send { room, text })? else {
        bail!("the node answered something else than a sent message");
    };
    if json {
        return print_json(&serde_json::to_value(&sent)?);
    }
    if sent.queued {
        println!("queued: no peer is reachable; it leaves as soon as one is");
    } else {
        println!("sent");
    }
    Ok(())
}

/// One message for people: its text may span lines, each continuation
/// line indented (see [`crate::sanitize`]).
fn line(message: &MessageView) -> String {
    format!(
        "{} {}: {}{}",
        baro_node::clock::format_utc(message.wall_ms / 1000),
        printable(&message.sender_name),
        printable_lines(&message.text, CONTINUATION),
        receipts(message)
    )
}

/// "  ✓ delivered to Lee · read by Kim" for this device's own messages:
/// each user once, at the furthest state any of their devices reached.
fn receipts(message: &MessageView) -> String {
    if !message.from_me || message.receipts.is_empty() {
        return String::new();
    }
    let mut best: BTreeMap<&str, ReceiptState> = BTreeMap::new();
    for receipt in &message.receipts {
        let state = best.entry(&receipt.name).or_insert(receipt.state);
        *state = (*state).max(receipt.state);
    }
    let names = |wanted: ReceiptState| -> Vec<&str> {
        best.iter()
            .filter(|(_, state)| **state == wanted)
            .map(|(name, _)| *name)
            .collect()
    };
    let mut parts = Vec::new();
    let delivered = names(ReceiptState::Delivered);
    if !delivered.is_empty() {
        parts.push(format!("delivered to {}", printable(&delivered.join(", "))));
    }
    let read = names(ReceiptState::Read);
    if !read.is_empty() {
        parts.push(format!("read by {}", printable(&read.join(", "))));
    }
    format!("  ✓ {}", parts.join(" · "))
}

/// Tells the node the user has now seen a room's messages.
fn mark_read(home: &Path, room: &str) {
    if let Err(e) = ask(
        home,
        Request::MarkRead {
            room: room.to_string(),
        },
    ) {
        tracing::debug!(error = %e, "cannot mark messages read");
    }
}

pub fn history(home: &Path, room: String, limit: usize, json: bool) -> Result<()> {
    let Response::History(messages) = ask(
        home,
        Request::History {
            room: room.clone(),
            limit,
        },
    )?
    else {
        bail!("the node answered something else than a history");
    };
    mark_read(home, &room);
    if json {
        return print_json(&serde_json::to_value(&messages)?);
    }
    if messages.is_empty() {
        println!("no messages yet");
    }
    for message in &messages {
        println!("{}", line(message));
    }
    Ok(())
}

pub fn watch(home: &Path, room: Option<String>, json: bool) -> Result<()> {
    api::stream(home, &Request::Watch { room }, |response| {
        if let Response::Message(message) = response {
            if json {
                if let Ok(text) = serde_json::to_string(&message) {
                    println!("{text}");
                }
            } else {
                println!("[{}] {}", printable(&message.room_name), line(&message));
            }
        }
        true
    })?;
    Ok(())
}

pub fn chat(home: &Path, room: String) -> Result<()> {
    // Found (or, for a new @USER, opened) first, then addressed by id.
    let Response::Room(this) = ask(home, Request::FindRoom { room: room.clone() })? else {
        bail!("the node answered something else than a room");
    };
    let this = this.id;
    let Response::History(messages) = ask(
        home,
        Request::History {
            room: this.clone(),
            limit: 20,
        },
    )?
    else {
        bail!("the node answered something else than a history");
    };
    let Response::Rooms(rooms) = ask(home, Request::Rooms)? else {
        bail!("the node answered something else than a room list");
    };
    println!(
        "— {} — type a message and press Enter; Ctrl-D leaves",
        printable(&room)
    );
    for message in &messages {
        println!("{}", line(message));
    }
    mark_read(home, &room);
    let mut unread: BTreeMap<String, usize> = rooms
        .iter()
        .filter(|r| r.id != this && r.unread > 0)
        .map(|r| (r.name.clone(), r.unread))
        .collect();
    if !unread.is_empty() {
        let summary: Vec<String> = unread
            .iter()
            .map(|(r, n)| format!("{}: {n}", printable(r)))
            .collect();
        println!("  (unread elsewhere — {})", summary.join(", "));
    }
    let watch_home = home.to_path_buf();
    std::thread::spawn(move || {
        let _ = api::stream(&watch_home, &Request::Watch { room: None }, |response| {
            if let Response::Message(message) = response {
                if message.room == this {
                    println!("{}", line(&message));
                    mark_read(&watch_home, &this);
                } else {
                    *unread.entry(message.room_name.clone()).or_default() += 1;
                    let summary: Vec<String> = unread
                        .iter()
                        .map(|(r, n)| format!("{}: {n}", printable(r)))
                        .collect();
                    println!("  (unread elsewhere — {})", summary.join(", "));
                }
            }
            true
        });
    });
    for typed in std::io::stdin().lock().lines() {
        let typed = typed?;
        if typed.trim().is_empty() {
            continue;
        }
        match ask(
            home,
            Request::Send {
                room: room.clone(),
                text: typed,
            },
        ) {
            Ok(Response::Sent(sent)) if sent.queued => {
                println!("  (queued until a peer is reachable)")
            }
            Ok(_) => {}
            Err(e) => eprintln!("  not sent: {}", printable(&e.to_string())),
        }
    }
    Ok(())
}
