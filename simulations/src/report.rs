//! What a run measured, how it is written (report.json, report.md), and the
//! process figures (resident memory, CPU time) read from /proc.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::baseline::BaselineReport;
use crate::plot::{self, Chart};

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
    /// Bytes each node sent on average during setup (admission, presence,
    /// certificates, key grants, reconciliation).
    pub setup_bytes_per_node: f64,
    /// Process CPU (cores) while every node was up and nothing was sent:
    /// near this machine's core count, the figures below measure a
    /// saturated simulator.
    pub cpu_idle_cores: f64,
    /// Peers (admitted connections) per node when the traffic started:
    /// mean and most.
    pub peers_per_node: (f64, usize),
    /// Devices that started the traffic holding the room key but not yet
    /// having met every other device (or read the opening message): the
    /// setup ran out of time (0 on a settled network).
    pub unsettled: usize,
    /// Node events the simulation's listeners missed because they fell
    /// behind (the messages they announced count as undelivered).
    pub missed_events: u64,
    /// (message, recipient) pairs on opposite sides of a cut office's
    /// link, sent while the cut lasted.
    pub sent_across_cut: usize,
    /// Of those, how many arrived before the link came back (a real cut
    /// lets none through).
    pub crossed_during_cut: usize,
    /// Bytes a device sent and received on average during the traffic.
    pub traffic_bytes_per_device: f64,
    /// Bytes a relay sent and received on average during the traffic.
    pub traffic_bytes_per_relay: f64,
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
    /// Hop count (gossip delivery tree depth) over (message, recipient)
    /// pairs delivered by gossip: median.
    pub hops_p50: f64,
    /// 95th percentile.
    pub hops_p95: f64,
    /// 99th percentile.
    pub hops_p99: f64,
    /// Most.
    pub hops_max: f64,
    /// Gossip copies each node received per message it took (1.0: no
    /// duplicates), during the traffic.
    pub copies_per_message: f64,
    /// Bytes on the wire during reconciliation per byte of text that gossip
    /// had not delivered (None: gossip delivered everything).
    pub sync_bytes_per_missing_byte: Option<f64>,
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
    /// The targets this run is judged against.
    pub targets: Targets,
    /// Deliveries over time (gossip, then reconciliation).
    #[serde(skip)]
    pub delivery_over_time: Series,
    /// For each revocation, when nodes took it.
    #[serde(skip)]
    pub revocation_curves: Vec<Series>,
    /// Plain gossipsub on the same links, if it was run.
    pub baseline: Option<BaselineReport>,
}

/// Targets for a run of N nodes with gossipsub's mesh degree D = 6.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Targets {
    /// ceil(ln N / ln D) + 1.
    pub hops_p99_max: f64,
    /// 1 + (D - 2) / 2 + 0.5.
    pub copies_per_message_max: f64,
    /// The slowest gossip delivery plus one sync interval, ms.
    pub revocation_convergence_max_ms: f64,
}

