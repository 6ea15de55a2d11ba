//! `baro run`, `baro peers` and `baro status`: the node and questions to it.

use std::path::Path;

use anyhow::{Context, Result, bail};
use baro_node::api::{self, Request, Response};
use baro_node::clock::{Clock, format_utc, unix_now};
use baro_node::config::RelayConfig;
use baro_node::enrollment;
use baro_node::store::{Home, SledStore, Store};
use baro_node::trust::{Role, TrustError, TrustPolicy};
use baro_node::{Credentials, NodeBuilder, NodeConfig, NodeEvent};
use tokio::signal::unix::{SignalKind, signal};

use super::print_json;
use crate::args::RunArgs;
use crate::sanitize::{CONTINUATION, printable, printable_lines};

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
    let clock = NodeClock(
        std::env::var(CLOCK_SKIP_ENV)
            .ok()
            .and_then(|secs| secs.parse().ok())
            .unwrap_or(0),
    );
    let home = Home::open(home_dir)?;
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
                format_utc(not_after)
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
                format_utc(not_after)
            );
        }
        let shutdown = node.shutdown_token();
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
        // The lease warning, once per day left.
        let mut warned = None;
        if let Ok(status) = handle.status().await
            && status.policy.lease_days_left.is_some()
            && let Some(lease) = &status.policy.lease
        {
            println!("warning: {}", printable(lease));
            warned = status.policy.lease_days_left;
        }
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch Ctrl-C")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut wiped = None;
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
                        print_event(&event, &handle.device().to_string());
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
        store.flush()?;
        println!("stopped");
        Ok(())
    })
}

/// Prints one node event; every name, reason and text in it came from
/// the network and is shown through [`printable`].
fn print_event(event: &NodeEvent, me: &str) {
    match event {
        NodeEvent::Listening(address) => {
            println!("listening on {}/p2p/{me}", printable(&address.to_string()))
        }
        NodeEvent::PeerAdmitted(peer) => println!(
            "admitted {} ({}, {}, {}) via {} at {}",
            printable(&peer.display_name),
            printable(&peer.user_id),
            peer.role,
            printable(peer.org_unit.as_str()),
            peer.found_by,
            printable(&peer.address)
        ),
        NodeEvent::PeerRefused { peer, reason } => {
            println!("refused {peer}: {}", printable(reason))
        }
        NodeEvent::PeerDisconnected(device) => println!("disconnected {device}"),
        NodeEvent::BootstrapUnreachable { address, error } => println!(
            "bootstrap {} does not answer ({}); the node keeps trying while no peer is connected",
            printable(address),
            printable(error)
        ),
        NodeEvent::Gossip {
            author_user,
            payload,
            ..
        } => println!(
            "notice from {}: {}",
            printable(author_user),
            printable(&String::from_utf8_lossy(payload))
        ),
        NodeEvent::Message(message) => println!(
            "[{}] {}: {}",
            printable(&message.room_name),
            printable(&message.sender_name),
            printable_lines(&message.text, CONTINUATION)
        ),
        NodeEvent::RoomJoined(room) => println!(
            "joined room \"{}\" ({})",
            printable(&room.name),
            printable(&room.kind)
        ),
        NodeEvent::Unreadable { room, .. } => {
            tracing::debug!(room = %room, "kept a message this device cannot read")
        }
        NodeEvent::GossipRejected { from, reason } => {
            println!(
                "rejected a message forwarded by {from}: {}",
                printable(reason)
            )
        }
        NodeEvent::Synced(report) if report.fetched > 0 => println!(
            "synced with {}: {} item(s) fetched ({} bytes sent, {} received, {} round trips)",
            report.peer.short(),
            report.fetched,
            report.bytes_sent,
            report.bytes_received,
            report.round_trips
        ),
        NodeEvent::Synced(report) => {
            tracing::debug!(peer = %report.peer.short(), "in sync")
        }
        NodeEvent::Revoked(view) => println!(
            "revocation: device {} of {} ({}), by {}: {}{}",
            view.device.short(),
            printable(&view.user),
            printable(&view.scope),
            printable(&view.issued_by),
            printable(&view.reason),
            if view.wipe { " [wipe]" } else { "" }
        ),
        NodeEvent::WipeConfirmed { device, .. } => {
            println!(
                "wipe acknowledged by device {} (a receipt its key signed; not proof its data was erased)",
                device.short()
            )
        }
        NodeEvent::PolicyChanged(view) => println!(
            "agency policy: {}",
            printable(view.policy.as_deref().unwrap_or("none"))
        ),
        NodeEvent::LeaseEnding(view) => {
            if let Some(lease) = &view.lease {
                println!("warning: {}", printable(lease));
            }
        }
        NodeEvent::Wiping { notice } | NodeEvent::Wiped { notice } => {
            println!("{}", printable(notice))
        }
        NodeEvent::SyncRejected { from, reason } => {
            println!(
                "sync with {} stopped: it sent an invalid item: {}",
                from.short(),
                printable(reason)
            )
        }
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
    for peer in peers {
        println!(
            "  {:<24} {:<14} {:<8} {:<36} {:<10} {}\n    device {}",
            printable(&peer.display_name),
            printable(&peer.user_id),
            peer.role.to_string(),
            printable(peer.org_unit.as_str()),
            peer.found_by.to_string(),
            printable(&peer.address),
            peer.device
        );
    }
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
    }
    for person in &found.people {
        println!(
            "  {:<24} {:<14} {}  ({} device{})",
            printable(&person.name),
            printable(&person.user),
            printable(&person.org_unit),
            person.devices.len(),
            if person.devices.len() == 1 { "" } else { "s" }
        );
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
            .map_or_else(|| "never since start".to_string(), format_utc)
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
