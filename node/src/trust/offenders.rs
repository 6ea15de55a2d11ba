//! Addresses that keep failing their handshakes, refused for a while.
//!
//! Keys are free, so a block per device key ([`super::Blocklist`]) stops
//! nobody who makes a new key per connection. An address is dearer: every
//! failed handshake from one counts against it, and past
//! [`OffenderPolicy::failures`] within [`OffenderPolicy::window_ms`] its
//! connections are refused on arrival, before any handshake or signature
//! check, for [`OffenderPolicy::ban_ms`].
//!
//! Only failures count, never successes or connections merely refused for
//! lack of room, so many honest devices behind one address (a NAT, or
//! loopback in tests) are never banned for being many; a ban of a shared
//! address does shut out its honest devices too, which is why the
//! threshold is well above what honest retries produce (a refused device
//! is also blocked by key, and redials every ten seconds at most).
//!
//! An IPv6 address counts as its /64: one subscriber gets a whole /64 and
//! could otherwise take a fresh address per connection.
//!
//! Bounded: at most [`OffenderPolicy::capacity`] addresses are remembered;
//! past that the record that would expire soonest goes. Every operation is
//! O(log n). Pure: time is an input (milliseconds on any monotonic clock).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

/// Where a connection comes from, as far as blame goes: an IPv4 address, or
/// the /64 prefix of an IPv6 address (IPv4-mapped IPv6 counts as IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RemoteAddress {
    /// An IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
}

impl From<IpAddr> for RemoteAddress {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => RemoteAddress::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => RemoteAddress::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    RemoteAddress::V6(prefix)
                }
            },
        }
    }
}

impl fmt::Display for RemoteAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteAddress::V4([a, b, c, d]) => write!(f, "{a}.{b}.{c}.{d}"),
            RemoteAddress::V6(prefix) => {
                for pair in prefix.chunks(2) {
                    write!(f, "{:x}:", u16::from_be_bytes([pair[0], pair[1]]))?;
                }
                write!(f, ":/64")
            }
        }
    }
}

/// When an address is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffenderPolicy {
    /// Failed handshakes within one window that get an address refused;
    /// 0: never.
    pub failures: u32,
    /// Length of a counting window, milliseconds (fixed windows: a burst
    /// straddling two windows may reach nearly twice `failures`).
    pub window_ms: u64,
    /// How long an address is refused, milliseconds.
    pub ban_ms: u64,
    /// Most addresses remembered.
    pub capacity: usize,
}

impl Default for OffenderPolicy {
    fn default() -> Self {
        OffenderPolicy {
            failures: 20,
            window_ms: 60_000,
            ban_ms: 300_000,
            capacity: 4096,
        }
    }
}

/// An address that has just been banned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ban {
    /// The address.
    pub address: RemoteAddress,
    /// When the ban ends (same clock as `now`).
    pub until: u64,
}

#[derive(Clone, Copy, Debug)]
struct Record {
    window_start: u64,
    failures: u32,
    banned_until: u64,
}

impl Record {
    /// When this record stops mattering.
    fn expires(&self, policy: &OffenderPolicy) -> u64 {
        self.window_start
            .saturating_add(policy.window_ms)
            .max(self.banned_until)
    }
}

/// Failed handshakes per address, and the addresses refused because of them.
#[derive(Debug)]
pub struct Offenders {
    policy: OffenderPolicy,
    records: HashMap<RemoteAddress, Record>,
    /// Every record by the time it expires: the front goes first.
    expiry: BTreeSet<(u64, RemoteAddress)>,
}

