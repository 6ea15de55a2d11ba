//! `baro run`, `baro peers` and `baro status`: the node and questions to it.

use std::path::Path;

use anyhow::{Context, Result, bail};
use baro_node::api::{self, Request, Response};
use baro_node::clock::{Clock, unix_now};
use baro_node::config::RelayConfig;
use baro_node::enrollment;
use baro_node::store::{Home, SledStore, Store};
use baro_node::trust::{Role, TrustError, TrustPolicy};
use baro_node::{Credentials, NodeBuilder, NodeConfig, NodeEvent};
use tokio::signal::unix::{SignalKind, signal};

use super::print_json;
use crate::args::RunArgs;
use crate::display_width::truncate;
use crate::local_time::{LocalTime, date};
use crate::sanitize::printable;
use crate::table::Table;

/// Test hook: seconds added to the wall clock, so a process test of the
/// lease moves time on without waiting days. It gives a thief nothing: the
/// system clock can be set as easily, and lease time never goes back.
pub const CLOCK_SKIP_ENV: &str = "BARO_TEST_CLOCK_SKIP_SECS";

/// The wall clock, moved on by [`CLOCK_SKIP_ENV`] seconds.
#[derive(Debug)]
struct NodeClock(u64);

impl Clock for NodeClock {
    fn now(&self) -> u64 {
        unix_now().saturating_add(self.0)
    }
}

