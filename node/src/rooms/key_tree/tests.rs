use super::*;
use crate::identity::SeededEntropy;
use crate::wire::{decode, encode};

const NOW: u64 = 1_800_000_000;

fn unit(s: &str) -> OrgUnit {
    s.parse().expect("org unit")
}

/// An agency: devices with their units, one keyring each, and the tree.
struct Agency {
    entropy: SeededEntropy,
    tree: KeyTree,
    devices: Vec<(KeyPair, OrgUnit, UnitKeyring)>,
}

impl Agency {
    fn new(placement: &[(&str, usize)]) -> Self {
        let mut entropy = SeededEntropy::new(11);
        let mut tree = KeyTree::new();
        let mut devices = Vec::new();
        for (path, count) in placement {
            for _ in 0..*count {
                let key = KeyPair::generate(&mut entropy);
                let org = unit(path);
                tree.add_device(&org, key.public());
                let ring = UnitKeyring::new(&org);
                devices.push((key, org, ring));
            }
        }
        Agency {
            entropy,
            tree,
            devices,
        }
    }

    /// Device `by` renews `from` up to `to`; every device takes it.
    fn rekey(&mut self, by: usize, from: &str, to: &str) -> PathRekey {
        let made = self
            .tree
            .rekey(&unit(from), &unit(to), NOW, &mut self.entropy)
            .expect("rekey");
        let rekey = PathRekey::sign(made.body, &self.devices[by].0);
        self.devices[by].2.keep(made.secrets);
        self.deliver(&rekey, Some(by));
        rekey
    }

    fn deliver(&mut self, rekey: &PathRekey, skip: Option<usize>) {
        rekey.verify().expect("verifies");
        self.tree.learn(&rekey.body);
        for (i, (key, _, ring)) in self.devices.iter_mut().enumerate() {
            if Some(i) != skip {
                let _ = ring.accept(key, &rekey.body);
            }
        }
    }

    /// Keys every unit bottom up, each by a device within it.
    fn key_everything(&mut self) {
        let mut units: Vec<OrgUnit> = self
            .devices
            .iter()
            .flat_map(|(_, org, _)| path_to_root(org))
            .collect();
        units.sort_by_key(|u| std::cmp::Reverse(u.units().count()));
        units.dedup();
        for target in units {
            if self.tree.public(&target).is_some() {
                continue;
            }
            let by = self
                .devices
                .iter()
                .position(|(_, org, _)| org.is_within(&target))
                .expect("a device within");
            let name = target.to_string();
            self.rekey(by, &name, &name);
        }
    }

    fn room_key(&self, device: usize, room: &str) -> Option<(u64, RoomKey)> {
        self.devices[device].2.room_key(&unit(room))
    }
}

fn ministry() -> Agency {
    // 0-2 in team 1, 3-4 in team 2, 5-6 directly in bureau 2.
    Agency::new(&[("MOIS/B1/D1/T1", 3), ("MOIS/B1/D1/T2", 2), ("MOIS/B2", 2)])
}

#[test]
fn every_device_holds_the_keys_of_its_department_rooms_and_no_other() {
    let mut agency = ministry();
    agency.key_everything();
    for room in ["MOIS", "MOIS/B1", "MOIS/B1/D1", "MOIS/B1/D1/T1"] {
        let key = agency.room_key(0, room).expect("team 1 holds it");
        assert_eq!(agency.room_key(1, room), Some(key.clone()), "{room}");
    }
    assert_eq!(agency.room_key(0, "MOIS"), agency.room_key(6, "MOIS"));
    assert_eq!(
        agency.room_key(3, "MOIS/B1/D1"),
        agency.room_key(0, "MOIS/B1/D1")
    );
    assert!(agency.room_key(0, "MOIS/B1/D1/T2").is_none());
    assert!(agency.room_key(0, "MOIS/B2").is_none());
    assert!(agency.room_key(5, "MOIS/B1").is_none());
    // Different rooms never share a key.
    assert_ne!(
        agency.room_key(0, "MOIS").map(|k| k.1),
        agency.room_key(0, "MOIS/B1").map(|k| k.1)
    );
}

