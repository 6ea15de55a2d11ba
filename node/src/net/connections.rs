//! Discovery and connections: which peers this node holds, how each was
//! found, whom to dial next and whom to let go. The actor applies what this
//! component decides to the swarm.
//!
//! Sans-IO: peers and addresses are libp2p values, time is an input, and
//! nothing here dials or disconnects. The rules:
//!
//! - **Dial throttling.** A peer is dialled at most once per
//!   [`REDIAL_AFTER`] (Kademlia reports a peer again after every failed
//!   dial; without this a peer that went away was redialled in a tight
//!   loop), and only while connected peers plus dials in flight stay under
//!   `max_peers` (Kademlia reports dozens of peers at once: counting only
//!   connected peers dialled them all).
//! - **Full peers.** A peer we dialled that hung up soon after admitting us
//!   (within [`FULL_PEER_WINDOW`] plus two discovery rounds) is at its
//!   connection limit: discovery leaves it alone for [`FULL_PEER_BACKOFF`]
//!   (redialling full peers every round kept a simulated mesh busy with
//!   handshakes).
//! - **Lookups.** A node with no peer dials its bootstrap addresses; one
//!   short of peers runs a Kademlia lookup, less and less often (doubling
//!   up to [`MAX_LOOKUP_INTERVAL`]); one with all the peers it may dial
//!   looks for no more (every node querying every round was a third of the
//!   CPU of a 104-node simulation once its mesh had formed).
//! - **Trimming.** A device (not a relay) lets go of connections past twice
//!   `max_peers`: peers outside its gossip meshes first, the newest first;
//!   relays and bootstrap or hand-made dials stay. Done on the discovery
//!   round rather than on connecting, so a peer's lookup through us
//!   completes first (hanging up at once made every lookup dial again).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::node::{Discovery, PeerInfo};
use crate::sync::Dedup;
use crate::trust::Role;

/// Pending dial sources (and dial times) remembered.
const PENDING_CAPACITY: usize = 1024;
/// Shortest time between two dials of the same peer.
pub(crate) const REDIAL_AFTER: Duration = Duration::from_secs(10);
/// A dialled connection closed this soon (plus two discovery rounds, when a
/// full peer trims) after admission was refused for lack of room.
pub(crate) const FULL_PEER_WINDOW: Duration = Duration::from_secs(3);
/// How long discovery leaves a full peer alone.
pub(crate) const FULL_PEER_BACKOFF: Duration = Duration::from_secs(600);
/// Longest wait between two Kademlia lookups of a node short of peers.
pub(crate) const MAX_LOOKUP_INTERVAL: Duration = Duration::from_secs(300);
/// With no peer, the first wait before the bootstrap addresses are dialled
/// again (then doubling up to the discovery interval).
pub(crate) const ALONE_REDIAL_FIRST: Duration = Duration::from_secs(1);

/// What a discovery round asks of the swarm.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Round {
    /// Bootstrap addresses to dial (the node has no peer).
    pub(crate) dial: Vec<Multiaddr>,
    /// Run a Kademlia lookup.
    pub(crate) lookup: bool,
    /// Connections to let go (over the limit).
    pub(crate) disconnect: Vec<PeerId>,
}

/// The node's peers and the discovery state around them.
#[derive(Debug)]
pub(crate) struct Connections {
    /// Admitted peers, by peer id.
    peers: HashMap<PeerId, PeerInfo>,
    /// How each peer we are dialling was found.
    pending: HashMap<PeerId, Discovery>,
    bootstrap: HashSet<Multiaddr>,
    /// Addresses dialled on request.
    manual: Dedup<Multiaddr>,
    listening: Vec<Multiaddr>,
    /// When each peer was last dialled by discovery (or may be again, for
    /// a full peer: a time in the future).
    last_dial: HashMap<PeerId, Instant>,
    /// When Kademlia may look for more peers next, and the wait after that.
    next_lookup: (Instant, Duration),
    /// When each peer was admitted.
    admitted_at: HashMap<PeerId, Instant>,
    /// Peers we dialled (not those that dialled us).
    dialled: HashSet<PeerId>,
    /// Relays this device holds (or asked for) a circuit reservation on,
    /// by the listener that asked.
    reservations: HashMap<ListenerId, PeerId>,
    max_peers: usize,
    discovery_interval: Duration,
    /// A relay: it keeps every connection and reserves no circuits.
    relay: bool,
    /// While no peer is connected: when to dial the bootstrap addresses
    /// again, and the wait after that.
    alone_redial: Option<(Instant, Duration)>,
}

