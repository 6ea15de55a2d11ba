//! Reading request and bundle files given on the command line, and writing new ones.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Larger than any request or bundle; bigger files are refused unread.
const MAX_INPUT_LEN: u64 = 64 * 1024;

/// Reads a small input file; `what` names it in errors.
pub fn read_input(path: &Path, what: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if !meta.is_file() {
        bail!("{what} {} is not a file", path.display());
    }
    if meta.len() > MAX_INPUT_LEN {
        bail!(
            "{what} {} is {} bytes, too large to be one (limit {MAX_INPUT_LEN})",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Writes a new owner-only file; refuses to overwrite an existing one.
pub fn write_new(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            if path.exists() {
                format!(
                    "{} already exists; choose another path for the {what} or remove it",
                    path.display()
                )
            } else {
                format!("cannot create {what} {}", path.display())
            }
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {what} {}", path.display()))
}
