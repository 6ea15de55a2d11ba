//! The actor's revocation glue: takes revocations and wipe receipts from
//! gossip, sync, admission and the local user; enforces them (admission
//! gate, messenger, connected peers); publishes what was issued here; and,
//! when a revocation names this device, sends a wipe receipt and erases the
//! node.

use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

use super::Actor;
use super::syncing::Intake;
use crate::clock::format_utc;
use crate::identity::{DeviceId, PublicKey};
use crate::node::{NodeError, NodeEvent};
use crate::revocations::{Order, RevocationView, Target};
use crate::store::{Arrival, RevocationRecord, TakenRevocation};
use crate::sync::SyncScope;
use crate::trust::{
    CertificateChain, Issuer, Revocation, RevocationScope, VerifiedDevice, VerifiedRevocation,
    WipeReceipt, WipeReceiptBody,
};
use crate::wire::{self, Kind};

/// How long a revoked peer stays connected after we learn of it: time for
/// it to hear of its revocation from us and to answer with its wipe receipt.
/// Nothing it sends meanwhile is taken, except that receipt.
pub(super) const REVOKED_GRACE: Duration = Duration::from_secs(2);
/// How long a revoked device waits for its wipe receipt to leave before it
/// erases itself.
const WIPE_FLUSH: Duration = Duration::from_millis(500);

impl Actor {
    /// Loads the revocations the store holds and enforces them (at start,
    /// before any connection): in the order this node took them, each
    /// checked at the time it was taken, so the set is the one it had
    /// before (audit M10). Revocations saved before arrivals were recorded
    /// come last, oldest first, checked now. Then what has expired goes.
    pub(super) fn load_revocations(&mut self) {
        // A device whose certificate expired has no messaging, but still
        // obeys the revocations its store holds (issue 17, deliverable 6).
        let log = match self.messaging.as_ref() {
            Some(messaging) => messaging.log.clone(),
            None => crate::store::MessageLog::new(self.store.clone()),
        };
        let now = self.clock.now();
        let taken = log.revocations_as_taken(now).unwrap_or_default();
        self.enforcement
            .continue_arrivals_at(log.next_arrival_number().unwrap_or_default());
        for TakenRevocation {
            bytes,
            received_at,
            recorded,
        } in taken
        {
            let Ok(revocation) = wire::decode::<Revocation>(&bytes) else {
                continue;
            };
            let verified = match self.gate.check_revocation_at(&revocation, received_at) {
                Ok(verified) => verified,
                Err(e) => {
                    tracing::warn!(error = %e, "a stored revocation no longer checks out");
                    continue;
                }
            };
            if !matches!(self.gate.enforce(verified.clone(), bytes.clone()), Ok(true)) {
                continue;
            }
            if !recorded {
                self.note_arrival(verified.id);
            }
            let record = self.record(&verified.id);
            if record.unpublished {
                self.enforcement.hold_unpublished(verified.id, bytes);
            }
            self.apply(&verified, true);
        }
        self.prune_revocations();
    }

    /// Records that revocation `id` was taken now, after those before it.
    fn note_arrival(&mut self, id: [u8; 32]) {
        let arrival = Arrival {
            id,
            number: self.enforcement.next_arrival(),
            received_at: self.clock.now(),
        };
        if let Some(messaging) = self.messaging.as_ref()
            && let Err(e) = messaging.log.save_revocation_arrival(&arrival)
        {
            tracing::error!(error = %e, "cannot save when a revocation was taken");
        }
    }

    /// Drops revocations whose certificates have all expired: from the
    /// set, the store and what sync offers (the set shrinks).
    pub(super) fn prune_revocations(&mut self) {
        let gone = self.gate.prune_expired_revocations();
        if gone.is_empty() {
            return;
        }
        tracing::info!(
            count = gone.len(),
            "revocations expired with the certificates they covered"
        );
        let mut items = Vec::new();
        for revocation in &gone {
            self.enforcement.published(&revocation.id);
            items.push((
                SyncScope::Revocations,
                (revocation.issued_at.saturating_mul(1000), revocation.id),
            ));
            if let Some(messaging) = self.messaging.as_ref()
                && let Err(e) = messaging.log.forget_revocation_arrival(&revocation.id)
            {
                tracing::error!(error = %e, "cannot forget an expired revocation");
            }
        }
        self.drop_items(items);
    }

