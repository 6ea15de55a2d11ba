//! Chunks written off the event loop: one writer thread seals and writes
//! the chunks the actor received ([`PendingChunk::write`]), flushes the
//! store once its queue is empty, and only then reports each write back,
//! so the actor counts a chunk held only once it is on disk while it goes
//! on answering the network.
//!
//! - **Bounded.** At most [`MAX_WRITES`] chunks are queued or being
//!   written; [`ChunkWriter::submit`] refuses more (the fetcher counts
//!   writes against its in-flight budget, so it never gets there).
//! - **Every write reported.** Written, failed (an error, never a panic:
//!   a panic inside a write is caught and reported as a failure) — unless
//!   the writer is stopped, which drops what was queued and not begun.
//! - **Stopped cleanly.** [`ChunkWriter::stop`] (and dropping it) lets the
//!   write under way end, drops the rest and joins the thread, so nothing
//!   writes into the store after a wipe and no thread holds it after the
//!   node stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use tokio::sync::mpsc;

use crate::store::{ChunkError, PendingChunk};

/// Chunks queued or being written, at most.
pub(crate) const MAX_WRITES: usize = super::chunk_fetcher::MAX_IN_FLIGHT;

/// A write done (or failed), with the tag it was submitted with.
#[derive(Debug)]
pub(crate) struct Written<T> {
    pub tag: T,
    pub chunk: PendingChunk,
    pub result: Result<(), ChunkError>,
}

struct Job<T> {
    tag: T,
    chunk: PendingChunk,
}

/// The writer thread and its queues.
pub(crate) struct ChunkWriter<T> {
    jobs: Option<SyncSender<Job<T>>>,
    done: mpsc::Receiver<Written<T>>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Submitted and not yet reported.
    in_flight: usize,
}

impl<T> std::fmt::Debug for ChunkWriter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkWriter")
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl<T: Send + 'static> ChunkWriter<T> {
    /// Starts the writer thread.
    pub(crate) fn start() -> std::io::Result<Self> {
        let (jobs, queue) = sync_channel::<Job<T>>(MAX_WRITES);
        let (report, done) = mpsc::channel(MAX_WRITES);
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("baro-chunks".into())
            .spawn(move || write_loop(&queue, &report, &stop))?;
        Ok(ChunkWriter {
            jobs: Some(jobs),
            done,
            stopping,
            thread: Some(thread),
            in_flight: 0,
        })
    }

    /// Queues a chunk to write; gives it back if [`MAX_WRITES`] are
    /// queued or being written already, or the writer stopped.
    pub(crate) fn submit(
        &mut self,
        tag: T,
        chunk: PendingChunk,
    ) -> Result<(), Box<(T, PendingChunk)>> {
        let Some(jobs) = self.jobs.as_ref().filter(|_| self.in_flight < MAX_WRITES) else {
            return Err(Box::new((tag, chunk)));
        };
        match jobs.try_send(Job { tag, chunk }) {
            Ok(()) => {
                self.in_flight += 1;
                Ok(())
            }
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                Err(Box::new((job.tag, job.chunk)))
            }
        }
    }

    /// Chunks submitted and not yet reported.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The next write reported; pending forever while none is in flight
    /// or once the writer stopped.
    pub(crate) async fn written(&mut self) -> Written<T> {
        if self.in_flight > 0
            && let Some(written) = self.done.recv().await
        {
            self.in_flight -= 1;
            return written;
        }
        std::future::pending().await
    }

    /// Lets the write under way end, drops the queued ones and joins the
    /// thread: nothing is written after this returns, and nothing more is
    /// reported.
    pub(crate) fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.jobs = None;
        // The thread never waits on a report the actor will not take.
        self.done.close();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the chunk writer thread failed");
        }
        self.in_flight = 0;
    }
}