#[test]
fn a_revoked_device_opens_nothing_of_the_path_rekey_and_everyone_else_moves_on() {
    let mut agency = ministry();
    agency.key_everything();
    let before = agency.room_key(1, "MOIS").expect("key");
    // Device 2 (team 1) is revoked: out of the tree, then a team-mate renews the path.
    let thief = agency.devices[2].0.public();
    assert!(agency.tree.remove_device(&unit("MOIS/B1/D1/T1"), &thief));
    let rekey = agency.rekey(0, "MOIS/B1/D1/T1", "MOIS");
    for room in ["MOIS", "MOIS/B1", "MOIS/B1/D1", "MOIS/B1/D1/T1"] {
        let (epoch, key) = agency.room_key(2, room).expect("old key");
        assert_eq!(epoch, 1, "the thief keeps only what it had");
        let current = agency.room_key(0, room).expect("renewed");
        assert_eq!(current.0, 2, "{room}");
        assert_ne!(current.1, key, "{room}");
    }
    for device in [1, 3, 4, 5, 6] {
        assert_eq!(
            agency.room_key(device, "MOIS"),
            agency.room_key(0, "MOIS"),
            "device {device}"
        );
    }
    assert_ne!(agency.room_key(1, "MOIS"), Some(before));
    let (key, _, ring) = &mut agency.devices[2];
    assert_eq!(ring.accept(key, &rekey.body), Err(KeyTreeError::NotForMe));
}

#[test]
fn after_a_revocation_anyone_may_rotate_the_top_room_and_the_revoked_device_opens_nothing() {
    let mut agency = ministry();
    agency.key_everything();
    // Device 2 (team 1) is revoked; nobody in team 1 is around. Device 5,
    // directly in bureau 2, rotates the top room along its own path. The
    // thief still holds the secrets of T1, D1, B1 and MOIS at epoch 1.
    let thief = agency.devices[2].0.public();
    assert!(agency.tree.remove_device(&unit("MOIS/B1/D1/T1"), &thief));
    for compromised in ["MOIS/B1/D1/T1", "MOIS/B1/D1", "MOIS/B1", "MOIS"] {
        assert!(agency.tree.is_compromised(&unit(compromised)));
    }
    assert!(!agency.tree.is_compromised(&unit("MOIS/B1/D1/T2")));
    let cost = agency
        .tree
        .cost(&unit("MOIS/B2"), &unit("MOIS"))
        .expect("cost");
    let rekey = agency.rekey(5, "MOIS/B2", "MOIS");
    // B2: its 2 devices. MOIS: B2's new key, and B1's cover: D1's cover,
    // which is T1's remaining 2 devices and T2's key (B1, D1 and T1 were
    // known to the thief and are passed by).
    assert_eq!(cost, RekeyCost { units: 2, wraps: 6 });
    assert_eq!(rekey.wraps(), 6);
    let (key, _, ring) = &mut agency.devices[2];
    assert_eq!(ring.accept(key, &rekey.body), Err(KeyTreeError::NotForMe));
    assert_eq!(agency.room_key(2, "MOIS").map(|k| k.0), Some(1));
    let top = agency.room_key(5, "MOIS").expect("renewed");
    assert_eq!(top.0, 2);
    for device in [0, 1, 3, 4, 6] {
        assert_eq!(
            agency.room_key(device, "MOIS"),
            Some(top.clone()),
            "device {device}"
        );
    }
    assert!(
        !agency.tree.is_compromised(&unit("MOIS")),
        "renewed past it"
    );
    assert!(
        agency.tree.is_compromised(&unit("MOIS/B1")),
        "not renewed yet"
    );
    // A team-mate back online renews its own path; the rest is clean again.
    let rekey = agency.rekey(0, "MOIS/B1/D1/T1", "MOIS");
    let (key, _, ring) = &mut agency.devices[2];
    assert_eq!(ring.accept(key, &rekey.body), Err(KeyTreeError::NotForMe));
    for clean in ["MOIS/B1/D1/T1", "MOIS/B1/D1", "MOIS/B1", "MOIS"] {
        assert!(!agency.tree.is_compromised(&unit(clean)), "{clean}");
        assert_ne!(
            agency.room_key(2, clean),
            agency.room_key(0, clean),
            "{clean}"
        );
    }
    for device in [1, 3, 4, 5, 6] {
        assert_eq!(agency.room_key(device, "MOIS"), agency.room_key(0, "MOIS"));
    }
}

#[test]
fn a_rekey_by_a_device_unaware_of_the_removal_leaves_the_unit_compromised() {
    let mut agency = ministry();
    agency.key_everything();
    // Made before device 5 heard of the revocation: it still wraps to B1's old key.
    let unaware = agency
        .tree
        .rekey(&unit("MOIS/B2"), &unit("MOIS"), NOW, &mut agency.entropy)
        .expect("rekey");
    let thief = agency.devices[2].0.public();
    agency.tree.remove_device(&unit("MOIS/B1/D1/T1"), &thief);
    agency.tree.learn(&unaware.body);
    assert!(agency.tree.is_compromised(&unit("MOIS")));
}

