//! Trust decisions: every way a chain, request or bundle can be wrong.

use super::*;
use crate::identity::{KeyPair, SeededEntropy};

const NOW: u64 = 1_800_000_000;

fn subject(user: &str, org: &str) -> Subject {
    Subject {
        user_id: user.into(),
        display_name: format!("Official {user}"),
        org_unit: org.parse().expect("valid org"),
    }
}

struct World {
    entropy: SeededEntropy,
    agency: NewAgency,
    policy: TrustPolicy,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut entropy = SeededEntropy::new(seed);
        let agency =
            NewAgency::create("MOIS", subject("op", "MOIS"), NOW, &mut entropy).expect("agency");
        World {
            entropy,
            agency,
            policy: TrustPolicy::default(),
        }
    }

    fn enroll(&mut self, device: &KeyPair, role: Role, days: u64) -> EnrollmentBundle {
        let request = EnrollmentRequest::new(device, "Kim", NOW).expect("request");
        self.agency
            .operator
            .enroll(
                &request,
                Enrollment {
                    subject: subject("kim", "MOIS/Digital Government Bureau"),
                    role,
                    days,
                    bootstrap: vec!["/ip4/10.0.0.1/tcp/4001".into()],
                },
                &self.agency.network_key,
                NOW,
                &self.policy,
                &mut self.entropy,
            )
            .expect("enroll")
    }

    fn device(&mut self) -> KeyPair {
        KeyPair::generate(&mut self.entropy)
    }

    fn info(&self) -> &AgencyInfo {
        &self.agency.operator.agency
    }
}

#[test]
fn enrolled_device_verifies_with_its_details() {
    let mut world = World::new(1);
    let device = world.device();
    let bundle = world.enroll(&device, Role::Member, 30);
    let verified = bundle
        .verify_for(device.device_id(), NOW + 10, &world.policy)
        .expect("valid");
    assert_eq!(verified.device, device.device_id());
    assert_eq!(verified.subject.user_id, "kim");
    assert_eq!(verified.role, Role::Member);
    assert_eq!(verified.agency, world.info().id());
    assert_eq!(verified.issued_by, "op");
    assert_eq!(verified.not_after, NOW + 30 * DAY_SECS);
}

#[test]
fn another_agency_is_unknown() {
    let mut world = World::new(2);
    let other = World::new(3);
    let device = world.device();
    let chain = world.enroll(&device, Role::Member, 30).body.chain;
    let err = chain
        .verify(other.info(), NOW, &world.policy)
        .expect_err("foreign chain");
    assert!(matches!(err, TrustError::UnknownAgency { .. }), "{err}");
}

#[test]
fn tampered_certificate_has_a_bad_signature() {
    let mut world = World::new(4);
    let device = world.device();
    let mut chain = world.enroll(&device, Role::Member, 30).body.chain;
    chain.certificates[1].body.role = Role::Operator;
    let err = chain
        .verify(world.info(), NOW, &world.policy)
        .expect_err("tampered");
    assert!(matches!(err, TrustError::BadSignature { .. }), "{err}");
}

#[test]
fn certificate_signed_by_a_stranger_has_a_bad_signature() {
    let mut world = World::new(5);
    let device = world.device();
    let mut chain = world.enroll(&device, Role::Member, 30).body.chain;
    let stranger = world.device();
    let body = chain.certificates[1].body.clone();
    chain.certificates[1] = Certificate::issue(body, &stranger);
    let err = chain
        .verify(world.info(), NOW, &world.policy)
        .expect_err("stranger");
    assert!(matches!(err, TrustError::BadSignature { .. }), "{err}");
}

#[test]
fn validity_window_is_enforced_with_clock_skew_tolerance() {
    let mut world = World::new(6);
    let device = world.device();
    let chain = world.enroll(&device, Role::Member, 1).body.chain;
    let skew = world.policy.clock_skew_secs;
    let end = NOW + DAY_SECS;
    assert!(
        chain
            .verify(world.info(), end + skew, &world.policy)
            .is_ok()
    );
    let err = chain
        .verify(world.info(), end + skew + 1, &world.policy)
        .expect_err("expired");
    assert!(matches!(err, TrustError::Expired { .. }), "{err}");
    assert!(
        chain
            .verify(world.info(), NOW - skew, &world.policy)
            .is_ok()
    );
    let err = chain
        .verify(world.info(), NOW - skew - 1, &world.policy)
        .expect_err("early");
    assert!(matches!(err, TrustError::NotYetValid { .. }), "{err}");
}

