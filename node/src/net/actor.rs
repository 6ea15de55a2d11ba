//! The actor that owns the swarm: one task, commands in, events out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{self, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, identity, kad};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::admission::{AdmissionGate, Refusal};
use super::behaviour::{Behaviour, Event};
use super::connections::Connections;
use super::{TransportKind, topics};
use crate::clock::Clock;
use crate::config::ValidConfig;
use crate::identity::{DeviceId, Entropy, KeyPair, OsEntropy};
use crate::node::{BlockedPeer, Credentials, Discovery, NodeError, NodeEvent, PeerInfo, Status};
use crate::rooms::Messenger;
use crate::store::{GroupCommit, MessageLog, Store};
use crate::sync::Dedup;
use crate::trust::{
    AdmissionHello, AgencyInfo, CertificateChain, FrameBody, Role, SignedFrame, TrustPolicy,
    VerifiedDevice, empty_revocation_digest,
};
use crate::wire;

/// Message ids remembered for de-duplication.
const SEEN_CAPACITY: usize = 100_000;
/// How often delivered receipts are sent.
const RECEIPT_FLUSH: Duration = Duration::from_millis(250);

/// The monotonic time the connection rules run on (tokio's, so a test
/// with paused time controls it).
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Requests from [`crate::node::Handle`].
#[derive(Debug)]
pub(crate) enum Command {
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Status(oneshot::Sender<Status>),
    PublishControl {
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    PublishRaw {
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    Follow {
        room: crate::rooms::RoomId,
        reply: oneshot::Sender<()>,
    },
    PublishRawToRoom {
        room: crate::rooms::RoomId,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    Dial {
        address: Multiaddr,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    PeerScore {
        device: DeviceId,
        reply: oneshot::Sender<Option<f64>>,
    },
    Blocked(oneshot::Sender<Vec<BlockedPeer>>),
    Rooms(oneshot::Sender<Vec<crate::api::RoomInfo>>),
    CreateGroup {
        name: String,
        members: Vec<String>,
        reply: oneshot::Sender<Result<crate::api::RoomInfo, NodeError>>,
    },
    Invite {
        room: String,
        user: String,
        reply: oneshot::Sender<Result<crate::api::RoomInfo, NodeError>>,
    },
    Remove {
        room: String,
        user: String,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    Leave {
        room: String,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    MakeAdmin {
        room: String,
        user: String,
        reply: oneshot::Sender<Result<crate::api::RoomInfo, NodeError>>,
    },
    HideRoom {
        room: String,
        hidden: bool,
        reply: oneshot::Sender<Result<crate::api::RoomInfo, NodeError>>,
    },
    Send {
        room: String,
        text: String,
        reply: oneshot::Sender<Result<crate::api::Sent, NodeError>>,
    },
    History {
        room: String,
        limit: usize,
        reply: oneshot::Sender<Result<Vec<crate::api::MessageView>, NodeError>>,
    },
    FindRoom {
        room: String,
        reply: oneshot::Sender<Result<crate::api::RoomInfo, NodeError>>,
    },
    MarkRead {
        room: String,
        reply: oneshot::Sender<Result<usize, NodeError>>,
    },
    RawSync {
        peer: DeviceId,
        request: crate::sync::SyncRequest,
        reply: oneshot::Sender<Result<crate::sync::SyncResponse, NodeError>>,
    },
    SyncNow(oneshot::Sender<()>),
    SubmitRevocation {
        bytes: Vec<u8>,
        /// Refuse it if a revocation in force already does what it does.
        new_only: bool,
        reply: oneshot::Sender<Result<crate::revocations::RevocationView, NodeError>>,
    },
    RevokeOwnDevice {
        device: DeviceId,
        reason: String,
        reply: oneshot::Sender<Result<crate::revocations::RevocationView, NodeError>>,
    },
    Revocations(oneshot::Sender<Vec<crate::revocations::RevocationView>>),
    SubmitPolicy {
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<crate::agency_policy::PolicyView, NodeError>>,
    },
    DeviceChain {
        target: crate::revocations::Target,
        reply: oneshot::Sender<Result<CertificateChain, NodeError>>,
    },
    /// This user's devices.
    Devices(oneshot::Sender<Vec<crate::api::DeviceView>>),
    /// `None`: everyone this device knows (no relay is asked).
    People {
        query: Option<crate::trust::DirectoryQuery>,
        reply: oneshot::Sender<Result<crate::api::People, NodeError>>,
    },
    /// Sending, listing and fetching files.
    Files(file_transfer::FileCommand),
}

pub(crate) struct Actor {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    refusals: mpsc::Receiver<Refusal>,
    events: broadcast::Sender<NodeEvent>,
    shutdown: CancellationToken,
    gate: Arc<AdmissionGate>,
    key: KeyPair,
    chain: CertificateChain,
    agency: AgencyInfo,
    clock: Arc<dyn Clock>,
    config: ValidConfig,
    control: IdentTopic,
    /// Peers, discovery and connection limits.
    connections: Connections,
    seen: Dedup<gossipsub::MessageId>,
    policy: TrustPolicy,
    messaging: Option<messaging::Messaging>,
    /// What this node holds per reconciled set, and its sync sessions.
    sync: super::sync_engine::SyncEngine<PeerId>,
    /// On relays: who may fetch which room.
    carrier: Option<crate::rooms::Carrier>,
    /// On relays: the topics of the rooms the carrier knows (bounded by it).
    carried: HashSet<gossipsub::TopicHash>,
    /// What each author may make this node store, and each peer ask of it.
    quotas: super::quotas::Quotas,
    /// Raw sync requests from the handle, waiting for their answer.
    raw_syncs: HashMap<
        libp2p::request_response::OutboundRequestId,
        oneshot::Sender<Result<crate::sync::SyncResponse, NodeError>>,
    >,
    /// This device's own certificate (as of its start, so an expired one still names it).
    me: Option<VerifiedDevice>,
    /// The listeners opened at start.
    listeners: Vec<libp2p::core::transport::ListenerId>,
    /// Certificate chains that verified (control frames repeat them).
    chains: crate::trust::ChainCache,
    /// Where everything is kept (wiped if this device is revoked).
    store: Arc<dyn Store>,
    /// Attachments' chunks and the transfers under way.
    files: file_transfer::Files,
    /// Answers that wait until what they report is on disk.
    commit: GroupCommit,
    /// Revoked peers in their grace period, revocations issued here and
    /// not yet published, the order revocations were taken in, and this
    /// device's own pending wipe.
    enforcement: super::enforcement::Enforcement<PeerId, tokio::time::Instant>,
    /// The agency policy in force and this device's lease.
    leasing: leasing::Leasing,
    /// Told of accepted gossip (diagnostics; usually none).
    observer: Option<Arc<dyn super::GossipObserver>>,
    /// Reconciliations and hints started by events rather than the tick.
    triggers: sync_triggers::SyncTriggers<PeerId, libp2p::request_response::OutboundRequestId>,
    /// The agency directory: kept and served on relays, asked by devices.
    directory: super::directory_service::DirectoryService<
        PeerId,
        libp2p::request_response::OutboundRequestId,
        directory_requests::Asked,
    >,
    /// Bootstrap addresses that did not answer, told once until they do.
    unreachable_bootstrap: HashSet<Multiaddr>,
}

#[path = "directory_requests.rs"]
mod directory_requests;
#[path = "file_transfer.rs"]
pub(crate) mod file_transfer;
#[path = "leasing.rs"]
mod leasing;
#[path = "messaging.rs"]
pub(crate) mod messaging;
#[path = "revoking.rs"]
mod revoking;
#[path = "sync_triggers.rs"]
mod sync_triggers;
#[path = "syncing.rs"]
mod syncing;

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("device", &self.key.device_id())
            .finish()
    }
}

impl Actor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        credentials: Credentials,
        store: Arc<dyn Store>,
        config: ValidConfig,
        transport: TransportKind,
        clock: Arc<dyn Clock>,
        commands: mpsc::Receiver<Command>,
        events: broadcast::Sender<NodeEvent>,
        shutdown: CancellationToken,
        diagnostics: super::Diagnostics,
    ) -> Result<Self, NodeError> {
        // Before anything else: a device past its lease erases itself here.
        let role = credentials
            .chain
            .leaf()
            .map_or(Role::Member, |c| c.body.role);
        let leasing = leasing::Leasing::start(&store, &credentials.agency, role, clock.now())?;
        let keypair = identity::Keypair::ed25519_from_bytes(credentials.key.secret().0)
            .map_err(|e| NodeError::Network(format!("device key: {e}")))?;
        let agency_id = credentials.agency.id();
        let hello = AdmissionHello {
            agency: agency_id,
            chain: credentials.chain.clone(),
            revocation_digest: empty_revocation_digest(),
        };
        let (refusal_tx, refusals) = mpsc::channel(256);
        let timeout = Duration::from_secs(config.config.admission_timeout_secs);
        let limits = super::limits::Limits::for_config(&config.config);
        let membership = match &credentials.network_key {
            Some(network) => super::membership_proof::MembershipKey::derive(network),
            None => super::membership_proof::MembershipKey::without_network(),
        };
        let gate = AdmissionGate::new(
            credentials.agency.clone(),
            &hello,
            keypair.public().to_peer_id(),
            membership,
            clock.clone(),
            timeout,
            config.config.block_secs,
            refusal_tx,
        )
        .with_max_admissions(limits.admissions as usize);
        let leaf_start = credentials.chain.leaf().map(|c| c.body.not_before);
        let certified = leaf_start.and_then(|start| {
            credentials
                .chain
                .verify(&credentials.agency, start, &TrustPolicy::default())
                .ok()
        });
        let gate = Arc::new(match certified {
            Some(me) => gate.with_receipts(super::admission::ReceiptSigner {
                key: credentials.key.clone(),
                chain: credentials.chain.clone(),
                me,
            }),
            None => gate,
        });
        let (relayed, relay_client) = libp2p::relay::client::new(keypair.public().to_peer_id());
        let transport = super::build_transport(
            &keypair,
            credentials.network_key.as_ref(),
            gate.clone(),
            transport,
            timeout * 2,
            relayed,
            super::inbound::InboundGuard::new(limits.pending_incoming as usize, limits.offenders),
        )
        .map_err(|e| NodeError::Network(e.to_string()))?;
        let is_relay = config.config.relay.is_some();
        // LAN discovery needs the network key: beacons are sealed under it.
        let lan = match (&credentials.network_key, config.config.mdns) {
            (Some(network), true) => Some(
                super::lan_discovery::LanDiscovery::new(
                    keypair.public().to_peer_id(),
                    super::lan_beacon::BeaconKey::derive(network),
                    Duration::from_secs(config.config.mdns_query_secs),
                    clock.clone(),
                )
                .map_err(|e| NodeError::Network(format!("LAN discovery: {e}")))?,
            ),
            _ => None,
        };
        let mut registry = match &diagnostics.metrics {
            Some(metrics) => Some(
                metrics
                    .lock()
                    .map_err(|_| NodeError::Network("metrics registry poisoned".into()))?,
            ),
            None => None,
        };
        let behaviour = Behaviour::new(
            &keypair,
            agency_id,
            lan,
            is_relay,
            relay_client,
            registry.as_deref_mut(),
            &limits,
        )
        .map_err(NodeError::Network)?;
        drop(registry);
        let swarm_config = swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(Duration::from_secs(config.config.idle_timeout_secs));
        let mut swarm = Swarm::new(
            transport,
            behaviour,
            keypair.public().to_peer_id(),
            swarm_config,
        );
        let control = topics::control(&agency_id);
        let now = clock.now();
        let policy = TrustPolicy::default();
        let me = credentials.chain.leaf().and_then(|leaf| {
            credentials
                .chain
                .verify(&credentials.agency, leaf.body.not_before, &policy)
                .ok()
        });
        let store_handle = store.clone();
        let commit = GroupCommit::start(store.clone(), config.config.durable_acks);
        let messaging = credentials
            .chain
            .verify_for(
                credentials.key.device_id(),
                &credentials.agency,
                now,
                &policy,
            )
            .ok()
            .map(|me| {
                let agency = credentials.agency.clone();
                let mut messaging = messaging::Messaging::restore(
                    Messenger::new(credentials.key.clone(), me),
                    MessageLog::new(store),
                    |chain| chain.verify(&agency, now, &policy).ok(),
                    now,
                );
                // Its own label, as it announces it.
                if let Some(label) = &config.config.label {
                    messaging
                        .labels
                        .insert(credentials.key.public(), (now, label.clone()));
                }
                messaging
            });
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&control)
            .map_err(|e| NodeError::Network(format!("subscribe: {e}")))?;
        let mut listeners = Vec::new();
        for address in &config.listen {
            listeners.push(
                swarm
                    .listen_on(address.clone())
                    .map_err(|e| NodeError::Network(format!("cannot listen on {address}: {e}")))?,
            );
        }
        let own_key = credentials.key.public();
        let quota_limits = match &config.config.relay {
            Some(relay) => super::quotas::QuotaLimits::relay(relay.max_store_mb << 20),
            None => super::quotas::QuotaLimits::device_keeping(config.config.author_room_mb << 20),
        };
        let files = file_transfer::Files::open(store_handle.clone(), config.config.max_file_mb);
        Ok(Actor {
            swarm,
            commands,
            refusals,
            events,
            shutdown,
            gate,
            key: credentials.key,
            chain: credentials.chain,
            agency: credentials.agency,
            clock,
            connections: Connections::new(
                config.bootstrap.iter().cloned(),
                config.config.max_peers,
                Duration::from_secs(config.config.discovery_interval_secs),
                is_relay,
                self::now(),
            ),
            config,
            control,
            seen: Dedup::new(SEEN_CAPACITY),
            policy: TrustPolicy::default(),
            messaging,
            sync: super::sync_engine::SyncEngine::new(),
            carrier: is_relay.then(crate::rooms::Carrier::new),
            carried: HashSet::new(),
            quotas: super::quotas::Quotas::new(quota_limits).exempting(own_key),
            raw_syncs: HashMap::new(),
            me,
            listeners,
            chains: crate::trust::ChainCache::new(),
            commit,
            files,
            store: store_handle,
            enforcement: super::enforcement::Enforcement::new(),
            leasing,
            observer: diagnostics.observer,
            triggers: sync_triggers::SyncTriggers::default(),
            directory: super::directory_service::DirectoryService::new(is_relay),
            unreachable_bootstrap: HashSet::new(),
        })
    }

    pub(crate) async fn run(mut self) {
        self.load_sync_index();
        self.load_revocations();
        self.load_policy();
        self.check_lease();
        self.settle_messaging();
        self.dial_bootstrap();
        let period = Duration::from_secs(self.config.config.discovery_interval_secs);
        // The first round comes one period after the bootstrap dials above.
        let mut discovery = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Delivered receipts leave in batches, not one envelope per message.
        let mut receipts = tokio::time::interval(RECEIPT_FLUSH);
        receipts.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Peers reconcile when they connect, then every sync interval.
        let period = Duration::from_secs(self.config.config.sync_interval_secs);
        let mut sync = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                Some(command) = self.commands.recv() => self.on_command(command),
                Some(refusal) = self.refusals.recv() => {
                    self.on_refusal(&refusal);
                    let _ = self.events.send(NodeEvent::PeerRefused {
                        peer: refusal.peer,
                        reason: refusal.reason,
                    });
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = discovery.tick() => self.discover(),
                _ = receipts.tick() => {
                    self.check_lease();
                    if self.wipe_due() {
                        break;
                    }
                    self.acknowledge_to_peers();
                    self.disconnect_revoked();
                    self.sync_when_due();
                    self.redial_when_alone();
                    self.pump_transfers();
                }
                _ = sync.tick() => {
                    self.prune_revocations();
                    self.publish_unpublished();
                    self.redial_lan_peers();
                    self.evict();
                    self.sync_all();
                }
            }
        }
        if self.enforcement.is_wiping() {
            self.finish_wipe();
        } else {
            self.save_unread();
            self.save_lease();
        }
        // Give the addresses back now (an in-process listener keeps its
        // port until it is removed, so a restarted node could not listen).
        for listener in std::mem::take(&mut self.listeners) {
            self.swarm.remove_listener(listener);
        }
        tracing::info!(device = %self.key.device_id().short(), "node stopped");
    }

