//! Room identity and membership.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::identity::{Entropy, PublicKey};
use crate::trust::{AgencyId, OrgUnit, VerifiedDevice};

/// A room's id: derived for department and 1:1 rooms, random for groups.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoomId(pub [u8; 32]);

impl RoomId {
    /// The department room of `org` in `agency`: every device derives the same id.
    pub fn department(agency: &AgencyId, org: &OrgUnit) -> Self {
        Self::derive(agency, b"department", org.as_str().as_bytes())
    }

    /// The 1:1 room of two users (order does not matter).
    pub fn direct(agency: &AgencyId, a: &str, b: &str) -> Self {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        let mut name = first.as_bytes().to_vec();
        name.push(0);
        name.extend_from_slice(second.as_bytes());
        Self::derive(agency, b"direct", &name)
    }

    /// A fresh id for an ad-hoc group.
    pub fn group(entropy: &mut impl Entropy) -> Self {
        RoomId(entropy.array())
    }

    /// The id of the group `founder` (a device key) creates with its first
    /// key `first_key_id`: fresh (the key is), and bound to its founder, so
    /// a relay, which reads no definition, can tell the founder's grants of
    /// that key from anyone else's (audit H5, see [`crate::rooms::Carrier`]).
    pub fn group_of(agency: &AgencyId, founder: &PublicKey, first_key_id: &[u8; 16]) -> Self {
        let mut name = founder.0.to_vec();
        name.extend_from_slice(first_key_id);
        Self::derive(agency, b"group", &name)
    }

    fn derive(agency: &AgencyId, kind: &[u8], name: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("baro/room-id/v1");
        hasher.update(&agency.0);
        hasher.update(kind);
        hasher.update(&[0]);
        hasher.update(name);
        RoomId(*hasher.finalize().as_bytes())
    }

    /// Short form for listings and logs (first 6 bytes, hex).
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::str::FromStr for RoomId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| format!("'{s}' is not a room id (hex)"))?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(RoomId)
            .map_err(|_| format!("a room id is 64 hex characters, '{s}' has {}", s.len()))
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", self.short())
    }
}

/// What kind of room, and who belongs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomKind {
    /// Everyone at or under an org unit.
    Department {
        /// The org unit.
        org: OrgUnit,
    },
    /// Named members; admins may add and remove.
    Group {
        /// Member user ids.
        members: BTreeSet<String>,
        /// Admin user ids (always members).
        admins: BTreeSet<String>,
    },
    /// Two users.
    Direct {
        /// The two user ids, sorted.
        users: [String; 2],
    },
}

/// A room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// Its id.
    pub id: RoomId,
    /// Name shown to members (never sent in the clear: topic names are hashes).
    pub name: String,
    /// Kind and membership.
    pub kind: RoomKind,
    /// Version of a group's definition: raised by every change, so an older
    /// definition (a replay) is told apart from a newer one. Always 0 for
    /// department and 1:1 rooms, whose membership is derived.
    pub version: u64,
    /// The epoch number the definition was announced under: a definition
    /// is only valid sealed under that epoch, and never moves back to an
    /// older one. 0 until it is first announced.
    pub epoch: u64,
}

/// Why a room change is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// Only admins may change a group.
    #[error("{0} is not an admin of this group")]
    NotAdmin(String),
    /// The room's membership is derived, not edited.
    #[error("members of department and 1:1 rooms are not edited by hand")]
    Fixed,
    /// The user is not in the room.
    #[error("{0} is not a member of this room")]
    NotMember(String),
    /// The user is in the group already.
    #[error("{0} is already a member of this group")]
    AlreadyMember(String),
    /// The last admin cannot leave.
    #[error("the last admin cannot leave; make someone else admin first")]
    LastAdmin,
    /// A 1:1 room needs another valid user id.
    #[error("cannot open a 1:1 room with '{0}': give another official's user id")]
    BadPeer(String),
    /// The user is an admin already.
    #[error("{0} is already an admin of this group")]
    AlreadyAdmin(String),
    /// This device is already in a room of that name.
    #[error("you are already in a room named {0}: pick another name")]
    NameTaken(String),
    /// The definition's version cannot be raised any further.
    #[error("this group has been changed too often to change again: create a new group")]
    VersionExhausted,
}

