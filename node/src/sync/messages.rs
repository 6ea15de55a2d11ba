//! The sync protocol's messages: a reconciliation round, or a fetch of the
//! items the asking side lacks.

use serde::{Deserialize, Serialize};

use super::SyncScope;
use crate::wire::{Format, Kind};

/// Most ids asked for in one fetch.
pub const MAX_FETCH_IDS: usize = 256;
/// Most item bytes in one fetch response (a fetch of more is answered in part,
/// and the asker fetches the rest).
pub const MAX_ITEMS_BYTES: usize = 1 << 20;

/// From the side that started a sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// One reconciliation round for `scope`.
    Reconcile {
        /// The set.
        scope: SyncScope,
        /// The negentropy message.
        message: Vec<u8>,
    },
    /// Send these items of `scope`.
    Fetch {
        /// The set.
        scope: SyncScope,
        /// Their ids (at most [`MAX_FETCH_IDS`]).
        ids: Vec<[u8; 32]>,
    },
    /// "I hold items of `scope` you may lack: reconcile it with me." Sent
    /// when the peer just subscribed to a room's topic, and while a message
    /// this side wrote has no receipt; answered with
    /// [`SyncResponse::Noted`], acted on within a rate limit.
    Hint {
        /// The set.
        scope: SyncScope,
    },
}

/// From the side that answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The negentropy reply.
    Reconcile(Vec<u8>),
    /// The items asked for that this side holds and may give, each in its
    /// own wire encoding (an envelope or a signed frame).
    Items(Vec<Vec<u8>>),
    /// This side does not serve that set to the asker (not a member, or it
    /// does not hold the room).
    Refused(String),
    /// A [`SyncRequest::Hint`] arrived (whether it is acted on is the
    /// receiver's business).
    Noted,
}

impl Format for SyncRequest {
    const KIND: Kind = Kind::SyncRequest;
    const MAX_LEN: usize = super::MAX_RECONCILE_MESSAGE + 16 * 1024;
}

impl Format for SyncResponse {
    const KIND: Kind = Kind::SyncResponse;
    const MAX_LEN: usize = MAX_ITEMS_BYTES + 128 * 1024;
}
