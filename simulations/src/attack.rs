//! Misbehaving nodes: certified devices that send forgeries instead of
//! messages, in turn: garbage on the room topic, envelopes whose signature
//! no longer matches, and revocations a member has no right to sign.

use baro_node::Handle;
use baro_node::crypto::RoomKey;
use baro_node::identity::SeededEntropy;
use baro_node::rooms::{EpochRef, RoomId};
use baro_node::sync::Hlc;
use baro_node::trust::{Issuer, Revocation, RevocationBody, RevocationScope};
use baro_node::wire::{self, Content, Envelope};

use crate::world::World;

/// Makes the forgeries, seeded.
#[derive(Debug)]
pub struct Forger {
    entropy: SeededEntropy,
    room: RoomId,
    turn: usize,
}

impl Forger {
    /// A forger for the agency of `world`.
    pub fn new(world: &World, seed: u64) -> Self {
        let agency = world.agency.agency.operator.agency.id();
        Forger {
            entropy: SeededEntropy::new(seed ^ 0xbad),
            room: RoomId::department(&agency, &"MOIS".parse().expect("a valid org unit")),
            turn: 0,
        }
    }

    /// `attacker` sends its next forgery; returns how many it sent (0 or 1).
    pub async fn forge(
        &mut self,
        world: &World,
        attacker: usize,
        handle: &Handle,
        honest: &[usize],
    ) -> usize {
        self.turn += 1;
        let sim = &world.nodes[attacker];
        let sent = match self.turn % 3 {
            0 => {
                // Spam: bytes that are no envelope at all.
                handle.publish_raw_to_room(self.room, vec![0xab; 300]).await
            }
            1 => {
                // A forged signature: a sealed envelope with one byte flipped.
                let key = RoomKey::generate(&mut self.entropy);
                let epoch = EpochRef {
                    number: 1,
                    key_id: key.key_id(),
                };
                let Ok(envelope) = Envelope::seal(
                    &sim.credentials.key,
                    self.room,
                    epoch,
                    &key,
                    Hlc::default(),
                    &Content::Text("transfer the funds".into()),
                    &mut self.entropy,
                ) else {
                    return 0;
                };
                let mut bytes = wire::encode(&envelope);
                let at = bytes.len() - 80;
                bytes[at] ^= 1;
                handle.publish_raw_to_room(self.room, bytes).await
            }
            _ => {
                // A member revoking an honest official's device.
                let Some(victim) = honest.get(self.turn % honest.len().max(1)) else {
                    return 0;
                };
                let revocation = Revocation::sign(
                    RevocationBody {
                        agency: world.agency.agency.operator.agency.id(),
                        scope: RevocationScope::Device,
                        target: world.nodes[*victim].credentials.chain.clone(),
                        reason: "forged by an attacker".into(),
                        issued_at: baro_node::clock::Clock::now(&world.agency.clock),
                        wipe: true,
                        issuer: Issuer::Chain(sim.credentials.chain.clone()),
                    },
                    &sim.credentials.key,
                );
                handle.publish_raw(wire::encode(&revocation)).await
            }
        };
        usize::from(sent.is_ok())
    }
}
