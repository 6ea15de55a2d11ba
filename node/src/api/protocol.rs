//! Requests and responses of the control API (JSON lines).

use serde::{Deserialize, Serialize};

use super::operator::{ConsoleView, EnrolledView, SecretText};
use super::{MessageView, People, RoomInfo, Sent};
use crate::node::{BlockedPeer, PeerInfo, Status};
use crate::revocations::RevocationView;

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
    /// The rooms this device is in.
    Rooms,
    /// Create a group.
    CreateRoom {
        /// Its name.
        name: String,
        /// Member user ids (the creator is added as admin).
        members: Vec<String>,
    },
    /// Add a user (a user id, or a display name only one person has) to a
    /// group; answered with the group.
    Invite {
        /// Room name or id.
        room: String,
        /// User id.
        user: String,
    },
    /// Remove a user from a group.
    Remove {
        /// Room name or id.
        room: String,
        /// User id.
        user: String,
    },
    /// Leave a group.
    Leave {
        /// Room name or id.
        room: String,
    },
    /// Make a member of a group an admin too.
    MakeAdmin {
        /// Room name or id.
        room: String,
        /// User id.
        user: String,
    },
    /// Hide a room from the room list on this device, or show it again.
    HideRoom {
        /// Room name or id.
        room: String,
        /// `true` hides, `false` shows again.
        hidden: bool,
    },
    /// Send a text message.
    Send {
        /// Room name or id.
        room: String,
        /// The text.
        text: String,
    },
    /// The last messages of a room.
    History {
        /// Room name or id.
        room: String,
        /// How many.
        limit: usize,
    },
    /// Find a room as a user names it (see [`crate::rooms::MIN_ID_PREFIX`]
    /// and `rooms::lookup`) or `@USER` (a new 1:1 room is opened).
    FindRoom {
        /// What the user typed.
        room: String,
    },
    /// Mark a room's messages read (shown to the user).
    MarkRead {
        /// Room name or id.
        room: String,
    },
    /// Send a file (read by the node: an absolute path).
    SendFile {
        /// Room name or id.
        room: String,
        /// The file, an absolute path.
        path: String,
        /// Text sent with it (may be empty).
        #[serde(default)]
        caption: String,
        /// Send a photo with its metadata (EXIF, GPS) as it is; by
        /// default it is removed.
        #[serde(default)]
        keep_metadata: bool,
    },
    /// The files of a room.
    Files {
        /// Room name or id.
        room: String,
    },
    /// Start or go on fetching a file; once complete, write it to `out`.
    FetchFile {
        /// Room name or id.
        room: String,
        /// 6 or more hex digits of the file id.
        file: String,
        /// Where to write it (an absolute path, a new file), once complete.
        #[serde(default)]
        out: Option<String>,
    },
    /// Stream messages as they arrive (one room, or all).
    Watch {
        /// Room name or id; all rooms if absent.
        room: Option<String>,
    },
    /// Enforce and publish a signed revocation.
    Revoke {
        /// The revocation's encoding, hex.
        revocation: String,
    },
    /// Revoke another device of this device's user.
    RevokeOwnDevice {
        /// Its device id.
        device: String,
        /// Why.
        reason: String,
    },
    /// Every revocation the node enforces.
    Revocations,
    /// Whether this device is an operator's console: its agency and
    /// operator (no passphrase needed; an error on any other device).
    OperatorConsole,
    /// Operator: certify the device of an enrollment request (`baro device
    /// init --out`) with the operator key; answered with its bundle. The
    /// checks of `baro agency enroll`.
    Enroll {
        /// The request file's bytes, hex.
        file: String,
        /// User id of the device's owner.
        user: String,
        /// Display name; the name in the request if absent or empty.
        #[serde(default)]
        display_name: Option<String>,
        /// Org unit path of the owner.
        org: String,
        /// "member" (default) or "relay"; never "operator".
        #[serde(default)]
        role: Option<String>,
        /// Days the certificate is valid (default 365).
        #[serde(default)]
        days: Option<u64>,
        /// Relay addresses to put in the bundle.
        #[serde(default)]
        bootstrap: Vec<String>,
        /// The operator's passphrase (opens the operator key).
        passphrase: SecretText,
    },
    /// Operator: revoke a device (or one certificate of it) or every
    /// device of a user, with the operator key (the agency root key for
    /// an operator's device). The checks of `baro agency revoke`.
    AgencyRevoke {
        /// A device id.
        #[serde(default)]
        device: Option<String>,
        /// A user id (when no device is given): every device of the user.
        #[serde(default)]
        user: Option<String>,
        /// With `device`: only this certificate (its serial).
        #[serde(default)]
        serial: Option<u64>,
        /// Why (shown to operators).
        reason: String,
        /// The device erases its local data when it hears of it.
        #[serde(default)]
        wipe: bool,
        /// The operator's passphrase (opens the operator key).
        passphrase: SecretText,
    },
    /// Put a signed agency policy in force and publish it.
    SetPolicy {
        /// The policy's encoding, hex.
        policy: String,
    },
    /// The certificate chain of a device, or of a user's newest device.
    DeviceChain {
        /// A device id.
        device: Option<String>,
        /// A user id (when no device is given).
        user: Option<String>,
    },
    /// This user's devices (label, id, last seen, revoked).
    Devices,
    /// Find officials: at most one of `search`, `user` and `unit`, asked
    /// of the people this device knows and of a relay's agency directory;
    /// none of them lists everyone this device knows.
    People {
        /// Text in a user id or display name.
        #[serde(default)]
        search: Option<String>,
        /// A user id: that user's devices.
        #[serde(default)]
        user: Option<String>,
        /// An org unit path: its members.
        #[serde(default)]
        unit: Option<String>,
        /// With `unit`: its sub-units' members too.
        #[serde(default)]
        below: bool,
    },
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
    /// Answer to [`Request::Rooms`].
    Rooms(Vec<RoomInfo>),
    /// Answer to [`Request::CreateRoom`], [`Request::FindRoom`],
    /// [`Request::Invite`], [`Request::MakeAdmin`] and [`Request::HideRoom`].
    Room(RoomInfo),
    /// The request was carried out.
    Done,
    /// Answer to [`Request::Send`].
    Sent(Sent),
    /// Answer to [`Request::History`].
    History(Vec<MessageView>),
    /// Answer to [`Request::MarkRead`]: how many messages were unread.
    MarkedRead(usize),
    /// One message of a [`Request::Watch`] stream.
    Message(MessageView),
    /// In a [`Request::Watch`] stream: a file's message, with how much of
    /// the file is held now.
    FileProgress(MessageView),
    /// Answer to [`Request::Files`].
    Files(Vec<MessageView>),
    /// Answer to [`Request::FetchFile`]: the file's message and how much is held.
    File(MessageView),
    /// Answer to [`Request::Revoke`], [`Request::RevokeOwnDevice`] and
    /// [`Request::AgencyRevoke`].
    Revocation(RevocationView),
    /// Answer to [`Request::Revocations`].
    Revocations(Vec<RevocationView>),
    /// Answer to [`Request::OperatorConsole`].
    Console(ConsoleView),
    /// Answer to [`Request::Enroll`]: the bundle and what it certifies.
    Enrolled(EnrolledView),
    /// Answer to [`Request::DeviceChain`]: the chain's encoding, hex.
    Chain(String),
    /// Answer to [`Request::Devices`].
    Devices(Vec<super::DeviceView>),
    /// Answer to [`Request::People`].
    People(People),
    /// Answer to [`Request::SetPolicy`]: the policy now in force.
    Policy(crate::agency_policy::PolicyView),
    /// The request failed.
    Error(String),
}

