//! Department keys that follow the org tree, so that re-keying the agency's
//! top room costs one path of the tree, not one wrap per agency device.
//!
//! Department rooms nest: the room of `MOIS` holds every official, the room
//! of `MOIS/Bureau 1` everyone under it, and so on. Keying each of them
//! device by device makes every rotation of the top room (after any
//! revocation, anywhere) cost one wrap per device of the agency: 141,099
//! HPKE wraps and about 16 MB for the four rooms above one device in an
//! agency of 130,000. Instead, as in a logical key hierarchy:
//!
//! - every org unit U has a secret per epoch ([`UnitSecret`]); it yields
//!   U's public key and the key of U's department room;
//! - U's secret is wrapped to each child unit's public key and to each
//!   device placed directly in U;
//! - a device therefore opens its own unit's secret with its device key and
//!   each ancestor's through the child on its path: it holds exactly the
//!   secrets of the units it belongs to, hence the keys of all its
//!   department rooms, and nothing else.
//!
//! When a device leaves unit X (revoked, or moved), every secret it knew
//! changes: X's and each ancestor's, bottom up ([`KeyTree::rekey`]). Each
//! new secret is wrapped to the unit's children (the child on the path under
//! its new key) and to its remaining direct devices. The cost, in wraps:
//!
//! ```text
//! wraps(X → root) = Σ over units U on the path from X to the root of
//!                   ( children(U) + devices directly in U )
//! ```
//!
//! and each wrap is 116 bytes on the wire. A revocation compromises every
//! unit on the revoked device's path; the device that rotates need not be
//! in its unit (it may be anywhere: it renews its own path only). A
//! compromised unit C that the re-key does not renew is reached through its
//! cover instead of its key: its children's keys (or their covers, if
//! compromised too) and its remaining direct devices. So a re-key by a
//! device in unit Y after a revocation in unit X costs
//!
//! ```text
//! wraps = Σ over U on the path Y → root of ( children(U) + devices(U) )
//!       + Σ over compromised C on the path X → LCA(X, Y), C ≠ LCA,
//!             of ( children(C) + devices(C) − 1 )
//! ```
//!
//! (a renewed unit is taken out of the compromised set once [`KeyTree::learn`]
//! sees a re-key of it that reaches no removed device and no compromised
//! key). For 130,000 devices in 13 bureaus
//! × 10 divisions × 10 teams of 100 devices, a revocation in a team costs
//! 99 + 10 + 10 + 13 = 132 wraps (about 16 KB), whatever the agency's size
//! beyond the fan-out of its units; rotated by a device in another bureau
//! (no team-mate of the revoked device around), 133 + (98 + 9 + 9) = 249
//! wraps (about 29 KB). A child that has no key yet is reached through its
//! cover instead (its subtree's keyed units, or devices, count in its place).
//!
//! Measured (`cargo bench -p baro-node --bench department_rekey`; wraps and
//! bytes are exact, the flat 130,000 row is scaled from the 1,000 one):
//!
//! | devices | today: wraps | today: bytes | tree: wraps | tree: bytes | from another bureau: wraps | bytes |
//! |---|---|---|---|---|---|---|
//! | 100 | 99 | 12,843 | 13 | 1,982 | 22 | 3,026 |
//! | 1,000 | 999 | 128,556 | 23 | 3,142 | 39 | 4,998 |
//! | 130,000 | 129,999 | 16,728,880 | 132 | 15,786 | 249 | 29,361 |
//!
//! Not wired yet: [`crate::rooms::Messenger`] still rotates department
//! rooms with flat grants, and no control message carries a [`PathRekey`].
//! The wiring this module is built for:
//!
//! - the messenger keeps a [`KeyTree`] (every certified, unrevoked member
//!   device it meets is [`KeyTree::add_device`]d; a revocation or a move
//!   [`KeyTree::remove_device`]s it) and its own [`UnitKeyring`], whose
//!   secrets are persisted like room keys;
//! - a department room's epoch *is* its unit's epoch: its key is
//!   [`UnitKeyring::room_key`], named `EpochRef { number: epoch, key_id }`,
//!   so the epoch rules of [`crate::rooms`] (step bound, firm epochs,
//!   `u64::MAX` refused) apply unchanged;
//! - a rotation due after a revocation is one re-key from the deepest
//!   compromised unit on this device's path up to its top unit: every
//!   department room of this device renewed at once, at the cost above; a
//!   device newly met in unit U is given U's current secret and U's
//!   ancestors' by any holder (one wrap each, not a rotation: a grant of
//!   unit secrets this module does not define yet);
//! - a re-key counts as moving a room past a revocation (what today's
//!   signed `EpochOrigin` says for grants) when [`KeyTree::learn`] takes
//!   its unit out of the compromised set: its wraps reach no removed device
//!   and no compromised key, which every receiver checks for itself;
//! - a `ControlMessage::PathRekey` carries it, published on the top unit's
//!   room topic (the devices it concerns), stored and synced in that
//!   room's scope, its issuer checked like a grant's (unrevoked, within
//!   [`PathRekey::lowest`], judged by local receipt time), and its size
//!   bounded by the room's frame limit (the first keying of a large unit
//!   through its devices is split per unit).
//!
//! Who may re-key: a device within every unit it renews (it learns those
//! secrets anyway). It never creates a secret for a unit it is not in, so a
//! member of one team cannot give itself another team's room. The node
//! checks the issuer's certificate and revocation; this module checks the
//! structure and the epochs: an epoch moves forward by at most
//! [`MAX_EPOCH_STEP`], and two re-keys of the same unit and epoch resolve to
//! the same winner everywhere (the higher secret id).
//!
//! Pure: key material and decisions only.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoError, RoomKey, UnitPublic, UnitSecret, WrappedSecret};
use crate::identity::{Entropy, KeyPair, PublicKey, Signature};
use crate::trust::OrgUnit;
use crate::wire::{Domain, Format, Kind, signing_bytes};

