//! The messaging state machine of one device: which rooms it is in, which
//! epoch keys it holds, which devices it knows, and what to do with each
//! envelope and key grant that arrives.
//!
//! Pure: inputs are certificates, grants, envelopes, time and randomness;
//! outputs are decisions (deliver, hold until the key arrives, ignore a
//! duplicate, reject) and things to publish (grants, envelopes). The node
//! persists and sends; simulations drive it directly.
//!
//! Room state only moves forward, and only on authority this device can
//! check (audit C1, C2, H4, M2, M3):
//! - a group definition is taken only from an admin, with a version above
//!   the one held and sealed under the epoch it names ([`Room::version`],
//!   [`Room::epoch`]); an older one (a replay) is refused;
//! - an epoch is learned only from a grant by a device allowed to grant in
//!   the room that opens to this device's key, at most
//!   [`super::MAX_EPOCH_STEP`] above the newest held; an envelope naming an
//!   epoch not held waits, and teaches nothing;
//! - once a revocation is known here, everything its device signs is
//!   refused, whatever time it claims: its clock is not evidence;
//! - once a revocation is known here, its rooms move past every epoch the
//!   revoked device introduced or could know (below);
//! - a device holding no key takes a room's first grant at any number, but
//!   only provisionally ([`super::EpochState`]): the epoch two other
//!   members show wins over a lone one far from it;
//! - only devices this device granted to, or that showed they hold a key
//!   (a grant that opened here, an envelope that decrypted), are spared a
//!   grant; what others' grants claim only helps choose who grants;
//! - what waits (envelopes of epochs or rooms not known yet, grants too
//!   far ahead) is bounded per room and per sender, and is re-read only
//!   when what it waits for arrives.
//!
//! Moving past a revoked device (audit C1). For each room, this device
//! remembers the revoked devices that were in it (at most
//! [`MAX_DEPARTED_PER_ROOM`], oldest forgotten first). Every epoch key
//! carries, in its grants, its creator's signed [`EpochOrigin`]: the
//! revoked devices of the room the creator knew of, and left out, when it
//! made the key. Here, the room's current epoch *settles* the room only if
//! - its origin is known and verifies, and its creator is a device known
//!   here that is allowed to grant in the room and not revoked;
//! - the origin lists every revoked device this device remembers for the
//!   room (so a key made by a member that had not heard of a revocation,
//!   and that wrapped it to the revoked device, does not count);
//! - and it is not *tainted*: no grant of it seen here (from an authorised
//!   granter, whose signature verified) wraps it to a revoked device, and
//!   no grant of it from a revoked device opened here.
//!
//! Otherwise the room is due a rotation, made by this device before the
//! next message it sends there (in a group, only by an admin); the new
//! epoch's origin names every revoked device remembered, so it settles the
//! room here and on every device that knows no other revocation. A
//! re-grant of the revoked device's own last key carries its origin (its
//! creator revoked) or none: it does not settle. A grant arriving later
//! that taints the current epoch, or names another revoked device, makes
//! the room due again. Concurrent rotations resolve as any others
//! ([`super::EpochState::current`]); each settles the room on every device
//! whose remembered revocations its origin covers, so devices that know of
//! more revocations rotate once more and everyone converges (a device also
//! remembers the revoked devices an origin it verified lists, if it knows
//! of their revocation, so two lists grow into one). The decision
//! uses only signatures this device verified and what it saw itself.
//! Origins are not persisted: after a restart, a re-grant carries none, and
//! a room still due (persisted) rotates at its next message.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    CORROBORATION, EpochOrigin, EpochRef, EpochRefusal, EpochState, KeyGrant, LookupError,
    MAX_EXCLUDED_PER_ORIGIN, MAX_WRAPS_PER_GRANT, Room, RoomError, RoomId,
};
use crate::crypto::RoomKey;
use crate::identity::{DeviceId, Entropy, KeyPair, PublicKey, Verifier};
use crate::sync::{Dedup, Hlc};
use crate::trust::{AgencyId, OrgUnit, VerifiedDevice};
use crate::wire::{Content, Envelope, EnvelopeError, MAX_RECEIPT_IDS, ReceiptState};

/// Envelopes held per room while their epoch key has not arrived.
pub const MAX_PENDING_PER_ROOM: usize = 1024;
/// Of those, at most this many from one sender (so one member cannot push
/// everyone else's out).
pub const MAX_PENDING_PER_SENDER: usize = 64;
/// Envelopes held from devices not met yet, in all rooms together.
pub const MAX_UNVERIFIED: usize = 1024;
/// Of those, at most this many naming one sender (anyone can name a key
/// nobody has met: one such name must not crowd out the others).
pub const MAX_UNVERIFIED_PER_SENDER: usize = 256;
/// Grants held per room because their epoch is too far ahead of the newest
/// key held (two per issuer); tried again whenever a key arrives.
pub const MAX_EARLY_GRANTS_PER_ROOM: usize = 16;
/// Rooms not known here yet whose keys or envelopes are held (an
/// invitation whose grant and definition have not both arrived).
pub const MAX_ORPHAN_ROOMS: usize = 64;
/// Of those, at most this many first named by one device.
pub const MAX_ORPHAN_ROOMS_PER_SENDER: usize = 4;
/// Envelopes held per orphan room (a quarter of them per sender).
pub const MAX_ORPHAN_ENVELOPES_PER_ROOM: usize = 16;
/// Devices remembered per epoch as holding its key (or claimed to).
pub const MAX_HOLDERS_PER_EPOCH: usize = 8192;
/// Revoked devices remembered per room, to move past every epoch they may
/// know (the oldest is forgotten first).
pub const MAX_DEPARTED_PER_ROOM: usize = MAX_EXCLUDED_PER_ORIGIN;
/// Epochs remembered per room as known to a revoked device.
const MAX_TAINTED_PER_ROOM: usize = 64;
/// Message ids remembered for de-duplication.
pub const SEEN_CAPACITY: usize = 100_000;
/// How many key holders hand a room's key to a newly met member: a few,
/// not all (in a department of N devices, N holders granting to each
/// newcomer made key distribution grow as N², found by the 500-node
/// simulation). Peers the newcomer connects to grant it directly as well.
pub const GRANTERS_PER_DEVICE: usize = 2;
/// Receipts are exchanged in rooms of at most this many member devices; in
/// larger rooms (a big department) every member would carry every member's
/// receipt for every message.
pub const RECEIPT_ROOM_LIMIT: usize = 64;

/// A decrypted message, ready to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Content-addressed id.
    pub id: [u8; 32],
    /// The room.
    pub room: RoomId,
    /// The sending device.
    pub sender: DeviceId,
    /// The sender's user id.
    pub sender_user: String,
    /// The sender's display name.
    pub sender_name: String,
    /// When it was written.
    pub timestamp: Hlc,
    /// What it says.
    pub content: Content,
    /// The envelope it came in, as stored.
    pub envelope: Envelope,
}

/// What became of an incoming envelope.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and readable.
    Deliver(Box<Message>),
    /// Valid, but this device does not (yet) hold the epoch key: kept until a
    /// grant arrives. A device outside the room stays here forever.
    Held,
    /// From a device this one has not met yet, so its signature cannot be
    /// checked: kept (bounded) until the sender's certificate arrives, and
    /// not passed on meanwhile.
    Unverified,
    /// Seen before.
    Duplicate,
    /// Not taken now: the bounded buffer it would wait in is full. Nothing
    /// about it is recorded here, so it is asked for again (sync) and
    /// taken once there is room, or once it can be read at once. Never
    /// penalised, not passed on.
    Later,
    /// Invalid: the forwarding peer should be penalised.
    Reject(String),
    /// Not taken here because of this device's own state (the group or
    /// room definition it holds), which an honest forwarder may not share:
    /// not penalised (audit M4).
    Defer(String),
}