#[test]
fn a_rekey_costs_the_path_as_the_formula_says() {
    let mut agency = ministry();
    agency.key_everything();
    let thief = agency.devices[2].0.public();
    agency.tree.remove_device(&unit("MOIS/B1/D1/T1"), &thief);
    let cost = agency
        .tree
        .cost(&unit("MOIS/B1/D1/T1"), &unit("MOIS"))
        .expect("cost");
    // T1: 2 devices; D1: 2 children; B1: 1 child; MOIS: 2 children.
    assert_eq!(cost, RekeyCost { units: 4, wraps: 7 });
    let rekey = agency.rekey(0, "MOIS/B1/D1/T1", "MOIS");
    assert_eq!(rekey.wraps(), cost.wraps);
}

#[test]
fn a_member_cannot_push_a_unit_epoch_out_of_reach() {
    let mut agency = ministry();
    agency.key_everything();
    // Device 3 (team 2) renews team 2 with an epoch far ahead.
    let made = agency
        .tree
        .rekey(
            &unit("MOIS/B1/D1/T2"),
            &unit("MOIS"),
            NOW,
            &mut agency.entropy,
        )
        .expect("rekey");
    let mut body = made.body;
    for unit in &mut body.units {
        unit.epoch = u64::MAX;
    }
    let poisoned = PathRekey::sign(body, &agency.devices[3].0);
    poisoned.verify().expect("well-formed");
    let before = agency.room_key(4, "MOIS");
    let (key, _, ring) = &mut agency.devices[4];
    assert!(matches!(
        ring.accept(key, &poisoned.body),
        Err(KeyTreeError::EpochOutOfStep { .. })
    ));
    assert_eq!(agency.room_key(4, "MOIS"), before);
}

#[test]
fn concurrent_rekeys_of_one_epoch_converge_whatever_the_order() {
    let mut agency = ministry();
    agency.key_everything();
    let a = agency
        .tree
        .rekey(&unit("MOIS/B2"), &unit("MOIS"), NOW, &mut agency.entropy)
        .expect("a");
    let b = agency
        .tree
        .rekey(&unit("MOIS/B2"), &unit("MOIS"), NOW, &mut agency.entropy)
        .expect("b");
    let a = PathRekey::sign(a.body, &agency.devices[5].0);
    let b = PathRekey::sign(b.body, &agency.devices[6].0);
    let (key0, _, ring0) = &mut agency.devices[0];
    // Team 1 and team 2 reach the new MOIS secret through B1's key.
    ring0.accept(key0, &a.body).expect("a");
    let _ = ring0.accept(key0, &b.body);
    let (key3, _, ring3) = &mut agency.devices[3];
    ring3.accept(key3, &b.body).expect("b");
    let _ = ring3.accept(key3, &a.body);
    let first = agency.room_key(0, "MOIS").expect("key");
    assert_eq!(first.0, 2);
    assert_eq!(Some(first), agency.room_key(3, "MOIS"));
}

#[test]
fn concurrent_rekeys_from_two_teams_converge_on_their_common_ancestors() {
    let mut agency = ministry();
    agency.key_everything();
    // Device 0 (team 1) and device 3 (team 2) renew their paths at once:
    // each wraps the new D1, B1 and MOIS secrets to the other team's key
    // as it was, and one of them wins each tie.
    let mut made = Vec::new();
    for (by, from) in [(0, "MOIS/B1/D1/T1"), (3, "MOIS/B1/D1/T2")] {
        let rekeyed = agency
            .tree
            .rekey(&unit(from), &unit("MOIS"), NOW, &mut agency.entropy)
            .expect("rekey");
        let rekey = PathRekey::sign(rekeyed.body, &agency.devices[by].0);
        agency.devices[by].2.keep(rekeyed.secrets);
        made.push((by, rekey));
    }
    // Each team holds its own first, then takes the other's, once.
    for (by, rekey) in &made {
        agency.deliver(rekey, Some(*by));
    }
    for room in ["MOIS", "MOIS/B1", "MOIS/B1/D1"] {
        let key = agency.room_key(0, room).expect("held");
        assert_eq!(key.0, 2, "{room}");
        for device in [1, 3, 4] {
            assert_eq!(
                agency.room_key(device, room),
                Some(key.clone()),
                "{room} on {device}"
            );
        }
    }
    assert_eq!(agency.room_key(5, "MOIS"), agency.room_key(0, "MOIS"));
    assert_eq!(agency.room_key(6, "MOIS"), agency.room_key(0, "MOIS"));
}

