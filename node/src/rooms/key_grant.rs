//! Key grants: an epoch's room key, wrapped to each member device, signed by
//! the member device that created or re-shared it.
//!
//! A grant may carry its epoch's [`EpochOrigin`]: the creator's signed
//! statement of which revoked devices of the room it knew of, and so left
//! out, when it made the key. Re-grants copy it unchanged. It is how a
//! device that knows of a revocation tells a key made past it from one the
//! revoked device may hold (see [`crate::rooms::Messenger`]).

use serde::{Deserialize, Serialize};

use super::{EpochRef, RoomId};
use crate::crypto::{CryptoError, RoomKey, WrappedKey, unwrap, wrap};
use crate::identity::{KeyPair, PublicKey, Signature};
use crate::wire::{Domain, Format, Kind, signing_bytes};

/// Most devices one grant carries; larger rooms get several grants.
pub const MAX_WRAPS_PER_GRANT: usize = 256;
/// Most revoked devices one [`EpochOrigin`] names (the devices a room
/// remembers as revoked, [`crate::rooms::MAX_DEPARTED_PER_ROOM`]).
pub const MAX_EXCLUDED_PER_ORIGIN: usize = 32;

/// Who created an epoch's key, and the revoked devices of the room it knew
/// of when it did (none of which it wrapped the key to). Signed by the
/// creator over the room, the epoch (whose key id names the key) and the
/// list, so it cannot be moved to another key or claimed for someone else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochOrigin {
    /// The device that generated the key.
    pub creator: PublicKey,
    /// Revoked devices it left out, at most [`MAX_EXCLUDED_PER_ORIGIN`].
    pub excluded: Vec<PublicKey>,
    /// The creator's signature over [`Domain::EpochOrigin`], the room, the
    /// epoch and `excluded`.
    pub signature: Signature,
}

impl EpochOrigin {
    /// `creator`'s statement that it made `epoch` of `room` leaving out
    /// `excluded` (the first [`MAX_EXCLUDED_PER_ORIGIN`] are kept).
    pub fn sign(
        creator: &KeyPair,
        room: RoomId,
        epoch: EpochRef,
        mut excluded: Vec<PublicKey>,
    ) -> Self {
        excluded.truncate(MAX_EXCLUDED_PER_ORIGIN);
        let signature = creator.sign(Domain::EpochOrigin, &(room, epoch, &excluded));
        EpochOrigin {
            creator: creator.public(),
            excluded,
            signature,
        }
    }

    /// Whether it is the creator's own statement about `epoch` of `room`.
    pub fn verify(&self, room: &RoomId, epoch: &EpochRef) -> bool {
        self.excluded.len() <= MAX_EXCLUDED_PER_ORIGIN
            && self.creator.verify(
                Domain::EpochOrigin,
                &(room, epoch, &self.excluded),
                &self.signature,
            )
    }
}

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
    /// Who created the epoch and which revoked devices it left out, when
    /// the issuer knows (checked by the receiver, see [`EpochOrigin`]).
    pub origin: Option<EpochOrigin>,
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
        Self::issue_with_origin(issuer, room, number, key, devices, None, now)
    }

    /// [`KeyGrant::issue`], carrying the epoch's `origin`.
    pub fn issue_with_origin(
        issuer: &KeyPair,
        room: RoomId,
        number: u64,
        key: &RoomKey,
        devices: &[PublicKey],
        origin: Option<&EpochOrigin>,
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
                    origin: origin.cloned(),
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
    fn an_epoch_origin_cannot_be_moved_to_another_key_or_forged() {
        let mut entropy = SeededEntropy::new(4);
        let (creator, other) = (
            KeyPair::generate(&mut entropy),
            KeyPair::generate(&mut entropy),
        );
        let (room, epoch) = (
            RoomId([1; 32]),
            EpochRef {
                number: 3,
                key_id: [7; 16],
            },
        );
        let origin = EpochOrigin::sign(&creator, room, epoch, vec![other.public()]);
        assert!(origin.verify(&room, &epoch));
        let moved = EpochRef {
            key_id: [8; 16],
            ..epoch
        };
        assert!(!origin.verify(&room, &moved), "bound to its key");
        assert!(
            !origin.verify(&RoomId([2; 32]), &epoch),
            "bound to its room"
        );
        let mut trimmed = origin.clone();
        trimmed.excluded.clear();
        assert!(!trimmed.verify(&room, &epoch), "the list is signed");
        let mut claimed = origin.clone();
        claimed.creator = other.public();
        assert!(!claimed.verify(&room, &epoch), "signed by its creator");
        let long = EpochOrigin::sign(
            &creator,
            room,
            epoch,
            vec![other.public(); MAX_EXCLUDED_PER_ORIGIN + 5],
        );
        assert_eq!(long.excluded.len(), MAX_EXCLUDED_PER_ORIGIN);
        assert!(long.verify(&room, &epoch));
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
