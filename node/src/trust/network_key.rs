//! The agency network key: the libp2p pre-shared key that hides the mesh from outsiders.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::identity::Entropy;

/// A 32-byte pre-shared key for libp2p `pnet`. It keeps strangers off the
/// mesh but is not admission: admission is the certificate.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct NetworkKey(pub [u8; 32]);

impl NetworkKey {
    /// A fresh random key.
    pub fn generate(entropy: &mut impl Entropy) -> Self {
        NetworkKey(entropy.array())
    }

    /// A non-secret fingerprint, to compare keys without showing them.
    pub fn fingerprint(&self) -> String {
        hex::encode(&blake3::derive_key("baro/network-key-fingerprint/v1", &self.0)[..8])
    }
}

impl fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NetworkKey(fingerprint {}, <redacted>)",
            self.fingerprint()
        )
    }
}
