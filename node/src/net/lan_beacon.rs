//! LAN discovery beacons: what a node multicasts so that devices on one LAN
//! find each other, readable only by holders of the agency network key.
//!
//! This module is the pure part (format, sealing, the table of peers found,
//! the processing budget); the socket lives in [`super::lan_discovery`].
//!
//! A beacon is `[BEACON_VERSION][24-byte nonce][ciphertext]`: XChaCha20-
//! Poly1305 under a key derived from the network key (domain-separated, see
//! [`BeaconKey::derive`]) with a fresh random nonce each time, over a body
//! padded to a fixed length. To anyone without the network key every beacon
//! is the same length of random-looking bytes, so beacons neither reveal the
//! sender's device key (its PeerId) and addresses, nor link to each other
//! or to the agency. Anything that does not open is dropped, before any
//! state is touched. (libp2p's mDNS, used before, broadcast PeerIds and
//! addresses in cleartext: audit M7.)
//!
//! What a beacon does not do: prove anything about the sender beyond
//! holding the network key. Whoever holds it (every device ever enrolled,
//! lost ones included) can read beacons and announce itself or others; a
//! dial to an announced peer is still authenticated by noise and admitted by
//! certificate (see [`super::admission`]), and a replayed beacon only makes
//! us dial an address again. The table is ours to bound: at most
//! [`MAX_PEERS`] entries, each kept for a lifetime we choose (never the
//! sender's), and at most [`MAX_OPENS_PER_SEC`] beacons opened per second.

use std::collections::HashMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::identity::Entropy;
use crate::trust::NetworkKey;
use crate::wire::{self, Format, Kind};

/// First byte of every beacon.
pub const BEACON_VERSION: u8 = 1;
/// Bytes of sealed body (before the tag): every beacon has this length.
const PADDED_LEN: usize = 1024;
/// Length of every beacon on the wire.
pub const BEACON_LEN: usize = 1 + 24 + PADDED_LEN + 16;
/// Listen addresses one beacon carries at most.
pub const MAX_ADDRESSES: usize = 12;
/// Bytes of one encoded address at most.
const MAX_ADDRESS_LEN: usize = 64;
/// Peers the table holds at most.
pub const MAX_PEERS: usize = 64;
/// Beacons opened (decrypted) per second at most; the rest are dropped unread.
pub const MAX_OPENS_PER_SEC: u32 = 32;
/// A beacon dated further than this from our clock is dropped (limits how
/// long a recorded beacon can be replayed; generous, as LAN clocks differ).
pub const MAX_SKEW_SECS: u64 = 3_600;

/// Associated data of every beacon: binds the ciphertext to this purpose.
const AAD: &[u8] = b"baro/lan-beacon/v1";
/// Key-derivation context of the beacon key.
const KEY_CONTEXT: &str = "baro/lan-beacon-key/v1";

/// The key beacons are sealed under, derived from the network key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BeaconKey([u8; 32]);

impl BeaconKey {
    /// The beacon key of `network`: a BLAKE3 key derivation with its own
    /// context, so it is independent of the pnet key and of every other use.
    pub fn derive(network: &NetworkKey) -> Self {
        BeaconKey(blake3::derive_key(KEY_CONTEXT, &network.0))
    }
}

impl std::fmt::Debug for BeaconKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeaconKey(<redacted>)")
    }
}

/// What a beacon says, once opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconBody {
    /// The sender's PeerId (its device key), as bytes.
    pub peer: Vec<u8>,
    /// Where it listens, as multiaddr bytes.
    pub addresses: Vec<Vec<u8>>,
    /// The sender's clock when it sent the beacon (Unix seconds).
    pub sent_at: u64,
}

impl Format for BeaconBody {
    const KIND: Kind = Kind::LanBeacon;
    const MAX_LEN: usize = PADDED_LEN - 2;
}

/// Why a beacon was dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BeaconError {
    /// Not the length or version of a beacon.
    #[error("not a beacon ({0} bytes)")]
    Malformed(usize),
    /// Did not open under our key: another agency, or noise.
    #[error("beacon does not open under this network's key")]
    Foreign,
    /// Opened, but its content is invalid.
    #[error("beacon content is invalid: {0}")]
    Invalid(String),
    /// Dated too far from our clock.
    #[error("beacon sent at {sent_at}, more than {MAX_SKEW_SECS} s from now ({now})")]
    Stale {
        /// When it says it was sent.
        sent_at: u64,
        /// Our clock.
        now: u64,
    },
}

/// A peer announced by an opened beacon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announced {
    /// The announced peer.
    pub peer: PeerId,
    /// Its listen addresses.
    pub addresses: Vec<Multiaddr>,
}

