//! The control socket server, run beside the node by `baro run`.
//!
//! Only the user running the node may talk to it, by two checks that do not
//! depend on each other:
//!
//! - the socket is bound inside the home, which must be owner-only (no
//!   group or other bits; `Home::open` checks it too), then made 0600:
//!   between `bind` and `chmod` the file exists with the umask's mode, but
//!   other users cannot reach it through the directory. (Setting the umask
//!   around `bind` instead would change it for every thread of the process
//!   at once.)
//! - every client's uid is read from the connection (`SO_PEERCRED`), and a
//!   client running as another user than the node is hung up on unread.
//!   The node's uid is the owner of the socket file it just created.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
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
    /// The node's home (the socket's directory): operator requests read
    /// its key files.
    home: PathBuf,
    /// The uid this process runs as (the socket file's owner): the only
    /// client uid served.
    owner: u32,
}

/// Binds the control socket at `path`, owner-only. Fails if the directory
/// holding it is open to other users, or if another node answers there; a
/// socket file left by a killed node is replaced.
pub async fn bind(path: PathBuf) -> std::io::Result<ControlSocket> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let dir_meta = std::fs::metadata(dir)?;
    if dir_meta.permissions().mode() & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is open to other users (mode {:o}): the control socket needs an owner-only directory (chmod 700)",
                dir.display(),
                dir_meta.permissions().mode() & 0o777
            ),
        ));
    }
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
    // Created just now by this process, so owned by its (effective) uid.
    let owner = std::fs::metadata(&path)?.uid();
    Ok(ControlSocket {
        listener,
        home: dir.to_path_buf(),
        path,
        owner,
    })
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
                    if !self.admits(&stream) {
                        continue;
                    }
                    let Ok(permit) = slots.clone().acquire_owned().await else { break };
                    let handle = handle.clone();
                    let shutdown = shutdown.clone();
                    let home = self.home.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &handle, &home, shutdown).await {
                            tracing::debug!(error = %e, "control client failed");
                        }
                        drop(permit);
                    });
                }
            }
        }
        remove(&self.path);
    }

    /// Whether the client on `stream` runs as this node's user; one that
    /// does not, or whose credentials cannot be read, is dropped unanswered.
    fn admits(&self, stream: &UnixStream) -> bool {
        match stream.peer_cred() {
            Ok(peer) if peer.uid() == self.owner => true,
            Ok(peer) => {
                tracing::warn!(
                    uid = peer.uid(),
                    pid = ?peer.pid(),
                    "refused a control client running as another user"
                );
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "refused a control client whose user is unknown");
                false
            }
        }
    }
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

