//! `baro device init`, `baro device install` and `baro whoami`: the device's side.

use std::path::Path;

use anyhow::Result;
use baro_node::clock::unix_now;
use baro_node::enrollment;
use baro_node::wire;
use serde_json::json;

use super::files::{read_input, write_new};
use super::print_json;
use crate::args;
use crate::output::{device_json, device_lines, status_json, status_text};
use crate::sanitize::printable;

pub fn init(home: &Path, args: args::DeviceInit, json: bool) -> Result<()> {
    let request = enrollment::init_device(home, &args.name, args.label.as_deref(), unix_now())?;
    write_new(&args.out, &wire::encode(&request), "enrollment request")?;
    let device = request.body.device_key.device_id();
    if json {
        return print_json(&json!({
            "device_id": device.to_string(),
            "display_name": request.body.display_name,
            "label": args.label,
            "request": args.out.display().to_string(),
            "home": home.display().to_string(),
        }));
    }
    println!("Device key created in {}", home.display());
    println!("  device id:    {device}");
    println!("  name:         {}", printable(&request.body.display_name));
    if let Some(label) = &args.label {
        println!("  label:        {}", printable(label.trim()));
    }
    println!("Enrollment request written to {}.", args.out.display());
    println!(
        "Give it to an operator; install the bundle you get back with `baro device install BUNDLE`."
    );
    Ok(())
}

pub fn install(home: &Path, args: args::DeviceInstall, json: bool) -> Result<()> {
    let bytes = read_input(&args.bundle, "the bundle")?;
    // Name the file in format errors; trust errors speak for themselves.
    wire::decode::<baro_node::EnrollmentBundle>(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a valid enrollment bundle: {e}",
            args.bundle.display()
        )
    })?;
    let first = enrollment::status(home, unix_now())
        .map(|status| status.enrollment.is_none())
        .unwrap_or(true);
    let device =
        enrollment::install_expecting(home, &bytes, unix_now(), args.expect_root.as_deref())?;
    let fingerprint = device.agency.fingerprint();
    if json {
        return print_json(&json!({
            "installed": true,
            "first": first,
            "root_fingerprint": fingerprint,
            "root_checked": args.expect_root.is_some(),
            "device": device_json(&device),
        }));
    }
    println!("Bundle verified and installed. This device is now:");
    println!("{}", device_lines(&device));
    println!("  agency root fingerprint: {fingerprint}");
    if args.expect_root.is_some() {
        println!("  (it matches the fingerprint you expected)");
    } else if first {
        println!("Compare this fingerprint with the one your operator gives you in person or by");
        println!("phone (`baro agency show` on the console). If they differ, the bundle is from");
        println!("another agency: do not use this device and tell your operator. With");
        println!("--expect-root FINGERPRINT the bundle is checked before it is installed.");
    }
    Ok(())
}

pub fn whoami(home: &Path, json: bool) -> Result<()> {
    let status = enrollment::status(home, unix_now())?;
    if json {
        return print_json(&status_json(&status));
    }
    println!("{}", status_text(&status));
    Ok(())
}
