//! Audit M11 as tests, on real sled databases on disk: what the files of a
//! copied (or wiped, then recovered) home reveal, and the migration of a
//! schema v1 home, including a crash at every point of it.
//!
//! The v1 layout is written by a small fixture writer of its own
//! ([`V1Home`]), from the old code's key formats, so the migration is
//! tested against the bytes an old build left, not against this build's
//! idea of them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::message_log::RoomUnread;
use super::*;
use crate::agency_policy::PolicyStore;
use crate::crypto::RoomKey;
use crate::identity::{PublicKey, SeededEntropy};
use crate::rooms::{EpochRef, Room, RoomId};
use crate::sync::{Hlc, SyncScope};
use crate::testing::{T0, TestAgency};
use crate::trust::{FrameBody, Lease, RevocationScope, SignedFrame};
use crate::wire::{self, Content, Envelope, ReceiptState};

/// When the conversation happens: a day after the agency was created.
const DAY_S: u64 = T0 + 86_400;
const USERS: [&str; 3] = ["kim.minji", "lee.junho", "choi.seoyeon"];

/// Everything a device of Kim's keeps: rooms (a department room and two
/// 1:1 chats), keys, contacts, messages and receipts, the outbox, unread
/// lists, a control frame, a revocation of Choi's device with what is
/// known of it, a rotation due, and the lease.
struct Conversation {
    rooms: Vec<Room>,
    keys: Vec<(RoomId, EpochRef, RoomKey)>,
    devices: Vec<(PublicKey, crate::trust::CertificateChain)>,
    messages: Vec<Envelope>,
    /// Receipt envelopes (kept for sync, not history).
    extras: Vec<Envelope>,
    mine: Vec<[u8; 32]>,
    receipts: Vec<([u8; 32], PublicKey, ReceiptState)>,
    seen: Vec<[u8; 32]>,
    outbox: Vec<Envelope>,
    unread: Vec<(RoomId, Vec<[u8; 32]>)>,
    control: Vec<Vec<u8>>,
    revocation: Vec<u8>,
    revoked_at: u64,
    arrival: Arrival,
    record: RevocationRecord,
    sighting: u64,
    rotation: (RoomId, u64),
    lease: Lease,
}

