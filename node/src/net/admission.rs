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
//! reveals its own first, but only to peers it chose to dial. The dialer's
//! last frame is its verdict on the listener (empty: admitted).
//!
//! A revoked device is refused for good, and told why: instead of our hello
//! (or our verdict) it receives the revocation that names it, so a device
//! that was offline for weeks learns of it at its first contact and nothing
//! else. A revocation received this way is checked like any other (a forged
//! one gets its sender refused and blocked) and handed to the node. Only a
//! revocation that names this device is a reason to refuse us: a peer that
//! answers with any other (a replay of one it picked up) is refused and
//! blocked, and a revocation already enforced here is recognised by its id
//! without checking its signatures again.
//!
//! At most a set number of admissions run at once (see
//! [`AdmissionGate::with_max_admissions`]); past it a new one is refused
//! before anything is read or allocated.

use std::collections::HashMap;
use std::io;
use std::iter;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    AdmissionHello, AgencyInfo, Blocklist, CertificateChain, Revocation, RevocationError,
    RevocationSet, TrustPolicy, VerifiedDevice, VerifiedRevocation, admit,
};
use crate::wire::{self, Format, Kind};

/// Protocol name negotiated for the admission-then-yamux upgrade.
pub const PROTOCOL: &str = "/baro/admission/1.0.0";

/// Admissions under way at once unless the node sets its own limit.
pub const DEFAULT_MAX_ADMISSIONS: usize = 48;

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
    /// The remote is revoked (it was sent the revocation), or told us we are.
    #[error("revoked: {0}")]
    Revoked(String),
    /// The remote did not answer in time.
    #[error("no admission hello within {0:?}")]
    Timeout(Duration),
    /// I/O failed during the exchange (including the remote hanging up).
    #[error("admission exchange failed: {0}")]
    Io(#[from] io::Error),
    /// Too many admissions were under way; this one was not started.
    #[error("too many admissions under way (at most {0}); try again later")]
    Busy(usize),
}

impl AdmissionError {
    /// Whether the remote is to blame (it sent something wrong, stalled,
    /// or is blocked for doing so before), as opposed to hanging up, being
    /// revoked (it was told), or finding this node busy.
    pub fn is_offence(&self) -> bool {
        matches!(
            self,
            AdmissionError::Refused(_) | AdmissionError::Blocked { .. }
        )
    }
}

/// A refused peer, reported to the node so it can tell its user.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The refused peer.
    pub peer: PeerId,
    /// Why.
    pub reason: String,
    /// A valid revocation the peer sent us instead of admitting us.
    pub revocation: Option<Vec<u8>>,
    /// The revocation we showed the (revoked) peer: it now holds it.
    pub shown: Option<[u8; 32]>,
    /// The wipe receipt the revoked peer answered with.
    pub receipt: Option<Vec<u8>>,
}

/// What a revoked device needs to answer its revocation at admission with
/// a signed wipe receipt.
#[derive(Debug)]
pub struct ReceiptSigner {
    /// The device key.
    pub key: crate::identity::KeyPair,
    /// Its certificate chain.
    pub chain: CertificateChain,
    /// What that chain certifies.
    pub me: VerifiedDevice,
}

/// How long a node that refused a revoked device waits for its wipe receipt.
const RECEIPT_WAIT: Duration = Duration::from_secs(2);

/// A hello that verified: an admitted device, or a revoked one with the
/// revocation to show it.
enum Checked {
    Admitted((VerifiedDevice, CertificateChain)),
    Revoked {
        reason: String,
        id: [u8; 32],
        revocation: Vec<u8>,
    },
    /// The peer answered with a revocation of this device (checked; with
    /// the wipe receipt to answer if it names us).
    RevokedUs {
        error: AdmissionError,
        receipt: Option<Vec<u8>>,
    },
}

/// The revocations the gate enforces, with their bytes to show a revoked peer.
#[derive(Debug, Default)]
struct Revocations {
    set: RevocationSet,
    bytes: HashMap<[u8; 32], Vec<u8>>,
}

