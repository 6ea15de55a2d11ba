//! Revocations: who may revoke whom, what a revocation covers, and every
//! way a forged one is refused.

use super::*;
use crate::identity::{KeyPair, PublicKey, SeededEntropy};
use crate::wire;

const NOW: u64 = 1_800_000_000;

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
        let subject = Subject {
            user_id: "park.op".into(),
            display_name: "Park".into(),
            org_unit: "MOIS".parse().expect("org"),
        };
        let new = NewAgency::create("MOIS", subject, NOW, &mut entropy).expect("agency");
        Agency {
            entropy,
            new,
            policy: TrustPolicy::default(),
        }
    }

    fn info(&self) -> &AgencyInfo {
        &self.new.operator.agency
    }

    fn enroll_at(&mut self, user: &str, role: Role, at: u64) -> Device {
        let key = KeyPair::generate(&mut self.entropy);
        let request = EnrollmentRequest::new(&key, user, at).expect("request");
        let bundle = self
            .new
            .operator
            .enroll(
                &request,
                Enrollment {
                    subject: Subject {
                        user_id: user.into(),
                        display_name: format!("Official {user}"),
                        org_unit: "MOIS/Division 2".parse().expect("org"),
                    },
                    role,
                    days: 365,
                    bootstrap: Vec::new(),
                },
                &self.new.network_key,
                at,
                &self.policy,
                &mut self.entropy,
            )
            .expect("enroll");
        let verified = bundle
            .verify_for(key.device_id(), at, &self.policy)
            .expect("valid");
        Device {
            key,
            chain: bundle.body.chain,
            verified,
        }
    }

    fn enroll(&mut self, user: &str, role: Role) -> Device {
        self.enroll_at(user, role, NOW)
    }

    /// An operator certificate for `user`, issued by the root (only the
    /// root certifies operators).
    fn operator(&mut self, user: &str) -> Device {
        let key = KeyPair::generate(&mut self.entropy);
        let body = CertificateBody {
            agency: self.info().id(),
            serial: 500,
            key: key.public(),
            subject: Subject {
                user_id: user.into(),
                display_name: format!("Operator {user}"),
                org_unit: "MOIS".parse().expect("org"),
            },
            role: Role::Operator,
            not_before: NOW,
            not_after: NOW + 365 * DAY_SECS,
            issuer: self.new.root.public(),
        };
        let chain = CertificateChain {
            certificates: vec![Certificate::issue(body, &self.new.root)],
        };
        let verified = chain
            .verify_for(key.device_id(), self.info(), NOW, &self.policy)
            .expect("valid");
        Device {
            key,
            chain,
            verified,
        }
    }

    /// A revocation of `target` signed by the operator key.
    fn by_operator(&self, target: &Device, scope: RevocationScope) -> Revocation {
        Revocation::sign(
            body(
                self.info(),
                target,
                scope,
                Issuer::Chain(self.new.operator.chain.clone()),
            ),
            &self.new.operator.key,
        )
    }

    fn by_root(&self, target: &CertificateChain, scope: RevocationScope) -> Revocation {
        let mut body = body_for(self.info(), target.clone(), scope, Issuer::Root);
        body.reason = "operator left the agency".into();
        Revocation::sign(body, &self.new.root)
    }
}

fn body(
    agency: &AgencyInfo,
    target: &Device,
    scope: RevocationScope,
    issuer: Issuer,
) -> RevocationBody {
    body_for(agency, target.chain.clone(), scope, issuer)
}

fn body_for(
    agency: &AgencyInfo,
    target: CertificateChain,
    scope: RevocationScope,
    issuer: Issuer,
) -> RevocationBody {
    RevocationBody {
        agency: agency.id(),
        scope,
        target,
        reason: "phone lost on the train".into(),
        issued_at: NOW + 100,
        wipe: true,
        issuer,
    }
}

fn by_device(agency: &AgencyInfo, issuer: &Device, target: &Device) -> Revocation {
    Revocation::sign(
        body(
            agency,
            target,
            RevocationScope::Device,
            Issuer::Chain(issuer.chain.clone()),
        ),
        &issuer.key,
    )
}

