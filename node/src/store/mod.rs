//! Everything that touches disk: the node's home directory and its database.
//!
//! - [`Home`]: the directory layout, the storage key sealed under the
//!   device PIN (or, for services, a key file: [`Unlock`]), identity and
//!   agency files sealed under it, and the wipe sequence.
//! - [`Store`]: the record store trait, with a sled backend ([`SledStore`],
//!   records encrypted at rest) and an in-memory one ([`MemoryStore`]); one
//!   conformance suite runs against both.
//! - [`GroupCommit`]: answers delivered only once what they report is on
//!   disk, concurrent answers sharing one flush.
//! - [`MessageLog`]: the messaging and revocation records on a store.
//! - [`ChunkStore`]: attachments' sealed chunks and what is known of them.
//!
//! # What the database files show (schema v2)
//!
//! Values are sealed (XChaCha20-Poly1305 under the storage key, bound to
//! tree and key). Database *keys* cannot be sealed that way, since sled
//! must find and order them, so no key holds anything that identifies
//! someone or dates something: [`MessageLog`] files a record under keyed
//! hashes ([`Store::tag`]: BLAKE3 keyed mode, with an [`IndexKey`] derived
//! from the storage key) of its group (the room of a message, the message
//! of a receipt) and of its identity (a message id, a device key, a room
//! id), and keeps the readable key (room id, timestamp, counter, id) inside
//! the sealed value. Order within a group is restored after reading, from
//! those sealed keys. A copied or wiped home shows tree names, how many
//! records each tree holds, how many share a group (messages per room,
//! receipts per message), their sizes, and the files' own dates; it shows
//! no room id, device key, user id, message id or timestamp of ours.
//! Homes written as schema v1 (those keys in the clear) are rewritten into
//! a new database at first open, see `migration`.
//!
//! [`IndexKey`]: crate::crypto::IndexKey

mod chunks;
mod error;
mod group_commit;
mod home;
mod memory;
mod message_log;
mod migration;
mod revocation_log;
mod sled_store;
mod unlock;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod forensic_tests;

pub use chunks::{ChunkError, ChunkRecord, ChunkStore, MAX_STORED_CHUNKS};
pub use error::StoreError;
pub use group_commit::{Acknowledgement, GroupCommit};
pub use home::{Home, HomeFile};
pub use memory::MemoryStore;
pub use message_log::{
    Holding, MAX_LISTING, MessageLog, control_item, envelope_sync_item, frame_author,
};
pub use revocation_log::{Arrival, MAX_SEEN_BY, RevocationRecord, TakenRevocation};
pub use sled_store::SledStore;
pub use unlock::{MAX_PIN_ATTEMPTS, MIN_PIN_LEN, Unlock, UnlockFor, set_unlock, set_unlock_source};

/// Version of the database layout this build writes and understands: 2,
/// keys that reveal nothing (version 1, with room ids and timestamps in
/// its keys, is migrated at first open).
pub const SCHEMA_VERSION: u32 = 2;

/// Largest value a record may hold, in bytes.
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// One key and its value, as returned by [`Store::scan_prefix`].
pub type Entry = (Vec<u8>, Vec<u8>);

/// A key-value record store with named trees, ordered keys and a schema version.
///
/// Keys are stored as given, so callers never put anything identifying in
/// them in the clear: they use [`tag`](Store::tag) ([`MessageLog`] does);
/// values are confidential and encrypted at rest by backends that persist.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Reads one value.
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes one value, replacing any previous one.
    fn insert(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Removes one value; returns whether it existed.
    fn remove(&self, tree: &str, key: &[u8]) -> Result<bool, StoreError>;
    /// Up to `limit` entries whose key starts with `prefix`, in key order.
    fn scan_prefix(
        &self,
        tree: &str,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError>;
    /// A keyed hash of `parts` (each length-prefixed), under a key only this
    /// store holds: for sled, derived from the storage key, so it goes with
    /// it at a wipe; for memory, a fixed one. The same parts always give the
    /// same tag in one store, so a tag can stand in for a room id or a
    /// device key in a record key.
    fn tag(&self, parts: &[&[u8]]) -> Result<[u8; 32], StoreError>;
    /// The schema version recorded in the store.
    fn schema_version(&self) -> Result<u32, StoreError>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Keeps the agency policy's wrong-PIN limit where the next unlock
    /// reads it, before the store is open (a backend without a PIN has
    /// nothing to do).
    fn keep_pin_limit(&self, _attempts: u32) -> Result<(), StoreError> {
        Ok(())
    }
    /// Destroys everything: afterwards every operation fails with
    /// [`StoreError::Wiped`]. A backend on disk erases its whole home and,
    /// given a `notice` (why: a revocation), leaves only that sentence behind.
    fn wipe(&self, notice: Option<&str>) -> Result<(), StoreError>;
}

/// Checks a tree name: short, printable, and not one the store reserves.
fn check_tree(tree: &str) -> Result<(), StoreError> {
    if tree.is_empty()
        || tree.len() > 64
        || tree.starts_with("__")
        || tree.chars().any(char::is_control)
    {
        return Err(StoreError::BadTreeName(tree.to_string()));
    }
    Ok(())
}

/// Checks a value's size.
fn check_value(value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_RECORD_LEN {
        return Err(StoreError::ValueTooLarge {
            len: value.len(),
            max: MAX_RECORD_LEN,
        });
    }
    Ok(())
}
