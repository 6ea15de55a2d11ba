//! What "acknowledged means durable" costs: sequential sends over the
//! control API, each answered `sent` only once on disk, side by side in one
//! run with the same node answering before the flush (durability off), and
//! with the pieces of a send measured alone:
//!
//! - `status round trip`: a control socket request the actor answers from
//!   memory (connect, JSON line, actor queue, answer): the floor of any request;
//! - `sled insert + flush`: one small sealed record written and flushed on
//!   this disk (the fsync a durable answer waits for);
//! - `send, durability off` and `send, durable`: `baro send`'s request;
//! - `8 clients, durable`: eight clients sending at once, to show group
//!   commit (flushes per answer below 1).
//!
//! The node is a real one (sled in a temporary directory, the control socket
//! server `baro run` uses) on the in-memory transport, alone, so every
//! message waits in its outbox as on a device with no network.
//!
//! Run: `cargo bench -p baro-node --bench durable_send [-- SENDS]` (default
//! 2,000 sends per row). Compare rows within one run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use baro_node::api::{self, Request, Response};
use baro_node::net::TransportKind;
use baro_node::store::{Entry, Home, SledStore, Store, StoreError, Unlock};
use baro_node::testing::{TestAgency, memory_config};
use baro_node::{NodeBuilder, NodeConfig};
use tokio_util::sync::CancellationToken;

const ROOM: &str = "MOIS/Digital Government Bureau";

/// The sled store, counting flushes.
#[derive(Debug)]
struct Counted {
    inner: SledStore,
    flushes: AtomicU64,
}

impl Store for Counted {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(tree, key)
    }
    fn insert(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.inner.insert(tree, key, value)
    }
    fn remove(&self, tree: &str, key: &[u8]) -> Result<bool, StoreError> {
        self.inner.remove(tree, key)
    }
    fn scan_prefix(
        &self,
        tree: &str,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.scan_prefix(tree, prefix, limit)
    }
    fn tag(&self, parts: &[&[u8]]) -> Result<[u8; 32], StoreError> {
        self.inner.tag(parts)
    }
    fn schema_version(&self) -> Result<u32, StoreError> {
        self.inner.schema_version()
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.inner.flush()
    }
    fn wipe(&self, notice: Option<&str>) -> Result<(), StoreError> {
        self.inner.wipe(notice)
    }
}

/// A running node with its control socket in `dir`.
struct Running {
    runtime: tokio::runtime::Runtime,
    shutdown: CancellationToken,
    socket_dir: PathBuf,
    store: Arc<Counted>,
}

fn start(dir: &Path, durable: bool) -> Running {
    let mut agency = TestAgency::new(7);
    let key = agency.key();
    let chain = agency.certify(&key, "kim", ROOM, baro_node::Role::Member, 365);
    let credentials = agency.credentials(key, chain);
    let home = Home::open_or_create_with(&dir.join("home"), &Unlock::KeyFile(dir.join("home.key")))
        .expect("home");
    let store = Arc::new(Counted {
        inner: SledStore::open(home).expect("store"),
        flushes: AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The control socket lives in the (owner-only) home, as with `baro run`.
    let socket_dir = dir.join("home");
    let shutdown = runtime.block_on(async {
        let socket = api::bind(socket_dir.join(api::SOCKET_NAME))
            .await
            .expect("control socket");
        let node = NodeBuilder::new(credentials)
            .config(NodeConfig {
                durable_acks: durable,
                ..memory_config(&[])
            })
            .transport(TransportKind::Memory)
            .clock(Arc::new(agency.clock.clone()))
            .store(store.clone())
            .spawn()
            .expect("node");
        let shutdown = node.shutdown_token();
        tokio::spawn(socket.serve(node.handle(), shutdown.clone()));
        shutdown
    });
    Running {
        runtime,
        shutdown,
        socket_dir,
        store,
    }
}

fn send(dir: &Path, text: String) {
    let request = Request::Send {
        room: ROOM.into(),
        text,
    };
    match api::request(dir, &request) {
        Ok(Response::Sent(sent)) => assert!(sent.queued, "alone, a message waits in the outbox"),
        other => panic!("send failed: {other:?}"),
    }
}

/// Runs `clients` threads of `per_client` requests each; returns requests
/// per second.
fn rate(clients: usize, per_client: usize, request: impl Fn(usize, usize) + Sync) -> f64 {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for client in 0..clients {
            let request = &request;
            scope.spawn(move || {
                for i in 0..per_client {
                    request(client, i);
                }
            });
        }
    });
    (clients * per_client) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let sends: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let text = |client: usize, i: usize| format!("message {client}-{i}: the draft budget is ready");
    let mut rows: Vec<(String, f64, Option<f64>)> = Vec::new();

    // The disk alone: one sealed record written and flushed.
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(
            Home::open_or_create_with(
                &dir.path().join("h"),
                &Unlock::KeyFile(dir.path().join("h.key")),
            )
            .expect("home"),
        )
        .expect("store");
        let per_second = rate(1, sends, |_, i| {
            store
                .insert("bench", &i.to_be_bytes(), &[7u8; 400])
                .expect("insert");
            store.flush().expect("flush");
        });
        rows.push(("sled insert + flush".into(), per_second, None));
    }

    for durable in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = start(dir.path(), durable);
        let socket = node.socket_dir.clone();
        // Warm up: the room's key is made with the first message.
        send(&socket, "warm-up".into());
        if !durable {
            let per_second = rate(1, sends, |_, _| {
                assert!(matches!(
                    api::request(&socket, &Request::Status),
                    Ok(Response::Status(_))
                ));
            });
            rows.push(("status round trip".into(), per_second, None));
        }
        let before = node.store.flushes.load(Ordering::Relaxed);
        let per_second = rate(1, sends, |c, i| send(&socket, text(c, i)));
        let flushes = node.store.flushes.load(Ordering::Relaxed) - before;
        let label = if durable {
            "send, durable"
        } else {
            "send, durability off"
        };
        rows.push((
            label.into(),
            per_second,
            Some(flushes as f64 / sends as f64),
        ));
        if durable {
            let before = node.store.flushes.load(Ordering::Relaxed);
            let per_second = rate(8, sends / 8, |c, i| send(&socket, text(c + 100, i)));
            let flushes = node.store.flushes.load(Ordering::Relaxed) - before;
            rows.push((
                "8 clients, durable".into(),
                per_second,
                Some(flushes as f64 / (sends / 8 * 8) as f64),
            ));
        }
        node.shutdown.cancel();
        node.runtime.shutdown_timeout(Duration::from_secs(5));
    }

    let base = rows
        .iter()
        .find(|(label, ..)| label == "send, durability off")
        .map_or(1.0, |row| row.1);
    println!("{sends} requests per row, one client unless said");
    println!(
        "{:<24} {:>12} {:>12} {:>18}",
        "", "per second", "ms each", "vs durability off"
    );
    for (label, per_second, flushes) in &rows {
        let flushes = flushes.map_or(String::new(), |f| format!("  ({f:.2} flushes per answer)"));
        println!(
            "{label:<24} {per_second:>12.0} {:>12.3} {:>17.2}x{flushes}",
            1000.0 / per_second,
            per_second / base
        );
    }
}
