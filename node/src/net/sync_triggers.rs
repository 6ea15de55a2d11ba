//! When to reconcile, decided by events; the periodic sync is only a backstop.
//!
//! Gossip reaches the peers a publisher knows to listen on a topic at that
//! moment. A member that subscribes a moment later (it learned of the room
//! from the grant that came with the first message), or whose subscription
//! is still on its way, misses the message, and gossipsub never replays it
//! (a message cannot even be published twice: its id is its hash). These
//! events start a reconciliation sooner instead:
//!
//! - this node followed a room: the room is reconciled with the peers that
//!   follow it at once, and again after each of [`FOLLOW_RECHECKS`] (what
//!   was published while those peers did not know we listen);
//! - a peer subscribed to a room we hold: it is hinted (a
//!   [`crate::sync::SyncRequest::Hint`]) to reconcile the room with us (the
//!   side that lacks items must start, reconciliation only tells the
//!   initiator what is missing);
//! - a message this device wrote has no receipt yet: its room's peers are
//!   hinted after each of [`OFFER_BACKOFF`], until a member or a relay holds
//!   it (the caller checks its receipts) or the steps run out;
//! - a peer hinted us: reconciled, within [`HINTS_PER_WINDOW`] per peer.
//!
//! Coalescing is the sync session's (a scope already queued for a peer is
//! not queued twice); this component bounds how often anything is asked.
//! Pure: peers and request ids are generic, time is an input.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::rooms::RoomId;
use crate::sync::SyncScope;

/// After following a room: reconcile it with its peers after these delays
/// (a relay may take a round trip or two to hold the room's first message;
/// gossipsub adds a new subscriber to its mesh at its next heartbeat, a
/// second later, and what it forwarded before that went elsewhere).
pub(crate) const FOLLOW_RECHECKS: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_millis(300),
    Duration::from_millis(1200),
    Duration::from_secs(4),
];
/// A message without a receipt: its room's peers are hinted after each of
/// these delays from the send, then it is left to the periodic sync.
pub(crate) const OFFER_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(7),
    Duration::from_secs(15),
    Duration::from_secs(31),
];
/// Hints acted on per peer per [`HINT_WINDOW`]; more are answered and
/// dropped (each one costs a reconciliation round trip).
pub(crate) const HINTS_PER_WINDOW: u32 = 32;
/// See [`HINTS_PER_WINDOW`].
pub(crate) const HINT_WINDOW: Duration = Duration::from_secs(10);
/// The same peer is hinted about the same set at most once in this time.
pub(crate) const HINT_COALESCE: Duration = Duration::from_millis(500);
/// Rooms with rechecks pending, messages being offered, peers whose hints
/// are counted, and (peer, set) hints remembered: each at most this many.
pub(crate) const MAX_TRACKED: usize = 4096;
/// Hint requests awaiting their answer.
const MAX_HINTS_IN_FLIGHT: usize = 1024;

/// Something due now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Reconcile `room` with the peers that follow it.
    Recheck(RoomId),
    /// Unless a member or relay holds `message` (then call
    /// [`SyncTriggers::held`]), hint the peers of `room`.
    Offer {
        /// The room.
        room: RoomId,
        /// The message's id.
        message: [u8; 32],
    },
}

#[derive(Clone, Copy, Debug)]
struct Schedule {
    from: Instant,
    step: usize,
}

#[derive(Clone, Copy, Debug)]
struct Offered {
    room: RoomId,
    schedule: Schedule,
}

/// Which event-driven reconciliations and hints are due; see the module docs.
#[derive(Debug)]
pub(crate) struct SyncTriggers<P, R> {
    rechecks: BTreeMap<RoomId, Schedule>,
    offers: BTreeMap<[u8; 32], Offered>,
    hints_from: HashMap<P, (Instant, u32)>,
    hinted: HashMap<(P, SyncScope), Instant>,
    in_flight: HashSet<R>,
}

impl<P: Clone + Eq + Hash, R: Eq + Hash> Default for SyncTriggers<P, R> {
    fn default() -> Self {
        SyncTriggers {
            rechecks: BTreeMap::new(),
            offers: BTreeMap::new(),
            hints_from: HashMap::new(),
            hinted: HashMap::new(),
            in_flight: HashSet::new(),
        }
    }
}

impl<P: Clone + Eq + Hash, R: Eq + Hash> SyncTriggers<P, R> {
    /// This node began following `room`.
    pub(crate) fn followed(&mut self, room: RoomId, now: Instant) {
        if self.rechecks.len() >= MAX_TRACKED && !self.rechecks.contains_key(&room) {
            drop_oldest(&mut self.rechecks, |s| s.from);
        }
        self.rechecks.insert(room, Schedule { from: now, step: 0 });
    }

