//! Rooms and messages: `baro room …`, `send`, `history`, `watch`, `chat`,
//! all asking the running node over its control socket.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};
use baro_node::api::MessageView;
use baro_node::api::{self, ApiError, Request, Response};
use baro_node::wire::ReceiptState;

use super::print_json;
use crate::local_time::LocalTime;
use crate::message_size;
use crate::sanitize::{CONTINUATION, printable, printable_lines};
use crate::table::Table;

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

pub fn list(home: &Path, all: bool, json: bool) -> Result<()> {
    let Response::Rooms(mut rooms) = ask(home, Request::Rooms)? else {
        bail!("the node answered something else than a room list");
    };
    let hidden = rooms.iter().filter(|r| r.hidden).count();
    if !all {
        rooms.retain(|r| !r.hidden);
    }
    if json {
        return print_json(&serde_json::to_value(&rooms)?);
    }
    if rooms.is_empty() {
        println!("no rooms yet");
        return Ok(());
    }
    let mut table = Table::new(&["ROOM", "KIND", "ID", "MEMBERS", "NOTES"]);
    for room in rooms {
        let mut notes = Vec::new();
        if room.hidden {
            notes.push("hidden".to_string());
        }
        if room.unread > 0 {
            notes.push(format!("{} unread", room.unread));
        }
        if !room.can_send {
            notes.push("waiting for a key".to_string());
        }
        // A department's members are everyone in it: its name says so.
        let members = if room.kind == "department" {
            "(everyone in it)".to_string()
        } else {
            printable(&room.members.join(", ")).into_owned()
        };
        table.row(vec![
            printable(&room.name).into_owned(),
            printable(&room.kind).into_owned(),
            printable(room.id.get(..12).unwrap_or(&room.id)).into_owned(),
            members,
            notes.join(", "),
        ]);
    }
    println!("{table}");
    if hidden > 0 && !all {
        println!("  ({hidden} hidden: `baro room list --all` shows them)");
    }
    Ok(())
}

/// How a room is named in confirmations: `"name" (kind 0123456789ab)`.
pub(super) fn named(room: &api::RoomInfo) -> String {
    format!(
        "\"{}\" ({} {})",
        printable(&room.name),
        printable(&room.kind),
        printable(room.id.get(..12).unwrap_or(&room.id))
    )
}

pub fn make_admin(home: &Path, room: String, user: String, json: bool) -> Result<()> {
    let Response::Room(room) = ask(
        home,
        Request::MakeAdmin {
            room,
            user: user.clone(),
        },
    )?
    else {
        bail!("the node answered something else than a room");
    };
    if json {
        return print_json(&serde_json::to_value(&room)?);
    }
    println!(
        "{} is now an admin of {}; admins: {}",
        printable(&user),
        named(&room),
        printable(&room.admins.join(", "))
    );
    Ok(())
}

pub fn hide(home: &Path, room: String, hidden: bool, json: bool) -> Result<()> {
    let Response::Room(room) = ask(home, Request::HideRoom { room, hidden })? else {
        bail!("the node answered something else than a room");
    };
    if json {
        return print_json(&serde_json::to_value(&room)?);
    }
    if hidden {
        println!(
            "{} is hidden from `room list` on this device; its messages still arrive (`baro room unhide {}` shows it again)",
            named(&room),
            printable(room.id.get(..12).unwrap_or(&room.id))
        );
    } else {
        println!("{} is shown in `room list` again", named(&room));
    }
    Ok(())
}

