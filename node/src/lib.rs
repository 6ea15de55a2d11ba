//! # Baro Mesh node
//!
//! Everything one device or relay runs: the agency trust model, every byte
//! format, sealing, and encrypted storage. Later layers (mesh networking,
//! rooms, sync, revocation) build on these.
//!
//! ## Layout
//!
//! - [`identity`] *(pure)*: ed25519 key newtypes, device ids (PeerIds), entropy.
//! - [`trust`] *(pure)*: agency root, operator and device certificates,
//!   chain verification, enrollment requests and bundles, policy.
//! - [`wire`] *(pure)*: the one codec: versioned, kind-tagged, size-capped,
//!   domain-separated signing bytes.
//! - [`crypto`] *(pure)*: storage-key sealing and passphrase (argon2id) sealing.
//! - [`store`] *(I/O)*: the node's home directory, the [`store::Store`] trait
//!   with sled and in-memory backends, encryption at rest (values sealed,
//!   keys keyed hashes that reveal no room, device or time), schema
//!   migration, and wipe.
//! - [`api`] *(I/O)*: the local control API (Unix socket) used by the CLI.
//! - [`clock`]: the wall clock (read only at the edges) and injectable clocks.
//! - [`config`]: [`NodeConfig`], plain data with defaults, validated once.
//! - [`node`]: [`NodeBuilder`], the running [`Node`], its [`Handle`] and events.
//! - [`rooms`] *(pure)*: room ids, membership, key epochs and rotation.
//! - [`sync`] *(pure)*: de-duplication, clocks, range-based reconciliation.
//! - [`net`] *(I/O)*: transport with admission inside the upgrade, behaviours,
//!   topics, and the actor that owns the swarm.
//! - [`text`] *(pure)*: Unicode NFC for every name that comes in.
//! - [`preview`] *(pure)*: small JPEG previews of photos, orientation
//!   applied, no metadata.
//! - [`photo_metadata`] *(pure)*: a sent photo's EXIF, GPS and text removed
//!   losslessly (orientation kept).
//! - [`testing`]: seeded agencies and in-memory nodes for tests and simulations.
//! - [`enrollment`] *(I/O)*: the enrollment flows the CLI offers, on a home.
//! - [`revocations`] *(I/O)*: signing, keeping and listing revocations on a
//!   home whose node is not running; the view shared with the running node.
//! - [`agency_policy`] *(I/O)*: the operator-signed agency policy and the
//!   device's lease on its store; the start check that wipes a device past
//!   its lease.
//!
//! Pure modules import neither tokio, libp2p's Swarm nor sled: time and
//! randomness are inputs, so they are tested with plain unit tests.

#![deny(missing_docs)]

pub mod agency_policy;
pub mod api;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod enrollment;
pub mod file_limit;
pub mod identity;
pub mod net;
pub mod node;
pub mod photo_metadata;
pub mod preview;
pub mod revocations;
pub mod rooms;
pub mod store;
pub mod sync;
pub mod testing;
pub mod text;
pub mod trust;
pub mod wire;

pub use config::NodeConfig;
pub use identity::{DeviceId, KeyPair, PublicKey};
pub use node::{
    BlockedPeer, Credentials, Handle, Node, NodeBuilder, NodeError, NodeEvent, PeerInfo, Status,
};
pub use trust::{AgencyId, AgencyInfo, CertificateChain, EnrollmentBundle, Role, VerifiedDevice};