impl Conversation {
    fn new() -> Self {
        let mut agency = TestAgency::new(11);
        let mut entropy = SeededEntropy::new(12);
        let people: Vec<_> = USERS.iter().map(|user| agency.member(user)).collect();
        let id = people[0].agency.id();
        let rooms = vec![
            Room::department(&id, "MOIS/Digital Government Bureau".parse().expect("org")),
            Room::direct(&id, USERS[0], USERS[1]),
            Room::direct(&id, USERS[0], USERS[2]),
        ];
        let keys: Vec<_> = rooms
            .iter()
            .map(|room| {
                let key = RoomKey::generate(&mut entropy);
                let epoch = EpochRef {
                    number: 1,
                    key_id: key.key_id(),
                };
                (room.id, epoch, key)
            })
            .collect();
        let mut messages = Vec::new();
        // Written out of time order (as sync delivers them), some in the same millisecond.
        // (round, room, counter): the last two share a millisecond.
        let mut writes: Vec<(u64, usize, u32)> = (0..5u64)
            .rev()
            .flat_map(|round| (0..3).map(move |r| (round, r, 0)))
            .collect();
        writes.extend([(2, 0, 3), (2, 0, 1)]);
        for (round, r, counter) in writes {
            let (room, epoch, key) = &keys[r];
            let sender = match r {
                0 => &people[round as usize % 3],
                1 => &people[round as usize % 2],
                _ => &people[2 * (round as usize % 2)],
            };
            let timestamp = Hlc {
                wall_ms: DAY_S * 1000 + round * 61_007 + r as u64 * 13,
                counter,
            };
            let text = Content::Text(format!("round {round} in room {r}, {counter}"));
            messages.push(
                Envelope::seal(
                    &sender.key,
                    *room,
                    *epoch,
                    key,
                    timestamp,
                    &text,
                    &mut entropy,
                )
                .expect("seal"),
            );
        }
        let kim = people[0].key.public();
        let mine: Vec<[u8; 32]> = messages
            .iter()
            .filter(|m| m.body.header.sender == kim)
            .map(Envelope::id)
            .collect();
        let (room, epoch, key) = &keys[1];
        let receipt = Envelope::seal(
            &people[1].key,
            *room,
            *epoch,
            key,
            Hlc {
                wall_ms: DAY_S * 1000 + 999_001,
                counter: 0,
            },
            &Content::Receipt {
                state: ReceiptState::Read,
                messages: mine.clone(),
            },
            &mut entropy,
        )
        .expect("receipt");
        let receipts = mine
            .iter()
            .flat_map(|id| {
                [
                    (*id, people[1].key.public(), ReceiptState::Read),
                    (*id, people[2].key.public(), ReceiptState::Delivered),
                ]
            })
            .collect();
        let frame = SignedFrame::sign(
            &people[0].key,
            FrameBody {
                author: people[0].chain.clone(),
                topic: "control".into(),
                sent_at: DAY_S + 4_321,
                nonce: [5; 16],
                payload: b"presence".to_vec(),
            },
        );
        let revocation = agency.revocation(&people[2].chain, RevocationScope::Device, "lost", true);
        let revocation_id = *blake3::hash(&revocation).as_bytes();
        let unread = vec![(rooms[0].id, vec![messages[0].id(), messages[3].id()])];
        Conversation {
            devices: people
                .iter()
                .map(|p| (p.key.public(), p.chain.clone()))
                .collect(),
            outbox: vec![messages[1].clone()],
            seen: vec![receipt.id()],
            extras: vec![receipt],
            rotation: (rooms[0].id, 1),
            rooms,
            keys,
            mine,
            receipts,
            messages,
            unread,
            control: vec![wire::encode(&frame)],
            revoked_at: DAY_S + 7_777,
            arrival: Arrival {
                id: revocation_id,
                number: 0,
                received_at: DAY_S + 7_801,
            },
            record: RevocationRecord {
                unpublished: false,
                seen_by: [people[1].key.public()].into(),
                wiped: [(people[2].key.public(), DAY_S + 9_103)].into(),
            },
            sighting: DAY_S + 8_209,
            revocation,
            lease: Lease {
                last_met: DAY_S + 10_007,
                latest: DAY_S + 11_003,
            },
        }
    }

    /// Writes it all through this build's API.
    fn write(&self, store: Arc<dyn Store>) {
        let log = MessageLog::new(store.clone());
        for room in &self.rooms {
            log.save_room(room).expect("room");
        }
        for (room, epoch, key) in &self.keys {
            log.save_key(*room, *epoch, key).expect("key");
        }
        for (device, chain) in &self.devices {
            log.save_device(device, chain).expect("device");
        }
        for envelope in &self.messages {
            log.save_envelope(envelope).expect("message");
        }
        for envelope in &self.extras {
            log.save_extra(envelope).expect("extra");
        }
        for id in &self.mine {
            log.mark_mine(id).expect("mine");
        }
        for (id, device, state) in &self.receipts {
            assert!(log.record_receipt(id, device, *state).expect("receipt"));
        }
        for id in &self.seen {
            log.mark_seen(id).expect("seen");
        }
        for envelope in &self.outbox {
            log.push_outbox(envelope).expect("outbox");
        }
        for (room, ids) in &self.unread {
            log.save_unread(*room, ids).expect("unread");
        }
        log.set_hidden(self.rooms[2].id, true).expect("hidden");
        for frame in &self.control {
            log.save_control(frame).expect("control").expect("a frame");
        }
        log.save_signed_revocation(&self.revocation, self.revoked_at)
            .expect("revocation");
        log.save_revocation_arrival(&self.arrival).expect("arrival");
        log.save_revocation_record(&self.arrival.id, &self.record)
            .expect("record");
        log.note_revoked_device_seen(&self.arrival.id, self.sighting)
            .expect("sighting");
        log.save_rotation_due(self.rotation.0, Some(self.rotation.1))
            .expect("rotation");
        PolicyStore::new(store)
            .save_lease(&self.lease)
            .expect("lease");
        log.flush().expect("flush");
    }

