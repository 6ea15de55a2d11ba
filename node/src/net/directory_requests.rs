//! The actor's people glue: the officials this device knows (the
//! certificates it holds), names typed for them (`@이준호`) resolved to user
//! ids, and the agency directory: asks a connected relay (or its own
//! directory, on a relay) and answers admitted peers' queries, moving the
//! [`DirectoryService`](super::super::directory_service::DirectoryService)'s
//! decisions onto the directory protocol.

use libp2p::request_response::{self, OutboundRequestId};
use tokio::sync::oneshot;

use super::Actor;
use crate::api::{People, PersonView};
use crate::net::directory_service::verified;
use crate::node::NodeError;
use crate::trust::{DirectoryAnswer, DirectoryQuery, Person, Role};

/// Most people in one answer drawn from what this device knows (a control
/// API answer is one line of at most 1 MiB).
const MAX_LOCAL_PEOPLE: usize = 1000;

/// A question waiting for a relay: who asked, and what this device knew.
pub(crate) type Asked = (oneshot::Sender<Result<People, NodeError>>, People);

/// `person` as shown, with the labels its devices announced here.
fn view(
    person: &Person,
    label: impl Fn(&crate::identity::DeviceId) -> Option<String>,
) -> PersonView {
    PersonView {
        user: person.user_id.clone(),
        name: person.display_name.clone(),
        org_unit: person.org_unit.to_string(),
        devices: person.devices.iter().map(|d| d.device).collect(),
        labels: person
            .devices
            .iter()
            .filter_map(|d| label(&d.device))
            .collect(),
    }
}

/// `local` and what a relay answered, one entry per user (user id order).
fn merge(mut local: People, relay: People) -> People {
    for person in relay.people {
        match local.people.iter_mut().find(|p| p.user == person.user) {
            Some(known) => {
                for device in person.devices {
                    if !known.devices.contains(&device) {
                        known.devices.push(device);
                    }
                }
                for label in person.labels {
                    if !known.labels.contains(&label) {
                        known.labels.push(label);
                    }
                }
            }
            None => local.people.push(person),
        }
    }
    local.people.sort_by(|a, b| a.user.cmp(&b.user));
    local.more |= relay.more;
    local.from = relay.from;
    local.local_only = false;
    local
}

impl Actor {
    /// The officials this device knows: the certified devices it holds,
    /// not revoked and not expired, by user.
    pub(super) fn known_people(&self) -> Vec<Person> {
        let now = self.clock.now();
        let Some(messaging) = self.messaging.as_ref() else {
            return Vec::new();
        };
        let gate = &self.gate;
        crate::trust::people(messaging.messenger.devices().filter(|d| {
            d.not_before <= now.saturating_add(self.policy.clock_skew_secs)
                && now <= d.not_after
                && gate.revocation_of(d).is_none()
        }))
    }

    /// Records that this node met `device` now (kept for `device list`).
    pub(super) fn note_device_met(&mut self, device: crate::identity::DeviceId) {
        let now = self.clock.now();
        let Some(messaging) = self.messaging.as_mut() else {
            return;
        };
        let key = device.public_key();
        // Only devices whose certificate verified here: bounded by the agency.
        if messaging.messenger.device(&key).is_none() {
            return;
        }
        if let Err(e) = messaging.log.save_last_seen(&key, now) {
            tracing::error!(error = %e, "cannot save when a device was last seen");
        }
        messaging.last_seen.insert(key, now);
    }

    /// The label `device` announced, if any.
    pub(super) fn label_of(&self, device: &crate::identity::DeviceId) -> Option<String> {
        self.messaging
            .as_ref()?
            .labels
            .get(&device.public_key())
            .map(|(_, label)| label.clone())
    }

    /// This user's devices as this node knows them, this one first, then
    /// by label and id; revoked ones included, marked.
    pub(super) fn own_devices(&self) -> Vec<crate::api::DeviceView> {
        let Some(messaging) = self.messaging.as_ref() else {
            return Vec::new();
        };
        let me = self.key.device_id();
        let user = messaging.messenger.user();
        let mut devices: Vec<crate::api::DeviceView> = messaging
            .messenger
            .devices()
            .filter(|d| d.subject.user_id == user && d.role != Role::Relay)
            .map(|d| {
                let key = d.device.public_key();
                crate::api::DeviceView {
                    device: d.device,
                    label: self.label_of(&d.device),
                    name: d.subject.display_name.clone(),
                    this_device: d.device == me,
                    connected: self
                        .connections
                        .peers()
                        .values()
                        .any(|p| p.device == d.device),
                    last_seen: messaging.last_seen.get(&key).copied(),
                    not_after: d.not_after,
                    revoked: self.gate.revocation_of(d).map(|r| r.issued_by.clone()),
                    revoked_at: self.gate.revocation_of(d).map(|r| r.issued_at),
                }
            })
            .collect();
        devices.sort_by(|a, b| {
            b.this_device
                .cmp(&a.this_device)
                .then_with(|| a.label.cmp(&b.label))
                .then_with(|| a.device.cmp(&b.device))
        });
        devices
    }

