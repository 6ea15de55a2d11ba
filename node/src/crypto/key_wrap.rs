//! Wrapping a room key to one device with HPKE (RFC 9180: DHKEM X25519,
//! HKDF-SHA256, ChaCha20-Poly1305), using the X25519 form of the device's
//! ed25519 key, so every certified device can receive keys with nothing extra.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};

use super::{CryptoError, RoomKey};
use crate::identity::{KeyPair, PublicKey};

type Kem = X25519HkdfSha256;

/// A room key sealed to one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// The device it is for (its ed25519 key).
    pub device: PublicKey,
    /// HPKE encapsulated key.
    pub encapped: Vec<u8>,
    /// The sealed room key.
    pub ciphertext: Vec<u8>,
}

/// Seals `key` to `device`; `context` (room and epoch) is bound in.
pub fn wrap(key: &RoomKey, device: &PublicKey, context: &[u8]) -> Result<WrappedKey, CryptoError> {
    let x25519 = device
        .x25519()
        .ok_or(CryptoError::Unauthentic("device key"))?;
    let recipient = <Kem as hpke::Kem>::PublicKey::from_bytes(&x25519)
        .map_err(|_| CryptoError::Unauthentic("device key"))?;
    let (encapped, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &recipient,
        context,
        key.expose_bytes(),
        &[],
    )
    .map_err(|_| CryptoError::Unauthentic("room key wrap"))?;
    Ok(WrappedKey {
        device: *device,
        encapped: encapped.to_bytes().to_vec(),
        ciphertext,
    })
}

/// Opens a key wrapped to `me`; fails if it is for another device, another
/// context, or was altered.
pub fn unwrap(wrapped: &WrappedKey, me: &KeyPair, context: &[u8]) -> Result<RoomKey, CryptoError> {
    if wrapped.device != me.public() {
        return Err(CryptoError::Unauthentic(
            "room key (wrapped for another device)",
        ));
    }
    let secret = me.x25519_secret();
    let private = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret.as_ref())
        .map_err(|_| CryptoError::Unauthentic("device key"))?;
    let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(&wrapped.encapped)
        .map_err(|_| CryptoError::Unauthentic("room key"))?;
    let plain = zeroize::Zeroizing::new(
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &private,
            &encapped,
            context,
            &wrapped.ciphertext,
            &[],
        )
        .map_err(|_| CryptoError::Unauthentic("room key"))?,
    );
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Unauthentic("room key"))?;
    Ok(RoomKey::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;

    #[test]
    fn only_the_addressed_device_unwraps_and_only_in_its_context() {
        let mut entropy = SeededEntropy::new(1);
        let alice = KeyPair::generate(&mut entropy);
        let bob = KeyPair::generate(&mut entropy);
        let key = RoomKey::generate(&mut entropy);
        let wrapped = wrap(&key, &alice.public(), b"room 1 epoch 1").expect("wrap");
        assert_eq!(
            unwrap(&wrapped, &alice, b"room 1 epoch 1").expect("unwrap"),
            key
        );
        assert!(unwrap(&wrapped, &alice, b"room 1 epoch 2").is_err());
        assert!(unwrap(&wrapped, &bob, b"room 1 epoch 1").is_err());
        let mut readdressed = wrapped.clone();
        readdressed.device = bob.public();
        assert!(unwrap(&readdressed, &bob, b"room 1 epoch 1").is_err());
        let mut altered = wrapped;
        altered.ciphertext[0] ^= 1;
        assert!(unwrap(&altered, &alice, b"room 1 epoch 1").is_err());
    }
}
