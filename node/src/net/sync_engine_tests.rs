//! The sync engine driven without a swarm: peers are numbers, the other
//! side is a second engine answering from what it holds, and the test
//! plays the actor (validating fetched items, listing rooms).

use std::collections::HashMap;

use super::*;
use crate::identity::PublicKey;
use crate::net::refusals::RETRY_SECS;

const PEER: u32 = 2;
const OTHER: u32 = 3;

fn device(n: u8) -> DeviceId {
    DeviceId::from_public_key(PublicKey([n; 32]))
}

fn room(n: u8) -> RoomId {
    RoomId([n; 32])
}

/// One side of the conversation: what it holds, item bytes by id.
struct Holder {
    engine: SyncEngine<u32>,
    bytes: HashMap<[u8; 32], Vec<u8>>,
}

impl Holder {
    fn new() -> Self {
        Holder {
            engine: SyncEngine::new(),
            bytes: HashMap::new(),
        }
    }

    /// Holds an item whose bytes are `text`, stamped `at`; its id.
    fn put(&mut self, scope: SyncScope, at: u64, text: &str) -> [u8; 32] {
        let bytes = text.as_bytes().to_vec();
        let id = item_id(&bytes);
        self.engine.hold(scope, (at, id), bytes.len());
        self.bytes.insert(id, bytes);
        id
    }

    /// Answers one request as a peer would, giving at most `limit` items
    /// per fetch (a response stops at its byte limit).
    fn answer(&mut self, request: &SyncRequest, limit: usize) -> SyncResponse {
        match request {
            SyncRequest::Reconcile { scope, message } => self.engine.answer(*scope, message),
            SyncRequest::Fetch { ids, .. } => SyncResponse::Items(
                ids.iter()
                    .filter_map(|id| self.bytes.get(id).cloned())
                    .take(limit)
                    .collect(),
            ),
            SyncRequest::Hint { .. } => SyncResponse::Noted,
        }
    }
}

/// What the test, as the actor, saw of one session.
#[derive(Debug, Default)]
struct Seen {
    finished: Vec<(u32, SyncReport, bool, bool)>,
    abandoned: Vec<(u32, String)>,
    requests: Vec<SyncRequest>,
    revocations_missing: Vec<Vec<[u8; 32]>>,
}

/// Plays the actor: carries out `actions` against `peer` until nothing is
/// left to do. Fetched items are taken into `me` unless `refuse` says
/// otherwise; `rooms` is what is listed when the engine asks.
#[allow(clippy::too_many_arguments)]
fn drive(
    me: &mut Holder,
    peer: &mut Holder,
    actions: Vec<Action<u32>>,
    rooms: &[RoomId],
    refuse: &dyn Fn(&[u8]) -> Option<Refusal>,
    limit: usize,
    now: u64,
    seen: &mut Seen,
) {
    let mut queue: VecDeque<Action<u32>> = actions.into();
    while let Some(action) = queue.pop_front() {
        match action {
            Action::Send(to, request) => {
                seen.requests.push(request.clone());
                let response = peer.answer(&request, limit);
                queue.extend(me.engine.on_response(to, response, now));
            }
            Action::ListRooms(to) => {
                queue.extend(me.engine.rooms_listed(to, rooms.to_vec(), now));
            }
            Action::Take {
                peer: from,
                scope,
                items,
            } => {
                let mut outcomes = Vec::new();
                for (id, bytes) in items {
                    let outcome = match refuse(&bytes) {
                        Some(why) => Outcome::Refused(why),
                        None => {
                            me.engine.hold(scope, (now, id), bytes.len());
                            me.bytes.insert(id, bytes);
                            Outcome::Taken
                        }
                    };
                    outcomes.push((id, outcome));
                }
                queue.extend(me.engine.taken(from, outcomes, now));
            }
            Action::RevocationsReconciled { missing, .. } => {
                seen.revocations_missing.push(missing);
            }
            Action::Finished {
                peer,
                report,
                full,
                again,
            } => seen.finished.push((peer, report, full, again)),
            Action::Abandoned { peer, reason, .. } => seen.abandoned.push((peer, reason)),
        }
    }
}

fn take_all(_: &[u8]) -> Option<Refusal> {
    None
}

