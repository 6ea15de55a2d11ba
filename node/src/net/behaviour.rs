//! The composed libp2p behaviour: connection and memory limits, gossipsub,
//! identify, ping, Kademlia, LAN discovery (sealed beacons), the sync, directory and chunk protocols, and circuit relay v2
//! (server on relays, client with DCUtR hole punching on devices).
//!
//! Admission is not here: it happens in the transport (see [`super::admission`]),
//! so every connection these behaviours ever see is with an admitted peer.
//! The limits come first, so a connection they deny reaches no other
//! behaviour (see [`super::limits`]).

use std::convert::Infallible;
use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, connection_limits, dcutr, gossipsub, identify, identity, kad,
    memory_connection_limits, ping, relay, request_response,
};

use super::lan_discovery::{self, LanDiscovery};

use super::sync_protocol::{self, DirectoryCodec, SyncCodec};
use super::topics;
use crate::trust::{AgencyId, SignedFrame};
use crate::wire::Format;

/// Identify protocol version string.
const IDENTIFY_PROTOCOL: &str = "/baro/id/1.0.0";
/// Kademlia protocol name.
const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/baro/kad/1.0.0");

/// Topics one peer may be subscribed to, as this node keeps track of them
/// (a device's rooms and the control topic; a relay's carried rooms): a
/// peer subscribing to more is ignored, so it cannot grow our memory
/// without end (audit M1).
pub const MAX_PEER_TOPICS: usize = crate::rooms::MAX_CARRIED_ROOMS + 1;

/// Gossipsub with a bound on the topics each peer may subscribe to.
pub type Gossipsub = gossipsub::Behaviour<gossipsub::IdentityTransform, TopicLimit>;

/// The subscription filter: any topic, at most [`MAX_PEER_TOPICS`] per peer.
pub type TopicLimit = gossipsub::MaxCountSubscriptionFilter<gossipsub::AllowAllSubscriptionFilter>;

/// The subscription filter every node uses.
pub fn topic_limit() -> TopicLimit {
    gossipsub::MaxCountSubscriptionFilter {
        filter: gossipsub::AllowAllSubscriptionFilter {},
        max_subscribed_topics: MAX_PEER_TOPICS,
        max_subscriptions_per_request: MAX_PEER_TOPICS,
    }
}

/// Every protocol a node speaks.
#[allow(missing_debug_implementations)] // the libp2p behaviours do not implement Debug
#[derive(NetworkBehaviour)]
#[behaviour(to_swarm = "Event")]
pub struct Behaviour {
    /// Established connections, in total and per peer (pending incoming
    /// ones only as a backstop: the inbound guard decides first).
    pub connection_limits: connection_limits::Behaviour,
    /// No new connections while the process uses too much memory.
    pub memory_limit: Toggle<memory_connection_limits::Behaviour>,
    /// Gossip for rooms and the agency control topic.
    pub gossipsub: Gossipsub,
    /// Exchange of listen addresses and protocols.
    pub identify: identify::Behaviour,
    /// Liveness.
    pub ping: ping::Behaviour,
    /// Peer routing beyond direct neighbours.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// LAN discovery by sealed beacons, if enabled.
    pub lan: Toggle<LanDiscovery>,
    /// Reconciliation of stored sets with each peer.
    pub sync: request_response::Behaviour<SyncCodec>,
    /// Questions to a relay's agency directory (answered by relays only).
    pub directory: request_response::Behaviour<DirectoryCodec>,
    /// Attachments' chunks, fetched by hash (see `file_transfer`).
    pub chunks: request_response::Behaviour<super::actor::file_transfer::ChunkCodec>,
    /// Circuit relay v2 server (relay nodes only).
    pub relay_server: Toggle<relay::Behaviour>,
    /// Circuit relay v2 client: reservations on relays, relayed dials.
    pub relay_client: relay::client::Behaviour,
    /// Upgrade of relayed connections to direct ones (hole punching).
    pub dcutr: dcutr::Behaviour,
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
    /// From LAN discovery.
    Lan(lan_discovery::Event),
    /// From the sync protocol.
    Sync(request_response::Event<crate::sync::SyncRequest, crate::sync::SyncResponse>),
    /// From the directory protocol.
    Directory(request_response::Event<crate::trust::DirectoryQuery, crate::trust::DirectoryAnswer>),
    /// From the chunk protocol.
    Chunks(request_response::Event<crate::wire::ChunkRequest, crate::wire::ChunkResponse>),
    /// From the relay server.
    RelayServer(relay::Event),
    /// From the relay client.
    RelayClient(relay::client::Event),
    /// From DCUtR.
    Dcutr(dcutr::Event),
}