/// State shared by every admission upgrade of one node.
#[derive(Debug)]
pub struct AdmissionGate {
    agency: AgencyInfo,
    own_hello: Mutex<(AdmissionHello, Vec<u8>)>,
    revocations: Mutex<Revocations>,
    policy: TrustPolicy,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    block_secs: u64,
    blocklist: Mutex<Blocklist>,
    admitted: Mutex<HashMap<PeerId, (VerifiedDevice, CertificateChain)>>,
    refusals: mpsc::Sender<Refusal>,
    signer: Option<ReceiptSigner>,
    /// Admissions under way, and the most allowed at once.
    in_progress: AtomicUsize,
    max_in_progress: usize,
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
            own_hello: Mutex::new((own_hello.clone(), wire::encode(own_hello))),
            revocations: Mutex::new(Revocations::default()),
            policy: TrustPolicy::default(),
            clock,
            timeout,
            block_secs,
            blocklist: Mutex::new(Blocklist::default()),
            admitted: Mutex::new(HashMap::new()),
            refusals,
            signer: None,
            in_progress: AtomicUsize::new(0),
            max_in_progress: DEFAULT_MAX_ADMISSIONS,
        }
    }

    /// Lets at most `max` admissions run at once (both ways); more are
    /// refused at once with [`AdmissionError::Busy`].
    pub fn with_max_admissions(mut self, max: usize) -> Self {
        self.max_in_progress = max;
        self
    }

    /// Admissions under way now.
    pub fn admissions_in_progress(&self) -> usize {
        self.in_progress.load(Ordering::Relaxed)
    }

    /// Takes a place for one admission, if one is free: the place is given
    /// back when the returned guard drops.
    fn begin(&self) -> Option<AdmissionPlace<'_>> {
        self.in_progress
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_in_progress).then_some(n + 1)
            })
            .ok()
            .map(|_| AdmissionPlace(&self.in_progress))
    }

    /// Lets this gate answer a revocation of this device with a signed wipe
    /// receipt (nodes whose own certificate names them).
    pub fn with_receipts(mut self, signer: ReceiptSigner) -> Self {
        self.signer = Some(signer);
        self
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

    /// Checks a revocation against the agency and the revocations enforced here.
    pub fn check_revocation(
        &self,
        revocation: &Revocation,
    ) -> Result<VerifiedRevocation, RevocationError> {
        lock(&self.revocations)
            .set
            .check(revocation, &self.agency, self.clock.now())
    }

    /// Checks a revocation as it would have been checked at `at` (Unix
    /// seconds): a restart replays what the node took, each at the time it
    /// took it.
    pub fn check_revocation_at(
        &self,
        revocation: &Revocation,
        at: u64,
    ) -> Result<VerifiedRevocation, RevocationError> {
        lock(&self.revocations)
            .set
            .check(revocation, &self.agency, at)
    }

    /// Whether revocation `id` is held but covers nothing (it lost a
    /// conflict between two devices of one user).
    pub fn is_overruled(&self, id: &[u8; 32]) -> bool {
        lock(&self.revocations).set.is_overruled(id)
    }

    /// Drops every revocation whose certificates have all expired by now
    /// and returns them.
    pub fn prune_expired_revocations(&self) -> Vec<VerifiedRevocation> {
        let now = self.clock.now();
        let (gone, digest) = {
            let mut revocations = lock(&self.revocations);
            let gone = revocations.set.prune_expired(now);
            if gone.is_empty() {
                return gone;
            }
            for revocation in &gone {
                revocations.bytes.remove(&revocation.id);
            }
            (gone, revocations.set.digest())
        };
        let mut own = lock(&self.own_hello);
        own.0.revocation_digest = digest;
        own.1 = wire::encode(&own.0);
        gone
    }

    /// Enforces a checked revocation from now on (its `bytes` are what a
    /// revoked peer is shown); `false` if it was already enforced.
    pub fn enforce(
        &self,
        verified: VerifiedRevocation,
        bytes: Vec<u8>,
    ) -> Result<bool, RevocationError> {
        let id = verified.id;
        let digest = {
            let mut revocations = lock(&self.revocations);
            if !revocations.set.insert(verified)? {
                return Ok(false);
            }
            revocations.bytes.insert(id, bytes);
            revocations.set.digest()
        };
        let mut own = lock(&self.own_hello);
        own.0.revocation_digest = digest;
        own.1 = wire::encode(&own.0);
        Ok(true)
    }

    /// Whether revocation `id` is enforced here.
    pub fn knows_revocation(&self, id: &[u8; 32]) -> bool {
        lock(&self.revocations).set.contains(id)
    }

    /// The enforced revocation with `id`.
    pub fn revocation(&self, id: &[u8; 32]) -> Option<VerifiedRevocation> {
        lock(&self.revocations).set.get(id).cloned()
    }

    /// Every enforced revocation, oldest first.
    pub fn revocations(&self) -> Vec<VerifiedRevocation> {
        lock(&self.revocations).set.iter().cloned().collect()
    }

    /// The revocation that covers `device`, if any.
    pub fn revocation_of(&self, device: &VerifiedDevice) -> Option<VerifiedRevocation> {
        lock(&self.revocations).set.covering(device).cloned()
    }

    /// Blocks `peer` (a revoked device that was connected).
    pub fn block(&self, peer: &PeerId, reason: String) {
        if let Some(device) = device_id(peer) {
            lock(&self.blocklist).block(device, self.clock.now(), self.block_secs, reason);
        }
    }

    /// Lifts the block on `peer` (its revocation was overruled).
    pub fn unblock(&self, peer: &PeerId) {
        if let Some(device) = device_id(peer) {
            lock(&self.blocklist).unblock(&device);
        }
    }

    fn own_hello(&self) -> Vec<u8> {
        lock(&self.own_hello).1.clone()
    }

    fn refuse(&self, peer: PeerId, reason: String) -> AdmissionError {
        self.refuse_with(peer, reason, None)
    }

    /// Refuses and blocks `peer`; `revocation` is a valid one it sent that
    /// the node did not know yet (passed on, for what it says).
    fn refuse_with(
        &self,
        peer: PeerId,
        reason: String,
        revocation: Option<Vec<u8>>,
    ) -> AdmissionError {
        tracing::warn!(%peer, %reason, "peer refused at admission and blocked");
        if let Some(device) = device_id(&peer) {
            lock(&self.blocklist).block(device, self.clock.now(), self.block_secs, reason.clone());
        }
        // A full channel only loses the report; the refusal itself stands.
        let _ = self.refusals.try_send(Refusal {
            peer,
            reason: reason.clone(),
            revocation,
            shown: None,
            receipt: None,
        });
        AdmissionError::Refused(reason)
    }

    /// `peer` answered with a revocation instead of admitting us. One that
    /// names this device goes to the node (which acts on it). Any other is
    /// no reason to refuse us: `peer` is refused and blocked, whether the
    /// revocation is forged, or valid but about someone else (a replay; a
    /// new one still goes to the node). One already enforced here is known
    /// by its id and costs no signature check.
    ///
    /// If the revocation names this device (with a wipe order), also
    /// returns the wipe receipt to answer with.
    fn revoked_by(&self, peer: PeerId, bytes: &[u8]) -> (AdmissionError, Option<Vec<u8>>) {
        let revocation = match wire::decode::<Revocation>(bytes) {
            Ok(revocation) => revocation,
            Err(e) => {
                return (
                    self.refuse(peer, format!("it sent a forged revocation: {e}")),
                    None,
                );
            }
        };
        let (verified, new) = match self.revocation(&revocation.id()) {
            Some(known) => (known, false),
            None => match self.check_revocation(&revocation) {
                Ok(verified) => (verified, true),
                Err(e) => {
                    return (
                        self.refuse(peer, format!("it sent a forged revocation: {e}")),
                        None,
                    );
                }
            },
        };
        let names_us = self
            .signer
            .as_ref()
            .is_some_and(|signer| verified.covers(&signer.me, &self.policy));
        if !names_us {
            let reason = format!(
                "it answered with a revocation that does not name this device ({})",
                verified.describe()
            );
            return (
                self.refuse_with(peer, reason, new.then(|| bytes.to_vec())),
                None,
            );
        }
        let reason = verified.describe();
        tracing::warn!(%peer, %reason, "a peer refused us with a revocation");
        let receipt = self.signer.as_ref().and_then(|signer| {
            verified.orders_wipe().then(|| {
                wire::encode(&crate::trust::WipeReceipt::sign(
                    crate::trust::WipeReceiptBody {
                        agency: self.agency.id(),
                        revocation: verified.id,
                        device: signer.chain.clone(),
                        wiped_at: self.clock.now(),
                    },
                    &signer.key,
                ))
            })
        });
        // This one must not be lost: wait for room in the channel.
        let refusals = self.refusals.clone();
        let report = Refusal {
            peer,
            reason: reason.clone(),
            revocation: Some(bytes.to_vec()),
            shown: None,
            receipt: None,
        };
        tokio::spawn(async move {
            let _ = refusals.send(report).await;
        });
        (AdmissionError::Revoked(reason), receipt)
    }

    /// The revocation to show `device` if it is revoked here.
    fn revocation_bytes_for(&self, device: &VerifiedDevice) -> Option<Checked> {
        let revocations = lock(&self.revocations);
        let verified = revocations.set.covering(device)?;
        let bytes = revocations.bytes.get(&verified.id)?.clone();
        Some(Checked::Revoked {
            reason: verified.describe(),
            id: verified.id,
            revocation: bytes,
        })
    }

    /// Checks a hello: a certified device, maybe revoked.
    fn check(&self, peer: PeerId, bytes: &[u8]) -> Result<Checked, AdmissionError> {
        let Some(device) = device_id(&peer) else {
            return Err(self.refuse(peer, "its key is not an ed25519 device key".into()));
        };
        if wire::kind_of(bytes) == Some(Kind::Revocation) {
            let (error, receipt) = self.revoked_by(peer, bytes);
            return Ok(Checked::RevokedUs { error, receipt });
        }
        let hello =
            wire::decode::<AdmissionHello>(bytes).map_err(|e| self.refuse(peer, e.to_string()))?;
        let verified = admit(&hello, device, &self.agency, self.clock.now(), &self.policy)
            .map_err(|e| self.refuse(peer, e.to_string()))?;
        if let Some(revoked) = self.revocation_bytes_for(&verified) {
            return Ok(revoked);
        }
        Ok(Checked::Admitted((verified, hello.chain)))
    }

    /// A revoked device was shown its revocation: refused and blocked; its
    /// wipe receipt, if it answered with one, goes to the node.
    async fn refuse_revoked<C: AsyncRead + Unpin>(
        &self,
        socket: &mut C,
        peer: PeerId,
        reason: &str,
        shown: [u8; 32],
    ) -> AdmissionError {
        let answer = tokio::time::timeout(RECEIPT_WAIT, read_frame(socket)).await;
        let receipt = match answer {
            Ok(Ok(bytes)) if wire::kind_of(&bytes) == Some(Kind::WipeReceipt) => Some(bytes),
            _ => None,
        };
        let reason = format!("device revoked: {reason}");
        tracing::warn!(%peer, %reason, receipt = receipt.is_some(), "revoked device refused at admission and shown its revocation");
        if let Some(device) = device_id(&peer) {
            lock(&self.blocklist).block(device, self.clock.now(), self.block_secs, reason.clone());
        }
        let refusals = self.refusals.clone();
        let report = Refusal {
            peer,
            reason: reason.clone(),
            revocation: None,
            shown: Some(shown),
            receipt,
        };
        tokio::spawn(async move {
            let _ = refusals.send(report).await;
        });
        AdmissionError::Revoked(reason)
    }

    fn admit(&self, peer: PeerId, admitted: (VerifiedDevice, CertificateChain)) {
        lock(&self.admitted).insert(peer, admitted);
    }
}

