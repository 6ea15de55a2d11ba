//! End to end: three `baro run` processes on loopback, connected through one
//! bootstrap address, each listing the other two via `baro peers --json`.

use std::collections::BTreeSet;

use baro_tests::{Baro, baro_bin, enroll_device, eventually, init_agency};

#[test]
fn three_processes_find_each_other_through_one_bootstrap_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.path().join("console"));
    init_agency(&operator, "MOIS");
    let devices: Vec<Baro> = ["kim", "lee", "choi"]
        .iter()
        .map(|user| {
            let device = Baro::new(&bin, dir.path().join(user)).with_passphrase(None);
            enroll_device(
                &operator,
                &device,
                dir.path(),
                user,
                "MOIS/Division 2",
                "member",
            );
            device
        })
        .collect();
    let listen = ["run", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];

    let first = devices[0].spawn(listen);
    let bootstrap = eventually(20, "first node listening", || {
        let status = devices[0].run(["--json", "status"]);
        status
            .output
            .status
            .success()
            .then(|| status.json()["listen"][0].as_str().map(str::to_string))?
    });
    let others: Vec<_> = devices[1..]
        .iter()
        .map(|device| {
            device.spawn(
                listen
                    .iter()
                    .copied()
                    .chain(["--bootstrap", bootstrap.as_str()]),
            )
        })
        .collect();

    let ids: Vec<String> = devices
        .iter()
        .map(|d| {
            d.run(["--json", "whoami"]).json()["device_id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect();
    for (i, device) in devices.iter().enumerate() {
        let expected: BTreeSet<String> = ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, id)| id.clone())
            .collect();
        let peers = eventually(30, "peers listed", || {
            let peers = device.run(["--json", "peers"]).json();
            let seen: BTreeSet<String> = peers
                .as_array()?
                .iter()
                .filter_map(|p| p["device"].as_str().map(str::to_string))
                .collect();
            (seen == expected).then_some(peers)
        });
        for peer in peers.as_array().expect("array") {
            assert_eq!(peer["org_unit"], "MOIS/Division 2");
            assert_eq!(peer["role"], "member");
            assert!(
                peer["address"]
                    .as_str()
                    .expect("address")
                    .starts_with("/ip4/127.0.0.1/tcp/")
            );
            assert!(
                ["bootstrap", "kademlia", "inbound"]
                    .contains(&peer["found_by"].as_str().expect("found_by"))
            );
        }
    }
    // A second node on the same home is refused; status answers while running.
    devices[0].run(listen).fails_with("already running");
    let status = devices[0].run(["--json", "status"]).json();
    assert_eq!(status["peers"], 2);

    for node in others {
        assert!(node.stop(), "node stops cleanly on SIGTERM");
    }
    let log = first.log();
    assert!(first.stop(), "first node stops cleanly");
    assert!(log.contains("admitted"), "{log}");
    devices[0].run(["peers"]).fails_with("no node is running");
}
