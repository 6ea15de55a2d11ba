//! `baro agency policy set`: the operator signs the agency policy (lease,
//! wrong-PIN limit, largest file) that every device obeys.
//!
//! While this home's node runs, the policy goes to it over the control API
//! and is published at once; otherwise it is kept in the home and published
//! when `baro run` starts. Devices fetch it when they meet any peer that
//! holds it (it is reconciled with the revocations, first).

use std::path::Path;

use anyhow::{Result, bail};
use baro_node::agency_policy::{self, NewPolicy, PolicyView};
use baro_node::api::{self, ApiError, Request, Response};
use baro_node::clock::unix_now;
use baro_node::store::{Home, HomeFile};
use baro_node::trust::{KnownExtensions, PolicySettings};
use baro_node::wire;
use serde_json::json;

use super::print_json;
use crate::args::PolicySet;
use crate::passphrase;
use crate::sanitize::printable;

pub fn set(home: &Path, args: PolicySet, json: bool) -> Result<()> {
    let settings = PolicySettings {
        lease_days: args.lease_days,
        lease_warning_days: if args.lease_days == 0 {
            0
        } else {
            args.warn_days
        },
        max_pin_attempts: args.max_pin_attempts,
    };
    settings.validate()?;
    let extensions = KnownExtensions {
        max_file_mb: args.max_file_mb,
    };
    extensions.encode()?;
    if !Home::open(home)?.has(HomeFile::OperatorKey) {
        bail!("this home holds no operator key: run this on the operator's home");
    }
    // The version this home holds: from the running node, or its store.
    let (held, running) = match api::request(home, &Request::Status) {
        Ok(Response::Status(status)) => (status.policy.version, true),
        Ok(_) => bail!("the node answered something else than its status"),
        Err(ApiError::NotRunning(_)) => (agency_policy::held_version(home)?, false),
        Err(e) => return Err(e.into()),
    };
    let passphrase = passphrase::existing(home)?;
    let now = unix_now();
    let (policy, verified) = agency_policy::sign(
        home,
        &passphrase,
        NewPolicy {
            settings,
            extensions,
            version: args.policy_version,
            now,
        },
        held,
    )?;
    let view: Option<PolicyView> = if running {
        let request = Request::SetPolicy {
            policy: hex::encode(wire::encode(&policy)),
        };
        match api::request(home, &request)? {
            Response::Policy(view) => Some(view),
            Response::Error(e) => bail!("{e}"),
            _ => bail!("the node answered something else than the policy"),
        }
    } else {
        agency_policy::keep_for_next_start(home, &policy, now)?;
        None
    };
    if json {
        return print_json(&json!({
            "version": verified.version,
            "lease_days": settings.lease_days,
            "lease_warning_days": settings.lease_warning_days,
            "max_pin_attempts": settings.max_pin_attempts,
            "max_file_mb": args.max_file_mb,
            "published": running,
            "in_force": view,
        }));
    }
    println!(
        "Agency policy version {}: {}",
        verified.version,
        printable(&format!("{}{}", settings.describe(), extensions.describe()))
    );
    if settings.lease_days > 0 {
        println!(
            "  lease:        a device that meets no peer of the agency for {} days erases itself \
             (warning {} days ahead; relays hold no lease)",
            settings.lease_days, settings.lease_warning_days
        );
    }
    if let Some(mb) = args.max_file_mb {
        println!(
            "  files:        devices send and fetch files of at most {mb} MiB \
             (or their own limit, if lower)"
        );
    }
    if running {
        println!("  published:    now, to the mesh (devices take it when they next meet a peer)");
    } else {
        println!("  published:    when `baro run` next starts on this home");
    }
    Ok(())
}
