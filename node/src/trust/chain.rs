//! Certificate chains and their verification, from the agency root down to a device.

use serde::{Deserialize, Serialize};

use super::operator::OPERATOR_CERT_DAYS;
use super::{
    Action, AgencyId, AgencyInfo, Certificate, DAY_SECS, MAX_DEVICE_CERT_DAYS, Role, Subject,
    TrustError, TrustPolicy,
};
use crate::identity::{DeviceId, PublicKey};
use crate::wire::{Format, Kind};

/// Longest accepted chain: root → operator → device. Only the root and
/// operator certificates the root issued may issue; an operator's own
/// devices (its console) are ordinary devices and issue nothing (audit H2).
pub const MAX_CHAIN_LEN: usize = 2;

/// Certificates from the one the root signed down to the holder's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateChain {
    /// `certificates[0]` is signed by the root; each next one by the key of the one before.
    pub certificates: Vec<Certificate>,
}

impl Format for CertificateChain {
    const KIND: Kind = Kind::CertificateChain;
    const MAX_LEN: usize = 4 * 1024;
}

/// A chain that verified: who the holder is and what they may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedDevice {
    /// The holder's device id (PeerId).
    pub device: DeviceId,
    /// Agency that certified it.
    pub agency: AgencyId,
    /// User, display name and org unit.
    pub subject: Subject,
    /// The holder's role.
    pub role: Role,
    /// Certificate serial.
    pub serial: u64,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// User id of the operator that signed it (or "agency root").
    pub issued_by: String,
    /// The key that signed the holder's certificate (an operator's, or the root).
    pub issuer: PublicKey,
    /// The verified certificate that issued this one (an operator's), or
    /// `None` when the root did: a revocation of any certificate in the
    /// chain covers the holder.
    pub authority: Option<Box<VerifiedDevice>>,
}

impl VerifiedDevice {
    /// This certificate, then each one above it up to the one the root
    /// signed.
    pub fn certificates(&self) -> impl Iterator<Item = &VerifiedDevice> {
        std::iter::successors(Some(self), |device| device.authority.as_deref())
    }
}

impl CertificateChain {
    /// The holder's own (last) certificate, if any.
    pub fn leaf(&self) -> Option<&Certificate> {
        self.certificates.last()
    }

    /// Verifies the chain under `agency` at time `now` (Unix seconds): each
    /// certificate is of this agency, signed (strictly) by the root or the
    /// certificate above it, valid within the clock-skew tolerance and no
    /// longer than its role allows, and only the root and the operator
    /// certificates the root issued issue anything.
    pub fn verify(
        &self,
        agency: &AgencyInfo,
        now: u64,
        policy: &TrustPolicy,
    ) -> Result<VerifiedDevice, TrustError> {
        self.verify_with(agency, now, policy, &mut |certificate, signer, _| {
            certificate.is_signed_by(signer)
        })
    }