/// How long an expired device runs to obey what it holds or is shown.
const RESTRICTED_RUN: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the node in the foreground; `relay` makes it a field-office relay.
pub fn run(home_dir: &Path, args: RunArgs, relay: Option<RelayConfig>) -> Result<()> {
    if args.background {
        super::background::become_background()?;
    }
    let clock = NodeClock(
        std::env::var(CLOCK_SKIP_ENV)
            .ok()
            .and_then(|secs| secs.parse().ok())
            .unwrap_or(0),
    );
    let home = Home::open(home_dir)?;
    // Held until the process ends: `send`, `history` and `chat` wait for a
    // node that is starting instead of starting another.
    let _node_of_home = super::background::hold_home(home_dir)?;
    let key = enrollment::load_device_key(&home)?;
    let bundle = enrollment::load_bundle(&home)?;
    // Issue 17, deliverable 6: an expired device still obeys its revocation.
    // No peer admits it (its chain no longer verifies), so it starts in a
    // restricted mode: no control API, nothing shown, listening on loopback
    // only; it takes the revocations and the lease kept in its store, and
    // dials its peers, which show it a revocation naming it (they keep one
    // 90 days past the certificates it covers) and refuse it. It wipes if
    // one orders it, and stops. A chain wrong in any other way is refused.
    let invalid = "this device's certificate is not valid; ask an operator for a new bundle";
    let policy = TrustPolicy::default();
    let (me, expired) = match bundle.verify_for(key.device_id(), clock.now(), &policy) {
        Ok(me) => (me, None),
        Err(TrustError::Expired { not_after, .. }) => {
            let start = bundle
                .body
                .chain
                .leaf()
                .map_or(0, |leaf| leaf.body.not_before);
            let me = bundle
                .verify_for(key.device_id(), start, &policy)
                .context(invalid)?;
            (me, Some(not_after))
        }
        Err(e) => return Err(anyhow::Error::new(e).context(invalid)),
    };
    match (&relay, me.role) {
        (Some(_), role) if role != Role::Relay => bail!(
            "`baro relay` needs a relay certificate, and this device is certified as {role}; \
             ask an operator to enroll a relay device (`baro agency enroll ... --role relay`)"
        ),
        (None, Role::Relay) => bail!(
            "this device is certified as a relay: start it with `baro relay` (not `baro run`)"
        ),
        _ => {}
    }
    let mut config = NodeConfig {
        mdns: !args.no_mdns,
        sync_interval_secs: args.sync_interval,
        mdns_query_secs: args.mdns_interval,
        relay,
        label: enrollment::load_label(&home)?,
        ..NodeConfig::default()
    };
    if !args.listen.is_empty() {
        config.listen = args.listen;
    }
    config.bootstrap = bundle
        .body
        .bootstrap
        .iter()
        .cloned()
        .chain(args.bootstrap)
        .collect();
    if expired.is_some() {
        config.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    }
    let config = config.validate()?.config;
    let config_summary = (config.bootstrap.is_empty(), config.mdns);
    // Holding the database marks this home as in use by this process.
    let store = std::sync::Arc::new(SledStore::open(home)?);
    if let Some(damage) = store.damage() {
        eprintln!("warning: {damage}");
    }

    let started = clock.now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let socket = api::bind(home_dir.join(api::SOCKET_NAME))
            .await
            .context("cannot open the control socket")?;
        // A device past its lease erases itself here, before anything is shown.
        let node = NodeBuilder::new(Credentials::from_bundle(key, &bundle))
            .config(config)
            .store(store.clone())
            .clock(std::sync::Arc::new(clock))
            .spawn()?;
        let handle = node.handle();
        let mut events = node.events_from_start();
        if let Some(not_after) = expired {
            println!(
                "This device's certificate expired at {}: no peer admits it and it shows nothing.",
                date(not_after)
            );
            println!(
                "It started only to learn and obey a revocation naming it (held, or shown by a peer) and its lease."
            );
            // Stored revocations are taken at start; a wipe they order runs
            // at the node's first tick.
            let wiped = tokio::time::timeout(RESTRICTED_RUN, async {
                loop {
                    match events.recv().await {
                        Ok(NodeEvent::Wiped { notice }) => return Some(notice),
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                        _ => {}
                    }
                }
            })
            .await;
            node.shutdown().await;
            if let Some(notice) = wiped.ok().flatten().or_else(|| Home::revoked_notice(home_dir)) {
                anyhow::bail!("{notice}");
            }
            store.flush()?;
            anyhow::bail!(
                "this device's certificate expired at {} and it holds no revocation of itself: ask an operator for a new bundle",
                date(not_after)
            );
        }
        // Watched before the socket answers: `baro stop` (SIGTERM) sent as
        // soon as the node answers must stop it cleanly, store flushed, not
        // kill it with the signal's default action.
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch Ctrl-C")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let shutdown = node.shutdown_token();
        // Bound (and ui.url written) before the socket answers: once a
        // client is answered, the URL in the home is this run's.
        let app = match &args.ui {
            Some(addr) => Some(baro_ui::bind(baro_ui::parse_addr(addr)?, home_dir).await?),
            None => None,
        };
        let server = tokio::spawn(socket.serve(handle.clone(), shutdown.clone()));
        println!(
            "Baro Mesh node of {} ({}, {}) in agency \"{}\"",
            printable(&me.subject.display_name),
            printable(&me.subject.user_id),
            me.role,
            printable(&bundle.body.agency.name)
        );
        println!("device id: {}", handle.device());
        if let Some(warning) = no_discovery_warning(&config_summary) {
            println!("{warning}");
        }
        let app_server = app.map(|app| {
            if !app.addr().ip().is_loopback() {
                println!(
                    "warning: the app is served on {}, not loopback: anyone on that network reaches its login page, over plain HTTP",
                    app.addr()
                );
            }
            println!("app: {}", app.url());
            if args.open_app {
                open_in_browser(home_dir, app.url());
            }
            tokio::spawn(app.serve(handle.clone(), shutdown.clone()))
        });
        // The lease warning, once per day left.
        let mut warned = None;
        if let Ok(status) = handle.status().await
            && status.policy.lease_days_left.is_some()
            && let Some(lease) = &status.policy.lease
        {
            println!("warning: {}", printable(lease));
            warned = status.policy.lease_days_left;
        }
        let mut wiped = None;
        let mut lines = EventLines {
            without_text: args.background,
            started,
            ..EventLines::default()
        };
        let me_id = handle.device().to_string();
        loop {
            tokio::select! {
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
                event = events.recv() => match event {
                    Ok(NodeEvent::Wiped { notice }) => {
                        wiped = Some(notice);
                        break;
                    }
                    Ok(NodeEvent::LeaseEnding(view)) if view.lease_days_left == warned => {}
                    Ok(event) => {
                        if let NodeEvent::LeaseEnding(view) = &event {
                            warned = view.lease_days_left;
                        }
                        if let Some(line) = lines.line(&event, &me_id) {
                            println!("{line}");
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        println!("({n} events not shown)");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            }
        }
        if let Some(notice) = wiped {
            // The store is gone: nothing to flush.
            node.shutdown().await;
            let _ = server.await;
            anyhow::bail!("{notice}");
        }
        println!("stopping…");
        node.shutdown().await;
        let _ = server.await;
        if let Some(app_server) = app_server {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), app_server).await;
        }
        store.flush()?;
        println!("stopped");
        Ok(())
    })
}

