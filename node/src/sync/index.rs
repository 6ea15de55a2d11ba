//! What a node holds, per reconciled set: `(timestamp, id)` items and their
//! sizes, kept in memory so reconciliation never scans the database, and
//! the oldest-first eviction a relay applies to stay within its quota and
//! retention.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{SyncItem, SyncScope};

/// The items of every set this node holds.
#[derive(Debug, Default, Clone)]
pub struct SyncIndex {
    sets: BTreeMap<SyncScope, BTreeMap<SyncItem, u32>>,
    /// Every item once, oldest first, for eviction.
    by_age: BTreeSet<(u64, [u8; 32], SyncScope)>,
    /// Timestamp of each held id, per set.
    ids: HashMap<(SyncScope, [u8; 32]), u64>,
    bytes: u64,
}

impl SyncIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an item of `len` bytes; `false` if it was already there.
    pub fn insert(&mut self, scope: SyncScope, item: SyncItem, len: usize) -> bool {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let set = self.sets.entry(scope).or_default();
        if set.insert(item, len).is_some() {
            return false;
        }
        self.by_age.insert((item.0, item.1, scope));
        self.ids.insert((scope, item.1), item.0);
        self.bytes += u64::from(len);
        true
    }

    /// Forgets an item; `true` if it was there.
    pub fn remove(&mut self, scope: SyncScope, item: SyncItem) -> bool {
        let Some(set) = self.sets.get_mut(&scope) else {
            return false;
        };
        let Some(len) = set.remove(&item) else {
            return false;
        };
        if set.is_empty() {
            self.sets.remove(&scope);
        }
        self.by_age.remove(&(item.0, item.1, scope));
        self.ids.remove(&(scope, item.1));
        self.bytes -= u64::from(len);
        true
    }

    /// Whether `scope` holds an item with `id`, and its timestamp.
    pub fn timestamp_of(&self, scope: SyncScope, id: &[u8; 32]) -> Option<u64> {
        self.ids.get(&(scope, *id)).copied()
    }

    /// The items of `scope`, in order.
    pub fn items(&self, scope: SyncScope) -> impl Iterator<Item = SyncItem> + '_ {
        self.sets
            .get(&scope)
            .into_iter()
            .flat_map(|set| set.keys().copied())
    }

    /// How many items `scope` holds.
    pub fn len(&self, scope: SyncScope) -> usize {
        self.sets.get(&scope).map_or(0, BTreeMap::len)
    }

    /// How many items are held over all sets.
    pub fn total(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is held at all.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Every room scope with at least one item.
    pub fn scopes(&self) -> impl Iterator<Item = SyncScope> + '_ {
        self.sets.keys().copied()
    }

    /// Bytes held over all sets.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The items to drop, oldest first, so that nothing is older than
    /// `oldest_ms` and at most `max_bytes` remain; they are removed here and
    /// returned for the caller to delete from disk. Revocations are never
    /// evicted (they must outlive the certificates they revoke).
    pub fn evict(&mut self, oldest_ms: u64, max_bytes: u64) -> Vec<(SyncScope, SyncItem)> {
        let mut out = Vec::new();
        let candidates: Vec<(u64, [u8; 32], SyncScope)> = self
            .by_age
            .iter()
            .filter(|(_, _, scope)| *scope != SyncScope::Revocations)
            .copied()
            .collect();
        for (timestamp, id, scope) in candidates {
            if timestamp >= oldest_ms && self.bytes <= max_bytes {
                break;
            }
            self.remove(scope, (timestamp, id));
            out.push((scope, (timestamp, id)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::RoomId;

    fn id(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn counts_bytes_and_ignores_duplicates() {
        let mut index = SyncIndex::new();
        let room = SyncScope::Room(RoomId([1; 32]));
        assert!(index.insert(room, (5, id(1)), 100));
        assert!(!index.insert(room, (5, id(1)), 100));
        assert!(index.insert(SyncScope::Control, (6, id(2)), 50));
        assert_eq!(index.bytes(), 150);
        assert_eq!(index.len(room), 1);
        assert_eq!(index.timestamp_of(room, &id(1)), Some(5));
        assert!(index.remove(room, (5, id(1))));
        assert_eq!(index.bytes(), 50);
        assert_eq!(index.scopes().collect::<Vec<_>>(), vec![SyncScope::Control]);
    }

    #[test]
    fn evicts_oldest_first_until_within_quota_and_retention() {
        let mut index = SyncIndex::new();
        let room = SyncScope::Room(RoomId([1; 32]));
        for n in 0..10u8 {
            index.insert(room, (u64::from(n) * 1000, id(n)), 100);
        }
        index.insert(SyncScope::Revocations, (0, id(99)), 100);
        // Too old: before t=3000.
        let gone = index.evict(3000, u64::MAX);
        assert_eq!(gone.len(), 3);
        assert_eq!(gone[0].1, (0, id(0)));
        // Over quota: keep at most 500 bytes (the revocation stays).
        let gone = index.evict(0, 500);
        assert_eq!(gone.len(), 3, "{gone:?}");
        assert_eq!(index.bytes(), 500);
        assert_eq!(index.len(SyncScope::Revocations), 1);
        assert_eq!(index.items(room).next(), Some((6000, id(6))));
    }
}
