//! Attachments on the network: sending a file (sealed into chunks kept in
//! the chunk store, the manifest sent as a message, the chunks offered to
//! relays), the chunk protocol (`/baro/chunks/1.0.0`) that serves and
//! fetches chunks by hash, and what the control API asks of files.
//!
//! - **Serving.** A chunk is served only to an admitted device entitled to
//!   the room it was stored for: the same rule as the room's envelopes
//!   (`may_serve`; relays carry every room's ciphertext).
//! - **Fetching.** [`Fetcher`] decides which chunk to ask of whom (any
//!   peer that may hold the room, several at once, bounded); a chunk is
//!   kept only if it hashes to what was asked, and a peer that serves one
//!   that does not is asked nothing for a while and logged.
//! - **Relays.** A sender offers its chunks to the relays it is connected
//!   to; a relay carrying the room fetches them like anyone else and keeps
//!   them within `--max-files-mb` and `--file-retention-days`, evicting
//!   the oldest first, so a member that was never online with the sender
//!   gets them from the relay.
//! - **Resuming.** Held chunks are never asked for again: a download
//!   started anew (after a restart, a disconnection, another `fetch`)
//!   asks only for the rest.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::oneshot;

use super::Actor;
use super::messaging::{MAX_HISTORY, room_error};
use crate::api::{AttachmentView, MessageView};
use crate::crypto::CHUNK_LEN;
use crate::file_limit::FileLimit;
use crate::identity::OsEntropy;
use crate::net::chunk_fetcher::{Answer, Ask, Fetcher};
use crate::net::sync_protocol::FrameCodec;
use crate::node::{NodeError, NodeEvent};
use crate::rooms::RoomId;
use crate::store::ChunkStore;
use crate::sync::SyncScope;
use crate::trust::Role;
use crate::wire::{ChunkRequest, ChunkResponse, Content, FileManifest, MAX_OFFERED_CHUNKS};

/// The chunk protocol's name.
pub const CHUNK_PROTOCOL: StreamProtocol = StreamProtocol::new("/baro/chunks/1.0.0");
/// Reads and writes chunk frames.
pub type ChunkCodec = FrameCodec<ChunkRequest, ChunkResponse>;
/// Images up to this size are fetched as soon as their message arrives.
pub const AUTO_FETCH_IMAGE_LEN: u64 = 8 << 20;
/// Largest photo a preview is made of.
pub const MAX_PREVIEWED_LEN: u64 = 32 << 20;
/// Default largest file a device sends, in MiB.
pub const DEFAULT_MAX_FILE_MB: u64 = 100;

