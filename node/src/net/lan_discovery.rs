//! LAN discovery: sealed UDP multicast beacons (see [`super::lan_beacon`])
//! sent every interval and read from the group, as a libp2p behaviour that
//! reports the peers found. Replaces libp2p's mDNS, which broadcast device
//! keys and addresses in cleartext (audit M7).
//!
//! Beacons go to [`GROUP`]:[`PORT`] (IPv4, organisation-local scope) on the
//! interface the routing table picks for that group, with loopback on so
//! that nodes on one host find each other too. Every node binds the port
//! with `SO_REUSEADDR`, so several can share a host.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, ListenAddresses, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;

use super::lan_beacon::{self, Announced, BEACON_LEN, BeaconKey, BeaconTable};
use crate::clock::Clock;
use crate::identity::OsEntropy;

/// The multicast group beacons go to.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 66, 77);
/// The UDP port beacons go to.
pub const PORT: u16 = 47_474;
/// Datagrams read in one poll at most, before yielding to other work.
const READS_PER_POLL: usize = 64;

/// What LAN discovery reports.
#[derive(Debug)]
pub enum Event {
    /// A peer is new on the LAN, or announces other addresses.
    Discovered(Announced),
}

/// The behaviour: sends our beacon every interval, opens those of others.
pub struct LanDiscovery {
    local: PeerId,
    key: BeaconKey,
    clock: Arc<dyn Clock>,
    socket: UdpSocket,
    interval: tokio::time::Interval,
    listen: ListenAddresses,
    table: BeaconTable,
    /// A beacon the socket was not ready to send yet.
    unsent: Option<Vec<u8>>,
    events: VecDeque<Announced>,
}

impl std::fmt::Debug for LanDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanDiscovery")
            .field("local", &self.local)
            .field("peers", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl LanDiscovery {
    /// Discovery for `local`, beaconing every `interval`; peers are kept
    /// for four intervals (at least a minute) after their last beacon.
    pub fn new(
        local: PeerId,
        key: BeaconKey,
        interval: Duration,
        clock: Arc<dyn Clock>,
    ) -> io::Result<Self> {
        let socket = bind()?;
        let ttl = (interval.as_secs() * 4).max(60);
        let mut interval = tokio::time::interval(interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(LanDiscovery {
            local,
            key,
            clock,
            socket,
            interval,
            listen: ListenAddresses::default(),
            table: BeaconTable::new(ttl),
            unsent: None,
            events: VecDeque::new(),
        })
    }

    /// Peers found on the LAN whose lifetime has not run out.
    pub fn discovered(&self) -> impl Iterator<Item = &PeerId> {
        self.table.peers()
    }

    fn beacon(&self) -> Vec<u8> {
        // Addresses others can reach first; loopback last (same host only).
        let mut addresses: Vec<Multiaddr> = self.listen.iter().cloned().collect();
        addresses.sort_by_key(is_loopback);
        lan_beacon::seal(
            &self.key,
            &self.local,
            &addresses,
            self.clock.now(),
            &mut OsEntropy,
        )
    }

    fn receive(&mut self, datagram: &[u8]) {
        let now = self.clock.now();
        if !self.table.may_open(now) {
            return;
        }
        match lan_beacon::open(&self.key, datagram, now) {
            Ok(announced) if announced.peer == self.local => {}
            Ok(announced) => {
                if let Some(news) = self.table.observe(announced, now) {
                    // Bounded by the table: one event per new entry or change.
                    if self.events.len() < lan_beacon::MAX_PEERS {
                        self.events.push_back(news);
                    }
                }
            }
            Err(error) => tracing::trace!(%error, "LAN beacon dropped"),
        }
    }
}

fn is_loopback(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_loopback(),
        libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

fn bind() -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT)).into())?;
    socket.set_multicast_loop_v4(true)?;
    socket.join_multicast_v4(&GROUP, &Ipv4Addr::UNSPECIFIED)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

