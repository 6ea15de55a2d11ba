//! What moving an attachment costs (issue 19), in one run, on loopback TCP
//! with the real transport stack (TCP, pnet under the agency network key,
//! noise, admission, yamux) and real nodes (sled stores in a temporary
//! directory, sealed at rest):
//!
//! - `raw stream`: one libp2p stream pushing 100 MiB, over a connection
//!   built by the node's own [`build_transport`]: the ceiling any protocol
//!   on this stack can reach here;
//! - `file, one source`: a 100 MiB file fetched by Lee from Kim, its
//!   sender, in a group room of the two (the chunk protocol, 256 KiB
//!   chunks, 4 requests in flight per peer, each chunk checked against its
//!   hash and stored sealed); from `fetch` to the last chunk stored;
//! - `file, three sources`: a 100 MiB file fetched by Yoon from Kim, Choi
//!   and Park, who all hold it, in a group room of the four;
//! - `chunking CPU`: sealing a file into chunks (XChaCha20-Poly1305 and the
//!   BLAKE3 hash of each sealed chunk), with criterion, per MiB;
//! - `chunk store`: keeping 100 MiB of chunks in a sled store (sealed again
//!   at rest) and reading them back, per MiB: what a receiver and a sender
//!   do per chunk besides the network.
//!
//! The throughput ratio (file, one source / raw stream) and the three
//! sources' speed-up are printed at the end, each the median of the runs.
//! All nodes share this process and its cores, as the two sides of a real
//! transfer would not: on a two-core machine the sources and the receiver
//! compete for CPU, which bounds what several sources can add.
//!
//! Run: `cargo bench -p baro-node --bench file_transfer [-- RUNS]` (default
//! 3 runs of each transfer).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baro_node::config::NodeConfig;
use baro_node::crypto::{CHUNK_LEN, chunk_hash};
use baro_node::identity::OsEntropy;
use baro_node::net::admission::AdmissionGate;
use baro_node::net::inbound::InboundGuard;
use baro_node::net::limits::Limits;
use baro_node::net::membership_proof::MembershipKey;
use baro_node::net::{TransportKind, build_transport};
use baro_node::rooms::RoomId;
use baro_node::store::{ChunkStore, Home, SledStore, Store, Unlock};
use baro_node::testing::TestAgency;
use baro_node::trust::{AdmissionHello, empty_revocation_digest};
use baro_node::wire::{FileManifest, MAX_FILE_LEN};
use baro_node::{Credentials, Node, NodeBuilder, NodeEvent};
use criterion::{Criterion, Throughput};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, Swarm, identity, swarm};

const MIB: usize = 1 << 20;
/// The file (and the raw stream) moved per run.
const FILE_LEN: usize = 100 * MIB;
/// Longest any one step may take.
const STEP: Duration = Duration::from_secs(600);
const BULK: StreamProtocol = StreamProtocol::new("/baro-bench/bulk/1.0.0");

/// A request names a length; the response is that many bytes on the
/// stream, written and read in 64 KiB blocks, never held whole.
#[derive(Clone, Debug, Default)]
struct Bulk;

impl request_response::Codec for Bulk {
    type Protocol = StreamProtocol;
    type Request = u64;
    type Response = u64;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<u64> {
        let mut len = [0u8; 8];
        io.read_exact(&mut len).await?;
        Ok(u64::from_be_bytes(len))
    }

    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<u64> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match io.read(&mut buf).await? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }

    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        len: u64,
    ) -> std::io::Result<()> {
        io.write_all(&len.to_be_bytes()).await?;
        io.close().await
    }

    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        len: u64,
    ) -> std::io::Result<()> {
        let block = vec![0x5au8; 64 * 1024];
        let mut left = len as usize;
        while left > 0 {
            let n = left.min(block.len());
            io.write_all(&block[..n]).await?;
            left -= n;
        }
        io.close().await
    }
}

