//! Range-based set reconciliation (negentropy) over `(timestamp, id)` items.
//!
//! The initiator sends a fingerprint of its whole set; the responder splits
//! ranges whose fingerprints differ and answers with fingerprints or id lists;
//! after a few rounds the initiator knows which ids only it has and which only
//! the other side has. The bytes exchanged grow with the difference, not with
//! the size of the sets: two equal sets agree in one round of a few dozen bytes.
//!
//! Pure: no I/O; the caller carries the messages.

use std::collections::BTreeMap;

use negentropy::{Id, Negentropy, NegentropyStorageBase, NegentropyStorageVector};

use super::SyncScope;

/// Largest reconciliation message either side produces or accepts; bigger
/// differences take more rounds.
pub const MAX_RECONCILE_MESSAGE: usize = 60 * 1024;

/// Most rounds one reconciliation may take: a responder that keeps
/// answering past it (mismatched fingerprints forever) ends the session. An
/// honest one needs about one round per 1,900 missing ids, so this covers
/// [`MAX_NEED`] with room to spare.
pub const MAX_ROUNDS: usize = 128;

/// Most ids one reconciliation reports missing: past it the initiator stops
/// early with what it has (the next session fetches the rest), so a
/// responder inventing ids cannot grow the list without end.
pub const MAX_NEED: usize = 100_000;

/// One element of a reconciled set: a timestamp (ms) and a 32-byte id.
pub type SyncItem = (u64, [u8; 32]);

/// Why reconciliation failed (a malformed or hostile message).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("set reconciliation failed: {0}")]
pub struct SyncError(String);

fn sync_error(e: negentropy::Error) -> SyncError {
    SyncError(e.to_string())
}

fn storage(
    items: impl IntoIterator<Item = SyncItem>,
) -> Result<NegentropyStorageVector, SyncError> {
    let mut storage = NegentropyStorageVector::new();
    for (timestamp, id) in items {
        storage
            .insert(timestamp, Id::from_byte_array(id))
            .map_err(sync_error)?;
    }
    storage.seal().map_err(sync_error)?;
    Ok(storage)
}

/// Runs `f`, turning a panic inside the reconciliation library (on input it
/// did not expect) into an error: network input must never crash the node.
fn guarded<T>(f: impl FnOnce() -> Result<T, SyncError>) -> Result<T, SyncError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(SyncError("malformed reconciliation message".into())))
}

fn checked(message: &[u8]) -> Result<(), SyncError> {
    if message.len() > MAX_RECONCILE_MESSAGE + 1024 {
        return Err(SyncError(format!(
            "message of {} bytes is over the {MAX_RECONCILE_MESSAGE}-byte limit",
            message.len()
        )));
    }
    Ok(())
}

/// The initiating side of one reconciliation.
#[derive(Debug)]
pub struct Reconciler {
    inner: Negentropy<'static, NegentropyStorageVector>,
    have: Vec<[u8; 32]>,
    need: Vec<[u8; 32]>,
    rounds: usize,
}

/// What the initiator does after a reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this message and wait for the next reply.
    Continue(Vec<u8>),
    /// Done: the ids only this side has, and the ids only the other side has.
    Done {
        /// Ids only this side has.
        have: Vec<[u8; 32]>,
        /// Ids only the other side has (to fetch).
        need: Vec<[u8; 32]>,
    },
}

impl Reconciler {
    /// Starts reconciling `items`; returns the first message to send.
    pub fn initiate(
        items: impl IntoIterator<Item = SyncItem>,
    ) -> Result<(Reconciler, Vec<u8>), SyncError> {
        let storage = storage(items)?;
        let mut inner =
            Negentropy::owned(storage, MAX_RECONCILE_MESSAGE as u64).map_err(sync_error)?;
        let first = guarded(|| inner.initiate().map_err(sync_error))?;
        Ok((
            Reconciler {
                inner,
                have: Vec::new(),
                need: Vec::new(),
                rounds: 1,
            },
            first,
        ))
    }

    /// Takes the responder's reply.
    pub fn step(&mut self, reply: &[u8]) -> Result<Step, SyncError> {
        checked(reply)?;
        let (mut have, mut need) = (Vec::new(), Vec::new());
        let next = guarded(|| {
            self.inner
                .reconcile_with_ids(reply, &mut have, &mut need)
                .map_err(sync_error)
        })?;
        self.have.extend(have.into_iter().map(Id::to_bytes));
        let room = MAX_NEED.saturating_sub(self.need.len());
        let full = need.len() >= room;
        self.need
            .extend(need.into_iter().take(room).map(Id::to_bytes));
        match next {
            Some(_) if full => Ok(self.done()),
            Some(_) if self.rounds >= MAX_ROUNDS => Err(SyncError(format!(
                "the peer kept reconciliation going past {MAX_ROUNDS} rounds"
            ))),
            Some(message) => {
                self.rounds += 1;
                Ok(Step::Continue(message))
            }
            None => Ok(self.done()),
        }
    }

