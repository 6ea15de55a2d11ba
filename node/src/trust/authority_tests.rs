//! Operator authority (audit H2): the console's device key, which sits in
//! the operator's home without a passphrase, issues nothing; only the root
//! and the operator certificates it issued issue; role and validity limits
//! hold when verifying; a revoked operator takes down every chain under it.

use super::*;
use crate::identity::{KeyPair, SeededEntropy};

const NOW: u64 = 1_800_000_000;

fn subject(user: &str, org: &str) -> Subject {
    Subject {
        user_id: user.into(),
        display_name: format!("Official {user}"),
        org_unit: org.parse().expect("org"),
    }
}

struct Agency {
    entropy: SeededEntropy,
    new: NewAgency,
    policy: TrustPolicy,
}

struct Device {
    key: KeyPair,
    chain: CertificateChain,
    verified: VerifiedDevice,
}

impl Agency {
    fn new(seed: u64) -> Self {
        let mut entropy = SeededEntropy::new(seed);
        let new = NewAgency::create("MOIS", subject("park.op", "MOIS"), NOW, &mut entropy)
            .expect("agency");
        Agency {
            entropy,
            new,
            policy: TrustPolicy::default(),
        }
    }

    fn info(&self) -> &AgencyInfo {
        &self.new.operator.agency
    }

    /// A device enrolled the way `baro agency enroll` does it.
    fn enroll(&mut self, user: &str, role: Role) -> Result<Device, TrustError> {
        let key = KeyPair::generate(&mut self.entropy);
        let request = EnrollmentRequest::new(&key, user, NOW)?;
        let bundle = self.new.operator.enroll(
            &request,
            Enrollment {
                subject: subject(user, "MOIS/Division 2"),
                role,
                days: 365,
                bootstrap: Vec::new(),
            },
            &self.new.network_key,
            NOW,
            &self.policy,
            &mut self.entropy,
        )?;
        let verified = bundle.verify_for(key.device_id(), NOW, &self.policy)?;
        Ok(Device {
            key,
            chain: bundle.body.chain,
            verified,
        })
    }

    /// The console's device, as `baro agency init` certifies it.
    fn console(&mut self) -> Device {
        self.enroll("park.op", Role::Member).expect("console")
    }
}

/// `issuer` (holding `chain`) signs a certificate for a fresh key, with
/// `days` of validity, appended to `chain`.
fn mint(
    agency: &mut Agency,
    issuer: &KeyPair,
    chain: &CertificateChain,
    user: &str,
    role: Role,
    days: u64,
) -> (KeyPair, CertificateChain) {
    let key = KeyPair::generate(&mut agency.entropy);
    let body = CertificateBody {
        agency: agency.info().id(),
        serial: 4242,
        key: key.public(),
        subject: subject(user, "MOIS"),
        role,
        not_before: NOW,
        not_after: NOW + days * DAY_SECS,
        issuer: issuer.public(),
    };
    let mut minted = chain.clone();
    minted.certificates.push(Certificate::issue(body, issuer));
    (key, minted)
}

fn hello(agency: &Agency, chain: &CertificateChain) -> AdmissionHello {
    AdmissionHello {
        agency: agency.info().id(),
        chain: chain.clone(),
        revocation_digest: empty_revocation_digest(),
    }
}

fn revocation(
    agency: &Agency,
    target: &CertificateChain,
    scope: RevocationScope,
    issuer: Issuer,
    signer: &KeyPair,
) -> Revocation {
    Revocation::sign(
        RevocationBody {
            agency: agency.info().id(),
            scope,
            target: target.clone(),
            reason: "phone lost on the train".into(),
            issued_at: NOW + 100,
            wipe: true,
            issuer,
        },
        signer,
    )
}

#[test]
fn the_console_device_is_certified_as_a_member_and_operator_devices_are_refused() {
    let mut agency = Agency::new(1);
    assert_eq!(agency.console().verified.role, Role::Member);
    let error = agency
        .enroll("park.op", Role::Operator)
        .err()
        .expect("an operator device is refused");
    assert!(
        error.to_string().contains("only the agency root"),
        "{error}"
    );
}

#[test]
fn a_thief_with_the_console_device_key_mints_a_member_and_is_refused() {
    let mut agency = Agency::new(2);
    let console = agency.console();
    // With the console home's device key (no passphrase), the thief
    // certifies a fresh key as anyone.
    let (key, forged) = mint(
        &mut agency,
        &console.key,
        &console.chain,
        "park.jiwoo",
        Role::Member,
        30,
    );
    let error = admit(
        &hello(&agency, &forged),
        key.device_id(),
        agency.info(),
        NOW + 10,
        &agency.policy,
    )
    .expect_err("refused");
    assert!(matches!(error, TrustError::Invalid { .. }), "{error}");
}

#[test]
fn a_console_certified_operator_by_the_operator_key_issues_nothing() {
    // How `baro agency init` certified the console before: role operator,
    // issued by the operator key. Neither that chain nor what it issues is
    // accepted any more.
    let mut agency = Agency::new(3);
    let operator = agency.new.operator.key.clone();
    let operator_chain = agency.new.operator.chain.clone();
    let (console_key, console_chain) = mint(
        &mut agency,
        &operator,
        &operator_chain,
        "park.op",
        Role::Operator,
        365,
    );
    let error = console_chain
        .verify_for(
            console_key.device_id(),
            agency.info(),
            NOW + 10,
            &agency.policy,
        )
        .expect_err("refused");
    assert!(
        error.to_string().contains("only the agency root"),
        "{error}"
    );
    let (key, depth_three) = mint(
        &mut agency,
        &console_key,
        &console_chain,
        "park.jiwoo",
        Role::Member,
        30,
    );
    assert!(
        depth_three
            .verify_for(key.device_id(), agency.info(), NOW + 10, &agency.policy)
            .is_err()
    );
}

