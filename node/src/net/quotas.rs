//! What each author may make this node store (audit H6, M13), as a
//! component with its own state:
//!
//! - a rate per author: a token bucket of items and one of bytes, so a
//!   member flooding valid frames or envelopes is refused past a burst;
//! - a cap on what one author holds here: past it, that author's own
//!   oldest-received items go, never anyone else's;
//! - eviction (relays) in order of local receipt, never of the times
//!   authors claim, so a future-dated item cannot outlive real ones;
//! - on member devices too, a cap on the room envelopes one author has made
//!   this device keep ([`DEVICE_ROOM_BYTES_PER_AUTHOR`]): a member writing
//!   junk into a room loses its own first-received envelopes past it, and
//!   nobody else's; what this device wrote itself is never counted;
//! - a rate per peer of the reconciliation requests this node answers.
//!
//! Pure: time (milliseconds) is an input; no I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::identity::PublicKey;
use crate::sync::{SyncItem, SyncScope};

/// Bytes of room envelopes one author may have a member device keep by
/// default (its history of that author: about 100,000 ordinary messages;
/// `NodeConfig::author_room_mb`).
pub(crate) const DEVICE_ROOM_BYTES_PER_AUTHOR: u64 = 32 << 20;

/// How much, and how fast, authors may make this node store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QuotaLimits {
    /// Items one author may send at once, and per minute after that.
    pub items: Rate,
    /// Bytes one author may send at once, and per minute after that.
    pub bytes: Rate,
    /// Bytes of control frames one author may have held here.
    pub control_bytes_per_author: u64,
    /// Bytes of room envelopes one author may have held here; `None`: no
    /// cap and no tracking.
    pub room_bytes_per_author: Option<u64>,
    /// Reconciliation requests one peer may have answered at once, and per
    /// minute after that (relays, which reconcile every room, are not limited).
    pub reconciles: Rate,
    /// Authors (and peers) whose rates are remembered; past it the one idle
    /// longest is forgotten (its bucket would have refilled anyway).
    pub max_keys: usize,
}

/// A token bucket's size and refill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate {
    /// Most taken at once.
    pub burst: u64,
    /// Refilled per minute.
    pub per_minute: u64,
}

impl QuotaLimits {
    /// A member device: rates and caps per author on control frames and
    /// room envelopes.
    pub(crate) fn device() -> Self {
        QuotaLimits {
            items: Rate {
                burst: 512,
                per_minute: 600,
            },
            bytes: Rate {
                burst: 32 << 20,
                per_minute: 8 << 20,
            },
            control_bytes_per_author: 8 << 20,
            room_bytes_per_author: Some(DEVICE_ROOM_BYTES_PER_AUTHOR),
            reconciles: Rate {
                burst: 256,
                per_minute: 1_200,
            },
            max_keys: 65_536,
        }
    }

    /// A member device keeping at most `per_author` bytes of room
    /// envelopes by one other author (at least 64 KiB).
    pub(crate) fn device_keeping(per_author: u64) -> Self {
        QuotaLimits {
            room_bytes_per_author: Some(per_author.max(64 << 10)),
            ..Self::device()
        }
    }

    /// A relay storing `max_store` bytes: one author holds at most a
    /// sixteenth of it.
    pub(crate) fn relay(max_store: u64) -> Self {
        QuotaLimits {
            room_bytes_per_author: Some((max_store / 16).max(64 << 10)),
            ..Self::device()
        }
    }
}

/// Why an item was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QuotaError {
    /// The author sent more than its rate allows.
    #[error("{author} sends faster than {items} items or {bytes} bytes a minute; try again later")]
    RateExceeded {
        /// Short form of the author's key.
        author: String,
        /// Its item rate.
        items: u64,
        /// Its byte rate.
        bytes: u64,
    },
}

/// Token buckets by key, bounded.
#[derive(Debug)]
pub(crate) struct RateLimiter<K: Ord + Clone> {
    buckets: BTreeMap<K, Bucket>,
    /// Keys by when their bucket was last charged, oldest first.
    by_use: BTreeSet<(u64, K)>,
    max_keys: usize,
}

/// One key's levels, in units of 1/60,000 of a token (a minute is 60,000 ms,
/// so a refill of `per_minute` adds exactly `per_minute` units per ms).
#[derive(Clone, Copy, Debug)]
struct Bucket {
    items: u64,
    bytes: u64,
    last_ms: u64,
}

const UNITS: u64 = 60_000;

