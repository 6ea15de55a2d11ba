//! Messaging records on a [`Store`]: rooms, epoch keys, known devices,
//! envelopes in timestamp order, seen message ids, the outbox, receipts for
//! this device's own messages, and what this device has not read yet.
//!
//! Every value goes through the store, so on sled it is sealed at rest.
//!
//! # Record keys (schema v2)
//!
//! Each record has a *logical key*, the key schema v1 stored in the clear:
//! `room id || wall_ms || counter || msg id` for a message, `msg id ||
//! device` for a receipt, `time ms || id` for a control frame or a
//! revocation, a room id, a device key or a message id for the rest. It
//! is no longer the database key: [`layout`] splits it into a *group*
//! (what listings scan together: a message's room, a receipt's message;
//! empty for trees only ever listed whole) and an *identity* (what finds
//! one record: a message id, a whole receipt key, a frame's hash), and
//! the record is filed under
//!
//! ```text
//! tag(tree, "group", group) || tag(tree, "id", identity)   (a tree with groups)
//!                              tag(tree, "id", identity)   (otherwise)
//! ```
//!
//! ([`Store::tag`]: keyed BLAKE3 under a key derived from the storage key),
//! with the value `len(logical key) as u8 || logical key || payload`, all
//! of it sealed. Listings read a group (or a tree), open the values and
//! sort them by logical key, so they come back in exactly the order v1
//! gave: messages of a room by timestamp, control frames and revocations
//! oldest first. Timestamps thus never order anything on disk: a room's
//! records lie in the order of their ids' tags. The agency policy tree
//! (fixed keys such as `policy`, `last_met`) reveals nothing and keeps its
//! keys as they are.

use std::sync::Arc;

use super::{Store, StoreError, revocation_log};
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
/// Devices' labels as their own signed frames said, by device key:
/// sent_at (u64 LE) || label.
const LABELS: &str = "device_labels";
/// When this node last met each device (admitted, or left), by device key:
/// Unix seconds (u64 LE).
const LAST_SEEN: &str = "device_last_seen";
/// Envelopes that are not texts (receipts), kept for sync.
const EXTRAS: &str = "extras";
/// Signed control frames, kept for sync: key = sent_at ms || id.
const CONTROL: &str = "control";
/// Signed revocations, kept for sync: key = issued ms || id.
pub(super) const REVOCATIONS: &str = "revocations";

/// A message key: room (32) || wall ms (8) || counter (4) || id (32).
const MESSAGE_KEY_LEN: usize = 76;

/// Where a record of `tree` with logical key `key` is filed: its group and
/// its identity (see the module docs); `None` for a tree this module does
/// not keep, whose keys are stored as given. A key of the wrong shape for
/// its tree gives an empty identity, which no record is filed under.
pub(super) fn layout<'k>(tree: &str, key: &'k [u8]) -> Option<(&'k [u8], &'k [u8])> {
    let shaped = |group: Option<&'k [u8]>, id: Option<&'k [u8]>| match (group, id) {
        (Some(group), Some(id)) => (group, id),
        _ => (&[][..], &[][..]),
    };
    Some(match tree {
        MESSAGES | EXTRAS if key.len() == MESSAGE_KEY_LEN => shaped(key.get(..32), key.get(44..)),
        MESSAGES | EXTRAS => shaped(None, None),
        RECEIPTS if key.len() == 64 => (&key[..32], key),
        RECEIPTS => shaped(None, None),
        CONTROL | REVOCATIONS if key.len() == 40 => (&[][..], &key[8..]),
        CONTROL | REVOCATIONS => shaped(None, None),
        ROOMS | KEYS | DEVICES | SEEN | OUTBOX | MINE | UNREAD | HIDDEN | LABELS | LAST_SEEN => {
            (&[][..], key)
        }
        tree if revocation_log::TREES.contains(&tree) => (&[][..], key),
        _ => return None,
    })
}

/// The database key of a record of `tree` in `group` with `identity`.
fn record_key(
    tree: &str,
    group: &[u8],
    identity: &[u8],
    tag: impl Fn(&[&[u8]]) -> Result<[u8; 32], StoreError>,
) -> Result<Vec<u8>, StoreError> {
    let mut key = Vec::with_capacity(64);
    if !group.is_empty() {
        key.extend(tag(&[tree.as_bytes(), b"group", group])?);
    }
    key.extend(tag(&[tree.as_bytes(), b"id", identity])?);
    Ok(key)
}

