//! The node's home directory: layout, the storage key sealed under the
//! device PIN (see [`unlock`](super::unlock)), sealed identity and agency
//! files, and the wipe sequence.
//!
//! ```text
//! HOME/storage.sealed     the storage key sealed under the device PIN (argon2id);
//!                         destroying it shreds the rest. Services may keep the key
//!                         in a file of their own outside the home instead
//! HOME/pin.attempts       wrong PINs in a row (the last allowed one wipes the home)
//! HOME/pin.limit          the agency policy's wrong-PIN limit (default 10), kept by the node
//! HOME/db/                sled database, every value sealed under the storage key,
//!                         every key a keyed hash (schema v2, see `store`)
//! HOME/db.v2-partial/     only while a schema v1 database is rewritten, with
//! HOME/db.v2/, db.v1/     the steps of that rewrite (see `migration`)
//! HOME/identity/*         device key and installed bundle, sealed under the storage key
//! HOME/agency/*           operator homes only: root and operator keys (passphrase-sealed,
//!                         then storage-sealed) and the operator's chain
//! HOME/agency/issued/*    operator homes only: each device chain `agency enroll` issued
//! HOME/wipe.intent        present only while a wipe is in progress
//! HOME/revoked            after a wipe ordered by a revocation: by whom and when
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::StoreError;
use super::unlock::{
    self, MIN_PIN_LEN, PIN_ATTEMPTS, PIN_LIMIT, STORAGE_KEY_PURPOSE, Unlock, UnlockFor,
    process_unlock,
};
use crate::crypto::{CryptoError, KdfParams, Passphrase, PassphraseSealed, SealedFile, StorageKey};
use crate::identity::{DeviceId, Entropy, OsEntropy};
use crate::wire;

/// An old home's storage key in plaintext (migrated on first unlock).
const STORAGE_KEY: &str = "storage.key";
/// The storage key sealed under the device PIN.
const SEALED_KEY: &str = "storage.sealed";
const DATABASE: &str = "db";
/// A schema migration's new database while it is written (discarded if
/// found at start), once complete, and the old one on its way out.
const DATABASE_PARTIAL: &str = "db.v2-partial";
const DATABASE_NEW: &str = "db.v2";
const DATABASE_OLD: &str = "db.v1";
const WIPE_INTENT: &str = "wipe.intent";
const REVOKED: &str = "revoked";
const WIPE_INTENT_HEADER: &str = "wipe in progress\n";
/// Test hook: milliseconds to pause between the steps of a wipe, so an
/// end-to-end test can kill the process in the middle of one.
pub const WIPE_STEP_DELAY_ENV: &str = "BARO_TEST_WIPE_STEP_DELAY_MS";
const IDENTITY_DIR: &str = "identity";
const AGENCY_DIR: &str = "agency";
/// Operator homes: the chains issued by `agency enroll`, one file per device.
const ISSUED_DIR: &str = "agency/issued";
/// Most issued chains read back (an operator enrolling a whole ministry).
pub const MAX_ISSUED: usize = 262_144;

/// A file in the home, sealed under the storage key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HomeFile {
    /// The device's ed25519 secret key.
    DeviceKey,
    /// The installed enrollment bundle (certificate chain, agency, network key).
    Bundle,
    /// The agency root key, passphrase-sealed inside (operator homes only).
    RootKey,
    /// The operator's signing key, passphrase-sealed inside.
    OperatorKey,
    /// The operator's certificate chain.
    OperatorChain,
    /// The device's label ("PC", "휴대폰"), as its owner set it.
    Label,
}

impl HomeFile {
    /// Path relative to the home; also the associated data it is sealed with,
    /// so one file's content cannot be swapped for another's.
    fn relative(self) -> &'static str {
        match self {
            HomeFile::DeviceKey => "identity/device.key",
            HomeFile::Bundle => "identity/bundle",
            HomeFile::RootKey => "agency/root.key",
            HomeFile::OperatorKey => "agency/operator.key",
            HomeFile::OperatorChain => "agency/operator.chain",
            HomeFile::Label => "identity/label",
        }
    }
}

/// An opened home directory holding its storage key.
#[derive(Debug)]
pub struct Home {
    root: PathBuf,
    storage_key: StorageKey,
    /// The key file it was unlocked with, if not a PIN: a wipe destroys it.
    key_file: Option<PathBuf>,
}

