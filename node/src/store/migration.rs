//! Schema migrations of the sled database, run once when a home is opened.
//!
//! **v1 → v2** (audit M11): v1 kept room ids, timestamps, device keys and
//! message ids in the clear in its record keys; v2 files every record
//! under keyed tags and keeps the readable key inside the sealed value
//! (see [`super::message_log`]). The old database is never changed in
//! place: the new one is written beside it and then swapped in, so that
//! at every moment one complete database exists under a name that says
//! what it is:
//!
//! 1. every v1 record is unsealed, re-filed and sealed again into
//!    `db.v2-partial/`, with schema version 2; flushed, closed, and every
//!    file and directory in it synced;
//! 2. `db.v2-partial/` is renamed `db.v2/`: from now on the copy counts;
//! 3. `db/` is renamed `db.v1/`;
//! 4. `db.v2/` is renamed `db/`;
//! 5. `db.v1/` is destroyed (its files overwritten with zeros, then
//!    removed), so the home's files no longer hold the v1 keys.
//!
//! Every rename is made durable before the next step. A crash anywhere is
//! finished by [`finish_interrupted`] at the next open: a partial copy is
//! discarded (the v1 database is intact, and migrated again), a complete
//! one is put in place, a leftover old one destroyed. Records of the old
//! database that no longer open (damaged on disk) are left behind and
//! counted, as the v1 store's own check at open would have removed them.

use std::fs;
use std::path::Path;

use zeroize::Zeroizing;

use super::home::{remove_dir, rename_durably};
use super::message_log::{Refiled, refile};
use super::sled_store::{CLEAN_KEY, META_TREE, SCHEMA_KEY, open_db, seal_record, unseal_record};
use super::{Home, SCHEMA_VERSION, StoreError};

/// How far [`run`] goes: to the end, or (tests) to a point where a crash
/// is simulated by stopping there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Until {
    /// The whole migration.
    End,
    /// Stop after copying this many records (a crash in step 1).
    #[cfg(test)]
    Records(usize),
    /// Stop after this step (1 to 4).
    #[cfg(test)]
    Step(u8),
}

/// Migrates the database of `home` from schema `from` to the current one.
pub(super) fn run(home: &Home, from: u32, until: Until) -> Result<(), StoreError> {
    if from != 1 {
        return Err(StoreError::SchemaTooOld {
            found: from,
            supported: SCHEMA_VERSION,
        });
    }
    let (partial, new, old) = home.migration_dirs();
    let current = home.database_dir();
    tracing::info!(home = %home.root().display(), "rewriting the database so its keys reveal nothing (schema 1 to 2)");
    remove_dir(&partial)?;
    let (copied, skipped) = match copy_v1(home, &current, &partial, until)? {
        Some(counts) => counts,
        None => return Ok(()),
    };
    // sled syncs its files' data; their directory entries are made durable
    // here, before the copy counts as complete.
    sync_tree(&partial)?;
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "{skipped} damaged records of the old database could not be read and were left behind"
        );
    }
    #[cfg(test)]
    let stop = |step: u8| until == Until::Step(step);
    #[cfg(not(test))]
    let stop = |_: u8| false;
    if stop(1) {
        return Ok(());
    }
    rename_durably(&partial, &new)?;
    if stop(2) {
        return Ok(());
    }
    rename_durably(&current, &old)?;
    if stop(3) {
        return Ok(());
    }
    rename_durably(&new, &current)?;
    if stop(4) {
        return Ok(());
    }
    destroy_dir(&old)?;
    tracing::info!(copied, "database migrated to schema 2");
    Ok(())
}

/// Finishes a migration a crash interrupted (see the module docs); does
/// nothing if there is none.
pub(super) fn finish_interrupted(home: &Home) -> Result<(), StoreError> {
    let (partial, new, old) = home.migration_dirs();
    let current = home.database_dir();
    // An incomplete copy: the old database is still in place.
    remove_dir(&partial)?;
    if new.exists() {
        if current.exists() {
            rename_durably(&current, &old)?;
        }
        rename_durably(&new, &current)?;
    }
    destroy_dir(&old)
}

/// Step 1: every record of the v1 database in `from`, re-filed into a new
/// database in `to`. `None` if stopped early (tests); otherwise how many
/// records were copied and how many could not be read.
fn copy_v1(
    home: &Home,
    from: &Path,
    to: &Path,
    until: Until,
) -> Result<Option<(usize, usize)>, StoreError> {
    let key = home.storage_key();
    let index = key.index_key();
    let old = open_db(home, from)?;
    let new = open_db(home, to)?;
    let (mut copied, mut skipped) = (0, 0);
    for name in old.tree_names() {
        let Ok(tree) = std::str::from_utf8(&name) else {
            continue;
        };
        // The meta tree is written anew below; sled's default tree is unused.
        if tree.starts_with("__") {
            continue;
        }
        let source = old.open_tree(&name)?;
        let target = new.open_tree(&name)?;
        for entry in source.iter() {
            let (old_key, stored) = entry?;
            let Ok(plain) = unseal_record(key, tree, &old_key, &stored) else {
                skipped += 1;
                continue;
            };
            let (new_key, value): (Vec<u8>, Zeroizing<Vec<u8>>) =
                match refile(tree, &old_key, &plain, |parts| Ok(index.tag(parts)))? {
                    Refiled::Keyed { key, value } => (key, value),
                    Refiled::AsIs => (old_key.to_vec(), plain),
                    Refiled::Malformed => {
                        skipped += 1;
                        continue;
                    }
                };
            target.insert(&new_key[..], seal_record(key, tree, &new_key, &value))?;
            copied += 1;
            #[cfg(test)]
            if until == Until::Records(copied) {
                return Ok(None);
            }
        }
    }
    #[cfg(not(test))]
    let _ = until;
    let meta = new.open_tree(META_TREE)?;
    meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_le_bytes())?;
    // Written whole just now: the check after an unclean stop is not needed.
    meta.insert(CLEAN_KEY, &[][..])?;
    new.flush()?;
    Ok(Some((copied, skipped)))
}

/// Syncs every file and directory under `dir`, and `dir` itself.
fn sync_tree(dir: &Path) -> Result<(), StoreError> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let entries = fs::read_dir(&next).map_err(StoreError::io("listing", &next))?;
        for entry in entries {
            let path = entry.map_err(StoreError::io("listing", &next))?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                fs::File::open(&path)
                    .and_then(|file| file.sync_all())
                    .map_err(StoreError::io("syncing", &path))?;
            }
        }
        fs::File::open(&next)
            .and_then(|file| file.sync_all())
            .map_err(StoreError::io("syncing", &next))?;
    }
    Ok(())
}

/// Overwrites every file under `dir` with zeros, then removes it all (the
/// old database's keys are the metadata this migration hides; on flash or
/// copy-on-write storage the overwrite may not reach the old blocks).
fn destroy_dir(dir: &Path) -> Result<(), StoreError> {
    if !dir.exists() {
        return Ok(());
    }
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let entries = fs::read_dir(&next).map_err(StoreError::io("listing", &next))?;
        for entry in entries {
            let path = entry.map_err(StoreError::io("listing", &next))?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                super::home::destroy_file(&path)?;
            }
        }
    }
    remove_dir(dir)
}
