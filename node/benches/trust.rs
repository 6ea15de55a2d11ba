//! What admission will cost per peer: verifying a device's certificate chain
//! and decoding its bundle, side by side with one bare `verify_strict`; and
//! what taking in one revocation costs (decode, two chains, signature, the
//! set's issuer check), and checking a device against a set of 10,000.
//!
//! Run: `cargo bench -p baro-node --bench trust`. Compare the ratios within
//! one run; absolute numbers vary with the machine and its load.

use std::hint::black_box;

use baro_node::identity::{KeyPair, SeededEntropy};
use baro_node::trust::{
    Enrollment, EnrollmentBundle, EnrollmentRequest, Issuer, NewAgency, Revocation, RevocationBody,
    RevocationScope, RevocationSet, Role, Subject, TrustPolicy,
};
use baro_node::wire::{self, Domain};
use criterion::{Criterion, criterion_group, criterion_main};

const NOW: u64 = 1_800_000_000;

fn trust(c: &mut Criterion) {
    let mut entropy = SeededEntropy::new(1);
    let subject = |user: &str| Subject {
        user_id: user.into(),
        display_name: "Bench".into(),
        org_unit: "MOIS/Division 2".parse().expect("org"),
    };
    let agency = NewAgency::create("MOIS", subject("op"), NOW, &mut entropy).expect("agency");
    let device = KeyPair::generate(&mut entropy);
    let request = EnrollmentRequest::new(&device, "Kim", NOW).expect("request");
    let policy = TrustPolicy::default();
    let bundle = agency
        .operator
        .enroll(
            &request,
            Enrollment {
                subject: subject("kim"),
                role: Role::Member,
                days: 365,
                bootstrap: vec![],
            },
            &agency.network_key,
            NOW,
            &policy,
            &mut entropy,
        )
        .expect("bundle");
    let info = agency.operator.agency.clone();
    let chain = bundle.body.chain.clone();
    let id = device.device_id();
    let bundle_bytes = wire::encode(&bundle);
    let signature = device.sign(Domain::Certificate, &"baseline");
    let public = device.public();

    let mut group = c.benchmark_group("admission");
    group.bench_function("bare_verify_strict", |b| {
        b.iter(|| black_box(public.verify(Domain::Certificate, black_box(&"baseline"), &signature)))
    });
    group.bench_function("chain_verify_for", |b| {
        b.iter(|| black_box(chain.verify_for(id, &info, NOW, &policy).is_ok()))
    });
    group.bench_function("bundle_decode", |b| {
        b.iter(|| black_box(wire::decode::<EnrollmentBundle>(black_box(&bundle_bytes)).is_ok()))
    });
    let revoke = |target: &baro_node::trust::CertificateChain, reason: String| {
        Revocation::sign(
            RevocationBody {
                agency: info.id(),
                scope: RevocationScope::Device,
                target: target.clone(),
                reason,
                issued_at: NOW,
                wipe: true,
                issuer: Issuer::Chain(agency.operator.chain.clone()),
            },
            &agency.operator.key,
        )
    };
    let revocation_bytes = wire::encode(&revoke(&chain, "lost".into()));
    let empty = RevocationSet::new();
    group.bench_function("revocation_decode_and_check", |b| {
        b.iter(|| {
            let revocation: Revocation =
                wire::decode(black_box(&revocation_bytes)).expect("decodes");
            black_box(empty.check(&revocation, &info, NOW).is_ok())
        })
    });
    // A set of 10,000 revocations of distinct devices; the device checked
    // (Kim's) is not among them.
    let mut big = RevocationSet::new();
    let other = chain.verify(&info, NOW, &policy).expect("valid");
    for _ in 0..10_000 {
        let lost = KeyPair::generate(&mut entropy);
        let request = EnrollmentRequest::new(&lost, "Lost", NOW).expect("request");
        let lost_chain = agency
            .operator
            .enroll(
                &request,
                Enrollment {
                    subject: subject("lost"),
                    role: Role::Member,
                    days: 365,
                    bootstrap: vec![],
                },
                &agency.network_key,
                NOW,
                &policy,
                &mut entropy,
            )
            .expect("bundle")
            .body
            .chain;
        let verified = empty
            .check(&revoke(&lost_chain, "lost".into()), &info, NOW)
            .expect("valid");
        big.insert(verified).expect("room");
    }
    group.bench_function("covering_in_10k_set", |b| {
        b.iter(|| black_box(big.covering(black_box(&other)).is_some()))
    });
    group.finish();
}

criterion_group!(benches, trust);
criterion_main!(benches);