async fn answer(
    stream: UnixStream,
    handle: &Handle,
    home: &Path,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    // It may carry the operator's passphrase.
    let mut line = zeroize::Zeroizing::new(String::new());
    BufReader::new(reader.take(MAX_LINE as u64))
        .read_line(&mut line)
        .await?;
    let parsed = serde_json::from_str::<Request>(&line).map(Request::normalized);
    drop(line);
    let response = match parsed {
        Err(e) => Response::Error(format!("bad request: {e}")),
        Ok(Request::Watch { room }) => return watch(writer, handle, room, shutdown).await,
        Ok(request) => dispatch_in_home(request, handle, home).await,
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
    // Revocations of this user's devices are shown too (finding 30).
    let me = handle.status().await.map(|s| s.user_id).unwrap_or_default();
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
                Ok(NodeEvent::FileProgress(message)) => {
                    if room_id.as_ref().is_none_or(|id| *id == message.room) {
                        write_line(&mut writer, &Response::FileProgress(message)).await?;
                    }
                }
                Ok(NodeEvent::Revoked(view)) if !me.is_empty() && view.user == me => {
                    write_line(&mut writer, &Response::Revocation(view)).await?;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// The newest of `messages` whose answer fits in one line of [`MAX_LINE`]
/// bytes (a client reads no more): a long history is cut at its oldest end.
/// The directory question a [`Request::People`] asks; `None` (nothing
/// asked) for everyone this device knows.
fn directory_query(
    search: Option<String>,
    user: Option<String>,
    unit: Option<String>,
    below: bool,
) -> Result<Option<crate::trust::DirectoryQuery>, String> {
    use crate::trust::{DirectoryQuery, MAX_SEARCH_LEN};
    match (search, user, unit) {
        (None, None, None) => Ok(None),
        (Some(text), None, None) => {
            let text = text.trim().to_string();
            if text.is_empty() || text.len() > MAX_SEARCH_LEN {
                return Err(format!(
                    "give 1 to {MAX_SEARCH_LEN} bytes of a name or user id to search for"
                ));
            }
            Ok(Some(DirectoryQuery::Search(text)))
        }
        (None, Some(user), None) => Ok(Some(DirectoryQuery::User(user))),
        (None, None, Some(unit)) => Ok(Some(DirectoryQuery::Unit {
            unit: unit
                .parse()
                .map_err(|e: crate::trust::TrustError| e.to_string())?,
            below,
            after: None,
        })),
        _ => Err(
            "ask for at most one of: a search text, a user id (--user), an org unit (--unit)"
                .into(),
        ),
    }
}

fn newest_that_fit(mut messages: Vec<crate::api::MessageView>) -> Vec<crate::api::MessageView> {
    // Room for the answer's own framing around the list.
    let mut budget = MAX_LINE - 64;
    let mut keep = 0;
    for message in messages.iter().rev() {
        // Each element, and the comma after it.
        let size = serde_json::to_vec(message).map_or(MAX_LINE, |bytes| bytes.len()) + 1;
        if size > budget {
            break;
        }
        budget -= size;
        keep += 1;
    }
    messages.split_off(messages.len() - keep)
}

/// A path the node reads or writes for a client: absolute only (the
/// node's working directory is not the client's).
fn absolute(path: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(path);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!("{}: give an absolute path", path.display()))
    }
}

/// Answers one request (not [`Request::Watch`], a stream) as the control
/// socket does, on the node of the home in `home`: the one place requests
/// meet the node, shared by every interface on top of it (the socket, the
/// browser app). The operator's requests ([`super::operator`]) need the
/// home, which holds the operator key.
pub async fn dispatch_in_home(request: Request, handle: &Handle, home: &Path) -> Response {
    if super::operator::is_operator_request(&request) {
        super::operator::answer(request, handle, home).await
    } else {
        dispatch(request, handle).await
    }
}

/// Answers one request that needs no home (not [`Request::Watch`], a
/// stream; an operator's request is refused): see [`dispatch_in_home`].
pub async fn dispatch(request: Request, handle: &Handle) -> Response {
    let done = |r: Result<(), crate::node::NodeError>| r.map(|()| Response::Done);
    let result = match request {
        Request::Status => handle.status().await.map(Response::Status),
        Request::Peers => handle.peers().await.map(Response::Peers),
        Request::Devices => handle.devices().await.map(Response::Devices),
        Request::Blocked => handle.blocked().await.map(Response::Blocked),
        Request::Rooms => handle.rooms().await.map(Response::Rooms),
        Request::CreateRoom { name, members } => handle
            .create_group(&name, members)
            .await
            .map(Response::Room),
        Request::Invite { room, user } => handle.invite(&room, &user).await.map(Response::Room),
        Request::Remove { room, user } => done(handle.remove(&room, &user).await),
        Request::Leave { room } => done(handle.leave(&room).await),
        Request::MakeAdmin { room, user } => {
            handle.make_admin(&room, &user).await.map(Response::Room)
        }
        Request::HideRoom { room, hidden } => {
            handle.hide_room(&room, hidden).await.map(Response::Room)
        }
        Request::Send { room, text } => handle.send(&room, &text).await.map(Response::Sent),
        Request::History { room, limit } => handle
            .history(&room, limit)
            .await
            .map(|messages| Response::History(newest_that_fit(messages))),
        Request::FindRoom { room } => handle.find_room(&room).await.map(Response::Room),
        Request::SendFile {
            room,
            path,
            caption,
            keep_metadata,
        } => match absolute(&path) {
            Ok(path) => handle
                .send_file(&room, &path, &caption, keep_metadata)
                .await
                .map(Response::Sent),
            Err(e) => Ok(Response::Error(e)),
        },
        Request::Files { room } => handle
            .files(&room)
            .await
            .map(|files| Response::Files(newest_that_fit(files))),
        Request::FetchFile { room, file, out } => match out.as_deref().map(absolute).transpose() {
            Ok(out) => handle
                .fetch_file(&room, &file, out.as_deref())
                .await
                .map(Response::File),
            Err(e) => Ok(Response::Error(e)),
        },
        Request::MarkRead { room } => handle.mark_read(&room).await.map(Response::MarkedRead),
        Request::Watch { .. } => Ok(Response::Error("watch is a stream".into())),
        Request::SetPolicy { policy } => match hex::decode(policy.trim()) {
            Ok(bytes) => handle.submit_policy(bytes).await.map(Response::Policy),
            Err(_) => Ok(Response::Error("the agency policy is not hex".into())),
        },
        Request::Revoke { revocation } => match hex::decode(revocation.trim()) {
            Ok(bytes) => handle
                .submit_new_revocation(bytes)
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
        Request::OperatorConsole | Request::Enroll { .. } | Request::AgencyRevoke { .. } => {
            return Response::Error(
                "an operator's request needs the node's home: ask the control socket or the app"
                    .into(),
            );
        }
        Request::People {
            search,
            user,
            unit,
            below,
        } => match directory_query(search, user, unit, below) {
            Ok(Some(query)) => handle.people(query).await.map(Response::People),
            Ok(None) => handle.known_people().await.map(Response::People),
            Err(message) => return Response::Error(message),
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestAgency;

    #[test]
    fn a_directory_question_needs_exactly_one_well_formed_selector() {
        use crate::trust::DirectoryQuery;
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            directory_query(some("  민지 "), None, None, false),
            Ok(Some(DirectoryQuery::Search("민지".into())))
        );
        assert_eq!(
            directory_query(None, some("lee.jun"), None, false),
            Ok(Some(DirectoryQuery::User("lee.jun".into())))
        );
        assert!(matches!(
            directory_query(None, None, some("MOIS/B1"), true),
            Ok(Some(DirectoryQuery::Unit { below: true, .. }))
        ));
        assert_eq!(
            directory_query(None, None, None, false),
            Ok(None),
            "nothing asked: everyone this device knows"
        );
        let one_of = "ask for at most one of";
        for (search, user, unit, expected) in [
            (some("kim"), None, some("MOIS"), one_of),
            (some("kim"), some("kim"), None, one_of),
            (some("   "), None, None, "give 1 to 128 bytes"),
            (Some("x".repeat(129)), None, None, "give 1 to 128 bytes"),
            (None, None, some("MOIS//B1"), "org unit"),
        ] {
            let error = directory_query(search, user, unit, false).expect_err("refused");
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains('\n'), "one line: {error}");
        }
    }

    fn message(i: usize, device: crate::DeviceId) -> crate::api::MessageView {
        crate::api::MessageView {
            id: format!("{i:064x}"),
            room: "ab".repeat(32),
            room_name: "MOIS/Division 2".into(),
            sender: device,
            sender_user: "kim".into(),
            sender_name: "Kim Minji".into(),
            wall_ms: i as u64,
            counter: 0,
            text: format!("report {i}: {}", "x".repeat(500)),
            from_me: true,
            receipts: Vec::new(),
            queued: true,
            progress: None,
            attachment: None,
        }
    }

    #[test]
    fn a_long_history_is_cut_at_its_oldest_end_to_fit_one_answer() {
        let device = TestAgency::new(1).key().device_id();
        let short: Vec<_> = (0..10).map(|i| message(i, device)).collect();
        assert_eq!(
            newest_that_fit(short.clone()),
            short,
            "a short one is whole"
        );

        let long: Vec<_> = (0..5000).map(|i| message(i, device)).collect();
        let kept = newest_that_fit(long.clone());
        let line = serde_json::to_vec(&Response::History(kept.clone())).expect("json");
        assert!(line.len() < MAX_LINE, "{} bytes", line.len());
        assert!(kept.len() > 1000, "kept only {}", kept.len());
        assert_eq!(kept.last(), long.last(), "the newest message is kept");
        assert_eq!(
            kept[..],
            long[long.len() - kept.len()..],
            "a suffix, in order"
        );
    }

    /// Asks `path` for the node's status; the raw answer line, empty if
    /// the server hung up without one.
    async fn ask_status(path: &Path) -> std::io::Result<String> {
        let mut stream = UnixStream::connect(path).await?;
        let mut line = serde_json::to_vec(&Request::Status).map_err(std::io::Error::other)?;
        line.push(b'\n');
        stream.write_all(&line).await?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).await?;
        Ok(answer)
    }

    /// A node, and its control socket bound in a fresh owner-only directory.
    async fn bound() -> (tempfile::TempDir, crate::Node, ControlSocket) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        let mut agency = TestAgency::new(7);
        let kim = agency.member("kim");
        let node = agency.spawn(kim, &[]);
        let socket = bind(dir.path().join(super::super::SOCKET_NAME))
            .await
            .expect("bind");
        (dir, node, socket)
    }

    #[tokio::test]
    async fn the_socket_is_owner_only_and_serves_its_owner() {
        let (_dir, node, socket) = bound().await;
        let path = socket.path.clone();
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(socket.serve(node.handle(), shutdown.clone()));
        let answer = ask_status(&path).await.expect("answered");
        assert!(
            matches!(serde_json::from_str(&answer), Ok(Response::Status(_))),
            "{answer}"
        );
        shutdown.cancel();
        server.await.expect("server stops");
        assert!(!path.exists(), "socket removed on the way out");
        node.shutdown().await;
    }

    /// Another local user is simulated by the server believing it runs as
    /// another uid than the test (becoming another user needs root).
    #[tokio::test]
    async fn a_client_running_as_another_user_is_refused() {
        let (_dir, node, mut socket) = bound().await;
        socket.owner = socket.owner.wrapping_add(1);
        let path = socket.path.clone();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(socket.serve(node.handle(), shutdown.clone()));
        // Hung up on: no answer line (or the write or read fails outright).
        let answer = ask_status(&path).await.unwrap_or_default();
        assert_eq!(answer, "", "a foreign client was answered");
        shutdown.cancel();
        server.await.expect("server stops");
        node.shutdown().await;
    }

    #[tokio::test]
    async fn a_directory_open_to_other_users_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for open in [0o750, 0o701, 0o777] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(open))
                .expect("chmod");
            let path = dir.path().join(super::super::SOCKET_NAME);
            let error = bind(path.clone()).await.expect_err("refused");
            assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied);
            assert!(error.to_string().contains("open to other users"), "{error}");
            assert!(!path.exists(), "no socket was created");
        }
    }
}
