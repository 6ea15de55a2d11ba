//! What a relay knows about the rooms it carries but cannot read: from the
//! key grants it sees, which devices hold each room's newest key, so it
//! serves a room's stored envelopes only to them (a removed member, or a
//! device that was never a member, gets nothing).

use std::collections::BTreeMap;

use super::{KeyGrant, RoomId};
use crate::identity::PublicKey;

/// Rooms carried by a relay and who may fetch them.
#[derive(Debug, Default)]
pub struct Carrier {
    /// Newest epoch number seen per room.
    newest: BTreeMap<RoomId, u64>,
    /// Newest epoch number granted per room and device.
    granted: BTreeMap<(RoomId, PublicKey), u64>,
}

impl Carrier {
    /// Nothing carried yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a grant whose signature and issuer the caller has checked.
    pub fn learn_grant(&mut self, grant: &KeyGrant) {
        let room = grant.body.room;
        let number = grant.body.epoch.number;
        let newest = self.newest.entry(room).or_insert(number);
        *newest = (*newest).max(number);
        for device in grant.recipients() {
            let held = self.granted.entry((room, *device)).or_insert(number);
            *held = (*held).max(number);
        }
    }

    /// Whether `device` holds the newest key of `room` that this relay knows of.
    pub fn may_serve(&self, room: RoomId, device: &PublicKey) -> bool {
        match (self.newest.get(&room), self.granted.get(&(room, *device))) {
            (Some(newest), Some(held)) => held >= newest,
            _ => false,
        }
    }

    /// How many devices hold `room`'s newest key, as far as grants tell.
    pub fn holders(&self, room: RoomId) -> usize {
        let Some(newest) = self.newest.get(&room) else {
            return 0;
        };
        self.granted
            .range((room, PublicKey([0; 32]))..=(room, PublicKey([0xff; 32])))
            .filter(|(_, held)| *held >= newest)
            .count()
    }

    /// The rooms `device` may fetch.
    pub fn rooms_of(&self, device: &PublicKey) -> Vec<RoomId> {
        self.newest
            .keys()
            .copied()
            .filter(|room| self.may_serve(*room, device))
            .collect()
    }

    /// Every room a grant was seen for.
    pub fn rooms(&self) -> impl Iterator<Item = RoomId> + '_ {
        self.newest.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::RoomKey;
    use crate::identity::{KeyPair, SeededEntropy};

    #[test]
    fn serves_holders_of_the_newest_key_only() {
        let mut entropy = SeededEntropy::new(7);
        let admin = KeyPair::generate(&mut entropy);
        let kim = KeyPair::generate(&mut entropy).public();
        let lee = KeyPair::generate(&mut entropy).public();
        let outsider = KeyPair::generate(&mut entropy).public();
        let room = RoomId([9; 32]);
        let mut carrier = Carrier::new();
        let first = RoomKey::generate(&mut entropy);
        for grant in KeyGrant::issue(&admin, room, 1, &first, &[kim, lee], 0).expect("grant") {
            carrier.learn_grant(&grant);
        }
        assert!(carrier.may_serve(room, &kim) && carrier.may_serve(room, &lee));
        assert!(!carrier.may_serve(room, &outsider));
        assert_eq!(carrier.holders(room), 2);
        assert_eq!(carrier.holders(RoomId([8; 32])), 0);
        assert!(!carrier.may_serve(RoomId([8; 32]), &kim), "unknown room");
        // Lee is removed: epoch 2 is granted to kim only.
        let second = RoomKey::generate(&mut entropy);
        for grant in KeyGrant::issue(&admin, room, 2, &second, &[kim], 0).expect("grant") {
            carrier.learn_grant(&grant);
        }
        assert!(carrier.may_serve(room, &kim));
        assert!(
            !carrier.may_serve(room, &lee),
            "a removed member gets nothing"
        );
        assert_eq!(carrier.holders(room), 1, "only kim holds the newest key");
        assert_eq!(carrier.rooms_of(&kim), vec![room]);
        assert!(carrier.rooms_of(&lee).is_empty());
    }
}
