//! Message envelopes: what a device sends to a room.
//!
//! Header (room, epoch, sender device, hybrid logical clock timestamp, nonce)
//! in the clear; content encrypted under the room's epoch key with
//! XChaCha20-Poly1305, the encoded header as associated data; the sender's
//! device signs header and ciphertext together (`baro/envelope/v1`). The
//! message id is the hash of the whole encoded envelope, so the same message
//! arriving by gossip or by sync is one message.

use serde::{Deserialize, Serialize};

use super::{Domain, Format, Kind, WireError, decode, encode};
use crate::crypto::{CryptoError, RoomKey};
use crate::identity::{Entropy, KeyPair, PublicKey, Signature, Verifier};
use crate::rooms::{EpochRef, RoomId};
use crate::sync::Hlc;

/// Largest content (text, later attachments' chunks) per envelope.
pub const MAX_CONTENT_LEN: usize = 60 * 1024;
/// Most message ids one receipt covers.
pub const MAX_RECEIPT_IDS: usize = 512;

/// The clear part of an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeHeader {
    /// The room.
    pub room: RoomId,
    /// The key epoch the content is encrypted under.
    pub epoch: EpochRef,
    /// The sending device.
    pub sender: PublicKey,
    /// When it was written.
    pub timestamp: Hlc,
    /// The content nonce.
    pub nonce: [u8; 24],
}

/// The signed part: header and ciphertext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeBody {
    /// Header.
    pub header: EnvelopeHeader,
    /// Encrypted [`Content`].
    pub ciphertext: Vec<u8>,
}

/// An envelope as sent and stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Header and ciphertext.
    pub body: EnvelopeBody,
    /// Sender device's signature over [`Domain::Envelope`] and the body.
    pub signature: Signature,
}

impl Format for Envelope {
    const KIND: Kind = Kind::Envelope;
    const MAX_LEN: usize = MAX_CONTENT_LEN + 1024;
}

/// What a message says, once decrypted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// A text message.
    Text(String),
    /// A group's definition (name, members, admins), sent by an admin.
    RoomState(crate::rooms::Room),
    /// Receipts for messages of the same room, sent by a recipient device.
    Receipt {
        /// How far the messages got.
        state: ReceiptState,
        /// Their ids (at most [`MAX_RECEIPT_IDS`]).
        messages: Vec<[u8; 32]>,
    },
    /// An attached file: its manifest (the chunks travel separately, see
    /// [`FileManifest`](super::FileManifest)) and a caption (may be empty).
    File {
        /// Name, type, size, chunk hashes, key and preview.
        manifest: Box<super::FileManifest>,
        /// Text sent with it.
        caption: String,
    },
}

/// How far a message got, as reported by a recipient device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptState {
    /// Stored on a relay (it cannot read it).
    StoredByRelay,
    /// Decrypted on a recipient device.
    Delivered,
    /// Shown to the recipient.
    Read,
}

impl Format for Content {
    const KIND: Kind = Kind::MessageContent;
    const MAX_LEN: usize = MAX_CONTENT_LEN;
}