#[test]
fn an_operator_revokes_one_device_and_the_set_covers_only_it() {
    let mut agency = Agency::new(1);
    let phone = agency.enroll("kim", Role::Member);
    let pc = agency.enroll("kim", Role::Member);
    let revocation = agency.by_operator(&phone, RevocationScope::Device);
    let mut set = RevocationSet::new();
    assert_eq!(set.digest(), empty_revocation_digest());
    let verified = set
        .check(&revocation, agency.info(), NOW + 200)
        .expect("valid");
    assert_eq!(verified.issued_by, "operator park.op");
    assert_eq!(verified.user, "kim");
    assert!(verified.wipe);
    assert!(set.insert(verified.clone()).expect("room"));
    assert!(
        !set.insert(verified).expect("room"),
        "second copy is not new"
    );
    assert_ne!(set.digest(), empty_revocation_digest());
    assert!(set.covering(&phone.verified).is_some());
    assert!(set.covering(&pc.verified).is_none());
    // The id is the hash of the bytes that travel.
    assert_eq!(
        revocation.id(),
        *blake3::hash(&wire::encode(&revocation)).as_bytes()
    );
}

#[test]
fn an_official_revokes_their_own_lost_phone_from_their_pc() {
    let mut agency = Agency::new(2);
    let phone = agency.enroll("kim", Role::Member);
    let pc = agency.enroll("kim", Role::Member);
    let revocation = by_device(agency.info(), &pc, &phone);
    let set = RevocationSet::new();
    let verified = set
        .check(&revocation, agency.info(), NOW + 200)
        .expect("self-service is allowed");
    assert!(verified.covers(&phone.verified, &agency.policy));
    assert!(!verified.covers(&pc.verified, &agency.policy));
    assert!(verified.issued_by.starts_with("kim's device"));
}

#[test]
fn forged_revocations_are_refused() {
    let mut agency = Agency::new(3);
    let phone = agency.enroll("kim", Role::Member);
    let pc = agency.enroll("kim", Role::Member);
    let lee = agency.enroll("lee", Role::Member);
    let relay = agency.enroll("relay.sejong", Role::Relay);
    let operator_device = agency.operator("park.op");
    let set = RevocationSet::new();
    let check = |r: &Revocation| set.check(r, agency.info(), NOW + 200);

    // A member revoking someone else's device.
    let by_member = by_device(agency.info(), &lee, &phone);
    assert!(
        matches!(
            check(&by_member),
            Err(RevocationError::Invalid(TrustError::WrongRole { .. }))
        ),
        "{:?}",
        check(&by_member)
    );
    // A member revoking a whole user, even their own.
    let mut whole_user = body(
        agency.info(),
        &phone,
        RevocationScope::User,
        Issuer::Chain(pc.chain.clone()),
    );
    whole_user.issued_at = NOW + 100;
    let whole_user = Revocation::sign(whole_user, &pc.key);
    assert!(check(&whole_user).is_err());
    // A relay revoking anyone.
    assert!(check(&by_device(agency.info(), &relay, &phone)).is_err());
    // A device revoking itself.
    assert!(check(&by_device(agency.info(), &phone, &phone)).is_err());
    // An operator revoking an operator's device (only the root may).
    assert!(check(&agency.by_operator(&operator_device, RevocationScope::Device)).is_err());
    assert!(check(&agency.by_root(&operator_device.chain, RevocationScope::Device)).is_ok());

    // Another agency's operator.
    let other = Agency::new(4);
    let foreign = Revocation::sign(
        body(
            other.info(),
            &phone,
            RevocationScope::Device,
            Issuer::Chain(other.new.operator.chain.clone()),
        ),
        &other.new.operator.key,
    );
    assert!(matches!(
        check(&foreign),
        Err(RevocationError::Invalid(TrustError::UnknownAgency { .. }))
    ));
    // Our agency id, but signed by the other agency's operator chain.
    let mut smuggled = foreign.body.clone();
    smuggled.agency = agency.info().id();
    assert!(check(&Revocation::sign(smuggled, &other.new.operator.key)).is_err());

    // A genuine revocation replayed with its target changed.
    let genuine = agency.by_operator(&phone, RevocationScope::Device);
    let mut retargeted = genuine.clone();
    retargeted.body.target = lee.chain.clone();
    assert!(matches!(
        check(&retargeted),
        Err(RevocationError::Invalid(TrustError::BadSignature { .. }))
    ));
    // … or with wipe turned on, the reason or the time changed.
    let mut changed = genuine.clone();
    changed.body.reason = "something else".into();
    assert!(check(&changed).is_err());
    let mut changed = genuine.clone();
    changed.body.issued_at += 1;
    assert!(check(&changed).is_err());
    // Issued in the future.
    let mut future = body(
        agency.info(),
        &phone,
        RevocationScope::Device,
        Issuer::Chain(agency.new.operator.chain.clone()),
    );
    future.issued_at = NOW + 10 * DAY_SECS;
    assert!(check(&Revocation::sign(future, &agency.new.operator.key)).is_err());
    // An empty or oversized reason.
    let mut no_reason = genuine.body.clone();
    no_reason.reason = " ".into();
    assert!(check(&Revocation::sign(no_reason, &agency.new.operator.key)).is_err());

    // Malformed bytes never decode into a revocation.
    let bytes = wire::encode(&genuine);
    assert!(wire::decode::<Revocation>(&bytes[..bytes.len() - 3]).is_err());
    assert!(wire::decode::<Revocation>(b"garbage").is_err());
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    if let Ok(decoded) = wire::decode::<Revocation>(&flipped) {
        assert!(check(&decoded).is_err(), "a flipped byte must not verify");
    }
}