    /// This device sent `message` in `room` (published or queued).
    pub(crate) fn sent(&mut self, room: RoomId, message: [u8; 32], now: Instant) {
        if self.offers.len() >= MAX_TRACKED && !self.offers.contains_key(&message) {
            drop_oldest(&mut self.offers, |o| o.schedule.from);
        }
        self.offers.insert(
            message,
            Offered {
                room,
                schedule: Schedule { from: now, step: 0 },
            },
        );
    }

    /// A member or relay holds `message`: it is offered no more.
    pub(crate) fn held(&mut self, message: &[u8; 32]) {
        self.offers.remove(message);
    }

    /// What is due at `now`, oldest schedule first; each schedule moves to
    /// its next step (and ends after its last).
    pub(crate) fn due(&mut self, now: Instant) -> Vec<Due> {
        let mut due = Vec::new();
        self.rechecks.retain(
            |room, schedule| match advance(schedule, &FOLLOW_RECHECKS, now) {
                Step::Due(more) => {
                    due.push(Due::Recheck(*room));
                    more
                }
                Step::Wait => true,
            },
        );
        self.offers.retain(|message, offered| {
            match advance(&mut offered.schedule, &OFFER_BACKOFF, now) {
                Step::Due(more) => {
                    due.push(Due::Offer {
                        room: offered.room,
                        message: *message,
                    });
                    more
                }
                Step::Wait => true,
            }
        });
        due
    }

    /// Whether a hint from `peer` is acted on (at most [`HINTS_PER_WINDOW`]
    /// per [`HINT_WINDOW`]; past [`MAX_TRACKED`] peers counted, only peers
    /// already counted are).
    pub(crate) fn accept_hint(&mut self, peer: &P, now: Instant) -> bool {
        if self.hints_from.len() >= MAX_TRACKED && !self.hints_from.contains_key(peer) {
            self.hints_from
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < HINT_WINDOW);
            if self.hints_from.len() >= MAX_TRACKED {
                return false;
            }
        }
        let (start, count) = self.hints_from.entry(peer.clone()).or_insert((now, 0));
        if now.saturating_duration_since(*start) >= HINT_WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= HINTS_PER_WINDOW {
            return false;
        }
        *count += 1;
        true
    }

    /// Whether to hint `peer` about `scope` now (not if it was hinted about
    /// it less than [`HINT_COALESCE`] ago).
    pub(crate) fn should_hint(&mut self, peer: &P, scope: SyncScope, now: Instant) -> bool {
        let key = (peer.clone(), scope);
        if let Some(at) = self.hinted.get(&key)
            && now.saturating_duration_since(*at) < HINT_COALESCE
        {
            return false;
        }
        if self.hinted.len() >= MAX_TRACKED {
            self.hinted
                .retain(|_, at| now.saturating_duration_since(*at) < HINT_COALESCE);
            if self.hinted.len() >= MAX_TRACKED {
                self.hinted.clear();
            }
        }
        self.hinted.insert(key, now);
        true
    }

    /// A hint request went out as `request` (its answer is not a session's).
    pub(crate) fn hint_sent(&mut self, request: R) {
        if self.in_flight.len() >= MAX_HINTS_IN_FLIGHT {
            // Answers to forgotten ones are dropped anyway (no session
            // takes a `Noted`); only a failure could end a session early.
            self.in_flight.clear();
        }
        self.in_flight.insert(request);
    }

    /// Whether `request` was a hint (forgotten now: answered or failed).
    pub(crate) fn was_hint(&mut self, request: &R) -> bool {
        self.in_flight.remove(request)
    }

    /// `peer` is gone.
    pub(crate) fn forget_peer(&mut self, peer: &P) {
        self.hints_from.remove(peer);
        self.hinted.retain(|(p, _), _| p != peer);
    }
}

enum Step {
    /// Due now; `true` if the schedule has steps left.
    Due(bool),
    Wait,
}

fn advance(schedule: &mut Schedule, steps: &[Duration], now: Instant) -> Step {
    let Some(delay) = steps.get(schedule.step) else {
        return Step::Due(false);
    };
    if now < schedule.from + *delay {
        return Step::Wait;
    }
    // Steps whose time also passed (a late tick) are folded into this one.
    while steps
        .get(schedule.step + 1)
        .is_some_and(|next| now >= schedule.from + *next)
    {
        schedule.step += 1;
    }
    schedule.step += 1;
    Step::Due(schedule.step < steps.len())
}

