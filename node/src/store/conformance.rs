//! One behaviour suite for every [`Store`] backend, plus sled-only tests of
//! encryption at rest and wipe.

use super::*;

/// Runs the shared suite against a backend built by `$make` (an expression
/// returning `(impl Store, guard)`; the guard keeps temporary files alive).
macro_rules! store_conformance {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn get_returns_what_insert_wrote_and_remove_deletes_it() {
                let (store, _guard) = $make;
                assert_eq!(store.get("rooms", b"a").expect("get"), None);
                store.insert("rooms", b"a", b"alpha").expect("insert");
                assert_eq!(
                    store.get("rooms", b"a").expect("get").as_deref(),
                    Some(&b"alpha"[..])
                );
                store.insert("rooms", b"a", b"again").expect("overwrite");
                assert_eq!(
                    store.get("rooms", b"a").expect("get").as_deref(),
                    Some(&b"again"[..])
                );
                assert!(store.remove("rooms", b"a").expect("remove"));
                assert!(!store.remove("rooms", b"a").expect("remove twice"));
                assert_eq!(store.get("rooms", b"a").expect("get"), None);
            }

            #[test]
            fn trees_are_separate() {
                let (store, _guard) = $make;
                store.insert("one", b"k", b"1").expect("insert");
                store.insert("two", b"k", b"2").expect("insert");
                assert_eq!(
                    store.get("one", b"k").expect("get").as_deref(),
                    Some(&b"1"[..])
                );
                assert_eq!(
                    store.get("two", b"k").expect("get").as_deref(),
                    Some(&b"2"[..])
                );
            }

            #[test]
            fn scan_prefix_is_ordered_and_limited() {
                let (store, _guard) = $make;
                for key in [&b"m/3"[..], b"m/1", b"x/0", b"m/2", b"l/9"] {
                    store.insert("t", key, key).expect("insert");
                }
                let found: Vec<Vec<u8>> = store
                    .scan_prefix("t", b"m/", 10)
                    .expect("scan")
                    .into_iter()
                    .map(|(k, v)| {
                        assert_eq!(k, v);
                        k
                    })
                    .collect();
                assert_eq!(
                    found,
                    vec![b"m/1".to_vec(), b"m/2".to_vec(), b"m/3".to_vec()]
                );
                assert_eq!(store.scan_prefix("t", b"m/", 2).expect("scan").len(), 2);
                assert!(
                    store
                        .scan_prefix("empty", b"", 10)
                        .expect("scan")
                        .is_empty()
                );
            }

            #[test]
            fn schema_version_is_current() {
                let (store, _guard) = $make;
                assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
            }

            #[test]
            fn bad_tree_names_and_oversized_values_are_refused() {
                let (store, _guard) = $make;
                for bad in ["", "__baro_meta", "a\nb"] {
                    assert!(matches!(
                        store.insert(bad, b"k", b"v"),
                        Err(StoreError::BadTreeName(_))
                    ));
                }
                let big = vec![0u8; MAX_RECORD_LEN + 1];
                assert!(matches!(
                    store.insert("t", b"k", &big),
                    Err(StoreError::ValueTooLarge { .. })
                ));
                store
                    .insert("t", b"k", &big[..MAX_RECORD_LEN])
                    .expect("limit itself fits");
            }

            #[test]
            fn tags_are_deterministic_and_depend_on_every_part() {
                let (store, _guard) = $make;
                let tag = store.tag(&[b"rooms", b"id", b"x"]).expect("tag");
                assert_eq!(store.tag(&[b"rooms", b"id", b"x"]).expect("tag"), tag);
                assert_ne!(store.tag(&[b"rooms", b"id", b"y"]).expect("tag"), tag);
                assert_ne!(store.tag(&[b"rooms", b"idx"]).expect("tag"), tag);
                assert_ne!(store.tag(&[b"messages", b"id", b"x"]).expect("tag"), tag);
                store.wipe(None).expect("wipe");
                assert!(matches!(store.tag(&[b"x"]), Err(StoreError::Wiped)));
            }

            #[test]
            fn wiped_store_refuses_everything() {
                let (store, _guard) = $make;
                store.insert("t", b"k", b"v").expect("insert");
                store.wipe(None).expect("wipe");
                assert!(matches!(store.get("t", b"k"), Err(StoreError::Wiped)));
                assert!(matches!(
                    store.insert("t", b"k", b"v"),
                    Err(StoreError::Wiped)
                ));
                assert!(matches!(
                    store.scan_prefix("t", b"", 1),
                    Err(StoreError::Wiped)
                ));
                store.wipe(None).expect("second wipe is harmless");
            }
        }
    };
}

