//! End to end on real hosts: two `baro run` processes, each in its own
//! network namespace, joined by a Linux bridge. With no bootstrap address
//! they can only find each other by mDNS. They chat in their department
//! room, are cut apart (one side's link goes down), each write while cut
//! off, and converge once the link is back.
//!
//! Needs root and iproute2 (`ip`); CI runs as root. Without them the test
//! prints why it is skipped and returns.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use baro_tests::{Baro, baro_bin, enroll_device, eventually, init_agency};

const ROOM: &str = "MOIS/Division 2";
/// The hosts' addresses on the bridge's subnet (inside the namespaces only).
const ADDRESSES: [&str; 2] = ["10.77.0.1", "10.77.0.2"];
/// Namespace names start with this, then the test process id.
const PREFIX: &str = "baro-netns-";

/// Prints why the test does not run, to both streams, so it is not a silent pass.
fn skip(reason: &str) {
    eprintln!("SKIPPED netns test: {reason}");
    println!("SKIPPED netns test: {reason}");
}

/// Runs `ip args…`; `Err` carries the command and what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two hosts (namespaces) joined by a bridge in a third namespace, so
/// nothing is added to the machine's own network. Every namespace, and with
/// it every link and address, is deleted on drop, even after a panic.
struct Lab {
    bridge: String,
    hosts: [String; 2],
    /// Namespaces created so far, deleted on drop.
    created: Vec<String>,
}

