//! The actor's sync glue: reconciles, with every peer it connects to (and
//! again every sync interval), the revocation set first, then the control
//! frames, then each room both may hold; fetches only what is missing and
//! puts every fetched item through the same validation as gossip. Between
//! those rounds, single sets are reconciled when an event says so (see
//! [`super::sync_triggers`]: a room followed, a peer's hint, a message
//! without a receipt). Also the answering side (what a peer may be given),
//! and a relay's eviction.

use std::collections::VecDeque;
use std::time::Instant;

use libp2p::PeerId;
use libp2p::request_response::{self, ResponseChannel};

use super::Actor;
use super::sync_triggers::Due;
use crate::net::refusals::Refusal;
use crate::net::sync_engine::{Action, Outcome};
use crate::node::NodeEvent;
use crate::rooms::RoomId;
use crate::store::envelope_sync_item;
use crate::sync::{
    MAX_FETCH_IDS, MAX_ITEMS_BYTES, SyncIndex, SyncItem, SyncRequest, SyncResponse, SyncScope,
};
use crate::trust::{Role, VerifiedDevice};
use crate::wire::{self, Envelope};

/// What became of one envelope or frame offered by gossip or sync.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Intake {
    /// Valid and new.
    New,
    /// Valid, but this device cannot read it (kept aside).
    Held,
    /// Already here.
    Duplicate,
    /// From a device not met yet: kept aside, not passed on, asked again later.
    Unverified,
    /// Invalid for everyone (bad signature, undecodable): the sender or
    /// forwarder is penalised, and sync never fetches it again.
    Rejected(String),
    /// Invalid here and now because of this node's own state (its clock, a
    /// revocation or room definition it holds or lacks): not passed on, but
    /// nobody is penalised, and sync asks for it again later (audit M4).
    Deferred(String),
}

impl Intake {
    /// A refusal, as [`Intake::Rejected`] or [`Intake::Deferred`] by `why`.
    pub(super) fn refused(why: Refusal, reason: String) -> Intake {
        match why {
            Refusal::Invalid => Intake::Rejected(reason),
            Refusal::Local => Intake::Deferred(reason),
            Refusal::Later => {
                tracing::debug!(%reason, "not taken for now");
                Intake::Unverified
            }
        }
    }
}