impl Room {
    /// The department room of `org`.
    pub fn department(agency: &AgencyId, org: OrgUnit) -> Self {
        Room {
            id: RoomId::department(agency, &org),
            name: org.to_string(),
            kind: RoomKind::Department { org },
            version: 0,
            epoch: 0,
        }
    }

    /// The 1:1 room of `a` and `b`.
    pub fn direct(agency: &AgencyId, a: &str, b: &str) -> Self {
        let mut users = [a.to_string(), b.to_string()];
        users.sort();
        Room {
            id: RoomId::direct(agency, a, b),
            name: format!("{} & {}", users[0], users[1]),
            kind: RoomKind::Direct { users },
            version: 0,
            epoch: 0,
        }
    }

    /// A new group created by `creator` (its first admin) with `members`.
    pub fn group(
        name: &str,
        creator: &str,
        members: impl IntoIterator<Item = String>,
        entropy: &mut impl Entropy,
    ) -> Self {
        Self::group_with_id(RoomId::group(entropy), name, creator, members)
    }

    /// A new group with the given id (see [`RoomId::group_of`]) created by
    /// `creator` (its first admin) with `members`.
    pub fn group_with_id(
        id: RoomId,
        name: &str,
        creator: &str,
        members: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut all: BTreeSet<String> = members.into_iter().collect();
        all.insert(creator.to_string());
        Room {
            id,
            name: name.to_string(),
            kind: RoomKind::Group {
                members: all,
                admins: BTreeSet::from([creator.to_string()]),
            },
            version: 1,
            epoch: 0,
        }
    }

    /// Whether the certified device belongs to the room. Relays never do:
    /// they carry ciphertext and never hold a room key.
    pub fn admits(&self, device: &VerifiedDevice) -> bool {
        device.role != crate::trust::Role::Relay
            && self.has_member(&device.subject.user_id, &device.subject.org_unit)
    }

    /// Whether `user` (certified at `org`) is a member.
    pub fn has_member(&self, user: &str, org: &OrgUnit) -> bool {
        match &self.kind {
            RoomKind::Department { org: room_org } => org.is_within(room_org),
            RoomKind::Group { members, .. } => members.contains(user),
            RoomKind::Direct { users } => users.iter().any(|u| u == user),
        }
    }

    /// `admin` adds `user`; the current key is then wrapped to the user's devices.
    pub fn invite(&mut self, admin: &str, user: &str) -> Result<(), RoomError> {
        let next = self.next_version()?;
        let (members, admins) = self.group_mut()?;
        if !admins.contains(admin) {
            return Err(RoomError::NotAdmin(admin.to_string()));
        }
        if members.contains(user) {
            return Err(RoomError::AlreadyMember(user.to_string()));
        }
        members.insert(user.to_string());
        self.version = next;
        Ok(())
    }

    /// `admin` makes `user` (a member) an admin too.
    pub fn make_admin(&mut self, admin: &str, user: &str) -> Result<(), RoomError> {
        let next = self.next_version()?;
        let (members, admins) = self.group_mut()?;
        if !admins.contains(admin) {
            return Err(RoomError::NotAdmin(admin.to_string()));
        }
        if !members.contains(user) {
            return Err(RoomError::NotMember(user.to_string()));
        }
        if !admins.insert(user.to_string()) {
            return Err(RoomError::AlreadyAdmin(user.to_string()));
        }
        self.version = next;
        Ok(())
    }

    /// `admin` removes `user` (or a user leaves: `admin == user`); the room
    /// must then move to a new epoch the user never receives.
    pub fn remove(&mut self, admin: &str, user: &str) -> Result<(), RoomError> {
        let next = self.next_version()?;
        let (members, admins) = self.group_mut()?;
        if admin != user && !admins.contains(admin) {
            return Err(RoomError::NotAdmin(admin.to_string()));
        }
        if !members.contains(user) {
            return Err(RoomError::NotMember(user.to_string()));
        }
        if admins.contains(user) && admins.len() == 1 {
            return Err(RoomError::LastAdmin);
        }
        members.remove(user);
        admins.remove(user);
        self.version = next;
        Ok(())
    }

