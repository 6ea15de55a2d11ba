//! How a home's storage key is unlocked: by a device PIN or passphrase
//! (argon2id; wrong attempts counted, persisted and limited), or, for
//! services such as relays, by a key file of its own.
//!
//! A process says once how the homes it opens without an explicit
//! [`Unlock`] are unlocked ([`set_unlock_source`]): the `baro` command reads
//! `BARO_PIN` or asks at the terminal, and only when a home is opened.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::crypto::{KdfParams, Passphrase};

use super::StoreError;

/// Fewest characters a new device PIN may have.
pub const MIN_PIN_LEN: usize = 6;

/// Wrong PINs in a row after which the device wipes itself (the default of
/// the agency policy).
pub const MAX_PIN_ATTEMPTS: u32 = 10;

/// Associated data the storage key is sealed with under the PIN.
pub(super) const STORAGE_KEY_PURPOSE: &str = "baro device storage key";

/// The file counting wrong PINs in a row, in the home.
pub(super) const PIN_ATTEMPTS: &str = "pin.attempts";

/// The file holding the agency policy's wrong-PIN limit, in the home: the
/// PIN is checked before the database (where the policy lives) can be
/// opened, so the node copies the limit here whenever it takes a policy.
pub(super) const PIN_LIMIT: &str = "pin.limit";

/// What unlocks a home's storage key.
#[derive(Debug)]
pub enum Unlock {
    /// A PIN or passphrase: the storage key is sealed under a key derived
    /// from it with argon2id.
    Pin {
        /// The PIN.
        pin: Passphrase,
        /// argon2id costs for a new home (an existing one keeps its own).
        kdf: KdfParams,
        /// Wrong PINs in a row after which the home is wiped.
        max_attempts: u32,
    },
    /// The storage key lies in this file, outside the home (services such
    /// as relays, which restart unattended).
    KeyFile(PathBuf),
}

impl Unlock {
    /// A PIN with PC-class costs and the default attempt limit.
    pub fn pin(pin: Passphrase) -> Self {
        Unlock::Pin {
            pin,
            kdf: KdfParams::PC,
            max_attempts: MAX_PIN_ATTEMPTS,
        }
    }
}

/// Whether the home being opened exists or is about to be created: a new
/// PIN is asked twice at a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnlockFor {
    /// An existing home.
    Existing,
    /// A new home, or an old one whose plaintext key gets wrapped now.
    New,
}

type Source = dyn Fn(UnlockFor) -> Result<Arc<Unlock>, StoreError> + Send + Sync;

static SOURCE: RwLock<Option<Arc<Source>>> = RwLock::new(None);

/// Sets how homes opened with [`Home::open`](super::Home::open) and
/// [`Home::open_or_create`](super::Home::open_or_create) are unlocked;
/// called only when a home needs its key.
pub fn set_unlock_source(
    source: impl Fn(UnlockFor) -> Result<Arc<Unlock>, StoreError> + Send + Sync + 'static,
) {
    let mut slot = SOURCE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *slot = Some(Arc::new(source));
}

/// Unlocks every home this process opens with `unlock`.
pub fn set_unlock(unlock: Unlock) {
    let unlock = Arc::new(unlock);
    set_unlock_source(move |_| Ok(Arc::clone(&unlock)));
}

/// The process's unlock for a home.
pub(super) fn process_unlock(purpose: UnlockFor) -> Result<Arc<Unlock>, StoreError> {
    let source = SOURCE
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    match source {
        Some(source) => source(purpose),
        #[cfg(test)]
        None => Ok(Arc::new(Unlock::Pin {
            pin: Passphrase::new("test pin 1234".into()),
            kdf: KdfParams {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            max_attempts: MAX_PIN_ATTEMPTS,
        })),
        #[cfg(not(test))]
        None => Err(StoreError::PinRequired),
    }
}

/// The wrong-PIN limit the agency policy set for the home at `root`, if the
/// node has kept one; else `default` (the unlock's own). Plaintext, like
/// the count: both guard against guessing through this program on the
/// device; a thief who copies the home faces argon2id instead.
pub(super) fn attempt_limit(root: &Path, default: u32) -> u32 {
    fs::read_to_string(root.join(PIN_LIMIT))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|limit| (1..=crate::trust::MAX_PIN_ATTEMPTS).contains(limit))
        .unwrap_or(default)
}

/// Wrong PINs counted so far; an unreadable count leaves one attempt.
pub(super) fn failures(root: &Path, max_attempts: u32) -> u32 {
    match fs::read_to_string(root.join(PIN_ATTEMPTS)) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| max_attempts.saturating_sub(1)),
        Err(_) => 0,
    }
}
