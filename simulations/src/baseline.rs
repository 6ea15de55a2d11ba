//! The baseline: the same messages on plain rust-libp2p gossipsub nodes —
//! no admission, no certificates, no end-to-end encryption or signatures of
//! ours, no storage, no sync — over the same shaped links and the same
//! connection graph the Baro nodes formed, so the report can show our
//! latency, bandwidth and CPU as ratios measured in the same run.
//!
//! Each baseline node is a libp2p swarm with stock gossipsub (default
//! configuration: signed messages, strict validation, D = 6) over the
//! in-process transport, noise and yamux. It replays the run's sends (same
//! sender, same offset, same size) and partitions; churn, revocations and
//! attacks have no baseline counterpart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade::Version;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, Transport, gossipsub, identity, noise, yamux};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use baro_node::net::diagnostics::Registry;
use baro_node::net::shaping;

use crate::links::Network;
use crate::progress::Progress;
use crate::report::{percentile, process_cpu_secs, process_rss_bytes};
use crate::trace::{Copies, hop_counts};

/// What the baseline replays.
#[derive(Clone, Debug)]
pub struct Replay {
    /// Node count (same indices as the run).
    pub nodes: usize,
    /// Connections the Baro nodes held when the traffic started (index pairs).
    pub edges: Vec<(usize, usize)>,
    /// Messages: (offset from the traffic start, sender).
    pub sends: Vec<(Duration, usize)>,
    /// Partitions: (offset, office, cut or healed).
    pub cuts: Vec<(Duration, usize, bool)>,
    /// Who should receive (the run's honest devices).
    pub recipients: Vec<usize>,
    /// Message size, bytes.
    pub bytes: usize,
}

/// The baseline's measured figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BaselineReport {
    /// Share of (message, recipient) pairs delivered.
    pub delivery: f64,
    /// Latency percentiles, send → received, ms.
    pub latency_p50_ms: f64,
    /// 95th percentile.
    pub latency_p95_ms: f64,
    /// 99th percentile.
    pub latency_p99_ms: f64,
    /// Every latency, sorted (for the CDF).
    #[serde(skip)]
    pub latency_cdf_ms: Vec<f64>,
    /// Hop count percentiles over (message, recipient) pairs.
    pub hops_p50: f64,
    /// 99th percentile.
    pub hops_p99: f64,
    /// Most hops.
    pub hops_max: f64,
    /// Copies received per message per node (1.0: no duplicates).
    pub copies_per_message: f64,
    /// Bytes on the wire per payload byte delivered to one recipient.
    pub wire_bytes_per_payload_byte: f64,
    /// Process CPU seconds during the traffic.
    pub cpu_secs: f64,
    /// That per message.
    pub cpu_ms_per_message: f64,
    /// Resident memory added per node, bytes.
    pub memory_per_node_bytes: u64,
}

enum Command {
    Dial(Multiaddr),
    Publish(Vec<u8>),
    MeshPeers(oneshot::Sender<usize>),
}

/// At an offset: a message to send (by seq) and/or an office to cut or heal.
type ReplayAction = (Duration, Option<usize>, Option<(usize, bool)>);

/// First copies: per node, message seq → (when, from).
type Arrivals = Arc<Mutex<Vec<HashMap<usize, (Instant, PeerId)>>>>;

fn transport(
    key: &identity::Keypair,
    model: Arc<dyn shaping::LinkModel>,
) -> Result<libp2p::core::transport::Boxed<(PeerId, libp2p::core::muxing::StreamMuxerBox)>> {
    Ok(MemoryTransport::default()
        .and_then(move |stream, endpoint| {
            let model = model.clone();
            async move { shaping::on_connect(stream, &endpoint, model) }
        })
        .upgrade(Version::V1)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .timeout(Duration::from_secs(20))
        .boxed())
}

/// Starts baseline node `index`; returns its command channel and peer id.
fn spawn_node(
    index: usize,
    network: &Arc<Network>,
    arrivals: &Arrivals,
    registry: &Arc<Mutex<Registry>>,
) -> Result<(mpsc::Sender<Command>, PeerId)> {
    let key = identity::Keypair::generate_ed25519();
    let peer_id = key.public().to_peer_id();
    let config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(256 * 1024)
        .build()
        .map_err(|e| anyhow::anyhow!("gossipsub configuration: {e}"))?;
    let mut behaviour: gossipsub::Behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
            .map_err(|e| anyhow::anyhow!("gossipsub: {e}"))?;
    if let Ok(mut registry) = registry.lock() {
        behaviour = behaviour.with_metrics(&mut registry, gossipsub::MetricsConfig::default());
    }
    let topic = gossipsub::IdentTopic::new("baseline");
    behaviour
        .subscribe(&topic)
        .map_err(|e| anyhow::anyhow!("subscribe: {e}"))?;
    let mut swarm = Swarm::new(
        transport(&key, network.node(index))?,
        behaviour,
        peer_id,
        libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(Duration::from_secs(3600)),
    );
    let address: Multiaddr = network.address(index).parse()?;
    swarm.listen_on(address).context("baseline listen")?;
    let (tx, mut rx) = mpsc::channel::<Command>(64);
    let arrivals = arrivals.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                command = rx.recv() => match command {
                    None => break,
                    Some(Command::Dial(address)) => {
                        let _ = swarm.dial(address);
                    }
                    Some(Command::Publish(data)) => {
                        let _ = swarm.behaviour_mut().publish(topic.clone(), data);
                    }
                    Some(Command::MeshPeers(reply)) => {
                        let _ = reply.send(swarm.behaviour().mesh_peers(&topic.hash()).count());
                    }
                },
                event = swarm.select_next_some() => {
                    if let SwarmEvent::Behaviour(gossipsub::Event::Message {
                        propagation_source,
                        message,
                        ..
                    }) = event
                        && let Some(seq) = std::str::from_utf8(&message.data)
                            .ok()
                            .and_then(crate::run::sequence)
                        && let Ok(mut seen) = arrivals.lock()
                    {
                        seen[index]
                            .entry(seq)
                            .or_insert((Instant::now(), propagation_source));
                    }
                }
            }
        }
    });
    Ok((tx, peer_id))
}

