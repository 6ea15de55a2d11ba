//! Attachments' chunks on a [`Store`]: each sealed chunk (ciphertext under
//! its file's key) kept as a record, sealed once more under the storage key
//! like every value, so a wipe (crypto-shredding) destroys them with the
//! rest; filed under a keyed tag of its hash, so the database shows no hash.
//!
//! A small record per chunk ([`ChunkRecord`]: hash, room, when stored,
//! length) sits in a tree of its own and is read whole at start, so the
//! node knows what it holds, for which room and since when, without
//! reading the chunks themselves: it serves a chunk only for the room it
//! was stored for, and evicts oldest first (relays, within
//! `--max-files-mb` and `--file-retention-days`).

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::crypto::{CHUNK_LEN, CHUNK_OVERHEAD, chunk_hash};
use crate::rooms::RoomId;
use crate::wire::{self, Format, Kind};

const CHUNKS: &str = "chunks";
const CHUNK_RECORDS: &str = "chunk-records";
/// Most chunks one home keeps (16 GiB of 256 KiB chunks); more are refused.
pub const MAX_STORED_CHUNKS: usize = 65_536;

/// What the node knows about one chunk it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// BLAKE3 of the sealed chunk.
    pub hash: [u8; 32],
    /// The room whose file it belongs to.
    pub room: RoomId,
    /// When it was stored (seconds).
    pub stored_at: u64,
    /// Its length in bytes.
    pub len: u32,
}

impl Format for ChunkRecord {
    const KIND: Kind = Kind::ChunkRecord;
    const MAX_LEN: usize = 128;
}

/// Why a chunk was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// Its bytes do not hash to the hash it was fetched for.
    #[error("the chunk does not match its hash")]
    Mismatch,
    /// Larger than a chunk can be.
    #[error("the chunk is {0} bytes, larger than a chunk can be")]
    TooLarge(usize),
    /// This home holds as many chunks as it may.
    #[error("this device holds the most chunks it may ({MAX_STORED_CHUNKS})")]
    Full,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The chunks a node holds.
#[derive(Debug)]
pub struct ChunkStore {
    store: Arc<dyn Store>,
    held: HashMap<[u8; 32], ChunkRecord>,
    bytes: u64,
}

impl ChunkStore {
    /// Opens the chunk records of `store`.
    pub fn open(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let mut held = HashMap::new();
        let mut bytes = 0u64;
        for (_, value) in store.scan_prefix(CHUNK_RECORDS, b"", MAX_STORED_CHUNKS)? {
            // A record that does not decode is skipped (its chunk is then
            // fetched again if needed).
            if let Ok(record) = wire::decode::<ChunkRecord>(&value) {
                bytes += u64::from(record.len);
                held.insert(record.hash, record);
            }
        }
        Ok(ChunkStore { store, held, bytes })
    }

    fn key(&self, hash: &[u8; 32]) -> Result<[u8; 32], StoreError> {
        self.store.tag(&[b"chunk", hash])
    }

    /// Whether the chunk is held (for any room).
    pub fn has(&self, hash: &[u8; 32]) -> bool {
        self.held.contains_key(hash)
    }

