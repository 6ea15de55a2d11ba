//! What offline sync costs: one device missed `d` of the `n` envelopes a
//! peer stores in a room, and catches up in one sync session.
//!
//! A session is built out of the real protocol types and encodings:
//! [`SyncRequest::Reconcile`] / [`SyncResponse::Reconcile`] rounds driven by
//! [`Reconciler`] and [`respond`], then [`SyncRequest::Fetch`] of at most
//! [`MAX_FETCH_IDS`] ids answered by [`SyncResponse::Items`] of at most
//! [`MAX_ITEMS_BYTES`] (the asker fetches the rest in further requests).
//! Every request and response is encoded with [`wire::encode`] (and decoded
//! again on the other side), plus [`FRAME_BYTES`] of framing per message.
//!
//! The missing envelopes are real: sealed and signed by a certified device
//! for its department room (1 KiB texts, as in the `messaging` bench), and
//! checked on arrival (signature, decryption). The items both sides already
//! hold are never transferred, so only their `(timestamp, id)` take part:
//! their ids are hashes. The history has one message a second; the missing
//! ones are the most recent (a device that was offline misses the latest
//! messages), except in the `spread` rows where they are spread uniformly
//! over the history, the worst case for range reconciliation.
//!
//! Printed once, before the timings, for n in {1,000, 100,000} and d in {0,
//! 10, 1,000}: bytes exchanged both ways, the missing payload (the encoded
//! envelopes), their ratio, the fixed overhead (bytes − payload) and the
//! round trips (reconciliation rounds + fetch requests). The target is at
//! most 1.10 × payload + 2 KiB.
//!
//! Criterion then times the reconciliation itself (initiator and responder
//! CPU per session, without the fetch) for n = 100,000.
//!
//! Run: `cargo bench -p baro-node --bench sync` (add `-- --quick` for
//! shorter timings; the table is the same).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hint::black_box;
use std::time::Duration;

use baro_node::KeyPair;
use baro_node::VerifiedDevice;
use baro_node::crypto::RoomKey;
use baro_node::identity::OsEntropy;
use baro_node::rooms::{EpochRef, Messenger, RoomId};
use baro_node::sync::{
    Hlc, MAX_FETCH_IDS, MAX_ITEMS_BYTES, Reconciler, Step, SyncItem, SyncRequest, SyncResponse,
    SyncScope, respond,
};
use baro_node::testing::{T0, TestAgency};
use baro_node::trust::{Role, TrustPolicy};
use baro_node::wire::{self, Content, Envelope};
use criterion::Criterion;

const ORG: &str = "MOIS/Digital Government Bureau";
const NOW: u64 = T0 + 86_400;
const NOW_MS: u64 = NOW * 1000;
/// One message a second over the whole history.
const INTERVAL_MS: u64 = 1000;
/// The text of a typical message, as in the `messaging` bench.
const TEXT_LEN: usize = 1024;
/// A short text, for one extra row: the fixed per-message costs weigh more.
const SHORT_TEXT_LEN: usize = 128;
/// Framing per request and per response on the stream (a length prefix).
const FRAME_BYTES: usize = 4;
/// Target: bytes exchanged at most `RATIO_TARGET` × payload + `FIXED_TARGET`.
const RATIO_TARGET: f64 = 1.10;
const FIXED_TARGET: usize = 2048;

/// Where the missing envelopes lie in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// The latest `d` (the device was offline recently).
    Recent,
    /// Spread uniformly over the history.
    Spread,
}

