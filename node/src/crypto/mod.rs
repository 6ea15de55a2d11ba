//! Sealing: the storage key that encrypts everything at rest, passphrase
//! protection (argon2id) for the agency root and operator keys, per-epoch room
//! keys for message content, per-file keys for attachments' chunks, and
//! HPKE wrapping of room keys to devices.
//!
//! Pure: keys, nonces and salts come in; sealed bytes go out. Both use
//! XChaCha20-Poly1305 with associated data naming what is sealed, so a sealed
//! value moved to another place (another record key, another file) fails to open.

mod error;
mod file_key;
mod key_wrap;
mod passphrase;
mod room_key;
mod sealed;
mod storage_key;
mod unit_key;

pub use error::CryptoError;
pub use file_key::{CHUNK_LEN, CHUNK_OVERHEAD, FileKey, chunk_hash};
pub use key_wrap::{WrappedKey, unwrap, wrap};
pub use passphrase::{KdfParams, Passphrase, PassphraseSealed};
pub use room_key::RoomKey;
pub use sealed::{Sealed, SealedFile, SealedRecord};
pub use storage_key::{IndexKey, StorageKey};
pub use unit_key::{UnitPublic, UnitSecret, WrappedSecret};