impl From<Infallible> for Event {
    fn from(never: Infallible) -> Self {
        match never {}
    }
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
    Lan(lan_discovery::Event),
    Sync(request_response::Event<crate::sync::SyncRequest, crate::sync::SyncResponse>),
    Directory(request_response::Event<crate::trust::DirectoryQuery, crate::trust::DirectoryAnswer>),
    Chunks(request_response::Event<crate::wire::ChunkRequest, crate::wire::ChunkResponse>),
    RelayServer(relay::Event),
    RelayClient(relay::client::Event),
    Dcutr(dcutr::Event)
);

impl Behaviour {
    /// Builds the behaviour for a node of `agency`; `lan` discovery if
    /// enabled (see [`super::lan_discovery`]); `relay_server` on relay
    /// nodes; `relay_client` comes with the transport (see
    /// [`super::build_transport`]); gossipsub's counters go to `metrics`
    /// if given (diagnostics).
    pub fn new(
        keypair: &identity::Keypair,
        agency: AgencyId,
        lan: Option<LanDiscovery>,
        relay_server: bool,
        relay_client: relay::client::Behaviour,
        metrics: Option<&mut super::diagnostics::Registry>,
        limits: &super::limits::Limits,
    ) -> Result<Self, String> {
        let peer_id = keypair.public().to_peer_id();
        // Every frame and envelope carries its author's own domain-separated
        // signature, which the node checks (validate_messages) on the first
        // copy only. A gossipsub signature on top would be checked by the
        // codec on every copy, duplicates included, before deduplication:
        // in the 104- and 510-node simulations that was most of the CPU.
        // Anonymous messages carry no source, sequence number or signature;
        // the message id is the content hash, so a replay is a duplicate.
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .validate_messages()
            .message_id_fn(|message| {
                gossipsub::MessageId::from(blake3::hash(&message.data).as_bytes().to_vec())
            })
            .max_transmit_size(SignedFrame::MAX_LEN + 1024)
            .heartbeat_interval(Duration::from_secs(1))
            .build()
            .map_err(|e| format!("gossipsub configuration: {e}"))?;
        let mut gossipsub = Gossipsub::new_with_subscription_filter(
            gossipsub::MessageAuthenticity::Anonymous,
            gossip_config,
            topic_limit(),
        )
        .map_err(|e| format!("gossipsub: {e}"))?;
        if let Some(registry) = metrics {
            gossipsub = gossipsub.with_metrics(registry, gossipsub::MetricsConfig::default());
        }
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

        Ok(Behaviour {
            connection_limits: limits.connection_limits(),
            memory_limit: limits.memory_limit().into(),
            gossipsub,
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL.into(),
                keypair.public(),
            )),
            ping: ping::Behaviour::default(),
            kad,
            lan: lan.into(),
            sync: sync_protocol::behaviour(),
            directory: sync_protocol::directory_behaviour(relay_server),
            chunks: super::actor::file_transfer::behaviour(),
            relay_server: relay_server
                .then(|| relay::Behaviour::new(peer_id, relay_server_config()))
                .into(),
            relay_client,
            dcutr: dcutr::Behaviour::new(peer_id),
        })
    }
}

/// Relays are the agency's own infrastructure and every peer they serve is
/// admitted: circuits may carry a whole catch-up, not just a hole punch.
fn relay_server_config() -> relay::Config {
    relay::Config {
        max_reservations: 1024,
        max_reservations_per_peer: 4,
        reservation_duration: Duration::from_secs(60 * 60),
        max_circuits: 256,
        max_circuits_per_peer: 16,
        max_circuit_duration: Duration::from_secs(60 * 60),
        max_circuit_bytes: 256 << 20,
        ..relay::Config::default()
    }
}
