//! What a relay knows about the rooms it carries but cannot read, and whom it
//! serves them to, from what it can verify (audit H5):
//!
//! - a **department** room's id is derived from an org unit: a device is a
//!   member if its certified org unit lies at or under it. The relay knows
//!   a room is a department room once it met a certificate whose org path
//!   derives the id, and then serves it by certificate only.
//! - a **1:1** room's id is derived from two user ids: once a grant's
//!   issuer and one of its recipients derive the id, the relay knows the two
//!   users and serves the room to their devices only.
//! - a **group**'s definition is encrypted, so the relay follows its key
//!   lineage instead: a group's id is bound to its founder device and its
//!   first key ([`RoomId::group_of`]), so the founder's grants of that key
//!   are verifiable, and a later grant counts only if its issuer is a
//!   device an earlier counted grant named. The relay serves the group to
//!   those devices (its holders) only. A certified non-member was never
//!   named by anyone holding the key, so nothing it grants counts and it
//!   is never served; its grant is left unproven (not stored, not passed
//!   on, and not held against whoever forwarded it: a genuine grant that
//!   arrives before the grants naming its issuer is fetched again by sync).
//!   Nothing is ever taken away by a grant, so no grant (say, for epoch
//!   `u64::MAX`) can make the relay refuse real members, and there is no
//!   "newest epoch" to raise. A grant for a department or 1:1 room from a
//!   device that is not its member is refused.
//!
//! What is left: holders only grow, so a device removed from a group stays
//! served its ciphertext (it cannot read what follows: the group rotates).
//! Groups created before ids were bound to founders are served by no relay.
//!
//! Bounded: rooms, holders per room, and groups first named by one issuer.

use std::collections::{BTreeMap, BTreeSet};

use super::{KeyGrant, RoomId};
use crate::identity::PublicKey;
use crate::trust::{AgencyId, OrgUnit, Role, VerifiedDevice};

/// Most rooms a relay carries.
pub const MAX_CARRIED_ROOMS: usize = 16_384;
/// Most grant recipients remembered per room.
pub const MAX_HOLDERS_PER_ROOM: usize = 4_096;
/// Most groups one issuer may be the first to name to a relay.
pub const MAX_GROUPS_PER_ISSUER: usize = 256;

/// Who belongs to a carried room, as far as the relay can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Every device certified at or under this unit.
    Department(OrgUnit),
    /// The devices of these two users.
    Direct([String; 2]),
    /// A group: the devices its key lineage named.
    Group,
}

#[derive(Debug)]
struct Carried {
    membership: Membership,
    /// Devices counted grants named (serving groups; counting for all kinds).
    holders: BTreeSet<PublicKey>,
}

/// Why a relay did not take a grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// The issuer is not a member of the department or 1:1 room it grants.
    #[error("{issuer} grants a key of a room it is not a member of")]
    NotMember {
        /// The issuer's user id.
        issuer: String,
    },
    /// Only member devices grant room keys.
    #[error("a relay does not grant room keys")]
    RelayIssuer,
    /// A grant of a room the relay cannot place yet: neither a department
    /// nor 1:1 room of its issuer, nor a group's founding grant, nor from a
    /// device an earlier grant of the group named. Either its issuer is not
    /// a member, or the grants naming it have not arrived here yet.
    #[error("{issuer} grants a room key no grant known here gave it")]
    Unproven {
        /// The issuer's user id.
        issuer: String,
    },
    /// The relay carries as many rooms as it may.
    #[error("this relay carries {MAX_CARRIED_ROOMS} rooms already")]
    Full,
    /// The issuer named more new groups than it may.
    #[error("{issuer} named {MAX_GROUPS_PER_ISSUER} groups to this relay already")]
    TooManyGroups {
        /// The issuer's user id.
        issuer: String,
    },
}

/// Rooms carried by a relay and who may fetch them.
#[derive(Debug, Default)]
pub struct Carrier {
    rooms: BTreeMap<RoomId, Carried>,
    /// Groups each issuer was the first to name.
    founded: BTreeMap<PublicKey, usize>,
}

