//! Ready-made message histories and forgeries for sync and relay tests,
//! built with the real messenger and stores.

use std::sync::Arc;

use baro_node::Credentials;
use baro_node::identity::OsEntropy;
use baro_node::rooms::{Messenger, RoomId};
use baro_node::store::{MessageLog, Store};
use baro_node::testing::T0;
use baro_node::trust::TrustPolicy;
use baro_node::wire::{self, Content};

const NOW: u64 = T0 + 86_400;

/// A messenger for `credentials`, with a key for its own department room.
fn messenger_with_key(credentials: &Credentials) -> (Messenger, RoomId) {
    let me = credentials
        .chain
        .verify_for(
            credentials.key.device_id(),
            &credentials.agency,
            NOW,
            &TrustPolicy::default(),
        )
        .expect("certified");
    let room = RoomId::department(&credentials.agency.id(), &me.subject.org_unit);
    let mut messenger = Messenger::new(credentials.key.clone(), me);
    messenger
        .ensure_key(room, NOW, &mut OsEntropy)
        .expect("department room");
    (messenger, room)
}

/// Writes `count` real text envelopes by `credentials`' device in its
/// department room into every store in `stores` (with the room key and the
/// sender's certificate, as if each device had received them); returns how
/// many were written.
pub fn fill_department_history(
    credentials: &Credentials,
    stores: &[Arc<dyn Store>],
    count: usize,
) -> usize {
    let (mut messenger, room) = messenger_with_key(credentials);
    let logs: Vec<MessageLog> = stores.iter().cloned().map(MessageLog::new).collect();
    for (room_id, epoch, key) in messenger.take_new_keys() {
        for log in &logs {
            log.save_key(room_id, epoch, &key).expect("save key");
        }
    }
    for log in &logs {
        log.save_device(&credentials.key.public(), &credentials.chain)
            .expect("save device");
    }
    for i in 0..count {
        let envelope = messenger
            .send(
                room,
                &Content::Text(format!("archived note {i}")),
                NOW * 1000 - 1_000_000 + i as u64,
                &mut OsEntropy,
            )
            .expect("seal");
        for log in &logs {
            log.save_envelope(&envelope).expect("save");
        }
    }
    count
}

/// A text envelope by `credentials`' device in its department room with one
/// ciphertext byte flipped: its signature no longer verifies.
pub fn forged_envelope(credentials: &Credentials) -> (RoomId, Vec<u8>) {
    let (mut messenger, room) = messenger_with_key(credentials);
    let envelope = messenger
        .send(
            room,
            &Content::Text("transfer the funds".into()),
            NOW * 1000,
            &mut OsEntropy,
        )
        .expect("seal");
    let mut bytes = wire::encode(&envelope);
    // The signature is the last 64 bytes; just before it is ciphertext.
    let at = bytes.len() - 80;
    bytes[at] ^= 0x01;
    (room, bytes)
}
