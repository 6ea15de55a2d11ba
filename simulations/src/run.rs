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
use baro_node::trust::RevocationScope;
use tokio::sync::broadcast;

use crate::baseline::{Replay, run_baseline};
use crate::progress::Progress;
use crate::report::{
    Report, RevocationResult, Series, Targets, percentile, process_cpu_secs, process_rss_bytes,
};
use crate::scenario::Scenario;
use crate::trace::{Copies, hop_counts};
use crate::world::World;

/// The room every official is in: the agency's top department.
pub const ROOM: &str = "MOIS";
/// The reason of the revocations the run issues (anything else is forged).
const REVOCATION_REASON: &str = "lost during the simulation";
/// Longest wait for the mesh and keys before giving up: two minutes, or a
/// second per node for large runs.
fn setup_timeout(nodes: usize) -> Duration {
    Duration::from_secs(120.max(nodes as u64))
}
/// How long gossip gets after the last message before it is judged.
pub(crate) const GOSSIP_SETTLE: Duration = Duration::from_secs(3);
/// How long the idle CPU load is measured before the traffic.
const IDLE_WINDOW: Duration = Duration::from_secs(3);
/// Reconciliation rounds after the traffic, at most.
const SYNC_ROUNDS: usize = 10;

/// What every node was seen doing, by node index.
#[derive(Debug, Default)]
struct Observed {
    /// When each device showed each message (by sequence number).
    arrivals: Vec<HashMap<usize, Instant>>,
    /// When each node took each revocation (by hex id).
    revoked: Vec<HashMap<String, Instant>>,
    /// When a node wiped itself.
    wiped: Vec<Option<Instant>>,
    /// Messages and revocations a node took that the run did not make.
    foreign: Vec<usize>,
    /// Node events the run's listener missed because it fell behind.
    missed_events: u64,
}

type Shared = Arc<Mutex<Observed>>;

/// How to run a scenario.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Also run the plain-gossipsub baseline on the same links and
    /// connection graph, and report ratios to it.
    pub baseline: bool,
}

/// Something the run does at a given time after the traffic starts.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send message number `0`.
    Send(usize),
    /// Node `0` sends a forgery.
    Forge(usize),
    /// Office `0` is cut off (`true`) or healed (`false`).
    Cut(usize, bool),
    /// Node `0` goes offline.
    Off(usize),
    /// Node `0` comes back.
    On(usize),
    /// Revocation number `0` is issued.
    Revoke(usize),
}

/// Records what node `index` does from now on (until it stops).
fn observe(world: &World, index: usize, shared: &Shared) -> Option<tokio::task::JoinHandle<()>> {
    let mut events = world.handle(index)?.events();
    let shared = shared.clone();
    Some(tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                // A listener that fell behind lost some events, not the
                // rest of the run (it used to stop here, and a node's later
                // deliveries counted as lost).
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    if let Ok(mut seen) = shared.lock() {
                        seen.missed_events += missed;
                    }
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Ok(mut seen) = shared.lock() else { return };
            let now = Instant::now();
            match event {
                NodeEvent::Message(message) => match sequence(&message.text) {
                    Some(seq) => {
                        seen.arrivals[index].entry(seq).or_insert(now);
                    }
                    None if !message.text.starts_with("sim:") => seen.foreign[index] += 1,
                    None => {}
                },
                NodeEvent::Revoked(view) => {
                    if view.reason != REVOCATION_REASON {
                        seen.foreign[index] += 1;
                    }
                    seen.revoked[index].entry(view.id).or_insert(now);
                }
                NodeEvent::Wiped { .. } => seen.wiped[index] = Some(now),
                _ => {}
            }
        }
    }))
}

