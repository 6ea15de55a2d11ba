//! Sync sessions as a component of their own, without I/O (control plane
//! v2, deliverable 1): what this node holds per reconciled set (the index,
//! and each set prepared once for answering), the sessions it started with
//! each peer (which sets, in what order, what is still missing and asked
//! of whom), and what it refused and will not fetch again for a while.
//!
//! The actor feeds it inputs (a round to start, a peer's answer, the
//! outcome of validating fetched items, the rooms to reconcile with a
//! peer) and carries out the [`Action`]s it returns: requests to send,
//! items to validate, sessions finished or abandoned. Peers are generic,
//! so tests drive it with plain numbers; time is an input.

use std::collections::{HashMap, VecDeque};

use crate::identity::DeviceId;
use crate::net::refusals::{Refusal, Refused};
use crate::net::sync_protocol::frame_len;
use crate::node::SyncReport;
use crate::rooms::RoomId;
use crate::sync::{
    MAX_FETCH_IDS, Reconciler, ResponderCache, Step, SyncIndex, SyncItem, SyncRequest,
    SyncResponse, SyncScope,
};

/// Items in flight across sessions beyond which finished sessions' entries
/// are pruned.
const MAX_FETCHING: usize = 4096;
/// Items kept prepared for answering reconciliations, over all sets.
const ANSWER_CACHE_ITEMS: usize = 2_000_000;

/// What the engine asks the actor to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action<P> {
    /// Send `request` to the peer.
    Send(P, SyncRequest),
    /// The session with the peer has reconciled what it was asked to and
    /// now needs the rooms both keep (decided after the control frames,
    /// which say who is in which room): answer with
    /// [`SyncEngine::rooms_listed`].
    ListRooms(P),
    /// Validate these fetched items (each one asked for) exactly as if
    /// gossip had brought them, and report with [`SyncEngine::taken`].
    Take {
        /// From whom.
        peer: P,
        /// Their set.
        scope: SyncScope,
        /// Their bytes, each with its id.
        items: Vec<([u8; 32], Vec<u8>)>,
    },
    /// The revocation set was reconciled: the peer lacks `missing` and
    /// holds every other revocation this node holds.
    RevocationsReconciled {
        /// With whom.
        peer: P,
        /// What it lacks.
        missing: Vec<[u8; 32]>,
    },
    /// A session ended.
    Finished {
        /// With whom.
        peer: P,
        /// What it did.
        report: SyncReport,
        /// A whole round (reported to the user), not single sets.
        full: bool,
        /// Another round was asked for while it ran: start it.
        again: bool,
    },
    /// A session was given up: the peer broke the protocol.
    Abandoned {
        /// With whom.
        peer: P,
        /// Its device.
        device: DeviceId,
        /// What it did wrong.
        reason: String,
    },
}

/// What became of one fetched item, as the engine cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Taken (new, or kept aside unreadable): counts as fetched.
    Taken,
    /// Nothing to count (a duplicate).
    Ignored,
    /// Valid as far as can be told, but not taken now: it needs something
    /// not here yet (the certificate of a device it names, a grant before
    /// it). Not remembered as refused, so the next round asks again; when
    /// the session took anything new, that round starts as soon as this
    /// one ends (what it took may be what was missing).
    Postponed,
    /// Refused; not fetched again, for good or for a while by `why`.
    Refused(Refusal),
}

/// A sync session this node started with one peer.
#[derive(Debug)]
struct Session {
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
    /// Some item was postponed (see [`Outcome::Postponed`]).
    postponed: bool,
}

impl Session {
    /// A whole round: revocations, control frames, then the rooms both hold.
    fn full(peer: DeviceId) -> Self {
        let mut session = Session::of(
            peer,
            VecDeque::from([SyncScope::Revocations, SyncScope::Control]),
        );
        session.full = true;
        session
    }

    /// Only the sets in `queue`.
    fn of(peer: DeviceId, queue: VecDeque<SyncScope>) -> Self {
        Session {
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
            postponed: false,
        }
    }
}

