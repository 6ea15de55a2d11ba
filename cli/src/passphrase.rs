//! Getting the operator's passphrase: BARO_PASSPHRASE, or a prompt on the terminal.

use anyhow::{Context, Result, bail};
use baro_node::crypto::Passphrase;
use zeroize::Zeroizing;

use crate::secrets;

/// The passphrase for existing key files.
pub fn existing() -> Result<Passphrase> {
    if let Some(from_env) = from_env() {
        return Ok(from_env);
    }
    prompt("Operator passphrase: ").map(Passphrase::from_zeroizing)
}

/// A new passphrase, asked twice when prompting.
pub fn new() -> Result<Passphrase> {
    if let Some(from_env) = from_env() {
        return Ok(from_env);
    }
    let first = prompt("New passphrase for the agency keys: ")?;
    let second = prompt("Repeat the passphrase: ")?;
    if *first != *second {
        bail!("the two passphrases differ; nothing was created");
    }
    Ok(Passphrase::from_zeroizing(first))
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
