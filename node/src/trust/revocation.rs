//! A revocation: a signed statement that a device (or every device of a
//! user) is out of the agency from now on, and whether it must wipe itself.
//!
//! Who may sign one:
//! - the agency root: any device, user or operator;
//! - an operator (a chain whose holder has role operator): any device or
//!   user that is not an operator;
//! - another device of the same user (self-service): one of that user's own
//!   devices, never an operator's, never itself.
//!
//! The revocation carries the target's certificate chain, so every node can
//! check who the target is (user, role) without having met it. Whether the
//! issuer was itself revoked is decided against the set
//! ([`super::RevocationSet`]).

use serde::{Deserialize, Serialize};

use super::{
    Action, AgencyId, AgencyInfo, CertificateChain, Role, TrustError, TrustPolicy, VerifiedDevice,
};
use crate::clock::format_utc;
use crate::identity::{DeviceId, KeyPair, PublicKey, Signature};
use crate::wire::{self, Domain, Format, Kind};

/// Longest accepted reason, in bytes.
pub const MAX_REASON_LEN: usize = 256;

/// What a revocation covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevocationScope {
    /// The one device certified by the target chain (or, if that chain is an
    /// operator's signing key, every device it certified).
    Device,
    /// Every device of the target chain's user certified up to the
    /// revocation's issue time.
    User,
    /// Only the target's certificate (by its key, serial and issuer): an
    /// operator retires it when the holder moves to another org unit or
    /// changes role and gets a new one for the same key (audit M12). The
    /// same key under its newer certificate stays in.
    Certificate,
}

/// Who signed a revocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Issuer {
    /// The agency root key.
    Root,
    /// The holder of this chain: an operator, or a device of the target's user.
    Chain(CertificateChain),
}

/// The signed part of a revocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationBody {
    /// The agency.
    pub agency: AgencyId,
    /// One device, or all of its user's devices.
    pub scope: RevocationScope,
    /// The certificate chain of the device named.
    pub target: CertificateChain,
    /// Why, in words (shown to operators; 1 to 256 bytes).
    pub reason: String,
    /// When it was issued, Unix seconds.
    pub issued_at: u64,
    /// Whether the revoked device erases its local data when it learns of it.
    pub wipe: bool,
    /// Who signs it.
    pub issuer: Issuer,
}

/// A revocation: body plus the issuer's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// What is revoked.
    pub body: RevocationBody,
    /// The issuer's signature over [`Domain::Revocation`] and the body.
    pub signature: Signature,
}

impl Format for Revocation {
    const KIND: Kind = Kind::Revocation;
    const MAX_LEN: usize = 12 * 1024;
}

/// A revocation that verified: what it says, in checked form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRevocation {
    /// Its id: the hash of its encoding (also its sync and gossip id).
    pub id: [u8; 32],
    /// One device or all of a user's.
    pub scope: RevocationScope,
    /// The key the target chain certifies.
    pub target_key: PublicKey,
    /// The target's user id.
    pub user: String,
    /// The target's display name.
    pub display_name: String,
    /// The target's role.
    pub target_role: Role,
    /// The target's certificate, checked.
    pub target: VerifiedDevice,
    /// When the target's certificate starts (how old the target device is).
    pub target_not_before: u64,
    /// When the target's certificate ends (relays keep the revocation until then).
    pub target_not_after: u64,
    /// Why.
    pub reason: String,
    /// Issue time, Unix seconds.
    pub issued_at: u64,
    /// Whether the device wipes itself.
    pub wipe: bool,
    /// The issuing device (None for the agency root).
    pub issuer_device: Option<VerifiedDevice>,
    /// Who issued it, for people: "operator park.jiwoo", "the agency root",
    /// "kim.minji's device …".
    pub issued_by: String,
}

impl Revocation {
    /// Signs `body` with `issuer` (the root key, or the key of the chain in `body.issuer`).
    pub fn sign(body: RevocationBody, issuer: &KeyPair) -> Self {
        let signature = issuer.sign(Domain::Revocation, &body);
        Revocation { body, signature }
    }

    /// Its id: the hash of its encoding.
    pub fn id(&self) -> [u8; 32] {
        *blake3::hash(&wire::encode(self)).as_bytes()
    }