/// Why a local request cannot be done.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessengerError {
    /// No such room here.
    #[error("unknown room {0}")]
    UnknownRoom(String),
    /// This device has no key for the room's current epoch.
    #[error("this device holds no key for the room yet: wait for a member to share it")]
    NoKey,
    /// The room change is not allowed.
    #[error(transparent)]
    Room(#[from] RoomError),
    /// The room's epoch numbers are used up (never in practice: every step
    /// is an authorised rotation, at most [`super::MAX_EPOCH_STEP`] at once).
    #[error("this room cannot move to a new key any more: create a new room")]
    EpochsExhausted,
    /// The message cannot be built.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

#[derive(Debug)]
struct RoomState {
    room: Room,
    epochs: EpochState,
    keys: BTreeMap<(u64, [u8; 16]), RoomKey>,
    /// Devices known to hold each epoch's key: granted it by this device,
    /// or shown it (a grant of theirs opened here, an envelope of theirs
    /// decrypted). Only these are spared a grant.
    holders: BTreeMap<EpochRef, BTreeSet<PublicKey>>,
    /// Devices others' grants say they wrapped each epoch's key to:
    /// unchecked, so used only to choose who grants to a newcomer.
    claimed: BTreeMap<EpochRef, BTreeSet<PublicKey>>,
    /// Envelopes of epochs whose key is not held (yet).
    pending: Vec<Envelope>,
    /// Grants of epochs too far ahead of the newest key held.
    early: Vec<KeyGrant>,
    /// Revoked devices that were in the room, oldest first (at most
    /// [`MAX_DEPARTED_PER_ROOM`]).
    departed: Vec<PublicKey>,
    /// Verified origins of the held epochs still handed out.
    origins: BTreeMap<EpochRef, EpochOrigin>,
    /// Epochs a revoked device may know (at most [`MAX_TAINTED_PER_ROOM`]).
    tainted: BTreeSet<EpochRef>,
    /// A rotation due before a restart (persisted): made whatever the
    /// current epoch, whose origin is not known any more.
    forced: bool,
}

/// How an epoch key came to be held.
#[derive(Clone, Copy, Debug)]
enum Taken<'a> {
    /// Generated here.
    Created,
    /// Granted by this device.
    Granted(&'a PublicKey),
    /// Granted by [`CORROBORATION`] devices while nothing was firm here.
    Corroborated,
    /// Loaded from storage.
    Restored,
}

impl RoomState {
    fn new(room: Room) -> Self {
        RoomState {
            room,
            epochs: EpochState::default(),
            keys: BTreeMap::new(),
            holders: BTreeMap::new(),
            claimed: BTreeMap::new(),
            pending: Vec::new(),
            early: Vec::new(),
            departed: Vec::new(),
            origins: BTreeMap::new(),
            tainted: BTreeSet::new(),
            forced: false,
        }
    }

    /// Remembers that revoked `device` was in the room.
    fn depart(&mut self, device: PublicKey) {
        if self.departed.contains(&device) {
            return;
        }
        if self.departed.len() >= MAX_DEPARTED_PER_ROOM {
            self.departed.remove(0);
        }
        self.departed.push(device);
    }

    /// Remembers that a revoked device may know `epoch`.
    fn taint(&mut self, epoch: EpochRef) {
        self.tainted.insert(epoch);
        if self.tainted.len() > MAX_TAINTED_PER_ROOM {
            self.tainted.pop_first();
        }
    }

    /// Whether the current epoch is one every remembered revoked device
    /// is known to lack (see the module docs).
    fn settled(
        &self,
        directory: &BTreeMap<PublicKey, VerifiedDevice>,
        revoked: &BTreeSet<PublicKey>,
    ) -> bool {
        if self.forced {
            return false;
        }
        if self.departed.is_empty() {
            return true;
        }
        let Some(current) = self.epochs.current() else {
            return true;
        };
        !self.tainted.contains(&current)
            && self.origins.get(&current).is_some_and(|origin| {
                // Its creator's authority is checked now: its certificate
                // may have arrived after the grant.
                directory
                    .get(&origin.creator)
                    .is_some_and(|creator| may_grant(&self.room, creator, revoked))
                    && self.departed.iter().all(|d| origin.excluded.contains(d))
            })
    }

    /// Takes `key` for `epoch` (checked by the caller, or restored);
    /// forgets whatever the size bound pushes out.
    fn hold_key(&mut self, epoch: EpochRef, key: RoomKey, how: Taken) -> Result<(), EpochRefusal> {
        let forgotten = match how {
            Taken::Created => self.epochs.learn(epoch, None)?,
            Taken::Granted(granter) => self.epochs.learn(epoch, Some(granter))?,
            Taken::Corroborated => self.epochs.learn_corroborated(epoch)?,
            Taken::Restored => self.epochs.restore(epoch),
        };
        self.keys.insert((epoch.number, epoch.key_id), key);
        if let Some(old) = forgotten {
            self.keys.remove(&(old.number, old.key_id));
        }
        // Who holds what matters only for the keys still handed out.
        if let Some(current) = self.epochs.current() {
            self.holders.retain(|e, _| e.number >= current.number);
            self.claimed.retain(|e, _| e.number >= current.number);
            self.origins.retain(|e, _| e.number >= current.number);
        }
        Ok(())
    }

    fn note_holders<'a>(
        &mut self,
        epoch: EpochRef,
        devices: impl IntoIterator<Item = &'a PublicKey>,
    ) {
        note(self.holders.entry(epoch).or_default(), devices);
    }

    fn note_claims<'a>(
        &mut self,
        epoch: EpochRef,
        devices: impl IntoIterator<Item = &'a PublicKey>,
    ) {
        if self.epochs.holds(&epoch) {
            note(self.claimed.entry(epoch).or_default(), devices);
        }
    }

    fn holds(&self, epoch: &EpochRef, device: &PublicKey) -> bool {
        self.holders.get(epoch).is_some_and(|h| h.contains(device))
    }

    /// Holds an envelope of an epoch not held yet, within the bounds;
    /// whether it was held (if not, it is left to be fetched again).
    fn hold_pending(&mut self, envelope: Envelope) -> bool {
        let sender = envelope.body.header.sender;
        let from_sender = self
            .pending
            .iter()
            .filter(|e| e.body.header.sender == sender)
            .count();
        let fits =
            self.pending.len() < MAX_PENDING_PER_ROOM && from_sender < MAX_PENDING_PER_SENDER;
        if fits {
            self.pending.push(envelope);
        }
        fits
    }

    /// Holds a grant too far ahead, within the bounds (the same grant once).
    fn hold_early(&mut self, grant: &KeyGrant) {
        let from_issuer = self
            .early
            .iter()
            .filter(|g| g.issuer == grant.issuer)
            .count();
        if self.early.len() < MAX_EARLY_GRANTS_PER_ROOM
            && from_issuer < MAX_EARLY_GRANTS_PER_ROOM / 8
            && !self.early.contains(grant)
        {
            self.early.push(grant.clone());
        }
    }

    /// Every key held for the current epoch number: the winner and any
    /// concurrent sibling (devices that rotated at once while apart; their
    /// messages, arriving later by sync, need the sibling's key).
    /// None while the held epochs conflict ([`EpochState::conflicted`]):
    /// a device misled by a lone epoch does not pass it on.
    fn current_keys(&self) -> Vec<(EpochRef, RoomKey)> {
        let Some(current) = self.epochs.current() else {
            return Vec::new();
        };
        if self.epochs.conflicted() {
            return Vec::new();
        }
        self.keys
            .iter()
            .filter(|((number, _), _)| *number == current.number)
            .map(|(&(number, key_id), key)| (EpochRef { number, key_id }, key.clone()))
            .collect()
    }

    fn current_key(&self) -> Option<(EpochRef, &RoomKey)> {
        let epoch = self.epochs.current()?;
        self.keys
            .get(&(epoch.number, epoch.key_id))
            .map(|k| (epoch, k))
    }
}

/// What is held for a room this device does not know yet.
#[derive(Debug)]
struct Orphan {
    /// The device whose grant or envelope first named the room.
    opened_by: PublicKey,
    /// When it was opened (by [`Messenger::orphan_counter`]).
    opened: u64,
    /// Keys granted to this device, with their issuers (checked against
    /// the definition once it is read).
    keys: Vec<(EpochRef, RoomKey, PublicKey)>,
    envelopes: Vec<Envelope>,
}

/// Adds `devices` to `set`, up to [`MAX_HOLDERS_PER_EPOCH`].
fn note<'a>(set: &mut BTreeSet<PublicKey>, devices: impl IntoIterator<Item = &'a PublicKey>) {
    for device in devices {
        if set.len() >= MAX_HOLDERS_PER_EPOCH {
            return;
        }
        set.insert(*device);
    }
}

