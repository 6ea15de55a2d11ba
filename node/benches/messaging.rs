//! What one 1 KiB text message costs, side by side with one bare
//! `verify_strict` over the same 1 KiB:
//!
//! - `seal`: encrypt and sign it ([`Envelope::seal`]);
//! - `open`: check its signature and decrypt it;
//! - `ingest`: everything a node does per arriving envelope: decode the
//!   gossip bytes, [`Messenger::receive`] (signature, sender certified and a
//!   member, de-duplication, decryption) and [`MessageLog::save_envelope`] on
//!   a real sled store in a temporary directory (values sealed at rest).
//!
//! `bare_verify_strict` parses the signer's key and verifies, as anyone
//! checking one signed message must; `bare_verify_strict_parsed_key` skips
//! the parsing, as `ingest` can for senders it already knows.
//!
//! Every measured `ingest` gets a fresh envelope (the messenger refuses
//! duplicates), sealed outside the timing; each one is checked to be a
//! `Deliver`.
//!
//! Run: `cargo bench -p baro-node --bench messaging`. Compare the ratios
//! within one run; absolute numbers vary with the machine and its load.

use std::hint::black_box;
use std::sync::Arc;

use baro_node::identity::OsEntropy;
use baro_node::rooms::{Messenger, RoomId, Verdict};
use baro_node::store::{Home, MessageLog, SledStore, Unlock};
use baro_node::sync::Hlc;
use baro_node::testing::{T0, TestAgency};
use baro_node::trust::{Role, TrustPolicy};
use baro_node::wire::{self, Content, Domain, Envelope};
use baro_node::{KeyPair, VerifiedDevice};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const ORG: &str = "MOIS/Digital Government Bureau";
const NOW: u64 = T0 + 86_400;
const NOW_MS: u64 = NOW * 1000;
const TEXT_LEN: usize = 1024;

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

fn messaging(c: &mut Criterion) {
    let text: String = "Draft budget for the bureau is ready; please review. "
        .chars()
        .cycle()
        .take(TEXT_LEN)
        .collect();
    assert_eq!(text.len(), TEXT_LEN);
    let content = Content::Text(text.clone());

    // Two devices of the same org unit: they share its department room.
    let mut agency = TestAgency::new(7);
    let (kim_key, kim_cert) = device(&mut agency, "kim");
    let (lee_key, lee_cert) = device(&mut agency, "lee");
    let bare_key = kim_key.clone();
    let seal_key = kim_key.clone();
    let mut sender = Messenger::new(kim_key, kim_cert.clone());
    let mut receiver = Messenger::new(lee_key, lee_cert.clone());
    assert!(sender.learn_device(lee_cert, NOW).is_empty(), "no key yet");
    assert!(
        receiver.learn_device(kim_cert, NOW).is_empty(),
        "no key yet"
    );
    let room = RoomId::department(
        &agency.agency.operator.agency.id(),
        &ORG.parse().expect("org"),
    );
    let grants = sender
        .ensure_key(room, NOW, &mut OsEntropy)
        .expect("department room");
    assert!(!grants.is_empty(), "the key is granted to the receiver");
    for grant in &grants {
        receiver.receive_grant(grant, NOW_MS).expect("valid grant");
    }
    assert!(receiver.can_send(room), "the receiver holds the key");
    let (_, epoch, room_key) = sender
        .take_new_keys()
        .into_iter()
        .find(|(r, _, _)| *r == room)
        .expect("the sender's key");

    // The receiver's store: a real sled database, values sealed at rest.
    let dir = tempfile::tempdir().expect("tempdir");
    let home = Home::open_or_create_with(
        &dir.path().join("home"),
        &Unlock::KeyFile(dir.path().join("home.key")),
    )
    .expect("home");
    let log = MessageLog::new(Arc::new(SledStore::open(home).expect("sled")));

    // Bare verify over the same 1 KiB.
    let public = bare_key.public();
    let signature = bare_key.sign(Domain::Envelope, &text);
    assert!(public.verify(Domain::Envelope, &text, &signature));

    // One envelope to open, checked outside the timing.
    let timestamp = Hlc {
        wall_ms: NOW_MS,
        counter: 0,
    };
    let sealed = Envelope::seal(
        &seal_key,
        room,
        epoch,
        &room_key,
        timestamp,
        &content,
        &mut OsEntropy,
    )
    .expect("seal");
    sealed.verify_signature().expect("signed");
    assert_eq!(sealed.open(&room_key).expect("open"), content);

    // The ingest path once, outside the timing: delivered, stored, and a
    // second copy is a duplicate (hence a fresh envelope per iteration).
    let mut now_ms = NOW_MS;
    let sample = sender
        .send(room, &content, now_ms, &mut OsEntropy)
        .expect("send");
    let sample_bytes = wire::encode(&sample);
    let decoded = wire::decode::<Envelope>(&sample_bytes).expect("decode");
    match receiver.receive(decoded.clone(), now_ms) {
        Verdict::Deliver(message) => assert_eq!(message.content, content),
        other => panic!("sample not delivered: {other:?}"),
    }
    log.save_envelope(&decoded).expect("saved");
    assert_eq!(
        log.history(room, 10).expect("history"),
        vec![decoded.clone()]
    );
    assert_eq!(receiver.receive(decoded, now_ms), Verdict::Duplicate);

    let mut group = c.benchmark_group("messaging_1KiB");
    group.bench_function("bare_verify_strict", |b| {
        b.iter(|| black_box(public.verify(Domain::Envelope, black_box(&text), &signature)))
    });
    // The same with the key parsed beforehand, as ingest does for a known sender.
    let parsed = public.verifier().expect("valid key");
    group.bench_function("bare_verify_strict_parsed_key", |b| {
        b.iter(|| black_box(parsed.verify(Domain::Envelope, black_box(&text), &signature)))
    });
    group.bench_function("seal", |b| {
        b.iter(|| {
            Envelope::seal(
                &seal_key,
                room,
                epoch,
                &room_key,
                timestamp,
                black_box(&content),
                &mut OsEntropy,
            )
            .expect("seal")
        })
    });
    group.bench_function("open", |b| {
        b.iter(|| {
            let envelope = black_box(&sealed);
            envelope.verify_signature().expect("signed");
            envelope.open(&room_key).expect("open")
        })
    });
    let mut delivered = 0u64;
    group.bench_function("ingest", |b| {
        b.iter_batched(
            || {
                // Sealed and encoded outside the timing: a fresh message.
                now_ms += 1;
                let envelope = sender
                    .send(room, &content, now_ms, &mut OsEntropy)
                    .expect("send");
                (wire::encode(&envelope), now_ms)
            },
            |(bytes, at_ms)| {
                // As the node does for a gossiped envelope.
                let envelope = wire::decode::<Envelope>(black_box(&bytes)).expect("decode");
                let verdict = receiver.receive(envelope.clone(), at_ms);
                assert!(
                    matches!(verdict, Verdict::Deliver(_)),
                    "not delivered: {verdict:?}"
                );
                log.save_envelope(&envelope).expect("saved");
                delivered += 1;
                verdict
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    assert!(delivered > 0, "ingest ran");
}

criterion_group!(benches, messaging);
criterion_main!(benches);
