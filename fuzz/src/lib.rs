//! Shared fixtures of the fuzz targets and the seed generator.
//!
//! Everything is seeded, so the targets and the seeds they start from agree:
//! one agency, a device that knocks at admission (Kim), the node it knocks
//! at (Lee), a revocation of Kim, an enrollment request and bundle, and a
//! set of sync items with the envelopes and control frames behind them.
//!
//! Each target feeds its input to the node's own public entry point for
//! that input and checks what must hold for any input: no panic, no
//! overflow, and whatever decodes re-encodes to the same bytes.

use std::sync::OnceLock;

use baro_node::Credentials;
use baro_node::crypto::RoomKey;
use baro_node::identity::{KeyPair, SeededEntropy};
use baro_node::rooms::{ControlMessage, EpochRef, RoomId};
use baro_node::sync::{Hlc, SyncItem};
use baro_node::testing::{T0, TestAgency};
use baro_node::trust::{
    EnrollmentBundle, EnrollmentRequest, FrameBody, Revocation, RevocationScope, RevocationSet,
    Role, SignedFrame, TrustPolicy, VerifiedDevice, VerifiedRevocation,
};
use baro_node::wire::{self, Content, Envelope, Format};

/// The agency's clock when the targets run: one day after its creation.
pub const NOW: u64 = T0 + 86_400;

/// The seeded world every target runs in.
#[derive(Debug)]
pub struct Fixture {
    /// The agency (root, operator, network key) and its seeded key source.
    pub agency: TestAgency,
    /// The device that knocks at admission and is named by [`Fixture::revocation`].
    pub kim: Credentials,
    /// The node Kim knocks at.
    pub lee: Credentials,
    /// What Lee's chain certifies (verified once: a signer of wipe receipts needs it).
    pub lee_verified: VerifiedDevice,
    /// The operator's revocation of Kim's device, with a wipe order.
    pub revocation: Vec<u8>,
    /// The same, verified.
    pub verified_revocation: VerifiedRevocation,
    /// The operator's revocation of Lee's device (the node at the gate),
    /// with a wipe order: what a peer may answer Lee's hello with.
    pub lee_revocation: Vec<u8>,
    /// A new device's enrollment request.
    pub request: Vec<u8>,
    /// The bundle the operator issued for it.
    pub bundle: Vec<u8>,
    /// The room of [`Fixture::envelopes`].
    pub room: RoomId,
    /// Envelopes Kim sent to the room.
    pub envelopes: Vec<Vec<u8>>,
    /// Control frames (presence and a stored notice) Kim published.
    pub frames: Vec<Vec<u8>>,
    /// The control topic frames are published on.
    pub control_topic: String,
    /// The sync items of the envelopes (a reconciled set).
    pub items: Vec<SyncItem>,
}