    /// Takes a revocation or a wipe receipt from gossip or sync (`from`), or
    /// issued here (`None`).
    pub(super) fn take_revocation_item(&mut self, bytes: &[u8], from: Option<PeerId>) -> Intake {
        match wire::kind_of(bytes) {
            Some(Kind::Revocation) => self.take_revocation(bytes, from),
            Some(Kind::WipeReceipt) => self.take_wipe_receipt(bytes, from),
            Some(Kind::AgencyPolicy) => self.take_policy(bytes, from),
            _ => Intake::Rejected("not a revocation or wipe receipt".into()),
        }
    }

    fn take_revocation(&mut self, bytes: &[u8], from: Option<PeerId>) -> Intake {
        let revocation = match wire::decode::<Revocation>(bytes) {
            Ok(revocation) => revocation,
            Err(e) => return Intake::Rejected(format!("malformed revocation: {e}")),
        };
        let verified = match self.gate.check_revocation(&revocation) {
            Ok(verified) => verified,
            Err(e) => {
                let why = crate::net::refusals::Refusal::of_revocation(&e);
                return Intake::refused(why, e.to_string());
            }
        };
        let id = verified.id;
        match self.gate.enforce(verified.clone(), bytes.to_vec()) {
            Ok(true) => {}
            Ok(false) => {
                self.note_seen(&[id], from);
                return Intake::Duplicate;
            }
            Err(e) => {
                let why = crate::net::refusals::Refusal::of_revocation(&e);
                return Intake::refused(why, e.to_string());
            }
        }
        if let Some(messaging) = self.messaging.as_ref() {
            match messaging
                .log
                .save_signed_revocation(bytes, verified.issued_at)
            {
                Ok(item) => self.hold(SyncScope::Revocations, item, bytes.len()),
                Err(e) => tracing::error!(error = %e, "cannot save a revocation"),
            }
        }
        self.note_arrival(id);
        // `baro run` shows the event as a line of its own (not twice).
        tracing::info!(revocation = %verified.describe(), "revocation received");
        self.note_seen(&[id], from);
        let record = self.record(&id);
        self.emit(NodeEvent::Revoked(RevocationView::new(&verified, &record)));
        self.apply(&verified, false);
        Intake::New
    }

    fn take_wipe_receipt(&mut self, bytes: &[u8], from: Option<PeerId>) -> Intake {
        let receipt = match wire::decode::<WipeReceipt>(bytes) {
            Ok(receipt) => receipt,
            Err(e) => return Intake::Rejected(format!("malformed wipe receipt: {e}")),
        };
        let Some(revocation) = self.gate.revocation(&receipt.body.revocation) else {
            // Audit M5: a receipt for a revocation unknown here is never
            // passed on. One its device did not sign is junk and its
            // sender is penalised; a genuine one may have overtaken its
            // revocation: not passed on, asked again later, nobody
            // penalised.
            return match receipt.verify_signer(&self.agency, &self.policy) {
                Ok(_) => Intake::Unverified,
                Err(e) => Intake::Rejected(format!("wipe receipt: {e}")),
            };
        };
        let device = match receipt.verify(&revocation, &self.agency, &self.policy) {
            Ok(device) => device,
            Err(e) => return Intake::Rejected(e.to_string()),
        };
        let key = device.device.public_key();
        let mut record = self.record(&revocation.id);
        if record.wiped.contains_key(&key) {
            return Intake::Duplicate;
        }
        record.wiped.insert(key, receipt.body.wiped_at);
        record.note_seen(key);
        self.note_revoked_device_seen(&revocation.id);
        if let Some(messaging) = self.messaging.as_ref() {
            if let Err(e) = messaging
                .log
                .save_revocation_record(&revocation.id, &record)
            {
                tracing::error!(error = %e, "cannot save a wipe receipt");
            }
            match messaging
                .log
                .save_signed_revocation(bytes, receipt.body.wiped_at)
            {
                Ok(item) => self.hold(SyncScope::Revocations, item, bytes.len()),
                Err(e) => tracing::error!(error = %e, "cannot save a wipe receipt"),
            }
        }
        self.note_seen(&[revocation.id], from);
        tracing::info!(device = %device.device.short(), user = %device.subject.user_id, "wipe receipt received");
        self.emit(NodeEvent::WipeConfirmed {
            revocation: hex::encode(revocation.id),
            device: device.device,
            wiped_at: receipt.body.wiped_at,
        });
        Intake::New
    }