/// A swarm of `credentials` speaking only [`Bulk`], on the node's transport.
fn bulk_swarm(
    agency: &TestAgency,
    credentials: &Credentials,
) -> Swarm<request_response::Behaviour<Bulk>> {
    let keypair =
        identity::Keypair::ed25519_from_bytes(credentials.key.secret().0).expect("device key");
    let hello = AdmissionHello {
        agency: credentials.agency.id(),
        chain: credentials.chain.clone(),
        revocation_digest: empty_revocation_digest(),
    };
    let network = credentials.network_key.as_ref().expect("network key");
    let (refusals, _) = tokio::sync::mpsc::channel(64);
    let gate = Arc::new(AdmissionGate::new(
        credentials.agency.clone(),
        &hello,
        keypair.public().to_peer_id(),
        MembershipKey::derive(network),
        Arc::new(agency.clock.clone()),
        Duration::from_secs(10),
        300,
        refusals,
    ));
    let limits = Limits::for_config(&NodeConfig::default());
    let (relayed, _) = libp2p::relay::client::new(keypair.public().to_peer_id());
    let transport = build_transport(
        &keypair,
        Some(network),
        gate,
        TransportKind::Tcp,
        Duration::from_secs(10),
        relayed,
        InboundGuard::new(limits.pending_incoming as usize, limits.offenders),
    )
    .expect("transport");
    let behaviour = request_response::Behaviour::with_codec(
        Bulk,
        [(BULK, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(STEP),
    );
    Swarm::new(
        transport,
        behaviour,
        keypair.public().to_peer_id(),
        swarm::Config::with_tokio_executor().with_idle_connection_timeout(STEP),
    )
}

/// One libp2p stream pushing [`FILE_LEN`] bytes, `runs` times (after one
/// warm-up) over one connection; the time of each.
async fn raw_stream(agency: &mut TestAgency, runs: usize) -> Vec<Duration> {
    let (server, client) = (agency.member("raw-server"), agency.member("raw-client"));
    let mut server = bulk_swarm(agency, &server);
    let mut client = bulk_swarm(agency, &client);
    server
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("address"))
        .expect("listen");
    let address = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let server_peer = *server.local_peer_id();
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            }) = server.select_next_some().await
            {
                let _ = server.behaviour_mut().send_response(channel, request);
            }
        }
    });
    client.dial(address).expect("dial");
    loop {
        match client.select_next_some().await {
            SwarmEvent::ConnectionEstablished { .. } => break,
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                panic!("the raw connection failed: {error}")
            }
            _ => {}
        }
    }
    let mut times = Vec::new();
    for run in 0..=runs {
        let started = Instant::now();
        client
            .behaviour_mut()
            .send_request(&server_peer, FILE_LEN as u64);
        let received = loop {
            match client.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                }) => break response,
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    error, ..
                }) => panic!("raw stream failed: {error}"),
                _ => {}
            }
        };
        assert_eq!(received, FILE_LEN as u64, "every byte arrived");
        if run > 0 {
            times.push(started.elapsed());
        }
    }
    times
}

fn tcp_config(bootstrap: &[Multiaddr]) -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        bootstrap: bootstrap.iter().map(ToString::to_string).collect(),
        mdns: false,
        discovery_interval_secs: 1,
        admission_timeout_secs: 10,
        sync_interval_secs: 2,
        ..NodeConfig::default()
    }
}

/// A node of `user` on loopback TCP, with a sled store under `dir`.
fn spawn(agency: &mut TestAgency, user: &str, bootstrap: &[Multiaddr], dir: &Path) -> Node {
    let credentials = agency.member(user);
    let root = dir.join(user);
    let home = Home::open_or_create_with(&root, &Unlock::KeyFile(dir.join(format!("{user}.key"))))
        .expect("home");
    NodeBuilder::new(credentials)
        .config(tcp_config(bootstrap))
        .transport(TransportKind::Tcp)
        .clock(Arc::new(agency.clock.clone()))
        .store(Arc::new(SledStore::open(home).expect("sled")))
        .spawn()
        .expect("node starts")
}

/// Polls `check` every 50 ms until it gives a value, for at most [`STEP`].
async fn until<T, F: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A group `name` made by `admin` with `members` (user ids), known to all.
async fn group(admin: &Node, name: &str, members: &[(&str, &Node)]) {
    admin
        .handle()
        .create_group(name, members.iter().map(|(u, _)| u.to_string()).collect())
        .await
        .expect("group");
    for (_, node) in members {
        until("the group at every member", || async {
            node.handle().find_room(name).await.ok()
        })
        .await;
    }
}

