//! In-memory backend: for tests and simulations; nothing reaches disk.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{Entry, SCHEMA_VERSION, Store, StoreError, check_tree, check_value};
use crate::crypto::IndexKey;

type Trees = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A [`Store`] held in memory.
#[derive(Debug)]
pub struct MemoryStore {
    trees: Mutex<Option<Trees>>,
    /// Fixed: nothing here reaches disk, and simulations stay reproducible.
    index: IndexKey,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            trees: Mutex::new(Some(Trees::new())),
            index: IndexKey::in_memory(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Trees>> {
        // A panic while holding the lock cannot leave the map half-written
        // (every operation is one map call), so a poisoned lock is still usable.
        self.trees
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with<R>(&self, f: impl FnOnce(&mut Trees) -> R) -> Result<R, StoreError> {
        let mut guard = self.lock();
        let trees = guard.as_mut().ok_or(StoreError::Wiped)?;
        Ok(f(trees))
    }
}

impl Store for MemoryStore {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_tree(tree)?;
        self.with(|trees| trees.get(tree).and_then(|t| t.get(key).cloned()))
    }

    fn insert(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        check_tree(tree)?;
        check_value(value)?;
        self.with(|trees| {
            trees
                .entry(tree.to_string())
                .or_default()
                .insert(key.to_vec(), value.to_vec());
        })
    }

    fn remove(&self, tree: &str, key: &[u8]) -> Result<bool, StoreError> {
        check_tree(tree)?;
        self.with(|trees| trees.get_mut(tree).and_then(|t| t.remove(key)).is_some())
    }

    fn scan_prefix(
        &self,
        tree: &str,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        check_tree(tree)?;
        self.with(|trees| {
            trees
                .get(tree)
                .map(|t| {
                    t.range(prefix.to_vec()..)
                        .take_while(|(k, _)| k.starts_with(prefix))
                        .take(limit)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn tag(&self, parts: &[&[u8]]) -> Result<[u8; 32], StoreError> {
        self.with(|_| self.index.tag(parts))
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        self.with(|_| SCHEMA_VERSION)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.with(|_| ())
    }

    fn wipe(&self, _notice: Option<&str>) -> Result<(), StoreError> {
        *self.lock() = None;
        Ok(())
    }
}