    fn emit(&self, event: NodeEvent) {
        // No subscriber is fine; a lagging one misses events (bounded).
        let _ = self.events.send(event);
    }

    fn dial_bootstrap(&mut self) {
        for address in self.connections.bootstrap_dials() {
            if let Err(e) = self.swarm.dial(address.clone()) {
                tracing::debug!(%address, error = %e, "bootstrap dial failed");
            }
        }
    }

    /// With no peer at all, dials the bootstrap addresses again when
    /// [`Connections::alone_redial`] says so.
    fn redial_when_alone(&mut self) {
        for address in self.connections.alone_redial(now()) {
            if let Err(e) = self.swarm.dial(address.clone()) {
                tracing::debug!(%address, error = %e, "bootstrap redial failed");
            }
        }
    }

    /// Dials peers LAN discovery found earlier that are not connected now
    /// (a link that went down and came back: discovery reports a peer only
    /// when it is new or moved, so it would not say so again).
    fn redial_lan_peers(&mut self) {
        let Some(lan) = self.swarm.behaviour().lan.as_ref() else {
            return;
        };
        let lost: Vec<PeerId> = lan
            .discovered()
            .filter(|peer| !self.connections.holds(peer))
            .copied()
            .collect();
        for peer in lost {
            self.dial_peer(peer, Vec::new(), Discovery::Mdns);
        }
    }

