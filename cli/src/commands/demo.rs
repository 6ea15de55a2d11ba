//! `baro demo`: a narrated tour of what Baro Mesh can do so far, run on real
//! homes in a temporary directory with the same code the commands use.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use baro_node::agency_policy::{self, NewPolicy};
use baro_node::api::MessageView;
use baro_node::api::{self, Request, Response};
use baro_node::clock::{ManualClock, unix_now};
use baro_node::config::RelayConfig;
use baro_node::crypto::{KdfParams, Passphrase};
use baro_node::enrollment::{self, AgencyInit};
use baro_node::identity::{Entropy, KeyPair, OsEntropy};
use baro_node::revocations::{self, Order, RevocationView, Target};
use baro_node::store::{Home, MAX_PIN_ATTEMPTS, SledStore, Store, StoreError, Unlock, set_unlock};
use baro_node::trust::{
    DAY_SECS, DirectoryQuery, Enrollment, EnrollmentBundle, Issuer, PolicySettings, Revocation,
    RevocationScope, Role, Subject, TrustPolicy,
};
use baro_node::wire;
use baro_node::{Credentials, DeviceId, Node, NodeBuilder, NodeConfig, NodeEvent};

use crate::display_width::pad;
use crate::output::{date, device_lines};

const AGENCY: &str = "행정안전부 (데모)";

struct Official {
    user: &'static str,
    name: &'static str,
    org: &'static str,
    role: Role,
}

const DEVICES: [Official; 4] = [
    Official {
        user: "kim.minji",
        name: "김민지",
        org: DIVISION,
        role: Role::Member,
    },
    Official {
        user: "lee.junho",
        name: "이준호",
        org: DIVISION,
        role: Role::Member,
    },
    Official {
        user: "choi.seoyeon",
        name: "최서연",
        org: "행정안전부/자치분권실",
        role: Role::Member,
    },
    Official {
        user: "relay.sejong",
        name: "세종 현장사무소 중계기",
        org: "행정안전부/현장사무소/세종",
        role: Role::Relay,
    },
];

fn subject(user: &str, name: &str, org: &str) -> Result<Subject> {
    Ok(Subject {
        user_id: user.into(),
        display_name: name.into(),
        org_unit: org.parse()?,
    })
}

fn step(n: u32, title: &str) {
    println!("\n{n}. {title}");
}