    /// What an examiner of the home's files would look for, in the
    /// encodings it would appear in, each with a label.
    fn needles(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut bytes = |label: String, raw: &[u8]| {
            out.push((format!("{label} (raw)"), raw.to_vec()));
            out.push((format!("{label} (hex)"), hex::encode(raw).into_bytes()));
        };
        for room in &self.rooms {
            bytes(format!("room id {}", room.name), &room.id.0);
        }
        for (device, _) in &self.devices {
            bytes("device key".into(), &device.0);
        }
        for envelope in self.messages.iter().chain(&self.extras) {
            bytes("message id".into(), &envelope.id());
        }
        bytes("revocation id".into(), &self.arrival.id);
        let mut times = |label: &str, value: u64| {
            out.push((
                format!("{label} {value} (u64 BE)"),
                value.to_be_bytes().to_vec(),
            ));
            out.push((
                format!("{label} {value} (u64 LE)"),
                value.to_le_bytes().to_vec(),
            ));
            out.push((
                format!("{label} {value} (decimal)"),
                value.to_string().into_bytes(),
            ));
        };
        for envelope in self.messages.iter().chain(&self.extras) {
            times("message time ms", envelope.body.header.timestamp.wall_ms);
        }
        times("control frame time ms", (DAY_S + 4_321) * 1000);
        times("revocation time ms", self.revoked_at * 1000);
        for (label, seconds) in [
            ("arrival", self.arrival.received_at),
            ("sighting", self.sighting),
            ("wipe receipt", DAY_S + 9_103),
            ("lease last met", self.lease.last_met),
        ] {
            times(label, seconds);
        }
        for user in USERS {
            out.push((format!("user id {user}"), user.as_bytes().to_vec()));
        }
        out
    }
}

/// What a store holds, as this build reads it: two stores with the same
/// content give the same view.
#[derive(Debug, PartialEq)]
struct View {
    rooms: Vec<Vec<u8>>,
    keys: Vec<(RoomId, EpochRef, [u8; 32])>,
    devices: Vec<Vec<u8>>,
    history: Vec<Vec<[u8; 32]>>,
    seen: Vec<[u8; 32]>,
    outbox: Vec<[u8; 32]>,
    receipts: Vec<Vec<(PublicKey, ReceiptState)>>,
    queued: bool,
    unread: Vec<RoomUnread>,
    hidden: Vec<RoomId>,
    control: Vec<Vec<u8>>,
    sync_items: Vec<(SyncScope, crate::sync::SyncItem, usize)>,
    holdings: Vec<Holding>,
    item_bytes: Vec<Option<Vec<u8>>>,
    arrivals: Vec<Arrival>,
    revocations: Vec<Vec<u8>>,
    record: RevocationRecord,
    sighting: Option<u64>,
    rotations: Vec<(RoomId, u64)>,
    lease: Lease,
}