/// The sync side of one node.
#[derive(Debug)]
pub(crate) struct SyncEngine<P> {
    /// What this node holds, per reconciled set.
    index: SyncIndex,
    /// Each reconciled set prepared once for answering, until it changes.
    answers: ResponderCache,
    /// Sessions this node started, by peer.
    sessions: HashMap<P, Session>,
    /// Items asked for by a session, and from whom (stale entries, of
    /// sessions that ended, are ignored and pruned).
    fetching: HashMap<[u8; 32], P>,
    /// Ids of fetched items that failed validation: not fetched again (for
    /// a while only, if they failed for a reason of this node's own).
    refused: Refused,
    /// When a session last ended (Unix seconds).
    last_sync: Option<u64>,
}

impl<P: Copy + Eq + std::hash::Hash + std::fmt::Debug> SyncEngine<P> {
    /// An engine holding nothing.
    pub(crate) fn new() -> Self {
        SyncEngine {
            index: SyncIndex::new(),
            answers: ResponderCache::new(ANSWER_CACHE_ITEMS),
            sessions: HashMap::new(),
            fetching: HashMap::new(),
            refused: Refused::default(),
            last_sync: None,
        }
    }

    /// What this node holds.
    pub(crate) fn index(&self) -> &SyncIndex {
        &self.index
    }

    /// Replaces what this node holds (at start, from the store).
    pub(crate) fn load(&mut self, index: SyncIndex) {
        self.index = index;
        self.answers.clear();
    }

    /// Records that an item is held (after it was saved); `false` if it was already.
    pub(crate) fn hold(&mut self, scope: SyncScope, item: SyncItem, len: usize) -> bool {
        let new = self.index.insert(scope, item, len);
        if new {
            self.answers.invalidate(scope);
        }
        new
    }

    /// Records that an item is no longer held; `false` if it was not.
    pub(crate) fn forget(&mut self, scope: SyncScope, item: SyncItem) -> bool {
        let held = self.index.remove(scope, item);
        if held {
            self.answers.invalidate(scope);
        }
        held
    }

    /// When a session last ended (Unix seconds).
    pub(crate) fn last_sync(&self) -> Option<u64> {
        self.last_sync
    }

    /// Whether a session with `peer` is running.
    #[cfg(test)]
    pub(crate) fn is_syncing(&self, peer: &P) -> bool {
        self.sessions.contains_key(peer)
    }

    /// The device a running session is with.
    pub(crate) fn device_of(&self, peer: &P) -> Option<DeviceId> {
        self.sessions.get(peer).map(|s| s.report.peer)
    }

    /// Starts a whole round with `peer` (its device `device`), or asks the
    /// running session to go again when it ends.
    pub(crate) fn start_round(&mut self, peer: P, device: DeviceId, now: u64) -> Vec<Action<P>> {
        if let Some(running) = self.sessions.get_mut(&peer) {
            running.again = true;
            return Vec::new();
        }
        self.sessions.insert(peer, Session::full(device));
        self.advance(peer, now)
    }

    /// Reconciles one set with `peer`: queued in the session running with
    /// it (once: a set already waiting there is not queued again), or in a
    /// session of its own.
    pub(crate) fn reconcile(
        &mut self,
        peer: P,
        device: DeviceId,
        scope: SyncScope,
        now: u64,
    ) -> Vec<Action<P>> {
        if let Some(running) = self.sessions.get_mut(&peer) {
            // A whole round that has not listed its rooms yet lists every
            // room both keep (what an event asks for is among them).
            let listed_later =
                running.full && !running.rooms_queued && matches!(scope, SyncScope::Room(_));
            if !listed_later && !running.queue.contains(&scope) {
                running.queue.push_back(scope);
            }
            return Vec::new();
        }
        let mut session = Session::of(device, VecDeque::from([scope]));
        session.rooms_queued = true;
        self.sessions.insert(peer, session);
        self.advance(peer, now)
    }

    /// The rooms to reconcile with `peer`, as the actor decided them after
    /// [`Action::ListRooms`].
    pub(crate) fn rooms_listed(&mut self, peer: P, rooms: Vec<RoomId>, now: u64) -> Vec<Action<P>> {
        let Some(session) = self.sessions.get_mut(&peer) else {
            return Vec::new();
        };
        session.rooms_queued = true;
        session.queue.extend(rooms.into_iter().map(SyncScope::Room));
        self.advance(peer, now)
    }