/// Sends a fresh `FILE_LEN` file from `sender` into `room`; its file id
/// once every node of `at` lists it.
async fn send_file(sender: &Node, room: &str, dir: &Path, seed: u8, at: &[&Node]) -> String {
    let path = dir.join(format!("file-{seed}.bin"));
    let mut x = u64::from(seed) | 1;
    let bytes: Vec<u8> = (0..FILE_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, &bytes).expect("write");
    let caption = format!("file {seed}");
    until("the room's key", || async {
        sender
            .handle()
            .send_file(room, &path, &caption, false)
            .await
            .ok()
    })
    .await;
    let _ = std::fs::remove_file(&path);
    let mut id = String::new();
    for node in at {
        id = until("the file's message", || async {
            let files = node.handle().files(room).await.ok()?;
            let message = files.into_iter().find(|m| m.text == caption)?;
            message.attachment.map(|a| a.file_id)
        })
        .await;
    }
    id
}

/// `node` fetches file `id` of `room`; the time until its last chunk is stored.
async fn fetch(node: &Node, room: &str, id: &str) -> Duration {
    let mut events = node.handle().events();
    let started = Instant::now();
    let view = node
        .handle()
        .fetch_file(room, id, None)
        .await
        .expect("fetch starts");
    let attachment = view.attachment.expect("a file");
    if attachment.held == attachment.chunks {
        return started.elapsed();
    }
    tokio::time::timeout(STEP, async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::FileProgress(view))
                    if view
                        .attachment
                        .as_ref()
                        .is_some_and(|a| a.file_id == id && a.held == a.chunks) =>
                {
                    return;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("node stopped: {e}"),
            }
        }
    })
    .await
    .expect("the whole file arrives");
    started.elapsed()
}

/// The two file transfers, `runs` times each: one source, three sources.
async fn transfers(agency: &mut TestAgency, runs: usize) -> (Vec<Duration>, Vec<Duration>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let kim = spawn(agency, "kim", &[], dir);
    let address = until("Kim listening", || async {
        let status = kim.handle().status().await.ok()?;
        status.listen.first()?.parse::<Multiaddr>().ok()
    })
    .await;
    let bootstrap = [address];
    let lee = spawn(agency, "lee", &bootstrap, dir);
    let choi = spawn(agency, "choi", &bootstrap, dir);
    let park = spawn(agency, "park", &bootstrap, dir);
    let yoon = spawn(agency, "yoon", &bootstrap, dir);
    for node in [&kim, &lee, &choi, &park, &yoon] {
        node.handle()
            .wait_for_peers(4, STEP)
            .await
            .expect("all five met");
    }
    // Only the members of a room are asked for its chunks: Lee's room has
    // one source, Yoon's three.
    group(&kim, "one source", &[("lee", &lee)]).await;
    group(
        &kim,
        "three sources",
        &[("choi", &choi), ("park", &park), ("yoon", &yoon)],
    )
    .await;
    // Every member follows the room before anything is timed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut one = Vec::new();
    let mut three = Vec::new();
    for run in 0..=runs {
        let id = send_file(&kim, "one source", dir, 2 * run as u8 + 1, &[&lee]).await;
        let took = fetch(&lee, "one source", &id).await;
        let id = send_file(
            &kim,
            "three sources",
            dir,
            2 * run as u8 + 2,
            &[&choi, &park, &yoon],
        )
        .await;
        // Choi and Park fetch it first (not timed): then it has three holders.
        tokio::join!(
            fetch(&choi, "three sources", &id),
            fetch(&park, "three sources", &id)
        );
        let took_three = fetch(&yoon, "three sources", &id).await;
        // The first run warms up (connections, streams, sled's caches).
        if run > 0 {
            one.push(took);
            three.push(took_three);
        }
    }
    for node in [kim, lee, choi, park, yoon] {
        node.shutdown().await;
    }
    (one, three)
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn mib_per_sec(time: Duration) -> f64 {
    FILE_LEN as f64 / MIB as f64 / time.as_secs_f64()
}

fn row(what: &str, times: &[Duration]) {
    let list: Vec<String> = times
        .iter()
        .map(|t| format!("{:.2} s", t.as_secs_f64()))
        .collect();
    println!(
        "| {what} | {} | {:.1} MiB/s |",
        list.join(", "),
        mib_per_sec(median(times))
    );
}

/// Sealing into chunks, encryption and hashing only (the chunks are dropped).
fn chunking(c: &mut Criterion) {
    const LEN: usize = 16 * MIB;
    let data = vec![0x33u8; LEN];
    let mut group = c.benchmark_group("chunking");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(LEN as u64));
    group.bench_function("seal 16 MiB (encrypt + hash)", |b| {
        b.iter(|| {
            FileManifest::seal(
                "bench.bin",
                "application/octet-stream",
                LEN as u64,
                MAX_FILE_LEN,
                &mut &data[..],
                &mut OsEntropy,
                |_, hash, chunk| {
                    std::hint::black_box((hash, chunk));
                    Ok(())
                },
            )
            .expect("sealed")
        })
    });
    group.finish();
}