fn sled_store() -> (SledStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = Home::open_or_create(&dir.path().join("home")).expect("home");
    (SledStore::open(home).expect("open"), dir)
}

store_conformance!(memory, (MemoryStore::new(), ()));
store_conformance!(sled_backend, sled_store());

const PLAINTEXT: &[u8] = b"Meeting moved to 15:00, bring the draft budget";

/// Every regular file under `dir`, with its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn sled_values_are_encrypted_at_rest_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    {
        let store = SledStore::open(Home::open_or_create(&root).expect("home")).expect("open");
        for i in 0..50u32 {
            store
                .insert("messages", &i.to_be_bytes(), PLAINTEXT)
                .expect("insert");
        }
        store.flush().expect("flush");
    }
    for (path, bytes) in files_under(&root) {
        assert!(
            !contains(&bytes, PLAINTEXT),
            "plaintext found in {}",
            path.display()
        );
    }
    let store = SledStore::open(Home::open(&root).expect("home")).expect("reopen");
    assert_eq!(
        store
            .get("messages", &7u32.to_be_bytes())
            .expect("get")
            .as_deref(),
        Some(PLAINTEXT)
    );
}

#[test]
fn sled_record_moved_to_another_key_does_not_open() {
    let (store, _dir) = sled_store();
    store.insert("t", b"a", b"secret").expect("insert");
    {
        let guard = store.read();
        let tree = guard
            .as_ref()
            .expect("open")
            .db
            .open_tree("t")
            .expect("tree");
        let raw = tree.get(b"a").expect("get").expect("present");
        tree.insert(b"b", raw).expect("copy");
    }
    assert!(matches!(store.get("t", b"b"), Err(StoreError::Crypto(_))));
}

#[test]
fn wipe_leaves_no_plaintext_and_no_key_bytes_in_the_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let home = Home::open_or_create(&root).expect("home");
    let key_bytes = *home.storage_key().expose_bytes();
    home.write(HomeFile::DeviceKey, b"device secret key bytes")
        .expect("write");
    home.write(HomeFile::Bundle, PLAINTEXT).expect("write");
    let store = SledStore::open(home).expect("open");
    for i in 0..20u32 {
        store
            .insert("messages", &i.to_be_bytes(), PLAINTEXT)
            .expect("insert");
    }
    store.flush().expect("flush");
    // The storage key is sealed under the PIN: not in the clear even
    // before the wipe (audit H7).
    assert!(
        !files_under(&root)
            .iter()
            .any(|(_, b)| contains(b, &key_bytes)),
        "storage key in the clear in the home"
    );

    store.wipe(None).expect("wipe");

    for (path, bytes) in files_under(&root) {
        assert!(
            !contains(&bytes, PLAINTEXT),
            "plaintext left in {}",
            path.display()
        );
        assert!(
            !contains(&bytes, &key_bytes),
            "key bytes left in {}",
            path.display()
        );
        assert!(
            !contains(&bytes, b"device secret key bytes"),
            "identity left in {}",
            path.display()
        );
    }
    assert!(matches!(Home::open(&root), Err(StoreError::NoHome(_))));
}

