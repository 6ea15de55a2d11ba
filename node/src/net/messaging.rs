//! The actor's messaging glue: feeds certificates, grants and envelopes to
//! the pure [`Messenger`], persists what it learns in the [`MessageLog`],
//! subscribes to room topics, publishes grants and envelopes (queuing them in
//! the outbox while nobody can take them), and sends and records receipts.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use libp2p::PeerId;
use libp2p::gossipsub::{self, MessageAcceptance, TopicHash};

use super::Actor;
use super::syncing::Intake;
use crate::api::{AttachmentView, MessageView, Progress, ReceiptView, RoomInfo, Sent};
use crate::identity::{DeviceId, Entropy, OsEntropy};
use crate::net::refusals::{AHEAD_LOCAL_SECS, Refusal};
use crate::net::topics;
use crate::node::{NodeError, NodeEvent};
use crate::rooms::{
    CarrierError, ControlMessage, KeyGrant, Message, Messenger, MessengerError, RECEIPT_ROOM_LIMIT,
    Room, RoomId, RoomKind, Verdict,
};
use crate::store::{MessageLog, envelope_sync_item};
use crate::sync::SyncScope;
use crate::trust::{FrameBody, SignedFrame, VerifiedDevice};
use crate::wire::{self, Content, Envelope, MAX_RECEIPT_IDS, ReceiptState};

/// Control payloads kept while no peer takes them.
const CONTROL_OUTBOX: usize = 1024;
/// Most history returned at once.
pub const MAX_HISTORY: usize = 10_000;
/// Delivered receipts waiting for the next flush, over all rooms.
const PENDING_RECEIPTS: usize = 4096;
/// Unread messages remembered per room (the count stops there).
const MAX_UNREAD: usize = 10_000;

/// Messaging state of a node whose own certificate is valid.
pub(crate) struct Messaging {
    pub(crate) messenger: Messenger,
    pub(crate) log: MessageLog,
    room_topics: HashMap<TopicHash, RoomId>,
    control_outbox: VecDeque<Vec<u8>>,
    presence_sent: bool,
    /// Messages decrypted here whose delivered receipt has not left yet.
    delivered: BTreeMap<RoomId, Vec<[u8; 32]>>,
    delivered_count: usize,
    /// Messages from others not read here yet, by room; saved in batches.
    unread: BTreeMap<RoomId, Vec<[u8; 32]>>,
    unread_changed: BTreeSet<RoomId>,
    /// Envelopes a relay stored whose "stored" receipt has not left yet.
    stored: BTreeMap<RoomId, Vec<[u8; 32]>>,
    /// Rooms the user hid from the room list (kept in the log).
    hidden: BTreeSet<RoomId>,
    /// Devices' labels, as their newest signed frame said: (sent_at,
    /// label); only devices whose certificate verified here (kept in the log).
    pub(crate) labels: HashMap<crate::identity::PublicKey, (u64, String)>,
    /// When this node last met each device (kept in the log).
    pub(crate) last_seen: HashMap<crate::identity::PublicKey, u64>,
}

impl Messaging {
    /// Restores rooms, keys, known devices and seen ids from `log`.
    pub(crate) fn restore(
        mut messenger: Messenger,
        log: MessageLog,
        verify: impl Fn(&crate::trust::CertificateChain) -> Option<VerifiedDevice>,
        now: u64,
    ) -> Self {
        for room in log.rooms().unwrap_or_default() {
            messenger.update_room(room);
        }
        for (room, epoch, key) in log.keys().unwrap_or_default() {
            messenger.restore_key(room, epoch, key);
        }
        for chain in log.devices().unwrap_or_default() {
            if let Some(device) = verify(&chain) {
                // Members were granted keys before the restart.
                let _ = messenger.learn_device(device, now);
            }
        }
        for id in log.seen().unwrap_or_default() {
            messenger.mark_seen(id);
        }
        for (room, epoch) in log.rotations_due().unwrap_or_default() {
            messenger.restore_rotation_due(room, epoch);
        }
        let _ = messenger.take_new_keys();
        let _ = messenger.take_changed_rooms();
        let unread = log.unread().unwrap_or_default().into_iter().collect();
        let hidden = log.hidden().unwrap_or_default().into_iter().collect();
        let labels = log
            .labels()
            .unwrap_or_default()
            .into_iter()
            .map(|(device, at, label)| (device, (at, label)))
            .collect();
        let last_seen = log.last_seen().unwrap_or_default().into_iter().collect();
        Messaging {
            messenger,
            log,
            room_topics: HashMap::new(),
            control_outbox: VecDeque::new(),
            presence_sent: false,
            delivered: BTreeMap::new(),
            delivered_count: 0,
            unread,
            unread_changed: BTreeSet::new(),
            stored: BTreeMap::new(),
            hidden,
            labels,
            last_seen,
        }
    }
}

fn view(message: &Message, room_name: &str, me: DeviceId) -> Option<MessageView> {
    let (text, attachment) = match &message.content {
        Content::Text(text) => (text, None),
        Content::File { manifest, caption } => (caption, Some(AttachmentView::of(manifest, 0))),
        _ => return None,
    };
    Some(MessageView {
        from_me: message.sender == me,
        receipts: Vec::new(),
        queued: false,
        progress: None,
        id: hex::encode(message.id),
        room: message.room.to_string(),
        room_name: room_name.to_string(),
        sender: message.sender,
        sender_user: message.sender_user.clone(),
        sender_name: message.sender_name.clone(),
        wall_ms: message.timestamp.wall_ms,
        counter: message.timestamp.counter,
        text: text.clone(),
        attachment,
    })
}

fn room_info(room: &Room, can_send: bool, unread: usize, receipts: bool, hidden: bool) -> RoomInfo {
    let (kind, members) = match &room.kind {
        RoomKind::Department { org } => ("department", vec![org.to_string()]),
        RoomKind::Group { members, .. } => ("group", members.iter().cloned().collect()),
        RoomKind::Direct { users } => ("direct", users.to_vec()),
    };
    let admins = match &room.kind {
        RoomKind::Group { admins, .. } => admins.iter().cloned().collect(),
        _ => Vec::new(),
    };
    RoomInfo {
        admins,
        hidden,
        id: room.id.to_string(),
        name: room.name.clone(),
        kind: kind.into(),
        members,
        can_send,
        unread,
        receipts,
    }
}

impl Actor {
    fn now_ms(&self) -> u64 {
        self.clock.now().saturating_mul(1000)
    }

