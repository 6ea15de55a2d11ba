//! What sync does not fetch again, and for how long (audit M4).
//!
//! An item can fail here for two kinds of reasons:
//! - it is invalid for everyone (a bad signature, undecodable bytes): it is
//!   remembered for as long as there is room, and never fetched again;
//! - it is invalid only here and now, because of this node's own state (its
//!   clock, a revocation or group definition it holds or still lacks): it is
//!   remembered only for [`RETRY_SECS`] on the controlled clock, then asked
//!   for again, so a node whose clock was slow, or that learns the missing
//!   definition later, takes it in at a later round.
//!
//! Pure and bounded: at most [`MAX_REFUSED`] ids of each kind, the oldest
//! forgotten first (a forgotten one is merely fetched and refused again).

use std::collections::{HashMap, VecDeque};

use crate::trust::{RevocationError, TrustError};

/// Ids remembered of each kind at most.
pub const MAX_REFUSED: usize = 16_384;
/// How long an item refused for a local reason is not asked for again.
pub const RETRY_SECS: u64 = 300;
/// How far ahead of this node's clock an item may be dated and still be
/// refused only as a local matter (our clock may be slow); further ahead,
/// no honest clock is that wrong, so it is invalid for everyone.
pub const AHEAD_LOCAL_SECS: u64 = 3_600;

/// Why an item was refused, as far as sync and gossip scoring care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Invalid for every node: the sender or forwarder is at fault.
    Invalid,
    /// Invalid for this node now, because of its own state: an honest peer
    /// may hold and pass it on.
    Local,
    /// Valid as far as this node can tell, but not taken now because a
    /// bounded buffer is full (rooms not known yet, per sender): neither
    /// kept nor remembered, so the next sync round asks for it again.
    Later,
}

impl Refusal {
    /// Whether a trust check failed for everyone or only on this node's
    /// clock (a certificate or item not yet valid, or expired, here).
    pub fn of_trust(error: &TrustError) -> Refusal {
        match error {
            TrustError::NotYetValid { .. } | TrustError::Expired { .. } => Refusal::Local,
            _ => Refusal::Invalid,
        }
    }

    /// Whether a revocation failed for everyone, or only against this
    /// node's clock or revocation set (its issuer revoked here, the set or
    /// the issuer's share full, the covered certificate expired here).
    pub fn of_revocation(error: &RevocationError) -> Refusal {
        match error {
            RevocationError::Invalid(trust) => Refusal::of_trust(trust),
            RevocationError::IssuerRevoked { .. }
            | RevocationError::Full
            | RevocationError::IssuerFull { .. }
            | RevocationError::Expired(_) => Refusal::Local,
            #[allow(unreachable_patterns)]
            _ => Refusal::Invalid,
        }
    }
}

/// Ids of items refused during sync.
#[derive(Debug, Default)]
pub struct Refused {
    invalid: HashMap<[u8; 32], ()>,
    invalid_order: VecDeque<[u8; 32]>,
    /// Id → the time (Unix seconds) it may be asked for again.
    local: HashMap<[u8; 32], u64>,
    local_order: VecDeque<[u8; 32]>,
}

impl Refused {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers `id`, refused at `now` for `why`.
    pub fn insert(&mut self, id: [u8; 32], why: Refusal, now: u64) {
        match why {
            Refusal::Invalid => {
                if self.invalid.insert(id, ()).is_none() {
                    self.invalid_order.push_back(id);
                    if self.invalid_order.len() > MAX_REFUSED
                        && let Some(old) = self.invalid_order.pop_front()
                    {
                        self.invalid.remove(&old);
                    }
                }
            }
            Refusal::Later => {}
            Refusal::Local => {
                let retry = now.saturating_add(RETRY_SECS);
                if self.local.insert(id, retry).is_none() {
                    self.local_order.push_back(id);
                    if self.local_order.len() > MAX_REFUSED
                        && let Some(old) = self.local_order.pop_front()
                    {
                        self.local.remove(&old);
                    }
                }
            }
        }
    }

    /// Whether `id` is not to be fetched at `now`.
    pub fn contains(&self, id: &[u8; 32], now: u64) -> bool {
        self.invalid.contains_key(id) || self.local.get(id).is_some_and(|retry| *retry > now)
    }

    /// How many ids are remembered (both kinds, expired ones included
    /// until they are pushed out).
    pub fn len(&self) -> usize {
        self.invalid.len() + self.local.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_refusal_is_retried_later_an_invalid_one_never() {
        let mut refused = Refused::new();
        refused.insert([1; 32], Refusal::Invalid, 1_000);
        refused.insert([2; 32], Refusal::Local, 1_000);
        assert!(refused.contains(&[1; 32], 1_000));
        assert!(refused.contains(&[2; 32], 1_000 + RETRY_SECS - 1));
        assert!(!refused.contains(&[2; 32], 1_000 + RETRY_SECS));
        assert!(refused.contains(&[1; 32], u64::MAX));
        // Refused again later: the wait starts over.
        refused.insert([2; 32], Refusal::Local, 5_000);
        assert!(refused.contains(&[2; 32], 5_000));
    }

    #[test]
    fn both_kinds_are_bounded() {
        let mut refused = Refused::new();
        for i in 0..(MAX_REFUSED as u32 + 10) {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_le_bytes());
            refused.insert(id, Refusal::Invalid, 0);
            id[4] = 1;
            refused.insert(id, Refusal::Local, 0);
        }
        assert_eq!(refused.len(), 2 * MAX_REFUSED);
        assert!(!refused.contains(&[0; 32], 0), "the oldest was forgotten");
    }
}
