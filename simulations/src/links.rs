//! The simulated network: which office each node is in, the LAN and WAN
//! link models, partitions that cut an office off, and the bytes every node
//! sent and received. Each node sees it through [`NodeLinks`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use baro_node::net::{LinkModel, LinkParams};

use crate::scenario::Link;

/// Memory ports are process-wide: each network takes its own block, so
/// runs in one process (tests) do not collide. Node `i` listens on
/// `base + i`.
static NEXT_BASE: AtomicU64 = AtomicU64::new(40_000);

/// The whole simulated network.
#[derive(Debug)]
pub struct Network {
    office_of: Vec<usize>,
    lan: LinkParams,
    wan: LinkParams,
    cut: Vec<AtomicBool>,
    sent: Vec<AtomicU64>,
    received: Vec<AtomicU64>,
    seed: u64,
    base: u64,
}

fn params(link: &Link) -> LinkParams {
    LinkParams {
        latency: Duration::from_millis(link.latency_ms),
        jitter: Duration::from_millis(link.jitter_ms),
        loss: link.loss,
        bytes_per_sec: link.bandwidth_kbps * 1000 / 8,
    }
}

impl Network {
    /// A network of nodes in `office_of` (by node index) with these links.
    pub fn new(office_of: Vec<usize>, offices: usize, lan: &Link, wan: &Link, seed: u64) -> Self {
        let n = office_of.len();
        let base = NEXT_BASE.fetch_add(n as u64 + 16, Ordering::SeqCst);
        Network {
            base,
            office_of,
            lan: params(lan),
            wan: params(wan),
            cut: (0..offices).map(|_| AtomicBool::new(false)).collect(),
            sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
            received: (0..n).map(|_| AtomicU64::new(0)).collect(),
            seed,
        }
    }

    /// A network like this one (same offices, links and seed) on its own
    /// block of ports, with nothing cut and nothing counted.
    pub fn fresh(&self) -> Network {
        let base = NEXT_BASE.fetch_add(self.office_of.len() as u64 + 16, Ordering::SeqCst);
        Network {
            base,
            office_of: self.office_of.clone(),
            lan: self.lan,
            wan: self.wan,
            cut: self.cut.iter().map(|_| AtomicBool::new(false)).collect(),
            sent: self.sent.iter().map(|_| AtomicU64::new(0)).collect(),
            received: self.received.iter().map(|_| AtomicU64::new(0)).collect(),
            seed: self.seed,
        }
    }

    /// Cuts `office` off from every other office, or heals it.
    pub fn set_cut(&self, office: usize, cut: bool) {
        if let Some(flag) = self.cut.get(office) {
            flag.store(cut, Ordering::SeqCst);
        }
    }

    /// Bytes sent on the wire by every node, in all.
    pub fn total_sent(&self) -> u64 {
        self.sent.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Bytes node `index` sent and received so far.
    pub fn node_bytes(&self, index: usize) -> u64 {
        let load = |c: &[AtomicU64]| c.get(index).map_or(0, |c| c.load(Ordering::Relaxed));
        load(&self.sent) + load(&self.received)
    }

    /// The memory address node `index` listens on.
    pub fn address(&self, index: usize) -> String {
        format!("/memory/{}", self.base + index as u64)
    }

    /// The link model of node `index`.
    pub fn node(self: &Arc<Self>, index: usize) -> Arc<dyn LinkModel> {
        Arc::new(NodeLinks {
            me: index,
            network: self.clone(),
        })
    }

    fn index(&self, port: u64) -> Option<usize> {
        port.checked_sub(self.base)
            .map(|i| i as usize)
            .filter(|i| *i < self.office_of.len())
    }
}

/// One node's view of the network.
#[derive(Debug)]
pub struct NodeLinks {
    me: usize,
    network: Arc<Network>,
}

impl LinkModel for NodeLinks {
    fn link(&self, remote: u64) -> Option<LinkParams> {
        let net = &self.network;
        let Some(other) = net.index(remote) else {
            return Some(net.lan);
        };
        let (a, b) = (net.office_of[self.me], net.office_of[other]);
        if a == b {
            return Some(net.lan);
        }
        if net.cut[a].load(Ordering::SeqCst) || net.cut[b].load(Ordering::SeqCst) {
            return None;
        }
        Some(net.wan)
    }

    fn count(&self, remote: u64, bytes: usize, outbound: bool) {
        let net = &self.network;
        let other = net.index(remote);
        let (from, to) = if outbound {
            (Some(self.me), other)
        } else {
            (other, Some(self.me))
        };
        if let Some(from) = from {
            net.sent[from].fetch_add(bytes as u64, Ordering::Relaxed);
        }
        if let Some(to) = to {
            net.received[to].fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    fn seed(&self, remote: u64) -> u64 {
        self.network.seed ^ ((self.me as u64) << 32) ^ remote
    }
}
