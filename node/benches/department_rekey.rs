//! What re-keying the agency's top department room costs after one
//! revocation, side by side in one run: today's flat grants (the new room
//! key wrapped to every other device, `KeyGrant::issue`) against the org
//! key tree (`rooms::key_tree`: the revoked device's path renewed, each
//! unit's secret wrapped to its children and direct devices).
//!
//! Agencies: 100 devices (2 bureaus × 2 divisions × 5 teams × 5), 1,000
//! (5 × 4 × 5 × 10) and 130,000 (13 × 10 × 10 × 100). Every wrap is a real
//! HPKE seal and every byte count a real encoding, except the flat row at
//! 130,000, which is a model: wraps N − 1, bytes and time scaled from the
//! 1,000-device run (set BARO_BENCH_FLAT_FULL=1 to seal all 129,999).
//! The tree's units are given keys without sealing them first (only the
//! public keys matter for a re-key); what keying the whole tree once costs
//! is the formula N + units − 1 wraps. The last two columns: the same
//! revocation rotated by a device in another bureau instead, the revoked
//! path's compromised units reached through their covers.
//!
//! Run: `cargo bench -p baro-node --bench department_rekey`.

use std::time::Instant;

use baro_node::crypto::{RoomKey, UnitSecret};
use baro_node::identity::{KeyPair, PublicKey, SeededEntropy};
use baro_node::rooms::key_tree::{
    KeyTree, PathRekey, RekeyBody, UnitKeyring, UnitRekey, path_to_root,
};
use baro_node::rooms::{KeyGrant, RoomId};
use baro_node::trust::OrgUnit;
use baro_node::wire::encode;

const NOW: u64 = 1_800_000_000;

struct Shape {
    bureaus: usize,
    divisions: usize,
    teams: usize,
    devices: usize,
}

impl Shape {
    fn total(&self) -> usize {
        self.bureaus * self.divisions * self.teams * self.devices
    }
    fn units(&self) -> usize {
        1 + self.bureaus * (1 + self.divisions * (1 + self.teams))
    }
}

struct Row {
    devices: usize,
    flat_wraps: usize,
    flat_bytes: f64,
    flat_ms: f64,
    flat_modelled: bool,
    tree_wraps: usize,
    tree_bytes: usize,
    tree_ms: f64,
    open_ms: f64,
    far_wraps: usize,
    far_bytes: usize,
}

fn org(path: &str) -> OrgUnit {
    path.parse().expect("org unit")
}

