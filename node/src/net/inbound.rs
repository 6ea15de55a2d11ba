//! The inbound guard: what a connection someone else opened meets first,
//! before the network key, noise or admission cost anything.
//!
//! - An address banned for failed handshakes ([`Offenders`]) is refused at
//!   once: the socket is closed as soon as it is accepted.
//! - At most `max_pending` handshakes run at once. When that many are under
//!   way, a newcomer takes the place of the oldest handshake of the address
//!   holding the most, if that address would still hold at least as many as
//!   the newcomer's; otherwise the newcomer is refused at once. One address
//!   (one outsider's machine) thus never crowds out the others, whereas
//!   refusing every newcomer (libp2p's pending-connection limit alone)
//!   would let a few stalled handshakes keep everyone out until their
//!   deadline.
//! - A handshake that fails by the remote's fault counts against its
//!   address: garbage at any stage, no valid certificate, a forged or
//!   replayed revocation, a key already blocked, or a stall until a
//!   deadline. One the remote merely abandoned does not (it hung up: a
//!   dialler racing several of our addresses keeps only one), nor one
//!   evicted or refused here for lack of room.
//!
//! Connections without an IP address (in-process channels, relayed
//! circuits, whose address is the relay's) share one group and are never
//! blamed.

use std::collections::{BTreeSet, HashMap};
use std::error::Error;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::FutureExt;
use futures::future::{AbortHandle, AbortRegistration, Abortable, BoxFuture};
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::upgrade::NegotiationError;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, Transport};

use super::admission::AdmissionError;
use crate::trust::{OffenderPolicy, Offenders, RemoteAddress};

/// Most incoming connections taken from the listeners in one poll, so a
/// flood of arrivals cannot hold the swarm's task.
const ARRIVALS_PER_POLL: usize = 64;

/// The handshakes under way, by address: which to refuse or evict when full.
/// Pure: no time, no I/O; ids are issued in arrival order.
#[derive(Debug)]
pub(crate) struct PendingTable {
    capacity: usize,
    next_id: u64,
    entries: HashMap<u64, Option<RemoteAddress>>,
    by_address: HashMap<Option<RemoteAddress>, BTreeSet<u64>>,
    /// (handshakes, address) for every address with one: the last is the busiest.
    load: BTreeSet<(usize, Option<RemoteAddress>)>,
}

/// What the table decided about a newcomer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// It may go on, as handshake `id`; handshake `evicted` (if any) must stop.
    Admitted { id: u64, evicted: Option<u64> },
    /// No room: close it now.
    Refused,
}

impl PendingTable {
    pub(crate) fn new(capacity: usize) -> Self {
        PendingTable {
            capacity,
            next_id: 0,
            entries: HashMap::new(),
            by_address: HashMap::new(),
            load: BTreeSet::new(),
        }
    }

    fn count(&self, address: &Option<RemoteAddress>) -> usize {
        self.by_address.get(address).map_or(0, BTreeSet::len)
    }

