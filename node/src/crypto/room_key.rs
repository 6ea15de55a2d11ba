//! Per-epoch room keys: seal and open message content with the envelope
//! header as associated data.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;
use crate::identity::Entropy;

/// A room's symmetric key for one epoch. Zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct RoomKey([u8; 32]);

impl RoomKey {
    /// A fresh random key.
    pub fn generate(entropy: &mut impl Entropy) -> Self {
        RoomKey(entropy.array())
    }

    /// Rebuilds a key from its bytes (after unwrapping).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        RoomKey(bytes)
    }

    /// The raw key, for wrapping to a device.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public identifier of the key (does not reveal it).
    pub fn key_id(&self) -> [u8; 16] {
        let hash = blake3::derive_key("baro/room-key-id/v1", &self.0);
        let mut id = [0u8; 16];
        id.copy_from_slice(&hash[..16]);
        id
    }

    /// Encrypts `plaintext` with `nonce`, authenticating `header` (the
    /// encoded envelope header, which contains the nonce).
    pub fn seal(&self, nonce: &[u8; 24], header: &[u8], plaintext: &[u8]) -> Vec<u8> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        chacha20poly1305::XChaCha20Poly1305::new((&self.0).into())
            .encrypt(
                chacha20poly1305::XNonce::from_slice(nonce),
                Payload {
                    msg: plaintext,
                    aad: header,
                },
            )
            // Only fails for plaintexts beyond 256 GiB.
            .expect("plaintext within XChaCha20-Poly1305 limits")
    }

    /// Decrypts what [`seal`](Self::seal) made; fails if the key, the header
    /// or the ciphertext differ.
    pub fn open(
        &self,
        nonce: &[u8; 24],
        header: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        chacha20poly1305::XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                chacha20poly1305::XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: header,
                },
            )
            .map_err(|_| CryptoError::Unauthentic("message"))
    }
}

impl fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomKey(id {}, <redacted>)", hex::encode(self.key_id()))
    }
}