    /// What a revocation does here: this device wipes; everyone else shuts
    /// the devices it covers out (connections, envelopes, keys).
    fn apply(&mut self, verified: &VerifiedRevocation, restored: bool) {
        if self.gate.is_overruled(&verified.id) {
            tracing::info!(revocation = %verified.describe(), "overruled: the device it names revoked its issuer, and wins");
            return;
        }
        self.reinstate_overruled(verified);
        // A revocation of any certificate in a chain (its operator's too)
        // covers the holder, as in the set's `covering`.
        let policy = self.policy.clone();
        let covers = |device: &VerifiedDevice| {
            device
                .certificates()
                .any(|certificate| verified.covers(certificate, &policy))
        };
        if self.me.as_ref().is_some_and(covers) {
            if verified.orders_wipe() {
                self.begin_wipe(verified);
            } else {
                tracing::warn!(revocation = %verified.describe(), "this device was revoked (no wipe ordered): peers will refuse it");
            }
            return;
        }
        let since_ms = verified.issued_at.saturating_mul(1000);
        if let Some(messaging) = self.messaging.as_mut() {
            let covered: Vec<PublicKey> = messaging
                .messenger
                .devices()
                .filter(|device| covers(device))
                .map(|device| device.device.public_key())
                .collect();
            for key in covered {
                messaging.messenger.revoke(key, since_ms, restored);
            }
        }
        let connected: Vec<PeerId> = self
            .connections
            .peers()
            .keys()
            .filter(|peer| {
                self.gate
                    .admitted(peer)
                    .is_some_and(|(device, _)| covers(&device))
            })
            .copied()
            .collect();
        if !connected.is_empty() && !restored {
            self.note_revoked_device_seen(&verified.id);
        }
        let until = Instant::now() + REVOKED_GRACE;
        for peer in connected {
            self.enforcement.revoked_while_connected(peer, until);
        }
        if !restored {
            self.settle_messaging();
        }
    }

    /// A revocation that wins a conflict between two devices of one user
    /// overrules the loser's revocation of its issuer: the issuer, shut out
    /// until now, is taken back (messenger, connected peers).
    fn reinstate_overruled(&mut self, verified: &VerifiedRevocation) {
        let Some(issuer) = verified.issuer_device.as_ref() else {
            return;
        };
        if !verified.is_self_service() || self.gate.revocation_of(issuer).is_some() {
            return;
        }
        let mut was_revoked = self
            .messaging
            .as_mut()
            .is_some_and(|messaging| messaging.messenger.reinstate(issuer.device.public_key()));
        if let Some(peer) = issuer.device.peer_id() {
            was_revoked |= self.enforcement.reinstate(&peer);
            if was_revoked {
                self.gate.unblock(&peer);
            }
        }
        if was_revoked {
            tracing::warn!(device = %issuer.device.short(), user = %issuer.subject.user_id, "a revocation of this device was overruled: it is back");
        }
    }

    /// Whether gossip from `peer` is refused: a revoked device still
    /// connected during its grace period.
    pub(super) fn is_revoked_peer(&self, peer: &PeerId) -> bool {
        self.enforcement.in_grace(peer)
    }

