//! Enrollment bundles: everything a device needs to join, signed by the enrolling operator.

use serde::{Deserialize, Serialize};

use super::{AgencyInfo, CertificateChain, NetworkKey, TrustError, TrustPolicy, VerifiedDevice};
use crate::identity::{DeviceId, KeyPair, Signature};
use crate::wire::{Domain, Format, Kind};

/// Longest accepted bootstrap address, in bytes.
pub const MAX_BOOTSTRAP_ADDR_LEN: usize = 256;
/// Most bootstrap addresses in one bundle.
pub const MAX_BOOTSTRAP_ADDRS: usize = 16;

/// The signed content of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleBody {
    /// The agency's name and root key.
    pub agency: AgencyInfo,
    /// Certificates from the root down to the enrolled device.
    pub chain: CertificateChain,
    /// The agency's libp2p pre-shared key.
    pub network_key: NetworkKey,
    /// Multiaddrs of relays to bootstrap from.
    pub bootstrap: Vec<String>,
    /// When the bundle was made, Unix seconds.
    pub issued_at: u64,
}

/// An enrollment bundle; the signature is by the key that issued the device
/// certificate, so no byte of it can be changed in transit unnoticed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentBundle {
    /// The content.
    pub body: BundleBody,
    /// Issuer's signature over [`Domain::EnrollmentBundle`] and the body.
    pub signature: Signature,
}

impl Format for EnrollmentBundle {
    const KIND: Kind = Kind::EnrollmentBundle;
    const MAX_LEN: usize = 16 * 1024;
}

impl EnrollmentBundle {
    /// Signs `body` with `issuer`, the key that signed the chain's leaf.
    pub fn sign(body: BundleBody, issuer: &KeyPair) -> Self {
        let signature = issuer.sign(Domain::EnrollmentBundle, &body);
        EnrollmentBundle { body, signature }
    }

    /// Verifies the bundle for the device `device` at `now`: the chain under
    /// the bundle's agency, the bundle signature, and that the certificate is
    /// for this very device.
    pub fn verify_for(
        &self,
        device: DeviceId,
        now: u64,
        policy: &TrustPolicy,
    ) -> Result<VerifiedDevice, TrustError> {
        let body = &self.body;
        if body.agency.name.trim().is_empty() || body.agency.name.len() > AgencyInfo::MAX_NAME_LEN {
            return Err(TrustError::invalid(
                "bundle",
                "agency name must be 1 to 128 bytes",
            ));
        }
        if body.bootstrap.len() > MAX_BOOTSTRAP_ADDRS
            || body
                .bootstrap
                .iter()
                .any(|addr| addr.len() > MAX_BOOTSTRAP_ADDR_LEN)
        {
            return Err(TrustError::invalid(
                "bundle",
                "too many or too long bootstrap addresses",
            ));
        }
        check_bootstrap(&body.bootstrap)?;
        let verified = body.chain.verify_for(device, &body.agency, now, policy)?;
        let leaf = body
            .chain
            .leaf()
            .ok_or_else(|| TrustError::invalid("bundle", "empty certificate chain"))?;
        if !leaf
            .body
            .issuer
            .verify(Domain::EnrollmentBundle, body, &self.signature)
        {
            return Err(TrustError::BadSignature {
                what: "enrollment bundle".into(),
                signer: "the operator that issued its certificate".into(),
            });
        }
        Ok(verified)
    }
}

/// Checks relay addresses for a bundle: each must be a multiaddr.
pub fn check_bootstrap(addresses: &[String]) -> Result<(), TrustError> {
    match addresses
        .iter()
        .find(|addr| addr.parse::<libp2p::Multiaddr>().is_err())
    {
        Some(bad) => Err(TrustError::invalid(
            "bundle",
            format!("bootstrap address '{bad}' is not a multiaddr (e.g. /ip4/10.0.0.1/tcp/4001)"),
        )),
        None => Ok(()),
    }
}
