use super::*;
use crate::identity::{KeyPair, SeededEntropy};
use crate::trust::{Enrollment, EnrollmentRequest, NewAgency, Role, Subject, TrustPolicy};

const NOW: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

struct World {
    entropy: SeededEntropy,
    agency: NewAgency,
    directory: Directory,
}

impl World {
    fn new() -> Self {
        let mut entropy = SeededEntropy::new(3);
        let op = Subject {
            user_id: "op".into(),
            display_name: "Operator".into(),
            org_unit: "MOIS".parse().expect("org"),
        };
        let agency = NewAgency::create("MOIS", op, NOW, &mut entropy).expect("agency");
        World {
            entropy,
            agency,
            directory: Directory::new(),
        }
    }

    /// Enrolls a device for `user` at `org` (at `at`, valid `days`) and
    /// returns its key and verified chain.
    fn enroll(
        &mut self,
        user: &str,
        name: &str,
        org: &str,
        at: u64,
        days: u64,
    ) -> (PublicKey, CertificateChain, VerifiedDevice) {
        let key = KeyPair::generate(&mut self.entropy);
        self.certify(&key, user, name, org, at, days)
    }

    fn certify(
        &mut self,
        key: &KeyPair,
        user: &str,
        name: &str,
        org: &str,
        at: u64,
        days: u64,
    ) -> (PublicKey, CertificateChain, VerifiedDevice) {
        let policy = TrustPolicy::default();
        let request = EnrollmentRequest::new(key, name, at).expect("request");
        let bundle = self
            .agency
            .operator
            .enroll(
                &request,
                Enrollment {
                    subject: Subject {
                        user_id: user.into(),
                        display_name: name.into(),
                        org_unit: org.parse().expect("org"),
                    },
                    role: Role::Member,
                    days,
                    bootstrap: vec![],
                },
                &self.agency.network_key,
                at,
                &policy,
                &mut self.entropy,
            )
            .expect("enroll");
        let chain = bundle.body.chain;
        let verified = chain
            .verify_for(key.device_id(), &self.agency.operator.agency, at, &policy)
            .expect("verifies");
        (key.public(), chain, verified)
    }

    fn add(&mut self, user: &str, name: &str, org: &str) -> PublicKey {
        let (key, chain, verified) = self.enroll(user, name, org, NOW, 365);
        self.directory.insert(chain, verified).expect("taken");
        key
    }

    fn users(&self, query: &DirectoryQuery) -> Vec<String> {
        self.directory
            .answer(query, NOW + DAY, |_| true)
            .chains
            .iter()
            .filter_map(|c| c.leaf().map(|l| l.body.subject.user_id.clone()))
            .collect()
    }
}

#[test]
fn a_user_is_found_by_id_with_every_device_and_by_korean_name() {
    let mut world = World::new();
    world.add("kim.minji", "김민지", "MOIS/디지털정부국/2과");
    world.add("kim.minji", "김민지", "MOIS/디지털정부국/2과");
    world.add("lee.jun", "이준", "MOIS/디지털정부국/1과");
    assert_eq!(
        world.users(&DirectoryQuery::User("kim.minji".into())),
        ["kim.minji", "kim.minji"]
    );
    assert_eq!(
        world.users(&DirectoryQuery::Search("민지".into())),
        ["kim.minji", "kim.minji"]
    );
    assert_eq!(
        world.users(&DirectoryQuery::Search("LEE".into())),
        ["lee.jun"]
    );
    assert!(world.users(&DirectoryQuery::User("park".into())).is_empty());
    assert!(
        world
            .users(&DirectoryQuery::Search(String::new()))
            .is_empty()
    );
}

#[test]
fn a_unit_lists_its_members_and_with_below_its_sub_units_but_not_look_alikes() {
    let mut world = World::new();
    world.add("a", "A", "MOIS/B1");
    world.add("b", "B", "MOIS/B1/D1");
    world.add("c", "C", "MOIS/B1 Annex");
    world.add("d", "D", "MOIS/B2");
    let unit = |below| DirectoryQuery::Unit {
        unit: "MOIS/B1".parse().expect("org"),
        below,
        after: None,
    };
    assert_eq!(world.users(&unit(false)), ["a"]);
    assert_eq!(world.users(&unit(true)), ["a", "b"]);
}

