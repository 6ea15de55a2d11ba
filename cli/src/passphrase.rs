//! Getting the operator's passphrase: BARO_PASSPHRASE, or a prompt on the terminal.

use std::path::Path;

use anyhow::{Context, Result, bail};
use baro_node::crypto::{CryptoError, Passphrase};
use baro_node::enrollment::{self, EnrollmentError};
use baro_node::store::Home;
use zeroize::Zeroizing;

use crate::secrets;

/// Tries at the terminal before the command gives up (the operator need
/// not retype a long `agency enroll` line for one typo).
const TRIES: u32 = 3;

/// The passphrase of `home`'s agency keys: `BARO_PASSPHRASE` as given, or
/// asked at the terminal until it opens the operator key, up to [`TRIES`]
/// times. Anything else wrong with the keys is left to the command, which
/// says what.
pub fn existing(home: &Path) -> Result<Passphrase> {
    if let Some(from_env) = from_env() {
        return Ok(from_env);
    }
    let opened = Home::open(home)?;
    let mut tries_left = TRIES;
    loop {
        let passphrase = prompt("Operator passphrase: ").map(Passphrase::from_zeroizing)?;
        tries_left -= 1;
        match enrollment::load_operator(&opened, &passphrase) {
            Err(EnrollmentError::Crypto(CryptoError::WrongPassphrase)) if tries_left > 0 => {
                eprintln!(
                    "wrong passphrase; try again ({tries_left} tr{} left)",
                    if tries_left == 1 { "y" } else { "ies" }
                );
            }
            _ => return Ok(passphrase),
        }
    }
}

/// A new passphrase, asked twice when prompting (again when the two
/// differ, up to [`TRIES`] times).
pub fn new() -> Result<Passphrase> {
    if let Some(from_env) = from_env() {
        return Ok(from_env);
    }
    for tries_left in (0..TRIES).rev() {
        let first = prompt("New passphrase for the agency keys: ")?;
        let second = prompt("Repeat the passphrase: ")?;
        if *first == *second {
            return Ok(Passphrase::from_zeroizing(first));
        }
        if tries_left > 0 {
            eprintln!("the two passphrases differ; try again");
        }
    }
    bail!("the two passphrases differ; nothing was created")
}

/// `BARO_PASSPHRASE`, taken from the environment at start.
fn from_env() -> Option<Passphrase> {
    secrets::passphrase().map(Passphrase::from_zeroizing)
}

fn prompt(text: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .context("no passphrase: set BARO_PASSPHRASE or run in a terminal")
}