impl<K: Ord + Clone> RateLimiter<K> {
    pub(crate) fn new(max_keys: usize) -> Self {
        RateLimiter {
            buckets: BTreeMap::new(),
            by_use: BTreeSet::new(),
            max_keys: max_keys.max(1),
        }
    }

    /// Takes `items` and `bytes` from `key`'s buckets if both hold enough;
    /// `false` (nothing taken) otherwise.
    pub(crate) fn allow(
        &mut self,
        key: &K,
        items: u64,
        bytes: u64,
        limits: (Rate, Rate),
        now_ms: u64,
    ) -> bool {
        let (item_rate, byte_rate) = limits;
        let full = Bucket {
            items: item_rate.burst.saturating_mul(UNITS),
            bytes: byte_rate.burst.saturating_mul(UNITS),
            last_ms: now_ms,
        };
        let mut bucket = match self.buckets.get(key) {
            Some(bucket) => *bucket,
            None => full,
        };
        let elapsed = now_ms.saturating_sub(bucket.last_ms);
        bucket.items = bucket
            .items
            .saturating_add(elapsed.saturating_mul(item_rate.per_minute))
            .min(full.items);
        bucket.bytes = bucket
            .bytes
            .saturating_add(elapsed.saturating_mul(byte_rate.per_minute))
            .min(full.bytes);
        let (item_cost, byte_cost) = (items.saturating_mul(UNITS), bytes.saturating_mul(UNITS));
        let allowed = bucket.items >= item_cost && bucket.bytes >= byte_cost;
        if allowed {
            bucket.items -= item_cost;
            bucket.bytes -= byte_cost;
        }
        let previous = self.buckets.get(key).map(|b| b.last_ms);
        bucket.last_ms = bucket.last_ms.max(now_ms);
        if let Some(last) = previous {
            self.by_use.remove(&(last, key.clone()));
        } else if self.buckets.len() >= self.max_keys
            && let Some((_, idle)) = self.by_use.pop_first()
        {
            self.buckets.remove(&idle);
        }
        self.by_use.insert((bucket.last_ms, key.clone()));
        self.buckets.insert(key.clone(), bucket);
        allowed
    }

    /// Whether [`RateLimiter::allow`] would allow it now (nothing taken).
    pub(crate) fn would_allow(
        &self,
        key: &K,
        items: u64,
        bytes: u64,
        limits: (Rate, Rate),
        now_ms: u64,
    ) -> bool {
        let Some(bucket) = self.buckets.get(key) else {
            return items <= limits.0.burst && bytes <= limits.1.burst;
        };
        let elapsed = now_ms.saturating_sub(bucket.last_ms);
        let level = |held: u64, rate: Rate| {
            held.saturating_add(elapsed.saturating_mul(rate.per_minute))
                .min(rate.burst.saturating_mul(UNITS))
        };
        level(bucket.items, limits.0) >= items.saturating_mul(UNITS)
            && level(bucket.bytes, limits.1) >= bytes.saturating_mul(UNITS)
    }

    /// How many keys are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// One held item's bookkeeping.
#[derive(Clone, Copy, Debug)]
struct Held {
    author: PublicKey,
    len: u64,
    /// When it arrived here, and an arrival counter (ties).
    arrival: (u64, u64),
}

/// An item in order of arrival.
type Arrival = ((u64, u64), SyncScope, SyncItem);

/// What authors may store here, and what goes first.
#[derive(Debug)]
pub(crate) struct Quotas {
    limits: QuotaLimits,
    rates: RateLimiter<PublicKey>,
    reconciles: RateLimiter<PublicKey>,
    held: HashMap<(SyncScope, [u8; 32]), Held>,
    /// Every tracked item, first arrived first.
    by_arrival: BTreeSet<Arrival>,
    /// Per author and kind (control or room): bytes held and items by arrival.
    by_author: BTreeMap<(PublicKey, bool), (u64, BTreeSet<Arrival>)>,
    bytes: u64,
    arrivals: u64,
    /// This device's own key: what it wrote is not counted against anyone.
    exempt: Option<PublicKey>,
}

impl Quotas {
    pub(crate) fn new(limits: QuotaLimits) -> Self {
        Quotas {
            rates: RateLimiter::new(limits.max_keys),
            reconciles: RateLimiter::new(limits.max_keys),
            limits,
            held: HashMap::new(),
            by_arrival: BTreeSet::new(),
            by_author: BTreeMap::new(),
            bytes: 0,
            arrivals: 0,
            exempt: None,
        }
    }

    /// The same, not counting what `own` (this device) wrote.
    pub(crate) fn exempting(mut self, own: PublicKey) -> Self {
        self.exempt = Some(own);
        self
    }