pub fn invite(home: &Path, room: String, user: String) -> Result<()> {
    let Response::Room(group) = ask(
        home,
        Request::Invite {
            room,
            user: user.clone(),
        },
    )?
    else {
        bail!("the node answered something else than a room");
    };
    println!(
        "{} added to \"{}\" ({}); their devices get the key",
        printable(&user),
        printable(&group.name),
        printable(group.id.get(..12).unwrap_or(&group.id))
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
    message_size::check(&text)?;
    let Response::Sent(sent) = ask(home, Request::Send { room, text })? else {
        bail!("the node answered something else than a sent message");
    };
    if json {
        return print_json(&serde_json::to_value(&sent)?);
    }
    println!("{}", sent_line(&sent));
    Ok(())
}

/// "sent to "행정안전부" (department, 12 members)": always names the room
/// posted to (finding 3).
pub(super) fn sent_line(sent: &api::Sent) -> String {
    let members = match sent.members {
        1 => "1 member".to_string(),
        n => format!("{n} members"),
    };
    let room = format!(
        "\"{}\" ({}, {members}, {})",
        printable(&sent.room_name),
        printable(&sent.room_kind),
        printable(sent.room.get(..12).unwrap_or(&sent.room))
    );
    if sent.queued {
        format!("queued for {room}: no peer is reachable; it leaves as soon as one is")
    } else {
        format!("sent to {room}")
    }
}

/// One message for people: its text may span lines, each continuation
/// line indented (see [`crate::sanitize`]).
pub(super) fn line(message: &MessageView) -> String {
    let text = match &message.attachment {
        // An attachment is a line of its own: name and size, then the caption.
        Some(file) if message.text.is_empty() => super::file_transfer::file_line(file),
        Some(file) => format!(
            "{}\n{CONTINUATION}{}",
            super::file_transfer::file_line(file),
            printable_lines(&message.text, CONTINUATION)
        ),
        None => printable_lines(&message.text, CONTINUATION).into_owned(),
    };
    format!(
        "{} {}: {}{}",
        LocalTime::system().short(message.wall_ms / 1000),
        printable(&message.sender_name),
        text,
        receipts(message)
    )
}

/// How far this device's own message got: "  ⏳ waiting to send" (no
/// member or relay holds it), "  ✓ sent", or "  ✓ stored by relay.sejong ·
/// delivered to Lee · read by Kim": each user (or relay) once, at the
/// furthest state any of their devices reached.
pub(super) fn receipts(message: &MessageView) -> String {
    if !message.from_me {
        return String::new();
    }
    if message.receipts.is_empty() {
        return if message.queued {
            "  ⏳ waiting to send".to_string()
        } else {
            "  ✓ sent".to_string()
        };
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
    for (state, label) in [
        (ReceiptState::StoredByRelay, "stored by"),
        (ReceiptState::Delivered, "delivered to"),
        (ReceiptState::Read, "read by"),
    ] {
        let who = names(state);
        if !who.is_empty() {
            parts.push(format!("{label} {}", printable(&who.join(", "))));
        }
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

/// "one of your devices was revoked: …" (finding 30): how `watch`, `chat`
/// and `status` tell the owner.
pub fn own_revocation_notice(view: &baro_node::revocations::RevocationView) -> String {
    let wipe = match (view.wipe, view.wiped.first()) {
        (true, Some(wiped)) => format!(
            "; it acknowledged the wipe at {}",
            crate::local_time::date(wiped.wiped_at)
        ),
        (true, None) => "; wipe ordered".to_string(),
        (false, _) => String::new(),
    };
    let device = match &view.label {
        Some(label) => format!("{} ({})", printable(label), view.device.short()),
        None => format!(
            "{} ({})",
            view.device.short(),
            printable(&view.display_name)
        ),
    };
    format!(
        "one of your devices was revoked: {device} by {} at {}: {}{wipe}",
        printable(&view.issued_by),
        crate::local_time::date(view.issued_at),
        printable(&view.reason),
    )
}

/// Prints messages as they arrive, and revocations of the user's other
/// devices. When the node stops, says so, waits for it to come back and
/// goes on (Ctrl-C leaves); with `--json` those notices are lines
/// `{"node": "stopped"}` and `{"node": "running"}`.
pub fn watch(home: &Path, room: Option<String>, json: bool) -> Result<()> {
    let request = Request::Watch { room };
    let mut first = true;
    loop {
        let watched = api::stream(home, &request, |response| {
            if let Response::Revocation(view) = &response {
                if json {
                    if let Ok(text) = serde_json::to_string(&response) {
                        println!("{text}");
                    }
                } else {
                    println!("! {}", own_revocation_notice(view));
                }
            }
            if let Response::FileProgress(message) = &response {
                if json {
                    if let Ok(text) = serde_json::to_string(&response) {
                        println!("{text}");
                    }
                } else if let Some(file) =
                    message.attachment.as_ref().filter(|f| f.held == f.chunks)
                {
                    println!(
                        "[{}] {} is here",
                        printable(&message.room_name),
                        super::file_transfer::file_line(file)
                    );
                }
            }
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
        });
        match watched {
            // Nothing to watch yet, or a room the node does not know.
            Err(e @ (ApiError::NotRunning(_) | ApiError::Node(_))) if first => return Err(e.into()),
            Err(ApiError::Node(message)) => bail!("the node says: {message}"),
            _ => {}
        }
        first = false;
        notice(
            json,
            "stopped",
            "the node stopped: waiting for it to come back (Ctrl-C leaves)",
        );
        while !super::background::is_running(home) {
            std::thread::sleep(WATCH_RETRY);
        }
        notice(json, "running", "the node is back");
    }
}

/// How often `watch` looks for a node that stopped.
const WATCH_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

fn notice(json: bool, state: &str, text: &str) {
    if json {
        println!("{}", serde_json::json!({ "node": state }));
    } else {
        println!("({text})");
    }
}
