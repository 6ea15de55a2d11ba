//! Requests and responses of the control API (JSON lines).

use serde::{Deserialize, Serialize};

use crate::node::{BlockedPeer, PeerInfo, Status};

/// Longest request or response line accepted, in bytes.
pub const MAX_LINE: usize = 1 << 20;

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// The node's status.
    Status,
    /// The admitted peers.
    Peers,
    /// The blocked peers.
    Blocked,
}

/// What the node answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", content = "body", rename_all = "snake_case")]
pub enum Response {
    /// Answer to [`Request::Status`].
    Status(Status),
    /// Answer to [`Request::Peers`].
    Peers(Vec<PeerInfo>),
    /// Answer to [`Request::Blocked`].
    Blocked(Vec<BlockedPeer>),
    /// The request failed.
    Error(String),
}
