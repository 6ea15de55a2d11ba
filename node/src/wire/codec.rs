//! The one codec: pinned bincode options, a `[version, kind]` header and byte caps.
//!
//! Layout of every top-level format: one version byte ([`WIRE_VERSION`]), one
//! kind byte ([`Kind`]), then the body in bincode 2.0.1 with fixed-width
//! little-endian integers and `u64` length prefixes. Decoding checks the cap
//! before touching the body and rejects trailing bytes, so each byte string
//! has exactly one meaning.

use std::fmt;

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Domain, WireError};

/// Version byte written in front of every format.
pub const WIRE_VERSION: u8 = 1;

/// Upper bound on anything bincode may allocate while decoding; each
/// format's own cap ([`Format::MAX_LEN`]) is checked first and is smaller.
const DECODE_LIMIT: usize = 2 << 20;

type Pinned = Configuration<LittleEndian, Fixint, Limit<DECODE_LIMIT>>;

fn pinned() -> Pinned {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<DECODE_LIMIT>()
}

/// The kind byte: which format a byte string holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A certificate chain (agency root → … → device).
    CertificateChain = 1,
    /// A device's enrollment request.
    EnrollmentRequest = 2,
    /// An operator-signed enrollment bundle.
    EnrollmentBundle = 3,
    /// A secret encrypted under a passphrase (argon2id + XChaCha20-Poly1305).
    PassphraseSealed = 4,
    /// A file encrypted under the node's storage key.
    StorageSealed = 5,
    /// One database record encrypted under the node's storage key.
    StoredRecord = 6,
    /// The node's storage key file.
    StorageKey = 7,
    /// A secret key in plaintext, only ever written inside a sealed container.
    SecretKey = 8,
    /// The first message on every connection: certificate chain and revocation digest.
    AdmissionHello = 9,
    /// A signed gossip frame.
    SignedFrame = 10,
    /// A message envelope.
    Envelope = 11,
    /// Decrypted message content (only ever inside an envelope).
    MessageContent = 12,
    /// A room key grant: an epoch key wrapped to member devices.
    KeyGrant = 13,
    /// A payload of the agency control topic.
    ControlMessage = 14,
    /// A room definition as stored.
    RoomRecord = 15,
    /// A request of the sync protocol.
    SyncRequest = 16,
    /// A response of the sync protocol.
    SyncResponse = 17,
    /// A signed revocation.
    Revocation = 18,
    /// A revoked device's signed wipe receipt.
    WipeReceipt = 19,
    /// What a node knows about a revocation it holds (stored only).
    RevocationRecord = 20,
    /// A re-key of a path of the department key tree.
    PathRekey = 21,
    /// A question to a relay's agency directory.
    DirectoryQuery = 22,
    /// A relay's directory answer: certificate chains.
    DirectoryAnswer = 23,
    /// An operator-signed agency policy (lease, wrong-PIN limit).
    AgencyPolicy = 24,
    /// A request of the chunk protocol (attachments).
    ChunkRequest = 25,
    /// A response of the chunk protocol.
    ChunkResponse = 26,
    /// What a LAN discovery beacon carries, sealed under the network key.
    LanBeacon = 27,
    /// What a node records about an attachment chunk it holds (stored only).
    ChunkRecord = 28,
}