/// Most wraps one unit's re-key may carry (a unit with more direct devices
/// must be split into sub-units).
pub const MAX_WRAPS_PER_UNIT: usize = 4096;
/// Furthest one re-key may move a unit's epoch past the one a device holds,
/// so a single message cannot push an epoch out of reach.
pub const MAX_EPOCH_STEP: u64 = 16;

/// Where one wrap is addressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recipient {
    /// A child unit, by its public key for the epoch it is at.
    Unit(UnitPublic),
    /// A device: one placed directly in the unit, or one under a child
    /// unit that has no key yet.
    Device(PublicKey),
}

/// A unit's new secret sealed to one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitWrap {
    /// Whom it is for.
    pub to: Recipient,
    /// The sealed secret.
    pub secret: WrappedSecret,
}

/// One unit's new epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRekey {
    /// The unit.
    pub unit: OrgUnit,
    /// Its new epoch.
    pub epoch: u64,
    /// Its new public key.
    pub public: UnitPublic,
    /// Public id of its new secret (ties between equal epochs go to the higher).
    pub secret_id: [u8; 16],
    /// The secret, wrapped to each child and direct device.
    pub wraps: Vec<UnitWrap>,
}

/// The signed content of a re-key: units bottom up, each the parent of the one before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RekeyBody {
    /// The renewed units, deepest first.
    pub units: Vec<UnitRekey>,
    /// When it was made, Unix seconds (informative: receivers judge by
    /// their own receipt time).
    pub issued_at: u64,
}

/// A re-key of a path of the key tree, signed by the device that made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRekey {
    /// The content.
    pub body: RekeyBody,
    /// The issuing device.
    pub issuer: PublicKey,
    /// Its signature over [`Domain::PathRekey`] and the body.
    pub signature: Signature,
}

impl Format for PathRekey {
    const KIND: Kind = Kind::PathRekey;
    const MAX_LEN: usize = 1024 * 1024;
}

/// Why a re-key cannot be made or taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyTreeError {
    /// The units named are not a path (each the parent of the one before).
    #[error("a re-key must renew a unit and its ancestors in order, deepest first")]
    NotAPath,
    /// A unit would need more wraps than one re-key carries.
    #[error("org unit '{0}' has more than 4096 devices or sub-units to reach; split it")]
    TooManyWraps(String),
    /// The signature does not verify.
    #[error("re-key signature does not verify for its issuer")]
    BadSignature,
    /// The epoch goes backwards, or jumps too far.
    #[error("re-key of '{unit}' names epoch {epoch}, which is not just past the held {held}")]
    EpochOutOfStep {
        /// The unit.
        unit: String,
        /// The epoch named.
        epoch: u64,
        /// The epoch held.
        held: u64,
    },
    /// The wrap that should reach this device does not open.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The re-key reaches nothing this device holds.
    #[error("re-key reaches no unit of this device")]
    NotForMe,
}

/// The HPKE context of a wrap: the unit, its epoch, and the recipient.
fn wrap_context(unit: &OrgUnit, epoch: u64, to: &Recipient) -> Vec<u8> {
    signing_bytes(Domain::UnitKeyWrap, &(unit, epoch, to))
}

