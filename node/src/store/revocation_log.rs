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
/// When and in which order this node took each revocation: key =
/// revocation id, value = arrival number (u64 BE) then receipt time (u64
/// BE, Unix seconds). A restart replays the revocations in that order, each
/// checked at its receipt time, so it derives the same set (audit M10).
const ARRIVALS: &str = "revocation_arrivals";

/// When this node last saw a device a revocation covers (it tried to
/// connect and was shown the revocation, it was connected when the
/// revocation arrived, or its wipe receipt came): key = revocation id,
/// value = Unix seconds (u64 BE).
const SIGHTINGS: &str = "revocation_sightings";

/// The trees of this module, all keyed by one id or room id (filed as
/// [`layout`](super::message_log) says: under its tag).
pub(super) const TREES: [&str; 4] = [RECORDS, ROTATION_DUE, ARRIVALS, SIGHTINGS];

/// A saved revocation as this node took it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakenRevocation {
    /// Its encoding, as it travelled.
    pub bytes: Vec<u8>,
    /// When this node took it, Unix seconds.
    pub received_at: u64,
    /// Whether that time was recorded (false: saved by an older version).
    pub recorded: bool,
}

/// A revocation as this node took it: in which order, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The revocation's id.
    pub id: [u8; 32],
    /// Its place in the order revocations were taken here.
    pub number: u64,
    /// When it was taken, Unix seconds (this node's clock).
    pub received_at: u64,
}

/// Most peers remembered as having seen one revocation.
pub const MAX_SEEN_BY: usize = 1024;

/// What this node knows about one revocation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRecord {
    /// Issued here and not yet handed to any peer.
    pub unpublished: bool,
    /// Peers known to hold it (they sent it, or showed it in reconciliation).
    #[serde(deserialize_with = "strictly_ordered_set")]
    pub seen_by: BTreeSet<PublicKey>,
    /// Wipe receipts: device → when it wiped (Unix seconds).
    #[serde(deserialize_with = "strictly_ordered_map")]
    pub wiped: BTreeMap<PublicKey, u64>,
}

/// A set read back only in the order it is written (ascending, no repeats),
/// so that one record has one encoding (found by fuzzing: elements in any
/// order or repeated decoded to the same set).
fn strictly_ordered_set<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeSet<PublicKey>, D::Error> {
    let items = Vec::<PublicKey>::deserialize(deserializer)?;
    if items.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(serde::de::Error::custom(
            "set elements out of order or repeated",
        ));
    }
    Ok(items.into_iter().collect())
}