#[test]
fn a_revoked_device_cannot_revoke_anything() {
    let mut agency = Agency::new(5);
    let phone = agency.enroll("kim", Role::Member);
    let pc = agency.enroll("kim", Role::Member);
    let mut set = RevocationSet::new();
    let pc_revoked = agency.by_operator(&pc, RevocationScope::Device);
    let verified = set
        .check(&pc_revoked, agency.info(), NOW + 200)
        .expect("valid");
    set.insert(verified).expect("room");
    // The thief holding the PC tries to revoke the phone the official still uses.
    let revenge = by_device(agency.info(), &pc, &phone);
    assert!(matches!(
        set.check(&revenge, agency.info(), NOW + 200),
        Err(RevocationError::IssuerRevoked { .. })
    ));
}

#[test]
fn a_user_revocation_covers_their_devices_certified_until_then() {
    let mut agency = Agency::new(6);
    let phone = agency.enroll("kim", Role::Member);
    let pc = agency.enroll("kim", Role::Member);
    let console = agency.operator("kim");
    let lee = agency.enroll("lee", Role::Member);
    let later = agency.enroll_at("kim", Role::Member, NOW + 30 * DAY_SECS);
    let revocation = agency.by_operator(&phone, RevocationScope::User);
    let verified = RevocationSet::new()
        .check(&revocation, agency.info(), NOW + 200)
        .expect("valid");
    let covers = |d: &Device| verified.covers(&d.verified, &agency.policy);
    assert!(covers(&phone) && covers(&pc));
    assert!(!covers(&lee), "another user");
    assert!(!covers(&later), "re-enrolled after the revocation");
    assert!(
        !covers(&console),
        "an operator signature does not reach operators"
    );
    assert_eq!(
        verified.expires_at(),
        NOW + 100 + MAX_DEVICE_CERT_DAYS * DAY_SECS
    );
    // The root's does.
    let by_root = RevocationSet::new()
        .check(
            &agency.by_root(&phone.chain, RevocationScope::User),
            agency.info(),
            NOW + 200,
        )
        .expect("valid");
    assert!(by_root.covers(&console.verified, &agency.policy));
}

#[test]
fn revoking_an_operator_key_covers_every_device_it_certified() {
    let mut agency = Agency::new(7);
    let phone = agency.enroll("kim", Role::Member);
    let revocation = agency.by_root(&agency.new.operator.chain.clone(), RevocationScope::Device);
    let verified = RevocationSet::new()
        .check(&revocation, agency.info(), NOW + 200)
        .expect("valid");
    assert!(verified.covers(&phone.verified, &agency.policy));
}

