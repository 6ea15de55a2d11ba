//! Messaging records on a [`Store`]: rooms, epoch keys, known devices,
//! envelopes in timestamp order, seen message ids and the outbox.
//!
//! Every value goes through the store, so on sled it is sealed at rest.

use std::sync::Arc;

use super::{Store, StoreError};
use crate::crypto::RoomKey;
use crate::identity::PublicKey;
use crate::rooms::{EpochRef, Room, RoomId};
use crate::trust::CertificateChain;
use crate::wire::{self, Envelope};

const ROOMS: &str = "rooms";
const KEYS: &str = "room_keys";
const DEVICES: &str = "devices";
const MESSAGES: &str = "messages";
const SEEN: &str = "seen";
const OUTBOX: &str = "outbox";

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

    /// Saves an envelope under its room in timestamp order, and marks it seen.
    pub fn save_envelope(&self, envelope: &Envelope) -> Result<[u8; 32], StoreError> {
        let id = envelope.id();
        let header = &envelope.body.header;
        let mut key = header.room.0.to_vec();
        key.extend(header.timestamp.wall_ms.to_be_bytes());
        key.extend(header.timestamp.counter.to_be_bytes());
        key.extend(id);
        self.store.insert(MESSAGES, &key, &wire::encode(envelope))?;
        self.store.insert(SEEN, &id, &[])?;
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

    /// Ids of every stored message (to refuse replays after a restart).
    pub fn seen(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        Ok(self
            .store
            .scan_prefix(SEEN, &[], MAX_LISTING)?
            .into_iter()
            .filter_map(|(id, _)| <[u8; 32]>::try_from(id.as_slice()).ok())
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
}
