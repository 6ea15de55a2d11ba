//! Admission inside the transport upgrade, between noise and yamux.
//!
//! After noise has authenticated the remote PeerId, and before any stream
//! multiplexer exists, the two sides admit each other in three steps. Only
//! when both are satisfied does yamux start. A peer that fails never gets a
//! multiplexed connection, so it never sees identify data, our protocols or
//! our gossipsub topics; it is logged, reported and blocked.
//!
//! 1. **Network proof** (see [`super::membership_proof`]). The dialer sends
//!    a fresh nonce; the listener answers with its own nonce and its tag;
//!    the dialer checks it and sends its tag, which the listener checks.
//!    A tag is a MAC, under a key derived from the network key, over both
//!    PeerIds and both nonces: it shows the sender holds the network key,
//!    for this connection only.
//! 2. **The listener's hello**: its [`AdmissionHello`] (certificate chain:
//!    user id, display name, org unit, role, issuing operator), sent only
//!    to a dialer whose tag checked. The dialer checks the chain against
//!    the noise-authenticated PeerId and the revocations it enforces.
//! 3. **The dialer's hello**, sent only once the listener's chain checked;
//!    then the listener's verdict on it (empty: admitted).
//!
//! What this protects, and what not (audit M7):
//! - Without the network key, nothing is learnt: pnet already stops such a
//!   peer, and the tag makes the proof explicit and bound to this
//!   connection whatever carries it (relayed circuits, in-memory tests).
//! - A dialer never shows its chain to a listener that has not first shown
//!   a valid, unrevoked chain for the key noise authenticated. So peers
//!   announced falsely (forged LAN beacons, Kademlia records) by someone
//!   holding the network key, even a revoked device, learn nothing from
//!   the nodes that dial them: spoofed discovery harvests no identities.
//! - A listener shows its chain to any dialer holding the network key.
//!   Someone could hold the network key without an unrevoked certificate
//!   (a revoked or lost device, a leaked bundle file). Such a holder, if it
//!   can reach a node's listening address, learns that node's chain: its
//!   user id, name, org unit and role. Only then does it fail
//!   admission and get blocked (per key). One side has to show a
//!   certificate first; with ordinary signatures no design avoids that.
//!   We chose the listener, because dialers are the ones lured by
//!   discovery. A lost phone not yet revoked is simply a member: it is
//!   admitted and learns what any member does, until its revocation
//!   reaches the mesh.
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

