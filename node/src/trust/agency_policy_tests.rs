//! The agency policy: only a current, unrevoked operator of the agency sets
//! it, a newer version replaces an older one, and every forgery is refused.

use super::*;
use crate::identity::{KeyPair, SeededEntropy};
use crate::wire;

const NOW: u64 = 1_800_000_000;

fn agency() -> (NewAgency, SeededEntropy) {
    let mut entropy = SeededEntropy::new(24);
    let subject = Subject {
        user_id: "park.op".into(),
        display_name: "Park".into(),
        org_unit: "MOIS".parse().expect("org"),
    };
    let new = NewAgency::create("MOIS", subject, NOW, &mut entropy).expect("agency");
    (new, entropy)
}

fn lease(days: u32, warn: u32) -> PolicySettings {
    PolicySettings {
        lease_days: days,
        lease_warning_days: warn,
        ..PolicySettings::default()
    }
}

fn signed(
    issuer: &CertificateChain,
    key: &KeyPair,
    agency: &AgencyInfo,
    version: u64,
    settings: PolicySettings,
) -> AgencyPolicy {
    AgencyPolicy::sign(
        AgencyPolicyBody {
            agency: agency.id(),
            format: POLICY_FORMAT,
            version,
            issued_at: NOW,
            settings,
            extensions: Vec::new(),
            issuer: issuer.clone(),
        },
        key,
    )
}

fn by_operator(new: &NewAgency, version: u64, settings: PolicySettings) -> AgencyPolicy {
    let op = &new.operator;
    signed(&op.chain, &op.key, &op.agency, version, settings)
}

fn offer(in_force: &mut PolicyInForce, new: &NewAgency, policy: &AgencyPolicy) -> PolicyOffer {
    in_force
        .offer(
            policy,
            &new.operator.agency,
            NOW + 60,
            &TrustPolicy::default(),
            |_| None,
        )
        .expect("valid policy")
}

#[test]
fn a_newer_policy_replaces_the_one_in_force_and_an_older_or_equal_one_is_ignored() {
    let (new, _) = agency();
    let mut in_force = PolicyInForce::new();
    assert_eq!(in_force.settings(), PolicySettings::default());
    assert_eq!(in_force.max_pin_attempts(), DEFAULT_MAX_PIN_ATTEMPTS);

    let v2 = by_operator(&new, 2, lease(14, 3));
    assert!(matches!(offer(&mut in_force, &new, &v2), PolicyOffer::Taken(p) if p.version == 2));
    assert_eq!(in_force.settings().lease_days, 14);

    // A replay of an older policy (no lease) changes nothing, nor does an equal version.
    let v1 = by_operator(&new, 1, lease(0, 0));
    assert_eq!(
        offer(&mut in_force, &new, &v1),
        PolicyOffer::NotNewer { in_force: 2 }
    );
    assert_eq!(
        offer(&mut in_force, &new, &v2),
        PolicyOffer::NotNewer { in_force: 2 }
    );
    assert_eq!(in_force.settings().lease_days, 14);

    let v3 = by_operator(
        &new,
        3,
        PolicySettings {
            max_pin_attempts: 5,
            ..lease(7, 2)
        },
    );
    assert!(matches!(
        offer(&mut in_force, &new, &v3),
        PolicyOffer::Taken(_)
    ));
    assert_eq!(
        (in_force.settings().lease_days, in_force.max_pin_attempts()),
        (7, 5)
    );
    assert!(
        in_force
            .current()
            .expect("in force")
            .describe()
            .contains("version 3 by operator park.op")
    );
}

#[test]
fn two_policies_of_the_same_version_settle_on_the_same_one_in_any_order() {
    let (new, _) = agency();
    let a = by_operator(&new, 2, lease(14, 3));
    let b = by_operator(&new, 2, lease(30, 3));
    let winner = if a.id() > b.id() { &a } else { &b };
    for (first, second) in [(&a, &b), (&b, &a)] {
        let mut in_force = PolicyInForce::new();
        offer(&mut in_force, &new, first);
        offer(&mut in_force, &new, second);
        assert_eq!(in_force.current().map(|p| p.id), Some(winner.id()));
        // Neither is taken again once the winner is in force.
        for again in [&a, &b] {
            assert_eq!(
                offer(&mut in_force, &new, again),
                PolicyOffer::NotNewer { in_force: 2 }
            );
        }
    }
}

