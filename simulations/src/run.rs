//! Runs a scenario and measures it: start every node, wait for the mesh and
//! the agency room's key, send the traffic on a seeded schedule while
//! partitions come and go (gossip alone), then let every node reconcile,
//! and report delivery, latency, bandwidth, memory and CPU.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use baro_node::NodeEvent;
use baro_node::identity::{Entropy, SeededEntropy};

use crate::report::{Report, percentile, process_cpu_secs, process_rss_bytes};
use crate::scenario::Scenario;
use crate::world::World;

/// The room every official is in: the agency's top department.
pub const ROOM: &str = "MOIS";
/// Longest wait for the mesh and keys before giving up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long gossip gets after the last message before it is judged.
const GOSSIP_SETTLE: Duration = Duration::from_secs(3);
/// Reconciliation rounds after the traffic, at most.
const SYNC_ROUNDS: usize = 5;

/// When each device saw each message (by sequence number).
type Arrivals = Arc<Mutex<Vec<HashMap<usize, Instant>>>>;

/// Progress lines on stderr, or nothing.
pub type Progress = Box<dyn Fn(&str) + Send>;

/// Runs `scenario` on the current tokio runtime.
pub async fn run(scenario: &Scenario, progress: Progress) -> Result<Report> {
    scenario.check()?;
    let rss_before = process_rss_bytes();
    let world = World::start(scenario)?;
    let nodes = world.nodes.len();
    progress(&format!(
        "{nodes} nodes started; waiting for the mesh and room keys"
    ));
    let setup = Instant::now();
    wait_ready(&world).await?;
    let setup_secs = setup.elapsed().as_secs_f64();
    let rss_after = process_rss_bytes();
    progress(&format!("ready after {setup_secs:.1} s; sending"));

    let devices: Vec<usize> = world.devices().map(|(i, _)| i).collect();
    let arrivals: Arrivals = Arc::new(Mutex::new(vec![HashMap::new(); world.nodes.len()]));
    let mut listeners = Vec::new();
    for &index in &devices {
        let mut events = world.nodes[index].node.handle().events();
        let arrivals = arrivals.clone();
        listeners.push(tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if let NodeEvent::Message(message) = event
                    && let Some(seq) = sequence(&message.text)
                    && let Ok(mut all) = arrivals.lock()
                {
                    all[index].entry(seq).or_insert_with(Instant::now);
                }
            }
        }));
    }

    let cpu_before = process_cpu_secs();
    let bytes_before = world.network.total_sent();
    let mut rng = SeededEntropy::new(scenario.seed ^ 0x5eed);
    let gap = Duration::from_secs_f64(60.0 / scenario.traffic.per_minute);
    let start = Instant::now();
    let mut sent: Vec<(usize, Instant)> = Vec::with_capacity(scenario.traffic.messages);
    let mut partitions: Vec<(Duration, usize, bool)> = scenario
        .partitions
        .iter()
        .flat_map(|p| {
            [
                (Duration::from_secs_f64(p.at_secs), p.office, true),
                (
                    Duration::from_secs_f64(p.at_secs + p.for_secs),
                    p.office,
                    false,
                ),
            ]
        })
        .collect();
    partitions.sort_by_key(|(at, _, _)| *at);
    let mut partitions = partitions.into_iter().peekable();
    for seq in 0..scenario.traffic.messages {
        let due = start + gap * seq as u32;
        while let Some((at, office, cut)) = partitions.next_if(|(at, _, _)| start + *at <= due) {
            tokio::time::sleep_until((start + at).into()).await;
            world.network.set_cut(office, cut);
            progress(&format!(
                "office {office} {}",
                if cut { "cut off" } else { "reconnected" }
            ));
        }
        tokio::time::sleep_until(due.into()).await;
        let pick = u64::from_le_bytes(rng.array()) as usize % devices.len();
        let sender = devices[pick];
        let text = message_text(seq, scenario.traffic.bytes);
        let at = Instant::now();
        if let Err(e) = world.nodes[sender].node.handle().send(ROOM, &text).await {
            progress(&format!("message {seq} not sent: {e}"));
        }
        sent.push((sender, at));
        if (seq + 1) % 100 == 0 {
            progress(&format!(
                "{} of {} messages sent",
                seq + 1,
                scenario.traffic.messages
            ));
        }
    }
    for (at, office, cut) in partitions {
        tokio::time::sleep_until((start + at).into()).await;
        world.network.set_cut(office, cut);
    }
    tokio::time::sleep(GOSSIP_SETTLE).await;
    let cpu_gossip = process_cpu_secs() - cpu_before;
    let gossip_bytes = world.network.total_sent() - bytes_before;
    let gossip = snapshot(&arrivals, &devices, &sent);
    progress(&format!(
        "gossip alone delivered {:.2}%; reconciling",
        gossip.ratio * 100.0
    ));

    let sync_start = Instant::now();
    let mut after = gossip.clone();
    for round in 0..SYNC_ROUNDS {
        if after.ratio >= 1.0 {
            break;
        }
        for sim in &world.nodes {
            let _ = sim.node.handle().sync_now().await;
        }
        tokio::time::sleep(Duration::from_secs(scenario.sync_interval_secs)).await;
        after = snapshot(&arrivals, &devices, &sent);
        progress(&format!(
            "after sync round {}: {:.2}%",
            round + 1,
            after.ratio * 100.0
        ));
    }
    let sync_secs = sync_start.elapsed().as_secs_f64();
    let total_bytes = world.network.total_sent() - bytes_before;
    let payload = (scenario.traffic.bytes * sent.len() * (devices.len() - 1)) as f64;
    for listener in listeners {
        listener.abort();
    }
    let report = Report {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        nodes,
        devices: devices.len(),
        relays: nodes - devices.len(),
        messages: sent.len(),
        setup_secs,
        delivery_gossip: gossip.ratio,
        delivery_after_sync: after.ratio,
        latency_p50_ms: percentile(&gossip.latencies_ms, 0.50),
        latency_p95_ms: percentile(&gossip.latencies_ms, 0.95),
        latency_p99_ms: percentile(&gossip.latencies_ms, 0.99),
        latency_max_ms: percentile(&gossip.latencies_ms, 1.0),
        latency_cdf_ms: gossip.latencies_ms.clone(),
        wire_bytes_per_payload_byte_gossip: gossip_bytes as f64 / payload.max(1.0),
        wire_bytes_per_payload_byte_total: total_bytes as f64 / payload.max(1.0),
        sync_secs,
        memory_per_node_bytes: rss_after.saturating_sub(rss_before) / nodes as u64,
        cpu_secs_traffic: cpu_gossip,
        cpu_ms_per_message: cpu_gossip * 1000.0 / sent.len().max(1) as f64,
    };
    world.stop().await;
    Ok(report)
}

