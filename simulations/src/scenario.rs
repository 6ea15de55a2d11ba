//! A scenario file (TOML): who is in the agency, how the offices are linked,
//! what they say, and what goes wrong (partitions, churn, revocations).
//!
//! Plain data with defaults; [`Scenario::load`] reads and checks it, and
//! every number out of range is a one-line error naming the field.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// A whole scenario.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name, for the report.
    pub name: String,
    /// What it models, for the report.
    #[serde(default)]
    pub description: String,
    /// Seed: the same seed gives the same agency, topology and schedule.
    #[serde(default = "one")]
    pub seed: u64,
    /// Offices, devices and relays.
    pub topology: Topology,
    /// Link models.
    #[serde(default)]
    pub links: Links,
    /// Messages.
    pub traffic: Traffic,
    /// Seconds between reconciliation rounds after the traffic (gossip
    /// alone carries messages while it lasts).
    #[serde(default = "five")]
    pub sync_interval_secs: u64,
    /// Offices cut off from the others for a while.
    #[serde(default)]
    pub partitions: Vec<Partition>,
    /// Devices going offline for a while.
    #[serde(default)]
    pub churn: Option<Churn>,
    /// Devices revoked (with a wipe order) during the run.
    #[serde(default)]
    pub revocations: Vec<RevocationEvent>,
    /// Certified devices that misbehave.
    #[serde(default)]
    pub attack: Option<Attack>,
}

/// Certified devices that misbehave: instead of chatting, each sends one
/// forgery per message the others send, cycling through spam (garbage on
/// the room topic), forged signatures (envelopes with a flipped byte) and
/// forged revocations (a member revoking an honest device).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Attack {
    /// Share of the devices that misbehave (0 to 0.5).
    pub fraction: f64,
}

/// Devices that go offline once each, at seeded times during the traffic.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Share of the devices that go offline (0 to 1).
    pub fraction: f64,
    /// How long each stays offline, seconds.
    pub offline_secs: f64,
}

/// A device revoked during the run.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationEvent {
    /// Its office.
    pub office: usize,
    /// Its index among that office's devices.
    pub device: usize,
    /// When the operator revokes it, seconds after the traffic starts.
    pub at_secs: f64,
    /// If set, the device is switched off just before and comes back this
    /// many seconds after the start (it learns of it when it returns).
    #[serde(default)]
    pub returns_at_secs: Option<f64>,
}

/// Offices, devices and relays.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Field offices.
    pub offices: usize,
    /// Officials' devices per office.
    pub devices_per_office: usize,
    /// Relays per office (bootstrap, store-and-forward).
    #[serde(default = "one_usize")]
    pub relays_per_office: usize,
    /// Most peers a node dials on its own (others may dial it).
    #[serde(default = "twelve")]
    pub max_peers: usize,
}

/// One direction of a link, as written in a scenario.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// One-way latency, ms.
    pub latency_ms: u64,
    /// Extra delay, uniform in 0..jitter, ms.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Probability a segment is lost (and retransmitted late), 0 to 1.
    #[serde(default)]
    pub loss: f64,
    /// Bandwidth, kbit/s; 0 is unlimited.
    #[serde(default)]
    pub bandwidth_kbps: u64,
}

/// Links inside an office and between offices.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    /// Inside an office (its LAN).
    pub lan: Link,
    /// Between offices (the agency WAN).
    pub wan: Link,
}

impl Default for Links {
    fn default() -> Self {
        Links {
            lan: Link {
                latency_ms: 1,
                jitter_ms: 1,
                loss: 0.0,
                bandwidth_kbps: 100_000,
            },
            wan: Link {
                latency_ms: 30,
                jitter_ms: 10,
                loss: 0.0,
                bandwidth_kbps: 20_000,
            },
        }
    }
}

/// Messages sent during the run.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// How many messages, in all.
    pub messages: usize,
    /// Messages per minute over the whole agency.
    pub per_minute: f64,
    /// Text size, bytes.
    #[serde(default = "hundred")]
    pub bytes: usize,
}

/// An office cut off from the rest, then healed.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Which office (0-based).
    pub office: usize,
    /// Seconds after the traffic starts.
    pub at_secs: f64,
    /// For how long, seconds.
    pub for_secs: f64,
}

fn one() -> u64 {
    1
}
fn five() -> u64 {
    5
}
fn one_usize() -> usize {
    1
}
fn twelve() -> usize {
    12
}
fn hundred() -> usize {
    100
}