/// Runs the baseline on a fresh copy of `network` (same offices and links).
pub async fn run_baseline(
    network: &Network,
    replay: &Replay,
    progress: &Progress,
) -> Result<BaselineReport> {
    let network = Arc::new(network.fresh());
    let rss_before = process_rss_bytes();
    let arrivals: Arrivals = Arc::new(Mutex::new(vec![HashMap::new(); replay.nodes]));
    let mut nodes = Vec::with_capacity(replay.nodes);
    let mut registries = Vec::with_capacity(replay.nodes);
    let mut index_of = HashMap::new();
    for index in 0..replay.nodes {
        let registry = Arc::new(Mutex::new(Registry::default()));
        let (tx, peer) = spawn_node(index, &network, &arrivals, &registry)?;
        index_of.insert(peer, index);
        nodes.push(tx);
        registries.push(registry);
    }
    for &(a, b) in &replay.edges {
        let _ = nodes[a]
            .send(Command::Dial(network.address(b).parse()?))
            .await;
    }
    // Gossipsub builds its meshes on its heartbeat: wait until every node
    // has mesh peers (or 30 s).
    progress.phase("baseline: forming the mesh", replay.nodes as u64);
    let deadline = Instant::now() + Duration::from_secs(30);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (done, node) in nodes.iter().enumerate() {
        loop {
            let (reply, answer) = oneshot::channel();
            let _ = node.send(Command::MeshPeers(reply)).await;
            if answer.await.unwrap_or(0) > 0 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        progress.set(done as u64 + 1);
    }
    let rss_after = process_rss_bytes();

    let copies_before: Vec<Copies> = registries.iter().map(|r| Copies::read(r)).collect();
    let cpu_before = process_cpu_secs();
    let bytes_before = network.total_sent();
    progress.phase("baseline: sending", replay.sends.len() as u64);
    let mut actions: Vec<ReplayAction> = replay
        .sends
        .iter()
        .enumerate()
        .map(|(seq, (at, _))| (*at, Some(seq), None))
        .chain(
            replay
                .cuts
                .iter()
                .map(|(at, office, cut)| (*at, None, Some((*office, *cut)))),
        )
        .collect();
    actions.sort_by_key(|a| a.0);
    let start = Instant::now();
    let mut sent_at = vec![None; replay.sends.len()];
    for (at, send, cut) in actions {
        tokio::time::sleep_until((start + at).into()).await;
        if let Some((office, cut)) = cut {
            network.set_cut(office, cut);
        }
        if let Some(seq) = send {
            let sender = replay.sends[seq].1;
            sent_at[seq] = Some(Instant::now());
            let _ = nodes[sender]
                .send(Command::Publish(
                    crate::run::message_text(seq, replay.bytes).into_bytes(),
                ))
                .await;
            progress.set(seq as u64 + 1);
        }
    }
    tokio::time::sleep(crate::run::GOSSIP_SETTLE).await;
    let cpu_secs = process_cpu_secs() - cpu_before;
    let wire = network.total_sent() - bytes_before;
    let copies = registries
        .iter()
        .zip(&copies_before)
        .map(|(r, before)| Copies::read(r).since(*before))
        .fold(Copies::default(), Copies::plus);
    drop(nodes);

    let seen = arrivals.lock().map(|s| s.clone()).unwrap_or_default();
    let mut latencies = Vec::new();
    let mut hops = Vec::new();
    let mut expected = 0usize;
    for (seq, (_, sender)) in replay.sends.iter().enumerate() {
        let Some(sent) = sent_at[seq] else { continue };
        let parent: HashMap<usize, usize> = seen
            .iter()
            .enumerate()
            .filter_map(|(node, got)| Some((node, *index_of.get(&got.get(&seq)?.1)?)))
            .collect();
        let tree = hop_counts(&parent, *sender);
        for &r in replay.recipients.iter().filter(|r| **r != *sender) {
            expected += 1;
            if let Some((at, _)) = seen[r].get(&seq) {
                latencies.push(at.saturating_duration_since(sent).as_secs_f64() * 1000.0);
            }
            if let Some(h) = tree.get(&r) {
                hops.push(f64::from(*h));
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    hops.sort_by(f64::total_cmp);
    let payload =
        (replay.bytes * replay.sends.len() * replay.recipients.len().saturating_sub(1)) as f64;
    Ok(BaselineReport {
        delivery: latencies.len() as f64 / expected.max(1) as f64,
        latency_p50_ms: percentile(&latencies, 0.50),
        latency_p95_ms: percentile(&latencies, 0.95),
        latency_p99_ms: percentile(&latencies, 0.99),
        latency_cdf_ms: latencies,
        hops_p50: percentile(&hops, 0.50),
        hops_p99: percentile(&hops, 0.99),
        hops_max: percentile(&hops, 1.0),
        copies_per_message: copies.per_message(),
        wire_bytes_per_payload_byte: wire as f64 / payload.max(1.0),
        cpu_secs,
        cpu_ms_per_message: cpu_secs * 1000.0 / replay.sends.len().max(1) as f64,
        memory_per_node_bytes: rss_after.saturating_sub(rss_before) / replay.nodes.max(1) as u64,
    })
}
