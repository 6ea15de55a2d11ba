//! Writes the seed corpus of every target under `fuzz/corpus/<target>/`:
//! the golden bytes of every wire format, the committed scenario files, and
//! valid inputs built from the fixture (an admission exchange, sync frames,
//! negentropy messages, control API lines).
//!
//! Run without coverage instrumentation (`fuzz/run.sh seeds` does):
//! `cargo run --release --example seeds`.

use std::path::{Path, PathBuf};

use baro_fuzz::{NOW, admission_frame, fixture, sync_frame};
use baro_node::api::{Request, Response};
use baro_node::rooms::{ControlMessage, Room};
use baro_node::sync::{Reconciler, SyncRequest, SyncResponse, SyncScope, respond};
use baro_node::trust::{
    AdmissionHello, AgencyPolicy, AgencyPolicyBody, POLICY_FORMAT, PolicySettings, Revocation,
    WipeReceipt, WipeReceiptBody,
};
use baro_node::wire;

fn main() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = fuzz.parent().expect("repository root");
    let corpus = fuzz.join("corpus");
    let f = fixture();

    // Every golden file, as bytes: each Kind's canonical sample.
    let mut golden = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(repo.join("node/src/wire/golden_bytes"))
        .expect("golden bytes")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    for path in names {
        let text = std::fs::read_to_string(&path).expect("golden file");
        golden.push(hex::decode(text.trim()).expect("golden hex"));
    }

    let revocation: Revocation = wire::decode(&f.revocation).expect("revocation");
    let receipt = wire::encode(&WipeReceipt::sign(
        WipeReceiptBody {
            agency: f.kim.agency.id(),
            revocation: revocation.id(),
            device: f.kim.chain.clone(),
            wiped_at: NOW,
        },
        &f.kim.key,
    ));
    let control: Vec<Vec<u8>> = f
        .frames
        .iter()
        .map(|frame| {
            wire::decode::<baro_node::trust::SignedFrame>(frame)
                .expect("frame")
                .body
                .payload
        })
        .collect();
    let room = wire::encode(&Room::department(
        &f.kim.agency.id(),
        "MOIS/Digital Government Bureau".parse().expect("org"),
    ));
    let sync_requests = sync_requests();
    let sync_responses = sync_responses(&receipt);

    let mut wire_seeds = golden.clone();
    wire_seeds.extend([
        f.revocation.clone(),
        f.lee_revocation.clone(),
        receipt.clone(),
        f.request.clone(),
        f.bundle.clone(),
        room,
        wire::encode(&ControlMessage::Presence),
    ]);
    wire_seeds.push(agency_policy());
    wire_seeds.extend(f.frames.iter().cloned());
    wire_seeds.extend(control);
    wire_seeds.push(f.envelopes[0].clone());
    wire_seeds.extend(sync_requests.iter().map(wire::encode));
    wire_seeds.extend(sync_responses.iter().map(wire::encode));
    write(&corpus.join("wire"), &wire_seeds);

    let enrollment: Vec<Vec<u8>> = golden
        .iter()
        .filter(|g| {
            matches!(
                wire::kind_of(g),
                Some(wire::Kind::EnrollmentRequest | wire::Kind::EnrollmentBundle)
            )
        })
        .cloned()
        .chain([f.request.clone(), f.bundle.clone()])
        .collect();
    write(&corpus.join("enrollment"), &enrollment);

    write(&corpus.join("admission"), &admission(&receipt));

    let mut sync = Vec::new();
    for request in &sync_requests {
        sync.push([vec![0], sync_frame(&wire::encode(request))].concat());
    }
    for response in &sync_responses {
        sync.push([vec![1], sync_frame(&wire::encode(response))].concat());
    }
    write(&corpus.join("sync"), &sync);

    write(&corpus.join("negentropy"), &negentropy());
    write(&corpus.join("api"), &api());

    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(repo.join("simulations/scenarios"))
        .expect("scenarios")
        .map(|e| e.expect("entry").path())
        .collect();
    scenarios.sort();
    let scenarios: Vec<Vec<u8>> = scenarios
        .iter()
        .map(|p| std::fs::read(p).expect("scenario"))
        .collect();
    write(&corpus.join("scenario"), &scenarios);
}