impl Home {
    /// Opens the home at `root`, creating the directory and a storage key if
    /// this is a new home, unlocked as the process says
    /// ([`set_unlock_source`](super::set_unlock_source)). An interrupted
    /// wipe is finished first.
    pub fn open_or_create(root: &Path) -> Result<Home, StoreError> {
        Self::finish_interrupted_wipe(root)?;
        Self::refuse_if_revoked(root)?;
        let purpose = if is_new(root) || needs_wrapping(root) {
            UnlockFor::New
        } else {
            UnlockFor::Existing
        };
        Self::open_or_create_with(root, &*process_unlock(purpose)?)
    }

    /// [`open_or_create`](Self::open_or_create) with an explicit unlock.
    pub fn open_or_create_with(root: &Path, unlock: &Unlock) -> Result<Home, StoreError> {
        Self::finish_interrupted_wipe(root)?;
        Self::refuse_if_revoked(root)?;
        create_private_dir(root)?;
        if is_new(root) {
            match unlock {
                Unlock::Pin { pin, kdf, .. } => {
                    let key = StorageKey::generate(&mut OsEntropy);
                    write_sealed_key(root, &key, pin, *kdf)?;
                }
                Unlock::KeyFile(path) if !path.exists() => {
                    let key = StorageKey::generate(&mut OsEntropy);
                    write_atomic(path, &Zeroizing::new(wire::encode(&key)))?;
                }
                Unlock::KeyFile(_) => {}
            }
        }
        Self::open_with(root, unlock)
    }

    /// Opens an existing home, unlocked as the process says; fails with a
    /// clear error if there is none, or if other users can reach it.
    pub fn open(root: &Path) -> Result<Home, StoreError> {
        Self::finish_interrupted_wipe(root)?;
        Self::refuse_if_revoked(root)?;
        if is_new(root) {
            return Err(StoreError::NoHome(root.to_path_buf()));
        }
        let purpose = if needs_wrapping(root) {
            UnlockFor::New
        } else {
            UnlockFor::Existing
        };
        Self::open_with(root, &*process_unlock(purpose)?)
    }

    /// [`open`](Self::open) with an explicit unlock. A wrong PIN counts
    /// (persisted before the check); the last allowed one wipes the home.
    /// An old home whose storage key lies in plaintext is migrated: the key
    /// is sealed under the PIN and the plaintext file destroyed.
    pub fn open_with(root: &Path, unlock: &Unlock) -> Result<Home, StoreError> {
        Self::finish_interrupted_wipe(root)?;
        Self::refuse_if_revoked(root)?;
        let sealed_path = root.join(SEALED_KEY);
        let plain_path = root.join(STORAGE_KEY);
        let has_data = root.join(DATABASE).exists() || root.join(IDENTITY_DIR).exists();
        let (storage_key, key_file) = match unlock {
            Unlock::KeyFile(path) => {
                if sealed_path.exists() {
                    return Err(StoreError::PinLocked(root.to_path_buf()));
                }
                if plain_path.exists() {
                    return Err(StoreError::PlaintextKey {
                        key: plain_path,
                        key_file: path.clone(),
                    });
                }
                if !path.exists() && !has_data {
                    return Err(StoreError::NoHome(root.to_path_buf()));
                }
                refuse_if_not_private(root)?;
                (read_key_file(path)?, Some(path.clone()))
            }
            Unlock::Pin {
                pin,
                kdf,
                max_attempts,
            } => {
                if !sealed_path.exists() {
                    if !plain_path.exists() {
                        return Err(match has_data {
                            true => StoreError::MissingStorageKey(root.to_path_buf()),
                            false => StoreError::NoHome(root.to_path_buf()),
                        });
                    }
                    refuse_if_not_private(root)?;
                    let key = read_key_file(&plain_path)?;
                    write_sealed_key(root, &key, pin, *kdf)?;
                    tracing::info!(home = %root.display(), "the storage key is now sealed under the PIN");
                }
                refuse_if_not_private(root)?;
                // Left by a migration that stopped before destroying it.
                destroy_file(&plain_path)?;
                (unseal_key(root, pin, *max_attempts)?, None)
            }
        };
        Ok(Home {
            root: root.to_path_buf(),
            storage_key,
            key_file,
        })
    }

