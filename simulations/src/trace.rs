//! Where each copy of a message came from: every node's [`GossipObserver`]
//! records the peer that delivered the first copy of each gossip message,
//! and gossipsub's counters give the copies received with and without
//! duplicates. From these: hop counts (the delivery tree of each message)
//! and duplicate copies per message per node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use baro_node::net::GossipObserver;
use baro_node::net::diagnostics::Registry;
use libp2p::PeerId;

/// By message id: (node, the peer its first copy came from).
type FirstCopies = HashMap<Vec<u8>, Vec<(usize, PeerId)>>;

/// First copies seen by every node, by message id: (node, the peer it came
/// from). Recording starts when [`GossipTrace::start`] is called.
#[derive(Debug, Default)]
pub struct GossipTrace {
    recording: AtomicBool,
    first_copies: Mutex<FirstCopies>,
}

impl GossipTrace {
    /// Records from now on (setup traffic is left out).
    pub fn start(&self) {
        self.recording.store(true, Ordering::SeqCst);
    }

    /// The observer of node `index`.
    pub fn observer(self: &Arc<Self>, index: usize) -> Arc<dyn GossipObserver> {
        Arc::new(NodeObserver {
            index,
            trace: self.clone(),
        })
    }

    /// Records that `node` took the first copy of `id` from `from`.
    pub fn record(&self, id: &[u8], node: usize, from: PeerId) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(mut copies) = self.first_copies.lock() {
            copies.entry(id.to_vec()).or_default().push((node, from));
        }
    }

    /// Who delivered message `id` to whom: `parent[node]` is the node that
    /// passed it the first copy (by index, through `index_of`).
    pub fn parents(&self, id: &[u8], index_of: &HashMap<PeerId, usize>) -> HashMap<usize, usize> {
        let Ok(copies) = self.first_copies.lock() else {
            return HashMap::new();
        };
        copies
            .get(id)
            .map(|list| {
                list.iter()
                    .filter_map(|(node, from)| Some((*node, *index_of.get(from)?)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug)]
struct NodeObserver {
    index: usize,
    trace: Arc<GossipTrace>,
}

impl GossipObserver for NodeObserver {
    fn accepted(&self, id: &[u8], from: PeerId) {
        self.trace.record(id, self.index, from);
    }
}

/// Hops from `origin` to each node of the delivery tree `parent` (a node
/// whose chain of parents does not lead back to `origin` is left out).
pub fn hop_counts(parent: &HashMap<usize, usize>, origin: usize) -> HashMap<usize, u32> {
    let mut hops: HashMap<usize, u32> = HashMap::from([(origin, 0)]);
    for &start in parent.keys() {
        // Walk up until a node with a known count (or a dead end / loop).
        let mut path = Vec::new();
        let mut at = start;
        let known = loop {
            if let Some(&h) = hops.get(&at) {
                break Some(h);
            }
            if path.len() > parent.len() {
                break None;
            }
            path.push(at);
            match parent.get(&at) {
                Some(&up) => at = up,
                None => break None,
            }
        };
        if let Some(base) = known {
            for (depth, node) in path.iter().rev().enumerate() {
                hops.insert(*node, base + depth as u32 + 1);
            }
        }
    }
    hops.remove(&origin);
    hops
}

/// Gossip messages received by one node, as gossipsub counted them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Copies {
    /// Every copy, duplicates included.
    pub received: f64,
    /// First copies only.
    pub first: f64,
}

impl Copies {
    /// Reads the counters from a node's registry (summed over topics).
    pub fn read(registry: &Mutex<Registry>) -> Copies {
        let mut text = String::new();
        if let Ok(registry) = registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        }
        let mut copies = Copies::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(0.0);
            if name.contains("topic_msg_recv_counts_unfiltered") {
                copies.received += value;
            } else if name.contains("topic_msg_recv_counts") {
                copies.first += value;
            }
        }
        copies
    }

    /// `self - earlier`.
    pub fn since(self, earlier: Copies) -> Copies {
        Copies {
            received: self.received - earlier.received,
            first: self.first - earlier.first,
        }
    }

    /// `self + other`.
    pub fn plus(self, other: Copies) -> Copies {
        Copies {
            received: self.received + other.received,
            first: self.first + other.first,
        }
    }

    /// Copies received per first copy (1.0: no duplicates).
    pub fn per_message(self) -> f64 {
        if self.first > 0.0 {
            self.received / self.first
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_follow_the_delivery_tree() {
        // 0 → 1 → 2 → 3, 0 → 4, and 5 ← 6 (6 never got it from 0's tree).
        let parent = HashMap::from([(1, 0), (2, 1), (3, 2), (4, 0), (5, 6)]);
        let hops = hop_counts(&parent, 0);
        assert_eq!(hops.get(&1), Some(&1));
        assert_eq!(hops.get(&2), Some(&2));
        assert_eq!(hops.get(&3), Some(&3));
        assert_eq!(hops.get(&4), Some(&1));
        assert_eq!(hops.get(&5), None);
        assert_eq!(hops.get(&0), None);
        // A loop (impossible in gossip, but a trace is input) ends.
        let looped = HashMap::from([(1, 2), (2, 1)]);
        assert!(hop_counts(&looped, 0).is_empty());
    }

    #[test]
    fn copies_are_read_from_gossipsub_counters() {
        let mut registry = Registry::default();
        let family = prometheus_client::metrics::family::Family::<
            Vec<(String, String)>,
            prometheus_client::metrics::counter::Counter,
        >::default();
        registry.register(
            "topic_msg_recv_counts_unfiltered",
            "with duplicates",
            family.clone(),
        );
        let first = prometheus_client::metrics::family::Family::<
            Vec<(String, String)>,
            prometheus_client::metrics::counter::Counter,
        >::default();
        registry.register("topic_msg_recv_counts", "first copies", first.clone());
        for topic in ["a", "b"] {
            let label = vec![("hash".to_string(), topic.to_string())];
            family.get_or_create(&label).inc_by(6);
            first.get_or_create(&label).inc_by(2);
        }
        let copies = Copies::read(&Mutex::new(registry));
        assert_eq!(copies.received, 12.0);
        assert_eq!(copies.first, 4.0);
        assert_eq!(copies.per_message(), 3.0);
    }
}
