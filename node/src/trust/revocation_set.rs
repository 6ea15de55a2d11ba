//! The agency's revocation set as one node knows it: grow-only, checked on
//! the way in, with a digest two peers compare to see whether they agree.
//!
//! Pure: it decides; the node persists the revocations' bytes.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::identity::PublicKey;

use super::{AgencyInfo, Revocation, TrustError, TrustPolicy, VerifiedDevice, VerifiedRevocation};

/// Most revocations one node keeps (a generous bound on a whole agency's).
pub const MAX_REVOCATIONS: usize = 100_000;

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
    /// The class of every entry (at most one entry per class).
    classes: HashSet<Class>,
    /// Ids of device revocations by target key, and of user revocations by user.
    by_key: HashMap<PublicKey, Vec<[u8; 32]>>,
    by_user: HashMap<String, Vec<[u8; 32]>>,
    policy: TrustPolicy,
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies `revocation` and checks that its issuer is not revoked here.
    pub fn check(
        &self,
        revocation: &Revocation,
        agency: &AgencyInfo,
        now: u64,
    ) -> Result<VerifiedRevocation, RevocationError> {
        let verified = revocation.verify(agency, now, &self.policy)?;
        if let Some(issuer) = &verified.issuer_device
            && let Some(against) = self.covering(issuer)
        {
            return Err(RevocationError::IssuerRevoked {
                issuer: verified.issued_by.clone(),
                revoked: against.describe(),
            });
        }
        Ok(verified)
    }

    /// Adds a checked revocation; `Ok(false)` if it, or one that does the
    /// same (same target and scope, same kind of issuer, same wipe order),
    /// was already here: re-revoking is idempotent.
    pub fn insert(&mut self, verified: VerifiedRevocation) -> Result<bool, RevocationError> {
        let class = Class::of(&verified);
        if self.entries.contains_key(&verified.id) || self.classes.contains(&class) {
            return Ok(false);
        }
        if self.entries.len() >= MAX_REVOCATIONS {
            return Err(RevocationError::Full);
        }
        self.classes.insert(class);
        match verified.scope {
            super::RevocationScope::Device => self
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

    /// The earliest revocation that covers `device` or any certificate
    /// above it in its chain (its operator's), if any: a revoked operator's
    /// certificate takes down everything under it, at any depth (audit H2).
    pub fn covering(&self, device: &VerifiedDevice) -> Option<&VerifiedRevocation> {
        device
            .certificates()
            .flat_map(|certificate| {
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
            .min_by_key(|r| (r.issued_at, r.id))
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
