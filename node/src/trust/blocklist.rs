//! Peers refused at admission, kept out for a back-off period.

use std::collections::HashMap;

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
#[derive(Debug, Default)]
pub struct Blocklist {
    entries: HashMap<DeviceId, Blocked>,
}

impl Blocklist {
    /// Most peers remembered; past it the block ending soonest is dropped.
    pub const MAX_ENTRIES: usize = 10_000;

    /// Blocks `peer` from `now` for `secs` seconds.
    pub fn block(&mut self, peer: DeviceId, now: u64, secs: u64, reason: String) {
        self.prune(now);
        if self.entries.len() >= Self::MAX_ENTRIES
            && !self.entries.contains_key(&peer)
            && let Some(soonest) = self
                .entries
                .iter()
                .min_by_key(|(_, blocked)| blocked.until)
                .map(|(peer, _)| *peer)
        {
            self.entries.remove(&soonest);
        }
        self.entries.insert(
            peer,
            Blocked {
                until: now.saturating_add(secs),
                reason,
            },
        );
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
        self.entries.retain(|_, blocked| blocked.until > now);
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
    }
}
