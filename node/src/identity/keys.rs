//! ed25519 key newtypes with domain-separated signing and strict verification.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{DeviceId, Entropy};
use crate::wire::{self, Domain, SignatureBytes};

/// An ed25519 public key (32 bytes). Parsing to a curve point happens at
/// verification, so any 32 bytes decode and a bad key fails there.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The device id (libp2p PeerId) this key stands for.
    pub fn device_id(&self) -> DeviceId {
        DeviceId::from_public_key(*self)
    }

    /// Verifies `signature` over `body` signed for `domain`, with
    /// `verify_strict` (rejects small-order keys and malleable signatures).
    pub fn verify<T: Serialize>(&self, domain: Domain, body: &T, signature: &Signature) -> bool {
        self.verifier()
            .is_some_and(|key| key.verify(domain, body, signature))
    }

    /// The key parsed once, for verifying many signatures by the same signer
    /// (parsing a curve point costs a fair part of a verification); `None`
    /// if the bytes are not a valid key.
    pub fn verifier(&self) -> Option<Verifier> {
        VerifyingKey::from_bytes(&self.0).ok().map(Verifier)
    }

    /// Short hex form for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// The X25519 public key derived from this ed25519 key (its Montgomery
    /// form), used to wrap room keys to the device; `None` if not a valid point.
    pub fn x25519(&self) -> Option<[u8; 32]> {
        let key = VerifyingKey::from_bytes(&self.0).ok()?;
        Some(key.to_montgomery().to_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A parsed public key: [`PublicKey::verify`] without re-parsing each time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verifier(VerifyingKey);

impl Verifier {
    /// Verifies like [`PublicKey::verify`] (strictly, for `domain`).
    pub fn verify<T: Serialize>(&self, domain: Domain, body: &T, signature: &Signature) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0.0);
        self.0
            .verify_strict(&wire::signing_bytes(domain, body), &signature)
            .is_ok()
    }
}

/// An ed25519 signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature(pub SignatureBytes);

/// Secret key bytes as stored inside an encrypted container; zeroized on drop.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(pub [u8; 32]);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

impl wire::Format for SecretBytes {
    const KIND: wire::Kind = wire::Kind::SecretKey;
    const MAX_LEN: usize = 2 + 32;
}

/// An ed25519 signing key pair: the agency root, an operator, or a device.
/// Its secret half is zeroized on drop and never printed.
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    /// Generates a fresh key pair from `entropy`.
    pub fn generate(entropy: &mut impl Entropy) -> Self {
        let seed = Zeroizing::new(entropy.array::<32>());
        KeyPair {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Rebuilds a key pair from its stored secret.
    pub fn from_secret(secret: &SecretBytes) -> Self {
        KeyPair {
            signing: SigningKey::from_bytes(&secret.0),
        }
    }

    /// The secret, for sealing into a key file.
    pub fn secret(&self) -> SecretBytes {
        SecretBytes(self.signing.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// The device id this key would have as a device.
    pub fn device_id(&self) -> DeviceId {
        self.public().device_id()
    }

    /// The X25519 secret matching [`PublicKey::x25519`].
    pub fn x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_scalar_bytes())
    }

    /// Signs `body` for `domain`.
    pub fn sign<T: Serialize>(&self, domain: Domain, body: &T) -> Signature {
        let signature = self.signing.sign(&wire::signing_bytes(domain, body));
        Signature(SignatureBytes(signature.to_bytes()))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({}, secret: <redacted>)", self.public().short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;

    #[test]
    fn signature_is_bound_to_its_domain() {
        let key = KeyPair::generate(&mut SeededEntropy::new(1));
        let signature = key.sign(Domain::Certificate, &"hello");
        assert!(
            key.public()
                .verify(Domain::Certificate, &"hello", &signature)
        );
        assert!(
            !key.public()
                .verify(Domain::EnrollmentRequest, &"hello", &signature)
        );
        assert!(
            !key.public()
                .verify(Domain::Certificate, &"hellO", &signature)
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = KeyPair::generate(&mut SeededEntropy::new(2));
        let secret_hex = hex::encode(key.secret().0);
        let shown = format!("{key:?} {:?}", key.secret());
        assert!(!shown.contains(&secret_hex[..16]), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn small_order_public_key_never_verifies() {
        // The identity point: verify_strict must refuse it whatever the signature.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let signature = Signature(SignatureBytes([0u8; 64]));
        assert!(!PublicKey(weak).verify(Domain::Certificate, &"x", &signature));
    }
}
