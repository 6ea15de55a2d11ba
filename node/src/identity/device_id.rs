//! The one id of a device everywhere: its libp2p PeerId, which embeds its ed25519 key.

use std::fmt;
use std::str::FromStr;

use libp2p::PeerId;
use libp2p::identity;

use super::PublicKey;

/// A device's id: the PeerId of its ed25519 key. Because ed25519 PeerIds
/// embed the key, the id and the key convert both ways.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(PublicKey);

/// Why a string is not a device id.
#[derive(Debug, thiserror::Error)]
pub enum DeviceIdError {
    /// Not a PeerId at all.
    #[error("'{0}' is not a device id (expected a PeerId such as 12D3KooW…)")]
    NotAPeerId(String),
    /// A PeerId, but not of an ed25519 key.
    #[error("'{0}' is a PeerId but not of an ed25519 device key")]
    NotEd25519(String),
}

impl DeviceId {
    /// The id of the device holding `key`.
    pub fn from_public_key(key: PublicKey) -> Self {
        DeviceId(key)
    }

    /// The device's public key.
    pub fn public_key(&self) -> PublicKey {
        self.0
    }

    /// The libp2p PeerId, or `None` if the key bytes are not a valid point.
    pub fn peer_id(&self) -> Option<PeerId> {
        let key = identity::ed25519::PublicKey::try_from_bytes(&self.0.0).ok()?;
        Some(identity::PublicKey::from(key).to_peer_id())
    }

    /// Short form for logs: the last 8 characters of the PeerId.
    pub fn short(&self) -> String {
        let full = self.to_string();
        full[full.len().saturating_sub(8)..].to_string()
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.peer_id() {
            Some(peer) => write!(f, "{peer}"),
            None => write!(f, "invalid-key-{}", self.0),
        }
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl FromStr for DeviceId {
    type Err = DeviceIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let peer = PeerId::from_str(s).map_err(|_| DeviceIdError::NotAPeerId(s.to_string()))?;
        let key = identity::PublicKey::try_decode_protobuf(peer.as_ref().digest())
            .ok()
            .and_then(|key| key.try_into_ed25519().ok())
            .ok_or_else(|| DeviceIdError::NotEd25519(s.to_string()))?;
        Ok(DeviceId(PublicKey(key.to_bytes())))
    }
}

impl serde::Serialize for DeviceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{KeyPair, SeededEntropy};

    #[test]
    fn device_id_round_trips_through_its_peer_id_string() {
        let key = KeyPair::generate(&mut SeededEntropy::new(7));
        let id = key.device_id();
        let text = id.to_string();
        assert!(text.starts_with("12D3KooW"), "{text}");
        assert_eq!(text.parse::<DeviceId>().expect("parses"), id);
    }

    #[test]
    fn garbage_is_not_a_device_id() {
        let err = "hello".parse::<DeviceId>().expect_err("must fail");
        assert!(err.to_string().contains("not a device id"));
    }
}
