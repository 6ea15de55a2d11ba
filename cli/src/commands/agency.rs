//! `baro agency init` and `baro agency enroll`: the operator's side.

use std::path::Path;

use anyhow::{Context, Result};
use baro_node::clock::unix_now;
use baro_node::crypto::KdfParams;
use baro_node::enrollment::{self, AgencyInit};
use baro_node::trust::{Enrollment, Role, Subject};
use baro_node::wire;
use serde_json::json;

use super::files::{read_input, write_new};
use super::print_json;
use crate::args;
use crate::output::{device_json, device_lines, full_id};
use crate::passphrase;
use crate::sanitize::printable;

pub fn init(home: &Path, args: args::AgencyInit, json: bool) -> Result<()> {
    let operator = Subject {
        user_id: args.user,
        display_name: args.display_name,
        org_unit: args.org.parse()?,
    };
    operator.validate()?;
    let passphrase = passphrase::new()?;
    let device = enrollment::init_agency(
        home,
        AgencyInit {
            name: args.name.clone(),
            operator,
            kdf: KdfParams::default(),
        },
        &passphrase,
        unix_now(),
    )?;
    if json {
        return print_json(&json!({
            "agency": { "name": args.name, "id": full_id(&device.agency) },
            "home": home.display().to_string(),
            "device": device_json(&device),
        }));
    }
    println!(
        "Created agency \"{}\" ({})",
        printable(&args.name),
        device.agency
    );
    println!("  home:         {}", home.display());
    println!("  root key and operator key sealed with your passphrase (argon2id)");
    println!("This home is the operator's own device:");
    println!("{}", device_lines(&device));
    println!("Next: on each new device run `baro device init --name NAME --out REQUEST`,");
    println!("then here `baro agency enroll REQUEST --user ID --org PATH --out BUNDLE`.");
    Ok(())
}

pub fn enroll(home: &Path, args: args::AgencyEnroll, json: bool) -> Result<()> {
    let role: Role = args.role.parse().map_err(anyhow::Error::msg)?;
    if role == Role::Operator {
        anyhow::bail!(
            "--role operator is refused: a device never gets operator authority (only the agency root certifies operators, and enrolling and revoking take the operator key and its passphrase); enroll this device as member"
        );
    }
    let request_bytes = read_input(&args.request, "the enrollment request")?;
    let request: baro_node::trust::EnrollmentRequest =
        wire::decode(&request_bytes).with_context(|| {
            format!(
                "{} is not a valid enrollment request",
                args.request.display()
            )
        })?;
    let subject = Subject {
        user_id: args.user,
        display_name: args.display_name.unwrap_or(request.body.display_name),
        org_unit: args.org.parse()?,
    };
    subject.validate()?;
    let passphrase = passphrase::existing()?;
    let bundle = enrollment::enroll(
        home,
        &passphrase,
        &request_bytes,
        Enrollment {
            subject,
            role,
            days: args.days,
            bootstrap: args.bootstrap,
        },
        unix_now(),
    )?;
    write_new(&args.out, &wire::encode(&bundle), "bundle")?;
    let device = bundle
        .body
        .chain
        .verify(&bundle.body.agency, unix_now(), &Default::default())?;
    if json {
        return print_json(&json!({
            "bundle": args.out.display().to_string(),
            "device": device_json(&device),
        }));
    }
    println!(
        "Enrolled a {} device into \"{}\":",
        device.role,
        printable(&bundle.body.agency.name)
    );
    println!("{}", device_lines(&device));
    println!(
        "Bundle written to {} (it holds the agency network key: hand it over privately).",
        args.out.display()
    );
    println!(
        "On the device: `baro device install {}`",
        args.out.display()
    );
    Ok(())
}