    /// Marks the definition as announced under epoch `number`: a definition
    /// moved to a new epoch is a new version (so two announcements of one
    /// version never differ).
    pub fn bind_to_epoch(&mut self, number: u64) -> Result<(), RoomError> {
        if !matches!(self.kind, RoomKind::Group { .. }) || self.epoch == number {
            return Ok(());
        }
        self.version = self.next_version()?;
        self.epoch = number;
        Ok(())
    }

    fn next_version(&self) -> Result<u64, RoomError> {
        self.version
            .checked_add(1)
            .ok_or(RoomError::VersionExhausted)
    }

    fn group_mut(&mut self) -> Result<(&mut BTreeSet<String>, &mut BTreeSet<String>), RoomError> {
        match &mut self.kind {
            RoomKind::Group { members, admins } => Ok((members, admins)),
            _ => Err(RoomError::Fixed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;

    fn org(s: &str) -> OrgUnit {
        s.parse().expect("org")
    }

    #[test]
    fn department_membership_follows_the_org_tree() {
        let agency = AgencyId([1; 32]);
        let room = Room::department(&agency, org("MOIS/Digital Government Bureau"));
        assert!(room.has_member("kim", &org("MOIS/Digital Government Bureau/Division 2")));
        assert!(room.has_member("lee", &org("MOIS/Digital Government Bureau")));
        assert!(!room.has_member("choi", &org("MOIS/Local Autonomy Office")));
        assert!(!room.has_member("park", &org("MOIS")));
        assert_eq!(
            room.id,
            RoomId::department(&agency, &org("MOIS/Digital Government Bureau"))
        );
    }

    #[test]
    fn direct_room_is_the_same_from_both_sides() {
        let agency = AgencyId([1; 32]);
        assert_eq!(
            Room::direct(&agency, "kim", "lee"),
            Room::direct(&agency, "lee", "kim")
        );
        let room = Room::direct(&agency, "kim", "lee");
        assert!(room.has_member("kim", &org("X")) && !room.has_member("choi", &org("X")));
    }

    #[test]
    fn only_admins_change_groups_and_the_last_admin_stays() {
        let mut room = Room::group(
            "Budget",
            "kim",
            ["lee".to_string()],
            &mut SeededEntropy::new(1),
        );
        assert_eq!(
            room.invite("lee", "choi"),
            Err(RoomError::NotAdmin("lee".into()))
        );
        room.invite("kim", "choi").expect("admin invites");
        assert!(room.has_member("choi", &org("X")));
        room.remove("choi", "choi").expect("members may leave");
        assert_eq!(
            room.remove("lee", "kim"),
            Err(RoomError::NotAdmin("lee".into()))
        );
        assert_eq!(room.remove("kim", "kim"), Err(RoomError::LastAdmin));
        let mut dept = Room::department(&AgencyId([0; 32]), org("MOIS"));
        assert_eq!(dept.invite("kim", "lee"), Err(RoomError::Fixed));
    }

    #[test]
    fn an_admin_hands_over_and_the_creator_can_then_leave() {
        let mut room = Room::group(
            "예산 검토",
            "kim",
            ["lee".to_string(), "choi".to_string()],
            &mut SeededEntropy::new(2),
        );
        let version = room.version;
        assert_eq!(
            room.make_admin("lee", "lee"),
            Err(RoomError::NotAdmin("lee".into())),
            "a member cannot make themselves admin"
        );
        assert_eq!(
            room.make_admin("kim", "park"),
            Err(RoomError::NotMember("park".into()))
        );
        assert_eq!(room.version, version, "a refused change changes nothing");
        room.make_admin("kim", "lee").expect("admin hands over");
        assert_eq!(room.version, version + 1);
        assert_eq!(
            room.make_admin("kim", "lee"),
            Err(RoomError::AlreadyAdmin("lee".into()))
        );
        room.remove("kim", "kim").expect("no longer the last admin");
        room.remove("lee", "choi").expect("the new admin removes");
        assert_eq!(room.remove("lee", "lee"), Err(RoomError::LastAdmin));
        let mut direct = Room::direct(&AgencyId([0; 32]), "kim", "lee");
        assert_eq!(direct.make_admin("kim", "lee"), Err(RoomError::Fixed));
    }
}
