//! Which chunk to ask of whom: the downloads under way, the requests in
//! flight, and the peers that served a bad chunk.
//!
//! Sans-IO: peers and request ids are type parameters, time is an input,
//! nothing here sends; the actor sends what [`Fetcher::next`] picks (see
//! `file_transfer`). The rules:
//!
//! - **Any holder, several at once.** A chunk is asked of any peer that may
//!   hold the room (members following it, relays); the peer with fewest
//!   requests in flight first, so a download spreads over every source.
//! - **Bounded.** At most [`MAX_IN_FLIGHT`] requests in all and
//!   [`MAX_PER_PEER`] per peer, at most [`MAX_DOWNLOADS`] downloads; a
//!   response is taken before the next request leaves (backpressure).
//! - **Verified.** A chunk counts only if it hashes to what was asked; a
//!   peer that serves one that does not is asked nothing for [`PENALTY`].
//! - **Resumable.** Chunks already held are never asked for; a peer that
//!   did not hold a chunk is not asked for it again until [`RETRY_AFTER`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::rooms::RoomId;

/// Requests in flight, in all.
pub(crate) const MAX_IN_FLIGHT: usize = 16;
/// Requests in flight to one peer.
pub(crate) const MAX_PER_PEER: usize = 4;
/// Downloads under way at once.
pub(crate) const MAX_DOWNLOADS: usize = 64;
/// How long a peer that did not hold a chunk is left out for it.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a peer that served a bad chunk is asked nothing.
pub(crate) const PENALTY: Duration = Duration::from_secs(600);

/// A chunk to ask a peer for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ask<P> {
    /// Whom to ask.
    pub peer: P,
    /// The download (file id, or the offer's first hash on a relay).
    pub download: [u8; 32],
    /// The chunk's place in it.
    pub index: usize,
    /// The room it is asked under.
    pub room: RoomId,
    /// The chunk's hash.
    pub hash: [u8; 32],
}

/// What a response turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer<P> {
    /// The right chunk: store it, then call [`Fetcher::stored`].
    Good(Ask<P>),
    /// Not the chunk asked for: the peer is penalised.
    Bad(Ask<P>),
    /// Not a request of ours (any more).
    Unknown,
}

#[derive(Debug)]
struct Download<P> {
    room: RoomId,
    hashes: Vec<[u8; 32]>,
    missing: BTreeSet<usize>,
    in_flight: usize,
    /// Peers that did not have a chunk (or failed), by index.
    asked: HashMap<usize, HashSet<P>>,
    asked_since: Instant,
}

/// The downloads and requests of one node.
#[derive(Debug)]
pub(crate) struct Fetcher<P, R> {
    downloads: BTreeMap<[u8; 32], Download<P>>,
    flights: HashMap<R, Ask<P>>,
    per_peer: HashMap<P, usize>,
    penalised: HashMap<P, Instant>,
    /// Where the last round of [`next`](Self::next) stopped.
    cursor: Option<[u8; 32]>,
}

impl<P, R> Default for Fetcher<P, R> {
    fn default() -> Self {
        Fetcher {
            downloads: BTreeMap::new(),
            flights: HashMap::new(),
            per_peer: HashMap::new(),
            penalised: HashMap::new(),
            cursor: None,
        }
    }
}

impl<P: Clone + Eq + Hash + Ord, R: Eq + Hash> Fetcher<P, R> {
    /// Starts (or widens) download `key` of `hashes` for `room`, leaving
    /// out those `held` already. Returns false if there are too many
    /// downloads under way.
    pub fn start(
        &mut self,
        key: [u8; 32],
        room: RoomId,
        hashes: Vec<[u8; 32]>,
        held: impl Fn(&[u8; 32]) -> bool,
        now: Instant,
    ) -> bool {
        if let Some(download) = self.downloads.get(&key) {
            return download.room == room;
        }
        let missing: BTreeSet<usize> = (0..hashes.len()).filter(|&i| !held(&hashes[i])).collect();
        if missing.is_empty() {
            return true;
        }
        if self.downloads.len() >= MAX_DOWNLOADS {
            return false;
        }
        self.downloads.insert(
            key,
            Download {
                room,
                hashes,
                missing,
                in_flight: 0,
                asked: HashMap::new(),
                asked_since: now,
            },
        );
        true
    }

