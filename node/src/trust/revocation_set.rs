//! The agency's revocation set as one node knows it: checked on the way in,
//! with a digest two peers compare to see whether they agree.
//!
//! The rules (issue 17):
//! - One revocation per act: scope, target, kind of issuer and wipe order
//!   ([`Class`]); re-revoking is idempotent.
//! - Each issuer holds a bounded share: an official's device at most
//!   [`MAX_PER_DEVICE`], an operator at most [`MAX_PER_OPERATOR`] (the root
//!   is bounded only by [`MAX_REVOCATIONS`]).
//! - A revocation is checked when it arrives, at that time (see
//!   [`super::Revocation::verify`]); one whose issuer is revoked here then
//!   is refused. The node replays what it took in the order and at the
//!   times it took it, so a restart derives the same set (audit M10).
//! - Two devices of one user revoking each other: the older device wins
//!   (its certificate started first), unless an operator or the root
//!   revoked one of the two, whose word wins. The loser's revocation stays
//!   held (peers still sync it) but covers nothing. Only the older of two
//!   devices may order the other's wipe ([`VerifiedRevocation::orders_wipe`]).
//! - A revocation leaves the set [`KEPT_AFTER_EXPIRY_SECS`] after every
//!   certificate it covers has expired ([`RevocationSet::prune_expired`]),
//!   so the set shrinks; until then a device that was off past its
//!   certificate's end is still shown its revocation at first contact.
//!
//! Pure: it decides; the node persists the revocations' bytes.

use std::collections::{BTreeMap, HashMap};

use crate::identity::PublicKey;

use super::{AgencyInfo, Revocation, TrustError, TrustPolicy, VerifiedDevice, VerifiedRevocation};

/// Most revocations one node keeps (a generous bound on a whole agency's).
pub const MAX_REVOCATIONS: usize = 100_000;
/// How long a revocation stays in the set after every certificate it
/// covers has expired: a device that was off past its certificate's end
/// still learns its revocation at its first contact (and wipes), and then
/// the set shrinks.
pub const KEPT_AFTER_EXPIRY_SECS: u64 = 90 * super::DAY_SECS;
/// Most revocations one official's device may have in the set (it can
/// only revoke its own user's other devices, once each).
pub const MAX_PER_DEVICE: usize = 32;
/// Most revocations one operator may have in the set: an operator can
/// certify keys at will, so without a share a rogue operator could fill
/// the set and stop every other revocation.
pub const MAX_PER_OPERATOR: usize = 20_000;

/// Why a revocation is not taken.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RevocationError {
    /// Its signature, agency, chains or authority do not check out.
    #[error("forged or invalid revocation: {0}")]
    Invalid(#[from] TrustError),
    /// Its issuer was itself revoked.
    #[error("revocation issued by {issuer}, whose device was revoked ({revoked})")]
    IssuerRevoked {
        /// Who issued it.
        issuer: String,
        /// The revocation that covers the issuer.
        revoked: String,
    },
    /// The set is full.
    #[error("too many revocations (at most {MAX_REVOCATIONS})")]
    Full,
    /// Its issuer already has its share of the set.
    #[error("{issuer} has issued too many revocations (at most {max} in force)")]
    IssuerFull {
        /// Who issued it.
        issuer: String,
        /// The issuer's share.
        max: usize,
    },
    /// Every certificate it could cover has expired.
    #[error("revocation of {0} has expired with the certificate it covers")]
    Expired(String),
}