/// Like [`strictly_ordered_set`], for the keys of a map.
fn strictly_ordered_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<PublicKey, u64>, D::Error> {
    let entries = Vec::<(PublicKey, u64)>::deserialize(deserializer)?;
    if entries.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
        return Err(serde::de::Error::custom(
            "map keys out of order or repeated",
        ));
    }
    Ok(entries.into_iter().collect())
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
        self.put(REVOCATIONS, &item_key(&item), bytes)?;
        Ok(item)
    }

    /// Records when and in which order revocation `arrival.id` was taken.
    pub fn save_revocation_arrival(&self, arrival: &Arrival) -> Result<(), StoreError> {
        let mut value = arrival.number.to_be_bytes().to_vec();
        value.extend(arrival.received_at.to_be_bytes());
        self.put(ARRIVALS, &arrival.id, &value)
    }

    /// Notes that a device revocation `id` covers was seen at `at` (Unix
    /// seconds); an earlier time than the one kept changes nothing.
    pub fn note_revoked_device_seen(&self, id: &[u8; 32], at: u64) -> Result<(), StoreError> {
        if self
            .revoked_device_last_seen(id)?
            .is_some_and(|kept| kept >= at)
        {
            return Ok(());
        }
        self.put(SIGHTINGS, id, &at.to_be_bytes())
    }

    /// When a device revocation `id` covers was last seen here, if ever.
    pub fn revoked_device_last_seen(&self, id: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        Ok(self
            .fetch(SIGHTINGS, id)?
            .and_then(|record| <[u8; 8]>::try_from(record.value()).ok())
            .map(u64::from_be_bytes))
    }

    /// Forgets when revocation `id` was taken (it left the set).
    pub fn forget_revocation_arrival(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        self.delete(ARRIVALS, id).map(|_| ())
    }

    /// Every revocation taken here, in the order it was taken.
    pub fn revocation_arrivals(&self) -> Result<Vec<Arrival>, StoreError> {
        let mut arrivals: Vec<Arrival> = self
            .list(ARRIVALS, &[], MAX_LISTING)?
            .iter()
            .filter_map(|record| {
                let id: [u8; 32] = record.key().try_into().ok()?;
                let value: [u8; 16] = record.value().try_into().ok()?;
                let (number, at) = value.split_at(8);
                Some(Arrival {
                    id,
                    number: u64::from_be_bytes(number.try_into().ok()?),
                    received_at: u64::from_be_bytes(at.try_into().ok()?),
                })
            })
            .collect();
        arrivals.sort_by_key(|arrival| (arrival.number, arrival.id));
        Ok(arrivals)
    }

    /// Every saved revocation (not wipe receipts) in the order this node
    /// took them, each with the time it was taken and whether that was
    /// recorded: revocations saved before arrivals were recorded come
    /// last, oldest first, dated `now`.
    pub fn revocations_as_taken(&self, now: u64) -> Result<Vec<TakenRevocation>, StoreError> {
        let mut stored: std::collections::HashMap<[u8; 32], Vec<u8>> = Default::default();
        let mut unrecorded = Vec::new();
        for bytes in self.signed_revocations()? {
            if wire::kind_of(&bytes) != Some(Kind::Revocation) {
                continue;
            }
            let id = *blake3::hash(&bytes).as_bytes();
            unrecorded.push(id);
            stored.insert(id, bytes);
        }
        let mut taken = Vec::new();
        for arrival in self.revocation_arrivals()? {
            if let Some(bytes) = stored.remove(&arrival.id) {
                taken.push(TakenRevocation {
                    bytes,
                    received_at: arrival.received_at,
                    recorded: true,
                });
            }
        }
        for id in unrecorded {
            if let Some(bytes) = stored.remove(&id) {
                taken.push(TakenRevocation {
                    bytes,
                    received_at: now,
                    recorded: false,
                });
            }
        }
        Ok(taken)
    }

    /// The number the next revocation taken here gets.
    pub fn next_arrival_number(&self) -> Result<u64, StoreError> {
        Ok(self
            .revocation_arrivals()?
            .last()
            .map_or(0, |last| last.number + 1))
    }

    /// Every saved revocation and wipe receipt, oldest first.
    pub fn signed_revocations(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .list(REVOCATIONS, &[], MAX_LISTING)?
            .iter()
            .map(|record| record.value().to_vec())
            .collect())
    }

    /// What is known about revocation `id` (empty if nothing yet).
    pub fn revocation_record(&self, id: &[u8; 32]) -> Result<RevocationRecord, StoreError> {
        match self.fetch(RECORDS, id)? {
            None => Ok(RevocationRecord::default()),
            Some(record) => wire::decode(record.value()).map_err(|source| StoreError::Corrupt {
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
        self.put(RECORDS, id, &wire::encode(record))
    }

    /// Records (or with `None` clears) that `room` must move past `epoch`.
    pub fn save_rotation_due(&self, room: RoomId, epoch: Option<u64>) -> Result<(), StoreError> {
        match epoch {
            Some(number) => self.put(ROTATION_DUE, &room.0, &number.to_be_bytes()),
            None => self.delete(ROTATION_DUE, &room.0).map(|_| ()),
        }
    }

    /// Rooms that must move to a new key, with the epoch to move past.
    pub fn rotations_due(&self) -> Result<Vec<(RoomId, u64)>, StoreError> {
        Ok(self
            .list(ROTATION_DUE, &[], MAX_LISTING)?
            .iter()
            .filter_map(|record| {
                let room = RoomId(record.key().try_into().ok()?);
                let number = u64::from_be_bytes(record.value().try_into().ok()?);
                Some((room, number))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_come_back_in_the_order_they_were_taken() {
        let log = MessageLog::new(std::sync::Arc::new(crate::store::MemoryStore::new()));
        // Taken in this order; the ids sort the other way.
        for (number, id) in [(0, [9; 32]), (1, [5; 32]), (2, [1; 32])] {
            let arrival = Arrival {
                id,
                number,
                received_at: 1_000 + number,
            };
            log.save_revocation_arrival(&arrival).expect("saved");
        }
        log.forget_revocation_arrival(&[5; 32]).expect("forgotten");
        let back = log.revocation_arrivals().expect("read");
        assert_eq!(
            back.iter()
                .map(|a| (a.id[0], a.number, a.received_at))
                .collect::<Vec<_>>(),
            vec![(9, 0, 1_000), (1, 2, 1_002)]
        );
    }

    fn record_of_two() -> (RevocationRecord, Vec<u8>) {
        let record = RevocationRecord {
            unpublished: false,
            seen_by: [PublicKey([1; 32]), PublicKey([2; 32])].into(),
            wiped: [(PublicKey([3; 32]), 7), (PublicKey([4; 32]), 9)].into(),
        };
        let bytes = wire::encode(&record);
        (record, bytes)
    }

    /// Swaps the 32 bytes of `a` and `b` where they stand in `bytes`.
    fn swap(bytes: &mut [u8], a: [u8; 32], b: [u8; 32]) {
        let at = |key: [u8; 32]| {
            bytes
                .windows(32)
                .position(|w| w == key)
                .expect("key in the encoding")
        };
        let (i, j) = (at(a), at(b));
        let (first, second) = (bytes[i..i + 32].to_vec(), bytes[j..j + 32].to_vec());
        bytes[i..i + 32].copy_from_slice(&second);
        bytes[j..j + 32].copy_from_slice(&first);
    }

    #[test]
    fn a_record_has_one_encoding() {
        let (record, bytes) = record_of_two();
        assert_eq!(wire::decode::<RevocationRecord>(&bytes), Ok(record));

        let mut unordered = bytes.clone();
        swap(&mut unordered, [1; 32], [2; 32]);
        assert!(wire::decode::<RevocationRecord>(&unordered).is_err());

        let mut repeated = bytes.clone();
        let at = repeated
            .windows(32)
            .position(|w| w == [2; 32])
            .expect("key");
        repeated[at..at + 32].copy_from_slice(&[1; 32]);
        assert!(wire::decode::<RevocationRecord>(&repeated).is_err());

        // Swapping whole map entries (key and time) reorders the keys.
        let mut wiped_unordered = bytes;
        let key_at = |b: &[u8], k: [u8; 32]| b.windows(32).position(|w| w == k).expect("key");
        let (i, j) = (
            key_at(&wiped_unordered, [3; 32]),
            key_at(&wiped_unordered, [4; 32]),
        );
        let entry = j - i;
        let (first, second) = (
            wiped_unordered[i..j].to_vec(),
            wiped_unordered[j..j + entry].to_vec(),
        );
        wiped_unordered[i..i + entry].copy_from_slice(&second);
        wiped_unordered[j..j + entry].copy_from_slice(&first);
        assert!(wire::decode::<RevocationRecord>(&wiped_unordered).is_err());
    }
}