/// Runs `scenario` on the current tokio runtime.
pub async fn run(scenario: &Scenario, options: &Options, progress: &Progress) -> Result<Report> {
    scenario.check()?;
    let rss_before = process_rss_bytes();
    let mut world = World::start(scenario)?;
    let nodes = world.nodes.len();
    progress.note(&format!(
        "{nodes} nodes started; waiting for the mesh and room keys"
    ));
    let setup = Instant::now();
    let unsettled = wait_ready(&world, scenario.sync_interval_secs, progress).await?;
    let setup_secs = setup.elapsed().as_secs_f64();
    let rss_after = process_rss_bytes();
    let setup_bytes = world.network.total_sent();
    // How busy the nodes are with nothing to send: above the cores this
    // machine has, the run measures a saturated simulator, not the network.
    let cpu_idle_start = process_cpu_secs();
    tokio::time::sleep(IDLE_WINDOW).await;
    let cpu_idle_cores = (process_cpu_secs() - cpu_idle_start) / IDLE_WINDOW.as_secs_f64();
    progress.note(&format!(
        "ready after {setup_secs:.1} s ({cpu_idle_cores:.2} cores busy while idle); sending"
    ));
    let edges = world.edges().await;
    let mut degree = vec![0usize; nodes];
    for &(a, b) in &edges {
        degree[a] += 1;
        degree[b] += 1;
    }
    let peers_per_node = (
        2.0 * edges.len() as f64 / nodes.max(1) as f64,
        degree.iter().copied().max().unwrap_or(0),
    );

    let shared: Shared = Arc::new(Mutex::new(Observed {
        arrivals: vec![HashMap::new(); nodes],
        revoked: vec![HashMap::new(); nodes],
        wiped: vec![None; nodes],
        foreign: vec![0; nodes],
        missed_events: 0,
    }));
    let mut listeners: Vec<_> = (0..nodes)
        .filter_map(|i| observe(&world, i, &shared))
        .collect();
    let devices: Vec<usize> = world.devices().map(|(i, _)| i).collect();
    let t = &scenario.topology;
    let targets: Vec<usize> = scenario
        .revocations
        .iter()
        .map(|r| t.offices * t.relays_per_office + r.office * t.devices_per_office + r.device)
        .collect();
    let mut rng = SeededEntropy::new(scenario.seed ^ 0x5eed);
    // Misbehaving devices: a seeded pick among those not revoked.
    let mut pool: Vec<usize> = devices
        .iter()
        .copied()
        .filter(|d| !targets.contains(d))
        .collect();
    let attacker_count = scenario
        .attack
        .as_ref()
        .map_or(0, |a| (a.fraction * pool.len() as f64).round() as usize);
    let mut attackers = Vec::new();
    for _ in 0..attacker_count.min(pool.len().saturating_sub(2)) {
        let pick = u64::from_le_bytes(rng.array()) as usize % pool.len();
        attackers.push(pool.swap_remove(pick));
    }
    let recipients: Vec<usize> = pool;
    let schedule = schedule(scenario, &recipients, &targets, &attackers, &mut rng);
    let mut forger = crate::attack::Forger::new(&world, scenario.seed);
    let mut forgeries_sent = 0usize;

    let replay_cuts: Vec<(Duration, usize, bool)> = schedule
        .iter()
        .filter_map(|(at, action)| match action {
            Action::Cut(office, cut) => Some((*at, *office, *cut)),
            _ => None,
        })
        .collect();
    world.trace.start();
    let copies_before = world.copies();
    let cpu_before = process_cpu_secs();
    let bytes_before = world.network.total_sent();
    let node_bytes_before: Vec<u64> = (0..nodes).map(|i| world.network.node_bytes(i)).collect();
    let start = Instant::now();
    let mut sent: Vec<(usize, Instant)> = Vec::with_capacity(scenario.traffic.messages);
    let mut sent_ids: Vec<Option<Vec<u8>>> = Vec::with_capacity(scenario.traffic.messages);
    let mut sent_offsets: Vec<(Duration, usize)> = Vec::with_capacity(scenario.traffic.messages);
    progress.phase("sending", scenario.traffic.messages as u64);
    let mut off: Vec<bool> = vec![false; nodes];
    let mut revocations: Vec<(usize, Instant, String, Option<Instant>)> = Vec::new();
    // Each cut: the office, when it began, when it healed (if it did).
    let mut cuts: Vec<(usize, Instant, Option<Instant>)> = Vec::new();
    for (at, action) in schedule {
        tokio::time::sleep_until((start + at).into()).await;
        match action {
            Action::Send(seq) => {
                // A seeded pick among the officials running now.
                let running: Vec<usize> = recipients.iter().copied().filter(|d| !off[*d]).collect();
                let pick = u64::from_le_bytes(rng.array()) as usize % running.len().max(1);
                let Some(&sender) = running.get(pick) else {
                    continue;
                };
                let text = message_text(seq, scenario.traffic.bytes);
                let now = Instant::now();
                let mut id = None;
                if let Some(handle) = world.handle(sender) {
                    // Right after a key rotation the new key may still be on
                    // its way to the sender: it retries, as a user would.
                    let mut tries = 0;
                    loop {
                        match handle.send(ROOM, &text).await {
                            Ok(done) => {
                                id = hex::decode(&done.id).ok();
                                break;
                            }
                            Err(e) => {
                                tries += 1;
                                if tries == 20 {
                                    progress.note(&format!("message {seq} not sent: {e}"));
                                    break;
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                }
                sent.push((sender, now));
                sent_ids.push(id);
                sent_offsets.push((now.saturating_duration_since(start), sender));
                progress.set(seq as u64 + 1);
            }
            Action::Forge(attacker) => {
                if let Some(handle) = world.handle(attacker) {
                    forgeries_sent += forger.forge(&world, attacker, &handle, &recipients).await;
                }
            }
            Action::Cut(office, cut) => {
                world.network.set_cut(office, cut);
                if cut {
                    cuts.push((office, Instant::now(), None));
                } else if let Some(open) = cuts
                    .iter_mut()
                    .rev()
                    .find(|c| c.0 == office && c.2.is_none())
                {
                    open.2 = Some(Instant::now());
                }
                progress.note(&format!(
                    "office {office} {}",
                    if cut { "cut off" } else { "reconnected" }
                ));
            }
            Action::Off(index) => {
                off[index] = true;
                world.stop_node(index).await;
            }
            Action::On(index) => {
                off[index] = false;
                world.start_node(index)?;
                listeners.extend(observe(&world, index, &shared));
                if let Some(entry) = revocations.iter_mut().find(|r| r.0 == index) {
                    entry.3 = Some(Instant::now());
                }
            }
            Action::Revoke(r) => {
                let target = targets[r];
                let bytes = world.agency.revocation(
                    &world.nodes[target].credentials.chain,
                    RevocationScope::Device,
                    REVOCATION_REASON,
                    true,
                );
                let id = hex::encode(blake3::hash(&bytes).as_bytes());
                // The operator's tools hand it to the target office's relay.
                let relay = scenario.revocations[r].office * t.relays_per_office;
                let issued = Instant::now();
                match world.handle(relay) {
                    Some(handle) => {
                        if let Err(e) = handle.submit_revocation(bytes).await {
                            progress.note(&format!("revocation not taken: {e}"));
                        }
                    }
                    None => progress.note("the relay is off; revocation not issued"),
                }
                progress.note(&format!("device {} revoked", world.nodes[target].user));
                revocations.push((target, issued, id, None));
            }
        }
    }
    tokio::time::sleep(GOSSIP_SETTLE).await;
    let cpu_gossip = process_cpu_secs() - cpu_before;
    let gossip_bytes = world.network.total_sent() - bytes_before;
    let traffic_bytes: Vec<u64> = (0..nodes)
        .map(|i| world.network.node_bytes(i) - node_bytes_before[i])
        .collect();
    let mean_bytes = |relays: bool| {
        let chosen: Vec<u64> = (0..nodes)
            .filter(|i| world.nodes[*i].relay == relays)
            .map(|i| traffic_bytes[i])
            .collect();
        chosen.iter().sum::<u64>() as f64 / chosen.len().max(1) as f64
    };
    let (device_bytes, relay_bytes) = (mean_bytes(false), mean_bytes(true));
    let copies = world
        .copies()
        .into_iter()
        .zip(&copies_before)
        .map(|(now, before)| now.since(*before))
        .fold(Copies::default(), Copies::plus);
    let gossip = snapshot(&shared, &recipients, &sent);
    let (sent_across_cut, crossed_during_cut) =
        across_cuts(&world, &shared, &recipients, &sent, &cuts);
    progress.note(&format!(
        "gossip alone delivered {:.2}%; reconciling",
        gossip.ratio * 100.0
    ));
    let hops = hops(&world, &sent, &sent_ids, &recipients);

    let sync_start = Instant::now();
    let mut after = gossip.clone();
    progress.phase("reconciling (rounds)", SYNC_ROUNDS as u64);
    for round in 0..SYNC_ROUNDS {
        let revocations_done = revocations
            .iter()
            .all(|(_, _, id, _)| converged(&shared, &world, &targets, id).is_some());
        let wipes_done = revocations.iter().all(|(target, ..)| {
            shared
                .lock()
                .map(|s| s.wiped[*target].is_some())
                .unwrap_or(true)
        });
        if after.ratio >= 1.0 && revocations_done && wipes_done {
            break;
        }
        world.sync_all().await;
        tokio::time::sleep(Duration::from_secs(scenario.sync_interval_secs)).await;
        after = snapshot(&shared, &recipients, &sent);
        progress.set(round as u64 + 1);
        progress.note(&format!(
            "after sync round {}: {:.2}%",
            round + 1,
            after.ratio * 100.0
        ));
    }
    let sync_secs = sync_start.elapsed().as_secs_f64();
    let total_bytes = world.network.total_sent() - bytes_before;
    let payload = (scenario.traffic.bytes * sent.len() * recipients.len().saturating_sub(1)) as f64;
    let missing_after_gossip =
        (after.delivered.saturating_sub(gossip.delivered) * scenario.traffic.bytes) as f64;
    let delivery_over_time = delivery_over_time(&shared, &recipients, &sent, start);
    let revocation_curves = revocation_curves(&shared, &world, &targets, &revocations);
    let revocation_results = revocations
        .iter()
        .map(|(target, issued, id, returned)| {
            let converged_at = converged(&shared, &world, &targets, id);
            let wiped = shared.lock().ok().and_then(|s| s.wiped[*target]);
            RevocationResult {
                device: world.nodes[*target].user.clone(),
                offline: returned.is_some(),
                convergence_ms: converged_at.map(|at| ms(at.saturating_duration_since(*issued))),
                wipe_ms: wiped
                    .map(|at| ms(at.saturating_duration_since(returned.unwrap_or(*issued)))),
            }
        })
        .collect();
    for listener in listeners {
        listener.abort();
    }
    let devices_count = devices.len();
    let network = world.network.clone();
    world.stop().await;
    let baseline = if options.baseline {
        progress.note("baseline: plain gossipsub on the same links and connections");
        let replay = Replay {
            nodes,
            edges,
            sends: sent_offsets,
            cuts: replay_cuts,
            recipients: recipients.clone(),
            bytes: scenario.traffic.bytes,
        };
        Some(run_baseline(&network, &replay, progress).await?)
    } else {
        None
    };
    progress.finish();
    let n = nodes as f64;
    let d = 6.0f64;
    let report = Report {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        nodes,
        devices: devices_count,
        relays: nodes - devices_count,
        messages: sent.len(),
        setup_secs,
        setup_bytes_per_node: setup_bytes as f64 / nodes as f64,
        cpu_idle_cores,
        peers_per_node,
        unsettled,
        traffic_bytes_per_device: device_bytes,
        traffic_bytes_per_relay: relay_bytes,
        delivery_gossip: gossip.ratio,
        delivery_after_sync: after.ratio,
        latency_p50_ms: percentile(&gossip.latencies_ms, 0.50),
        latency_p95_ms: percentile(&gossip.latencies_ms, 0.95),
        latency_p99_ms: percentile(&gossip.latencies_ms, 0.99),
        latency_max_ms: percentile(&gossip.latencies_ms, 1.0),
        latency_cdf_ms: gossip.latencies_ms.clone(),
        hops_p50: percentile(&hops, 0.50),
        hops_p95: percentile(&hops, 0.95),
        hops_p99: percentile(&hops, 0.99),
        hops_max: percentile(&hops, 1.0),
        copies_per_message: copies.per_message(),
        sync_bytes_per_missing_byte: (missing_after_gossip > 0.0)
            .then(|| (total_bytes - gossip_bytes) as f64 / missing_after_gossip),
        wire_bytes_per_payload_byte_gossip: gossip_bytes as f64 / payload.max(1.0),
        wire_bytes_per_payload_byte_total: total_bytes as f64 / payload.max(1.0),
        sync_secs,
        memory_per_node_bytes: rss_after.saturating_sub(rss_before) / nodes as u64,
        cpu_secs_traffic: cpu_gossip,
        cpu_ms_per_message: cpu_gossip * 1000.0 / sent.len().max(1) as f64,
        churned: churned(scenario, recipients.len()),
        revocations: revocation_results,
        attackers: attackers.len(),
        forgeries_sent,
        forgeries_accepted: shared
            .lock()
            .map(|s| recipients.iter().map(|r| s.foreign[*r]).sum())
            .unwrap_or(0),
        missed_events: shared.lock().map(|s| s.missed_events).unwrap_or(0),
        sent_across_cut,
        crossed_during_cut,
        targets: Targets {
            hops_p99_max: (n.ln() / d.ln()).ceil() + 1.0,
            copies_per_message_max: 1.0 + (d - 2.0) / 2.0 + 0.5,
            revocation_convergence_max_ms: percentile(&gossip.latencies_ms, 1.0)
                + scenario.sync_interval_secs as f64 * 1000.0,
        },
        delivery_over_time,
        revocation_curves,
        baseline,
    };
    Ok(report)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn churned(scenario: &Scenario, devices: usize) -> usize {
    scenario
        .churn
        .as_ref()
        .map_or(0, |c| (c.fraction * devices as f64).round() as usize)
}

/// When every running node that was not itself revoked (and wiped) had
/// taken revocation `id`.
fn converged(shared: &Shared, world: &World, targets: &[usize], id: &str) -> Option<Instant> {
    let seen = shared.lock().ok()?;
    let mut last = None;
    for index in 0..world.nodes.len() {
        if targets.contains(&index) || world.nodes[index].node.is_none() {
            continue;
        }
        let at = *seen.revoked[index].get(id)?;
        last = Some(last.map_or(at, |l: Instant| l.max(at)));
    }
    last
}

/// The run's timed actions, sorted: messages on a fixed gap, partitions,
/// churn (seeded: which devices, and when each goes off), revocations.
/// `targets` are the revoked nodes, one per revocation. Public for the
/// scenario fuzz target: any scenario [`Scenario::check`] accepts must
/// schedule without a panic.
pub fn schedule(
    scenario: &Scenario,
    recipients: &[usize],
    targets: &[usize],
    attackers: &[usize],
    rng: &mut SeededEntropy,
) -> Vec<(Duration, Action)> {
    let gap = Duration::from_secs_f64(60.0 / scenario.traffic.per_minute);
    let traffic = gap * scenario.traffic.messages as u32;
    let mut actions: Vec<(Duration, Action)> = (0..scenario.traffic.messages)
        .map(|seq| (gap * seq as u32, Action::Send(seq)))
        .collect();
    for seq in 0..scenario.traffic.messages {
        for (i, attacker) in attackers.iter().enumerate() {
            // Spread the forgeries between the honest messages.
            let offset = gap.mul_f64((i + 1) as f64 / (attackers.len() + 1) as f64);
            actions.push((gap * seq as u32 + offset, Action::Forge(*attacker)));
        }
    }
    for p in &scenario.partitions {
        actions.push((
            Duration::from_secs_f64(p.at_secs),
            Action::Cut(p.office, true),
        ));
        actions.push((
            Duration::from_secs_f64(p.at_secs + p.for_secs),
            Action::Cut(p.office, false),
        ));
    }
    if let Some(churn) = &scenario.churn {
        let count = churned(scenario, recipients.len());
        let mut pool = recipients.to_vec();
        let offline = Duration::from_secs_f64(churn.offline_secs);
        let window = traffic.saturating_sub(offline);
        for _ in 0..count.min(pool.len()) {
            let pick = u64::from_le_bytes(rng.array()) as usize % pool.len();
            let device = pool.swap_remove(pick);
            let at = window.mul_f64(u64::from_le_bytes(rng.array()) as f64 / u64::MAX as f64);
            actions.push((at, Action::Off(device)));
            actions.push((at + offline, Action::On(device)));
        }
    }
    for (r, event) in scenario.revocations.iter().enumerate() {
        let at = Duration::from_secs_f64(event.at_secs);
        if let Some(back) = event.returns_at_secs {
            actions.push((
                at.saturating_sub(Duration::from_millis(500)),
                Action::Off(targets[r]),
            ));
            actions.push((Duration::from_secs_f64(back), Action::On(targets[r])));
        }
        actions.push((at, Action::Revoke(r)));
    }
    actions.sort_by_key(|(at, _)| *at);
    actions
}

/// Waits until every node has a peer, the gossip meshes formed, and every
/// device met every other, read the room's opening message and can send in
/// [`ROOM`]. Nodes
/// are asked all at once, in rounds: on a loaded machine one node's answer
/// can take a second, and asking 500 in turn took longer than the setup.
/// A device still missing something reconciles with its peers once per
/// `sync_interval_secs`, as a running node would (every two seconds, 500
/// waiting devices kept the machine busy with reconciliation).
///
/// Returns how many devices started the traffic holding the key but not
/// yet having met every other device or read the opening message.
async fn wait_ready(world: &World, sync_interval_secs: u64, progress: &Progress) -> Result<usize> {
    let unsettled = std::sync::atomic::AtomicUsize::new(0);
    let unsettled = &unsettled;
    const OPENING: &str = "sim: opening the room";
    const ROUND: Duration = Duration::from_millis(500);
    let timeout = setup_timeout(world.nodes.len());
    let deadline = Instant::now() + timeout;
    progress.phase("setup: nodes with a peer", world.nodes.len() as u64);
    let mut waiting: Vec<usize> = (0..world.nodes.len()).collect();
    while !waiting.is_empty() {
        let asks = waiting.iter().map(|&index| async move {
            let handle = world.handle(index)?;
            let alone = handle.peers().await.map(|p| p.is_empty()).unwrap_or(true);
            alone.then_some(index)
        });
        waiting = futures::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect();
        progress.set((world.nodes.len() - waiting.len()) as u64);
        if let Some(&index) = waiting.first()
            && Instant::now() >= deadline
        {
            bail!(
                "{} (and {} more) never found a peer",
                world.nodes[index].user,
                waiting.len() - 1
            );
        }
        if !waiting.is_empty() {
            tokio::time::sleep(ROUND).await;
        }
    }
    // Gossipsub builds its topic meshes on its heartbeat (1 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // One device creates the room's first key; grants reach the others.
    let first = world.devices().next().map(|(i, _)| i);
    if let Some(handle) = first.and_then(|i| world.handle(i)) {
        loop {
            match handle.send(ROOM, OPENING).await {
                Ok(_) => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => bail!("the first device cannot open the room: {e}"),
            }
        }
    }
    let devices = world.devices().count();
    progress.phase(
        "setup: devices holding the room key, every device met",
        devices as u64,
    );
    let mut waiting: Vec<usize> = world
        .devices()
        .map(|(i, _)| i)
        .filter(|i| Some(*i) != first)
        .collect();
    let sync_rounds = (sync_interval_secs.saturating_mul(1000) / ROUND.as_millis() as u64).max(1);
    let mut round = 0u64;
    while !waiting.is_empty() {
        round += 1;
        // Holding the key is what sending needs; the opening message and
        // the last certificates may still be on their way: in the last
        // fifth of the time, the key alone will do (the report counts the
        // devices that started so).
        let key_alone = Instant::now() + timeout / 5 >= deadline;
        let asks = waiting.iter().map(|&index| async move {
            let handle = world.handle(index)?;
            let can_send = handle
                .rooms()
                .await
                .map(|rooms| rooms.iter().any(|r| r.name == ROOM && r.can_send))
                .unwrap_or(false);
            let opened = handle
                .history(ROOM, 5)
                .await
                .map(|h| h.iter().any(|m| m.text == OPENING))
                .unwrap_or(false);
            // Messages from a device not met yet wait (unforwarded) for its
            // certificate: traffic starts once every device has met the others.
            let met = handle.status().await.map_or(0, |s| s.devices_met);
            if can_send && ((met + 1 >= devices && opened) || key_alone) {
                if !(met + 1 >= devices && opened) {
                    unsettled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                return None;
            }
            if round.is_multiple_of(sync_rounds) {
                let _ = handle.sync_now().await;
            }
            Some((index, can_send, opened, met))
        });
        let still: Vec<(usize, bool, bool, usize)> = futures::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect();
        waiting = still.iter().map(|(i, ..)| *i).collect();
        progress.set((devices - waiting.len()) as u64);
        if let Some(&(index, can_send, opened, met)) = still.first()
            && Instant::now() >= deadline
        {
            bail!(
                "{} (and {} more) never got ready in room {ROOM} (holds its key: {can_send}, read the opening message: {opened}, met {met} of the other {} devices)",
                world.nodes[index].user,
                still.len() - 1,
                devices - 1
            );
        }
        if !waiting.is_empty() {
            tokio::time::sleep(ROUND).await;
        }
    }
    Ok(unsettled.load(std::sync::atomic::Ordering::Relaxed))
}

/// The text of message `seq`, padded to `bytes`.
pub(crate) fn message_text(seq: usize, bytes: usize) -> String {
    let mut text = format!("sim#{seq}#");
    while text.len() < bytes {
        text.push('.');
    }
    text
}

/// The sequence number of a message the run wrote, from its text.
pub(crate) fn sequence(text: &str) -> Option<usize> {
    text.strip_prefix("sim#")?.split('#').next()?.parse().ok()
}

/// Delivery at one moment.
#[derive(Clone, Debug)]
struct Delivery {
    ratio: f64,
    delivered: usize,
    latencies_ms: Vec<f64>,
}

fn snapshot(shared: &Shared, devices: &[usize], sent: &[(usize, Instant)]) -> Delivery {
    let Ok(seen) = shared.lock() else {
        return Delivery {
            ratio: 0.0,
            delivered: 0,
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
            if let Some(got) = seen.arrivals[device].get(&seq) {
                latencies.push(got.saturating_duration_since(*at).as_secs_f64() * 1000.0);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    Delivery {
        ratio: latencies.len() as f64 / expected.max(1) as f64,
        delivered: latencies.len(),
        latencies_ms: latencies,
    }
}

/// (message, recipient) pairs on opposite sides of a cut, sent while it
/// lasted; and how many of them arrived before the link came back (a cut
/// not yet healed counts until now).
fn across_cuts(
    world: &World,
    shared: &Shared,
    devices: &[usize],
    sent: &[(usize, Instant)],
    cuts: &[(usize, Instant, Option<Instant>)],
) -> (usize, usize) {
    let Ok(seen) = shared.lock() else {
        return (0, 0);
    };
    let (mut across, mut crossed) = (0, 0);
    for &(office, began, healed) in cuts {
        let healed = healed.unwrap_or_else(Instant::now);
        let inside = |node: usize| world.nodes[node].office == office;
        for (seq, &(sender, at)) in sent.iter().enumerate() {
            if at < began || at >= healed {
                continue;
            }
            for &device in devices {
                if inside(device) == inside(sender) {
                    continue;
                }
                across += 1;
                if seen.arrivals[device]
                    .get(&seq)
                    .is_some_and(|got| *got < healed)
                {
                    crossed += 1;
                }
            }
        }
    }
    (across, crossed)
}

/// Hop counts over every (message, recipient) pair delivered by gossip:
/// the delivery tree of each message from the first copies every node
/// recorded, walked back to its sender. Sorted.
fn hops(
    world: &World,
    sent: &[(usize, Instant)],
    ids: &[Option<Vec<u8>>],
    recipients: &[usize],
) -> Vec<f64> {
    let index_of = world.index_by_peer();
    let mut hops = Vec::new();
    for ((sender, _), id) in sent.iter().zip(ids) {
        let Some(id) = id else { continue };
        let tree = hop_counts(&world.trace.parents(id, &index_of), *sender);
        hops.extend(
            recipients
                .iter()
                .filter_map(|r| tree.get(r))
                .map(|h| f64::from(*h)),
        );
    }
    hops.sort_by(f64::total_cmp);
    hops
}

/// When each expected (message, recipient) pair arrived, seconds after the
/// traffic started (gossip, then sync), sorted; and how many pairs there are.
fn delivery_over_time(
    shared: &Shared,
    devices: &[usize],
    sent: &[(usize, Instant)],
    start: Instant,
) -> Series {
    let mut times = Vec::new();
    let mut expected = 0usize;
    if let Ok(seen) = shared.lock() {
        for (seq, (sender, _)) in sent.iter().enumerate() {
            for &device in devices.iter().filter(|d| **d != *sender) {
                expected += 1;
                if let Some(at) = seen.arrivals[device].get(&seq) {
                    times.push(at.saturating_duration_since(start).as_secs_f64());
                }
            }
        }
    }
    times.sort_by(f64::total_cmp);
    Series {
        name: "delivered".into(),
        total: expected,
        times,
    }
}

/// For each revocation: when each running node (not its target) took it,
/// seconds after it was issued, sorted.
fn revocation_curves(
    shared: &Shared,
    world: &World,
    targets: &[usize],
    revocations: &[(usize, Instant, String, Option<Instant>)],
) -> Vec<Series> {
    let Ok(seen) = shared.lock() else {
        return Vec::new();
    };
    revocations
        .iter()
        .map(|(target, issued, id, _)| {
            let nodes: Vec<usize> = (0..world.nodes.len())
                .filter(|i| !targets.contains(i) && world.nodes[*i].node.is_some())
                .collect();
            let mut times: Vec<f64> = nodes
                .iter()
                .filter_map(|i| seen.revoked[*i].get(id))
                .map(|at| at.saturating_duration_since(*issued).as_secs_f64())
                .collect();
            times.sort_by(f64::total_cmp);
            Series {
                name: format!("revocation of {}", world.nodes[*target].user),
                total: nodes.len(),
                times,
            }
        })
        .collect()
}
