//! What two peers reconcile: the revocation set, the agency's control
//! frames, or one room's envelopes.

use serde::{Deserialize, Serialize};

use crate::rooms::RoomId;

/// One reconciled set. Peers always go through them in this order:
/// revocations first, then control frames (certificates, key grants, room
/// definitions), then rooms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SyncScope {
    /// Signed revocations (grow-only; they decide who may take part at all).
    Revocations,
    /// Signed frames of the agency control topic.
    Control,
    /// The envelopes of one room.
    Room(RoomId),
}

impl std::fmt::Display for SyncScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncScope::Revocations => f.write_str("revocations"),
            SyncScope::Control => f.write_str("control"),
            SyncScope::Room(room) => write!(f, "room {}", room.short()),
        }
    }
}