    /// Whether `author` may send one more item of `len` bytes now (nothing
    /// is charged: [`Quotas::charge`] once the item proved valid, so that
    /// items forged in someone's name cannot use up their rate).
    pub(crate) fn within_rate(&self, author: &PublicKey, len: usize, now_ms: u64) -> bool {
        self.rates.would_allow(
            author,
            1,
            len as u64,
            (self.limits.items, self.limits.bytes),
            now_ms,
        )
    }

    /// Charges one item of `len` bytes from `author` to its rate; refused
    /// (nothing charged) past it.
    pub(crate) fn charge(
        &mut self,
        author: &PublicKey,
        len: usize,
        now_ms: u64,
    ) -> Result<(), QuotaError> {
        let limits = (self.limits.items, self.limits.bytes);
        if self.rates.allow(author, 1, len as u64, limits, now_ms) {
            return Ok(());
        }
        Err(QuotaError::RateExceeded {
            author: hex::encode(&author.0[..6]),
            items: self.limits.items.per_minute,
            bytes: self.limits.bytes.per_minute,
        })
    }

    /// Whether a reconciliation request from `peer` is answered now.
    pub(crate) fn allow_reconcile(&mut self, peer: &PublicKey, now_ms: u64) -> bool {
        let unlimited = Rate {
            burst: u64::MAX / UNITS,
            per_minute: 0,
        };
        self.reconciles
            .allow(peer, 1, 0, (self.limits.reconciles, unlimited), now_ms)
    }

    /// Records that `item` of `scope`, `len` bytes by `author`, is stored
    /// here since `received_ms`; returns what must go to keep `author`
    /// within its cap (its own oldest-received items, possibly this one).
    pub(crate) fn hold(
        &mut self,
        scope: SyncScope,
        item: SyncItem,
        author: PublicKey,
        len: usize,
        received_ms: u64,
    ) -> Vec<(SyncScope, SyncItem)> {
        let control = match scope {
            SyncScope::Revocations => return Vec::new(),
            SyncScope::Control => true,
            SyncScope::Room(_) => false,
        };
        let cap = if control {
            self.limits.control_bytes_per_author
        } else {
            match self.limits.room_bytes_per_author {
                Some(cap) => cap,
                None => return Vec::new(),
            }
        };
        if self.held.contains_key(&(scope, item.1)) || self.exempt == Some(author) {
            return Vec::new();
        }
        self.arrivals = self.arrivals.saturating_add(1);
        let arrival = (received_ms, self.arrivals);
        let len = len as u64;
        self.held.insert(
            (scope, item.1),
            Held {
                author,
                len,
                arrival,
            },
        );
        self.by_arrival.insert((arrival, scope, item));
        let (bytes, items) = self.by_author.entry((author, control)).or_default();
        *bytes = bytes.saturating_add(len);
        items.insert((arrival, scope, item));
        self.bytes = self.bytes.saturating_add(len);
        let mut gone = Vec::new();
        while let Some((bytes, items)) = self.by_author.get(&(author, control))
            && *bytes > cap
        {
            let Some(&(_, scope, item)) = items.first() else {
                break;
            };
            self.release(scope, item);
            gone.push((scope, item));
        }
        gone
    }

    /// Forgets an item (evicted or removed elsewhere).
    pub(crate) fn release(&mut self, scope: SyncScope, item: SyncItem) {
        let Some(held) = self.held.remove(&(scope, item.1)) else {
            return;
        };
        let entry = (held.arrival, scope, item);
        self.by_arrival.remove(&entry);
        let key = (held.author, scope == SyncScope::Control);
        if let Some((bytes, items)) = self.by_author.get_mut(&key) {
            *bytes = bytes.saturating_sub(held.len);
            items.remove(&entry);
            if items.is_empty() {
                self.by_author.remove(&key);
            }
        }
        self.bytes = self.bytes.saturating_sub(held.len);
    }

    /// What a relay drops, first received first, so that nothing tracked
    /// arrived before `received_after_ms` and at most `max_bytes` remain
    /// (counting the `other_bytes` held outside this bookkeeping).
    pub(crate) fn evict(
        &mut self,
        received_after_ms: u64,
        max_bytes: u64,
        other_bytes: u64,
    ) -> Vec<(SyncScope, SyncItem)> {
        let mut gone = Vec::new();
        while let Some(&((received, _), scope, item)) = self.by_arrival.first() {
            let over = self.bytes.saturating_add(other_bytes) > max_bytes;
            if received >= received_after_ms && !over {
                break;
            }
            self.release(scope, item);
            gone.push((scope, item));
        }
        gone
    }

