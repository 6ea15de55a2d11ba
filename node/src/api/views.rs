//! What the node shows its user: rooms, messages and their receipts, and
//! the outcome of a send, as the control API (and any interface on top of
//! it) serializes them.

use serde::{Deserialize, Serialize};

use crate::identity::DeviceId;
use crate::wire::ReceiptState;

/// A room as listed to the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// Full room id (hex).
    pub id: String,
    /// Name.
    pub name: String,
    /// "department", "group" or "direct".
    pub kind: String,
    /// Member user ids (groups and 1:1), or the org unit (departments).
    pub members: Vec<String>,
    /// Whether this device holds the current key.
    pub can_send: bool,
    /// Messages from others not read on this device yet.
    pub unread: usize,
    /// Whether receipts are exchanged here (rooms of at most
    /// [`RECEIPT_ROOM_LIMIT`](crate::rooms::RECEIPT_ROOM_LIMIT) member devices).
    pub receipts: bool,
    /// A group's admins (user ids); empty for other rooms.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Hidden from the room list on this device (`baro room hide`).
    #[serde(default)]
    pub hidden: bool,
}

/// One recipient device's receipt for a message this device wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptView {
    /// The recipient device.
    pub device: DeviceId,
    /// Its user id.
    pub user: String,
    /// Its user's display name.
    pub name: String,
    /// How far the message got on it.
    pub state: ReceiptState,
}

/// A message as shown to the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// Message id (hex).
    pub id: String,
    /// Room id (hex).
    pub room: String,
    /// Room name.
    pub room_name: String,
    /// Sending device.
    pub sender: DeviceId,
    /// Sender's user id.
    pub sender_user: String,
    /// Sender's display name.
    pub sender_name: String,
    /// Hybrid logical clock: milliseconds.
    pub wall_ms: u64,
    /// Hybrid logical clock: counter.
    pub counter: u32,
    /// The text.
    pub text: String,
    /// Whether this device wrote it.
    pub from_me: bool,
    /// Receipts from recipient devices (for messages this device wrote).
    pub receipts: Vec<ReceiptView>,
    /// This device wrote it and no peer has taken it yet: it waits in the
    /// outbox (it is on disk and leaves when a member is reachable).
    #[serde(default)]
    pub queued: bool,
    /// How far a message this device wrote got, at best (`None` for
    /// others' messages); the receipts say by whom.
    #[serde(default)]
    pub progress: Option<Progress>,
    /// The attached file, if the message carries one (`text` is then its caption).
    #[serde(default)]
    pub attachment: Option<AttachmentView>,
}

/// A file attached to a message, as the user interface shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentView {
    /// File id (hex): what `baro fetch` names.
    pub file_id: String,
    /// File name (no directories).
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Chunks in all.
    pub chunks: usize,
    /// Chunks held on this device.
    pub held: usize,
    /// A preview, for photos.
    #[serde(default)]
    pub preview: Option<PreviewView>,
}

impl AttachmentView {
    /// The view of `manifest`, `held` of its chunks on this device.
    pub fn of(manifest: &crate::wire::FileManifest, held: usize) -> Self {
        AttachmentView {
            file_id: hex::encode(manifest.id),
            name: manifest.name.clone(),
            media_type: manifest.media_type.clone(),
            size: manifest.size,
            chunks: manifest.chunks.len(),
            held,
            preview: manifest.preview.as_ref().map(|p| PreviewView {
                media_type: p.media_type.clone(),
                width: p.width,
                height: p.height,
                hex: hex::encode(&p.bytes),
            }),
        }
    }
}

/// A photo's preview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewView {
    /// "image/jpeg" or "image/png".
    pub media_type: String,
    /// Pixels across.
    pub width: u32,
    /// Pixels down.
    pub height: u32,
    /// The image, hex.
    pub hex: String,
}

/// How far a message this device wrote got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// In the outbox: no member or relay holds it yet.
    Waiting,
    /// Out to the mesh; no receipt yet (or none in rooms too large for them).
    Sent,
    /// A relay stored it.
    StoredByRelay,
    /// A recipient device decrypted it.
    Delivered,
    /// A recipient read it.
    Read,
}

impl Progress {
    /// The progress of a message this device wrote: waiting while `queued`,
    /// else the furthest of its receipts, else sent.
    pub fn of(queued: bool, receipts: &[ReceiptView]) -> Self {
        let furthest = receipts.iter().map(|r| match r.state {
            ReceiptState::StoredByRelay => Progress::StoredByRelay,
            ReceiptState::Delivered => Progress::Delivered,
            ReceiptState::Read => Progress::Read,
        });
        match furthest.max() {
            Some(progress) => progress,
            None if queued => Progress::Waiting,
            None => Progress::Sent,
        }
    }
}

/// What happened to a sent message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Message id (hex).
    pub id: String,
    /// `true` if no peer could take it yet: it waits in the outbox.
    pub queued: bool,
    /// The room it was posted to: id (hex).
    #[serde(default)]
    pub room: String,
    /// The room's name.
    #[serde(default)]
    pub room_name: String,
    /// The room's kind: "department", "group" or "direct".
    #[serde(default)]
    pub room_kind: String,
    /// Member user ids of a group or 1:1 room (1 for a department: its unit).
    #[serde(default)]
    pub members: usize,
}

/// An official as the agency directory knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonView {
    /// User id.
    pub user: String,
    /// Display name.
    pub name: String,
    /// Org unit.
    pub org_unit: String,
    /// Their devices whose certificates checked out here.
    pub devices: Vec<DeviceId>,
    /// The labels those devices announced ("PC", "휴대폰"), where known here.
    #[serde(default)]
    pub labels: Vec<String>,
}

/// One of the user's own devices, as `baro device list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    /// Its device id.
    pub device: DeviceId,
    /// Its label ("PC", "휴대폰"), if it announced one.
    pub label: Option<String>,
    /// The display name on its certificate.
    pub name: String,
    /// Whether it is the device answering.
    pub this_device: bool,
    /// Whether it is connected now.
    pub connected: bool,
    /// When this node last met it (admitted or left), Unix seconds.
    pub last_seen: Option<u64>,
    /// When its certificate ends, Unix seconds.
    pub not_after: u64,
    /// If revoked: by whom (the issuer's name, e.g. "operator park.jiwoo").
    pub revoked: Option<String>,
    /// If revoked: when, Unix seconds.
    pub revoked_at: Option<u64>,
}

/// What the agency directory answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct People {
    /// The people found, in the order the directory gave them.
    pub people: Vec<PersonView>,
    /// The answer was cut at its size limit: narrow the question.
    pub more: bool,
    /// The relay that answered (`None`: this node, a relay itself, or no
    /// relay was asked).
    pub from: Option<DeviceId>,
    /// No relay answered: only the people this device knows are listed
    /// (officials whose certificates it holds).
    #[serde(default)]
    pub local_only: bool,
}