/// Waits until every node has a peer, the gossip meshes formed, and every
/// device read the room's opening message and can send in [`ROOM`].
async fn wait_ready(world: &World) -> Result<()> {
    const OPENING: &str = "sim: opening the room";
    let deadline = Instant::now() + SETUP_TIMEOUT;
    for sim in &world.nodes {
        while sim
            .node
            .handle()
            .peers()
            .await
            .map(|p| p.is_empty())
            .unwrap_or(true)
        {
            if Instant::now() >= deadline {
                bail!("{} never found a peer", sim.user);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Gossipsub builds its topic meshes on its heartbeat (1 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // One device creates the room's first key; grants reach the others.
    if let Some((_, first)) = world.devices().next() {
        loop {
            match first.node.handle().send(ROOM, OPENING).await {
                Ok(_) => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => bail!("the first device cannot open the room: {e}"),
            }
        }
    }
    for (index, sim) in world.devices() {
        loop {
            let handle = sim.node.handle();
            let can_send = handle
                .rooms()
                .await
                .map(|rooms| rooms.iter().any(|r| r.name == ROOM && r.can_send))
                .unwrap_or(false);
            let opened = index == world.devices().next().map_or(0, |(i, _)| i)
                || handle
                    .history(ROOM, 5)
                    .await
                    .map(|h| h.iter().any(|m| m.text == OPENING))
                    .unwrap_or(false);
            if can_send && opened {
                break;
            }
            if Instant::now() >= deadline {
                bail!("{} never got the key of room {ROOM}", sim.user);
            }
            if !opened {
                let _ = handle.sync_now().await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// The text of message `seq`, padded to `bytes`.
fn message_text(seq: usize, bytes: usize) -> String {
    let mut text = format!("sim#{seq}#");
    while text.len() < bytes {
        text.push('.');
    }
    text
}

fn sequence(text: &str) -> Option<usize> {
    text.strip_prefix("sim#")?.split('#').next()?.parse().ok()
}

/// Delivery at one moment.
#[derive(Clone, Debug)]
struct Delivery {
    ratio: f64,
    latencies_ms: Vec<f64>,
}

fn snapshot(arrivals: &Arrivals, devices: &[usize], sent: &[(usize, Instant)]) -> Delivery {
    let Ok(all) = arrivals.lock() else {
        return Delivery {
            ratio: 0.0,
            latencies_ms: Vec::new(),
        };
    };
    let mut expected = 0usize;
    let mut latencies = Vec::new();
    for (seq, (sender, at)) in sent.iter().enumerate() {
        for &device in devices {
            if device == *sender {
                continue;
            }
            expected += 1;
            if let Some(got) = all[device].get(&seq) {
                latencies.push(got.saturating_duration_since(*at).as_secs_f64() * 1000.0);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    Delivery {
        ratio: latencies.len() as f64 / expected.max(1) as f64,
        latencies_ms: latencies,
    }
}