impl Placement {
    fn name(self) -> &'static str {
        match self {
            Placement::Recent => "recent",
            Placement::Spread => "spread",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
struct Case {
    n: usize,
    d: usize,
    placement: Placement,
    text_len: usize,
}

/// A device that writes to its department room, and the room's key.
#[derive(Debug)]
struct Writer {
    key: KeyPair,
    room: RoomId,
    epoch: EpochRef,
    room_key: RoomKey,
    /// Sealed envelopes by (text length, timestamp): (item, encoding).
    sealed: BTreeMap<(usize, u64), (SyncItem, Vec<u8>)>,
}

/// A certified device of `user` in [`ORG`].
fn device(agency: &mut TestAgency, user: &str) -> (KeyPair, VerifiedDevice) {
    let key = agency.key();
    let chain = agency.certify(&key, user, ORG, Role::Member, 365);
    let verified = chain
        .verify_for(
            key.device_id(),
            &agency.agency.operator.agency,
            NOW,
            &TrustPolicy::default(),
        )
        .expect("certified");
    (key, verified)
}

fn text(len: usize) -> Content {
    let text: String = "Draft budget for the bureau is ready; please review. "
        .chars()
        .cycle()
        .take(len)
        .collect();
    Content::Text(text)
}

impl Writer {
    fn new() -> Writer {
        let mut agency = TestAgency::new(7);
        let (kim_key, kim_cert) = device(&mut agency, "kim");
        let (_, lee_cert) = device(&mut agency, "lee");
        let mut sender = Messenger::new(kim_key.clone(), kim_cert);
        assert!(sender.learn_device(lee_cert, NOW).is_empty(), "no key yet");
        let room = RoomId::department(
            &agency.agency.operator.agency.id(),
            &ORG.parse().expect("org"),
        );
        sender
            .ensure_key(room, NOW, &mut OsEntropy)
            .expect("department room");
        let (_, epoch, room_key) = sender
            .take_new_keys()
            .into_iter()
            .find(|(r, _, _)| *r == room)
            .expect("the sender's key");
        let mut writer = Writer {
            key: kim_key,
            room,
            epoch,
            room_key,
            sealed: BTreeMap::new(),
        };
        // What the messenger sends is what this bench seals.
        let content = text(TEXT_LEN);
        let sent = sender
            .send(room, &content, NOW_MS, &mut OsEntropy)
            .expect("send");
        assert_eq!(sent.body.header.timestamp.wall_ms, NOW_MS);
        let (_, sealed) = writer.envelope(TEXT_LEN, NOW_MS);
        assert_eq!(
            wire::encode(&sent).len(),
            sealed.len(),
            "same envelope size"
        );
        writer
    }

    /// The envelope written at `wall_ms` with a text of `text_len` bytes.
    fn envelope(&mut self, text_len: usize, wall_ms: u64) -> (SyncItem, Vec<u8>) {
        let Writer {
            key,
            room,
            epoch,
            room_key,
            sealed,
        } = self;
        sealed
            .entry((text_len, wall_ms))
            .or_insert_with(|| {
                let timestamp = Hlc {
                    wall_ms,
                    counter: 0,
                };
                let envelope = Envelope::seal(
                    key,
                    *room,
                    *epoch,
                    room_key,
                    timestamp,
                    &text(text_len),
                    &mut OsEntropy,
                )
                .expect("seal");
                ((wall_ms, envelope.id()), wire::encode(&envelope))
            })
            .clone()
    }
}

/// Both sides of one case: what the peer holds, what the device holds, and
/// the peer's store of the envelopes the device lacks.
#[derive(Debug)]
struct Sides {
    scope: SyncScope,
    theirs: Vec<SyncItem>,
    mine: Vec<SyncItem>,
    store: HashMap<[u8; 32], Vec<u8>>,
    payload: usize,
}

fn sides(writer: &mut Writer, case: Case) -> Sides {
    let Case {
        n,
        d,
        placement,
        text_len,
    } = case;
    let missing: HashSet<usize> = match placement {
        Placement::Recent => (n - d..n).collect(),
        Placement::Spread => (0..d).map(|j| (2 * j + 1) * n / (2 * d)).collect(),
    };
    assert_eq!(missing.len(), d, "distinct missing positions");
    let mut theirs = Vec::with_capacity(n);
    let mut mine = Vec::with_capacity(n);
    let mut store = HashMap::new();
    let mut payload = 0;
    for i in 0..n {
        let wall_ms = NOW_MS - (n - 1 - i) as u64 * INTERVAL_MS;
        if missing.contains(&i) {
            let (item, bytes) = writer.envelope(text_len, wall_ms);
            payload += bytes.len();
            store.insert(item.1, bytes);
            theirs.push(item);
        } else {
            // Held by both and never transferred: only its id matters.
            let mut hasher = blake3::Hasher::new();
            hasher.update(b"held by both");
            hasher.update(&(i as u64).to_le_bytes());
            let item = (wall_ms, *hasher.finalize().as_bytes());
            theirs.push(item);
            mine.push(item);
        }
    }
    theirs.sort_unstable();
    mine.sort_unstable();
    Sides {
        scope: SyncScope::Room(writer.room),
        theirs,
        mine,
        store,
        payload,
    }
}

/// What one session cost.
#[derive(Debug, Default)]
struct Outcome {
    /// Reconciliation requests and responses, with framing.
    reconcile_bytes: usize,
    /// Fetch requests and responses, with framing.
    fetch_bytes: usize,
    reconcile_rounds: usize,
    fetches: usize,
    /// The envelopes received, decoded.
    received: Vec<Envelope>,
}

/// One request travels: encoded, framed, decoded by the responder.
fn send_request(request: &SyncRequest, bytes: &mut usize) -> SyncRequest {
    let encoded = wire::encode(request);
    *bytes += FRAME_BYTES + encoded.len();
    wire::decode(&encoded).expect("a valid request")
}

/// One response travels back.
fn send_response(response: &SyncResponse, bytes: &mut usize) -> SyncResponse {
    let encoded = wire::encode(response);
    *bytes += FRAME_BYTES + encoded.len();
    wire::decode(&encoded).expect("a valid response")
}

/// The responder's answer to a fetch: the items in the order asked, up to
/// [`MAX_ITEMS_BYTES`] (always at least one).
fn serve_fetch(store: &HashMap<[u8; 32], Vec<u8>>, ids: &[[u8; 32]]) -> SyncResponse {
    let mut items = Vec::new();
    let mut total = 0;
    for id in ids {
        let item = store.get(id).expect("asked for an item the device lacks");
        if !items.is_empty() && total + item.len() > MAX_ITEMS_BYTES {
            break;
        }
        total += item.len();
        items.push(item.clone());
    }
    SyncResponse::Items(items)
}

/// The reconciliation rounds only; returns the ids to fetch.
fn reconcile(
    sides: &Sides,
    mut carry: impl FnMut(SyncRequest) -> SyncResponse,
) -> (Vec<[u8; 32]>, usize) {
    let (mut reconciler, mut message) =
        Reconciler::initiate(sides.mine.iter().copied()).expect("initiate");
    loop {
        let request = SyncRequest::Reconcile {
            scope: sides.scope,
            message,
        };
        let SyncResponse::Reconcile(reply) = carry(request) else {
            panic!("not a reconciliation reply");
        };
        match reconciler.step(&reply).expect("step") {
            Step::Continue(next) => message = next,
            Step::Done { have, need } => {
                assert!(have.is_empty(), "the device holds nothing the peer lacks");
                return (need, reconciler.rounds());
            }
        }
    }
}

/// The responder's side of a reconciliation round.
fn answer_reconcile(sides: &Sides, request: SyncRequest) -> SyncResponse {
    let SyncRequest::Reconcile { scope, message } = request else {
        panic!("not a reconciliation request");
    };
    assert_eq!(scope, sides.scope);
    SyncResponse::Reconcile(respond(sides.theirs.iter().copied(), &message).expect("respond"))
}

/// A whole session, every message encoded, framed and decoded.
fn session(sides: &Sides) -> Outcome {
    let mut outcome = Outcome::default();
    let mut bytes = 0;
    let (need, rounds) = reconcile(sides, |request| {
        let request = send_request(&request, &mut bytes);
        send_response(&answer_reconcile(sides, request), &mut bytes)
    });
    outcome.reconcile_bytes = bytes;
    outcome.reconcile_rounds = rounds;

    let mut pending = need;
    let mut bytes = 0;
    while !pending.is_empty() {
        let ids: Vec<[u8; 32]> = pending.iter().take(MAX_FETCH_IDS).copied().collect();
        let request = send_request(
            &SyncRequest::Fetch {
                scope: sides.scope,
                ids,
            },
            &mut bytes,
        );
        let SyncRequest::Fetch { scope, ids } = request else {
            panic!("not a fetch");
        };
        assert_eq!(scope, sides.scope);
        let SyncResponse::Items(items) =
            send_response(&serve_fetch(&sides.store, &ids), &mut bytes)
        else {
            panic!("not items");
        };
        outcome.fetches += 1;
        let mut got = HashSet::new();
        for item in items {
            let envelope = wire::decode::<Envelope>(&item).expect("an envelope");
            let id = envelope.id();
            assert!(ids.contains(&id), "an item that was asked for");
            got.insert(id);
            outcome.received.push(envelope);
        }
        assert!(!got.is_empty(), "progress");
        pending.retain(|id| !got.contains(id));
    }
    outcome.fetch_bytes = bytes;
    outcome
}

/// Runs every case once and prints the table.
fn table(writer: &mut Writer) {
    let mut cases = Vec::new();
    for n in [1_000, 100_000] {
        for d in [0, 10, 1_000] {
            cases.push(Case {
                n,
                d,
                placement: Placement::Recent,
                text_len: TEXT_LEN,
            });
            if d > 0 && d < n {
                cases.push(Case {
                    n,
                    d,
                    placement: Placement::Spread,
                    text_len: TEXT_LEN,
                });
            }
        }
    }
    cases.push(Case {
        n: 100_000,
        d: 1_000,
        placement: Placement::Recent,
        text_len: SHORT_TEXT_LEN,
    });

    println!();
    println!(
        "offline sync: d missing of n stored (framing {FRAME_BYTES} B per message; \
         target ≤ {RATIO_TARGET:.2} × payload + {FIXED_TARGET} B)"
    );
    println!(
        "{:>7} {:>5} {:>6} {:>5} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8} {:>9} {:>4} {:>6} {:>7} {:>5}",
        "n",
        "d",
        "where",
        "text",
        "recon B",
        "fetch B",
        "total B",
        "payload",
        "ratio",
        "fixed B",
        "limit B",
        "ok",
        "rounds",
        "fetches",
        "RTTs"
    );
    for case in cases {
        let sides = sides(writer, case);
        let outcome = session(&sides);
        // Exactly the missing envelopes arrived, and they are genuine.
        let received: HashSet<[u8; 32]> = outcome.received.iter().map(Envelope::id).collect();
        let expected: HashSet<[u8; 32]> = sides.store.keys().copied().collect();
        assert_eq!(received, expected, "the device got exactly what it lacked");
        assert_eq!(outcome.received.len(), case.d);
        for envelope in &outcome.received {
            envelope.verify_signature().expect("signed");
            assert_eq!(
                envelope.open(&writer.room_key).expect("opens"),
                text(case.text_len)
            );
        }
        let total = outcome.reconcile_bytes + outcome.fetch_bytes;
        let fixed = total as i64 - sides.payload as i64;
        let ratio = if sides.payload == 0 {
            "-".to_string()
        } else {
            format!("{:.4}", total as f64 / sides.payload as f64)
        };
        // The target: bytes ≤ 1.10 × payload + 2 KiB.
        let limit = (RATIO_TARGET * sides.payload as f64) as usize + FIXED_TARGET;
        let ok = total <= limit;
        println!(
            "{:>7} {:>5} {:>6} {:>5} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8} {:>9} {:>4} {:>6} {:>7} {:>5}",
            case.n,
            case.d,
            case.placement.name(),
            case.text_len,
            outcome.reconcile_bytes,
            outcome.fetch_bytes,
            total,
            sides.payload,
            ratio,
            fixed,
            limit,
            if ok { "yes" } else { "NO" },
            outcome.reconcile_rounds,
            outcome.fetches,
            outcome.reconcile_rounds + outcome.fetches
        );
    }
    println!();
}

/// Initiator and responder CPU for the reconciliation of one session.
fn timings(c: &mut Criterion, writer: &mut Writer) {
    let mut group = c.benchmark_group("sync_reconcile");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (d, placement) in [
        (0, Placement::Recent),
        (1_000, Placement::Recent),
        (1_000, Placement::Spread),
    ] {
        let sides = sides(
            writer,
            Case {
                n: 100_000,
                d,
                placement,
                text_len: TEXT_LEN,
            },
        );
        let name = format!("n100000_d{d}_{}", placement.name());
        group.bench_function(name, |b| {
            b.iter(|| {
                let (need, rounds) = reconcile(black_box(&sides), |request| {
                    answer_reconcile(&sides, request)
                });
                assert_eq!(need.len(), d);
                black_box(rounds)
            })
        });
    }
    group.finish();
}

fn main() {
    let mut writer = Writer::new();
    // Listing the benchmarks skips the table; test runs (`cargo test
    // --benches`) print it too, checking every session's outcome once.
    if !std::env::args().any(|arg| arg == "--list") {
        table(&mut writer);
    }
    let mut criterion = Criterion::default().configure_from_args();
    timings(&mut criterion, &mut writer);
    criterion.final_summary();
}
