//! The transport stack: TCP (or in-memory) + pnet + noise + admission + yamux,
//! behind the inbound guard (see [`super::inbound`]), which decides about
//! every incoming connection before any of those cost anything.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{Boxed, MemoryTransport, OrTransport};
use libp2p::core::upgrade::Version;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::{PeerId, Transport, identity, noise, relay, tcp};

use super::admission::{AdmissionGate, AdmissionUpgrade};
use super::inbound::{Guarded, InboundGuard, PnetFailed};
use crate::trust::NetworkKey;

/// Which byte transport carries connections.
#[derive(Clone, Debug)]
pub enum TransportKind {
    /// TCP: real use.
    Tcp,
    /// In-process channels (`/memory/N` addresses): tests and simulations.
    Memory,
    /// In-process channels shaped by a link model (latency, jitter, loss,
    /// bandwidth, partitions): simulations.
    Shaped(Arc<dyn super::shaping::LinkModel>),
}

/// Builds the full stack; relayed circuits (`.../p2p-circuit/...`) get the
/// same pnet, noise and admission as direct connections. `network_key` is
/// `None` only to model a stranger without the agency network key (tests).
/// Incoming connections pass `inbound` first.
pub fn build(
    keypair: &identity::Keypair,
    network_key: Option<&NetworkKey>,
    gate: Arc<AdmissionGate>,
    kind: TransportKind,
    timeout: Duration,
    relayed: relay::client::Transport,
    inbound: Arc<InboundGuard>,
) -> io::Result<Boxed<(PeerId, StreamMuxerBox)>> {
    let noise = noise::Config::new(keypair).map_err(io::Error::other)?;
    let psk = network_key.map(|key| PreSharedKey::new(key.0));
    let admission = move |peer: &PeerId, _: &libp2p::core::ConnectedPoint| {
        AdmissionUpgrade::new(gate.clone(), *peer)
    };
    macro_rules! stack {
        ($base:expr) => {{
            let base = $base.and_then(move |socket, _| {
                let pnet = psk.map(PnetConfig::new);
                async move {
                    match pnet {
                        Some(pnet) => pnet
                            .handshake(socket)
                            .await
                            .map(futures::future::Either::Left)
                            .map_err(|e| {
                                PnetFailed(match e {
                                    libp2p::pnet::PnetError::HandshakeError(io)
                                    | libp2p::pnet::PnetError::IoError(io) => io,
                                })
                            }),
                        None => Ok(futures::future::Either::Right(socket)),
                    }
                }
            });
            let stack = base
                .upgrade(Version::V1)
                .authenticate(noise)
                .multiplex_ext(admission)
                .timeout(timeout)
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
                .boxed();
            Guarded::new(stack, inbound).boxed()
        }};
    }
    Ok(match kind {
        TransportKind::Tcp => stack!(OrTransport::new(
            relayed,
            tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
        )),
        TransportKind::Memory => stack!(OrTransport::new(relayed, MemoryTransport::default())),
        TransportKind::Shaped(model) => stack!(OrTransport::new(
            relayed,
            MemoryTransport::default().and_then(move |stream, endpoint| {
                let model = model.clone();
                async move { super::shaping::on_connect(stream, &endpoint, model) }
            })
        )),
    })
}