impl Connections {
    /// No peers yet; `bootstrap` dialled when the node has none.
    pub(crate) fn new(
        bootstrap: impl IntoIterator<Item = Multiaddr>,
        max_peers: usize,
        discovery_interval: Duration,
        relay: bool,
        now: Instant,
    ) -> Self {
        Connections {
            peers: HashMap::new(),
            pending: HashMap::new(),
            bootstrap: bootstrap.into_iter().collect(),
            manual: Dedup::new(PENDING_CAPACITY),
            listening: Vec::new(),
            last_dial: HashMap::new(),
            next_lookup: (now, Duration::ZERO),
            admitted_at: HashMap::new(),
            dialled: HashSet::new(),
            reservations: HashMap::new(),
            max_peers,
            discovery_interval,
            relay,
            alone_redial: None,
        }
    }

    /// Bootstrap addresses to dial again at `now` (checked often) while no
    /// peer is connected: after [`ALONE_REDIAL_FIRST`], then 2 s, 4 s, … up
    /// to the discovery interval, so a relay back from a restart is found
    /// within seconds rather than at the next round (finding 20: about
    /// 30 s). Starts over once a peer was connected.
    pub(crate) fn alone_redial(&mut self, now: Instant) -> Vec<Multiaddr> {
        if !self.peers.is_empty() || self.bootstrap.is_empty() {
            self.alone_redial = None;
            return Vec::new();
        }
        let (next, wait) = *self
            .alone_redial
            .get_or_insert((now + ALONE_REDIAL_FIRST, ALONE_REDIAL_FIRST));
        if now < next {
            return Vec::new();
        }
        self.alone_redial = Some((now + wait, (wait * 2).min(self.discovery_interval)));
        self.bootstrap_dials()
    }

    /// Admitted peers.
    pub(crate) fn peers(&self) -> &HashMap<PeerId, PeerInfo> {
        &self.peers
    }