#[test]
fn a_wipe_receipt_comes_only_from_the_revoked_device() {
    let mut agency = Agency::new(8);
    let phone = agency.enroll("kim", Role::Member);
    let lee = agency.enroll("lee", Role::Member);
    let revocation = agency.by_operator(&phone, RevocationScope::Device);
    let verified = RevocationSet::new()
        .check(&revocation, agency.info(), NOW + 200)
        .expect("valid");
    let receipt_body = |device: &Device| WipeReceiptBody {
        agency: agency.info().id(),
        revocation: verified.id,
        device: device.chain.clone(),
        wiped_at: NOW + 300,
    };
    let receipt = WipeReceipt::sign(receipt_body(&phone), &phone.key);
    let decoded: WipeReceipt = wire::decode(&wire::encode(&receipt)).expect("decodes");
    assert_eq!(
        decoded
            .verify(&verified, agency.info(), &agency.policy)
            .expect("valid")
            .device,
        phone.key.device_id()
    );
    // Lee cannot claim Kim's phone wiped, nor sign for it.
    let by_lee = WipeReceipt::sign(receipt_body(&lee), &lee.key);
    assert!(
        by_lee
            .verify(&verified, agency.info(), &agency.policy)
            .is_err()
    );
    let forged = WipeReceipt::sign(receipt_body(&phone), &lee.key);
    assert!(
        forged
            .verify(&verified, agency.info(), &agency.policy)
            .is_err()
    );
}

#[test]
fn a_cached_chain_is_trusted_only_inside_its_validity() {
    let mut agency = Agency::new(9);
    let phone = agency.enroll("kim", Role::Member);
    let mut cache = ChainCache::new();
    let (first, verifier) = cache
        .verify(&phone.chain, agency.info(), NOW + 10, &agency.policy)
        .expect("valid");
    assert_eq!(first, phone.verified);
    assert!(verifier.is_some());
    let (again, _) = cache
        .verify(&phone.chain, agency.info(), NOW + 20, &agency.policy)
        .expect("from the cache");
    assert_eq!(again, phone.verified);
    // A year and a day later the certificate expired: not answered from memory.
    let late = NOW + 366 * DAY_SECS;
    assert!(matches!(
        cache.verify(&phone.chain, agency.info(), late, &agency.policy),
        Err(TrustError::Expired { .. })
    ));
    // Another agency is never answered from memory either.
    let other = Agency::new(10);
    assert!(
        cache
            .verify(&phone.chain, other.info(), NOW + 30, &agency.policy)
            .is_err()
    );
}

#[test]
fn a_remembered_operator_certificate_vouches_for_no_forged_device() {
    let mut agency = Agency::new(11);
    let phone = agency.enroll("kim", Role::Member);
    let laptop = agency.enroll("lee", Role::Member);
    assert!(
        phone.chain.certificates.len() >= 2,
        "operator above the device"
    );
    let mut cache = ChainCache::new();
    cache
        .verify(&phone.chain, agency.info(), NOW + 10, &agency.policy)
        .expect("valid");
    // Same operator certificate, checked from memory; the device's own is not.
    let mut forged = laptop.chain.clone();
    let leaf = forged.certificates.last_mut().expect("leaf");
    leaf.signature.0.0[0] ^= 1;
    assert!(matches!(
        cache.verify(&forged, agency.info(), NOW + 10, &agency.policy),
        Err(TrustError::BadSignature { .. })
    ));
    // An operator certificate altered is not the one remembered.
    let mut altered = laptop.chain.clone();
    altered.certificates[0].body.serial += 1;
    assert!(matches!(
        cache.verify(&altered, agency.info(), NOW + 10, &agency.policy),
        Err(TrustError::BadSignature { .. })
    ));
    let (verified, _) = cache
        .verify(&laptop.chain, agency.info(), NOW + 10, &agency.policy)
        .expect("genuine");
    assert_eq!(verified, laptop.verified);
}

/// A second operator certified by the root, with a device it enrolled.
fn second_operator(agency: &mut Agency) -> (KeyPair, CertificateChain, Device) {
    let Device { key, chain, .. } = agency.operator("choi.op");
    let device_key = KeyPair::generate(&mut agency.entropy);
    let leaf = CertificateBody {
        agency: agency.info().id(),
        serial: 78,
        key: device_key.public(),
        subject: Subject {
            user_id: "lee".into(),
            display_name: "Lee".into(),
            org_unit: "MOIS/Division 2".parse().expect("org"),
        },
        role: Role::Member,
        not_before: NOW,
        not_after: NOW + 365 * DAY_SECS,
        issuer: key.public(),
    };
    let mut device_chain = chain.clone();
    device_chain
        .certificates
        .push(Certificate::issue(leaf, &key));
    let verified = device_chain
        .verify_for(
            device_key.device_id(),
            agency.info(),
            NOW + 10,
            &agency.policy,
        )
        .expect("valid");
    let device = Device {
        key: device_key,
        chain: device_chain,
        verified,
    };
    (key, chain, device)
}

