//! Every byte format Baro Mesh writes to disk or sends to a peer.
//!
//! All formats go through [`codec`]: one pinned bincode configuration, a
//! version and kind tag in front of every top-level format, a byte cap on
//! every decode, and domain-separated signing input. Nothing outside this
//! module touches bincode, so a compatible replacement can be dropped in;
//! the golden-byte tests pin the exact layout.

mod codec;
mod domain;
mod envelope;
mod error;
mod file_manifest;
pub(crate) mod raw_bytes;
mod signature;

pub use codec::{Format, Kind, WIRE_VERSION, decode, encode, kind_of, signing_bytes};
pub use domain::Domain;
pub use envelope::{
    Content, Envelope, EnvelopeBody, EnvelopeError, EnvelopeHeader, MAX_CONTENT_LEN,
    MAX_RECEIPT_IDS, ReceiptState,
};
pub use error::WireError;
pub use file_manifest::{
    ChunkRequest, ChunkResponse, FileManifest, MAX_FILE_CHUNKS, MAX_FILE_LEN, MAX_FILE_NAME_LEN,
    MAX_OFFERED_CHUNKS, MAX_PREVIEW_LEN, ManifestError, Preview, check_name, chunk_count,
};
pub use signature::SignatureBytes;

#[cfg(test)]
mod golden;
#[cfg(test)]
pub(crate) use golden::check_bytes as check_golden_bytes;
#[cfg(test)]
mod robustness;
