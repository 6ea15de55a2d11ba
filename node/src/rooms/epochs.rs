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
//!
//! Firm and provisional epochs. A device that holds no key for a room takes
//! the first authorised grant at whatever number it names; otherwise a
//! member who reached a newcomer first could hand it a lone epoch far from
//! the one the room uses and cut it off (its messages unreadable, the
//! room's own keys too far below or above to win). So an epoch is *firm*
//! when this device created it, restored it from storage, took it while it
//! held a firm epoch (within [`MAX_EPOCH_STEP`] of the newest firm one), or
//! saw [`CORROBORATION`] distinct other devices hold it (their grants of it
//! opened here, or their envelopes under it decrypted: neither can be
//! forged). Epochs taken while nothing was firm are *provisional*. While
//! nothing is firm the highest held epoch wins, as it must for a newcomer
//! (a room's current number is legitimately high after many rotations);
//! once an epoch is firm, epochs more than [`MAX_EPOCH_STEP`] above the
//! newest firm one neither win nor move the step bound: the newcomer
//! converges to the epoch the room's other members use as soon as two of
//! them show it. (A lone epoch within the step is an ordinary rotation: the
//! newcomer, now holding it, grants it to the members who miss it.) While
//! nothing is firm, a grant too far ahead is taken once
//! [`CORROBORATION`] granters granted it (a lone low epoch cannot hold the
//! room's real one back either). Colluding insiders can still mislead a
//! newcomer by numbers (they can read the room anyway); one cannot.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::identity::PublicKey;

/// How far above the newest held epoch a newly granted one may be. A
/// legitimate rotation is `+1`; devices that missed a few rotations while
/// offline may see a later one first. Anything further is held until the
/// epochs in between arrive, so nobody can push a room to an epoch number
/// no rotation can ever follow.
pub const MAX_EPOCH_STEP: u64 = 16;
/// Concurrent rotations (keys of one epoch number) kept per number. When
/// more arrive, the weakest goes (the smallest key id wins a number, so
/// the key every member converges to is always kept); members that rotate at
/// once after a revocation each make one, so this is generous.
pub const MAX_SIBLINGS_PER_NUMBER: usize = 32;
/// Epochs kept per room; beyond this the oldest are forgotten.
pub const MAX_EPOCHS_PER_ROOM: usize = 4096;
/// Distinct other devices that must show they hold an epoch before it is
/// firm on a device that took it while nothing was firm.
pub const CORROBORATION: usize = 2;

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
    /// Held epochs taken while nothing was firm, with the other devices
    /// seen holding them (fewer than [`CORROBORATION`]).
    provisional: BTreeMap<EpochRef, BTreeSet<PublicKey>>,
}

impl EpochState {
    /// Whether `epoch` could be taken now (see [`EpochState::learn`]).
    pub fn admits(&self, epoch: &EpochRef) -> Result<(), EpochRefusal> {
        if self.held.contains(epoch) {
            return Ok(());
        }
        if let Some(newest) = self.newest_firm().or(self.newest_number())
            && epoch.number > newest.saturating_add(MAX_EPOCH_STEP)
        {
            return Err(EpochRefusal::TooFarAhead {
                number: epoch.number,
                newest,
            });
        }
        if !self.fits_among_siblings(epoch) {
            return Err(EpochRefusal::TooManySiblings(epoch.number));
        }
        Ok(())
    }

    /// Records an epoch whose key this device now holds (idempotent):
    /// created here (`granter` `None`, firm) or granted by `granter` (firm
    /// if a firm epoch is held, else provisional). Returns the epoch
    /// forgotten to stay within [`MAX_EPOCHS_PER_ROOM`].
    pub fn learn(
        &mut self,
        epoch: EpochRef,
        granter: Option<&PublicKey>,
    ) -> Result<Option<EpochRef>, EpochRefusal> {
        if self.held.contains(&epoch) {
            if granter.is_none() {
                self.provisional.remove(&epoch);
            }
            return Ok(None);
        }
        match granter {
            // A rotation here is one above the current epoch, which may
            // be a provisional one up to the step above the newest firm.
            None if !self.fits_among_siblings(&epoch) => {
                return Err(EpochRefusal::TooManySiblings(epoch.number));
            }
            None => {}
            Some(_) => self.admits(&epoch)?,
        }
        if let Some(granter) = granter
            && self.newest_firm().is_none()
        {
            self.provisional.insert(epoch, BTreeSet::from([*granter]));
        }
        Ok(self.insert(epoch))
    }