/// The department rooms of `org` and every unit above it.
fn department_rooms(
    agency: &AgencyId,
    org: &OrgUnit,
) -> impl Iterator<Item = (RoomId, OrgUnit)> + use<> {
    let mut path = String::new();
    let mut out = Vec::new();
    for unit in org.units() {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(unit);
        if let Ok(unit) = path.parse::<OrgUnit>() {
            out.push((RoomId::department(agency, &unit), unit));
        }
    }
    out.into_iter()
}

impl Carrier {
    /// Nothing carried yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns the department rooms of a certified device's org path; returns
    /// those new to the relay.
    pub fn learn_device(&mut self, agency: &AgencyId, device: &VerifiedDevice) -> Vec<RoomId> {
        if device.role == Role::Relay {
            return Vec::new();
        }
        let mut new = Vec::new();
        for (room, org) in department_rooms(agency, &device.subject.org_unit) {
            if self.know(room, Membership::Department(org)) == Ok(true) {
                new.push(room);
            }
        }
        new
    }

    /// Records `room` with `membership` (a proven kind replaces `Group`);
    /// `Ok(true)` if the room is new.
    fn know(&mut self, room: RoomId, membership: Membership) -> Result<bool, CarrierError> {
        if let Some(carried) = self.rooms.get_mut(&room) {
            if carried.membership == Membership::Group && membership != Membership::Group {
                carried.membership = membership;
            }
            return Ok(false);
        }
        if self.rooms.len() >= MAX_CARRIED_ROOMS {
            return Err(CarrierError::Full);
        }
        self.rooms.insert(
            room,
            Carried {
                membership,
                holders: BTreeSet::new(),
            },
        );
        Ok(true)
    }

    /// Takes a grant whose signature the caller checked, from `issuer`
    /// (its verified certificate); `known` finds the certificates of its
    /// recipients the relay has met. Returns whether the room is new here.
    pub fn learn_grant(
        &mut self,
        agency: &AgencyId,
        grant: &KeyGrant,
        issuer: &VerifiedDevice,
        known: impl Fn(&PublicKey) -> Option<VerifiedDevice>,
    ) -> Result<bool, CarrierError> {
        if issuer.role == Role::Relay {
            return Err(CarrierError::RelayIssuer);
        }
        let room = grant.body.room;
        let proven = self.prove(agency, room, issuer, grant, &known);
        let not_member = || CarrierError::NotMember {
            issuer: issuer.subject.user_id.clone(),
        };
        let issuer_key = issuer.device.public_key();
        let founded_here = RoomId::group_of(agency, &issuer_key, &grant.body.epoch.key_id) == room;
        let membership = match (self.rooms.get(&room).map(|c| &c.membership), proven) {
            (Some(Membership::Group) | None, Some(proven)) => proven,
            (Some(known), _) => known.clone(),
            (None, None) if founded_here => Membership::Group,
            (None, None) => {
                return Err(CarrierError::Unproven {
                    issuer: issuer.subject.user_id.clone(),
                });
            }
        };
        let admitted = match &membership {
            Membership::Department(org) => issuer.subject.org_unit.is_within(org),
            Membership::Direct(users) => users.contains(&issuer.subject.user_id),
            Membership::Group => {
                founded_here
                    || self
                        .rooms
                        .get(&room)
                        .is_some_and(|c| c.holders.contains(&issuer_key))
            }
        };
        if !admitted && membership == Membership::Group {
            return Err(CarrierError::Unproven {
                issuer: issuer.subject.user_id.clone(),
            });
        }
        if !admitted {
            return Err(not_member());
        }
        let founding = membership == Membership::Group && !self.rooms.contains_key(&room);
        if founding && self.founded.get(&issuer_key).copied().unwrap_or(0) >= MAX_GROUPS_PER_ISSUER
        {
            return Err(CarrierError::TooManyGroups {
                issuer: issuer.subject.user_id.clone(),
            });
        }
        let new = self.know(room, membership)?;
        if founding {
            *self.founded.entry(issuer_key).or_default() += 1;
        }
        if let Some(carried) = self.rooms.get_mut(&room) {
            if founded_here && carried.membership == Membership::Group {
                carried.holders.insert(issuer_key);
            }
            for device in grant.recipients() {
                if carried.holders.len() >= MAX_HOLDERS_PER_ROOM {
                    break;
                }
                carried.holders.insert(*device);
            }
        }
        Ok(new)
    }

