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
        "the storage key of {0} is missing: this home was wiped or damaged and its data cannot be read"
    )]
    MissingStorageKey(PathBuf),
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