/// One device's messaging state.
#[derive(Debug)]
pub struct Messenger {
    me: KeyPair,
    my_cert: VerifiedDevice,
    agency: AgencyId,
    directory: BTreeMap<PublicKey, VerifiedDevice>,
    /// Parsed keys of the devices in `directory`.
    verifiers: BTreeMap<PublicKey, Verifier>,
    rooms: BTreeMap<RoomId, RoomState>,
    seen: Dedup<[u8; 32]>,
    clock: Hlc,
    unsaved_keys: Vec<(RoomId, EpochRef, RoomKey)>,
    unsaved_rooms: BTreeSet<RoomId>,
    /// Keys and envelopes of rooms this device does not know yet (an
    /// invitation whose grant and definition have not both arrived).
    orphans: BTreeMap<RoomId, Orphan>,
    /// Counts orphan rooms as they are opened, so the oldest goes first.
    orphan_counter: u64,
    /// Envelopes from devices not met yet, oldest first (bounded: past
    /// the bound new ones are not taken, see [`Verdict::Later`]).
    unverified: Vec<Envelope>,
    left: BTreeSet<RoomId>,
    rotations: BTreeSet<RoomId>,
    /// Held envelopes that became readable as a side effect of another input.
    late: Vec<Message>,
    /// Revoked devices: whatever they sign is refused from the moment the
    /// revocation is known here (their own clock is not evidence).
    revoked: BTreeSet<PublicKey>,
    /// Rooms due a rotation here (their current epoch does not settle
    /// them: see the module docs), with the epoch number current when they
    /// became due; the next message sent there first moves the room on.
    /// Kept in step with each room's state by [`Messenger::refresh_due`],
    /// and persisted by the caller.
    rotation_due: BTreeMap<RoomId, u64>,
    unsaved_due: BTreeSet<RoomId>,
    /// Grants made by a rotation inside [`Messenger::send`], to publish.
    unsent_grants: Vec<KeyGrant>,
}

impl Messenger {
    /// The state of device `me` (certified as `my_cert`), already in the
    /// department rooms of its own org unit and every unit above it.
    pub fn new(me: KeyPair, my_cert: VerifiedDevice) -> Self {
        let agency = my_cert.agency;
        let mut messenger = Messenger {
            me,
            agency,
            directory: BTreeMap::new(),
            verifiers: BTreeMap::new(),
            rooms: BTreeMap::new(),
            seen: Dedup::new(SEEN_CAPACITY),
            clock: Hlc::default(),
            my_cert: my_cert.clone(),
            unsaved_keys: Vec::new(),
            unsaved_rooms: BTreeSet::new(),
            orphans: BTreeMap::new(),
            orphan_counter: 0,
            unverified: Vec::new(),
            left: BTreeSet::new(),
            rotations: BTreeSet::new(),
            late: Vec::new(),
            revoked: BTreeSet::new(),
            rotation_due: BTreeMap::new(),
            unsaved_due: BTreeSet::new(),
            unsent_grants: Vec::new(),
        };
        let mut path = String::new();
        // A relay is in no room: it only carries ciphertext.
        let units = if my_cert.role == crate::trust::Role::Relay {
            Vec::new()
        } else {
            my_cert.subject.org_unit.units().collect()
        };
        for unit in units {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(unit);
            if let Ok(org) = path.parse::<OrgUnit>() {
                messenger.add_room(Room::department(&agency, org));
            }
        }
        messenger.remember(my_cert);
        messenger
    }

    /// This device's user id.
    pub fn user(&self) -> &str {
        &self.my_cert.subject.user_id
    }