#[test]
fn a_thief_with_the_console_device_key_signs_an_operator_revocation_and_is_refused() {
    let mut agency = Agency::new(4);
    let console = agency.console();
    let kim = agency.enroll("kim", Role::Member).expect("kim");
    let set = RevocationSet::new();
    let forged = revocation(
        &agency,
        &kim.chain,
        RevocationScope::Device,
        Issuer::Chain(console.chain.clone()),
        &console.key,
    );
    let error = set
        .check(&forged, agency.info(), NOW + 200)
        .expect_err("refused");
    assert!(
        matches!(
            error,
            RevocationError::Invalid(TrustError::WrongRole { .. })
        ),
        "{error}"
    );
    // Nor with an operator-role leaf minted by the console key.
    let (minted_key, minted) = mint(
        &mut agency,
        &console.key,
        &console.chain,
        "park.op",
        Role::Operator,
        30,
    );
    let forged = revocation(
        &agency,
        &kim.chain,
        RevocationScope::Device,
        Issuer::Chain(minted),
        &minted_key,
    );
    assert!(set.check(&forged, agency.info(), NOW + 200).is_err());
    // The operator key (behind the passphrase) still revokes Kim.
    let genuine = revocation(
        &agency,
        &kim.chain,
        RevocationScope::Device,
        Issuer::Chain(agency.new.operator.chain.clone()),
        &agency.new.operator.key,
    );
    set.check(&genuine, agency.info(), NOW + 200)
        .expect("the operator's own revocation");
}

#[test]
fn role_and_validity_limits_hold_when_verifying_not_only_when_issuing() {
    let mut agency = Agency::new(5);
    let operator = agency.new.operator.key.clone();
    let operator_chain = agency.new.operator.chain.clone();
    // An operator key signing a ten-year member certificate by hand.
    let (key, long) = mint(
        &mut agency,
        &operator,
        &operator_chain,
        "kim",
        Role::Member,
        10 * 365,
    );
    let error = long
        .verify_for(key.device_id(), agency.info(), NOW + 10, &agency.policy)
        .expect_err("refused");
    assert!(error.to_string().contains("longer than"), "{error}");
    // The longest a device may be given is accepted.
    let (key, longest) = mint(
        &mut agency,
        &operator,
        &operator_chain,
        "kim",
        Role::Member,
        MAX_DEVICE_CERT_DAYS,
    );
    assert!(
        longest
            .verify_for(key.device_id(), agency.info(), NOW + 10, &agency.policy)
            .is_ok()
    );
    // Even the root may not certify an operator for longer than five years.
    let root = agency.new.root.clone();
    let (key, long_operator) = mint(
        &mut agency,
        &root,
        &CertificateChain {
            certificates: Vec::new(),
        },
        "choi.op",
        Role::Operator,
        6 * 365,
    );
    assert!(
        long_operator
            .verify_for(key.device_id(), agency.info(), NOW + 10, &agency.policy)
            .is_err()
    );
}

#[test]
fn a_depth_three_identity_under_a_revoked_operator_is_covered() {
    let mut agency = Agency::new(6);
    let kim = agency.enroll("kim", Role::Member).expect("kim");
    // Even were a chain below a device to verify, the set reaches the
    // operator certificate at its top: build such a holder by hand.
    let (deep_key, _) = mint(&mut agency, &kim.key, &kim.chain, "ghost", Role::Member, 30);
    let deep = VerifiedDevice {
        device: deep_key.device_id(),
        subject: subject("ghost", "MOIS"),
        issuer: kim.key.public(),
        authority: Some(Box::new(kim.verified.clone())),
        ..kim.verified.clone()
    };
    let mut set = RevocationSet::new();
    assert!(set.covering(&deep).is_none());
    let operator_revoked = revocation(
        &agency,
        &agency.new.operator.chain,
        RevocationScope::Device,
        Issuer::Root,
        &agency.new.root,
    );
    let verified = set
        .check(&operator_revoked, agency.info(), NOW + 200)
        .expect("the root revokes the operator");
    set.insert(verified).expect("room");
    assert!(set.covering(&deep).is_some(), "depth 3 is covered");
    assert!(set.covering(&kim.verified).is_some(), "depth 2 is covered");
}

#[test]
fn a_root_revocation_of_an_operators_user_covers_every_device_it_certified() {
    // Every certificate in a chain is checked: the root revoking the
    // operator's user revokes the operator certificate, and with it the
    // chains it issued.
    let mut agency = Agency::new(7);
    let kim = agency.enroll("kim", Role::Member).expect("kim");
    let mut set = RevocationSet::new();
    let operator_user = revocation(
        &agency,
        &agency.new.operator.chain,
        RevocationScope::User,
        Issuer::Root,
        &agency.new.root,
    );
    let verified = set
        .check(&operator_user, agency.info(), NOW + 200)
        .expect("valid");
    set.insert(verified).expect("room");
    assert!(set.covering(&kim.verified).is_some());
    // The operator's revocations are refused from then on.
    let lee = agency.enroll("lee", Role::Member).expect("lee");
    let late = revocation(
        &agency,
        &lee.chain,
        RevocationScope::Device,
        Issuer::Chain(agency.new.operator.chain.clone()),
        &agency.new.operator.key,
    );
    assert!(matches!(
        set.check(&late, agency.info(), NOW + 200),
        Err(RevocationError::IssuerRevoked { .. })
    ));
}