    /// Ends the session with `peer` without a report (it left, or is no
    /// longer admitted, or a request to it failed).
    pub(crate) fn end(&mut self, peer: &P) {
        self.sessions.remove(peer);
    }

    /// Starts the next set in the queue, asks for the rooms, or ends the
    /// session.
    fn advance(&mut self, peer: P, now: u64) -> Vec<Action<P>> {
        let Some(session) = self.sessions.get_mut(&peer) else {
            return Vec::new();
        };
        if session.queue.is_empty() && !session.rooms_queued {
            return vec![Action::ListRooms(peer)];
        }
        let Some(scope) = session.queue.pop_front() else {
            let Some(session) = self.sessions.remove(&peer) else {
                return Vec::new();
            };
            self.last_sync = Some(now.max(self.last_sync.unwrap_or(0)));
            // Bounded: a round goes again only after one that took something
            // new, and the items a peer can offer are finite.
            let again = session.again || (session.postponed && session.report.fetched > 0);
            return vec![Action::Finished {
                peer,
                report: session.report,
                full: session.full,
                again,
            }];
        };
        let items: Vec<SyncItem> = self.index.items(scope).collect();
        match Reconciler::initiate(items) {
            Ok((reconciler, message)) => {
                session.scope = Some(scope);
                session.reconciler = Some(reconciler);
                session.report.scopes.push(scope.to_string());
                vec![self.send(peer, SyncRequest::Reconcile { scope, message })]
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start reconciliation");
                self.sessions.remove(&peer);
                Vec::new()
            }
        }
    }

    /// Counts a request in its session's report and hands it out.
    fn send(&mut self, peer: P, request: SyncRequest) -> Action<P> {
        if let Some(session) = self.sessions.get_mut(&peer) {
            session.report.bytes_sent += frame_len(&request) as u64;
            session.report.round_trips += 1;
        }
        Action::Send(peer, request)
    }

    /// Asks for the next batch of missing items, or moves on. Items that
    /// arrived meanwhile (by gossip or another session) and items another
    /// session is fetching right now are skipped: with a dozen peers, every
    /// session would otherwise fetch, and verify, the same missing items.
    fn fetch_next(&mut self, peer: P, now: u64) -> Vec<Action<P>> {
        let Some(session) = self.sessions.get(&peer) else {
            return Vec::new();
        };
        let Some(scope) = session.scope else {
            return self.advance(peer, now);
        };
        let need: Vec<[u8; 32]> = session
            .need
            .iter()
            .filter(|id| {
                self.index.timestamp_of(scope, id).is_none() && !self.fetched_elsewhere(peer, id)
            })
            .copied()
            .collect();
        let Some(session) = self.sessions.get_mut(&peer) else {
            return Vec::new();
        };
        session.need = need;
        if session.need.is_empty() {
            return self.advance(peer, now);
        }
        let take = session.need.len().min(MAX_FETCH_IDS);
        let ids: Vec<[u8; 32]> = session.need.drain(..take).collect();
        session.asked = ids.clone();
        if self.fetching.len() > MAX_FETCHING {
            let sessions = &self.sessions;
            self.fetching
                .retain(|id, by| sessions.get(by).is_some_and(|s| s.asked.contains(id)));
        }
        for id in &ids {
            self.fetching.insert(*id, peer);
        }
        vec![self.send(peer, SyncRequest::Fetch { scope, ids })]
    }

    /// Whether a session with another peer is fetching `id` now.
    fn fetched_elsewhere(&self, peer: P, id: &[u8; 32]) -> bool {
        self.fetching.get(id).is_some_and(|by| {
            *by != peer && self.sessions.get(by).is_some_and(|s| s.asked.contains(id))
        })
    }