    /// Rooms this device is in, by name.
    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.values().map(|state| &state.room)
    }

    /// Adds a room this device belongs to (ignored if already known).
    pub fn add_room(&mut self, room: Room) {
        if !self.rooms.contains_key(&room.id) {
            self.unsaved_rooms.insert(room.id);
            self.rooms.insert(room.id, RoomState::new(room));
        }
    }

    /// Replaces a room's definition (a group's new membership).
    pub fn update_room(&mut self, room: Room) {
        self.unsaved_rooms.insert(room.id);
        match self.rooms.get_mut(&room.id) {
            Some(state) => state.room = room,
            None => {
                self.rooms.insert(room.id, RoomState::new(room));
            }
        }
    }

    /// The room with `id`.
    pub fn room(&self, id: RoomId) -> Option<&Room> {
        self.rooms.get(&id).map(|s| &s.room)
    }

    /// Restores an epoch key loaded from storage (checked when it arrived).
    pub fn restore_key(&mut self, room: RoomId, epoch: EpochRef, key: RoomKey) {
        if let Some(state) = self.rooms.get_mut(&room) {
            let _ = state.hold_key(epoch, key, Taken::Restored);
        }
    }

    /// Remembers a message id seen in an earlier run.
    pub fn mark_seen(&mut self, id: [u8; 32]) {
        self.seen.insert(id);
    }

    /// Keys learned since the last call, for the caller to persist.
    pub fn take_new_keys(&mut self) -> Vec<(RoomId, EpochRef, RoomKey)> {
        std::mem::take(&mut self.unsaved_keys)
    }

    /// Rooms added or changed since the last call, for the caller to persist.
    pub fn take_changed_rooms(&mut self) -> Vec<Room> {
        let ids = std::mem::take(&mut self.unsaved_rooms);
        ids.iter()
            .filter_map(|id| self.room(*id).cloned())
            .collect()
    }

    /// Opens (creating it here if new) the 1:1 room with `user`; the other
    /// side gets it with the first key grant.
    pub fn open_direct(&mut self, user: &str) -> Result<RoomId, MessengerError> {
        if user == self.user() || crate::trust::validate_user_id(user).is_err() {
            return Err(RoomError::BadPeer(user.to_string()).into());
        }
        let room = Room::direct(&self.agency, self.user(), user);
        let id = room.id;
        self.add_room(room);
        Ok(id)
    }

    /// Looks a room up by what a user typed (see [`super::lookup`]);
    /// `@USER` names the 1:1 room with USER, if it exists here.
    pub fn find_room(&self, name_or_id: &str) -> Result<RoomId, LookupError> {
        if let Some(user) = name_or_id.strip_prefix('@') {
            let id = RoomId::direct(&self.agency, self.user(), user);
            return if self.rooms.contains_key(&id) {
                Ok(id)
            } else {
                Err(LookupError::NotFound(name_or_id.to_string()))
            };
        }
        super::lookup::find(self.rooms.values().map(|s| &s.room), name_or_id)
    }

    /// Refuses a new group named like a room this device is already in:
    /// the name would then find neither (finding 4).
    pub fn check_new_group_name(&self, name: &str) -> Result<(), RoomError> {
        match self.rooms().find(|room| room.name == name) {
            Some(room) => Err(RoomError::NameTaken(super::lookup::describe(room))),
            None => Ok(()),
        }
    }

    /// `admin` (this device's user) makes `user`, a member, an admin of a
    /// group too; the caller announces the new definition, which members
    /// take only because an admin signed it.
    pub fn make_admin(&mut self, room: RoomId, user: &str) -> Result<(), MessengerError> {
        let me = self.my_cert.subject.user_id.clone();
        let state = self.rooms.get_mut(&room).ok_or_else(|| unknown(room))?;
        state.room.make_admin(&me, user)?;
        self.unsaved_rooms.insert(room);
        Ok(())
    }

    /// Records a certified device; returns grants of current keys for the
    /// rooms it belongs to that this device can share and nobody has yet.
    pub fn learn_device(&mut self, device: VerifiedDevice, now: u64) -> Vec<KeyGrant> {
        if device.agency != self.agency {
            return Vec::new();
        }
        let key = device.device.public_key();
        let known = self.directory.contains_key(&key);
        let unchanged = self.directory.get(&key) == Some(&device);
        self.remember(device);
        if !known && self.revoked.contains(&key) {
            // Revoked before we met it: others may have let it into our rooms.
            self.schedule_rotations(key);
        }
        if !known {
            // What it wrote before we met it can be checked now.
            let (theirs, others): (Vec<Envelope>, Vec<Envelope>) =
                std::mem::take(&mut self.unverified)
                    .into_iter()
                    .partition(|e| e.body.header.sender == key);
            self.unverified = others;
            for envelope in theirs {
                if let Verdict::Deliver(message) = self.receive(envelope, now.saturating_mul(1000))
                {
                    self.late.push(*message);
                }
            }
        }
        if unchanged {
            // Nothing this device could be granted changed: every control
            // frame names its author, and scanning every room's members
            // for each one was quadratic per node.
            return Vec::new();
        }
        self.grants_for_missing(now, Some(&key))
    }

    /// Keeps `device`'s certificate unless a newer one of the same key is
    /// known: someone who moved to another org unit or role keeps their
    /// key, and presenting the old certificate again must not put them
    /// back in their old department (audit M12).
    fn remember(&mut self, device: VerifiedDevice) {
        let key = device.device.public_key();
        if let Some(known) = self.directory.get(&key)
            && (known.not_before, known.serial) > (device.not_before, device.serial)
        {
            return;
        }
        if let Some(verifier) = key.verifier() {
            self.verifiers.insert(key, verifier);
        }
        self.directory.insert(key, device);
    }

    /// Grants of the current keys this device may share to `device` (a peer
    /// that just started listening on the control topic).
    ///
    /// Keys this device granted it, or that it showed it holds, are left
    /// out. Where only someone else's grant claims it (unchecked: it may
    /// wrap junk, audit M3), it is granted by the few holders chosen for it
    /// ([`GRANTERS_PER_DEVICE`]), not by every connected holder: a grant it
    /// missed reaches it by reconciliation, and every connected holder
    /// re-granting every key to every peer that subscribes flooded the
    /// whole agency (found by the simulations).
    pub fn grants_for(&mut self, device: &PublicKey, now: u64) -> Vec<KeyGrant> {
        let Some(recipient) = self.directory.get(device).cloned() else {
            return Vec::new();
        };
        if self.revoked.contains(device) {
            return Vec::new();
        }
        let me = self.me.public();
        let mut out = Vec::new();
        for state in self.rooms.values_mut() {
            if !admits(&state.room, &recipient, &self.revoked)
                || !may_grant(&state.room, &self.my_cert, &self.revoked)
            {
                continue;
            }
            for (epoch, key) in state.current_keys() {
                if state.holds(&epoch, device) {
                    continue;
                }
                let claimed = state
                    .claimed
                    .get(&epoch)
                    .is_some_and(|c| c.contains(device));
                if claimed {
                    let (directory, revoked) = (&self.directory, &self.revoked);
                    let empty = BTreeSet::new();
                    let holders = state.holders.get(&epoch).unwrap_or(&empty);
                    // Only devices that may grant here are counted (a plain
                    // group member holds the key but never grants it).
                    let known = holders
                        .union(state.claimed.get(&epoch).unwrap_or(&empty))
                        .filter(|h| {
                            directory
                                .get(h)
                                .is_some_and(|d| may_grant(&state.room, d, revoked))
                        });
                    if !granter_of(state.room.id, device, known, &me) {
                        continue;
                    }
                }
                if let Ok(grants) = KeyGrant::issue_with_origin(
                    &self.me,
                    state.room.id,
                    epoch.number,
                    &key,
                    &[*device],
                    state.origins.get(&epoch),
                    now,
                ) {
                    state.note_holders(epoch, [device]);
                    out.extend(grants);
                }
            }
        }
        out
    }

    /// Creates an ad-hoc group with `members` (user ids); this device holds
    /// its first key and grants it to every known device of every member.
    pub fn create_group(
        &mut self,
        name: &str,
        members: impl IntoIterator<Item = String>,
        now: u64,
        entropy: &mut impl Entropy,
    ) -> (RoomId, Vec<KeyGrant>) {
        // The id is bound to this device and the group's first key, so
        // relays can verify its founder's grants (audit H5).
        let key = RoomKey::generate(entropy);
        let id = RoomId::group_of(&self.agency, &self.me.public(), &key.key_id());
        let room = Room::group_with_id(id, name, &self.my_cert.subject.user_id.clone(), members);
        self.add_room(room);
        let grants = self.rotate_to(id, key, now).unwrap_or_default();
        (id, grants)
    }

    /// Starts a new epoch in `room` whose key goes only to current member
    /// devices (after a removal, or to seed a room no one has a key for).
    pub fn rotate(
        &mut self,
        room: RoomId,
        now: u64,
        entropy: &mut impl Entropy,
    ) -> Result<Vec<KeyGrant>, MessengerError> {
        self.rotate_to(room, RoomKey::generate(entropy), now)
    }

    /// [`Messenger::rotate`] to the given fresh `key`.
    fn rotate_to(
        &mut self,
        room: RoomId,
        key: RoomKey,
        now: u64,
    ) -> Result<Vec<KeyGrant>, MessengerError> {
        let members = self.member_devices(room)?;
        let me = self.me.public();
        let state = self.rooms.get_mut(&room).ok_or_else(|| unknown(room))?;
        let number = state
            .epochs
            .next_number()
            .ok_or(MessengerError::EpochsExhausted)?;
        let epoch = EpochRef {
            number,
            key_id: key.key_id(),
        };
        state
            .hold_key(epoch, key.clone(), Taken::Created)
            .map_err(|_| MessengerError::EpochsExhausted)?;
        // Made past every revocation known here: says so, signed.
        let origin = EpochOrigin::sign(&self.me, room, epoch, state.departed.clone());
        let grants =
            KeyGrant::issue_with_origin(&self.me, room, number, &key, &members, Some(&origin), now)
                .unwrap_or_default();
        state.origins.insert(epoch, origin);
        state.forced = false;
        self.unsaved_keys.push((room, epoch, key));
        state.note_holders(epoch, members.iter().chain([&me]));
        self.refresh_due(room);
        Ok(grants)
    }

    /// `admin` (this device's user) removes `user` from a group; the room
    /// moves to a new epoch the removed user's devices never receive.
    pub fn remove_member(
        &mut self,
        room: RoomId,
        user: &str,
        now: u64,
        entropy: &mut impl Entropy,
    ) -> Result<Vec<KeyGrant>, MessengerError> {
        let me = self.my_cert.subject.user_id.clone();
        let state = self.rooms.get_mut(&room).ok_or_else(|| unknown(room))?;
        state.room.remove(&me, user)?;
        self.unsaved_rooms.insert(room);
        self.rotate(room, now, entropy)
    }

    /// This device's user leaves a group: the new definition (without us) is
    /// returned to announce under the current key, then the room is dropped
    /// here. The group's admins move it to a new key when they see it.
    pub fn leave(
        &mut self,
        room: RoomId,
        now_ms: u64,
        entropy: &mut impl Entropy,
    ) -> Result<Envelope, MessengerError> {
        let me = self.my_cert.subject.user_id.clone();
        let state = self.rooms.get_mut(&room).ok_or_else(|| unknown(room))?;
        let current = state.epochs.current().ok_or(MessengerError::NoKey)?;
        let mut definition = state.room.clone();
        definition.remove(&me, &me)?;
        definition.bind_to_epoch(current.number)?;
        let envelope = self.send(room, &Content::RoomState(definition), now_ms, entropy)?;
        self.rooms.remove(&room);
        self.unsaved_rooms.remove(&room);
        self.left.insert(room);
        Ok(envelope)
    }

    /// Held messages that became readable as a side effect of another input
    /// (a room adopted with its definition), for the caller to store and show.
    pub fn take_late_deliveries(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.late)
    }

    /// Every certified device known here.
    pub fn devices(&self) -> impl Iterator<Item = &VerifiedDevice> {
        self.directory.values()
    }

    /// The certified device with `key`, if known.
    pub fn device(&self, key: &PublicKey) -> Option<&VerifiedDevice> {
        self.directory.get(key)
    }

    /// Rooms left since the last call, for the caller to forget.
    pub fn take_left_rooms(&mut self) -> Vec<RoomId> {
        std::mem::take(&mut self.left).into_iter().collect()
    }

    /// Groups this device (an admin) must move to a new key because someone
    /// left; drained by the caller, who rotates and announces.
    pub fn take_rotations(&mut self) -> Vec<RoomId> {
        std::mem::take(&mut self.rotations).into_iter().collect()
    }

    /// Applies a group definition received from `sender`, sealed in an
    /// envelope of `room` under epoch number `sealed_under`. Taken from an
    /// admin of the definition held here, or when the only change is the
    /// sender leaving; and only if it is newer: a higher version than the
    /// one held, bound to the epoch it was sealed under, never an older
    /// epoch than the held one's. An older definition (a removed member
    /// replaying the one that still named her: audit C2) is refused.
    fn apply_definition(
        &mut self,
        sender: &str,
        room: RoomId,
        new: &Room,
        sealed_under: u64,
    ) -> Result<(), String> {
        let me = self.my_cert.subject.user_id.clone();
        let Some(state) = self.rooms.get_mut(&room) else {
            return Ok(());
        };
        let (
            super::RoomKind::Group {
                members: old_members,
                ..
            },
            super::RoomKind::Group {
                members: new_members,
                ..
            },
        ) = (&state.room.kind, &new.kind)
        else {
            // Department and 1:1 rooms have no definitions to send.
            return Ok(());
        };
        let old = &state.room;
        if new.id != room {
            return Err("a group definition must travel in its own group".into());
        }
        if new.epoch != sealed_under {
            return Err(format!(
                "group definition names epoch {} but was sealed under epoch {sealed_under}",
                new.epoch
            ));
        }
        if new.version == old.version && new == old {
            return Ok(());
        }
        if new.version <= old.version || new.epoch < old.epoch {
            return Err(format!(
                "stale group definition: version {} (epoch {}), this device holds version {} (epoch {})",
                new.version, new.epoch, old.version, old.epoch
            ));
        }
        let mut without_sender = old.clone();
        let self_leave = without_sender.remove(sender, sender).is_ok()
            && without_sender.kind == new.kind
            && without_sender.name == new.name;
        let from_admin =
            matches!(&old.kind, super::RoomKind::Group { admins, .. } if admins.contains(sender));
        if !from_admin && !self_leave {
            return Err(format!("{sender} may not change this group"));
        }
        let shrank = old_members.iter().any(|m| !new_members.contains(m));
        state.room = new.clone();
        self.unsaved_rooms.insert(room);
        let admin_now =
            matches!(&new.kind, super::RoomKind::Group { admins, .. } if admins.contains(&me));
        if shrank && admin_now && self_leave {
            self.rotations.insert(room);
        }
        Ok(())
    }

    /// `admin` (this device's user) invites `user`: the current key is
    /// shared with that user's known devices.
    pub fn invite(
        &mut self,
        room: RoomId,
        user: &str,
        now: u64,
    ) -> Result<Vec<KeyGrant>, MessengerError> {
        let me = self.my_cert.subject.user_id.clone();
        let state = self.rooms.get_mut(&room).ok_or_else(|| unknown(room))?;
        state.room.invite(&me, user)?;
        self.unsaved_rooms.insert(room);
        Ok(self.grants_for_missing(now, None))
    }

    /// Makes sure `room` has a key epoch: if nobody has created one yet, this
    /// device creates epoch 1 and returns its grants (members that do the same
    /// at once converge on one winner, and keep every key).
    pub fn ensure_key(
        &mut self,
        room: RoomId,
        now: u64,
        entropy: &mut impl Entropy,
    ) -> Result<Vec<KeyGrant>, MessengerError> {
        let state = self.rooms.get(&room).ok_or_else(|| unknown(room))?;
        if state.epochs.current().is_some() {
            return Ok(Vec::new());
        }
        self.rotate(room, now, entropy)
    }

    /// Writes a message to `room` at wall time `now_ms`.
    pub fn send(
        &mut self,
        room: RoomId,
        content: &Content,
        now_ms: u64,
        entropy: &mut impl Entropy,
    ) -> Result<Envelope, MessengerError> {
        self.rotate_if_due(room, now_ms / 1000, entropy)?;
        let state = self.rooms.get(&room).ok_or_else(|| unknown(room))?;
        let (epoch, key) = state.current_key().ok_or(MessengerError::NoKey)?;
        let timestamp = self.clock.tick(now_ms);
        let envelope = Envelope::seal(&self.me, room, epoch, key, timestamp, content, entropy)?;
        self.seen.insert(envelope.id());
        Ok(envelope)
    }

    /// What a relay can check of an envelope it carries but cannot read: the
    /// sender is a known certified device and the signature is its own.
    pub fn check_carried(&self, envelope: &Envelope) -> Result<(), String> {
        let sender = &envelope.body.header.sender;
        if self.revoked.contains(sender) {
            // Whatever time it claims: a thief holding the device sets it.
            return Err("its sender's device was revoked".into());
        }
        let verifier = self
            .verifiers
            .get(sender)
            .ok_or("sender is not a known certified device")?;
        envelope
            .verify_signature_with(verifier)
            .map_err(|e| e.to_string())
    }

    /// Validates an incoming envelope: signature, sender certified and a
    /// member of the room, not seen before; then decrypts it if the key is here.
    pub fn receive(&mut self, envelope: Envelope, now_ms: u64) -> Verdict {
        let id = envelope.id();
        if self.seen.contains(&id) {
            return Verdict::Duplicate;
        }
        let header = &envelope.body.header;
        let (Some(sender), Some(verifier)) = (
            self.directory.get(&header.sender),
            self.verifiers.get(&header.sender),
        ) else {
            return self.hold_unverified(envelope);
        };
        if let Err(e) = envelope.verify_signature_with(verifier) {
            return Verdict::Reject(e.to_string());
        }
        if self.revoked.contains(&header.sender) {
            // Judged by when it arrives, never by the time it claims (a
            // thief backdates: audit C1). What it wrote before the loss
            // and did not reach this device by then is lost with it.
            return Verdict::Reject(format!(
                "the device of {} that sent it was revoked",
                sender.subject.user_id
            ));
        }
        if !self.rooms.contains_key(&header.room) {
            return self.receive_for_unknown_room(envelope, now_ms);
        }
        let Some(state) = self.rooms.get_mut(&header.room) else {
            return Verdict::Held;
        };
        if !admits(&state.room, sender, &self.revoked) {
            let reason = format!("{} is not a member of this room", sender.subject.user_id);
            // A group's members are the definition this device holds, which
            // an honest forwarder may not share yet (audit M4); department
            // and 1:1 membership follow from certificates, the same for all.
            return match state.room.kind {
                super::RoomKind::Group { .. } => Verdict::Defer(reason),
                _ => Verdict::Reject(reason),
            };
        }
        let epoch = header.epoch;
        let Some(key) = state.keys.get(&(epoch.number, epoch.key_id)) else {
            // An epoch named by an envelope is not learned: only a grant
            // carrying its key teaches one (audit H4).
            return if state.hold_pending(envelope) {
                Verdict::Held
            } else {
                Verdict::Later
            };
        };
        match envelope.open(key) {
            Ok(Content::Receipt { state, messages })
                if messages.is_empty()
                    || messages.len() > MAX_RECEIPT_IDS
                    || state == ReceiptState::StoredByRelay =>
            {
                Verdict::Reject("malformed receipt".into())
            }
            Ok(Content::File { manifest, .. }) if manifest.check().is_err() => {
                Verdict::Reject("malformed attachment".into())
            }
            Ok(content) => {
                let sender = sender.clone();
                let room = header.room;
                if let Content::RoomState(definition) = &content
                    && let Err(reason) = self.apply_definition(
                        &sender.subject.user_id,
                        room,
                        definition,
                        epoch.number,
                    )
                {
                    return Verdict::Defer(reason);
                }
                self.seen.insert(id);
                self.clock.observe(header.timestamp, now_ms);
                if let Some(state) = self.rooms.get_mut(&room) {
                    // It sealed under this key: it holds it.
                    state.note_holders(epoch, [&header.sender]);
                    if state.epochs.vouch(&epoch, &header.sender) {
                        self.refresh_due(room);
                    }
                }
                Verdict::Deliver(Box::new(Message {
                    id,
                    room: header.room,
                    sender: sender.device,
                    sender_user: sender.subject.user_id.clone(),
                    sender_name: sender.subject.display_name.clone(),
                    timestamp: header.timestamp,
                    content,
                    envelope,
                }))
            }
            Err(e) => Verdict::Reject(e.to_string()),
        }
    }

    /// Keeps an envelope from a device not met yet, within the bounds. Past
    /// them it is not taken ([`Verdict::Later`]) rather than pushing out one
    /// taken before: whichever went, dropping it here must leave it to be
    /// fetched again, and what is kept is shown as soon as its sender is met.
    fn hold_unverified(&mut self, envelope: Envelope) -> Verdict {
        let sender = envelope.body.header.sender;
        let from_sender = self
            .unverified
            .iter()
            .filter(|e| e.body.header.sender == sender)
            .count();
        if self.unverified.len() >= MAX_UNVERIFIED || from_sender >= MAX_UNVERIFIED_PER_SENDER {
            return Verdict::Later;
        }
        self.unverified.push(envelope);
        Verdict::Unverified
    }

    /// Takes a key grant: records the epoch, opens the key if it is for this
    /// device, and returns the held messages that became readable.
    pub fn receive_grant(&mut self, grant: &KeyGrant, now_ms: u64) -> Result<Vec<Message>, String> {
        grant.verify_signature().map_err(|e| e.to_string())?;
        self.receive_signed_grant(grant, now_ms)
    }

    /// [`Messenger::receive_grant`] for a grant whose issuer's signature is
    /// already checked: it came in a control frame its issuer signed, which
    /// covers the grant's every byte (a second check of every grant on the
    /// agency control topic was a tenth of a large mesh's CPU).
    pub fn receive_signed_grant(
        &mut self,
        grant: &KeyGrant,
        now_ms: u64,
    ) -> Result<Vec<Message>, String> {
        if grant.body.wraps.len() > MAX_WRAPS_PER_GRANT {
            return Err(format!(
                "a key grant wraps at most {MAX_WRAPS_PER_GRANT} devices"
            ));
        }
        let issuer = self
            .directory
            .get(&grant.issuer)
            .cloned()
            .ok_or("grant issuer is not a known certified device")?;
        if self.revoked.contains(&grant.issuer) {
            // A key of ours it can hand out is one it knows: the room must
            // move past it, whichever grant brings it here.
            let room = grant.body.room;
            if let Some(Ok(_)) = grant.key_for(&self.me)
                && let Some(state) = self.rooms.get_mut(&room)
            {
                state.depart(grant.issuer);
                state.taint(grant.body.epoch);
                self.refresh_due(room);
            }
            // Whatever `issued_at` says: a thief backdates (audit C1).
            return Err(format!(
                "grant from a revoked device of {}",
                issuer.subject.user_id
            ));
        }
        let room = grant.body.room;
        if !self.rooms.contains_key(&room) {
            let issuer_user = issuer.subject.user_id.clone();
            let direct = Room::direct(&self.agency, &self.my_cert.subject.user_id, &issuer_user);
            if direct.id == room {
                // Someone opened a 1:1 room with this device's user.
                self.add_room(direct);
            } else {
                return self.receive_orphan_grant(grant, now_ms);
            }
        }
        let Some(state) = self.rooms.get_mut(&room) else {
            return Ok(Vec::new());
        };
        if !may_grant(&state.room, &issuer, &self.revoked) {
            return Err(format!(
                "{} may not grant keys for this room",
                issuer.subject.user_id
            ));
        }
        let epoch = grant.body.epoch;
        self.note_revealed(room, grant);
        let Some(state) = self.rooms.get_mut(&room) else {
            return Ok(Vec::new());
        };
        let Some(opened) = grant.key_for(&self.me) else {
            // Nothing here to check: the epoch is not learned (audit H4),
            // and the devices it claims only help choose granters.
            state.note_claims(epoch, grant.recipients());
            return Ok(Vec::new());
        };
        let key = opened.map_err(|e| e.to_string())?;
        if state.epochs.holds(&epoch) {
            // Granted again by another holder: it showed it holds the key.
            state.note_holders(epoch, [&grant.issuer]);
            state.note_claims(epoch, grant.recipients());
            state.epochs.vouch(&epoch, &grant.issuer);
            self.note_origin(room, grant);
            self.refresh_due(room);
            return Ok(Vec::new());
        }
        match state.hold_key(epoch, key.clone(), Taken::Granted(&grant.issuer)) {
            Ok(()) => {}
            Err(EpochRefusal::TooFarAhead { .. }) => {
                // Epochs in between may still come: kept, not taken.
                state.hold_early(grant);
                // Unless nothing is firm here (a lone epoch from one member
                // holds this device below the room's) and enough granters
                // granted this one.
                let granters: BTreeSet<&PublicKey> = state
                    .early
                    .iter()
                    .filter(|g| g.body.epoch == epoch)
                    .map(|g| &g.issuer)
                    .chain([&grant.issuer])
                    .collect();
                if state.epochs.has_firm() || granters.len() < CORROBORATION {
                    return Ok(Vec::new());
                }
                state
                    .hold_key(epoch, key.clone(), Taken::Corroborated)
                    .map_err(|e| e.to_string())?;
                state.early.retain(|g| g.body.epoch != epoch);
            }
            Err(refusal) => return Err(refusal.to_string()),
        }
        let me = self.me.public();
        state.note_holders(epoch, [&grant.issuer, &me]);
        state.note_claims(epoch, grant.recipients());
        self.unsaved_keys.push((room, epoch, key));
        // Only what waited for this epoch is read again.
        let (waiting, others): (Vec<Envelope>, Vec<Envelope>) = std::mem::take(&mut state.pending)
            .into_iter()
            .partition(|e| e.body.header.epoch == epoch);
        state.pending = others;
        let early = std::mem::take(&mut state.early);
        self.note_origin(room, grant);
        self.refresh_due(room);
        let mut readable = Vec::new();
        for envelope in waiting {
            if let Verdict::Deliver(message) = self.receive(envelope, now_ms) {
                readable.push(*message);
            }
        }
        // Grants that were too far ahead may be within reach now.
        for held in early {
            if let Ok(shown) = self.receive_signed_grant(&held, now_ms) {
                readable.extend(shown);
            }
        }
        // Now a holder: members met before the key came may be ours to serve.
        let grants = self.grants_for_missing(now_ms / 1000, None);
        self.unsent_grants.extend(grants);
        Ok(readable)
    }

    /// Decrypts a stored envelope for display (no de-duplication, no checks
    /// beyond what [`Messenger::receive`] did when it arrived).
    pub fn read(&self, envelope: &Envelope) -> Option<Message> {
        let header = &envelope.body.header;
        let state = self.rooms.get(&header.room)?;
        let key = state
            .keys
            .get(&(header.epoch.number, header.epoch.key_id))?;
        let content = envelope.open(key).ok()?;
        let sender = self.directory.get(&header.sender);
        Some(Message {
            id: envelope.id(),
            room: header.room,
            sender: header.sender.device_id(),
            sender_user: sender
                .map(|s| s.subject.user_id.clone())
                .unwrap_or_default(),
            sender_name: sender
                .map(|s| s.subject.display_name.clone())
                .unwrap_or_default(),
            timestamp: header.timestamp,
            content,
            envelope: envelope.clone(),
        })
    }

    /// Whether receipts are exchanged in `room`: it has at most
    /// [`RECEIPT_ROOM_LIMIT`] known member devices.
    pub fn receipts_enabled(&self, room: RoomId) -> bool {
        // Counts no further than the limit: asked on every room listing.
        self.members_of(room)
            .is_ok_and(|members| members.take(RECEIPT_ROOM_LIMIT + 1).count() <= RECEIPT_ROOM_LIMIT)
    }

    /// A receipt for `messages` of `room` (at most [`MAX_RECEIPT_IDS`]).
    pub fn receipt(
        &mut self,
        room: RoomId,
        state: ReceiptState,
        messages: Vec<[u8; 32]>,
        now_ms: u64,
        entropy: &mut impl Entropy,
    ) -> Result<Envelope, MessengerError> {
        self.send(room, &Content::Receipt { state, messages }, now_ms, entropy)
    }

    /// Whether this device can currently send to `room`.
    pub fn can_send(&self, room: RoomId) -> bool {
        self.rooms.get(&room).is_some_and(|s| s.epochs.can_send())
    }

    /// The epoch this device would send under in `room`.
    pub fn current_epoch(&self, room: RoomId) -> Option<EpochRef> {
        self.rooms.get(&room).and_then(|s| s.epochs.current())
    }

    /// Announces `room`'s definition to its members under its current key.
    pub fn announce_room(
        &mut self,
        room: RoomId,
        now_ms: u64,
        entropy: &mut impl Entropy,
    ) -> Result<Envelope, MessengerError> {
        self.rotate_if_due(room, now_ms / 1000, entropy)?;
        let state = self.rooms.get_mut(&room).ok_or_else(|| unknown(room))?;
        let current = state.epochs.current().ok_or(MessengerError::NoKey)?;
        let before = state.room.version;
        state.room.bind_to_epoch(current.number)?;
        if state.room.version != before {
            self.unsaved_rooms.insert(room);
        }
        let definition = state.room.clone();
        self.send(room, &Content::RoomState(definition), now_ms, entropy)
    }

    /// The orphan entry for `room`, opened by `sender` if new; `None` if
    /// `sender` has opened its share already. The oldest entry makes way
    /// when all are taken.
    /// Whether `grant` opens to this device a room it does not know yet and
    /// its issuer already has its share of such rooms held here: it would
    /// be dropped, so the caller leaves it to be fetched again once an
    /// earlier one is settled (a colleague who made many groups while this
    /// device was away; the crash soak found groups never joined).
    pub fn no_room_for_orphan(&self, grant: &KeyGrant) -> bool {
        let room = grant.body.room;
        if self.rooms.contains_key(&room) || self.orphans.contains_key(&room) {
            return false;
        }
        if grant.key_for(&self.me).is_none() {
            return false;
        }
        let direct = self.directory.get(&grant.issuer).is_some_and(|issuer| {
            Room::direct(
                &self.agency,
                &self.my_cert.subject.user_id,
                &issuer.subject.user_id,
            )
            .id == room
        });
        !direct
            && self
                .orphans
                .values()
                .filter(|o| o.opened_by == grant.issuer)
                .count()
                >= MAX_ORPHAN_ROOMS_PER_SENDER
    }

    fn orphan_for(&mut self, room: RoomId, sender: &PublicKey) -> Option<&mut Orphan> {
        if !self.orphans.contains_key(&room) {
            let opened_by_sender = self
                .orphans
                .values()
                .filter(|o| o.opened_by == *sender)
                .count();
            if opened_by_sender >= MAX_ORPHAN_ROOMS_PER_SENDER {
                return None;
            }
            if self.orphans.len() >= MAX_ORPHAN_ROOMS {
                let oldest = self
                    .orphans
                    .iter()
                    .min_by_key(|(_, o)| o.opened)
                    .map(|(id, _)| *id);
                if let Some(oldest) = oldest {
                    self.orphans.remove(&oldest);
                }
            }
            self.orphan_counter = self.orphan_counter.saturating_add(1);
            self.orphans.insert(
                room,
                Orphan {
                    opened_by: *sender,
                    opened: self.orphan_counter,
                    keys: Vec::new(),
                    envelopes: Vec::new(),
                },
            );
        }
        self.orphans.get_mut(&room)
    }

    fn receive_orphan_grant(
        &mut self,
        grant: &KeyGrant,
        now_ms: u64,
    ) -> Result<Vec<Message>, String> {
        let Some(result) = grant.key_for(&self.me) else {
            return Ok(Vec::new());
        };
        let key = result.map_err(|e| e.to_string())?;
        let room = grant.body.room;
        let Some(orphan) = self.orphan_for(room, &grant.issuer) else {
            return Ok(Vec::new());
        };
        if orphan.keys.len() < 16 && !orphan.keys.iter().any(|(e, _, _)| *e == grant.body.epoch) {
            orphan.keys.push((grant.body.epoch, key, grant.issuer));
        }
        // Only this room's held definition may now be readable (reading
        // every held envelope for each grant cost ~1000 signature checks
        // per grant: audit M2).
        let held = std::mem::take(&mut orphan.envelopes);
        let mut shown = Vec::new();
        for envelope in held {
            if let Verdict::Deliver(message) = self.receive(envelope, now_ms) {
                shown.push(*message);
            }
        }
        Ok(shown)
    }

    /// An envelope of a room this device does not know: if it is the room's
    /// definition, readable with a key granted to us, from an admin, and
    /// we are a member, the room is adopted.
    fn receive_for_unknown_room(&mut self, envelope: Envelope, now_ms: u64) -> Verdict {
        let header = envelope.body.header.clone();
        let key = self
            .orphans
            .get(&header.room)
            .and_then(|o| o.keys.iter().find(|(epoch, _, _)| *epoch == header.epoch))
            .map(|(_, key, _)| key.clone());
        let Some(key) = key else {
            if let Some(orphan) = self.orphan_for(header.room, &header.sender) {
                let from_sender = orphan
                    .envelopes
                    .iter()
                    .filter(|e| e.body.header.sender == header.sender)
                    .count();
                if orphan.envelopes.len() < MAX_ORPHAN_ENVELOPES_PER_ROOM
                    && from_sender < MAX_ORPHAN_ENVELOPES_PER_ROOM / 4
                {
                    orphan.envelopes.push(envelope);
                    return Verdict::Held;
                }
            }
            // Not kept: asked for again once the room is known.
            return Verdict::Later;
        };
        let Ok(Content::RoomState(room)) = envelope.open(&key) else {
            // A message of a room not adopted yet, not kept: asked for
            // again once its definition has arrived.
            return Verdict::Later;
        };
        let sender = self
            .directory
            .get(&header.sender)
            .map(|d| d.subject.user_id.clone());
        let from_admin = matches!(
            (&room.kind, &sender),
            (super::RoomKind::Group { admins, .. }, Some(user)) if admins.contains(user)
        );
        if room.id != header.room
            || room.epoch != header.epoch.number
            || !from_admin
            || !room.has_member(self.user(), &self.my_cert.subject.org_unit)
        {
            return Verdict::Defer("room definition not from an admin of that room".into());
        }
        let orphan = self.orphans.remove(&header.room);
        self.add_room(room);
        let (mut keys, held) = orphan.map_or_else(Default::default, |o| (o.keys, o.envelopes));
        keys.sort_by_key(|(epoch, _, _)| *epoch);
        if let Some(state) = self.rooms.get_mut(&header.room) {
            for (epoch, key, issuer) in keys {
                // Only keys from those allowed to grant in the room as defined.
                let allowed = self
                    .directory
                    .get(&issuer)
                    .is_some_and(|d| may_grant(&state.room, d, &self.revoked));
                if allowed
                    && state
                        .hold_key(epoch, key.clone(), Taken::Granted(&issuer))
                        .is_ok()
                {
                    state.note_holders(epoch, [&issuer]);
                    self.unsaved_keys.push((header.room, epoch, key));
                }
            }
        }
        let verdict = self.receive(envelope, now_ms);
        for other in held {
            if let Verdict::Deliver(message) = self.receive(other, now_ms) {
                self.late.push(*message);
            }
        }
        verdict
    }

    /// Shuts a revoked device out: from now on everything it signs is
    /// refused (envelopes, grants, definitions), it is never granted a key
    /// again, and every room it was in moves to a new epoch (groups now, by
    /// their admins; other rooms at the next message anyone sends there).
    /// Returns whether it was new.
    ///
    /// The revocation's own time (`_issued_ms`) decides nothing here: what
    /// the device signs carries times it chooses, so it is judged by when
    /// it arrives: after the revocation is known, it is refused (audit C1).
    ///
    /// `restored` revocations (loaded at start) only refuse; the rotations
    /// they called for were scheduled when they first arrived.
    pub fn revoke(&mut self, device: PublicKey, _issued_ms: u64, restored: bool) -> bool {
        if device == self.me.public() {
            return false;
        }
        let new = self.revoked.insert(device);
        if new && !restored {
            self.schedule_rotations(device);
        }
        // What it sent that still waits would be refused when read.
        for state in self.rooms.values_mut() {
            state.pending.retain(|e| e.body.header.sender != device);
            state.early.retain(|g| g.issuer != device);
        }
        self.orphans.retain(|_, o| o.opened_by != device);
        for orphan in self.orphans.values_mut() {
            orphan.envelopes.retain(|e| e.body.header.sender != device);
            orphan.keys.retain(|(_, _, issuer)| *issuer != device);
        }
        new
    }

    /// Takes back a device whose revocation was overruled (it won a
    /// conflict with another device of its user); whether it was revoked
    /// here. Rooms that moved on without it grant it their key again as
    /// for any member that lacks it.
    pub fn reinstate(&mut self, device: PublicKey) -> bool {
        self.revoked.remove(&device)
    }

    fn schedule_rotations(&mut self, device: PublicKey) {
        let Some(certified) = self.directory.get(&device).cloned() else {
            return;
        };
        let mut affected = Vec::new();
        for (id, state) in &mut self.rooms {
            let was_granted = state
                .holders
                .values()
                .chain(state.claimed.values())
                .any(|g| g.contains(&device));
            if !state.room.admits(&certified) && !was_granted {
                continue;
            }
            state.depart(device);
            affected.push(*id);
        }
        for room in affected {
            self.refresh_due(room);
        }
    }

    /// Records whether `room` is due a rotation here: this device may
    /// grant in it and its current epoch does not settle it (see the
    /// module docs). A group newly due is handed to the caller to rotate
    /// and announce ([`Messenger::take_rotations`]); other rooms rotate at
    /// the next message sent there.
    fn refresh_due(&mut self, room: RoomId) {
        let Some(state) = self.rooms.get(&room) else {
            return;
        };
        let due = may_grant(&state.room, &self.my_cert, &self.revoked)
            && !state.settled(&self.directory, &self.revoked);
        let was = self.rotation_due.contains_key(&room);
        if due && !was {
            let number = state.epochs.current().map_or(0, |e| e.number);
            if matches!(state.room.kind, super::RoomKind::Group { .. }) {
                self.rotations.insert(room);
            }
            self.rotation_due.insert(room, number);
            self.unsaved_due.insert(room);
        } else if !due && was {
            self.rotation_due.remove(&room);
            self.unsaved_due.insert(room);
        }
    }

    /// A grant of `room` from a device allowed to grant there: if it wraps
    /// its key to a revoked device, or its origin says a revoked device
    /// made the key, that device may know the epoch.
    fn note_revealed(&mut self, room: RoomId, grant: &KeyGrant) {
        let epoch = grant.body.epoch;
        let mut knowers: Vec<PublicKey> = grant
            .recipients()
            .filter(|d| self.revoked.contains(d))
            .copied()
            .collect();
        if let Some(origin) = &grant.body.origin
            && self.revoked.contains(&origin.creator)
            && origin.verify(&room, &epoch)
        {
            knowers.push(origin.creator);
        }
        if knowers.is_empty() {
            return;
        }
        let Some(state) = self.rooms.get_mut(&room) else {
            return;
        };
        state.taint(epoch);
        // An old epoch (a grant re-served by sync) no longer matters.
        let current = state.epochs.current().map_or(0, |e| e.number);
        if epoch.number >= current {
            for device in knowers {
                state.depart(device);
            }
        }
        self.refresh_due(room);
    }

    /// Keeps the origin a grant of a held epoch carries, if it verifies
    /// (the first one kept stays; whether its creator may grant is asked
    /// when it is used, in `RoomState::settled`).
    fn note_origin(&mut self, room: RoomId, grant: &KeyGrant) {
        let Some(origin) = &grant.body.origin else {
            return;
        };
        let epoch = grant.body.epoch;
        let Some(state) = self.rooms.get_mut(&room) else {
            return;
        };
        if !state.epochs.holds(&epoch) || state.origins.contains_key(&epoch) {
            return;
        }
        if origin.verify(&room, &epoch) {
            // Revoked devices its creator left out that are revoked here
            // too were in the room: remembered, so that devices which saw
            // different members go converge on one list (each rotation
            // then covers the other's) instead of rotating in turn.
            for device in &origin.excluded {
                if self.revoked.contains(device) {
                    state.depart(*device);
                }
            }
            state.origins.insert(epoch, origin.clone());
        }
    }

    /// Whether `device` was revoked.
    pub fn is_revoked(&self, device: &PublicKey) -> bool {
        self.revoked.contains(device)
    }

    /// Restores a pending rotation loaded from storage: made at the next
    /// message whatever the current epoch (origins are not persisted).
    pub fn restore_rotation_due(&mut self, room: RoomId, epoch_number: u64) {
        if let Some(state) = self.rooms.get_mut(&room) {
            state.forced = true;
            self.rotation_due.insert(room, epoch_number);
        }
    }

    /// Pending rotations changed since the last call: `Some(epoch)` to keep,
    /// `None` to forget; for the caller to persist.
    pub fn take_rotation_due_changes(&mut self) -> Vec<(RoomId, Option<u64>)> {
        std::mem::take(&mut self.unsaved_due)
            .into_iter()
            .map(|room| (room, self.rotation_due.get(&room).copied()))
            .collect()
    }

    /// Grants made by rotations inside [`Messenger::send`], to publish.
    pub fn take_unsent_grants(&mut self) -> Vec<KeyGrant> {
        std::mem::take(&mut self.unsent_grants)
    }

    /// Moves `room` to a new epoch first if a revoked device may hold the
    /// current one (see the module docs).
    fn rotate_if_due(
        &mut self,
        room: RoomId,
        now: u64,
        entropy: &mut impl Entropy,
    ) -> Result<(), MessengerError> {
        self.refresh_due(room);
        if !self.rotation_due.contains_key(&room) {
            return Ok(());
        }
        let grants = self.rotate(room, now, entropy)?;
        self.unsent_grants.extend(grants);
        Ok(())
    }

    fn member_devices(&self, room: RoomId) -> Result<Vec<PublicKey>, MessengerError> {
        Ok(self.members_of(room)?.collect())
    }

    /// The known, unrevoked devices `room` admits.
    fn members_of(
        &self,
        room: RoomId,
    ) -> Result<impl Iterator<Item = PublicKey> + '_, MessengerError> {
        let state = self.rooms.get(&room).ok_or_else(|| unknown(room))?;
        Ok(self
            .directory
            .iter()
            .filter(|(_, device)| admits(&state.room, device, &self.revoked))
            .map(|(key, _)| *key))
    }

    /// Grants of current keys this device holds to member devices that have
    /// none: every such member, or only `newcomer` (a device just met: the
    /// others' granters did not change, and scanning every member for each
    /// device met made a node's setup cubic in the agency's size).
    fn grants_for_missing(&mut self, now: u64, newcomer: Option<&PublicKey>) -> Vec<KeyGrant> {
        let mut out = Vec::new();
        let me_key = self.me.public();
        let rooms: Vec<RoomId> = self.rooms.keys().copied().collect();
        for room in rooms {
            let candidates = match newcomer {
                Some(device) => vec![*device],
                None => self.member_devices(room).unwrap_or_default(),
            };
            let Some(state) = self.rooms.get_mut(&room) else {
                continue;
            };
            if !may_grant(&state.room, &self.my_cert, &self.revoked) {
                continue;
            }
            let (directory, revoked) = (&self.directory, &self.revoked);
            let member = |key: &PublicKey| {
                directory
                    .get(key)
                    .is_some_and(|device| admits(&state.room, device, revoked))
            };
            // The granters chosen for a device are among those that may
            // grant: in a group, its admins' devices (counting members that
            // hold the key but may not grant left an invited user with no
            // granter at all, about one time in three with two admin devices).
            let granter = |key: &PublicKey| {
                directory
                    .get(key)
                    .is_some_and(|device| may_grant(&state.room, device, revoked))
            };
            let candidates: Vec<PublicKey> = candidates.into_iter().filter(member).collect();
            if candidates.is_empty() {
                continue;
            }
            for (epoch, key) in state.current_keys() {
                let empty = BTreeSet::new();
                let holders = state.holders.get(&epoch).unwrap_or(&empty);
                let claimed = state.claimed.get(&epoch).unwrap_or(&empty);
                // Only devices known to hold the key are skipped (a claim in
                // someone else's grant may wrap junk: audit M3); claims do
                // help choose the few granters, and a device they wrongly
                // leave out asks when it subscribes ([`Messenger::grants_for`]).
                let missing: Vec<PublicKey> = candidates
                    .iter()
                    .filter(|d| !holders.contains(d))
                    .filter(|d| {
                        let known = holders.union(claimed).filter(|h| granter(h));
                        granter_of(room, d, known, &me_key)
                    })
                    .copied()
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                if let Ok(grants) = KeyGrant::issue_with_origin(
                    &self.me,
                    room,
                    epoch.number,
                    &key,
                    &missing,
                    state.origins.get(&epoch),
                    now,
                ) {
                    note(state.holders.entry(epoch).or_default(), &missing);
                    out.extend(grants);
                }
            }
        }
        out
    }
}

