//! Human and JSON renderings shared by the commands.

use baro_node::enrollment::{DeviceStatus, InstalledEnrollment};
use baro_node::trust::{AgencyId, VerifiedDevice};
use serde_json::{Value, json};

use crate::sanitize::printable;

pub use crate::local_time::date;

/// JSON for a verified certificate.
pub fn device_json(device: &VerifiedDevice) -> Value {
    json!({
        "device_id": device.device.to_string(),
        "user_id": device.subject.user_id,
        "display_name": device.subject.display_name,
        "org_unit": device.subject.org_unit.as_str(),
        "role": device.role.to_string(),
        "serial": device.serial,
        "not_before": device.not_before,
        "not_after": device.not_after,
        "issued_by": device.issued_by,
    })
}

/// Human lines for a verified certificate (its names come from other
/// people: the device's owner and the operator).
pub fn device_lines(device: &VerifiedDevice) -> String {
    format!(
        "  device id:    {}\n  user:         {} ({})\n  org unit:     {}\n  role:         {}\n  valid:        {} → {}\n  issued by:    {}",
        device.device,
        printable(&device.subject.display_name),
        printable(&device.subject.user_id),
        printable(device.subject.org_unit.as_str()),
        device.role,
        date(device.not_before),
        date(device.not_after),
        printable(&device.issued_by),
    )
}

/// JSON for `baro whoami`.
pub fn status_json(status: &DeviceStatus) -> Value {
    match &status.enrollment {
        None => json!({ "device_id": status.device.to_string(), "enrolled": false }),
        Some(enrolled) => {
            let mut value = device_json(&enrolled.details);
            value["enrolled"] = json!(true);
            value["agency"] = json!({
                "name": enrolled.agency.name,
                "id": full_id(&enrolled.agency.id()),
            });
            value["valid_now"] = json!(enrolled.validity.is_ok());
            if let Err(why) = &enrolled.validity {
                value["invalid_reason"] = json!(why.to_string());
            }
            value["bootstrap"] = json!(enrolled.bootstrap);
            value["operator_console"] = json!(enrolled.is_operator_console);
            value
        }
    }
}

fn hex_id(enrolled: &InstalledEnrollment) -> String {
    enrolled.agency.id().to_string()
}

/// The full agency id, for scripts.
pub fn full_id(id: &AgencyId) -> String {
    hex::encode(id.0)
}

/// Human text for `baro whoami`.
pub fn status_text(status: &DeviceStatus) -> String {
    match &status.enrollment {
        None => format!(
            "  device id:    {}\n  not enrolled yet: send your request file to an operator, then run `baro device install BUNDLE`",
            status.device
        ),
        Some(enrolled) => {
            let validity = match &enrolled.validity {
                Ok(()) => "valid".to_string(),
                Err(why) => format!("NOT VALID: {}", printable(&why.to_string())),
            };
            let mut text = format!(
                "{}\n  agency:       {} ({})\n  status:       {validity}",
                device_lines(&enrolled.details),
                printable(&enrolled.agency.name),
                hex_id(enrolled),
            );
            if !enrolled.bootstrap.is_empty() {
                text.push_str(&format!(
                    "\n  bootstrap:    {}",
                    printable(&enrolled.bootstrap.join(", "))
                ));
            }
            if enrolled.is_operator_console {
                text.push_str("\n  console:      this home holds the operator keys");
            }
            text
        }
    }
}
