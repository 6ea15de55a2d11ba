//! sled backend: values sealed under the home's storage key, bound to tree
//! and key; [`Store::tag`] keyed under a key derived from it.

use std::sync::{RwLock, RwLockReadGuard};

use std::path::Path;

use super::{Entry, Home, SCHEMA_VERSION, Store, StoreError, check_tree, check_value, migration};
use crate::crypto::{IndexKey, SealedRecord, StorageKey};
use crate::identity::OsEntropy;
use crate::wire;
use zeroize::Zeroizing;

/// Reserved tree holding the (unencrypted) schema version.
pub(super) const META_TREE: &str = "__baro_meta";
pub(super) const SCHEMA_KEY: &[u8] = b"schema_version";
/// Present while the database is closed after a clean stop; removed (and
/// flushed) at every open, so its absence at open means the last run died
/// (a crash, a kill, a power cut) and the records are checked.
pub(super) const CLEAN_KEY: &[u8] = b"closed_cleanly";

/// A [`Store`] on sled in the home's `db/` directory. Owns the [`Home`] so
/// that [`Store::wipe`] can destroy key, database and identity in order.
#[derive(Debug)]
pub struct SledStore {
    inner: RwLock<Option<Open>>,
    /// What could not be read when the store was opened (removed since).
    damage: Option<String>,
}

#[derive(Debug)]
pub(super) struct Open {
    pub(super) db: sled::Db,
    home: Home,
    /// Key of the tags that stand in for identifying parts of record keys.
    index: IndexKey,
}

/// Tries to open a locked database, and the wait between them.
const LOCK_ATTEMPTS: u32 = 20;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Opens the sled database in `dir` (of `home`).
pub(super) fn open_db(home: &Home, dir: &Path) -> Result<sled::Db, StoreError> {
    // A database this process just let go may stay locked for a moment
    // (sled's background writes still hold its file): try again for a
    // short while before saying another process has it.
    let mut attempts = 0;
    loop {
        match sled::open(dir) {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(io))
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                attempts += 1;
                if attempts >= LOCK_ATTEMPTS {
                    return Err(StoreError::Locked(home.root().to_path_buf()));
                }
                std::thread::sleep(LOCK_RETRY);
            }
            Err(sled::Error::Corruption { .. }) => {
                return Err(StoreError::Damaged(dir.to_path_buf()));
            }
            Err(other) => return Err(StoreError::Database(other)),
        }
    }
}

/// Locks the home directory (flock) while its database is opened, so that
/// two processes never rearrange its database directories at once (a
/// migration, or finishing one); the lock goes with the returned file.
fn lock_home(home: &Home) -> Result<std::fs::File, StoreError> {
    use fs2::FileExt;
    let root = home.root();
    let dir = std::fs::File::open(root).map_err(StoreError::io("opening", root))?;
    let mut attempts = 0;
    loop {
        match dir.try_lock_exclusive() {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == fs2::lock_contended_error().kind() => {
                attempts += 1;
                if attempts >= LOCK_ATTEMPTS {
                    return Err(StoreError::Locked(root.to_path_buf()));
                }
                std::thread::sleep(LOCK_RETRY);
            }
            Err(e) => return Err(StoreError::io("locking", root)(e)),
        }
    }
}

/// The schema version recorded in a database's meta tree, if any.
pub(super) fn read_version(meta: &sled::Tree) -> Result<Option<u32>, StoreError> {
    meta.get(SCHEMA_KEY)?
        .map(|bytes| {
            <[u8; 4]>::try_from(bytes.as_ref())
                .map(u32::from_le_bytes)
                .map_err(|_| StoreError::Corrupt {
                    path: "database schema version".into(),
                    source: wire::WireError::Truncated { len: bytes.len() },
                })
        })
        .transpose()
}

impl SledStore {
    /// Opens (or creates) the database of `home` and checks its schema
    /// version; a database of an older schema is migrated first (and a
    /// migration a crash interrupted is finished), see `migration`.
    pub fn open(home: Home) -> Result<Self, StoreError> {
        let home_lock = lock_home(&home)?;
        migration::finish_interrupted(&home)?;
        let mut db = open_db(&home, &home.database_dir())?;
        let mut meta = db.open_tree(META_TREE)?;
        match read_version(&meta)? {
            Some(found) if found > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(found) if found < SCHEMA_VERSION => {
                drop(meta);
                drop(db);
                migration::run(&home, found, migration::Until::End)?;
                db = open_db(&home, &home.database_dir())?;
                meta = db.open_tree(META_TREE)?;
            }
            Some(_) => {}
            None => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_le_bytes())?;
                meta.flush()?;
            }
        }
        drop(home_lock);
        let closed_cleanly = meta.remove(CLEAN_KEY)?.is_some();
        meta.flush()?;
        let index = home.storage_key().index_key();
        let open = Open { db, home, index };
        let damage = if closed_cleanly {
            None
        } else {
            open.remove_damaged()?
        };
        if let Some(damage) = &damage {
            tracing::warn!("{damage}");
        }
        Ok(SledStore {
            inner: RwLock::new(Some(open)),
            damage,
        })
    }

    /// One line saying which records could not be read when the store was
    /// opened after an unclean stop (a power cut, a kill, a damaged disk);
    /// they were removed, so the node starts with everything else. `None` if
    /// all were readable or the last stop was clean (nothing is checked then).
    pub fn damage(&self) -> Option<&str> {
        self.damage.as_deref()
    }

    pub(super) fn read(&self) -> RwLockReadGuard<'_, Option<Open>> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with<R>(&self, f: impl FnOnce(&Open) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let guard = self.read();
        let open = guard.as_ref().ok_or(StoreError::Wiped)?;
        f(open)
    }
}