    /// The home directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the sled database lives.
    pub fn database_dir(&self) -> PathBuf {
        self.root.join(DATABASE)
    }

    /// Where a schema migration writes the new database (`partial`), where
    /// it lies once complete (`new`) and where the old one waits to be
    /// deleted (`old`): `(partial, new, old)`.
    pub(super) fn migration_dirs(&self) -> (PathBuf, PathBuf, PathBuf) {
        (
            self.root.join(DATABASE_PARTIAL),
            self.root.join(DATABASE_NEW),
            self.root.join(DATABASE_OLD),
        )
    }

    /// The storage key.
    pub fn storage_key(&self) -> &StorageKey {
        &self.storage_key
    }

    /// Whether `file` exists.
    pub fn has(&self, file: HomeFile) -> bool {
        self.root.join(file.relative()).exists()
    }

    /// Keeps the agency policy's wrong-PIN limit for the next unlock.
    pub fn keep_pin_limit(&self, attempts: u32) -> Result<(), StoreError> {
        let path = self.root.join(PIN_LIMIT);
        if unlock::attempt_limit(&self.root, 0) == attempts {
            return Ok(());
        }
        write_atomic(&path, format!("{attempts}\n").as_bytes())
    }

    /// Seals `plaintext` under the storage key and writes it atomically, owner-only.
    pub fn write(&self, file: HomeFile, plaintext: &[u8]) -> Result<(), StoreError> {
        let path = self.root.join(file.relative());
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let sealed = self
            .storage_key
            .seal(file.relative().as_bytes(), plaintext, &mut OsEntropy);
        write_atomic(&path, &wire::encode(&SealedFile(sealed)))
    }

