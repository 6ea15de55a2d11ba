//! Errors from decoding bytes.

use super::Kind;

/// Why a byte string could not be decoded. Every variant is an answer to bad
/// input: decoding never panics.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// The input is empty or shorter than the two-byte header.
    #[error("input is truncated: {len} bytes is too short for a Baro Mesh header")]
    Truncated {
        /// Number of bytes received.
        len: usize,
    },
    /// The input is larger than the format allows.
    #[error("{kind} is too large: {len} bytes, the limit is {max}")]
    TooLarge {
        /// Format that was expected.
        kind: Kind,
        /// Number of bytes received.
        len: usize,
        /// The format's cap.
        max: usize,
    },
    /// The version byte is not one this build understands.
    #[error(
        "unsupported format version {found} (this baro understands version {supported}); upgrade baro or re-create the file"
    )]
    UnsupportedVersion {
        /// Version byte found.
        found: u8,
        /// Version byte supported.
        supported: u8,
    },
    /// The kind byte names another format (e.g. a request given where a bundle was expected).
    #[error("expected {expected} but the input is {found}")]
    WrongKind {
        /// Format that was expected.
        expected: Kind,
        /// What the kind byte says instead.
        found: String,
    },
    /// The body does not decode as the expected format.
    #[error("{kind} is malformed: {reason}")]
    Malformed {
        /// Format that was expected.
        kind: Kind,
        /// What the decoder objected to.
        reason: String,
    },
    /// The body decoded but bytes were left over.
    #[error("{kind} has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// Format that was expected.
        kind: Kind,
        /// Number of bytes left over.
        extra: usize,
    },
}
