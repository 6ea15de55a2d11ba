//! The officials' app: a chat interface in the browser, served by the node
//! itself (`baro run --ui`, `baro app`).
//!
//! It sits at the edge like the control socket and talks to the node the
//! same way: every request the page makes is a control API
//! [`Request`](baro_node::api::Request) answered by
//! [`dispatch`](baro_node::api::dispatch); live updates are the node's
//! events as server-sent events. Nothing here decides anything about rooms,
//! messages or trust.
//!
//! Security (see [`guard`]): loopback by default; a fresh random token in
//! the login URL (printed, and written owner-only to `HOME/ui.url`) becomes
//! an HttpOnly, SameSite=Strict session cookie; Host and Origin are checked
//! on every request; a strict Content-Security-Policy forbids inline
//! script, and the page renders network text with `textContent` only.

mod assets;
mod events;
pub mod guard;
mod overview;
mod routes;
pub mod session;
mod upload;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use baro_node::Handle;
use tokio_util::sync::CancellationToken;

/// Where the app is served when `--ui` names no address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:2276";

/// The file in the home holding the login URL (owner-only).
pub const URL_FILE: &str = "ui.url";

/// A bound app server, ready to serve.
#[derive(Debug)]
pub struct Ui {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    sessions: session::Sessions,
    url: String,
    home: PathBuf,
}

/// Why the app could not start.
#[derive(Debug)]
pub enum UiError {
    /// The address is not one the app may serve on.
    Address(String),
    /// Binding or writing the URL file failed.
    Io(std::io::Error),
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UiError::Address(message) => f.write_str(message),
            UiError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for UiError {}

/// Parses the address `--ui` was given: an IP and port. Loopback is the
/// default; another address must be a concrete one (not 0.0.0.0), since
/// the Host header is checked against it.
pub fn parse_addr(text: &str) -> Result<SocketAddr, UiError> {
    let addr: SocketAddr = text.trim().parse().map_err(|_| {
        UiError::Address(format!(
            "--ui takes IP:PORT, e.g. {DEFAULT_ADDR}, not {text:?}"
        ))
    })?;
    if addr.ip().is_unspecified() {
        return Err(UiError::Address(format!(
            "--ui {addr}: name the one address to serve on (e.g. {DEFAULT_ADDR}); the app checks the Host header against it"
        )));
    }
    Ok(addr)
}

/// Binds the app on `addr`, makes a fresh login token and writes the login
/// URL to `home/ui.url` (owner-only).
pub async fn bind(addr: SocketAddr, home: &Path) -> Result<Ui, UiError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| UiError::Address(format!("cannot serve the app on {addr}: {e}")))?;
    let addr = listener.local_addr().map_err(UiError::Io)?;
    let sessions = session::Sessions::new(home.join(session::SESSIONS_FILE));
    let url = format!("http://{addr}/login?token={}", sessions.token());
    write_owner_only(&home.join(URL_FILE), &format!("{url}\n")).map_err(UiError::Io)?;
    Ok(Ui {
        listener,
        addr,
        sessions,
        url,
        home: home.to_path_buf(),
    })
}

impl Ui {
    /// The login URL (carries the token: show it to the device's user only).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown`.
    pub async fn serve(self, handle: Handle, shutdown: CancellationToken) {
        let app = routes::router(routes::State::new(
            handle,
            self.home,
            guard::Origins::for_addr(self.addr),
            self.sessions,
            shutdown.clone(),
        ));
        if let Err(e) = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::warn!(error = %e, "the app server stopped");
        }
    }
}

/// Writes `text` to `path`, readable by the owner only (the file is made
/// 0600 before anything is written to it).
pub fn write_owner_only(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An older file keeps its mode through `open`: narrow it first.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// The login URL a running node wrote into `home`, if any.
pub fn read_url(home: &Path) -> Option<String> {
    let path: PathBuf = home.join(URL_FILE);
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// Writes `home/ui-open.html`, owner-only: a page that forwards to the
/// login URL, for `baro app` to open in the browser without putting the
/// token on a command line (which other local users can read).
pub fn write_launcher(home: &Path, url: &str) -> std::io::Result<PathBuf> {
    let path = home.join("ui-open.html");
    // The URL is ours: an address and a hex token, nothing to escape.
    let page = format!(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"0;url={url}\">\n<title>Baro Mesh</title>\n"
    );
    write_owner_only(&path, &page)?;
    Ok(path)
}