    fn done(&mut self) -> Step {
        Step::Done {
            have: std::mem::take(&mut self.have),
            need: std::mem::take(&mut self.need),
        }
    }

    /// Round trips so far.
    pub fn rounds(&self) -> usize {
        self.rounds
    }
}

/// The responding side: answers one message against `items` (stateless
/// between rounds, so a responder keeps nothing per peer).
pub fn respond(
    items: impl IntoIterator<Item = SyncItem>,
    message: &[u8],
) -> Result<Vec<u8>, SyncError> {
    checked(message)?;
    let storage = storage(items)?;
    let mut inner = Negentropy::owned(storage, MAX_RECONCILE_MESSAGE as u64).map_err(sync_error)?;
    guarded(|| inner.reconcile(message).map_err(sync_error))
}

/// The responding side with each set prepared once: a sealed storage per
/// scope, built on the first request for it and kept until the set changes
/// ([`ResponderCache::invalidate`]), so a flood of requests costs a lookup
/// each, not a copy and sort of the whole set. Bounded by the items kept:
/// past [`ResponderCache::new`]'s limit the least recently used sets go.
pub struct ResponderCache {
    sets: BTreeMap<SyncScope, Prepared>,
    max_items: usize,
    items: usize,
    uses: u64,
    builds: u64,
}

struct Prepared {
    storage: NegentropyStorageVector,
    items: usize,
    last_use: u64,
}

impl std::fmt::Debug for ResponderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponderCache")
            .field("sets", &self.sets.len())
            .field("items", &self.items)
            .field("builds", &self.builds)
            .finish()
    }
}

impl ResponderCache {
    /// A cache keeping at most `max_items` items over all its sets (a set
    /// larger than that is built for each request and not kept).
    pub fn new(max_items: usize) -> Self {
        ResponderCache {
            sets: BTreeMap::new(),
            max_items,
            items: 0,
            uses: 0,
            builds: 0,
        }
    }

    /// `scope` changed: its prepared set is dropped.
    pub fn invalidate(&mut self, scope: SyncScope) {
        if let Some(gone) = self.sets.remove(&scope) {
            self.items = self.items.saturating_sub(gone.items);
        }
    }

    /// Everything changed.
    pub fn clear(&mut self) {
        self.sets.clear();
        self.items = 0;
    }

    /// How many times a set was built (each miss costs one).
    pub fn builds(&self) -> u64 {
        self.builds
    }

    /// Answers `message` for `scope`; `items` (the set, in order) is read
    /// only when the set is not prepared yet.
    pub fn respond<I: IntoIterator<Item = SyncItem>>(
        &mut self,
        scope: SyncScope,
        items: impl FnOnce() -> I,
        message: &[u8],
    ) -> Result<Vec<u8>, SyncError> {
        checked(message)?;
        self.uses = self.uses.saturating_add(1);
        if !self.sets.contains_key(&scope) {
            let storage = storage(items())?;
            self.builds = self.builds.saturating_add(1);
            let count = storage.size().map_err(sync_error)?;
            if count > self.max_items {
                let mut inner =
                    Negentropy::owned(storage, MAX_RECONCILE_MESSAGE as u64).map_err(sync_error)?;
                return guarded(|| inner.reconcile(message).map_err(sync_error));
            }
            self.make_room(count);
            self.items = self.items.saturating_add(count);
            self.sets.insert(
                scope,
                Prepared {
                    storage,
                    items: count,
                    last_use: 0,
                },
            );
        }
        let uses = self.uses;
        let prepared = self
            .sets
            .get_mut(&scope)
            .ok_or_else(|| SyncError("prepared set vanished".into()))?;
        prepared.last_use = uses;
        let mut inner = Negentropy::borrowed(&prepared.storage, MAX_RECONCILE_MESSAGE as u64)
            .map_err(sync_error)?;
        guarded(|| inner.reconcile(message).map_err(sync_error))
    }

