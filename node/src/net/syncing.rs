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
use crate::net::sync_protocol::frame_len;
use crate::node::{NodeEvent, SyncReport};
use crate::rooms::RoomId;
use crate::store::envelope_sync_item;
use crate::sync::{
    MAX_FETCH_IDS, MAX_ITEMS_BYTES, Reconciler, Step, SyncIndex, SyncItem, SyncRequest,
    SyncResponse, SyncScope,
};
use crate::trust::{Role, VerifiedDevice};
use crate::wire::{self, Envelope};

/// Items in flight across sessions beyond which finished sessions' entries
/// are pruned.
const MAX_FETCHING: usize = 4096;

/// A sync session this node started with one peer.
#[derive(Debug)]
pub(crate) struct PeerSync {
    queue: VecDeque<SyncScope>,
    rooms_queued: bool,
    scope: Option<SyncScope>,
    reconciler: Option<Reconciler>,
    need: Vec<[u8; 32]>,
    asked: Vec<[u8; 32]>,
    report: SyncReport,
    /// Another round was asked for while this one ran.
    again: bool,
    /// A whole round (reported when it ends), not single sets an event asked for.
    full: bool,
}

impl PeerSync {
    /// A whole round: revocations, control frames, then the rooms both hold.
    fn full(peer: crate::identity::DeviceId) -> Self {
        let mut session = PeerSync::of(
            peer,
            VecDeque::from([SyncScope::Revocations, SyncScope::Control]),
        );
        session.full = true;
        session
    }

