//! `baro agency init`, `enroll`, `show`, `export-root` and `import-root`:
//! the operator's side.

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
    baro_node::trust::check_bootstrap(&args.bootstrap)?;
    if let Some(label) = &args.label {
        baro_node::trust::device_label(label)?;
    }
    let passphrase = passphrase::new()?;
    let device = enrollment::init_agency(
        home,
        AgencyInit {
            name: args.name.clone(),
            operator,
            kdf: KdfParams::default(),
            bootstrap: args.bootstrap,
            label: args.label,
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
    println!(
        "  keep the root key offline: `baro agency export-root FILE` moves it off this console"
    );
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
    let passphrase = passphrase::existing(home)?;
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

/// Moves the root key into `file`: written and read back first, removed
/// from the home only once the file holds it.
pub fn export_root(home: &Path, file: &Path, json: bool) -> Result<()> {
    let passphrase = passphrase::existing(home)?;
    let sealed = enrollment::export_root_key(home, &passphrase)?;
    write_new(file, &sealed, "root key file")?;
    let written = read_input(file, "the root key file")?;
    enrollment::forget_root_key(home, &written, &passphrase)?;
    if json {
        return print_json(&json!({
            "exported": file.display().to_string(),
            "root_key_on_console": false,
        }));
    }
    println!(
        "The agency root key is now only in {} (sealed with your passphrase).",
        file.display()
    );
    println!("Store it offline (e.g. on a removable disk in a safe) and delete other copies.");
    println!("This console still enrolls and revokes devices with the operator key;");
    println!(
        "to revoke an operator, bring the root key back: `baro agency import-root {}`.",
        file.display()
    );
    Ok(())
}

pub fn import_root(home: &Path, file: &Path, json: bool) -> Result<()> {
    let bytes = read_input(file, "the root key file")?;
    let passphrase = passphrase::existing(home)?;
    let agency = enrollment::import_root_key(home, &bytes, &passphrase)?;
    if json {
        return print_json(&json!({
            "imported": file.display().to_string(),
            "agency": { "name": agency.name, "id": full_id(&agency.id()) },
            "root_key_on_console": true,
        }));
    }
    println!(
        "The root key of \"{}\" is back on this console.",
        printable(&agency.name)
    );
    println!(
        "Move it off again when done: `baro agency export-root FILE` (then remove {}).",
        file.display()
    );
    Ok(())
}

pub fn show(home: &Path, json: bool) -> Result<()> {
    let status = enrollment::agency_status(home)?;
    let id = status.agency.id();
    let operator_key = status.operator.as_ref().map(|op| op.key.device_id());
    if json {
        return print_json(&json!({
            "agency": { "name": status.agency.name, "id": full_id(&id) },
            "root_fingerprint": id.fingerprint(),
            "root_key_on_console": status.root_key_here,
            "operator": status.operator.as_ref().map(|op| json!({
                "user_id": op.subject.user_id,
                "key": op.key.device_id().to_string(),
                "not_after": op.not_after,
            })),
        }));
    }
    println!("Agency \"{}\" ({id})", printable(&status.agency.name));
    println!("  root fingerprint:  {}", id.fingerprint());
    println!("    (read it to each new device's owner, who installs with --expect-root)");
    if let (Some(op), Some(key)) = (&status.operator, operator_key) {
        println!(
            "  operator:          {} (key {key}), certified until {}",
            printable(&op.subject.user_id),
            crate::local_time::date(op.not_after)
        );
        if status.root_key_here {
            println!(
                "  root key:          on this console (move it offline: `baro agency export-root FILE`)"
            );
        } else {
            println!(
                "  root key:          offline (bring it back with `baro agency import-root FILE`)"
            );
        }
    }
    Ok(())
}
