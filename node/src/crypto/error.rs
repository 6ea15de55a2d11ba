//! Errors from opening sealed data.

/// Why sealed data could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Authentication failed: wrong key, or the bytes were changed.
    #[error("{0} could not be decrypted: the key is wrong or the data was altered")]
    Unauthentic(&'static str),
    /// The passphrase does not open the key file.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// Key-derivation parameters outside the accepted range.
    #[error("key file uses unacceptable key-derivation parameters: {0}")]
    BadKdfParams(String),
    /// The passphrase is unusable.
    #[error("passphrase must be at least {min} characters")]
    WeakPassphrase {
        /// Minimum length.
        min: usize,
    },
}