/// Operator A certifies `key` (which it does not hold) as a member and
/// revokes that certificate.
fn revoke_a_key_it_does_not_hold(agency: &Agency, key: PublicKey) -> Revocation {
    let op = &agency.new.operator;
    let leaf = CertificateBody {
        agency: agency.info().id(),
        serial: 99,
        key,
        subject: Subject {
            user_id: "nobody".into(),
            display_name: "Nobody".into(),
            org_unit: "MOIS".parse().expect("org"),
        },
        role: Role::Member,
        not_before: NOW,
        not_after: NOW + 30 * DAY_SECS,
        issuer: op.key.public(),
    };
    let mut target = op.chain.clone();
    target.certificates.push(Certificate::issue(leaf, &op.key));
    Revocation::sign(
        body_for(
            agency.info(),
            target,
            RevocationScope::Device,
            Issuer::Chain(op.chain.clone()),
        ),
        &op.key,
    )
}

#[test]
fn an_operator_revoking_a_certificate_it_made_for_another_operators_key_neither_covers_that_operator_nor_its_devices()
 {
    let mut agency = Agency::new(21);
    let (other_key, other_chain, lee) = second_operator(&mut agency);
    let mut set = RevocationSet::new();
    let forged = revoke_a_key_it_does_not_hold(&agency, other_key.public());
    if let Ok(verified) = set.check(&forged, agency.info(), NOW + 200) {
        set.insert(verified).expect("room in the set");
    }
    assert!(
        set.covering(&lee.verified).is_none(),
        "a device the other operator enrolled is not shut out"
    );
    // The other operator's own revocations still count.
    let kim = agency.enroll("kim", Role::Member);
    let by_other = Revocation::sign(
        body(
            agency.info(),
            &kim,
            RevocationScope::Device,
            Issuer::Chain(other_chain),
        ),
        &other_key,
    );
    set.check(&by_other, agency.info(), NOW + 200)
        .expect("the other operator is not revoked");
}

#[test]
fn a_certificate_for_the_agency_root_key_is_refused() {
    let agency = Agency::new(22);
    let forged = revoke_a_key_it_does_not_hold(&agency, agency.new.root.public());
    let error = RevocationSet::new()
        .check(&forged, agency.info(), NOW + 200)
        .expect_err("refused");
    assert!(error.to_string().contains("issuing key"), "{error}");
    // An operator certifying its own signing key as a device is refused too.
    let own = revoke_a_key_it_does_not_hold(&agency, agency.new.operator.key.public());
    assert!(
        RevocationSet::new()
            .check(&own, agency.info(), NOW + 200)
            .is_err()
    );
}

#[test]
fn a_retired_phone_cannot_revoke_a_pc_enrolled_after_it_with_a_backdated_revocation() {
    let mut agency = Agency::new(23);
    // Kim's old phone was certified for a year and has long expired; her PC
    // was enrolled after that.
    let old_phone = agency.enroll_at("kim", Role::Member, NOW);
    let pc = agency.enroll_at("kim", Role::Member, NOW + 400 * DAY_SECS);
    let mut backdated = body(
        agency.info(),
        &pc,
        RevocationScope::Device,
        Issuer::Chain(old_phone.chain.clone()),
    );
    backdated.issued_at = NOW + 3600;
    let revocation = Revocation::sign(backdated, &old_phone.key);
    let error = RevocationSet::new()
        .check(&revocation, agency.info(), NOW + 401 * DAY_SECS)
        .expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("before the certificate it revokes"),
        "{error}"
    );
}

#[test]
fn a_flood_of_revocations_of_the_same_device_adds_one_and_the_operator_can_still_revoke() {
    let mut agency = Agency::new(24);
    let pc = agency.enroll("kim", Role::Member);
    let phone = agency.enroll("kim", Role::Member);
    let mut set = RevocationSet::new();
    let mut taken = 0;
    for i in 0..1_000 {
        let mut flood = body(
            agency.info(),
            &phone,
            RevocationScope::Device,
            Issuer::Chain(pc.chain.clone()),
        );
        flood.reason = format!("r{i}");
        flood.wipe = false;
        let revocation = Revocation::sign(flood, &pc.key);
        let verified = set
            .check(&revocation, agency.info(), NOW + 200)
            .expect("each one is valid on its own");
        if set.insert(verified).expect("never full") {
            taken += 1;
        }
    }
    assert_eq!(taken, 1, "re-revoking the same device adds nothing");
    assert_eq!(set.len(), 1);
    // The operator's revocation, with a wipe order, still counts.
    let by_operator = agency.by_operator(&phone, RevocationScope::Device);
    let verified = set
        .check(&by_operator, agency.info(), NOW + 200)
        .expect("valid");
    assert!(set.insert(verified).expect("room"));
    let covering = set.covering(&phone.verified).expect("covered");
    assert_eq!(covering.scope, RevocationScope::Device);
    assert!(
        set.iter().any(|r| r.wipe),
        "the wipe order is not lost behind the user's own revocation"
    );
    assert_eq!(set.len(), 2);
}