/// `baro app`: the node with the app, opened in the browser; if a node
/// already runs on this home with the app, its app is opened.
pub fn app(home_dir: &Path, mut args: RunArgs) -> Result<()> {
    if api::request(home_dir, &Request::Status).is_ok() {
        let Some(url) = baro_ui::read_url(home_dir) else {
            bail!(
                "a node already runs on this home without the app: stop it (`baro stop`), then run `baro app`"
            );
        };
        println!("app: {url}");
        open_in_browser(home_dir, &url);
        return Ok(());
    }
    if args.ui.is_none() {
        // Another user's app (or another program) may hold the default
        // port on a shared PC: then any free port (a page left open then
        // does not find this node again after a restart).
        let free = std::net::TcpListener::bind(baro_ui::DEFAULT_ADDR).is_ok();
        if !free {
            println!(
                "note: {} is in use: the app takes a free port instead",
                baro_ui::DEFAULT_ADDR
            );
        }
        args.ui = Some(
            if free {
                baro_ui::DEFAULT_ADDR
            } else {
                "127.0.0.1:0"
            }
            .to_string(),
        );
    }
    args.open_app = true;
    run(home_dir, args, None)
}

/// Opens the app's login URL in the desktop's browser (`xdg-open`, or
/// `open` on macOS), through an owner-only page in the home so the token
/// is on no command line; says what to do if there is no browser.
fn open_in_browser(home_dir: &Path, url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let opened = baro_ui::write_launcher(home_dir, url).and_then(|page| {
        std::process::Command::new(opener)
            .arg(page)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
    });
    if opened.is_err() {
        println!("open the app's URL above in a browser on this device");
    }
}

/// The `run` terminal: one human line per event, peers by name once
/// admitted, each room's join once (a group moving to a new key shows its
/// state again), and a new message as one line cut to the terminal's usual
/// width; messages written while the device was away are one line in all
/// (a device that catches up must not dump whole documents). Every
/// name, reason and text came from the network and goes through
/// [`printable`].
#[derive(Debug, Default)]
struct EventLines {
    names: std::collections::HashMap<baro_node::DeviceId, String>,
    joined: std::collections::HashSet<String>,
    /// In the background node's log file: who wrote in which room, not
    /// what (message text stays encrypted at rest).
    without_text: bool,
    /// When this node started (Unix seconds): messages written well before
    /// are a catch-up, not news.
    started: u64,
    /// Whether the catch-up was mentioned.
    caught_up: bool,
}

/// Messages written this long before the node started are a catch-up
/// (clocks of other devices may be a little behind).
const CATCH_UP_SECS: u64 = 300;

/// Columns of a message's text in the `run` terminal.
const RUN_TEXT_COLUMNS: usize = 60;

impl EventLines {
    /// "이준호 (lee.junho)" for an admitted peer, else its short id.
    fn name(&self, device: &baro_node::DeviceId) -> String {
        self.names
            .get(device)
            .cloned()
            .unwrap_or_else(|| format!("device {}", device.short()))
    }

