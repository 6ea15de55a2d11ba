//! Mesh formation: N real nodes on MemoryTransport join through one bootstrap
//! relay; we measure how long until every node admitted every other, and how
//! one control-topic frame spreads.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use baro_node::NodeEvent;
use baro_node::testing::{TestAgency, listen_address};
use baro_node::trust::Role;
use serde::Serialize;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct MeshScenario {
    /// Seed for the agency and every key.
    pub seed: u64,
    /// Nodes besides the bootstrap relay.
    pub nodes: usize,
    /// Give up after this long.
    pub timeout: Duration,
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct MeshReport {
    /// Seed used.
    pub seed: u64,
    /// Nodes including the relay.
    pub nodes: usize,
    /// Seconds from the first start until every node admitted every other.
    pub full_mesh_secs: f64,
    /// Fewest peers any node admitted.
    pub min_peers: usize,
    /// Mean peers admitted per node.
    pub mean_peers: f64,
    /// Refusals seen anywhere (all nodes are genuine: expected 0).
    pub refusals: usize,
    /// Nodes (besides the author) that received the test frame.
    pub gossip_delivered: usize,
    /// Milliseconds until half of them had it.
    pub gossip_p50_ms: f64,
    /// Milliseconds until the last one had it.
    pub gossip_max_ms: f64,
}

/// Runs the scenario on the current tokio runtime.
pub async fn run_mesh(scenario: &MeshScenario) -> Result<MeshReport> {
    if scenario.nodes == 0 {
        bail!("nodes must be at least 1");
    }
    let mut agency = TestAgency::new(scenario.seed);
    let relay_key = agency.key();
    let relay_chain = agency.certify(&relay_key, "relay", "MOIS/Field Offices", Role::Relay, 365);
    let started = Instant::now();
    let relay = agency.spawn(agency.credentials(relay_key, relay_chain), &[]);
    let address = listen_address(&relay).await?;
    let mut nodes = vec![relay];
    for i in 0..scenario.nodes {
        let credentials = agency.member(&format!("official{i}"));
        nodes.push(agency.spawn(credentials, std::slice::from_ref(&address)));
    }
    let total = nodes.len();
    let mut refusal_streams: Vec<_> = nodes.iter().map(|n| n.handle().events()).collect();

    let deadline = started + scenario.timeout;
    let mut counts = Vec::new();
    loop {
        counts.clear();
        for node in &nodes {
            counts.push(node.handle().peers().await?.len());
        }
        if counts.iter().all(|c| *c == total - 1) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let full_mesh_secs = started.elapsed().as_secs_f64();
    if counts.iter().any(|c| *c != total - 1) {
        bail!(
            "no full mesh within {:?}: peers per node {counts:?}",
            scenario.timeout
        );
    }

    // One frame from the last node; everyone else should get it.
    let mut receivers: Vec<_> = nodes[..total - 1]
        .iter()
        .map(|n| n.handle().events())
        .collect();
    let author = nodes[total - 1].handle();
    let mut sent_at = None;
    while sent_at.is_none() && Instant::now() < deadline {
        let attempt = Instant::now();
        if author
            .publish_control(b"simulated notice".to_vec())
            .await
            .is_ok()
        {
            sent_at = Some(attempt);
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let sent_at = sent_at.context("the frame could not be published: no gossip mesh formed")?;
    let mut latencies = Vec::new();
    for events in &mut receivers {
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match events.recv().await {
                    Ok(NodeEvent::Gossip { payload, .. }) if payload == b"simulated notice" => {
                        return true;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or(false);
        if got {
            latencies.push(sent_at.elapsed().as_secs_f64() * 1000.0);
        }
    }
    latencies.sort_by(f64::total_cmp);

    let mut refusals = 0;
    for events in &mut refusal_streams {
        while let Ok(event) = events.try_recv() {
            refusals += usize::from(matches!(event, NodeEvent::PeerRefused { .. }));
        }
    }
    for node in nodes {
        node.shutdown().await;
    }
    Ok(MeshReport {
        seed: scenario.seed,
        nodes: total,
        full_mesh_secs,
        min_peers: counts.iter().copied().min().context("no nodes")?,
        mean_peers: counts.iter().sum::<usize>() as f64 / total as f64,
        refusals,
        gossip_delivered: latencies.len(),
        gossip_p50_ms: latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or(f64::NAN),
        gossip_max_ms: latencies.last().copied().unwrap_or(f64::NAN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_mesh_connects_fully_and_delivers_gossip_to_everyone() {
        let report = run_mesh(&MeshScenario {
            seed: 3,
            nodes: 7,
            timeout: Duration::from_secs(30),
        })
        .await
        .expect("run");
        assert_eq!(report.nodes, 8);
        assert_eq!(report.min_peers, 7);
        assert_eq!(report.refusals, 0);
        assert_eq!(report.gossip_delivered, 7);
    }
}