/// The context deriving a unit's room key.
fn room_context(unit: &OrgUnit, epoch: u64) -> Vec<u8> {
    signing_bytes(Domain::UnitKeyWrap, &("room", unit, epoch))
}

/// A unit and each of its ancestors, the unit first.
pub fn path_to_root(unit: &OrgUnit) -> Vec<OrgUnit> {
    let mut path = vec![unit.clone()];
    while let Some(parent) = path.last().and_then(OrgUnit::parent) {
        path.push(parent);
    }
    path
}

impl PathRekey {
    /// Signs `body` as `issuer`.
    pub fn sign(body: RekeyBody, issuer: &KeyPair) -> Self {
        let signature = issuer.sign(Domain::PathRekey, &body);
        PathRekey {
            body,
            issuer: issuer.public(),
            signature,
        }
    }

    /// Checks the signature (strictly) and that the units form a path.
    /// Whether the issuer may renew them is the caller's decision: it must
    /// be an unrevoked device within [`PathRekey::lowest`].
    pub fn verify(&self) -> Result<(), KeyTreeError> {
        if !self
            .issuer
            .verify(Domain::PathRekey, &self.body, &self.signature)
        {
            return Err(KeyTreeError::BadSignature);
        }
        let units = &self.body.units;
        if units.is_empty()
            || units.len() > OrgUnit::MAX_DEPTH
            || units
                .windows(2)
                .any(|pair| pair[0].unit.parent().as_ref() != Some(&pair[1].unit))
        {
            return Err(KeyTreeError::NotAPath);
        }
        if let Some(unit) = units.iter().find(|u| u.wraps.len() > MAX_WRAPS_PER_UNIT) {
            return Err(KeyTreeError::TooManyWraps(unit.unit.to_string()));
        }
        Ok(())
    }

    /// The deepest unit renewed: the issuer must be within it.
    pub fn lowest(&self) -> Option<&OrgUnit> {
        self.body.units.first().map(|u| &u.unit)
    }

    /// Wraps carried in all.
    pub fn wraps(&self) -> usize {
        self.body.units.iter().map(|u| u.wraps.len()).sum()
    }
}

/// What it costs to re-key a path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RekeyCost {
    /// Units renewed.
    pub units: usize,
    /// Wraps made (HPKE seals).
    pub wraps: usize,
}

/// One unit as a re-keying device knows it.
#[derive(Clone, Debug, Default)]
struct UnitNode {
    children: BTreeSet<String>,
    devices: BTreeSet<PublicKey>,
    epoch: u64,
    public: Option<UnitPublic>,
}

/// Most removed devices a tree remembers (to tell a re-key that still
/// reaches one); the oldest are forgotten first.
pub const MAX_REMOVED: usize = 4096;

/// The agency's tree as one device knows it: units, their children and
/// direct devices, and each unit's current epoch and public key (learned
/// from re-keys, which are public).
#[derive(Clone, Debug, Default)]
pub struct KeyTree {
    units: BTreeMap<String, UnitNode>,
    /// Units whose current secret a removed device knew, with the public
    /// key of that secret: until renewed past it, they are reached
    /// through their children and devices, never by that key.
    compromised: BTreeMap<String, UnitPublic>,
    /// Devices taken out, oldest first (at most [`MAX_REMOVED`]).
    removed: Vec<PublicKey>,
}

/// A re-key made by this device, with the new secrets it keeps.
#[derive(Debug)]
pub struct Rekeyed {
    /// The body to sign and publish.
    pub body: RekeyBody,
    /// The new secrets, deepest unit first.
    pub secrets: Vec<(OrgUnit, u64, UnitSecret)>,
}