#[test]
fn interrupted_wipe_is_finished_at_next_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let home = Home::open_or_create(&root).expect("home");
    home.write(HomeFile::DeviceKey, b"device secret")
        .expect("write");
    drop(home);
    // A wipe that got as far as writing its intent, then the process died.
    std::fs::write(root.join("wipe.intent"), b"wipe in progress\n").expect("marker");
    assert!(matches!(Home::open(&root), Err(StoreError::NoHome(_))));
    assert!(!root.join("identity").exists());
    assert!(!root.join("wipe.intent").exists());
}

#[test]
fn a_wipe_ordered_by_a_revocation_leaves_only_its_notice_even_when_interrupted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let home = Home::open_or_create(&root).expect("home");
    home.write(HomeFile::DeviceKey, b"device secret")
        .expect("write");
    drop(home);
    let notice =
        "this device was revoked by operator park at 2026-11-22 10:00:00 UTC: local data erased";
    std::fs::write(
        root.join("wipe.intent"),
        format!("wipe in progress\n{notice}"),
    )
    .expect("marker");
    for _ in 0..2 {
        match Home::open(&root) {
            Err(StoreError::Revoked(said)) => assert_eq!(said, notice),
            other => panic!("expected the revocation notice, got {other:?}"),
        }
        assert!(matches!(
            Home::open_or_create(&root),
            Err(StoreError::Revoked(_))
        ));
    }
    let left: Vec<_> = std::fs::read_dir(&root)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("revoked")]);
}

#[test]
fn home_without_its_storage_key_is_reported_not_recreated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let home = Home::open_or_create(&root).expect("home");
    home.write(HomeFile::DeviceKey, b"k").expect("write");
    std::fs::remove_file(root.join("storage.sealed")).expect("rm");
    assert!(matches!(
        Home::open_or_create(&root),
        Err(StoreError::MissingStorageKey(_))
    ));
}

#[test]
fn swapped_home_files_do_not_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let home = Home::open_or_create(&root).expect("home");
    home.write(HomeFile::Bundle, b"bundle").expect("write");
    std::fs::copy(
        root.join("identity/bundle"),
        root.join("identity/device.key"),
    )
    .expect("copy");
    assert!(matches!(
        home.read(HomeFile::DeviceKey),
        Err(StoreError::Crypto(_))
    ));
    std::fs::write(root.join("identity/bundle"), b"garbage").expect("garbage");
    assert!(matches!(
        home.read(HomeFile::Bundle),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let home = Home::open_or_create(&root).expect("home");
    {
        let db = sled::open(home.database_dir()).expect("sled");
        db.open_tree("__baro_meta")
            .expect("meta")
            .insert(b"schema_version", &(SCHEMA_VERSION + 1).to_le_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }
    assert!(matches!(
        SledStore::open(home),
        Err(StoreError::SchemaTooNew { .. })
    ));
}

#[test]
fn a_record_damaged_on_disk_is_removed_and_reported_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    {
        let store = SledStore::open(Home::open_or_create(&root).expect("home")).expect("open");
        store
            .insert("messages", b"good", PLAINTEXT)
            .expect("insert");
        store.insert("rooms", b"room", b"a room").expect("insert");
        assert_eq!(store.damage(), None);
        store.flush().expect("flush");
    }
    {
        // A value no longer sealed by this home (as bit rot would leave it).
        let db = sled::open(Home::open(&root).expect("home").database_dir()).expect("sled");
        let messages = db.open_tree("messages").expect("tree");
        messages
            .insert(b"rotten", &b"not a sealed record"[..])
            .expect("insert");
        // As a crash leaves it: not closed cleanly.
        db.open_tree("__baro_meta")
            .expect("meta")
            .remove(b"closed_cleanly")
            .expect("remove");
        db.flush().expect("flush");
    }
    let store = SledStore::open(Home::open(&root).expect("home")).expect("reopen");
    let damage = store.damage().expect("the damage is reported");
    assert!(damage.contains("1 in 'messages'"), "{damage}");
    assert!(!damage.contains('\n'), "one line: {damage}");
    assert_eq!(
        store.get("messages", b"good").expect("get").as_deref(),
        Some(PLAINTEXT)
    );
    assert_eq!(store.get("messages", b"rotten").expect("get"), None);
    let all = store
        .scan_prefix("messages", b"", 10)
        .expect("listing works again");
    assert_eq!(all.len(), 1);
    drop(store);
    let store = SledStore::open(Home::open(&root).expect("home")).expect("third open");
    assert_eq!(store.damage(), None, "reported once, then gone");
}

#[test]
fn records_are_checked_only_after_an_unclean_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let rot = |root: &std::path::Path| {
        let db = sled::open(Home::open(root).expect("home").database_dir()).expect("sled");
        db.open_tree("messages")
            .expect("tree")
            .insert(b"rotten", &b"not a sealed record"[..])
            .expect("insert");
        db.flush().expect("flush");
    };
    drop(SledStore::open(Home::open_or_create(&root).expect("home")).expect("open"));
    rot(&root);
    // Closed cleanly: the open is not slowed by a check of every record.
    let store = SledStore::open(Home::open(&root).expect("home")).expect("open");
    assert_eq!(store.damage(), None);
    drop(store);
    // Killed: nothing marks the stop clean, so the next open checks.
    {
        let db = sled::open(Home::open(&root).expect("home").database_dir()).expect("sled");
        db.open_tree("__baro_meta")
            .expect("meta")
            .remove(b"closed_cleanly")
            .expect("remove");
        db.flush().expect("flush");
    }
    let store = SledStore::open(Home::open(&root).expect("home")).expect("open after a kill");
    assert!(
        store
            .damage()
            .is_some_and(|d| d.contains("1 in 'messages'"))
    );
}