fn measure(shape: &Shape, flat_per_wrap: Option<(f64, f64)>) -> Row {
    let mut entropy = SeededEntropy::new(5);
    let mut tree = KeyTree::new();
    let mut devices: Vec<(KeyPair, OrgUnit)> = Vec::with_capacity(shape.total());
    for b in 0..shape.bureaus {
        for d in 0..shape.divisions {
            for t in 0..shape.teams {
                let team = org(&format!("MOIS/Bureau {b}/Division {d}/Team {t}"));
                for _ in 0..shape.devices {
                    let key = KeyPair::generate(&mut entropy);
                    tree.add_device(&team, key.public());
                    devices.push((key, team.clone()));
                }
            }
        }
    }
    // Give every unit a key (public halves only; see the module docs).
    let mut secrets = std::collections::HashMap::new();
    let mut units: Vec<OrgUnit> = devices
        .iter()
        .flat_map(|(_, team)| path_to_root(team))
        .collect();
    units.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    units.dedup();
    for unit in &units {
        let secret = UnitSecret::generate(&mut entropy);
        tree.learn(&RekeyBody {
            units: vec![UnitRekey {
                unit: unit.clone(),
                epoch: 1,
                public: secret.public(),
                secret_id: secret.secret_id(),
                wraps: Vec::new(),
            }],
            issued_at: NOW,
        });
        secrets.insert(unit.to_string(), secret);
    }
    assert_eq!(units.len(), shape.units());

    // Device 0 is revoked; device 1, its team-mate, renews the path.
    let (revoked, team) = (&devices[0].0, devices[0].1.clone());
    tree.remove_device(&team, &revoked.public());
    let started = Instant::now();
    let made = tree
        .rekey(&team, &org("MOIS"), NOW, &mut entropy)
        .expect("rekey");
    let rekey = PathRekey::sign(made.body, &devices[1].0);
    let tree_ms = started.elapsed().as_secs_f64() * 1000.0;
    let tree_bytes = encode(&rekey).len();
    // Had no team-mate been around: a device in another bureau rotates
    // the top room along its own path; the revoked path's units are
    // reached through their covers (see the module docs).
    let (far, far_team) = &devices[devices.len() - 1];
    let far_rekey = tree
        .rekey(far_team, &org("MOIS"), NOW, &mut entropy)
        .expect("rekey");
    let far_rekey = PathRekey::sign(far_rekey.body, far);
    let (far_wraps, far_bytes) = (far_rekey.wraps(), encode(&far_rekey).len());
    // A device in another bureau opens the new top key through its path.
    let mut ring = UnitKeyring::new(far_team);
    let far_secrets: Vec<_> = path_to_root(far_team)
        .into_iter()
        .map(|u| {
            let secret = secrets[u.as_str()].clone();
            (u, 1, secret)
        })
        .collect();
    ring.keep(far_secrets);
    let started = Instant::now();
    ring.accept(far, &rekey.body).expect("opens");
    let open_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(ring.epoch(&org("MOIS")), Some(2));

    // Today: the top room's new key wrapped to every other device.
    let others: Vec<PublicKey> = devices[1..].iter().map(|(k, _)| k.public()).collect();
    let (flat_wraps, flat_bytes, flat_ms, flat_modelled) = match flat_per_wrap {
        Some((bytes_per_wrap, ms_per_wrap)) => (
            others.len(),
            bytes_per_wrap * others.len() as f64,
            ms_per_wrap * others.len() as f64,
            true,
        ),
        None => {
            let key = RoomKey::generate(&mut entropy);
            let room = RoomId([1; 32]);
            let started = Instant::now();
            let grants =
                KeyGrant::issue(&devices[1].0, room, 2, &key, &others, NOW).expect("grants");
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let bytes: usize = grants.iter().map(|g| encode(g).len()).sum();
            (others.len(), bytes as f64, ms, false)
        }
    };
    Row {
        devices: shape.total(),
        flat_wraps,
        flat_bytes,
        flat_ms,
        flat_modelled,
        tree_wraps: rekey.wraps(),
        tree_bytes,
        tree_ms,
        open_ms,
        far_wraps,
        far_bytes,
    }
}

fn main() {
    let shapes = [
        Shape {
            bureaus: 2,
            divisions: 2,
            teams: 5,
            devices: 5,
        },
        Shape {
            bureaus: 5,
            divisions: 4,
            teams: 5,
            devices: 10,
        },
        Shape {
            bureaus: 13,
            divisions: 10,
            teams: 10,
            devices: 100,
        },
    ];
    let full = std::env::var_os("BARO_BENCH_FLAT_FULL").is_some();
    let mut rows: Vec<Row> = Vec::new();
    for shape in &shapes {
        let model = match rows.last() {
            Some(last) if shape.total() > 10_000 && !full => Some((
                last.flat_bytes / last.flat_wraps as f64,
                last.flat_ms / last.flat_wraps as f64,
            )),
            _ => None,
        };
        rows.push(measure(shape, model));
    }
    println!("# Re-keying the top department room after one revocation\n");
    println!(
        "| devices | units | flat: wraps | flat: bytes | flat: ms to seal | tree: wraps | tree: bytes | tree: ms to seal | tree: ms for a far device to open | bytes, tree / flat | tree, rotated from another bureau: wraps | bytes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (row, shape) in rows.iter().zip(&shapes) {
        let mark = if row.flat_modelled { " (model)" } else { "" };
        println!(
            "| {} | {} | {}{mark} | {:.0}{mark} | {:.1}{mark} | {} | {} | {:.1} | {:.2} | {:.5} | {} | {} |",
            row.devices,
            shape.units(),
            row.flat_wraps,
            row.flat_bytes,
            row.flat_ms,
            row.tree_wraps,
            row.tree_bytes,
            row.tree_ms,
            row.open_ms,
            row.tree_bytes as f64 / row.flat_bytes,
            row.far_wraps,
            row.far_bytes,
        );
    }
    println!(
        "\nTree wraps = Σ over the path's units of (children + direct devices); keying the whole tree once costs devices + units − 1 wraps."
    );
}