impl KeyTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Places `device` in `unit` (creating the unit and its ancestors).
    pub fn add_device(&mut self, unit: &OrgUnit, device: PublicKey) {
        let path = path_to_root(unit);
        for pair in path.windows(2) {
            self.units
                .entry(pair[1].to_string())
                .or_default()
                .children
                .insert(pair[0].to_string());
        }
        self.units
            .entry(unit.to_string())
            .or_default()
            .devices
            .insert(device);
    }

    /// Takes `device` out of `unit` (revoked, or moved); whether it was
    /// there. Every keyed unit on its path is then compromised: a re-key
    /// made by anyone, anywhere, reaches those units' members through
    /// their children and devices, so the device opens nothing new.
    pub fn remove_device(&mut self, unit: &OrgUnit, device: &PublicKey) -> bool {
        let was = self
            .units
            .get_mut(unit.as_str())
            .is_some_and(|node| node.devices.remove(device));
        if was {
            for on_path in path_to_root(unit) {
                if let Some(public) = self.units.get(on_path.as_str()).and_then(|n| n.public) {
                    self.compromised.insert(on_path.to_string(), public);
                }
            }
            if self.removed.len() >= MAX_REMOVED {
                self.removed.remove(0);
            }
            self.removed.push(*device);
        }
        was
    }

    /// Whether `unit`'s current secret may be known to a removed device.
    pub fn is_compromised(&self, unit: &OrgUnit) -> bool {
        self.compromised.contains_key(unit.as_str())
    }

    /// Devices in the tree.
    pub fn device_count(&self) -> usize {
        self.units.values().map(|u| u.devices.len()).sum()
    }

    /// A unit's current epoch and public key, if it has been keyed.
    pub fn public(&self, unit: &OrgUnit) -> Option<(u64, UnitPublic)> {
        let node = self.units.get(unit.as_str())?;
        node.public.map(|public| (node.epoch, public))
    }

    /// Records the epochs and public keys a (verified, accepted) re-key sets.
    pub fn learn(&mut self, body: &RekeyBody) {
        for unit in &body.units {
            let node = self.units.entry(unit.unit.to_string()).or_default();
            let newer = match node.public {
                None => true,
                Some(_) => unit.epoch > node.epoch,
            };
            if newer {
                node.epoch = unit.epoch;
                node.public = Some(unit.public);
                // Renewed past the removal only if nothing reaches a
                // removed device or a compromised key (a re-key made by a
                // device that had not heard of the removal does).
                let reaches_removed = unit.wraps.iter().any(|wrap| match &wrap.to {
                    Recipient::Device(device) => self.removed.contains(device),
                    Recipient::Unit(public) => self.compromised.values().any(|p| p == public),
                });
                if !reaches_removed {
                    self.compromised.remove(unit.unit.as_str());
                }
            }
        }
    }

    /// The chain of units from `from` up to `to` (an ancestor or itself).
    fn chain(from: &OrgUnit, to: &OrgUnit) -> Result<Vec<OrgUnit>, KeyTreeError> {
        if !from.is_within(to) {
            return Err(KeyTreeError::NotAPath);
        }
        let mut chain = path_to_root(from);
        let keep = chain
            .iter()
            .position(|u| u == to)
            .ok_or(KeyTreeError::NotAPath)?;
        chain.truncate(keep + 1);
        Ok(chain)
    }

    /// The fewest recipients reaching every device at or under `unit`: its
    /// key, if it has one no removed device knew; otherwise the cover of
    /// each child and its direct devices.
    fn cover(&self, unit: &str, out: &mut Vec<Recipient>) -> Result<(), KeyTreeError> {
        let Some(node) = self.units.get(unit) else {
            return Ok(());
        };
        match node.public {
            Some(public) if !self.compromised.contains_key(unit) => {
                out.push(Recipient::Unit(public));
            }
            _ => {
                for child in &node.children {
                    self.cover(child, out)?;
                }
                out.extend(node.devices.iter().copied().map(Recipient::Device));
            }
        }
        if out.len() > MAX_WRAPS_PER_UNIT {
            return Err(KeyTreeError::TooManyWraps(unit.to_string()));
        }
        Ok(())
    }

    /// Who a renewed unit's secret goes to: children (by key, or through
    /// their cover if unkeyed or compromised; `renewed_child` under its new
    /// key) and direct devices.
    fn recipients(
        &self,
        unit: &str,
        renewed_child: Option<(&str, UnitPublic)>,
    ) -> Result<Vec<Recipient>, KeyTreeError> {
        let Some(node) = self.units.get(unit) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for child in &node.children {
            match renewed_child {
                Some((name, public)) if name == child => out.push(Recipient::Unit(public)),
                _ => self
                    .cover(child, &mut out)
                    .map_err(|_| KeyTreeError::TooManyWraps(unit.to_string()))?,
            }
        }
        out.extend(node.devices.iter().copied().map(Recipient::Device));
        if out.len() > MAX_WRAPS_PER_UNIT {
            return Err(KeyTreeError::TooManyWraps(unit.to_string()));
        }
        Ok(out)
    }

    /// What [`KeyTree::rekey`] from `from` up to `to` would cost now.
    pub fn cost(&self, from: &OrgUnit, to: &OrgUnit) -> Result<RekeyCost, KeyTreeError> {
        let chain = Self::chain(from, to)?;
        let mut wraps = 0;
        let mut below: Option<&str> = None;
        for unit in &chain {
            // The child on the path counts once, whatever key it has.
            let placeholder = UnitPublic([0; 32]);
            wraps += self
                .recipients(unit.as_str(), below.map(|b| (b, placeholder)))?
                .len();
            below = Some(unit.as_str());
        }
        Ok(RekeyCost {
            units: chain.len(),
            wraps,
        })
    }

    /// Renews `from` and its ancestors up to `to`, bottom up: a fresh secret
    /// for each, one epoch past the one known, wrapped to its children and
    /// direct devices. The caller signs the body ([`PathRekey::sign`]),
    /// keeps the secrets and [`KeyTree::learn`]s the body once published.
    pub fn rekey(
        &self,
        from: &OrgUnit,
        to: &OrgUnit,
        now: u64,
        entropy: &mut impl Entropy,
    ) -> Result<Rekeyed, KeyTreeError> {
        let chain = Self::chain(from, to)?;
        let mut units = Vec::with_capacity(chain.len());
        let mut secrets = Vec::with_capacity(chain.len());
        let mut below: Option<(String, UnitPublic)> = None;
        for unit in chain {
            let node = self.units.get(unit.as_str());
            let epoch = match node.and_then(|n| n.public.map(|_| n.epoch)) {
                Some(epoch) => epoch.checked_add(1).ok_or(KeyTreeError::EpochOutOfStep {
                    unit: unit.to_string(),
                    epoch,
                    held: epoch,
                })?,
                None => 1,
            };
            let secret = UnitSecret::generate(entropy);
            let recipients = self.recipients(
                unit.as_str(),
                below
                    .as_ref()
                    .map(|(name, public)| (name.as_str(), *public)),
            )?;
            let wraps = recipients
                .into_iter()
                .map(|to| {
                    let context = wrap_context(&unit, epoch, &to);
                    let secret = match &to {
                        Recipient::Unit(public) => secret.wrap_to_unit(public, &context)?,
                        Recipient::Device(device) => secret.wrap_to_device(device, &context)?,
                    };
                    Ok(UnitWrap { to, secret })
                })
                .collect::<Result<Vec<_>, CryptoError>>()?;
            let public = secret.public();
            below = Some((unit.to_string(), public));
            units.push(UnitRekey {
                unit: unit.clone(),
                epoch,
                public,
                secret_id: secret.secret_id(),
                wraps,
            });
            secrets.push((unit, epoch, secret));
        }
        Ok(Rekeyed {
            body: RekeyBody {
                units,
                issued_at: now,
            },
            secrets,
        })
    }
}

