//! Group commit: answers that wait until what they report is on disk.
//!
//! The node writes a change (a sent message, a new room, a revocation) and
//! hands the answer for it to [`GroupCommit::after_flush`]. A flusher thread
//! makes the store durable and only then delivers every answer that was
//! waiting when the flush began, so answers given while one flush runs share
//! the next one: under load a single `fsync` acknowledges many changes.
//!
//! Ordering is what makes this correct: a change is written before its
//! answer is handed over, and a flush covers every write that completed
//! before it started.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use super::Store;

/// Answers waiting for a flush, at most (beyond that the caller flushes
/// itself: the queue never grows without bound).
const MAX_WAITING: usize = 4096;

/// An answer to deliver once the store is durable: `Err` says why it is not.
pub type Acknowledgement = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Delivers answers only after the writes they report are durable.
pub struct GroupCommit {
    store: Arc<dyn Store>,
    durable: bool,
    /// The flusher thread's queue (`None`: no thread, each answer flushes).
    waiting: Option<SyncSender<Acknowledgement>>,
    /// The flusher thread, joined on drop so that it no longer holds the
    /// store (sled keeps its lock until the last handle is gone).
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("durable", &self.durable)
            .finish()
    }
}

impl GroupCommit {
    /// Starts the flusher thread for `store`. With `durable` false answers
    /// go out at once, before the store is flushed (only for measuring what
    /// durability costs). The thread ends once this value is dropped and
    /// every waiting answer was delivered.
    pub fn start(store: Arc<dyn Store>, durable: bool) -> Self {
        let (waiting, flusher) = if durable {
            let (sender, receiver) = mpsc::sync_channel(MAX_WAITING);
            let flushed = store.clone();
            match std::thread::Builder::new()
                .name("baro-flush".into())
                .spawn(move || flush_loop(flushed.as_ref(), &receiver))
            {
                Ok(thread) => (Some(sender), Some(thread)),
                Err(e) => {
                    // Still durable: every answer then flushes on its own.
                    tracing::warn!(error = %e, "no flusher thread: each answer flushes alone");
                    (None, None)
                }
            }
        } else {
            (None, None)
        };
        GroupCommit {
            store,
            durable,
            waiting,
            flusher,
        }
    }

    /// Delivers `ack` once every write made so far is durable.
    pub fn after_flush(&self, ack: Acknowledgement) {
        let ack = match &self.waiting {
            Some(waiting) => match waiting.try_send(ack) {
                Ok(()) => return,
                Err(TrySendError::Full(ack) | TrySendError::Disconnected(ack)) => ack,
            },
            None => ack,
        };
        ack(self.flush_now());
    }

    /// Makes every write so far durable now (for acknowledgements the caller
    /// sends itself, such as receipts to peers).
    pub fn flush_now(&self) -> Result<(), String> {
        if self.durable {
            flush(self.store.as_ref())
        } else {
            Ok(())
        }
    }
}

impl Drop for GroupCommit {
    /// Delivers every waiting answer, then lets the store go.
    fn drop(&mut self) {
        drop(self.waiting.take());
        if let Some(flusher) = self.flusher.take()
            && flusher.join().is_err()
        {
            tracing::error!("the flusher thread panicked");
        }
    }
}

fn flush(store: &dyn Store) -> Result<(), String> {
    store
        .flush()
        .map_err(|e| format!("could not save to disk: {e}"))
}

