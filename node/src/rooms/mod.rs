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
pub mod key_tree;
mod lookup;
mod messenger;
mod room;

pub use carrier::{Carrier, CarrierError, MAX_CARRIED_ROOMS, Membership};
pub use control::ControlMessage;
pub use epochs::{
    CORROBORATION, EpochRef, EpochRefusal, EpochState, MAX_EPOCH_STEP, MAX_EPOCHS_PER_ROOM,
    MAX_SIBLINGS_PER_NUMBER,
};
pub use key_grant::{
    EpochOrigin, GrantBody, GrantError, KeyGrant, MAX_EXCLUDED_PER_ORIGIN, MAX_WRAPS_PER_GRANT,
};
pub use lookup::{LookupError, MIN_ID_PREFIX, MIN_NAME_PREFIX};
pub use messenger::{
    MAX_DEPARTED_PER_ROOM, MAX_EARLY_GRANTS_PER_ROOM, MAX_HOLDERS_PER_EPOCH,
    MAX_ORPHAN_ENVELOPES_PER_ROOM, MAX_ORPHAN_ROOMS, MAX_ORPHAN_ROOMS_PER_SENDER,
    MAX_PENDING_PER_ROOM, MAX_PENDING_PER_SENDER, Message, Messenger, MessengerError,
    RECEIPT_ROOM_LIMIT, SEEN_CAPACITY, Verdict,
};
pub use room::{Room, RoomError, RoomId, RoomKind};
