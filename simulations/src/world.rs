//! The simulated agency: real baro-node nodes (relays and officials'
//! devices, office by office) on shaped in-process links.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use baro_node::config::RelayConfig;
use baro_node::net::diagnostics::Registry;
use baro_node::net::{Diagnostics, TransportKind};
use baro_node::store::MemoryStore;
use baro_node::testing::TestAgency;
use baro_node::trust::Role;
use baro_node::{Credentials, Handle, Node, NodeBuilder, NodeConfig};

use crate::links::Network;
use crate::scenario::Scenario;
use crate::trace::{Copies, GossipTrace};
use libp2p::PeerId;

/// A node of the simulation.
#[derive(Debug)]
pub struct SimNode {
    /// The running node (`None` while it is off).
    pub node: Option<Node>,
    /// What it presents.
    pub credentials: Credentials,
    /// Where it keeps its data (kept while it is off).
    pub store: Arc<MemoryStore>,
    /// How it runs.
    pub config: NodeConfig,
    /// Its office.
    pub office: usize,
    /// Whether it is a relay (else an official's device).
    pub relay: bool,
    /// Its user id.
    pub user: String,
    /// Its libp2p identity.
    pub peer: PeerId,
    /// Its gossipsub counters (kept across restarts).
    pub metrics: Arc<Mutex<Registry>>,
}

/// Every node, and the network they share.
#[derive(Debug)]
pub struct World {
    /// Relays first, then devices, office by office.
    pub nodes: Vec<SimNode>,
    /// Links, partitions and byte counters.
    pub network: Arc<Network>,
    /// The agency (its clock and operator).
    pub agency: TestAgency,
    /// First copies of gossip messages, as every node took them.
    pub trace: Arc<GossipTrace>,
}

impl World {
    /// Starts every node of `scenario` on the current tokio runtime.
    pub fn start(scenario: &Scenario) -> Result<World> {
        let t = &scenario.topology;
        let mut agency = TestAgency::new(scenario.seed);
        // Relays first (indices 0..offices*relays), then devices.
        let mut plan = Vec::new();
        for office in 0..t.offices {
            for r in 0..t.relays_per_office {
                plan.push((office, true, format!("relay-{office}-{r}")));
            }
        }
        for office in 0..t.offices {
            for d in 0..t.devices_per_office {
                plan.push((office, false, format!("official-{office}-{d}")));
            }
        }
        let office_of: Vec<usize> = plan.iter().map(|(office, _, _)| *office).collect();
        let network = Arc::new(Network::new(
            office_of,
            t.offices,
            &scenario.links.lan,
            &scenario.links.wan,
            scenario.seed,
        ));
        let address = |index: usize| network.address(index);
        let relays_of = |office: usize| -> Vec<String> {
            (0..t.relays_per_office)
                .map(|r| address(office * t.relays_per_office + r))
                .collect()
        };
        let mut nodes = Vec::with_capacity(plan.len());
        for (index, (office, relay, user)) in plan.into_iter().enumerate() {
            let key = agency.key();
            let org = format!("MOIS/Office {office}");
            let role = if relay { Role::Relay } else { Role::Member };
            let chain = agency.certify(&key, &user, &org, role, 365);
            let bootstrap = if relay {
                // Each relay knows the first relay of every other office.
                (0..t.offices)
                    .filter(|o| *o != office)
                    .map(|o| address(o * t.relays_per_office))
                    .collect()
            } else {
                relays_of(office)
            };
            let config = NodeConfig {
                listen: vec![address(index)],
                bootstrap,
                mdns: false,
                discovery_interval_secs: 5,
                admission_timeout_secs: 10,
                // Reconciliation is driven by the run (after the traffic),
                // so gossip delivery is measured on its own.
                sync_interval_secs: 3600,
                relay: relay.then(RelayConfig::default),
                max_peers: t.max_peers.max(1),
                ..NodeConfig::default()
            };
            let credentials = agency.credentials(key, chain);
            let peer = credentials
                .key
                .device_id()
                .peer_id()
                .context("a device key that is no PeerId")?;
            nodes.push(SimNode {
                node: None,
                credentials,
                peer,
                metrics: Arc::new(Mutex::new(Registry::default())),
                store: Arc::new(MemoryStore::new()),
                config,
                office,
                relay,
                user,
            });
        }
        let mut world = World {
            nodes,
            network,
            agency,
            trace: Arc::new(GossipTrace::default()),
        };
        for index in 0..world.nodes.len() {
            world.start_node(index)?;
        }
        Ok(world)
    }

    /// Starts node `index` (again) on its store.
    pub fn start_node(&mut self, index: usize) -> Result<()> {
        let sim = &mut self.nodes[index];
        if sim.node.is_some() {
            return Ok(());
        }
        let node = NodeBuilder::new(sim.credentials.clone())
            .config(sim.config.clone())
            .transport(TransportKind::Shaped(self.network.node(index)))
            .clock(Arc::new(self.agency.clock.clone()))
            .store(sim.store.clone())
            .diagnostics(Diagnostics {
                observer: Some(self.trace.observer(index)),
                metrics: Some(sim.metrics.clone()),
            })
            .spawn()
            .with_context(|| format!("starting {}", sim.user))?;
        sim.node = Some(node);
        Ok(())
    }

    /// Stops node `index` (it keeps its store).
    pub async fn stop_node(&mut self, index: usize) {
        if let Some(node) = self.nodes[index].node.take() {
            node.shutdown().await;
        }
    }

    /// A handle to node `index`, if it runs.
    pub fn handle(&self, index: usize) -> Option<Handle> {
        self.nodes[index].node.as_ref().map(Node::handle)
    }

    /// The officials' devices (not relays), with their indices.
    pub fn devices(&self) -> impl Iterator<Item = (usize, &SimNode)> {
        self.nodes.iter().enumerate().filter(|(_, n)| !n.relay)
    }

    /// Node indices by libp2p identity.
    pub fn index_by_peer(&self) -> HashMap<PeerId, usize> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.peer, i))
            .collect()
    }

    /// The connections between running nodes now, as index pairs (each once).
    pub async fn edges(&self) -> Vec<(usize, usize)> {
        let index_of = self.index_by_peer();
        let asks = (0..self.nodes.len()).filter_map(|index| {
            let handle = self.handle(index)?;
            Some(async move { (index, handle.peers().await.unwrap_or_default()) })
        });
        let mut edges = Vec::new();
        for (index, peers) in futures::future::join_all(asks).await {
            for peer in peers {
                if let Some(&other) = peer.device.peer_id().as_ref().and_then(|p| index_of.get(p))
                    && index < other
                {
                    edges.push((index, other));
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        edges
    }

    /// Asks every running node to reconcile with its peers now, all at once.
    pub async fn sync_all(&self) {
        let asks = (0..self.nodes.len()).filter_map(|index| {
            let handle = self.handle(index)?;
            Some(async move {
                let _ = handle.sync_now().await;
            })
        });
        futures::future::join_all(asks).await;
    }

    /// Every node's gossipsub counters now, by index.
    pub fn copies(&self) -> Vec<Copies> {
        self.nodes
            .iter()
            .map(|n| Copies::read(&n.metrics))
            .collect()
    }

    /// Stops every node, all at once.
    pub async fn stop(self) {
        let stops = self
            .nodes
            .into_iter()
            .filter_map(|sim| sim.node)
            .map(Node::shutdown);
        futures::future::join_all(stops).await;
    }
}