    /// The line for `event`, if it gets one.
    fn line(&mut self, event: &NodeEvent, me: &str) -> Option<String> {
        Some(match event {
            NodeEvent::Listening(address) => {
                format!("listening on {}", printable(&with_own_id(address, me)))
            }
            NodeEvent::PeerAdmitted(peer) => {
                let name = format!(
                    "{} ({})",
                    printable(&peer.display_name),
                    printable(&peer.user_id)
                );
                self.names.insert(peer.device, name.clone());
                format!(
                    "admitted {name}, {}, {}, via {} at {}",
                    peer.role,
                    printable(peer.org_unit.as_str()),
                    peer.found_by,
                    printable(&peer.address)
                )
            }
            NodeEvent::PeerRefused { peer, reason } => {
                format!("refused {peer}: {}", printable(reason))
            }
            NodeEvent::PeerDisconnected(device) => format!("disconnected {}", self.name(device)),
            NodeEvent::BootstrapUnreachable { address, error } => format!(
                "bootstrap {} does not answer ({}); the node keeps trying while no peer is connected",
                printable(address),
                printable(error)
            ),
            NodeEvent::Gossip {
                author_user,
                payload,
                ..
            } => format!(
                "notice from {}: {}",
                printable(author_user),
                if self.without_text {
                    "(a notice)".to_string()
                } else {
                    truncate(
                        &printable(&String::from_utf8_lossy(payload)),
                        RUN_TEXT_COLUMNS,
                    )
                }
            ),
            NodeEvent::Message(message)
                if message.wall_ms / 1000 + CATCH_UP_SECS < self.started =>
            {
                if std::mem::replace(&mut self.caught_up, true) {
                    return None;
                }
                "catching up on messages written while this device was away: \
                 not shown here (`baro history ROOM` or `baro chat ROOM` shows them)"
                    .to_string()
            }
            NodeEvent::Message(message) => format!(
                "[{}] {} {}: {}",
                printable(&message.room_name),
                LocalTime::system().short(message.wall_ms / 1000),
                printable(&message.sender_name),
                if self.without_text {
                    "(a message)".to_string()
                } else if let Some(file) = &message.attachment {
                    truncate(
                        &format!(
                            "[file {} ({})] {}",
                            printable(&file.name),
                            baro_node::net::size_text(file.size),
                            printable(&message.text)
                        ),
                        RUN_TEXT_COLUMNS,
                    )
                } else {
                    truncate(&printable(&message.text), RUN_TEXT_COLUMNS)
                }
            ),
            NodeEvent::RoomJoined(room) => {
                if !self.joined.insert(room.id.clone()) {
                    return None;
                }
                format!(
                    "joined room \"{}\" ({})",
                    printable(&room.name),
                    printable(&room.kind)
                )
            }
            NodeEvent::Unreadable { room, .. } => {
                tracing::debug!(room = %room, "kept a message this device cannot read");
                return None;
            }
            NodeEvent::FileProgress(message) => {
                let file = message.attachment.as_ref()?;
                if file.held < file.chunks {
                    return None;
                }
                format!(
                    "[{}] file {} ({}) is here: `baro fetch` writes it out",
                    printable(&message.room_name),
                    printable(&file.name),
                    baro_node::net::size_text(file.size)
                )
            }
            NodeEvent::ChunkRejected { from, reason } => format!(
                "refused a file chunk from {from}: {}; that peer is asked nothing for a while",
                printable(reason)
            ),
            NodeEvent::GossipRejected { from, reason } => format!(
                "rejected a message forwarded by {from}: {}",
                printable(reason)
            ),
            NodeEvent::Synced(report) if report.fetched > 0 => format!(
                "synced with {}: {} item(s) fetched ({} bytes sent, {} received, {} round trips)",
                self.name(&report.peer),
                report.fetched,
                report.bytes_sent,
                report.bytes_received,
                report.round_trips
            ),
            NodeEvent::Synced(report) => {
                tracing::debug!(peer = %report.peer.short(), "in sync");
                return None;
            }
            NodeEvent::Revoked(view) => format!(
                "revocation: {} of {} ({}), by {}: {}{}",
                self.name(&view.device),
                printable(&view.user),
                printable(&view.scope),
                printable(&view.issued_by),
                printable(&view.reason),
                if view.wipe { " [wipe]" } else { "" }
            ),
            NodeEvent::WipeConfirmed { device, .. } => format!(
                "wipe acknowledged by {} (a receipt its key signed; not proof its data was erased)",
                self.name(device)
            ),
            NodeEvent::PolicyChanged(view) => format!(
                "agency policy: {}",
                printable(view.policy.as_deref().unwrap_or("none"))
            ),
            NodeEvent::LeaseEnding(view) => {
                format!("warning: {}", printable(view.lease.as_deref()?))
            }
            NodeEvent::Wiping { notice } | NodeEvent::Wiped { notice } => {
                printable(notice).into_owned()
            }
            NodeEvent::SyncRejected { from, reason } => format!(
                "sync with {} stopped: it sent an invalid item: {}",
                self.name(from),
                printable(reason)
            ),
        })
    }
}

/// A listening address with this node's id at its end, once: a relayed
/// address already ends in `/p2p-circuit/p2p/<id>` (audit finding 21: the
/// id was appended a second time, and the address did not parse).
fn with_own_id(address: &impl std::fmt::Display, me: &str) -> String {
    let address = address.to_string();
    if address.ends_with(&format!("/p2p/{me}")) {
        address
    } else {
        format!("{address}/p2p/{me}")
    }
}

pub fn peers(home: &Path, json: bool) -> Result<()> {
    let Response::Peers(peers) = api::request(home, &Request::Peers)? else {
        bail!("the node answered something else than a peer list");
    };
    if json {
        return print_json(&serde_json::to_value(&peers)?);
    }
    if peers.is_empty() {
        println!("no admitted peers yet");
        return Ok(());
    }
    println!("{} admitted peer(s):", peers.len());
    let mut table = Table::new(&[
        "NAME", "USER", "ROLE", "ORG UNIT", "FOUND BY", "ADDRESS", "DEVICE",
    ]);
    for peer in peers {
        table.row(vec![
            printable(&peer.display_name).into_owned(),
            printable(&peer.user_id).into_owned(),
            peer.role.to_string(),
            printable(peer.org_unit.as_str()).into_owned(),
            peer.found_by.to_string(),
            printable(&peer.address).into_owned(),
            match &peer.label {
                Some(label) => format!("{} ({})", peer.device, printable(label)),
                None => peer.device.to_string(),
            },
        ]);
    }
    println!("{table}");
    Ok(())
}