/// Seals a beacon announcing `peer` at `addresses` (at most
/// [`MAX_ADDRESSES`] of them are carried, longer ones are skipped).
pub fn seal(
    key: &BeaconKey,
    peer: &PeerId,
    addresses: &[Multiaddr],
    now: u64,
    entropy: &mut impl Entropy,
) -> Vec<u8> {
    let body = BeaconBody {
        peer: peer.to_bytes(),
        addresses: addresses
            .iter()
            .map(|a| a.to_vec())
            .filter(|a| a.len() <= MAX_ADDRESS_LEN)
            .take(MAX_ADDRESSES)
            .collect(),
        sent_at: now,
    };
    let encoded = wire::encode(&body);
    let mut padded = Vec::with_capacity(PADDED_LEN);
    // A body within the caps always fits: 12 addresses of 64 bytes, a
    // PeerId and the headers stay well under PADDED_LEN.
    let len = u16::try_from(encoded.len()).unwrap_or(u16::MAX);
    padded.extend(len.to_le_bytes());
    padded.extend(&encoded);
    padded.resize(PADDED_LEN, 0);
    let nonce: [u8; 24] = entropy.array();
    let ciphertext = XChaCha20Poly1305::new((&key.0).into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &padded,
                aad: AAD,
            },
        )
        // Only fails for plaintexts beyond 256 GiB.
        .expect("beacon within XChaCha20-Poly1305 limits");
    padded.zeroize();
    let mut out = Vec::with_capacity(BEACON_LEN);
    out.push(BEACON_VERSION);
    out.extend(nonce);
    out.extend(ciphertext);
    out
}

/// Opens a beacon received at `now`: its sender and addresses, or why not.
pub fn open(key: &BeaconKey, bytes: &[u8], now: u64) -> Result<Announced, BeaconError> {
    if bytes.len() != BEACON_LEN || bytes[0] != BEACON_VERSION {
        return Err(BeaconError::Malformed(bytes.len()));
    }
    let (nonce, ciphertext) = bytes[1..].split_at(24);
    let mut padded = XChaCha20Poly1305::new((&key.0).into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: AAD,
            },
        )
        .map_err(|_| BeaconError::Foreign)?;
    let result = parse(&padded, now);
    padded.zeroize();
    result
}