#[test]
fn a_round_fetches_revocations_control_frames_and_the_listed_rooms() {
    let (mut me, mut peer) = (Holder::new(), Holder::new());
    let common = peer.put(SyncScope::Control, 5, "grant both hold");
    me.put(SyncScope::Control, 5, "grant both hold");
    let mine = me.put(SyncScope::Revocations, 6, "revocation only I hold");
    peer.put(SyncScope::Revocations, 7, "revocation only the peer holds");
    peer.put(SyncScope::Room(room(1)), 8, "message in room 1");
    peer.put(SyncScope::Room(room(1)), 9, "another in room 1");
    peer.put(SyncScope::Room(room(2)), 10, "message in a room not listed");

    let mut seen = Seen::default();
    let start = me.engine.start_round(PEER, device(2), 100);
    drive(
        &mut me,
        &mut peer,
        start,
        &[room(1)],
        &take_all,
        usize::MAX,
        100,
        &mut seen,
    );

    assert_eq!(seen.finished.len(), 1);
    let (with, report, full, again) = &seen.finished[0];
    assert_eq!((*with, *full, *again), (PEER, true, false));
    assert_eq!(report.fetched, 3, "one revocation and two messages");
    assert_eq!(report.scopes.len(), 3, "revocations, control, room 1");
    assert!(
        me.engine
            .index()
            .timestamp_of(
                SyncScope::Room(room(2)),
                &item_id(b"message in a room not listed")
            )
            .is_none()
    );
    assert!(
        me.engine
            .index()
            .timestamp_of(SyncScope::Control, &common)
            .is_some()
    );
    assert_eq!(
        seen.revocations_missing,
        vec![vec![mine]],
        "the peer lacks my revocation"
    );
    assert_eq!(me.engine.last_sync(), Some(100));
    assert!(!me.engine.is_syncing(&PEER));
}