/// What makes two revocations the same act: scope, target (key or user),
/// the kind of issuer and whether it orders a wipe. The set keeps one
/// revocation per class, so repeating a revocation with another reason or
/// date adds nothing (audit C3); a stronger one (an operator's after the
/// user's own, one that orders a wipe after one that does not) still counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Class {
    scope: super::RevocationScope,
    target: Target,
    issuer: IssuerKind,
    wipe: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Target {
    Key(PublicKey),
    User(String),
    Certificate(PublicKey, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum IssuerKind {
    Root,
    Operator,
    OwnDevice,
}

impl Class {
    fn of(revocation: &VerifiedRevocation) -> Self {
        Class {
            scope: revocation.scope,
            target: match revocation.scope {
                super::RevocationScope::Device => Target::Key(revocation.target_key),
                super::RevocationScope::User => Target::User(revocation.user.clone()),
                super::RevocationScope::Certificate => {
                    Target::Certificate(revocation.target_key, revocation.target.serial)
                }
            },
            issuer: match &revocation.issuer_device {
                None => IssuerKind::Root,
                Some(device) if device.role == super::Role::Operator => IssuerKind::Operator,
                Some(_) => IssuerKind::OwnDevice,
            },
            wipe: revocation.wipe,
        }
    }
}

/// Every revocation a node has accepted.
#[derive(Debug, Default, Clone)]
pub struct RevocationSet {
    entries: BTreeMap<[u8; 32], VerifiedRevocation>,
    /// The entry in force for every class (at most one per class).
    classes: HashMap<Class, [u8; 32]>,
    /// Ids of device revocations by target key, and of user revocations by user.
    by_key: HashMap<PublicKey, Vec<[u8; 32]>>,
    by_user: HashMap<String, Vec<[u8; 32]>>,
    /// Ids by issuing device key (not the root's).
    by_issuer: HashMap<PublicKey, Vec<[u8; 32]>>,
    /// Overrides of [`MAX_PER_DEVICE`] and [`MAX_PER_OPERATOR`] (tests).
    shares: Option<(usize, usize)>,
    policy: TrustPolicy,
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with other shares per issuer: `per_device` for an
    /// official's device, `per_operator` for an operator (tests).
    pub fn with_shares(per_device: usize, per_operator: usize) -> Self {
        RevocationSet {
            shares: Some((per_device, per_operator)),
            ..Self::default()
        }
    }

    /// Verifies `revocation` and checks that its issuer is not revoked here.
    pub fn check(
        &self,
        revocation: &Revocation,
        agency: &AgencyInfo,
        now: u64,
    ) -> Result<VerifiedRevocation, RevocationError> {
        let verified = revocation.verify(agency, now, &self.policy)?;
        if self.kept_until(&verified) < now {
            return Err(RevocationError::Expired(verified.describe()));
        }
        if let Some(issuer) = &verified.issuer_device
            && let Some(against) = self.in_force_covering(issuer).find(|against| {
                !self.answers(&verified, against) && !self.answers(against, &verified)
            })
        {
            return Err(RevocationError::IssuerRevoked {
                issuer: verified.issued_by.clone(),
                revoked: against.describe(),
            });
        }
        // A self-service revocation that lost its conflict is taken all the
        // same, overruled: every node then holds the same set whatever the
        // order the two arrived in.
        Ok(verified)
    }

    /// Whether `revocation` is the winning answer to `against`, a
    /// self-service revocation of its issuer by its own target: the older
    /// device wins, or the one an operator or the root did not revoke.
    fn answers(&self, revocation: &VerifiedRevocation, against: &VerifiedRevocation) -> bool {
        revocation.is_self_service()
            && against.is_self_service()
            && against.issuer_key() == Some(revocation.target_key)
            && revocation.issuer_key() == Some(against.target_key)
            && {
                // The operator's (or the root's) word first, then age.
                let mine_struck = self.strongly_covered(&against.target);
                let theirs_struck = self.strongly_covered(&revocation.target);
                if mine_struck != theirs_struck {
                    theirs_struck
                } else {
                    revocation.issuer_is_older()
                }
            }
    }

    /// Whether the root or an operator revoked `device`.
    fn strongly_covered(&self, device: &VerifiedDevice) -> bool {
        self.candidates(device).any(|r| !r.is_self_service())
    }

    /// Whether a self-service revocation lost a conflict: its target
    /// revoked its issuer in return and won ([`Self::answers`]).
    fn is_void(&self, revocation: &VerifiedRevocation) -> bool {
        let Some(issuer) = revocation.issuer_key() else {
            return false;
        };
        revocation.is_self_service()
            && self
                .by_issuer
                .get(&revocation.target_key)
                .into_iter()
                .flatten()
                .filter_map(|id| self.entries.get(id))
                .any(|answer| answer.target_key == issuer && self.answers(answer, revocation))
    }

    /// Revocations that cover `device` or a certificate above it, in force
    /// or not.
    fn candidates<'a>(
        &'a self,
        device: &'a VerifiedDevice,
    ) -> impl Iterator<Item = &'a VerifiedRevocation> + 'a {
        device.certificates().flat_map(move |certificate| {
            [
                self.by_key.get(&certificate.device.public_key()),
                self.by_key.get(&certificate.issuer),
                self.by_user.get(&certificate.subject.user_id),
            ]
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|id| self.entries.get(id))
            .filter(move |r| r.covers(certificate, &self.policy))
        })
    }

    /// The revocations in force that cover `device`.
    fn in_force_covering<'a>(
        &'a self,
        device: &'a VerifiedDevice,
    ) -> impl Iterator<Item = &'a VerifiedRevocation> + 'a {
        self.candidates(device).filter(|r| !self.is_void(r))
    }

    /// Adds a checked revocation; `Ok(false)` if it, or one that does the
    /// same (same target and scope, same kind of issuer, same wipe order),
    /// was already here: re-revoking is idempotent.
    pub fn insert(&mut self, verified: VerifiedRevocation) -> Result<bool, RevocationError> {
        let class = Class::of(&verified);
        let same_act = self
            .classes
            .get(&class)
            .and_then(|id| self.entries.get(id))
            .is_some_and(|held| !self.is_void(held));
        if self.entries.contains_key(&verified.id) || same_act {
            return Ok(false);
        }
        if self.entries.len() >= MAX_REVOCATIONS {
            return Err(RevocationError::Full);
        }
        if let Some(issuer) = &verified.issuer_device {
            let (per_device, per_operator) =
                self.shares.unwrap_or((MAX_PER_DEVICE, MAX_PER_OPERATOR));
            let max = if verified.is_self_service() {
                per_device
            } else {
                per_operator
            };
            let key = issuer.device.public_key();
            if self.by_issuer.get(&key).map_or(0, Vec::len) >= max {
                return Err(RevocationError::IssuerFull {
                    issuer: verified.issued_by.clone(),
                    max,
                });
            }
            self.by_issuer.entry(key).or_default().push(verified.id);
        }
        self.classes.insert(class, verified.id);
        match verified.scope {
            super::RevocationScope::Device | super::RevocationScope::Certificate => self
                .by_key
                .entry(verified.target_key)
                .or_default()
                .push(verified.id),
            super::RevocationScope::User => self
                .by_user
                .entry(verified.user.clone())
                .or_default()
                .push(verified.id),
        }
        self.entries.insert(verified.id, verified);
        Ok(true)
    }

    /// Whether the revocation with `id` is here.
    pub fn contains(&self, id: &[u8; 32]) -> bool {
        self.entries.contains_key(id)
    }

    /// The revocation with `id`.
    pub fn get(&self, id: &[u8; 32]) -> Option<&VerifiedRevocation> {
        self.entries.get(id)
    }

    /// The earliest revocation in force that covers `device` or any
    /// certificate above it in its chain (its operator's), if any: a
    /// revoked operator's certificate takes down everything under it, at
    /// any depth (audit H2). A revocation that lost a conflict between two
    /// devices of one user covers nothing.
    pub fn covering<'a>(&'a self, device: &'a VerifiedDevice) -> Option<&'a VerifiedRevocation> {
        self.in_force_covering(device)
            .min_by_key(|r| (r.issued_at, r.id))
    }

    /// The revocation in force that already does what `new` would: one
    /// that covers `new`'s target device (or certificate) and orders a
    /// wipe if `new` does. Revoking again adds nothing then (finding 29);
    /// adding a wipe order to a revocation without one is not redundant.
    /// A user revocation is never redundant here: it also covers devices
    /// the user is enrolled on later.
    pub fn already_revoked<'a>(
        &'a self,
        new: &'a VerifiedRevocation,
    ) -> Option<&'a VerifiedRevocation> {
        if new.scope == super::RevocationScope::User {
            return None;
        }
        self.in_force_covering(&new.target)
            .filter(|existing| existing.wipe || !new.wipe)
            .min_by_key(|r| (r.issued_at, r.id))
    }

    /// Whether revocation `id` is held but covers nothing: it lost a
    /// conflict between two devices of one user.
    pub fn is_overruled(&self, id: &[u8; 32]) -> bool {
        self.entries.get(id).is_some_and(|r| self.is_void(r))
    }

    /// Removes every revocation whose certificates all expired more than
    /// [`KEPT_AFTER_EXPIRY_SECS`] before `now` (plus the clock skew), and
    /// returns them.
    pub fn prune_expired(&mut self, now: u64) -> Vec<VerifiedRevocation> {
        let gone: Vec<[u8; 32]> = self
            .entries
            .values()
            .filter(|r| self.kept_until(r) < now)
            .map(|r| r.id)
            .collect();
        gone.iter().filter_map(|id| self.remove(id)).collect()
    }

    /// Until when `revocation` is kept.
    fn kept_until(&self, revocation: &VerifiedRevocation) -> u64 {
        revocation
            .expires_at()
            .saturating_add(self.policy.clock_skew_secs)
            .saturating_add(KEPT_AFTER_EXPIRY_SECS)
    }

    fn remove(&mut self, id: &[u8; 32]) -> Option<VerifiedRevocation> {
        let revocation = self.entries.remove(id)?;
        let class = Class::of(&revocation);
        if self.classes.get(&class) == Some(id) {
            self.classes.remove(&class);
        }
        let lists = [
            match revocation.scope {
                super::RevocationScope::Device | super::RevocationScope::Certificate => {
                    self.by_key.get_mut(&revocation.target_key)
                }
                super::RevocationScope::User => self.by_user.get_mut(&revocation.user),
            },
            revocation
                .issuer_key()
                .and_then(|key| self.by_issuer.get_mut(&key)),
        ];
        for list in lists.into_iter().flatten() {
            list.retain(|other| other != id);
        }
        self.by_key.retain(|_, ids| !ids.is_empty());
        self.by_user.retain(|_, ids| !ids.is_empty());
        self.by_issuer.retain(|_, ids| !ids.is_empty());
        Some(revocation)
    }

    /// Every revocation, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &VerifiedRevocation> {
        let mut all: Vec<&VerifiedRevocation> = self.entries.values().collect();
        all.sort_by_key(|r| (r.issued_at, r.id));
        all.into_iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A digest of the set: equal digests mean equal sets.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key(super::admission::REVOCATION_SET_CONTEXT);
        for id in self.entries.keys() {
            hasher.update(id);
        }
        *hasher.finalize().as_bytes()
    }
}