/// The database prefix of `group` in `tree` (empty: the whole tree).
fn group_prefix(
    tree: &str,
    group: &[u8],
    tag: impl Fn(&[&[u8]]) -> Result<[u8; 32], StoreError>,
) -> Result<Vec<u8>, StoreError> {
    if group.is_empty() {
        return Ok(Vec::new());
    }
    Ok(tag(&[tree.as_bytes(), b"group", group])?.to_vec())
}

/// The value holding `payload` filed under logical key `key`.
fn wrap(key: &[u8], payload: &[u8]) -> Zeroizing<Vec<u8>> {
    debug_assert!(key.len() <= usize::from(u8::MAX));
    let mut value = Zeroizing::new(Vec::with_capacity(1 + key.len() + payload.len()));
    value.push(key.len() as u8);
    value.extend_from_slice(key);
    value.extend_from_slice(payload);
    value
}

/// A record of schema v1 as schema v2 files it (see [`refile`]).
pub(super) enum Refiled {
    /// Filed under `key`, holding `value`.
    Keyed {
        /// The database key.
        key: Vec<u8>,
        /// The value, to be sealed.
        value: Zeroizing<Vec<u8>>,
    },
    /// A tree whose keys stay as they are.
    AsIs,
    /// A key of the wrong shape for its tree (v1 never read it back).
    Malformed,
}

/// How the v1 record `key` → `value` of `tree` is filed in v2: the v1 key
/// is the logical key.
pub(super) fn refile(
    tree: &str,
    key: &[u8],
    value: &[u8],
    tag: impl Fn(&[&[u8]]) -> Result<[u8; 32], StoreError>,
) -> Result<Refiled, StoreError> {
    Ok(match layout(tree, key) {
        None => Refiled::AsIs,
        Some((_, [])) => Refiled::Malformed,
        Some((group, identity)) => Refiled::Keyed {
            key: record_key(tree, group, identity, tag)?,
            value: wrap(key, value),
        },
    })
}

/// One record read back: its logical key and payload, in the buffer the
/// store opened (erased when dropped: some hold room keys).
pub(super) struct Record(Zeroizing<Vec<u8>>);

impl Record {
    fn parse(value: Vec<u8>) -> Option<Record> {
        let value = Zeroizing::new(value);
        let len = usize::from(*value.first()?);
        (value.len() > len).then_some(Record(value))
    }

    /// The logical key.
    pub(super) fn key(&self) -> &[u8] {
        &self.0[1..1 + usize::from(self.0[0])]
    }

    /// The payload.
    pub(super) fn value(&self) -> &[u8] {
        &self.0[1 + usize::from(self.0[0])..]
    }
}

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