pub fn run(ui: bool) -> Result<()> {
    let workspace = tempfile::Builder::new()
        .prefix("baro-demo-")
        .tempdir()
        .context("cannot create a temporary directory for the demo")?;
    let dir = workspace.path();
    let now = unix_now();
    let passphrase_text = hex::encode(OsEntropy.array::<12>());
    let passphrase = || Passphrase::new(passphrase_text.clone());
    // Every device's storage key is sealed under its PIN (phone-class
    // argon2id costs); one PIN serves all of them here.
    let pin_text = hex::encode(OsEntropy.array::<6>());
    set_unlock(Unlock::Pin {
        pin: Passphrase::new(pin_text.clone()),
        kdf: KdfParams::PHONE,
        max_attempts: MAX_PIN_ATTEMPTS,
    });

    println!("Baro Mesh demo: a temporary agency in {}", dir.display());

    step(1, "An operator creates the agency");
    let console = dir.join("operator-console");
    let operator = enrollment::init_agency(
        &console,
        AgencyInit {
            name: AGENCY.into(),
            operator: subject("park.jiwoo", "박지우", "행정안전부/디지털정부국")?,
            kdf: KdfParams::default(),
            bootstrap: Vec::new(),
            label: None,
        },
        &passphrase(),
        now,
    )?;
    println!("   \"{AGENCY}\", agency id {}", operator.agency);
    println!("   root key and operator key sealed with a passphrase (argon2id, 64 MiB);");
    println!("   a fresh 32-byte network key hides the mesh from outsiders.");
    println!("   The operator console is itself an enrolled device:");
    println!("{}", indent(&device_lines(&operator)));

    step(
        2,
        "Three officials and a field-office relay create device keys and ask to join",
    );
    let mut homes = Vec::new();
    for official in &DEVICES {
        let home = dir.join(official.user);
        let request = enrollment::init_device(&home, official.name, None, now)?;
        let request_file = home.with_extension("request");
        std::fs::write(&request_file, wire::encode(&request))?;
        println!(
            "   {} device {}  request {} bytes",
            pad(official.name, 22),
            request.body.device_key.device_id(),
            wire::encode(&request).len()
        );
        homes.push((official, home, request_file));
    }

    step(
        3,
        "The operator certifies each device; each device verifies and installs its bundle",
    );
    let mut bundles = Vec::new();
    for (official, home, request_file) in &homes {
        let bundle = enroll(&console, &passphrase(), request_file, official, 365, now)?;
        let bundle_file = home.with_extension("bundle");
        std::fs::write(&bundle_file, wire::encode(&bundle))?;
        let device = enrollment::install(home, &wire::encode(&bundle), now)?;
        println!(
            "   ✓ {} {:<8} {} valid until {}",
            pad(&device.subject.display_name, 22),
            device.role.to_string(),
            pad(device.subject.org_unit.as_str(), 28),
            date(device.not_after)
        );
        bundles.push((home.clone(), bundle_file));
    }

    step(
        4,
        "Every device proves who it is: its chain verifies up to the agency root",
    );
    let policy = TrustPolicy::default();
    for (home, _) in &bundles {
        let status = enrollment::status(home, now)?;
        let Some(enrolled) = status.enrollment else {
            bail!("{} should be enrolled", home.display());
        };
        enrolled.validity.clone()?;
        println!(
            "   ✓ {}  root → operator {} → {} ({})",
            status.device.short(),
            enrolled.details.issued_by,
            enrolled.details.subject.user_id,
            enrolled.details.role
        );
    }

    step(5, "Forgeries and mistakes are refused");
    let (kim_home, kim_bundle_file) = &bundles[0];
    let genuine: EnrollmentBundle = wire::decode(&std::fs::read(kim_bundle_file)?)?;

    let mut promoted = genuine.clone();
    if let Some(leaf) = promoted.body.chain.certificates.last_mut() {
        leaf.body.role = Role::Operator;
    }
    refused(
        "Kim's certificate edited to make her an operator",
        enrollment::install(kim_home, &wire::encode(&promoted), now),
    )?;

    let (lee_home, _) = &bundles[1];
    refused(
        "Lee installs Kim's bundle (someone else's certificate)",
        enrollment::install(lee_home, &wire::encode(&genuine), now),
    )?;

    let late = dir.join("late-device");
    let request = enrollment::init_device(&late, "정하늘", None, now)?;
    let request_file = late.with_extension("request");
    std::fs::write(&request_file, wire::encode(&request))?;
    let stale = enroll(&console, &passphrase(), &request_file, &DEVICES[0], 1, now)?;
    refused(
        "a 1-day certificate installed three days later (clock moved forward)",
        enrollment::install(&late, &wire::encode(&stale), now + 3 * DAY_SECS),
    )?;

    let rogue_console = dir.join("rogue-agency");
    enrollment::init_agency(
        &rogue_console,
        AgencyInit {
            name: "Rogue Agency".into(),
            operator: subject("mallory", "Mallory", "Rogue")?,
            kdf: KdfParams::default(),
            bootstrap: Vec::new(),
            label: None,
        },
        &passphrase(),
        now,
    )?;
    let rogue_bundle = enrollment::load_bundle(&Home::open(&rogue_console)?)?;
    refused(
        "a certificate from another agency shown to MOIS",
        rogue_bundle
            .body
            .chain
            .verify(&genuine.body.agency, now, &policy),
    )?;

    refused(
        "the operator key opened with a wrong passphrase",
        enroll(
            &console,
            &Passphrase::new("not the passphrase".into()),
            &request_file,
            &DEVICES[0],
            30,
            now,
        ),
    )?;

    let mut garbage = wire::encode(&genuine);
    garbage.truncate(garbage.len() / 2);
    refused(
        "a bundle file cut in half",
        enrollment::install(kim_home, &garbage, now),
    )?;

    step(
        6,
        "The devices start as mesh nodes on this machine and admit each other",
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let operator = Console {
        home: &console,
        passphrase: &passphrase(),
    };
    runtime.block_on(mesh(&bundles, &rogue_console, &genuine, &operator))?;

    step(
        10,
        "Sent means saved: Kim's laptop loses power right after she presses send",
    );
    power_cut(&bundles[0].0, &pin_text)?;

    step(
        11,
        "A thief copies Kim's laptop while it is off: the copy is unreadable without her PIN",
    );
    stolen_laptop(&bundles[0].0, &dir.join("thief"))?;

    step(
        12,
        "Lee's phone meets no colleague for longer than the agency's lease: it erases itself",
    );
    lease_ends(&console, &passphrase(), &bundles[1].0)?;

    if ui {
        with_app(&bundles[0].0, &bundles[2].0, &pin_text)?;
    } else {
        println!("\nTo try the officials' app in a browser on these nodes: `baro demo --ui`.");
    }
    println!("\nDone.");
    println!("(The temporary directory is removed now.)");
    Ok(())
}

/// `demo --ui`: Kim's laptop and Choi's device as `baro run --ui` processes
/// on loopback (Choi bootstrapping to Kim), their app URLs printed, until
/// Ctrl-C.
fn with_app(kim: &Path, choi: &Path, pin: &str) -> Result<()> {
    step(
        13,
        "The officials' app: Kim's and Choi's nodes serve it until Ctrl-C",
    );
    let run = |home: &Path, bootstrap: Option<&str>| -> Result<std::process::Child> {
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command
            .arg("--home")
            .arg(home)
            .env("BARO_PIN", pin)
            .env_remove("BARO_STORAGE_KEY_FILE")
            .args([
                "run",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--no-mdns",
                "--ui",
                "127.0.0.1:0",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(address) = bootstrap {
            command.args(["--bootstrap", address]);
        }
        command.spawn().context("cannot start `baro run --ui`")
    };
    let status = |home: &Path| -> Result<baro_node::Status> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Response::Status(status)) = api::request(home, &Request::Status)
                && !status.listen.is_empty()
            {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("`baro run --ui` did not answer within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut nodes = Stopped(vec![run(kim, None)?]);
    let kim_status = status(kim)?;
    let address = kim_status
        .listen
        .first()
        .context("Kim's node listens nowhere")?
        .clone();
    nodes.0.push(run(choi, Some(&address))?);
    status(choi)?;
    for (who, home) in [("김민지 (Kim)", kim), ("최서연 (Choi)", choi)] {
        let url = baro_ui::read_url(home).context("no app URL")?;
        // The URL carries the login token: printed for the user at this
        // terminal, as `baro run --ui` prints it.
        println!("   {who}: {url}");
    }
    println!("   Open each URL in a browser (one per official); Ctrl-C ends the demo.");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let interrupted = runtime.block_on(tokio::signal::ctrl_c());
    drop(nodes);
    interrupted.context("cannot watch Ctrl-C")
}

/// Processes stopped (SIGTERM, as `baro stop` does) and waited for when
/// dropped, whichever way the demo ends.
struct Stopped(Vec<std::process::Child>);

impl Drop for Stopped {
    fn drop(&mut self) {
        for node in &mut self.0 {
            if let Ok(Some(pid)) = node.id().try_into().map(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let _ = node.wait();
        }
    }
}

/// Runs Kim's device as a real `baro run` process, sends through its control
/// socket while no colleague is reachable, kills the process with SIGKILL
/// (a dead battery, a phone killing the app), starts it again and shows that
/// every message it had answered "sent" for is still there, queued.
fn power_cut(home: &Path, pin: &str) -> Result<()> {
    let run = || -> Result<std::process::Child> {
        std::process::Command::new(std::env::current_exe()?)
            .arg("--home")
            .arg(home)
            .env("BARO_PIN", pin)
            .env_remove("BARO_STORAGE_KEY_FILE")
            .args(["run", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start `baro run`")
    };
    let answering = || -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while api::request(home, &Request::Status).is_err() {
            if Instant::now() > deadline {
                bail!("`baro run` did not answer within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    };
    let mut node = run()?;
    answering()?;
    println!(
        "   `baro run` on Kim's laptop (process {}), alone: no colleague is reachable",
        node.id()
    );
    let texts = [
        "세종 현장 침수 피해 사진: 주택 14채",
        "현장 진입로가 통제되었습니다. 북쪽 다리를 이용하세요",
        "요청: 오늘 밤까지 양수기 2대 추가",
    ];
    for text in texts {
        let request = Request::Send {
            room: DIVISION.into(),
            text: text.into(),
        };
        match api::request(home, &request)? {
            Response::Sent(sent) if sent.queued => {
                println!("   ✓ sent, queued on disk: \"{text}\"")
            }
            other => bail!("unexpected answer to a send: {other:?}"),
        }
    }
    node.kill()?;
    node.wait()?;
    println!("   ⚡ power cut: the process is killed with SIGKILL, no chance to save anything");
    let mut node = run()?;
    answering()?;
    let history = match api::request(
        home,
        &Request::History {
            room: DIVISION.into(),
            limit: 20,
        },
    )? {
        Response::History(messages) => messages,
        other => bail!("unexpected answer to history: {other:?}"),
    };
    for text in texts {
        let kept = history
            .iter()
            .filter(|m| m.text == text && m.queued)
            .count();
        if kept != 1 {
            bail!("\"{text}\" was answered \"sent\" but is not queued once after the power cut");
        }
    }
    println!(
        "   ✓ back up: all {} messages are there once, still queued; they leave when a colleague is reachable",
        texts.len()
    );
    node.kill()?;
    node.wait()?;
    Ok(())
}

/// Copies Kim's home as a thief would, fails to open the copy with guessed
/// PINs and a forged key file, finds no name in it, and lets the tenth
/// wrong PIN erase it; Kim, with her PIN, opens her laptop as before.
fn stolen_laptop(kim_home: &Path, copy: &Path) -> Result<()> {
    copy_dir(kim_home, copy)?;
    println!(
        "   the copy holds {}: the storage key only sealed under Kim's PIN (argon2id)",
        home_contents(copy)?.join(", ")
    );
    let guess = |pin: &str| Unlock::Pin {
        pin: Passphrase::new(pin.into()),
        kdf: KdfParams::PHONE,
        max_attempts: MAX_PIN_ATTEMPTS,
    };
    for pin in ["000000", "123456", "kim.minji"] {
        let started = Instant::now();
        let outcome = Home::open_with(copy, &guess(pin));
        let took = started.elapsed().as_millis();
        refused(&format!("the PIN \"{pin}\" ({took} ms a guess)"), outcome)?;
    }
    refused(
        "a storage key file made up by the thief",
        Home::open_with(copy, &Unlock::KeyFile(copy.with_extension("key"))),
    )?;
    let mut named = 0;
    for (_, bytes) in files_in(copy)? {
        for name in ["kim.minji", "김민지", "이준호", "양수기 2대 추가"] {
            named += usize::from(bytes.windows(name.len()).any(|w| w == name.as_bytes()));
        }
    }
    if named != 0 {
        bail!("the copy names Kim, a colleague or a message in the clear");
    }
    println!("   ✓ no file in the copy names Kim, her colleagues or what they wrote");
    let mut outcome = Home::open_with(copy, &guess("999999"));
    while let Err(StoreError::WrongPin { .. }) = outcome {
        outcome = Home::open_with(copy, &guess("999999"));
    }
    refused("the tenth wrong PIN in a row", outcome)?;
    println!(
        "   the copy now holds only: {} (on the laptop, baro does the same; a thief's own\n   \
         tools ignore the count, so each guess at a copy still costs argon2id's time and memory)",
        home_contents(copy)?.join(", ")
    );
    let (_, name) = credentials(kim_home)?;
    println!("   ✓ {name}, with her PIN, opens her laptop's home as before");
    Ok(())
}

/// `cp -r`: every file under `from`, copied to the same place under `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Every file under `dir`, with its bytes.
fn files_in(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        } else {
            out.push((path.clone(), std::fs::read(&path)?));
        }
    }
    Ok(out)
}

/// The operator's home (agency init) and the passphrase sealing its keys.
struct Console<'a> {
    home: &'a Path,
    passphrase: &'a Passphrase,
}

/// The department room Kim and Lee share.
const DIVISION: &str = "행정안전부/디지털정부국/2과";

/// A device running as a node, with its encrypted store on disk.
struct Running {
    name: String,
    node: Node,
    store: Arc<SledStore>,
}

impl Running {
    /// Stops the node and writes its store out; the home stays.
    async fn stop(self) -> Result<()> {
        self.node.shutdown().await;
        self.store.flush()?;
        Ok(())
    }
}

/// Loopback only, no mDNS, quick discovery and sync rounds.
fn node_config(bootstrap: Vec<String>, relay: bool) -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        bootstrap,
        mdns: false,
        discovery_interval_secs: 1,
        sync_interval_secs: 2,
        relay: relay.then(RelayConfig::default),
        ..NodeConfig::default()
    }
}

/// The credentials and display name installed in `home`.
fn credentials(home: &Path) -> Result<(Credentials, String)> {
    let opened = Home::open(home)?;
    let bundle = enrollment::load_bundle(&opened)?;
    let name = bundle
        .body
        .chain
        .leaf()
        .map(|c| c.body.subject.display_name.clone())
        .unwrap_or_default();
    Ok((
        Credentials::from_bundle(enrollment::load_device_key(&opened)?, &bundle),
        name,
    ))
}

/// Starts the device installed in `home` on its own store (sled, sealed
/// under the home's storage key), as `baro run` would.
fn start(home: &Path, bootstrap: Vec<String>, relay: bool) -> Result<Running> {
    let (creds, name) = credentials(home)?;
    let store = Arc::new(SledStore::open(Home::open(home)?)?);
    let node = NodeBuilder::new(creds)
        .config(node_config(bootstrap, relay))
        .store(store.clone())
        .spawn()?;
    Ok(Running { name, node, store })
}

/// Starts every enrolled device as a node on loopback (the relay first, the
/// others bootstrapping from it), then lets two intruders knock.
async fn mesh(
    bundles: &[(PathBuf, PathBuf)],
    rogue_console: &Path,
    genuine: &EnrollmentBundle,
    console: &Console<'_>,
) -> Result<()> {
    // The relay is the last enrolled device.
    let (relay_home, _) = bundles.last().context("no relay")?;
    let relay = start(relay_home, vec![], true)?;
    let mut relay_events = relay.node.handle().events();
    let address = baro_node::testing::listen_address(&relay.node).await?;
    println!("   {} listens on {address}", relay.name);
    println!("     (as a relay: it stores what it cannot read for devices that are away)");
    let mut running = Vec::new();
    for (home, _) in &bundles[..bundles.len() - 1] {
        let device = start(home, vec![address.to_string()], false)?;
        println!("   {} starts, bootstrapping from the relay", device.name);
        running.push(device);
    }
    let total = running.len();
    for device in &running {
        let peers = device
            .node
            .handle()
            .wait_for_peers(total, Duration::from_secs(20))
            .await?;
        let seen: Vec<String> = peers
            .iter()
            .map(|p| format!("{} via {}", p.user_id, p.found_by))
            .collect();
        println!(
            "   ✓ {} admitted {}: {}",
            pad(&device.name, 22),
            peers.len(),
            seen.join(", ")
        );
    }

    // Intruders hold the leaked network key but no valid certificate.
    let rogue = enrollment::load_bundle(&Home::open(rogue_console)?)?;
    let rogue_key = enrollment::load_device_key(&Home::open(rogue_console)?)?;
    let intruders = [
        (
            "a stranger with the leaked network key but a rogue agency's certificate",
            Credentials {
                key: rogue_key,
                chain: rogue.body.chain,
                agency: rogue.body.agency,
                network_key: Some(genuine.body.network_key.clone()),
            },
        ),
        (
            "a stranger presenting Kim's certificate with its own key",
            Credentials {
                key: KeyPair::generate(&mut OsEntropy),
                chain: genuine.body.chain.clone(),
                agency: genuine.body.agency.clone(),
                network_key: Some(genuine.body.network_key.clone()),
            },
        ),
    ];
    for (what, creds) in intruders {
        let intruder = NodeBuilder::new(creds)
            .config(node_config(vec![address.to_string()], false))
            .spawn()?;
        let peer = intruder.handle().device().peer_id();
        let reason = next_event(&mut relay_events, 10, |event| match event {
            NodeEvent::PeerRefused {
                peer: refused,
                reason,
            } if Some(refused) == peer => Some(reason),
            _ => None,
        })
        .await
        .unwrap_or_else(|| "not refused in time".into());
        let admitted = intruder.handle().peers().await?.len();
        if admitted != 0 {
            bail!("{what} was admitted: this is a bug");
        }
        println!("   ✓ {what}\n     refused at admission and blocked: {reason}");
        intruder.shutdown().await;
    }
    println!("   An intruder never gets a multiplexed connection: no identify data, no");
    println!("   protocol list, no gossip topics.");

    step(7, "Officials chat, end-to-end encrypted");
    messaging(&running).await?;

    step(
        8,
        "An official goes offline and catches up through the field-office relay, photo included",
    );
    let (kim_home, _) = &bundles[0];
    let (lee_home, _) = &bundles[1];
    let lee = offline_catch_up(&relay, &address.to_string(), running, lee_home).await?;

    step(
        9,
        "An official loses her phone: the operator revokes it and it wipes itself",
    );
    lost_phone(
        &relay,
        &address.to_string(),
        lee,
        (kim_home, lee_home),
        console,
    )
    .await?;
    relay.stop().await
}

/// The first of a node's `events` that `pick` takes, within `secs`;
/// `None` if the node stopped first or the time ran out.
async fn next_event<T>(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    secs: u64,
    mut pick: impl FnMut(NodeEvent) -> Option<T>,
) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(event) {
                        return Some(found);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Waits for `text` to arrive at `node`, or gives up after a few seconds.
async fn arrives(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    text: &str,
    secs: u64,
) -> bool {
    next_event(events, secs, |event| match event {
        NodeEvent::Message(m) if m.text == text => Some(()),
        _ => None,
    })
    .await
    .is_some()
}

/// Sends, retrying while the room's key is still on its way.
async fn say(node: &Node, room: &str, text: &str) -> Result<()> {
    for _ in 0..100 {
        match node.handle().send(room, text).await {
            Ok(_) => return Ok(()),
            Err(e) if e.to_string().contains("holds no key") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    bail!("no key for {room} arrived")
}

/// Kim looks up a colleague in the agency directory the field-office relay keeps.
async fn directory_lookup(kim: &Node, kim_name: &str) -> Result<()> {
    let query = DirectoryQuery::Search("서연".into());
    let mut found = None;
    for _ in 0..100 {
        match kim.handle().people(query.clone()).await {
            Ok(people) if !people.people.is_empty() => {
                found = Some(people);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let Some(found) = found else {
        bail!("the relay's agency directory did not answer");
    };
    for person in &found.people {
        println!(
            "   {kim_name} looks up \"서연\" in the agency directory: {} ({}), {}, {} device(s)",
            person.name,
            person.user,
            person.org_unit,
            person.devices.len()
        );
    }
    println!("   ✓ the field-office relay keeps the directory; {kim_name}'s device checked every");
    println!("     certificate in the answer itself, so a relay cannot invent anyone.");
    Ok(())
}

async fn messaging(officials: &[Running]) -> Result<()> {
    let [kim, lee, choi] = officials else {
        bail!("the demo needs three officials");
    };
    let (kim_name, kim) = (&kim.name, &kim.node);
    let (lee_name, lee) = (&lee.name, &lee.node);
    let (choi_name, choi) = (&choi.name, &choi.node);
    let division = DIVISION;
    let (mut lee_events, mut choi_events) = (lee.handle().events(), choi.handle().events());
    let text = "예산안 초안은 공유 폴더에 있습니다";
    say(kim, division, text).await?;
    if !arrives(&mut lee_events, text, 10).await {
        bail!("{lee_name} did not receive the department message");
    }
    println!("   {kim_name} → department room \"{division}\": \"{text}\"");
    println!("   ✓ {lee_name} (same division) reads it; each message is signed by its device");
    println!("     and encrypted with the room key, which only member devices receive (HPKE).");
    let choi_rooms: Vec<String> = choi
        .handle()
        .rooms()
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    println!(
        "   ✓ {choi_name} (자치분권실) is not in that room: her rooms are {}",
        choi_rooms.join(", ")
    );
    outsider_sees_nothing(kim, lee, choi, choi_name, division).await?;
    receipts(kim, lee, lee_name, division, text).await?;
    direct_chat(
        (kim, kim_name),
        (lee, lee_name),
        &mut lee_events,
        choi,
        choi_name,
    )
    .await?;
    directory_lookup(kim, kim_name).await?;

    let group = kim
        .handle()
        .create_group("예산 검토", vec!["lee.junho".into(), "choi.seoyeon".into()])
        .await?;
    println!(
        "   {kim_name} creates the group \"{}\" with {lee_name} and {choi_name}",
        group.name
    );
    // Members adopt the group when its key and definition reach them; a
    // message sent before a member listens would only reach it at the next sync.
    for member in [lee, choi] {
        for _ in 0..100 {
            if member
                .handle()
                .rooms()
                .await?
                .iter()
                .any(|r| r.name == group.name && r.can_send)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("   ✓ both members' devices received the group key and joined");
    let hello = "금요일까지 두 분 모두 수치를 확인해 주시겠어요?";
    say(kim, "예산 검토", hello).await?;
    let lee_read = arrives(&mut lee_events, hello, 10).await;
    let choi_read = arrives(&mut choi_events, hello, 10).await;
    if !(lee_read && choi_read) {
        bail!("a group member did not receive the group message");
    }
    // Choi's delivery receipt is a room message too: it must be in before
    // she is removed, or members would refuse it as coming from a non-member.
    delivered_to(kim, "예산 검토", hello, &["lee.junho", "choi.seoyeon"]).await?;
    println!("   ✓ both members read \"{hello}\"; {kim_name} sees it delivered to both");
    kim.handle().remove("예산 검토", "choi.seoyeon").await?;
    let after = "최서연 주무관은 다른 과제로 이동했습니다. 수치를 첨부합니다";
    say(kim, "예산 검토", after).await?;
    let lee_read = arrives(&mut lee_events, after, 10).await;
    let choi_read = arrives(&mut choi_events, after, 2).await;
    if !lee_read || choi_read {
        bail!(
            "removal did not take effect as it should (remaining member read: {lee_read}, removed member read: {choi_read})"
        );
    }
    println!("   {kim_name} removes {choi_name}: the group moves to a new key she never receives");
    println!("   ✓ {lee_name} reads the next message; {choi_name}'s device cannot decrypt it");
    let history = lee.handle().history("예산 검토", 10).await?;
    println!("   {lee_name}'s history of \"Budget review\" (kept encrypted at rest):");
    for message in history {
        println!("     {}: {}", message.sender_name, message.text);
    }
    Ok(())
}

/// Waits until the sender's history shows `text` delivered to every one of `users`.
async fn delivered_to(sender: &Node, room: &str, text: &str, users: &[&str]) -> Result<()> {
    for _ in 0..100 {
        let history = sender.handle().history(room, 20).await?;
        if let Some(mine) = history.iter().find(|m| m.text == text)
            && users
                .iter()
                .all(|user| mine.receipts.iter().any(|r| r.user == *user))
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("no delivery receipt for \"{text}\" reached the sender from every member")
}

/// Choi's device is modified to follow the division room's topic: the
/// ciphertext reaches her, nothing readable does.
async fn outsider_sees_nothing(
    kim: &Node,
    lee: &Node,
    choi: &Node,
    choi_name: &str,
    division: &str,
) -> Result<()> {
    let rooms = kim.handle().rooms().await?;
    let room = rooms
        .iter()
        .find(|r| r.name == division)
        .context("the division room")?;
    let room_id: baro_node::rooms::RoomId = room.id.parse().map_err(anyhow::Error::msg)?;
    choi.handle().follow(room_id).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut choi_events, mut lee_events) = (choi.handle().events(), lee.handle().events());
    let text = "인사 평가는 월요일 마감입니다";
    say(kim, division, text).await?;
    if !arrives(&mut lee_events, text, 10).await {
        bail!("the division did not receive the message");
    }
    let got_ciphertext = next_event(&mut choi_events, 5, |event| match event {
        NodeEvent::Message(m) => Some(Err(m.text)),
        NodeEvent::Unreadable { room, .. } if room == room_id.to_string() => Some(Ok(())),
        _ => None,
    })
    .await;
    match got_ciphertext {
        Some(Ok(())) => {
            println!("   {choi_name}'s device is modified to follow that room's topic anyway:");
            println!(
                "   ✓ it receives the ciphertext of the next message, holds no key, shows nothing"
            );
        }
        Some(Err(leaked)) => bail!("an outsider was shown \"{leaked}\""),
        None => bail!("the outsider never received the ciphertext"),
    }
    Ok(())
}

/// Lee opens the room; Kim sees who received and read her message.
async fn receipts(
    kim: &Node,
    lee: &Node,
    lee_name: &str,
    division: &str,
    text: &str,
) -> Result<()> {
    lee.handle().mark_read(division).await?;
    for _ in 0..50 {
        let history = kim.handle().history(division, 10).await?;
        if let Some(mine) = history.iter().find(|m| m.text == text)
            && mine
                .receipts
                .iter()
                .any(|r| r.name == lee_name && r.state == wire::ReceiptState::Read)
        {
            println!("   {lee_name} opens the room; the sender's history now shows:");
            println!("   ✓ \"{text}\"  read by {lee_name}");
            println!("     (receipts are room messages too: signed, encrypted, members only)");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("no read receipt reached the sender")
}

/// A 1:1 conversation, opened by naming the other official (`@user`).
async fn direct_chat(
    (kim, kim_name): (&Node, &str),
    (lee, lee_name): (&Node, &str),
    lee_events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    choi: &Node,
    choi_name: &str,
) -> Result<()> {
    let mut kim_events = kim.handle().events();
    let ask = "점심 전에 평가를 함께 검토할 수 있을까요?";
    say(kim, "@lee.junho", ask).await?;
    if !arrives(lee_events, ask, 10).await {
        bail!("the 1:1 message did not arrive");
    }
    let reply = "네, 11시 30분에 제 사무실에서 뵙겠습니다";
    say(lee, "@kim.minji", reply).await?;
    if !arrives(&mut kim_events, reply, 10).await {
        bail!("the 1:1 reply did not arrive");
    }
    println!("   {kim_name} → 1:1 with {lee_name}: \"{ask}\"");
    println!("   {lee_name} → {kim_name}: \"{reply}\"");
    let choi_has_it = choi
        .handle()
        .rooms()
        .await?
        .iter()
        .any(|r| r.kind == "direct");
    if choi_has_it {
        bail!("an outsider holds a 1:1 room");
    }
    println!(
        "   ✓ the 1:1 room's key went to their two devices only; {choi_name} has no such room"
    );
    Ok(())
}

/// Lee goes offline; Kim writes, and sends a photo of a document from her
/// trip; the relay stores what it cannot read, the photo's chunks too. Then
/// Kim and Choi leave, and Lee comes back to find only the relay: the
/// notes, the photo's preview, then the photo. His device stays up.
async fn offline_catch_up(
    relay: &Running,
    address: &str,
    officials: Vec<Running>,
    lee_home: &Path,
) -> Result<Running> {
    let [kim, lee, choi]: [Running; 3] = officials
        .try_into()
        .map_err(|_| anyhow::anyhow!("the demo needs three officials"))?;
    let (kim_name, lee_name, choi_name) = (kim.name.clone(), lee.name.clone(), choi.name.clone());
    lee.stop().await?;
    println!("   {lee_name}'s device goes offline (its encrypted store stays on disk)");

    let before = relay.node.handle().status().await?;
    let notes = [
        "The review moved to 2 pm tomorrow, room 3-204",
        "국장님께서 수치를 천 원 단위가 아닌 원 단위로 원하십니다",
        "이 주무관님, 인쇄한 부록을 가져와 주세요",
    ];
    for note in notes {
        say(&kim.node, DIVISION, note).await?;
    }
    println!("   {kim_name} → \"{DIVISION}\" while {lee_name} is away:");
    for note in notes {
        println!("     \"{note}\"");
    }
    let stored = stored_by_relay(&kim.node, &notes).await?;
    let after = relay.node.handle().status().await?;
    let relay_rooms = relay.node.handle().rooms().await?;
    if !after.relay || !relay_rooms.is_empty() {
        bail!("the relay should run as a relay in no room: {relay_rooms:?}");
    }
    println!(
        "   ✓ the relay holds them without being able to read them: {} → {} items, {} KiB",
        before.stored_items,
        after.stored_items,
        after.stored_bytes.div_ceil(1024)
    );
    println!("     (it checked each sender's signature; it is in no room and holds no key)");
    println!("   ✓ {kim_name}'s history shows each note \"stored by {stored}\"");
    let workspace = lee_home.parent().context("no demo directory")?;
    let photo = photo_from_a_trip(&kim, relay, workspace).await?;

    kim.stop().await?;
    choi.stop().await?;
    println!("   {kim_name} and {choi_name} go offline too; only the relay is up.");

    let (creds, _) = credentials(lee_home)?;
    let store = Arc::new(SledStore::open(Home::open(lee_home)?)?);
    let lee = NodeBuilder::new(creds)
        .config(node_config(vec![address.to_string()], false))
        .store(store.clone())
        .spawn()?;
    let mut events = lee.handle().events();
    let mut photo_events = lee.handle().events();
    let lee = Running {
        name: lee_name.clone(),
        node: lee,
        store,
    };
    println!("   {lee_name} comes back, knowing only the relay's address (no mDNS):");
    let caught_up = history_with(&lee.node, &notes).await?;
    let relay_device = relay.node.handle().device();
    let report = next_event(&mut events, 10, |event| match event {
        NodeEvent::Synced(report) if report.peer == relay_device && report.fetched > 0 => {
            Some(report)
        }
        _ => None,
    })
    .await
    .context("no sync with the relay was reported")?;
    let peers: Vec<String> = lee
        .node
        .handle()
        .peers()
        .await?
        .into_iter()
        .map(|p| p.user_id)
        .collect();
    println!("   ✓ connected to: {}", peers.join(", "));
    println!(
        "   ✓ it syncs with the relay: {} items fetched, {} bytes sent, {} received,",
        report.fetched, report.bytes_sent, report.bytes_received
    );
    println!(
        "     {} round trips over {} sets (revocations, control frames, then its rooms);",
        report.round_trips,
        report.scopes.len()
    );
    println!("     each item is checked as if it had come by gossip");
    println!("   {lee_name}'s \"{DIVISION}\" now reads:");
    for message in caught_up {
        let new = if notes.contains(&message.text.as_str()) || message.attachment.is_some() {
            "  (new)"
        } else {
            ""
        };
        match &message.attachment {
            Some(file) => println!(
                "     {}: 📎 {} {}{new}",
                message.sender_name, file.name, message.text
            ),
            None => println!("     {}: {}{new}", message.sender_name, message.text),
        }
    }
    photo_arrives(&lee, &mut photo_events, &photo, workspace).await?;
    Ok(lee)
}

/// Kim enrolls her phone; it joins the department room; she loses it; the
/// operator revokes it with a wipe order; it erases itself and the room moves
/// on without it. Then a forged and a tampered revocation are refused.
async fn lost_phone(
    relay: &Running,
    address: &str,
    lee: Running,
    (kim_home, lee_home): (&Path, &Path),
    console: &Console<'_>,
) -> Result<()> {
    let bootstrap = || vec![address.to_string()];
    let kim = start(kim_home, bootstrap(), false)?;
    let operator_node = start(console.home, bootstrap(), false)?;
    println!(
        "   {}'s PC comes back and the operator console ({}) joins the mesh",
        kim.name, operator_node.name
    );

    let kim_official = &DEVICES[0];
    let phone_home = kim_home.with_file_name(format!("{}-phone", kim_official.user));
    let request =
        enrollment::init_device(&phone_home, kim_official.name, Some("phone"), unix_now())?;
    let request_file = phone_home.with_extension("request");
    std::fs::write(&request_file, wire::encode(&request))?;
    let bundle = enroll(
        console.home,
        console.passphrase,
        &request_file,
        kim_official,
        365,
        unix_now(),
    )?;
    enrollment::install(&phone_home, &wire::encode(&bundle), unix_now())?;
    let phone = start(&phone_home, bootstrap(), false)?;
    let phone_id = phone.node.handle().device();
    let mut phone_events = phone.node.handle().events();
    println!(
        "   {} enrolls a second device, her phone {} (same user, same division),",
        kim.name,
        phone_id.short()
    );
    println!("   and it starts, bootstrapping from the relay");

    let labels = [
        (relay.node.handle().device(), relay.name.clone()),
        (lee.node.handle().device(), lee.name.clone()),
        (kim.node.handle().device(), format!("{}'s PC", kim.name)),
        (phone_id, format!("{}'s phone", kim.name)),
        (
            operator_node.node.handle().device(),
            format!("the operator console ({})", operator_node.name),
        ),
    ];
    let label = |device: &DeviceId| {
        labels
            .iter()
            .find(|(d, _)| d == device)
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| device.short())
    };
    let everyone = [&relay.node, &lee.node, &kim.node, &operator_node.node];
    for node in everyone.iter().chain([&&phone.node]) {
        let peers = node
            .handle()
            .wait_for_peers(labels.len() - 1, Duration::from_secs(20))
            .await?;
        if peers.len() < labels.len() - 1 {
            bail!(
                "{} admitted only {} of {} peers",
                label(&node.handle().device()),
                peers.len(),
                labels.len() - 1
            );
        }
    }
    println!("   ✓ all five devices admitted each other");

    holds_key(&phone.node, DIVISION).await?;
    let text = "목요일 부산 현장 방문: KTX 표는 공유 폴더에 있습니다";
    say(&kim.node, DIVISION, text).await?;
    if !arrives(&mut phone_events, text, 10).await {
        bail!("the phone did not receive the department message");
    }
    let history = phone.node.handle().history(DIVISION, 50).await?;
    println!("   {}'s PC → \"{DIVISION}\": \"{text}\"", kim.name);
    println!(
        "   ✓ the phone reads it: it holds the room key and {} messages of history",
        history.len()
    );

    println!("   The phone is lost on the train. On the operator console:");
    let operator = enrollment::load_operator(&Home::open(console.home)?, console.passphrase)?;
    let operator_handle = operator_node.node.handle();
    let chain = operator_handle
        .device_chain(Target::Device(phone_id))
        .await?;
    let (revocation, _) = revocations::sign(
        &operator.agency,
        chain,
        RevocationScope::Device,
        &Order {
            reason: "phone lost on the KTX".into(),
            wipe: true,
            now: unix_now(),
        },
        Issuer::Chain(operator.chain.clone()),
        &operator.key,
    )?;
    let mut operator_events = operator_handle.events();
    let submitted = Instant::now();
    let view = operator_handle
        .submit_revocation(wire::encode(&revocation))
        .await?;
    println!(
        "   {} signs a revocation of device {} of {} with a wipe order: \"{}\"",
        view.issued_by,
        view.device.short(),
        view.user,
        view.reason
    );
    println!(
        "   and hands it to the console's node, which enforces it and {}",
        if view.published {
            "publishes it to the mesh"
        } else {
            "publishes it as soon as it has a peer"
        }
    );

    let (notice, wiping_after, wiped_after) = wipe_seen(&mut phone_events, submitted).await?;
    phone.node.shutdown().await;
    drop(phone.store);
    println!(
        "   ✓ the phone hears of it {} ms later, sends its signed wipe receipt and erases itself:",
        wiping_after.as_millis()
    );
    println!(
        "     wiped {} ms after the revocation was submitted; its node has stopped",
        wiped_after.as_millis()
    );
    println!("     notice: {notice}");
    let left = home_contents(&phone_home)?;
    println!("   ✓ the phone's home now holds only: {}", left.join(", "));
    match Home::open(&phone_home) {
        Ok(_) => bail!("the wiped phone's home still opens: this is a bug"),
        Err(e) => println!("   ✓ `baro` on the phone, for any command, says only:\n     {e}"),
    }

    for node in everyone {
        dropped(node, phone_id).await.map_err(|e| {
            anyhow::anyhow!(
                "{} still lists the phone: {e}",
                label(&node.handle().device())
            )
        })?;
    }
    println!(
        "   ✓ the relay, {}, {}'s PC and the console no longer list the phone among their peers",
        lee.name, kim.name
    );

    let (receipt_device, wiped_at) = wipe_confirmed(&mut operator_events).await?;
    println!(
        "   ✓ the console receives the wipe receipt of {} (wiped at {})",
        label(&receipt_device),
        date(wiped_at)
    );
    let record = revocation_record(&operator_node.node, &view.id, labels.len() - 2).await?;
    let seen: Vec<String> = record.seen_by.iter().map(&label).collect();
    println!("   `baro agency revocations` on the console:");
    println!(
        "     device {} of {}, by {} at {}: {}",
        record.device.short(),
        record.user,
        record.issued_by,
        date(record.issued_at),
        record.reason
    );
    for wiped in &record.wiped {
        println!(
            "     wipe receipt: {} erased itself at {}",
            label(&wiped.device),
            date(wiped.wiped_at)
        );
    }
    println!("     seen by {} peer(s): {}", seen.len(), seen.join(", "));

    let (mut kim_events, mut lee_events) = (kim.node.handle().events(), lee.node.handle().events());
    let next = "김민지 주무관의 휴대폰은 회수되었습니다. 부산 계획은 그대로입니다";
    say(&lee.node, DIVISION, next).await?;
    if !arrives(&mut kim_events, next, 10).await {
        bail!(
            "{}'s PC did not read the first message after the revocation",
            kim.name
        );
    }
    println!("   {} → \"{DIVISION}\": \"{next}\"", lee.name);
    println!("   ✓ the room moved to a new key on this first send after the revocation:");
    println!(
        "     {}'s PC reads it; the new key went to every member device but the phone",
        kim.name
    );

    forgeries(
        (&kim, kim_home),
        (&lee, lee_home),
        &mut lee_events,
        &revocation,
    )
    .await?;

    kim.stop().await?;
    operator_node.stop().await?;
    lee.stop().await
}

/// Lee tries to revoke Kim's PC with his own key, and an attacker retargets
/// the genuine revocation at it: both refused, nothing wiped.
async fn forgeries(
    (kim, kim_home): (&Running, &Path),
    (lee, lee_home): (&Running, &Path),
    lee_events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    genuine: &Revocation,
) -> Result<()> {
    let kim_pc = enrollment::load_bundle(&Home::open(kim_home)?)?.body.chain;
    let lee_opened = Home::open(lee_home)?;
    let lee_bundle = enrollment::load_bundle(&lee_opened)?;
    refused(
        &format!(
            "{} signs a revocation of {}'s PC with his own device key",
            lee.name, kim.name
        ),
        revocations::sign(
            &lee_bundle.body.agency,
            kim_pc.clone(),
            RevocationScope::Device,
            &Order {
                reason: "lost".into(),
                wipe: true,
                now: unix_now(),
            },
            Issuer::Chain(lee_bundle.body.chain.clone()),
            &enrollment::load_device_key(&lee_opened)?,
        ),
    )?;

    let mut retargeted = genuine.clone();
    retargeted.body.target = kim_pc;
    refused(
        &format!(
            "the operator's genuine revocation retargeted at {}'s PC, handed to {}'s node",
            kim.name, lee.name
        ),
        lee.node
            .handle()
            .submit_revocation(wire::encode(&retargeted))
            .await,
    )?;
    let enforced = lee.node.handle().revocations().await?;
    if enforced.len() != 1 {
        bail!(
            "{} revocations enforced instead of the phone's only",
            enforced.len()
        );
    }
    let text = "Back at my desk: the PC is fine";
    say(&kim.node, DIVISION, text).await?;
    if !arrives(lee_events, text, 10).await {
        bail!(
            "{}'s PC no longer reaches the room after a forged revocation",
            kim.name
        );
    }
    println!(
        "   ✓ nothing was revoked or wiped: {}'s PC → \"{text}\", {} reads it",
        kim.name, lee.name
    );
    Ok(())
}

/// Waits until `node` holds the current key of `room`.
async fn holds_key(node: &Node, room: &str) -> Result<()> {
    for _ in 0..100 {
        if node
            .handle()
            .rooms()
            .await?
            .iter()
            .any(|r| r.name == room && r.can_send)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the key of \"{room}\" did not reach the new device")
}

/// Waits for the revoked device to say it is wiping, then that it wiped:
/// the notice, and how long after `submitted` each came.
async fn wipe_seen(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    submitted: Instant,
) -> Result<(String, Duration, Duration)> {
    let mut wiping = None;
    next_event(events, 20, |event| match event {
        NodeEvent::Wiping { .. } => {
            wiping = Some(submitted.elapsed());
            None
        }
        NodeEvent::Wiped { notice } => {
            let wiped = submitted.elapsed();
            Some((notice, wiping.unwrap_or(wiped), wiped))
        }
        _ => None,
    })
    .await
    .context("the phone did not say it wiped itself within 20 s")
}

/// The names of what is left in `dir`.
fn home_contents(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Waits (up to 10 s) until `node` no longer lists `device` among its peers.
async fn dropped(node: &Node, device: DeviceId) -> Result<()> {
    for _ in 0..100 {
        if !node
            .handle()
            .peers()
            .await?
            .iter()
            .any(|p| p.device == device)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("still connected after 10 s")
}

/// Waits for a wipe receipt: the device that wiped, and when.
async fn wipe_confirmed(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
) -> Result<(DeviceId, u64)> {
    next_event(events, 10, |event| match event {
        NodeEvent::WipeConfirmed {
            device, wiped_at, ..
        } => Some((device, wiped_at)),
        _ => None,
    })
    .await
    .context("no wipe receipt reached the operator console within 10 s")
}

/// Waits (up to 10 s) until `node`'s record of revocation `id` holds a wipe
/// receipt and `peers` peers have been seen holding it; returns what it has then.
async fn revocation_record(node: &Node, id: &str, peers: usize) -> Result<RevocationView> {
    let mut last = None;
    for _ in 0..100 {
        let record = node
            .handle()
            .revocations()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .context("the console does not list the revocation it submitted")?;
        if !record.wiped.is_empty() && record.seen_by.len() >= peers {
            return Ok(record);
        }
        last = Some(record);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match last {
        Some(record) if !record.wiped.is_empty() => Ok(record),
        _ => bail!("the console's record of the revocation shows no wipe receipt"),
    }
}

/// Waits until the relay's "stored" receipt is on every note in the sender's
/// history; returns the relay's user id.
async fn stored_by_relay(sender: &Node, notes: &[&str]) -> Result<String> {
    for _ in 0..100 {
        let history = sender.handle().history(DIVISION, 50).await?;
        let relays: Vec<String> = notes
            .iter()
            .filter_map(|note| {
                history
                    .iter()
                    .find(|m| m.text == *note)?
                    .receipts
                    .iter()
                    .find_map(|r| {
                        (r.state == wire::ReceiptState::StoredByRelay).then(|| r.user.clone())
                    })
            })
            .collect();
        if relays.len() == notes.len() {
            return Ok(relays.into_iter().next().unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the relay did not confirm storing the messages")
}

/// Waits until `node`'s history of the division room holds every note.
async fn history_with(node: &Node, notes: &[&str]) -> Result<Vec<MessageView>> {
    for _ in 0..100 {
        let history = node.handle().history(DIVISION, 50).await?;
        if notes
            .iter()
            .all(|note| history.iter().any(|m| m.text == *note))
        {
            return Ok(history);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the messages sent while the device was away did not arrive")
}

fn enroll(
    console: &Path,
    passphrase: &Passphrase,
    request_file: &PathBuf,
    official: &Official,
    days: u64,
    now: u64,
) -> Result<EnrollmentBundle> {
    Ok(enrollment::enroll(
        console,
        passphrase,
        &std::fs::read(request_file)?,
        Enrollment {
            subject: subject(official.user, official.name, official.org)?,
            role: official.role,
            days,
            bootstrap: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        },
        now,
    )?)
}

/// Shows a refusal; an acceptance is a bug and fails the demo.
fn refused<T, E: std::fmt::Display>(
    attempt: &str,
    outcome: std::result::Result<T, E>,
) -> Result<()> {
    match outcome {
        Ok(_) => bail!("{attempt} was accepted: this is a bug"),
        Err(why) => {
            println!("   ✓ {attempt}\n     refused: {why}");
            Ok(())
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("   {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The operator sets a 14-day lease; Lee's phone takes it when it meets the
/// operator's console, then lies in a drawer. Twelve days later it warns;
/// started after fifteen, it erases itself before showing anything. The
/// days pass on a controlled clock (a [`ManualClock`] the nodes are given),
/// not on the wall clock.
fn lease_ends(console: &Path, passphrase: &Passphrase, lee_home: &Path) -> Result<()> {
    let now = unix_now();
    let settings = PolicySettings {
        lease_days: 14,
        lease_warning_days: 3,
        ..PolicySettings::default()
    };
    let (policy, verified) = agency_policy::sign(
        console,
        passphrase,
        NewPolicy {
            settings,
            extensions: Default::default(),
            version: None,
            now,
        },
        agency_policy::held_version(console)?,
    )?;
    agency_policy::keep_for_next_start(console, &policy, now)?;
    println!(
        "   The operator signs agency policy version {}: {}",
        verified.version,
        settings.describe()
    );
    let clock = ManualClock::new(now);
    let start_at = |home: &Path, bootstrap: Vec<String>| -> Result<Running> {
        let (creds, name) = credentials(home)?;
        let store = Arc::new(SledStore::open(Home::open(home)?)?);
        let node = NodeBuilder::new(creds)
            .config(node_config(bootstrap, false))
            .store(store.clone())
            .clock(Arc::new(clock.clone()))
            .spawn()?;
        Ok(Running { name, node, store })
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let operator = start_at(console, vec![])?;
        let address = baro_node::testing::listen_address(&operator.node).await?;
        let lee = start_at(lee_home, vec![address.to_string()])?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let policy = loop {
            let status = lee.node.handle().status().await?;
            if status.policy.version >= verified.version {
                break status.policy;
            }
            if Instant::now() > deadline {
                bail!("Lee's phone did not receive the agency policy");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        println!(
            "   ✓ {} meets the operator's console and takes it; {}",
            lee.name,
            policy.lease.unwrap_or_default()
        );
        lee.stop().await?;
        operator.stop().await?;

        clock.advance(12 * DAY_SECS);
        let lee = start_at(lee_home, vec![])?;
        let status = lee.node.handle().status().await?;
        println!("   Twelve days in a drawer later (a controlled clock moves the days):");
        println!(
            "   ✓ at start the phone warns: {}",
            status.policy.lease.unwrap_or_default()
        );
        lee.stop().await?;

        clock.advance(3 * DAY_SECS);
        match start_at(lee_home, vec![]) {
            Ok(_) => bail!("Lee's phone outlived its lease: this is a bug"),
            Err(e) => println!(
                "   ✓ fifteen days: at its next start, before showing anything, it erases itself:\n     {e}"
            ),
        }
        println!(
            "   what is left of its home: {}",
            home_contents(lee_home)?.join(", ")
        );
        println!("   (A clock set back buys no time: lease time never goes back. Relays hold no lease.)");
        Ok(())
    })
}

/// The trip photo's file name.
const TRIP_PHOTO: &str = "세종청사-공문-1쪽.jpg";
/// Where the trip photo was taken, as the camera wrote it: Sejong
/// Government Complex, 36°30′14″N 127°15′54″E.
const TRIP_GPS: ([u32; 3], [u32; 3]) = ([36, 30, 14], [127, 15, 54]);

/// A phone's photo of a printed page: a white sheet with a title and dark
/// lines of text on a slightly grey, grainy background, as a JPEG whose
/// EXIF carries the GPS position where it was taken (what a phone camera
/// writes). `image` encodes the pixels; the EXIF segment is written here.
fn photographed_page() -> Result<Vec<u8>> {
    let (width, height) = (1200u32, 1600u32);
    let page = image::RgbImage::from_fn(width, height, |x, y| {
        // Grain of paper and sensor noise.
        let grain = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).rotate_left(7) >> 26;
        let paper = 200u8.saturating_add(grain as u8);
        let margin = (90..width - 90).contains(&x);
        let title = (140..196).contains(&y) && (280..920).contains(&x);
        // Lines of text: 18 px high every 44 px, ragged right ends.
        let line = (290..1500).contains(&y) && (y - 290) % 44 < 18;
        let ragged = width - 90 - ((y / 44) * 97 % 340);
        let ink = title || (margin && line && x < ragged && (x / 9) % 7 != 0);
        if ink {
            image::Rgb([40, 42, 48])
        } else {
            image::Rgb([paper, paper, paper.saturating_sub(4)])
        }
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&page)
        .context("cannot encode the photo")?;
    // EXIF (TIFF, little endian): IFD0 holds only the GPS IFD's offset;
    // the GPS IFD holds latitude N and longitude E as degrees, minutes,
    // seconds (three rationals each, after the IFD).
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend(1u16.to_le_bytes());
    tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0, 26, 0, 0, 0]);
    tiff.extend(0u32.to_le_bytes());
    let gps_entries: [(u16, u16, u32, u32); 4] = [
        (1, 2, 2, u32::from(b'N')),
        (2, 5, 3, 80),
        (3, 2, 2, u32::from(b'E')),
        (4, 5, 3, 104),
    ];
    tiff.extend((gps_entries.len() as u16).to_le_bytes());
    for (tag, kind, count, value) in gps_entries {
        tiff.extend(tag.to_le_bytes());
        tiff.extend(kind.to_le_bytes());
        tiff.extend(count.to_le_bytes());
        tiff.extend(value.to_le_bytes());
    }
    tiff.extend(0u32.to_le_bytes());
    for part in TRIP_GPS.0.iter().chain(&TRIP_GPS.1) {
        tiff.extend(part.to_le_bytes());
        tiff.extend(1u32.to_le_bytes());
    }
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend(tiff);
    let mut photo = jpeg[..2].to_vec();
    photo.extend([0xff, 0xe1]);
    photo.extend(u16::try_from(segment.len() + 2)?.to_be_bytes());
    photo.extend(segment);
    photo.extend(&jpeg[2..]);
    Ok(photo)
}

/// "1 chunk", "4 chunks".
fn chunks(n: usize) -> String {
    if n == 1 {
        "1 chunk".into()
    } else {
        format!("{n} chunks")
    }
}

/// Whether `bytes` hold an EXIF segment (where a camera writes GPS).
fn has_exif(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w == b"Exif\0\0")
}

/// On a trip, Kim photographs a document and sends it to the division
/// while Lee is away; the relay fetches its chunks. Returns the file id.
async fn photo_from_a_trip(kim: &Running, relay: &Running, dir: &Path) -> Result<String> {
    let photo = photographed_page()?;
    let path = dir.join(TRIP_PHOTO);
    std::fs::write(&path, &photo)?;
    println!(
        "   {} is on a trip to Sejong: she photographs page 1 of a document ({} KiB JPEG;",
        kim.name,
        photo.len().div_ceil(1024)
    );
    println!(
        "     its EXIF says where: GPS {}°{}′{}″N {}°{}′{}″E, as phone cameras write it)",
        TRIP_GPS.0[0], TRIP_GPS.0[1], TRIP_GPS.0[2], TRIP_GPS.1[0], TRIP_GPS.1[1], TRIP_GPS.1[2]
    );
    let caption = "세종 출장: 공문 1쪽 사진입니다";
    let sent = kim
        .node
        .handle()
        .send_file(DIVISION, &path, caption, false)
        .await?;
    let files = kim.node.handle().files(DIVISION).await?;
    let file = files
        .iter()
        .find(|m| m.id == sent.id)
        .and_then(|m| m.attachment.clone())
        .context("the photo is not in Kim's room")?;
    println!(
        "   ✓ sent as \"{caption}\": {} KiB without its EXIF (the GPS position stays on her phone),",
        file.size.div_ceil(1024)
    );
    println!(
        "     sealed into {} under a key of its own; a {}×{} preview rides in the message",
        chunks(file.chunks),
        file.preview.as_ref().map_or(0, |p| p.width),
        file.preview.as_ref().map_or(0, |p| p.height)
    );
    for _ in 0..200 {
        if relay.node.handle().status().await?.file_chunks >= file.chunks {
            println!(
                "   ✓ the relay fetched the {} (sealed: it cannot open them) to keep for the others",
                chunks(file.chunks)
            );
            return Ok(file.file_id);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the relay did not fetch the photo's chunks")
}

/// Lee, back, sees the trip photo's preview with its message, then the
/// photo itself fetched from the relay (the only peer up), without EXIF.
async fn photo_arrives(
    lee: &Running,
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    file_id: &str,
    dir: &Path,
) -> Result<()> {
    let ours = |view: &MessageView| {
        view.attachment
            .as_ref()
            .filter(|a| a.file_id == file_id)
            .cloned()
    };
    let mut preview_first = None;
    let complete = next_event(events, 30, |event| match event {
        NodeEvent::Message(m) => {
            if let Some(a) = ours(&m) {
                preview_first = Some(a);
            }
            None
        }
        NodeEvent::FileProgress(m) => ours(&m).filter(|a| a.held == a.chunks),
        _ => None,
    })
    .await
    .context("the photo did not arrive")?;
    if let Some(first) = &preview_first {
        let preview = first
            .preview
            .as_ref()
            .context("the message has no preview")?;
        println!(
            "   ✓ the photo's message arrives with its preview ({}×{}, {} KiB), shown at once,",
            preview.width,
            preview.height,
            (preview.hex.len() / 2).div_ceil(1024)
        );
        println!(
            "     while {} of its {} are here",
            first.held,
            chunks(first.chunks)
        );
    }
    let peers: Vec<String> = lee
        .node
        .handle()
        .peers()
        .await?
        .into_iter()
        .map(|p| p.user_id)
        .collect();
    println!(
        "   ✓ then the photo itself: {} fetched from {} (the only peer up), each checked",
        chunks(complete.chunks),
        peers.join(", ")
    );
    println!("     against its hash; photos up to 8 MiB come without being asked for");
    let out = dir.join("lee-received.jpg");
    lee.node
        .handle()
        .fetch_file(DIVISION, file_id, Some(&out))
        .await?;
    let received = std::fs::read(&out)?;
    if has_exif(&received) || !received.starts_with(&[0xff, 0xd8]) {
        bail!("the received photo should be a JPEG without EXIF");
    }
    println!(
        "   ✓ {} saves it: {} KiB, no EXIF, no GPS position in what {} received",
        lee.name,
        received.len().div_ceil(1024),
        lee.name
    );
    Ok(())
}
