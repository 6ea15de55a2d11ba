//! Admission frames: the whole admission exchange of a new connection
//! (`AdmissionUpgrade`, between noise and yamux) with the remote's side of
//! the stream taken from the input, as listener or as dialer.
//!
//! The first input byte picks the setting (bit 0: we dial; bit 1: the gate
//! enforces a revocation of the remote; bit 2: the gate can answer a
//! revocation of itself with a wipe receipt); the rest is every byte the
//! remote sends (length-prefixed frames: its hello, its verdict, a
//! revocation, a wipe receipt). The remote is Kim, a certified device.
//! The gate's nonce is fresh each run, so the remote's network proof (the
//! first step) never checks: this target covers the framing and the proof
//! check of every first frame; the later steps are covered by the unit
//! tests in `net::admission`.
#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use baro_fuzz::{NOW, fixture};
use baro_node::clock::ManualClock;
use baro_node::net::admission::{AdmissionGate, AdmissionUpgrade, PROTOCOL, ReceiptSigner};
use baro_node::net::membership_proof::MembershipKey;
use baro_node::trust::{AdmissionHello, empty_revocation_digest};
use futures::{AsyncRead, AsyncWrite};
use libfuzzer_sys::fuzz_target;
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};

/// The remote's side of a connection: reads return the script, then end;
/// writes are accepted and dropped.
struct Script {
    bytes: Vec<u8>,
    at: usize,
}

impl AsyncRead for Script {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Script {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&setting, stream)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let lee = &f.lee;
    let own_hello = AdmissionHello {
        agency: lee.agency.id(),
        chain: lee.chain.clone(),
        revocation_digest: empty_revocation_digest(),
    };
    // Reports of refusals are dropped: the receiver is gone.
    let (refusals, _) = tokio::sync::mpsc::channel(8);
    let mut gate = AdmissionGate::new(
        lee.agency.clone(),
        &own_hello,
        lee.key.device_id().peer_id().expect("lee's peer id"),
        MembershipKey::derive(&f.agency.agency.network_key),
        Arc::new(ManualClock::new(NOW)),
        Duration::from_secs(10),
        300,
        refusals,
    );
    if setting & 4 != 0 {
        gate = gate.with_receipts(ReceiptSigner {
            key: lee.key.clone(),
            chain: lee.chain.clone(),
            me: f.lee_verified.clone(),
        });
    }
    if setting & 2 != 0 {
        gate.enforce(f.verified_revocation.clone(), f.revocation.clone())
            .expect("a verified revocation is enforced");
    }
    let remote = f.kim.key.device_id().peer_id().expect("kim's peer id");
    let upgrade = AdmissionUpgrade::new(Arc::new(gate), remote);
    let socket = Script {
        bytes: stream.to_vec(),
        at: 0,
    };
    let result = runtime().block_on(async {
        if setting & 1 != 0 {
            upgrade.upgrade_outbound(socket, PROTOCOL).await.map(drop)
        } else {
            upgrade.upgrade_inbound(socket, PROTOCOL).await.map(drop)
        }
    });
    let _ = result;
});
