//! Unlocking homes: the device PIN from `BARO_PIN` or asked at the
//! terminal (twice for a new one), or a storage key file for services.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use baro_node::crypto::{KdfParams, Passphrase};
use baro_node::store::{MAX_PIN_ATTEMPTS, MIN_PIN_LEN, StoreError, Unlock, UnlockFor};
use zeroize::Zeroizing;

use crate::secrets;

/// Test hook: `1` seals new homes with tiny argon2id costs, so end-to-end
/// tests that start hundreds of processes stay fast. Never for real homes.
pub const FAST_KDF_ENV: &str = "BARO_TEST_FAST_KDF";

const FAST: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// Makes every home this process opens unlock with `key_file`, else with
/// the PIN (asked for only when a home is opened).
pub fn install(key_file: Option<PathBuf>) {
    if let Some(path) = key_file {
        baro_node::store::set_unlock(Unlock::KeyFile(path));
        return;
    }
    let kdf = match std::env::var(FAST_KDF_ENV).as_deref() {
        Ok("1") => FAST,
        _ => KdfParams::PC,
    };
    let known: Mutex<Option<Arc<Unlock>>> = Mutex::new(None);
    baro_node::store::set_unlock_source(move |purpose| {
        let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(unlock) = known.as_ref() {
            return Ok(Arc::clone(unlock));
        }
        let pin = match secrets::pin() {
            Some(pin) => pin,
            None => {
                let pin = ask(purpose)?;
                // Asked once: a node this command starts in the background
                // gets it too ([`existing`]).
                secrets::set_pin(pin.clone());
                pin
            }
        };
        let unlock = Arc::new(Unlock::Pin {
            pin: Passphrase::from_zeroizing(pin),
            kdf,
            max_attempts: MAX_PIN_ATTEMPTS,
        });
        *known = Some(Arc::clone(&unlock));
        Ok(unlock)
    });
}

/// The PIN of an existing home, for a node started in the background:
/// `BARO_PIN` or the one already asked for, else asked at the terminal.
pub fn existing() -> Result<Zeroizing<String>, StoreError> {
    match secrets::pin() {
        Some(pin) => Ok(pin),
        None => ask(UnlockFor::Existing),
    }
}

fn ask(purpose: UnlockFor) -> Result<Zeroizing<String>, StoreError> {
    let prompt = |text: &str| {
        rpassword::prompt_password(text)
            .map(Zeroizing::new)
            .map_err(|_| StoreError::PinRequired)
    };
    match purpose {
        UnlockFor::Existing => prompt("Device PIN: "),
        UnlockFor::New => {
            let first = prompt(&format!(
                "New device PIN or passphrase ({MIN_PIN_LEN} characters or more): "
            ))?;
            let second = prompt("Repeat the PIN: ")?;
            if *first != *second {
                return Err(StoreError::PinMismatch);
            }
            Ok(first)
        }
    }
}
