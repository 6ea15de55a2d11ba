//! A wipe receipt: the revoked device's last word, "I erased myself",
//! signed with its own key so anyone may pass it on to the operator.

use serde::{Deserialize, Serialize};

use super::{
    AgencyId, AgencyInfo, CertificateChain, TrustError, TrustPolicy, VerifiedDevice,
    VerifiedRevocation,
};
use crate::identity::{KeyPair, Signature};
use crate::wire::{self, Domain, Format, Kind};

/// The signed part of a wipe receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WipeReceiptBody {
    /// The agency.
    pub agency: AgencyId,
    /// Id of the revocation obeyed.
    pub revocation: [u8; 32],
    /// The wiped device's certificate chain.
    pub device: CertificateChain,
    /// When the wipe started, Unix seconds.
    pub wiped_at: u64,
}

/// A wipe receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WipeReceipt {
    /// What is stated.
    pub body: WipeReceiptBody,
    /// The wiped device's signature over [`Domain::WipeReceipt`] and the body.
    pub signature: Signature,
}

impl Format for WipeReceipt {
    const KIND: Kind = Kind::WipeReceipt;
    const MAX_LEN: usize = 6 * 1024;
}

impl WipeReceipt {
    /// Signs a receipt as `device`.
    pub fn sign(body: WipeReceiptBody, device: &KeyPair) -> Self {
        let signature = device.sign(Domain::WipeReceipt, &body);
        WipeReceipt { body, signature }
    }

    /// Its id: the hash of its encoding.
    pub fn id(&self) -> [u8; 32] {
        *blake3::hash(&wire::encode(self)).as_bytes()
    }

    /// Checks what a receipt proves without its revocation: it is of this
    /// agency and signed by the device its chain certifies (checked as of
    /// the certificate's start: the device may have expired since). A
    /// receipt that fails this is junk, whatever revocation it names.
    pub fn verify_signer(
        &self,
        agency: &AgencyInfo,
        policy: &TrustPolicy,
    ) -> Result<VerifiedDevice, TrustError> {
        if self.body.agency != agency.id() {
            return Err(TrustError::UnknownAgency {
                expected: agency.id(),
                found: self.body.agency,
            });
        }
        let start = self
            .body
            .device
            .leaf()
            .map(|c| c.body.not_before)
            .ok_or_else(|| TrustError::invalid("wipe receipt", "names no device"))?;
        let device = self.body.device.verify(agency, start, policy)?;
        if !device
            .device
            .public_key()
            .verify(Domain::WipeReceipt, &self.body, &self.signature)
        {
            return Err(TrustError::BadSignature {
                what: "wipe receipt".into(),
                signer: format!("device {}", device.device.short()),
            });
        }
        Ok(device)
    }

    /// Checks the receipt answers `revocation`, comes from a device it
    /// covers, and is signed by that device. It proves that the revoked
    /// key signed it, not that the device's data was erased.
    pub fn verify(
        &self,
        revocation: &VerifiedRevocation,
        agency: &AgencyInfo,
        policy: &TrustPolicy,
    ) -> Result<VerifiedDevice, TrustError> {
        if self.body.revocation != revocation.id {
            return Err(TrustError::invalid(
                "wipe receipt",
                "answers another revocation",
            ));
        }
        let device = self.verify_signer(agency, policy)?;
        if !revocation.covers(&device, policy) {
            return Err(TrustError::invalid(
                "wipe receipt",
                "from a device the revocation does not cover",
            ));
        }
        Ok(device)
    }
}
