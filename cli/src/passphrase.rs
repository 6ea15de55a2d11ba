//! Getting the operator's passphrase: BARO_PASSPHRASE, or a prompt on the terminal.

use anyhow::{Context, Result, bail};
use baro_node::crypto::Passphrase;

const ENV: &str = "BARO_PASSPHRASE";

/// The passphrase for existing key files.
pub fn existing() -> Result<Passphrase> {
    if let Some(from_env) = from_env() {
        return Ok(from_env);
    }
    prompt("Operator passphrase: ")
}

/// A new passphrase, asked twice when prompting.
pub fn new() -> Result<Passphrase> {
    if let Some(from_env) = from_env() {
        return Ok(from_env);
    }
    let first = rpassword::prompt_password("New passphrase for the agency keys: ")
        .context("no passphrase: set BARO_PASSPHRASE or run in a terminal")?;
    let second = rpassword::prompt_password("Repeat the passphrase: ")
        .context("no passphrase: set BARO_PASSPHRASE or run in a terminal")?;
    if first != second {
        bail!("the two passphrases differ; nothing was created");
    }
    Ok(Passphrase::new(first))
}

fn from_env() -> Option<Passphrase> {
    std::env::var(ENV).ok().map(Passphrase::new)
}

fn prompt(text: &str) -> Result<Passphrase> {
    rpassword::prompt_password(text)
        .map(Passphrase::new)
        .context("no passphrase: set BARO_PASSPHRASE or run in a terminal")
}
