//! Golden bytes: the exact encoding of one sample of every top-level format.
//!
//! A change here is a wire-format change: existing files and peers would no
//! longer understand us. If it is intended, bump [`super::WIRE_VERSION`] or add a
//! kind, then re-bless with `BARO_BLESS=1 cargo test -p baro-node golden`.

use std::path::PathBuf;

use super::{Format, decode, encode};
use crate::crypto::{
    KdfParams, Passphrase, PassphraseSealed, SealedFile, SealedRecord, StorageKey,
};
use crate::identity::{KeyPair, SecretBytes, SeededEntropy};
use crate::trust::{
    CertificateChain, Enrollment, EnrollmentBundle, EnrollmentRequest, NewAgency, Role, Subject,
    TrustPolicy,
};

const NOW: u64 = 1_800_000_000;

pub(crate) struct Samples {
    pub hello: crate::trust::AdmissionHello,
    pub frame: crate::trust::SignedFrame,
    pub envelope: super::Envelope,
    pub content: super::Content,
    pub grant: crate::rooms::KeyGrant,
    pub chain: CertificateChain,
    pub request: EnrollmentRequest,
    pub bundle: EnrollmentBundle,
    pub passphrase_sealed: PassphraseSealed,
    pub sealed_file: SealedFile,
    pub sealed_record: SealedRecord,
    pub storage_key: StorageKey,
    pub secret: SecretBytes,
}

pub(crate) fn samples() -> Samples {
    let mut entropy = SeededEntropy::new(42);
    let subject = |user: &str| Subject {
        user_id: user.into(),
        display_name: format!("Official {user}"),
        org_unit: "MOIS/Digital Government Bureau/Division 2"
            .parse()
            .expect("org"),
    };
    let agency = NewAgency::create("MOIS", subject("op"), NOW, &mut entropy).expect("agency");
    let device = KeyPair::generate(&mut entropy);
    let request = EnrollmentRequest::new(&device, "Kim Minji", NOW).expect("request");
    let bundle = agency
        .operator
        .enroll(
            &request,
            Enrollment {
                subject: subject("kim.minji"),
                role: Role::Member,
                days: 365,
                bootstrap: vec!["/ip4/192.0.2.1/tcp/4001".into()],
            },
            &agency.network_key,
            NOW,
            &TrustPolicy::default(),
            &mut entropy,
        )
        .expect("bundle");
    let storage_key = StorageKey::generate(&mut entropy);
    let passphrase_sealed = PassphraseSealed::seal(
        &Passphrase::new("correct horse battery".into()),
        "agency root key",
        &agency.root.secret().0,
        KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        &mut entropy,
    )
    .expect("seal");
    let sealed_file =
        SealedFile(storage_key.seal(b"identity/bundle", b"bundle bytes", &mut entropy));
    let sealed_record = SealedRecord(storage_key.seal(b"messages\0k", b"hello", &mut entropy));
    let hello = crate::trust::AdmissionHello {
        agency: agency.operator.agency.id(),
        chain: bundle.body.chain.clone(),
        revocation_digest: crate::trust::empty_revocation_digest(),
    };
    let frame = crate::trust::SignedFrame::sign(
        &device,
        crate::trust::FrameBody {
            author: bundle.body.chain.clone(),
            topic: "control".into(),
            sent_at: NOW,
            nonce: [7; 16],
            payload: b"notice".to_vec(),
        },
    );
    let room_key = crate::crypto::RoomKey::generate(&mut entropy);
    let epoch = crate::rooms::EpochRef {
        number: 1,
        key_id: room_key.key_id(),
    };
    let room = crate::rooms::RoomId([9; 32]);
    let content = super::Content::Text("Meeting moved to 15:00".into());
    let envelope = super::Envelope::seal(
        &device,
        room,
        epoch,
        &room_key,
        crate::sync::Hlc {
            wall_ms: NOW * 1000,
            counter: 2,
        },
        &content,
        &mut entropy,
    )
    .expect("envelope");
    // HPKE output is randomised, so the sample wrap is fixed bytes.
    let grant_body = crate::rooms::GrantBody {
        room,
        epoch,
        wraps: vec![crate::crypto::WrappedKey {
            device: device.public(),
            encapped: vec![1; 32],
            ciphertext: vec![2; 48],
        }],
        issued_at: NOW,
        origin: Some(crate::rooms::EpochOrigin::sign(
            &device,
            room,
            epoch,
            vec![crate::identity::PublicKey([3; 32])],
        )),
    };
    let grant = crate::rooms::KeyGrant {
        signature: device.sign(super::Domain::KeyGrant, &grant_body),
        body: grant_body,
        issuer: device.public(),
    };
    Samples {
        hello,
        frame,
        envelope,
        content,
        grant,
        chain: bundle.body.chain.clone(),
        sealed_file,
        sealed_record,
        request,
        bundle,
        passphrase_sealed,
        storage_key,
        secret: device.secret(),
    }
}

