//! Device and signing keys: ed25519 newtypes, the device id (its libp2p
//! PeerId) and the entropy source every key is generated from.
//!
//! Pure: no I/O except reading OS randomness through [`OsEntropy`]; tests and
//! simulations pass a [`SeededEntropy`] instead.

mod device_id;
mod entropy;
mod keys;

pub use device_id::{DeviceId, DeviceIdError};
pub use entropy::{Entropy, OsEntropy, SeededEntropy};
pub use keys::{KeyPair, PublicKey, SecretBytes, Signature, Verifier};
