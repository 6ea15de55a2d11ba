//! The agency policy: settings every device of the agency obeys, signed by
//! an operator and carried to every device like a revocation.
//!
//! - **Lease** ([`PolicySettings::lease_days`]): the longest time a device
//!   may go without meeting any admitted peer before it erases itself
//!   (see [`super::Lease`]); 0 means no lease.
//! - **Wrong PIN limit** ([`PolicySettings::max_pin_attempts`]): wrong
//!   PINs a device accepts before it erases itself.
//! - **Largest file** (an extension, [`super::KnownExtensions`]): the
//!   largest attachment a device sends or fetches.
//!
//! A policy carries a `version`: a newer one replaces the one in force,
//! an older one, or the same one again, is ignored ([`PolicyInForce::offer`]).
//! Two operators who sign different policies under the same version (their
//! consoles had not met) are settled the same way on every node: the one
//! whose id (the hash of its encoding) is higher wins, so the mesh converges
//! on one policy and the other version is replaced by the next. Its signer
//! must hold an operator chain to the agency root, valid when the policy
//! arrives and not revoked then. A policy's `format` says how to read its
//! settings: a node refuses a format it does not know (its meaning may
//! differ) but carries `extensions` it does not know, so settings can be
//! added later without a new format.

use serde::{Deserialize, Serialize};

use super::{
    AgencyId, AgencyInfo, CertificateChain, DAY_SECS, KnownExtensions, Role, TrustError,
    TrustPolicy, VerifiedDevice,
};
use crate::clock::format_utc;
use crate::identity::{KeyPair, Signature};
use crate::wire::{self, Domain, Format, Kind};

/// The settings format this build reads.
pub const POLICY_FORMAT: u16 = 1;
/// Longest lease an operator may set, in days.
pub const MAX_LEASE_DAYS: u32 = 3 * 365;
/// Most wrong PINs a policy may allow before a wipe.
pub const MAX_PIN_ATTEMPTS: u32 = 100;
/// Wrong PINs allowed when no policy says otherwise.
pub const DEFAULT_MAX_PIN_ATTEMPTS: u32 = 10;
/// Most extensions a policy may carry.
pub const MAX_POLICY_EXTENSIONS: usize = 16;
/// Largest extension value, in bytes.
pub const MAX_EXTENSION_LEN: usize = 256;

/// What the agency asks of every device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySettings {
    /// Longest time in days a device may go without meeting an admitted
    /// peer; past it, it erases itself. 0: no lease.
    pub lease_days: u32,
    /// Days before the end of its lease a device starts warning its user.
    pub lease_warning_days: u32,
    /// Wrong PINs accepted before the device erases itself.
    pub max_pin_attempts: u32,
}

impl Default for PolicySettings {
    /// No lease, and the default wrong-PIN limit: what a device obeys
    /// before any policy reached it.
    fn default() -> Self {
        PolicySettings {
            lease_days: 0,
            lease_warning_days: 0,
            max_pin_attempts: DEFAULT_MAX_PIN_ATTEMPTS,
        }
    }
}

impl PolicySettings {
    /// Checks the values: a lease of at most [`MAX_LEASE_DAYS`], a warning
    /// shorter than the lease, 1 to [`MAX_PIN_ATTEMPTS`] wrong PINs.
    pub fn validate(&self) -> Result<(), TrustError> {
        if self.lease_days > MAX_LEASE_DAYS {
            return Err(TrustError::invalid(
                "agency policy",
                format!(
                    "a lease of {} days is over {MAX_LEASE_DAYS}",
                    self.lease_days
                ),
            ));
        }
        if self.lease_days > 0 && self.lease_warning_days >= self.lease_days {
            return Err(TrustError::invalid(
                "agency policy",
                format!(
                    "the warning ({} days) must start inside the lease ({} days)",
                    self.lease_warning_days, self.lease_days
                ),
            ));
        }
        if self.max_pin_attempts == 0 || self.max_pin_attempts > MAX_PIN_ATTEMPTS {
            return Err(TrustError::invalid(
                "agency policy",
                format!("wrong PIN attempts must be 1 to {MAX_PIN_ATTEMPTS}"),
            ));
        }
        Ok(())
    }