/// A logical key of the wrong shape for its tree (a bug of this module).
fn malformed(tree: &str) -> StoreError {
    StoreError::Corrupt {
        path: format!("key for tree '{tree}'"),
        source: wire::WireError::Truncated { len: 0 },
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

    fn tagger(&self) -> impl Fn(&[&[u8]]) -> Result<[u8; 32], StoreError> + '_ {
        |parts: &[&[u8]]| self.store.tag(parts)
    }

    /// Writes `payload` under logical key `key` of `tree`.
    pub(super) fn put(&self, tree: &str, key: &[u8], payload: &[u8]) -> Result<(), StoreError> {
        match layout(tree, key) {
            None => self.store.insert(tree, key, payload),
            Some((_, [])) => Err(malformed(tree)),
            Some((group, identity)) => self.store.insert(
                tree,
                &record_key(tree, group, identity, self.tagger())?,
                &wrap(key, payload),
            ),
        }
    }

    /// The record of `tree` in `group` with `identity`.
    pub(super) fn find(
        &self,
        tree: &str,
        group: &[u8],
        identity: &[u8],
    ) -> Result<Option<Record>, StoreError> {
        let key = record_key(tree, group, identity, self.tagger())?;
        Ok(self.store.get(tree, &key)?.and_then(Record::parse))
    }

    /// The payload filed under logical key `key` of `tree`.
    pub(super) fn fetch(&self, tree: &str, key: &[u8]) -> Result<Option<Record>, StoreError> {
        let Some((group, identity)) = layout(tree, key) else {
            return Err(malformed(tree));
        };
        Ok(self
            .find(tree, group, identity)?
            .filter(|record| record.key() == key))
    }

    /// Removes the record filed under logical key `key` of `tree`.
    pub(super) fn delete(&self, tree: &str, key: &[u8]) -> Result<bool, StoreError> {
        let Some((group, identity)) = layout(tree, key) else {
            return Err(malformed(tree));
        };
        self.store
            .remove(tree, &record_key(tree, group, identity, self.tagger())?)
    }

    /// Up to `limit` records of `group` in `tree` (the whole tree if
    /// `group` is empty), in logical key order.
    pub(super) fn list(
        &self,
        tree: &str,
        group: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let prefix = group_prefix(tree, group, self.tagger())?;
        let mut records: Vec<Record> = self
            .store
            .scan_prefix(tree, &prefix, usize::MAX)?
            .into_iter()
            .filter_map(|(_, value)| Record::parse(value))
            // Filed where it belongs (a record moved by hand would not open).
            .filter(|record| {
                group.is_empty() || layout(tree, record.key()).is_some_and(|(g, _)| g == group)
            })
            .collect();
        records.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        records.truncate(limit);
        Ok(records)
    }

    /// Saves (or replaces) a room definition.
    pub fn save_room(&self, room: &Room) -> Result<(), StoreError> {
        self.put(ROOMS, &room.id.0, &wire::encode(room))
    }

    /// Every saved room.
    pub fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        self.list(ROOMS, &[], MAX_LISTING)?
            .iter()
            .map(|record| wire::decode(record.value()).map_err(|e| corrupt("stored room", e)))
            .collect()
    }

    /// Saves an epoch key.
    pub fn save_key(&self, room: RoomId, epoch: EpochRef, key: &RoomKey) -> Result<(), StoreError> {
        let mut id = room.0.to_vec();
        id.extend(epoch.number.to_be_bytes());
        id.extend(epoch.key_id);
        self.put(KEYS, &id, key.expose_bytes())
    }

    /// Every saved epoch key.
    pub fn keys(&self) -> Result<Vec<(RoomId, EpochRef, RoomKey)>, StoreError> {
        let mut out = Vec::new();
        for record in self.list(KEYS, &[], MAX_LISTING)? {
            // The decrypted buffer itself (the sled store moves it here):
            // erased when done (`Record`), as is the copy in `key`.
            let (id, bytes) = (record.key(), record.value());
            let (Ok(room), Ok(number), Ok(key_id), Ok(key)) = (
                <[u8; 32]>::try_from(&id[..id.len().min(32)]),
                id.get(32..40)
                    .map_or(Err(()), |b| <[u8; 8]>::try_from(b).map_err(|_| ())),
                id.get(40..56)
                    .map_or(Err(()), |b| <[u8; 16]>::try_from(b).map_err(|_| ())),
                <[u8; 32]>::try_from(bytes).map(Zeroizing::new),
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
        self.put(DEVICES, &device.0, &wire::encode(chain))
    }

    /// Every saved certificate chain.
    pub fn devices(&self) -> Result<Vec<CertificateChain>, StoreError> {
        Ok(self
            .list(DEVICES, &[], MAX_LISTING)?
            .iter()
            .filter_map(|record| wire::decode(record.value()).ok())
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
        self.put(tree, &key, &wire::encode(envelope))?;
        Ok(id)
    }

    /// Saves a signed control frame (its encoding as it travelled); returns
    /// its sync item, or `None` if the bytes are not a frame.
    pub fn save_control(&self, frame: &[u8]) -> Result<Option<SyncItem>, StoreError> {
        let Some(item) = control_item(frame) else {
            return Ok(None);
        };
        self.put(CONTROL, &item_key(&item), frame)?;
        Ok(Some(item))
    }

    /// Every stored control frame, oldest first.
    pub fn control_frames(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .list(CONTROL, &[], usize::MAX)?
            .iter()
            .map(|record| record.value().to_vec())
            .collect())
    }

    /// Everything held for sync: every set's items and their sizes.
    pub fn sync_items(&self) -> Result<Vec<(SyncScope, SyncItem, usize)>, StoreError> {
        let mut out = Vec::new();
        for tree in [MESSAGES, EXTRAS] {
            for record in self.list(tree, &[], usize::MAX)? {
                if let Some((room, item)) = envelope_item(record.key()) {
                    out.push((SyncScope::Room(room), item, record.value().len()));
                }
            }
        }
        for (tree, scope) in [
            (CONTROL, SyncScope::Control),
            (REVOCATIONS, SyncScope::Revocations),
        ] {
            for record in self.list(tree, &[], usize::MAX)? {
                if let Some(item) = parse_item_key(record.key()) {
                    out.push((scope, item, record.value().len()));
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
            for record in self.list(tree, &[], usize::MAX)? {
                if let Some((room, item)) = envelope_item(record.key()) {
                    let author = wire::decode::<Envelope>(record.value())
                        .ok()
                        .map(|e| e.body.header.sender);
                    out.push(Holding {
                        scope: SyncScope::Room(room),
                        item,
                        len: record.value().len(),
                        author,
                    });
                }
            }
        }
        for (tree, scope) in [
            (CONTROL, SyncScope::Control),
            (REVOCATIONS, SyncScope::Revocations),
        ] {
            for record in self.list(tree, &[], usize::MAX)? {
                if let Some(item) = parse_item_key(record.key()) {
                    let author = (scope == SyncScope::Control)
                        .then(|| frame_author(record.value()))
                        .flatten();
                    out.push(Holding {
                        scope,
                        item,
                        len: record.value().len(),
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
        Ok(self
            .find_item(scope, item)?
            .map(|(_, record)| record.value().to_vec()))
    }

    /// The record of one item, and its tree: found by its id, and only if
    /// its time is the item's too.
    fn find_item(
        &self,
        scope: SyncScope,
        item: &SyncItem,
    ) -> Result<Option<(&'static str, Record)>, StoreError> {
        match scope {
            SyncScope::Control | SyncScope::Revocations => {
                let tree = match scope {
                    SyncScope::Control => CONTROL,
                    _ => REVOCATIONS,
                };
                Ok(self
                    .fetch(tree, &item_key(item))?
                    .map(|record| (tree, record)))
            }
            SyncScope::Room(room) => {
                for tree in [MESSAGES, EXTRAS] {
                    let found = self
                        .find(tree, &room.0, &item.1)?
                        .filter(|record| envelope_item(record.key()) == Some((room, *item)));
                    if let Some(record) = found {
                        return Ok(Some((tree, record)));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Deletes one item (a relay evicting what is too old or over quota).
    pub fn remove_item(&self, scope: SyncScope, item: &SyncItem) -> Result<(), StoreError> {
        if let Some((tree, record)) = self.find_item(scope, item)? {
            self.delete(tree, record.key())?;
        }
        Ok(())
    }

    /// The last `limit` envelopes of `room`, oldest first.
    pub fn history(&self, room: RoomId, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let all = self.list(MESSAGES, &room.0, usize::MAX)?;
        let skip = all.len().saturating_sub(limit);
        all.iter()
            .skip(skip)
            .map(|record| wire::decode(record.value()).map_err(|e| corrupt("stored message", e)))
            .collect()
    }

    /// Ids of every stored message and seen receipt (to refuse replays
    /// after a restart).
    pub fn seen(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        let stored = self.list(MESSAGES, &[], MAX_LISTING)?;
        let receipts = self.list(SEEN, &[], MAX_LISTING)?;
        Ok(stored
            .iter()
            .chain(&receipts)
            .map(Record::key)
            .filter_map(|key| <[u8; 32]>::try_from(key.get(key.len().checked_sub(32)?..)?).ok())
            .collect())
    }

    /// Queues an envelope that could not leave yet.
    pub fn push_outbox(&self, envelope: &Envelope) -> Result<(), StoreError> {
        self.put(OUTBOX, &envelope.id(), &wire::encode(envelope))
    }

    /// Everything waiting to leave.
    pub fn outbox(&self) -> Result<Vec<Envelope>, StoreError> {
        Ok(self
            .list(OUTBOX, &[], MAX_LISTING)?
            .iter()
            .filter_map(|record| wire::decode(record.value()).ok())
            .collect())
    }

    /// How many envelopes wait in the outbox.
    pub fn outbox_len(&self) -> Result<usize, StoreError> {
        Ok(self.list(OUTBOX, &[], MAX_LISTING)?.len())
    }

    /// Whether envelope `id` still waits in the outbox.
    pub fn is_queued(&self, id: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self.fetch(OUTBOX, id)?.is_some())
    }

    /// Removes an envelope from the outbox once it has left.
    pub fn pop_outbox(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        self.delete(OUTBOX, id).map(|_| ())
    }

    /// Marks an envelope seen without storing it (a receipt).
    pub fn mark_seen(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        self.put(SEEN, id, &[])
    }

    /// Records that this device wrote message `id` (receipts are kept for it).
    pub fn mark_mine(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        self.put(MINE, id, &[])
    }

    /// Records `device`'s receipt for message `id` if this device wrote it and
    /// the state is further than any earlier one; `true` if it changed.
    pub fn record_receipt(
        &self,
        id: &[u8; 32],
        device: &PublicKey,
        state: ReceiptState,
    ) -> Result<bool, StoreError> {
        if self.fetch(MINE, id)?.is_none() {
            return Ok(false);
        }
        let mut key = id.to_vec();
        key.extend(device.0);
        let earlier = self
            .fetch(RECEIPTS, &key)?
            .and_then(|record| record.value().first().copied().and_then(state_from_byte));
        if earlier.is_some_and(|e| e >= state) {
            return Ok(false);
        }
        self.put(RECEIPTS, &key, &[state_byte(state)])?;
        // Someone holds it now: it no longer waits to leave.
        self.delete(OUTBOX, id)?;
        Ok(true)
    }

    /// The receipts for message `id`, by device.
    pub fn receipts(&self, id: &[u8; 32]) -> Result<Vec<(PublicKey, ReceiptState)>, StoreError> {
        Ok(self
            .list(RECEIPTS, id, MAX_LISTING)?
            .iter()
            .filter_map(|record| {
                let device = <[u8; 32]>::try_from(record.key().get(32..)?).ok()?;
                let state = state_from_byte(*record.value().first()?)?;
                Some((PublicKey(device), state))
            })
            .collect())
    }

    /// Saves the messages of `room` not yet read here (replacing the list).
    pub fn save_unread(&self, room: RoomId, ids: &[[u8; 32]]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return self.delete(UNREAD, &room.0).map(|_| ());
        }
        self.put(UNREAD, &room.0, &ids.concat())
    }

    /// Hides `room` from the room list, or shows it again.
    pub fn set_hidden(&self, room: RoomId, hidden: bool) -> Result<(), StoreError> {
        if hidden {
            self.put(HIDDEN, &room.0, &[])
        } else {
            self.delete(HIDDEN, &room.0).map(|_| ())
        }
    }

    /// Keeps `device`'s label, as its frame sent at `sent_at` said.
    pub fn save_label(
        &self,
        device: &PublicKey,
        sent_at: u64,
        label: &str,
    ) -> Result<(), StoreError> {
        let mut value = sent_at.to_le_bytes().to_vec();
        value.extend_from_slice(label.as_bytes());
        self.put(LABELS, &device.0, &value)
    }

    /// Every kept device label: (device, sent_at, label).
    pub fn labels(&self) -> Result<Vec<(PublicKey, u64, String)>, StoreError> {
        Ok(self
            .list(LABELS, &[], MAX_LISTING)?
            .iter()
            .filter_map(|record| {
                let key = PublicKey(<[u8; 32]>::try_from(record.key()).ok()?);
                let (at, label) = record.value().split_at_checked(8)?;
                let at = u64::from_le_bytes(at.try_into().ok()?);
                Some((key, at, String::from_utf8(label.to_vec()).ok()?))
            })
            .collect())
    }

    /// Records that this node met `device` at `at` (Unix seconds).
    pub fn save_last_seen(&self, device: &PublicKey, at: u64) -> Result<(), StoreError> {
        self.put(LAST_SEEN, &device.0, &at.to_le_bytes())
    }

    /// When this node last met each device it recorded.
    pub fn last_seen(&self) -> Result<Vec<(PublicKey, u64)>, StoreError> {
        Ok(self
            .list(LAST_SEEN, &[], MAX_LISTING)?
            .iter()
            .filter_map(|record| {
                let key = PublicKey(<[u8; 32]>::try_from(record.key()).ok()?);
                Some((key, u64::from_le_bytes(record.value().try_into().ok()?)))
            })
            .collect())
    }

    /// The rooms hidden from the room list.
    pub fn hidden(&self) -> Result<Vec<RoomId>, StoreError> {
        Ok(self
            .list(HIDDEN, &[], MAX_LISTING)?
            .iter()
            .filter_map(|record| <[u8; 32]>::try_from(record.key()).ok().map(RoomId))
            .collect())
    }

    /// The messages not yet read here, by room.
    pub fn unread(&self) -> Result<Vec<RoomUnread>, StoreError> {
        Ok(self
            .list(UNREAD, &[], MAX_LISTING)?
            .iter()
            .filter_map(|record| {
                let room = RoomId(<[u8; 32]>::try_from(record.key()).ok()?);
                let ids = record
                    .value()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::IndexKey;

    fn refiled(tree: &str, key: &[u8], payload: &[u8]) -> Refiled {
        let index = IndexKey::in_memory();
        refile(tree, key, payload, |parts| Ok(index.tag(parts))).expect("refile")
    }

    /// Pins where records are filed: a change would leave every stored
    /// record unfindable (a new layout needs a schema version and a migration).
    #[test]
    fn record_layout_golden_bytes() {
        let mut message = vec![1; 32];
        message.extend(7u64.to_be_bytes());
        message.extend(2u32.to_be_bytes());
        message.extend([3; 32]);
        let Refiled::Keyed { key, value } = refiled(MESSAGES, &message, b"envelope") else {
            panic!("a message is filed under tags");
        };
        assert_eq!(
            hex::encode(&key),
            "e8aebbc52e1dc4b02029ca865d5d3f2b1b524e496a20a5ac8c91b2c0949a9271\
             862ad22d75f6dc6b151d52f25af3a18ba16efe6ffa4114835d1a15d801665ef8"
        );
        assert_eq!(value[0], 76);
        assert_eq!(&value[1..77], &message[..]);
        assert_eq!(&value[77..], b"envelope");

        let Refiled::Keyed { key, .. } = refiled(DEVICES, &[4; 32], b"chain") else {
            panic!("a device is filed under a tag");
        };
        assert_eq!(
            hex::encode(&key),
            "74d05435c4a77ebac8fd1d36378def5dd6aa6626a057ce61f360d099b82b526a"
        );

        // Receipts of one message share its group, as messages of one room do.
        let mut receipt = vec![3; 32];
        receipt.extend([4; 32]);
        let Refiled::Keyed { key, .. } = refiled(RECEIPTS, &receipt, &[3]) else {
            panic!("a receipt is filed under tags");
        };
        let index = IndexKey::in_memory();
        assert_eq!(key[..32], index.tag(&[b"receipts", b"group", &[3; 32]]));
        assert_eq!(key[32..], index.tag(&[b"receipts", b"id", &receipt]));
    }

    #[test]
    fn keys_of_the_wrong_shape_and_other_trees_are_told_apart() {
        let short = [1; 75];
        assert!(matches!(refiled(MESSAGES, &short, b""), Refiled::Malformed));
        assert!(matches!(refiled(CONTROL, &[0; 8], b""), Refiled::Malformed));
        assert!(matches!(
            refiled("agency_policy", b"policy", b""),
            Refiled::AsIs
        ));
        assert!(
            Record::parse(vec![5, 1, 2]).is_none(),
            "key longer than the value"
        );
        assert!(Record::parse(Vec::new()).is_none());
        let record = Record::parse(vec![2, 9, 9, 7]).expect("record");
        assert_eq!((record.key(), record.value()), (&[9, 9][..], &[7][..]));
    }
}