/// Kim's older PC and her newer phone, which a thief now holds.
fn pc_and_newer_phone(agency: &mut Agency) -> (Device, Device) {
    let pc = agency.enroll_at("kim", Role::Member, NOW);
    let phone = agency.enroll_at("kim", Role::Member, NOW + 30 * DAY_SECS);
    (pc, phone)
}

fn dated(agency: &AgencyInfo, issuer: &Device, target: &Device, at: u64) -> Revocation {
    let mut body = body(
        agency,
        target,
        RevocationScope::Device,
        Issuer::Chain(issuer.chain.clone()),
    );
    body.issued_at = at;
    Revocation::sign(body, &issuer.key)
}

#[test]
fn a_thief_with_the_newer_phone_cannot_wipe_the_older_pc_and_the_pc_s_answer_wins_in_any_order() {
    let mut agency = Agency::new(25);
    let (pc, phone) = pc_and_newer_phone(&mut agency);
    let now = NOW + 40 * DAY_SECS;
    // The thief strikes first, ordering a wipe; Kim answers from her PC.
    let strike = dated(agency.info(), &phone, &pc, now - 60);
    let answer = dated(agency.info(), &pc, &phone, now);

    let mut set = RevocationSet::new();
    let strike = set.check(&strike, agency.info(), now).expect("valid");
    assert!(strike.wipe, "the thief asked for a wipe");
    assert!(
        !strike.orders_wipe(),
        "a newer device never wipes an older one of the same user"
    );
    set.insert(strike.clone()).expect("taken");
    assert!(
        set.covering(&pc.verified).is_some(),
        "the PC is shut out for now"
    );
    // The PC is revoked here, yet its answer to the phone that revoked it counts.
    let answer = set
        .check(&answer, agency.info(), now)
        .expect("the older device wins");
    assert!(
        answer.orders_wipe(),
        "the older PC may wipe the newer phone"
    );
    set.insert(answer.clone()).expect("taken");
    assert!(set.covering(&phone.verified).is_some(), "the thief is out");
    assert!(set.covering(&pc.verified).is_none(), "the PC is back");
    assert!(set.is_overruled(&strike.id));

    // Arriving the other way round gives the same set.
    let mut other = RevocationSet::new();
    other.insert(answer).expect("taken");
    let late = other
        .check(
            &dated(agency.info(), &phone, &pc, now - 60),
            agency.info(),
            now,
        )
        .expect("held, so that every node holds the same set");
    other.insert(late).expect("taken");
    assert!(other.is_overruled(&strike.id));
    assert_eq!(other.digest(), set.digest());
    assert!(other.covering(&pc.verified).is_none());
    assert!(other.covering(&phone.verified).is_some());
}

#[test]
fn an_older_stolen_phone_wins_over_the_pc_until_an_operator_revokes_it() {
    let mut agency = Agency::new(26);
    // This time the phone is the older device.
    let phone = agency.enroll_at("kim", Role::Member, NOW);
    let pc = agency.enroll_at("kim", Role::Member, NOW + 30 * DAY_SECS);
    let now = NOW + 40 * DAY_SECS;
    let mut set = RevocationSet::new();
    let strike = set
        .check(&dated(agency.info(), &phone, &pc, now), agency.info(), now)
        .expect("valid");
    assert!(
        strike.orders_wipe(),
        "the older device wins: the rule is written down"
    );
    set.insert(strike.clone()).expect("taken");
    let answer = dated(agency.info(), &pc, &phone, now);
    let answer = set
        .check(&answer, agency.info(), now)
        .expect("held, like any loser of a conflict, so every node holds the same set");
    set.insert(answer.clone()).expect("taken");
    assert!(
        set.is_overruled(&answer.id),
        "the newer PC loses to the older phone"
    );
    assert!(set.covering(&pc.verified).is_some());
    assert!(set.covering(&phone.verified).is_none());
    // Kim calls her operator: the operator's word wins over the phone's.
    let by_operator = agency.by_operator(&phone, RevocationScope::Device);
    let by_operator = set.check(&by_operator, agency.info(), now).expect("valid");
    set.insert(by_operator).expect("taken");
    assert!(!set.is_overruled(&answer.id), "now the PC's answer counts");
    assert!(set.covering(&pc.verified).is_none(), "the PC is back");
    assert!(set.is_overruled(&strike.id));
}