fn view(store: Arc<dyn Store>, conversation: &Conversation) -> View {
    let log = MessageLog::new(store.clone());
    let mut seen = log.seen().expect("seen");
    seen.sort();
    let sync_items = log.sync_items().expect("items");
    View {
        rooms: log
            .rooms()
            .expect("rooms")
            .iter()
            .map(wire::encode)
            .collect(),
        keys: log
            .keys()
            .expect("keys")
            .into_iter()
            .map(|(room, epoch, key)| (room, epoch, *key.expose_bytes()))
            .collect(),
        devices: log
            .devices()
            .expect("devices")
            .iter()
            .map(wire::encode)
            .collect(),
        history: conversation
            .rooms
            .iter()
            .map(|room| {
                log.history(room.id, 100)
                    .expect("history")
                    .iter()
                    .map(Envelope::id)
                    .collect()
            })
            .collect(),
        seen,
        outbox: log
            .outbox()
            .expect("outbox")
            .iter()
            .map(Envelope::id)
            .collect(),
        receipts: conversation
            .mine
            .iter()
            .map(|id| log.receipts(id).expect("receipts"))
            .collect(),
        queued: log.is_queued(&conversation.outbox[0].id()).expect("queued"),
        unread: log.unread().expect("unread"),
        hidden: log.hidden().expect("hidden"),
        control: log.control_frames().expect("control"),
        item_bytes: sync_items
            .iter()
            .map(|(scope, item, _)| log.item_bytes(*scope, item).expect("item"))
            .collect(),
        sync_items,
        holdings: log.holdings().expect("holdings"),
        arrivals: log.revocation_arrivals().expect("arrivals"),
        revocations: log.signed_revocations().expect("revocations"),
        record: log
            .revocation_record(&conversation.arrival.id)
            .expect("record"),
        sighting: log
            .revoked_device_last_seen(&conversation.arrival.id)
            .expect("sighting"),
        rotations: log.rotations_due().expect("rotations"),
        lease: PolicyStore::new(store).lease(0).expect("lease"),
    }
}

/// The view of `conversation` written to memory through this build's API.
fn expected_view(conversation: &Conversation) -> View {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    conversation.write(store.clone());
    let expected = view(store, conversation);
    // The view itself is right: history is in timestamp order, every item
    // is found by its id, nothing is missing.
    for (room, ids) in conversation.rooms.iter().zip(&expected.history) {
        let mut in_room: Vec<&Envelope> = conversation
            .messages
            .iter()
            .filter(|m| m.body.header.room == room.id)
            .collect();
        in_room.sort_by_key(|m| (m.body.header.timestamp, m.id()));
        assert_eq!(
            *ids,
            in_room.iter().map(|m| m.id()).collect::<Vec<_>>(),
            "history of {} in timestamp order",
            room.name
        );
    }
    assert_eq!(
        expected.sync_items.len(),
        conversation.messages.len() + conversation.extras.len() + 2
    );
    assert!(expected.item_bytes.iter().all(Option::is_some));
    assert_eq!(expected.receipts[0].len(), 2);
    assert_eq!(expected.hidden, [conversation.rooms[2].id]);
    expected
}

/// Every regular file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("list").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).expect("read")));
            }
        }
    }
    out
}

/// The needles found in any file of the home at `root`, with where.
fn found_in_files(root: &Path, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let files = files_under(root);
    assert!(
        files
            .iter()
            .any(|(path, _)| path.starts_with(root.join("db"))),
        "the database is there to examine"
    );
    let mut found = Vec::new();
    for (label, needle) in needles {
        for (path, bytes) in &files {
            if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                found.push(format!("{label} in {}", path.display()));
            }
        }
    }
    found
}

fn open(root: &Path) -> Arc<dyn Store> {
    Arc::new(SledStore::open(Home::open_or_create(root).expect("home")).expect("open"))
}

#[test]
fn a_copied_home_shows_no_room_device_user_message_or_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let conversation = Conversation::new();
    let store = open(&root);
    conversation.write(store.clone());
    drop(store);

    let found = found_in_files(&root, &conversation.needles());
    assert!(
        found.is_empty(),
        "the home's files reveal:\n{}",
        found.join("\n")
    );

    // And the owner, with the PIN, reads it all back as it was written.
    assert_eq!(
        view(open(&root), &conversation),
        expected_view(&conversation)
    );
}

