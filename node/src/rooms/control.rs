//! What travels on the agency control topic about rooms: presence (the
//! frame's author chain announces a device), key grants, and group
//! definitions (an envelope readable only by the group's members).

use serde::{Deserialize, Serialize};

use super::{KeyGrant, Room};
use crate::wire::{Envelope, Format, Kind};

/// A control-topic payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlMessage {
    /// "I am here": the carrying frame's chain introduces the device.
    Presence,
    /// A room key wrapped to member devices.
    Grant(KeyGrant),
    /// A group definition, encrypted for its members.
    RoomDefinition(Envelope),
    /// "I stored these envelopes": a relay's receipt, published in a signed
    /// frame on the room's own topic (at most `MAX_RECEIPT_IDS` ids).
    Stored(Vec<[u8; 32]>),
    /// Presence with the device's label ("PC", "휴대폰"), chosen by its
    /// owner at `device init`: the carrying frame's signature (the device's
    /// own key) covers it, and the newest frame's label wins. Builds that
    /// predate it pass the frame on without keeping it.
    Label(String),
}

impl Format for ControlMessage {
    const KIND: Kind = Kind::ControlMessage;
    const MAX_LEN: usize = KeyGrant::MAX_LEN + 1024;
}

impl Format for Room {
    const KIND: Kind = Kind::RoomRecord;
    const MAX_LEN: usize = 64 * 1024;
}
