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
