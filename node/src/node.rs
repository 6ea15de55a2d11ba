//! The node: a builder, a running actor, a cloneable [`Handle`] and events.
//!
//! One actor task owns the libp2p swarm; everything else talks to it through
//! a bounded command channel with oneshot replies, and listens to a bounded
//! broadcast of [`NodeEvent`]s. Shutdown is a `CancellationToken`.

use std::sync::Arc;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{MessageView, RoomInfo, Sent};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, NodeConfig};
use crate::identity::{DeviceId, KeyPair};
use crate::net::{self, Command, TransportKind};
use crate::rooms::RoomId;
use crate::store::{MemoryStore, Store};
use crate::trust::{AgencyInfo, CertificateChain, EnrollmentBundle, NetworkKey, OrgUnit, Role};

/// Capacity of the command channel.
const COMMAND_CAPACITY: usize = 64;

/// What a device presents to the mesh.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The device key (its libp2p identity).
    pub key: KeyPair,
    /// Its certificate chain.
    pub chain: CertificateChain,
    /// The agency it trusts.
    pub agency: AgencyInfo,
    /// The agency network key; `None` only models a stranger without it.
    pub network_key: Option<NetworkKey>,
}

impl Credentials {
    /// Credentials from an installed bundle.
    pub fn from_bundle(key: KeyPair, bundle: &EnrollmentBundle) -> Self {
        Credentials {
            key,
            chain: bundle.body.chain.clone(),
            agency: bundle.body.agency.clone(),
            network_key: Some(bundle.body.network_key.clone()),
        }
    }
}

/// Why the node could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The network stack could not be built or bound.
    #[error("network: {0}")]
    Network(String),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// Nobody to publish to.
    #[error("no admitted peer to publish to yet")]
    NoPeers,
    /// Publishing failed.
    #[error("publish failed: {0}")]
    Publish(String),
    /// A room request failed.
    #[error("{0}")]
    Room(String),
    /// A change was made but could not be made durable: it may be lost.
    #[error("{0}")]
    Storage(String),
    /// This device erased itself at start (its lease had ended); the notice says why.
    #[error("{0}")]
    Wiped(String),
}

/// How a peer was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Discovery {
    /// mDNS on the local network.
    Mdns,
    /// A bootstrap address (bundle or `--bootstrap`).
    Bootstrap,
    /// Kademlia peer routing.
    Kademlia,
    /// It connected to us.
    Inbound,
    /// Dialed on request.
    Dialed,
}

impl std::fmt::Display for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Discovery::Mdns => "mdns",
            Discovery::Bootstrap => "bootstrap",
            Discovery::Kademlia => "kademlia",
            Discovery::Inbound => "inbound",
            Discovery::Dialed => "dialed",
        })
    }
}

/// An admitted peer as the node knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Its device id.
    pub device: DeviceId,
    /// Certified user id.
    pub user_id: String,
    /// Certified display name.
    pub display_name: String,
    /// Certified org unit.
    pub org_unit: OrgUnit,
    /// Certified role.
    pub role: Role,
    /// Address of the first connection.
    pub address: String,
    /// How it was found.
    pub found_by: Discovery,
    /// Its label ("PC", "휴대폰"), once it announced one.
    #[serde(default)]
    pub label: Option<String>,
}