#[test]
fn a_long_listing_comes_in_pages_that_cover_everyone_once() {
    let mut world = World::new();
    for i in 0..150 {
        world.add(&format!("user{i:03}"), "x", "MOIS/B1");
    }
    world.add("other", "x", "MOIS/B2");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let answer = world.directory.answer(
            &DirectoryQuery::Unit {
                unit: "MOIS/B1".parse().expect("org"),
                below: true,
                after: after.clone(),
            },
            NOW + DAY,
            |_| true,
        );
        assert!(answer.chains.len() <= MAX_ANSWER_DEVICES);
        seen.extend(
            answer
                .chains
                .iter()
                .filter_map(|c| c.leaf().map(|l| l.body.subject.user_id.clone())),
        );
        match answer.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..150).map(|i| format!("user{i:03}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn a_moved_official_is_listed_in_the_new_unit_only_and_an_old_certificate_cannot_move_them_back() {
    let mut world = World::new();
    let key = KeyPair::generate(&mut world.entropy);
    let (_, old_chain, old) = world.certify(&key, "kim", "Kim", "MOIS/B1", NOW, 365);
    let (_, new_chain, new) = world.certify(&key, "kim", "Kim", "MOIS/B2", NOW + DAY, 365);
    world
        .directory
        .insert(old_chain.clone(), old.clone())
        .expect("first");
    world.directory.insert(new_chain, new).expect("newer wins");
    assert_eq!(
        world.directory.insert(old_chain, old),
        Err(DirectoryError::Older)
    );
    let unit = |path: &str| DirectoryQuery::Unit {
        unit: path.parse().expect("org"),
        below: false,
        after: None,
    };
    assert!(world.users(&unit("MOIS/B1")).is_empty());
    assert_eq!(world.users(&unit("MOIS/B2")), ["kim"]);
    assert_eq!(world.directory.len(), 1);
}

#[test]
fn revoked_and_expired_devices_are_not_answered() {
    let mut world = World::new();
    let phone = world.add("kim", "Kim", "MOIS/B1");
    world.add("kim", "Kim", "MOIS/B1");
    world.add("lee", "Lee", "MOIS/B1");
    let (_, chain, verified) = world.enroll("park", "Park", "MOIS/B1", NOW, 1);
    world.directory.insert(chain, verified).expect("taken");
    assert!(world.directory.remove(&phone));
    assert_eq!(
        world.users(&DirectoryQuery::User("kim".into())),
        ["kim"],
        "the other device stays"
    );
    let lee_only = world
        .directory
        .answer(&DirectoryQuery::Search("e".into()), NOW + DAY, |d| {
            d.subject.user_id != "kim"
        });
    assert!(
        lee_only
            .chains
            .iter()
            .all(|c| c.leaf().is_some_and(|l| l.body.subject.user_id != "kim")),
        "what the caller's revocation check refuses is not answered"
    );
    assert_eq!(world.directory.remove_user("kim"), 1);
    // Park's one-day certificate has lapsed by the time of the question.
    assert_eq!(
        world
            .directory
            .answer(&DirectoryQuery::User("park".into()), NOW + 2 * DAY, |_| {
                true
            }),
        DirectoryAnswer::default()
    );
    assert_eq!(world.directory.expire(NOW + 2 * DAY), 1);
    assert_eq!(world.directory.len(), 1);
}

#[test]
fn the_directory_formats_match_their_golden_bytes() {
    let mut world = World::new();
    let (_, chain, _) = world.enroll("kim.minji", "김민지", "MOIS/디지털정부국/2과", NOW, 365);
    let query = DirectoryQuery::Unit {
        unit: "MOIS/디지털정부국".parse().expect("org"),
        below: true,
        after: Some(DirectoryCursor {
            unit: "MOIS/디지털정부국/1과".into(),
            user: "lee.jun".into(),
            device: PublicKey([5; 32]),
        }),
    };
    let answer = DirectoryAnswer {
        chains: vec![chain],
        next: None,
    };
    for (name, bytes) in [
        ("directory_query", crate::wire::encode(&query)),
        ("directory_answer", crate::wire::encode(&answer)),
    ] {
        crate::wire::check_golden_bytes(name, &bytes);
    }
    assert_eq!(
        crate::wire::decode::<DirectoryQuery>(&crate::wire::encode(&query)).expect("query"),
        query
    );
    assert_eq!(
        crate::wire::decode::<DirectoryAnswer>(&crate::wire::encode(&answer)).expect("answer"),
        answer
    );
}