#[test]
fn member_certificate_cannot_enroll() {
    let mut world = World::new(7);
    let member = world.device();
    let member_bundle = world.enroll(&member, Role::Member, 30);
    // The member acts as an operator and signs a certificate for a new device.
    let rogue = Operator {
        key: member.clone(),
        chain: member_bundle.body.chain.clone(),
        agency: world.info().clone(),
    };
    let victim = world.device();
    let request = EnrollmentRequest::new(&victim, "Rogue", NOW).expect("request");
    let err = rogue
        .enroll(
            &request,
            Enrollment {
                subject: subject("rogue", "MOIS"),
                role: Role::Operator,
                days: 30,
                bootstrap: vec![],
            },
            &world.agency.network_key,
            NOW,
            &world.policy,
            &mut world.entropy,
        )
        .expect_err("member cannot enroll");
    assert!(
        matches!(
            err,
            TrustError::WrongRole {
                role: Role::Member,
                ..
            }
        ),
        "{err}"
    );

    // A chain assembled by hand is refused the same way.
    let body = CertificateBody {
        agency: world.info().id(),
        serial: 9,
        key: victim.public(),
        subject: subject("rogue", "MOIS"),
        role: Role::Operator,
        not_before: NOW,
        not_after: NOW + DAY_SECS,
        issuer: member.public(),
    };
    let mut chain = member_bundle.body.chain;
    chain.certificates.push(Certificate::issue(body, &member));
    let err = chain
        .verify(world.info(), NOW, &world.policy)
        .expect_err("member-issued");
    // Refused for its depth: only the root and operators it certified issue.
    assert!(matches!(err, TrustError::Invalid { .. }), "{err}");
}

#[test]
fn only_operators_may_revoke() {
    let world = World::new(8);
    let operator = world
        .agency
        .operator
        .chain
        .verify(world.info(), NOW, &world.policy)
        .expect("valid");
    assert!(Action::Revoke.check(operator.role, "operator").is_ok());
    let err = Action::Revoke
        .check(Role::Relay, "relay")
        .expect_err("relay cannot revoke");
    assert!(err.to_string().contains("cannot revoke devices"), "{err}");
}

#[test]
fn someone_elses_certificate_is_a_key_mismatch() {
    let mut world = World::new(9);
    let owner = world.device();
    let thief = world.device();
    let bundle = world.enroll(&owner, Role::Member, 30);
    let err = bundle
        .verify_for(thief.device_id(), NOW, &world.policy)
        .expect_err("thief");
    assert!(matches!(err, TrustError::KeyMismatch { .. }), "{err}");
}

#[test]
fn chains_of_wrong_length_are_invalid() {
    let mut world = World::new(10);
    let device = world.device();
    let mut chain = world.enroll(&device, Role::Member, 30).body.chain;
    let empty = CertificateChain {
        certificates: vec![],
    };
    assert!(matches!(
        empty.verify(world.info(), NOW, &world.policy),
        Err(TrustError::Invalid { .. })
    ));
    let extra = chain.certificates[1].clone();
    chain.certificates.extend([extra.clone(), extra]);
    assert!(matches!(
        chain.verify(world.info(), NOW, &world.policy),
        Err(TrustError::Invalid { .. })
    ));
}

#[test]
fn forged_enrollment_request_is_refused() {
    let mut world = World::new(11);
    let device = world.device();
    let mut request = EnrollmentRequest::new(&device, "Kim", NOW).expect("request");
    request.body.device_key = world.device().public();
    assert!(matches!(
        request.verify(),
        Err(TrustError::BadSignature { .. })
    ));
}

#[test]
fn tampered_bundle_is_refused() {
    let mut world = World::new(12);
    let device = world.device();
    let bundle = world.enroll(&device, Role::Member, 30);

    let mut other_key = bundle.clone();
    other_key.body.network_key = NetworkKey([7; 32]);
    let mut other_bootstrap = bundle.clone();
    other_bootstrap.body.bootstrap = vec!["/ip4/6.6.6.6/tcp/1".into()];
    for tampered in [other_key, other_bootstrap] {
        let err = tampered
            .verify_for(device.device_id(), NOW, &world.policy)
            .expect_err("tampered");
        assert!(matches!(err, TrustError::BadSignature { .. }), "{err}");
    }

    let mut bad_addr = bundle;
    bad_addr.body.bootstrap = vec!["not an address".into()];
    assert!(matches!(
        bad_addr.verify_for(device.device_id(), NOW, &world.policy),
        Err(TrustError::Invalid { .. })
    ));
}