#[test]
fn a_store_killed_without_closing_shows_nothing_either() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let conversation = Conversation::new();
    let store = open(&root);
    conversation.write(store.clone());
    // A power cut: the files as they are now, nothing written at close.
    let copy = dir.path().join("copy");
    copy_dir(&root, &copy);
    let found = found_in_files(&copy, &conversation.needles());
    assert!(
        found.is_empty(),
        "the home's files reveal:\n{}",
        found.join("\n")
    );
    drop(store);
}

fn copy_dir(from: &Path, to: &Path) {
    for (path, bytes) in files_under(from) {
        let target = to.join(path.strip_prefix(from).expect("under"));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, bytes).expect("copy");
    }
}

/// A database as schema v1 wrote it: record keys in the clear (the old
/// code's formats, kept here), values sealed under the storage key bound
/// to tree and key.
#[derive(Default)]
struct V1Home {
    trees: BTreeMap<&'static str, Vec<Entry>>,
}

impl V1Home {
    fn put(&mut self, tree: &'static str, key: Vec<u8>, value: Vec<u8>) {
        self.trees.entry(tree).or_default().push((key, value));
    }

    fn of(conversation: &Conversation) -> Self {
        let mut v1 = V1Home::default();
        let message_key = |envelope: &Envelope| {
            let header = &envelope.body.header;
            let mut key = header.room.0.to_vec();
            key.extend(header.timestamp.wall_ms.to_be_bytes());
            key.extend(header.timestamp.counter.to_be_bytes());
            key.extend(envelope.id());
            key
        };
        let item_key = |time_ms: u64, id: [u8; 32]| {
            let mut key = time_ms.to_be_bytes().to_vec();
            key.extend(id);
            key
        };
        for room in &conversation.rooms {
            v1.put("rooms", room.id.0.to_vec(), wire::encode(room));
        }
        for (room, epoch, key) in &conversation.keys {
            let mut id = room.0.to_vec();
            id.extend(epoch.number.to_be_bytes());
            id.extend(epoch.key_id);
            v1.put("room_keys", id, key.expose_bytes().to_vec());
        }
        for (device, chain) in &conversation.devices {
            v1.put("devices", device.0.to_vec(), wire::encode(chain));
        }
        for envelope in &conversation.messages {
            v1.put("messages", message_key(envelope), wire::encode(envelope));
        }
        for envelope in &conversation.extras {
            v1.put("extras", message_key(envelope), wire::encode(envelope));
        }
        for id in &conversation.mine {
            v1.put("mine", id.to_vec(), Vec::new());
        }
        for (id, device, state) in &conversation.receipts {
            let mut key = id.to_vec();
            key.extend(device.0);
            let byte = match state {
                ReceiptState::StoredByRelay => 1,
                ReceiptState::Delivered => 2,
                ReceiptState::Read => 3,
            };
            v1.put("receipts", key, vec![byte]);
        }
        for id in &conversation.seen {
            v1.put("seen", id.to_vec(), Vec::new());
        }
        for envelope in &conversation.outbox {
            v1.put("outbox", envelope.id().to_vec(), wire::encode(envelope));
        }
        for (room, ids) in &conversation.unread {
            v1.put("unread", room.0.to_vec(), ids.concat());
        }
        v1.put(
            "hidden_rooms",
            conversation.rooms[2].id.0.to_vec(),
            Vec::new(),
        );
        for frame in &conversation.control {
            let sent_at = wire::decode::<SignedFrame>(frame)
                .expect("frame")
                .body
                .sent_at;
            let id = *blake3::hash(frame).as_bytes();
            v1.put("control", item_key(sent_at * 1000, id), frame.clone());
        }
        let id = conversation.arrival.id;
        v1.put(
            "revocations",
            item_key(conversation.revoked_at * 1000, id),
            conversation.revocation.clone(),
        );
        let mut arrival = conversation.arrival.number.to_be_bytes().to_vec();
        arrival.extend(conversation.arrival.received_at.to_be_bytes());
        v1.put("revocation_arrivals", id.to_vec(), arrival);
        v1.put(
            "revocation_records",
            id.to_vec(),
            wire::encode(&conversation.record),
        );
        v1.put(
            "revocation_sightings",
            id.to_vec(),
            conversation.sighting.to_be_bytes().to_vec(),
        );
        v1.put(
            "rotation_due",
            conversation.rotation.0.0.to_vec(),
            conversation.rotation.1.to_be_bytes().to_vec(),
        );
        v1.put(
            "agency_policy",
            b"last_met".to_vec(),
            conversation.lease.last_met.to_be_bytes().to_vec(),
        );
        v1.put(
            "agency_policy",
            b"latest".to_vec(),
            conversation.lease.latest.to_be_bytes().to_vec(),
        );
        v1
    }