#[test]
fn a_phone_whose_certificate_expired_cannot_revoke_whatever_date_it_writes() {
    let mut agency = Agency::new(27);
    // Both certified for a year from NOW; the phone's certificate is then
    // let expire, the PC's renewed (a new certificate of a new key).
    let phone = agency.enroll_at("kim", Role::Member, NOW);
    let pc = agency.enroll_at("kim", Role::Member, NOW + 200 * DAY_SECS);
    // Dated inside the phone's validity and after the PC's start, received
    // once the phone's certificate has ended.
    let revocation = dated(agency.info(), &phone, &pc, NOW + 300 * DAY_SECS);
    let later = NOW + 400 * DAY_SECS;
    let error = RevocationSet::new()
        .check(&revocation, agency.info(), later)
        .expect_err("the issuer's chain is checked when the revocation arrives");
    assert!(error.to_string().contains("expired"), "{error}");
    // While the phone was valid, the same revocation counted.
    RevocationSet::new()
        .check(&revocation, agency.info(), NOW + 300 * DAY_SECS)
        .expect("valid then");
}

#[test]
fn an_operator_minting_certificates_to_fill_the_set_stops_at_its_share() {
    let mut agency = Agency::new(28);
    let mut set = RevocationSet::with_shares(4, 10);
    let mut refused = 0;
    for _ in 0..12 {
        let fake = KeyPair::generate(&mut agency.entropy);
        let revocation = revoke_a_key_it_does_not_hold(&agency, fake.public());
        let verified = set
            .check(&revocation, agency.info(), NOW + 200)
            .expect("an operator may revoke a device it made up");
        match set.insert(verified) {
            Ok(true) => {}
            Err(RevocationError::IssuerFull { max: 10, .. }) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((set.len(), refused), (10, 2));
    // The root, and other issuers, still revoke.
    let lee = agency.enroll("lee", Role::Member);
    let by_root = set
        .check(
            &agency.by_root(&lee.chain, RevocationScope::Device),
            agency.info(),
            NOW + 200,
        )
        .expect("valid");
    assert!(set.insert(by_root).expect("room for the root"));
}

#[test]
fn a_revocation_leaves_the_set_once_its_certificate_has_expired() {
    let mut agency = Agency::new(29);
    let phone = agency.enroll("kim", Role::Member);
    let mut set = RevocationSet::new();
    let revocation = agency.by_operator(&phone, RevocationScope::Device);
    let verified = set
        .check(&revocation, agency.info(), NOW + 200)
        .expect("valid");
    let ends = verified.expires_at();
    set.insert(verified.clone()).expect("taken");
    assert!(set.prune_expired(ends).is_empty(), "still valid at its end");
    let kept = ends + TrustPolicy::default().clock_skew_secs + KEPT_AFTER_EXPIRY_SECS;
    assert!(
        set.prune_expired(kept).is_empty(),
        "kept a while for devices that were off past their certificate's end"
    );
    let after = kept + 1;
    assert_eq!(set.prune_expired(after), vec![verified]);
    assert!(set.is_empty());
    assert_eq!(set.digest(), empty_revocation_digest());
    // And it is not taken again from a peer that still offers it.
    assert!(matches!(
        set.check(&revocation, agency.info(), after),
        Err(RevocationError::Expired(_))
    ));
}

#[test]
fn revoking_a_moved_official_s_old_certificate_leaves_the_new_one_of_the_same_key_in() {
    let mut agency = Agency::new(30);
    let key = KeyPair::generate(&mut agency.entropy);
    let mut certify = |org: &str, at: u64| {
        let request = EnrollmentRequest::new(&key, "lee", at).expect("request");
        let bundle = agency
            .new
            .operator
            .enroll(
                &request,
                Enrollment {
                    subject: Subject {
                        user_id: "lee".into(),
                        display_name: "Lee".into(),
                        org_unit: org.parse().expect("org"),
                    },
                    role: Role::Member,
                    days: 365,
                    bootstrap: Vec::new(),
                },
                &agency.new.network_key,
                at,
                &agency.policy,
                &mut agency.entropy,
            )
            .expect("enroll");
        let verified = bundle
            .verify_for(key.device_id(), at, &agency.policy)
            .expect("valid");
        (bundle.body.chain, verified)
    };
    let (old_chain, old) = certify("MOIS/Division 2", NOW);
    let (_, new) = certify("MOIS/Division 3", NOW + 60);
    let mut retire = body_for(
        agency.info(),
        old_chain,
        RevocationScope::Certificate,
        Issuer::Chain(agency.new.operator.chain.clone()),
    );
    retire.reason = "moved to Division 3".into();
    retire.wipe = false;
    let revocation = Revocation::sign(retire, &agency.new.operator.key);
    let mut set = RevocationSet::new();
    let verified = set
        .check(&revocation, agency.info(), NOW + 200)
        .expect("valid");
    assert!(
        verified.describe().contains("MOIS/Division 2"),
        "{}",
        verified.describe()
    );
    set.insert(verified).expect("taken");
    assert!(set.covering(&old).is_some(), "the old certificate is out");
    assert!(
        set.covering(&new).is_none(),
        "the same key under its new one is in"
    );
    // A member cannot retire certificates: only whole devices of their own.
    let kim_pc = agency.enroll("kim", Role::Member);
    let kim_phone = agency.enroll("kim", Role::Member);
    let mut own = body(
        agency.info(),
        &kim_phone,
        RevocationScope::Certificate,
        Issuer::Chain(kim_pc.chain.clone()),
    );
    own.wipe = false;
    assert!(
        set.check(
            &Revocation::sign(own, &kim_pc.key),
            agency.info(),
            NOW + 200
        )
        .is_err()
    );
}

#[test]
fn revoking_a_device_already_revoked_with_a_wipe_adds_nothing() {
    let mut agency = Agency::new(41);
    let phone = agency.enroll("kim", Role::Member);
    let pc = agency.enroll("kim", Role::Member);
    let mut set = RevocationSet::new();
    // Kim revoked her own phone from her PC, with a wipe.
    let by_pc = set
        .check(
            &by_device(agency.info(), &pc, &phone),
            agency.info(),
            NOW + 200,
        )
        .expect("self-service");
    assert!(
        set.already_revoked(&by_pc).is_none(),
        "the first one is new"
    );
    set.insert(by_pc.clone()).expect("room");
    // The operator's later revocation of the same phone would add nothing.
    let mut body = body(
        agency.info(),
        &phone,
        RevocationScope::Device,
        Issuer::Chain(agency.new.operator.chain.clone()),
    );
    body.issued_at = NOW + 150;
    let by_operator = set
        .check(
            &Revocation::sign(body.clone(), &agency.new.operator.key),
            agency.info(),
            NOW + 200,
        )
        .expect("valid");
    let existing = set.already_revoked(&by_operator).expect("already revoked");
    assert_eq!(existing.id, by_pc.id);
    assert!(
        existing.issued_by.starts_with("kim's device"),
        "{}",
        existing.issued_by
    );
    // Another device of hers is not covered.
    let other = set
        .check(
            &agency.by_operator(&pc, RevocationScope::Device),
            agency.info(),
            NOW + 200,
        )
        .expect("valid");
    assert!(set.already_revoked(&other).is_none());

    // A revocation without a wipe does not make a wipe order redundant.
    let mut quiet_set = RevocationSet::new();
    body.wipe = false;
    let quiet = quiet_set
        .check(
            &Revocation::sign(body.clone(), &agency.new.operator.key),
            agency.info(),
            NOW + 200,
        )
        .expect("valid");
    quiet_set.insert(quiet.clone()).expect("room");
    assert!(
        quiet_set.already_revoked(&by_pc).is_none(),
        "adding a wipe order is new"
    );
    assert_eq!(
        quiet_set.already_revoked(&quiet).map(|r| r.id),
        Some(quiet.id)
    );
}
