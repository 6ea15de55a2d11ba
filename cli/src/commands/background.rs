//! The node in the background: `baro run --detach` (and `relay --detach`),
//! `baro stop`, and `chat`, `send` and `history` starting the node when
//! none runs on the home, so one terminal is enough.
//!
//! The background node is `baro` itself, started again with the same
//! arguments and a hidden `--background`: it leaves the terminal's session
//! (`setsid`), reads the device PIN the starting command asked for on a
//! pipe (never from its environment, which other processes of the user
//! can read), and writes its lines to `node.log` in the home (owner-only,
//! removed with the home at a wipe, and without message text: that stays
//! encrypted at rest). The starting command returns once the node answers
//! on its control socket, or fails with the node's own error line.
//! `baro stop` asks the socket's owner (its peer credentials) to stop with
//! SIGTERM, and waits until the process is gone, its store flushed.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use baro_node::api::{self, ApiError, Request};

/// The background node's output, in its home.
pub const LOG_NAME: &str = "node.log";
/// Held (flock) by the node running on the home from its very start, so a
/// command sees a node that is starting and has not bound its socket yet.
const LOCK_NAME: &str = "node.lock";

/// How long a starting node may take to answer (unlocking the store with
/// the PIN's key derivation, opening the database, binding the socket).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping node may take to flush its store and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// Marks this process as the node of `home` for as long as the returned
/// file lives; refused when another node holds the home.
pub fn hold_home(home: &Path) -> Result<std::fs::File> {
    let path = home.join(LOCK_NAME);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        bail!(
            "a node is already running on {}: `baro stop` stops it",
            home.display()
        );
    }
    Ok(file)
}

/// Whether a node holds `home` (running, or still starting).
fn held(home: &Path) -> bool {
    let Ok(file) = std::fs::File::open(home.join(LOCK_NAME)) else {
        return false;
    };
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared).is_err()
}

/// Waits until the node that holds `home` answers; `false` if it stopped
/// (or took too long) first.
fn wait_for_starting(home: &Path) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if is_running(home) {
            return true;
        }
        if !held(home) {
            return is_running(home);
        }
        std::thread::sleep(POLL);
    }
    false
}

/// Whether a node answers on `home`.
pub fn is_running(home: &Path) -> bool {
    !matches!(
        api::request(home, &Request::Status),
        Err(ApiError::NotRunning(_))
    )
}

/// Starts `baro --home HOME ARGS --background` and waits until it answers.
/// `args` are the command's own words (e.g. `run --no-mdns`); `key_file`
/// is the global `--storage-key-file`, without which the PIN is passed.
pub fn start(home: &Path, args: &[OsString], key_file: Option<&Path>) -> Result<()> {
    if is_running(home) || held(home) {
        bail!(
            "a node is already running on {}: `baro stop` stops it",
            home.display()
        );
    }
    // A missing or unenrolled home says so now, not from the log.
    let opened = baro_node::store::Home::open(home)?;
    baro_node::enrollment::load_bundle(&opened)?;
    let pin = match key_file {
        Some(_) => None,
        None => Some(crate::pin::existing()?),
    };
    let log_path = home.join(LOG_NAME);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("cannot open the node's log {}", log_path.display()))?;
    let mut command = Command::new(std::env::current_exe().context("cannot find baro itself")?);
    command.arg("--home").arg(home);
    if let Some(key_file) = key_file {
        command.arg("--storage-key-file").arg(key_file);
    }
    command
        .args(args)
        .arg("--background")
        .stdin(Stdio::piped())
        .stdout(log.try_clone().context("cannot share the node's log")?)
        .stderr(log);
    let mut child = command.spawn().context("cannot start the node")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A line, then the end: the node reads it only without BARO_PIN.
        let pin = pin.as_ref().map_or("", |pin| pin.as_str());
        stdin
            .write_all(format!("{pin}\n").as_bytes())
            .context("cannot hand the PIN to the node")?;
    }
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the node stopped at start ({status}): {}",
                last_error(&log_path).unwrap_or_else(|| format!("see {}", log_path.display()))
            );
        }
        if is_running(home) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the node did not answer within {} s: see {}",
                START_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// The node's last `error: …` line in its log.
fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .map(str::to_string)
}

/// For `chat`, `send` and `history`: starts a member node in the
/// background when none runs on `home`, saying so on stderr (stdout may be
/// JSON).
pub fn ensure_running(home: &Path, key_file: Option<&Path>) -> Result<()> {
    if is_running(home) {
        return Ok(());
    }
    // A `baro run` still starting (unlocking its store): wait for it
    // rather than start a second node that would race it for the home.
    if held(home) && wait_for_starting(home) {
        return Ok(());
    }
    match start(home, &["run".into()], key_file) {
        Ok(()) => {
            eprintln!(
                "(started the node in the background: `baro stop` stops it; its log is {})",
                home.join(LOG_NAME).display()
            );
            Ok(())
        }
        // Another node took the home meanwhile: use that one.
        Err(_) if held(home) && wait_for_starting(home) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `baro stop`: stops the node running on `home`, waiting until it has
/// exited.
pub fn stop(home: &Path, json: bool) -> Result<()> {
    let socket = home.join(api::SOCKET_NAME);
    let Ok(stream) = UnixStream::connect(&socket) else {
        if json {
            return super::print_json(&serde_json::json!({ "stopped": false, "running": false }));
        }
        println!("no node is running on {}", home.display());
        return Ok(());
    };
    let peer = rustix::net::sockopt::socket_peercred(&stream)
        .context("cannot tell which process runs the node")?;
    drop(stream);
    let pid = peer.pid;
    if peer.uid != rustix::process::getuid() {
        bail!("the node on {} belongs to another user", home.display());
    }
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)
        .with_context(|| format!("cannot stop the node (process {})", pid.as_raw_nonzero()))?;
    let deadline = Instant::now() + STOP_TIMEOUT;
    while is_alive(&proc_dir(pid)) {
        if Instant::now() > deadline {
            bail!(
                "the node (process {}) did not stop within {} s",
                pid.as_raw_nonzero(),
                STOP_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(POLL);
    }
    if json {
        return super::print_json(&serde_json::json!({
            "stopped": true,
            "pid": pid.as_raw_nonzero().get(),
        }));
    }
    println!(
        "stopped the node on {} (process {})",
        home.display(),
        pid.as_raw_nonzero()
    );
    Ok(())
}

fn proc_dir(pid: rustix::process::Pid) -> PathBuf {
    PathBuf::from(format!("/proc/{}", pid.as_raw_nonzero()))
}

/// Whether the process is still there and not a zombie (an exited process
/// nobody has waited for yet: its work is done).
fn is_alive(proc_dir: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // "PID (COMMAND) STATE ...": the command may hold spaces and ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

/// In the background node, at start: leaves the terminal's session and
/// takes the PIN from the pipe the starting command wrote it to.
pub fn become_background() -> Result<()> {
    // Fails only for a process group leader, which this child is not; a
    // node still in the session would at worst get the terminal's hangup.
    let _ = rustix::process::setsid();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the PIN from the starting command")?;
    let pin = line.trim_end_matches(['\r', '\n']);
    if !pin.is_empty() {
        crate::secrets::set_pin(zeroize::Zeroizing::new(pin.to_string()));
    }
    zeroize::Zeroize::zeroize(&mut line);
    Ok(())
}
