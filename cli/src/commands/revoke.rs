//! `baro agency revoke`, `baro agency revocations` and `baro device revoke`.
//!
//! While this home's node runs, the revocation goes to it over the control
//! API and is published at once; otherwise it is kept in the home and
//! published when `baro run` starts.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use baro_node::api::{self, ApiError, DeviceView, Request, Response};
use baro_node::clock::unix_now;
use baro_node::enrollment;
use baro_node::revocations::{self, HolderView, Order, RevocationView, Target};
use baro_node::store::Home;
use baro_node::trust::{CertificateChain, Issuer, Revocation, validate_reason};
use baro_node::{DeviceId, wire};

use super::print_json;
use crate::args::AgencyRevoke;
use crate::local_time::date;
use crate::passphrase;
use crate::sanitize::printable;

/// The chain of `target`: from the running node, or from the stopped
/// node's store. `Ok((chain, running))`.
fn target_chain(home: &Path, target: &Target) -> Result<(CertificateChain, bool)> {
    let request = match target {
        Target::Device(device) | Target::Certificate(device, _) => Request::DeviceChain {
            device: Some(device.to_string()),
            user: None,
        },
        Target::User(user) => Request::DeviceChain {
            device: None,
            user: Some(user.clone()),
        },
    };
    match api::request(home, &request) {
        Ok(Response::Chain(hex)) => {
            let bytes = hex::decode(hex).context("the node sent a damaged certificate chain")?;
            let chain: CertificateChain = wire::decode(&bytes)?;
            if let Target::Certificate(_, serial) = target
                && chain.leaf().map(|leaf| leaf.body.serial) != Some(*serial)
            {
                bail!(
                    "the node knows another certificate of this device (#{}), not #{serial}: stop `baro run` and try again, or check the serial",
                    chain.leaf().map_or(0, |leaf| leaf.body.serial)
                );
            }
            Ok((chain, true))
        }
        Ok(_) => bail!("the node answered something else than a certificate chain"),
        Err(ApiError::NotRunning(_)) => Ok((revocations::find_target(home, target)?, false)),
        // The running node never met it: an operator's console still
        // holds every chain it issued.
        Err(e) => match revocations::find_issued(home, target) {
            Ok(chain) => Ok((chain, true)),
            Err(_) => Err(e.into()),
        },
    }
}

/// Hands `revocation` to the running node, or keeps it for the next start.
fn submit(home: &Path, revocation: &Revocation, running: bool) -> Result<RevocationView> {
    if running {
        let request = Request::Revoke {
            revocation: hex::encode(wire::encode(revocation)),
        };
        match api::request(home, &request)? {
            Response::Revocation(view) => Ok(view),
            _ => bail!("the node answered something else than the revocation"),
        }
    } else {
        Ok(revocations::keep_for_next_start(
            home,
            revocation,
            unix_now(),
        )?)
    }
}

pub fn agency_revoke(home: &Path, args: AgencyRevoke, json: bool) -> Result<()> {
    let target = match (args.device, args.user) {
        (Some(device), _) => match args.serial {
            Some(serial) => Target::Certificate(device.parse()?, serial),
            None => Target::Device(device.parse()?),
        },
        (None, Some(user)) => Target::User(user),
        (None, None) => bail!("name what to revoke: --device ID or --user ID"),
    };
    validate_reason(&args.reason)?;
    let opened = Home::open(home)?;
    if !opened.has(baro_node::store::HomeFile::OperatorKey) {
        bail!(
            "this home holds no operator key: run this on the operator's home, or use `baro device revoke` to revoke one of your own devices"
        );
    }
    let (chain, running) = target_chain(home, &target)?;
    let passphrase = passphrase::existing(home)?;
    let order = Order {
        reason: args.reason,
        wipe: args.wipe,
        now: unix_now(),
    };
    let revocation =
        revocations::sign_as_operator(home, &passphrase, chain, target.scope(), &order)?;
    let view = submit(home, &revocation, running)?;
    report(&view, running, json)
}

/// This user's devices: from the running node, or from the stopped node's store.
pub fn own_devices(home: &Path) -> Result<Vec<DeviceView>> {
    match api::request(home, &Request::Devices) {
        Ok(Response::Devices(devices)) => Ok(devices),
        Ok(_) => bail!("the node answered something else than a device list"),
        Err(ApiError::NotRunning(_)) => Ok(revocations::own_devices(home, unix_now())?),
        Err(e) => Err(e.into()),
    }
}