    /// Whether `peer` is admitted and connected.
    pub(crate) fn holds(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// The bootstrap addresses.
    pub(crate) fn bootstrap(&self) -> &HashSet<Multiaddr> {
        &self.bootstrap
    }

    /// The addresses this node listens on.
    pub(crate) fn listening(&self) -> &[Multiaddr] {
        &self.listening
    }

    /// A listener opened on `address`.
    pub(crate) fn listening_on(&mut self, address: Multiaddr) {
        self.listening.push(address);
    }

    /// A listener's `address` went away.
    pub(crate) fn stopped_listening(&mut self, address: &Multiaddr) {
        self.listening.retain(|a| a != address);
    }

    /// The bootstrap addresses worth dialling (not our own).
    pub(crate) fn bootstrap_dials(&self) -> Vec<Multiaddr> {
        self.bootstrap
            .iter()
            .filter(|address| !self.listening.contains(address))
            .cloned()
            .collect()
    }

    /// `address` is being dialled on request (its peer is shown as dialed).
    pub(crate) fn dialling_by_hand(&mut self, address: Multiaddr) {
        self.manual.insert(address);
    }

    /// The discovery round at `now`: bootstrap dials when alone, a lookup
    /// when short of peers and due, connections to let go when over the
    /// limit (`in_mesh`: the peers in our gossip meshes).
    pub(crate) fn round(&mut self, in_mesh: &HashSet<PeerId>, now: Instant) -> Round {
        let mut round = Round {
            disconnect: self.surplus(in_mesh, now),
            ..Round::default()
        };
        if self.peers.is_empty() {
            self.next_lookup = (now, self.discovery_interval);
            round.dial = self.bootstrap_dials();
        } else if self.peers.len() < self.max_peers && now >= self.next_lookup.0 {
            round.lookup = true;
            let wait = self.next_lookup.1.max(self.discovery_interval);
            self.next_lookup = (now + wait, (wait * 2).min(MAX_LOOKUP_INTERVAL));
        }
        round
    }

    /// Whether discovery may dial `peer` (found by `source`) now; if so,
    /// the dial is recorded. The caller has already left out this node,
    /// connected peers and blocked ones.
    pub(crate) fn may_dial(&mut self, peer: PeerId, source: Discovery, now: Instant) -> bool {
        if self.peers.len() + self.dials_in_flight(now) >= self.max_peers {
            return false;
        }
        if self
            .last_dial
            .get(&peer)
            .is_some_and(|at| now.saturating_duration_since(*at) < REDIAL_AFTER)
        {
            return false;
        }
        if self.last_dial.len() >= PENDING_CAPACITY {
            self.last_dial
                .retain(|_, at| now.saturating_duration_since(*at) < REDIAL_AFTER);
        }
        self.last_dial.insert(peer, now);
        if self.pending.len() >= PENDING_CAPACITY {
            self.pending.clear();
        }
        self.pending.entry(peer).or_insert(source);
        true
    }

    /// Our own dials still under way.
    fn dials_in_flight(&self, now: Instant) -> usize {
        self.pending
            .keys()
            .filter(|peer| {
                self.last_dial
                    .get(peer)
                    .is_some_and(|at| now.saturating_duration_since(*at) < REDIAL_AFTER)
            })
            .count()
    }

    /// A dial of `peer` failed.
    pub(crate) fn dial_failed(&mut self, peer: &PeerId) {
        self.pending.remove(peer);
    }

    /// How the peer behind a new connection was found.
    pub(crate) fn classify(&mut self, peer: PeerId, endpoint: &ConnectedPoint) -> Discovery {
        match (self.pending.remove(&peer), endpoint) {
            (Some(source), _) => source,
            (None, ConnectedPoint::Dialer { address, .. }) if self.is_bootstrap(address) => {
                Discovery::Bootstrap
            }
            (None, ConnectedPoint::Dialer { address, .. }) if self.manual.contains(address) => {
                Discovery::Dialed
            }
            // Kademlia dials peers it learns of during its own queries.
            (None, ConnectedPoint::Dialer { .. }) => Discovery::Kademlia,
            (None, ConnectedPoint::Listener { .. }) => Discovery::Inbound,
        }
    }

    fn is_bootstrap(&self, address: &Multiaddr) -> bool {
        self.bootstrap.iter().any(|b| {
            // A bootstrap address may or may not carry /p2p/<id>.
            address.iter().zip(b.iter()).all(|(x, y)| x == y)
        })
    }

    /// A second connection to an admitted peer (both sides dialled at
    /// once): our own discovery says more than "inbound".
    pub(crate) fn also_found(&mut self, peer: &PeerId, found_by: Discovery) {
        if let Some(info) = self.peers.get_mut(peer)
            && info.found_by == Discovery::Inbound
        {
            info.found_by = found_by;
        }
    }

    /// `peer` was admitted (we dialled it if `dialled`). Returns whether it
    /// is the first peer (the moment to look for the rest of the mesh).
    pub(crate) fn admitted(
        &mut self,
        peer: PeerId,
        info: PeerInfo,
        dialled: bool,
        now: Instant,
    ) -> bool {
        self.admitted_at.insert(peer, now);
        if dialled {
            self.dialled.insert(peer);
        }
        self.peers.insert(peer, info);
        self.peers.len() == 1
    }

    /// The last connection to `peer` closed: the peer it was, if admitted.
    /// A peer we dialled that hung up soon after admitting us is full, and
    /// left alone for [`FULL_PEER_BACKOFF`].
    pub(crate) fn closed(&mut self, peer: &PeerId, now: Instant) -> Option<PeerInfo> {
        if let (Some(at), true) = (self.admitted_at.remove(peer), self.dialled.remove(peer)) {
            let window = FULL_PEER_WINDOW + 2 * self.discovery_interval;
            if now.saturating_duration_since(at) < window {
                self.last_dial.insert(*peer, now + FULL_PEER_BACKOFF);
            }
        }
        self.peers.remove(peer)
    }

    /// The connections to let go: past twice `max_peers` on a device,
    /// peers outside our meshes first, then the newest.
    fn surplus(&self, in_mesh: &HashSet<PeerId>, now: Instant) -> Vec<PeerId> {
        let limit = self.max_peers.saturating_mul(2);
        if self.relay || self.peers.len() <= limit {
            return Vec::new();
        }
        let mut spare: Vec<(PeerId, Instant)> = self
            .peers
            .iter()
            .filter(|(_, info)| {
                info.role != Role::Relay
                    && matches!(
                        info.found_by,
                        Discovery::Inbound | Discovery::Kademlia | Discovery::Mdns
                    )
            })
            .map(|(peer, _)| (*peer, self.admitted_at.get(peer).copied().unwrap_or(now)))
            .collect();
        spare.sort_by(|a, b| (in_mesh.contains(&a.0), b.1).cmp(&(in_mesh.contains(&b.0), a.1)));
        let surplus = self.peers.len() - limit;
        spare
            .into_iter()
            .take(surplus)
            .map(|(peer, _)| peer)
            .collect()
    }

    /// The circuit address a device asks a relay it dialled for (so that
    /// peers that cannot reach it directly can through the relay), once per
    /// relay; `None` on relays, for other peers, for inbound connections and
    /// for connections that are themselves relayed.
    pub(crate) fn circuit_to_reserve(
        &mut self,
        peer: PeerId,
        role: Role,
        endpoint: &ConnectedPoint,
    ) -> Option<Multiaddr> {
        if self.relay || role != Role::Relay || self.reservations.values().any(|r| *r == peer) {
            return None;
        }
        let ConnectedPoint::Dialer { address, .. } = endpoint else {
            return None;
        };
        if address.iter().any(|p| p == Protocol::P2pCircuit) {
            return None;
        }
        let base: Multiaddr = address
            .iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .collect();
        Some(base.with(Protocol::P2p(peer)).with(Protocol::P2pCircuit))
    }

    /// A circuit reservation on `relay` was asked for by `listener`.
    pub(crate) fn reserved(&mut self, listener: ListenerId, relay: PeerId) {
        self.reservations.insert(listener, relay);
    }

    /// `listener` closed: its `addresses` are no longer ours, and if it was
    /// a circuit reservation, the relay it was on (asked again when the
    /// device dials it next).
    pub(crate) fn listener_closed(
        &mut self,
        listener: ListenerId,
        addresses: &[Multiaddr],
    ) -> Option<PeerId> {
        self.listening.retain(|a| !addresses.contains(a));
        self.reservations.remove(&listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{DeviceId, KeyPair, SeededEntropy};
    use crate::trust::OrgUnit;
    use libp2p::core::Endpoint;
    use libp2p::core::transport::PortUse;

    const ROUND: Duration = Duration::from_secs(30);

    fn device(seed: u64) -> DeviceId {
        KeyPair::generate(&mut SeededEntropy::new(seed)).device_id()
    }

    fn peer(seed: u64) -> PeerId {
        device(seed).peer_id().expect("an ed25519 peer id")
    }

    fn info(seed: u64, role: Role, found_by: Discovery) -> PeerInfo {
        PeerInfo {
            device: device(seed),
            user_id: "kim".into(),
            display_name: "김민지".into(),
            org_unit: "MOIS/Division 2".parse::<OrgUnit>().expect("org unit"),
            role,
            address: "/memory/1".into(),
            found_by,
            label: None,
        }
    }

    fn dialer(address: &str) -> ConnectedPoint {
        ConnectedPoint::Dialer {
            address: address.parse().expect("address"),
            role_override: Endpoint::Dialer,
            port_use: PortUse::New,
        }
    }

    fn connections(max_peers: usize, relay: bool, now: Instant) -> Connections {
        let bootstrap: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().expect("address");
        Connections::new([bootstrap], max_peers, ROUND, relay, now)
    }

    #[test]
    fn alone_it_dials_its_bootstrap_and_short_of_peers_it_looks_less_and_less_often() {
        let t0 = Instant::now();
        let mut c = connections(4, false, t0);
        let alone = c.round(&HashSet::new(), t0);
        assert_eq!(alone.dial.len(), 1);
        assert!(!alone.lookup);
        c.admitted(
            peer(1),
            info(1, Role::Member, Discovery::Bootstrap),
            true,
            t0,
        );
        // Short of peers: a lookup now, then after 30 s, 60 s, 120 s ...
        let mut at = t0;
        let mut waits = Vec::new();
        let mut last: Option<Instant> = None;
        for _ in 0..2000 {
            at += Duration::from_secs(1);
            if c.round(&HashSet::new(), at).lookup {
                if let Some(previous) = last {
                    waits.push((at - previous).as_secs());
                }
                last = Some(at);
            }
        }
        assert_eq!(waits[..5], [30, 60, 120, 240, 300]);
        assert!(waits[5..].iter().all(|w| *w == 300), "{waits:?}");
        // With all the peers it may have, it looks for none.
        for seed in 2..=4 {
            c.admitted(
                peer(seed),
                info(seed, Role::Member, Discovery::Kademlia),
                true,
                at,
            );
        }
        assert!(!c.round(&HashSet::new(), at + MAX_LOOKUP_INTERVAL).lookup);
    }

    #[test]
    fn alone_it_redials_its_bootstrap_after_1_2_4_seconds_up_to_the_round_and_anew_after_a_peer() {
        let t0 = Instant::now();
        let mut c = connections(4, false, t0);
        let dials = |c: &mut Connections, from: Instant| -> Vec<u64> {
            (0..=200u64)
                .filter(|ms100| {
                    !c.alone_redial(from + Duration::from_millis(ms100 * 100))
                        .is_empty()
                })
                .map(|ms100| ms100 / 10)
                .collect()
        };
        // Checked every 100 ms for 20 s: dials at 1, 2, 4, 8 and 16 s.
        assert_eq!(dials(&mut c, t0), [1, 2, 4, 8, 16]);
        // Up to the discovery interval, no further.
        let mut at = t0 + Duration::from_secs(20);
        let mut last: Option<Instant> = None;
        let mut waits = Vec::new();
        for _ in 0..3000 {
            at += Duration::from_millis(100);
            if !c.alone_redial(at).is_empty() {
                if let Some(previous) = last {
                    waits.push((at - previous).as_secs());
                }
                last = Some(at);
            }
        }
        assert!(waits.iter().rev().take(3).all(|w| *w == 30), "{waits:?}");
        // With a peer: nothing; once alone again, from 1 s anew.
        c.admitted(
            peer(1),
            info(1, Role::Relay, Discovery::Bootstrap),
            true,
            at,
        );
        assert!(c.alone_redial(at + Duration::from_secs(60)).is_empty());
        c.closed(&peer(1), at + Duration::from_secs(60));
        assert_eq!(
            dials(&mut c, at + Duration::from_secs(60)),
            [1, 2, 4, 8, 16]
        );
        // Without a bootstrap address there is nothing to dial.
        let mut none = Connections::new([], 4, ROUND, false, t0);
        assert!(none.alone_redial(t0 + Duration::from_secs(5)).is_empty());
    }

    #[test]
    fn dials_in_flight_count_toward_the_limit_and_a_peer_is_not_redialled_at_once() {
        let t0 = Instant::now();
        let mut c = connections(3, false, t0);
        // Kademlia reports many peers at once: only three dials go out.
        let dialled = (10..20)
            .filter(|seed| c.may_dial(peer(*seed), Discovery::Kademlia, t0))
            .count();
        assert_eq!(dialled, 3);
        // They all fail; the same peer is not dialled again within 10 s.
        for seed in 10..13 {
            c.dial_failed(&peer(seed));
        }
        assert!(!c.may_dial(peer(10), Discovery::Kademlia, t0 + Duration::from_secs(5)));
        assert!(c.may_dial(peer(10), Discovery::Kademlia, t0 + REDIAL_AFTER));
    }

    #[test]
    fn a_peer_that_hangs_up_right_after_admitting_us_is_left_alone_for_ten_minutes() {
        let t0 = Instant::now();
        let mut c = connections(8, false, t0);
        let full = peer(1);
        assert!(c.may_dial(full, Discovery::Kademlia, t0));
        let found_by = c.classify(full, &dialer("/ip4/10.0.0.9/tcp/4001"));
        assert_eq!(found_by, Discovery::Kademlia);
        c.admitted(full, info(1, Role::Member, found_by), true, t0);
        let hung_up = t0 + Duration::from_secs(2);
        assert!(c.closed(&full, hung_up).is_some());
        assert!(!c.may_dial(full, Discovery::Kademlia, hung_up + REDIAL_AFTER));
        assert!(!c.may_dial(full, Discovery::Kademlia, hung_up + FULL_PEER_BACKOFF));
        assert!(c.may_dial(
            full,
            Discovery::Kademlia,
            hung_up + FULL_PEER_BACKOFF + REDIAL_AFTER
        ));
        // A peer that stayed a while and then left is simply redialled later.
        let stayed = peer(2);
        c.admitted(stayed, info(2, Role::Member, Discovery::Kademlia), true, t0);
        let left = t0 + Duration::from_secs(600);
        c.closed(&stayed, left);
        assert!(c.may_dial(stayed, Discovery::Kademlia, left + REDIAL_AFTER));
    }

    #[test]
    fn over_twice_the_limit_a_device_lets_go_of_outsiders_first_then_the_newest_and_keeps_relays() {
        let t0 = Instant::now();
        let mut c = connections(2, false, t0);
        let relay = peer(1);
        let bootstrap = peer(2);
        c.admitted(relay, info(1, Role::Relay, Discovery::Inbound), false, t0);
        c.admitted(
            bootstrap,
            info(2, Role::Member, Discovery::Bootstrap),
            true,
            t0,
        );
        let mut spare = Vec::new();
        for seed in 3..=7 {
            let at = t0 + Duration::from_secs(seed);
            c.admitted(
                peer(seed),
                info(seed, Role::Member, Discovery::Inbound),
                false,
                at,
            );
            spare.push(peer(seed));
        }
        // Seven peers, limit four: three go. Peers 3 and 7 are in a mesh.
        let in_mesh: HashSet<PeerId> = [peer(3), peer(7)].into();
        let round = c.round(&in_mesh, t0 + Duration::from_secs(60));
        assert_eq!(round.disconnect, [peer(6), peer(5), peer(4)]);
        // A relay keeps everyone.
        let mut on_relay = connections(2, true, t0);
        for seed in 1..=7 {
            on_relay.admitted(
                peer(seed),
                info(seed, Role::Member, Discovery::Inbound),
                false,
                t0,
            );
        }
        assert!(on_relay.round(&in_mesh, t0).disconnect.is_empty());
    }

    #[test]
    fn a_device_reserves_a_circuit_once_per_relay_it_dialled_directly_and_again_after_it_closed() {
        let t0 = Instant::now();
        let mut c = connections(8, false, t0);
        let relay = peer(1);
        let direct = dialer("/ip4/10.0.0.1/tcp/4001");
        let circuit = c
            .circuit_to_reserve(relay, Role::Relay, &direct)
            .expect("a circuit");
        assert_eq!(
            circuit.to_string(),
            format!("/ip4/10.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit")
        );
        let listener = ListenerId::next();
        c.listening_on(circuit.clone());
        c.reserved(listener, relay);
        assert_eq!(c.circuit_to_reserve(relay, Role::Relay, &direct), None);
        // The relay goes away: its address is no longer ours, and it is
        // asked again next time.
        assert_eq!(
            c.listener_closed(listener, std::slice::from_ref(&circuit)),
            Some(relay)
        );
        assert!(c.listening().is_empty());
        assert!(c.circuit_to_reserve(relay, Role::Relay, &direct).is_some());
        // Not on a member, not over a circuit, not from a relay node.
        assert_eq!(c.circuit_to_reserve(peer(2), Role::Member, &direct), None);
        let relayed = dialer(&format!("/ip4/10.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit"));
        assert_eq!(c.circuit_to_reserve(peer(3), Role::Relay, &relayed), None);
        let mut relay_node = connections(8, true, t0);
        assert_eq!(
            relay_node.circuit_to_reserve(peer(4), Role::Relay, &direct),
            None
        );
    }

    #[test]
    fn a_new_connection_says_how_its_peer_was_found() {
        let t0 = Instant::now();
        let mut c = connections(8, false, t0);
        assert_eq!(
            c.classify(
                peer(1),
                &dialer(&format!("/ip4/10.0.0.1/tcp/4001/p2p/{}", peer(1)))
            ),
            Discovery::Bootstrap
        );
        c.dialling_by_hand("/ip4/10.0.0.5/tcp/4001".parse().expect("address"));
        assert_eq!(
            c.classify(peer(2), &dialer("/ip4/10.0.0.5/tcp/4001")),
            Discovery::Dialed
        );
        assert_eq!(
            c.classify(peer(3), &dialer("/ip4/10.0.0.6/tcp/4001")),
            Discovery::Kademlia
        );
        assert!(c.may_dial(peer(4), Discovery::Mdns, t0));
        assert_eq!(
            c.classify(peer(4), &dialer("/ip4/10.0.0.7/tcp/4001")),
            Discovery::Mdns
        );
        let listener = ConnectedPoint::Listener {
            local_addr: "/ip4/10.0.0.2/tcp/4001".parse().expect("address"),
            send_back_addr: "/ip4/10.0.0.8/tcp/50000".parse().expect("address"),
        };
        assert_eq!(c.classify(peer(5), &listener), Discovery::Inbound);
        // Both sides dialled at once: the second connection tells more.
        c.admitted(
            peer(5),
            info(5, Role::Member, Discovery::Inbound),
            false,
            t0,
        );
        c.also_found(&peer(5), Discovery::Mdns);
        assert_eq!(
            c.peers().get(&peer(5)).map(|p| p.found_by),
            Some(Discovery::Mdns)
        );
    }
}
