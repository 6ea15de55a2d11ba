//! Enrollment requests: a new device's public key and name, signed by that key.

use serde::{Deserialize, Serialize};

use super::TrustError;
use super::certificate::validate_display_name;
use crate::identity::{DeviceId, KeyPair, PublicKey, Signature};
use crate::wire::{Domain, Format, Kind};

/// What a device asks to be certified for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBody {
    /// The device key to certify.
    pub device_key: PublicKey,
    /// Name the device's owner typed; the operator may override it.
    pub display_name: String,
    /// When the request was made, Unix seconds.
    pub created_at: u64,
}

/// A request signed by the device key itself, proving the requester holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentRequest {
    /// The request.
    pub body: RequestBody,
    /// Signature by `body.device_key` over [`Domain::EnrollmentRequest`] and the body.
    pub signature: Signature,
}

impl Format for EnrollmentRequest {
    const KIND: Kind = Kind::EnrollmentRequest;
    const MAX_LEN: usize = 1024;
}

impl EnrollmentRequest {
    /// A request for `device`, signed by it.
    pub fn new(device: &KeyPair, display_name: &str, now: u64) -> Result<Self, TrustError> {
        let display_name = crate::text::nfc(display_name);
        validate_display_name(&display_name)?;
        let body = RequestBody {
            device_key: device.public(),
            display_name: display_name.into_owned(),
            created_at: now,
        };
        let signature = device.sign(Domain::EnrollmentRequest, &body);
        Ok(EnrollmentRequest { body, signature })
    }

    /// Checks the proof of possession and the fields; returns the requesting device.
    pub fn verify(&self) -> Result<DeviceId, TrustError> {
        validate_display_name(&self.body.display_name)?;
        if !self
            .body
            .device_key
            .verify(Domain::EnrollmentRequest, &self.body, &self.signature)
        {
            return Err(TrustError::BadSignature {
                what: "enrollment request".into(),
                signer: "the device key it names".into(),
            });
        }
        Ok(self.body.device_key.device_id())
    }
}