/// Whether `me` is one of the [`GRANTERS_PER_DEVICE`] holders chosen to
/// grant `room`'s key to `newcomer`: the holders whose hash with the room
/// and the newcomer is lowest, the same choice on every device that knows
/// the same holders.
fn granter_of<'a>(
    room: RoomId,
    newcomer: &PublicKey,
    holders: impl Iterator<Item = &'a PublicKey>,
    me: &PublicKey,
) -> bool {
    let rank = |holder: &PublicKey| {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&room.0);
        hasher.update(&newcomer.0);
        hasher.update(&holder.0);
        *hasher.finalize().as_bytes()
    };
    let mine = rank(me);
    // Stops at the first holders ranked before us: most devices are not
    // granters for a given newcomer and learn it after a few hashes (a full
    // count per newcomer was cubic in the room size over a node's setup,
    // most of the CPU of a 510-node simulation).
    holders
        .filter(|h| *h != me && *h != newcomer && rank(h) < mine)
        .take(GRANTERS_PER_DEVICE)
        .count()
        < GRANTERS_PER_DEVICE
}

/// Who may hand a room's key to devices: any member of a department or 1:1
/// room, only admins of a group (so a member with a stale member list never
/// re-admits someone an admin removed). A revoked device never may.
fn may_grant(room: &Room, device: &VerifiedDevice, revoked: &BTreeSet<PublicKey>) -> bool {
    if revoked.contains(&device.device.public_key()) {
        return false;
    }
    match &room.kind {
        super::RoomKind::Group { admins, .. } => admins.contains(&device.subject.user_id),
        _ => room.admits(device),
    }
}

/// Whether `device` belongs to `room`: certified into it and not revoked.
fn admits(room: &Room, device: &VerifiedDevice, revoked: &BTreeSet<PublicKey>) -> bool {
    !revoked.contains(&device.device.public_key()) && room.admits(device)
}

fn unknown(room: RoomId) -> MessengerError {
    MessengerError::UnknownRoom(room.short())
}

#[cfg(test)]
#[path = "messenger_tests.rs"]
mod tests;
