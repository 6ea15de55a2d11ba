//! Key epochs: which key is current, decided the same way on every device.
//!
//! Each epoch is named by its number and the id of its key. A removal starts
//! epoch `n + 1`. When two admins rotate at once, both create an epoch
//! `n + 1` with different keys; every device then keeps both keys (so no
//! message is lost) and sends under the same winner: the highest number, and
//! among equals the smallest key id.
//!
//! Only epochs whose key this device holds are known here: an epoch named
//! by an envelope, or by a grant without a key for this device, teaches
//! nothing (otherwise one envelope naming epoch `u64::MAX` made a room
//! unusable for every member: audit H4). A held epoch may be at most
//! [`MAX_EPOCH_STEP`] above the newest one held, at most
//! [`MAX_SIBLINGS_PER_NUMBER`] keys share a number, and at most
//! [`MAX_EPOCHS_PER_ROOM`] epochs are kept (the oldest go first).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// How far above the newest held epoch a newly granted one may be. A
/// legitimate rotation is `+1`; devices that missed a few rotations while
/// offline may see a later one first. Anything further is held until the
/// epochs in between arrive, so nobody can push a room to an epoch number
/// no rotation can ever follow.
pub const MAX_EPOCH_STEP: u64 = 16;
/// Concurrent rotations (keys of one epoch number) kept per number.
pub const MAX_SIBLINGS_PER_NUMBER: usize = 4;
/// Epochs kept per room; beyond this the oldest are forgotten.
pub const MAX_EPOCHS_PER_ROOM: usize = 4096;

/// Names one epoch of one room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

/// Why an epoch is not taken (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochRefusal {
    /// More than [`MAX_EPOCH_STEP`] above the newest held epoch.
    #[error("epoch {number} is too far ahead of the newest key held here ({newest})")]
    TooFarAhead {
        /// The epoch's number.
        number: u64,
        /// The newest held epoch's number.
        newest: u64,
    },
    /// [`MAX_SIBLINGS_PER_NUMBER`] keys of this number are held already.
    #[error("too many concurrent keys for epoch {0}")]
    TooManySiblings(u64),
}

/// The held epochs of one room as seen by one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochState {
    held: BTreeSet<EpochRef>,
}

impl EpochState {
    /// Whether `epoch` could be taken now (see [`EpochState::learn`]).
    pub fn admits(&self, epoch: &EpochRef) -> Result<(), EpochRefusal> {
        if self.held.contains(epoch) {
            return Ok(());
        }
        if let Some(newest) = self.newest_number()
            && epoch.number > newest.saturating_add(MAX_EPOCH_STEP)
        {
            return Err(EpochRefusal::TooFarAhead {
                number: epoch.number,
                newest,
            });
        }
        let siblings = self
            .held
            .range(
                EpochRef {
                    number: epoch.number,
                    key_id: [0; 16],
                }..=EpochRef {
                    number: epoch.number,
                    key_id: [0xff; 16],
                },
            )
            .count();
        if siblings >= MAX_SIBLINGS_PER_NUMBER {
            return Err(EpochRefusal::TooManySiblings(epoch.number));
        }
        Ok(())
    }

    /// Records an epoch whose key this device now holds (idempotent).
    /// Returns the epoch forgotten to stay within [`MAX_EPOCHS_PER_ROOM`].
    pub fn learn(&mut self, epoch: EpochRef) -> Result<Option<EpochRef>, EpochRefusal> {
        self.admits(&epoch)?;
        self.held.insert(epoch);
        Ok(if self.held.len() > MAX_EPOCHS_PER_ROOM {
            self.held.pop_first()
        } else {
            None
        })
    }

    /// Records a held epoch loaded from storage: it was checked when it
    /// arrived, so only the size bound applies.
    pub fn restore(&mut self, epoch: EpochRef) -> Option<EpochRef> {
        self.held.insert(epoch);
        (self.held.len() > MAX_EPOCHS_PER_ROOM)
            .then(|| self.held.pop_first())
            .flatten()
    }

    /// Whether this device holds `epoch`'s key.
    pub fn holds(&self, epoch: &EpochRef) -> bool {
        self.held.contains(epoch)
    }

    /// The epoch every member sends under: the winner among all held.
    pub fn current(&self) -> Option<EpochRef> {
        self.held
            .iter()
            .copied()
            .reduce(|best, next| if next.precedes(&best) { next } else { best })
    }

    /// Whether this device can send: it holds an epoch.
    pub fn can_send(&self) -> bool {
        !self.held.is_empty()
    }

    fn newest_number(&self) -> Option<u64> {
        self.held.last().map(|e| e.number)
    }

    /// The number a new rotation must use; `None` once the numbers are
    /// used up (never in practice: each step is an authorised rotation).
    pub fn next_number(&self) -> Option<u64> {
        match self.newest_number() {
            Some(newest) => newest.checked_add(1),
            None => Some(1),
        }
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
        assert_eq!(state.next_number(), Some(1));
        assert!(!state.can_send());
        state.learn(epoch(1, 9)).expect("first");
        state.learn(epoch(2, 3)).expect("next");
        assert_eq!(state.current(), Some(epoch(2, 3)));
        assert!(state.can_send());
        assert_eq!(state.next_number(), Some(3));
    }

    #[test]
    fn two_admins_rotating_at_once_converge_whatever_the_arrival_order() {
        let (a, b) = (epoch(2, 0x20), epoch(2, 0x10));
        let mut one = EpochState::default();
        one.learn(a).expect("a");
        one.learn(b).expect("b");
        let mut other = EpochState::default();
        other.learn(b).expect("b");
        other.learn(a).expect("a");
        assert_eq!(one.current(), other.current());
        assert_eq!(
            one.current(),
            Some(epoch(2, 0x10)),
            "smaller key id wins the tie"
        );
    }

    #[test]
    fn an_epoch_far_ahead_of_the_newest_held_is_refused_and_numbers_never_overflow() {
        let mut state = EpochState::default();
        state
            .learn(epoch(3, 1))
            .expect("first held may be any number");
        assert_eq!(
            state.learn(epoch(u64::MAX, 1)),
            Err(EpochRefusal::TooFarAhead {
                number: u64::MAX,
                newest: 3
            })
        );
        state.learn(epoch(3 + MAX_EPOCH_STEP, 1)).expect("in reach");
        assert_eq!(state.current().map(|e| e.number), Some(3 + MAX_EPOCH_STEP));
        let mut full = EpochState::default();
        full.learn(epoch(u64::MAX, 1)).expect("first");
        assert_eq!(full.next_number(), None, "checked, not wrapped to 0");
    }

    #[test]
    fn siblings_and_old_epochs_are_bounded() {
        let mut state = EpochState::default();
        for id in 0..MAX_SIBLINGS_PER_NUMBER as u8 {
            state.learn(epoch(1, id)).expect("sibling");
        }
        assert_eq!(
            state.learn(epoch(1, 0xee)),
            Err(EpochRefusal::TooManySiblings(1))
        );
        let mut long = EpochState::default();
        let mut forgotten = Vec::new();
        for number in 1..=(MAX_EPOCHS_PER_ROOM as u64 + 2) {
            forgotten.extend(long.learn(epoch(number, 0)).expect("one step"));
        }
        assert_eq!(forgotten, vec![epoch(1, 0), epoch(2, 0)]);
        assert_eq!(long.held.len(), MAX_EPOCHS_PER_ROOM);
    }
}
