//! Admission inside the transport upgrade, between noise and yamux.
//!
//! After noise has authenticated the remote PeerId, and before any stream
//! multiplexer exists, the dialer sends its [`AdmissionHello`]; the listener
//! checks it and only then answers with its own, which the dialer checks in
//! turn. Only when both are satisfied does yamux start. A peer that fails
//! never gets a multiplexed connection, so it never sees identify data, our
//! protocols or our gossipsub topics; it is logged, reported and blocked.
//!
//! The listener reveals its certificate only to a verified dialer; the dialer
//! reveals its own first, but only to peers it chose to dial.

use std::collections::HashMap;
use std::io;
use std::iter;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use libp2p::{PeerId, yamux};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::identity::{DeviceId, PublicKey};
use crate::node::BlockedPeer;
use crate::trust::{
    AdmissionHello, AgencyInfo, Blocklist, CertificateChain, TrustPolicy, VerifiedDevice, admit,
};
use crate::wire::{self, Format};

/// Protocol name negotiated for the admission-then-yamux upgrade.
pub const PROTOCOL: &str = "/baro/admission/1.0.0";

/// Why a connection did not pass admission.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The remote is blocked after an earlier refusal.
    #[error("peer is blocked until {until}: {reason}")]
    Blocked {
        /// Unix seconds the block ends.
        until: u64,
        /// The earlier refusal.
        reason: String,
    },
    /// The remote failed to prove membership.
    #[error("refused: {0}")]
    Refused(String),
    /// The remote did not answer in time.
    #[error("no admission hello within {0:?}")]
    Timeout(Duration),
    /// I/O failed during the exchange (including the remote hanging up).
    #[error("admission exchange failed: {0}")]
    Io(#[from] io::Error),
}

/// A refused peer, reported to the node so it can tell its user.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The refused peer.
    pub peer: PeerId,
    /// Why.
    pub reason: String,
}

/// State shared by every admission upgrade of one node.
#[derive(Debug)]
pub struct AdmissionGate {
    agency: AgencyInfo,
    own_hello: Vec<u8>,
    policy: TrustPolicy,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    block_secs: u64,
    blocklist: Mutex<Blocklist>,
    admitted: Mutex<HashMap<PeerId, (VerifiedDevice, CertificateChain)>>,
    refusals: mpsc::Sender<Refusal>,
}

impl AdmissionGate {
    /// A gate for a node of `agency` presenting `own_hello`.
    pub fn new(
        agency: AgencyInfo,
        own_hello: &AdmissionHello,
        clock: Arc<dyn Clock>,
        timeout: Duration,
        block_secs: u64,
        refusals: mpsc::Sender<Refusal>,
    ) -> Self {
        AdmissionGate {
            agency,
            own_hello: wire::encode(own_hello),
            policy: TrustPolicy::default(),
            clock,
            timeout,
            block_secs,
            blocklist: Mutex::new(Blocklist::default()),
            admitted: Mutex::new(HashMap::new()),
            refusals,
        }
    }

    /// The verified certificate (and the chain it came from) of an admitted peer.
    pub fn admitted(&self, peer: &PeerId) -> Option<(VerifiedDevice, CertificateChain)> {
        lock(&self.admitted).get(peer).cloned()
    }

    /// Forgets an admitted peer once it has no connection left.
    pub fn forget(&self, peer: &PeerId) {
        lock(&self.admitted).remove(peer);
    }

    /// Whether `peer` is blocked now, and why.
    pub fn blocked(&self, peer: &PeerId) -> Option<(u64, String)> {
        let device = device_id(peer)?;
        lock(&self.blocklist)
            .blocked(&device, self.clock.now())
            .map(|b| (b.until, b.reason.clone()))
    }

    /// Every peer blocked now.
    pub fn blocked_peers(&self) -> Vec<BlockedPeer> {
        let now = self.clock.now();
        lock(&self.blocklist)
            .in_force(now)
            .map(|(device, blocked)| BlockedPeer {
                device: *device,
                until: blocked.until,
                reason: blocked.reason.clone(),
            })
            .collect()
    }

