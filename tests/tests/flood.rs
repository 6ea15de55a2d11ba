//! Attack: an outsider holding the agency network key (every bundle has it,
//! a lost phone's too) but no certificate floods a real `baro run` node
//! with 2,000 connections, each with a fresh key, from one process: a third
//! stall right after noise, a third stall inside admission, a third send a
//! garbage hello. The node's file descriptors and memory stay bounded
//! (measured from `/proc/PID` before, during and after), and an official's
//! node that starts during the flood is admitted while it goes on.
//!
//! The attacker's connections come from 127.0.0.2 to 127.0.0.5 (its
//! machine's addresses), the official's from 127.0.0.1: the node gives no
//! single address more than its share of the handshakes under way. Then a
//! repeat offender: an address whose hellos keep failing is refused on
//! arrival, before any handshake, once past the threshold, while the
//! official's address is untouched.
//!
//! Linux only: it reads `/proc` and uses loopback addresses besides
//! 127.0.0.1.
#![cfg(target_os = "linux")]

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use baro_node::net::limits::DEVICE_PENDING_INCOMING;
use baro_tests::{Baro, agency_with, eventually, listen_address};
use libp2p::core::upgrade::OutboundConnectionUpgrade;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::{identity, noise};

const ATTEMPTS: usize = 2_000;
/// One attempt starts every this often (the flood lasts about 14 s).
const PACE: Duration = Duration::from_millis(7);
/// Most attacker connections open at once (the test's own descriptors).
const OPEN_AT_ONCE: usize = 256;
/// An attacker connection the node has not closed by then is dropped.
const HOLD_AT_MOST: Duration = Duration::from_secs(25);
/// Failed handshakes from one address that get it refused (the default).
const FAILURES_BANNED: usize = 20;
const ATTACKER_ADDRESSES: [Ipv4Addr; 4] = [
    Ipv4Addr::new(127, 0, 0, 2),
    Ipv4Addr::new(127, 0, 0, 3),
    Ipv4Addr::new(127, 0, 0, 4),
    Ipv4Addr::new(127, 0, 0, 5),
];

#[derive(Clone, Copy, Debug)]
enum Mode {
    StallAfterNoise,
    StallInAdmission,
    GarbageHello,
}

/// How far one attempt got.
#[derive(Default)]
struct Tally {
    /// Closed before noise completed (refused on arrival, or evicted early).
    refused: AtomicU64,
    /// Noise completed: the node spent a handshake on it.
    handshaken: AtomicU64,
    /// Of those, closed by the node before [`HOLD_AT_MOST`].
    closed_by_node: AtomicU64,
    /// Longest the node kept a handshaken connection, milliseconds.
    longest_hold_ms: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    fds: usize,
    rss_kb: u64,
}

fn sample(pid: u32) -> Sample {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0);
    let rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    Sample { fds, rss_kb }
}

/// The dialer's side of multistream-select for one protocol, by hand (the
/// protocol and header proposed at once, both echoed by the listener).
async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut S,
    protocol: &str,
) -> io::Result<()> {
    let mut hello = Vec::new();
    for line in ["/multistream/1.0.0\n".to_string(), format!("{protocol}\n")] {
        hello.push(u8::try_from(line.len()).map_err(io::Error::other)?);
        hello.extend(line.as_bytes());
    }
    socket.write_all(&hello).await?;
    socket.flush().await?;
    let mut echo = vec![0u8; hello.len()];
    socket.read_exact(&mut echo).await?;
    if echo != hello {
        return Err(io::Error::other("protocol not accepted"));
    }
    Ok(())
}