/// The node's own state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This device.
    pub device: DeviceId,
    /// This device's user id.
    pub user_id: String,
    /// Agency name.
    pub agency: String,
    /// Agency id (short form).
    pub agency_id: String,
    /// Addresses the node listens on.
    pub listen: Vec<String>,
    /// Number of admitted peers.
    pub peers: usize,
    /// Whether mDNS discovery is on.
    pub mdns: bool,
    /// Bootstrap addresses in use.
    pub bootstrap: Vec<String>,
    /// Officials' devices this node has met (their certificates are held:
    /// their messages can be checked); neither relays nor this device
    /// itself are counted.
    pub devices_met: usize,
    /// Number of peers blocked after a refusal.
    pub blocked: usize,
    /// Whether this node is a relay (store-and-forward for others).
    pub relay: bool,
    /// Items held for sync (envelopes, control frames, revocations).
    pub stored_items: usize,
    /// Their bytes.
    pub stored_bytes: u64,
    /// The agency policy in force and this device's lease.
    #[serde(default)]
    pub policy: crate::agency_policy::PolicyView,
    /// Messages this device wrote that no peer has taken yet.
    #[serde(default)]
    pub outbox: usize,
    /// Display names of the relays admitted now.
    #[serde(default)]
    pub relays: Vec<String>,
    /// When this node last finished reconciling with a peer (Unix seconds).
    #[serde(default)]
    pub last_sync: Option<u64>,
    /// Whether the node has any way to find peers: a bootstrap address or
    /// LAN discovery.
    #[serde(default)]
    pub discovery: bool,
    /// Revocations of this user's other devices (one of theirs was lost,
    /// or revoked by an operator): shown so the owner learns of it.
    #[serde(default)]
    pub own_devices_revoked: Vec<crate::revocations::RevocationView>,
    /// Attachments' chunks held here.
    #[serde(default)]
    pub file_chunks: usize,
    /// Their bytes.
    #[serde(default)]
    pub file_bytes: u64,
    /// The largest file this device sends or fetches: its own limit and
    /// the agency's.
    #[serde(default)]
    pub file_limit: crate::file_limit::FileLimit,
}

/// A peer refused at admission and blocked for a while.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedPeer {
    /// Its device id.
    pub device: DeviceId,
    /// Unix seconds the block ends.
    pub until: u64,
    /// Why it was refused.
    pub reason: String,
}

/// Something that happened on the node.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// Listening on a new address.
    Listening(Multiaddr),
    /// A peer passed admission.
    PeerAdmitted(PeerInfo),
    /// A peer was refused at admission (and blocked).
    PeerRefused {
        /// The refused peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The last connection to a peer closed.
    PeerDisconnected(DeviceId),
    /// A bootstrap address did not answer (told once, until it answers).
    BootstrapUnreachable {
        /// The address.
        address: String,
        /// Why, in one line.
        error: String,
    },
    /// A valid gossip frame arrived.
    Gossip {
        /// Topic hash string.
        topic: String,
        /// Author device.
        author: DeviceId,
        /// Author user id.
        author_user: String,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A message arrived (or became readable) in a room.
    Message(MessageView),
    /// A chunk of an attached file arrived: the message with its
    /// attachment's progress (`held` of `chunks`).
    FileProgress(MessageView),
    /// A peer served a chunk that does not match its hash (it is asked
    /// nothing for a while).
    ChunkRejected {
        /// The peer.
        from: PeerId,
        /// Why.
        reason: String,
    },
    /// This device was added to a group.
    RoomJoined(RoomInfo),
    /// A valid envelope arrived that this device cannot read (it holds no
    /// key for it): kept aside, never shown.
    Unreadable {
        /// Room id (hex).
        room: String,
        /// Message id (hex).
        id: String,
    },
    /// A gossip message was rejected (and its forwarder penalised).
    GossipRejected {
        /// The peer that forwarded it.
        from: PeerId,
        /// Why.
        reason: String,
    },
    /// A reconciliation this node started with a peer finished.
    Synced(SyncReport),
    /// An item fetched by sync failed validation: the session with that
    /// peer was abandoned.
    SyncRejected {
        /// The peer that sent it.
        from: DeviceId,
        /// Why.
        reason: String,
    },
    /// A new revocation was accepted and is enforced from now on.
    Revoked(crate::revocations::RevocationView),
    /// A revoked device confirmed it erased itself.
    WipeConfirmed {
        /// The revocation it obeyed (hex id).
        revocation: String,
        /// The device.
        device: DeviceId,
        /// When it wiped, Unix seconds.
        wiped_at: u64,
    },
    /// This device was revoked: it sends its wipe receipt and erases itself.
    Wiping {
        /// What `baro` will say from now on.
        notice: String,
    },
    /// A newer agency policy is in force.
    PolicyChanged(crate::agency_policy::PolicyView),
    /// This device's lease ends soon: it must meet a peer of the agency or
    /// it erases itself (given once per day left).
    LeaseEnding(crate::agency_policy::PolicyView),
    /// This device erased its data; the node has stopped.
    Wiped {
        /// By whom and when it was revoked.
        notice: String,
    },
}

/// What one sync session with a peer did (the side that started it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// The peer.
    pub peer: DeviceId,
    /// Sets reconciled, in order (revocations first).
    pub scopes: Vec<String>,
    /// Items fetched and accepted.
    pub fetched: usize,
    /// Bytes sent (requests, with framing).
    pub bytes_sent: u64,
    /// Bytes received (responses, with framing).
    pub bytes_received: u64,
    /// Request/response round trips.
    pub round_trips: usize,
}