#[test]
fn forged_or_misordered_rekeys_are_refused() {
    let mut agency = ministry();
    agency.key_everything();
    let made = agency
        .tree
        .rekey(
            &unit("MOIS/B1/D1/T1"),
            &unit("MOIS"),
            NOW,
            &mut agency.entropy,
        )
        .expect("rekey");
    let good = PathRekey::sign(made.body, &agency.devices[0].0);
    let mut altered = good.clone();
    altered.body.units[0].epoch += 1;
    assert_eq!(altered.verify(), Err(KeyTreeError::BadSignature));
    let mut body = good.body.clone();
    body.units.swap(0, 1);
    let misordered = PathRekey::sign(body, &agency.devices[0].0);
    assert_eq!(misordered.verify(), Err(KeyTreeError::NotAPath));
    // Wraps made for others, readdressed to device 1, do not open for it.
    let mut body = good.body.clone();
    let stranger = agency.devices[1].0.public();
    body.units[0]
        .wraps
        .retain(|w| w.to != Recipient::Device(stranger));
    for wrap in &mut body.units[0].wraps {
        wrap.to = Recipient::Device(stranger);
    }
    let (key, _, ring) = &mut agency.devices[1];
    let before = ring.epoch(&unit("MOIS/B1/D1/T1"));
    assert!(ring.accept(key, &body).is_err());
    assert_eq!(ring.epoch(&unit("MOIS/B1/D1/T1")), before);
    assert_eq!(good.lowest(), Some(&unit("MOIS/B1/D1/T1")));
}

#[test]
fn a_child_without_a_key_is_reached_through_its_devices() {
    let mut agency = ministry();
    // Only team 1's path is keyed: team 2 and bureau 2 get MOIS directly.
    let rekey = agency.rekey(0, "MOIS/B1/D1/T1", "MOIS");
    // T1: 2 others + me; D1: T1 + T2's 2 devices; B1: D1; MOIS: B1 + B2's 2.
    assert_eq!(rekey.wraps(), 3 + 3 + 1 + 3);
    assert_eq!(agency.room_key(4, "MOIS"), agency.room_key(0, "MOIS"));
    assert!(agency.room_key(4, "MOIS/B1/D1/T2").is_none());
}

#[test]
fn the_rekey_format_matches_its_golden_bytes() {
    let mut entropy = SeededEntropy::new(42);
    let issuer = KeyPair::generate(&mut entropy);
    let device = KeyPair::generate(&mut entropy);
    let wrapped = WrappedSecret {
        encapped: [7; 32],
        sealed: [9; 32],
        tag: [8; 16],
    };
    let body = RekeyBody {
        units: vec![
            UnitRekey {
                unit: unit("MOIS/Digital Government Bureau"),
                epoch: 2,
                public: UnitPublic([1; 32]),
                secret_id: [2; 16],
                wraps: vec![UnitWrap {
                    to: Recipient::Device(device.public()),
                    secret: wrapped.clone(),
                }],
            },
            UnitRekey {
                unit: unit("MOIS"),
                epoch: 5,
                public: UnitPublic([3; 32]),
                secret_id: [4; 16],
                wraps: vec![UnitWrap {
                    to: Recipient::Unit(UnitPublic([1; 32])),
                    secret: wrapped,
                }],
            },
        ],
        issued_at: NOW,
    };
    let rekey = PathRekey::sign(body, &issuer);
    let bytes = encode(&rekey);
    crate::wire::check_golden_bytes("path_rekey", &bytes);
    assert_eq!(decode::<PathRekey>(&bytes).expect("decodes"), rekey);
    assert_eq!(bytes.len(), 2 + encode_len_of_units(&rekey));
}

/// Header-less length: what each part adds (pins the 116 bytes per wrap
/// the module docs quote).
fn encode_len_of_units(rekey: &PathRekey) -> usize {
    let per_wrap = 4 + 32 + 32 + 32 + 16;
    assert_eq!(per_wrap, 116);
    let units: usize = rekey
        .body
        .units
        .iter()
        .map(|u| 8 + u.unit.as_str().len() + 8 + 32 + 16 + 8 + u.wraps.len() * per_wrap)
        .sum();
    8 + units + 8 + 32 + 64
}