    /// Writes it as the database of a new home at `root`, closed cleanly.
    fn write(&self, root: &Path) {
        let home = Home::open_or_create(root).expect("home");
        let db = sled::open(home.database_dir()).expect("sled");
        let meta = db.open_tree("__baro_meta").expect("meta");
        meta.insert(b"schema_version", &1u32.to_le_bytes())
            .expect("version");
        meta.insert(b"closed_cleanly", &[][..]).expect("clean");
        for (tree, records) in &self.trees {
            let sled_tree = db.open_tree(tree).expect("tree");
            for (key, value) in records {
                let mut aad = tree.as_bytes().to_vec();
                aad.push(0);
                aad.extend_from_slice(key);
                let sealed = home
                    .storage_key()
                    .seal(&aad, value, &mut crate::identity::OsEntropy);
                sled_tree
                    .insert(&key[..], wire::encode(&crate::crypto::SealedRecord(sealed)))
                    .expect("insert");
            }
        }
        db.flush().expect("flush");
    }

    fn records(&self) -> usize {
        self.trees.values().map(Vec::len).sum()
    }
}

/// The home's top-level entries, sorted.
fn entries(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_v1_home_is_migrated_at_first_open_with_every_message_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let conversation = Conversation::new();
    V1Home::of(&conversation).write(&root);
    // The examiner's scan does find what v1 kept in the clear.
    let before = found_in_files(&root, &conversation.needles());
    for what in ["room id", "device key", "message time ms", "revocation id"] {
        assert!(
            before.iter().any(|found| found.starts_with(what)),
            "a v1 home shows {what}: {before:?}"
        );
    }

    let store = open(&root);
    assert_eq!(store.schema_version().expect("version"), 2);
    assert_eq!(
        view(store.clone(), &conversation),
        expected_view(&conversation)
    );
    drop(store);
    assert!(
        !entries(&root).iter().any(|name| name.starts_with("db.")),
        "no migration leftovers: {:?}",
        entries(&root)
    );
    let after = found_in_files(&root, &conversation.needles());
    assert!(
        after.is_empty(),
        "the migrated home reveals:\n{}",
        after.join("\n")
    );
    // Opened again: nothing to migrate, the same content.
    assert_eq!(
        view(open(&root), &conversation),
        expected_view(&conversation)
    );
}

#[test]
fn a_migration_interrupted_at_any_point_loses_nothing() {
    let conversation = Conversation::new();
    let v1 = V1Home::of(&conversation);
    let expected = expected_view(&conversation);
    let mut stops = vec![
        migration::Until::Records(1),
        migration::Until::Records(v1.records() / 2),
        migration::Until::Records(v1.records() - 1),
    ];
    stops.extend((1..=4).map(migration::Until::Step));
    for stop in stops {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("home");
        v1.write(&root);
        {
            let home = Home::open_or_create(&root).expect("home");
            migration::run(&home, 1, stop).expect("migration up to the crash");
        }
        let store = open(&root);
        assert_eq!(store.schema_version().expect("version"), 2, "{stop:?}");
        assert_eq!(
            view(store.clone(), &conversation),
            expected,
            "after a crash at {stop:?}"
        );
        drop(store);
        assert_eq!(
            entries(&root)
                .iter()
                .filter(|n| n.starts_with("db"))
                .collect::<Vec<_>>(),
            ["db"],
            "after a crash at {stop:?}"
        );
        let found = found_in_files(&root, &conversation.needles());
        assert!(found.is_empty(), "after a crash at {stop:?}: {found:?}");
    }
}