    /// Reads and opens `file`; `None` if it does not exist.
    pub fn read(&self, file: HomeFile) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let path = self.root.join(file.relative());
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("reading", &path)(e)),
        };
        let sealed = wire::decode::<SealedFile>(&bytes).map_err(|source| StoreError::Corrupt {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Some(self.storage_key.open(
            file.relative().as_bytes(),
            &sealed.0,
            "home file",
        )?))
    }

    /// Keeps the certificate chain (its encoding) an operator home issued
    /// to `device`, in `agency/issued/`, sealed like every home file (the
    /// path is the associated data); the file is named by a keyed tag of
    /// the device, so a copied home does not list the devices it enrolled
    /// (audit M11); the wipe removes it with `agency/`.
    pub fn keep_issued(&self, device: &DeviceId, chain: &[u8]) -> Result<(), StoreError> {
        let tag = self
            .storage_key
            .index_key()
            .tag(&[b"issued chain", &device.public_key().0]);
        let relative = format!("{ISSUED_DIR}/{}", hex::encode(tag));
        let path = self.root.join(&relative);
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let sealed = self
            .storage_key
            .seal(relative.as_bytes(), chain, &mut OsEntropy);
        write_atomic(&path, &wire::encode(&SealedFile(sealed)))
    }

    /// The encodings of every chain [`Home::keep_issued`] kept (at most
    /// [`MAX_ISSUED`]), in no particular order; files that do not open are
    /// skipped.
    pub fn issued(&self) -> Result<Vec<Zeroizing<Vec<u8>>>, StoreError> {
        let dir = self.root.join(ISSUED_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("reading", &dir)(e)),
        };
        let mut chains = Vec::new();
        for entry in entries.flatten().take(MAX_ISSUED) {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // Temporary files of an interrupted write are not chains.
            if name.contains('.') {
                continue;
            }
            let relative = format!("{ISSUED_DIR}/{name}");
            let Ok(bytes) = fs::read(entry.path()) else {
                continue;
            };
            let Ok(sealed) = wire::decode::<SealedFile>(&bytes) else {
                continue;
            };
            if let Ok(chain) = self
                .storage_key
                .open(relative.as_bytes(), &sealed.0, "issued chain")
            {
                chains.push(chain);
            }
        }
        Ok(chains)
    }

    /// Deletes `file` (the agency root key moved to offline storage); `Ok`
    /// if it was not there.
    pub fn remove(&self, file: HomeFile) -> Result<(), StoreError> {
        let path = self.root.join(file.relative());
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing", &path)(e)),
        }
    }

    /// Erases the home: records the intent, destroys the storage key first
    /// (so whatever remains is unreadable), then deletes the database, then
    /// the identity and agency files, then the intent marker.
    ///
    /// Any open database handle on this home must be dropped before calling.
    /// With a `notice` (a revocation ordered it), the notice is kept in
    /// the intent marker and left behind as the home's only content.
    /// A key file outside the home (services) is destroyed too.
    pub fn wipe(self, notice: Option<&str>) -> Result<(), StoreError> {
        let root = self.root.clone();
        let key_file = self.key_file.clone();
        drop(self);
        wipe_root(&root, notice, key_file.as_deref())
    }

    /// The notice a revocation left in `root` after the wipe, if any.
    pub fn revoked_notice(root: &Path) -> Option<String> {
        let text = fs::read_to_string(root.join(REVOKED)).ok()?;
        Some(text.trim().to_string())
    }

    fn refuse_if_revoked(root: &Path) -> Result<(), StoreError> {
        match Self::revoked_notice(root) {
            Some(notice) => Err(StoreError::Revoked(notice)),
            None => Ok(()),
        }
    }

    /// Completes a wipe whose intent marker is present; does nothing otherwise.
    pub fn finish_interrupted_wipe(root: &Path) -> Result<(), StoreError> {
        let marker = root.join(WIPE_INTENT);
        if !marker.exists() {
            return Ok(());
        }
        tracing::info!(home = %root.display(), "finishing a wipe of this home");
        let intent = fs::read_to_string(&marker).unwrap_or_default();
        let notice = intent
            .strip_prefix(WIPE_INTENT_HEADER)
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let pause = std::env::var(WIPE_STEP_DELAY_ENV)
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map(std::time::Duration::from_millis);
        let step = || {
            if let Some(pause) = pause {
                std::thread::sleep(pause);
            }
        };
        destroy_file(&root.join(SEALED_KEY))?;
        destroy_file(&root.join(STORAGE_KEY))?;
        step();
        remove_dir(&root.join(DATABASE))?;
        for dir in [DATABASE_PARTIAL, DATABASE_NEW, DATABASE_OLD] {
            remove_dir(&root.join(dir))?;
        }
        step();
        remove_dir(&root.join(IDENTITY_DIR))?;
        remove_dir(&root.join(AGENCY_DIR))?;
        // Whatever else the node kept in its home (its control socket).
        for entry in fs::read_dir(root).map_err(StoreError::io("listing", root))? {
            let path = entry.map_err(StoreError::io("listing", root))?.path();
            if path != marker && !path.is_dir() {
                let _ = fs::remove_file(&path);
            }
        }
        if let Some(notice) = notice {
            write_atomic(&root.join(REVOKED), format!("{notice}\n").as_bytes())?;
        }
        fs::remove_file(&marker).map_err(StoreError::io("removing", &marker))
    }
}

/// Records the intent to wipe `root`, destroys `key_file` (if the key lies
/// outside the home), then wipes.
fn wipe_root(root: &Path, notice: Option<&str>, key_file: Option<&Path>) -> Result<(), StoreError> {
    let intent = format!("{WIPE_INTENT_HEADER}{}", notice.unwrap_or_default());
    write_atomic(&root.join(WIPE_INTENT), intent.as_bytes())?;
    if let Some(path) = key_file {
        destroy_file(path)?;
    }
    Home::finish_interrupted_wipe(root)
}

/// No key and no data yet: a home to create.
fn is_new(root: &Path) -> bool {
    ![SEALED_KEY, STORAGE_KEY, DATABASE, IDENTITY_DIR]
        .iter()
        .any(|name| root.join(name).exists())
}

/// An old home whose storage key lies in plaintext, to be sealed under a PIN.
fn needs_wrapping(root: &Path) -> bool {
    root.join(STORAGE_KEY).exists() && !root.join(SEALED_KEY).exists()
}

/// Seals `key` under `pin` into the home's key file.
fn write_sealed_key(
    root: &Path,
    key: &StorageKey,
    pin: &Passphrase,
    kdf: KdfParams,
) -> Result<(), StoreError> {
    pin.check_len(MIN_PIN_LEN)
        .map_err(|_| StoreError::ShortPin { min: MIN_PIN_LEN })?;
    let plain = Zeroizing::new(wire::encode(key));
    let sealed = PassphraseSealed::wrap(pin, STORAGE_KEY_PURPOSE, &plain, kdf, &mut OsEntropy)?;
    write_atomic(&root.join(SEALED_KEY), &wire::encode(&sealed))
}