use super::membership_proof::{self, Binding, MembershipKey, PROOF_LEN, Side};
use crate::clock::Clock;
use crate::identity::{DeviceId, Entropy, OsEntropy, PublicKey};
use crate::node::BlockedPeer;
use crate::trust::{
    AdmissionHello, AgencyInfo, Blocklist, CertificateChain, Revocation, RevocationError,
    RevocationSet, TrustError, TrustPolicy, VerifiedDevice, VerifiedRevocation, admit,
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
    /// This node's PeerId, bound into the network proof.
    local: PeerId,
    membership: MembershipKey,
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
    /// A gate for node `local` of `agency` presenting `own_hello`, proving
    /// it holds the network key with `membership`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        agency: AgencyInfo,
        own_hello: &AdmissionHello,
        local: PeerId,
        membership: MembershipKey,
        clock: Arc<dyn Clock>,
        timeout: Duration,
        block_secs: u64,
        refusals: mpsc::Sender<Refusal>,
    ) -> Self {
        AdmissionGate {
            agency,
            local,
            membership,
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

    /// The revocation in force that already does what `new` would (see
    /// [`crate::trust::RevocationSet::already_revoked`]).
    pub fn already_revoked(&self, new: &VerifiedRevocation) -> Option<VerifiedRevocation> {
        lock(&self.revocations).set.already_revoked(new).cloned()
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
        let verified = match admit(&hello, device, &self.agency, self.clock.now(), &self.policy) {
            Ok(verified) => verified,
            Err(e) => {
                // A device whose certificate ran out while it was off is
                // still shown a revocation that names it (issue 17,
                // deliverable 6): checked as of its certificate's end,
                // its chain still proves who it is. It is refused anyway.
                if matches!(e, TrustError::Expired { .. })
                    && let Some(end) = hello.chain.leaf().map(|leaf| leaf.body.not_after)
                    && let Ok(expired) = admit(&hello, device, &self.agency, end, &self.policy)
                    && let Some(revoked) = self.revocation_bytes_for(&expired)
                {
                    return Ok(revoked);
                }
                return Err(self.refuse(peer, e.to_string()));
            }
        };
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
        // The refusal reaches the user as a PeerRefused event (`baro run`
        // prints it): a warning here would say it twice.
        tracing::info!(%peer, %reason, receipt = receipt.is_some(), "revoked device refused at admission and shown its revocation");
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

    /// Step 1 of admission: both sides prove they hold the network key,
    /// bound to this connection (see [`super::membership_proof`]). A peer
    /// whose proof is missing or wrong is refused and blocked.
    async fn prove<C: AsyncRead + AsyncWrite + Unpin>(
        &self,
        socket: &mut C,
        remote: PeerId,
        dialer: bool,
    ) -> Result<(), AdmissionError> {
        let ours: [u8; PROOF_LEN] = OsEntropy.array();
        let (local, remote_bytes) = (self.local.to_bytes(), remote.to_bytes());
        let unproven = || {
            self.refuse(
                remote,
                "it did not prove it holds the agency network key".into(),
            )
        };
        if dialer {
            write_frame(socket, &ours).await?;
            let answer = self.read_from(socket, remote).await?;
            let Some((nonce, proof)) = answer.split_at_checked(PROOF_LEN) else {
                return Err(unproven());
            };
            let Ok(theirs) = <[u8; PROOF_LEN]>::try_from(nonce) else {
                return Err(unproven());
            };
            let binding = Binding {
                dialer: &local,
                listener: &remote_bytes,
                dialer_nonce: &ours,
                listener_nonce: &theirs,
            };
            if !membership_proof::verify(&self.membership, Side::Listener, &binding, proof) {
                return Err(unproven());
            }
            let tag = membership_proof::tag(&self.membership, Side::Dialer, &binding);
            write_frame(socket, &tag).await?;
        } else {
            let nonce = self.read_from(socket, remote).await?;
            let Ok(theirs) = <[u8; PROOF_LEN]>::try_from(nonce.as_slice()) else {
                return Err(unproven());
            };
            let binding = Binding {
                dialer: &remote_bytes,
                listener: &local,
                dialer_nonce: &theirs,
                listener_nonce: &ours,
            };
            let mut answer = ours.to_vec();
            answer.extend(membership_proof::tag(
                &self.membership,
                Side::Listener,
                &binding,
            ));
            write_frame(socket, &answer).await?;
            let proof = self.read_from(socket, remote).await?;
            if !membership_proof::verify(&self.membership, Side::Dialer, &binding, &proof) {
                return Err(unproven());
            }
        }
        Ok(())
    }

    /// Reads a frame from `peer`; an oversized one is refused and blocked.
    async fn read_from<C: AsyncRead + Unpin>(
        &self,
        socket: &mut C,
        peer: PeerId,
    ) -> Result<Vec<u8>, AdmissionError> {
        read_frame(socket).await.map_err(|e| match e {
            AdmissionError::Refused(reason) => self.refuse(peer, reason),
            other => other,
        })
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
            gate.prove(&mut socket, remote, dialer).await?;
            // The listener shows its chain first, the dialer only once that
            // checked (see the module docs).
            if !dialer {
                write_frame(&mut socket, &gate.own_hello()).await?;
                // A dialer that reads our chain and hangs up without showing
                // its own refused us (another agency, say) or came only to
                // read it: either way an offence, so an address harvesting
                // chains is soon refused on arrival.
                let theirs = gate
                    .read_from(&mut socket, remote)
                    .await
                    .map_err(|e| match e {
                        AdmissionError::Io(_) => gate.refuse(
                            remote,
                            "it hung up after our certificate without showing its own".into(),
                        ),
                        other => other,
                    })?;
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
                let theirs = gate.read_from(&mut socket, remote).await?;
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
            stranger(seed + 1_000),
            membership(),
            Arc::new(ManualClock::new(2_000)),
            Duration::from_secs(10),
            300,
            tx,
        );
        (Arc::new(gate), rx)
    }

    /// The network key every test gate holds.
    fn membership() -> MembershipKey {
        MembershipKey::derive(&crate::trust::NetworkKey([9; 32]))
    }

    fn peer_of(key: &KeyPair) -> PeerId {
        key.device_id().peer_id().expect("peer id")
    }

    /// The far end of a connection, scripted by a test: every frame it
    /// reads is kept, to check what the gate revealed.
    struct Remote {
        stream: tokio::io::DuplexStream,
        received: Vec<Vec<u8>>,
    }

    impl Remote {
        async fn read(&mut self) -> Option<Vec<u8>> {
            use tokio::io::AsyncReadExt as _;
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await.ok()?;
            let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
            self.stream.read_exact(&mut frame).await.ok()?;
            self.received.push(frame.clone());
            Some(frame)
        }

        async fn write(&mut self, frame: &[u8]) {
            use tokio::io::AsyncWriteExt as _;
            let _ = self
                .stream
                .write_all(&(frame.len() as u32).to_be_bytes())
                .await;
            let _ = self.stream.write_all(frame).await;
        }

        /// Reads whatever else the gate sends until it hangs up.
        async fn drain(&mut self) {
            while self.read().await.is_some() {}
        }

        /// Step 1 as the listener `me`, with `key`, against `dialer`.
        async fn prove_as_listener(&mut self, key: &MembershipKey, dialer: PeerId, me: PeerId) {
            let nonce = self.read().await.expect("the dialer's nonce");
            let nonce: [u8; 32] = nonce.try_into().expect("32-byte nonce");
            let ours = [5u8; 32];
            let (dialer, me) = (dialer.to_bytes(), me.to_bytes());
            let binding = Binding {
                dialer: &dialer,
                listener: &me,
                dialer_nonce: &nonce,
                listener_nonce: &ours,
            };
            let mut answer = ours.to_vec();
            answer.extend(membership_proof::tag(key, Side::Listener, &binding));
            self.write(&answer).await;
            let _their_tag = self.read().await;
        }

        /// Step 1 as the dialer `me`, with `key`, against `listener`.
        async fn prove_as_dialer(&mut self, key: &MembershipKey, me: PeerId, listener: PeerId) {
            let ours = [6u8; 32];
            self.write(&ours).await;
            let answer = self.read().await.expect("the listener's proof");
            let nonce: [u8; 32] = answer[..32].try_into().expect("nonce");
            let (me, listener) = (me.to_bytes(), listener.to_bytes());
            let binding = Binding {
                dialer: &me,
                listener: &listener,
                dialer_nonce: &ours,
                listener_nonce: &nonce,
            };
            self.write(&membership_proof::tag(key, Side::Dialer, &binding))
                .await;
        }

        /// Whether any frame it received is an admission hello, or holds
        /// the bytes of `chain` (a certificate chain of the gate's owner).
        fn saw(&self, chain: &CertificateChain) -> bool {
            let leaf = wire::encode(chain);
            let signature = &leaf[leaf.len() - 64..];
            self.received.iter().any(|frame| {
                wire::decode::<AdmissionHello>(frame).is_ok()
                    || frame.windows(signature.len()).any(|w| w == signature)
            })
        }
    }

    /// Runs `gate`'s side of a connection with `remote` (dialing if
    /// `dialer`) in a task; returns the task and the test's end.
    fn connect(
        gate: &Arc<AdmissionGate>,
        remote: PeerId,
        dialer: bool,
    ) -> (tokio::task::JoinHandle<Result<(), AdmissionError>>, Remote) {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let gate = gate.clone();
        let task = tokio::spawn(async move {
            AdmissionUpgrade::new(gate, remote)
                .run(ours.compat(), dialer)
                .await
                .map(drop)
        });
        (
            task,
            Remote {
                stream: theirs,
                received: Vec::new(),
            },
        )
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
        let (gate, mut refusals) = gate(5);
        let peer = stranger(15);
        let (dialing, mut listener) = connect(&gate, peer, true);
        // The "listener" proves the network key, then claims we are revoked
        // instead of showing its hello.
        listener
            .prove_as_listener(&membership(), gate.local, peer)
            .await;
        let mut forged = vec![wire::WIRE_VERSION, Kind::Revocation as u8];
        forged.extend([7u8; 64]);
        listener.write(&forged).await;
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
            peer_of(&lee.key),
            membership(),
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

    /// `peer` dials `gate`, proves the network key, and answers the
    /// gate's hello with `frame` (in place of its own hello).
    async fn first_frame(
        gate: &Arc<AdmissionGate>,
        peer: PeerId,
        frame: &[u8],
    ) -> Result<(), AdmissionError> {
        let (task, mut dialer) = connect(gate, peer, false);
        dialer
            .prove_as_dialer(&membership(), peer, gate.local)
            .await;
        let _their_hello = dialer.read().await;
        dialer.write(frame).await;
        let result = task.await.expect("task");
        drop(dialer);
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

    /// Kim's gate in Lee's agency (see [`lee_gate`]).
    fn kim_gate(
        agency: &crate::testing::TestAgency,
        kim: &crate::node::Credentials,
    ) -> Arc<AdmissionGate> {
        let hello = AdmissionHello {
            agency: kim.agency.id(),
            chain: kim.chain.clone(),
            revocation_digest: [0; 32],
        };
        let (tx, _rx) = mpsc::channel(8);
        Arc::new(AdmissionGate::new(
            kim.agency.clone(),
            &hello,
            peer_of(&kim.key),
            membership(),
            Arc::new(agency.clock.clone()),
            Duration::from_secs(10),
            300,
            tx,
        ))
    }

    #[tokio::test]
    async fn two_members_admit_each_other_after_proving_the_network_key() {
        let (mut agency, lee, _refusals, _lee_chain, _kim_chain) = lee_gate(51);
        let kim = agency.member("kim2");
        let kim_gate = kim_gate(&agency, &kim);
        let (lee_peer, kim_peer) = (lee.local, kim_gate.local);
        let (a, b) = tokio::io::duplex(64 * 1024);
        let dialing = AdmissionUpgrade::new(lee.clone(), kim_peer).run(a.compat(), true);
        let listening = AdmissionUpgrade::new(kim_gate.clone(), lee_peer).run(b.compat(), false);
        let (dialed, listened) = tokio::join!(dialing, listening);
        assert!(
            dialed.is_ok() && listened.is_ok(),
            "{:?} {:?}",
            dialed.err(),
            listened.err()
        );
        let (kim_seen, _) = lee.admitted(&kim_peer).expect("Lee admitted Kim");
        let (lee_seen, _) = kim_gate.admitted(&lee_peer).expect("Kim admitted Lee");
        assert_eq!(kim_seen.subject.user_id, "kim2");
        assert_eq!(lee_seen.subject.user_id, "lee");
    }

    /// Audit M7: someone holding the network key announces a fake peer;
    /// Lee dials it. It completes the network proof, then either shows a
    /// chain it harvested (Kim's, not for its own key) or nothing at all.
    /// Either way Lee's chain never leaves Lee's node.
    #[tokio::test(start_paused = true)]
    async fn a_spoofed_listener_holding_the_network_key_gets_no_certificate_chain() {
        let (_agency, lee, _refusals, lee_chain, kim_chain) = lee_gate(61);
        for (seed, shows) in [(62u64, Some(kim_chain.clone())), (63, None)] {
            let spoof = stranger(seed);
            let (dialing, mut listener) = connect(&lee, spoof, true);
            listener
                .prove_as_listener(&membership(), lee.local, spoof)
                .await;
            if let Some(chain) = shows {
                let hello = AdmissionHello {
                    agency: lee.agency.id(),
                    chain,
                    revocation_digest: [0; 32],
                };
                listener.write(&wire::encode(&hello)).await;
            }
            let result = dialing.await.expect("task");
            listener.drain().await;
            assert!(result.is_err(), "{result:?}");
            assert!(
                !listener.received.is_empty(),
                "the spoof did get the network proof"
            );
            assert!(!listener.saw(&lee_chain), "Lee's chain leaked to {spoof}");
        }
        // The limit, written down in the module docs: whoever holds the
        // network key and dials Lee is shown Lee's chain (the listener
        // shows first), and only then refused.
        let dialer_peer = stranger(64);
        let (listening, mut dialer) = connect(&lee, dialer_peer, false);
        dialer
            .prove_as_dialer(&membership(), dialer_peer, lee.local)
            .await;
        let _hello = dialer.read().await;
        drop(dialer.stream);
        let result = listening.await.expect("task");
        assert!(
            matches!(result, Err(AdmissionError::Refused(ref r)) if r.contains("hung up")),
            "{result:?}"
        );
        assert!(lee.blocked(&dialer_peer).is_some(), "the reader is blocked");
        assert!(
            Remote {
                stream: tokio::io::duplex(1).0,
                received: dialer.received
            }
            .saw(&lee_chain)
        );
    }

    /// Without the network key, neither side shows anything: the dialer's
    /// proof fails at the listener, the listener's at the dialer.
    #[tokio::test]
    async fn a_peer_without_the_network_key_sees_no_chain_either_way() {
        let (_agency, lee, _refusals, lee_chain, _kim_chain) = lee_gate(71);
        let wrong = MembershipKey::derive(&crate::trust::NetworkKey([1; 32]));
        let outsider = stranger(72);
        let (dialing, mut listener) = connect(&lee, outsider, true);
        listener
            .prove_as_listener(&wrong, lee.local, outsider)
            .await;
        let result = dialing.await.expect("task");
        listener.drain().await;
        assert!(
            matches!(result, Err(AdmissionError::Refused(ref r)) if r.contains("network key")),
            "{result:?}"
        );
        assert!(!listener.saw(&lee_chain));

        let outsider = stranger(73);
        let (listening, mut dialer) = connect(&lee, outsider, false);
        dialer.prove_as_dialer(&wrong, outsider, lee.local).await;
        let result = listening.await.expect("task");
        dialer.drain().await;
        assert!(
            matches!(result, Err(AdmissionError::Refused(ref r)) if r.contains("network key")),
            "{result:?}"
        );
        assert!(!dialer.saw(&lee_chain));
        assert!(lee.blocked(&outsider).is_some());
    }
}
