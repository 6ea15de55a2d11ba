//! Certificate chains and their verification, from the agency root down to a device.

use serde::{Deserialize, Serialize};

use super::{Action, AgencyId, AgencyInfo, Certificate, Role, Subject, TrustError, TrustPolicy};
use crate::identity::{DeviceId, PublicKey};
use crate::wire::{Format, Kind};

/// Longest accepted chain: root → operator → operator device → device.
pub const MAX_CHAIN_LEN: usize = 3;

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
}

impl CertificateChain {
    /// The holder's own (last) certificate, if any.
    pub fn leaf(&self) -> Option<&Certificate> {
        self.certificates.last()
    }

    /// Verifies the chain under `agency` at time `now` (Unix seconds): each
    /// certificate is of this agency, signed (strictly) by the root or the
    /// certificate above it, valid within the clock-skew tolerance, and every
    /// issuing certificate has the operator role.
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
            if !is_leaf {
                Action::Enroll.check(body.role, what.clone())?;
                signer = body.key;
                issuing_keys.push(body.key);
                signer_name = what;
                issued_by = body.subject.user_id.clone();
            }
        }
        let leaf = &self.certificates[len - 1].body;
        Ok(VerifiedDevice {
            device: leaf.key.device_id(),
            agency: agency_id,
            subject: leaf.subject.clone(),
            role: leaf.role,
            serial: leaf.serial,
            not_before: leaf.not_before,
            not_after: leaf.not_after,
            issued_by,
            issuer: leaf.issuer,
        })
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