impl NetworkBehaviour for LanDiscovery {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.listen.on_swarm_event(&event);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        if let Some(news) = self.events.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(Event::Discovered(news)));
        }
        if self.interval.poll_tick(cx).is_ready() && self.unsent.is_none() {
            self.table.expire(self.clock.now());
            if self.listen.iter().next().is_some() {
                self.unsent = Some(self.beacon());
            }
        }
        if let Some(beacon) = &self.unsent {
            let target = SocketAddr::V4(SocketAddrV4::new(GROUP, PORT));
            match self.socket.poll_send_to(cx, beacon, target) {
                Poll::Pending => {}
                Poll::Ready(result) => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "LAN beacon not sent");
                    }
                    self.unsent = None;
                }
            }
        }
        let mut buffer = [0u8; BEACON_LEN + 1];
        let mut more = true;
        for _ in 0..READS_PER_POLL {
            let mut read = ReadBuf::new(&mut buffer);
            match self.socket.poll_recv_from(cx, &mut read) {
                Poll::Ready(Ok(_)) => {
                    let datagram = read.filled().to_vec();
                    self.receive(&datagram);
                }
                Poll::Ready(Err(error)) => {
                    tracing::debug!(%error, "LAN discovery socket");
                    more = false;
                    break;
                }
                Poll::Pending => {
                    more = false;
                    break;
                }
            }
        }
        if let Some(news) = self.events.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(Event::Discovered(news)));
        }
        if more {
            // More datagrams may be waiting past the per-poll limit.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use libp2p::core::transport::ListenerId;
    use libp2p::swarm::NewListenAddr;

    use super::*;
    use crate::clock::ManualClock;
    use crate::identity::{KeyPair, SeededEntropy};
    use crate::trust::NetworkKey;

    fn node(seed: u64, network: &NetworkKey, clock: &Arc<ManualClock>) -> LanDiscovery {
        let peer = KeyPair::generate(&mut SeededEntropy::new(seed))
            .device_id()
            .peer_id()
            .expect("peer id");
        let mut node = LanDiscovery::new(
            peer,
            BeaconKey::derive(network),
            Duration::from_millis(50),
            clock.clone(),
        )
        .expect("multicast socket");
        let address: Multiaddr = format!("/ip4/192.0.2.{seed}/tcp/4001")
            .parse()
            .expect("addr");
        node.on_swarm_event(FromSwarm::NewListenAddr(NewListenAddr {
            listener_id: ListenerId::next(),
            addr: &address,
        }));
        node
    }

    /// Two devices of one agency find each other over real multicast; a
    /// device of another network (or anyone without the key) beaconing on
    /// the same group is never listed, and finds nobody.
    #[tokio::test]
    async fn devices_with_the_network_key_find_each_other_and_a_stranger_finds_nobody() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let network = NetworkKey([3; 32]);
        let mut lee = node(11, &network, &clock);
        let mut kim = node(12, &network, &clock);
        let mut stranger = node(13, &NetworkKey([4; 32]), &clock);
        let mut found: [Vec<PeerId>; 3] = Default::default();
        let both = tokio::time::timeout(
            Duration::from_secs(20),
            std::future::poll_fn(|cx| {
                for (i, node) in [&mut lee, &mut kim, &mut stranger].into_iter().enumerate() {
                    while let Poll::Ready(ToSwarm::GenerateEvent(Event::Discovered(news))) =
                        node.poll(cx)
                    {
                        found[i].push(news.peer);
                    }
                }
                if found[0].contains(&kim.local) && found[1].contains(&lee.local) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }),
        )
        .await;
        assert!(
            both.is_ok(),
            "Lee found {:?}, Kim found {:?}",
            found[0],
            found[1]
        );
        for list in &found[..2] {
            assert!(!list.contains(&stranger.local), "a stranger was listed");
        }
        assert!(found[2].is_empty(), "the stranger found {:?}", found[2]);
        assert_eq!(lee.discovered().collect::<Vec<_>>(), vec![&kim.local]);
    }
}