    /// A peer's answer to a request of a session (`now`: Unix seconds).
    pub(crate) fn on_response(
        &mut self,
        peer: P,
        response: SyncResponse,
        now: u64,
    ) -> Vec<Action<P>> {
        let Some(session) = self.sessions.get_mut(&peer) else {
            return Vec::new();
        };
        session.report.bytes_received += frame_len(&response) as u64;
        match response {
            SyncResponse::Reconcile(reply) => {
                let Some(reconciler) = session.reconciler.as_mut() else {
                    return Vec::new();
                };
                match reconciler.step(&reply) {
                    Ok(Step::Continue(message)) => match session.scope {
                        Some(scope) => {
                            vec![self.send(peer, SyncRequest::Reconcile { scope, message })]
                        }
                        None => Vec::new(),
                    },
                    Ok(Step::Done { need, have }) => {
                        let mut actions = Vec::new();
                        if session.scope == Some(SyncScope::Revocations) {
                            actions.push(Action::RevocationsReconciled {
                                peer,
                                missing: have,
                            });
                        }
                        session.reconciler = None;
                        session.need = need;
                        let refused = &self.refused;
                        session.need.retain(|id| !refused.contains(id, now));
                        actions.extend(self.fetch_next(peer, now));
                        actions
                    }
                    Err(e) => self.abandon(peer, e.to_string()),
                }
            }
            SyncResponse::Items(items) => {
                let Some(scope) = session.scope else {
                    return Vec::new();
                };
                let mut taken = Vec::with_capacity(items.len());
                for bytes in items {
                    let id = item_id(&bytes);
                    if !session.asked.contains(&id) {
                        return self.abandon(peer, "sent an item that was not asked for".into());
                    }
                    taken.push((id, bytes));
                }
                if taken.is_empty() {
                    // Nothing of what was asked is there any more.
                    session.asked.clear();
                    return self.fetch_next(peer, now);
                }
                vec![Action::Take {
                    peer,
                    scope,
                    items: taken,
                }]
            }
            SyncResponse::Noted => {
                self.abandon(peer, "answered a sync request as if it were a hint".into())
            }
            SyncResponse::Refused(reason) => {
                tracing::debug!(?peer, %reason, "peer declined a sync set");
                session.reconciler = None;
                session.need.clear();
                self.advance(peer, now)
            }
        }
    }

    /// What became of the items of an [`Action::Take`]: refused ones are
    /// remembered, taken ones counted, and what a response left out (it
    /// stops at its byte limit) is asked for again.
    pub(crate) fn taken(
        &mut self,
        peer: P,
        outcomes: Vec<([u8; 32], Outcome)>,
        now: u64,
    ) -> Vec<Action<P>> {
        for (id, outcome) in &outcomes {
            match outcome {
                // The bytes are exactly what the peer announced (their
                // hash is the id), so they are not fetched again; the
                // rest of the session goes on (a receipt from a member
                // removed since, stored by a relay, must not stall sync).
                Outcome::Refused(why) => self.refused.insert(*id, *why, now),
                Outcome::Taken => {
                    if let Some(session) = self.sessions.get_mut(&peer) {
                        session.report.fetched += 1;
                    }
                }
                Outcome::Postponed => {
                    if let Some(session) = self.sessions.get_mut(&peer) {
                        session.postponed = true;
                    }
                }
                Outcome::Ignored => {}
            }
        }
        let Some(session) = self.sessions.get_mut(&peer) else {
            return Vec::new();
        };
        let asked = std::mem::take(&mut session.asked);
        let mut need: Vec<[u8; 32]> = asked
            .into_iter()
            .filter(|id| !outcomes.iter().any(|(taken, _)| taken == id))
            .collect();
        need.append(&mut session.need);
        session.need = need;
        self.fetch_next(peer, now)
    }

    /// Gives up the session with `peer`.
    fn abandon(&mut self, peer: P, reason: String) -> Vec<Action<P>> {
        match self.sessions.remove(&peer) {
            Some(session) => vec![Action::Abandoned {
                peer,
                device: session.report.peer,
                reason,
            }],
            None => Vec::new(),
        }
    }

    /// The answer to a peer's reconciliation message for `scope` (whether
    /// the peer may have the set is the actor's decision, made before).
    pub(crate) fn answer(&mut self, scope: SyncScope, message: &[u8]) -> SyncResponse {
        let index = &self.index;
        match self.answers.respond(scope, || index.items(scope), message) {
            Ok(reply) => SyncResponse::Reconcile(reply),
            Err(e) => SyncResponse::Refused(e.to_string()),
        }
    }
}

/// The id reconciliation names an item by: the hash of its encoding (an
/// envelope's id, a frame's gossip message id).
pub(crate) fn item_id(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

#[cfg(test)]
#[path = "sync_engine_tests.rs"]
mod tests;
