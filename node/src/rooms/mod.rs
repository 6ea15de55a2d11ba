//! Rooms: who is in them and which key epoch is current.
//!
//! Three kinds: department rooms (members are every user whose certified org
//! unit is at or under the room's path), ad-hoc groups (named members and
//! admins) and 1:1 rooms. Members are users; every device of a member gets
//! the keys. Pure: decisions only, no I/O.

mod carrier;
mod control;
mod epochs;
mod key_grant;
mod messenger;
mod room;

pub use carrier::Carrier;
pub use control::ControlMessage;
pub use epochs::{EpochRef, EpochState, Grant};
pub use key_grant::{GrantBody, GrantError, KeyGrant, MAX_WRAPS_PER_GRANT};
pub use messenger::{
    MAX_PENDING_PER_ROOM, Message, Messenger, MessengerError, RECEIPT_ROOM_LIMIT, SEEN_CAPACITY,
    Verdict,
};
pub use room::{Room, RoomError, RoomId, RoomKind};