    /// Only the sets in `queue`.
    fn of(peer: crate::identity::DeviceId, queue: VecDeque<SyncScope>) -> Self {
        PeerSync {
            queue,
            rooms_queued: false,
            scope: None,
            reconciler: None,
            need: Vec::new(),
            asked: Vec::new(),
            report: SyncReport {
                peer,
                scopes: Vec::new(),
                fetched: 0,
                bytes_sent: 0,
                bytes_received: 0,
                round_trips: 0,
            },
            again: false,
            full: false,
        }
    }
}

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
        self.index = index;
        self.answers.clear();
        self.drop_items(over);
        for room in carried {
            self.carry_room(room);
        }
    }

    /// Records that an item is held (after it was saved).
    pub(super) fn hold(&mut self, scope: SyncScope, item: SyncItem, len: usize) {
        if self.index.insert(scope, item, len) {
            self.answers.invalidate(scope);
        }
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
            if self.index.remove(scope, item) {
                self.answers.invalidate(scope);
            }
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
        if self.index.timestamp_of(scope, &item.1).is_some() {
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
        if let Some(running) = self.syncs.get_mut(&peer) {
            running.again = true;
            return;
        }
        self.syncs.insert(peer, PeerSync::full(device.device));
        self.next_scope(peer);
    }

    /// Reconciles one set with `peer`: queued in the session running with
    /// it (once: a set already waiting there is not queued again), or in a
    /// session of its own.
    pub(super) fn reconcile_scope(&mut self, peer: PeerId, scope: SyncScope) {
        let Some((device, _)) = self.gate.admitted(&peer) else {
            return;
        };
        if let Some(running) = self.syncs.get_mut(&peer) {
            // A whole round that has not listed its rooms yet lists every
            // room both keep (what an event asks for is among them).
            let listed_later =
                running.full && !running.rooms_queued && matches!(scope, SyncScope::Room(_));
            if !listed_later && !running.queue.contains(&scope) {
                running.queue.push_back(scope);
            }
            return;
        }
        let mut session = PeerSync::of(device.device, VecDeque::from([scope]));
        session.rooms_queued = true;
        self.syncs.insert(peer, session);
        self.next_scope(peer);
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
        if self.wiping.is_some() || self.gate.revocation_of(&device).is_some() {
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
                .chain(self.index.scopes().filter_map(|scope| match scope {
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

    /// Moves the session with `peer` to its next set, or ends it.
    fn next_scope(&mut self, peer: PeerId) {
        let Some(device) = self.gate.admitted(&peer).map(|(d, _)| d) else {
            self.syncs.remove(&peer);
            return;
        };
        let rooms = self.rooms_to_sync(&device);
        let Some(session) = self.syncs.get_mut(&peer) else {
            return;
        };
        if session.queue.is_empty() && !session.rooms_queued {
            session.rooms_queued = true;
            session.queue.extend(rooms.into_iter().map(SyncScope::Room));
        }
        let Some(scope) = session.queue.pop_front() else {
            let session = self.syncs.remove(&peer);
            if let Some(session) = session {
                tracing::debug!(peer = %session.report.peer.short(), fetched = session.report.fetched, "sync finished");
                let again = session.again;
                self.last_sync = Some(self.clock.now());
                if session.full {
                    self.emit(NodeEvent::Synced(session.report));
                }
                if again {
                    self.start_sync(peer);
                }
            }
            return;
        };
        let items: Vec<SyncItem> = self.index.items(scope).collect();
        match Reconciler::initiate(items) {
            Ok((reconciler, message)) => {
                session.scope = Some(scope);
                session.reconciler = Some(reconciler);
                session.report.scopes.push(scope.to_string());
                self.send_sync(peer, SyncRequest::Reconcile { scope, message });
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start reconciliation");
                self.syncs.remove(&peer);
            }
        }
    }

    fn send_sync(&mut self, peer: PeerId, request: SyncRequest) {
        if let Some(session) = self.syncs.get_mut(&peer) {
            session.report.bytes_sent += frame_len(&request) as u64;
            session.report.round_trips += 1;
        }
        self.swarm.behaviour_mut().sync.send_request(&peer, request);
    }

    /// Asks for the next batch of missing items, or moves on. Items that
    /// arrived meanwhile (by gossip or another session) and items another
    /// session is fetching right now are skipped: with a dozen peers, every
    /// session would otherwise fetch, and verify, the same missing items.
    fn fetch_next(&mut self, peer: PeerId) {
        let Some(session) = self.syncs.get(&peer) else {
            return;
        };
        let Some(scope) = session.scope else {
            return self.next_scope(peer);
        };
        let need: Vec<[u8; 32]> = session
            .need
            .iter()
            .filter(|id| {
                self.index.timestamp_of(scope, id).is_none() && !self.fetched_elsewhere(peer, id)
            })
            .copied()
            .collect();
        let Some(session) = self.syncs.get_mut(&peer) else {
            return;
        };
        session.need = need;
        if session.need.is_empty() {
            return self.next_scope(peer);
        }
        let take = session.need.len().min(MAX_FETCH_IDS);
        let ids: Vec<[u8; 32]> = session.need.drain(..take).collect();
        session.asked = ids.clone();
        if self.fetching.len() > MAX_FETCHING {
            let syncs = &self.syncs;
            self.fetching
                .retain(|id, by| syncs.get(by).is_some_and(|s| s.asked.contains(id)));
        }
        for id in &ids {
            self.fetching.insert(*id, peer);
        }
        self.send_sync(peer, SyncRequest::Fetch { scope, ids });
    }

    /// Whether a session with another peer is fetching `id` now.
    fn fetched_elsewhere(&self, peer: PeerId, id: &[u8; 32]) -> bool {
        self.fetching.get(id).is_some_and(|by| {
            *by != peer && self.syncs.get(by).is_some_and(|s| s.asked.contains(id))
        })
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
                self.syncs.remove(&peer);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "sync request from a peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_sync_response(&mut self, peer: PeerId, response: SyncResponse) {
        let Some(session) = self.syncs.get_mut(&peer) else {
            return;
        };
        session.report.bytes_received += frame_len(&response) as u64;
        match response {
            SyncResponse::Reconcile(reply) => {
                let Some(reconciler) = session.reconciler.as_mut() else {
                    return;
                };
                match reconciler.step(&reply) {
                    Ok(Step::Continue(message)) => {
                        if let Some(scope) = session.scope {
                            self.send_sync(peer, SyncRequest::Reconcile { scope, message });
                        }
                    }
                    Ok(Step::Done { need, have }) => {
                        if session.scope == Some(SyncScope::Revocations) {
                            self.note_reconciled(peer, &have);
                        }
                        let Some(session) = self.syncs.get_mut(&peer) else {
                            return;
                        };
                        session.reconciler = None;
                        session.need = need;
                        let (refused, now) = (&self.refused, self.clock.now());
                        session.need.retain(|id| !refused.contains(id, now));
                        self.fetch_next(peer);
                    }
                    Err(e) => self.abandon_sync(peer, e.to_string()),
                }
            }
            SyncResponse::Items(items) => {
                let Some(scope) = session.scope else {
                    return;
                };
                let asked = std::mem::take(&mut session.asked);
                let mut returned = Vec::with_capacity(items.len());
                for bytes in &items {
                    let id = item_id(bytes);
                    if !asked.contains(&id) {
                        return self
                            .abandon_sync(peer, "sent an item that was not asked for".into());
                    }
                    returned.push(id);
                    match self.take_synced(scope, bytes, peer) {
                        // The bytes are exactly what the peer announced (their
                        // hash is the id), so they are not fetched again; the
                        // rest of the session goes on (a receipt from a member
                        // removed since, stored by a relay, must not stall sync).
                        Intake::Rejected(reason) => {
                            self.refused.insert(id, Refusal::Invalid, self.clock.now());
                            self.report_rejected(peer, reason);
                        }
                        Intake::Deferred(reason) => {
                            self.refused.insert(id, Refusal::Local, self.clock.now());
                            tracing::info!(%peer, %reason, "sync item refused for now; asked again later");
                        }
                        Intake::New | Intake::Held => {
                            if let Some(session) = self.syncs.get_mut(&peer) {
                                session.report.fetched += 1;
                            }
                        }
                        Intake::Duplicate | Intake::Unverified => {}
                    }
                }
                // A response stops at its byte limit: ask again for the rest.
                if let Some(session) = self.syncs.get_mut(&peer)
                    && !items.is_empty()
                {
                    let rest = asked.into_iter().filter(|id| !returned.contains(id));
                    let mut need: Vec<[u8; 32]> = rest.collect();
                    need.append(&mut session.need);
                    session.need = need;
                }
                self.fetch_next(peer);
            }
            SyncResponse::Noted => {
                self.abandon_sync(peer, "answered a sync request as if it were a hint".into())
            }
            SyncResponse::Refused(reason) => {
                tracing::debug!(%peer, %reason, "peer declined a sync set");
                session.reconciler = None;
                session.need.clear();
                self.next_scope(peer);
            }
        }
    }

    fn report_rejected(&mut self, peer: PeerId, reason: String) {
        let Some(device) = self.syncs.get(&peer).map(|s| s.report.peer) else {
            return;
        };
        tracing::warn!(peer = %device.short(), %reason, "sync item rejected");
        self.emit(NodeEvent::SyncRejected {
            from: device,
            reason,
        });
    }

    fn abandon_sync(&mut self, peer: PeerId, reason: String) {
        let Some(session) = self.syncs.remove(&peer) else {
            return;
        };
        tracing::warn!(peer = %session.report.peer.short(), %reason, "sync item rejected; session abandoned");
        self.emit(NodeEvent::SyncRejected {
            from: session.report.peer,
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
    fn may_serve(&self, peer: &VerifiedDevice, scope: SyncScope) -> Result<(), String> {
        if self.wiping.is_some() {
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
                let index = &self.index;
                match self.answers.respond(scope, || index.items(scope), &message) {
                    Ok(reply) => SyncResponse::Reconcile(reply),
                    Err(e) => SyncResponse::Refused(e.to_string()),
                }
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
                    let Some(timestamp) = self.index.timestamp_of(scope, &id) else {
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
        let untracked = self.index.bytes().saturating_sub(self.quotas.bytes());
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

/// The id reconciliation names an item by: the hash of its encoding (an
/// envelope's id, a frame's gossip message id).
fn item_id(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// The key grant a stored control frame carries, if any.
fn frame_grant(frame: &[u8]) -> Option<crate::rooms::KeyGrant> {
    let frame = wire::decode::<crate::trust::SignedFrame>(frame).ok()?;
    match wire::decode::<crate::rooms::ControlMessage>(&frame.body.payload).ok()? {
        crate::rooms::ControlMessage::Grant(grant) => Some(grant),
        _ => None,
    }
}