/// The chunk behaviour: a chunk per request, a bounded number of streams,
/// a timeout long enough for a 256 KiB chunk over a slow link.
pub fn behaviour() -> request_response::Behaviour<ChunkCodec> {
    request_response::Behaviour::with_codec(
        ChunkCodec::default(),
        [(CHUNK_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(60))
            .with_max_concurrent_streams(64),
    )
}

/// What the control API asks about files (through [`crate::node::Handle`]).
#[derive(Debug)]
pub(crate) enum FileCommand {
    /// Send the file at `path` (absolute) with `caption`.
    Send {
        room: String,
        path: PathBuf,
        caption: String,
        /// Send a photo with its metadata (EXIF, GPS) as it is.
        keep_metadata: bool,
        reply: oneshot::Sender<Result<crate::api::Sent, NodeError>>,
    },
    /// The files of a room.
    List {
        room: String,
        reply: oneshot::Sender<Result<Vec<MessageView>, NodeError>>,
    },
    /// Fetch a file; once complete, write it to `out` if given.
    Fetch {
        room: String,
        file: String,
        out: Option<PathBuf>,
        reply: oneshot::Sender<Result<MessageView, NodeError>>,
    },
    /// Send one request to a connected peer (tests).
    Raw {
        peer: crate::identity::DeviceId,
        request: ChunkRequest,
        reply: oneshot::Sender<Result<ChunkResponse, NodeError>>,
    },
    /// Serve every chunk with one byte flipped, as a malicious holder
    /// would (tests of the receivers' check and penalty).
    TamperServed {
        on: bool,
        reply: oneshot::Sender<()>,
    },
}

/// A member's download: the manifest it fetches for.
#[derive(Debug)]
struct Wanted {
    manifest: Arc<FileManifest>,
    sender_view: MessageView,
}

/// The chunks a node holds and the transfers under way.
#[derive(Debug)]
pub(crate) struct Files {
    chunks: Option<ChunkStore>,
    fetcher: Fetcher<PeerId, OutboundRequestId>,
    wanted: HashMap<[u8; 32], Wanted>,
    /// Raw requests (tests) waiting for their answer.
    raw: HashMap<OutboundRequestId, oneshot::Sender<Result<ChunkResponse, NodeError>>>,
    /// This device's own largest file, in MiB (the agency's policy may
    /// lower it: [`Actor::file_limit`]).
    device_max_file_mb: u64,
    /// Serve chunks tampered with (tests only: [`FileCommand::TamperServed`]).
    tamper_served: bool,
}

impl Files {
    /// Opens the chunk records of `store`.
    pub(crate) fn open(store: Arc<dyn crate::store::Store>, max_file_mb: u64) -> Self {
        let chunks = match ChunkStore::open(store) {
            Ok(chunks) => Some(chunks),
            Err(e) => {
                tracing::error!(error = %e, "cannot open the chunk store: files are off");
                None
            }
        };
        Files {
            chunks,
            fetcher: Fetcher::default(),
            wanted: HashMap::new(),
            raw: HashMap::new(),
            device_max_file_mb: max_file_mb,
            tamper_served: false,
        }
    }

    /// Chunks held.
    pub(crate) fn chunks_held(&self) -> usize {
        self.chunks.as_ref().map_or(0, ChunkStore::len)
    }

    /// Bytes of chunks held.
    pub(crate) fn bytes_held(&self) -> u64 {
        self.chunks.as_ref().map_or(0, ChunkStore::bytes_held)
    }

    fn held(&self, manifest: &FileManifest) -> usize {
        self.chunks
            .as_ref()
            .map_or(0, |c| c.count_held(&manifest.chunks))
    }
}

/// A media type from a file name's extension.
pub fn media_type_of(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("hwp") => "application/x-hwp",
        Some("hwpx") => "application/hwp+zip",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("pptx") => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Opens a file to send, with a clear one-line error for each way it can
/// fail (over `limit`: naming it, and whether it is the agency's).
pub fn open_to_send(
    path: &Path,
    limit: &FileLimit,
) -> Result<(std::fs::File, u64, String), String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown}: no such file"),
        std::io::ErrorKind::PermissionDenied => format!("{shown}: permission denied"),
        _ => format!("{shown}: {e}"),
    })?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    limit.check(&shown.to_string(), meta.len())?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{shown}: the file name is not valid UTF-8"))?
        .to_string();
    crate::wire::check_name(&name).map_err(|e| format!("{shown}: {e}"))?;
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!("{shown}: permission denied"),
        _ => format!("{shown}: cannot read it: {e}"),
    })?;
    Ok((file, meta.len(), name))
}

/// A size in words: "812 bytes", "3.4 KiB", "20.0 MiB".
pub fn size_text(len: u64) -> String {
    match len {
        0..1024 => format!("{len} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", len as f64 / 1024.0),
        _ => format!("{:.1} MiB", len as f64 / 1_048_576.0),
    }
}

impl Actor {
    /// The largest file this device sends or fetches now: its own limit,
    /// or the agency's policy's if lower.
    pub(crate) fn file_limit(&self) -> FileLimit {
        FileLimit::new(self.files.device_max_file_mb, self.leasing.max_file_mb())
    }