    /// Persists keys and rooms the messenger learned, and follows room topics.
    pub(super) fn settle_messaging(&mut self) {
        self.rotate_where_needed();
        let Some(messaging) = self.messaging.as_mut() else {
            return;
        };
        for room in messaging.messenger.take_left_rooms() {
            let topic = topics::room(&self.agency.id(), &room.0);
            messaging.room_topics.remove(&topic.hash());
            let _ = self.swarm.behaviour_mut().gossipsub.unsubscribe(&topic);
        }
        save_new_keys(messaging);
        for room in messaging.messenger.take_changed_rooms() {
            if let Err(e) = messaging.log.save_room(&room) {
                tracing::error!(error = %e, "cannot save a room");
            }
        }
        for (room, due) in messaging.messenger.take_rotation_due_changes() {
            if let Err(e) = messaging.log.save_rotation_due(room, due) {
                tracing::error!(error = %e, "cannot save a pending key rotation");
            }
        }
        // A room moved past a revoked device's key inside a send: its new
        // key goes out before the message.
        let rotated = messaging.messenger.take_unsent_grants();
        let rooms: Vec<RoomId> = messaging.messenger.rooms().map(|r| r.id).collect();
        for room in rooms {
            self.follow(room);
        }
        if !rotated.is_empty() {
            tracing::info!(
                grants = rotated.len(),
                "a room moved to a new key after a revocation"
            );
            self.publish_grants(rotated);
        }
    }

    /// Subscribes to `room`'s topic (a member's rooms; a relay, or a test's
    /// curious insider, may follow rooms it cannot read).
    pub(super) fn follow(&mut self, room: RoomId) {
        let Some(messaging) = self.messaging.as_mut() else {
            return;
        };
        let topic = topics::room(&self.agency.id(), &room.0);
        if messaging.room_topics.insert(topic.hash(), room).is_some() {
            return;
        }
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        if let Err(e) = gossipsub.subscribe(&topic) {
            tracing::error!(error = %e, "cannot subscribe to a room topic");
        }
        let _ = gossipsub.set_topic_params(topic, topics::score_params());
        // What was said before we listened, or before peers knew we do (at
        // start, with no peer yet, each admission's whole round covers it).
        if !self.connections.peers().is_empty() {
            self.triggers.followed(room, std::time::Instant::now());
            self.sync_when_due();
        }
    }

    /// A newly admitted or announced device: remember it, share keys with it.
    pub(super) fn learn_device(
        &mut self,
        device: VerifiedDevice,
        chain: &crate::trust::CertificateChain,
    ) {
        let now = self.clock.now();
        let revoked = self.gate.revocation_of(&device);
        if revoked.is_none() {
            self.carry_rooms_of(&device);
            self.directory.learn(chain, &device);
        }
        let Some(messaging) = self.messaging.as_mut() else {
            return;
        };
        if let Err(e) = messaging
            .log
            .save_device(&device.device.public_key(), chain)
        {
            tracing::error!(error = %e, "cannot save a device certificate");
        }
        if let Some(revocation) = revoked {
            // Known as revoked before it is known at all: never granted a key.
            messaging.messenger.revoke(
                device.device.public_key(),
                revocation.issued_at.saturating_mul(1000),
                false,
            );
        }
        let grants = messaging.messenger.learn_device(device, now);
        // Messages it wrote before we met it can be shown now.
        let late = messaging.messenger.take_late_deliveries();
        if !late.is_empty() {
            self.take_in(late);
        }
        self.publish_grants(grants);
    }

    /// Groups someone left, where this device is an admin: new key, announced.
    fn rotate_where_needed(&mut self) {
        let (now, now_ms) = (self.clock.now(), self.now_ms());
        let Some(messaging) = self.messaging.as_mut() else {
            return;
        };
        let mut outgoing = Vec::new();
        for room in messaging.messenger.take_rotations() {
            let Ok(grants) = messaging.messenger.rotate(room, now, &mut OsEntropy) else {
                continue;
            };
            outgoing.extend(grants.into_iter().map(ControlMessage::Grant));
            if let Ok(definition) = messaging
                .messenger
                .announce_room(room, now_ms, &mut OsEntropy)
            {
                outgoing.push(ControlMessage::RoomDefinition(definition));
            }
            tracing::info!(room = %room.short(), "a member left or a device was revoked: the group moved to a new key");
        }
        for message in outgoing {
            self.publish_control_message(&message);
        }
    }

    pub(super) fn leave(&mut self, room: &str) -> Result<(), NodeError> {
        let room = self.find_room(room)?;
        let now_ms = self.now_ms();
        let messaging = self.messaging_mut()?;
        let definition = messaging
            .messenger
            .leave(room, now_ms, &mut OsEntropy)
            .map_err(room_error)?;
        self.publish_control_message(&ControlMessage::RoomDefinition(definition));
        self.settle_messaging();
        Ok(())
    }

    fn publish_grants(&mut self, grants: Vec<KeyGrant>) {
        for grant in grants {
            self.publish_control_message(&ControlMessage::Grant(grant));
        }
        self.settle_messaging();
    }

    /// Signs and publishes a control message, or queues it until a peer
    /// subscribes. Either way it is kept for sync: a group created while no
    /// one is reachable still reaches its members after a restart (the
    /// queue is in memory only).
    fn publish_control_message(&mut self, message: &ControlMessage) {
        let frame = self.sign_frame(wire::encode(message));
        if self.publish(frame.clone()).is_ok() {
            return;
        }
        self.hold_control(&frame);
        if let Some(messaging) = self.messaging.as_mut() {
            if messaging.control_outbox.len() >= CONTROL_OUTBOX {
                messaging.control_outbox.pop_front();
            }
            messaging.control_outbox.push_back(frame);
        }
    }

