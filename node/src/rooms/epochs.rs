//! Key epochs: which key is current, decided the same way on every device.
//!
//! Each epoch is named by its number and the id of its key. A removal starts
//! epoch `n + 1`. When two admins rotate at once, both create an epoch
//! `n + 1` with different keys; every device then keeps both keys (so no
//! message is lost) and sends under the same winner: the highest number, and
//! among equals the smallest key id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Names one epoch of one room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EpochRef {
    /// Epoch number, starting at 1.
    pub number: u64,
    /// Id of the epoch's key ([`crate::crypto::RoomKey::key_id`]).
    pub key_id: [u8; 16],
}

impl EpochRef {
    /// Precedence: a higher number wins; among equal numbers the smaller key id.
    fn precedes(&self, other: &EpochRef) -> bool {
        (self.number, std::cmp::Reverse(self.key_id))
            > (other.number, std::cmp::Reverse(other.key_id))
    }
}

/// Something learned about an epoch: that it exists, and (if this device got
/// its key) that the key is held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The epoch.
    pub epoch: EpochRef,
    /// Whether this device holds its key.
    pub key_held: bool,
}

/// The epochs of one room as seen by one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochState {
    known: BTreeMap<(u64, [u8; 16]), bool>,
}

impl EpochState {
    /// Records a grant (idempotent; a held key stays held).
    pub fn learn(&mut self, grant: Grant) {
        let held = self
            .known
            .entry((grant.epoch.number, grant.epoch.key_id))
            .or_insert(false);
        *held |= grant.key_held;
    }

    /// The epoch every member sends under: the winner among all known.
    pub fn current(&self) -> Option<EpochRef> {
        self.known
            .keys()
            .map(|(number, key_id)| EpochRef {
                number: *number,
                key_id: *key_id,
            })
            .reduce(|best, next| if next.precedes(&best) { next } else { best })
    }

    /// Whether this device can send: it holds the current epoch's key.
    pub fn can_send(&self) -> bool {
        self.current().is_some_and(|e| {
            self.known
                .get(&(e.number, e.key_id))
                .copied()
                .unwrap_or(false)
        })
    }

    /// The number a new rotation must use.
    pub fn next_number(&self) -> u64 {
        self.current().map_or(1, |e| e.number + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(number: u64, id: u8) -> EpochRef {
        EpochRef {
            number,
            key_id: [id; 16],
        }
    }

    #[test]
    fn higher_epoch_wins_and_rotation_counts_up() {
        let mut state = EpochState::default();
        assert_eq!(state.next_number(), 1);
        state.learn(Grant {
            epoch: epoch(1, 9),
            key_held: true,
        });
        state.learn(Grant {
            epoch: epoch(2, 3),
            key_held: false,
        });
        assert_eq!(state.current(), Some(epoch(2, 3)));
        assert!(!state.can_send(), "removed members never hold the new key");
        assert_eq!(state.next_number(), 3);
    }

    #[test]
    fn two_admins_rotating_at_once_converge_whatever_the_arrival_order() {
        let a = Grant {
            epoch: epoch(2, 0x20),
            key_held: true,
        };
        let b = Grant {
            epoch: epoch(2, 0x10),
            key_held: true,
        };
        let mut one = EpochState::default();
        one.learn(a.clone());
        one.learn(b.clone());
        let mut other = EpochState::default();
        other.learn(b);
        other.learn(a);
        assert_eq!(one.current(), other.current());
        assert_eq!(
            one.current(),
            Some(epoch(2, 0x10)),
            "smaller key id wins the tie"
        );
        assert!(one.can_send());
    }
}