/// Configures and starts a node.
#[derive(Debug)]
pub struct NodeBuilder {
    credentials: Credentials,
    store: Arc<dyn Store>,
    config: NodeConfig,
    transport: TransportKind,
    clock: Arc<dyn Clock>,
    diagnostics: net::Diagnostics,
}

impl NodeBuilder {
    /// A node with `credentials`, default configuration, TCP and the system clock.
    pub fn new(credentials: Credentials) -> Self {
        NodeBuilder {
            credentials,
            store: Arc::new(MemoryStore::new()),
            config: NodeConfig::default(),
            transport: TransportKind::Tcp,
            clock: Arc::new(SystemClock),
            diagnostics: net::Diagnostics::default(),
        }
    }

    /// Sets the configuration.
    pub fn config(mut self, config: NodeConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets where messages, rooms and keys are kept (default: in memory).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = store;
        self
    }

    /// Sets the transport.
    pub fn transport(mut self, transport: TransportKind) -> Self {
        self.transport = transport;
        self
    }

    /// Sets the clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Reports what gossip does inside the node (simulations; default: nothing).
    pub fn diagnostics(mut self, diagnostics: net::Diagnostics) -> Self {
        self.diagnostics = diagnostics;
        self
    }

    /// Starts the node on the current tokio runtime.
    pub fn spawn(self) -> Result<Node, NodeError> {
        let config = self.config.validate()?;
        let (command_tx, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        // Subscribed before the actor runs: its first events (the listen
        // addresses, a bootstrap that does not answer) come within a
        // millisecond, before a caller of `spawn` could subscribe.
        let (events, first_events) = broadcast::channel(config.config.event_capacity);
        let shutdown = CancellationToken::new();
        let device = self.credentials.key.device_id();
        let actor = net::Actor::new(
            self.credentials,
            self.store,
            config,
            self.transport,
            self.clock,
            command_rx,
            events.clone(),
            shutdown.clone(),
            self.diagnostics,
        )?;
        let tasks = TaskTracker::new();
        tasks.spawn(actor.run());
        tasks.close();
        Ok(Node {
            handle: Handle {
                commands: command_tx,
                events,
                device,
            },
            shutdown,
            tasks,
            first_events: std::sync::Mutex::new(Some(first_events)),
        })
    }
}

/// A running node. Dropping it does not stop it; call [`Node::shutdown`].
#[derive(Debug)]
pub struct Node {
    handle: Handle,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    first_events: std::sync::Mutex<Option<broadcast::Receiver<NodeEvent>>>,
}

impl Node {
    /// The node's events from its very start (the first call; later calls,
    /// like [`Handle::events`], get those from now on).
    pub fn events_from_start(&self) -> broadcast::Receiver<NodeEvent> {
        self.first_events
            .lock()
            .ok()
            .and_then(|mut first| first.take())
            .unwrap_or_else(|| self.handle.events())
    }

    /// A handle to talk to the node.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The token that stops the node when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the node and waits until its connections are closed.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tasks.wait().await;
    }
}

/// A cheap, cloneable way to talk to a running node.
#[derive(Clone, Debug)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<NodeEvent>,
    device: DeviceId,
}