    /// Bytes of the items tracked here.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Authors whose rate is remembered.
    #[cfg(test)]
    fn authors(&self) -> usize {
        self.rates.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::RoomId;

    const MIN: u64 = 60_000;

    fn author(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    fn id(n: u32) -> [u8; 32] {
        *blake3::hash(&n.to_le_bytes()).as_bytes()
    }

    fn small() -> QuotaLimits {
        QuotaLimits {
            items: Rate {
                burst: 10,
                per_minute: 60,
            },
            bytes: Rate {
                burst: 100_000,
                per_minute: 60_000,
            },
            control_bytes_per_author: 10_000,
            room_bytes_per_author: Some(5_000),
            reconciles: Rate {
                burst: 5,
                per_minute: 60,
            },
            max_keys: 4,
        }
    }

    #[test]
    fn a_member_flooding_frames_is_refused_past_its_burst_and_refilled_over_time() {
        let mut quotas = Quotas::new(small());
        let mallory = author(1);
        let accepted = (0..1_000)
            .filter(|_| quotas.charge(&mallory, 100, 0).is_ok())
            .count();
        assert_eq!(accepted, 10, "the burst, then nothing");
        assert!(!quotas.within_rate(&mallory, 100, 0));
        assert!(quotas.within_rate(&mallory, 100, 1_000));
        assert!(quotas.within_rate(&author(3), 100, 0), "a new author");
        // Someone else is not slowed down by it.
        assert!(quotas.charge(&author(2), 100, 0).is_ok());
        // One item a second comes back.
        assert!(quotas.charge(&mallory, 100, 999).is_err());
        assert!(quotas.charge(&mallory, 100, 1_000).is_ok());
        assert!(quotas.charge(&mallory, 100, 1_001).is_err());
        // After a long pause, at most a burst again.
        let later = (0..100)
            .filter(|_| quotas.charge(&mallory, 100, 10 * MIN).is_ok())
            .count();
        assert_eq!(later, 10);
    }

    #[test]
    fn large_items_are_limited_by_bytes() {
        let mut quotas = Quotas::new(small());
        let mallory = author(1);
        assert!(quotas.charge(&mallory, 60_000, 0).is_ok());
        assert!(
            quotas.charge(&mallory, 60_000, 0).is_err(),
            "over the byte burst"
        );
        // A second refills 1,000 bytes.
        assert!(quotas.charge(&mallory, 40_000, 0).is_ok());
        assert!(quotas.charge(&mallory, 1_000, 0).is_err());
        assert!(quotas.charge(&mallory, 1_000, 1_000).is_ok());
    }

    #[test]
    fn a_peer_flooding_reconcile_requests_is_answered_only_at_its_rate() {
        let mut quotas = Quotas::new(small());
        let mallory = author(1);
        let answered = (0..10_000)
            .filter(|_| quotas.allow_reconcile(&mallory, 0))
            .count();
        assert_eq!(answered, 5);
        assert!(quotas.allow_reconcile(&author(2), 0), "others are answered");
        assert!(quotas.allow_reconcile(&mallory, 1_000));
        assert!(!quotas.allow_reconcile(&mallory, 1_000));
    }

    #[test]
    fn fresh_keys_cannot_grow_the_rate_table() {
        let mut quotas = Quotas::new(small());
        for n in 0..200u8 {
            let _ = quotas.charge(&author(n), 1, u64::from(n));
        }
        assert_eq!(quotas.authors(), 4);
    }

    #[test]
    fn an_author_over_its_cap_loses_its_own_oldest_items_not_others() {
        let mut quotas = Quotas::new(small());
        let (kim, mallory) = (author(1), author(2));
        let room = SyncScope::Room(RoomId([7; 32]));
        assert!(quotas.hold(room, (10, id(0)), kim, 1_000, 10).is_empty());
        let mut gone = Vec::new();
        for n in 1..=20u32 {
            // Future-dated by their author: far ahead of when they arrive.
            let item = (u64::MAX - u64::from(n), id(n));
            gone.extend(quotas.hold(room, item, mallory, 1_000, 20 + u64::from(n)));
        }
        assert_eq!(gone.len(), 15, "mallory keeps 5,000 bytes");
        assert!(gone.iter().all(|(_, (_, i))| *i != id(0)), "kim's stays");
        assert_eq!(gone[0].1.1, id(1), "mallory's first-received goes first");
        assert_eq!(quotas.bytes(), 6_000);
        // Control frames have their own cap.
        let mut gone = Vec::new();
        for n in 100..120u32 {
            gone.extend(quotas.hold(SyncScope::Control, (0, id(n)), mallory, 1_000, 100));
        }
        assert_eq!(gone.len(), 10);
    }

    #[test]
    fn future_dated_junk_neither_evicts_a_legitimate_item_nor_outlives_retention() {
        // A relay keeping 10,000 bytes, at most 5,000 of them by one author.
        let mut quotas = Quotas::new(small());
        let (max_store, retention) = (10_000, 30 * MIN);
        let room = SyncScope::Room(RoomId([7; 32]));
        let genuine = (1_000, id(0));
        assert!(
            quotas
                .hold(room, genuine, author(1), 1_000, 1_000)
                .is_empty()
        );
        // Mallory's junk claims to be from far in the future, a lot of it.
        let mut gone = Vec::new();
        for n in 1..=100u32 {
            let junk = (u64::MAX - u64::from(n), id(n));
            gone.extend(quotas.hold(room, junk, author(2), 1_000, 2_000 + u64::from(n)));
            gone.extend(quotas.evict(2_000u64.saturating_sub(retention), max_store, 0));
        }
        assert_eq!(gone.len(), 95, "only mallory's own went");
        assert!(!gone.contains(&(room, genuine)));
        // Later, what arrived before the retention period goes, whatever
        // time it claims; what arrived since stays.
        let now = 40 * MIN;
        let fresh = (now, id(999));
        quotas.hold(room, fresh, author(1), 1_000, now);
        let gone = quotas.evict(now - retention, max_store, 0);
        assert_eq!(gone.len(), 6, "the genuine old item and mallory's five");
        assert_eq!(quotas.bytes(), 1_000);
        assert!(quotas.evict(now - retention, max_store, 0).is_empty());
    }

    #[test]
    fn over_quota_the_first_received_goes_first_whatever_time_it_claims() {
        let mut quotas = Quotas::new(QuotaLimits {
            room_bytes_per_author: Some(u64::MAX),
            ..small()
        });
        let room = SyncScope::Room(RoomId([7; 32]));
        // Future-dated, but received first.
        let junk = (u64::MAX, id(1));
        quotas.hold(room, junk, author(2), 1_000, 1_000);
        let genuine = (2_000, id(2));
        quotas.hold(room, genuine, author(1), 1_000, 2_000);
        assert_eq!(quotas.evict(0, 1_000, 0), vec![(room, junk)]);
        // Bytes held outside this bookkeeping count towards the store.
        assert_eq!(quotas.evict(0, 1_500, 600), vec![(room, genuine)]);
    }

    #[test]
    fn a_member_flooding_a_device_s_rooms_loses_only_its_own_first_received() {
        let me = author(9);
        let mut quotas = Quotas::new(QuotaLimits::device()).exempting(me);
        let (kim, mallory) = (author(1), author(2));
        let room = SyncScope::Room(RoomId([7; 32]));
        let other_room = SyncScope::Room(RoomId([8; 32]));
        assert!(quotas.hold(room, (1, id(0)), kim, 1_000, 1).is_empty());
        // This device's own messages are never counted, however many.
        for n in 1..=100u32 {
            assert!(quotas.hold(room, (2, id(n)), me, 1 << 20, 2).is_empty());
        }
        // Mallory writes 64 MiB of valid junk in two rooms, future-dated.
        const JUNK: usize = 60_000;
        let mut gone = Vec::new();
        for n in 1_000..1_000 + (64 << 20) / JUNK as u32 {
            let target = if n % 2 == 0 { room } else { other_room };
            let item = (u64::MAX - u64::from(n), id(n));
            gone.extend(quotas.hold(target, item, mallory, JUNK, 10 + u64::from(n)));
        }
        // She keeps at most her cap here; what went is hers, first received first.
        let kept = (64u64 << 20) / JUNK as u64 - gone.len() as u64;
        assert!(kept * JUNK as u64 <= DEVICE_ROOM_BYTES_PER_AUTHOR);
        assert!(kept * JUNK as u64 > DEVICE_ROOM_BYTES_PER_AUTHOR - JUNK as u64);
        assert_eq!(gone[0].1.1, id(1_000));
        assert!(gone.iter().all(|(_, (_, i))| *i != id(0)), "kim's stays");
        assert_eq!(quotas.bytes(), 1_000 + kept * JUNK as u64);
        // Revocations are never counted.
        assert!(
            quotas
                .hold(SyncScope::Revocations, (1, id(5)), mallory, 1_000, 0)
                .is_empty()
        );
    }
}