/// "휴대폰 (…GdapZ)", or the short id alone.
pub fn device_name(device: &DeviceView) -> String {
    match &device.label {
        Some(label) => format!("{} (…{})", printable(label), device.device.short()),
        None => format!("…{}", device.device.short()),
    }
}

/// The device `typed` names among this user's own: a full device id, its
/// label (as `device list` shows it), or at least 6 characters of the
/// start or end of its id (usability finding 26).
fn own_device(home: &Path, typed: &str) -> Result<DeviceId> {
    if let Ok(device) = typed.parse::<DeviceId>() {
        return Ok(device);
    }
    let devices = own_devices(home)?;
    let folded = baro_node::text::fold(typed);
    let by_label: Vec<&DeviceView> = devices
        .iter()
        .filter(|d| d.label.as_deref().map(baro_node::text::fold) == Some(folded.clone()))
        .collect();
    let by_id: Vec<&DeviceView> = devices
        .iter()
        .filter(|d| {
            let id = d.device.to_string();
            typed.chars().count() >= 6 && (id.starts_with(typed) || id.ends_with(typed))
        })
        .collect();
    let found = if by_label.is_empty() { by_id } else { by_label };
    let yours = || {
        devices
            .iter()
            .map(|d| {
                let mut name = device_name(d);
                if d.this_device {
                    name.push_str(", this device");
                }
                name
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    match found.as_slice() {
        [one] => Ok(one.device),
        [] => bail!(
            "no device of yours is labelled '{}' or has an id starting or ending with it; yours: {} (`baro device list`)",
            printable(typed),
            yours()
        ),
        _ => bail!(
            "'{}' names {} of your devices: {}; give its full id (`baro device list`)",
            printable(typed),
            found.len(),
            found
                .iter()
                .map(|d| d.device.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `baro device list`: this user's devices, this one first.
pub fn device_list(home: &Path, json: bool) -> Result<()> {
    let devices = own_devices(home)?;
    if json {
        return print_json(&serde_json::to_value(&devices)?);
    }
    let mut table = crate::table::Table::new(&["LABEL", "DEVICE", "STATE"]);
    for device in &devices {
        let state = match (&device.revoked, device.this_device, device.connected) {
            (Some(by), _, _) => format!(
                "revoked by {}{}",
                printable(by),
                device
                    .revoked_at
                    .map(|at| format!(" at {}", date(at)))
                    .unwrap_or_default()
            ),
            (None, true, _) => "this device".to_string(),
            (None, false, true) => "connected now".to_string(),
            (None, false, false) => match device.last_seen {
                Some(at) => format!("last seen {}", date(at)),
                None => "not met by this device yet".to_string(),
            },
        };
        table.row(vec![
            printable(device.label.as_deref().unwrap_or("-")).into_owned(),
            device.device.to_string(),
            state,
        ]);
    }
    println!("{table}");
    println!(
        "Revoke a lost one from here: `baro device revoke LABEL --reason ...` (its label or id)."
    );
    Ok(())
}

pub fn device_revoke(home: &Path, device: &str, reason: &str, json: bool) -> Result<()> {
    validate_reason(reason)?;
    let device: DeviceId = own_device(home, device)?;
    let request = Request::RevokeOwnDevice {
        device: device.to_string(),
        reason: reason.to_string(),
    };
    match api::request(home, &request) {
        Ok(Response::Revocation(view)) => return report(&view, true, json),
        Ok(_) => bail!("the node answered something else than the revocation"),
        Err(ApiError::NotRunning(_)) => {}
        Err(e) => return Err(e.into()),
    }
    // The node is not running: sign here and keep it for the next start.
    let opened = Home::open(home)?;
    let key = enrollment::load_device_key(&opened)?;
    let bundle = enrollment::load_bundle(&opened)?;
    if device == key.device_id() {
        bail!("a device cannot revoke itself: run this on another of your devices");
    }
    let chain = revocations::find_target(home, &Target::Device(device))?;
    let mine = bundle
        .body
        .chain
        .leaf()
        .map(|c| c.body.subject.user_id.clone());
    let theirs = chain.leaf().map(|c| c.body.subject.user_id.clone());
    if mine != theirs {
        return Err(anyhow!(
            "device {} belongs to {}, not to you: only an operator can revoke it",
            device,
            theirs.unwrap_or_default()
        ));
    }
    let order = Order {
        reason: reason.to_string(),
        wipe: true,
        now: unix_now(),
    };
    let (revocation, _) = revocations::sign(
        &bundle.body.agency,
        chain,
        Target::Device(device).scope(),
        &order,
        Issuer::Chain(bundle.body.chain.clone()),
        &key,
    )?;
    let view = submit(home, &revocation, false)?;
    report(&view, false, json)
}

fn report(view: &RevocationView, running: bool, json: bool) -> Result<()> {
    if json {
        return print_json(&serde_json::to_value(view)?);
    }
    let what = if view.scope == "user" {
        format!(
            "every device of {} ({})",
            printable(&view.user),
            printable(&view.display_name)
        )
    } else {
        format!(
            "device {}{} of {} ({})",
            view.device,
            view.label
                .as_deref()
                .map(|label| format!(" ({})", printable(label)))
                .unwrap_or_default(),
            printable(&view.user),
            printable(&view.display_name)
        )
    };
    println!("Revoked {what}: {}", printable(&view.reason));
    println!("  issued by:    {}", printable(&view.issued_by));
    if view.wipe {
        println!("  wipe:         the device erases its local data when the revocation reaches it");
    } else {
        println!("  wipe:         no (the device is shut out but keeps its data)");
    }
    if running && view.published {
        println!("  published:    now, to the mesh (peers reconcile revocations first)");
    } else if running {
        println!("  published:    as soon as this node has a peer");
    } else {
        println!("  published:    when `baro run` next starts on this home");
    }
    println!("  id:           {}", printable(&view.id));
    Ok(())
}

pub fn list(home: &Path, json: bool) -> Result<()> {
    let views = match api::request(home, &Request::Revocations) {
        Ok(Response::Revocations(views)) => views,
        Ok(_) => bail!("the node answered something else than revocations"),
        Err(ApiError::NotRunning(_)) => revocations::list(home, unix_now())?,
        Err(e) => return Err(e.into()),
    };
    if json {
        return print_json(&serde_json::to_value(&views)?);
    }
    if views.is_empty() {
        println!("no revocations");
        return Ok(());
    }
    println!("{} revocation(s):", views.len());
    for view in views {
        let what = if view.scope == "user" {
            format!("user {} (every device)", printable(&view.user))
        } else {
            format!(
                "device {}{} of {} ({})",
                view.device.short(),
                view.label
                    .as_deref()
                    .map(|label| format!(" ({})", printable(label)))
                    .unwrap_or_default(),
                printable(&view.display_name),
                printable(&view.user)
            )
        };
        println!(
            "  {what}, by {} at {}: {}",
            printable(&view.issued_by),
            date(view.issued_at),
            printable(&view.reason)
        );
        println!(
            "    wipe: {}   published: {}",
            if view.wipe { "ordered" } else { "no" },
            if view.published { "yes" } else { "not yet" },
        );
        println!("    {}", coverage(&view));
        match &view.device_last_seen {
            Some(at) => println!("    device last seen by this node: {}", date(*at)),
            None => println!("    device last seen by this node: not since the revocation"),
        }
        match view.wiped.first() {
            Some(wiped) => println!(
                "    acknowledged by the device at {}: device {} signed a wipe receipt (proof its key got the order, not that its data was erased)",
                date(wiped.wiped_at),
                wiped.device.short(),
            ),
            None if view.wipe => println!("    not acknowledged by the device yet"),
            None => {}
        }
        println!("    id {}", printable(&view.id));
    }
    Ok(())
}

/// "held by 3 known peers: relays relay.sejong (12D3…); devices kim (12D3…), …".
fn coverage(view: &RevocationView) -> String {
    if view.held_by.is_empty() {
        return "held by no peer known to this node yet".into();
    }
    // "이준호 (lee.junho, 4VJdGapZ)": who, then which device.
    let name = |h: &HolderView| match (&h.name, &h.user) {
        (Some(name), Some(user)) => format!(
            "{} ({}, {})",
            printable(name),
            printable(user),
            h.device.short()
        ),
        _ => format!(
            "{} ({})",
            printable(h.user.as_deref().unwrap_or("unknown device")),
            h.device.short()
        ),
    };
    let relays: Vec<String> = view
        .held_by
        .iter()
        .filter(|h| h.role.as_deref() == Some("relay"))
        .map(name)
        .collect();
    let devices: Vec<String> = view
        .held_by
        .iter()
        .filter(|h| h.role.as_deref() != Some("relay"))
        .map(name)
        .collect();
    let mut parts = Vec::new();
    if !relays.is_empty() {
        parts.push(format!("relays {}", relays.join(", ")));
    }
    if !devices.is_empty() {
        parts.push(format!("devices {}", devices.join(", ")));
    }
    format!(
        "held by {} peer(s) known to this node: {}",
        view.held_by.len(),
        parts.join("; ")
    )
}