/// One admission's place among those allowed at once; given back on drop.
struct AdmissionPlace<'a>(&'a AtomicUsize);

impl Drop for AdmissionPlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
        let Some(_place) = gate.begin() else {
            tracing::debug!(peer = %self.remote, "admission refused: too many under way");
            return Err(AdmissionError::Busy(gate.max_in_progress));
        };
        if let Some((until, reason)) = gate.blocked(&self.remote) {
            return Err(AdmissionError::Blocked { until, reason });
        }
        let remote = self.remote;
        let exchange = async {
            if dialer {
                write_frame(&mut socket, &gate.own_hello()).await?;
                let theirs = read_frame(&mut socket).await?;
                match gate.check(remote, &theirs)? {
                    Checked::Admitted(admitted) => {
                        write_frame(&mut socket, &[]).await?;
                        gate.admit(remote, admitted);
                    }
                    Checked::Revoked {
                        reason,
                        id,
                        revocation,
                    } => {
                        write_frame(&mut socket, &revocation).await?;
                        return Err(gate.refuse_revoked(&mut socket, remote, &reason, id).await);
                    }
                    Checked::RevokedUs { error, receipt } => {
                        if let Some(receipt) = receipt {
                            write_frame(&mut socket, &receipt).await?;
                        }
                        return Err(error);
                    }
                }
            } else {
                let theirs = read_frame(&mut socket).await.map_err(|e| match e {
                    AdmissionError::Refused(reason) => gate.refuse(remote, reason),
                    other => other,
                })?;
                let admitted = match gate.check(remote, &theirs)? {
                    Checked::Admitted(admitted) => admitted,
                    Checked::Revoked {
                        reason,
                        id,
                        revocation,
                    } => {
                        write_frame(&mut socket, &revocation).await?;
                        return Err(gate.refuse_revoked(&mut socket, remote, &reason, id).await);
                    }
                    Checked::RevokedUs { error, receipt } => {
                        if let Some(receipt) = receipt {
                            write_frame(&mut socket, &receipt).await?;
                        }
                        return Err(error);
                    }
                };
                write_frame(&mut socket, &gate.own_hello()).await?;
                let verdict = read_frame(&mut socket).await?;
                if !verdict.is_empty() {
                    if wire::kind_of(&verdict) == Some(Kind::Revocation) {
                        let (error, receipt) = gate.revoked_by(remote, &verdict);
                        if let Some(receipt) = receipt {
                            write_frame(&mut socket, &receipt).await?;
                        }
                        return Err(error);
                    }
                    return Err(gate.refuse(remote, "its admission verdict is garbage".into()));
                }
                gate.admit(remote, admitted);
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
    let max = AdmissionHello::MAX_LEN.max(Revocation::MAX_LEN);
    if len > max {
        return Err(AdmissionError::Refused(format!(
            "admission frame of {len} bytes exceeds {max} bytes"
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
    async fn a_peer_answering_with_a_forged_revocation_is_refused_and_blocked() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (gate, mut refusals) = gate(5);
        let peer = stranger(15);
        let (ours, mut theirs) = tokio::io::duplex(16 * 1024);
        let dialing = tokio::spawn({
            let gate = gate.clone();
            async move {
                AdmissionUpgrade::new(gate, peer)
                    .run(ours.compat(), true)
                    .await
            }
        });
        // The "listener" reads our hello, then claims we are revoked.
        let mut len = [0u8; 4];
        theirs.read_exact(&mut len).await.expect("hello length");
        let mut hello = vec![0u8; u32::from_be_bytes(len) as usize];
        theirs.read_exact(&mut hello).await.expect("hello");
        let mut forged = vec![wire::WIRE_VERSION, Kind::Revocation as u8];
        forged.extend([7u8; 64]);
        theirs
            .write_all(&(forged.len() as u32).to_be_bytes())
            .await
            .expect("write");
        theirs.write_all(&forged).await.expect("write");
        let result = dialing.await.expect("task");
        assert!(
            matches!(result, Err(AdmissionError::Refused(ref r)) if r.contains("forged revocation")),
            "{result:?}"
        );
        let refusal = refusals.try_recv().expect("reported");
        assert!(refusal.revocation.is_none(), "a forgery is not passed on");
        assert!(gate.blocked(&peer).is_some());
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

    /// Lee's gate, able to answer its own revocation, with the agency that
    /// certified Lee and Kim (Kim's chain is returned to revoke him).
    fn lee_gate(
        seed: u64,
    ) -> (
        crate::testing::TestAgency,
        Arc<AdmissionGate>,
        mpsc::Receiver<Refusal>,
        CertificateChain,
        CertificateChain,
    ) {
        use crate::clock::Clock as _;
        let mut agency = crate::testing::TestAgency::new(seed);
        let lee = agency.member("lee");
        let kim = agency.member("kim");
        let now = agency.clock.now();
        let me = lee
            .chain
            .verify_for(
                lee.key.device_id(),
                &lee.agency,
                now,
                &TrustPolicy::default(),
            )
            .expect("lee's chain");
        let hello = AdmissionHello {
            agency: lee.agency.id(),
            chain: lee.chain.clone(),
            revocation_digest: [0; 32],
        };
        let (tx, rx) = mpsc::channel(8);
        let gate = AdmissionGate::new(
            lee.agency.clone(),
            &hello,
            Arc::new(agency.clock.clone()),
            Duration::from_secs(10),
            300,
            tx,
        )
        .with_receipts(ReceiptSigner {
            key: lee.key.clone(),
            chain: lee.chain.clone(),
            me,
        });
        (agency, Arc::new(gate), rx, lee.chain, kim.chain)
    }

    /// `peer` dials `gate` and sends `frame` as its first frame.
    async fn first_frame(
        gate: &Arc<AdmissionGate>,
        peer: PeerId,
        frame: &[u8],
    ) -> Result<yamux::Muxer<tokio_util::compat::Compat<tokio::io::DuplexStream>>, AdmissionError>
    {
        use tokio::io::AsyncWriteExt as _;
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        theirs
            .write_all(&(frame.len() as u32).to_be_bytes())
            .await
            .expect("write");
        theirs.write_all(frame).await.expect("write");
        let result = AdmissionUpgrade::new(gate.clone(), peer)
            .run(ours.compat(), false)
            .await;
        drop(theirs);
        result
    }

    #[tokio::test]
    async fn a_peer_replaying_a_valid_revocation_of_someone_else_is_refused_and_blocked() {
        let (agency, gate, mut refusals, _lee, kim) = lee_gate(21);
        let revocation =
            agency.revocation(&kim, crate::trust::RevocationScope::Device, "lost", true);

        // Not known here yet: checked, passed on to the node, sender blocked.
        let first = stranger(22);
        let result = first_frame(&gate, first, &revocation).await;
        assert!(
            matches!(result, Err(AdmissionError::Refused(ref r)) if r.contains("does not name this device")),
            "{result:?}"
        );
        assert!(gate.blocked(&first).is_some());
        let refusal = refusals.try_recv().expect("reported");
        assert_eq!(refusal.revocation.as_deref(), Some(&revocation[..]));

        // Once enforced, a replay is known by its id: refused and blocked,
        // and nothing more for the node to take in.
        let decoded = wire::decode::<Revocation>(&revocation).expect("decodes");
        let verified = gate.check_revocation(&decoded).expect("valid");
        gate.enforce(verified, revocation.clone())
            .expect("enforced");
        for seed in 23..28 {
            let peer = stranger(seed);
            let result = first_frame(&gate, peer, &revocation).await;
            assert!(
                matches!(result, Err(AdmissionError::Refused(_))),
                "{result:?}"
            );
            assert!(gate.blocked(&peer).is_some());
            assert!(refusals.try_recv().expect("reported").revocation.is_none());
        }
    }

    #[tokio::test]
    async fn a_revocation_naming_this_device_is_obeyed_not_punished() {
        let (agency, gate, mut refusals, lee, _kim) = lee_gate(31);
        let revocation =
            agency.revocation(&lee, crate::trust::RevocationScope::Device, "lost", true);
        let peer = stranger(32);
        let result = first_frame(&gate, peer, &revocation).await;
        assert!(
            matches!(result, Err(AdmissionError::Revoked(_))),
            "{result:?}"
        );
        assert!(
            gate.blocked(&peer).is_none(),
            "the messenger is not blocked"
        );
        let refusal = tokio::time::timeout(Duration::from_secs(5), refusals.recv())
            .await
            .expect("reported in time")
            .expect("reported");
        assert_eq!(refusal.revocation.as_deref(), Some(&revocation[..]));
    }

    #[tokio::test(start_paused = true)]
    async fn admissions_past_the_cap_are_refused_at_once() {
        let (gate, _refusals) = gate(41);
        let gate = Arc::new(
            Arc::into_inner(gate)
                .expect("only reference")
                .with_max_admissions(2),
        );
        // Two stalled admissions hold both places...
        let (first, _first_peer) = tokio::io::duplex(1024);
        let (second, _second_peer) = tokio::io::duplex(1024);
        let stalled: Vec<_> = [(first, 42), (second, 43)]
            .into_iter()
            .map(|(socket, seed)| {
                let gate = gate.clone();
                tokio::spawn(async move {
                    AdmissionUpgrade::new(gate, stranger(seed))
                        .run(socket.compat(), false)
                        .await
                })
            })
            .collect();
        while gate.admissions_in_progress() < 2 {
            tokio::task::yield_now().await;
        }
        // ...so a third is refused without waiting or reading a byte, and
        // is not held against the peer.
        let (third, _third_peer) = tokio::io::duplex(1024);
        let peer = stranger(44);
        let started = tokio::time::Instant::now();
        let result = AdmissionUpgrade::new(gate.clone(), peer)
            .run(third.compat(), false)
            .await;
        assert!(matches!(result, Err(AdmissionError::Busy(2))), "{result:?}");
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(gate.blocked(&peer).is_none());
        assert!(!AdmissionError::Busy(2).is_offence());
        // When the stalled ones time out, their places are free again.
        for task in stalled {
            let result = task.await.expect("task");
            assert!(
                matches!(result, Err(AdmissionError::Refused(_))),
                "{result:?}"
            );
        }
        assert_eq!(gate.admissions_in_progress(), 0);
        let (fourth, _fourth_peer) = tokio::io::duplex(1024);
        let result = AdmissionUpgrade::new(gate.clone(), stranger(45))
            .run(fourth.compat(), false)
            .await;
        assert!(
            matches!(result, Err(AdmissionError::Refused(ref r)) if r.contains("within")),
            "{result:?}"
        );
    }
}
