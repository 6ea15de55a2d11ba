//! Live updates for the page: the node's events, as server-sent events.
//!
//! Each event is one JSON object with a `kind`; messages carry the
//! [`MessageView`](baro_node::api::MessageView) the control socket's watch
//! stream sends. Events the page has no use for are not sent; what the
//! page shows is always read again through the control API, so a missed
//! event (a slow page lagging the node's bounded event queue) costs only
//! freshness: the page is told to reload.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use baro_node::{Handle, NodeEvent};
use futures::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// How long the browser waits before reconnecting (after a node restart).
const RETRY: Duration = Duration::from_secs(1);

/// The JSON the page gets for `event`, if it has a use for it.
fn shown(event: NodeEvent) -> Option<serde_json::Value> {
    Some(match event {
        NodeEvent::Message(message) => json!({ "kind": "message", "message": message }),
        NodeEvent::RoomJoined(room) => json!({ "kind": "room", "room": room }),
        NodeEvent::PeerAdmitted(_) | NodeEvent::PeerDisconnected(_) => {
            json!({ "kind": "peers" })
        }
        NodeEvent::Synced(_) => json!({ "kind": "synced" }),
        // Receipts arrive as gossip: the open room's states may have moved.
        NodeEvent::Gossip { .. } => json!({ "kind": "gossip" }),
        NodeEvent::Revoked(view) => json!({ "kind": "revoked", "revocation": view }),
        NodeEvent::WipeConfirmed { device, .. } => {
            json!({ "kind": "wipe_confirmed", "device": device })
        }
        NodeEvent::Wiping { notice } | NodeEvent::Wiped { notice } => {
            json!({ "kind": "wiped", "notice": notice })
        }
        _ => return None,
    })
}

/// The stream of events for one page, until it goes or the node stops.
pub fn stream(
    handle: &Handle,
    shutdown: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let events = handle.events();
    let hello = Event::default()
        .retry(RETRY)
        .data(json!({ "kind": "hello" }).to_string());
    let first = futures::stream::once(async move { Ok(hello) });
    let rest = futures::stream::unfold((events, shutdown), |(mut events, shutdown)| async move {
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return None,
                event = events.recv() => event,
            };
            let value = match event {
                Ok(event) => match shown(event) {
                    Some(value) => value,
                    None => continue,
                },
                Err(RecvError::Lagged(_)) => json!({ "kind": "reload" }),
                Err(RecvError::Closed) => return None,
            };
            let event = Event::default().data(value.to_string());
            return Some((Ok(event), (events, shutdown)));
        }
    });
    Sse::new(futures::StreamExt::chain(first, rest)).keep_alive(KeepAlive::default())
}