/// Compares `bytes` with the golden file `name` (rewriting it under BARO_BLESS).
pub(crate) fn check_bytes(name: &str, bytes: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/wire/golden_bytes")
        .join(format!("{name}.hex"));
    if std::env::var_os("BARO_BLESS").is_some() {
        std::fs::write(&path, hex::encode(bytes) + "\n").expect("bless");
    }
    let golden = std::fs::read_to_string(&path).expect("golden file present");
    assert_eq!(
        hex::encode(bytes),
        golden.trim(),
        "{name}: encoding changed"
    );
}

fn check<T: Format + PartialEq + std::fmt::Debug>(name: &str, value: &T) {
    let bytes = encode(value);
    check_bytes(name, &bytes);
    let decoded: T = decode(&bytes).expect("golden bytes decode");
    assert_eq!(&decoded, value, "{name}: round trip");
}

#[test]
fn every_format_matches_its_golden_bytes() {
    let s = samples();
    check("certificate_chain", &s.chain);
    check("enrollment_request", &s.request);
    check("enrollment_bundle", &s.bundle);
    check("passphrase_sealed", &s.passphrase_sealed);
    check("sealed_file", &s.sealed_file);
    check("sealed_record", &s.sealed_record);
    check("admission_hello", &s.hello);
    check("signed_frame", &s.frame);
    check("envelope", &s.envelope);
    check("message_content", &s.content);
    check("key_grant", &s.grant);
    let room = crate::sync::SyncScope::Room(s.envelope.body.header.room);
    check(
        "sync_request",
        &crate::sync::SyncRequest::Fetch {
            scope: room,
            ids: vec![s.envelope.id()],
        },
    );
    check(
        "sync_response",
        &crate::sync::SyncResponse::Items(vec![encode(&s.envelope)]),
    );
    check(
        "sync_request_hint",
        &crate::sync::SyncRequest::Hint { scope: room },
    );
    check("sync_response_noted", &crate::sync::SyncResponse::Noted);
    let revocation = crate::trust::Revocation::sign(
        crate::trust::RevocationBody {
            agency: s.bundle.body.agency.id(),
            scope: crate::trust::RevocationScope::Device,
            target: s.chain.clone(),
            reason: "phone lost on the KTX".into(),
            issued_at: NOW + 60,
            wipe: true,
            issuer: crate::trust::Issuer::Root,
        },
        &KeyPair::generate(&mut SeededEntropy::new(7)),
    );
    check("revocation", &revocation);
    let device = KeyPair::generate(&mut SeededEntropy::new(8));
    check(
        "wipe_receipt",
        &crate::trust::WipeReceipt::sign(
            crate::trust::WipeReceiptBody {
                agency: s.bundle.body.agency.id(),
                revocation: revocation.id(),
                device: s.chain.clone(),
                wiped_at: NOW + 61,
            },
            &device,
        ),
    );
    check(
        "revocation_record",
        &crate::store::RevocationRecord {
            unpublished: false,
            seen_by: [device.public()].into_iter().collect(),
            wiped: [(device.public(), NOW + 61)].into_iter().collect(),
        },
    );
    check(
        "agency_policy",
        &crate::trust::AgencyPolicy::sign(
            crate::trust::AgencyPolicyBody {
                agency: s.bundle.body.agency.id(),
                format: crate::trust::POLICY_FORMAT,
                version: 3,
                issued_at: NOW + 62,
                settings: crate::trust::PolicySettings {
                    lease_days: 14,
                    lease_warning_days: 3,
                    max_pin_attempts: 10,
                },
                extensions: vec![crate::trust::PolicyExtension {
                    tag: 1,
                    value: vec![5; 4],
                }],
                issuer: s.chain.clone(),
            },
            &device,
        ),
    );
    // The largest-file extension: tag 1, 25 MiB as 4 big-endian bytes.
    let max_file = crate::trust::KnownExtensions {
        max_file_mb: Some(25),
    }
    .encode()
    .expect("in range");
    assert_eq!(max_file[0].tag, crate::trust::EXT_MAX_FILE_MB);
    check_bytes("policy_extension_max_file_mb", &max_file[0].value);
    check(
        "agency_policy_max_file_mb",
        &crate::trust::AgencyPolicy::sign(
            crate::trust::AgencyPolicyBody {
                agency: s.bundle.body.agency.id(),
                format: crate::trust::POLICY_FORMAT,
                version: 4,
                issued_at: NOW + 63,
                settings: crate::trust::PolicySettings::default(),
                extensions: max_file,
                issuer: s.chain.clone(),
            },
            &device,
        ),
    );
    // Secrets have no PartialEq; compare their encodings.
    check_bytes("storage_key", &encode(&s.storage_key));
    check_bytes("secret_key", &encode(&s.secret));
}

