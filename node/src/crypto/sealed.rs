//! XChaCha20-Poly1305 with a random 24-byte nonce and associated data.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use super::CryptoError;
use crate::identity::Entropy;

/// Ciphertext with its nonce. What it was sealed for (the associated data)
/// is not stored: the opener must supply the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Random nonce.
    pub nonce: [u8; 24],
    /// Ciphertext with its 16-byte tag.
    #[serde(with = "crate::wire::raw_bytes")]
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// Encrypts `plaintext` under `key`, bound to `aad`.
    pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8], entropy: &mut impl Entropy) -> Self {
        let nonce: [u8; 24] = entropy.array();
        let ciphertext = XChaCha20Poly1305::new(key.into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // Only fails for plaintexts beyond 256 GiB.
            .expect("plaintext within XChaCha20-Poly1305 limits");
        Sealed { nonce, ciphertext }
    }

    /// Decrypts; `what` names the data in the error.
    pub fn open(
        &self,
        key: &[u8; 32],
        aad: &[u8],
        what: &'static str,
    ) -> Result<Vec<u8>, CryptoError> {
        XChaCha20Poly1305::new(key.into())
            .decrypt(
                XNonce::from_slice(&self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Unauthentic(what))
    }
}

/// A file in the node's home, sealed under the storage key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedFile(pub Sealed);

impl crate::wire::Format for SealedFile {
    const KIND: crate::wire::Kind = crate::wire::Kind::StorageSealed;
    const MAX_LEN: usize = 64 * 1024;
}

/// One database value, sealed under the storage key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedRecord(pub Sealed);

impl crate::wire::Format for SealedRecord {
    const KIND: crate::wire::Kind = crate::wire::Kind::StoredRecord;
    /// Records hold at most 1 MiB of plaintext, plus nonce, tag and headers.
    const MAX_LEN: usize = (1 << 20) + 64;
}