    /// `peer` subscribed to `topic`: send what waited for it. A peer that
    /// starts listening on the control topic is granted the keys it may have
    /// missed (grants published at its admission went out before it listened).
    /// A member that starts listening on a room's topic is hinted to
    /// reconcile the room with us: what was published before we knew it
    /// listens never reached it, and gossip does not repeat it.
    pub(super) fn on_subscribed(&mut self, peer: PeerId, topic: &TopicHash) {
        if self.carrier.is_some() && *topic != self.control.hash() {
            return self.carry_topic(topic);
        }
        let now = self.clock.now();
        let Some(messaging) = self.messaging.as_mut() else {
            return;
        };
        if *topic == self.control.hash() {
            self.publish_unpublished();
            let Some(messaging) = self.messaging.as_mut() else {
                return;
            };
            if let Some((device, _)) = self.gate.admitted(&peer) {
                let grants = messaging
                    .messenger
                    .grants_for(&device.device.public_key(), now);
                for grant in grants {
                    self.publish_control_message(&ControlMessage::Grant(grant));
                }
            }
            let Some(messaging) = self.messaging.as_mut() else {
                return;
            };
            let waiting: Vec<Vec<u8>> = messaging.control_outbox.drain(..).collect();
            let announce = !messaging.presence_sent;
            for frame in waiting {
                if self.publish(frame.clone()).is_err()
                    && let Some(m) = self.messaging.as_mut()
                {
                    m.control_outbox.push_back(frame);
                }
            }
            if announce {
                // The label says "I am here" too, and names the device.
                let presence = match &self.config.config.label {
                    Some(label) => ControlMessage::Label(label.clone()),
                    None => ControlMessage::Presence,
                };
                let frame = self.sign_frame(wire::encode(&presence));
                if self.publish(frame).is_ok()
                    && let Some(m) = self.messaging.as_mut()
                {
                    m.presence_sent = true;
                }
            }
            return;
        }
        let Some(room) = messaging.room_topics.get(topic).copied() else {
            return;
        };
        let waiting = messaging.log.outbox().unwrap_or_default();
        let now = std::time::Instant::now();
        for envelope in waiting.into_iter().filter(|e| e.body.header.room == room) {
            let id = envelope.id();
            let topic = topics::room(&self.agency.id(), &room.0);
            if self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic, wire::encode(&envelope))
                .is_ok()
                && let Some(m) = self.messaging.as_ref()
            {
                let _ = m.log.pop_outbox(&id);
                self.offer_until_held(room, id);
                tracing::info!(room = %room.short(), "queued message sent");
            }
        }
        let member = self.gate.admitted(&peer).is_some_and(|(device, _)| {
            self.gate.revocation_of(&device).is_none()
                && self
                    .messaging
                    .as_ref()
                    .and_then(|m| m.messenger.room(room))
                    .is_some_and(|r| r.admits(&device))
        });
        let scope = SyncScope::Room(room);
        if member && self.sync.index().items(scope).next().is_some() {
            self.hint(peer, scope, now);
        }
    }

    /// Offers a message this device wrote to its room's peers until a
    /// member or relay says it holds it (see [`super::sync_triggers`]). Only
    /// where receipts are exchanged: in a larger room nothing would say so,
    /// and every member's every message would be offered to all its peers.
    fn offer_until_held(&mut self, room: RoomId, message: [u8; 32]) {
        let receipts = self
            .messaging
            .as_ref()
            .is_some_and(|m| m.messenger.receipts_enabled(room));
        if receipts {
            self.triggers.sent(room, message, std::time::Instant::now());
        }
    }

    /// Handles the payload of a valid control frame; `Ok(false)` if it is not
    /// a room control message (a plain notice).
    pub(super) fn on_control_payload(
        &mut self,
        frame: &SignedFrame,
        author: &VerifiedDevice,
    ) -> Result<bool, (Refusal, String)> {
        let sent_ms = frame.body.sent_at.saturating_mul(1000);
        self.check_not_ahead(sent_ms, "control frame")
            .map_err(|reason| (self.ahead_refusal(sent_ms), reason))?;
        self.learn_device(author.clone(), &frame.body.author);
        let Ok(message) = wire::decode::<ControlMessage>(&frame.body.payload) else {
            return Ok(false);
        };
        let now_ms = self.now_ms();
        let Some(messaging) = self.messaging.as_mut() else {
            return Ok(true);
        };
        match message {
            ControlMessage::Presence => {}
            ControlMessage::Label(label) => {
                let label = crate::trust::device_label(&label)
                    .map_err(|e| (Refusal::Invalid, e.to_string()))?;
                let device = author.device.public_key();
                let at = frame.body.sent_at;
                if messaging
                    .labels
                    .get(&device)
                    .is_none_or(|(held, _)| *held < at)
                {
                    if let Err(e) = messaging.log.save_label(&device, at, &label) {
                        tracing::error!(error = %e, "cannot save a device label");
                    }
                    messaging.labels.insert(device, (at, label));
                }
            }
            // The frame's signature, checked, covers the grant: its issuer
            // must be the frame's author.
            ControlMessage::Grant(grant) if grant.issuer != author.device.public_key() => {
                return Err((
                    Refusal::Invalid,
                    "a key grant must be published by the device that issued it".into(),
                ));
            }
            // A definition is taken only from the frame of the device that
            // signed it: anyone else wrapping it is replaying (audit C2).
            ControlMessage::RoomDefinition(envelope)
                if envelope.body.header.sender != author.device.public_key() =>
            {
                return Err((
                    Refusal::Invalid,
                    "a group definition must be published by the device that signed it".into(),
                ));
            }
            ControlMessage::Grant(grant) if self.carrier.is_some() => {
                return self.carry_grant(&grant, author).map(|()| true);
            }
            ControlMessage::RoomDefinition(_) | ControlMessage::Stored(_)
                if self.carrier.is_some() =>
            {
                return Ok(true);
            }
            ControlMessage::Stored(_) => {
                return Err((
                    Refusal::Invalid,
                    "stored receipts belong on room topics".into(),
                ));
            }
            ControlMessage::Grant(grant) if messaging.messenger.no_room_for_orphan(&grant) => {
                return Err((
                    Refusal::Later,
                    "a grant for a room not known yet, past its issuer's share of them".into(),
                ));
            }
            ControlMessage::Grant(grant) => {
                let shown = messaging
                    .messenger
                    .receive_signed_grant(&grant, now_ms)
                    .map_err(|e| (Refusal::Invalid, e))?;
                self.take_in(shown);
            }
            ControlMessage::RoomDefinition(envelope) => {
                match messaging.messenger.receive(envelope.clone(), now_ms) {
                    Verdict::Deliver(message) => self.take_in(vec![*message]),
                    Verdict::Reject(reason) => return Err((Refusal::Invalid, reason)),
                    Verdict::Defer(reason) => return Err((Refusal::Local, reason)),
                    Verdict::Later => {
                        return Err((
                            Refusal::Later,
                            "a group definition whose key has not arrived, past the bounded buffers"
                                .into(),
                        ));
                    }
                    Verdict::Held | Verdict::Duplicate | Verdict::Unverified => {}
                }
            }
        }
        self.settle_messaging();
        Ok(true)
    }

    /// Handles an envelope (or a relay's stored receipt) published on a room topic.
    pub(super) fn on_room_gossip(
        &mut self,
        source: PeerId,
        id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let known = self
            .messaging
            .as_ref()
            .and_then(|m| m.room_topics.get(&message.topic).copied());
        // A relay carries topics it cannot name: the envelope says its room,
        // and that room's topic must be the one it came on.
        let carried = self.carried.contains(&message.topic);
        let room = known.or_else(|| {
            let room = room_of(&message.data)?;
            (carried && topics::room(&self.agency.id(), &room.0).hash() == message.topic)
                .then_some(room)
        });
        if room.is_none() && carried {
            // Another relay's "stored" receipt on a topic this relay carries:
            // passed on towards the sender once its signature checks out.
            return match self.check_relay_frame(&message) {
                Ok(()) => self.report(&id, &source, MessageAcceptance::Accept),
                Err(reason) => self.reject(&id, source, reason),
            };
        }
        let Some(room) = room else {
            return self.reject(&id, source, "message on a topic we do not serve".into());
        };
        let now_ms = rate_clock_ms();
        let sender = envelope_sender(&message.data);
        let len = message.data.len();
        if sender.is_some_and(|sender| !self.quotas.within_rate(&sender, len, now_ms)) {
            // Over its sender's rate: not passed on, not penalised (sync
            // brings it later, within the sender's quota).
            return self.report(&id, &source, MessageAcceptance::Ignore);
        }
        let intake = self.take_envelope(room, &message.data);
        if let (Some(sender), Intake::New | Intake::Held) = (sender, &intake) {
            let _ = self.quotas.charge(&sender, len, now_ms);
        }
        match intake {
            Intake::New | Intake::Held => self.report(&id, &source, MessageAcceptance::Accept),
            Intake::Duplicate | Intake::Unverified => {
                self.report(&id, &source, MessageAcceptance::Ignore)
            }
            Intake::Rejected(reason) => self.reject(&id, source, reason),
            Intake::Deferred(reason) => self.defer(&id, source, reason),
        }
    }

    /// Validates and takes in an envelope of `room` (from gossip or sync):
    /// members check and decrypt it; relays check the sender's signature and
    /// store the ciphertext.
    pub(super) fn take_envelope(&mut self, room: RoomId, bytes: &[u8]) -> Intake {
        let envelope = match wire::decode::<Envelope>(bytes) {
            Ok(envelope) if envelope.body.header.room == room => envelope,
            Ok(_) => return Intake::Rejected("envelope published on another room's topic".into()),
            Err(e) => {
                return match wire::decode::<SignedFrame>(bytes) {
                    Ok(frame) => self.take_stored_receipt(room, &frame),
                    Err(_) => Intake::Rejected(format!("malformed envelope: {e}")),
                };
            }
        };
        let sent_ms = envelope.body.header.timestamp.wall_ms;
        if let Err(reason) = self.check_not_ahead(sent_ms, "envelope") {
            return Intake::refused(self.ahead_refusal(sent_ms), reason);
        }
        if self.carrier.is_some() {
            return self.carry(envelope, bytes.len());
        }
        let now_ms = self.now_ms();
        let Some(messaging) = self.messaging.as_mut() else {
            return Intake::Rejected("messaging is off on this node".into());
        };
        let envelope_id = envelope.id();
        let intake = match messaging.messenger.receive(envelope, now_ms) {
            Verdict::Deliver(message) => {
                self.take_in(vec![*message]);
                Intake::New
            }
            Verdict::Held => {
                self.emit(NodeEvent::Unreadable {
                    room: room.to_string(),
                    id: hex::encode(envelope_id),
                });
                Intake::Held
            }
            Verdict::Duplicate => Intake::Duplicate,
            // Not taken, not passed on, nothing recorded: asked for again.
            Verdict::Unverified | Verdict::Later => Intake::Unverified,
            Verdict::Reject(reason) => Intake::Rejected(reason),
            Verdict::Defer(reason) => Intake::Deferred(reason),
        };
        self.settle_messaging();
        intake
    }

    /// A peer subscribed to a room topic: a relay follows only the topics of
    /// rooms it carries (verified by certificates and grants, bounded), so
    /// subscribing to random topics costs it nothing (audit M1).
    fn carry_topic(&mut self, topic: &TopicHash) {
        if !self.carried.contains(topic) {
            tracing::debug!(%topic, "a peer subscribed to a topic of no room this relay carries");
        }
    }

    /// A relay follows `room`'s topic (it learns the room from envelopes,
    /// and checks the topic matches).
    pub(super) fn carry_room(&mut self, room: RoomId) {
        // Bounded: only rooms the carrier knows come here, and it bounds them.
        let topic = topics::room(&self.agency.id(), &room.0);
        if !self.carried.insert(topic.hash()) {
            return;
        }
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        if let Err(e) = gossipsub.subscribe(&topic) {
            tracing::error!(error = %e, "cannot follow a room topic");
        }
        let _ = gossipsub.set_topic_params(topic, topics::score_params());
    }

    /// On a relay: the department rooms of a certified device are carried.
    fn carry_rooms_of(&mut self, device: &VerifiedDevice) {
        let agency = self.agency.id();
        let Some(carrier) = self.carrier.as_mut() else {
            return;
        };
        for room in carrier.learn_device(&agency, device) {
            self.carry_room(room);
        }
    }

    /// A relay notes who may fetch a room from a grant (it cannot read
    /// it): only what it can verify (see [`crate::rooms::Carrier`]).
    fn carry_grant(
        &mut self,
        grant: &KeyGrant,
        issuer: &VerifiedDevice,
    ) -> Result<(), (Refusal, String)> {
        let agency = self.agency.id();
        let (Some(carrier), Some(messaging)) = (self.carrier.as_mut(), self.messaging.as_ref())
        else {
            return Ok(());
        };
        let messenger = &messaging.messenger;
        let new = match carrier
            .learn_grant(&agency, grant, issuer, |key| messenger.device(key).cloned())
        {
            Ok(new) => new,
            // Valid, but past what this relay keeps: not the forwarder's fault.
            Err(e @ (CarrierError::Full | CarrierError::TooManyGroups { .. })) => {
                tracing::debug!(error = %e, "a grant's room is not carried");
                false
            }
            // Not placed yet (a group grant whose lineage has not arrived,
            // or a non-member's): neither kept nor passed on; sync brings a
            // genuine one again (audit H5).
            Err(e @ CarrierError::Unproven { .. }) => return Err((Refusal::Later, e.to_string())),
            Err(e) => return Err((Refusal::Invalid, e.to_string())),
        };
        if new {
            self.carry_room(grant.body.room);
        }
        Ok(())
    }

    /// Refuses what claims a time (ms) past now plus the allowed clock skew:
    /// it would sort after everything real and outlive it (audit M13).
    /// Why an item dated `claimed_ms`, ahead of this device's clock, is
    /// refused: within [`AHEAD_LOCAL_SECS`] our clock may be the slow one
    /// (audit M4: not held against whoever passed it on); further ahead
    /// no honest clock is that far off, so it is invalid for everyone.
    fn ahead_refusal(&self, claimed_ms: u64) -> Refusal {
        let limit = self
            .now_ms()
            .saturating_add(AHEAD_LOCAL_SECS.saturating_mul(1000));
        if claimed_ms > limit {
            Refusal::Invalid
        } else {
            Refusal::Local
        }
    }

    fn check_not_ahead(&self, claimed_ms: u64, what: &str) -> Result<(), String> {
        let skew_ms = self.policy.clock_skew_secs.saturating_mul(1000);
        let limit = self.now_ms().saturating_add(skew_ms);
        if claimed_ms > limit {
            return Err(format!(
                "{what} dated {} s ahead of this device's clock (at most {} s allowed)",
                (claimed_ms - limit).saturating_add(skew_ms) / 1000,
                skew_ms / 1000
            ));
        }
        Ok(())
    }

    /// A control frame from gossip: taken like any other, within its
    /// author's rate. Past it the frame is ignored, not penalised (an honest
    /// forwarder may be passing it on); sync brings it later, within the
    /// author's quota of stored frames.
    pub(super) fn take_control_gossip(&mut self, data: &[u8]) -> Intake {
        let now_ms = rate_clock_ms();
        let author = crate::store::frame_author(data);
        if author.is_some_and(|author| !self.quotas.within_rate(&author, data.len(), now_ms)) {
            return Intake::Duplicate;
        }
        let intake = self.take_control(data);
        if let (Some(author), Intake::New | Intake::Held) = (author, &intake) {
            let _ = self.quotas.charge(&author, data.len(), now_ms);
        }
        intake
    }

    /// A relay stores a valid envelope it cannot read, and will tell the
    /// sender so.
    fn carry(&mut self, envelope: Envelope, len: usize) -> Intake {
        let item = envelope_sync_item(&envelope);
        let scope = SyncScope::Room(envelope.body.header.room);
        if self.sync.index().timestamp_of(scope, &item.1).is_some() {
            return Intake::Duplicate;
        }
        let Some(messaging) = self.messaging.as_mut() else {
            return Intake::Rejected("messaging is off on this node".into());
        };
        if let Err(reason) = messaging.messenger.check_carried(&envelope) {
            return Intake::Rejected(reason);
        }
        if let Err(e) = messaging.log.save_envelope(&envelope) {
            tracing::error!(error = %e, "cannot store a carried envelope");
            return Intake::Duplicate;
        }
        let room = envelope.body.header.room;
        let sender = envelope.body.header.sender;
        // Stored notices go to the whole room, like receipts: only in rooms
        // small enough for receipts (in a 500-member room, every relay's
        // notice for every message reached, and was checked by, everyone).
        let small = self
            .carrier
            .as_ref()
            .is_some_and(|carrier| carrier.holders(room) <= RECEIPT_ROOM_LIMIT);
        if small {
            let pending = messaging.stored.entry(room).or_default();
            if pending.len() < MAX_RECEIPT_IDS {
                pending.push(item.1);
            }
        }
        self.hold_by(scope, item, len, sender);
        Intake::New
    }

    /// A signed frame from a relay on a room topic this relay carries but
    /// cannot name (a stored receipt for someone else).
    fn check_relay_frame(&mut self, message: &gossipsub::Message) -> Result<(), String> {
        let frame = wire::decode::<SignedFrame>(&message.data).map_err(|e| {
            format!("message on a carried topic is neither envelope nor frame: {e}")
        })?;
        let author = frame
            .verify_cached(
                message.topic.as_str(),
                &self.agency,
                self.clock.now(),
                &self.policy,
                &mut self.chains,
            )
            .map_err(|e| e.to_string())?;
        if author.role != crate::trust::Role::Relay {
            return Err("only relays publish stored receipts".into());
        }
        Ok(())
    }

    /// A relay's signed "stored" notice on a room topic: recorded as a
    /// receipt for this device's own messages.
    fn take_stored_receipt(&mut self, room: RoomId, frame: &SignedFrame) -> Intake {
        let topic = topics::room(&self.agency.id(), &room.0);
        let author = match frame.verify_cached(
            &topic.hash().to_string(),
            &self.agency,
            self.clock.now(),
            &self.policy,
            &mut self.chains,
        ) {
            Ok(author) => author,
            Err(e) => return Intake::Rejected(e.to_string()),
        };
        if author.role != crate::trust::Role::Relay {
            return Intake::Rejected("only relays publish stored receipts".into());
        }
        let ids = match wire::decode::<ControlMessage>(&frame.body.payload) {
            Ok(ControlMessage::Stored(ids)) if !ids.is_empty() && ids.len() <= MAX_RECEIPT_IDS => {
                ids
            }
            _ => return Intake::Rejected("malformed stored receipt".into()),
        };
        if let Some(messaging) = self.messaging.as_ref() {
            let relay = author.device.public_key();
            for id in &ids {
                if let Err(e) =
                    messaging
                        .log
                        .record_receipt(id, &relay, ReceiptState::StoredByRelay)
                {
                    tracing::error!(error = %e, "cannot save a receipt");
                }
            }
        }
        Intake::New
    }

    /// Tells peers what this node now holds (delivered receipts; on relays,
    /// stored notices), once it is on disk: a sender that hears "delivered"
    /// or "stored" can rely on it.
    pub(super) fn acknowledge_to_peers(&mut self) {
        self.save_unread();
        let pending = self
            .messaging
            .as_ref()
            .is_some_and(|m| m.delivered_count > 0 || !m.stored.is_empty());
        if !pending {
            return;
        }
        if let Err(e) = self.commit.flush_now() {
            tracing::error!(error = %e, "receipts held back: what they confirm is not on disk");
            return;
        }
        self.flush_batches();
        self.flush_stored();
    }

    /// A relay tells senders which of their envelopes it stored (batched).
    fn flush_stored(&mut self) {
        let Some(messaging) = self.messaging.as_mut() else {
            return;
        };
        let pending = std::mem::take(&mut messaging.stored);
        for (room, ids) in pending {
            let topic = topics::room(&self.agency.id(), &room.0);
            let frame = SignedFrame::sign(
                &self.key,
                FrameBody {
                    author: self.chain.clone(),
                    topic: topic.hash().to_string(),
                    sent_at: self.clock.now(),
                    nonce: OsEntropy.array(),
                    payload: wire::encode(&ControlMessage::Stored(ids)),
                },
            );
            let _ = self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic, wire::encode(&frame));
        }
    }

    /// Takes in readable messages (and any the messenger unlocked on the
    /// way): stores texts, records receipts for this device's messages,
    /// queues delivered receipts, and shows them.
    fn take_in(&mut self, mut messages: Vec<Message>) {
        let Some(messaging) = self.messaging.as_mut() else {
            return;
        };
        messages.extend(messaging.messenger.take_late_deliveries());
        // A message a new key unlocked is shown only once that key is saved.
        save_new_keys(messaging);
        let me = messaging.messenger.user().to_string();
        let mut texts = Vec::new();
        let mut receipts = Vec::new();
        for message in &messages {
            match &message.content {
                Content::Text(_) | Content::File { .. } => {
                    match messaging.log.save_envelope(&message.envelope) {
                        Ok(_) => texts.push(&message.envelope),
                        Err(e) => tracing::error!(error = %e, "cannot save a message"),
                    }
                    if message.sender_user == me {
                        continue;
                    }
                    let unread = messaging.unread.entry(message.room).or_default();
                    if unread.len() < MAX_UNREAD {
                        unread.push(message.id);
                        messaging.unread_changed.insert(message.room);
                    }
                    if messaging.messenger.receipts_enabled(message.room)
                        && messaging.delivered_count < PENDING_RECEIPTS
                    {
                        messaging
                            .delivered
                            .entry(message.room)
                            .or_default()
                            .push(message.id);
                        messaging.delivered_count += 1;
                    }
                }
                Content::Receipt { state, messages } => {
                    let _ = messaging.log.mark_seen(&message.id);
                    receipts.push(message.envelope.clone());
                    let device = message.envelope.body.header.sender;
                    for id in messages {
                        if let Err(e) = messaging.log.record_receipt(id, &device, *state) {
                            tracing::error!(error = %e, "cannot save a receipt");
                        }
                    }
                }
                Content::RoomState(_) => {}
            }
        }
        self.fetch_attachments_due(&messages);
        // Within each author's quota (audit H6): past it, that author's
        // own first-received go.
        for envelope in texts {
            let item = envelope_sync_item(envelope);
            let len = wire::encode(envelope).len();
            let (room, sender) = (envelope.body.header.room, envelope.body.header.sender);
            self.hold_by(SyncScope::Room(room), item, len, sender);
        }
        for envelope in receipts {
            self.hold_extra(&envelope);
        }
        self.show(messages);
    }

    /// Emits readable messages (and notices of joined rooms).
    fn show(&mut self, messages: Vec<Message>) {
        let me = self.key.device_id();
        for message in messages {
            let Some(messaging) = self.messaging.as_ref() else {
                return;
            };
            let name = messaging
                .messenger
                .room(message.room)
                .map(|r| r.name.clone())
                .unwrap_or_default();
            match &message.content {
                Content::RoomState(room) => {
                    let m = &messaging.messenger;
                    let info = room_info(
                        room,
                        m.can_send(room.id),
                        0,
                        m.receipts_enabled(room.id),
                        messaging.hidden.contains(&room.id),
                    );
                    self.emit(NodeEvent::RoomJoined(info));
                }
                _ => {
                    if let Some(view) = view(&message, &name, me) {
                        self.emit(NodeEvent::Message(view));
                    }
                }
            }
        }
    }

    /// Saves the unread lists that changed since the last call (batched so
    /// that a busy room costs one write per flush, not one per message).
    pub(super) fn save_unread(&mut self) {
        let Some(messaging) = self.messaging.as_mut() else {
            return;
        };
        for room in std::mem::take(&mut messaging.unread_changed) {
            let ids = messaging.unread.get(&room).map_or(&[][..], Vec::as_slice);
            if let Err(e) = messaging.log.save_unread(room, ids) {
                tracing::error!(error = %e, "cannot save what is unread");
            }
        }
    }

    /// Sends the delivered receipts gathered since the last flush, one
    /// envelope per room (per [`MAX_RECEIPT_IDS`] messages).
    fn flush_batches(&mut self) {
        let now_ms = self.now_ms();
        let Some(messaging) = self.messaging.as_mut() else {
            return;
        };
        if messaging.delivered_count == 0 {
            return;
        }
        messaging.delivered_count = 0;
        let pending = std::mem::take(&mut messaging.delivered);
        let mut outgoing = Vec::new();
        for (room, ids) in pending {
            for chunk in ids.chunks(MAX_RECEIPT_IDS) {
                match messaging.messenger.receipt(
                    room,
                    ReceiptState::Delivered,
                    chunk.to_vec(),
                    now_ms,
                    &mut OsEntropy,
                ) {
                    Ok(envelope) => outgoing.push(envelope),
                    Err(e) => tracing::debug!(error = %e, "cannot send a receipt"),
                }
            }
        }
        for envelope in outgoing {
            if let Err(e) = self.publish_envelope(&envelope) {
                tracing::error!(error = %e, "cannot queue a receipt");
            }
        }
    }

    /// Marks every unread message of `room` read here and tells their senders
    /// (where the room exchanges receipts); returns how many there were.
    pub(super) fn mark_read(&mut self, room: &str) -> Result<usize, NodeError> {
        let room = self.find_room(room)?;
        let now_ms = self.now_ms();
        let messaging = self.messaging_mut()?;
        let unread = messaging.unread.remove(&room).unwrap_or_default();
        messaging.log.save_unread(room, &[]).map_err(room_error)?;
        let mut outgoing = Vec::new();
        if messaging.messenger.receipts_enabled(room) {
            for chunk in unread.chunks(MAX_RECEIPT_IDS) {
                outgoing.push(
                    messaging
                        .messenger
                        .receipt(
                            room,
                            ReceiptState::Read,
                            chunk.to_vec(),
                            now_ms,
                            &mut OsEntropy,
                        )
                        .map_err(room_error)?,
                );
            }
        }
        for envelope in outgoing {
            self.publish_envelope(&envelope).map_err(room_error)?;
        }
        Ok(unread.len())
    }

    /// Publishes an envelope on its room's topic, or keeps it in the outbox
    /// until a member subscribes; `Ok(true)` if it was queued.
    fn publish_envelope(&mut self, envelope: &Envelope) -> Result<bool, crate::store::StoreError> {
        let topic = topics::room(&self.agency.id(), &envelope.body.header.room.0);
        let queued = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, wire::encode(envelope))
            .is_err();
        if let Some(m) = self.messaging.as_ref() {
            m.log.mark_seen(&envelope.id())?;
            if queued {
                m.log.push_outbox(envelope)?;
            }
        }
        // Texts were saved by the caller; receipts are held here.
        self.hold_extra(envelope);
        Ok(queued)
    }

    /// Like [`Actor::find_room`], but `@USER` opens the 1:1 room with USER
    /// if it is new (sending to someone, or opening a chat with them).
    pub(super) fn open_room(&mut self, room: &str) -> Result<RoomId, NodeError> {
        if let Some(typed) = room.strip_prefix('@') {
            // Never a room with somebody who does not exist (a typo).
            let user = self.resolve_user(typed)?;
            let id = self
                .messaging_mut()?
                .messenger
                .open_direct(&user)
                .map_err(room_error)?;
            self.settle_messaging();
            return Ok(id);
        }
        self.find_room(room)
    }

    /// A room by name, id prefix, a department's last segment, a name
    /// prefix, or `@USER` for an existing 1:1 room (see `rooms::lookup`;
    /// USER: a user id, or a display name only one official has).
    pub(super) fn find_room(&self, room: &str) -> Result<RoomId, NodeError> {
        let Some(m) = self.messaging.as_ref() else {
            return Err(NodeError::Room(format!(
                "no room named or with id '{room}' (see `baro room list`)"
            )));
        };
        let Some(typed) = room.strip_prefix('@') else {
            return m.messenger.find_room(room).map_err(room_error);
        };
        match self.resolve_user(typed) {
            Ok(user) => m
                .messenger
                .find_room(&format!("@{user}"))
                .map_err(room_error),
            // A 1:1 room with someone no longer known here still opens.
            Err(unknown) => m.messenger.find_room(room).map_err(|_| unknown),
        }
    }

    /// Whether a member device of `room` or a relay is admitted now.
    fn can_reach(&self, room: RoomId) -> bool {
        let listening = self.room_peers(room);
        !listening.is_empty() || !self.members_not_listening(room, &listening).is_empty()
    }

    /// How many users are in `room`: a group's or 1:1 room's members, or
    /// for a department the users known here whose unit is in it.
    fn member_count(&self, room: RoomId) -> usize {
        let Some(messaging) = self.messaging.as_ref() else {
            return 0;
        };
        let Some(definition) = messaging.messenger.room(room) else {
            return 0;
        };
        match &definition.kind {
            RoomKind::Group { members, .. } => members.len(),
            RoomKind::Direct { users } => users.len(),
            RoomKind::Department { .. } => messaging
                .messenger
                .devices()
                .filter(|d| definition.admits(d))
                .map(|d| d.subject.user_id.as_str())
                .collect::<BTreeSet<_>>()
                .len(),
        }
    }

    /// The room `id` as listed to the user.
    fn info_of(&self, id: RoomId) -> Result<RoomInfo, NodeError> {
        self.rooms()
            .into_iter()
            .find(|info| info.id == id.to_string())
            .ok_or_else(|| NodeError::Room(format!("no room {}", id.short())))
    }

    fn messaging_mut(&mut self) -> Result<&mut Messaging, NodeError> {
        self.messaging.as_mut().ok_or_else(|| {
            NodeError::Room("this device's certificate is not valid: messaging is off".into())
        })
    }

    /// The room a user named (by name, id, id prefix or `@USER`).
    pub(super) fn room_info(&mut self, room: &str) -> Result<RoomInfo, NodeError> {
        let id = self.open_room(room)?;
        self.info_of(id)
    }

    pub(super) fn rooms(&self) -> Vec<RoomInfo> {
        let Some(messaging) = self.messaging.as_ref() else {
            return Vec::new();
        };
        let mut rooms: Vec<RoomInfo> = messaging
            .messenger
            .rooms()
            .map(|room| {
                // No key yet at all: the first message creates one.
                let m = &messaging.messenger;
                let unread = messaging.unread.get(&room.id).map_or(0, Vec::len);
                room_info(
                    room,
                    m.can_send(room.id) || m.current_epoch(room.id).is_none(),
                    unread,
                    m.receipts_enabled(room.id),
                    messaging.hidden.contains(&room.id),
                )
            })
            .collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        rooms
    }

    pub(super) fn create_group(
        &mut self,
        name: &str,
        members: Vec<String>,
    ) -> Result<RoomInfo, NodeError> {
        // Members are officials this device knows, by user id or a display
        // name only one of them has: a typo adds nobody.
        let mut users = Vec::with_capacity(members.len());
        for member in &members {
            let user = self
                .resolve_user(member)
                .map_err(|e| NodeError::Room(format!("group not created: {e}")))?;
            if !users.contains(&user) {
                users.push(user);
            }
        }
        let now = self.clock.now();
        let now_ms = self.now_ms();
        let messaging = self.messaging_mut()?;
        messaging
            .messenger
            .check_new_group_name(name)
            .map_err(room_error)?;
        let (room, grants) = messaging
            .messenger
            .create_group(name, users, now, &mut OsEntropy);
        let definition = messaging
            .messenger
            .announce_room(room, now_ms, &mut OsEntropy)
            .map_err(room_error)?;
        let info = room_info(
            messaging
                .messenger
                .room(room)
                .ok_or_else(|| NodeError::Room("room vanished".into()))?,
            true,
            0,
            messaging.messenger.receipts_enabled(room),
            false,
        );
        self.publish_grants(grants);
        self.publish_control_message(&ControlMessage::RoomDefinition(definition));
        Ok(info)
    }

    /// Invites an official this device knows (by user id, or a display
    /// name only one of them has); the group as it is now.
    pub(super) fn invite(&mut self, room: &str, user: &str) -> Result<RoomInfo, NodeError> {
        let user = self.resolve_user(user)?;
        self.change_group(room, |messenger, room, now| {
            messenger.invite(room, &user, now)
        })?;
        let id = self.find_room(room)?;
        self.info_of(id)
    }

    /// Makes `user` an admin of a group too (this device's user must be one).
    pub(super) fn make_admin(&mut self, room: &str, user: &str) -> Result<RoomInfo, NodeError> {
        let user = self.resolve_user(user).unwrap_or_else(|_| user.to_string());
        self.change_group(room, |messenger, room, _| {
            messenger.make_admin(room, &user).map(|()| Vec::new())
        })?;
        let id = self.find_room(room)?;
        self.info_of(id)
    }

    /// Hides a room from the room list, or shows it again (this device
    /// only: nothing is announced, messages still arrive).
    pub(super) fn set_hidden(&mut self, room: &str, hidden: bool) -> Result<RoomInfo, NodeError> {
        let id = self.find_room(room)?;
        let messaging = self.messaging_mut()?;
        messaging.log.set_hidden(id, hidden).map_err(room_error)?;
        if hidden {
            messaging.hidden.insert(id);
        } else {
            messaging.hidden.remove(&id);
        }
        self.info_of(id)
    }

    /// Removes a member: by the user id the group holds, or by a name
    /// [`Actor::resolve_user`] knows.
    pub(super) fn remove(&mut self, room: &str, user: &str) -> Result<(), NodeError> {
        let member = self
            .find_room(room)
            .ok()
            .and_then(|id| self.messaging.as_ref()?.messenger.room(id).cloned())
            .is_some_and(
                |r| matches!(&r.kind, RoomKind::Group { members, .. } if members.contains(user)),
            );
        let user = match member {
            true => user.to_string(),
            false => self.resolve_user(user).unwrap_or_else(|_| user.to_string()),
        };
        self.change_group(room, |messenger, room, now| {
            messenger.remove_member(room, &user, now, &mut OsEntropy)
        })
    }

    /// Applies an admin's change to a group, then publishes the resulting
    /// grants and the new definition.
    fn change_group(
        &mut self,
        room: &str,
        change: impl FnOnce(&mut Messenger, RoomId, u64) -> Result<Vec<KeyGrant>, MessengerError>,
    ) -> Result<(), NodeError> {
        let room = self.find_room(room)?;
        let (now, now_ms) = (self.clock.now(), self.now_ms());
        let messenger = &mut self.messaging_mut()?.messenger;
        let grants = change(messenger, room, now).map_err(room_error)?;
        let definition = messenger
            .announce_room(room, now_ms, &mut OsEntropy)
            .map_err(room_error)?;
        self.publish_grants(grants);
        self.publish_control_message(&ControlMessage::RoomDefinition(definition));
        Ok(())
    }

    pub(super) fn send_text(&mut self, room: &str, text: String) -> Result<Sent, NodeError> {
        let room = self.open_room(room)?;
        self.send_content(room, Content::Text(text))
    }

    /// Seals, stores, publishes and offers `content` in `room`.
    pub(super) fn send_content(
        &mut self,
        room: RoomId,
        content: Content,
    ) -> Result<Sent, NodeError> {
        let (now, now_ms) = (self.clock.now(), self.now_ms());
        let messaging = self.messaging_mut()?;
        let grants = messaging
            .messenger
            .ensure_key(room, now, &mut OsEntropy)
            .map_err(room_error)?;
        let envelope = messaging
            .messenger
            .send(room, &content, now_ms, &mut OsEntropy)
            .map_err(room_error)?;
        // The room's key (new with a room's first message) goes to disk
        // before the message that needs it, and out before it.
        self.publish_grants(grants);
        let messaging = self.messaging_mut()?;
        let id = messaging.log.save_envelope(&envelope).map_err(room_error)?;
        messaging.log.mark_mine(&id).map_err(room_error)?;
        let len = wire::encode(&envelope).len();
        self.hold(SyncScope::Room(room), envelope_sync_item(&envelope), len);
        let unpublished = self.publish_envelope(&envelope).map_err(room_error)?;
        // Gossip reaches whoever listens now; the rest are offered it.
        self.offer_until_held(room, id);
        // "Queued" only when nobody who could take it is connected: a
        // member that does not listen on a new room's topic yet (a first
        // 1:1 message) is offered it at once (finding 2). It stays in the
        // outbox until someone holds it either way.
        let queued = unpublished && !self.can_reach(room);
        let info = self.info_of(room)?;
        Ok(Sent {
            id: hex::encode(id),
            queued,
            members: self.member_count(room),
            room: info.id,
            room_name: info.name,
            room_kind: info.kind,
        })
    }

    pub(super) fn history(
        &mut self,
        room: &str,
        limit: usize,
    ) -> Result<Vec<MessageView>, NodeError> {
        let room = self.find_room(room)?;
        let me = self.key.device_id();
        let messaging = self.messaging.as_ref().ok_or(NodeError::Stopped)?;
        let name = messaging
            .messenger
            .room(room)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let envelopes = messaging
            .log
            .history(room, limit.min(MAX_HISTORY))
            .map_err(room_error)?;
        let mut views = Vec::with_capacity(envelopes.len());
        for message in envelopes.iter().filter_map(|e| messaging.messenger.read(e)) {
            let Some(mut shown) = view(&message, &name, me) else {
                continue;
            };
            if shown.from_me {
                shown.receipts = self.receipt_views(messaging, &message.id)?;
                shown.queued = messaging.log.is_queued(&message.id).map_err(room_error)?;
                shown.progress = Some(Progress::of(shown.queued, &shown.receipts));
            }
            views.push(shown);
        }
        Ok(views)
    }

    fn receipt_views(
        &self,
        messaging: &Messaging,
        id: &[u8; 32],
    ) -> Result<Vec<ReceiptView>, NodeError> {
        Ok(messaging
            .log
            .receipts(id)
            .map_err(room_error)?
            .into_iter()
            .filter_map(|(key, state)| {
                let device = messaging.messenger.device(&key)?;
                Some(ReceiptView {
                    device: device.device,
                    user: device.subject.user_id.clone(),
                    name: device.subject.display_name.clone(),
                    state,
                })
            })
            .collect())
    }
}

