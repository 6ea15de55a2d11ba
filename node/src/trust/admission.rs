//! Admission: what a peer must prove on a new connection before anything else
//! happens on it, and the decision on what it presents.

use serde::{Deserialize, Serialize};

use super::{AgencyId, AgencyInfo, CertificateChain, TrustError, TrustPolicy, VerifiedDevice};
use crate::identity::DeviceId;
use crate::wire::{Format, Kind};

/// Sent by both sides as the first bytes of every encrypted connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionHello {
    /// The agency the sender claims to belong to.
    pub agency: AgencyId,
    /// The sender's certificate chain (root-signed certificate first).
    pub chain: CertificateChain,
    /// Digest of the sender's revocation set, to tell whether to reconcile.
    pub revocation_digest: [u8; 32],
}

impl Format for AdmissionHello {
    const KIND: Kind = Kind::AdmissionHello;
    const MAX_LEN: usize = 8 * 1024;
}

/// Decides whether `remote` (authenticated by the transport) may join: its
/// hello must carry a valid, unexpired chain of our agency for its own key.
pub fn admit(
    hello: &AdmissionHello,
    remote: DeviceId,
    agency: &AgencyInfo,
    now: u64,
    policy: &TrustPolicy,
) -> Result<VerifiedDevice, TrustError> {
    if hello.agency != agency.id() {
        return Err(TrustError::UnknownAgency {
            expected: agency.id(),
            found: hello.agency,
        });
    }
    hello.chain.verify_for(remote, agency, now, policy)
}

/// Digest of an empty revocation set (until revocations exist).
pub fn empty_revocation_digest() -> [u8; 32] {
    blake3::derive_key(REVOCATION_SET_CONTEXT, &[])
}

/// Key-derivation context of the revocation set digest.
pub(crate) const REVOCATION_SET_CONTEXT: &str = "baro/revocation-set/v1";