    /// The discovery round: what [`Connections::round`] decides, applied.
    fn discover(&mut self) {
        let in_mesh: HashSet<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_mesh_peers()
            .copied()
            .collect();
        let round = self.connections.round(&in_mesh, now());
        for peer in round.disconnect {
            tracing::debug!(%peer, "over the connection limit; letting the peer go");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        self.redial_lan_peers();
        for address in round.dial {
            if let Err(e) = self.swarm.dial(address.clone()) {
                tracing::debug!(%address, error = %e, "bootstrap dial failed");
            }
        }
        if round.lookup {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
    }

    fn dial_peer(&mut self, peer: PeerId, addresses: Vec<Multiaddr>, source: Discovery) {
        if peer == *self.swarm.local_peer_id()
            || self.swarm.is_connected(&peer)
            || self.gate.blocked(&peer).is_some()
            || !self.connections.may_dial(peer, source, now())
        {
            return;
        }
        // A fresh port: two peers that find each other at the same moment
        // and both dial from their listening port would collide.
        let opts = DialOpts::peer_id(peer)
            .addresses(addresses)
            .extend_addresses_through_behaviour()
            .allocate_new_port()
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, error = %e, "dial failed");
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::People { query, reply } => self.ask_directory(query, reply),
            Command::Files(command) => self.on_file_command(command),
            Command::Devices(reply) => {
                let _ = reply.send(self.own_devices());
            }
            Command::Peers(reply) => {
                let mut peers: Vec<PeerInfo> = self
                    .connections
                    .peers()
                    .values()
                    .cloned()
                    .map(|mut peer| {
                        peer.label = self.label_of(&peer.device);
                        peer
                    })
                    .collect();
                peers.sort_by(|a, b| a.user_id.cmp(&b.user_id).then(a.device.cmp(&b.device)));
                let _ = reply.send(peers);
            }
            Command::Status(reply) => {
                let leaf = self.chain.leaf().map(|c| c.body.subject.user_id.clone());
                let _ = reply.send(Status {
                    device: self.key.device_id(),
                    user_id: leaf.unwrap_or_default(),
                    agency: self.agency.name.clone(),
                    agency_id: self.agency.id().to_string(),
                    listen: self
                        .connections
                        .listening()
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    peers: self.connections.peers().len(),
                    mdns: self.config.config.mdns,
                    bootstrap: self
                        .connections
                        .bootstrap()
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    devices_met: self.messaging.as_ref().map_or(0, |m| {
                        let me = self.key.device_id();
                        m.messenger
                            .devices()
                            .filter(|d| d.role != Role::Relay && d.device != me)
                            .count()
                    }),
                    blocked: self.gate.blocked_peers().len(),
                    relay: self.carrier.is_some(),
                    stored_items: self.sync.index().total(),
                    stored_bytes: self.sync.index().bytes(),
                    policy: self.policy_view(),
                    outbox: self
                        .messaging
                        .as_ref()
                        .map_or(0, |m| m.log.outbox_len().unwrap_or(0)),
                    relays: self
                        .connections
                        .peers()
                        .values()
                        .filter(|p| p.role == Role::Relay)
                        .map(|p| p.display_name.clone())
                        .collect(),
                    last_sync: self.sync.last_sync(),
                    discovery: !self.connections.bootstrap().is_empty() || self.config.config.mdns,
                    own_devices_revoked: self.own_devices_revoked(),
                    file_chunks: self.files.chunks_held(),
                    file_bytes: self.files.bytes_held(),
                    file_limit: self.file_limit(),
                });
            }
            Command::PublishControl { payload, reply } => {
                let frame = self.sign_frame(payload);
                let _ = reply.send(self.publish(frame));
            }
            Command::PublishRaw { data, reply } => {
                let _ = reply.send(self.publish(data));
            }
            Command::Follow { room, reply } => {
                self.follow(room);
                let _ = reply.send(());
            }
            Command::PublishRawToRoom { room, data, reply } => {
                let topic = topics::room(&self.agency.id(), &room.0);
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, data)
                    .map(|_| ())
                    .map_err(|e| NodeError::Network(e.to_string()));
                let _ = reply.send(result);
            }
            Command::Dial { address, reply } => {
                self.connections.dialling_by_hand(address.clone());
                let result = self
                    .swarm
                    .dial(address)
                    .map_err(|e| NodeError::Network(e.to_string()));
                let _ = reply.send(result);
            }
            Command::Rooms(reply) => {
                let _ = reply.send(self.rooms());
            }
            Command::CreateGroup {
                name,
                members,
                reply,
            } => {
                let result = self.create_group(&name, members);
                self.acknowledge(reply, result);
            }
            Command::Invite { room, user, reply } => {
                let result = self.invite(&room, &user);
                self.acknowledge(reply, result);
            }
            Command::Remove { room, user, reply } => {
                let result = self.remove(&room, &user);
                self.acknowledge(reply, result);
            }
            Command::Leave { room, reply } => {
                let result = self.leave(&room);
                self.acknowledge(reply, result);
            }
            Command::MakeAdmin { room, user, reply } => {
                let result = self.make_admin(&room, &user);
                self.acknowledge(reply, result);
            }
            Command::HideRoom {
                room,
                hidden,
                reply,
            } => {
                let result = self.set_hidden(&room, hidden);
                self.acknowledge(reply, result);
            }
            Command::Send { room, text, reply } => {
                let result = self.send_text(&room, text);
                self.acknowledge(reply, result);
            }
            Command::FindRoom { room, reply } => {
                // `@USER` may have opened a 1:1 room just now.
                let result = self.room_info(&room);
                self.acknowledge(reply, result);
            }
            Command::MarkRead { room, reply } => {
                let result = self.mark_read(&room);
                self.acknowledge(reply, result);
            }
            Command::History { room, limit, reply } => {
                let _ = reply.send(self.history(&room, limit));
            }
            Command::RawSync {
                peer,
                request,
                reply,
            } => {
                let Some(peer) = peer.peer_id().filter(|p| self.connections.holds(p)) else {
                    let _ =
                        reply.send(Err(NodeError::Network("not connected to that peer".into())));
                    return;
                };
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.raw_syncs.insert(id, reply);
            }
            Command::SyncNow(reply) => {
                self.sync_all();
                let _ = reply.send(());
            }
            Command::SubmitRevocation {
                bytes,
                new_only,
                reply,
            } => {
                let result = if new_only {
                    self.submit_new_revocation(bytes)
                } else {
                    self.submit_revocation(bytes)
                };
                self.acknowledge(reply, result);
            }
            Command::RevokeOwnDevice {
                device,
                reason,
                reply,
            } => {
                let result = self.revoke_own_device(device, reason);
                self.acknowledge(reply, result);
            }
            Command::Revocations(reply) => {
                let _ = reply.send(self.revocation_views());
            }
            Command::SubmitPolicy { bytes, reply } => {
                let _ = reply.send(self.submit_policy(bytes));
            }
            Command::DeviceChain { target, reply } => {
                let _ = reply.send(self.device_chain(&target));
            }
            Command::Blocked(reply) => {
                let _ = reply.send(self.gate.blocked_peers());
            }
            Command::PeerScore { device, reply } => {
                let score = device
                    .peer_id()
                    .and_then(|peer| self.swarm.behaviour().gossipsub.peer_score(&peer));
                let _ = reply.send(score);
            }
        }
    }

    /// Answers a request that changed what this node keeps: a success goes
    /// out only once the change is on disk (group commit), so nothing a user
    /// was told happened is lost in a crash. A failure goes out at once.
    fn acknowledge<T: Send + 'static>(
        &self,
        reply: oneshot::Sender<Result<T, NodeError>>,
        result: Result<T, NodeError>,
    ) {
        match result {
            Ok(answer) => self.commit.after_flush(Box::new(move |flushed| {
                let _ = reply.send(flushed.map(|()| answer).map_err(NodeError::Storage));
            })),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Wraps `payload` in a frame signed by this device for the control topic.
    pub(super) fn sign_frame(&self, payload: Vec<u8>) -> Vec<u8> {
        let frame = SignedFrame::sign(
            &self.key,
            FrameBody {
                author: self.chain.clone(),
                topic: self.control.hash().to_string(),
                sent_at: self.clock.now(),
                nonce: OsEntropy.array(),
                payload,
            },
        );
        wire::encode(&frame)
    }

    pub(super) fn publish(&mut self, data: Vec<u8>) -> Result<(), NodeError> {
        let data_copy = data.clone();
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.control.clone(), data)
        {
            Ok(id) => {
                self.seen.insert(id);
                self.hold_control(&data_copy);
                Ok(())
            }
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Err(NodeError::NoPeers),
            Err(e) => Err(NodeError::Publish(e.to_string())),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<Event>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.connections.listening_on(address.clone());
                // A relay serves circuits only on addresses it calls its own:
                // those it listens on (a field office's relay has a fixed
                // address, set with --listen).
                let relayed = address
                    .iter()
                    .any(|p| p == libp2p::multiaddr::Protocol::P2pCircuit);
                if self.carrier.is_some() && !relayed {
                    self.swarm.add_external_address(address.clone());
                }
                self.emit(NodeEvent::Listening(address));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.connections.stopped_listening(&address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                ..
            } => {
                // A relayed address whose relay went away is no longer ours
                // (finding 20: `status` kept showing it), and the relay is
                // asked again when it is back.
                if let Some(relay) = self.connections.listener_closed(listener_id, &addresses) {
                    tracing::info!(relay = %relay, "circuit reservation ended");
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if let ConnectedPoint::Dialer { address, .. } = &endpoint {
                    self.unreachable_bootstrap
                        .retain(|b| !address.iter().zip(b.iter()).all(|(x, y)| x == y));
                }
                self.on_connected(peer_id, &endpoint, num_established.get())
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.gate.forget(&peer_id);
                self.triggers.forget_peer(&peer_id);
                if let Some(peer) = self.connections.closed(&peer_id, now()) {
                    self.note_device_met(peer.device);
                    tracing::info!(peer = %peer.device.short(), user = %peer.user_id, "peer disconnected");
                    self.emit(NodeEvent::PeerDisconnected(peer.device));
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "outgoing connection failed");
                if let Some(peer) = peer_id {
                    self.connections.dial_failed(&peer);
                }
                self.note_unreachable_bootstrap(&error);
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                tracing::debug!(%send_back_addr, %error, "incoming connection failed");
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_connected(&mut self, peer_id: PeerId, endpoint: &ConnectedPoint, count: u32) {
        let found_by = self.connections.classify(peer_id, endpoint);
        if count != 1 {
            self.connections.also_found(&peer_id, found_by);
            return;
        }
        let Some((verified, chain)) = self.gate.admitted(&peer_id) else {
            // Cannot happen: the transport admits before connecting.
            tracing::error!(%peer_id, "connection without admission record; closing");
            let _ = self.swarm.disconnect_peer_id(peer_id);
            return;
        };
        self.learn_device(verified.clone(), &chain);
        let info = PeerInfo {
            device: verified.device,
            user_id: verified.subject.user_id,
            display_name: verified.subject.display_name,
            org_unit: verified.subject.org_unit,
            role: verified.role,
            address: endpoint.get_remote_address().to_string(),
            found_by,
            label: None,
        };
        tracing::info!(
            peer = %info.device.short(),
            user = %info.user_id,
            role = %info.role,
            found_by = ?info.found_by,
            "peer admitted"
        );
        let first = self
            .connections
            .admitted(peer_id, info.clone(), endpoint.is_dialer(), now());
        self.note_device_met(info.device);
        self.lease_met_peer();
        self.emit(NodeEvent::PeerAdmitted(info));
        self.reserve_circuit(peer_id, verified.role, endpoint);
        self.start_sync(peer_id);
        if first {
            // First contact: look for the rest of the mesh now, not at the next round.
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
    }

    /// Tells the user, once until it answers again, that a bootstrap
    /// address does not answer (finding 20: a node with its relay down
    /// said nothing).
    fn note_unreachable_bootstrap(&mut self, error: &swarm::DialError) {
        let swarm::DialError::Transport(errors) = error else {
            return;
        };
        for (address, why) in errors {
            let Some(bootstrap) = self
                .connections
                .bootstrap()
                .iter()
                .find(|b| address.iter().zip(b.iter()).all(|(x, y)| x == y))
                .cloned()
            else {
                continue;
            };
            if self.unreachable_bootstrap.insert(bootstrap.clone()) {
                self.emit(NodeEvent::BootstrapUnreachable {
                    address: bootstrap.to_string(),
                    error: transport_error_line(why),
                });
            }
        }
    }

    fn on_behaviour_event(&mut self, event: Event) {
        match event {
            Event::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.on_gossip(propagation_source, message_id, message),
            Event::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic }) => {
                self.on_subscribed(peer_id, &topic)
            }
            Event::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for address in info.listen_addrs {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, address);
                }
            }
            Event::Kad(kad::Event::RoutingUpdated {
                peer, addresses, ..
            }) => {
                self.dial_peer(peer, addresses.into_vec(), Discovery::Kademlia);
            }
            Event::Sync(event) => self.on_sync_event(event),
            Event::Directory(event) => self.on_directory_event(event),
            Event::Chunks(event) => self.on_chunk_event(event),
            // A peer that stops answering pings is gone (a pulled cable):
            // close the connection now rather than when TCP gives up, many
            // minutes later, so the peer list and redials tell the truth.
            Event::Ping(libp2p::ping::Event {
                peer,
                connection,
                result: Err(error),
            }) => {
                tracing::info!(%peer, %error, "peer stopped answering; closing the connection");
                self.swarm.close_connection(connection);
            }
            Event::RelayClient(event) => tracing::debug!(?event, "relay client"),
            Event::RelayServer(event) => tracing::debug!(?event, "relay server"),
            Event::Dcutr(event) => tracing::debug!(?event, "direct connection upgrade"),
            Event::Lan(super::lan_discovery::Event::Discovered(found)) => {
                self.dial_peer(found.peer, found.addresses, Discovery::Mdns);
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        if self.enforcement.is_wiping() {
            return self.report(&id, &source, MessageAcceptance::Ignore);
        }
        let revocation_item = message.topic == self.control.hash()
            && matches!(
                wire::kind_of(&message.data),
                Some(wire::Kind::Revocation | wire::Kind::WipeReceipt | wire::Kind::AgencyPolicy)
            );
        if revocation_item {
            // Self-signed: anyone may pass it on, even a revoked device its receipt.
            return match self.take_revocation_item(&message.data, Some(source)) {
                syncing::Intake::New | syncing::Intake::Held => {
                    self.report(&id, &source, MessageAcceptance::Accept)
                }
                syncing::Intake::Duplicate | syncing::Intake::Unverified => {
                    self.report(&id, &source, MessageAcceptance::Ignore)
                }
                syncing::Intake::Rejected(reason) => self.reject(&id, source, reason),
                syncing::Intake::Deferred(reason) => self.defer(&id, source, reason),
            };
        }
        if self.is_revoked_peer(&source) {
            return self.report(&id, &source, MessageAcceptance::Ignore);
        }
        if message.topic != self.control.hash() {
            return self.on_room_gossip(source, id, message);
        }
        match self.take_control_gossip(&message.data) {
            syncing::Intake::New | syncing::Intake::Held => {
                self.report(&id, &source, MessageAcceptance::Accept);
            }
            syncing::Intake::Duplicate | syncing::Intake::Unverified => {
                self.report(&id, &source, MessageAcceptance::Ignore)
            }
            syncing::Intake::Rejected(reason) => self.reject(&id, source, reason),
            syncing::Intake::Deferred(reason) => self.defer(&id, source, reason),
        }
    }

    /// Validates and takes in a control frame (from gossip or sync); keeps
    /// it for sync.
    fn take_control(&mut self, data: &[u8]) -> syncing::Intake {
        // The id is the content hash: bytes taken once are valid, and taken.
        let id = gossipsub::MessageId::from(blake3::hash(data).as_bytes().to_vec());
        if self.seen.contains(&id) {
            return syncing::Intake::Duplicate;
        }
        let (frame, author) = match self.verify_control(data) {
            Ok(valid) => valid,
            Err(refused) => return refused,
        };
        if let Err(reason) = self.check_not_revoked(&author, frame.body.sent_at) {
            return syncing::Intake::Rejected(reason);
        }
        if !self.seen.insert(id.clone()) {
            return syncing::Intake::Duplicate;
        }
        let handled = match self.on_control_payload(&frame, &author) {
            Ok(handled) => handled,
            Err((why, reason)) => {
                if why != crate::net::refusals::Refusal::Invalid {
                    // To be judged again when it comes back.
                    self.seen.remove(&id);
                }
                return syncing::Intake::refused(why, reason);
            }
        };
        self.hold_control(data);
        if !handled {
            self.emit(NodeEvent::Gossip {
                topic: self.control.hash().to_string(),
                author: author.device,
                author_user: frame
                    .body
                    .author
                    .leaf()
                    .map(|c| c.body.subject.user_id.clone())
                    .unwrap_or_default(),
                payload: frame.body.payload,
            });
        }
        syncing::Intake::New
    }

    pub(super) fn report(
        &mut self,
        id: &gossipsub::MessageId,
        source: &PeerId,
        acceptance: MessageAcceptance,
    ) {
        if let (Some(observer), MessageAcceptance::Accept) = (&self.observer, &acceptance) {
            observer.accepted(id.0.as_slice(), *source);
        }
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
    }

    /// Rejects a message (its forwarder is penalised) and says why.
    /// A gossip message this node cannot take now for a reason of its own
    /// (see [`syncing::Intake::Deferred`]): not passed on, and its honest
    /// forwarder is not penalised (audit M4).
    pub(super) fn defer(&mut self, id: &gossipsub::MessageId, source: PeerId, reason: String) {
        self.report(id, &source, MessageAcceptance::Ignore);
        tracing::info!(from = %source, %reason, "gossip message not taken for now");
    }

    pub(super) fn reject(&mut self, id: &gossipsub::MessageId, source: PeerId, reason: String) {
        self.report(id, &source, MessageAcceptance::Reject);
        tracing::warn!(from = %source, %reason, "gossip message rejected");
        self.emit(NodeEvent::GossipRejected {
            from: source,
            reason,
        });
    }

    fn verify_control(
        &mut self,
        data: &[u8],
    ) -> Result<(SignedFrame, VerifiedDevice), syncing::Intake> {
        let frame = wire::decode::<SignedFrame>(data)
            .map_err(|e| syncing::Intake::Rejected(format!("malformed gossip frame: {e}")))?;
        let author = frame
            .verify_cached(
                &self.control.hash().to_string(),
                &self.agency,
                self.clock.now(),
                &self.policy,
                &mut self.chains,
            )
            .map_err(|e| {
                syncing::Intake::refused(crate::net::refusals::Refusal::of_trust(&e), e.to_string())
            })?;
        Ok((frame, author))
    }

    /// A device that dialed a relay asks it for a circuit reservation, so
    /// peers that cannot reach it directly can through the relay.
    fn reserve_circuit(&mut self, peer: PeerId, role: Role, endpoint: &ConnectedPoint) {
        let Some(circuit) = self.connections.circuit_to_reserve(peer, role, endpoint) else {
            return;
        };
        match self.swarm.listen_on(circuit.clone()) {
            Ok(listener) => {
                self.connections.reserved(listener, peer);
                tracing::info!(%circuit, "asked a relay for a circuit reservation");
            }
            Err(e) => tracing::debug!(%circuit, error = %e, "cannot reserve a relayed address"),
        }
    }
}

/// A dial's transport error in one line, innermost cause last ("connection
/// refused" rather than a chain of wrappers).
fn transport_error_line(error: &libp2p::TransportError<std::io::Error>) -> String {
    let mut line = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        line = cause.to_string();
        source = cause.source();
    }
    line.lines().next().unwrap_or_default().to_string()
}