#[test]
fn header_names_version_and_kind() {
    let s = samples();
    let bytes = encode(&s.request);
    assert_eq!(bytes[0], super::WIRE_VERSION);
    assert_eq!(bytes[1], super::Kind::EnrollmentRequest as u8);
    let err = decode::<EnrollmentBundle>(&bytes).expect_err("request is not a bundle");
    assert_eq!(
        err.to_string(),
        "expected an enrollment bundle but the input is an enrollment request"
    );
}

#[test]
fn group_definitions_match_their_golden_bytes() {
    let mut room = crate::rooms::Room::group(
        "Budget",
        "kim.minji",
        ["lee.jun".to_string()],
        &mut SeededEntropy::new(9),
    );
    room.invite("kim.minji", "choi.yuna")
        .expect("admin invites");
    room.bind_to_epoch(2).expect("announced under epoch 2");
    assert_eq!((room.version, room.epoch), (3, 2));
    check("room_record", &room);
    check(
        "control_message_label",
        &crate::rooms::ControlMessage::Label("휴대폰".into()),
    );
    check(
        "room_definition_content",
        &super::Content::RoomState(room.clone()),
    );
}

#[test]
fn attachments_match_their_golden_bytes() {
    let data: Vec<u8> = (0..crate::crypto::CHUNK_LEN + 100)
        .map(|i| (i % 13) as u8)
        .collect();
    let mut first = Vec::new();
    let mut manifest = super::FileManifest::seal(
        "현장 사진.jpg",
        "image/jpeg",
        data.len() as u64,
        super::MAX_FILE_LEN,
        &mut &data[..],
        &mut SeededEntropy::new(11),
        |index, _, chunk| {
            if index == 1 {
                first = chunk;
            }
            Ok(())
        },
    )
    .expect("manifest");
    manifest.preview = Some(super::Preview {
        media_type: "image/jpeg".into(),
        width: 2,
        height: 1,
        bytes: vec![0xff, 0xd8, 0xff, 0xd9],
    });
    check(
        "file_content",
        &super::Content::File {
            manifest: Box::new(manifest.clone()),
            caption: "출장 보고서 1쪽".into(),
        },
    );
    let room = crate::rooms::RoomId([9; 32]);
    check(
        "chunk_request_get",
        &super::ChunkRequest::Get {
            room,
            hash: manifest.chunks[1],
        },
    );
    check(
        "chunk_request_offer",
        &super::ChunkRequest::Offer {
            room,
            hashes: manifest.chunks.clone(),
        },
    );
    check("chunk_response", &super::ChunkResponse::Chunk(first));
    check("chunk_response_refused", &super::ChunkResponse::Refused);
    check(
        "chunk_record",
        &crate::store::ChunkRecord {
            hash: manifest.chunks[0],
            room,
            stored_at: NOW,
            len: 262_160,
        },
    );
}
