//! How much others can make this node spend: limits on handshakes,
//! admissions, connections and memory, per role, from the configuration.
//!
//! Anyone holding the agency network key (every bundle ever issued, lost
//! phones included) can open connections; only a certificate gets one
//! admitted. Each layer bounds what it costs before that:
//!
//! | what | limit | enforced by |
//! |---|---|---|
//! | addresses whose handshakes keep failing | refused for `block_secs` | [`super::inbound`] |
//! | incoming handshakes under way | `max_pending_incoming`, fair per address | [`super::inbound`] |
//! | admission exchanges under way | `max_admissions` | [`super::admission`] |
//! | keys refused at admission | blocked for `block_secs` | [`crate::trust::Blocklist`] |
//! | established connections, in total and per peer | `max_connections`, `max_connections_per_peer` | libp2p `connection_limits` |
//! | process memory | `max_memory_percent` of the machine | libp2p `memory_connection_limits` |
//!
//! A device needs few connections (it keeps about twice `max_peers`); a
//! relay serves a field office and its peer relays, so its defaults are
//! larger. Each connection, pending or established, is one file descriptor:
//! a device's defaults stay well inside the usual limit of 1024.

use libp2p::{connection_limits, memory_connection_limits};

use crate::config::NodeConfig;
use crate::trust::OffenderPolicy;

/// Pending incoming handshakes on a device.
pub const DEVICE_PENDING_INCOMING: u32 = 32;
/// Pending incoming handshakes on a relay (a field office reconnecting at once).
pub const RELAY_PENDING_INCOMING: u32 = 256;
/// Established connections on a device (it trims itself to twice
/// `max_peers`; this is the hard ceiling above that).
pub const DEVICE_CONNECTIONS: u32 = 256;
/// Established connections on a relay.
pub const RELAY_CONNECTIONS: u32 = 4096;
/// Admissions beyond the pending-incoming limit, for this node's own dials.
pub const ADMISSIONS_FOR_DIALS: u32 = 16;
/// Addresses remembered by the failed-handshake tracker.
pub const OFFENDER_CAPACITY: usize = 4096;

/// Every limit, resolved for this node's role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Incoming handshakes under way at once.
    pub pending_incoming: u32,
    /// Established connections.
    pub connections: u32,
    /// Established connections with one peer.
    pub per_peer: u32,
    /// Admission exchanges under way, both ways.
    pub admissions: u32,
    /// Refuse connections above this share of the machine's memory.
    pub memory_percent: Option<u8>,
    /// When an address is refused for failed handshakes.
    pub offenders: OffenderPolicy,
}

impl Limits {
    /// The limits `config` sets, with the defaults of its role (relay or
    /// device) where it sets none.
    pub fn for_config(config: &NodeConfig) -> Self {
        let relay = config.relay.is_some();
        let pending_incoming = config.max_pending_incoming.unwrap_or(if relay {
            RELAY_PENDING_INCOMING
        } else {
            DEVICE_PENDING_INCOMING
        });
        let device_connections = u32::try_from(config.max_peers.saturating_mul(4))
            .unwrap_or(u32::MAX)
            .max(DEVICE_CONNECTIONS);
        Limits {
            pending_incoming,
            connections: config.max_connections.unwrap_or(if relay {
                RELAY_CONNECTIONS
            } else {
                device_connections
            }),
            per_peer: config.max_connections_per_peer,
            admissions: config
                .max_admissions
                .unwrap_or(pending_incoming.saturating_add(ADMISSIONS_FOR_DIALS)),
            memory_percent: config.max_memory_percent,
            offenders: OffenderPolicy {
                failures: config.address_failures,
                window_ms: config.address_window_secs.saturating_mul(1000),
                ban_ms: config.block_secs.saturating_mul(1000),
                capacity: OFFENDER_CAPACITY,
            },
        }
    }

    /// libp2p's connection limits. Its pending-incoming limit is only a
    /// backstop at twice ours: the inbound guard decides first, fairly, and
    /// handshakes it evicted are still counted by libp2p for a moment.
    pub fn connection_limits(&self) -> connection_limits::Behaviour {
        connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(self.pending_incoming.saturating_mul(2)))
                .with_max_established(Some(self.connections))
                .with_max_established_per_peer(Some(self.per_peer)),
        )
    }

    /// libp2p's memory limit, if one is set.
    pub fn memory_limit(&self) -> Option<memory_connection_limits::Behaviour> {
        self.memory_percent.map(|percent| {
            memory_connection_limits::Behaviour::with_max_percentage(f64::from(percent) / 100.0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RelayConfig;

    #[test]
    fn devices_and_relays_get_their_own_defaults_and_settings_win() {
        let device = Limits::for_config(&NodeConfig::default());
        assert_eq!(device.pending_incoming, DEVICE_PENDING_INCOMING);
        assert_eq!(device.connections, DEVICE_CONNECTIONS);
        assert_eq!(
            device.admissions,
            DEVICE_PENDING_INCOMING + ADMISSIONS_FOR_DIALS
        );
        assert_eq!(device.offenders.ban_ms, 300_000);
        let relay = Limits::for_config(&NodeConfig {
            relay: Some(RelayConfig::default()),
            ..NodeConfig::default()
        });
        assert_eq!(relay.pending_incoming, RELAY_PENDING_INCOMING);
        assert_eq!(relay.connections, RELAY_CONNECTIONS);
        let many_peers = Limits::for_config(&NodeConfig {
            max_peers: 200,
            ..NodeConfig::default()
        });
        assert_eq!(many_peers.connections, 800);
        let set = Limits::for_config(&NodeConfig {
            max_pending_incoming: Some(4),
            max_connections: Some(10),
            max_admissions: Some(2),
            ..NodeConfig::default()
        });
        assert_eq!(
            (set.pending_incoming, set.connections, set.admissions),
            (4, 10, 2)
        );
    }
}