    fn refuse(&self, peer: PeerId, reason: String) -> AdmissionError {
        tracing::warn!(%peer, %reason, "peer refused at admission and blocked");
        if let Some(device) = device_id(&peer) {
            lock(&self.blocklist).block(device, self.clock.now(), self.block_secs, reason.clone());
        }
        // A full channel only loses the report; the refusal itself stands.
        let _ = self.refusals.try_send(Refusal {
            peer,
            reason: reason.clone(),
        });
        AdmissionError::Refused(reason)
    }

    fn check(&self, peer: PeerId, bytes: &[u8]) -> Result<VerifiedDevice, AdmissionError> {
        let Some(device) = device_id(&peer) else {
            return Err(self.refuse(peer, "its key is not an ed25519 device key".into()));
        };
        let hello =
            wire::decode::<AdmissionHello>(bytes).map_err(|e| self.refuse(peer, e.to_string()))?;
        let verified = admit(&hello, device, &self.agency, self.clock.now(), &self.policy)
            .map_err(|e| self.refuse(peer, e.to_string()))?;
        lock(&self.admitted).insert(peer, (verified.clone(), hello.chain));
        Ok(verified)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is a single map operation: a panic cannot leave
    // the data half-updated, so a poisoned lock is still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The device id behind a PeerId, if it is an ed25519 key.
pub fn device_id(peer: &PeerId) -> Option<DeviceId> {
    let key = libp2p::identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    Some(PublicKey(key.try_into_ed25519().ok()?.to_bytes()).device_id())
}

/// The upgrade for one connection: admission, then yamux.
#[derive(Clone, Debug)]
pub struct AdmissionUpgrade {
    gate: Arc<AdmissionGate>,
    remote: PeerId,
}

impl AdmissionUpgrade {
    /// The upgrade for a connection with `remote` (authenticated by noise).
    pub fn new(gate: Arc<AdmissionGate>, remote: PeerId) -> Self {
        AdmissionUpgrade { gate, remote }
    }

    async fn run<C>(self, mut socket: C, dialer: bool) -> Result<yamux::Muxer<C>, AdmissionError>
    where
        C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let gate = &self.gate;
        if let Some((until, reason)) = gate.blocked(&self.remote) {
            return Err(AdmissionError::Blocked { until, reason });
        }
        let exchange = async {
            if dialer {
                write_frame(&mut socket, &gate.own_hello).await?;
                let theirs = read_frame(&mut socket).await?;
                gate.check(self.remote, &theirs)?;
            } else {
                let theirs = read_frame(&mut socket).await.map_err(|e| match e {
                    AdmissionError::Refused(reason) => gate.refuse(self.remote, reason),
                    other => other,
                })?;
                gate.check(self.remote, &theirs)?;
                write_frame(&mut socket, &gate.own_hello).await?;
            }
            Ok::<_, AdmissionError>(())
        };
        match tokio::time::timeout(gate.timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => {
                if !dialer {
                    return Err(gate.refuse(
                        self.remote,
                        format!("no valid admission hello within {:?}", gate.timeout),
                    ));
                }
                return Err(AdmissionError::Timeout(gate.timeout));
            }
        }
        let yamux = yamux::Config::default();
        let info = yamux.protocol_info().next().unwrap_or("/yamux/1.0.0");
        let muxer = if dialer {
            yamux.upgrade_outbound(socket, info).await?
        } else {
            yamux.upgrade_inbound(socket, info).await?
        };
        Ok(muxer)
    }
}

async fn write_frame<C: AsyncWrite + Unpin>(socket: &mut C, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("frame too large"))?;
    socket.write_all(&len.to_be_bytes()).await?;
    socket.write_all(bytes).await?;
    socket.flush().await
}

async fn read_frame<C: AsyncRead + Unpin>(socket: &mut C) -> Result<Vec<u8>, AdmissionError> {
    let mut len = [0u8; 4];
    socket.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > AdmissionHello::MAX_LEN {
        return Err(AdmissionError::Refused(format!(
            "admission hello of {len} bytes exceeds {} bytes",
            AdmissionHello::MAX_LEN
        )));
    }
    let mut bytes = vec![0u8; len];
    socket.read_exact(&mut bytes).await?;
    Ok(bytes)
}

