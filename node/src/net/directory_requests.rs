//! The actor's directory glue: asks a connected relay (or its own
//! directory, on a relay) and answers admitted peers' queries, moving the
//! [`DirectoryService`](super::super::directory_service::DirectoryService)'s
//! decisions onto the directory protocol.

use libp2p::request_response::{self, OutboundRequestId};
use tokio::sync::oneshot;

use super::Actor;
use crate::api::People;
use crate::net::directory_service::people;
use crate::node::NodeError;
use crate::trust::{DirectoryAnswer, DirectoryQuery, Role};

type Reply = oneshot::Sender<Result<People, NodeError>>;

impl Actor {
    /// The user asks the directory: a relay answers from its own; a device
    /// asks one connected relay and checks what comes back.
    pub(super) fn ask_directory(&mut self, query: DirectoryQuery, reply: Reply) {
        let now = self.clock.now();
        if self.directory.serves() {
            let gate = &self.gate;
            let answer = self
                .directory
                .answer_locally(&query, now, |d| gate.revocation_of(d).is_none())
                .unwrap_or_default();
            let _ = reply.send(Ok(self.checked_people(answer, None)));
            return;
        }
        let relay = self
            .peers
            .iter()
            .filter(|(_, info)| info.role == Role::Relay)
            .map(|(peer, _)| *peer)
            .min();
        let Some(relay) = relay else {
            let _ = reply.send(Err(NodeError::Network(
                "no relay is reachable: the agency directory is kept by relays; try again once one is connected (baro peers)".into(),
            )));
            return;
        };
        if !self.directory.may_ask() {
            let _ = reply.send(Err(NodeError::Network(
                "too many directory questions are waiting; try again in a moment".into(),
            )));
            return;
        }
        let request = self
            .swarm
            .behaviour_mut()
            .directory
            .send_request(&relay, query);
        if let Err(reply) = self.directory.asked(request, reply) {
            let _ = reply.send(Err(NodeError::Network(
                "too many directory questions are waiting; try again in a moment".into(),
            )));
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
                if let Some(reply) = self.directory.answered(&request_id) {
                    let from = crate::net::admission::device_id(&peer);
                    let _ = reply.send(Ok(self.checked_people(response, from)));
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => self.directory_failed(request_id, error.to_string()),
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn directory_failed(&mut self, request: OutboundRequestId, error: String) {
        if let Some(reply) = self.directory.answered(&request) {
            let _ = reply.send(Err(NodeError::Network(format!(
                "the relay did not answer the directory question: {error}"
            ))));
        }
    }

    /// Every chain checked here (agency, validity, revocations), grouped by person.
    fn checked_people(
        &self,
        answer: DirectoryAnswer,
        from: Option<crate::identity::DeviceId>,
    ) -> People {
        let gate = &self.gate;
        let mut people = people(answer, &self.agency, self.clock.now(), &self.policy, |d| {
            gate.revocation_of(d).is_none()
        });
        people.from = from;
        people
    }
}
