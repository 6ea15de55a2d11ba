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
/// message (forged, tampered, from a non-member) loses standing fast; one
/// bad message puts it below the gossip threshold, two graylist it.
///
/// The library's other defaults are switched off: credit for time in the
/// mesh (1 point per millisecond) would let a peer bank goodwill before
/// misbehaving, and the quota of 20 deliveries per interval would punish
/// honest peers in quiet rooms, which most rooms are.
pub fn score_params() -> TopicScoreParams {
    TopicScoreParams {
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
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