    /// A handshake from `address` wants to start.
    pub(crate) fn arrive(&mut self, address: Option<RemoteAddress>) -> Arrival {
        let mut evicted = None;
        if self.entries.len() >= self.capacity {
            let Some(&(busiest_count, busiest)) = self.load.last() else {
                return Arrival::Refused;
            };
            // After the swap the busiest still holds at least as many as
            // the newcomer's address.
            if busiest == address || busiest_count < self.count(&address) + 2 {
                return Arrival::Refused;
            }
            let Some(oldest) = self
                .by_address
                .get(&busiest)
                .and_then(|ids| ids.first().copied())
            else {
                return Arrival::Refused;
            };
            self.leave(oldest);
            evicted = Some(oldest);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.set_count(address, |ids| {
            ids.insert(id);
        });
        self.entries.insert(id, address);
        Arrival::Admitted { id, evicted }
    }

    /// Handshake `id` ended (any way); unknown ids are ignored.
    pub(crate) fn leave(&mut self, id: u64) {
        if let Some(address) = self.entries.remove(&id) {
            self.set_count(address, |ids| {
                ids.remove(&id);
            });
        }
    }

    /// Changes the ids of `address`, keeping `load` in step.
    fn set_count(
        &mut self,
        address: Option<RemoteAddress>,
        change: impl FnOnce(&mut BTreeSet<u64>),
    ) {
        let ids = self.by_address.entry(address).or_default();
        self.load.remove(&(ids.len(), address));
        change(ids);
        if ids.is_empty() {
            self.by_address.remove(&address);
        } else {
            self.load.insert((ids.len(), address));
        }
    }

    /// Handshakes under way.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[derive(Debug)]
struct State {
    table: PendingTable,
    aborts: HashMap<u64, AbortHandle>,
    offenders: Offenders,
}

/// The guard's state, shared by the transport and every handshake it let in.
#[derive(Debug)]
pub struct InboundGuard {
    state: Mutex<State>,
    epoch: Instant,
}

impl InboundGuard {
    /// A guard letting `max_pending` handshakes run at once and banning
    /// addresses under `policy`.
    pub fn new(max_pending: usize, policy: OffenderPolicy) -> Arc<Self> {
        Arc::new(InboundGuard {
            state: Mutex::new(State {
                table: PendingTable::new(max_pending),
                aborts: HashMap::new(),
                offenders: Offenders::new(policy),
            }),
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each critical section leaves the state consistent before anything
        // that could panic: a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether connections from `address` are refused now.
    pub fn banned(&self, address: &RemoteAddress) -> bool {
        let now = self.now_ms();
        self.lock().offenders.banned(address, now).is_some()
    }

    /// Handshakes under way.
    pub fn pending(&self) -> usize {
        self.lock().table.len()
    }

    /// A connection from `address` arrived: its id and abort registration
    /// if it may go on.
    fn arrive(&self, address: Option<RemoteAddress>) -> Option<(u64, AbortRegistration)> {
        let now = self.now_ms();
        let mut state = self.lock();
        if let Some(address) = address
            && let Some(until) = state.offenders.banned(&address, now)
        {
            tracing::debug!(%address, secs_left = until.saturating_sub(now) / 1000, "connection refused: address banned for failed handshakes");
            return None;
        }
        match state.table.arrive(address) {
            Arrival::Refused => {
                tracing::debug!(address = ?address, "connection refused: too many handshakes under way");
                None
            }
            Arrival::Admitted { id, evicted } => {
                if let Some(handle) = evicted.and_then(|victim| state.aborts.remove(&victim)) {
                    tracing::debug!(address = ?address, "too many handshakes under way: the busiest address's oldest makes room");
                    handle.abort();
                }
                let (handle, registration) = AbortHandle::new_pair();
                state.aborts.insert(id, handle);
                Some((id, registration))
            }
        }
    }

    fn leave(&self, id: u64) {
        let mut state = self.lock();
        state.table.leave(id);
        state.aborts.remove(&id);
    }

    /// A handshake from `address` failed by the remote's fault.
    fn failed(&self, address: RemoteAddress) {
        let now = self.now_ms();
        let mut state = self.lock();
        if let Some(ban) = state.offenders.failed(address, now) {
            let policy = *state.offenders.policy();
            tracing::warn!(
                %address,
                failures = policy.failures,
                window_secs = policy.window_ms / 1000,
                secs = ban.until.saturating_sub(now) / 1000,
                "refusing connections from an address whose handshakes keep failing"
            );
        }
    }
}

/// Releases a handshake's place however its future ends (even dropped).
struct Place {
    guard: Arc<InboundGuard>,
    id: u64,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.guard.leave(self.id);
    }
}

/// A transport whose incoming connections pass the [`InboundGuard`] first.
#[derive(Debug)]
pub struct Guarded<T> {
    inner: T,
    guard: Arc<InboundGuard>,
}

impl<T> Guarded<T> {
    /// `inner`, guarded by `guard`.
    pub fn new(inner: T, guard: Arc<InboundGuard>) -> Self {
        Guarded { inner, guard }
    }
}

impl<T> Transport for Guarded<T>
where
    T: Transport<Error = io::Error> + Unpin,
    T::ListenerUpgrade: Send + 'static,
    T::Output: Send + 'static,
{
    type Output = T::Output;
    type Error = io::Error;
    type ListenerUpgrade = BoxFuture<'static, io::Result<T::Output>>;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<io::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<io::Error>> {
        self.inner.dial(addr, opts)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, io::Error>> {
        let this = self.get_mut();
        for _ in 0..ARRIVALS_PER_POLL {
            let event = match Pin::new(&mut this.inner).poll(cx) {
                Poll::Ready(event) => event,
                Poll::Pending => return Poll::Pending,
            };
            let TransportEvent::Incoming {
                listener_id,
                upgrade,
                local_addr,
                send_back_addr,
            } = event
            else {
                return Poll::Ready(event.map_upgrade(FutureExt::boxed));
            };
            let address = remote_address(&send_back_addr);
            // Refused: dropping the upgrade closes the socket.
            let Some((id, registration)) = this.guard.arrive(address) else {
                continue;
            };
            let place = Place {
                guard: this.guard.clone(),
                id,
            };
            let guard = this.guard.clone();
            let upgrade = async move {
                let result = Abortable::new(upgrade, registration).await;
                drop(place);
                match result {
                    Err(_aborted) => Err(io::Error::other(
                        "handshake stopped to make room for a connection from another address",
                    )),
                    Ok(Err(error)) => {
                        if let Some(address) = address
                            && is_offence(&error)
                        {
                            guard.failed(address);
                        }
                        Err(error)
                    }
                    Ok(Ok(output)) => Ok(output),
                }
            }
            .boxed();
            return Poll::Ready(TransportEvent::Incoming {
                listener_id,
                upgrade,
                local_addr,
                send_back_addr,
            });
        }
        // More may be waiting: come back after others had their turn.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The address a connection is blamed on: its IP, unless it came through a
/// relay (the IP is then the relay's) or has none (in-process channels).
pub fn remote_address(address: &Multiaddr) -> Option<RemoteAddress> {
    if address.iter().any(|p| p == Protocol::P2pCircuit) {
        return None;
    }
    address.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(RemoteAddress::from(std::net::IpAddr::V4(ip))),
        Protocol::Ip6(ip) => Some(RemoteAddress::from(std::net::IpAddr::V6(ip))),
        _ => None,
    })
}

/// Whether a failed incoming handshake was the remote's fault (see the
/// module docs): walks the error's causes for the admission verdict, or
/// for a sign that the remote just hung up.
pub(crate) fn is_offence(error: &io::Error) -> bool {
    if abandoned(error.kind()) {
        return false;
    }
    let mut cause: Option<&(dyn Error + 'static)> = error.get_ref().map(|e| e as _);
    while let Some(current) = cause {
        if let Some(admission) = current.downcast_ref::<AdmissionError>() {
            return admission.is_offence();
        }
        if let Some(libp2p::noise::Error::Io(io)) = current.downcast_ref::<libp2p::noise::Error>() {
            return !abandoned(io.kind());
        }
        // The listener's side of multistream-select reports a remote that
        // hung up as "failed" (an honest dialler speaks our protocols).
        if let Some(NegotiationError::Failed) = current.downcast_ref::<NegotiationError>() {
            return false;
        }
        if let Some(io) = current.downcast_ref::<io::Error>() {
            if abandoned(io.kind()) {
                return false;
            }
            if let Some(inner) = io.get_ref() {
                cause = Some(inner as _);
                continue;
            }
        }
        cause = current.source();
    }
    // Garbage the handshake could not parse, or a stall until the deadline.
    true
}

fn abandoned(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    )
}

/// A failed network-key handshake, with its I/O error as the cause (libp2p's
/// own error hides it from [`Error::source`]).
#[derive(Debug, thiserror::Error)]
#[error("network key handshake failed: {0}")]
pub struct PnetFailed(#[source] pub io::Error);

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<RemoteAddress> {
        Some(RemoteAddress::V4([10, 0, 0, last]))
    }

    fn admitted(arrival: Arrival) -> (u64, Option<u64>) {
        match arrival {
            Arrival::Admitted { id, evicted } => (id, evicted),
            Arrival::Refused => panic!("refused"),
        }
    }

    #[test]
    fn one_address_cannot_crowd_out_another() {
        let mut table = PendingTable::new(4);
        let flood: Vec<u64> = (0..4).map(|_| admitted(table.arrive(ip(1))).0).collect();
        // Full of one address: more from it are refused...
        assert_eq!(table.arrive(ip(1)), Arrival::Refused);
        // ...but another address takes the place of its oldest handshake.
        let (_, evicted) = admitted(table.arrive(ip(2)));
        assert_eq!(evicted, Some(flood[0]));
        // And a third.
        let (_, evicted) = admitted(table.arrive(ip(3)));
        assert_eq!(evicted, Some(flood[1]));
        // Now 1 holds two, 2 and 3 one each: another from 2 would leave 1
        // with fewer than 2, so it is refused; a new address still gets in.
        assert_eq!(table.arrive(ip(2)), Arrival::Refused);
        let (_, evicted) = admitted(table.arrive(ip(4)));
        assert_eq!(evicted, Some(flood[2]));
        // Everyone holds one now: newcomers wait.
        assert_eq!(table.arrive(ip(5)), Arrival::Refused);
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn equal_shares_refuse_the_newcomer_and_leaving_makes_room() {
        let mut table = PendingTable::new(2);
        let (first, _) = admitted(table.arrive(ip(1)));
        admitted(table.arrive(ip(2)));
        assert_eq!(table.arrive(ip(3)), Arrival::Refused);
        table.leave(first);
        table.leave(first); // twice is harmless
        let (_, evicted) = admitted(table.arrive(ip(3)));
        assert_eq!(evicted, None);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn connections_without_an_ip_share_one_group() {
        let mut table = PendingTable::new(2);
        admitted(table.arrive(None));
        admitted(table.arrive(None));
        assert_eq!(table.arrive(None), Arrival::Refused);
        // An address with none takes the group's oldest place.
        let (_, evicted) = admitted(table.arrive(ip(1)));
        assert_eq!(evicted, Some(0));
    }

    #[test]
    fn the_blamed_address_is_the_ip_unless_relayed() {
        let tcp: Multiaddr = "/ip4/192.0.2.1/tcp/4001".parse().expect("addr");
        assert_eq!(
            remote_address(&tcp),
            Some(RemoteAddress::V4([192, 0, 2, 1]))
        );
        let relayed: Multiaddr =
            "/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit"
                .parse()
                .expect("addr");
        assert_eq!(remote_address(&relayed), None);
        let memory: Multiaddr = "/memory/7".parse().expect("addr");
        assert_eq!(remote_address(&memory), None);
    }

    #[test]
    fn hanging_up_is_no_offence_but_garbage_and_stalls_are() {
        let eof = || io::Error::from(io::ErrorKind::UnexpectedEof);
        // Wrapped the way the boxed transport wraps upgrade errors.
        assert!(!is_offence(&io::Error::other(PnetFailed(eof()))));
        assert!(!is_offence(&io::Error::other(libp2p::noise::Error::Io(
            eof()
        ))));
        assert!(!is_offence(&io::Error::other(NegotiationError::Failed)));
        assert!(!is_offence(&io::Error::other(AdmissionError::Io(eof()))));
        assert!(!is_offence(&io::Error::other(AdmissionError::Busy(8))));
        assert!(is_offence(&io::Error::other(AdmissionError::Refused(
            "no certificate".into()
        ))));
        assert!(is_offence(&io::Error::other(
            libp2p::noise::Error::AuthenticationFailed
        )));
        assert!(is_offence(&io::Error::other(
            libp2p::core::transport::timeout::TransportTimeoutError::<io::Error>::Timeout
        )));
    }
}
