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

    /// The key for the keyed hashes that stand in for identifying parts of
    /// database keys ([`IndexKey`]), derived from this one: destroying the
    /// storage key destroys it too.
    pub fn index_key(&self) -> IndexKey {
        IndexKey(blake3::derive_key(INDEX_KEY_CONTEXT, &self.0))
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

/// Domain of the [`IndexKey`] derivation (BLAKE3 `derive_key`).
const INDEX_KEY_CONTEXT: &str = "baro/store-index-key/v1";

/// Key of the keyed hashes (BLAKE3 keyed mode) a database stores in place of
/// room ids, device keys, message ids and the like, so that its files show
/// none of them; derived from the [`StorageKey`].
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct IndexKey([u8; 32]);

impl IndexKey {
    /// A fixed key, for a store that never reaches disk (its keys hide
    /// nothing from anyone, and simulations stay reproducible).
    pub fn in_memory() -> Self {
        IndexKey(blake3::derive_key(INDEX_KEY_CONTEXT, &[0; 32]))
    }

    /// The keyed hash of `parts`, each length-prefixed so that no two lists
    /// of parts hash alike.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }
}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey(<redacted>)")
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

    #[test]
    fn index_tags_depend_on_the_storage_key_and_every_part() {
        let mut entropy = SeededEntropy::new(2);
        let key = StorageKey::generate(&mut entropy);
        let index = key.index_key();
        let tag = index.tag(&[b"rooms", b"abc"]);
        assert_eq!(tag, key.index_key().tag(&[b"rooms", b"abc"]));
        assert_ne!(tag, index.tag(&[b"rooms", b"abd"]));
        assert_ne!(tag, index.tag(&[b"room", b"sabc"]), "parts are delimited");
        assert_ne!(tag, index.tag(&[b"roomsabc"]));
        let other = StorageKey::generate(&mut entropy).index_key();
        assert_ne!(tag, other.tag(&[b"rooms", b"abc"]));
        assert_ne!(tag, IndexKey::in_memory().tag(&[b"rooms", b"abc"]));
        assert_eq!(format!("{index:?}"), "IndexKey(<redacted>)");
    }

    /// Pins the derivation: a change would make every stored record unfindable.
    #[test]
    fn index_tag_golden_bytes() {
        let key = StorageKey([7; 32]);
        let tag = key.index_key().tag(&[b"messages", b"group", &[1; 32]]);
        assert_eq!(
            hex::encode(tag),
            "551a15645ad0251835685948510203e690acf4fed8ac083b507c36a064576cfb"
        );
    }
}