impl Lab {
    /// `Err` says why the network could not be built.
    fn create() -> Result<Lab, String> {
        remove_stale_namespaces();
        let run = format!("{PREFIX}{}", std::process::id());
        let mut lab = Lab {
            bridge: format!("{run}-br"),
            hosts: [format!("{run}-a"), format!("{run}-b")],
            created: Vec::new(),
        };
        for ns in [
            lab.bridge.clone(),
            lab.hosts[0].clone(),
            lab.hosts[1].clone(),
        ] {
            ip(&["netns", "add", &ns])
                .map_err(|e| format!("cannot create network namespaces: {e}"))?;
            lab.created.push(ns);
        }
        let br = lab.bridge.clone();
        ip(&[
            "-n",
            &br,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "forward_delay",
            "0",
        ])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for (i, host) in lab.hosts.iter().enumerate() {
            let port = format!("port{i}");
            let address = format!("{}/24", ADDRESSES[i]);
            // The host's end is `eth0` in its namespace; the other end is a bridge port.
            ip(&[
                "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                host,
            ])?;
            ip(&["-n", &br, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &br, "link", "set", &port, "up"])?;
            ip(&["-n", host, "link", "set", "lo", "up"])?;
            ip(&["-n", host, "addr", "add", &address, "dev", "eth0"])?;
            ip(&["-n", host, "link", "set", "eth0", "up"])?;
            // mDNS goes to 224.0.0.251: route multicast out of the one real link.
            ip(&["-n", host, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
            // A connection whose peer vanished ends only when TCP gives up
            // retransmitting: ~15 min by default (tcp_retries2 = 15). Give
            // up after 4 retries (~6 s) in these hosts, so a partition shows
            // as disconnected peers within a ping interval (15 s).
            ip(&[
                "netns",
                "exec",
                host,
                "sh",
                "-c",
                "echo 4 > /proc/sys/net/ipv4/tcp_retries2",
            ])?;
        }
        Ok(lab)
    }

    /// Cuts host `i` off (its bridge port down: the cable is pulled) or reconnects it.
    fn set_link(&self, i: usize, up: bool) {
        let port = format!("port{i}");
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.bridge, "link", "set", &port, state]).expect("set the bridge port");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Deletes namespaces left by an earlier run of this test that was killed
/// before its cleanup (its process id no longer exists).
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// A `baro run` inside a namespace; killed if dropped while running.
struct NsNode {
    child: Child,
    log: PathBuf,
}

impl NsNode {
    /// `ip netns exec NS baro --home HOME run …`: mDNS on, no bootstrap.
    fn start(ns: &str, bin: &Path, device: &Baro) -> NsNode {
        let log = device.home().with_extension("log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        // `ip netns exec` enters the namespace and execs baro: the child is baro itself.
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(bin)
            .arg("--home")
            .arg(device.home())
            .args(["run", "--listen", "/ip4/0.0.0.0/tcp/0"])
            .args(["--sync-interval", "2", "--mdns-interval", "2"])
            .env_remove("BARO_HOME")
            .env_remove("BARO_PASSPHRASE")
            .env("BARO_PIN", baro_tests::PIN)
            .env("BARO_TEST_FAST_KDF", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start baro in its namespace");
        NsNode { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM; whether the process then exited successfully.
    fn stop(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for NsNode {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- {}:\n{}", self.log.display(), self.log());
        }
    }
}

/// Polls `check` every 100 ms for up to `secs` seconds until it says done;
/// `Err` holds what it saw last.
fn eventually_or_last<T>(secs: u64, mut check: impl FnMut() -> (bool, T)) -> Result<T, T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (done, seen) = check();
        if done {
            return Ok(seen);
        }
        if Instant::now() >= deadline {
            return Err(seen);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The other devices a node lists, or `None` while its control socket does not answer.
fn peers(device: &Baro) -> Option<Vec<serde_json::Value>> {
    let out = device.run(["--json", "peers"]);
    if !out.output.status.success() {
        return None;
    }
    out.json().as_array().cloned()
}

/// The texts in a node's room history.
fn texts(device: &Baro) -> BTreeSet<String> {
    device
        .run(["--json", "history", ROOM])
        .json()
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter_map(|m| m["text"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Who wrote `text` ("kim: …" or "lee: …").
fn author<'a>(text: &str, kim: &'a Baro, lee: &'a Baro) -> &'a Baro {
    if text.starts_with("kim") { kim } else { lee }
}

fn send(device: &Baro, text: &str) {
    device.run(["send", ROOM, text]).success();
}

#[test]
fn two_hosts_find_each_other_by_mdns_chat_and_converge_after_a_partition() {
    let started = Instant::now();
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return skip(&format!(
                "`ip -V` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Err(e) => return skip(&format!("iproute2's `ip` is not available: {e}")),
    }
    let lab = match Lab::create() {
        Ok(lab) => lab,
        Err(reason) => return skip(&reason),
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.path().join("console"));
    init_agency(&operator, "MOIS");
    let users = ["kim", "lee"];
    let devices = users.map(|user| {
        let device = Baro::new(&bin, dir.path().join(user)).with_passphrase(None);
        enroll_device(&operator, &device, dir.path(), user, ROOM, "member");
        device
    });
    let ids = devices.each_ref().map(|d| {
        d.run(["--json", "whoami"]).json()["device_id"]
            .as_str()
            .expect("device id")
            .to_string()
    });
    let nodes: Vec<NsNode> = (0..2)
        .map(|i| NsNode::start(&lab.hosts[i], &bin, &devices[i]))
        .collect();

    // 1. mDNS alone: each lists the other, at its address on the bridge.
    let mut found_by = Vec::new();
    for i in 0..2 {
        let other = 1 - i;
        let peer = eventually(
            40,
            &format!("{} lists {} (mDNS)", users[i], users[other]),
            || {
                peers(&devices[i])?
                    .into_iter()
                    .find(|p| p["device"] == ids[other].as_str())
            },
        );
        println!("{} sees {}: {peer}", users[i], users[other]);
        assert_eq!(peer["org_unit"], ROOM, "{peer}");
        let address = peer["address"].as_str().expect("address");
        assert!(
            address.starts_with(&format!("/ip4/{}/tcp/", ADDRESSES[other])),
            "{peer}"
        );
        found_by.push(peer["found_by"].as_str().expect("found_by").to_string());
    }
    // The side whose mDNS dial won lists "mdns"; a side that was dialed
    // first lists "inbound" (it does not dial a peer it is connected to).
    assert!(found_by.iter().any(|f| f == "mdns"), "{found_by:?}");
    assert!(
        found_by.iter().all(|f| f == "mdns" || f == "inbound"),
        "{found_by:?}"
    );
    println!("found_by: {found_by:?} ({:.1?})", started.elapsed());

    // 2. A message each way in the department room.
    let [kim, lee] = &devices;
    send(kim, "kim: before the partition");
    eventually(30, "lee reads kim's message", || {
        texts(lee)
            .contains("kim: before the partition")
            .then_some(())
    });
    send(lee, "lee: before the partition");
    eventually(30, "kim reads lee's message", || {
        texts(kim)
            .contains("lee: before the partition")
            .then_some(())
    });
    println!("chatted ({:.1?})", started.elapsed());

    // 3. Partition: kim's cable is pulled. Each side writes at once, while
    // its node still counts the other as connected: gossip hands these to
    // a dead connection, so only reconciliation can bring them across.
    lab.set_link(0, false);
    let cut = Instant::now();
    let mut partitioned = vec![
        "kim: as the link went down".to_string(),
        "lee: as the link went down".to_string(),
    ];
    for text in &partitioned {
        send(author(text, kim, lee), text);
    }
    // Wait until both nodes notice: their peers lists are empty.
    eventually(60, "both nodes notice the partition (peers empty)", || {
        (peers(kim)?.is_empty() && peers(lee)?.is_empty()).then_some(())
    });
    println!("partition noticed after {:.1?}", cut.elapsed());
    // Then three messages each, with nobody to take them.
    let cut_off: Vec<String> = (1..=3)
        .flat_map(|n| [format!("kim: cut off #{n}"), format!("lee: cut off #{n}")])
        .collect();
    for text in &cut_off {
        let said = author(text, kim, lee).run(["send", ROOM, text]).success();
        println!("send '{text}': {}", said.trim());
    }
    partitioned.extend(cut_off);
    // Give a leak a moment to show (there is no link: nothing may arrive).
    std::thread::sleep(Duration::from_secs(3));
    let (kim_sees, lee_sees) = (texts(kim), texts(lee));
    for text in &partitioned {
        let (own, other) = if text.starts_with("kim") {
            (&kim_sees, &lee_sees)
        } else {
            (&lee_sees, &kim_sees)
        };
        assert!(own.contains(text), "sender keeps '{text}': {own:?}");
        assert!(
            !other.contains(text),
            "'{text}' crossed the partition: {other:?}"
        );
    }

    // 4. Heal: they find each other again by mDNS and converge. (libp2p's
    // mDNS reports a peer once per record lifetime, 6 min: a node must dial
    // a returning peer itself, not wait for a new "discovered" event.)
    lab.set_link(0, true);
    let healed = Instant::now();
    eventually(40, "both reconnect after the partition", || {
        let kim_peers = peers(kim)?;
        let lee_peers = peers(lee)?;
        (kim_peers.iter().any(|p| p["device"] == ids[1].as_str())
            && lee_peers.iter().any(|p| p["device"] == ids[0].as_str()))
        .then_some(())
    });
    println!("reconnected after {:.1?}", healed.elapsed());
    let expected: BTreeSet<String> = partitioned
        .iter()
        .cloned()
        .chain([
            "kim: before the partition".into(),
            "lee: before the partition".into(),
        ])
        .collect();
    let converged = eventually_or_last(40, || {
        let (kim_sees, lee_sees) = (texts(kim), texts(lee));
        let done = kim_sees == expected && lee_sees == expected;
        (done, (kim_sees, lee_sees))
    });
    if let Err((kim_sees, lee_sees)) = converged {
        panic!(
            "histories did not converge within 40 s of healing:\n\
             kim lacks {:?}\nlee lacks {:?}",
            expected.difference(&kim_sees).collect::<Vec<_>>(),
            expected.difference(&lee_sees).collect::<Vec<_>>()
        );
    }
    println!("converged after {:.1?}", healed.elapsed());

    for node in nodes {
        assert!(node.stop(), "node stops cleanly on SIGTERM");
    }
    println!("netns test took {:.1?}", started.elapsed());
}