#[test]
fn a_policy_signed_by_a_member_device_is_refused() {
    let (new, mut entropy) = agency();
    let key = KeyPair::generate(&mut entropy);
    let request = EnrollmentRequest::new(&key, "Kim", NOW).expect("request");
    let bundle = new
        .operator
        .enroll(
            &request,
            Enrollment {
                subject: Subject {
                    user_id: "kim.minji".into(),
                    display_name: "Kim".into(),
                    org_unit: "MOIS".parse().expect("org"),
                },
                role: Role::Member,
                days: 365,
                bootstrap: Vec::new(),
            },
            &new.network_key,
            NOW,
            &TrustPolicy::default(),
            &mut entropy,
        )
        .expect("enroll");
    let policy = signed(
        &bundle.body.chain,
        &key,
        &new.operator.agency,
        9,
        lease(1, 0),
    );
    let error = PolicyInForce::new()
        .offer(
            &policy,
            &new.operator.agency,
            NOW,
            &TrustPolicy::default(),
            |_| None,
        )
        .expect_err("a member cannot set the policy")
        .to_string();
    assert!(error.contains("cannot set the agency policy"), "{error}");
}

#[test]
fn forged_policies_are_refused() {
    let (new, mut entropy) = agency();
    let agency = &new.operator.agency;
    let trust = TrustPolicy::default();
    let refused = |policy: &AgencyPolicy| {
        PolicyInForce::new()
            .offer(policy, agency, NOW, &trust, |_| None)
            .expect_err("refused")
            .to_string()
    };
    // Signed by another key than the operator chain it names.
    let thief = KeyPair::generate(&mut entropy);
    let forged = signed(&new.operator.chain, &thief, agency, 5, lease(1, 0));
    assert!(refused(&forged).contains("bad signature"));
    // A valid policy altered after signing (lease switched off).
    let mut altered = by_operator(&new, 5, lease(14, 3));
    altered.body.settings.lease_days = 0;
    assert!(refused(&altered).contains("bad signature"));
    // Signed for another domain: an operator's signature over the same
    // bytes made for something else does not verify.
    let mut cross = by_operator(&new, 5, lease(14, 3));
    cross.signature = new.operator.key.sign(wire::Domain::Revocation, &cross.body);
    assert!(refused(&cross).contains("bad signature"));
    // Another agency's operator.
    let (other, _) = {
        let mut entropy = SeededEntropy::new(99);
        let subject = Subject {
            user_id: "x".into(),
            display_name: "X".into(),
            org_unit: "X".parse().expect("org"),
        };
        (
            NewAgency::create("Other", subject, NOW, &mut entropy).expect("agency"),
            (),
        )
    };
    assert!(refused(&by_operator(&other, 5, lease(1, 0))).contains("unknown agency"));
    // A format this build does not read, and settings out of range.
    let mut future = by_operator(&new, 5, lease(14, 3));
    future.body.format = 2;
    let future = AgencyPolicy::sign(future.body, &new.operator.key);
    assert!(refused(&future).contains("update baro"));
    assert!(refused(&by_operator(&new, 5, lease(14, 14))).contains("inside the lease"));
    let no_pin = PolicySettings {
        max_pin_attempts: 0,
        ..lease(14, 3)
    };
    assert!(refused(&by_operator(&new, 5, no_pin)).contains("wrong PIN attempts"));
    // Dated a day ahead of the receiving clock.
    let mut ahead = by_operator(&new, 5, lease(14, 3)).body;
    ahead.issued_at = NOW + DAY_SECS;
    assert!(refused(&AgencyPolicy::sign(ahead, &new.operator.key)).contains("future"));
}