    /// What the relay can prove about `room` from the grant's issuer and
    /// the recipients it knows.
    fn prove(
        &self,
        agency: &AgencyId,
        room: RoomId,
        issuer: &VerifiedDevice,
        grant: &KeyGrant,
        known: &impl Fn(&PublicKey) -> Option<VerifiedDevice>,
    ) -> Option<Membership> {
        if let Some((_, org)) =
            department_rooms(agency, &issuer.subject.org_unit).find(|(id, _)| *id == room)
        {
            return Some(Membership::Department(org));
        }
        let me = &issuer.subject.user_id;
        grant
            .recipients()
            .filter_map(known)
            .filter(|device| device.role != Role::Relay)
            .find_map(|device| {
                let other = &device.subject.user_id;
                (RoomId::direct(agency, me, other) == room).then(|| {
                    let mut users = [me.clone(), other.clone()];
                    users.sort();
                    Membership::Direct(users)
                })
            })
    }

    /// Whether `device` (certified, unrevoked: the caller checks) may fetch
    /// `room`.
    pub fn may_serve(&self, agency: &AgencyId, room: RoomId, device: &VerifiedDevice) -> bool {
        if device.role == Role::Relay {
            return false;
        }
        // A department's member is served whatever grants say.
        if department_rooms(agency, &device.subject.org_unit).any(|(id, _)| id == room) {
            return true;
        }
        let Some(carried) = self.rooms.get(&room) else {
            return false;
        };
        match &carried.membership {
            Membership::Department(_) => false,
            Membership::Direct(users) => users.contains(&device.subject.user_id),
            Membership::Group => carried.holders.contains(&device.device.public_key()),
        }
    }

    /// How many devices grants named for `room`.
    pub fn holders(&self, room: RoomId) -> usize {
        self.rooms.get(&room).map_or(0, |c| c.holders.len())
    }

    /// What the relay knows of `room`'s membership.
    pub fn membership(&self, room: RoomId) -> Option<&Membership> {
        self.rooms.get(&room).map(|c| &c.membership)
    }

    /// The rooms `device` may fetch.
    pub fn rooms_of(&self, agency: &AgencyId, device: &VerifiedDevice) -> Vec<RoomId> {
        self.rooms
            .keys()
            .copied()
            .filter(|room| self.may_serve(agency, *room, device))
            .collect()
    }

