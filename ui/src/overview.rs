//! Two questions the page asks that are several control API requests at
//! once: the room list with each room's last message, and a search of the
//! local history. Both are answered from [`dispatch`] alone.

use baro_node::Handle;
use baro_node::api::{MessageView, Request, Response, RoomInfo, dispatch};
use serde::Serialize;

/// Most results of one history search.
pub const MAX_RESULTS: usize = 100;

/// Messages of each room searched (the newest).
pub const SEARCH_DEPTH: usize = 5_000;

/// Longest search text, in bytes.
pub const MAX_SEARCH: usize = 256;

/// A room in the list.
#[derive(Debug, Serialize)]
pub struct RoomEntry {
    /// The room.
    #[serde(flatten)]
    pub room: RoomInfo,
    /// Its newest message, if any.
    pub last: Option<MessageView>,
}

async fn ask(handle: &Handle, request: Request) -> Result<Response, String> {
    match dispatch(request, handle).await {
        Response::Error(message) => Err(message),
        response => Ok(response),
    }
}

async fn history(handle: &Handle, room: &str, limit: usize) -> Result<Vec<MessageView>, String> {
    let request = Request::History {
        room: room.to_string(),
        limit,
    };
    match ask(handle, request).await? {
        Response::History(messages) => Ok(messages),
        _ => Err("unexpected answer to history".into()),
    }
}

/// The rooms shown (not hidden), newest activity first, each with its
/// last message.
pub async fn rooms(handle: &Handle) -> Result<Vec<RoomEntry>, String> {
    let Response::Rooms(rooms) = ask(handle, Request::Rooms).await? else {
        return Err("unexpected answer to rooms".into());
    };
    let mut entries = Vec::with_capacity(rooms.len());
    for room in rooms.into_iter().filter(|r| !r.hidden) {
        let last = history(handle, &room.id, 1).await?.pop();
        entries.push(RoomEntry { room, last });
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.last.as_ref().map(|m| (m.wall_ms, m.counter))));
    Ok(entries)
}

/// Messages of every room whose text or sender contains `text` (ignoring
/// case), newest first, at most [`MAX_RESULTS`].
pub async fn search(handle: &Handle, text: &str) -> Result<Vec<MessageView>, String> {
    let needle = baro_node::text::nfc_string(text.trim()).to_lowercase();
    if needle.is_empty() || needle.len() > MAX_SEARCH {
        return Err(format!("search for 1 to {MAX_SEARCH} bytes of text"));
    }
    let Response::Rooms(rooms) = ask(handle, Request::Rooms).await? else {
        return Err("unexpected answer to rooms".into());
    };
    let mut found = Vec::new();
    for room in rooms {
        for message in history(handle, &room.id, SEARCH_DEPTH).await? {
            let text = baro_node::text::nfc_string(&message.text).to_lowercase();
            if text.contains(&needle) || message.sender_name.to_lowercase().contains(&needle) {
                found.push(message);
            }
        }
    }
    found.sort_by_key(|m| std::cmp::Reverse((m.wall_ms, m.counter)));
    found.truncate(MAX_RESULTS);
    Ok(found)
}