pub fn people(
    home: &Path,
    search: Option<String>,
    user: Option<String>,
    unit: Option<String>,
    below: bool,
    json: bool,
) -> Result<()> {
    let request = Request::People {
        search,
        user,
        unit,
        below,
    };
    let Response::People(found) = api::request(home, &request)? else {
        bail!("the node answered something else than a directory answer");
    };
    if json {
        return print_json(&serde_json::to_value(&found)?);
    }
    if found.people.is_empty() {
        println!("nobody found");
    } else {
        let mut table = Table::new(&["NAME", "USER", "ORG UNIT", "DEVICES"]);
        for person in &found.people {
            table.row(vec![
                printable(&person.name).into_owned(),
                printable(&person.user).into_owned(),
                printable(&person.org_unit).into_owned(),
                if person.labels.is_empty() {
                    person.devices.len().to_string()
                } else {
                    format!(
                        "{} ({})",
                        person.devices.len(),
                        printable(&person.labels.join(", "))
                    )
                },
            ]);
        }
        println!("{table}");
    }
    if found.more {
        println!("(more not shown: narrow the search)");
    }
    if found.local_only {
        println!(
            "(only the officials this device knows: no relay's agency directory was asked or reachable)"
        );
    }
    Ok(())
}

/// The warning `baro run` prints when the node cannot find any peer by
/// itself: no bootstrap address (bundle or `--bootstrap`) and no LAN
/// discovery (finding 20, 28). `(no_bootstrap, mdns)`.
fn no_discovery_warning(&(no_bootstrap, mdns): &(bool, bool)) -> Option<&'static str> {
    (no_bootstrap && !mdns).then_some(
        "warning: this device has no way to find peers: its bundle has no bootstrap address and LAN discovery is off (--no-mdns); \
         add --bootstrap ADDRESS of a relay, or run without --no-mdns",
    )
}

pub fn status(home: &Path, json: bool) -> Result<()> {
    let Response::Status(status) = api::request(home, &Request::Status)? else {
        bail!("the node answered something else than its status");
    };
    if json {
        return print_json(&serde_json::to_value(&status)?);
    }
    println!(
        "node of {} in agency \"{}\" ({})",
        printable(&status.user_id),
        printable(&status.agency),
        printable(&status.agency_id)
    );
    println!("  device id:    {}", status.device);
    println!("  listening:    {}", printable(&status.listen.join(", ")));
    println!(
        "  peers:        {} admitted, {} blocked",
        status.peers, status.blocked
    );
    println!(
        "  devices met:  {} (officials' devices whose certificates this node holds)",
        status.devices_met
    );
    println!("  mDNS:         {}", if status.mdns { "on" } else { "off" });
    println!(
        "  outbox:       {}",
        match status.outbox {
            0 => "empty".to_string(),
            n => format!("{n} message(s) no member or relay holds yet"),
        }
    );
    println!(
        "  relays:       {}",
        if status.relays.is_empty() {
            "none reachable".to_string()
        } else {
            printable(&status.relays.join(", ")).into_owned()
        }
    );
    println!(
        "  last sync:    {}",
        status
            .last_sync
            .map_or_else(|| "never since start".to_string(), date)
    );
    for view in &status.own_devices_revoked {
        println!(
            "  revoked:      {}",
            super::rooms::own_revocation_notice(view)
        );
    }
    if !status.discovery {
        println!(
            "  discovery:    none: no bootstrap address and mDNS is off, so no peer can be found"
        );
    }
    println!(
        "  stored:       {} item(s), {} KiB{}",
        status.stored_items,
        status.stored_bytes / 1024,
        if status.relay {
            " (relay: store-and-forward for offline devices)"
        } else {
            ""
        }
    );
    if !status.bootstrap.is_empty() {
        println!(
            "  bootstrap:    {}",
            printable(&status.bootstrap.join(", "))
        );
    }
    match &status.policy.policy {
        Some(policy) => println!("  policy:       {}", printable(policy)),
        None => println!(
            "  policy:       none received yet (no lease, {} wrong PINs)",
            status.policy.max_pin_attempts
        ),
    }
    if let Some(lease) = &status.policy.lease {
        println!("  lease:        {}", printable(lease));
    }
    Ok(())
}
