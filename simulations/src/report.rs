//! What a run measured, how it is written (report.json, report.md), and the
//! process figures (resident memory, CPU time) read from /proc.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// The measured results of one run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Nodes in all.
    pub nodes: usize,
    /// Officials' devices.
    pub devices: usize,
    /// Relays.
    pub relays: usize,
    /// Messages sent.
    pub messages: usize,
    /// Seconds until the mesh formed and every device held the room key.
    pub setup_secs: f64,
    /// Share of (message, recipient) pairs delivered by gossip alone.
    pub delivery_gossip: f64,
    /// The same after reconciliation.
    pub delivery_after_sync: f64,
    /// Gossip latency percentiles, send → shown, ms.
    pub latency_p50_ms: f64,
    /// 95th percentile.
    pub latency_p95_ms: f64,
    /// 99th percentile.
    pub latency_p99_ms: f64,
    /// Slowest.
    pub latency_max_ms: f64,
    /// Every gossip latency, sorted (for the CDF).
    #[serde(skip)]
    pub latency_cdf_ms: Vec<f64>,
    /// Bytes on the wire (all nodes, during the traffic) per payload byte
    /// delivered to one recipient.
    pub wire_bytes_per_payload_byte_gossip: f64,
    /// The same including reconciliation.
    pub wire_bytes_per_payload_byte_total: f64,
    /// Seconds of reconciliation after the traffic.
    pub sync_secs: f64,
    /// Resident memory added per node, bytes.
    pub memory_per_node_bytes: u64,
    /// Process CPU seconds during the traffic (all nodes).
    pub cpu_secs_traffic: f64,
    /// That per message sent.
    pub cpu_ms_per_message: f64,
    /// Devices that went offline for a while during the traffic.
    pub churned: usize,
    /// Revocations issued during the run.
    pub revocations: Vec<RevocationResult>,
    /// Misbehaving devices (left out of delivery figures).
    pub attackers: usize,
    /// Forgeries they sent.
    pub forgeries_sent: usize,
    /// Forged messages or revocations an honest node accepted (must be 0).
    pub forgeries_accepted: usize,
}

/// How one revocation went.
#[derive(Clone, Debug, Serialize)]
pub struct RevocationResult {
    /// The revoked device's user.
    pub device: String,
    /// Whether it was offline when revoked (and learned of it on return).
    pub offline: bool,
    /// Issue → every running node enforces it, ms (None: not everywhere).
    pub convergence_ms: Option<f64>,
    /// Issue (or, offline, its return) → the device wiped itself, ms.
    pub wipe_ms: Option<f64>,
}

/// The `q` quantile of sorted `values` (0 when empty).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Resident memory of this process, bytes (0 if unknown).
pub fn process_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// CPU seconds (user + system) this process used so far (0 if unknown).
pub fn process_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces, in parentheses).
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after ")".
    (ticks(11) + ticks(12)) / 100.0
}

impl Report {
    /// A short Markdown summary.
    pub fn markdown(&self) -> String {
        format!(
            "# Simulation: {name}\n\n\
             {nodes} nodes ({devices} devices, {relays} relays), seed {seed}, {messages} messages.\n\n\
             | metric | value |\n|---|---|\n\
             | setup (mesh + room key) | {setup:.1} s |\n\
             | delivery, gossip alone | {dg:.2} % |\n\
             | delivery, after sync | {ds:.2} % |\n\
             | latency p50 / p95 / p99 / max | {p50:.0} / {p95:.0} / {p99:.0} / {max:.0} ms |\n\
             | wire bytes per payload byte (gossip) | {wg:.2} |\n\
             | wire bytes per payload byte (with sync) | {wt:.2} |\n\
             | reconciliation after the traffic | {sync:.1} s |\n\
             | memory per node | {mem:.0} KiB |\n\
             | CPU during traffic | {cpu:.2} s ({cpm:.1} ms per message) |\n\
             | devices that went offline for a while | {churned} |\n\
             | misbehaving devices; forgeries sent; accepted by honest nodes | {attackers}; {forged}; {accepted} |\n{revocations}",
            name = self.scenario,
            nodes = self.nodes,
            devices = self.devices,
            relays = self.relays,
            seed = self.seed,
            messages = self.messages,
            setup = self.setup_secs,
            dg = self.delivery_gossip * 100.0,
            ds = self.delivery_after_sync * 100.0,
            p50 = self.latency_p50_ms,
            p95 = self.latency_p95_ms,
            p99 = self.latency_p99_ms,
            max = self.latency_max_ms,
            wg = self.wire_bytes_per_payload_byte_gossip,
            wt = self.wire_bytes_per_payload_byte_total,
            sync = self.sync_secs,
            mem = self.memory_per_node_bytes as f64 / 1024.0,
            cpu = self.cpu_secs_traffic,
            cpm = self.cpu_ms_per_message,
            churned = self.churned,
            attackers = self.attackers,
            forged = self.forgeries_sent,
            accepted = self.forgeries_accepted,
            revocations = self
                .revocations
                .iter()
                .map(|r| {
                    format!(
                        "| revocation of {} ({}) | everywhere after {}, wiped after {} |\n",
                        r.device,
                        if r.offline {
                            "offline, learned on return"
                        } else {
                            "online"
                        },
                        r.convergence_ms
                            .map_or("never".into(), |v| format!("{v:.0} ms")),
                        r.wipe_ms.map_or("never".into(), |v| format!("{v:.0} ms")),
                    )
                })
                .collect::<String>(),
        )
    }

    /// Writes report.json and report.md into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(dir.join("report.json"), json + "\n")
            .with_context(|| format!("cannot write {}", dir.join("report.json").display()))?;
        std::fs::write(dir.join("report.md"), self.markdown())
            .with_context(|| format!("cannot write {}", dir.join("report.md").display()))?;
        Ok(())
    }
}
