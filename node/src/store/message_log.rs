//! Messaging records on a [`Store`]: rooms, epoch keys, known devices,
//! envelopes in timestamp order, seen message ids, the outbox, receipts for
//! this device's own messages, and what this device has not read yet.
//!
//! Every value goes through the store, so on sled it is sealed at rest.

use std::sync::Arc;

use super::{Store, StoreError};
use crate::crypto::RoomKey;
use crate::identity::PublicKey;
use crate::rooms::{EpochRef, Room, RoomId};
use crate::sync::{SyncItem, SyncScope};
use crate::trust::CertificateChain;
use crate::trust::SignedFrame;
use crate::wire::{self, Envelope, ReceiptState};
use zeroize::Zeroizing;

const ROOMS: &str = "rooms";
const KEYS: &str = "room_keys";
const DEVICES: &str = "devices";
const MESSAGES: &str = "messages";
const SEEN: &str = "seen";
const OUTBOX: &str = "outbox";
const MINE: &str = "mine";
const RECEIPTS: &str = "receipts";
const UNREAD: &str = "unread";
/// Rooms this device's user hid from the room list (local only).
const HIDDEN: &str = "hidden_rooms";
/// Envelopes that are not texts (receipts), kept for sync.
const EXTRAS: &str = "extras";
/// Signed control frames, kept for sync: key = sent_at ms || id.
const CONTROL: &str = "control";
/// Signed revocations, kept for sync: key = issued ms || id.
pub(super) const REVOCATIONS: &str = "revocations";

/// One room's unread message ids.
pub type RoomUnread = (RoomId, Vec<[u8; 32]>);

/// Most records read back in one listing.
pub const MAX_LISTING: usize = 100_000;

/// The messaging records of one node.
#[derive(Clone)]
pub struct MessageLog {
    pub(super) store: Arc<dyn Store>,
}

impl std::fmt::Debug for MessageLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageLog")
    }
}

fn corrupt(what: &str, source: wire::WireError) -> StoreError {
    StoreError::Corrupt {
        path: what.to_string(),
        source,
    }
}