fn parse(padded: &[u8], now: u64) -> Result<Announced, BeaconError> {
    let invalid = |e: String| BeaconError::Invalid(e);
    let len = usize::from(u16::from_le_bytes([padded[0], padded[1]]));
    let encoded = padded
        .get(2..2 + len)
        .ok_or_else(|| invalid(format!("body length {len} beyond the beacon")))?;
    let body = wire::decode::<BeaconBody>(encoded).map_err(|e| invalid(e.to_string()))?;
    if body.sent_at.abs_diff(now) > MAX_SKEW_SECS {
        return Err(BeaconError::Stale {
            sent_at: body.sent_at,
            now,
        });
    }
    if body.addresses.len() > MAX_ADDRESSES {
        return Err(invalid(format!("{} addresses", body.addresses.len())));
    }
    let peer = PeerId::from_bytes(&body.peer).map_err(|e| invalid(format!("peer id: {e}")))?;
    let addresses = body
        .addresses
        .into_iter()
        .map(|a| Multiaddr::try_from(a).map_err(|e| invalid(format!("address: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Announced { peer, addresses })
}

/// The peers found on the LAN: bounded, each expiring a lifetime after its
/// last beacon (our lifetime, not the sender's).
#[derive(Debug)]
pub struct BeaconTable {
    ttl_secs: u64,
    peers: HashMap<PeerId, (Vec<Multiaddr>, u64)>,
    /// The second being counted, and beacons opened in it.
    window: (u64, u32),
}

impl BeaconTable {
    /// An empty table keeping each peer `ttl_secs` after its last beacon.
    pub fn new(ttl_secs: u64) -> Self {
        BeaconTable {
            ttl_secs,
            peers: HashMap::new(),
            window: (0, 0),
        }
    }

    /// Whether one more beacon may be opened at `now` (at most
    /// [`MAX_OPENS_PER_SEC`] a second; the caller drops the rest unopened).
    pub fn may_open(&mut self, now: u64) -> bool {
        if self.window.0 != now {
            self.window = (now, 0);
        }
        if self.window.1 >= MAX_OPENS_PER_SEC {
            return false;
        }
        self.window.1 += 1;
        true
    }

    /// Records an announcement at `now`; returns it if the peer is new here
    /// or announces other addresses (then it is worth dialing).
    pub fn observe(&mut self, announced: Announced, now: u64) -> Option<Announced> {
        self.expire(now);
        let expires = now.saturating_add(self.ttl_secs);
        if let Some((addresses, until)) = self.peers.get_mut(&announced.peer) {
            *until = expires;
            if *addresses == announced.addresses {
                return None;
            }
            addresses.clone_from(&announced.addresses);
            return Some(announced);
        }
        if self.peers.len() >= MAX_PEERS {
            // Full: the entry closest to expiry makes room.
            if let Some(oldest) = self
                .peers
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(peer, _)| *peer)
            {
                self.peers.remove(&oldest);
            }
        }
        self.peers
            .insert(announced.peer, (announced.addresses.clone(), expires));
        Some(announced)
    }

    /// Drops entries whose lifetime is over.
    pub fn expire(&mut self, now: u64) {
        self.peers.retain(|_, (_, until)| *until > now);
    }

    /// The peers in the table.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.keys()
    }

    /// How many peers the table holds.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{KeyPair, SeededEntropy};

    fn key(seed: u64) -> BeaconKey {
        BeaconKey::derive(&NetworkKey::generate(&mut SeededEntropy::new(seed)))
    }

    fn peer(seed: u64) -> PeerId {
        KeyPair::generate(&mut SeededEntropy::new(seed))
            .device_id()
            .peer_id()
            .expect("peer id")
    }

    fn addresses() -> Vec<Multiaddr> {
        vec![
            "/ip4/192.168.1.20/tcp/4001".parse().expect("addr"),
            "/ip6/fe80::1/tcp/4001".parse().expect("addr"),
        ]
    }

    #[test]
    fn a_network_member_opens_what_another_sealed() {
        let mut entropy = SeededEntropy::new(1);
        let sealed = seal(&key(7), &peer(2), &addresses(), 1_000, &mut entropy);
        assert_eq!(sealed.len(), BEACON_LEN);
        let opened = open(&key(7), &sealed, 1_010).expect("opens");
        assert_eq!(opened.peer, peer(2));
        assert_eq!(opened.addresses, addresses());
    }

    #[test]
    fn an_outsider_learns_no_device_key_and_cannot_link_beacons() {
        let mut entropy = SeededEntropy::new(1);
        let device = peer(2);
        let one = seal(&key(7), &device, &addresses(), 1_000, &mut entropy);
        let two = seal(&key(7), &device, &addresses(), 1_000, &mut entropy);
        let other = seal(&key(7), &peer(3), &addresses()[..1], 1_000, &mut entropy);
        // Without the network key: does not open, and nothing of the device
        // key or the addresses appears in the bytes.
        assert_eq!(open(&key(8), &one, 1_000), Err(BeaconError::Foreign));
        let needle = device.to_bytes();
        for beacon in [&one, &two] {
            assert!(!beacon.windows(needle.len()).any(|w| w == needle));
            assert!(!beacon.windows(4).any(|w| w == [192, 168, 1, 20]));
        }
        // The same announcement twice shares no bytes after the version
        // byte beyond chance, and every beacon has the same length.
        let shared = one[1..]
            .iter()
            .zip(&two[1..])
            .filter(|(a, b)| a == b)
            .count();
        assert!(shared < BEACON_LEN / 64, "{shared} bytes in common");
        assert_eq!(one.len(), other.len());
    }

    #[test]
    fn tampered_truncated_stale_and_garbage_beacons_are_dropped() {
        let mut entropy = SeededEntropy::new(1);
        let sealed = seal(&key(7), &peer(2), &addresses(), 10_000, &mut entropy);
        let mut flipped = sealed.clone();
        flipped[100] ^= 1;
        assert_eq!(open(&key(7), &flipped, 10_000), Err(BeaconError::Foreign));
        assert!(matches!(
            open(&key(7), &sealed[..500], 10_000),
            Err(BeaconError::Malformed(500))
        ));
        assert!(matches!(
            open(&key(7), &[], 10_000),
            Err(BeaconError::Malformed(0))
        ));
        assert!(matches!(
            open(&key(7), &sealed, 10_000 + MAX_SKEW_SECS + 1),
            Err(BeaconError::Stale { .. })
        ));
        assert!(matches!(
            open(&key(7), &vec![0xff; BEACON_LEN], 10_000),
            Err(BeaconError::Malformed(_))
        ));
    }

    #[test]
    fn the_table_is_bounded_and_expires_on_our_lifetime() {
        let mut table = BeaconTable::new(1_000);
        for seed in 0..(MAX_PEERS as u64 + 40) {
            let announced = Announced {
                peer: peer(100 + seed),
                addresses: addresses(),
            };
            assert!(table.observe(announced, 1_000 + seed).is_some());
            assert!(table.len() <= MAX_PEERS);
        }
        assert_eq!(table.len(), MAX_PEERS);
        // The newest stayed; the oldest made room.
        assert!(
            table
                .peers()
                .any(|p| *p == peer(100 + MAX_PEERS as u64 + 39))
        );
        assert!(!table.peers().any(|p| *p == peer(100)));
        // A repeat with the same addresses is not news; other addresses are.
        let again = Announced {
            peer: peer(100 + MAX_PEERS as u64 + 39),
            addresses: addresses(),
        };
        assert!(table.observe(again.clone(), 1_200).is_none());
        let moved = Announced {
            addresses: addresses()[..1].to_vec(),
            ..again
        };
        assert!(table.observe(moved, 1_200).is_some());
        // Our lifetime, whatever the sender thinks: each entry is gone
        // 1000 s after its last beacon.
        table.expire(2_199);
        assert_eq!(table.len(), 1);
        table.expire(2_201);
        assert!(table.is_empty());
    }

    #[test]
    fn at_most_the_budget_of_beacons_is_opened_each_second() {
        let mut table = BeaconTable::new(60);
        let opened = (0..1_000).filter(|_| table.may_open(5)).count();
        assert_eq!(opened, MAX_OPENS_PER_SEC as usize);
        assert!(table.may_open(6));
    }
}
