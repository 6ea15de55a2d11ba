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
use crate::trust::CertificateChain;
use crate::wire::{self, Envelope, ReceiptState};

const ROOMS: &str = "rooms";
const KEYS: &str = "room_keys";
const DEVICES: &str = "devices";
const MESSAGES: &str = "messages";
const SEEN: &str = "seen";
const OUTBOX: &str = "outbox";
const MINE: &str = "mine";
const RECEIPTS: &str = "receipts";
const UNREAD: &str = "unread";

/// One room's unread message ids.
pub type RoomUnread = (RoomId, Vec<[u8; 32]>);

/// Most records read back in one listing.
pub const MAX_LISTING: usize = 100_000;

/// The messaging records of one node.
#[derive(Clone)]
pub struct MessageLog {
    store: Arc<dyn Store>,
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
            let (Ok(room), Ok(number), Ok(key_id), Ok(key)) = (
                <[u8; 32]>::try_from(&id[..id.len().min(32)]),
                id.get(32..40)
                    .map_or(Err(()), |b| <[u8; 8]>::try_from(b).map_err(|_| ())),
                id.get(40..56)
                    .map_or(Err(()), |b| <[u8; 16]>::try_from(b).map_err(|_| ())),
                <[u8; 32]>::try_from(bytes.as_slice()),
            ) else {
                continue;
            };
            out.push((
                RoomId(room),
                EpochRef {
                    number: u64::from_be_bytes(number),
                    key_id,
                },
                RoomKey::from_bytes(key),
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
        let id = envelope.id();
        let header = &envelope.body.header;
        let mut key = header.room.0.to_vec();
        key.extend(header.timestamp.wall_ms.to_be_bytes());
        key.extend(header.timestamp.counter.to_be_bytes());
        key.extend(id);
        self.store.insert(MESSAGES, &key, &wire::encode(envelope))?;
        Ok(id)
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
