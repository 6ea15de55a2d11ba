//! Enrollment request and bundle files, as `baro agency enroll` and
//! `baro device install` read them: decode, then verify (the request's
//! proof of possession; the bundle's chain, signature and fields).
#![no_main]

use baro_fuzz::{NOW, decode_canonical};
use baro_node::trust::{EnrollmentBundle, EnrollmentRequest, TrustPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(request) = decode_canonical::<EnrollmentRequest>(data) {
        let _ = request.verify();
    }
    if let Some(bundle) = decode_canonical::<EnrollmentBundle>(data) {
        // As for the device the bundle names (the deepest path), and as for
        // another device (the key mismatch).
        if let Some(leaf) = bundle.body.chain.leaf() {
            let device = leaf.body.key.device_id();
            let _ = bundle.verify_for(device, NOW, &TrustPolicy::default());
        }
        let other = baro_fuzz::fixture().lee.key.device_id();
        let _ = bundle.verify_for(other, NOW, &TrustPolicy::default());
    }
});