impl Drop for SledStore {
    /// A store let go normally (not killed) records that it closed cleanly,
    /// so the next open skips checking every record.
    fn drop(&mut self) {
        let open = self
            .inner
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(open) = open.as_ref() {
            let marked = open
                .db
                .open_tree(META_TREE)
                .and_then(|meta| meta.insert(CLEAN_KEY, &[][..]))
                .and_then(|_| open.db.flush());
            if let Err(e) = marked {
                tracing::warn!(error = %e, "could not record a clean stop");
            }
        }
    }
}

/// Associated data binding a sealed value to its place.
fn aad(tree: &str, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(tree.len() + 1 + key.len());
    aad.extend_from_slice(tree.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key);
    aad
}

impl Open {
    /// Reads every record once; those that no longer open (damaged on disk)
    /// are removed and counted per tree.
    fn remove_damaged(&self) -> Result<Option<String>, StoreError> {
        let mut damaged = Vec::new();
        for name in self.db.tree_names() {
            let Ok(tree_name) = std::str::from_utf8(&name) else {
                continue;
            };
            if tree_name.starts_with("__") {
                continue;
            }
            let tree = self.db.open_tree(&name)?;
            let mut bad = Vec::new();
            for entry in tree.iter() {
                let (key, stored) = entry?;
                if self.unseal(tree_name, &key, &stored).is_err() {
                    bad.push(key);
                }
            }
            for key in &bad {
                tree.remove(key)?;
            }
            if !bad.is_empty() {
                damaged.push(format!("{} in '{tree_name}'", bad.len()));
            }
        }
        if damaged.is_empty() {
            return Ok(None);
        }
        self.db.flush()?;
        Ok(Some(format!(
            "the store in {} had damaged records that could not be read and were removed ({}); \
             everything else is intact",
            self.home.database_dir().display(),
            damaged.join(", ")
        )))
    }

    fn seal(&self, tree: &str, key: &[u8], value: &[u8]) -> Vec<u8> {
        seal_record(self.home.storage_key(), tree, key, value)
    }

    /// The plaintext in zeroized memory. [`Store::get`] and
    /// [`Store::scan_prefix`] hand this very buffer over (moved, not copied),
    /// so a caller that keeps a secret in it (room keys) wraps it again and
    /// no copy is left behind un-erased.
    fn unseal(
        &self,
        tree: &str,
        key: &[u8],
        stored: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        unseal_record(self.home.storage_key(), tree, key, stored)
    }
}

/// `value` sealed under `storage_key`, bound to its tree and key.
pub(super) fn seal_record(
    storage_key: &StorageKey,
    tree: &str,
    key: &[u8],
    value: &[u8],
) -> Vec<u8> {
    let sealed = storage_key.seal(&aad(tree, key), value, &mut OsEntropy);
    wire::encode(&SealedRecord(sealed))
}

/// What [`seal_record`] sealed, in zeroized memory.
pub(super) fn unseal_record(
    storage_key: &StorageKey,
    tree: &str,
    key: &[u8],
    stored: &[u8],
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let record = wire::decode::<SealedRecord>(stored).map_err(|source| StoreError::Corrupt {
        path: format!("record in tree '{tree}'"),
        source,
    })?;
    Ok(storage_key.open(&aad(tree, key), &record.0, "stored record")?)
}

/// The buffer itself out of its zeroizing wrapper (the wrapper is left
/// empty): moved, not copied.
fn take(mut plain: Zeroizing<Vec<u8>>) -> Vec<u8> {
    std::mem::take(&mut *plain)
}

impl Store for SledStore {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_tree(tree)?;
        self.with(|open| {
            open.db
                .open_tree(tree)?
                .get(key)?
                .map(|stored| open.unseal(tree, key, &stored).map(take))
                .transpose()
        })
    }

    fn insert(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        check_tree(tree)?;
        check_value(value)?;
        self.with(|open| {
            open.db
                .open_tree(tree)?
                .insert(key, open.seal(tree, key, value))?;
            Ok(())
        })
    }

    fn remove(&self, tree: &str, key: &[u8]) -> Result<bool, StoreError> {
        check_tree(tree)?;
        self.with(|open| Ok(open.db.open_tree(tree)?.remove(key)?.is_some()))
    }

    fn scan_prefix(
        &self,
        tree: &str,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        check_tree(tree)?;
        self.with(|open| {
            open.db
                .open_tree(tree)?
                .scan_prefix(prefix)
                .take(limit)
                .map(|entry| {
                    let (key, stored) = entry?;
                    let value = take(open.unseal(tree, &key, &stored)?);
                    Ok((key.to_vec(), value))
                })
                .collect()
        })
    }

    fn tag(&self, parts: &[&[u8]]) -> Result<[u8; 32], StoreError> {
        self.with(|open| Ok(open.index.tag(parts)))
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        self.with(|open| {
            let bytes = open.db.open_tree(META_TREE)?.get(SCHEMA_KEY)?;
            Ok(bytes
                .and_then(|b| <[u8; 4]>::try_from(b.as_ref()).ok())
                .map(u32::from_le_bytes)
                .unwrap_or(0))
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.with(|open| {
            open.db.flush()?;
            Ok(())
        })
    }

    fn keep_pin_limit(&self, attempts: u32) -> Result<(), StoreError> {
        self.with(|open| open.home.keep_pin_limit(attempts))
    }

    fn wipe(&self, notice: Option<&str>) -> Result<(), StoreError> {
        let open = self
            .inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        match open {
            Some(Open { db, home, index }) => {
                drop(index);
                // sled keeps files open until the last handle drops.
                drop(db);
                home.wipe(notice)
            }
            None => Ok(()),
        }
    }
}