    /// How many of `hashes` are held.
    pub fn count_held<'a>(&self, hashes: impl IntoIterator<Item = &'a [u8; 32]>) -> usize {
        hashes.into_iter().filter(|h| self.has(h)).count()
    }

    /// The hashes of every chunk held.
    pub fn hashes(&self) -> impl Iterator<Item = &[u8; 32]> + '_ {
        self.held.keys()
    }

    /// Bytes of all chunks held.
    pub fn bytes_held(&self) -> u64 {
        self.bytes
    }

    /// Chunks held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Keeps a chunk of `room`'s file, after checking it against `hash`.
    /// Returns whether it is new.
    pub fn put(
        &mut self,
        room: RoomId,
        hash: [u8; 32],
        bytes: &[u8],
        now: u64,
    ) -> Result<bool, ChunkError> {
        if bytes.len() > CHUNK_LEN + CHUNK_OVERHEAD {
            return Err(ChunkError::TooLarge(bytes.len()));
        }
        if chunk_hash(bytes) != hash {
            return Err(ChunkError::Mismatch);
        }
        if self.held.contains_key(&hash) {
            return Ok(false);
        }
        if self.held.len() >= MAX_STORED_CHUNKS {
            return Err(ChunkError::Full);
        }
        let key = self.key(&hash)?;
        self.store.insert(CHUNKS, &key, bytes)?;
        let record = ChunkRecord {
            hash,
            room,
            stored_at: now,
            len: bytes.len() as u32,
        };
        self.store
            .insert(CHUNK_RECORDS, &key, &wire::encode(&record))?;
        self.bytes += u64::from(record.len);
        self.held.insert(hash, record);
        Ok(true)
    }

    /// A chunk held for `room`, checked against its hash again on the way
    /// out (a damaged record is dropped, not served).
    pub fn get(&mut self, room: RoomId, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.held.get(hash) {
            Some(record) if record.room == room => {}
            _ => return Ok(None),
        }
        let key = self.key(hash)?;
        match self.store.get(CHUNKS, &key)? {
            Some(bytes) if chunk_hash(&bytes) == *hash => Ok(Some(bytes)),
            _ => {
                self.remove(hash)?;
                Ok(None)
            }
        }
    }

    /// Forgets a chunk.
    pub fn remove(&mut self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let Some(record) = self.held.remove(hash) else {
            return Ok(false);
        };
        self.bytes -= u64::from(record.len);
        let key = self.key(hash)?;
        self.store.remove(CHUNKS, &key)?;
        self.store.remove(CHUNK_RECORDS, &key)?;
        Ok(true)
    }

    /// Evicts chunks stored before `now - retention` (if a retention is
    /// given), then oldest first until at most `max_bytes` are held.
    /// Returns how many were evicted.
    pub fn evict(
        &mut self,
        max_bytes: u64,
        retention: Option<u64>,
        now: u64,
    ) -> Result<usize, StoreError> {
        let mut by_age: Vec<(u64, [u8; 32], u32)> = self
            .held
            .values()
            .map(|r| (r.stored_at, r.hash, r.len))
            .collect();
        by_age.sort_unstable();
        let cutoff = retention.map(|r| now.saturating_sub(r));
        let mut evicted = 0;
        for (stored_at, hash, _) in by_age {
            let expired = cutoff.is_some_and(|c| stored_at < c);
            if !expired && self.bytes <= max_bytes {
                break;
            }
            self.remove(&hash)?;
            evicted += 1;
        }
        Ok(evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn chunk(n: u8, len: usize) -> (Vec<u8>, [u8; 32]) {
        let bytes = vec![n; len];
        let hash = chunk_hash(&bytes);
        (bytes, hash)
    }

    #[test]
    fn chunks_are_checked_kept_and_served_for_their_room_only() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut chunks = ChunkStore::open(store.clone()).expect("open");
        let room = RoomId([1; 32]);
        let (bytes, hash) = chunk(7, 1000);
        assert!(matches!(
            chunks.put(room, [0; 32], &bytes, 10),
            Err(ChunkError::Mismatch)
        ));
        assert!(chunks.put(room, hash, &bytes, 10).expect("stored"));
        assert!(
            !chunks.put(room, hash, &bytes, 11).expect("again"),
            "held once"
        );
        assert_eq!(chunks.get(room, &hash).expect("get"), Some(bytes.clone()));
        assert_eq!(chunks.get(RoomId([2; 32]), &hash).expect("get"), None);
        let reopened = ChunkStore::open(store).expect("reopen");
        assert!(reopened.has(&hash));
        assert_eq!(reopened.bytes_held(), 1000);
        let big = vec![0; CHUNK_LEN + CHUNK_OVERHEAD + 1];
        assert!(matches!(
            chunks.put(room, chunk_hash(&big), &big, 1),
            Err(ChunkError::TooLarge(_))
        ));
    }

    #[test]
    fn eviction_takes_the_expired_then_the_oldest() {
        let mut chunks = ChunkStore::open(Arc::new(MemoryStore::new())).expect("open");
        let room = RoomId([1; 32]);
        let stored: Vec<[u8; 32]> = (0..5u8)
            .map(|n| {
                let (bytes, hash) = chunk(n, 100);
                chunks
                    .put(room, hash, &bytes, 100 + u64::from(n))
                    .expect("put");
                hash
            })
            .collect();
        assert_eq!(chunks.evict(300, None, 200).expect("evict"), 2);
        assert!(!chunks.has(&stored[0]) && !chunks.has(&stored[1]));
        assert!(chunks.has(&stored[2]));
        // Past retention: stored before 203 - 0 … only 104 remains.
        assert_eq!(chunks.evict(10_000, Some(100), 204).expect("evict"), 2);
        assert_eq!(chunks.len(), 1);
        assert!(chunks.has(&stored[4]));
        assert_eq!(chunks.bytes_held(), 100);
    }

    /// Every file under `dir` (recursively) that holds `needle`.
    fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if std::fs::read(&path)
                    .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
                {
                    found.push(path.display().to_string());
                }
            }
        }
        found
    }

    #[test]
    fn a_home_shows_no_chunk_and_a_wiped_one_nothing_of_the_file() {
        use crate::store::{Home, SledStore};
        use crate::wire::FileManifest;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("home");
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(Home::open_or_create(&root).expect("home")).expect("open"));
        let pattern = b"BARO-SECRET-REPORT-PATTERN-0123456789";
        let data: Vec<u8> = pattern
            .iter()
            .copied()
            .cycle()
            .take(CHUNK_LEN + 4096)
            .collect();
        let mut chunks = ChunkStore::open(store.clone()).expect("chunks");
        let room = RoomId([4; 32]);
        let mut sealed = Vec::new();
        FileManifest::seal(
            "report.txt",
            "text/plain",
            data.len() as u64,
            wire::MAX_FILE_LEN,
            &mut &data[..],
            &mut crate::identity::SeededEntropy::new(8),
            |_, hash, chunk| {
                chunks
                    .put(room, hash, &chunk, 1)
                    .map_err(|e| e.to_string())?;
                sealed.push((hash, chunk));
                Ok(())
            },
        )
        .expect("sealed");
        store.flush().expect("flush");
        let needles: Vec<(&str, Vec<u8>)> = vec![
            ("the plaintext", pattern.to_vec()),
            ("a sealed chunk", sealed[0].1[..64].to_vec()),
            ("a chunk hash", sealed[1].0.to_vec()),
            ("the room", room.0.to_vec()),
        ];
        for (what, needle) in &needles {
            assert_eq!(files_holding(&root, needle), Vec::<String>::new(), "{what}");
        }
        store.wipe(None).expect("wipe");
        for (what, needle) in &needles {
            assert_eq!(files_holding(&root, needle), Vec::<String>::new(), "{what}");
        }
        assert!(ChunkStore::open(store).is_err(), "nothing left to read");
    }
}