/// Writes each seed as a file named by its hash (as libFuzzer names inputs).
fn write(dir: &Path, seeds: &[Vec<u8>]) {
    std::fs::create_dir_all(dir).expect("corpus directory");
    for seed in seeds {
        let name = &blake3::hash(seed).to_hex()[..16];
        std::fs::write(dir.join(name), seed).expect("seed written");
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
}

fn items(which: usize) -> Vec<baro_node::sync::SyncItem> {
    let all = &fixture().items;
    all.iter()
        .enumerate()
        .filter(|(i, _)| match which {
            0 => true,
            1 => i % 2 == 0,
            2 => i % 3 != 0,
            _ => false,
        })
        .map(|(_, item)| *item)
        .collect()
}

/// A valid agency policy of the fixture's agency (a lease of 14 days).
fn agency_policy() -> Vec<u8> {
    let operator = &fixture().agency.agency.operator;
    wire::encode(&AgencyPolicy::sign(
        AgencyPolicyBody {
            agency: operator.agency.id(),
            format: POLICY_FORMAT,
            version: 1,
            issued_at: NOW,
            settings: PolicySettings {
                lease_days: 14,
                lease_warning_days: 3,
                max_pin_attempts: 10,
            },
            extensions: Vec::new(),
            issuer: operator.chain.clone(),
        },
        &operator.key,
    ))
}

fn sync_requests() -> Vec<SyncRequest> {
    let f = fixture();
    let room = SyncScope::Room(f.room);
    let (_, first) = Reconciler::initiate(items(1)).expect("initiate");
    vec![
        SyncRequest::Reconcile {
            scope: room,
            message: first.clone(),
        },
        SyncRequest::Reconcile {
            scope: SyncScope::Revocations,
            message: first,
        },
        SyncRequest::Fetch {
            scope: SyncScope::Control,
            ids: f.items.iter().map(|(_, id)| *id).take(3).collect(),
        },
    ]
}

fn sync_responses(receipt: &[u8]) -> Vec<SyncResponse> {
    let f = fixture();
    let (_, first) = Reconciler::initiate(f.items.iter().copied()).expect("initiate");
    let reply = respond(items(2), &first).expect("respond");
    vec![
        SyncResponse::Reconcile(reply),
        SyncResponse::Items(f.envelopes[..3].to_vec()),
        SyncResponse::Items(f.frames.clone()),
        SyncResponse::Items(vec![f.revocation.clone(), receipt.to_vec()]),
        SyncResponse::Refused("not a member of room 090909".into()),
    ]
}

fn admission(receipt: &[u8]) -> Vec<Vec<u8>> {
    let f = fixture();
    let hello = wire::encode(&AdmissionHello {
        agency: f.kim.agency.id(),
        chain: f.kim.chain.clone(),
        revocation_digest: baro_node::trust::empty_revocation_digest(),
    });
    let stream = |setting: u8, frames: &[&[u8]]| {
        let mut out = vec![setting];
        for frame in frames {
            out.extend(admission_frame(frame));
        }
        out
    };
    vec![
        // We listen: Kim's hello, then its verdict on ours (admitted).
        stream(0, &[&hello, &[]]),
        // We listen and Kim refuses us with our own revocation.
        stream(4, &[&hello, &f.lee_revocation]),
        // We listen and hold Kim's revocation: Kim answers with a receipt.
        stream(2, &[&hello, receipt]),
        // We dial: Kim's hello.
        stream(1, &[&hello]),
        // We dial and Kim answers with our revocation (we send a receipt).
        stream(5, &[&f.lee_revocation]),
        // We dial and hold Kim's revocation.
        stream(3, &[&hello, receipt]),
    ]
}

fn negentropy() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (ours, theirs) in [(0u8, 1u8), (1, 0), (2, 1), (3, 0), (0, 3)] {
        let sets = ours | (theirs << 2);
        let (_, first) = Reconciler::initiate(items(theirs as usize)).expect("initiate");
        seeds.push([vec![sets], first.clone()].concat());
        let reply = respond(items(theirs as usize), &{
            let (_, mine) = Reconciler::initiate(items(ours as usize)).expect("initiate");
            mine
        })
        .expect("respond");
        seeds.push([vec![sets], reply].concat());
    }
    seeds
}

fn api() -> Vec<Vec<u8>> {
    let f = fixture();
    let device = f.kim.key.device_id().to_string();
    let requests = vec![
        Request::Status,
        Request::Peers,
        Request::Rooms,
        Request::CreateRoom {
            name: "budget".into(),
            members: vec!["kim.minji".into(), "lee.jun".into()],
        },
        Request::Invite {
            room: "budget".into(),
            user: "park.seoyeon".into(),
        },
        Request::Send {
            room: "@kim.minji".into(),
            text: "Meeting moved to 15:00 \u{1b}[31m".into(),
        },
        Request::History {
            room: "budget".into(),
            limit: 20,
        },
        Request::Watch { room: None },
        Request::Revoke {
            revocation: hex::encode(&f.revocation),
        },
        Request::RevokeOwnDevice {
            device: device.clone(),
            reason: "phone lost".into(),
        },
        Request::DeviceChain {
            device: Some(device),
            user: None,
        },
        Request::SetPolicy {
            policy: hex::encode(agency_policy()),
        },
    ];
    let mut lines: Vec<Vec<u8>> = requests
        .iter()
        .map(|r| (serde_json::to_string(r).expect("json") + "\n").into_bytes())
        .collect();
    for response in [
        Response::Done,
        Response::MarkedRead(3),
        Response::Error("no such room".into()),
        Response::Chain(hex::encode(wire::encode(&f.kim.chain))),
    ] {
        lines.push((serde_json::to_string(&response).expect("json") + "\n").into_bytes());
    }
    lines
}