fn drop_oldest<K: Ord + Copy, V>(map: &mut BTreeMap<K, V>, since: impl Fn(&V) -> Instant) {
    if let Some(oldest) = map.iter().min_by_key(|(_, v)| since(v)).map(|(k, _)| *k) {
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Triggers = SyncTriggers<u32, u64>;

    fn room(n: u8) -> RoomId {
        RoomId([n; 32])
    }

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn a_followed_room_is_rechecked_at_once_then_at_each_step_then_no_more() {
        let (mut t, t0) = (Triggers::default(), Instant::now());
        t.followed(room(1), t0);
        assert_eq!(t.due(t0), vec![Due::Recheck(room(1))]);
        assert!(t.due(at(t0, 200)).is_empty());
        assert_eq!(t.due(at(t0, 300)), vec![Due::Recheck(room(1))]);
        assert!(t.due(at(t0, 1000)).is_empty());
        assert_eq!(t.due(at(t0, 1200)), vec![Due::Recheck(room(1))]);
        assert!(t.due(at(t0, 3000)).is_empty());
        assert_eq!(t.due(at(t0, 4000)), vec![Due::Recheck(room(1))]);
        assert!(t.due(at(t0, 600_000)).is_empty(), "the schedule ended");
    }

    #[test]
    fn a_late_tick_folds_the_steps_that_passed_into_one() {
        let (mut t, t0) = (Triggers::default(), Instant::now());
        t.followed(room(1), t0);
        assert_eq!(t.due(at(t0, 5000)), vec![Due::Recheck(room(1))]);
        assert!(t.due(at(t0, 6000)).is_empty());
    }

    #[test]
    fn a_sent_message_is_offered_with_backoff_until_held() {
        let (mut t, t0) = (Triggers::default(), Instant::now());
        let offer = Due::Offer {
            room: room(2),
            message: [7; 32],
        };
        t.sent(room(2), [7; 32], t0);
        assert!(t.due(t0).is_empty(), "gossip gets its chance first");
        assert_eq!(t.due(at(t0, 1000)), vec![offer.clone()]);
        assert!(t.due(at(t0, 2000)).is_empty());
        assert_eq!(t.due(at(t0, 3000)), vec![offer.clone()]);
        t.held(&[7; 32]);
        assert!(t.due(at(t0, 60_000)).is_empty(), "held: offered no more");
    }

    #[test]
    fn an_unheld_message_is_offered_a_bounded_number_of_times() {
        let (mut t, t0) = (Triggers::default(), Instant::now());
        t.sent(room(2), [7; 32], t0);
        let offers: usize = (0..200).map(|s| t.due(at(t0, s * 1000)).len()).sum();
        assert_eq!(offers, OFFER_BACKOFF.len());
    }

    #[test]
    fn a_hint_flood_from_one_peer_is_acted_on_only_within_its_budget() {
        let (mut t, t0) = (Triggers::default(), Instant::now());
        let acted = (0..10_000).filter(|_| t.accept_hint(&9, t0)).count();
        assert_eq!(acted, HINTS_PER_WINDOW as usize);
        assert!(t.accept_hint(&10, t0), "another peer has its own budget");
        assert!(t.accept_hint(&9, t0 + HINT_WINDOW), "the next window");
    }

    #[test]
    fn hints_from_more_peers_than_tracked_keep_the_map_bounded() {
        let (mut t, t0) = (Triggers::default(), Instant::now());
        for peer in 0..(MAX_TRACKED as u32 * 2) {
            let _ = t.accept_hint(&peer, t0);
        }
        assert!(t.hints_from.len() <= MAX_TRACKED);
        assert!(t.accept_hint(&1, t0), "a peer counted already still is");
    }

    #[test]
    fn the_same_peer_is_hinted_about_the_same_room_at_most_once_per_interval() {
        let (mut t, t0) = (Triggers::default(), Instant::now());
        let scope = SyncScope::Room(room(3));
        assert!(t.should_hint(&1, scope, t0));
        assert!(!t.should_hint(&1, scope, at(t0, 100)));
        assert!(t.should_hint(&2, scope, at(t0, 100)));
        assert!(t.should_hint(&1, SyncScope::Room(room(4)), at(t0, 100)));
        assert!(t.should_hint(&1, scope, t0 + HINT_COALESCE));
        t.forget_peer(&1);
        assert!(t.should_hint(&1, scope, t0 + HINT_COALESCE));
    }

    #[test]
    fn tracked_rooms_and_messages_stay_bounded_the_oldest_going_first() {
        let (mut t, t0) = (Triggers::default(), Instant::now());
        for n in 0..(MAX_TRACKED + 10) {
            let id = (n as u64).to_le_bytes();
            let mut message = [0; 32];
            message[..8].copy_from_slice(&id);
            t.sent(room(1), message, at(t0, n as u64));
        }
        assert_eq!(t.offers.len(), MAX_TRACKED);
        assert!(!t.offers.contains_key(&[0; 32]), "the oldest went first");
    }

    #[test]
    fn only_requests_sent_as_hints_are_taken_for_hint_answers() {
        let mut t = Triggers::default();
        t.hint_sent(5);
        assert!(!t.was_hint(&6));
        assert!(t.was_hint(&5));
        assert!(!t.was_hint(&5), "answered once");
    }
}