    /// [`CertificateChain::verify`], with each certificate's signature
    /// judged by `signed(certificate, signer, is_leaf)`: a cache of issuing
    /// certificates already checked under the same signer answers from
    /// memory. Every other check is made here.
    pub(super) fn verify_with(
        &self,
        agency: &AgencyInfo,
        now: u64,
        policy: &TrustPolicy,
        signed: &mut impl FnMut(&Certificate, &PublicKey, bool) -> bool,
    ) -> Result<VerifiedDevice, TrustError> {
        let len = self.certificates.len();
        if len == 0 || len > MAX_CHAIN_LEN {
            return Err(TrustError::invalid(
                "certificate chain",
                format!("has {len} certificates, expected 1 to {MAX_CHAIN_LEN}"),
            ));
        }
        let agency_id = agency.id();
        let mut signer: PublicKey = agency.root;
        let mut signer_name = format!("the root of agency {}", agency.name);
        let mut issued_by = "agency root".to_string();
        let mut issuing_keys: Vec<PublicKey> = vec![agency.root];
        let mut authority: Option<Box<VerifiedDevice>> = None;
        let mut holder = None;
        for (position, certificate) in self.certificates.iter().enumerate() {
            let body = &certificate.body;
            let what = certificate.describe();
            // A certificate for the root's or an issuer's own key would let
            // its maker speak (and be revoked) as that issuer (audit H1).
            if issuing_keys.contains(&body.key) {
                return Err(TrustError::invalid(
                    what,
                    "certifies an issuing key (the agency root's or an operator's above it)",
                ));
            }
            if body.agency != agency_id {
                return Err(TrustError::UnknownAgency {
                    expected: agency_id,
                    found: body.agency,
                });
            }
            let is_leaf = position + 1 == len;
            if !signed(certificate, &signer, is_leaf) {
                return Err(TrustError::BadSignature {
                    what,
                    signer: signer_name,
                });
            }
            body.subject.validate()?;
            check_window(&what, body.not_before, body.not_after, now, policy)?;
            check_role_limits(&what, position, body.role, body.not_before, body.not_after)?;
            let verified = VerifiedDevice {
                device: body.key.device_id(),
                agency: agency_id,
                subject: body.subject.clone(),
                role: body.role,
                serial: body.serial,
                not_before: body.not_before,
                not_after: body.not_after,
                issued_by: issued_by.clone(),
                issuer: body.issuer,
                authority: authority.take(),
            };
            if is_leaf {
                holder = Some(verified);
                break;
            }
            Action::Enroll.check(body.role, what.clone())?;
            signer = body.key;
            issuing_keys.push(body.key);
            signer_name = what;
            issued_by = body.subject.user_id.clone();
            authority = Some(Box::new(verified));
        }
        holder.ok_or_else(|| TrustError::invalid("certificate chain", "has no certificates"))
    }

    /// Verifies the chain and that its holder is `presenter`: a chain is
    /// worthless to anyone but the key it certifies.
    pub fn verify_for(
        &self,
        presenter: DeviceId,
        agency: &AgencyInfo,
        now: u64,
        policy: &TrustPolicy,
    ) -> Result<VerifiedDevice, TrustError> {
        let verified = self.verify(agency, now, policy)?;
        if verified.device != presenter {
            return Err(TrustError::KeyMismatch {
                certified: verified.device,
                presenter,
            });
        }
        Ok(verified)
    }
}

/// What verifying enforces whoever issued the certificate (issuing checks
/// the same, but a chain is only as strict as its verifier): an operator
/// certificate is the root's to issue, and no certificate outlives the
/// longest validity its role may be given (audit H2).
fn check_role_limits(
    what: &str,
    position: usize,
    role: Role,
    not_before: u64,
    not_after: u64,
) -> Result<(), TrustError> {
    if role == Role::Operator && position > 0 {
        return Err(TrustError::invalid(
            what,
            "makes an operator, which only the agency root may certify",
        ));
    }
    let max_days = match role {
        Role::Operator => OPERATOR_CERT_DAYS,
        Role::Member | Role::Relay => MAX_DEVICE_CERT_DAYS,
    };
    if not_after.saturating_sub(not_before) > max_days * DAY_SECS {
        return Err(TrustError::invalid(
            what,
            format!("is valid for longer than a {role} certificate may be ({max_days} days)"),
        ));
    }
    Ok(())
}

fn check_window(
    what: &str,
    not_before: u64,
    not_after: u64,
    now: u64,
    policy: &TrustPolicy,
) -> Result<(), TrustError> {
    if not_after < not_before {
        return Err(TrustError::invalid(what, "validity ends before it starts"));
    }
    if now.saturating_add(policy.clock_skew_secs) < not_before {
        return Err(TrustError::NotYetValid {
            what: what.to_string(),
            not_before,
            now,
        });
    }
    if now > not_after.saturating_add(policy.clock_skew_secs) {
        return Err(TrustError::Expired {
            what: what.to_string(),
            not_after,
            now,
        });
    }
    Ok(())
}
