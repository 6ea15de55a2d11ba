//! End-to-end test support: run the real `baro` binary against real homes.
//!
//! The tests themselves live in `tests/tests/`; `cli/tests/` uses the same
//! helpers for the command's error handling.

pub mod browser;
pub mod crash;
pub mod history;
pub mod mesh;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The texts of a `history --json` answer, oldest first.
pub fn texts(history: &serde_json::Value) -> Vec<String> {
    history
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter_map(|m| m["text"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Passphrase used for agency keys in tests.
pub const PASSPHRASE: &str = "test passphrase, long enough";

/// Device PIN every test home is locked with (`BARO_PIN` of every `baro`
/// the helpers start).
pub const PIN: &str = "test pin 2468";

/// Unlocks a home opened inside the test process itself with [`PIN`], with
/// tiny argon2id costs (as `baro` under `BARO_TEST_FAST_KDF=1`).
pub fn test_unlock() -> baro_node::store::Unlock {
    baro_node::store::Unlock::Pin {
        pin: baro_node::crypto::Passphrase::new(PIN.into()),
        kdf: baro_node::crypto::KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        max_attempts: baro_node::store::MAX_PIN_ATTEMPTS,
    }
}

/// Finds the `baro` binary: `BARO_BIN`, else next to this test executable's
/// directory (`target/<profile>/baro`), building it if it is not there yet.
pub fn baro_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("BARO_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join("baro");
    if !bin.exists() {
        let release = profile_dir.ends_with("release");
        let mut build = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        build.args(["build", "-p", "baro-cli", "--bin", "baro"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build for baro");
        assert!(status.success(), "building baro failed");
    }
    bin
}

/// A `baro` invocation's result.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status.
    pub output: Output,
}

impl Outcome {
    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn success(&self) -> String {
        assert!(
            self.output.status.success(),
            "baro failed: {}\nstdout: {}",
            self.stderr(),
            self.stdout()
        );
        self.stdout()
    }

    /// Asserts success and parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        let out = self.success();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// Asserts failure with a one-line `error: …` message containing `needle`,
    /// and no panic or backtrace.
    #[track_caller]
    pub fn fails_with(&self, needle: &str) {
        let err = self.stderr();
        assert!(
            !self.output.status.success(),
            "baro unexpectedly succeeded: {}",
            self.stdout()
        );
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "panic: {err}"
        );
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
        assert!(lines[0].starts_with("error: "), "not an error line: {err}");
        assert!(
            lines[0].to_lowercase().contains(&needle.to_lowercase()),
            "error does not mention '{needle}': {err}"
        );
    }
}

/// Runs `baro` with a given binary, home and passphrase.
#[derive(Debug, Clone)]
pub struct Baro {
    bin: PathBuf,
    home: PathBuf,
    passphrase: Option<String>,
    pin: Option<String>,
    env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
}

impl Baro {
    /// `baro --home home`, with the test passphrase in the environment.
    pub fn new(bin: impl Into<PathBuf>, home: impl Into<PathBuf>) -> Self {
        Baro {
            bin: bin.into(),
            home: home.into(),
            passphrase: Some(PASSPHRASE.into()),
            pin: Some(PIN.into()),
            env: Vec::new(),
        }
    }

    /// The same home, with `key=value` added to the environment of every
    /// command run or spawned from the copy (e.g. a test hook).
    pub fn with_env(
        &self,
        key: impl AsRef<std::ffi::OsStr>,
        value: impl AsRef<std::ffi::OsStr>,
    ) -> Self {
        let mut copy = self.clone();
        copy.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        copy
    }

    /// The same home with another passphrase (`None`: not set at all).
    pub fn with_passphrase(&self, passphrase: Option<&str>) -> Self {
        Baro {
            passphrase: passphrase.map(str::to_string),
            ..self.clone()
        }
    }

    /// The same home with another device PIN (`None`: not set at all).
    pub fn with_pin(&self, pin: Option<&str>) -> Self {
        Baro {
            pin: pin.map(str::to_string),
            ..self.clone()
        }
    }

    /// The node's home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Starts `baro --home HOME args…` in the background, its output to a
    /// file of its own in the home's parent (two processes of one home, such
    /// as `run` and `watch`, sharing a file overwrote each other's lines).
    ///
    /// A node (`run`, `relay`, `app`) is returned once its process holds the
    /// home or has ended: a command run right after it then finds it, as a
    /// user's next command would. Within the milliseconds of its exec,
    /// nothing on disk says a node is coming, and `send`, `history` or
    /// `chat` would start one of their own in the background.
    pub fn spawn<I, S>(&self, args: I) -> RunningNode
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        static SPAWNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.home.with_extension(format!("{n}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let args: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let node = args
            .iter()
            .find(|a| !a.to_string_lossy().starts_with('-'))
            .is_some_and(|command| ["run", "relay", "app"].contains(&&*command.to_string_lossy()));
        let child = self
            .command(&args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start baro");
        let mut running = RunningNode { child, log };
        if node {
            self.wait_until_held_or_ended(&mut running.child);
        }
        running
    }

    /// Waits until a node process holds this home (its `node.lock`, taken
    /// at the very start of `baro run`, before the store is unlocked) or
    /// `child` has ended.
    fn wait_until_held_or_ended(&self, child: &mut std::process::Child) {
        let path = self.home.join("node.lock");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let held = std::fs::File::open(&path).is_ok_and(|file| {
                rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared).is_err()
            });
            if held || !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the node took no hold of {} within 30 s",
                path.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(&self.bin);
        command
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .env_remove("BARO_HOME")
            .env_remove("BARO_PASSPHRASE")
            .env_remove("BARO_PIN")
            .env_remove("BARO_STORAGE_KEY_FILE")
            .env("BARO_TEST_FAST_KDF", "1")
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null());
        if let Some(passphrase) = &self.passphrase {
            command.env("BARO_PASSPHRASE", passphrase);
        }
        if let Some(pin) = &self.pin {
            command.env("BARO_PIN", pin);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `baro --home HOME args…` with no stdin.
    pub fn run<I, S>(&self, args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Outcome {
            output: self.command(args).output().expect("run baro"),
        }
    }

    /// Runs `baro --home HOME args…` with `input` as its stdin (then EOF).
    pub fn run_with_input<I, S>(&self, args: I, input: &str) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start baro");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        Outcome {
            output: child.wait_with_output().expect("run baro"),
        }
    }
}

/// Creates an agency in `operator`'s home (the operator is `park`, at MOIS).
pub fn init_agency(operator: &Baro, name: &str) -> serde_json::Value {
    operator
        .run([
            "--json",
            "agency",
            "init",
            "--name",
            name,
            "--user",
            "park",
            "--display-name",
            "Park Jiwoo",
            "--org",
            "MOIS",
        ])
        .json()
}

/// A labelled device of `name` in `dir/home`: `device init --name NAME
/// --label LABEL`, `agency enroll --user USER --org ORG` on `operator`,
/// `device install`; returns the device and its id.
pub fn enroll_labelled(
    operator: &Baro,
    dir: &Path,
    home: &str,
    (user, name, org): (&str, &str, &str),
    label: &str,
) -> (Baro, String) {
    let device = Baro::new(baro_bin(), dir.join(home)).with_passphrase(None);
    let request = dir.join(format!("{home}.request"));
    let bundle = dir.join(format!("{home}.bundle"));
    let init = device
        .run(args(
            &[
                "--json", "device", "init", "--name", name, "--label", label, "--out",
            ],
            &[&request],
        ))
        .json();
    assert_eq!(init["label"], label, "{init}");
    operator
        .run(args(
            &["agency", "enroll", "--user", user, "--org", org, "--out"],
            &[&bundle, &request],
        ))
        .success();
    device
        .run(args(&["device", "install"], &[&bundle]))
        .success();
    let id = init["device_id"].as_str().expect("device id").to_string();
    (device, id)
}

/// `agency init` of the usability walkthrough's Korean agency: 행정안전부,
/// run by operator 박지우 (park.jiwoo) of `org`, with `extra` options.
pub fn init_korean_agency(operator: &Baro, org: &str, extra: &[&str]) -> Outcome {
    let mut words = vec![
        "agency",
        "init",
        "--name",
        "행정안전부",
        "--user",
        "park.jiwoo",
        "--display-name",
        "박지우",
        "--org",
        org,
    ];
    words.extend_from_slice(extra);
    operator.run(words)
}

/// `device init` in `device`'s home, then `agency enroll` on `operator`, then
/// `device install`; returns `whoami --json` of the device.
pub fn enroll_device(
    operator: &Baro,
    device: &Baro,
    dir: &Path,
    user: &str,
    org: &str,
    role: &str,
) -> serde_json::Value {
    let request = dir.join(format!("{user}.request"));
    let bundle = dir.join(format!("{user}.bundle"));
    let name = format!("Official {user}");
    device
        .run(args(
            &["device", "init", "--name", &name, "--out"],
            &[&request],
        ))
        .success();
    operator
        .run(args(
            &[
                "agency", "enroll", "--user", user, "--org", org, "--role", role, "--out",
            ],
            &[&bundle, &request],
        ))
        .success();
    device
        .run(args(&["device", "install"], &[&bundle]))
        .success();
    device.run(["--json", "whoami"]).json()
}

/// An agency (operator `park`) with one member device per user, all in
/// `org`; returns the operator and the devices in the order of `users`.
pub fn agency_with<const N: usize>(dir: &Path, org: &str, users: [&str; N]) -> (Baro, [Baro; N]) {
    let bin = baro_bin();
    let operator = Baro::new(&bin, dir.join("console"));
    init_agency(&operator, "MOIS");
    let devices = users.map(|user| {
        let device = Baro::new(&bin, dir.join(user)).with_passphrase(None);
        enroll_device(&operator, &device, dir, user, org, "member");
        device
    });
    (operator, devices)
}

/// Starts `baro run` on loopback (no mDNS, a sync round every second),
/// connecting to `bootstrap` if given.
pub fn start_on_loopback(device: &Baro, bootstrap: Option<&str>) -> RunningNode {
    let mut args = vec![
        "run",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
        "--sync-interval",
        "1",
    ];
    if let Some(address) = bootstrap {
        args.extend(["--bootstrap", address]);
    }
    device.spawn(args)
}

/// The first address a running node listens on (asked with `status`).
#[track_caller]
pub fn listen_address(device: &Baro) -> String {
    eventually(30, "node listening", || {
        let status = device.run(["--json", "status"]);
        status
            .output
            .status
            .success()
            .then(|| status.json()["listen"][0].as_str().map(str::to_string))?
    })
}

/// Builds an argument list: words, then paths.
pub fn args(words: &[&str], paths: &[&Path]) -> Vec<std::ffi::OsString> {
    words
        .iter()
        .map(std::ffi::OsString::from)
        .chain(paths.iter().map(|p| p.as_os_str().to_owned()))
        .collect()
}

/// A `baro run` (or `baro relay`) process; killed if dropped while running.
#[derive(Debug)]
pub struct RunningNode {
    child: std::process::Child,
    log: PathBuf,
}

impl RunningNode {
    /// The process id (to read its `/proc` entries).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and returns whether the process then exited successfully.
    pub fn stop(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }

    /// Kills the process with SIGKILL (no chance to clean up) and waits for it.
    pub fn kill9(&mut self) -> std::process::ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("wait for the killed baro")
    }

    /// Waits up to `secs` seconds for the process to exit on its own;
    /// `None` if it is still running then.
    pub fn wait_exit(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `secs` seconds.
#[track_caller]
pub fn eventually<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Starts `baro run` on loopback (no mDNS) whose periodic sync comes only
/// every `sync_secs` seconds, connecting to `bootstrap` if given: with a long
/// interval, only what the node does on events (admission, subscription, a
/// new message) can deliver anything within a test.
pub fn start_with_sync_interval(
    device: &Baro,
    bootstrap: Option<&str>,
    sync_secs: u64,
) -> RunningNode {
    let interval = sync_secs.to_string();
    let mut args = vec![
        "run",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
        "--sync-interval",
        &interval,
    ];
    if let Some(address) = bootstrap {
        args.extend(["--bootstrap", address]);
    }
    device.spawn(args)
}

/// Whether a `watch --json` process printed a message with this text.
pub fn watch_shows(watch: &RunningNode, text: &str) -> bool {
    watch
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .any(|m| m["text"] == text)
}

/// Polls `check` every 10 ms until it holds and returns how long that took
/// from `since`, or `None` if it still does not hold after `limit`.
pub fn time_until(
    since: std::time::Instant,
    limit: std::time::Duration,
    mut check: impl FnMut() -> bool,
) -> Option<std::time::Duration> {
    loop {
        if check() {
            return Some(since.elapsed());
        }
        if since.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Runs every device's node on loopback until each has met the others
/// (holds their certificates), then stops them: officials who have met
/// can name each other in groups and 1:1 rooms while apart later (a user
/// this device does not know is refused).
pub fn introduce(devices: &[&Baro]) {
    let Some((first, others)) = devices.split_first() else {
        return;
    };
    let first_node = start_on_loopback(first, None);
    let address = listen_address(first);
    let nodes: Vec<RunningNode> = others
        .iter()
        .map(|device| start_on_loopback(device, Some(&address)))
        .collect();
    for device in devices {
        eventually(60, "the devices met", || {
            let status = device.run(["--json", "status"]);
            (status.output.status.success()
                && status.json()["devices_met"].as_u64() >= Some(others.len() as u64))
            .then_some(())
        });
    }
    for node in nodes {
        assert!(node.stop(), "a node stops cleanly");
    }
    assert!(first_node.stop(), "a node stops cleanly");
}