    /// Takes an epoch too far ahead for [`EpochState::learn`] because
    /// [`CORROBORATION`] granters granted it, while nothing is firm here
    /// (a lone epoch from one member held a newcomer below the room's own).
    /// Firm. Refused if a firm epoch is held.
    pub fn learn_corroborated(
        &mut self,
        epoch: EpochRef,
    ) -> Result<Option<EpochRef>, EpochRefusal> {
        if let Some(newest) = self.newest_firm()
            && epoch.number > newest.saturating_add(MAX_EPOCH_STEP)
        {
            return Err(EpochRefusal::TooFarAhead {
                number: epoch.number,
                newest,
            });
        }
        if !self.held.contains(&epoch) && !self.fits_among_siblings(&epoch) {
            return Err(EpochRefusal::TooManySiblings(epoch.number));
        }
        self.provisional.remove(&epoch);
        Ok(self.insert(epoch))
    }

    /// `device` (not this one) showed it holds `epoch`: a provisional
    /// epoch seen held by [`CORROBORATION`] devices becomes firm. Returns
    /// whether it just did.
    pub fn vouch(&mut self, epoch: &EpochRef, device: &PublicKey) -> bool {
        let Some(seen) = self.provisional.get_mut(epoch) else {
            return false;
        };
        seen.insert(*device);
        if seen.len() >= CORROBORATION {
            self.provisional.remove(epoch);
            return true;
        }
        false
    }

    /// Whether `epoch` is held and provisional.
    pub fn is_provisional(&self, epoch: &EpochRef) -> bool {
        self.provisional.contains_key(epoch)
    }

    /// Whether some held epoch is firm.
    pub fn has_firm(&self) -> bool {
        self.held.len() > self.provisional.len()
    }

    /// Whether nothing is firm and the held epochs disagree: two of them
    /// more than [`MAX_EPOCH_STEP`] apart with none in between (a lone
    /// epoch far from the room's). Such a device does not know which is
    /// the room's, and hands neither on: a newcomer it misled would count
    /// it towards [`CORROBORATION`].
    pub fn conflicted(&self) -> bool {
        !self.has_firm()
            && self
                .held
                .iter()
                .zip(self.held.iter().skip(1))
                .any(|(low, high)| high.number.saturating_sub(low.number) > MAX_EPOCH_STEP)
    }

    /// Records a held epoch loaded from storage: it was checked when it
    /// arrived, so only the size bound applies. Firm.
    pub fn restore(&mut self, epoch: EpochRef) -> Option<EpochRef> {
        self.provisional.remove(&epoch);
        self.insert(epoch)
    }

    fn insert(&mut self, epoch: EpochRef) -> Option<EpochRef> {
        if !self.held.contains(&epoch)
            && self.siblings(epoch.number) >= MAX_SIBLINGS_PER_NUMBER
            && let Some(weakest) = self.weakest_sibling(epoch.number)
            && epoch.precedes(&weakest)
        {
            self.held.remove(&weakest);
            self.provisional.remove(&weakest);
            self.held.insert(epoch);
            return Some(weakest);
        }
        self.held.insert(epoch);
        if self.held.len() > MAX_EPOCHS_PER_ROOM {
            let forgotten = self.held.pop_first();
            if let Some(old) = &forgotten {
                self.provisional.remove(old);
            }
            forgotten
        } else {
            None
        }
    }

    /// Whether `epoch` would be kept among its number's siblings: there is
    /// room, or it beats the weakest held one, which it then replaces.
    fn fits_among_siblings(&self, epoch: &EpochRef) -> bool {
        self.siblings(epoch.number) < MAX_SIBLINGS_PER_NUMBER
            || self
                .weakest_sibling(epoch.number)
                .is_some_and(|weakest| epoch.precedes(&weakest))
    }

    /// The held keys of epoch `number`, strongest (smallest key id) first.
    fn siblings_of(&self, number: u64) -> impl DoubleEndedIterator<Item = &EpochRef> {
        self.held.range(
            EpochRef {
                number,
                key_id: [0; 16],
            }..=EpochRef {
                number,
                key_id: [0xff; 16],
            },
        )
    }

    fn weakest_sibling(&self, number: u64) -> Option<EpochRef> {
        self.siblings_of(number).next_back().copied()
    }

    fn siblings(&self, number: u64) -> usize {
        self.siblings_of(number).count()
    }

    /// The newest firm epoch's number.
    fn newest_firm(&self) -> Option<u64> {
        self.held
            .iter()
            .rev()
            .find(|e| !self.provisional.contains_key(e))
            .map(|e| e.number)
    }

    /// Whether this device holds `epoch`'s key.
    pub fn holds(&self, epoch: &EpochRef) -> bool {
        self.held.contains(epoch)
    }

