//! Gossipsub topic names: hashes, never human names.

use libp2p::gossipsub::{IdentTopic, TopicScoreParams};

use crate::trust::AgencyId;

/// The agency control topic (revocations, announcements).
pub fn control(agency: &AgencyId) -> IdentTopic {
    IdentTopic::new(hashed(agency, b"control"))
}

/// The topic of a room, by its id bytes.
pub fn room(agency: &AgencyId, room_id: &[u8]) -> IdentTopic {
    let mut name = b"room/".to_vec();
    name.extend_from_slice(room_id);
    IdentTopic::new(hashed(agency, &name))
}

/// Peer scoring on every topic we serve: a peer that forwards an invalid
/// message (forged, tampered, from a non-member) loses standing fast.
pub fn score_params() -> TopicScoreParams {
    TopicScoreParams {
        invalid_message_deliveries_weight: -100.0,
        ..Default::default()
    }
}

fn hashed(agency: &AgencyId, name: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("baro/topic/v1");
    hasher.update(&agency.0);
    hasher.update(name);
    hasher.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_opaque_and_agency_specific() {
        let a = AgencyId([1; 32]);
        let b = AgencyId([2; 32]);
        let topic = room(&a, b"Division 2").to_string();
        assert!(!topic.contains("Division"));
        assert_eq!(topic.len(), 64);
        assert_ne!(control(&a).hash(), control(&b).hash());
        assert_ne!(control(&a).hash(), room(&a, b"control").hash());
    }
}