    /// Refuses whatever a revoked device signed, once its revocation is
    /// known here. The frame's `sent_at` is the author's claim: a thief
    /// holding the device backdates it to before the revocation (audit C1),
    /// so it is only quoted, never trusted. What the device signed before
    /// and reaches this node only now is lost with it.
    pub(super) fn check_not_revoked(
        &self,
        author: &VerifiedDevice,
        sent_at: u64,
    ) -> Result<(), String> {
        match self.gate.revocation_of(author) {
            Some(revocation) => Err(format!(
                "signed by a revoked device ({}), whatever time it claims ({sent_at})",
                revocation.describe()
            )),
            None => Ok(()),
        }
    }

    /// Closes the connections of revoked peers whose grace period is over,
    /// and blocks them.
    pub(super) fn disconnect_revoked(&mut self) {
        for peer in self.enforcement.grace_over(Instant::now()) {
            let reason = self
                .gate
                .admitted(&peer)
                .and_then(|(device, _)| self.gate.revocation_of(&device))
                .map(|r| format!("device revoked: {}", r.describe()))
                .unwrap_or_else(|| "device revoked".into());
            tracing::warn!(%peer, %reason, "disconnecting a revoked device");
            self.gate.block(&peer, reason);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Admission turned a peer away over a revocation: one it showed us
    /// (it may name this device), or one we showed it, maybe answered
    /// with its wipe receipt (passed on to everyone).
    pub(super) fn on_refusal(&mut self, refusal: &crate::net::admission::Refusal) {
        if let Some(revocation) = &refusal.revocation {
            let _ = self.take_revocation_item(revocation, Some(refusal.peer));
        }
        if let Some(id) = refusal.shown {
            self.note_seen(&[id], Some(refusal.peer));
            self.note_revoked_device_seen(&id);
        }
        if let Some(receipt) = &refusal.receipt
            && self.take_revocation_item(receipt, Some(refusal.peer)) == Intake::New
        {
            self.publish_bare(receipt.clone());
        }
    }

    /// Notes that `from` holds the revocations `ids`.
    pub(super) fn note_seen(&mut self, ids: &[[u8; 32]], from: Option<PeerId>) {
        let Some(device) = from.and_then(|peer| crate::net::admission::device_id(&peer)) else {
            return;
        };
        for id in ids {
            let mut record = self.record(id);
            if !record.note_seen(device.public_key()) {
                continue;
            }
            if record.unpublished {
                record.unpublished = false;
                self.enforcement.published(id);
            }
            if let Some(messaging) = self.messaging.as_ref()
                && let Err(e) = messaging.log.save_revocation_record(id, &record)
            {
                tracing::error!(error = %e, "cannot save a revocation record");
            }
        }
    }

    /// A reconciliation of the revocation set with `peer` ended: it holds
    /// every revocation here except those in `missing`.
    pub(super) fn note_reconciled(&mut self, peer: PeerId, missing: &[[u8; 32]]) {
        let held: Vec<[u8; 32]> = self
            .gate
            .revocations()
            .into_iter()
            .map(|r| r.id)
            .filter(|id| !missing.contains(id))
            .collect();
        self.note_seen(&held, Some(peer));
    }

    fn record(&self, id: &[u8; 32]) -> RevocationRecord {
        self.messaging
            .as_ref()
            .and_then(|m| m.log.revocation_record(id).ok())
            .unwrap_or_default()
    }

    /// Publishes revocations issued here that no peer has yet.
    pub(super) fn publish_unpublished(&mut self) {
        for (id, bytes) in self.enforcement.unpublished() {
            if self.publish_bare(bytes) {
                self.enforcement.published(&id);
                let mut record = self.record(&id);
                record.unpublished = false;
                if let Some(messaging) = self.messaging.as_ref() {
                    let _ = messaging.log.save_revocation_record(&id, &record);
                }
                tracing::info!(revocation = %hex::encode(&id[..8]), "revocation published");
            }
        }
    }

    /// Publishes a self-signed item (revocation, wipe receipt) on the
    /// control topic as is; `true` if it left (or had left before).
    fn publish_bare(&mut self, bytes: Vec<u8>) -> bool {
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.control.clone(), bytes)
        {
            Ok(id) => {
                self.seen.insert(id);
                true
            }
            Err(libp2p::gossipsub::PublishError::Duplicate) => true,
            Err(e) => {
                tracing::debug!(error = %e, "revocation not published yet");
                false
            }
        }
    }

    /// A revocation signed by an operator's tools, handed to this node.
    pub(super) fn submit_revocation(
        &mut self,
        bytes: Vec<u8>,
    ) -> Result<RevocationView, NodeError> {
        let id = *blake3::hash(&bytes).as_bytes();
        match self.take_revocation_item(&bytes, None) {
            Intake::New | Intake::Duplicate => {}
            Intake::Held | Intake::Unverified => {
                return Err(NodeError::Room("not a revocation".into()));
            }
            Intake::Rejected(reason) | Intake::Deferred(reason) => {
                return Err(NodeError::Room(reason));
            }
        }
        if !self.enforcement.is_wiping() && !self.publish_bare(bytes.clone()) {
            let mut record = self.record(&id);
            if record.seen_by.is_empty() {
                record.unpublished = true;
                self.enforcement.hold_unpublished(id, bytes);
                if let Some(messaging) = self.messaging.as_ref() {
                    let _ = messaging.log.save_revocation_record(&id, &record);
                }
            }
        }
        let verified = self
            .gate
            .revocation(&id)
            .ok_or_else(|| NodeError::Room("the revocation was not kept".into()))?;
        Ok(RevocationView::new(&verified, &self.record(&id)))
    }

    /// Revocations in force of this user's other devices (not of single
    /// certificates), oldest first.
    pub(super) fn own_devices_revoked(&self) -> Vec<RevocationView> {
        let Some(me) = self.me.as_ref() else {
            return Vec::new();
        };
        self.gate
            .revocations()
            .into_iter()
            .filter(|r| {
                r.user == me.subject.user_id
                    && r.scope != RevocationScope::Certificate
                    && r.target.device != me.device
            })
            .map(|r| {
                RevocationView::new(&r, &self.record(&r.id))
                    .with_labels(|device| self.label_of(device))
            })
            .collect()
    }

    /// A revocation a user asked for by hand: refused, adding nothing, when
    /// one in force already covers its target (finding 29).
    pub(super) fn submit_new_revocation(
        &mut self,
        bytes: Vec<u8>,
    ) -> Result<RevocationView, NodeError> {
        if let Ok(revocation) = wire::decode::<Revocation>(&bytes)
            && let Ok(verified) = self.gate.check_revocation(&revocation)
            && let Some(existing) = self.gate.already_revoked(&verified)
        {
            let wiped = self.record(&existing.id).wiped.values().next().copied();
            let label = self.label_of(&existing.target.device);
            return Err(NodeError::Room(crate::revocations::already_revoked(
                &existing,
                label.as_deref(),
                wiped,
            )));
        }
        self.submit_revocation(bytes)
    }

    /// This device's user revokes another of their own devices (self-service).
    pub(super) fn revoke_own_device(
        &mut self,
        device: DeviceId,
        reason: String,
    ) -> Result<RevocationView, NodeError> {
        let me = self.me.clone().ok_or(NodeError::Stopped)?;
        if device == me.device {
            return Err(NodeError::Room(
                "a device cannot revoke itself: run this on another of your devices".into(),
            ));
        }
        let target = self.device_chain(&Target::Device(device))?;
        let user = target
            .leaf()
            .map(|c| c.body.subject.user_id.clone())
            .unwrap_or_default();
        if user != me.subject.user_id {
            return Err(NodeError::Room(format!(
                "device {} belongs to {user}, not to you ({}): only an operator can revoke it",
                device.short(),
                me.subject.user_id
            )));
        }
        let order = Order {
            reason,
            wipe: true,
            now: self.clock.now(),
        };
        let (revocation, _) = crate::revocations::sign(
            &self.agency,
            target,
            RevocationScope::Device,
            &order,
            Issuer::Chain(self.chain.clone()),
            &self.key,
        )
        .map_err(|e| NodeError::Room(e.to_string()))?;
        self.submit_new_revocation(wire::encode(&revocation))
    }

    /// The certificate chain of a device (or a user's newest device) this
    /// node has met.
    pub(super) fn device_chain(&self, target: &Target) -> Result<CertificateChain, NodeError> {
        let known = self
            .messaging
            .as_ref()
            .and_then(|m| m.log.devices().ok())
            .unwrap_or_default();
        target
            .pick(known.into_iter().chain([self.chain.clone()]))
            .ok_or_else(|| {
                NodeError::Room(format!(
                    "{} has never been seen by this node, so its certificate is unknown here",
                    target.describe()
                ))
            })
    }

    /// Every revocation here, with what is known of each: who holds it
    /// and when the device it names was last seen.
    pub(super) fn revocation_views(&self) -> Vec<RevocationView> {
        let log = self.messaging.as_ref().map(|m| &m.log);
        let known = log.and_then(|log| log.devices().ok()).unwrap_or_default();
        self.gate
            .revocations()
            .iter()
            .map(|verified| {
                let seen = log
                    .and_then(|log| log.revoked_device_last_seen(&verified.id).ok())
                    .flatten();
                RevocationView::new(verified, &self.record(&verified.id))
                    .with_coverage(&known, seen)
                    .with_labels(|device| self.label_of(device))
            })
            .collect()
    }

    /// Notes that the device revocation `id` covers was seen now.
    fn note_revoked_device_seen(&self, id: &[u8; 32]) {
        if let Some(messaging) = self.messaging.as_ref()
            && let Err(e) = messaging.log.note_revoked_device_seen(id, self.clock.now())
        {
            tracing::error!(error = %e, "cannot save when a revoked device was seen");
        }
    }

    /// This device was revoked with a wipe order: say so, send the wipe
    /// receipt if anyone can take it, and erase everything shortly after.
    fn begin_wipe(&mut self, verified: &VerifiedRevocation) {
        if self.enforcement.is_wiping() {
            return;
        }
        let notice = format!(
            "this device was revoked by {} at {}: local data erased",
            verified.issued_by,
            format_utc(verified.issued_at)
        );
        // Shown to the user by the Wiping event.
        tracing::info!(%notice, reason = %verified.reason, "wiping this device");
        let receipt = WipeReceipt::sign(
            WipeReceiptBody {
                agency: self.agency.id(),
                revocation: verified.id,
                device: self.chain.clone(),
                wiped_at: self.clock.now(),
            },
            &self.key,
        );
        let sent = self.publish_bare(wire::encode(&receipt));
        tracing::info!(sent, "wipe receipt");
        self.emit(NodeEvent::Wiping {
            notice: notice.clone(),
        });
        let at = Instant::now() + if sent { WIPE_FLUSH } else { Duration::ZERO };
        self.enforcement.begin_wipe(notice, at);
    }

    /// Whether the wipe should happen now.
    pub(super) fn wipe_due(&self) -> bool {
        self.enforcement.wipe_due(Instant::now())
    }

    /// Erases the node's data (the storage key first) and says so; the
    /// node stops right after. Secrets in memory are zeroized as the actor
    /// drops them.
    pub(super) fn finish_wipe(&mut self) {
        let Some(wiping) = self.enforcement.take_wipe() else {
            return;
        };
        self.messaging = None;
        if let Err(e) = self.store.wipe(Some(&wiping.notice)) {
            tracing::error!(error = %e, "wipe failed");
        }
        self.emit(NodeEvent::Wiped {
            notice: wiping.notice,
        });
        self.shutdown.cancel();
    }
}