impl Actor {
    /// Loads what the store holds into the sync index (at start).
    pub(super) fn load_sync_index(&mut self) {
        let Some(messaging) = self.messaging.as_ref() else {
            return;
        };
        let mut index = SyncIndex::new();
        // When each item arrived is not kept: one that claims a time after
        // the start counts as arriving at the start (none claims much more,
        // future-dated items are refused), so none outlives real ones.
        let now_ms = self.clock.now().saturating_mul(1000);
        let mut over = Vec::new();
        match messaging.log.holdings() {
            Ok(items) => {
                for held in items {
                    index.insert(held.scope, held.item, held.len);
                    if let Some(author) = held.author {
                        let arrived = held.item.0.min(now_ms);
                        over.extend(
                            self.quotas
                                .hold(held.scope, held.item, author, held.len, arrived),
                        );
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read what is held for sync"),
        }
        let mut carried = Vec::new();
        if let Some(carrier) = self.carrier.as_mut() {
            let agency = self.agency.id();
            let messenger = &messaging.messenger;
            // Stored order is not arrival order: a group grant whose
            // lineage comes later is taken once it has (audit H5).
            let mut grants: Vec<_> = (messaging.log.control_frames().unwrap_or_default())
                .iter()
                .filter_map(|frame| frame_grant(frame))
                .collect();
            while !grants.is_empty() {
                let before = grants.len();
                grants.retain(|grant| {
                    let Some(issuer) = messenger.device(&grant.issuer) else {
                        return false;
                    };
                    let learnt = carrier
                        .learn_grant(&agency, grant, issuer, |key| messenger.device(key).cloned());
                    matches!(learnt, Err(crate::rooms::CarrierError::Unproven { .. }))
                });
                if grants.len() == before {
                    break;
                }
            }
            carried.extend(carrier.rooms());
        }
        self.sync.load(index);
        self.drop_items(over);
        for room in carried {
            self.carry_room(room);
        }
    }

    /// Records that an item is held (after it was saved).
    pub(super) fn hold(&mut self, scope: SyncScope, item: SyncItem, len: usize) {
        self.sync.hold(scope, item, len);
    }

    /// Records that an item by `author` is held (after it was saved), and
    /// drops what puts the author over its quota (its own oldest received).
    pub(super) fn hold_by(
        &mut self,
        scope: SyncScope,
        item: SyncItem,
        len: usize,
        author: crate::identity::PublicKey,
    ) {
        self.hold(scope, item, len);
        let now_ms = self.clock.now().saturating_mul(1000);
        let over = self.quotas.hold(scope, item, author, len, now_ms);
        if !over.is_empty() {
            tracing::info!(author = %hex::encode(&author.0[..6]), items = over.len(), "an author went over its quota: its oldest items here were dropped");
        }
        self.drop_items(over);
    }

    /// Forgets and deletes items (evicted, or over an author's quota).
    pub(super) fn drop_items(&mut self, items: Vec<(SyncScope, SyncItem)>) {
        for (scope, item) in items {
            self.quotas.release(scope, item);
            self.sync.forget(scope, item);
            if let Some(messaging) = self.messaging.as_ref()
                && let Err(e) = messaging.log.remove_item(scope, &item)
            {
                tracing::error!(error = %e, "cannot drop an item");
            }
        }
    }

    /// Saves and holds an envelope that is not a text (receipts).
    pub(super) fn hold_extra(&mut self, envelope: &Envelope) {
        let item = envelope_sync_item(envelope);
        let scope = SyncScope::Room(envelope.body.header.room);
        if self.sync.index().timestamp_of(scope, &item.1).is_some() {
            return;
        }
        let Some(messaging) = self.messaging.as_ref() else {
            return;
        };
        match messaging.log.save_extra(envelope) {
            Ok(_) => {
                let (len, sender) = (wire::encode(envelope).len(), envelope.body.header.sender);
                self.hold_by(scope, item, len, sender);
            }
            Err(e) => tracing::error!(error = %e, "cannot save an envelope"),
        }
    }

    /// Saves and holds a control frame (its bytes as they travel), within
    /// its author's quota. A payload that is not a room control message (a
    /// plain notice) is neither stored nor synced: gossip carries it to
    /// whoever is online, and that is all.
    pub(super) fn hold_control(&mut self, frame: &[u8]) {
        let Some(messaging) = self.messaging.as_ref() else {
            return;
        };
        let Ok(decoded) = wire::decode::<crate::trust::SignedFrame>(frame) else {
            return;
        };
        if wire::decode::<crate::rooms::ControlMessage>(&decoded.body.payload).is_err() {
            return;
        }
        let Some(author) = decoded.body.author.leaf().map(|leaf| leaf.body.key) else {
            return;
        };
        match messaging.log.save_control(frame) {
            Ok(Some(item)) => self.hold_by(SyncScope::Control, item, frame.len(), author),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot save a control frame"),
        }
    }

    /// Starts a sync session with `peer` (or asks the running one to go again).
    pub(super) fn start_sync(&mut self, peer: PeerId) {
        let Some((device, _)) = self.gate.admitted(&peer) else {
            return;
        };
        let actions = self.sync.start_round(peer, device.device, self.clock.now());
        self.run_sync_actions(actions);
    }

    /// Reconciles one set with `peer`: queued in the session running with
    /// it (once), or in a session of its own.
    pub(super) fn reconcile_scope(&mut self, peer: PeerId, scope: SyncScope) {
        let Some((device, _)) = self.gate.admitted(&peer) else {
            return;
        };
        let actions = self
            .sync
            .reconcile(peer, device.device, scope, self.clock.now());
        self.run_sync_actions(actions);
    }

    /// Carries out what the sync engine asked for (and what that leads to).
    fn run_sync_actions(&mut self, actions: Vec<Action<PeerId>>) {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Send(peer, request) => {
                    self.swarm.behaviour_mut().sync.send_request(&peer, request);
                }
                Action::ListRooms(peer) => {
                    let Some((device, _)) = self.gate.admitted(&peer) else {
                        self.sync.end(&peer);
                        continue;
                    };
                    let rooms = self.rooms_to_sync(&device);
                    queue.extend(self.sync.rooms_listed(peer, rooms, self.clock.now()));
                }
                Action::Take { peer, scope, items } => {
                    let mut outcomes = Vec::with_capacity(items.len());
                    for (id, bytes) in items {
                        let outcome = match self.take_synced(scope, &bytes, peer) {
                            Intake::Rejected(reason) => {
                                self.report_rejected(peer, reason);
                                Outcome::Refused(Refusal::Invalid)
                            }
                            Intake::Deferred(reason) => {
                                tracing::info!(%peer, %reason, "sync item refused for now; asked again later");
                                Outcome::Refused(Refusal::Local)
                            }
                            Intake::New | Intake::Held => Outcome::Taken,
                            Intake::Unverified => Outcome::Postponed,
                            Intake::Duplicate => Outcome::Ignored,
                        };
                        outcomes.push((id, outcome));
                    }
                    queue.extend(self.sync.taken(peer, outcomes, self.clock.now()));
                }
                Action::RevocationsReconciled { peer, missing } => {
                    self.note_reconciled(peer, &missing);
                }
                Action::Finished {
                    peer,
                    report,
                    full,
                    again,
                } => {
                    tracing::debug!(peer = %report.peer.short(), fetched = report.fetched, "sync finished");
                    if full {
                        self.emit(NodeEvent::Synced(report));
                    }
                    if again {
                        self.start_sync(peer);
                    }
                }
                Action::Abandoned { device, reason, .. } => {
                    tracing::warn!(peer = %device.short(), %reason, "sync item rejected; session abandoned");
                    self.emit(NodeEvent::SyncRejected {
                        from: device,
                        reason,
                    });
                }
            }
        }
    }

    /// Runs what [`super::sync_triggers`] says is due: rooms followed
    /// lately are reconciled with their peers again, and messages without
    /// a receipt are offered to their room's peers.
    pub(super) fn sync_when_due(&mut self) {
        let now = Instant::now();
        for due in self.triggers.due(now) {
            match due {
                Due::Recheck(room) => {
                    for peer in self.room_peers(room) {
                        self.reconcile_scope(peer, SyncScope::Room(room));
                    }
                }
                Due::Offer { room, message } => {
                    if self.is_held_elsewhere(&message) {
                        self.triggers.held(&message);
                        continue;
                    }
                    let listening = self.room_peers(room);
                    for peer in &listening {
                        self.hint(*peer, SyncScope::Room(room), now);
                    }
                    // A member that is not listening may have missed the
                    // grant or definition that would make it listen.
                    for peer in self.members_not_listening(room, &listening) {
                        self.hint(peer, SyncScope::Control, now);
                    }
                }
            }
        }
    }

    /// Admitted peers that belong to `room` but are not among `listening`.
    pub(super) fn members_not_listening(&self, room: RoomId, listening: &[PeerId]) -> Vec<PeerId> {
        let Some(state) = self.messaging.as_ref().and_then(|m| m.messenger.room(room)) else {
            return Vec::new();
        };
        self.connections
            .peers()
            .keys()
            .filter(|peer| !listening.contains(peer))
            .filter(|peer| {
                self.gate
                    .admitted(peer)
                    .is_some_and(|(device, _)| state.admits(&device))
            })
            .copied()
            .collect()
    }

    /// Whether a member or relay said it holds `message` (a receipt of any
    /// kind); then it also leaves the outbox.
    fn is_held_elsewhere(&self, message: &[u8; 32]) -> bool {
        let Some(messaging) = self.messaging.as_ref() else {
            return true;
        };
        let held = messaging
            .log
            .receipts(message)
            .is_ok_and(|receipts| !receipts.is_empty());
        if held {
            let _ = messaging.log.pop_outbox(message);
        }
        held
    }

    /// Admitted peers that may hold `room`: those that follow its topic, and relays.
    pub(super) fn room_peers(&self, room: RoomId) -> Vec<PeerId> {
        let topic = crate::net::topics::room(&self.agency.id(), &room.0).hash();
        let gossipsub = &self.swarm.behaviour().gossipsub;
        let mut peers: Vec<PeerId> = gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&topic))
            .map(|(peer, _)| *peer)
            .filter(|peer| self.connections.holds(peer))
            .collect();
        peers.extend(
            self.connections
                .peers()
                .iter()
                .filter(|(_, info)| info.role == Role::Relay)
                .map(|(peer, _)| *peer),
        );
        peers.sort();
        peers.dedup();
        peers
    }

    /// Tells `peer` this node holds items of `scope` it may lack (at most
    /// once per coalescing interval per peer and set).
    pub(super) fn hint(&mut self, peer: PeerId, scope: SyncScope, now: Instant) {
        // A request to a peer not connected would dial it.
        if !self.connections.holds(&peer) || !self.triggers.should_hint(&peer, scope, now) {
            return;
        }
        let request = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, SyncRequest::Hint { scope });
        self.triggers.hint_sent(request);
    }

    /// A peer's hint: the set is reconciled with it, if this node keeps
    /// that set with that peer at all, within the peer's hint budget.
    fn on_hint(&mut self, peer: PeerId, scope: SyncScope) {
        let Some((device, _)) = self.gate.admitted(&peer) else {
            return;
        };
        if self.enforcement.is_wiping() || self.gate.revocation_of(&device).is_some() {
            return;
        }
        let kept = match scope {
            SyncScope::Revocations | SyncScope::Control => true,
            SyncScope::Room(room) => self.rooms_to_sync(&device).contains(&room),
        };
        if kept && self.triggers.accept_hint(&peer, Instant::now()) {
            self.reconcile_scope(peer, scope);
        }
    }

    /// Starts a round with every connected peer.
    pub(super) fn sync_all(&mut self) {
        let peers: Vec<PeerId> = self.connections.peers().keys().copied().collect();
        for peer in peers {
            self.start_sync(peer);
        }
    }

    /// The rooms to reconcile with `peer`, decided after the control frames
    /// (which carry the grants that say who is in which room).
    fn rooms_to_sync(&self, peer: &VerifiedDevice) -> Vec<RoomId> {
        let mut rooms: Vec<RoomId> = match (&self.carrier, &self.messaging) {
            (Some(carrier), _) if peer.role == Role::Relay => carrier
                .rooms()
                .chain(self.sync.index().scopes().filter_map(|scope| match scope {
                    SyncScope::Room(room) => Some(room),
                    _ => None,
                }))
                .collect(),
            (Some(carrier), _) => carrier.rooms_of(&self.agency.id(), peer),
            (None, Some(messaging)) => messaging.messenger.rooms().map(|r| r.id).collect(),
            (None, None) => Vec::new(),
        };
        rooms.sort();
        rooms.dedup();
        rooms
    }

    pub(super) fn on_sync_event(
        &mut self,
        event: request_response::Event<SyncRequest, SyncResponse>,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request: SyncRequest::Hint { scope },
                        channel,
                        ..
                    },
                ..
            } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, SyncResponse::Noted);
                self.on_hint(peer, scope);
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.answer_sync(peer, request, channel),
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } if !self.raw_syncs.contains_key(&request_id)
                && self.triggers.was_hint(&request_id) =>
            {
                if response != SyncResponse::Noted {
                    tracing::debug!(%request_id, "a hint was answered with something else");
                }
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } if self.raw_syncs.contains_key(&request_id) => {
                if let Some(reply) = self.raw_syncs.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { response, .. },
                ..
            } => self.on_sync_response(peer, response),
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } if self.triggers.was_hint(&request_id) => {
                tracing::debug!(%peer, %error, "a sync hint was not delivered");
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } if self.raw_syncs.contains_key(&request_id) => {
                if let Some(reply) = self.raw_syncs.remove(&request_id) {
                    let _ = reply.send(Err(crate::node::NodeError::Network(error.to_string())));
                }
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "sync request failed");
                self.sync.end(&peer);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "sync request from a peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_sync_response(&mut self, peer: PeerId, response: SyncResponse) {
        if self.gate.admitted(&peer).is_none() {
            return self.sync.end(&peer);
        }
        let actions = self.sync.on_response(peer, response, self.clock.now());
        self.run_sync_actions(actions);
    }

    fn report_rejected(&mut self, peer: PeerId, reason: String) {
        let Some(device) = self.sync.device_of(&peer) else {
            return;
        };
        tracing::warn!(peer = %device.short(), %reason, "sync item rejected");
        self.emit(NodeEvent::SyncRejected {
            from: device,
            reason,
        });
    }

    /// Validates and takes in one fetched item, exactly like the same bytes
    /// arriving by gossip.
    fn take_synced(&mut self, scope: SyncScope, bytes: &[u8], peer: PeerId) -> Intake {
        match scope {
            SyncScope::Revocations => self.take_revocation_item(bytes, Some(peer)),
            SyncScope::Control => self.take_control(bytes),
            SyncScope::Room(room) => self.take_envelope(room, bytes),
        }
    }

    /// Whether `peer` may be given `scope`.
    pub(super) fn may_serve(&self, peer: &VerifiedDevice, scope: SyncScope) -> Result<(), String> {
        if self.enforcement.is_wiping() {
            return Err("this device is erasing itself".into());
        }
        if scope != SyncScope::Revocations && self.gate.revocation_of(peer).is_some() {
            return Err(format!("{} was revoked", peer.device.short()));
        }
        let SyncScope::Room(room) = scope else {
            return Ok(());
        };
        let allowed = match (&self.carrier, &self.messaging) {
            // Relays carry every room's ciphertext.
            _ if peer.role == Role::Relay => true,
            (Some(carrier), _) => carrier.may_serve(&self.agency.id(), room, peer),
            (None, Some(messaging)) => messaging
                .messenger
                .room(room)
                .is_some_and(|r| r.admits(peer)),
            (None, None) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(format!("{scope} is not served to {}", peer.subject.user_id))
        }
    }

    fn answer_sync(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        let now_ms = super::messaging::rate_clock_ms();
        let response = match self.gate.admitted(&peer) {
            None => SyncResponse::Refused("not admitted".into()),
            Some((device, _))
                if matches!(request, SyncRequest::Reconcile { .. })
                    && device.role != Role::Relay
                    && !self
                        .quotas
                        .allow_reconcile(&device.device.public_key(), now_ms) =>
            {
                SyncResponse::Refused("too many reconciliation requests: ask again later".into())
            }
            Some((device, _)) => self.serve(&device, request),
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response);
    }

    fn serve(&mut self, peer: &VerifiedDevice, request: SyncRequest) -> SyncResponse {
        match request {
            // Taken before serving (see `on_sync_event`); nothing to give.
            SyncRequest::Hint { .. } => SyncResponse::Noted,
            SyncRequest::Reconcile { scope, message } => {
                if let Err(reason) = self.may_serve(peer, scope) {
                    return SyncResponse::Refused(reason);
                }
                self.sync.answer(scope, &message)
            }
            SyncRequest::Fetch { scope, ids } => {
                if let Err(reason) = self.may_serve(peer, scope) {
                    return SyncResponse::Refused(reason);
                }
                if ids.len() > MAX_FETCH_IDS {
                    return SyncResponse::Refused(format!("at most {MAX_FETCH_IDS} ids at once"));
                }
                let Some(messaging) = self.messaging.as_ref() else {
                    return SyncResponse::Items(Vec::new());
                };
                let mut items = Vec::new();
                let mut total = 0;
                for id in ids {
                    let Some(timestamp) = self.sync.index().timestamp_of(scope, &id) else {
                        continue;
                    };
                    let Ok(Some(bytes)) = messaging.log.item_bytes(scope, &(timestamp, id)) else {
                        continue;
                    };
                    if total + bytes.len() > MAX_ITEMS_BYTES {
                        break;
                    }
                    total += bytes.len();
                    items.push(bytes);
                }
                SyncResponse::Items(items)
            }
        }
    }

    /// Drops what a relay no longer keeps: received before the retention
    /// period, or the first received beyond the quota. Local receipt time,
    /// never the time an author claims: a future-dated item does not
    /// outlive real ones (audit H6, M13).
    pub(super) fn evict(&mut self) {
        let Some(relay) = self.config.config.relay.clone() else {
            return;
        };
        let now_ms = self.clock.now().saturating_mul(1000);
        let oldest = now_ms.saturating_sub(relay.retention_days.saturating_mul(86_400_000));
        let untracked = self
            .sync
            .index()
            .bytes()
            .saturating_sub(self.quotas.bytes());
        let gone = self.quotas.evict(
            oldest,
            relay.max_store_mb.saturating_mul(1 << 20),
            untracked,
        );
        if !gone.is_empty() {
            tracing::info!(
                items = gone.len(),
                "relay store: evicted the first received items"
            );
        }
        self.drop_items(gone);
    }
}

/// The key grant a stored control frame carries, if any.
fn frame_grant(frame: &[u8]) -> Option<crate::rooms::KeyGrant> {
    let frame = wire::decode::<crate::trust::SignedFrame>(frame).ok()?;
    match wire::decode::<crate::rooms::ControlMessage>(&frame.body.payload).ok()? {
        crate::rooms::ControlMessage::Grant(grant) => Some(grant),
        _ => None,
    }
}