/// Opens the home's PIN-sealed storage key. The attempt is counted on disk
/// before the PIN is checked, so killing the process mid-check does not
/// give the attempt back; success resets the count; the last allowed wrong
/// PIN wipes the home.
fn unseal_key(root: &Path, pin: &Passphrase, max_attempts: u32) -> Result<StorageKey, StoreError> {
    let path = root.join(SEALED_KEY);
    let bytes = fs::read(&path).map_err(StoreError::io("reading", &path))?;
    let sealed =
        wire::decode::<PassphraseSealed>(&bytes).map_err(|source| StoreError::Corrupt {
            path: path.display().to_string(),
            source,
        })?;
    let max_attempts = unlock::attempt_limit(root, max_attempts).max(1);
    let failed = unlock::failures(root, max_attempts);
    let wiped = || {
        let notice = format!(
            "this device erased its data after {max_attempts} wrong PINs in a row; \
             ask an operator to enroll it again"
        );
        wipe_root(root, Some(&notice), None)?;
        Err(StoreError::Revoked(notice))
    };
    if failed >= max_attempts {
        return wiped();
    }
    let counter = root.join(PIN_ATTEMPTS);
    write_atomic(&counter, format!("{}\n", failed + 1).as_bytes())?;
    match sealed.open(pin, STORAGE_KEY_PURPOSE) {
        Ok(plain) => {
            let key = wire::decode::<StorageKey>(&plain).map_err(|source| StoreError::Corrupt {
                path: path.display().to_string(),
                source,
            })?;
            write_atomic(&counter, b"0\n")?;
            Ok(key)
        }
        Err(CryptoError::WrongPassphrase) if failed + 1 >= max_attempts => wiped(),
        Err(CryptoError::WrongPassphrase) => Err(StoreError::WrongPin {
            left: max_attempts - failed - 1,
        }),
        Err(other) => Err(other.into()),
    }
}

/// Reads a plaintext storage key file (a service's key file, or an old
/// home's `storage.key`), refusing one other users can read.
fn read_key_file(path: &Path) -> Result<StorageKey, StoreError> {
    let mode = match fs::metadata(path) {
        Ok(meta) => meta.permissions().mode(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::MissingKeyFile(path.to_path_buf()));
        }
        Err(e) => return Err(StoreError::io("inspecting", path)(e)),
    };
    if mode & 0o077 != 0 {
        return Err(StoreError::io("refusing to use", path)(
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "other users can read this storage key (mode {:o}); make it owner-only with `chmod 600 {}`",
                    mode & 0o777,
                    path.display()
                ),
            ),
        ));
    }
    let bytes = Zeroizing::new(fs::read(path).map_err(StoreError::io("reading", path))?);
    wire::decode::<StorageKey>(&bytes).map_err(|source| StoreError::Corrupt {
        path: path.display().to_string(),
        source,
    })
}

/// Creates `dir` (and parents) with owner-only permissions.
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(StoreError::io("creating", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(StoreError::io("restricting permissions of", dir))
}

/// Refuses a home that group or others may enter, list or write: what
/// keeps other users away from its control socket, and from the names and
/// temporary files in it, is the directory being owner-only
/// (`open_or_create` makes it so).
fn refuse_if_not_private(root: &Path) -> Result<(), StoreError> {
    let mode = fs::metadata(root)
        .map_err(StoreError::io("inspecting", root))?
        .permissions()
        .mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    Err(StoreError::io("refusing to use", root)(
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "other users can reach this home (mode {:o}); make it owner-only with `chmod 700 {}`",
                mode & 0o777,
                root.display()
            ),
        ),
    ))
}