impl Handle {
    /// This node's device id.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// Subscribes to events from now on.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| NodeError::Stopped)?;
        answer.await.map_err(|_| NodeError::Stopped)
    }

    /// The admitted peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        self.ask(Command::Peers).await
    }

    /// The node's status.
    pub async fn status(&self) -> Result<Status, NodeError> {
        self.ask(Command::Status).await
    }

    /// Signs `payload` and publishes it on the agency control topic.
    pub async fn publish_control(&self, payload: Vec<u8>) -> Result<(), NodeError> {
        self.ask(|reply| Command::PublishControl { payload, reply })
            .await?
    }

    /// Publishes raw bytes on the control topic without signing them: only
    /// for simulating misbehaving nodes in tests and simulations.
    pub async fn publish_raw(&self, data: Vec<u8>) -> Result<(), NodeError> {
        self.ask(|reply| Command::PublishRaw { data, reply })
            .await?
    }

    /// Follows a room's topic without being a member: envelopes arrive and
    /// are validated, but stay unreadable ([`NodeEvent::Unreadable`]). What a
    /// relay does; tests use it to play a curious insider.
    pub async fn follow(&self, room: RoomId) -> Result<(), NodeError> {
        self.ask(|reply| Command::Follow { room, reply }).await
    }

    /// Publishes raw bytes on a room's topic, unchecked: for tests and
    /// simulations of misbehaving nodes.
    pub async fn publish_raw_to_room(&self, room: RoomId, data: Vec<u8>) -> Result<(), NodeError> {
        self.ask(|reply| Command::PublishRawToRoom { room, data, reply })
            .await?
    }

    /// Sends one raw sync request to a connected peer and returns its
    /// answer: for tests and simulations of what a peer may ask.
    pub async fn raw_sync_request(
        &self,
        peer: DeviceId,
        request: crate::sync::SyncRequest,
    ) -> Result<crate::sync::SyncResponse, NodeError> {
        self.ask(|reply| Command::RawSync {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Makes this device serve every chunk with one byte flipped, as a
    /// malicious holder would (tests of the receivers' check and penalty;
    /// not reachable from the control API).
    #[doc(hidden)]
    pub async fn tamper_served_chunks(&self, on: bool) -> Result<(), NodeError> {
        self.ask(|reply| Command::Files(net::FileCommand::TamperServed { on, reply }))
            .await
    }

    /// Sends one chunk protocol request to a connected peer and returns
    /// its answer (tests: what a peer asking for chunks is told).
    pub async fn raw_chunk_request(
        &self,
        peer: DeviceId,
        request: crate::wire::ChunkRequest,
    ) -> Result<crate::wire::ChunkResponse, NodeError> {
        self.ask(|reply| {
            Command::Files(net::FileCommand::Raw {
                peer,
                request,
                reply,
            })
        })
        .await?
    }

    /// Starts a sync round with every connected peer now.
    pub async fn sync_now(&self) -> Result<(), NodeError> {
        self.ask(Command::SyncNow).await
    }

    /// Takes a signed revocation (made by an operator's or official's
    /// tools), enforces it and publishes it (or keeps it until a peer is there).
    pub async fn submit_revocation(
        &self,
        bytes: Vec<u8>,
    ) -> Result<crate::revocations::RevocationView, NodeError> {
        self.ask(|reply| Command::SubmitRevocation {
            bytes,
            new_only: false,
            reply,
        })
        .await?
    }

    /// Like [`Handle::submit_revocation`], but refused, adding nothing, when
    /// a revocation in force already covers its target (with a wipe order
    /// if it has one): what a user revoking by hand is told.
    pub async fn submit_new_revocation(
        &self,
        bytes: Vec<u8>,
    ) -> Result<crate::revocations::RevocationView, NodeError> {
        self.ask(|reply| Command::SubmitRevocation {
            bytes,
            new_only: true,
            reply,
        })
        .await?
    }

    /// Revokes another device of this device's user (a lost phone), which
    /// erases itself when it hears of it.
    pub async fn revoke_own_device(
        &self,
        device: DeviceId,
        reason: &str,
    ) -> Result<crate::revocations::RevocationView, NodeError> {
        let reason = reason.to_string();
        self.ask(|reply| Command::RevokeOwnDevice {
            device,
            reason,
            reply,
        })
        .await?
    }

    /// Takes an agency policy signed by an operator's tools: in force here
    /// if newer than the one in force, and published.
    pub async fn submit_policy(
        &self,
        bytes: Vec<u8>,
    ) -> Result<crate::agency_policy::PolicyView, NodeError> {
        self.ask(|reply| Command::SubmitPolicy { bytes, reply })
            .await?
    }

    /// Every revocation this node enforces, with what it knows of each.
    pub async fn revocations(&self) -> Result<Vec<crate::revocations::RevocationView>, NodeError> {
        self.ask(Command::Revocations).await
    }

    /// The officials `query` finds: those this device knows, and those a
    /// connected relay's agency directory answers (this relay's own, on a
    /// relay); every chain in a relay's answer is checked here before it is
    /// shown, and its devices are then known here.
    pub async fn people(
        &self,
        query: crate::trust::DirectoryQuery,
    ) -> Result<crate::api::People, NodeError> {
        self.ask(|reply| Command::People {
            query: Some(query),
            reply,
        })
        .await?
    }

    /// This device's user's devices (this one included): label, id, when
    /// last met, revoked or not.
    pub async fn devices(&self) -> Result<Vec<crate::api::DeviceView>, NodeError> {
        self.ask(Command::Devices).await
    }

    /// Every official this device knows (whose certificate it holds, not
    /// revoked or expired), without asking a relay.
    pub async fn known_people(&self) -> Result<crate::api::People, NodeError> {
        self.ask(|reply| Command::People { query: None, reply })
            .await?
    }

    /// The certificate chain of a device (or a user's newest device) this node has met.
    pub async fn device_chain(
        &self,
        target: crate::revocations::Target,
    ) -> Result<CertificateChain, NodeError> {
        self.ask(|reply| Command::DeviceChain { target, reply })
            .await?
    }

    /// Dials an address.
    pub async fn dial(&self, address: Multiaddr) -> Result<(), NodeError> {
        self.ask(|reply| Command::Dial { address, reply }).await?
    }

    /// Peers blocked after being refused at admission.
    pub async fn blocked(&self) -> Result<Vec<BlockedPeer>, NodeError> {
        self.ask(Command::Blocked).await
    }

    /// The gossipsub score of a connected peer (negative after misbehaviour).
    pub async fn peer_score(&self, device: DeviceId) -> Result<Option<f64>, NodeError> {
        self.ask(|reply| Command::PeerScore { device, reply }).await
    }

    /// The rooms this device is in.
    pub async fn rooms(&self) -> Result<Vec<RoomInfo>, NodeError> {
        self.ask(Command::Rooms).await
    }

    /// Creates a group with this device's user as admin.
    pub async fn create_group(
        &self,
        name: &str,
        members: Vec<String>,
    ) -> Result<RoomInfo, NodeError> {
        let name = name.to_string();
        self.ask(|reply| Command::CreateGroup {
            name,
            members,
            reply,
        })
        .await?
    }

    /// Adds `user` (a user id, or a display name only one official has)
    /// to a group (admins only); the group as it is now.
    pub async fn invite(&self, room: &str, user: &str) -> Result<RoomInfo, NodeError> {
        let (room, user) = (room.to_string(), user.to_string());
        self.ask(|reply| Command::Invite { room, user, reply })
            .await?
    }

    /// Removes `user` from a group (admins; or a user removing themselves):
    /// the group moves to a key the removed user never receives.
    pub async fn remove(&self, room: &str, user: &str) -> Result<(), NodeError> {
        let (room, user) = (room.to_string(), user.to_string());
        self.ask(|reply| Command::Remove { room, user, reply })
            .await?
    }

    /// Leaves a group; its admins then move it to a key this device never gets.
    pub async fn leave(&self, room: &str) -> Result<(), NodeError> {
        let room = room.to_string();
        self.ask(|reply| Command::Leave { room, reply }).await?
    }

    /// Makes `user`, a member of a group, an admin too (admins only); the
    /// new definition is announced, signed, like every group change.
    pub async fn make_admin(&self, room: &str, user: &str) -> Result<RoomInfo, NodeError> {
        let (room, user) = (room.to_string(), user.to_string());
        self.ask(|reply| Command::MakeAdmin { room, user, reply })
            .await?
    }

    /// Hides a room from the room list on this device (`hidden`), or shows
    /// it again; nothing is announced and its messages still arrive.
    pub async fn hide_room(&self, room: &str, hidden: bool) -> Result<RoomInfo, NodeError> {
        let room = room.to_string();
        self.ask(|reply| Command::HideRoom {
            room,
            hidden,
            reply,
        })
        .await?
    }

    /// Sends a text message to a room (by name or id).
    pub async fn send(&self, room: &str, text: &str) -> Result<Sent, NodeError> {
        let (room, text) = (room.to_string(), text.to_string());
        self.ask(|reply| Command::Send { room, text, reply })
            .await?
    }

    /// Sends the file at `path` (absolute, read by the node) to a room,
    /// with a caption (may be empty). A JPEG or PNG photo is sent without
    /// its metadata (EXIF, GPS, text; orientation kept) unless
    /// `keep_metadata`.
    pub async fn send_file(
        &self,
        room: &str,
        path: &std::path::Path,
        caption: &str,
        keep_metadata: bool,
    ) -> Result<Sent, NodeError> {
        let (room, path, caption) = (room.to_string(), path.to_path_buf(), caption.to_string());
        self.ask(|reply| {
            Command::Files(net::FileCommand::Send {
                room,
                path,
                caption,
                keep_metadata,
                reply,
            })
        })
        .await?
    }

    /// The messages of a room that carry files, with how much of each is held here.
    pub async fn files(&self, room: &str) -> Result<Vec<MessageView>, NodeError> {
        let room = room.to_string();
        self.ask(|reply| Command::Files(net::FileCommand::List { room, reply }))
            .await?
    }

    /// Starts (or goes on with) fetching a file of a room, named by 6 or
    /// more hex digits of its id; once all of it is here, writes it to
    /// `out` (absolute, a new file) if given. Answers at once with the
    /// file's message and how much of it is held.
    pub async fn fetch_file(
        &self,
        room: &str,
        file: &str,
        out: Option<&std::path::Path>,
    ) -> Result<MessageView, NodeError> {
        let (room, file, out) = (
            room.to_string(),
            file.to_string(),
            out.map(|p| p.to_path_buf()),
        );
        self.ask(|reply| {
            Command::Files(net::FileCommand::Fetch {
                room,
                file,
                out,
                reply,
            })
        })
        .await?
    }

    /// The last `limit` readable messages of a room, oldest first.
    pub async fn history(&self, room: &str, limit: usize) -> Result<Vec<MessageView>, NodeError> {
        let room = room.to_string();
        self.ask(|reply| Command::History { room, limit, reply })
            .await?
    }

    /// The room a user named (see `rooms::lookup`: name, 6+ hex characters
    /// of its id, a department's last part, a unique name prefix), or
    /// `@USER` for the 1:1 room with USER (opened if new; other requests
    /// only find existing rooms).
    pub async fn find_room(&self, room: &str) -> Result<RoomInfo, NodeError> {
        let room = room.to_string();
        self.ask(|reply| Command::FindRoom { room, reply }).await?
    }

    /// Marks a room's unread messages read (sending read receipts where the
    /// room exchanges them); returns how many there were.
    pub async fn mark_read(&self, room: &str) -> Result<usize, NodeError> {
        let room = room.to_string();
        self.ask(|reply| Command::MarkRead { room, reply }).await?
    }

    /// Waits (at most `timeout`) until `count` peers are admitted.
    pub async fn wait_for_peers(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<PeerInfo>, NodeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let peers = self.peers().await?;
            if peers.len() >= count || tokio::time::Instant::now() >= deadline {
                return Ok(peers);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