    /// Checks everything that does not depend on other revocations: agency,
    /// reason, time, the target's chain, the issuer's chain and signature,
    /// and the issuer's authority over the target.
    ///
    /// `now` is when this node receives it: the issuer's chain must be valid
    /// then, not at the `issued_at` the issuer chose, so an expired or
    /// retired key has no power left whatever date it writes (audit H3).
    /// A node that took a revocation re-checks it at the time it first took
    /// it (see [`super::RevocationSet`]), so a restart derives the same set.
    pub fn verify(
        &self,
        agency: &AgencyInfo,
        now: u64,
        policy: &TrustPolicy,
    ) -> Result<VerifiedRevocation, TrustError> {
        let body = &self.body;
        if body.agency != agency.id() {
            return Err(TrustError::UnknownAgency {
                expected: agency.id(),
                found: body.agency,
            });
        }
        validate_reason(&body.reason)?;
        if body.issued_at > now.saturating_add(policy.clock_skew_secs) {
            // Typed as a clock matter: a node whose clock is slow takes it
            // later (audit M4), and does not blame whoever passed it on.
            return Err(TrustError::NotYetValid {
                what: "revocation issued in the future".into(),
                not_before: body.issued_at.saturating_sub(policy.clock_skew_secs),
                now,
            });
        }
        // The target's certificate may have expired since: check it as of its
        // own start, which proves who it names.
        let start = body
            .target
            .leaf()
            .map(|c| c.body.not_before)
            .ok_or_else(|| TrustError::invalid("revocation", "names no certificate"))?;
        let target = body.target.verify(agency, start, policy)?;
        // A revocation dated before its target existed is backdated: an
        // expired or retired key would otherwise keep the power to revoke
        // (and wipe) devices enrolled after it (audit H3).
        if body.issued_at < start {
            return Err(TrustError::invalid(
                "revocation",
                format!(
                    "dated {}, before the certificate it revokes was issued ({})",
                    format_utc(body.issued_at),
                    format_utc(start)
                ),
            ));
        }
        let (signer, issuer_device, issued_by) = match &body.issuer {
            Issuer::Root => (agency.root, None, "the agency root".to_string()),
            Issuer::Chain(chain) => {
                let issuer = chain.verify(agency, now, policy)?;
                let name = match issuer.role {
                    Role::Operator => format!("operator {}", issuer.subject.user_id),
                    _ => format!(
                        "{}'s device {}",
                        issuer.subject.user_id,
                        issuer.device.short()
                    ),
                };
                (issuer.device.public_key(), Some(issuer), name)
            }
        };
        if !signer.verify(Domain::Revocation, body, &self.signature) {
            return Err(TrustError::BadSignature {
                what: "revocation".into(),
                signer: issued_by,
            });
        }
        if let Some(issuer) = &issuer_device {
            check_authority(issuer, &target, body.scope)?;
        }
        Ok(VerifiedRevocation {
            id: self.id(),
            scope: body.scope,
            target_key: target.device.public_key(),
            user: target.subject.user_id.clone(),
            display_name: target.subject.display_name.clone(),
            target_role: target.role,
            target: target.clone(),
            target_not_before: target.not_before,
            target_not_after: target.not_after,
            reason: body.reason.clone(),
            issued_at: body.issued_at,
            wipe: body.wipe,
            issuer_device,
            issued_by,
        })
    }
}

impl VerifiedRevocation {
    /// Whether this revocation covers `device`. A device revocation covers
    /// the certificates of its target key, and, when the target is an
    /// operator, every certificate that operator issued; a certificate
    /// someone made for an operator's key as a mere member covers neither
    /// that operator nor what it enrolled (audit H1).
    pub fn covers(&self, device: &VerifiedDevice, policy: &TrustPolicy) -> bool {
        let key = device.device.public_key();
        let operator_target = self.target_role == Role::Operator;
        match self.scope {
            RevocationScope::Device => {
                (key == self.target_key && (operator_target || device.role != Role::Operator))
                    || (operator_target && device.issuer == self.target_key)
            }
            RevocationScope::User => {
                device.subject.user_id == self.user
                    && device.not_before <= self.issued_at.saturating_add(policy.clock_skew_secs)
                    && (self.issuer_device.is_none() || device.role != Role::Operator)
            }
            RevocationScope::Certificate => {
                key == self.target_key
                    && device.serial == self.target.serial
                    && device.issuer == self.target.issuer
                    && device.not_before == self.target.not_before
            }
        }
    }