/// The fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn build() -> Fixture {
    let mut agency = TestAgency::new(1);
    let kim = agency.member("kim.minji");
    let lee = agency.member("lee.jun");
    let revocation = agency.revocation(
        &kim.chain,
        RevocationScope::Device,
        "phone lost on the KTX",
        true,
    );
    let lee_revocation =
        agency.revocation(&lee.chain, RevocationScope::Device, "laptop stolen", true);
    let verified_revocation = RevocationSet::new()
        .check(
            &wire::decode::<Revocation>(&revocation).expect("revocation decodes"),
            &kim.agency,
            NOW,
        )
        .expect("revocation verifies");

    let newcomer = agency.key();
    let request = EnrollmentRequest::new(&newcomer, "Park Seoyeon", T0).expect("request");
    let bundle: EnrollmentBundle = agency
        .agency
        .operator
        .enroll(
            &request,
            baro_node::trust::Enrollment {
                subject: baro_node::testing::subject("park.seoyeon", "MOIS/Field Office"),
                role: Role::Member,
                days: 365,
                bootstrap: vec!["/ip4/192.0.2.1/tcp/4001".into()],
            },
            &agency.agency.network_key,
            T0,
            &TrustPolicy::default(),
            &mut SeededEntropy::new(2),
        )
        .expect("bundle");

    let mut entropy = SeededEntropy::new(3);
    let room = RoomId([9; 32]);
    let room_key = RoomKey::generate(&mut entropy);
    let epoch = EpochRef {
        number: 1,
        key_id: room_key.key_id(),
    };
    let envelopes: Vec<Envelope> = (0..8u64)
        .map(|n| {
            Envelope::seal(
                &kim.key,
                room,
                epoch,
                &room_key,
                Hlc {
                    wall_ms: T0 * 1000 + n * 1000,
                    counter: 0,
                },
                &Content::Text(format!("message {n}")),
                &mut entropy,
            )
            .expect("envelope")
        })
        .collect();
    let items = envelopes
        .iter()
        .map(baro_node::store::envelope_sync_item)
        .collect();
    let control_topic = baro_node::net::topics::control(&kim.agency.id()).to_string();
    let frame = |payload: &ControlMessage, nonce: u8| {
        wire::encode(&SignedFrame::sign(
            &kim.key,
            FrameBody {
                author: kim.chain.clone(),
                topic: control_topic.clone(),
                sent_at: T0 + 60,
                nonce: [nonce; 16],
                payload: wire::encode(payload),
            },
        ))
    };
    let frames = vec![
        frame(&ControlMessage::Presence, 1),
        frame(
            &ControlMessage::Stored(envelopes.iter().map(Envelope::id).collect()),
            2,
        ),
    ];
    let lee_verified = lee
        .chain
        .verify_for(
            lee.key.device_id(),
            &lee.agency,
            NOW,
            &TrustPolicy::default(),
        )
        .expect("lee's chain verifies");
    Fixture {
        lee_verified,
        revocation,
        verified_revocation,
        lee_revocation,
        request: wire::encode(&request),
        bundle: wire::encode(&bundle),
        room,
        envelopes: envelopes.iter().map(wire::encode).collect(),
        frames,
        control_topic,
        items,
        kim,
        lee,
        agency,
    }
}

/// A fresh key, for seeds that need one more device.
pub fn key(seed: u64) -> KeyPair {
    KeyPair::generate(&mut SeededEntropy::new(seed))
}

/// Decodes `bytes` as `T`; whatever decodes must encode to the very same
/// bytes (each byte string has one meaning).
pub fn decode_canonical<T: Format>(bytes: &[u8]) -> Option<T> {
    let value = wire::decode::<T>(bytes).ok()?;
    assert_eq!(
        wire::encode(&value),
        bytes,
        "{} decoded from bytes it does not encode to",
        T::KIND
    );
    Some(value)
}

/// Length-prefixed frame of the sync protocol (little-endian u32 length).
pub fn sync_frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_le_bytes().to_vec();
    out.extend(bytes);
    out
}

/// Length-prefixed frame of the admission exchange (big-endian u32 length).
pub fn admission_frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
    out.extend(bytes);
    out
}

/// Lets panics raised inside the negentropy library through without
/// aborting: the node runs every call into it under `catch_unwind` and
/// turns such a panic into an error (`sync::reconcile`'s `guarded`). Any
/// other panic still aborts, so it is reported as a crash. The first few
/// tolerated panics are printed, and all are counted in
/// [`tolerated_panics`].
pub fn tolerate_negentropy_panics() {
    let abort_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_negentropy = info
            .location()
            .is_some_and(|at| at.file().contains("/negentropy-"));
        if in_negentropy {
            let seen = TOLERATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if seen < 3 {
                eprintln!("tolerated (caught by the node) negentropy panic: {info}");
            }
            return;
        }
        abort_hook(info);
    }));
}

static TOLERATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Panics inside negentropy tolerated so far (see [`tolerate_negentropy_panics`]).
pub fn tolerated_panics() -> u64 {
    TOLERATED.load(std::sync::atomic::Ordering::Relaxed)
}
