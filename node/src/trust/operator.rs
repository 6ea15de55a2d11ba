//! The operator's side of enrollment: creating an agency and certifying devices.

use super::{
    AgencyInfo, BundleBody, Certificate, CertificateBody, CertificateChain, EnrollmentBundle,
    EnrollmentRequest, NetworkKey, Role, Subject, TrustError, TrustPolicy,
};
use crate::identity::{Entropy, KeyPair};
use crate::trust::policy::Action;

/// Seconds in a day.
pub const DAY_SECS: u64 = 24 * 60 * 60;
/// Validity of an operator certificate made by `agency init`.
pub const OPERATOR_CERT_DAYS: u64 = 5 * 365;
/// Default validity of a device certificate.
pub const DEFAULT_DEVICE_CERT_DAYS: u64 = 365;
/// Longest validity an operator may grant a device.
pub const MAX_DEVICE_CERT_DAYS: u64 = 5 * 365;

/// A freshly created agency: its root key (to be sealed and kept offline),
/// its public info, the network key and the first operator.
#[derive(Debug)]
pub struct NewAgency {
    /// The agency root key pair.
    pub root: KeyPair,
    /// The first operator, certified by the root.
    pub operator: Operator,
    /// The agency's pre-shared network key.
    pub network_key: NetworkKey,
}

impl NewAgency {
    /// Creates an agency named `name` and its first operator `subject`.
    pub fn create(
        name: &str,
        subject: Subject,
        now: u64,
        entropy: &mut impl Entropy,
    ) -> Result<Self, TrustError> {
        if name.trim().is_empty() || name.len() > AgencyInfo::MAX_NAME_LEN {
            return Err(TrustError::invalid(
                format!("agency name '{name}'"),
                "use 1 to 128 bytes",
            ));
        }
        let subject = subject.normalized();
        subject.validate()?;
        let root = KeyPair::generate(entropy);
        let agency = AgencyInfo {
            name: crate::text::nfc_string(name),
            root: root.public(),
        };
        let operator_key = KeyPair::generate(entropy);
        let body = CertificateBody {
            agency: agency.id(),
            serial: u64::from_le_bytes(entropy.array()),
            key: operator_key.public(),
            subject,
            role: Role::Operator,
            not_before: now,
            not_after: now + OPERATOR_CERT_DAYS * DAY_SECS,
            issuer: root.public(),
        };
        let chain = CertificateChain {
            certificates: vec![Certificate::issue(body, &root)],
        };
        Ok(NewAgency {
            root,
            operator: Operator {
                key: operator_key,
                chain,
                agency,
            },
            network_key: NetworkKey::generate(entropy),
        })
    }
}

/// An operator able to certify devices: its key, its chain, its agency.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The operator's signing key.
    pub key: KeyPair,
    /// The operator's own chain (root-signed operator certificate first).
    pub chain: CertificateChain,
    /// The agency it acts for.
    pub agency: AgencyInfo,
}

/// What an operator decides when certifying a device.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// Who the device belongs to.
    pub subject: Subject,
    /// The device's role.
    pub role: Role,
    /// Validity in days from `now`.
    pub days: u64,
    /// Relay multiaddrs to put in the bundle.
    pub bootstrap: Vec<String>,
}

impl Operator {
    /// Checks that this operator's own chain is valid and allows enrolling.
    pub fn check_authority(&self, now: u64, policy: &TrustPolicy) -> Result<(), TrustError> {
        let me = self.chain.verify(&self.agency, now, policy)?;
        if me.device != self.key.device_id() {
            return Err(TrustError::KeyMismatch {
                certified: me.device,
                presenter: self.key.device_id(),
            });
        }
        Action::Enroll.check(me.role, format!("operator {}", me.subject.user_id))
    }

    /// Certifies the device in `request` and returns its signed bundle.
    pub fn enroll(
        &self,
        request: &EnrollmentRequest,
        enrollment: Enrollment,
        network_key: &NetworkKey,
        now: u64,
        policy: &TrustPolicy,
        entropy: &mut impl Entropy,
    ) -> Result<EnrollmentBundle, TrustError> {
        self.check_authority(now, policy)?;
        let device = request.verify()?;
        // Certified in NFC whatever form the names were typed in.
        let subject = enrollment.subject.normalized();
        subject.validate()?;
        if enrollment.role == Role::Operator {
            return Err(TrustError::invalid(
                "role operator",
                "only the agency root certifies operators; enroll an operator's own devices as members",
            ));
        }
        if enrollment.days == 0 || enrollment.days > MAX_DEVICE_CERT_DAYS {
            return Err(TrustError::invalid(
                "validity",
                format!("--days must be 1 to {MAX_DEVICE_CERT_DAYS}"),
            ));
        }
        let body = CertificateBody {
            agency: self.agency.id(),
            serial: u64::from_le_bytes(entropy.array()),
            key: request.body.device_key,
            subject,
            role: enrollment.role,
            not_before: now,
            not_after: now + enrollment.days * DAY_SECS,
            issuer: self.key.public(),
        };
        let mut chain = self.chain.clone();
        chain.certificates.push(Certificate::issue(body, &self.key));
        let bundle = EnrollmentBundle::sign(
            BundleBody {
                agency: self.agency.clone(),
                chain,
                network_key: network_key.clone(),
                bootstrap: enrollment.bootstrap,
                issued_at: now,
            },
            &self.key,
        );
        // Never hand out a bundle the device would refuse.
        bundle.verify_for(device, now, policy)?;
        Ok(bundle)
    }
}
