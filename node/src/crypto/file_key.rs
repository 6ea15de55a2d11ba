//! Per-file keys: every attachment is split into chunks of [`CHUNK_LEN`]
//! bytes, each sealed with XChaCha20-Poly1305 under a key of its own file,
//! the file id and chunk index bound in the associated data (a chunk moved
//! to another place of the same file, or to another file, fails to open).
//!
//! # Why 256 KiB chunks
//!
//! - The manifest lists every chunk's hash and travels in one room
//!   envelope (60 KiB): 100 MiB is 400 chunks, 12.5 KiB of hashes, which
//!   leaves room for a 32 KiB preview and the name; no hash tree needed.
//! - Overhead per chunk (16-byte tag, 32-byte hash) is 0.02 %; one chunk is
//!   one request-response round trip and one sealed record in the store
//!   (far under its 1 MiB record cap and the codec's 2 MiB decode limit).
//! - What a killed transfer loses is at most the chunks in flight
//!   (concurrency × 256 KiB), and a bad chunk costs a peer little to refetch.
//!
//! The nonce is derived from the file id and the index: the key is fresh
//! for every file and each index is sealed once, so no nonce repeats.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;
use crate::identity::Entropy;

/// Plaintext bytes per chunk (the last one may be shorter).
pub const CHUNK_LEN: usize = 256 * 1024;
/// Bytes a sealed chunk adds (the Poly1305 tag).
pub const CHUNK_OVERHEAD: usize = 16;
/// Domain of a chunk's associated data.
const AAD_DOMAIN: &[u8] = b"baro/file-chunk/v1\0";

/// The hash a chunk is addressed by: BLAKE3 of its ciphertext.
pub fn chunk_hash(ciphertext: &[u8]) -> [u8; 32] {
    *blake3::hash(ciphertext).as_bytes()
}

/// One file's symmetric key. Zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct FileKey([u8; 32]);

impl FileKey {
    /// A fresh random key.
    pub fn generate(entropy: &mut impl Entropy) -> Self {
        FileKey(entropy.array())
    }

    /// Rebuilds a key from a manifest's bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        FileKey(bytes)
    }

    /// The raw key, for the manifest.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Seals chunk `index` of file `file`.
    pub fn seal_chunk(&self, file: &[u8; 32], index: u32, plaintext: &[u8]) -> Vec<u8> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        chacha20poly1305::XChaCha20Poly1305::new((&self.0).into())
            .encrypt(
                chacha20poly1305::XNonce::from_slice(&nonce(file, index)),
                Payload {
                    msg: plaintext,
                    aad: &aad(file, index),
                },
            )
            // Only fails for plaintexts beyond 256 GiB.
            .expect("chunk within XChaCha20-Poly1305 limits")
    }

    /// Opens what [`seal_chunk`](Self::seal_chunk) made for the same file and index.
    pub fn open_chunk(
        &self,
        file: &[u8; 32],
        index: u32,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        chacha20poly1305::XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                chacha20poly1305::XNonce::from_slice(&nonce(file, index)),
                Payload {
                    msg: ciphertext,
                    aad: &aad(file, index),
                },
            )
            .map_err(|_| CryptoError::Unauthentic("file chunk"))
    }
}

fn nonce(file: &[u8; 32], index: u32) -> [u8; 24] {
    let mut input = [0u8; 36];
    input[..32].copy_from_slice(file);
    input[32..].copy_from_slice(&index.to_le_bytes());
    let hash = blake3::derive_key("baro/file-chunk-nonce/v1", &input);
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&hash[..24]);
    nonce
}

fn aad(file: &[u8; 32], index: u32) -> Vec<u8> {
    let mut aad = AAD_DOMAIN.to_vec();
    aad.extend_from_slice(file);
    aad.extend_from_slice(&index.to_le_bytes());
    aad
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;

    #[test]
    fn a_chunk_opens_only_at_its_place_in_its_file() {
        let key = FileKey::generate(&mut SeededEntropy::new(1));
        let sealed = key.seal_chunk(&[1; 32], 3, b"page 1 of the report");
        assert_eq!(sealed.len(), 20 + CHUNK_OVERHEAD);
        assert_eq!(
            key.open_chunk(&[1; 32], 3, &sealed).expect("opens"),
            b"page 1 of the report"
        );
        assert!(key.open_chunk(&[1; 32], 4, &sealed).is_err(), "other index");
        assert!(key.open_chunk(&[2; 32], 3, &sealed).is_err(), "other file");
        let other = FileKey::generate(&mut SeededEntropy::new(2));
        assert!(other.open_chunk(&[1; 32], 3, &sealed).is_err(), "other key");
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert!(key.open_chunk(&[1; 32], 3, &flipped).is_err(), "tampered");
        assert!(!sealed.windows(6).any(|w| w == b"report"));
        assert_ne!(
            key.seal_chunk(&[1; 32], 4, b"page 1 of the report"),
            sealed,
            "each index has its own nonce"
        );
    }
}