    /// The lease in seconds (`None`: no lease).
    pub fn lease_secs(&self) -> Option<u64> {
        (self.lease_days > 0).then(|| u64::from(self.lease_days) * DAY_SECS)
    }

    /// One line for people: "lease 14 days (warning 3 days ahead), 10 wrong PINs".
    pub fn describe(&self) -> String {
        let lease = match self.lease_days {
            0 => "no lease".to_string(),
            days => format!(
                "lease {days} days (warning {} days ahead)",
                self.lease_warning_days
            ),
        };
        format!("{lease}, {} wrong PINs", self.max_pin_attempts)
    }
}

/// A setting added after format 1: carried and signed, read by builds
/// that know its tag, ignored by older ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyExtension {
    /// Which setting.
    pub tag: u16,
    /// Its value, as that setting defines it.
    pub value: Vec<u8>,
}

/// The signed part of an agency policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyPolicyBody {
    /// The agency.
    pub agency: AgencyId,
    /// How to read the settings ([`POLICY_FORMAT`]).
    pub format: u16,
    /// Newer replaces older: a policy is taken only over a lower version.
    pub version: u64,
    /// When it was signed, Unix seconds.
    pub issued_at: u64,
    /// What it sets.
    pub settings: PolicySettings,
    /// Settings added later (at most [`MAX_POLICY_EXTENSIONS`]).
    pub extensions: Vec<PolicyExtension>,
    /// The signing operator's certificate chain.
    pub issuer: CertificateChain,
}

/// An agency policy: body plus the operator's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyPolicy {
    /// What it says.
    pub body: AgencyPolicyBody,
    /// The operator's signature over [`Domain::AgencyPolicy`] and the body.
    pub signature: Signature,
}

impl Format for AgencyPolicy {
    const KIND: Kind = Kind::AgencyPolicy;
    const MAX_LEN: usize = 8 * 1024;
}

/// A policy that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPolicy {
    /// Its id: the hash of its encoding.
    pub id: [u8; 32],
    /// Its version.
    pub version: u64,
    /// When it was signed, Unix seconds.
    pub issued_at: u64,
    /// What it sets.
    pub settings: PolicySettings,
    /// What its extensions this build reads set.
    pub extensions: KnownExtensions,
    /// The operator that signed it.
    pub issuer: VerifiedDevice,
}

impl VerifiedPolicy {
    /// One line for people: "version 2 by operator park.jiwoo at …: lease 14 days …".
    pub fn describe(&self) -> String {
        format!(
            "version {} by operator {} at {}: {}{}",
            self.version,
            self.issuer.subject.user_id,
            format_utc(self.issued_at),
            self.settings.describe(),
            self.extensions.describe()
        )
    }
}

impl AgencyPolicy {
    /// Signs `body` with the key of the operator chain it names.
    pub fn sign(body: AgencyPolicyBody, operator: &KeyPair) -> Self {
        let signature = operator.sign(Domain::AgencyPolicy, &body);
        AgencyPolicy { body, signature }
    }

    /// Its id: the hash of its encoding.
    pub fn id(&self) -> [u8; 32] {
        *blake3::hash(&wire::encode(self)).as_bytes()
    }