#[test]
fn a_policy_of_a_revoked_or_expired_operator_is_refused_at_receipt() {
    let (new, _) = agency();
    let agency = &new.operator.agency;
    let trust = TrustPolicy::default();
    let policy = by_operator(&new, 3, lease(14, 3));
    let mut in_force = PolicyInForce::new();
    let error = in_force
        .offer(&policy, agency, NOW, &trust, |issuer| {
            (issuer.subject.user_id == "park.op").then(|| "operator left the agency".to_string())
        })
        .expect_err("revoked operator")
        .to_string();
    assert!(error.contains("its operator was revoked"), "{error}");
    assert_eq!(in_force.current(), None);
    // Received after the operator's certificate ended (5 years).
    let late = NOW + 6 * 365 * DAY_SECS;
    let error = in_force
        .offer(&policy, agency, late, &trust, |_| None)
        .expect_err("expired operator")
        .to_string();
    assert!(error.contains("expired"), "{error}");
}

#[test]
fn extensions_are_carried_and_capped_and_the_encoding_is_capped() {
    let (new, _) = agency();
    let mut body = by_operator(&new, 4, lease(14, 3)).body;
    body.extensions = vec![PolicyExtension {
        tag: 7,
        value: vec![1; 16],
    }];
    let policy = AgencyPolicy::sign(body.clone(), &new.operator.key);
    let bytes = wire::encode(&policy);
    assert!(bytes.len() < <AgencyPolicy as wire::Format>::MAX_LEN);
    assert_eq!(wire::decode::<AgencyPolicy>(&bytes), Ok(policy.clone()));
    let mut in_force = PolicyInForce::new();
    assert!(matches!(
        offer(&mut in_force, &new, &policy),
        PolicyOffer::Taken(_)
    ));

    body.extensions = (0..=MAX_POLICY_EXTENSIONS as u16)
        .map(|tag| PolicyExtension { tag, value: vec![] })
        .collect();
    body.version = 5;
    let many = AgencyPolicy::sign(body, &new.operator.key);
    assert!(
        PolicyInForce::new()
            .offer(
                &many,
                &new.operator.agency,
                NOW,
                &TrustPolicy::default(),
                |_| None
            )
            .is_err()
    );
    let oversized = vec![wire::WIRE_VERSION; <AgencyPolicy as wire::Format>::MAX_LEN + 1];
    assert!(wire::decode::<AgencyPolicy>(&oversized).is_err());
}

#[test]
fn the_largest_file_size_is_read_from_its_extension_and_a_malformed_one_refused() {
    let (new, _) = agency();
    let mut in_force = PolicyInForce::new();
    assert_eq!(in_force.max_file_mb(), None, "no policy: no agency limit");
    let mut body = by_operator(&new, 2, lease(0, 0)).body;
    body.extensions = KnownExtensions {
        max_file_mb: Some(1),
    }
    .encode()
    .expect("in range");
    // Beside an extension this build does not know, which it carries.
    body.extensions.push(PolicyExtension {
        tag: 200,
        value: vec![7; 3],
    });
    let policy = AgencyPolicy::sign(body.clone(), &new.operator.key);
    let PolicyOffer::Taken(verified) = offer(&mut in_force, &new, &policy) else {
        panic!("a newer policy is taken");
    };
    assert_eq!(verified.extensions.max_file_mb, Some(1));
    assert_eq!(in_force.max_file_mb(), Some(1));
    assert!(
        verified
            .describe()
            .ends_with("10 wrong PINs, files up to 1 MiB"),
        "{}",
        verified.describe()
    );
    // A value this build cannot read is refused, signature and all: the
    // operator meant a limit it cannot obey.
    for value in [vec![0, 0, 1], vec![0; 4], 1000u32.to_be_bytes().to_vec()] {
        body.version += 1;
        body.extensions = vec![PolicyExtension {
            tag: EXT_MAX_FILE_MB,
            value,
        }];
        let bad = AgencyPolicy::sign(body.clone(), &new.operator.key);
        let error = in_force
            .offer(
                &bad,
                &new.operator.agency,
                NOW + 60,
                &TrustPolicy::default(),
                |_| None,
            )
            .expect_err("refused")
            .to_string();
        assert!(error.contains("largest file size"), "{error}");
    }
    assert_eq!(in_force.current().map(|p| p.version), Some(2));
}