    /// The epoch every member sends under: the winner among the held
    /// epochs at most [`MAX_EPOCH_STEP`] above the newest firm one (among
    /// all held while none is firm).
    pub fn current(&self) -> Option<EpochRef> {
        let ceiling = self
            .newest_firm()
            .map_or(u64::MAX, |n| n.saturating_add(MAX_EPOCH_STEP));
        self.held
            .iter()
            .copied()
            .filter(|e| e.number <= ceiling)
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
        match self.current() {
            Some(current) => current.number.checked_add(1),
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
        state.learn(epoch(1, 9), None).expect("first");
        state.learn(epoch(2, 3), None).expect("next");
        assert_eq!(state.current(), Some(epoch(2, 3)));
        assert!(state.can_send());
        assert_eq!(state.next_number(), Some(3));
    }

    #[test]
    fn two_admins_rotating_at_once_converge_whatever_the_arrival_order() {
        let (a, b) = (epoch(2, 0x20), epoch(2, 0x10));
        let mut one = EpochState::default();
        one.learn(a, None).expect("a");
        one.learn(b, None).expect("b");
        let mut other = EpochState::default();
        other.learn(b, None).expect("b");
        other.learn(a, None).expect("a");
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
            .learn(epoch(3, 1), None)
            .expect("first held may be any number");
        let granter = PublicKey([5; 32]);
        assert_eq!(
            state.learn(epoch(u64::MAX, 1), Some(&granter)),
            Err(EpochRefusal::TooFarAhead {
                number: u64::MAX,
                newest: 3
            })
        );
        state
            .learn(epoch(3 + MAX_EPOCH_STEP, 1), Some(&granter))
            .expect("in reach");
        assert_eq!(state.current().map(|e| e.number), Some(3 + MAX_EPOCH_STEP));
        let mut full = EpochState::default();
        full.learn(epoch(u64::MAX, 1), None).expect("first");
        assert_eq!(full.next_number(), None, "checked, not wrapped to 0");
    }

    #[test]
    fn a_lone_epoch_handed_to_a_newcomer_loses_to_the_one_two_members_show() {
        let (mallory, kim, lee) = (PublicKey([1; 32]), PublicKey([2; 32]), PublicKey([3; 32]));
        let mut high = EpochState::default();
        high.learn(epoch(1000, 1), Some(&mallory))
            .expect("a newcomer takes its first grant at any number");
        assert_eq!(high.current(), Some(epoch(1000, 1)));
        assert!(!high.conflicted());
        high.learn(epoch(300, 2), Some(&kim)).expect("lower");
        assert_eq!(high.current(), Some(epoch(1000, 1)), "nothing firm yet");
        assert!(high.conflicted(), "two epochs far apart, neither firm");
        assert!(
            !high.vouch(&epoch(300, 2), &kim),
            "one device is not enough"
        );
        assert!(high.vouch(&epoch(300, 2), &lee));
        assert_eq!(high.current(), Some(epoch(300, 2)));
        assert!(!high.conflicted());
        assert_eq!(high.next_number(), Some(301));
        assert!(
            high.learn(epoch(1001, 1), Some(&mallory)).is_err(),
            "the step counts from the firm epoch now"
        );
        high.learn(epoch(301, 3), Some(&kim)).expect("a rotation");
        assert!(!high.is_provisional(&epoch(301, 3)));
        assert_eq!(high.current(), Some(epoch(301, 3)));

        let mut low = EpochState::default();
        low.learn(epoch(1, 1), Some(&mallory))
            .expect("lone low epoch");
        assert!(matches!(
            low.learn(epoch(300, 2), Some(&kim)),
            Err(EpochRefusal::TooFarAhead { .. })
        ));
        low.learn_corroborated(epoch(300, 2))
            .expect("granted by two: taken while nothing is firm");
        assert_eq!(low.current(), Some(epoch(300, 2)));
        assert!(
            low.learn_corroborated(epoch(400, 2)).is_err(),
            "not once firm"
        );
    }

    #[test]
    fn siblings_and_old_epochs_are_bounded() {
        let mut state = EpochState::default();
        for id in 1..=MAX_SIBLINGS_PER_NUMBER as u8 {
            state.learn(epoch(1, id), None).expect("sibling");
        }
        // Past the bound, a key that would lose anyway is refused and one
        // that wins takes the weakest one's place: the winner is never lost.
        assert_eq!(
            state.learn(epoch(1, 0xee), None),
            Err(EpochRefusal::TooManySiblings(1))
        );
        let weakest = epoch(1, MAX_SIBLINGS_PER_NUMBER as u8);
        assert_eq!(state.learn(epoch(1, 0), None), Ok(Some(weakest)));
        assert_eq!(state.siblings(1), MAX_SIBLINGS_PER_NUMBER);
        assert_eq!(state.current(), Some(epoch(1, 0)));
        let mut long = EpochState::default();
        let mut forgotten = Vec::new();
        for number in 1..=(MAX_EPOCHS_PER_ROOM as u64 + 2) {
            forgotten.extend(long.learn(epoch(number, 0), None).expect("one step"));
        }
        assert_eq!(forgotten, vec![epoch(1, 0), epoch(2, 0)]);
        assert_eq!(long.held.len(), MAX_EPOCHS_PER_ROOM);
    }
}