/// Writes `bytes` to `path` via a temporary file and rename, owner-only,
/// synced: the file, then the directory holding the new name.
///
/// The temporary file is `NAME.tmp.RANDOM` beside `path`: unique per target
/// (`operator.key` and `operator.chain` never share one) and per write, and
/// created new with mode 0600, so a file already lying there, whatever its
/// permissions, is never reused. One left by a crash stays behind, owner-only
/// in the owner-only home, and is removed by a wipe with the rest.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let (tmp, mut file) = create_temporary(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(StoreError::io("writing", &tmp))
        .and_then(|()| fs::rename(&tmp, path).map_err(StoreError::io("renaming", &tmp)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(path)
}

/// A new owner-only file `NAME.tmp.RANDOM` beside `path`, and its name.
fn create_temporary(path: &Path) -> Result<(PathBuf, File), StoreError> {
    let name = path
        .file_name()
        .ok_or_else(|| {
            StoreError::io("writing", path)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?
        .to_os_string();
    let mut tmp = path.to_path_buf();
    // 64 random bits: a clash means a file was planted there; try others.
    for _ in 0..4 {
        let mut tmp_name = name.clone();
        tmp_name.push(format!(".tmp.{}", hex::encode(OsEntropy.array::<8>())));
        tmp = path.with_file_name(tmp_name);
        match create_private(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(StoreError::io("creating", &tmp)(e)),
        }
    }
    Err(StoreError::io("creating", &tmp)(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "four random temporary names were all taken: remove the stray .tmp files",
    )))
}

/// Creates `path`, which must not exist yet, with mode 0600 from the start.
fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(StoreError::io("syncing", dir))?;
    }
    Ok(())
}

/// Overwrites a file with zeros, syncs, then unlinks it.
pub(super) fn destroy_file(path: &Path) -> Result<(), StoreError> {
    let len = match fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("inspecting", path)(e)),
    };
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(StoreError::io("opening", path))?;
    let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.write_all(&zeros)
        .and_then(|()| file.sync_all())
        .map_err(StoreError::io("overwriting", path))?;
    fs::remove_file(path).map_err(StoreError::io("removing", path))?;
    sync_dir(path)
}

/// Renames `from` to `to` and makes the rename durable.
pub(super) fn rename_durably(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::rename(from, to).map_err(StoreError::io("renaming", from))?;
    sync_dir(to)
}