    /// The rooms of the downloads under way.
    pub fn rooms(&self) -> BTreeSet<RoomId> {
        self.downloads.values().map(|d| d.room).collect()
    }

    /// Downloads under way.
    pub fn active(&self) -> usize {
        self.downloads.len()
    }

    /// Requests in flight.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    /// Whether `peer` is being penalised.
    #[cfg(test)]
    pub fn is_penalised(&self, peer: &P, now: Instant) -> bool {
        self.penalised.get(peer).is_some_and(|until| *until > now)
    }

    /// The requests to send now: `peers(room)` lists who may hold a room's
    /// chunks. The caller sends each and reports its id with
    /// [`sent`](Self::sent).
    pub fn next(&mut self, peers: impl Fn(RoomId) -> Vec<P>, now: Instant) -> Vec<Ask<P>> {
        self.penalised.retain(|_, until| *until > now);
        let mut asks = Vec::new();
        let keys: Vec<[u8; 32]> = match self.cursor {
            // Round-robin over downloads, starting after the last served.
            Some(c) => {
                let after = self
                    .downloads
                    .range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded));
                after
                    .map(|(k, _)| *k)
                    .chain(self.downloads.range(..=c).map(|(k, _)| *k))
                    .collect()
            }
            None => self.downloads.keys().copied().collect(),
        };
        for key in keys {
            if self.flights.len() + asks.len() >= MAX_IN_FLIGHT {
                break;
            }
            let Some(download) = self.downloads.get_mut(&key) else {
                continue;
            };
            if now.duration_since(download.asked_since) >= RETRY_AFTER {
                download.asked.clear();
                download.asked_since = now;
            }
            let candidates: Vec<P> = peers(download.room)
                .into_iter()
                .filter(|p| !self.penalised.contains_key(p))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let indices: Vec<usize> = download.missing.iter().copied().collect();
            for index in indices {
                if self.flights.len() + asks.len() >= MAX_IN_FLIGHT {
                    break;
                }
                let asked = download.asked.get(&index);
                let Some(peer) = candidates
                    .iter()
                    .filter(|p| asked.is_none_or(|a| !a.contains(*p)))
                    .filter(|p| self.per_peer.get(*p).copied().unwrap_or(0) < MAX_PER_PEER)
                    .min_by_key(|p| (self.per_peer.get(*p).copied().unwrap_or(0), (*p).clone()))
                    .cloned()
                else {
                    continue;
                };
                download.missing.remove(&index);
                download.in_flight += 1;
                *self.per_peer.entry(peer.clone()).or_default() += 1;
                self.cursor = Some(key);
                asks.push(Ask {
                    peer,
                    download: key,
                    index,
                    room: download.room,
                    hash: download.hashes[index],
                });
            }
        }
        asks
    }

    /// Records the request id `ask` left with.
    pub fn sent(&mut self, id: R, ask: Ask<P>) {
        self.flights.insert(id, ask);
    }

    fn land(&mut self, id: &R) -> Option<Ask<P>> {
        let ask = self.flights.remove(id)?;
        if let Some(n) = self.per_peer.get_mut(&ask.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&ask.peer);
            }
        }
        if let Some(download) = self.downloads.get_mut(&ask.download) {
            download.in_flight -= 1;
        }
        Some(ask)
    }

    /// A chunk arrived for request `id`: checked against its hash.
    pub fn on_chunk(&mut self, id: &R, bytes: &[u8], now: Instant) -> Answer<P> {
        let Some(ask) = self.land(id) else {
            return Answer::Unknown;
        };
        if crate::crypto::chunk_hash(bytes) == ask.hash {
            return Answer::Good(ask);
        }
        self.penalised.insert(ask.peer.clone(), now + PENALTY);
        self.retry(&ask);
        Answer::Bad(ask)
    }

    /// Request `id` got no chunk (not held, refused, failed).
    pub fn on_miss(&mut self, id: &R) -> Option<Ask<P>> {
        let ask = self.land(id)?;
        self.retry(&ask);
        Some(ask)
    }

    /// The chunk could not be kept: it is asked for again later.
    pub fn not_stored(&mut self, ask: &Ask<P>) {
        self.retry(ask);
    }

    fn retry(&mut self, ask: &Ask<P>) {
        if let Some(download) = self.downloads.get_mut(&ask.download) {
            download.missing.insert(ask.index);
            download
                .asked
                .entry(ask.index)
                .or_default()
                .insert(ask.peer.clone());
        }
    }

    /// The chunk of `ask` is stored. Returns true when its download is complete.
    pub fn stored(&mut self, ask: &Ask<P>) -> bool {
        let done = self
            .downloads
            .get(&ask.download)
            .is_some_and(|d| d.missing.is_empty() && d.in_flight == 0);
        if done {
            self.downloads.remove(&ask.download);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: RoomId = RoomId([1; 32]);

    fn hashes(n: u8) -> Vec<[u8; 32]> {
        (0..n).map(|i| crate::crypto::chunk_hash(&[i])).collect()
    }

    #[test]
    fn chunks_spread_over_sources_within_bounds_and_skip_what_is_held() {
        let mut f: Fetcher<u8, u32> = Fetcher::default();
        let now = Instant::now();
        let all = hashes(40);
        let held = all[0];
        assert!(f.start([9; 32], ROOM, all.clone(), |h| *h == held, now));
        let asks = f.next(|_| vec![1, 2, 3], now);
        assert_eq!(asks.len(), 3 * MAX_PER_PEER, "per-peer bound");
        assert!(asks.iter().all(|a| a.index != 0), "held chunk not asked");
        for p in 1..=3 {
            assert_eq!(asks.iter().filter(|a| a.peer == p).count(), MAX_PER_PEER);
        }
        for (i, ask) in asks.into_iter().enumerate() {
            f.sent(i as u32, ask);
        }
        assert!(f.next(|_| vec![1, 2, 3], now).is_empty(), "all peers busy");
        let more = f.next(|_| (1..=9).collect(), now);
        assert_eq!(f.in_flight() + more.len(), MAX_IN_FLIGHT, "total bound");
    }

    #[test]
    fn a_bad_chunk_penalises_its_server_and_is_asked_of_another() {
        let mut f: Fetcher<u8, u32> = Fetcher::default();
        let now = Instant::now();
        let all = hashes(1);
        f.start([9; 32], ROOM, all.clone(), |_| false, now);
        let ask = f.next(|_| vec![1], now).remove(0);
        f.sent(7, ask);
        assert!(matches!(f.on_chunk(&7, b"forged", now), Answer::Bad(_)));
        assert!(f.is_penalised(&1, now));
        assert!(f.next(|_| vec![1], now).is_empty(), "not asked again");
        let ask = f.next(|_| vec![1, 2], now).remove(0);
        assert_eq!(ask.peer, 2);
        f.sent(8, ask);
        let Answer::Good(ask) = f.on_chunk(&8, &[0], now) else {
            panic!("the right chunk is good");
        };
        assert!(f.stored(&ask), "complete");
        assert_eq!(f.active(), 0);
        assert!(!f.is_penalised(&1, now + PENALTY));
    }

    #[test]
    fn a_peer_without_the_chunk_is_asked_again_only_after_a_while() {
        let mut f: Fetcher<u8, u32> = Fetcher::default();
        let now = Instant::now();
        f.start([9; 32], ROOM, hashes(1), |_| false, now);
        let ask = f.next(|_| vec![1], now).remove(0);
        f.sent(1, ask);
        assert!(f.on_miss(&1).is_some());
        assert!(f.next(|_| vec![1], now).is_empty());
        assert_eq!(f.next(|_| vec![1], now + RETRY_AFTER).len(), 1);
    }

    #[test]
    fn a_complete_file_needs_no_download_and_downloads_are_bounded() {
        let mut f: Fetcher<u8, u32> = Fetcher::default();
        let now = Instant::now();
        assert!(f.start([1; 32], ROOM, hashes(3), |_| true, now));
        assert_eq!(f.active(), 0);
        for i in 0..MAX_DOWNLOADS {
            assert!(f.start([i as u8 + 2; 32], ROOM, hashes(1), |_| false, now));
        }
        assert!(!f.start([255; 32], ROOM, hashes(1), |_| false, now));
    }
}