/// One unit secret a device holds.
#[derive(Debug)]
struct Held {
    epoch: u64,
    secret: UnitSecret,
}

/// Earlier secrets of each unit a keyring keeps, to open wraps addressed
/// to them: two devices in different units renewing a common ancestor at
/// once each wrap it to the other's child key as they knew it, and the
/// winner's may be addressed to a key its receivers have since replaced.
pub const PREVIOUS_SECRETS: usize = 4;

/// The unit secrets one device holds: its own unit's and each ancestor's.
#[derive(Debug)]
pub struct UnitKeyring {
    path: Vec<OrgUnit>,
    held: BTreeMap<String, Held>,
    /// Replaced secrets per unit, newest last (at most [`PREVIOUS_SECRETS`]).
    previous: BTreeMap<String, Vec<UnitSecret>>,
}

impl UnitKeyring {
    /// The keyring of a device placed in `unit`, holding nothing yet.
    pub fn new(unit: &OrgUnit) -> Self {
        UnitKeyring {
            path: path_to_root(unit),
            held: BTreeMap::new(),
            previous: BTreeMap::new(),
        }
    }

    /// Keeps secrets this device made itself ([`Rekeyed::secrets`]).
    pub fn keep(&mut self, secrets: Vec<(OrgUnit, u64, UnitSecret)>) {
        for (unit, epoch, secret) in secrets {
            if self.path.contains(&unit) {
                self.hold(&unit, Held { epoch, secret });
            }
        }
    }

    /// Holds `held` as `unit`'s secret, keeping the one it replaces.
    fn hold(&mut self, unit: &OrgUnit, held: Held) {
        if let Some(replaced) = self.held.insert(unit.to_string(), held) {
            let previous = self.previous.entry(unit.to_string()).or_default();
            if previous.len() >= PREVIOUS_SECRETS {
                previous.remove(0);
            }
            previous.push(replaced.secret);
        }
    }

