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

mod error;
mod group_commit;
mod home;
mod memory;
mod message_log;
mod revocation_log;
mod sled_store;
mod unlock;

#[cfg(test)]
mod conformance;

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

/// Version of the database layout this build writes and understands.
pub const SCHEMA_VERSION: u32 = 1;

/// Largest value a record may hold, in bytes.
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// One key and its value, as returned by [`Store::scan_prefix`].
pub type Entry = (Vec<u8>, Vec<u8>);

/// A key-value record store with named trees, ordered keys and a schema version.
///
/// Keys are stored as given (they are ids and timestamps, never content);
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
