//! What a node keeps while it enforces revocations, as a component of its
//! own without I/O (control plane v2, deliverable 1): revoked peers still
//! connected for a short grace period (time to hear of their revocation
//! and answer with a wipe receipt), revocations issued here that no peer
//! has yet, the order in which revocations were taken (audit M10), and,
//! once this device itself is revoked, its pending wipe.
//!
//! Deciding whether a revocation is valid is [`crate::trust`]'s business,
//! and carrying it out (the admission gate, the messenger, the store, the
//! swarm) the actor's, in `revoking.rs`. Peers and instants are generic, so
//! tests use numbers.

use std::collections::{BTreeMap, HashMap};

/// This device was revoked: what it will say afterwards, and when it wipes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wiping<T> {
    /// The notice left in the erased home and shown to the user.
    pub(crate) notice: String,
    /// When the erasure happens (after the wipe receipt had time to leave).
    pub(crate) at: T,
}

/// The revocation state of one node.
#[derive(Debug)]
pub(crate) struct Enforcement<P, T> {
    /// Revoked peers still connected, until their grace period ends.
    grace: HashMap<P, T>,
    /// Revocations issued here that no peer has yet, with their bytes.
    unpublished: BTreeMap<[u8; 32], Vec<u8>>,
    /// The number the next revocation taken here is saved under.
    next_arrival: u64,
    /// Set when this device was revoked and is about to erase itself.
    wiping: Option<Wiping<T>>,
}

impl<P: Copy + Eq + std::hash::Hash, T: Copy + Ord> Enforcement<P, T> {
    /// Nothing revoked, nothing issued, nothing taken yet.
    pub(crate) fn new() -> Self {
        Enforcement {
            grace: HashMap::new(),
            unpublished: BTreeMap::new(),
            next_arrival: 0,
            wiping: None,
        }
    }

    /// Revocations taken so far (from the store, at start): the next one
    /// is numbered after them.
    pub(crate) fn continue_arrivals_at(&mut self, next: u64) {
        self.next_arrival = next;
    }

    /// The number of the revocation taken now, in the order taken.
    pub(crate) fn next_arrival(&mut self) -> u64 {
        let number = self.next_arrival;
        self.next_arrival = self.next_arrival.saturating_add(1);
        number
    }

    /// `peer` was revoked while connected: it stays until `until` (a later
    /// revocation of it does not extend the grace).
    pub(crate) fn revoked_while_connected(&mut self, peer: P, until: T) {
        self.grace.entry(peer).or_insert(until);
    }

    /// `peer`'s revocation was overruled; `true` if it was in its grace period.
    pub(crate) fn reinstate(&mut self, peer: &P) -> bool {
        self.grace.remove(peer).is_some()
    }

    /// Whether `peer` is a revoked device in its grace period (nothing it
    /// sends is taken but its wipe receipt).
    pub(crate) fn in_grace(&self, peer: &P) -> bool {
        self.grace.contains_key(peer)
    }

    /// Revoked peers whose grace period is over at `now`: to disconnect
    /// and block. Each is handed out once.
    pub(crate) fn grace_over(&mut self, now: T) -> Vec<P> {
        let due: Vec<P> = self
            .grace
            .iter()
            .filter(|(_, until)| now >= **until)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &due {
            self.grace.remove(peer);
        }
        due
    }

    /// A revocation issued here that no peer took yet: kept to publish.
    pub(crate) fn hold_unpublished(&mut self, id: [u8; 32], bytes: Vec<u8>) {
        self.unpublished.insert(id, bytes);
    }

    /// A peer holds revocation `id` now; `true` if it was waiting here.
    pub(crate) fn published(&mut self, id: &[u8; 32]) -> bool {
        self.unpublished.remove(id).is_some()
    }

    /// The revocations waiting to be published, oldest id first.
    pub(crate) fn unpublished(&self) -> Vec<([u8; 32], Vec<u8>)> {
        self.unpublished
            .iter()
            .map(|(id, bytes)| (*id, bytes.clone()))
            .collect()
    }

