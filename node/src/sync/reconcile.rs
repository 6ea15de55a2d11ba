//! Range-based set reconciliation (negentropy) over `(timestamp, id)` items.
//!
//! The initiator sends a fingerprint of its whole set; the responder splits
//! ranges whose fingerprints differ and answers with fingerprints or id lists;
//! after a few rounds the initiator knows which ids only it has and which only
//! the other side has. The bytes exchanged grow with the difference, not with
//! the size of the sets: two equal sets agree in one round of a few dozen bytes.
//!
//! Pure: no I/O; the caller carries the messages.

use negentropy::{Id, Negentropy, NegentropyStorageVector};

/// Largest reconciliation message either side produces or accepts; bigger
/// differences take more rounds.
pub const MAX_RECONCILE_MESSAGE: usize = 60 * 1024;

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
        self.need.extend(need.into_iter().map(Id::to_bytes));
        match next {
            Some(message) => {
                self.rounds += 1;
                Ok(Step::Continue(message))
            }
            None => Ok(Step::Done {
                have: std::mem::take(&mut self.have),
                need: std::mem::take(&mut self.need),
            }),
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