    /// The user id a typed name stands for: a user id this device knows,
    /// or a display name only one of them has; else a one-line refusal
    /// with suggestions.
    pub(super) fn resolve_user(&self, typed: &str) -> Result<String, NodeError> {
        crate::trust::lookup(&self.known_people(), typed)
            .into_user(typed)
            .map_err(|e| NodeError::Room(e.to_string()))
    }

    /// What this device itself knows in answer to `query` (`None`: everyone).
    fn local_people(&self, query: Option<&DirectoryQuery>) -> People {
        let known = self.known_people();
        let found: Vec<Person> = match query {
            None => known,
            Some(DirectoryQuery::Search(text)) => crate::trust::search(&known, text),
            Some(DirectoryQuery::User(user)) => {
                known.into_iter().filter(|p| p.user_id == *user).collect()
            }
            Some(DirectoryQuery::Unit { unit, below, .. }) => known
                .into_iter()
                .filter(|p| p.org_unit == *unit || *below && p.org_unit.is_within(unit))
                .collect(),
        };
        People {
            more: found.len() > MAX_LOCAL_PEOPLE,
            people: found
                .iter()
                .take(MAX_LOCAL_PEOPLE)
                .map(|p| view(p, |d| self.label_of(d)))
                .collect(),
            from: None,
            local_only: true,
        }
    }

    /// The user looks for officials: what this device knows, together with
    /// what a relay's agency directory answers (a relay's own, on a relay;
    /// one connected relay's, checked here, on a device). With no relay
    /// reachable, what this device knows, saying so.
    pub(super) fn ask_directory(
        &mut self,
        query: Option<DirectoryQuery>,
        reply: oneshot::Sender<Result<People, NodeError>>,
    ) {
        let now = self.clock.now();
        let local = self.local_people(query.as_ref());
        let Some(query) = query else {
            let _ = reply.send(Ok(local));
            return;
        };
        if self.directory.serves() {
            let gate = &self.gate;
            let answer = self
                .directory
                .answer_locally(&query, now, |d| gate.revocation_of(d).is_none())
                .unwrap_or_default();
            let relay = self.checked_people(answer, None);
            let _ = reply.send(Ok(merge(local, relay)));
            return;
        }
        let relay = self
            .connections
            .peers()
            .iter()
            .filter(|(_, info)| info.role == Role::Relay)
            .map(|(peer, _)| *peer)
            .min();
        let Some(relay) = relay else {
            let _ = reply.send(Ok(local));
            return;
        };
        if !self.directory.may_ask() {
            let _ = reply.send(Ok(local));
            return;
        }
        let request = self
            .swarm
            .behaviour_mut()
            .directory
            .send_request(&relay, query);
        if let Err((reply, local)) = self.directory.asked(request, (reply, local)) {
            let _ = reply.send(Ok(local));
        }
    }

    pub(super) fn on_directory_event(
        &mut self,
        event: request_response::Event<DirectoryQuery, DirectoryAnswer>,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let now = self.clock.now();
                let gate = &self.gate;
                // Too fast, or not a relay: the stream closes unanswered.
                if let Some(answer) = self
                    .directory
                    .answer(&peer, &request, now, |d| gate.revocation_of(d).is_none())
                {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .directory
                        .send_response(channel, answer);
                }
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((reply, local)) = self.directory.answered(&request_id) {
                    let from = crate::net::admission::device_id(&peer);
                    let relay = self.checked_people(response, from);
                    let _ = reply.send(Ok(merge(local, relay)));
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => self.directory_failed(request_id, error.to_string()),
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// The relay did not answer: what this device knows, saying so.
    fn directory_failed(&mut self, request: OutboundRequestId, error: String) {
        if let Some((reply, local)) = self.directory.answered(&request) {
            tracing::info!(%error, "the relay did not answer a directory question");
            let _ = reply.send(Ok(local));
        }
    }

    /// Every chain checked here (agency, validity, revocations), grouped by
    /// person; the devices are known here from now on (`@` finds them, and
    /// they are granted the keys of rooms they belong to).
    fn checked_people(
        &mut self,
        answer: DirectoryAnswer,
        from: Option<crate::identity::DeviceId>,
    ) -> People {
        let more = answer.next.is_some() || answer.chains.len() >= crate::trust::MAX_ANSWER_DEVICES;
        let gate = &self.gate;
        let checked = verified(answer, &self.agency, self.clock.now(), &self.policy, |d| {
            gate.revocation_of(d).is_none()
        });
        if from.is_some() {
            for (chain, device) in &checked {
                self.learn_device(device.clone(), chain);
            }
        }
        let people = crate::trust::people(checked.iter().map(|(_, device)| device));
        People {
            people: people
                .iter()
                .map(|p| view(p, |d| self.label_of(d)))
                .collect(),
            more,
            from,
            local_only: false,
        }
    }
}