/// One attacker connection from `source`, with a fresh key.
async fn attack(
    target: SocketAddr,
    source: Ipv4Addr,
    psk: PreSharedKey,
    mode: Mode,
    tally: &Tally,
) {
    let refused = || {
        tally.refused.fetch_add(1, Ordering::Relaxed);
    };
    let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
        return refused();
    };
    if socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).is_err() {
        return refused();
    }
    let Ok(stream) = socket.connect(target).await else {
        return refused();
    };
    let started = Instant::now();
    let Ok(mut private) = PnetConfig::new(psk)
        .handshake(libp2p::tcp::tokio::TcpStream(stream))
        .await
    else {
        return refused();
    };
    if negotiate(&mut private, "/noise").await.is_err() {
        return refused();
    }
    let key = identity::Keypair::generate_ed25519();
    let Ok(noise) = noise::Config::new(&key) else {
        return refused();
    };
    let Ok((_, mut secure)) = noise.upgrade_outbound(private, "/noise").await else {
        return refused();
    };
    tally.handshaken.fetch_add(1, Ordering::Relaxed);
    let stalled = async {
        match mode {
            Mode::StallAfterNoise => {}
            Mode::StallInAdmission => negotiate(&mut secure, "/baro/admission/1.0.0").await?,
            Mode::GarbageHello => {
                negotiate(&mut secure, "/baro/admission/1.0.0").await?;
                let garbage = b"certainly a certificate";
                secure
                    .write_all(&(garbage.len() as u32).to_be_bytes())
                    .await?;
                secure.write_all(garbage).await?;
                secure.flush().await?;
            }
        }
        // Wait for the node to hang up.
        let mut buffer = [0u8; 256];
        while secure.read(&mut buffer).await? > 0 {}
        Ok::<_, io::Error>(())
    };
    if tokio::time::timeout(HOLD_AT_MOST, stalled).await.is_ok() {
        tally.closed_by_node.fetch_add(1, Ordering::Relaxed);
    }
    let held = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tally.longest_hold_ms.fetch_max(held, Ordering::Relaxed);
}

