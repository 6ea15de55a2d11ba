//! Random, truncated, oversized and mutated input: always an error or a
//! canonical value, never a panic; mutated signed data never verifies.

use proptest::prelude::*;

use super::golden::samples;
use super::{Format, WireError, decode, encode};
use crate::crypto::{PassphraseSealed, SealedFile, SealedRecord, StorageKey};
use crate::identity::SecretBytes;
use crate::trust::{CertificateChain, EnrollmentBundle, EnrollmentRequest, TrustPolicy};

const NOW: u64 = 1_800_000_000;

/// Decodes `bytes` as every format; none may panic, and whatever decodes
/// must re-encode to exactly the same bytes (one meaning per byte string).
fn decode_all(bytes: &[u8]) {
    fn one<T: Format>(bytes: &[u8]) {
        if let Ok(value) = decode::<T>(bytes) {
            assert_eq!(encode(&value), bytes, "non-canonical encoding accepted");
        }
    }
    one::<CertificateChain>(bytes);
    one::<EnrollmentRequest>(bytes);
    one::<EnrollmentBundle>(bytes);
    one::<PassphraseSealed>(bytes);
    one::<SealedFile>(bytes);
    one::<SealedRecord>(bytes);
    one::<StorageKey>(bytes);
    one::<SecretBytes>(bytes);
    one::<crate::trust::AdmissionHello>(bytes);
    one::<crate::trust::SignedFrame>(bytes);
    one::<super::Envelope>(bytes);
    one::<super::Content>(bytes);
    one::<crate::rooms::KeyGrant>(bytes);
}

fn valid_encodings() -> Vec<Vec<u8>> {
    let s = samples();
    vec![
        encode(&s.chain),
        encode(&s.request),
        encode(&s.bundle),
        encode(&s.passphrase_sealed),
        encode(&s.sealed_file),
        encode(&s.sealed_record),
        encode(&s.storage_key),
        encode(&s.secret),
        encode(&s.hello),
        encode(&s.frame),
        encode(&s.envelope),
        encode(&s.content),
        encode(&s.grant),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        kind in 1u8..=13,
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = vec![super::WIRE_VERSION, kind];
        bytes.extend(body);
        decode_all(&bytes);
    }

    #[test]
    fn mutated_valid_encodings_never_panic(
        which in 0usize..13,
        position in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        cut in any::<prop::sample::Index>(),
    ) {
        let valid = &valid_encodings()[which];
        let mut flipped = valid.clone();
        flipped[position.index(valid.len())] ^= xor;
        decode_all(&flipped);
        decode_all(&valid[..cut.index(valid.len())]);
    }

    #[test]
    fn any_changed_byte_of_a_bundle_is_detected(position in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let s = samples();
        let device = s.request.body.device_key.device_id();
        let mut bytes = encode(&s.bundle);
        let at = position.index(bytes.len());
        bytes[at] ^= xor;
        if let Ok(bundle) = decode::<EnrollmentBundle>(&bytes) {
            prop_assert!(bundle.verify_for(device, NOW, &TrustPolicy::default()).is_err());
        }
    }
}

#[test]
fn truncated_input_is_an_error() {
    for valid in valid_encodings() {
        for len in 0..valid.len() {
            let cut = &valid[..len];
            assert!(decode::<EnrollmentBundle>(cut).is_err() || len == valid.len());
        }
    }
    assert_eq!(
        decode::<EnrollmentBundle>(&[]),
        Err(WireError::Truncated { len: 0 })
    );
    assert_eq!(
        decode::<EnrollmentBundle>(&[1]),
        Err(WireError::Truncated { len: 1 })
    );
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let huge = vec![0u8; EnrollmentBundle::MAX_LEN + 1];
    assert!(matches!(
        decode::<EnrollmentBundle>(&huge),
        Err(WireError::TooLarge { .. })
    ));
}

#[test]
fn huge_length_prefix_does_not_allocate() {
    // A chain claiming u64::MAX certificates must fail fast, not try to allocate.
    let mut bytes = vec![super::WIRE_VERSION, super::Kind::CertificateChain as u8];
    bytes.extend(u64::MAX.to_le_bytes());
    assert!(matches!(
        decode::<CertificateChain>(&bytes),
        Err(WireError::Malformed { .. })
    ));
}

#[test]
fn trailing_bytes_and_unknown_versions_are_refused() {
    let mut bytes = encode(&samples().request);
    bytes.push(0);
    assert!(matches!(
        decode::<EnrollmentRequest>(&bytes),
        Err(WireError::TrailingBytes { extra: 1, .. })
    ));
    bytes.pop();
    bytes[0] = 9;
    assert!(matches!(
        decode::<EnrollmentRequest>(&bytes),
        Err(WireError::UnsupportedVersion { found: 9, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_changed_byte_of_an_envelope_is_detected(position in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let s = samples();
        let mut bytes = encode(&s.envelope);
        let at = position.index(bytes.len());
        bytes[at] ^= xor;
        if let Ok(envelope) = decode::<super::Envelope>(&bytes) {
            prop_assert!(envelope.verify_signature().is_err());
        }
    }
}
