//! Org-unit secrets: the keys of the department key tree.
//!
//! A [`UnitSecret`] is 32 random bytes held by every device at or under one
//! org unit for one epoch. It yields an X25519 key pair (HPKE, RFC 9180:
//! DHKEM X25519, HKDF-SHA256, ChaCha20-Poly1305) that a parent unit's secret
//! is wrapped to, and the room key of the unit's department room. A secret
//! is wrapped either to a device (its certified ed25519 key in X25519 form,
//! as room keys are) or to a unit's public key.

use std::fmt;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{CryptoError, RoomKey};
use crate::identity::{Entropy, KeyPair, PublicKey};

type Kem = X25519HkdfSha256;

/// Length of an HPKE encapsulated key (X25519).
pub const ENCAPPED_LEN: usize = 32;

/// One org unit's secret for one epoch. Zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct UnitSecret([u8; 32]);

/// The public half of a unit's key pair: what the parent's secret is wrapped to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UnitPublic(pub [u8; 32]);

/// A secret sealed to one recipient (a device or a unit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedSecret {
    /// HPKE encapsulated key.
    pub encapped: [u8; ENCAPPED_LEN],
    /// The sealed secret (32 bytes).
    pub sealed: [u8; 32],
    /// Its AEAD tag.
    pub tag: [u8; 16],
}

impl UnitSecret {
    /// A fresh random secret.
    pub fn generate(entropy: &mut impl Entropy) -> Self {
        UnitSecret(entropy.array())
    }

    /// The unit's public key for this epoch.
    pub fn public(&self) -> UnitPublic {
        let (_, public) = self.key_pair();
        let bytes = public.to_bytes();
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes);
        UnitPublic(out)
    }

    /// The department room key this secret stands for; `context` names the
    /// unit and epoch, so one secret never yields two rooms' keys.
    pub fn room_key(&self, context: &[u8]) -> RoomKey {
        let mut hasher = blake3::Hasher::new_derive_key("baro/unit-room-key/v1");
        hasher.update(&self.0);
        hasher.update(context);
        RoomKey::from_bytes(*hasher.finalize().as_bytes())
    }

    /// A public identifier of the secret (does not reveal it).
    pub fn secret_id(&self) -> [u8; 16] {
        let hash = blake3::derive_key("baro/unit-secret-id/v1", &self.0);
        let mut id = [0u8; 16];
        id.copy_from_slice(&hash[..16]);
        id
    }

    fn key_pair(
        &self,
    ) -> (
        <Kem as hpke::Kem>::PrivateKey,
        <Kem as hpke::Kem>::PublicKey,
    ) {
        let ikm = Zeroizing::new(blake3::derive_key("baro/unit-key-pair/v1", &self.0));
        Kem::derive_keypair(ikm.as_ref())
    }

    /// Seals this secret to a device; `context` binds where it belongs.
    pub fn wrap_to_device(
        &self,
        device: &PublicKey,
        context: &[u8],
    ) -> Result<WrappedSecret, CryptoError> {
        let x25519 = device
            .x25519()
            .ok_or(CryptoError::Unauthentic("device key"))?;
        self.seal(&x25519, context)
    }

    /// Seals this secret to a unit's public key.
    pub fn wrap_to_unit(
        &self,
        unit: &UnitPublic,
        context: &[u8],
    ) -> Result<WrappedSecret, CryptoError> {
        self.seal(&unit.0, context)
    }

    fn seal(&self, recipient: &[u8; 32], context: &[u8]) -> Result<WrappedSecret, CryptoError> {
        let recipient = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient)
            .map_err(|_| CryptoError::Unauthentic("recipient key"))?;
        let (encapped, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeS::Base,
            &recipient,
            context,
            &self.0,
            &[],
        )
        .map_err(|_| CryptoError::Unauthentic("unit key wrap"))?;
        let malformed = |_| CryptoError::Unauthentic("unit key wrap");
        let (sealed, tag) = ciphertext
            .split_at_checked(32)
            .ok_or(CryptoError::Unauthentic("unit key wrap"))?;
        Ok(WrappedSecret {
            encapped: encapped
                .to_bytes()
                .as_slice()
                .try_into()
                .map_err(malformed)?,
            sealed: sealed.try_into().map_err(malformed)?,
            tag: tag.try_into().map_err(malformed)?,
        })
    }
}

impl WrappedSecret {
    /// Opens a secret wrapped to device `me`.
    pub fn open_as_device(&self, me: &KeyPair, context: &[u8]) -> Result<UnitSecret, CryptoError> {
        let secret = me.x25519_secret();
        let private = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret.as_ref())
            .map_err(|_| CryptoError::Unauthentic("device key"))?;
        self.open(&private, context)
    }

    /// Opens a secret wrapped to the unit whose secret is `holder`.
    pub fn open_as_unit(
        &self,
        holder: &UnitSecret,
        context: &[u8],
    ) -> Result<UnitSecret, CryptoError> {
        let (private, _) = holder.key_pair();
        self.open(&private, context)
    }

    fn open(
        &self,
        private: &<Kem as hpke::Kem>::PrivateKey,
        context: &[u8],
    ) -> Result<UnitSecret, CryptoError> {
        let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(&self.encapped)
            .map_err(|_| CryptoError::Unauthentic("unit key"))?;
        let mut ciphertext = [0u8; 48];
        ciphertext[..32].copy_from_slice(&self.sealed);
        ciphertext[32..].copy_from_slice(&self.tag);
        let plain = Zeroizing::new(
            hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
                &OpModeR::Base,
                private,
                &encapped,
                context,
                &ciphertext,
                &[],
            )
            .map_err(|_| CryptoError::Unauthentic("unit key"))?,
        );
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Unauthentic("unit key"))?;
        Ok(UnitSecret(bytes))
    }
}

impl fmt::Debug for UnitSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnitSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;

    #[test]
    fn a_secret_opens_for_its_device_or_unit_in_its_context_only() {
        let mut entropy = SeededEntropy::new(7);
        let device = KeyPair::generate(&mut entropy);
        let stranger = KeyPair::generate(&mut entropy);
        let child = UnitSecret::generate(&mut entropy);
        let other_child = UnitSecret::generate(&mut entropy);
        let parent = UnitSecret::generate(&mut entropy);

        let to_device = parent
            .wrap_to_device(&device.public(), b"ctx")
            .expect("wrap");
        assert_eq!(
            to_device.open_as_device(&device, b"ctx").expect("opens"),
            parent
        );
        assert!(to_device.open_as_device(&stranger, b"ctx").is_err());
        assert!(to_device.open_as_device(&device, b"other").is_err());

        let to_unit = parent.wrap_to_unit(&child.public(), b"ctx").expect("wrap");
        assert_eq!(to_unit.open_as_unit(&child, b"ctx").expect("opens"), parent);
        assert!(to_unit.open_as_unit(&other_child, b"ctx").is_err());
        let mut altered = to_unit;
        altered.sealed[3] ^= 1;
        assert!(altered.open_as_unit(&child, b"ctx").is_err());
    }

    #[test]
    fn room_keys_differ_by_context_and_secret() {
        let mut entropy = SeededEntropy::new(8);
        let a = UnitSecret::generate(&mut entropy);
        let b = UnitSecret::generate(&mut entropy);
        assert_eq!(a.room_key(b"x"), a.room_key(b"x"));
        assert_ne!(a.room_key(b"x"), a.room_key(b"y"));
        assert_ne!(a.room_key(b"x"), b.room_key(b"x"));
        assert_ne!(a.public(), b.public());
        assert_eq!(format!("{a:?}"), "UnitSecret(..)");
    }
}
