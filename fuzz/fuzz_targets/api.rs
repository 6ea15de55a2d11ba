//! Control API lines: what the node's control socket reads (one line of
//! at most `MAX_LINE` bytes, JSON) and what the client reads back, then the
//! fields a request carries that are parsed further (a revocation in hex, a
//! device id).
#![no_main]

use baro_fuzz::{NOW, fixture};
use baro_node::DeviceId;
use baro_node::api::{MAX_LINE, Request, Response};
use baro_node::trust::{Revocation, RevocationSet};
use baro_node::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The server reads one line (up to and with its newline) of valid UTF-8.
    let data = &data[..data.len().min(MAX_LINE)];
    let line = match data.iter().position(|&b| b == b'\n') {
        Some(end) => &data[..=end],
        None => data,
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    if let Ok(request) = serde_json::from_str::<Request>(line) {
        let again = serde_json::to_string(&request).expect("a request serialises");
        assert_eq!(
            serde_json::from_str::<Request>(&again).expect("its own JSON parses"),
            request,
            "request changed over a JSON round trip"
        );
        match request {
            Request::Revoke { revocation } => {
                if let Ok(bytes) = hex::decode(revocation.trim())
                    && let Ok(revocation) = wire::decode::<Revocation>(&bytes)
                {
                    let _ = RevocationSet::new().check(&revocation, &fixture().kim.agency, NOW);
                }
            }
            Request::RevokeOwnDevice { device, .. } => {
                let _ = device.parse::<DeviceId>();
            }
            Request::DeviceChain {
                device: Some(device),
                ..
            } => {
                let _ = device.parse::<DeviceId>();
            }
            _ => {}
        }
    }
    // The client's side: a node's answer.
    if let Ok(response) = serde_json::from_str::<Response>(line) {
        let _ = serde_json::to_string(&response).expect("a response serialises");
    }
});
