//! Networking: the transport stack with its inbound guard and admission,
//! LAN discovery by sealed beacons,
//! the limits on what others can make a node spend, the composed behaviour,
//! topic names, the components the actor drives (connections, sync
//! sessions, the directory, revocation enforcement), and the actor that
//! owns the swarm.

mod actor;
pub mod admission;
mod behaviour;
mod chunk_fetcher;
mod connections;
pub mod diagnostics;
mod directory_service;
mod enforcement;
pub mod inbound;
pub mod lan_beacon;
pub mod lan_discovery;
pub mod limits;
pub mod membership_proof;
mod quotas;
pub mod refusals;
pub mod shaping;
mod sync_engine;
pub mod sync_protocol;
pub mod topics;
mod transport;

pub(crate) use actor::file_transfer::FileCommand;
pub use actor::file_transfer::{
    AUTO_FETCH_IMAGE_LEN, CHUNK_PROTOCOL, DEFAULT_MAX_FILE_MB, media_type_of, open_to_send,
    size_text,
};
pub use actor::messaging::MAX_HISTORY;
pub(crate) use actor::{Actor, Command};
pub use behaviour::{Behaviour, Event};
pub use diagnostics::{Diagnostics, GossipObserver};
pub use shaping::{LinkModel, LinkParams};
pub use transport::{TransportKind, build as build_transport};
