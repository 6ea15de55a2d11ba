//! Secrets handed to `baro` in its environment (`BARO_PIN`,
//! `BARO_PASSPHRASE`): taken once at start, before any thread exists, and
//! removed, so that nothing the process starts inherits them and they are
//! not read again from the environment; kept zeroized until used.
//! Also: no core dumps for this process (they would hold the keys).

use std::sync::Mutex;

use zeroize::Zeroizing;

/// The device PIN variable.
pub const PIN_ENV: &str = "BARO_PIN";
/// The operator passphrase variable.
pub const PASSPHRASE_ENV: &str = "BARO_PASSPHRASE";

static PIN: Mutex<Option<Zeroizing<String>>> = Mutex::new(None);
static PASSPHRASE: Mutex<Option<Zeroizing<String>>> = Mutex::new(None);

/// Moves `BARO_PIN` and `BARO_PASSPHRASE` out of the environment. Call
/// first thing in `main`, while the process has one thread.
pub fn take_from_environment() {
    for (name, slot) in [(PIN_ENV, &PIN), (PASSPHRASE_ENV, &PASSPHRASE)] {
        let Some(value) = std::env::var_os(name) else {
            continue;
        };
        remove_from_environment(name);
        let value = Zeroizing::new(value.to_string_lossy().into_owned());
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
    }
}

#[allow(unsafe_code)]
fn remove_from_environment(name: &str) {
    // SAFETY: called from `take_from_environment`, at the start of `main`
    // before any other thread is started, so nothing reads the environment
    // concurrently.
    unsafe { std::env::remove_var(name) }
}

/// The PIN given in `BARO_PIN`, if any (it stays available for every home
/// this process opens).
pub fn pin() -> Option<Zeroizing<String>> {
    PIN.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Keeps `pin` as if it had come in `BARO_PIN` (the background node gets
/// it on a pipe from the command that started it).
pub fn set_pin(pin: Zeroizing<String>) {
    *PIN.lock().unwrap_or_else(|p| p.into_inner()) = Some(pin);
}

/// The passphrase given in `BARO_PASSPHRASE`, if any.
pub fn passphrase() -> Option<Zeroizing<String>> {
    PASSPHRASE.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Turns off core dumps and ptrace-style attachment by other processes of
/// the same user: a crash must not leave keys in a core file.
pub fn forbid_core_dumps() {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = setrlimit(Resource::Core, none) {
        tracing::warn!("could not turn off core dumps: {e}");
    }
    if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        tracing::warn!("could not mark the process non-dumpable: {e}");
    }
}