#[test]
fn bad_subject_fields_are_refused_at_enrollment() {
    let mut world = World::new(13);
    let device = world.device();
    let request = EnrollmentRequest::new(&device, "Kim", NOW).expect("request");
    let mut bad = subject("kim", "MOIS");
    bad.user_id = "kim lee".into();
    let err = world
        .agency
        .operator
        .enroll(
            &request,
            Enrollment {
                subject: bad,
                role: Role::Member,
                days: 30,
                bootstrap: vec![],
            },
            &world.agency.network_key,
            NOW,
            &world.policy,
            &mut world.entropy,
        )
        .expect_err("bad user id");
    assert!(err.to_string().contains("user id"), "{err}");
    assert!(EnrollmentRequest::new(&device, "", NOW).is_err());
}

/// "행정안전부/디지털정부국/2과" and "김민지" typed as conjoining jamo (macOS).
const DECOMPOSED_ORG: &str = "\u{1112}\u{1162}\u{11bc}\u{110c}\u{1165}\u{11bc}\u{110b}\u{1161}\u{11ab}\u{110c}\u{1165}\u{11ab}\u{1107}\u{116e}/\u{1103}\u{1175}\u{110c}\u{1175}\u{1110}\u{1165}\u{11af}\u{110c}\u{1165}\u{11bc}\u{1107}\u{116e}\u{1100}\u{116e}\u{11a8}/2\u{1100}\u{116a}";
const DECOMPOSED_NAME: &str = "\u{1100}\u{1175}\u{11b7}\u{1106}\u{1175}\u{11ab}\u{110c}\u{1175}";

#[test]
fn decomposed_hangul_is_certified_in_nfc_and_lands_in_the_real_department() {
    let typed: OrgUnit = DECOMPOSED_ORG.parse().expect("parses");
    assert_eq!(
        typed.as_str(),
        "행정안전부/디지털정부국/2과",
        "parsing normalizes"
    );
    // An org unit that reaches the operator undecoded-and-unparsed (the
    // control API's JSON, a library caller) is normalized at enrollment.
    let raw: OrgUnit = serde_json::from_str(&format!("\"{DECOMPOSED_ORG}\"")).expect("json");
    assert_ne!(raw.as_str(), "행정안전부/디지털정부국/2과");
    let mut world = World::new(40);
    let device = world.device();
    let request = EnrollmentRequest::new(&device, DECOMPOSED_NAME, NOW).expect("request");
    assert_eq!(request.body.display_name, "김민지");
    let bundle = world
        .agency
        .operator
        .enroll(
            &request,
            Enrollment {
                subject: Subject {
                    user_id: "kim.minji".into(),
                    display_name: DECOMPOSED_NAME.into(),
                    org_unit: raw,
                },
                role: Role::Member,
                days: 30,
                bootstrap: vec![],
            },
            &world.agency.network_key,
            NOW,
            &world.policy,
            &mut world.entropy,
        )
        .expect("enroll");
    let verified = bundle
        .verify_for(device.device_id(), NOW + 10, &world.policy)
        .expect("valid");
    assert_eq!(verified.subject.display_name, "김민지");
    assert_eq!(verified.subject.org_unit, typed);
    let agency = world.info().id();
    assert_eq!(
        crate::rooms::RoomId::department(&agency, &verified.subject.org_unit),
        crate::rooms::RoomId::department(
            &agency,
            &"행정안전부/디지털정부국/2과".parse().expect("org")
        ),
        "the same department room, not a phantom one"
    );
}

#[test]
fn a_device_label_is_short_printable_text_in_nfc() {
    assert_eq!(device_label(" PC ").expect("label"), "PC");
    assert_eq!(
        device_label("\u{1112}\u{1172}\u{1103}\u{1162}\u{1111}\u{1169}\u{11ab}").expect("label"),
        "휴대폰",
        "decomposed Hangul is kept in NFC"
    );
    for bad in ["", "   ", "phone\u{1b}[2J", "a\nb", &"x".repeat(33)] {
        let error = device_label(bad).expect_err("refused");
        assert!(error.to_string().contains("1 to 32 bytes"), "{error}");
    }
}
