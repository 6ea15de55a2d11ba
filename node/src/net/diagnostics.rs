//! Diagnostics for simulations and measurements: what gossip did, seen from
//! inside one node. Nothing here changes what a node does; a node built
//! without diagnostics pays nothing for them.
//!
//! - A [`GossipObserver`] is told which peer delivered the first copy of
//!   each gossip message the node accepted: joined over every node, that is
//!   the delivery tree of a message (its hop counts).
//! - A metrics registry receives gossipsub's own counters, among them the
//!   copies received with and without duplicates.

use std::fmt;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;
pub use prometheus_client::registry::Registry;

/// Told of every gossip message a node accepted, as it accepts it.
pub trait GossipObserver: Send + Sync + fmt::Debug {
    /// The first copy of message `id` (its gossipsub message id: the blake3
    /// hash of its bytes, so a room message's id is its envelope id) came
    /// from `from` and was accepted.
    fn accepted(&self, id: &[u8], from: PeerId);
}

/// What a node reports about its gossip, if anything (the default: nothing).
#[derive(Clone, Default)]
pub struct Diagnostics {
    /// Told of accepted gossip messages.
    pub observer: Option<Arc<dyn GossipObserver>>,
    /// Receives gossipsub's metrics (registered once, when the node starts).
    pub metrics: Option<Arc<Mutex<Registry>>>,
}

impl fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diagnostics")
            .field("observer", &self.observer)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}