    /// This device was revoked with a wipe order: it erases itself at
    /// `at`. `false` if a wipe is already pending (the first one stands).
    pub(crate) fn begin_wipe(&mut self, notice: String, at: T) -> bool {
        if self.wiping.is_some() {
            return false;
        }
        self.wiping = Some(Wiping { notice, at });
        true
    }

    /// Whether this device is about to erase itself.
    pub(crate) fn is_wiping(&self) -> bool {
        self.wiping.is_some()
    }

    /// Whether the wipe should happen at `now`.
    pub(crate) fn wipe_due(&self, now: T) -> bool {
        self.wiping.as_ref().is_some_and(|wiping| now >= wiping.at)
    }

    /// The pending wipe, to carry out now; what waited to be published is
    /// dropped with it (the erased device publishes nothing more).
    pub(crate) fn take_wipe(&mut self) -> Option<Wiping<T>> {
        let wiping = self.wiping.take()?;
        self.unpublished.clear();
        self.grace.clear();
        Some(wiping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_peer_is_shut_out_once_when_its_grace_ends_and_never_earlier() {
        let mut state: Enforcement<u32, u64> = Enforcement::new();
        state.revoked_while_connected(7, 102);
        // A second revocation of the same device does not extend its grace.
        state.revoked_while_connected(7, 150);
        state.revoked_while_connected(8, 110);
        assert!(state.in_grace(&7) && state.in_grace(&8));
        assert!(state.grace_over(101).is_empty());
        assert_eq!(state.grace_over(102), vec![7]);
        assert!(!state.in_grace(&7));
        assert!(state.grace_over(105).is_empty(), "handed out once");
        assert_eq!(state.grace_over(200), vec![8]);
    }

    #[test]
    fn an_overruled_revocation_takes_the_peer_out_of_its_grace() {
        let mut state: Enforcement<u32, u64> = Enforcement::new();
        state.revoked_while_connected(7, 102);
        assert!(state.reinstate(&7));
        assert!(!state.in_grace(&7));
        assert!(state.grace_over(1_000).is_empty(), "not disconnected later");
        assert!(!state.reinstate(&7));
    }

    #[test]
    fn revocations_issued_here_wait_until_a_peer_holds_them() {
        let mut state: Enforcement<u32, u64> = Enforcement::new();
        state.hold_unpublished([2; 32], b"second".to_vec());
        state.hold_unpublished([1; 32], b"first".to_vec());
        assert_eq!(
            state.unpublished(),
            vec![([1; 32], b"first".to_vec()), ([2; 32], b"second".to_vec())]
        );
        assert!(state.published(&[1; 32]));
        assert!(!state.published(&[1; 32]));
        assert_eq!(state.unpublished(), vec![([2; 32], b"second".to_vec())]);
    }

    #[test]
    fn arrivals_are_numbered_on_from_what_the_store_held() {
        let mut state: Enforcement<u32, u64> = Enforcement::new();
        state.continue_arrivals_at(41);
        assert_eq!(
            (state.next_arrival(), state.next_arrival()),
            (41, 42),
            "in the order taken, after the 41 saved"
        );
        state.continue_arrivals_at(u64::MAX);
        assert_eq!(state.next_arrival(), u64::MAX);
        assert_eq!(
            state.next_arrival(),
            u64::MAX,
            "saturates, never wraps to 0"
        );
    }

    #[test]
    fn the_first_wipe_order_stands_and_the_wipe_drops_what_waited() {
        let mut state: Enforcement<u32, u64> = Enforcement::new();
        state.hold_unpublished([1; 32], b"issued here".to_vec());
        state.revoked_while_connected(9, 100);
        assert!(state.begin_wipe("revoked by park".into(), 50));
        assert!(!state.begin_wipe("revoked again".into(), 10));
        assert!(state.is_wiping());
        assert!(!state.wipe_due(49));
        assert!(state.wipe_due(50));
        let wiping = state.take_wipe().expect("pending");
        assert_eq!(
            wiping,
            Wiping {
                notice: "revoked by park".into(),
                at: 50
            }
        );
        assert!(state.unpublished().is_empty() && !state.in_grace(&9));
        assert!(!state.is_wiping() && state.take_wipe().is_none());
    }
}
