//! Key grants: an epoch's room key, wrapped to each member device, signed by
//! the member device that created or re-shared it.

use serde::{Deserialize, Serialize};

use super::{EpochRef, RoomId};
use crate::crypto::{CryptoError, RoomKey, WrappedKey, unwrap, wrap};
use crate::identity::{KeyPair, PublicKey, Signature};
use crate::wire::{Domain, Format, Kind, signing_bytes};

/// Most devices one grant carries; larger rooms get several grants.
pub const MAX_WRAPS_PER_GRANT: usize = 256;

/// The signed content of a grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantBody {
    /// The room.
    pub room: RoomId,
    /// The epoch whose key is granted.
    pub epoch: EpochRef,
    /// The key, wrapped to each receiving device.
    pub wraps: Vec<WrappedKey>,
    /// When it was made, Unix seconds.
    pub issued_at: u64,
}

/// A grant, signed by its issuing device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGrant {
    /// The content.
    pub body: GrantBody,
    /// The issuing device.
    pub issuer: PublicKey,
    /// Its signature over [`Domain::KeyGrant`] and the body.
    pub signature: Signature,
}

impl Format for KeyGrant {
    const KIND: Kind = Kind::KeyGrant;
    const MAX_LEN: usize = 64 * 1024;
}

/// Why a grant is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    /// The signature does not verify for the issuer it names.
    #[error("key grant signature does not verify for its issuer")]
    BadSignature,
    /// The wrapped key does not open, or is not the epoch's key.
    #[error("key grant does not hold the key of the epoch it names")]
    WrongKey,
    /// Wrapping failed (invalid device key).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The HPKE context binding a wrap to its room and epoch.
fn context(room: &RoomId, epoch: &EpochRef) -> Vec<u8> {
    signing_bytes(Domain::KeyWrap, &(room, epoch))
}

impl KeyGrant {
    /// Grants `key` (epoch `number`) of `room` to `devices`, in as many
    /// grants as needed, signed by `issuer`.
    pub fn issue(
        issuer: &KeyPair,
        room: RoomId,
        number: u64,
        key: &RoomKey,
        devices: &[PublicKey],
        now: u64,
    ) -> Result<Vec<KeyGrant>, GrantError> {
        let epoch = EpochRef {
            number,
            key_id: key.key_id(),
        };
        let context = context(&room, &epoch);
        devices
            .chunks(MAX_WRAPS_PER_GRANT)
            .map(|chunk| {
                let wraps = chunk
                    .iter()
                    .map(|device| wrap(key, device, &context))
                    .collect::<Result<Vec<_>, _>>()?;
                let body = GrantBody {
                    room,
                    epoch,
                    wraps,
                    issued_at: now,
                };
                let signature = issuer.sign(Domain::KeyGrant, &body);
                Ok(KeyGrant {
                    body,
                    issuer: issuer.public(),
                    signature,
                })
            })
            .collect()
    }

    /// Checks the issuer's signature (strictly). Whether the issuer may
    /// grant keys for this room is the caller's decision.
    pub fn verify_signature(&self) -> Result<(), GrantError> {
        if self.body.wraps.len() <= MAX_WRAPS_PER_GRANT
            && self
                .issuer
                .verify(Domain::KeyGrant, &self.body, &self.signature)
        {
            Ok(())
        } else {
            Err(GrantError::BadSignature)
        }
    }

    /// The devices this grant reaches.
    pub fn recipients(&self) -> impl Iterator<Item = &PublicKey> {
        self.body.wraps.iter().map(|w| &w.device)
    }

    /// The epoch key for `me`, if this grant includes my device.
    pub fn key_for(&self, me: &KeyPair) -> Option<Result<RoomKey, GrantError>> {
        let wrapped = self.body.wraps.iter().find(|w| w.device == me.public())?;
        let context = context(&self.body.room, &self.body.epoch);
        Some(match unwrap(wrapped, me, &context) {
            Ok(key) if key.key_id() == self.body.epoch.key_id => Ok(key),
            Ok(_) | Err(_) => Err(GrantError::WrongKey),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;

    #[test]
    fn each_device_opens_its_own_wrap_and_outsiders_get_nothing() {
        let mut entropy = SeededEntropy::new(1);
        let issuer = KeyPair::generate(&mut entropy);
        let members: Vec<KeyPair> = (0..3).map(|_| KeyPair::generate(&mut entropy)).collect();
        let outsider = KeyPair::generate(&mut entropy);
        let key = RoomKey::generate(&mut entropy);
        let devices: Vec<PublicKey> = members.iter().map(KeyPair::public).collect();
        let grants =
            KeyGrant::issue(&issuer, RoomId([1; 32]), 1, &key, &devices, 0).expect("issue");
        assert_eq!(grants.len(), 1);
        grants[0].verify_signature().expect("signed");
        for member in &members {
            assert_eq!(
                grants[0].key_for(member).expect("included").expect("opens"),
                key
            );
        }
        assert!(grants[0].key_for(&outsider).is_none());
    }

    #[test]
    fn forged_or_swapped_grants_are_detected() {
        let mut entropy = SeededEntropy::new(2);
        let issuer = KeyPair::generate(&mut entropy);
        let member = KeyPair::generate(&mut entropy);
        let key = RoomKey::generate(&mut entropy);
        let mut grant = KeyGrant::issue(&issuer, RoomId([1; 32]), 1, &key, &[member.public()], 0)
            .expect("issue")
            .remove(0);
        let mut moved = grant.clone();
        moved.body.room = RoomId([2; 32]);
        assert_eq!(moved.verify_signature(), Err(GrantError::BadSignature));
        assert!(
            matches!(moved.key_for(&member), Some(Err(GrantError::WrongKey))),
            "wrap is bound to its room"
        );
        grant.body.epoch.key_id = [0; 16];
        assert!(matches!(
            grant.key_for(&member),
            Some(Err(GrantError::WrongKey))
        ));
    }

    #[test]
    fn large_rooms_get_several_grants() {
        let mut entropy = SeededEntropy::new(3);
        let issuer = KeyPair::generate(&mut entropy);
        let key = RoomKey::generate(&mut entropy);
        let devices: Vec<PublicKey> = (0..MAX_WRAPS_PER_GRANT + 1)
            .map(|_| KeyPair::generate(&mut entropy).public())
            .collect();
        let grants =
            KeyGrant::issue(&issuer, RoomId([1; 32]), 1, &key, &devices, 0).expect("issue");
        assert_eq!(grants.len(), 2);
        for grant in &grants {
            assert!(crate::wire::encode(grant).len() <= KeyGrant::MAX_LEN);
        }
    }
}