impl Request {
    /// The request with every name in it (rooms, users, group and search
    /// text, org units) in Unicode NFC ([`crate::text`]), as the node
    /// compares names; message text and encoded items are left as sent.
    pub fn normalized(self) -> Request {
        use crate::text::nfc_string as nfc;
        let opt = |s: Option<String>| s.map(nfc);
        match self {
            Request::CreateRoom { name, members } => Request::CreateRoom {
                name: nfc(name),
                members: members.into_iter().map(nfc).collect(),
            },
            Request::Invite { room, user } => Request::Invite {
                room: nfc(room),
                user: nfc(user),
            },
            Request::Remove { room, user } => Request::Remove {
                room: nfc(room),
                user: nfc(user),
            },
            Request::Leave { room } => Request::Leave { room: nfc(room) },
            Request::MakeAdmin { room, user } => Request::MakeAdmin {
                room: nfc(room),
                user: nfc(user),
            },
            Request::HideRoom { room, hidden } => Request::HideRoom {
                room: nfc(room),
                hidden,
            },
            Request::Send { room, text } => Request::Send {
                room: nfc(room),
                text,
            },
            Request::History { room, limit } => Request::History {
                room: nfc(room),
                limit,
            },
            Request::FindRoom { room } => Request::FindRoom { room: nfc(room) },
            Request::MarkRead { room } => Request::MarkRead { room: nfc(room) },
            Request::Watch { room } => Request::Watch { room: opt(room) },
            Request::SendFile {
                room,
                path,
                caption,
                keep_metadata,
            } => Request::SendFile {
                room: nfc(room),
                path,
                caption,
                keep_metadata,
            },
            Request::Files { room } => Request::Files { room: nfc(room) },
            Request::FetchFile { room, file, out } => Request::FetchFile {
                room: nfc(room),
                file,
                out,
            },
            Request::RevokeOwnDevice { device, reason } => {
                Request::RevokeOwnDevice { device, reason }
            }
            Request::Enroll {
                file,
                user,
                display_name,
                org,
                role,
                days,
                bootstrap,
                passphrase,
            } => Request::Enroll {
                file,
                user: nfc(user),
                display_name: opt(display_name),
                org: nfc(org),
                role,
                days,
                bootstrap,
                passphrase,
            },
            Request::AgencyRevoke {
                device,
                user,
                serial,
                reason,
                wipe,
                passphrase,
            } => Request::AgencyRevoke {
                device,
                user: opt(user),
                serial,
                reason,
                wipe,
                passphrase,
            },
            Request::DeviceChain { device, user } => Request::DeviceChain {
                device,
                user: opt(user),
            },
            Request::People {
                search,
                user,
                unit,
                below,
            } => Request::People {
                search: opt(search),
                user: opt(user),
                unit: opt(unit),
                below,
            },
            plain @ (Request::Status
            | Request::Devices
            | Request::Peers
            | Request::Blocked
            | Request::Rooms
            | Request::Revoke { .. }
            | Request::Revocations
            | Request::OperatorConsole
            | Request::SetPolicy { .. }) => plain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_a_request_are_normalized_and_message_text_is_not() {
        // "2과" typed as conjoining jamo.
        let decomposed = "2\u{1100}\u{116a}";
        let send = Request::Send {
            room: format!("@{decomposed}"),
            text: decomposed.into(),
        }
        .normalized();
        assert_eq!(
            send,
            Request::Send {
                room: "@2과".into(),
                text: decomposed.into(),
            }
        );
        let create = Request::CreateRoom {
            name: decomposed.into(),
            members: vec![decomposed.into()],
        }
        .normalized();
        assert_eq!(
            create,
            Request::CreateRoom {
                name: "2과".into(),
                members: vec!["2과".into()],
            }
        );
        let people = Request::People {
            search: None,
            user: None,
            unit: Some(format!("MOIS/{decomposed}")),
            below: true,
        }
        .normalized();
        assert!(matches!(people, Request::People { unit: Some(u), .. } if u == "MOIS/2과"));
    }
}
