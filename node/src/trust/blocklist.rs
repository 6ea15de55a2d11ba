//! Peers refused at admission, kept out for a back-off period.

use std::collections::{BTreeSet, HashMap};

use crate::identity::DeviceId;

/// Why and until when a peer is blocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// Unix seconds at which the block ends.
    pub until: u64,
    /// The refusal that caused it.
    pub reason: String,
}

/// A bounded set of blocked peers with expiry. Pure: time is an input.
///
/// Every operation is O(log n): blocks are also kept in order of their end,
/// so expired ones and, when the list is full, the one ending soonest go
/// without a scan (a flood of fresh keys fills the list; a scan per block
/// then cost O(10k) each).
#[derive(Debug, Default)]
pub struct Blocklist {
    entries: HashMap<DeviceId, Blocked>,
    /// Every entry by the time its block ends.
    ends: BTreeSet<(u64, DeviceId)>,
}

impl Blocklist {
    /// Most peers remembered; past it the block ending soonest is dropped.
    pub const MAX_ENTRIES: usize = 10_000;

    /// Blocks `peer` from `now` for `secs` seconds.
    pub fn block(&mut self, peer: DeviceId, now: u64, secs: u64, reason: String) {
        self.prune(now);
        if let Some(old) = self.entries.get(&peer) {
            self.ends.remove(&(old.until, peer));
        } else if self.entries.len() >= Self::MAX_ENTRIES
            && let Some((_, soonest)) = self.ends.pop_first()
        {
            self.entries.remove(&soonest);
        }
        let until = now.saturating_add(secs);
        self.ends.insert((until, peer));
        self.entries.insert(peer, Blocked { until, reason });
    }

    /// Lifts the block on `peer`, if any (a revocation that was overruled).
    pub fn unblock(&mut self, peer: &DeviceId) {
        if let Some(old) = self.entries.remove(peer) {
            self.ends.remove(&(old.until, *peer));
        }
    }

    /// The block on `peer`, if one is in force at `now`.
    pub fn blocked(&self, peer: &DeviceId, now: u64) -> Option<&Blocked> {
        self.entries.get(peer).filter(|blocked| blocked.until > now)
    }

    /// Every block in force at `now`.
    pub fn in_force(&self, now: u64) -> impl Iterator<Item = (&DeviceId, &Blocked)> {
        self.entries
            .iter()
            .filter(move |(_, blocked)| blocked.until > now)
    }

    /// Forgets blocks that ended.
    pub fn prune(&mut self, now: u64) {
        while let Some(&(until, peer)) = self.ends.first() {
            if until > now {
                break;
            }
            self.ends.pop_first();
            self.entries.remove(&peer);
        }
    }

    /// Number of blocks in force or not yet pruned.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no block is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{KeyPair, SeededEntropy};

    #[test]
    fn block_expires_after_its_back_off() {
        let peer = KeyPair::generate(&mut SeededEntropy::new(1)).device_id();
        let mut list = Blocklist::default();
        list.block(peer, 100, 60, "no certificate".into());
        assert_eq!(
            list.blocked(&peer, 159).map(|b| b.reason.as_str()),
            Some("no certificate")
        );
        assert!(list.blocked(&peer, 160).is_none());
        list.prune(160);
        assert!(list.is_empty());
    }

    #[test]
    fn list_stays_bounded() {
        let mut entropy = SeededEntropy::new(2);
        let mut list = Blocklist::default();
        for i in 0..(Blocklist::MAX_ENTRIES as u64 + 5) {
            list.block(
                KeyPair::generate(&mut entropy).device_id(),
                0,
                1000 + i,
                "x".into(),
            );
        }
        assert_eq!(list.len(), Blocklist::MAX_ENTRIES);
        assert_eq!(list.ends.len(), Blocklist::MAX_ENTRIES);
    }

    #[test]
    fn a_full_list_drops_the_block_ending_soonest_and_reblocking_moves_the_end() {
        let mut entropy = SeededEntropy::new(3);
        let mut list = Blocklist::default();
        let first = KeyPair::generate(&mut entropy).device_id();
        let second = KeyPair::generate(&mut entropy).device_id();
        list.block(first, 0, 10, "first".into());
        list.block(second, 0, 20, "second".into());
        // Blocked again for longer: the first now ends last.
        list.block(first, 1, 100_000, "again".into());
        for i in 0..(Blocklist::MAX_ENTRIES as u64 - 2) {
            list.block(
                KeyPair::generate(&mut entropy).device_id(),
                1,
                1000 + i,
                "x".into(),
            );
        }
        assert_eq!(list.len(), Blocklist::MAX_ENTRIES);
        let newcomer = KeyPair::generate(&mut entropy).device_id();
        list.block(newcomer, 1, 5000, "new".into());
        assert!(list.blocked(&second, 2).is_none(), "ended soonest: dropped");
        assert_eq!(
            list.blocked(&first, 2).map(|b| b.reason.as_str()),
            Some("again")
        );
        assert!(list.blocked(&newcomer, 2).is_some());
        assert_eq!(list.len(), Blocklist::MAX_ENTRIES);
    }
}