impl UpgradeInfo for AdmissionUpgrade {
    type Info = &'static str;
    type InfoIter = iter::Once<&'static str>;

    fn protocol_info(&self) -> Self::InfoIter {
        iter::once(PROTOCOL)
    }
}

impl<C> InboundConnectionUpgrade<C> for AdmissionUpgrade
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = yamux::Muxer<C>;
    type Error = AdmissionError;
    type Future = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn upgrade_inbound(self, socket: C, _: Self::Info) -> Self::Future {
        self.run(socket, false).boxed()
    }
}

impl<C> OutboundConnectionUpgrade<C> for AdmissionUpgrade
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = yamux::Muxer<C>;
    type Error = AdmissionError;
    type Future = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn upgrade_outbound(self, socket: C, _: Self::Info) -> Self::Future {
        self.run(socket, true).boxed()
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::compat::TokioAsyncReadCompatExt;

    use super::*;
    use crate::clock::ManualClock;
    use crate::identity::{KeyPair, SeededEntropy};
    use crate::trust::{CertificateChain, NewAgency, Subject};

    fn gate(seed: u64) -> (Arc<AdmissionGate>, mpsc::Receiver<Refusal>) {
        let mut entropy = SeededEntropy::new(seed);
        let subject = Subject {
            user_id: "op".into(),
            display_name: "Op".into(),
            org_unit: "MOIS".parse().expect("org"),
        };
        let agency = NewAgency::create("MOIS", subject, 1_000, &mut entropy).expect("agency");
        let hello = AdmissionHello {
            agency: agency.operator.agency.id(),
            chain: CertificateChain {
                certificates: vec![],
            },
            revocation_digest: [0; 32],
        };
        let (tx, rx) = mpsc::channel(8);
        let gate = AdmissionGate::new(
            agency.operator.agency.clone(),
            &hello,
            Arc::new(ManualClock::new(2_000)),
            Duration::from_secs(10),
            300,
            tx,
        );
        (Arc::new(gate), rx)
    }

    fn stranger(seed: u64) -> PeerId {
        KeyPair::generate(&mut SeededEntropy::new(seed))
            .device_id()
            .peer_id()
            .expect("peer id")
    }

    #[tokio::test(start_paused = true)]
    async fn silent_peer_is_refused_at_the_deadline_and_blocked() {
        let (gate, mut refusals) = gate(1);
        let peer = stranger(2);
        let (ours, _theirs_never_speaks) = tokio::io::duplex(1024);
        let result = AdmissionUpgrade::new(gate.clone(), peer)
            .run(ours.compat(), false)
            .await;
        assert!(
            matches!(result, Err(AdmissionError::Refused(ref r)) if r.contains("within")),
            "{result:?}"
        );
        assert_eq!(refusals.try_recv().expect("reported").peer, peer);
        assert!(gate.blocked(&peer).is_some());
        // While blocked, the next attempt ends at once without reading anything.
        let (ours, _theirs) = tokio::io::duplex(1024);
        let again = AdmissionUpgrade::new(gate, peer)
            .run(ours.compat(), false)
            .await;
        assert!(
            matches!(again, Err(AdmissionError::Blocked { .. })),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn oversized_or_garbage_hello_is_refused_and_blocked() {
        use tokio::io::AsyncWriteExt as _;
        for (seed, frame) in [
            (3u64, vec![0xff; 4]),
            (4, {
                let mut f = 12u32.to_be_bytes().to_vec();
                f.extend(b"not a hello!");
                f
            }),
        ] {
            let (gate, _refusals) = gate(seed);
            let peer = stranger(seed + 10);
            let (ours, mut theirs) = tokio::io::duplex(1024);
            theirs.write_all(&frame).await.expect("write");
            let result = AdmissionUpgrade::new(gate.clone(), peer)
                .run(ours.compat(), false)
                .await;
            assert!(
                matches!(result, Err(AdmissionError::Refused(_))),
                "{result:?}"
            );
            assert!(gate.blocked(&peer).is_some());
        }
    }
}