impl MessageLog {
    /// Records on `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        MessageLog { store }
    }

    /// Makes every record written so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.store.flush()
    }

    /// Saves (or replaces) a room definition.
    pub fn save_room(&self, room: &Room) -> Result<(), StoreError> {
        self.store.insert(ROOMS, &room.id.0, &wire::encode(room))
    }

    /// Every saved room.
    pub fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        self.store
            .scan_prefix(ROOMS, &[], MAX_LISTING)?
            .into_iter()
            .map(|(_, bytes)| wire::decode(&bytes).map_err(|e| corrupt("stored room", e)))
            .collect()
    }

    /// Saves an epoch key.
    pub fn save_key(&self, room: RoomId, epoch: EpochRef, key: &RoomKey) -> Result<(), StoreError> {
        let mut id = room.0.to_vec();
        id.extend(epoch.number.to_be_bytes());
        id.extend(epoch.key_id);
        self.store.insert(KEYS, &id, key.expose_bytes())
    }

    /// Every saved epoch key.
    pub fn keys(&self) -> Result<Vec<(RoomId, EpochRef, RoomKey)>, StoreError> {
        let mut out = Vec::new();
        for (id, bytes) in self.store.scan_prefix(KEYS, &[], MAX_LISTING)? {
            // The decrypted buffer itself (the sled store moves it here):
            // erased when done, as is the copy in `key`.
            let bytes = Zeroizing::new(bytes);
            let (Ok(room), Ok(number), Ok(key_id), Ok(key)) = (
                <[u8; 32]>::try_from(&id[..id.len().min(32)]),
                id.get(32..40)
                    .map_or(Err(()), |b| <[u8; 8]>::try_from(b).map_err(|_| ())),
                id.get(40..56)
                    .map_or(Err(()), |b| <[u8; 16]>::try_from(b).map_err(|_| ())),
                <[u8; 32]>::try_from(bytes.as_slice()).map(Zeroizing::new),
            ) else {
                continue;
            };
            out.push((
                RoomId(room),
                EpochRef {
                    number: u64::from_be_bytes(number),
                    key_id,
                },
                RoomKey::from_bytes(*key),
            ));
        }
        Ok(out)
    }

    /// Saves a device's certificate chain.
    pub fn save_device(
        &self,
        device: &PublicKey,
        chain: &CertificateChain,
    ) -> Result<(), StoreError> {
        self.store.insert(DEVICES, &device.0, &wire::encode(chain))
    }

    /// Every saved certificate chain.
    pub fn devices(&self) -> Result<Vec<CertificateChain>, StoreError> {
        Ok(self
            .store
            .scan_prefix(DEVICES, &[], MAX_LISTING)?
            .into_iter()
            .filter_map(|(_, bytes)| wire::decode(&bytes).ok())
            .collect())
    }

    /// Saves an envelope under its room in timestamp order (its id ends the
    /// key, so it counts as seen: one write per message).
    pub fn save_envelope(&self, envelope: &Envelope) -> Result<[u8; 32], StoreError> {
        self.save_in(MESSAGES, envelope)
    }

    /// Saves an envelope that is not a text (a receipt): not history, but
    /// held for sync like every other envelope.
    pub fn save_extra(&self, envelope: &Envelope) -> Result<[u8; 32], StoreError> {
        self.save_in(EXTRAS, envelope)
    }

    fn save_in(&self, tree: &str, envelope: &Envelope) -> Result<[u8; 32], StoreError> {
        let id = envelope.id();
        let header = &envelope.body.header;
        let mut key = header.room.0.to_vec();
        key.extend(header.timestamp.wall_ms.to_be_bytes());
        key.extend(header.timestamp.counter.to_be_bytes());
        key.extend(id);
        self.store.insert(tree, &key, &wire::encode(envelope))?;
        Ok(id)
    }

    /// Saves a signed control frame (its encoding as it travelled); returns
    /// its sync item, or `None` if the bytes are not a frame.
    pub fn save_control(&self, frame: &[u8]) -> Result<Option<SyncItem>, StoreError> {
        let Some(item) = control_item(frame) else {
            return Ok(None);
        };
        self.store.insert(CONTROL, &item_key(&item), frame)?;
        Ok(Some(item))
    }

    /// Every stored control frame, oldest first.
    pub fn control_frames(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .store
            .scan_prefix(CONTROL, &[], usize::MAX)?
            .into_iter()
            .map(|(_, frame)| frame)
            .collect())
    }

    /// Everything held for sync: every set's items and their sizes.
    pub fn sync_items(&self) -> Result<Vec<(SyncScope, SyncItem, usize)>, StoreError> {
        let mut out = Vec::new();
        for tree in [MESSAGES, EXTRAS] {
            for (key, value) in self.store.scan_prefix(tree, &[], usize::MAX)? {
                if let Some((room, item)) = envelope_item(&key) {
                    out.push((SyncScope::Room(room), item, value.len()));
                }
            }
        }
        for (tree, scope) in [
            (CONTROL, SyncScope::Control),
            (REVOCATIONS, SyncScope::Revocations),
        ] {
            for (key, value) in self.store.scan_prefix(tree, &[], usize::MAX)? {
                if let Some(item) = parse_item_key(&key) {
                    out.push((scope, item, value.len()));
                }
            }
        }
        Ok(out)
    }

    /// Everything held for sync, with who wrote each item (an envelope's
    /// sender, a control frame's author; revocations: none), so quotas per
    /// author are restored at start.
    pub fn holdings(&self) -> Result<Vec<Holding>, StoreError> {
        let mut out = Vec::new();
        for tree in [MESSAGES, EXTRAS] {
            for (key, value) in self.store.scan_prefix(tree, &[], usize::MAX)? {
                if let Some((room, item)) = envelope_item(&key) {
                    let author = wire::decode::<Envelope>(&value)
                        .ok()
                        .map(|e| e.body.header.sender);
                    out.push(Holding {
                        scope: SyncScope::Room(room),
                        item,
                        len: value.len(),
                        author,
                    });
                }
            }
        }
        for (tree, scope) in [
            (CONTROL, SyncScope::Control),
            (REVOCATIONS, SyncScope::Revocations),
        ] {
            for (key, value) in self.store.scan_prefix(tree, &[], usize::MAX)? {
                if let Some(item) = parse_item_key(&key) {
                    let author = (scope == SyncScope::Control)
                        .then(|| frame_author(&value))
                        .flatten();
                    out.push(Holding {
                        scope,
                        item,
                        len: value.len(),
                        author,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The stored bytes of one item.
    pub fn item_bytes(
        &self,
        scope: SyncScope,
        item: &SyncItem,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match scope {
            SyncScope::Control => self.store.get(CONTROL, &item_key(item)),
            SyncScope::Revocations => self.store.get(REVOCATIONS, &item_key(item)),
            SyncScope::Room(room) => {
                let mut prefix = room.0.to_vec();
                prefix.extend(item.0.to_be_bytes());
                for tree in [MESSAGES, EXTRAS] {
                    let found = self
                        .store
                        .scan_prefix(tree, &prefix, usize::MAX)?
                        .into_iter()
                        .find(|(key, _)| key.ends_with(&item.1));
                    if let Some((_, bytes)) = found {
                        return Ok(Some(bytes));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Deletes one item (a relay evicting what is too old or over quota).
    pub fn remove_item(&self, scope: SyncScope, item: &SyncItem) -> Result<(), StoreError> {
        match scope {
            SyncScope::Control => self.store.remove(CONTROL, &item_key(item)).map(|_| ()),
            SyncScope::Revocations => self.store.remove(REVOCATIONS, &item_key(item)).map(|_| ()),
            SyncScope::Room(room) => {
                let mut prefix = room.0.to_vec();
                prefix.extend(item.0.to_be_bytes());
                for tree in [MESSAGES, EXTRAS] {
                    for (key, _) in self.store.scan_prefix(tree, &prefix, usize::MAX)? {
                        if key.ends_with(&item.1) {
                            self.store.remove(tree, &key)?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// The last `limit` envelopes of `room`, oldest first.
    pub fn history(&self, room: RoomId, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let all = self.store.scan_prefix(MESSAGES, &room.0, MAX_LISTING)?;
        let skip = all.len().saturating_sub(limit);
        all.into_iter()
            .skip(skip)
            .map(|(_, bytes)| wire::decode(&bytes).map_err(|e| corrupt("stored message", e)))
            .collect()
    }

    /// Ids of every stored message and seen receipt (to refuse replays
    /// after a restart).
    pub fn seen(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        let stored = self.store.scan_prefix(MESSAGES, &[], MAX_LISTING)?;
        let receipts = self.store.scan_prefix(SEEN, &[], MAX_LISTING)?;
        Ok(stored
            .into_iter()
            .map(|(key, _)| key)
            .chain(receipts.into_iter().map(|(id, _)| id))
            .filter_map(|key| <[u8; 32]>::try_from(key.get(key.len().checked_sub(32)?..)?).ok())
            .collect())
    }

    /// Queues an envelope that could not leave yet.
    pub fn push_outbox(&self, envelope: &Envelope) -> Result<(), StoreError> {
        self.store
            .insert(OUTBOX, &envelope.id(), &wire::encode(envelope))
    }

    /// Everything waiting to leave.
    pub fn outbox(&self) -> Result<Vec<Envelope>, StoreError> {
        Ok(self
            .store
            .scan_prefix(OUTBOX, &[], MAX_LISTING)?
            .into_iter()
            .filter_map(|(_, bytes)| wire::decode(&bytes).ok())
            .collect())
    }

    /// How many envelopes wait in the outbox.
    pub fn outbox_len(&self) -> Result<usize, StoreError> {
        Ok(self.store.scan_prefix(OUTBOX, &[], MAX_LISTING)?.len())
    }

    /// Whether envelope `id` still waits in the outbox.
    pub fn is_queued(&self, id: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self.store.get(OUTBOX, id)?.is_some())
    }

    /// Removes an envelope from the outbox once it has left.
    pub fn pop_outbox(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        self.store.remove(OUTBOX, id).map(|_| ())
    }

    /// Marks an envelope seen without storing it (a receipt).
    pub fn mark_seen(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        self.store.insert(SEEN, id, &[])
    }

    /// Records that this device wrote message `id` (receipts are kept for it).
    pub fn mark_mine(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        self.store.insert(MINE, id, &[])
    }

    /// Records `device`'s receipt for message `id` if this device wrote it and
    /// the state is further than any earlier one; `true` if it changed.
    pub fn record_receipt(
        &self,
        id: &[u8; 32],
        device: &PublicKey,
        state: ReceiptState,
    ) -> Result<bool, StoreError> {
        if self.store.get(MINE, id)?.is_none() {
            return Ok(false);
        }
        let mut key = id.to_vec();
        key.extend(device.0);
        let earlier = self
            .store
            .get(RECEIPTS, &key)?
            .and_then(|v| v.first().copied().and_then(state_from_byte));
        if earlier.is_some_and(|e| e >= state) {
            return Ok(false);
        }
        self.store.insert(RECEIPTS, &key, &[state_byte(state)])?;
        // Someone holds it now: it no longer waits to leave.
        self.store.remove(OUTBOX, id)?;
        Ok(true)
    }

    /// The receipts for message `id`, by device.
    pub fn receipts(&self, id: &[u8; 32]) -> Result<Vec<(PublicKey, ReceiptState)>, StoreError> {
        Ok(self
            .store
            .scan_prefix(RECEIPTS, id, MAX_LISTING)?
            .into_iter()
            .filter_map(|(key, value)| {
                let device = <[u8; 32]>::try_from(key.get(32..)?).ok()?;
                let state = state_from_byte(*value.first()?)?;
                Some((PublicKey(device), state))
            })
            .collect())
    }

    /// Saves the messages of `room` not yet read here (replacing the list).
    pub fn save_unread(&self, room: RoomId, ids: &[[u8; 32]]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return self.store.remove(UNREAD, &room.0).map(|_| ());
        }
        self.store.insert(UNREAD, &room.0, &ids.concat())
    }

    /// Hides `room` from the room list, or shows it again.
    pub fn set_hidden(&self, room: RoomId, hidden: bool) -> Result<(), StoreError> {
        if hidden {
            self.store.insert(HIDDEN, &room.0, &[])
        } else {
            self.store.remove(HIDDEN, &room.0).map(|_| ())
        }
    }

    /// The rooms hidden from the room list.
    pub fn hidden(&self) -> Result<Vec<RoomId>, StoreError> {
        Ok(self
            .store
            .scan_prefix(HIDDEN, &[], MAX_LISTING)?
            .into_iter()
            .filter_map(|(room, _)| <[u8; 32]>::try_from(room.as_slice()).ok().map(RoomId))
            .collect())
    }

    /// The messages not yet read here, by room.
    pub fn unread(&self) -> Result<Vec<RoomUnread>, StoreError> {
        Ok(self
            .store
            .scan_prefix(UNREAD, &[], MAX_LISTING)?
            .into_iter()
            .filter_map(|(room, ids)| {
                let room = RoomId(<[u8; 32]>::try_from(room.as_slice()).ok()?);
                let ids = ids
                    .chunks_exact(32)
                    .filter_map(|id| <[u8; 32]>::try_from(id).ok())
                    .collect();
                Some((room, ids))
            })
            .collect())
    }
}

/// One item held for sync, as [`MessageLog::holdings`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    /// Its set.
    pub scope: SyncScope,
    /// Its timestamp and id.
    pub item: SyncItem,
    /// Its stored size.
    pub len: usize,
    /// Who wrote it, if the bytes say.
    pub author: Option<PublicKey>,
}

/// The key of the device that signed a control frame's bytes.
pub fn frame_author(frame: &[u8]) -> Option<PublicKey> {
    let decoded = wire::decode::<SignedFrame>(frame).ok()?;
    decoded.body.author.leaf().map(|leaf| leaf.body.key)
}

/// The sync item of an envelope: its HLC wall time and its id.
pub fn envelope_sync_item(envelope: &Envelope) -> SyncItem {
    (envelope.body.header.timestamp.wall_ms, envelope.id())
}

/// The sync item of a control frame's bytes: its send time (ms) and the
/// hash of the bytes (the gossip message id).
pub fn control_item(frame: &[u8]) -> Option<SyncItem> {
    let decoded = wire::decode::<SignedFrame>(frame).ok()?;
    Some((
        decoded.body.sent_at.saturating_mul(1000),
        *blake3::hash(frame).as_bytes(),
    ))
}

pub(super) fn item_key(item: &SyncItem) -> Vec<u8> {
    let mut key = item.0.to_be_bytes().to_vec();
    key.extend(item.1);
    key
}

fn parse_item_key(key: &[u8]) -> Option<SyncItem> {
    let time = <[u8; 8]>::try_from(key.get(..8)?).ok()?;
    let id = <[u8; 32]>::try_from(key.get(8..)?).ok()?;
    Some((u64::from_be_bytes(time), id))
}

/// Room and item from a message key: room || wall_ms || counter || id.
fn envelope_item(key: &[u8]) -> Option<(RoomId, SyncItem)> {
    let room = <[u8; 32]>::try_from(key.get(..32)?).ok()?;
    let time = <[u8; 8]>::try_from(key.get(32..40)?).ok()?;
    let id = <[u8; 32]>::try_from(key.get(44..)?).ok()?;
    Some((RoomId(room), (u64::from_be_bytes(time), id)))
}

fn state_byte(state: ReceiptState) -> u8 {
    match state {
        ReceiptState::StoredByRelay => 1,
        ReceiptState::Delivered => 2,
        ReceiptState::Read => 3,
    }
}

fn state_from_byte(byte: u8) -> Option<ReceiptState> {
    match byte {
        1 => Some(ReceiptState::StoredByRelay),
        2 => Some(ReceiptState::Delivered),
        3 => Some(ReceiptState::Read),
        _ => None,
    }
}