    /// Whether another device of the target's own user signed it (not an
    /// operator, not the root).
    pub fn is_self_service(&self) -> bool {
        self.issuer_device
            .as_ref()
            .is_some_and(|issuer| issuer.role != Role::Operator)
    }

    /// The key that signed it (None for the agency root).
    pub fn issuer_key(&self) -> Option<PublicKey> {
        self.issuer_device
            .as_ref()
            .map(|issuer| issuer.device.public_key())
    }

    /// Whether the issuing device is older than the target: its certificate
    /// started earlier (ties go to the smaller key). Only meaningful for
    /// self-service revocations.
    pub fn issuer_is_older(&self) -> bool {
        self.issuer_device.as_ref().is_some_and(|issuer| {
            (issuer.not_before, issuer.device.public_key())
                < (self.target_not_before, self.target_key)
        })
    }

    /// Whether the target must erase itself. An operator's or the root's
    /// wipe order always counts. A device's own user may order a wipe only
    /// of a device no older than the one signing (certified at the same
    /// time or later): a thief holding the newer phone can shut the owner's
    /// older PC out for a moment, but never wipe it, and the PC's
    /// counter-revocation wins (the older device wins;
    /// [`super::RevocationSet`]). A lost device older than the others is
    /// wiped by an operator.
    pub fn orders_wipe(&self) -> bool {
        self.wipe
            && (!self.is_self_service()
                || self
                    .issuer_device
                    .as_ref()
                    .is_some_and(|issuer| issuer.not_before <= self.target_not_before))
    }

    /// The device named by the target chain.
    pub fn target_device(&self) -> DeviceId {
        self.target_key.device_id()
    }

    /// Until when it matters: afterwards every certificate it covers has
    /// expired anyway (Unix seconds).
    pub fn expires_at(&self) -> u64 {
        match self.scope {
            RevocationScope::Device | RevocationScope::Certificate => self.target_not_after,
            RevocationScope::User => self
                .issued_at
                .saturating_add(super::MAX_DEVICE_CERT_DAYS * super::DAY_SECS),
        }
    }

    /// One line for people: "device … of kim.minji (Kim Minji), revoked by
    /// operator park at …: lost phone".
    pub fn describe(&self) -> String {
        let what = match self.scope {
            RevocationScope::Device => {
                format!("device {} of {}", self.target_device().short(), self.user)
            }
            RevocationScope::User => format!("every device of {}", self.user),
            RevocationScope::Certificate => format!(
                "certificate #{} of device {} of {} ({})",
                self.target.serial,
                self.target_device().short(),
                self.user,
                self.target.subject.org_unit
            ),
        };
        format!(
            "{what}, revoked by {} at {}: {}",
            self.issued_by,
            format_utc(self.issued_at),
            self.reason
        )
    }
}

fn check_authority(
    issuer: &VerifiedDevice,
    target: &VerifiedDevice,
    scope: RevocationScope,
) -> Result<(), TrustError> {
    match issuer.role {
        Role::Operator => {
            if target.role == Role::Operator {
                return Err(TrustError::invalid(
                    "revocation",
                    "an operator can only be revoked by the agency root",
                ));
            }
            Ok(())
        }
        Role::Member => {
            let own = issuer.subject.user_id == target.subject.user_id;
            if scope != RevocationScope::Device || !own {
                return Err(TrustError::WrongRole {
                    who: issuer.subject.user_id.clone(),
                    role: issuer.role,
                    action: "revoke devices other than their own",
                });
            }
            if target.role == Role::Operator {
                return Err(TrustError::invalid(
                    "revocation",
                    "an operator device can only be revoked by the agency root",
                ));
            }
            if target.device == issuer.device {
                return Err(TrustError::invalid(
                    "revocation",
                    "a device cannot revoke itself; use another of your devices",
                ));
            }
            Ok(())
        }
        Role::Relay => Action::Revoke.check(issuer.role, issuer.subject.user_id.clone()),
    }
}

/// Checks a reason: 1 to 256 bytes of printable text.
pub fn validate_reason(reason: &str) -> Result<(), TrustError> {
    if reason.trim().is_empty()
        || reason.len() > MAX_REASON_LEN
        || reason.chars().any(char::is_control)
    {
        return Err(TrustError::invalid(
            "revocation reason",
            format!("use 1 to {MAX_REASON_LEN} bytes of printable text"),
        ));
    }
    Ok(())
}