#[test]
fn a_wipe_in_the_middle_of_a_migration_leaves_no_copy_behind() {
    let conversation = Conversation::new();
    let v1 = V1Home::of(&conversation);
    for step in 1..=4 {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("home");
        v1.write(&root);
        let home = Home::open_or_create(&root).expect("home");
        migration::run(&home, 1, migration::Until::Step(step)).expect("migration");
        home.wipe(None).expect("wipe");
        let left: Vec<String> = entries(&root)
            .into_iter()
            .filter(|name| name.starts_with("db"))
            .collect();
        assert!(left.is_empty(), "after step {step}: {left:?}");
    }
}

#[test]
fn tags_are_stable_per_home_and_differ_between_homes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let tag_a = open(&a).tag(&[b"rooms", b"id", &[1; 32]]).expect("tag");
    assert_eq!(
        open(&a).tag(&[b"rooms", b"id", &[1; 32]]).expect("tag"),
        tag_a,
        "the same after reopening"
    );
    assert_ne!(
        open(&b).tag(&[b"rooms", b"id", &[1; 32]]).expect("tag"),
        tag_a
    );
    let store = open(&a);
    store.wipe(None).expect("wipe");
    assert!(matches!(store.tag(&[b"x"]), Err(StoreError::Wiped)));
}

/// Set in the child process of the test below: the home to migrate and
/// where to stop (an index into [`kill_points`]).
const MIGRATION_CHILD: &str = "BARO_TEST_MIGRATION_CHILD";

fn kill_points(records: usize) -> Vec<migration::Until> {
    let mut points = vec![
        migration::Until::Records(1),
        migration::Until::Records(records / 2),
    ];
    points.extend((1..=4).map(migration::Until::Step));
    points.push(migration::Until::End);
    points
}

/// A real process runs the migration up to a point and dies there
/// (`abort`: no destructor runs, nothing is flushed or closed); the next
/// open finds every message, in order.
#[test]
fn a_migration_killed_at_any_point_loses_nothing() {
    let conversation = Conversation::new();
    let v1 = V1Home::of(&conversation);
    let points = kill_points(v1.records());
    if let Ok(spec) = std::env::var(MIGRATION_CHILD) {
        let (root, point) = spec.split_once('|').expect("root|point");
        let point = points[point.parse::<usize>().expect("point")];
        let home = Home::open_or_create(Path::new(root)).expect("home");
        migration::run(&home, 1, point).expect("migration up to the kill");
        std::process::abort();
    }
    let expected = expected_view(&conversation);
    for (n, point) in points.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("home");
        v1.write(&root);
        let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "store::forensic_tests::a_migration_killed_at_any_point_loses_nothing",
                "--test-threads=1",
            ])
            .env(MIGRATION_CHILD, format!("{}|{n}", root.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("child");
        // SIGABRT: it got there (a panic before would exit with 101).
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(6),
            "the child died at {point:?}: {status}"
        );
        let store = open(&root);
        assert_eq!(store.schema_version().expect("version"), 2, "{point:?}");
        assert_eq!(
            view(store.clone(), &conversation),
            expected,
            "killed at {point:?}"
        );
        drop(store);
        let found = found_in_files(&root, &conversation.needles());
        assert!(found.is_empty(), "killed at {point:?}: {found:?}");
    }
}
