//! The control socket server, run beside the node by `baro run`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{MAX_LINE, Request, Response};
use crate::node::{Handle, NodeEvent};

/// Clients served at once; more wait for a slot.
const MAX_CLIENTS: usize = 16;

/// A bound control socket, ready to serve.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

/// Binds the control socket at `path`, owner-only. Fails if another node
/// answers there; a socket file left by a killed node is replaced.
pub async fn bind(path: PathBuf) -> std::io::Result<ControlSocket> {
    if path.exists() {
        if UnixStream::connect(&path).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "a node is already running on this home ({} answers)",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(ControlSocket { listener, path })
}

impl ControlSocket {
    /// Serves requests until `shutdown`; the socket file is removed on the way out.
    pub async fn serve(self, handle: Handle, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                accepted = self.listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let Ok(permit) = slots.clone().acquire_owned().await else { break };
                    let handle = handle.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &handle, shutdown).await {
                            tracing::debug!(error = %e, "control client failed");
                        }
                        drop(permit);
                    });
                }
            }
        }
        remove(&self.path);
    }
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

async fn answer(
    stream: UnixStream,
    handle: &Handle,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    BufReader::new(reader.take(MAX_LINE as u64))
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Err(e) => Response::Error(format!("bad request: {e}")),
        Ok(Request::Watch { room }) => return watch(writer, handle, room, shutdown).await,
        Ok(request) => dispatch(request, handle).await,
    };
    let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    out.push(b'\n');
    writer.write_all(&out).await?;
    writer.shutdown().await
}

async fn write_line(
    writer: &mut tokio::net::unix::OwnedWriteHalf,
    response: &Response,
) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    out.push(b'\n');
    writer.write_all(&out).await
}

/// Streams messages (of one room, or all) until the client or the node goes.
async fn watch(
    mut writer: tokio::net::unix::OwnedWriteHalf,
    handle: &Handle,
    room: Option<String>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut events = handle.events();
    // Resolve what the user typed to a room id once.
    let room_id = match &room {
        Some(room) => match handle.find_room(room).await {
            Ok(found) => Some(found.id),
            Err(e) => return write_line(&mut writer, &Response::Error(e.to_string())).await,
        },
        None => None,
    };
    write_line(&mut writer, &Response::Done).await?;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            event = events.recv() => match event {
                Ok(NodeEvent::Message(message)) => {
                    if room_id.as_ref().is_none_or(|id| *id == message.room) {
                        write_line(&mut writer, &Response::Message(message)).await?;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}

async fn dispatch(request: Request, handle: &Handle) -> Response {
    let done = |r: Result<(), crate::node::NodeError>| r.map(|()| Response::Done);
    let result = match request {
        Request::Status => handle.status().await.map(Response::Status),
        Request::Peers => handle.peers().await.map(Response::Peers),
        Request::Blocked => handle.blocked().await.map(Response::Blocked),
        Request::Rooms => handle.rooms().await.map(Response::Rooms),
        Request::CreateRoom { name, members } => handle
            .create_group(&name, members)
            .await
            .map(Response::Room),
        Request::Invite { room, user } => done(handle.invite(&room, &user).await),
        Request::Remove { room, user } => done(handle.remove(&room, &user).await),
        Request::Leave { room } => done(handle.leave(&room).await),
        Request::Send { room, text } => handle.send(&room, &text).await.map(Response::Sent),
        Request::History { room, limit } => {
            handle.history(&room, limit).await.map(Response::History)
        }
        Request::FindRoom { room } => handle.find_room(&room).await.map(Response::Room),
        Request::MarkRead { room } => handle.mark_read(&room).await.map(Response::MarkedRead),
        Request::Watch { .. } => Ok(Response::Error("watch is a stream".into())),
        Request::Revoke { revocation } => match hex::decode(revocation.trim()) {
            Ok(bytes) => handle
                .submit_revocation(bytes)
                .await
                .map(Response::Revocation),
            Err(_) => Ok(Response::Error("the revocation is not hex".into())),
        },
        Request::RevokeOwnDevice { device, reason } => match device.parse() {
            Ok(device) => handle
                .revoke_own_device(device, &reason)
                .await
                .map(Response::Revocation),
            Err(e) => Ok(Response::Error(format!("{e}"))),
        },
        Request::Revocations => handle.revocations().await.map(Response::Revocations),
        Request::DeviceChain { device, user } => {
            let target = match (device, user) {
                (Some(device), _) => device.parse().map(crate::revocations::Target::Device),
                (None, Some(user)) => Ok(crate::revocations::Target::User(user)),
                (None, None) => return Response::Error("name a device or a user".into()),
            };
            match target {
                Ok(target) => handle
                    .device_chain(target)
                    .await
                    .map(|chain| Response::Chain(hex::encode(crate::wire::encode(&chain)))),
                Err(e) => Ok(Response::Error(format!("{e}"))),
            }
        }
    };
    result.unwrap_or_else(|e| Response::Error(e.to_string()))
}
