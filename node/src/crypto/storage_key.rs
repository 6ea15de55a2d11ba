//! The node's storage key: every record and identity file at rest is sealed with it.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{CryptoError, Sealed};
use crate::identity::Entropy;
use crate::wire::{Format, Kind};

/// 32-byte symmetric key for data at rest. Destroying it crypto-shreds
/// whatever else remains on disk.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct StorageKey([u8; 32]);

impl Format for StorageKey {
    const KIND: Kind = Kind::StorageKey;
    const MAX_LEN: usize = 2 + 32;
}

impl StorageKey {
    /// A fresh random key.
    pub fn generate(entropy: &mut impl Entropy) -> Self {
        StorageKey(entropy.array())
    }

    /// Seals `plaintext`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8], entropy: &mut impl Entropy) -> Sealed {
        Sealed::seal(&self.0, aad, plaintext, entropy)
    }

    /// Opens what [`seal`](Self::seal) made with the same `aad`.
    pub fn open(
        &self,
        aad: &[u8],
        sealed: &Sealed,
        what: &'static str,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        sealed.open(&self.0, aad, what).map(Zeroizing::new)
    }

    /// The raw key bytes (tests check they leave no trace after a wipe).
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;

    #[test]
    fn sealed_value_opens_only_with_same_key_and_context() {
        let mut entropy = SeededEntropy::new(1);
        let key = StorageKey::generate(&mut entropy);
        let other = StorageKey::generate(&mut entropy);
        let sealed = key.seal(b"messages/1", b"secret text", &mut entropy);
        assert_eq!(
            key.open(b"messages/1", &sealed, "record")
                .expect("opens")
                .as_slice(),
            b"secret text"
        );
        assert!(key.open(b"messages/2", &sealed, "record").is_err());
        assert!(other.open(b"messages/1", &sealed, "record").is_err());
        let mut flipped = sealed;
        flipped.ciphertext[0] ^= 1;
        assert!(key.open(b"messages/1", &flipped, "record").is_err());
    }
}