async fn flood(target: SocketAddr, psk: PreSharedKey, tally: Arc<Tally>) {
    let open = Arc::new(tokio::sync::Semaphore::new(OPEN_AT_ONCE));
    let mut pace = tokio::time::interval(PACE);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ATTEMPTS {
        pace.tick().await;
        let Ok(permit) = open.clone().acquire_owned().await else {
            break;
        };
        let source = ATTACKER_ADDRESSES[i % ATTACKER_ADDRESSES.len()];
        let mode = match i % 3 {
            0 => Mode::StallAfterNoise,
            1 => Mode::StallInAdmission,
            _ => Mode::GarbageHello,
        };
        let tally = tally.clone();
        tasks.spawn(async move {
            attack(target, source, psk, mode, &tally).await;
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Sends garbage hellos from `source`, one connection after another, until
/// one is refused before noise; returns its number (1-based).
async fn offend_until_refused(
    target: SocketAddr,
    source: Ipv4Addr,
    psk: PreSharedKey,
) -> Option<usize> {
    for attempt in 1..=FAILURES_BANNED + 5 {
        let tally = Tally::default();
        attack(target, source, psk, Mode::GarbageHello, &tally).await;
        if tally.refused.load(Ordering::Relaxed) > 0 {
            return Some(attempt);
        }
    }
    None
}

fn socket_address(multiaddr: &str) -> SocketAddr {
    let parts: Vec<&str> = multiaddr.split('/').collect();
    match parts.as_slice() {
        ["", "ip4", ip, "tcp", port, ..] => {
            SocketAddr::new(ip.parse().expect("ip"), port.parse().expect("port"))
        }
        _ => panic!("not a TCP address: {multiaddr}"),
    }
}

fn peers(device: &Baro) -> usize {
    let status = device.run(["--json", "status"]);
    if !status.output.status.success() {
        return 0;
    }
    status.json()["peers"].as_u64().unwrap_or(0) as usize
}

#[test]
fn a_flood_of_fresh_keys_holding_the_network_key_leaves_the_node_bounded_and_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, [lee, kim]) = agency_with(dir.path(), "MOIS/Division 2", ["lee", "kim"]);
    // What a lost phone's bundle gives away: the network key.
    let bundle: baro_node::EnrollmentBundle =
        baro_node::wire::decode(&std::fs::read(dir.path().join("lee.bundle")).expect("bundle"))
            .expect("bundle decodes");
    let psk = PreSharedKey::new(bundle.body.network_key.0);

    let network = ["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
    let lee_node = lee.spawn(["run"].into_iter().chain(network));
    let address = listen_address(&lee);
    let target = socket_address(&address);
    let pid = lee_node.pid();
    std::thread::sleep(Duration::from_secs(1));
    let before = sample(pid);

    // Sample the node all through the flood.
    let flooding = Arc::new(AtomicBool::new(true));
    let sampler = std::thread::spawn({
        let flooding = flooding.clone();
        move || {
            let mut most = Sample::default();
            while flooding.load(Ordering::Relaxed) {
                let now = sample(pid);
                most.fds = most.fds.max(now.fds);
                most.rss_kb = most.rss_kb.max(now.rss_kb);
                std::thread::sleep(Duration::from_millis(50));
            }
            most
        }
    });
    let tally = Arc::new(Tally::default());
    let flood_started = Instant::now();
    let attacker = std::thread::spawn({
        let tally = tally.clone();
        let flooding = flooding.clone();
        move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(flood(target, psk, tally));
            flooding.store(false, Ordering::Relaxed);
        }
    });

    // An official's node starts once the flood is under way.
    std::thread::sleep(Duration::from_secs(2));
    let kim_started = Instant::now();
    let kim_node = kim.spawn(
        ["run"]
            .into_iter()
            .chain(network)
            .chain(["--bootstrap", address.as_str()]),
    );
    eventually(40, "kim admitted by lee during the flood", || {
        (peers(&lee) >= 1).then_some(())
    });
    let admitted_after = kim_started.elapsed();
    let still_flooding = flooding.load(Ordering::Relaxed);
    let attempts_by_then =
        tally.refused.load(Ordering::Relaxed) + tally.handshaken.load(Ordering::Relaxed);

    attacker.join().expect("attacker");
    let flood_took = flood_started.elapsed();
    let during = sampler.join().expect("sampler");
    // Give the node a moment to close what is left, then measure again.
    std::thread::sleep(Duration::from_secs(3));
    let after = sample(pid);
    let kim_still_there = peers(&lee);

    // A repeat offender on a fresh address: refused on arrival once its
    // failures pass the threshold.
    let offender = Ipv4Addr::new(127, 0, 0, 9);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let refused_at = runtime.block_on(offend_until_refused(target, offender, psk));
    let kim_after_offender = peers(&lee);
    let log = lee_node.log();
    let bans = log.matches("refusing connections from an address").count();

    let refused = tally.refused.load(Ordering::Relaxed);
    let handshaken = tally.handshaken.load(Ordering::Relaxed);
    let closed = tally.closed_by_node.load(Ordering::Relaxed);
    let longest = tally.longest_hold_ms.load(Ordering::Relaxed);
    let report = format!(
        "flood of {ATTEMPTS} attempts in {flood_took:.1?}: {refused} refused before noise, \
         {handshaken} through noise ({closed} closed by the node, longest held {longest} ms), \
         {bans} address bans; fds before {} / most during {} / after {}; \
         RSS before {} kB / most during {} kB / after {} kB; kim admitted {admitted_after:.1?} \
         after starting, {attempts_by_then} attempts in, flood still running: {still_flooding}; \
         peers after: {kim_still_there}; repeat offender refused at attempt {refused_at:?}, \
         peers then: {kim_after_offender}",
        before.fds, during.fds, after.fds, before.rss_kb, during.rss_kb, after.rss_kb,
    );
    println!("{report}");

    assert!(still_flooding, "kim got in only after the flood: {report}");
    assert_eq!(kim_still_there, 1, "{report}");
    assert_eq!(refused + handshaken, ATTEMPTS as u64, "{report}");
    assert!(
        handshaken > 0,
        "the attacker never got through noise: {report}"
    );
    assert!(refused > 0, "nothing was refused on arrival: {report}");
    assert_eq!(refused_at, Some(FAILURES_BANNED + 1), "{report}");
    assert!(bans > 0, "no ban logged: {report}");
    assert_eq!(kim_after_offender, 1, "{report}");
    // Descriptors: the handshakes under way plus a margin for Kim's
    // connection, `baro status` calls and the store.
    let limit = before.fds + DEVICE_PENDING_INCOMING as usize + 24;
    assert!(during.fds <= limit, "fds above {limit}: {report}");
    assert!(after.fds <= before.fds + 8, "fds not released: {report}");
    // Memory: tens of megabytes at most, whatever the flood.
    assert!(
        during.rss_kb <= before.rss_kb + 40 * 1024,
        "RSS grew too much: {report}"
    );
    drop(kim_node);
}