impl Offenders {
    /// An empty table under `policy`.
    pub fn new(policy: OffenderPolicy) -> Self {
        Offenders {
            policy,
            records: HashMap::new(),
            expiry: BTreeSet::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &OffenderPolicy {
        &self.policy
    }

    /// When the ban on `address` ends, if one is in force at `now`.
    pub fn banned(&self, address: &RemoteAddress, now: u64) -> Option<u64> {
        self.records
            .get(address)
            .map(|record| record.banned_until)
            .filter(|until| *until > now)
    }

    /// Counts a failed handshake from `address` at `now`; returns the ban
    /// if this failure started one.
    pub fn failed(&mut self, address: RemoteAddress, now: u64) -> Option<Ban> {
        if self.policy.failures == 0 || self.policy.capacity == 0 {
            return None;
        }
        self.prune(now);
        let mut record = match self.records.get(&address) {
            Some(record) => {
                self.expiry.remove(&(record.expires(&self.policy), address));
                *record
            }
            None => {
                if self.records.len() >= self.policy.capacity
                    && let Some(first) = self.expiry.pop_first()
                {
                    self.records.remove(&first.1);
                }
                Record {
                    window_start: now,
                    failures: 0,
                    banned_until: 0,
                }
            }
        };
        let mut ban = None;
        if record.banned_until <= now {
            if now >= record.window_start.saturating_add(self.policy.window_ms) {
                record.window_start = now;
                record.failures = 0;
            }
            record.failures += 1;
            if record.failures >= self.policy.failures {
                record.banned_until = now.saturating_add(self.policy.ban_ms);
                record.failures = 0;
                ban = Some(Ban {
                    address,
                    until: record.banned_until,
                });
            }
        }
        self.expiry.insert((record.expires(&self.policy), address));
        self.records.insert(address, record);
        ban
    }

    /// Forgets records that no longer matter at `now`.
    pub fn prune(&mut self, now: u64) {
        while let Some(&(expires, address)) = self.expiry.first() {
            if expires > now {
                break;
            }
            self.expiry.pop_first();
            self.records.remove(&address);
        }
    }

    /// Addresses remembered (counting or banned).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> RemoteAddress {
        RemoteAddress::V4([10, 0, 0, last])
    }

    fn policy() -> OffenderPolicy {
        OffenderPolicy {
            failures: 3,
            window_ms: 1_000,
            ban_ms: 10_000,
            capacity: 4,
        }
    }

    #[test]
    fn an_address_failing_past_the_threshold_is_banned_until_the_ban_ends() {
        let mut offenders = Offenders::new(policy());
        assert_eq!(offenders.failed(v4(1), 0), None);
        assert_eq!(offenders.failed(v4(1), 100), None);
        assert_eq!(offenders.banned(&v4(1), 100), None);
        let ban = offenders.failed(v4(1), 200).expect("third failure bans");
        assert_eq!(ban.until, 10_200);
        assert_eq!(offenders.banned(&v4(1), 10_199), Some(10_200));
        assert_eq!(offenders.banned(&v4(1), 10_200), None);
        // Another address is untouched.
        assert_eq!(offenders.banned(&v4(2), 300), None);
    }

    #[test]
    fn failures_spread_over_windows_never_ban() {
        let mut offenders = Offenders::new(policy());
        for second in 0..20u64 {
            // Two per window, the threshold being three.
            assert_eq!(offenders.failed(v4(1), second * 1_000), None);
            assert_eq!(offenders.failed(v4(1), second * 1_000 + 500), None);
        }
        assert_eq!(offenders.banned(&v4(1), 20_000), None);
    }

    #[test]
    fn a_failure_while_banned_neither_extends_nor_counts() {
        let mut offenders = Offenders::new(policy());
        for at in [0, 1, 2] {
            offenders.failed(v4(1), at);
        }
        assert_eq!(offenders.failed(v4(1), 5_000), None);
        assert_eq!(offenders.banned(&v4(1), 10_001), Some(10_002));
        assert_eq!(offenders.banned(&v4(1), 10_002), None);
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_bans_over_mere_counts() {
        let mut offenders = Offenders::new(policy());
        for at in [0, 1, 2] {
            offenders.failed(v4(1), at);
        }
        // Many addresses failing once each: never more than the capacity,
        // and the ban (which expires last) survives them.
        for last in 2..200u8 {
            offenders.failed(v4(last), 10);
            assert!(offenders.len() <= 4);
        }
        assert!(offenders.banned(&v4(1), 20).is_some());
        // Once everything has expired, pruning empties the table.
        offenders.prune(20_000);
        assert!(offenders.is_empty());
    }

    #[test]
    fn zero_failures_means_never() {
        let mut offenders = Offenders::new(OffenderPolicy {
            failures: 0,
            ..policy()
        });
        for at in 0..100 {
            assert_eq!(offenders.failed(v4(1), at), None);
        }
        assert!(offenders.is_empty());
    }

    #[test]
    fn ipv6_counts_per_slash_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(RemoteAddress::from(a), RemoteAddress::from(b));
        assert_ne!(RemoteAddress::from(a), RemoteAddress::from(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(
            RemoteAddress::from(mapped),
            RemoteAddress::V4([192, 0, 2, 7])
        );
        assert_eq!(RemoteAddress::from(a).to_string(), "2001:db8:1:2::/64");
        assert_eq!(RemoteAddress::V4([127, 0, 0, 1]).to_string(), "127.0.0.1");
    }
}