    /// Checks everything that does not depend on what else this node
    /// holds: agency, format, settings, time, and that an operator of the
    /// agency, certified at `now` (the time of receipt), signed it.
    pub fn verify(
        &self,
        agency: &AgencyInfo,
        now: u64,
        policy: &TrustPolicy,
    ) -> Result<VerifiedPolicy, TrustError> {
        let body = &self.body;
        if body.agency != agency.id() {
            return Err(TrustError::UnknownAgency {
                expected: agency.id(),
                found: body.agency,
            });
        }
        if body.format != POLICY_FORMAT {
            return Err(TrustError::invalid(
                "agency policy",
                format!(
                    "written in format {}, this build reads format {POLICY_FORMAT}: update baro",
                    body.format
                ),
            ));
        }
        if body.extensions.len() > MAX_POLICY_EXTENSIONS
            || body
                .extensions
                .iter()
                .any(|e| e.value.len() > MAX_EXTENSION_LEN)
        {
            return Err(TrustError::invalid(
                "agency policy",
                format!(
                    "at most {MAX_POLICY_EXTENSIONS} extensions of {MAX_EXTENSION_LEN} bytes each"
                ),
            ));
        }
        body.settings.validate()?;
        let extensions = KnownExtensions::of(body)?;
        if body.issued_at > now.saturating_add(policy.clock_skew_secs) {
            return Err(TrustError::invalid(
                "agency policy",
                format!("signed in the future ({})", format_utc(body.issued_at)),
            ));
        }
        let issuer = body.issuer.verify(agency, now, policy)?;
        if issuer.role != Role::Operator {
            return Err(TrustError::WrongRole {
                who: issuer.subject.user_id.clone(),
                role: issuer.role,
                action: "set the agency policy",
            });
        }
        if !issuer
            .device
            .public_key()
            .verify(Domain::AgencyPolicy, body, &self.signature)
        {
            return Err(TrustError::BadSignature {
                what: "agency policy".into(),
                signer: format!("operator {}", issuer.subject.user_id),
            });
        }
        Ok(VerifiedPolicy {
            id: self.id(),
            version: body.version,
            issued_at: body.issued_at,
            settings: body.settings,
            extensions,
            issuer,
        })
    }
}

/// What became of a policy offered to [`PolicyInForce::offer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyOffer {
    /// It is newer: it is in force from now on.
    Taken(Box<VerifiedPolicy>),
    /// The policy in force has this version or a newer one: ignored.
    NotNewer {
        /// The version in force.
        in_force: u64,
    },
}

/// The policy a node obeys: the newest valid one it has received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyInForce {
    current: Option<VerifiedPolicy>,
}

impl PolicyInForce {
    /// No policy yet: [`PolicySettings::default`] applies.
    pub fn new() -> Self {
        Self::default()
    }

    /// A policy checked before (kept on this node's disk), put back in force
    /// at start without checking its signer again: its operator may have
    /// expired or been revoked since, and the agency's policy stays until
    /// an operator replaces it.
    pub fn restore(policy: VerifiedPolicy) -> Self {
        PolicyInForce {
            current: Some(policy),
        }
    }

    /// The policy in force, if any has been received.
    pub fn current(&self) -> Option<&VerifiedPolicy> {
        self.current.as_ref()
    }

    /// What this node obeys now.
    pub fn settings(&self) -> PolicySettings {
        self.current
            .as_ref()
            .map(|p| p.settings)
            .unwrap_or_default()
    }

    /// Wrong PINs a device accepts before it erases itself.
    pub fn max_pin_attempts(&self) -> u32 {
        self.settings().max_pin_attempts
    }

    /// The agency's largest file in MiB (`None`: it sets none).
    pub fn max_file_mb(&self) -> Option<u32> {
        self.current.as_ref().and_then(|p| p.extensions.max_file_mb)
    }

    /// Verifies `policy` at `now` (the time of receipt) and takes it if it
    /// is newer than the one in force. `revoked(issuer)` says whether the
    /// signer is revoked in this node's current revocation set, as a
    /// description of that revocation.
    pub fn offer(
        &mut self,
        policy: &AgencyPolicy,
        agency: &AgencyInfo,
        now: u64,
        trust: &TrustPolicy,
        revoked: impl Fn(&VerifiedDevice) -> Option<String>,
    ) -> Result<PolicyOffer, TrustError> {
        if let Some(current) = &self.current {
            let version = policy.body.version;
            let loses_tie = version == current.version && policy.id() <= current.id;
            if version < current.version || loses_tie {
                return Ok(PolicyOffer::NotNewer {
                    in_force: current.version,
                });
            }
        }
        let verified = policy.verify(agency, now, trust)?;
        if let Some(revocation) = revoked(&verified.issuer) {
            return Err(TrustError::invalid(
                "agency policy",
                format!("its operator was revoked ({revocation})"),
            ));
        }
        self.current = Some(verified.clone());
        Ok(PolicyOffer::Taken(Box::new(verified)))
    }
}