    /// Every room carried.
    pub fn rooms(&self) -> impl Iterator<Item = RoomId> + '_ {
        self.rooms.keys().copied()
    }

    /// How many rooms are carried.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether no room is carried.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::RoomKey;
    use crate::identity::{KeyPair, SeededEntropy};
    use crate::trust::Subject;

    const DIV: &str = "MOIS/Digital Government Bureau/Division 2";
    const AGENCY: AgencyId = AgencyId([3; 32]);

    struct World {
        entropy: SeededEntropy,
        devices: BTreeMap<PublicKey, VerifiedDevice>,
    }

    impl World {
        fn new() -> Self {
            World {
                entropy: SeededEntropy::new(7),
                devices: BTreeMap::new(),
            }
        }

        fn device(&mut self, user: &str, org: &str) -> (KeyPair, VerifiedDevice) {
            let key = KeyPair::generate(&mut self.entropy);
            let device = VerifiedDevice {
                device: key.device_id(),
                agency: AGENCY,
                subject: Subject {
                    user_id: user.into(),
                    display_name: user.into(),
                    org_unit: org.parse().expect("org"),
                },
                role: Role::Member,
                serial: 1,
                not_before: 0,
                not_after: u64::MAX,
                issued_by: "op".into(),
                issuer: key.public(),
                authority: None,
            };
            self.devices.insert(key.public(), device.clone());
            (key, device)
        }

        fn grant(
            &mut self,
            issuer: &KeyPair,
            room: RoomId,
            epoch: u64,
            to: &[&VerifiedDevice],
        ) -> KeyGrant {
            let key = RoomKey::generate(&mut self.entropy);
            let to: Vec<PublicKey> = to.iter().map(|d| d.device.public_key()).collect();
            let mut grants = KeyGrant::issue(issuer, room, epoch, &key, &to, 0).expect("grant");
            grants.remove(0)
        }

        /// A group `founder` creates, and its founding grant to `to`.
        fn found(
            &mut self,
            founder: &KeyPair,
            to: &[&VerifiedDevice],
        ) -> (RoomId, RoomKey, KeyGrant) {
            let key = RoomKey::generate(&mut self.entropy);
            let room = RoomId::group_of(&AGENCY, &founder.public(), &key.key_id());
            let to: Vec<PublicKey> = to.iter().map(|d| d.device.public_key()).collect();
            let grant = KeyGrant::issue(founder, room, 1, &key, &to, 0)
                .expect("grant")
                .remove(0);
            (room, key, grant)
        }

        fn learn(
            &self,
            carrier: &mut Carrier,
            grant: &KeyGrant,
            issuer: &VerifiedDevice,
        ) -> Result<bool, CarrierError> {
            carrier.learn_grant(&AGENCY, grant, issuer, |k| self.devices.get(k).cloned())
        }
    }

    #[test]
    fn a_forged_max_epoch_grant_neither_serves_its_author_nor_refuses_members() {
        let mut world = World::new();
        let (kim_key, kim) = world.device("kim", DIV);
        let (_, lee) = world.device("lee", DIV);
        let (mallory_key, mallory) = world.device("mallory", "MOIS/Audit Bureau");
        let department = RoomId::department(&AGENCY, &DIV.parse().expect("org"));
        let mut carrier = Carrier::new();
        let genuine = world.grant(&kim_key, department, 1, &[&kim, &lee]);
        world.learn(&mut carrier, &genuine, &kim).expect("genuine");
        // Mallory grants herself the division room at epoch u64::MAX.
        let forged = world.grant(&mallory_key, department, u64::MAX, &[&mallory]);
        assert!(matches!(
            world.learn(&mut carrier, &forged, &mallory),
            Err(CarrierError::NotMember { .. })
        ));
        assert!(!carrier.may_serve(&AGENCY, department, &mallory));
        assert!(carrier.may_serve(&AGENCY, department, &kim));
        assert!(carrier.may_serve(&AGENCY, department, &lee));
        // Even a forged grant learnt before any genuine one changes nothing.
        let mut early = Carrier::new();
        let _ = world.learn(&mut early, &forged, &mallory);
        world.learn(&mut early, &genuine, &kim).expect("genuine");
        assert!(!early.may_serve(&AGENCY, department, &mallory));
        assert!(early.may_serve(&AGENCY, department, &kim));
    }

    #[test]
    fn a_forged_grant_for_a_direct_room_does_not_serve_a_third_user() {
        let mut world = World::new();
        let (kim_key, kim) = world.device("kim", DIV);
        let (_, lee) = world.device("lee", "MOIS/Audit Bureau");
        let (_, kim_phone) = world.device("kim", DIV);
        let (mallory_key, mallory) = world.device("mallory", DIV);
        let direct = RoomId::direct(&AGENCY, "kim", "lee");
        let mut carrier = Carrier::new();
        // Mallory learns the id and names herself first.
        let forged = world.grant(&mallory_key, direct, u64::MAX, &[&mallory]);
        assert!(
            matches!(
                world.learn(&mut carrier, &forged, &mallory),
                Err(CarrierError::Unproven { .. })
            ),
            "unverifiable: not taken"
        );
        let genuine = world.grant(&kim_key, direct, 1, &[&kim, &lee, &kim_phone]);
        world.learn(&mut carrier, &genuine, &kim).expect("genuine");
        assert_eq!(
            carrier.membership(direct),
            Some(&Membership::Direct(["kim".into(), "lee".into()]))
        );
        for member in [&kim, &lee, &kim_phone] {
            assert!(carrier.may_serve(&AGENCY, direct, member));
        }
        assert!(!carrier.may_serve(&AGENCY, direct, &mallory));
        let again = world.grant(&mallory_key, direct, u64::MAX, &[&mallory]);
        assert!(world.learn(&mut carrier, &again, &mallory).is_err());
    }

    #[test]
    fn a_group_is_served_to_the_devices_its_key_lineage_named_and_a_later_grant_takes_nothing_away()
    {
        let mut world = World::new();
        let (kim_key, kim) = world.device("kim", DIV);
        let (lee_key, lee) = world.device("lee", DIV);
        let (mallory_key, mallory) = world.device("mallory", DIV);
        let (_, outsider) = world.device("oh", "MOIS/Audit Bureau");
        let (_, choi) = world.device("choi", DIV);
        let (group, _, first) = world.found(&kim_key, &[&lee]);
        let mut carrier = Carrier::new();
        assert_eq!(world.learn(&mut carrier, &first, &kim), Ok(true));
        assert!(carrier.may_serve(&AGENCY, group, &kim) && carrier.may_serve(&AGENCY, group, &lee));
        assert!(!carrier.may_serve(&AGENCY, group, &outsider));
        assert_eq!(carrier.holders(group), 2, "the founder and lee");
        // A member named by the lineage re-grants to a member it invited.
        let regrant = world.grant(&lee_key, group, 2, &[&choi]);
        assert_eq!(world.learn(&mut carrier, &regrant, &lee), Ok(false));
        assert!(carrier.may_serve(&AGENCY, group, &choi));
        // A certified non-member who learnt the id grants itself the group
        // at the highest epoch: unproven, it is not served, and nobody loses.
        let forged = world.grant(&mallory_key, group, u64::MAX, &[&mallory]);
        assert!(matches!(
            world.learn(&mut carrier, &forged, &mallory),
            Err(CarrierError::Unproven { .. })
        ));
        assert!(!carrier.may_serve(&AGENCY, group, &mallory));
        for member in [&kim, &lee, &choi] {
            assert!(carrier.may_serve(&AGENCY, group, member));
        }
        assert_eq!(carrier.rooms_of(&AGENCY, &kim), vec![group]);
        assert!(carrier.rooms_of(&AGENCY, &mallory).is_empty());
        // Nor can she claim to have founded it with a key of her own.
        let (own, _, _) = world.found(&mallory_key, &[&mallory]);
        assert_ne!(own, group);
        // A relay that meets her grant first takes nothing from it, and
        // takes the genuine lineage whatever the order it arrives in.
        let mut late = Carrier::new();
        assert!(world.learn(&mut late, &forged, &mallory).is_err());
        assert!(
            world.learn(&mut late, &regrant, &lee).is_err(),
            "lee not named yet"
        );
        assert_eq!(world.learn(&mut late, &first, &kim), Ok(true));
        assert_eq!(world.learn(&mut late, &regrant, &lee), Ok(false));
        assert!(late.may_serve(&AGENCY, group, &choi));
        assert!(!late.may_serve(&AGENCY, group, &mallory));
    }

    #[test]
    fn a_department_member_is_served_without_any_grant_and_relays_never_are() {
        let mut world = World::new();
        let (_, kim) = world.device("kim", DIV);
        let mut relay = world.device("relay", DIV).1;
        relay.role = Role::Relay;
        let carrier = Carrier::new();
        let bureau = RoomId::department(&AGENCY, &"MOIS".parse().expect("org"));
        assert!(
            carrier.may_serve(&AGENCY, bureau, &kim),
            "the top unit's room"
        );
        assert!(!carrier.may_serve(&AGENCY, bureau, &relay));
    }

    #[test]
    fn one_issuer_cannot_fill_the_relay_with_invented_groups() {
        let mut world = World::new();
        let (mallory_key, mallory) = world.device("mallory", DIV);
        let mut carrier = Carrier::new();
        let mut refused = 0;
        for _ in 0..(MAX_GROUPS_PER_ISSUER + 10) {
            let (_, _, grant) = world.found(&mallory_key, &[&mallory]);
            if world.learn(&mut carrier, &grant, &mallory).is_err() {
                refused += 1;
            }
        }
        // Ids she cannot have founded are not taken at all.
        let stray = world.grant(&mallory_key, RoomId([9; 32]), 1, &[&mallory]);
        assert!(matches!(
            world.learn(&mut carrier, &stray, &mallory),
            Err(CarrierError::Unproven { .. })
        ));
        assert_eq!(refused, 10);
        assert_eq!(carrier.len(), MAX_GROUPS_PER_ISSUER);
        // Department rooms of certified devices are still learnt.
        let (_, kim) = world.device("kim", DIV);
        assert_eq!(carrier.learn_device(&AGENCY, &kim).len(), 3);
    }
}