    pub(super) fn on_file_command(&mut self, command: FileCommand) {
        match command {
            FileCommand::Send {
                room,
                path,
                caption,
                keep_metadata,
                reply,
            } => {
                let _ = reply.send(self.send_file(&room, &path, caption, keep_metadata));
            }
            FileCommand::List { room, reply } => {
                let _ = reply.send(self.list_files(&room));
            }
            FileCommand::Fetch {
                room,
                file,
                out,
                reply,
            } => {
                let _ = reply.send(self.fetch_file(&room, &file, out.as_deref()));
            }
            FileCommand::TamperServed { on, reply } => {
                self.files.tamper_served = on;
                let _ = reply.send(());
            }
            FileCommand::Raw {
                peer,
                request,
                reply,
            } => {
                let Some(peer) = peer.peer_id().filter(|p| self.connections.holds(p)) else {
                    let _ =
                        reply.send(Err(NodeError::Network("not connected to that peer".into())));
                    return;
                };
                let id = self
                    .swarm
                    .behaviour_mut()
                    .chunks
                    .send_request(&peer, request);
                self.files.raw.insert(id, reply);
            }
        }
    }

    fn send_file(
        &mut self,
        room: &str,
        path: &Path,
        caption: String,
        keep_metadata: bool,
    ) -> Result<crate::api::Sent, NodeError> {
        let room = self.open_room(room)?;
        let limit = self.file_limit();
        let max = limit.bytes();
        let (mut file, size, name) = open_to_send(path, &limit).map_err(NodeError::Room)?;
        let now = self.clock.now();
        let Some(chunks) = self.files.chunks.as_mut() else {
            return Err(NodeError::Room("files are off on this device".into()));
        };
        let media_type = media_type_of(&name);
        let is_photo = matches!(media_type, "image/jpeg" | "image/png");
        // A photo is read whole (it is at most `max`), its metadata removed
        // unless the sender keeps it; what is sealed, hashed and previewed
        // is what is sent.
        let photo = if is_photo {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, max), &mut bytes)
                .map_err(|e| NodeError::Room(format!("{}: cannot read it: {e}", path.display())))?;
            if !keep_metadata {
                bytes = crate::photo_metadata::strip_metadata(&bytes).map_err(|e| {
                    NodeError::Room(format!(
                        "{}: cannot remove the photo's metadata ({e}); send it with --keep-metadata to send it as it is",
                        path.display()
                    ))
                })?;
            }
            Some(bytes)
        } else {
            None
        };
        let size = photo.as_ref().map_or(size, |p| p.len() as u64);
        let mut reader: Box<dyn std::io::Read> = match &photo {
            Some(bytes) => Box::new(std::io::Cursor::new(bytes.as_slice())),
            None => Box::new(std::io::BufReader::with_capacity(CHUNK_LEN, &mut file)),
        };
        let manifest = FileManifest::seal(
            &name,
            media_type,
            size,
            max,
            &mut reader,
            &mut OsEntropy,
            |_, hash, chunk| {
                chunks
                    .put(room, hash, &chunk, now)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        )
        .map_err(|e| NodeError::Room(format!("{}: {e}", path.display())))?;
        drop(reader);
        let mut manifest = manifest;
        if let Some(photo) = photo.filter(|_| manifest.size <= MAX_PREVIEWED_LEN) {
            manifest.preview = crate::preview::preview_of(&photo);
        }
        let hashes = manifest.chunks.clone();
        let sent = self.send_content(
            room,
            Content::File {
                manifest: Box::new(manifest),
                caption,
            },
        )?;
        self.offer_to_relays(room, hashes);
        Ok(sent)
    }

    /// Tells the relays this node is connected to that it holds `hashes`
    /// of `room`; those that carry the room fetch them.
    fn offer_to_relays(&mut self, room: RoomId, hashes: Vec<[u8; 32]>) {
        let relays: Vec<PeerId> = self
            .connections
            .peers()
            .iter()
            .filter(|(_, info)| info.role == Role::Relay)
            .map(|(peer, _)| *peer)
            .collect();
        for batch in hashes.chunks(MAX_OFFERED_CHUNKS) {
            for relay in &relays {
                let request = ChunkRequest::Offer {
                    room,
                    hashes: batch.to_vec(),
                };
                self.swarm
                    .behaviour_mut()
                    .chunks
                    .send_request(relay, request);
            }
        }
    }

    /// The file messages of `room` as views, newest last.
    fn file_messages(
        &self,
        room: RoomId,
    ) -> Result<Vec<(MessageView, Arc<FileManifest>)>, NodeError> {
        let me = self.key.device_id();
        let messaging = self.messaging.as_ref().ok_or(NodeError::Stopped)?;
        let envelopes = messaging
            .log
            .history(room, MAX_HISTORY)
            .map_err(room_error)?;
        let mut out = Vec::new();
        for message in envelopes.iter().filter_map(|e| messaging.messenger.read(e)) {
            let Content::File { manifest, caption } = &message.content else {
                continue;
            };
            let view = MessageView {
                id: hex::encode(message.id),
                room: message.room.to_string(),
                room_name: messaging
                    .messenger
                    .room(room)
                    .map(|r| r.name.clone())
                    .unwrap_or_default(),
                sender: message.sender,
                sender_user: message.sender_user.clone(),
                sender_name: message.sender_name.clone(),
                wall_ms: message.timestamp.wall_ms,
                counter: message.timestamp.counter,
                text: caption.clone(),
                from_me: message.sender == me,
                receipts: Vec::new(),
                queued: false,
                progress: None,
                attachment: Some(AttachmentView::of(manifest, self.files.held(manifest))),
            };
            out.push((view, Arc::new((**manifest).clone())));
        }
        Ok(out)
    }

    fn list_files(&self, room: &str) -> Result<Vec<MessageView>, NodeError> {
        let room = self.find_room(room)?;
        Ok(self
            .file_messages(room)?
            .into_iter()
            .map(|(view, _)| view)
            .collect())
    }

    fn fetch_file(
        &mut self,
        room: &str,
        file: &str,
        out: Option<&Path>,
    ) -> Result<MessageView, NodeError> {
        let room = self.find_room(room)?;
        let wanted = file.trim().to_ascii_lowercase();
        if wanted.len() < 6 || !wanted.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(NodeError::Room(format!(
                "'{file}' is not a file id: give 6 or more of its hex digits (see `baro files`)"
            )));
        }
        let mut found: Vec<_> = self
            .file_messages(room)?
            .into_iter()
            .filter(|(_, m)| hex::encode(m.id).starts_with(&wanted))
            .collect();
        let (view, manifest) = match found.len() {
            0 => {
                return Err(NodeError::Room(format!(
                    "no file {file} in this room (see `baro files`)"
                )));
            }
            1 => found.remove(0),
            _ => {
                return Err(NodeError::Room(format!(
                    "more than one file starts with {file}: give more digits"
                )));
            }
        };
        let held = self.files.held(&manifest);
        if held == manifest.chunks.len() {
            if let Some(out) = out {
                self.save_file(room, &manifest, out)?;
            }
        } else {
            // Refused before any chunk is asked for: the sender's limit
            // (or its build) may have been higher than this device's.
            self.file_limit()
                .check("this file", manifest.size)
                .map_err(|e| NodeError::Room(format!("{e}: not fetched")))?;
            self.start_download(room, manifest, view.clone());
        }
        Ok(view)
    }

    fn start_download(&mut self, room: RoomId, manifest: Arc<FileManifest>, view: MessageView) {
        let Some(chunks) = self.files.chunks.as_ref() else {
            return;
        };
        let started = self.files.fetcher.start(
            manifest.id,
            room,
            manifest.chunks.clone(),
            |h| chunks.has(h),
            Instant::now(),
        );
        if started {
            self.files.wanted.entry(manifest.id).or_insert(Wanted {
                manifest,
                sender_view: view,
            });
            self.pump_transfers();
        }
    }

    /// Writes a complete file to `out` (a new file), each chunk checked
    /// against its hash and opened under the file key on the way.
    fn save_file(
        &mut self,
        room: RoomId,
        manifest: &FileManifest,
        out: &Path,
    ) -> Result<(), NodeError> {
        let chunks = self
            .files
            .chunks
            .as_mut()
            .ok_or_else(|| NodeError::Room("files are off on this device".into()))?;
        let partial = out.with_extension("baro-partial");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| {
                NodeError::Room(if out.exists() || partial.exists() {
                    format!("{} already exists; choose another path", out.display())
                } else {
                    format!("cannot create {}: {e}", out.display())
                })
            })?;
        if out.exists() {
            let _ = std::fs::remove_file(&partial);
            return Err(NodeError::Room(format!(
                "{} already exists; choose another path",
                out.display()
            )));
        }
        let result = (|| {
            for (index, hash) in manifest.chunks.iter().enumerate() {
                let sealed = chunks
                    .get(room, hash)
                    .map_err(room_error)?
                    .ok_or_else(|| NodeError::Room("a chunk went missing: fetch again".into()))?;
                let plain = manifest.open_chunk(index, &sealed).ok_or_else(|| {
                    NodeError::Room(format!("chunk {index} does not open under the file key"))
                })?;
                file.write_all(&plain)
                    .map_err(|e| NodeError::Room(format!("cannot write {}: {e}", out.display())))?;
            }
            file.sync_all()
                .map_err(|e| NodeError::Room(format!("cannot write {}: {e}", out.display())))?;
            std::fs::rename(&partial, out)
                .map_err(|e| NodeError::Room(format!("cannot write {}: {e}", out.display())))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }

    /// Starts the downloads due for newly arrived messages: images up to
    /// [`AUTO_FETCH_IMAGE_LEN`]; other files wait for `baro fetch`.
    pub(super) fn fetch_attachments_due(&mut self, messages: &[crate::rooms::Message]) {
        for message in messages {
            let Content::File { manifest, .. } = &message.content else {
                continue;
            };
            if manifest.media_type.starts_with("image/")
                && manifest.size <= AUTO_FETCH_IMAGE_LEN
                && manifest.size <= self.file_limit().bytes()
            {
                let room = message.room;
                let Ok(views) = self.file_messages(room) else {
                    continue;
                };
                if let Some((view, manifest)) = views.into_iter().find(|(_, m)| m.id == manifest.id)
                {
                    self.start_download(room, manifest, view);
                }
            }
        }
    }

    /// Peers a chunk of `room` may be asked of: admitted, not this node.
    fn chunk_sources(&self, room: RoomId) -> Vec<PeerId> {
        self.room_peers(room)
    }

    /// Sends the chunk requests the fetcher picks now.
    pub(super) fn pump_transfers(&mut self) {
        if self.files.fetcher.active() == 0 {
            return;
        }
        let sources: HashMap<RoomId, Vec<PeerId>> = self
            .files
            .fetcher
            .rooms()
            .into_iter()
            .map(|room| (room, self.chunk_sources(room)))
            .collect();
        let asks = self.files.fetcher.next(
            |room| sources.get(&room).cloned().unwrap_or_default(),
            Instant::now(),
        );
        for ask in asks {
            let id = self.swarm.behaviour_mut().chunks.send_request(
                &ask.peer,
                ChunkRequest::Get {
                    room: ask.room,
                    hash: ask.hash,
                },
            );
            self.files.fetcher.sent(id, ask);
        }
    }

    pub(super) fn on_chunk_event(
        &mut self,
        event: request_response::Event<ChunkRequest, ChunkResponse>,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.answer_chunk(peer, request, channel),
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.files.raw.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                    return;
                }
                match response {
                    ChunkResponse::Chunk(bytes) => self.take_chunk(peer, request_id, bytes),
                    ChunkResponse::Noted => {}
                    ChunkResponse::NotHeld | ChunkResponse::Refused => {
                        self.files.fetcher.on_miss(&request_id);
                    }
                }
                self.pump_transfers();
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "chunk request failed");
                if let Some(reply) = self.files.raw.remove(&request_id) {
                    let _ = reply.send(Err(NodeError::Network(error.to_string())));
                    return;
                }
                self.files.fetcher.on_miss(&request_id);
                self.pump_transfers();
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "chunk request from a peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn take_chunk(&mut self, peer: PeerId, id: OutboundRequestId, bytes: Vec<u8>) {
        let ask: Ask<PeerId> = match self.files.fetcher.on_chunk(&id, &bytes, Instant::now()) {
            Answer::Good(ask) => ask,
            Answer::Bad(ask) => {
                let device = self
                    .gate
                    .admitted(&peer)
                    .map(|(d, _)| d.device.short())
                    .unwrap_or_else(|| peer.to_string());
                tracing::warn!(peer = %device, "a peer served a chunk that does not match its hash: it is asked nothing for a while");
                self.emit(NodeEvent::ChunkRejected {
                    from: peer,
                    reason: format!("chunk {} of a file did not match its hash", ask.index),
                });
                return;
            }
            Answer::Unknown => return,
        };
        let now = self.clock.now();
        let Some(chunks) = self.files.chunks.as_mut() else {
            return;
        };
        // A relay makes room first (its files' quota and retention).
        if let Some(relay) = &self.config.config.relay {
            let max = relay.max_files_mb.saturating_mul(1 << 20);
            let room_needed = max.saturating_sub(bytes.len() as u64);
            let retention = relay.file_retention_days.saturating_mul(86_400);
            match chunks.evict(room_needed, Some(retention), now) {
                Ok(0) => {}
                Ok(n) => tracing::info!(chunks = n, "relay store: evicted the oldest file chunks"),
                Err(e) => tracing::error!(error = %e, "cannot evict file chunks"),
            }
        }
        if let Err(e) = chunks.put(ask.room, ask.hash, &bytes, now) {
            tracing::error!(error = %e, "cannot keep a file chunk");
            self.files.fetcher.not_stored(&ask);
            return;
        }
        let complete = self.files.fetcher.stored(&ask);
        if let Some(wanted) = self.files.wanted.get(&ask.download) {
            let held = self.files.held(&wanted.manifest);
            let mut view = wanted.sender_view.clone();
            view.attachment = Some(AttachmentView::of(&wanted.manifest, held));
            self.emit(NodeEvent::FileProgress(view));
        }
        if complete {
            self.files.wanted.remove(&ask.download);
        }
    }

    fn answer_chunk(
        &mut self,
        peer: PeerId,
        request: ChunkRequest,
        channel: ResponseChannel<ChunkResponse>,
    ) {
        let response = match self.gate.admitted(&peer) {
            None => ChunkResponse::Refused,
            Some((device, _)) => match request {
                ChunkRequest::Get { room, hash } => {
                    if let Err(reason) = self.may_serve(&device, SyncScope::Room(room)) {
                        tracing::debug!(peer = %device.device.short(), %reason, "chunk refused");
                        ChunkResponse::Refused
                    } else {
                        match self.files.chunks.as_mut().map(|c| c.get(room, &hash)) {
                            Some(Ok(Some(mut bytes))) => {
                                if self.files.tamper_served
                                    && let Some(byte) = bytes.last_mut()
                                {
                                    *byte ^= 1;
                                }
                                ChunkResponse::Chunk(bytes)
                            }
                            _ => ChunkResponse::NotHeld,
                        }
                    }
                }
                ChunkRequest::Offer { room, hashes } => {
                    let carries = self
                        .carrier
                        .as_ref()
                        .is_some_and(|c| c.rooms().any(|r| r == room));
                    // No file within the limit has more chunks than this.
                    let most = crate::wire::chunk_count(self.file_limit().bytes());
                    if hashes.len() > MAX_OFFERED_CHUNKS.min(most)
                        || self.may_serve(&device, SyncScope::Room(room)).is_err()
                    {
                        ChunkResponse::Refused
                    } else {
                        if carries && let Some(chunks) = self.files.chunks.as_ref() {
                            let key = *blake3::hash(&crate::wire::encode(&ChunkRequest::Offer {
                                room,
                                hashes: hashes.clone(),
                            }))
                            .as_bytes();
                            self.files.fetcher.start(
                                key,
                                room,
                                hashes,
                                |h| chunks.has(h),
                                Instant::now(),
                            );
                        }
                        ChunkResponse::Noted
                    }
                }
            },
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .chunks
            .send_response(channel, response);
        self.pump_transfers();
    }
}