/// What a power cut leaves: the database file's tail half-written. Records
/// flushed before (what the node acknowledged) must all survive; the node
/// opens the store.
fn survives_a_damaged_tail(damage: impl Fn(&std::path::Path, u64, u64)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let file = Home::open_or_create(&root)
        .expect("home")
        .database_dir()
        .join("db");
    let acknowledged = 200u32;
    let before;
    {
        let store = SledStore::open(Home::open(&root).expect("home")).expect("open");
        for i in 0..acknowledged {
            store
                .insert("messages", &i.to_be_bytes(), PLAINTEXT)
                .expect("insert");
        }
        store.flush().expect("flush");
        before = std::fs::metadata(&file).expect("db file").len();
        for i in acknowledged..acknowledged + 2000 {
            store
                .insert("messages", &i.to_be_bytes(), PLAINTEXT)
                .expect("insert");
        }
        store.flush().expect("flush");
    }
    let after = std::fs::metadata(&file).expect("db file").len();
    assert!(after > before, "the later writes grew the file");
    damage(&file, before, after);
    let store = SledStore::open(Home::open(&root).expect("home"))
        .expect("a store with a damaged tail still opens");
    for i in 0..acknowledged {
        assert_eq!(
            store
                .get("messages", &i.to_be_bytes())
                .expect("get")
                .as_deref(),
            Some(PLAINTEXT),
            "acknowledged record {i} was lost"
        );
    }
    store
        .insert("messages", b"after", PLAINTEXT)
        .expect("the store takes writes again");
    store.flush().expect("flush");
}

#[test]
fn a_truncated_last_segment_loses_nothing_acknowledged() {
    survives_a_damaged_tail(|file, before, after| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .expect("open db file");
        f.set_len(before + (after - before) / 2).expect("truncate");
    });
}

#[test]
fn a_corrupted_last_segment_loses_nothing_acknowledged() {
    survives_a_damaged_tail(|file, before, after| {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .expect("open db file");
        let start = before + (after - before) / 3;
        f.seek(SeekFrom::Start(start)).expect("seek");
        let garbage: Vec<u8> = (0..(after - start))
            .map(|i| (i * 131 % 251) as u8)
            .collect();
        f.write_all(&garbage).expect("garbage");
        f.sync_all().expect("sync");
    });
}