pub(super) fn room_error(e: impl std::fmt::Display) -> NodeError {
    NodeError::Room(e.to_string())
}

/// Milliseconds since this process first asked: the time rates refill by.
/// Monotonic (a wall clock set back or forward neither empties nor refills
/// a bucket), and it runs in tests and simulations whose agency clock
/// stands still (tokio's clock: paused tests control it).
pub(super) fn rate_clock_ms() -> u64 {
    static ORIGIN: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let elapsed = ORIGIN.get_or_init(tokio::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// The device that signed an envelope, if the bytes are an envelope.
fn envelope_sender(bytes: &[u8]) -> Option<crate::identity::PublicKey> {
    wire::decode::<Envelope>(bytes)
        .ok()
        .map(|e| e.body.header.sender)
}

/// The room an envelope's header names, if the bytes are an envelope.
fn room_of(bytes: &[u8]) -> Option<RoomId> {
    wire::decode::<Envelope>(bytes)
        .ok()
        .map(|e| e.body.header.room)
}

/// Saves the room keys the messenger learned since last asked.
fn save_new_keys(messaging: &mut Messaging) {
    for (room, epoch, key) in messaging.messenger.take_new_keys() {
        if let Err(e) = messaging.log.save_key(room, epoch, &key) {
            tracing::error!(error = %e, "cannot save a room key");
        }
    }
}