    /// Takes a verified re-key: opens, bottom up, every renewed unit on this
    /// device's path it can reach (its own wrap, or a wrap to a child secret
    /// it holds), and returns the units whose secret it now holds anew.
    /// Epochs only move forward, by at most [`MAX_EPOCH_STEP`]; at an equal
    /// epoch the higher secret id wins, so concurrent re-keys converge.
    pub fn accept(&mut self, me: &KeyPair, body: &RekeyBody) -> Result<Vec<OrgUnit>, KeyTreeError> {
        let mut renewed = Vec::new();
        let mut refused = None;
        for unit in &body.units {
            let Some(depth) = self.path.iter().position(|u| *u == unit.unit) else {
                continue;
            };
            // A losing secret of the held epoch is still opened and kept
            // aside: a concurrent re-key's higher units, which may win,
            // are wrapped to it.
            let mut aside = false;
            if let Some(held) = self.held.get(unit.unit.as_str()) {
                let forward = unit.epoch > held.epoch && unit.epoch - held.epoch <= MAX_EPOCH_STEP;
                let wins_tie = unit.epoch == held.epoch && unit.secret_id > held.secret.secret_id();
                if !forward && !wins_tie {
                    if unit.epoch != held.epoch {
                        refused = Some(KeyTreeError::EpochOutOfStep {
                            unit: unit.unit.to_string(),
                            epoch: unit.epoch,
                            held: held.epoch,
                        });
                        continue;
                    }
                    let known = unit.secret_id == held.secret.secret_id()
                        || self
                            .previous
                            .get(unit.unit.as_str())
                            .is_some_and(|p| p.iter().any(|s| s.secret_id() == unit.secret_id));
                    if known {
                        continue;
                    }
                    aside = true;
                }
            }
            // The wrap for me: my own, or one to a unit below on my path
            // whose secret I hold (the child, or deeper when the child's
            // key was compromised).
            let below: Vec<&UnitSecret> = self.path[..depth]
                .iter()
                .flat_map(|u| {
                    let current = self.held.get(u.as_str()).map(|h| &h.secret);
                    let earlier = self.previous.get(u.as_str()).into_iter().flatten();
                    current.into_iter().chain(earlier.rev())
                })
                .collect();
            let opened = unit.wraps.iter().find_map(|wrap| {
                let context = wrap_context(&unit.unit, unit.epoch, &wrap.to);
                match &wrap.to {
                    Recipient::Device(device) if *device == me.public() => {
                        Some(wrap.secret.open_as_device(me, &context))
                    }
                    Recipient::Unit(public) => below
                        .iter()
                        .find(|secret| secret.public() == *public)
                        .map(|secret| wrap.secret.open_as_unit(secret, &context)),
                    Recipient::Device(_) => None,
                }
            });
            let secret = match opened {
                None => continue,
                Some(Err(e)) => {
                    refused = Some(e.into());
                    continue;
                }
                Some(Ok(secret)) => secret,
            };
            if secret.public() != unit.public || secret.secret_id() != unit.secret_id {
                refused = Some(KeyTreeError::Crypto(CryptoError::Unauthentic(
                    "unit key (not the one announced)",
                )));
                continue;
            }
            if aside {
                let previous = self.previous.entry(unit.unit.to_string()).or_default();
                if previous.len() >= PREVIOUS_SECRETS {
                    previous.remove(0);
                }
                previous.push(secret);
                continue;
            }
            self.hold(
                &unit.unit,
                Held {
                    epoch: unit.epoch,
                    secret,
                },
            );
            renewed.push(unit.unit.clone());
        }
        match (renewed.is_empty(), refused) {
            (true, Some(error)) => Err(error),
            (true, None) => Err(KeyTreeError::NotForMe),
            (false, _) => Ok(renewed),
        }
    }

    /// The current key of `unit`'s department room, with its epoch.
    pub fn room_key(&self, unit: &OrgUnit) -> Option<(u64, RoomKey)> {
        let held = self.held.get(unit.as_str())?;
        Some((
            held.epoch,
            held.secret.room_key(&room_context(unit, held.epoch)),
        ))
    }

    /// The epoch held for `unit`.
    pub fn epoch(&self, unit: &OrgUnit) -> Option<u64> {
        self.held.get(unit.as_str()).map(|h| h.epoch)
    }
}

#[cfg(test)]
mod tests;
