//! Sync requests and responses as they arrive on a `/baro/sync/1.0.0`
//! stream (`SyncCodec`: length prefix, size cap, wire decode), then handled
//! the way the node handles them: a reconciliation message answered or
//! stepped, a fetch's ids checked, each fetched item decoded and verified
//! as an envelope, a control frame (with its payload) or a revocation.
//!
//! The first input byte picks request (even) or response (odd); the rest is
//! the stream.
#![no_main]

use baro_fuzz::{NOW, fixture};
use baro_node::net::sync_protocol::{SYNC_PROTOCOL, SyncCodec};
use baro_node::rooms::ControlMessage;
use baro_node::store::{control_item, envelope_sync_item};
use baro_node::sync::{MAX_FETCH_IDS, Reconciler, SyncRequest, SyncResponse, respond};
use baro_node::trust::{Revocation, RevocationSet, SignedFrame, TrustPolicy};
use baro_node::wire::{self, Envelope};
use futures::executor::block_on;
use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;
use libp2p::request_response::Codec;

fn take_item(bytes: &[u8]) {
    let f = fixture();
    let agency = &f.kim.agency;
    if let Ok(envelope) = wire::decode::<Envelope>(bytes) {
        let _ = envelope_sync_item(&envelope);
        let _ = envelope.verify_signature();
    }
    if let Ok(frame) = wire::decode::<SignedFrame>(bytes) {
        let _ = control_item(bytes);
        let _ = frame.verify(&f.control_topic, agency, NOW, &TrustPolicy::default());
        if let Ok(ControlMessage::Grant(grant)) =
            wire::decode::<ControlMessage>(&frame.body.payload)
        {
            let _ = grant.verify_signature();
        }
    }
    if let Ok(revocation) = wire::decode::<Revocation>(bytes) {
        let _ = RevocationSet::new().check(&revocation, agency, NOW);
    }
}

fuzz_target!(init: baro_fuzz::tolerate_negentropy_panics(), |data: &[u8]| {
    let Some((&which, stream)) = data.split_first() else {
        return;
    };
    let items = &fixture().items;
    let mut codec = SyncCodec::default();
    let mut io = Cursor::new(stream);
    if which & 1 == 0 {
        match block_on(codec.read_request(&SYNC_PROTOCOL, &mut io)) {
            Ok(SyncRequest::Reconcile { message, .. }) => {
                let _ = respond(items.iter().copied(), &message);
            }
            Ok(SyncRequest::Fetch { ids, .. }) => {
                if ids.len() <= MAX_FETCH_IDS {
                    let _ = ids.iter().filter(|id| items.iter().any(|(_, i)| i == *id)).count();
                }
            }
            Ok(SyncRequest::Hint { scope }) => {
                let _ = scope.to_string();
            }
            Err(_) => {}
        }
    } else {
        match block_on(codec.read_response(&SYNC_PROTOCOL, &mut io)) {
            Ok(SyncResponse::Reconcile(reply)) => {
                let (mut reconciler, _) =
                    Reconciler::initiate(items.iter().copied()).expect("initiate on a valid set");
                let _ = reconciler.step(&reply);
            }
            Ok(SyncResponse::Items(items)) => items.iter().for_each(|item| take_item(item)),
            Ok(SyncResponse::Refused(reason)) => {
                let _ = reason.len();
            }
            Ok(SyncResponse::Noted) => {}
            Err(_) => {}
        }
    }
});
