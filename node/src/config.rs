//! Node configuration: plain data with defaults, validated once.

use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

/// How a node runs. `Default` is right for an official's device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeConfig {
    /// Addresses to listen on (multiaddrs).
    pub listen: Vec<String>,
    /// Addresses to dial at start and whenever disconnected from all peers.
    pub bootstrap: Vec<String>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// Seconds a new peer has to prove its certificate.
    pub admission_timeout_secs: u64,
    /// Seconds a refused peer stays blocked.
    pub block_secs: u64,
    /// Seconds between Kademlia discovery rounds (and bootstrap redials).
    pub discovery_interval_secs: u64,
    /// Seconds a connection with no activity is kept open.
    pub idle_timeout_secs: u64,
    /// Capacity of the event channel (slow subscribers miss events beyond it).
    pub event_capacity: usize,
    /// Seconds between reconciliation rounds with every connected peer
    /// (peers also reconcile as soon as they connect).
    pub sync_interval_secs: u64,
    /// Seconds between mDNS queries on the local network.
    pub mdns_query_secs: u64,
    /// Set on relay nodes: store-and-forward limits.
    pub relay: Option<RelayConfig>,
    /// Most peers this node dials on its own (Kademlia and mDNS discovery).
    /// A device (not a relay) keeps at most twice this many connections:
    /// past that, a peer that dialled in or that discovery reached is let
    /// go once admitted; relays, bootstrap and hand-made dials always stay.
    /// Gossip needs only a handful of peers; a phone should not connect to
    /// a whole agency.
    pub max_peers: usize,
    /// Answer "sent", "created", "revoked" only once the change is on disk
    /// (concurrent answers share one flush). Only benchmarks turn this off,
    /// to measure what durability costs.
    pub durable_acks: bool,
    /// Most connections others opened that may be in their handshake
    /// (network key, noise, admission) at once. When full, a newcomer takes
    /// the place of the oldest handshake of the address holding the most,
    /// if that address holds more than the newcomer's would; otherwise it
    /// is refused at once. `None`: 32 on a device, 256 on a relay.
    pub max_pending_incoming: Option<u32>,
    /// Most connections open at once, both ways (each is a file
    /// descriptor). `None`: 256 on a device (four times `max_peers` if
    /// more), 4096 on a relay (which needs `ulimit -n` above that).
    pub max_connections: Option<u32>,
    /// Most connections with any one peer (both sides dialling at once, a
    /// relayed connection and its direct upgrade).
    pub max_connections_per_peer: u32,
    /// Most admission exchanges under way at once, both ways; more are
    /// refused before anything is read. `None`: the pending-incoming limit
    /// plus 16 (room for this node's own dials).
    pub max_admissions: Option<u32>,
    /// Refuse new connections while this process uses more than this
    /// percentage of the machine's memory (`None`: no such limit).
    pub max_memory_percent: Option<u8>,
    /// Failed handshakes from one address (an IPv4 address, an IPv6 /64)
    /// within `address_window_secs` after which connections from it are
    /// refused on arrival, before any handshake, for `block_secs`; 0: never.
    pub address_failures: u32,
    /// Seconds of one counting window of `address_failures`.
    pub address_window_secs: u64,
    /// This device's label ("PC", "휴대폰"), announced with its presence.
    pub label: Option<String>,
    /// Largest file this device sends, in MiB (default 100; the format's
    /// own limit is 128).
    pub max_file_mb: u64,
    /// Most megabytes of room envelopes one other author may have this
    /// member device keep (its history of that author); past it, that
    /// author's first received go (audit H6). Relays cap by `relay`.
    pub author_room_mb: u64,
}

