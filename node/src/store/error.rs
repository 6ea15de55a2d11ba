//! Errors from the home directory and the record store.

use std::path::PathBuf;

use crate::crypto::CryptoError;
use crate::wire::WireError;

/// What went wrong reading or writing the node's data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The sled database failed.
    #[error("database error: {0}")]
    Database(#[from] sled::Error),
    /// A stored file or record is not in the expected format.
    #[error("{path} is damaged: {source}")]
    Corrupt {
        /// Which file (or record).
        path: String,
        /// Why it does not decode.
        source: WireError,
    },
    /// A stored value does not decrypt.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// There is no Baro home at the path.
    #[error(
        "no Baro Mesh home at {0}: run `baro device init` or `baro agency init` first, or pass --home"
    )]
    NoHome(PathBuf),
    /// This device was revoked and erased itself; the notice says by whom and when.
    #[error("{0}")]
    Revoked(String),
    /// The home has data but its storage key is gone.
    #[error(
        "the storage key of {0} is missing: this home was wiped or damaged and its data cannot be read (a service's home opens only with its --storage-key-file)"
    )]
    MissingStorageKey(PathBuf),
    /// No PIN was given and none can be asked for.
    #[error(
        "this home is locked by a device PIN: set BARO_PIN or run in a terminal (services: --storage-key-file)"
    )]
    PinRequired,
    /// The PIN is wrong; `left` more wrong ones wipe the device.
    #[error("wrong PIN: {left} more wrong attempts erase this device's data")]
    WrongPin {
        /// Attempts left before the wipe.
        left: u32,
    },
    /// A new PIN was typed differently the second time.
    #[error("the two PINs differ; nothing was changed")]
    PinMismatch,
    /// A new PIN is too short.
    #[error("the device PIN must have at least {min} characters; nothing was changed")]
    ShortPin {
        /// Minimum length.
        min: usize,
    },
    /// A key file was given for a home locked by a PIN.
    #[error(
        "{0} is locked by a device PIN: unlock it with its PIN (BARO_PIN or the terminal), not a key file"
    )]
    PinLocked(PathBuf),
    /// A key file was given for an old home whose key lies in plaintext inside it.
    #[error(
        "this home keeps its storage key in plaintext at {key}: move it out (`mv {key} {key_file}`) to use it as the key file, or unlock the home with a PIN to seal it"
    )]
    PlaintextKey {
        /// The plaintext key in the home.
        key: PathBuf,
        /// The key file asked for.
        key_file: PathBuf,
    },
    /// The storage key file given does not exist.
    #[error("no storage key file at {0}: give the file this home was created with")]
    MissingKeyFile(PathBuf),
    /// The database was written by a newer version.
    #[error(
        "the database uses schema version {found}, newer than this baro supports ({supported}): upgrade baro"
    )]
    SchemaTooNew {
        /// Version on disk.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },
    /// A schema version no migration starts from.
    #[error(
        "the database uses schema version {found}, which this baro cannot migrate to version {supported}: restore the home from a backup or enroll the device again"
    )]
    SchemaTooOld {
        /// Version on disk.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },
    /// Another process holds the database.
    #[error(
        "the database in {0} is in use by another baro process: is `baro run` already running on this home?"
    )]
    Locked(PathBuf),
    /// The database's own checks failed past what it can repair.
    #[error(
        "the database in {0} is damaged beyond what it can repair (a failing disk?): \
         move it aside to start this device empty, or restore it from a backup"
    )]
    Damaged(PathBuf),
    /// The store was wiped; nothing can be read or written any more.
    #[error("this store was wiped")]
    Wiped,
    /// A tree name is empty, too long or reserved.
    #[error("invalid tree name '{0}'")]
    BadTreeName(String),
    /// A value exceeds the record size limit.
    #[error("value of {len} bytes exceeds the {max}-byte record limit")]
    ValueTooLarge {
        /// Size given.
        len: usize,
        /// Limit.
        max: usize,
    },
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }
}
