//! Revocation records on a [`Store`]: the signed revocations and wipe
//! receipts as they travelled (held for sync, first of all sets), what this
//! node knows of each revocation (published yet, seen by which peers, wipe
//! receipts), and rooms that must move to a new key before their next message.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::message_log::{REVOCATIONS, item_key};
use super::{MAX_LISTING, MessageLog, StoreError};
use crate::identity::PublicKey;
use crate::rooms::RoomId;
use crate::sync::SyncItem;
use crate::wire::{self, Format, Kind};

/// What this node knows about each revocation: key = revocation id.
const RECORDS: &str = "revocation_records";
/// Rooms to move to a new key: key = room id, value = epoch number (u64 BE).
const ROTATION_DUE: &str = "rotation_due";

/// Most peers remembered as having seen one revocation.
pub const MAX_SEEN_BY: usize = 1024;

/// What this node knows about one revocation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRecord {
    /// Issued here and not yet handed to any peer.
    pub unpublished: bool,
    /// Peers known to hold it (they sent it, or showed it in reconciliation).
    pub seen_by: BTreeSet<PublicKey>,
    /// Wipe receipts: device → when it wiped (Unix seconds).
    pub wiped: BTreeMap<PublicKey, u64>,
}

impl Format for RevocationRecord {
    const KIND: Kind = Kind::RevocationRecord;
    const MAX_LEN: usize = 96 * 1024;
}

impl RevocationRecord {
    /// Notes that `peer` holds the revocation; returns whether that is news.
    pub fn note_seen(&mut self, peer: PublicKey) -> bool {
        if self.seen_by.len() >= MAX_SEEN_BY || self.seen_by.contains(&peer) {
            return false;
        }
        self.seen_by.insert(peer);
        true
    }
}

impl MessageLog {
    /// Saves a signed revocation or wipe receipt (its bytes as they
    /// travelled), dated `at` (Unix seconds); returns its sync item.
    pub fn save_signed_revocation(&self, bytes: &[u8], at: u64) -> Result<SyncItem, StoreError> {
        let item = (at.saturating_mul(1000), *blake3::hash(bytes).as_bytes());
        self.store.insert(REVOCATIONS, &item_key(&item), bytes)?;
        Ok(item)
    }

    /// Every saved revocation and wipe receipt, oldest first.
    pub fn signed_revocations(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .store
            .scan_prefix(REVOCATIONS, &[], MAX_LISTING)?
            .into_iter()
            .map(|(_, bytes)| bytes)
            .collect())
    }

    /// What is known about revocation `id` (empty if nothing yet).
    pub fn revocation_record(&self, id: &[u8; 32]) -> Result<RevocationRecord, StoreError> {
        match self.store.get(RECORDS, id)? {
            None => Ok(RevocationRecord::default()),
            Some(bytes) => wire::decode(&bytes).map_err(|source| StoreError::Corrupt {
                path: "revocation record".into(),
                source,
            }),
        }
    }

    /// Saves what is known about revocation `id`.
    pub fn save_revocation_record(
        &self,
        id: &[u8; 32],
        record: &RevocationRecord,
    ) -> Result<(), StoreError> {
        self.store.insert(RECORDS, id, &wire::encode(record))
    }

    /// Records (or with `None` clears) that `room` must move past `epoch`.
    pub fn save_rotation_due(&self, room: RoomId, epoch: Option<u64>) -> Result<(), StoreError> {
        match epoch {
            Some(number) => self
                .store
                .insert(ROTATION_DUE, &room.0, &number.to_be_bytes()),
            None => self.store.remove(ROTATION_DUE, &room.0).map(|_| ()),
        }
    }

    /// Rooms that must move to a new key, with the epoch to move past.
    pub fn rotations_due(&self) -> Result<Vec<(RoomId, u64)>, StoreError> {
        Ok(self
            .store
            .scan_prefix(ROTATION_DUE, &[], MAX_LISTING)?
            .into_iter()
            .filter_map(|(key, value)| {
                let room = RoomId(key.try_into().ok()?);
                let number = u64::from_be_bytes(value.try_into().ok()?);
                Some((room, number))
            })
            .collect())
    }
}