/// Removes a directory and all it holds; `Ok` if it was not there.
pub(super) fn remove_dir(dir: &Path) -> Result<(), StoreError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("removing", dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn files_with_the_same_stem_never_share_a_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("operator.key");
        let chain = dir.path().join("operator.chain");
        let (key_tmp, _) = create_temporary(&key).expect("key tmp");
        let (chain_tmp, _) = create_temporary(&chain).expect("chain tmp");
        let (again, _) = create_temporary(&key).expect("second key tmp");
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        assert!(name(&key_tmp).is_some_and(|n| n.starts_with("operator.key.tmp.")));
        assert!(name(&chain_tmp).is_some_and(|n| n.starts_with("operator.chain.tmp.")));
        assert_ne!(key_tmp, again, "each write has its own temporary file");
        for tmp in [key_tmp, chain_tmp, again] {
            fs::remove_file(tmp).expect("remove");
        }

        // Written side by side, each ends with its own content and nothing is left over.
        std::thread::scope(|scope| {
            for (path, byte) in [(&key, b'k'), (&chain, b'c')] {
                scope.spawn(move || {
                    for round in 0..50u8 {
                        write_atomic(path, &[byte, round]).expect("write");
                    }
                });
            }
        });
        assert_eq!(fs::read(&key).expect("key"), [b'k', 49]);
        assert_eq!(fs::read(&chain).expect("chain"), [b'c', 49]);
        assert_eq!(names(dir.path()), ["operator.chain", "operator.key"]);
    }

    #[test]
    fn a_stale_temporary_file_does_not_leak_its_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("operator.key");
        // Left behind by an older baro (shared name) or planted, world-readable.
        let stale = [
            dir.path().join("operator.tmp"),
            dir.path().join("operator.key.tmp"),
        ];
        for path in &stale {
            fs::write(path, b"stale").expect("stale file");
            fs::set_permissions(path, fs::Permissions::from_mode(0o666)).expect("chmod");
        }
        // A file already at the chosen name is never opened for writing.
        let planted = dir.path().join("operator.key.tmp.0000000000000000");
        fs::write(&planted, b"planted").expect("planted");
        fs::set_permissions(&planted, fs::Permissions::from_mode(0o666)).expect("chmod");
        let refused = create_private(&planted).expect_err("exists");
        assert_eq!(refused.kind(), std::io::ErrorKind::AlreadyExists);
        // So is an existing target's mode.
        fs::write(&key, b"old").expect("old key");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");

        write_atomic(&key, b"secret").expect("write");
        assert_eq!(fs::read(&key).expect("key"), b"secret");
        assert_eq!(mode(&key), 0o600);
        for path in stale.iter().chain([&planted]) {
            assert_ne!(fs::read(path).expect("untouched"), b"secret");
            assert_eq!(mode(path), 0o666, "{} untouched", path.display());
        }
    }

    #[test]
    fn a_home_other_users_can_reach_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("home");
        Home::open_or_create(&root).expect("new home");
        assert_eq!(mode(&root), 0o700);
        Home::open(&root).expect("private home opens");
        for open in [0o750, 0o705, 0o777] {
            fs::set_permissions(&root, fs::Permissions::from_mode(open)).expect("chmod");
            let error = Home::open(&root).expect_err("refused").to_string();
            assert!(
                error.contains("other users can reach this home")
                    && error.contains(&format!("mode {open:o}"))
                    && error.contains("chmod 700"),
                "{error}"
            );
            assert!(!error.contains('\n'), "one line: {error}");
        }
        // `open_or_create` makes it owner-only again.
        Home::open_or_create(&root).expect("restricted again");
        assert_eq!(mode(&root), 0o700);
    }

    const FAST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn pin(text: &str) -> Unlock {
        Unlock::Pin {
            pin: Passphrase::new(text.into()),
            kdf: FAST,
            max_attempts: MAX_PIN_ATTEMPTS_FOR_TESTS,
        }
    }

    const MAX_PIN_ATTEMPTS_FOR_TESTS: u32 = unlock::MAX_PIN_ATTEMPTS;

    fn enrolled_home(root: &Path) -> Home {
        let home = Home::open_or_create_with(root, &pin("right pin")).expect("new home");
        home.write(HomeFile::DeviceKey, b"device secret")
            .expect("write");
        home
    }

    #[test]
    fn a_copied_home_is_unreadable_without_the_pin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("home");
        drop(enrolled_home(&root));
        // Nothing in the home holds the storage key in the clear.
        assert!(!root.join(STORAGE_KEY).exists());
        let copy = dir.path().join("stolen");
        fs::create_dir(&copy).expect("mkdir");
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o700)).expect("chmod");
        fs::create_dir(copy.join("identity")).expect("mkdir");
        for name in [SEALED_KEY, "identity/device.key"] {
            fs::copy(root.join(name), copy.join(name)).expect("copy");
        }
        for guess in ["000000", "123456", "wrong pin"] {
            let error = Home::open_with(&copy, &pin(guess)).expect_err("refused");
            assert!(matches!(error, StoreError::WrongPin { .. }), "{error}");
        }
        let error = Home::open_with(&copy, &Unlock::KeyFile(dir.path().join("none")))
            .expect_err("a key file does not open a PIN-locked home");
        assert!(
            error.to_string().contains("locked by a device PIN"),
            "{error}"
        );
        let home = Home::open_with(&copy, &pin("right pin")).expect("the owner opens it");
        assert_eq!(
            home.read(HomeFile::DeviceKey)
                .expect("read")
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"device secret"[..])
        );
    }

    #[test]
    fn wrong_pins_count_and_the_last_allowed_one_wipes_the_home() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("home");
        drop(enrolled_home(&root));
        // A success resets the count.
        for _ in 0..5 {
            Home::open_with(&root, &pin("bad guess")).expect_err("wrong");
        }
        assert_eq!(unlock::failures(&root, 10), 5);
        Home::open_with(&root, &pin("right pin")).expect("right pin");
        assert_eq!(unlock::failures(&root, 10), 0);
        for n in 1..MAX_PIN_ATTEMPTS_FOR_TESTS {
            match Home::open_with(&root, &pin("bad guess")) {
                Err(StoreError::WrongPin { left }) => {
                    assert_eq!(left, MAX_PIN_ATTEMPTS_FOR_TESTS - n)
                }
                other => panic!("attempt {n}: {other:?}"),
            }
        }
        let error = Home::open_with(&root, &pin("bad guess")).expect_err("tenth");
        assert!(error.to_string().contains("wrong PINs"), "{error}");
        assert!(!root.join(SEALED_KEY).exists() && !root.join("identity").exists());
        // Even the right PIN finds nothing now.
        let error = Home::open_with(&root, &pin("right pin")).expect_err("wiped");
        assert!(
            error
                .to_string()
                .contains("erased its data after 10 wrong PINs")
        );
        assert!(!error.to_string().contains('\n'));
    }

    #[test]
    fn an_attempt_is_counted_before_the_pin_is_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("home");
        drop(enrolled_home(&root));
        // As if the process were killed during the check: the count written
        // before it stays.
        fs::write(root.join(PIN_ATTEMPTS), "9\n").expect("write");
        let error = Home::open_with(&root, &pin("bad guess")).expect_err("last");
        assert!(matches!(error, StoreError::Revoked(_)), "{error}");
        // A damaged count leaves one attempt, not ten.
        drop(enrolled_home(&dir.path().join("second")));
        fs::write(dir.path().join("second").join(PIN_ATTEMPTS), "garbage").expect("write");
        let error = Home::open_with(&dir.path().join("second"), &pin("bad guess"));
        assert!(matches!(error, Err(StoreError::Revoked(_))), "{error:?}");
    }

    #[test]
    fn an_old_plaintext_key_is_sealed_under_the_pin_at_first_unlock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("home");
        let key_file = dir.path().join("relay.key");
        let home =
            Home::open_or_create_with(&root, &Unlock::KeyFile(key_file.clone())).expect("new");
        home.write(HomeFile::DeviceKey, b"old secret")
            .expect("write");
        drop(home);
        assert_eq!(mode(&key_file), 0o600);
        // An old home: the key lay in plaintext inside it.
        fs::rename(&key_file, root.join(STORAGE_KEY)).expect("mv");
        let error = Home::open_with(&root, &Unlock::KeyFile(key_file.clone()))
            .expect_err("plaintext key inside the home");
        assert!(error.to_string().contains("mv "), "{error}");
        let error = Home::open_with(&root, &pin("12345")).expect_err("short");
        assert!(matches!(error, StoreError::ShortPin { .. }), "{error}");
        let home = Home::open_with(&root, &pin("new pin 42")).expect("migrated");
        assert_eq!(
            home.read(HomeFile::DeviceKey)
                .expect("read")
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"old secret"[..])
        );
        assert!(!root.join(STORAGE_KEY).exists() && root.join(SEALED_KEY).exists());
        drop(home);
        assert!(Home::open_with(&root, &pin("another")).is_err());
        Home::open_with(&root, &pin("new pin 42")).expect("reopened");
    }

    #[test]
    fn a_key_file_opens_a_service_home_and_the_wipe_destroys_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("relay");
        let key_file = dir.path().join("relay.key");
        let unlock = Unlock::KeyFile(key_file.clone());
        let home = Home::open_or_create_with(&root, &unlock).expect("new");
        home.write(HomeFile::DeviceKey, b"relay secret")
            .expect("write");
        drop(home);
        assert!(!root.join(SEALED_KEY).exists() && !root.join(STORAGE_KEY).exists());
        let error = Home::open_with(&root, &pin("some pin")).expect_err("no PIN here");
        assert!(matches!(error, StoreError::MissingStorageKey(_)), "{error}");
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = Home::open_with(&root, &unlock).expect_err("readable by others");
        assert!(error.to_string().contains("chmod 600"), "{error}");
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).expect("chmod");
        Home::open_with(&root, &unlock)
            .expect("open")
            .wipe(None)
            .expect("wipe");
        assert!(!key_file.exists());
    }

    /// Unlock times with the production costs on this machine:
    /// `cargo test -p baro-node --lib unlock_times -- --ignored --nocapture`
    /// (argon2 is optimised even in debug builds).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn unlock_times() {
        for (class, kdf) in [("phone", KdfParams::PHONE), ("PC", KdfParams::PC)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let root = dir.path().join("home");
            let unlock = Unlock::Pin {
                pin: Passphrase::new("measured pin".into()),
                kdf,
                max_attempts: 10,
            };
            drop(Home::open_or_create_with(&root, &unlock).expect("new"));
            let mut times = Vec::new();
            for _ in 0..5 {
                let start = std::time::Instant::now();
                drop(Home::open_with(&root, &unlock).expect("open"));
                times.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            println!(
                "{class}-class {kdf:?}: unlock median {:.0} ms (min {:.0}, max {:.0})",
                times[2], times[0], times[4]
            );
        }
    }
}