/// Chunking CPU per MiB, timed directly (the figure the table prints).
fn chunking_per_mib() -> Duration {
    const LEN: usize = 32 * MIB;
    let data = vec![0x33u8; LEN];
    (0..3)
        .map(|_| {
            let started = Instant::now();
            FileManifest::seal(
                "bench.bin",
                "application/octet-stream",
                LEN as u64,
                MAX_FILE_LEN,
                &mut &data[..],
                &mut OsEntropy,
                |_, hash, chunk| {
                    std::hint::black_box((hash, chunk));
                    Ok(())
                },
            )
            .expect("sealed");
            started.elapsed() / 32
        })
        .min()
        .expect("three runs")
}

/// What the chunk store costs per MiB on sled, sealed at rest (a node on a
/// device): keeping [`FILE_LEN`] of 256 KiB chunks as a receiver does, then
/// reading them all back as a sender serving them does.
fn store_per_mib() -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = Home::open_or_create_with(
        &dir.path().join("store"),
        &Unlock::KeyFile(dir.path().join("store.key")),
    )
    .expect("home");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(home).expect("sled"));
    let mut chunks = ChunkStore::open(store).expect("chunks");
    let room = RoomId([7; 32]);
    let sealed: Vec<(Vec<u8>, [u8; 32])> = (0..FILE_LEN / CHUNK_LEN)
        .map(|i| {
            let bytes = vec![i as u8; CHUNK_LEN + 16];
            let hash = chunk_hash(&bytes);
            (bytes, hash)
        })
        .collect();
    let started = Instant::now();
    for (bytes, hash) in &sealed {
        chunks.put(room, *hash, bytes, 0).expect("put");
    }
    let put = started.elapsed();
    let started = Instant::now();
    for (_, hash) in &sealed {
        assert!(chunks.get(room, hash).expect("get").is_some());
    }
    let get = started.elapsed();
    let mib = (FILE_LEN / MIB) as u32;
    (put / mib, get / mib)
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut agency = TestAgency::new(77);
    let (raw, (one, three)) = runtime.block_on(async {
        let raw = raw_stream(&mut agency, runs).await;
        let transfers = transfers(&mut agency, runs).await;
        (raw, transfers)
    });
    let mut criterion = Criterion::default().configure_from_args();
    chunking(&mut criterion);
    criterion.final_summary();
    let per_mib = chunking_per_mib();
    let (put, get) = store_per_mib();

    println!();
    println!("# Attachments on loopback TCP (pnet + noise + admission + yamux), 100 MiB per run");
    println!();
    println!("| what | runs (after one warm-up) | median throughput |");
    println!("|---|---|---|");
    row("raw stream (one libp2p stream)", &raw);
    row("file, one source (Kim → Lee)", &one);
    row("file, three sources (Kim, Choi, Park → Yoon)", &three);
    println!();
    let ratio = mib_per_sec(median(&one)) / mib_per_sec(median(&raw));
    println!(
        "file transfer / raw stream: {:.0}% (goal: at least 70%)",
        ratio * 100.0
    );
    println!(
        "three sources / one source: {:.2}x",
        mib_per_sec(median(&three)) / mib_per_sec(median(&one))
    );
    println!(
        "chunking CPU (XChaCha20-Poly1305 + BLAKE3 per 256 KiB chunk): {:.2} ms per MiB ({:.0} MiB/s on one core)",
        per_mib.as_secs_f64() * 1000.0,
        1.0 / per_mib.as_secs_f64()
    );
    println!(
        "chunk store on sled, sealed at rest: keeping {:.2} ms per MiB, reading back {:.2} ms per MiB",
        put.as_secs_f64() * 1000.0,
        get.as_secs_f64() * 1000.0
    );
}