impl<T> Drop for ChunkWriter<T> {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.jobs = None;
        self.done.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes what comes, flushing once the queue is empty, then reports that
/// batch; ends when the queue closes or the writer stops.
fn write_loop<T>(
    queue: &Receiver<Job<T>>,
    report: &mpsc::Sender<Written<T>>,
    stopping: &AtomicBool,
) {
    let mut batch: Vec<Written<T>> = Vec::with_capacity(MAX_WRITES);
    while let Ok(first) = queue.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.chunk.write()))
                    .unwrap_or_else(|_| Err(ChunkError::Write("the chunk write panicked".into())));
            batch.push(Written {
                tag: job.tag,
                chunk: job.chunk,
                result,
            });
            next = queue.try_recv().ok();
        }
        // Durable before it is reported held: a crash after the report
        // loses none of it.
        let flushed = batch
            .iter()
            .find(|w| w.result.is_ok())
            .map(|w| w.chunk.flush());
        for mut written in batch.drain(..) {
            if let (Ok(()), Some(Err(e))) = (&written.result, &flushed) {
                written.result = Err(ChunkError::Write(format!(
                    "cannot flush the chunks written: {e}"
                )));
            }
            if report.blocking_send(written).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::RoomId;
    use crate::store::{ChunkStore, MemoryStore, Store};

    fn chunk(n: usize) -> (Vec<u8>, [u8; 32]) {
        let bytes = n.to_be_bytes().repeat(100);
        let hash = crate::crypto::chunk_hash(&bytes);
        (bytes, hash)
    }

    #[tokio::test]
    async fn writes_are_bounded_reported_once_each_and_held_only_then() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut chunks = ChunkStore::open(store.clone()).expect("open");
        let mut writer: ChunkWriter<usize> = ChunkWriter::start().expect("writer");
        let room = RoomId([2; 32]);
        let mut hashes = Vec::new();
        for n in 0..=MAX_WRITES {
            let (bytes, hash) = chunk(n);
            let pending = chunks
                .begin(room, hash, bytes, 1)
                .expect("begin")
                .expect("new");
            match writer.submit(n, pending) {
                Ok(()) => hashes.push(hash),
                Err(refused) => {
                    let (tag, pending) = *refused;
                    assert_eq!(tag, MAX_WRITES, "only past the bound");
                    assert!(
                        chunks
                            .finish(&pending, Err(ChunkError::Write("full".into())))
                            .is_err()
                    );
                }
            }
        }
        assert_eq!(writer.in_flight(), MAX_WRITES);
        assert_eq!(chunks.len(), 0, "nothing held before it is reported");
        let mut seen = Vec::new();
        for _ in 0..MAX_WRITES {
            let written = writer.written().await;
            assert!(written.result.is_ok());
            assert!(chunks.finish(&written.chunk, written.result).expect("kept"));
            seen.push(written.tag);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..MAX_WRITES).collect::<Vec<_>>(), "each once");
        assert_eq!((writer.in_flight(), chunks.len()), (0, MAX_WRITES));
        assert_eq!(chunks.bytes_pending(), 0);
        // Written to the store itself: a reopened chunk store holds them.
        let reopened = ChunkStore::open(store).expect("reopen");
        assert!(hashes.iter().all(|h| reopened.has(h)));
        // A stopped writer takes nothing more.
        writer.stop();
        let (bytes, hash) = chunk(99);
        let pending = chunks
            .begin(room, hash, bytes, 1)
            .expect("begin")
            .expect("new");
        assert!(writer.submit(1, pending).is_err());
    }

    #[tokio::test]
    async fn a_write_that_fails_is_reported_as_an_error() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut chunks = ChunkStore::open(store).expect("open");
        let mut writer: ChunkWriter<u8> = ChunkWriter::start().expect("writer");
        let (_, hash) = chunk(1);
        let pending = chunks
            .begin(RoomId([2; 32]), hash, b"not those bytes".to_vec(), 1)
            .expect("begin")
            .expect("new");
        assert!(writer.submit(7, pending).is_ok());
        let written = writer.written().await;
        assert_eq!(written.tag, 7);
        assert!(matches!(written.result, Err(ChunkError::Mismatch)));
        assert!(chunks.finish(&written.chunk, written.result).is_err());
        assert!(!chunks.has(&hash));
    }
}