/// Events over time: when each happened (seconds from a start, sorted),
/// out of how many.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Legend.
    pub name: String,
    /// How many could happen.
    pub total: usize,
    /// When each that did happened.
    pub times: Vec<f64>,
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
             | setup (mesh + room key) | {setup:.1} s, {sbytes:.0} KiB sent per node |\n\
             | CPU while idle (all nodes) | {idle:.2} cores |\n\
             | peers per node, mean / most | {peers:.1} / {peers_max} |\n\
             | devices not settled when the traffic started | {unsettled} |\n\
             | node events the simulation missed (listener behind) | {missed} |\n\
             | pairs sent across a cut while it lasted; arrived before it healed | {across}; {crossed} |\n\
             | bytes per device / per relay during the traffic | {dbytes:.0} KiB / {rbytes:.0} KiB |\n\
             | delivery, gossip alone | {dg:.2} % |\n\
             | delivery, after sync | {ds:.2} % |\n\
             | latency p50 / p95 / p99 / max | {p50:.0} / {p95:.0} / {p99:.0} / {max:.0} ms |\n\
             | hop count p50 / p95 / p99 / max | {h50} / {h95} / {h99} / {hmax} (target p99 <= {ht}) |\n\
             | gossip copies per message per node | {copies:.2} (target <= {ct}) |\n\
             | wire bytes per payload byte (gossip) | {wg:.2} |\n\
             | wire bytes per payload byte (with sync) | {wt:.2} |\n\
             | reconciliation after the traffic | {sync:.1} s |\n\
             | sync bytes per missing byte | {sbm} |\n\
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
            sbytes = self.setup_bytes_per_node / 1024.0,
            idle = self.cpu_idle_cores,
            peers = self.peers_per_node.0,
            peers_max = self.peers_per_node.1,
            unsettled = self.unsettled,
            missed = self.missed_events,
            across = self.sent_across_cut,
            crossed = self.crossed_during_cut,
            dbytes = self.traffic_bytes_per_device / 1024.0,
            rbytes = self.traffic_bytes_per_relay / 1024.0,
            dg = self.delivery_gossip * 100.0,
            ds = self.delivery_after_sync * 100.0,
            p50 = self.latency_p50_ms,
            p95 = self.latency_p95_ms,
            p99 = self.latency_p99_ms,
            max = self.latency_max_ms,
            h50 = self.hops_p50,
            h95 = self.hops_p95,
            h99 = self.hops_p99,
            hmax = self.hops_max,
            ht = self.targets.hops_p99_max,
            copies = self.copies_per_message,
            ct = self.targets.copies_per_message_max,
            sbm = self
                .sync_bytes_per_missing_byte
                .map_or("nothing was missing".into(), |v| format!("{v:.1}")),
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
        ) + &self.baseline_markdown()
    }

    /// The side-by-side table with the baseline, if it ran.
    fn baseline_markdown(&self) -> String {
        let Some(b) = &self.baseline else {
            return String::new();
        };
        // One row: our value, theirs, and ours as a multiple of theirs.
        let row = |metric: &str, ours: f64, theirs: f64, unit: &str| {
            let ratio = if theirs > 0.0 {
                format!("{:.2}x", ours / theirs)
            } else {
                "-".into()
            };
            format!("| {metric} | {ours:.1}{unit} | {theirs:.1}{unit} | {ratio} |\n")
        };
        let kib = |bytes: u64| bytes as f64 / 1024.0;
        format!(
            "\n## Side by side with plain gossipsub (same links, same connections, same run)\n\n\
             | metric | Baro | plain gossipsub | ratio |\n|---|---|---|---|\n\
             | delivery by gossip | {:.2} % | {:.2} % | |\n\
             | hop count p50 / p99 | {} / {} | {} / {} | |\n",
            self.delivery_gossip * 100.0,
            b.delivery * 100.0,
            self.hops_p50,
            self.hops_p99,
            b.hops_p50,
            b.hops_p99,
        ) + &[
            row("latency p50", self.latency_p50_ms, b.latency_p50_ms, " ms"),
            row("latency p95", self.latency_p95_ms, b.latency_p95_ms, " ms"),
            row("latency p99", self.latency_p99_ms, b.latency_p99_ms, " ms"),
            row(
                "copies per message per node",
                self.copies_per_message,
                b.copies_per_message,
                "",
            ),
            row(
                "wire bytes per payload byte",
                self.wire_bytes_per_payload_byte_gossip,
                b.wire_bytes_per_payload_byte,
                "",
            ),
            row(
                "CPU per message (all nodes)",
                self.cpu_ms_per_message,
                b.cpu_ms_per_message,
                " ms",
            ),
            row(
                "memory per node",
                kib(self.memory_per_node_bytes),
                kib(b.memory_per_node_bytes),
                " KiB",
            ),
        ]
        .concat()
    }

    /// The report's charts: (file name, chart).
    pub fn charts(&self) -> Vec<(&'static str, Chart)> {
        let mut latency = vec![plot::Series {
            name: "Baro".into(),
            points: plot::cdf(&self.latency_cdf_ms, 400),
        }];
        if let Some(b) = &self.baseline {
            latency.push(plot::Series {
                name: "plain gossipsub".into(),
                points: plot::cdf(&b.latency_cdf_ms, 400),
            });
        }
        let mut charts = vec![
            (
                "latency-cdf.svg",
                Chart {
                    title: format!("{}: gossip latency, send to shown", self.scenario),
                    x_label: "latency (ms)".into(),
                    y_label: "share of deliveries".into(),
                    series: latency,
                    y_fraction: true,
                },
            ),
            (
                "delivery-over-time.svg",
                Chart {
                    title: format!("{}: delivery over time (gossip, then sync)", self.scenario),
                    x_label: "seconds since the first message".into(),
                    y_label: "share of (message, recipient) pairs".into(),
                    series: vec![plot::Series {
                        name: "delivered".into(),
                        points: plot::share_over_time(
                            &self.delivery_over_time.times,
                            self.delivery_over_time.total,
                            400,
                        ),
                    }],
                    y_fraction: true,
                },
            ),
        ];
        if !self.revocation_curves.is_empty() {
            charts.push((
                "revocation-convergence.svg",
                Chart {
                    title: format!("{}: revocation convergence", self.scenario),
                    x_label: "seconds since issued".into(),
                    y_label: "share of running nodes enforcing it".into(),
                    series: self
                        .revocation_curves
                        .iter()
                        .map(|c| plot::Series {
                            name: c.name.clone(),
                            points: plot::share_over_time(&c.times, c.total, 400),
                        })
                        .collect(),
                    y_fraction: true,
                },
            ));
        }
        charts
    }

    /// Writes report.json, report.md and the charts (SVG) into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(dir.join("report.json"), json + "\n")
            .with_context(|| format!("cannot write {}", dir.join("report.json").display()))?;
        std::fs::write(dir.join("report.md"), self.markdown())
            .with_context(|| format!("cannot write {}", dir.join("report.md").display()))?;
        for (name, chart) in self.charts() {
            std::fs::write(dir.join(name), chart.svg())
                .with_context(|| format!("cannot write {}", dir.join(name).display()))?;
        }
        Ok(())
    }
}