/// What a relay keeps for devices that are offline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelayConfig {
    /// Days a stored envelope is kept.
    pub retention_days: u64,
    /// Most megabytes of envelopes kept; the oldest go first beyond it.
    pub max_store_mb: u64,
    /// Most megabytes of attachments' chunks kept (separate from
    /// envelopes); the oldest go first beyond it.
    pub max_files_mb: u64,
    /// Days a stored chunk is kept.
    pub file_retention_days: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            retention_days: 30,
            max_store_mb: 1024,
            max_files_mb: 4096,
            file_retention_days: 30,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: vec!["/ip4/0.0.0.0/tcp/0".into()],
            bootstrap: Vec::new(),
            mdns: true,
            admission_timeout_secs: 10,
            block_secs: 300,
            discovery_interval_secs: 30,
            idle_timeout_secs: 24 * 60 * 60,
            event_capacity: 1024,
            sync_interval_secs: 60,
            mdns_query_secs: 30,
            relay: None,
            max_peers: 50,
            durable_acks: true,
            max_pending_incoming: None,
            max_connections: None,
            max_connections_per_peer: 4,
            max_admissions: None,
            max_memory_percent: Some(75),
            address_failures: 20,
            address_window_secs: 60,
            label: None,
            max_file_mb: crate::net::DEFAULT_MAX_FILE_MB,
            author_room_mb: 32,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An address does not parse.
    #[error("{field} address '{addr}' is not a multiaddr (e.g. /ip4/127.0.0.1/tcp/4001)")]
    BadAddress {
        /// Which setting.
        field: &'static str,
        /// The text given.
        addr: String,
    },
    /// A number is out of range.
    #[error("{0}")]
    OutOfRange(String),
}

/// A [`NodeConfig`] whose addresses parsed and whose numbers are in range.
#[derive(Clone, Debug)]
pub struct ValidConfig {
    /// The configuration as given.
    pub config: NodeConfig,
    /// Parsed listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Parsed bootstrap addresses.
    pub bootstrap: Vec<Multiaddr>,
}

impl NodeConfig {
    /// Checks every field once; the node only runs validated configurations.
    pub fn validate(self) -> Result<ValidConfig, ConfigError> {
        let parse = |field: &'static str, addrs: &[String]| {
            addrs
                .iter()
                .map(|addr| {
                    addr.parse::<Multiaddr>()
                        .map_err(|_| ConfigError::BadAddress {
                            field,
                            addr: addr.clone(),
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let listen = parse("listen", &self.listen)?;
        let bootstrap = parse("bootstrap", &self.bootstrap)?;
        if !(1..=300).contains(&self.admission_timeout_secs) {
            return Err(ConfigError::OutOfRange(
                "admission timeout must be 1 to 300 seconds".into(),
            ));
        }
        if self.discovery_interval_secs == 0 || self.event_capacity == 0 {
            return Err(ConfigError::OutOfRange(
                "discovery interval and event capacity must be positive".into(),
            ));
        }
        if !(1..=86_400).contains(&self.sync_interval_secs)
            || !(1..=3_600).contains(&self.mdns_query_secs)
        {
            return Err(ConfigError::OutOfRange(
                "sync interval must be 1 to 86400 seconds and mDNS interval 1 to 3600".into(),
            ));
        }
        if let Some(relay) = &self.relay
            && (!(1..=3_650).contains(&relay.retention_days)
                || !(1..=1_048_576).contains(&relay.max_store_mb))
        {
            return Err(ConfigError::OutOfRange(
                "retention must be 1 to 3650 days and the store 1 to 1048576 MB".into(),
            ));
        }
        if !(1..=10_000).contains(&self.max_peers) {
            return Err(ConfigError::OutOfRange(
                "max peers must be 1 to 10000".into(),
            ));
        }
        let positive = |limit: Option<u32>| limit.is_none_or(|n| n > 0);
        if !positive(self.max_pending_incoming)
            || !positive(self.max_connections)
            || !positive(self.max_admissions)
            || self.max_connections_per_peer == 0
        {
            return Err(ConfigError::OutOfRange(
                "connection, pending-connection and admission limits must be positive".into(),
            ));
        }
        if self
            .max_memory_percent
            .is_some_and(|p| !(1..=100).contains(&p))
        {
            return Err(ConfigError::OutOfRange(
                "the memory limit must be 1 to 100 percent".into(),
            ));
        }
        if !(1..=86_400).contains(&self.address_window_secs) {
            return Err(ConfigError::OutOfRange(
                "the address failure window must be 1 to 86400 seconds".into(),
            ));
        }
        Ok(ValidConfig {
            config: self,
            listen,
            bootstrap,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_addresses_are_named() {
        assert!(NodeConfig::default().validate().is_ok());
        let bad = NodeConfig {
            bootstrap: vec!["localhost:4001".into()],
            ..NodeConfig::default()
        };
        let err = bad.validate().expect_err("bad address");
        assert!(err.to_string().contains("localhost:4001"), "{err}");
    }
}