#[test]
fn an_item_that_was_not_asked_for_ends_the_session() {
    let (mut me, mut peer) = (Holder::new(), Holder::new());
    peer.put(SyncScope::Revocations, 1, "asked");
    let start = me.engine.start_round(PEER, device(2), 10);
    // Reconcile by hand, then answer the fetch with something else.
    let mut queue: VecDeque<Action<u32>> = start.into();
    let mut abandoned = None;
    while let Some(action) = queue.pop_front() {
        match action {
            Action::Send(to, request @ SyncRequest::Reconcile { .. }) => {
                let response = peer.answer(&request, usize::MAX);
                queue.extend(me.engine.on_response(to, response, 10));
            }
            Action::Send(to, SyncRequest::Fetch { .. }) => {
                let forged = SyncResponse::Items(vec![b"never asked for".to_vec()]);
                queue.extend(me.engine.on_response(to, forged, 10));
            }
            Action::Abandoned {
                peer,
                device: d,
                reason,
            } => {
                abandoned = Some((peer, d, reason));
            }
            Action::RevocationsReconciled { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let (peer, d, reason) = abandoned.expect("the session is given up");
    assert_eq!((peer, d), (PEER, device(2)));
    assert!(reason.contains("not asked for"), "{reason}");
    assert!(!me.engine.is_syncing(&PEER));
}

#[test]
fn an_invalid_item_is_never_fetched_again_and_a_locally_refused_one_after_a_while() {
    let (mut me, mut peer) = (Holder::new(), Holder::new());
    let scope = SyncScope::Room(room(1));
    let forged = peer.put(scope, 1, "forged");
    let early = peer.put(scope, 2, "from the future");
    let refuse = |bytes: &[u8]| match bytes {
        b"forged" => Some(Refusal::Invalid),
        b"from the future" => Some(Refusal::Local),
        _ => None,
    };
    let fetched_ids = |seen: &Seen| -> Vec<[u8; 32]> {
        seen.requests
            .iter()
            .filter_map(|r| match r {
                SyncRequest::Fetch { ids, .. } => Some(ids.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    };

    let mut first = Seen::default();
    let start = me.engine.reconcile(PEER, device(2), scope, 1_000);
    drive(
        &mut me,
        &mut peer,
        start,
        &[],
        &refuse,
        usize::MAX,
        1_000,
        &mut first,
    );
    assert_eq!(fetched_ids(&first).len(), 2);

    let mut soon = Seen::default();
    let start = me.engine.reconcile(PEER, device(2), scope, 1_001);
    drive(
        &mut me,
        &mut peer,
        start,
        &[],
        &refuse,
        usize::MAX,
        1_001,
        &mut soon,
    );
    assert!(fetched_ids(&soon).is_empty(), "both refused a moment ago");

    let later = 1_000 + RETRY_SECS + 1;
    let mut retry = Seen::default();
    let start = me.engine.reconcile(PEER, device(2), scope, later);
    drive(
        &mut me,
        &mut peer,
        start,
        &[],
        &take_all,
        usize::MAX,
        later,
        &mut retry,
    );
    assert_eq!(
        fetched_ids(&retry),
        vec![early],
        "only the local refusal is asked again"
    );
    assert!(me.engine.index().timestamp_of(scope, &forged).is_none());
}

#[test]
fn what_a_response_leaves_out_at_its_byte_limit_is_asked_for_again() {
    let (mut me, mut peer) = (Holder::new(), Holder::new());
    let scope = SyncScope::Room(room(1));
    for n in 0..5 {
        peer.put(scope, n, &format!("message {n}"));
    }
    let mut seen = Seen::default();
    let start = me.engine.reconcile(PEER, device(2), scope, 10);
    drive(&mut me, &mut peer, start, &[], &take_all, 2, 10, &mut seen);
    let fetches = seen
        .requests
        .iter()
        .filter(|r| matches!(r, SyncRequest::Fetch { .. }))
        .count();
    assert_eq!(fetches, 3, "2 + 2 + 1 items");
    assert_eq!(me.engine.index().len(scope), 5);
    assert_eq!(seen.finished[0].1.fetched, 5);
    assert!(!seen.finished[0].2, "a single set is not a whole round");
}

#[test]
fn an_item_another_session_is_fetching_is_not_fetched_twice() {
    let mut me = Holder::new();
    let (mut first, mut second) = (Holder::new(), Holder::new());
    let scope = SyncScope::Room(room(1));
    let shared = first.put(scope, 1, "both peers hold this");
    second.put(scope, 1, "both peers hold this");
    let only_second = second.put(scope, 2, "only the second peer holds this");

    // The first session reconciles and asks for the item, not yet answered.
    let mut pending = None;
    let mut queue: VecDeque<Action<u32>> = me.engine.reconcile(PEER, device(2), scope, 5).into();
    while let Some(action) = queue.pop_front() {
        match action {
            Action::Send(to, request @ SyncRequest::Reconcile { .. }) => {
                let response = first.answer(&request, usize::MAX);
                queue.extend(me.engine.on_response(to, response, 5));
            }
            Action::Send(_, request @ SyncRequest::Fetch { .. }) => pending = Some(request),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        pending,
        Some(SyncRequest::Fetch {
            scope,
            ids: vec![shared]
        })
    );

    // Meanwhile a session with another peer asks only for the rest.
    let mut seen = Seen::default();
    let start = me.engine.reconcile(OTHER, device(3), scope, 5);
    drive(
        &mut me,
        &mut second,
        start,
        &[],
        &take_all,
        usize::MAX,
        5,
        &mut seen,
    );
    let asked: Vec<SyncRequest> = seen
        .requests
        .into_iter()
        .filter(|r| matches!(r, SyncRequest::Fetch { .. }))
        .collect();
    assert_eq!(
        asked,
        vec![SyncRequest::Fetch {
            scope,
            ids: vec![only_second]
        }]
    );
}

#[test]
fn a_round_asked_for_while_one_runs_is_run_again_after_it() {
    let (mut me, mut peer) = (Holder::new(), Holder::new());
    peer.put(SyncScope::Control, 1, "frame");
    let start = me.engine.start_round(PEER, device(2), 1);
    assert!(me.engine.is_syncing(&PEER));
    assert!(me.engine.start_round(PEER, device(2), 1).is_empty());
    // A single set asked for meanwhile joins the running session, once:
    // the control frames are already waiting there, the revocations (in
    // flight now) are queued again.
    for scope in [
        SyncScope::Control,
        SyncScope::Revocations,
        SyncScope::Revocations,
    ] {
        assert!(me.engine.reconcile(PEER, device(2), scope, 1).is_empty());
    }
    let mut seen = Seen::default();
    drive(
        &mut me,
        &mut peer,
        start,
        &[],
        &take_all,
        usize::MAX,
        1,
        &mut seen,
    );
    let (_, report, full, again) = &seen.finished[0];
    assert!(*full && *again);
    assert_eq!(report.scopes, vec!["revocations", "control", "revocations"]);
}

#[test]
fn a_refusal_moves_on_to_the_next_set() {
    let (mut me, mut peer) = (Holder::new(), Holder::new());
    peer.put(SyncScope::Room(room(1)), 1, "message");
    let mut queue: VecDeque<Action<u32>> = me.engine.start_round(PEER, device(2), 1).into();
    let mut finished = false;
    while let Some(action) = queue.pop_front() {
        match action {
            Action::Send(
                to,
                SyncRequest::Reconcile {
                    scope: SyncScope::Control,
                    ..
                },
            ) => {
                let refused = SyncResponse::Refused("not served".into());
                queue.extend(me.engine.on_response(to, refused, 1));
            }
            Action::Send(to, request) => {
                let response = peer.answer(&request, usize::MAX);
                queue.extend(me.engine.on_response(to, response, 1));
            }
            Action::ListRooms(to) => queue.extend(me.engine.rooms_listed(to, vec![room(1)], 1)),
            Action::Take {
                peer: from,
                scope,
                items,
            } => {
                let outcomes = items
                    .into_iter()
                    .map(|(id, bytes)| {
                        me.engine.hold(scope, (1, id), bytes.len());
                        (id, Outcome::Taken)
                    })
                    .collect();
                queue.extend(me.engine.taken(from, outcomes, 1));
            }
            Action::RevocationsReconciled { .. } => {}
            Action::Finished { report, .. } => {
                finished = true;
                assert_eq!(report.fetched, 1, "the room after the refused set");
            }
            Action::Abandoned { reason, .. } => panic!("abandoned: {reason}"),
        }
    }
    assert!(finished);
}

#[test]
fn a_round_that_postponed_an_item_goes_again_only_after_taking_something_new() {
    // A relay takes a 1:1 room's grant only once it knows the device the
    // grant names, whose presence frame may come later in the same set.
    let (mut me, mut peer) = (Holder::new(), Holder::new());
    peer.put(SyncScope::Control, 1, "grant naming lee's device");
    peer.put(SyncScope::Control, 2, "lee's presence");
    let mut presence_taken = false;
    let mut rounds = Vec::new();
    for now in [10, 11, 12] {
        let mut queue: VecDeque<Action<u32>> = me.engine.start_round(PEER, device(2), now).into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Send(to, request) => {
                    let response = peer.answer(&request, usize::MAX);
                    queue.extend(me.engine.on_response(to, response, now));
                }
                Action::ListRooms(to) => queue.extend(me.engine.rooms_listed(to, vec![], now)),
                Action::Take {
                    peer: from,
                    scope,
                    items,
                } => {
                    // Items of one response are validated in the order given:
                    // the grant is placed only if the presence came earlier.
                    let known_before = presence_taken;
                    let mut outcomes = Vec::new();
                    for (id, bytes) in items {
                        let outcome = if bytes == b"lee's presence" || known_before {
                            presence_taken |= bytes == b"lee's presence";
                            me.engine.hold(scope, (now, id), bytes.len());
                            Outcome::Taken
                        } else {
                            Outcome::Postponed
                        };
                        outcomes.push((id, outcome));
                    }
                    queue.extend(me.engine.taken(from, outcomes, now));
                }
                Action::RevocationsReconciled { .. } => {}
                Action::Finished { report, again, .. } => rounds.push((report.fetched, again)),
                Action::Abandoned { reason, .. } => panic!("abandoned: {reason}"),
            }
        }
    }
    assert_eq!(
        rounds,
        vec![(1, true), (1, false), (0, false)],
        "the first round took the presence and postponed the grant: it goes \
         again at once, and the second takes the grant"
    );
    assert_eq!(me.engine.index().len(SyncScope::Control), 2);
}

#[test]
fn a_round_that_took_nothing_new_does_not_go_again_for_what_it_postponed() {
    let (mut me, mut peer) = (Holder::new(), Holder::new());
    peer.put(SyncScope::Control, 1, "a grant no one can place");
    let mut seen = Seen::default();
    let start = me.engine.start_round(PEER, device(2), 5);
    let mut queue: VecDeque<Action<u32>> = start.into();
    while let Some(action) = queue.pop_front() {
        match action {
            Action::Send(to, request) => {
                let response = peer.answer(&request, usize::MAX);
                queue.extend(me.engine.on_response(to, response, 5));
            }
            Action::ListRooms(to) => queue.extend(me.engine.rooms_listed(to, vec![], 5)),
            Action::Take {
                peer: from, items, ..
            } => {
                let outcomes = items
                    .into_iter()
                    .map(|(id, _)| (id, Outcome::Postponed))
                    .collect();
                queue.extend(me.engine.taken(from, outcomes, 5));
            }
            Action::Finished {
                peer,
                report,
                full,
                again,
            } => seen.finished.push((peer, report, full, again)),
            _ => {}
        }
    }
    assert_eq!(seen.finished.len(), 1);
    assert!(
        !seen.finished[0].3,
        "no endless rounds for an item that cannot be placed"
    );
}