fn flush_loop(store: &dyn Store, waiting: &Receiver<Acknowledgement>) {
    while let Ok(first) = waiting.recv() {
        let mut batch = vec![first];
        batch.extend(waiting.try_iter().take(MAX_WAITING));
        let flushed = flush(store);
        if let Err(e) = &flushed {
            tracing::error!(error = %e, answers = batch.len(), "a flush failed");
        }
        for ack in batch {
            ack(flushed.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::store::{Entry, MemoryStore, StoreError};

    /// A store whose flushes are counted and can be held back.
    #[derive(Debug, Default)]
    struct GatedStore {
        inner: MemoryStore,
        flushes: AtomicUsize,
        open: Mutex<bool>,
        opened: Condvar,
    }

    impl GatedStore {
        fn release(&self) {
            *self.open.lock().expect("gate") = true;
            self.opened.notify_all();
        }
    }

    impl Store for GatedStore {
        fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(tree, key)
        }
        fn insert(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
            self.inner.insert(tree, key, value)
        }
        fn remove(&self, tree: &str, key: &[u8]) -> Result<bool, StoreError> {
            self.inner.remove(tree, key)
        }
        fn scan_prefix(&self, t: &str, p: &[u8], l: usize) -> Result<Vec<Entry>, StoreError> {
            self.inner.scan_prefix(t, p, l)
        }
        fn tag(&self, parts: &[&[u8]]) -> Result<[u8; 32], StoreError> {
            self.inner.tag(parts)
        }
        fn schema_version(&self) -> Result<u32, StoreError> {
            self.inner.schema_version()
        }
        fn flush(&self) -> Result<(), StoreError> {
            let mut open = self.open.lock().expect("gate");
            while !*open {
                open = self.opened.wait(open).expect("gate");
            }
            self.flushes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn wipe(&self, notice: Option<&str>) -> Result<(), StoreError> {
            self.inner.wipe(notice)
        }
    }

    fn answer_to(sender: mpsc::Sender<Result<(), String>>) -> Acknowledgement {
        Box::new(move |flushed| {
            let _ = sender.send(flushed);
        })
    }

    #[test]
    fn an_answer_waits_for_the_flush_and_waiting_answers_share_one() {
        let store = Arc::new(GatedStore::default());
        let commit = GroupCommit::start(store.clone(), true);
        let (sender, answers) = mpsc::channel();
        for _ in 0..50 {
            commit.after_flush(answer_to(sender.clone()));
        }
        // The disk has not confirmed anything: nobody is told "done".
        assert!(
            answers.recv_timeout(Duration::from_millis(100)).is_err(),
            "an answer went out before its flush"
        );
        store.release();
        for _ in 0..50 {
            let flushed = answers
                .recv_timeout(Duration::from_secs(10))
                .expect("every answer is delivered after the flush");
            assert_eq!(flushed, Ok(()));
        }
        let flushes = store.flushes.load(Ordering::SeqCst);
        assert!(
            (1..=2).contains(&flushes),
            "50 waiting answers took {flushes} flushes"
        );
    }

    #[test]
    fn without_durability_answers_go_out_at_once() {
        let store = Arc::new(GatedStore::default());
        let commit = GroupCommit::start(store.clone(), false);
        let (sender, answers) = mpsc::channel();
        commit.after_flush(answer_to(sender));
        assert_eq!(answers.try_recv(), Ok(Ok(())));
        assert_eq!(store.flushes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_failed_flush_is_reported_to_the_answer() {
        let store = Arc::new(MemoryStore::new());
        store.wipe(None).expect("wipe");
        let commit = GroupCommit::start(store, true);
        let (sender, answers) = mpsc::channel();
        commit.after_flush(answer_to(sender));
        let flushed = answers
            .recv_timeout(Duration::from_secs(10))
            .expect("answer");
        assert!(flushed.is_err_and(|e| e.contains("could not save to disk")));
    }

    #[test]
    fn dropping_it_delivers_waiting_answers_and_lets_the_store_go() {
        let store = Arc::new(GatedStore::default());
        store.release();
        let commit = GroupCommit::start(store.clone(), true);
        let (sender, answers) = mpsc::channel();
        for _ in 0..10 {
            commit.after_flush(answer_to(sender.clone()));
        }
        drop(commit);
        assert_eq!(answers.try_iter().count(), 10, "every answer delivered");
        assert_eq!(Arc::strong_count(&store), 1, "the flusher let the store go");
    }
}