impl Kind {
    /// The kind a byte names, if any.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::CertificateChain,
            2 => Kind::EnrollmentRequest,
            3 => Kind::EnrollmentBundle,
            4 => Kind::PassphraseSealed,
            5 => Kind::StorageSealed,
            6 => Kind::StoredRecord,
            7 => Kind::StorageKey,
            8 => Kind::SecretKey,
            9 => Kind::AdmissionHello,
            10 => Kind::SignedFrame,
            11 => Kind::Envelope,
            12 => Kind::MessageContent,
            13 => Kind::KeyGrant,
            14 => Kind::ControlMessage,
            15 => Kind::RoomRecord,
            16 => Kind::SyncRequest,
            17 => Kind::SyncResponse,
            18 => Kind::Revocation,
            19 => Kind::WipeReceipt,
            20 => Kind::RevocationRecord,
            21 => Kind::PathRekey,
            22 => Kind::DirectoryQuery,
            23 => Kind::DirectoryAnswer,
            24 => Kind::AgencyPolicy,
            25 => Kind::ChunkRequest,
            26 => Kind::ChunkResponse,
            27 => Kind::LanBeacon,
            28 => Kind::ChunkRecord,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::CertificateChain => "a certificate chain",
            Kind::EnrollmentRequest => "an enrollment request",
            Kind::EnrollmentBundle => "an enrollment bundle",
            Kind::PassphraseSealed => "a passphrase-protected key file",
            Kind::StorageSealed => "a storage-sealed file",
            Kind::StoredRecord => "a stored record",
            Kind::StorageKey => "a storage key file",
            Kind::SecretKey => "a secret key",
            Kind::AdmissionHello => "an admission hello",
            Kind::SignedFrame => "a signed gossip frame",
            Kind::Envelope => "a message envelope",
            Kind::MessageContent => "message content",
            Kind::KeyGrant => "a room key grant",
            Kind::ControlMessage => "a control message",
            Kind::RoomRecord => "a room record",
            Kind::SyncRequest => "a sync request",
            Kind::SyncResponse => "a sync response",
            Kind::Revocation => "a revocation",
            Kind::WipeReceipt => "a wipe receipt",
            Kind::RevocationRecord => "a revocation record",
            Kind::PathRekey => "a department key re-key",
            Kind::DirectoryQuery => "a directory query",
            Kind::DirectoryAnswer => "a directory answer",
            Kind::AgencyPolicy => "an agency policy",
            Kind::ChunkRequest => "a chunk request",
            Kind::ChunkResponse => "a chunk response",
            Kind::LanBeacon => "a LAN discovery beacon",
            Kind::ChunkRecord => "a chunk record",
        })
    }
}

/// A top-level format: a type with a kind byte and a byte cap.
pub trait Format: Serialize + DeserializeOwned {
    /// Kind byte written in the header.
    const KIND: Kind;
    /// Largest accepted encoding, header included.
    const MAX_LEN: usize;
}

/// The kind of a top-level encoding, read from its header without decoding it.
pub fn kind_of(bytes: &[u8]) -> Option<Kind> {
    match bytes {
        [WIRE_VERSION, kind, ..] => Kind::from_byte(*kind),
        _ => None,
    }
}

/// Encodes a top-level format with its header. Encoding does not enforce
/// [`Format::MAX_LEN`]: code that builds a value from user input checks the
/// encoded length before sending it (decoding always enforces the cap).
pub fn encode<T: Format>(value: &T) -> Vec<u8> {
    let mut out = vec![WIRE_VERSION, T::KIND as u8];
    out.extend(body_bytes(value));
    out
}

/// Decodes a top-level format, checking cap, version, kind and trailing bytes.
pub fn decode<T: Format>(bytes: &[u8]) -> Result<T, WireError> {
    let kind = T::KIND;
    if bytes.len() > T::MAX_LEN {
        return Err(WireError::TooLarge {
            kind,
            len: bytes.len(),
            max: T::MAX_LEN,
        });
    }
    let [version, kind_byte, body @ ..] = bytes else {
        return Err(WireError::Truncated { len: bytes.len() });
    };
    if *version != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion {
            found: *version,
            supported: WIRE_VERSION,
        });
    }
    if *kind_byte != kind as u8 {
        let found = Kind::from_byte(*kind_byte)
            .map(|k| k.to_string())
            .unwrap_or_else(|| format!("an unknown format (kind {kind_byte})"));
        return Err(WireError::WrongKind {
            expected: kind,
            found,
        });
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(body, pinned()).map_err(|e| {
        WireError::Malformed {
            kind,
            reason: describe(&e),
        }
    })?;
    if used != body.len() {
        return Err(WireError::TrailingBytes {
            kind,
            extra: body.len() - used,
        });
    }
    Ok(value)
}

/// The exact bytes a signature covers: the domain string, a zero byte, then
/// the canonical encoding of the signed body.
pub fn signing_bytes<T: Serialize>(domain: Domain, body: &T) -> Vec<u8> {
    let mut out = domain.as_str().as_bytes().to_vec();
    out.push(0);
    out.extend(body_bytes(body));
    out
}

/// Says in words why bincode refused the body.
fn describe(error: &bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError;
    match error {
        DecodeError::UnexpectedEnd { .. } => "it ends early (truncated)".into(),
        DecodeError::LimitExceeded => "a length field claims more data than allowed".into(),
        DecodeError::Utf8 { .. } => "a text field is not valid UTF-8".into(),
        other => other.to_string(),
    }
}

fn body_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Our formats are plain structs, enums, integers, strings and byte
    // arrays; serialising them into a Vec has no failure mode.
    bincode::serde::encode_to_vec(value, pinned())
        .expect("encoding plain data into a Vec cannot fail")
}
