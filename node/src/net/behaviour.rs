//! The composed libp2p behaviour: gossipsub, identify, ping, Kademlia, mDNS.
//!
//! Admission is not here: it happens in the transport (see [`super::admission`]),
//! so every connection these behaviours ever see is with an admitted peer.

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, gossipsub, identify, identity, kad, mdns, ping};

use super::topics;
use crate::trust::{AgencyId, SignedFrame};
use crate::wire::Format;

/// Identify protocol version string.
const IDENTIFY_PROTOCOL: &str = "/baro/id/1.0.0";
/// Kademlia protocol name.
const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/baro/kad/1.0.0");

/// Every protocol a node speaks.
#[allow(missing_debug_implementations)] // the libp2p behaviours do not implement Debug
#[derive(NetworkBehaviour)]
#[behaviour(to_swarm = "Event")]
pub struct Behaviour {
    /// Gossip for rooms and the agency control topic.
    pub gossipsub: gossipsub::Behaviour,
    /// Exchange of listen addresses and protocols.
    pub identify: identify::Behaviour,
    /// Liveness.
    pub ping: ping::Behaviour,
    /// Peer routing beyond direct neighbours.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// LAN discovery, if enabled.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
}

/// What the behaviours report to the node.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// From gossipsub.
    Gossipsub(gossipsub::Event),
    /// From identify.
    Identify(identify::Event),
    /// From ping.
    Ping(ping::Event),
    /// From Kademlia.
    Kad(kad::Event),
    /// From mDNS.
    Mdns(mdns::Event),
}

macro_rules! from_event {
    ($($variant:ident($ty:ty)),*) => {
        $(impl From<$ty> for Event {
            fn from(event: $ty) -> Self {
                Event::$variant(event)
            }
        })*
    };
}
from_event!(
    Gossipsub(gossipsub::Event),
    Identify(identify::Event),
    Ping(ping::Event),
    Kad(kad::Event),
    Mdns(mdns::Event)
);

impl Behaviour {
    /// Builds the behaviour for a node of `agency`.
    pub fn new(
        keypair: &identity::Keypair,
        agency: AgencyId,
        mdns: Option<Duration>,
    ) -> Result<Self, String> {
        let peer_id = keypair.public().to_peer_id();
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .message_id_fn(|message| {
                gossipsub::MessageId::from(blake3::hash(&message.data).as_bytes().to_vec())
            })
            .max_transmit_size(SignedFrame::MAX_LEN + 1024)
            .heartbeat_interval(Duration::from_secs(1))
            .build()
            .map_err(|e| format!("gossipsub configuration: {e}"))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossip_config,
        )
        .map_err(|e| format!("gossipsub: {e}"))?;
        let mut score = gossipsub::PeerScoreParams::default();
        score
            .topics
            .insert(topics::control(&agency).hash(), topics::score_params());
        gossipsub.with_peer_score(score, gossipsub::PeerScoreThresholds::default())?;

        let mut kad = kad::Behaviour::with_config(
            peer_id,
            kad::store::MemoryStore::new(peer_id),
            kad::Config::new(KAD_PROTOCOL),
        );
        // Every admitted node answers routing queries: meshes are small and
        // often have no public address to confirm server mode automatically.
        kad.set_mode(Some(kad::Mode::Server));

        let mdns = match mdns {
            Some(query_interval) => Some(
                mdns::tokio::Behaviour::new(
                    mdns::Config {
                        query_interval,
                        ..mdns::Config::default()
                    },
                    peer_id,
                )
                .map_err(|e| format!("mDNS: {e}"))?,
            ),
            None => None,
        };
        Ok(Behaviour {
            gossipsub,
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL.into(),
                keypair.public(),
            )),
            ping: ping::Behaviour::default(),
            kad,
            mdns: mdns.into(),
        })
    }
}
