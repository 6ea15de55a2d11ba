//! Symmetric sealing: the storage key that encrypts everything at rest, and
//! passphrase protection (argon2id) for the agency root and operator keys.
//!
//! Pure: keys, nonces and salts come in; sealed bytes go out. Both use
//! XChaCha20-Poly1305 with associated data naming what is sealed, so a sealed
//! value moved to another place (another record key, another file) fails to open.

mod error;
mod passphrase;
mod sealed;
mod storage_key;

pub use error::CryptoError;
pub use passphrase::{KdfParams, Passphrase, PassphraseSealed};
pub use sealed::{Sealed, SealedFile, SealedRecord};
pub use storage_key::StorageKey;