/// Why an envelope cannot be accepted or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The content is larger than an envelope carries.
    #[error("message too large: {len} bytes, the limit is {max}")]
    TooLarge {
        /// Encoded content size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The signature does not verify under the sender key it names.
    #[error("envelope signature does not verify for its sender")]
    BadSignature,
    /// Decryption failed: wrong key, or header or ciphertext altered.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Decrypted bytes are not valid content.
    #[error("decrypted content is malformed: {0}")]
    Content(#[from] WireError),
}

impl Envelope {
    /// Encrypts `content` for the room epoch and signs it as `sender`.
    pub fn seal(
        sender: &KeyPair,
        room: RoomId,
        epoch: EpochRef,
        key: &RoomKey,
        timestamp: Hlc,
        content: &Content,
        entropy: &mut impl Entropy,
    ) -> Result<Envelope, EnvelopeError> {
        let plaintext = zeroize::Zeroizing::new(encode(content));
        if plaintext.len() > MAX_CONTENT_LEN {
            return Err(EnvelopeError::TooLarge {
                len: plaintext.len(),
                max: MAX_CONTENT_LEN,
            });
        }
        let header = EnvelopeHeader {
            room,
            epoch,
            sender: sender.public(),
            timestamp,
            nonce: entropy.array(),
        };
        let ciphertext = key.seal(&header.nonce, &header_bytes(&header), &plaintext);
        let body = EnvelopeBody { header, ciphertext };
        let signature = sender.sign(Domain::Envelope, &body);
        Ok(Envelope { body, signature })
    }

    /// The content-addressed message id.
    pub fn id(&self) -> [u8; 32] {
        *blake3::hash(&encode(self)).as_bytes()
    }

    /// Checks the signature with the sender's already parsed key (which the
    /// caller looked up by [`EnvelopeHeader::sender`]).
    pub fn verify_signature_with(&self, sender: &Verifier) -> Result<(), EnvelopeError> {
        if sender.verify(Domain::Envelope, &self.body, &self.signature) {
            Ok(())
        } else {
            Err(EnvelopeError::BadSignature)
        }
    }

    /// Checks the sender's signature (strictly). Membership and admission of
    /// the sender are the caller's decision.
    pub fn verify_signature(&self) -> Result<(), EnvelopeError> {
        if self
            .body
            .header
            .sender
            .verify(Domain::Envelope, &self.body, &self.signature)
        {
            Ok(())
        } else {
            Err(EnvelopeError::BadSignature)
        }
    }

    /// Decrypts with the epoch key.
    pub fn open(&self, key: &RoomKey) -> Result<Content, EnvelopeError> {
        let header = &self.body.header;
        let plain = zeroize::Zeroizing::new(key.open(
            &header.nonce,
            &header_bytes(header),
            &self.body.ciphertext,
        )?);
        Ok(decode(&plain)?)
    }
}

/// The associated data: the canonical encoding of the header.
fn header_bytes(header: &EnvelopeHeader) -> Vec<u8> {
    super::signing_bytes(Domain::Envelope, header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;

    fn sealed() -> (Envelope, RoomKey, KeyPair) {
        let mut entropy = SeededEntropy::new(5);
        let sender = KeyPair::generate(&mut entropy);
        let key = RoomKey::generate(&mut entropy);
        let epoch = EpochRef {
            number: 1,
            key_id: key.key_id(),
        };
        let envelope = Envelope::seal(
            &sender,
            RoomId([3; 32]),
            epoch,
            &key,
            Hlc {
                wall_ms: 1_800_000_000_000,
                counter: 0,
            },
            &Content::Text("Meeting at 15:00".into()),
            &mut entropy,
        )
        .expect("seal");
        (envelope, key, sender)
    }

    #[test]
    fn members_read_what_was_sealed() {
        let (envelope, key, _) = sealed();
        envelope.verify_signature().expect("signed");
        assert_eq!(
            envelope.open(&key).expect("open"),
            Content::Text("Meeting at 15:00".into())
        );
        assert!(
            !encode(&envelope).windows(7).any(|w| w == b"Meeting"),
            "content is encrypted"
        );
    }

    #[test]
    fn tampering_and_wrong_keys_are_detected() {
        let (envelope, key, _) = sealed();
        let mut ciphertext = envelope.clone();
        ciphertext.body.ciphertext[0] ^= 1;
        assert_eq!(
            ciphertext.verify_signature(),
            Err(EnvelopeError::BadSignature)
        );
        assert!(ciphertext.open(&key).is_err());

        let mut header = envelope.clone();
        header.body.header.timestamp.counter += 1;
        assert_eq!(header.verify_signature(), Err(EnvelopeError::BadSignature));
        assert!(
            header.open(&key).is_err(),
            "header is authenticated by the AEAD too"
        );

        let mut resigned = envelope.clone();
        let impostor = KeyPair::generate(&mut SeededEntropy::new(9));
        resigned.body.header.sender = impostor.public();
        assert_eq!(
            resigned.verify_signature(),
            Err(EnvelopeError::BadSignature)
        );

        let other = RoomKey::generate(&mut SeededEntropy::new(10));
        assert!(envelope.open(&other).is_err());
    }

    #[test]
    fn oversized_content_is_refused() {
        let mut entropy = SeededEntropy::new(6);
        let sender = KeyPair::generate(&mut entropy);
        let key = RoomKey::generate(&mut entropy);
        let epoch = EpochRef {
            number: 1,
            key_id: key.key_id(),
        };
        let big = Content::Text("x".repeat(MAX_CONTENT_LEN));
        let result = Envelope::seal(
            &sender,
            RoomId([0; 32]),
            epoch,
            &key,
            Hlc::default(),
            &big,
            &mut entropy,
        );
        assert!(matches!(result, Err(EnvelopeError::TooLarge { .. })));
    }
}
