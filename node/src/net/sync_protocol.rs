//! The request-response protocols on the wire: sync (`/baro/sync/1.0.0`)
//! and the relays' agency directory (`/baro/directory/1.0.0`), each request
//! and response one length-prefixed frame in the wire codec, its size
//! checked before a byte of it is read.

use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::{self, ProtocolSupport};

use crate::sync::{SyncRequest, SyncResponse};
use crate::trust::{DirectoryAnswer, DirectoryQuery};
use crate::wire::{self, Format};

/// The sync protocol's name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/baro/sync/1.0.0");
/// The directory protocol's name (answered by relays only).
pub const DIRECTORY_PROTOCOL: StreamProtocol = StreamProtocol::new("/baro/directory/1.0.0");

/// Reads and writes one request frame of type `Q` and one response frame of type `A`.
#[derive(Debug)]
pub struct FrameCodec<Q, A>(PhantomData<fn() -> (Q, A)>);

impl<Q, A> Default for FrameCodec<Q, A> {
    fn default() -> Self {
        FrameCodec(PhantomData)
    }
}

impl<Q, A> Clone for FrameCodec<Q, A> {
    fn clone(&self) -> Self {
        FrameCodec(PhantomData)
    }
}

/// Reads and writes sync frames.
pub type SyncCodec = FrameCodec<SyncRequest, SyncResponse>;
/// Reads and writes directory frames.
pub type DirectoryCodec = FrameCodec<DirectoryQuery, DirectoryAnswer>;

async fn read_frame<T: Format, R: AsyncRead + Unpin + Send>(io: &mut R) -> io::Result<T> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > T::MAX_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} frame of {len} bytes is over the {}-byte limit",
                T::KIND,
                T::MAX_LEN
            ),
        ));
    }
    let mut bytes = vec![0u8; len];
    io.read_exact(&mut bytes).await?;
    wire::decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

async fn write_frame<T: Format, W: AsyncWrite + Unpin + Send>(
    io: &mut W,
    value: &T,
) -> io::Result<()> {
    let bytes = wire::encode(value);
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl<Q, A> request_response::Codec for FrameCodec<Q, A>
where
    Q: Format + Send + Sync + 'static,
    A: Format + Send + Sync + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Q;
    type Response = A;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Q> {
        read_frame(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<A> {
        read_frame(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Q,
    ) -> io::Result<()> {
        write_frame(io, &request).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: A,
    ) -> io::Result<()> {
        write_frame(io, &response).await
    }
}

/// The sync behaviour: one request at a time per peer and set, a bounded
/// number of concurrent streams, and a timeout.
pub fn behaviour() -> request_response::Behaviour<SyncCodec> {
    request_response::Behaviour::with_codec(
        SyncCodec::default(),
        [(SYNC_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(30))
            .with_max_concurrent_streams(32),
    )
}

/// The directory behaviour: relays answer, devices only ask; a few
/// streams at a time and a short timeout (an answer is one lookup).
pub fn directory_behaviour(answers: bool) -> request_response::Behaviour<DirectoryCodec> {
    let support = if answers {
        ProtocolSupport::Full
    } else {
        ProtocolSupport::Outbound
    };
    request_response::Behaviour::with_codec(
        DirectoryCodec::default(),
        [(DIRECTORY_PROTOCOL, support)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(10))
            .with_max_concurrent_streams(8),
    )
}

/// Bytes a frame takes on the stream (length prefix included).
pub fn frame_len<T: Format>(value: &T) -> usize {
    4 + wire::encode(value).len()
}
