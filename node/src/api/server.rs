//! The control socket server, run beside the node by `baro run`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{MAX_LINE, Request, Response};
use crate::node::Handle;

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
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &handle).await {
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

async fn answer(stream: UnixStream, handle: &Handle) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    BufReader::new(reader.take(MAX_LINE as u64))
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Err(e) => Response::Error(format!("bad request: {e}")),
        Ok(request) => dispatch(request, handle).await,
    };
    let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    out.push(b'\n');
    writer.write_all(&out).await?;
    writer.shutdown().await
}

async fn dispatch(request: Request, handle: &Handle) -> Response {
    let result = match request {
        Request::Status => handle.status().await.map(Response::Status),
        Request::Peers => handle.peers().await.map(Response::Peers),
        Request::Blocked => handle.blocked().await.map(Response::Blocked),
    };
    result.unwrap_or_else(|e| Response::Error(e.to_string()))
}
