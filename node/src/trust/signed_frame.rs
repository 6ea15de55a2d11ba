//! Signed gossip frames: the author's chain, the topic, and a payload, signed
//! by the author's device key so any node can check them without a lookup.

use serde::{Deserialize, Serialize};

use super::{AgencyInfo, CertificateChain, TrustError, TrustPolicy, VerifiedDevice};
use crate::identity::{KeyPair, Signature};
use crate::wire::{Domain, Format, Kind};

/// Largest payload a frame may carry.
pub const MAX_FRAME_PAYLOAD: usize = 64 * 1024;

/// What the author signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameBody {
    /// The author's certificate chain.
    pub author: CertificateChain,
    /// Topic the frame was published on (its hash string).
    pub topic: String,
    /// When it was written, Unix seconds.
    pub sent_at: u64,
    /// Random bytes so identical payloads have distinct ids.
    pub nonce: [u8; 16],
    /// Application payload.
    pub payload: Vec<u8>,
}

/// A gossip frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedFrame {
    /// The signed content.
    pub body: FrameBody,
    /// Author device's signature over [`Domain::GossipFrame`] and the body.
    pub signature: Signature,
}

impl Format for SignedFrame {
    const KIND: Kind = Kind::SignedFrame;
    const MAX_LEN: usize = MAX_FRAME_PAYLOAD + 8 * 1024;
}

impl SignedFrame {
    /// Signs a frame as `author`.
    pub fn sign(author: &KeyPair, body: FrameBody) -> Self {
        let signature = author.sign(Domain::GossipFrame, &body);
        SignedFrame { body, signature }
    }

    /// Checks the frame was published on `topic` by a certified device of
    /// `agency`, unchanged.
    pub fn verify(
        &self,
        topic: &str,
        agency: &AgencyInfo,
        now: u64,
        policy: &TrustPolicy,
    ) -> Result<VerifiedDevice, TrustError> {
        self.verify_cached(topic, agency, now, policy, &mut super::ChainCache::new())
    }

    /// [`SignedFrame::verify`], with the author's chain looked up in (and
    /// added to) `cache`.
    pub fn verify_cached(
        &self,
        topic: &str,
        agency: &AgencyInfo,
        now: u64,
        policy: &TrustPolicy,
        cache: &mut super::ChainCache,
    ) -> Result<VerifiedDevice, TrustError> {
        if self.body.topic != topic {
            return Err(TrustError::invalid(
                "gossip frame",
                "published on another topic than it names",
            ));
        }
        if self.body.payload.len() > MAX_FRAME_PAYLOAD {
            return Err(TrustError::invalid("gossip frame", "payload too large"));
        }
        let (author, verifier) = cache.verify(&self.body.author, agency, now, policy)?;
        let signed = match verifier {
            Some(verifier) => verifier.verify(Domain::GossipFrame, &self.body, &self.signature),
            None => false,
        };
        if !signed {
            return Err(TrustError::BadSignature {
                what: "gossip frame".into(),
                signer: format!("its author {}", author.subject.user_id),
            });
        }
        Ok(author)
    }
}