    /// Drops the least recently used sets until `count` more items fit.
    fn make_room(&mut self, count: usize) {
        while self.items.saturating_add(count) > self.max_items {
            let Some(oldest) = self
                .sets
                .iter()
                .min_by_key(|(_, prepared)| prepared.last_use)
                .map(|(scope, _)| *scope)
            else {
                return;
            };
            self.invalidate(oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u64) -> SyncItem {
        (n * 10, *blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    /// Runs a whole reconciliation; returns (have, need, bytes both ways, rounds).
    fn reconcile(
        mine: &[SyncItem],
        theirs: &[SyncItem],
    ) -> (Vec<[u8; 32]>, Vec<[u8; 32]>, usize, usize) {
        let (mut r, mut message) = Reconciler::initiate(mine.iter().copied()).expect("initiate");
        let mut bytes = message.len();
        loop {
            let reply = respond(theirs.iter().copied(), &message).expect("respond");
            bytes += reply.len();
            match r.step(&reply).expect("step") {
                Step::Continue(next) => {
                    bytes += next.len();
                    message = next;
                }
                Step::Done { mut have, mut need } => {
                    have.sort();
                    need.sort();
                    return (have, need, bytes, r.rounds());
                }
            }
        }
    }

    #[test]
    fn equal_sets_agree_in_one_round_of_few_bytes() {
        let items: Vec<SyncItem> = (0..10_000).map(item).collect();
        let (have, need, bytes, rounds) = reconcile(&items, &items);
        assert!(have.is_empty() && need.is_empty());
        assert_eq!(rounds, 1);
        assert!(bytes < 512, "{bytes} bytes to confirm 10,000 equal items");
    }

    #[test]
    fn each_side_learns_exactly_what_it_lacks() {
        let all: Vec<SyncItem> = (0..5_000).map(item).collect();
        let mine: Vec<SyncItem> = all.iter().copied().filter(|(t, _)| t % 70 != 0).collect();
        let theirs: Vec<SyncItem> = all.iter().copied().filter(|(t, _)| t % 110 != 0).collect();
        let (have, need, _, _) = reconcile(&mine, &theirs);
        let mut expect_need: Vec<[u8; 32]> = all
            .iter()
            .filter(|(t, _)| t % 70 == 0 && t % 110 != 0)
            .map(|(_, id)| *id)
            .collect();
        let mut expect_have: Vec<[u8; 32]> = all
            .iter()
            .filter(|(t, _)| t % 110 == 0 && t % 70 != 0)
            .map(|(_, id)| *id)
            .collect();
        expect_need.sort();
        expect_have.sort();
        assert_eq!(need, expect_need);
        assert_eq!(have, expect_have);
    }

    #[test]
    fn missing_recent_messages_cost_about_their_ids() {
        // The usual case: a device was offline while the others went on.
        let theirs: Vec<SyncItem> = (0..10_200).map(item).collect();
        let (_, need, bytes, rounds) = reconcile(&theirs[..10_000], &theirs);
        assert_eq!(need.len(), 200);
        let ids = 200 * 32;
        assert!(bytes < ids * 2 + 4096, "{bytes} bytes for {ids} id bytes");
        assert!(rounds <= 4, "{rounds} rounds");
    }

    #[test]
    fn empty_side_needs_everything() {
        let theirs: Vec<SyncItem> = (0..300).map(item).collect();
        let (have, need, _, _) = reconcile(&[], &theirs);
        assert!(have.is_empty());
        assert_eq!(need.len(), 300);
    }

    #[test]
    fn garbage_messages_are_errors_not_panics() {
        let items: Vec<SyncItem> = (0..100).map(item).collect();
        let (mut r, first) = Reconciler::initiate(items.iter().copied()).expect("initiate");
        for garbage in [
            vec![],
            vec![0x61],
            vec![0x62, 1, 2, 3],
            vec![
                0x61, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            first[..first.len() / 2].to_vec(),
            vec![0u8; MAX_RECONCILE_MESSAGE + 2048],
        ] {
            let _ = respond(items.iter().copied(), &garbage);
            let _ = r.step(&garbage);
        }
    }

    /// A hostile responder: whatever it is asked, it repeats its answer to
    /// the first message, computed over a large set of invented ids.
    fn hostile_session(mine: usize, invented: usize) -> Result<(usize, usize), SyncError> {
        let items: Vec<SyncItem> = (0..mine as u64).map(item).collect();
        let fake: Vec<SyncItem> = (0..invented as u64)
            .map(|n| {
                (
                    n * 10 + 5,
                    *blake3::hash(&((n + 1) << 40).to_le_bytes()).as_bytes(),
                )
            })
            .collect();
        let (mut r, first) = Reconciler::initiate(items).expect("initiate");
        let reply = respond(fake, &first).expect("respond");
        loop {
            match r.step(&reply)? {
                Step::Continue(_) => continue,
                Step::Done { need, .. } => return Ok((need.len(), r.rounds())),
            }
        }
    }

    #[test]
    fn a_responder_that_never_agrees_cannot_keep_the_session_going() {
        // Its ranges are large, so it answers with fingerprints only: they
        // never match, and without the cap the initiator would go on forever.
        match hostile_session(2_000, 200_000) {
            Err(e) => assert!(e.to_string().contains("rounds"), "{e}"),
            Ok(done) => panic!("the session ended by itself: {done:?}"),
        }
    }

    #[test]
    fn a_responder_inventing_ids_cannot_grow_the_need_list_past_its_cap() {
        let (need, rounds) = match hostile_session(0, 400_000) {
            Ok(done) => done,
            Err(e) => panic!("expected an early end with what was learned: {e}"),
        };
        assert_eq!(need, MAX_NEED);
        assert!(rounds <= MAX_ROUNDS, "{rounds} rounds");
    }

    #[test]
    fn a_flood_of_reconcile_requests_prepares_the_set_once() {
        let items: Vec<SyncItem> = (0..20_000).map(item).collect();
        let scope = SyncScope::Control;
        let mut cache = ResponderCache::new(1_000_000);
        let (_, first) = Reconciler::initiate(items[..19_000].iter().copied()).expect("initiate");
        let uncached = respond(items.iter().copied(), &first).expect("respond");
        for _ in 0..1_000 {
            let answer = cache
                .respond(scope, || items.iter().copied(), &first)
                .expect("respond");
            assert_eq!(answer, uncached);
        }
        assert_eq!(cache.builds(), 1, "one build for a thousand requests");
        // An insert invalidates the set: the next answer sees it.
        cache.invalidate(scope);
        let more: Vec<SyncItem> = (0..20_001).map(item).collect();
        let answer = cache
            .respond(scope, || more.iter().copied(), &first)
            .expect("respond");
        assert_eq!(
            answer,
            respond(more.iter().copied(), &first).expect("respond")
        );
        assert_eq!(cache.builds(), 2);
    }

    /// Measures what a flood of requests costs with and without the cache
    /// (`cargo test --release -p baro-node --lib measure_answers -- --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn measure_answers_to_a_flood_of_requests() {
        let items: Vec<SyncItem> = (0..100_000).map(item).collect();
        for (case, theirs) in [("equal sets", 100_000), ("1,000 missing", 99_000)] {
            let (_, first) =
                Reconciler::initiate(items[..theirs].iter().copied()).expect("initiate");
            let requests = 200;
            let started = std::time::Instant::now();
            for _ in 0..requests {
                respond(items.iter().copied(), &first).expect("respond");
            }
            let rebuilt = started.elapsed() / requests;
            let mut cache = ResponderCache::new(1_000_000);
            let started = std::time::Instant::now();
            for _ in 0..requests {
                cache
                    .respond(SyncScope::Control, || items.iter().copied(), &first)
                    .expect("respond");
            }
            let cached = started.elapsed() / requests;
            println!("100,000 items, {case}: {rebuilt:?} an answer rebuilt, {cached:?} cached");
        }
    }

    #[test]
    fn the_responder_cache_keeps_at_most_its_item_limit() {
        let items: Vec<SyncItem> = (0..1_000).map(item).collect();
        let mut cache = ResponderCache::new(2_500);
        let (_, first) = Reconciler::initiate(Vec::new()).expect("initiate");
        for n in 0..10u8 {
            let scope = SyncScope::Room(crate::rooms::RoomId([n; 32]));
            cache
                .respond(scope, || items.iter().copied(), &first)
                .expect("respond");
            assert!(cache.items <= 2_500, "{} items kept", cache.items);
        }
        assert_eq!(cache.sets.len(), 2);
        // A set bigger than the whole cache is answered, not kept.
        let huge: Vec<SyncItem> = (0..3_000).map(item).collect();
        cache
            .respond(SyncScope::Control, || huge.iter().copied(), &first)
            .expect("respond");
        assert!(!cache.sets.contains_key(&SyncScope::Control));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let items: Vec<SyncItem> = (0..50).map(item).collect();
            let _ = respond(items.iter().copied(), &bytes);
            let mut with_version = vec![0x61];
            with_version.extend(&bytes);
            let _ = respond(items.iter().copied(), &with_version);
            let (mut r, _) = Reconciler::initiate(items.iter().copied()).expect("initiate");
            let _ = r.step(&with_version);
        }
    }
}