/// Longest time a scenario may name (any `*_secs`, and the traffic's
/// length): a day. Times must also be finite: TOML allows `inf` and `nan`.
pub const MAX_SECS: f64 = 86_400.0;
/// Most messages in a scenario.
pub const MAX_MESSAGES: usize = 100_000;
/// Most forgeries misbehaving devices may send in all (one per honest
/// message each).
pub const MAX_FORGERIES: f64 = 1_000_000.0;

/// Whether `secs` is a time a scenario may name: finite, 0 to [`MAX_SECS`].
fn is_time(secs: f64) -> bool {
    (0.0..=MAX_SECS).contains(&secs)
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scenario {}", path.display()))?;
        let scenario: Scenario = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid scenario", path.display()))?;
        scenario.check()?;
        Ok(scenario)
    }

    /// Checks every number is in range.
    pub fn check(&self) -> Result<()> {
        let t = &self.topology;
        if t.offices == 0 || t.offices > 100 {
            bail!("topology.offices must be 1 to 100");
        }
        if t.devices_per_office == 0 || t.devices_per_office > 1000 {
            bail!("topology.devices_per_office must be 1 to 1000");
        }
        if t.relays_per_office == 0 || t.relays_per_office > 10 {
            bail!("topology.relays_per_office must be 1 to 10");
        }
        for (name, link) in [
            ("links.lan", &self.links.lan),
            ("links.wan", &self.links.wan),
        ] {
            if !(0.0..=0.5).contains(&link.loss) {
                bail!("{name}.loss must be 0 to 0.5");
            }
            if link.latency_ms > 10_000 || link.jitter_ms > 10_000 {
                bail!("{name}: latency and jitter must be at most 10000 ms");
            }
        }
        if self.traffic.messages == 0
            || self.traffic.per_minute.is_nan()
            || self.traffic.per_minute <= 0.0
        {
            bail!("traffic.messages and traffic.per_minute must be positive");
        }
        if self.traffic.messages > MAX_MESSAGES
            || !is_time(self.traffic.messages as f64 * 60.0 / self.traffic.per_minute)
        {
            bail!(
                "traffic: at most {MAX_MESSAGES} messages, over at most {MAX_SECS} s (messages / per_minute)"
            );
        }
        if self.traffic.bytes == 0 || self.traffic.bytes > 16 * 1024 {
            bail!("traffic.bytes must be 1 to 16384");
        }
        if self.sync_interval_secs == 0 {
            bail!("sync_interval_secs must be at least 1");
        }
        if let Some(churn) = &self.churn
            && (!(0.0..=1.0).contains(&churn.fraction)
                || churn.offline_secs <= 0.0
                || !is_time(churn.offline_secs))
        {
            bail!("churn needs fraction 0 to 1 and offline_secs > 0 (at most {MAX_SECS})");
        }
        if let Some(attack) = &self.attack {
            if !(0.0..=0.5).contains(&attack.fraction) {
                bail!("attack.fraction must be 0 to 0.5");
            }
            let devices = (t.offices * t.devices_per_office) as f64;
            if attack.fraction * devices * self.traffic.messages as f64 > MAX_FORGERIES {
                bail!(
                    "attack: at most {MAX_FORGERIES} forgeries in all (fraction x devices x messages)"
                );
            }
        }
        for r in &self.revocations {
            if r.office >= t.offices || r.device >= t.devices_per_office {
                bail!(
                    "revocation of office {} device {}: no such device",
                    r.office,
                    r.device
                );
            }
            if !is_time(r.at_secs) || r.returns_at_secs.is_some_and(|back| !is_time(back)) {
                bail!("revocation at_secs and returns_at_secs must be 0 to {MAX_SECS}");
            }
            if r.returns_at_secs.is_some_and(|back| back <= r.at_secs) {
                bail!("a revoked device returns after it is revoked (returns_at_secs > at_secs)");
            }
        }
        for p in &self.partitions {
            if p.office >= t.offices {
                bail!(
                    "partition of office {} but there are {}",
                    p.office,
                    t.offices
                );
            }
            if !is_time(p.at_secs) || p.for_secs <= 0.0 || !is_time(p.at_secs + p.for_secs) {
                bail!("partitions need at_secs >= 0 and for_secs > 0, ending by {MAX_SECS} s");
            }
        }
        Ok(())
    }

    /// Devices and relays in all.
    pub fn nodes(&self) -> usize {
        self.topology.offices * (self.topology.devices_per_office + self.topology.relays_per_office)
    }
}
