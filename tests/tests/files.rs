//! Attachments over real in-process meshes (issue 19): a file reaches
//! every member with identical bytes, from any holder (several at once),
//! through a relay after its sender left, resumes after a restart without
//! losing what it held, is refused to devices outside its room, and a
//! relay keeps chunks within its own quota, oldest out first; a photo's
//! preview arrives with its message, before the photo, without its GPS tag;
//! the agency policy's largest file size bounds what is sent and fetched.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baro_node::api::MessageView;
use baro_node::config::{NodeConfig, RelayConfig};
use baro_node::net::TransportKind;
use baro_node::store::{ChunkStore, Home, MemoryStore, SledStore, Store};
use baro_node::wire::{ChunkRequest, ChunkResponse};
use baro_node::{Node, NodeBuilder, NodeEvent};
use baro_tests::mesh::{
    DIV, SETTLE, TestAgency, listen_address, memory_config, send, three_connected_officials,
    wait_for, wait_for_message,
};

const MIB: usize = 1 << 20;
/// Longest wait for a whole file.
const TRANSFER: Duration = Duration::from_secs(180);

/// `len` bytes that differ from chunk to chunk (a xorshift stream).
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the file to send");
    path
}

/// Sends a file, retrying while the room's first key is on its way.
async fn send_file(node: &Node, room: &str, path: &Path, caption: &str) {
    send_file_with(node, room, path, caption, false).await
}

/// [`send_file`], keeping a photo's metadata or not.
async fn send_file_with(node: &Node, room: &str, path: &Path, caption: &str, keep_metadata: bool) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        match node
            .handle()
            .send_file(room, path, caption, keep_metadata)
            .await
        {
            Ok(_) => return,
            Err(e)
                if tokio::time::Instant::now() < deadline
                    && e.to_string().contains("holds no key") =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("send failed: {e}"),
        }
    }
}

/// Waits for the message carrying a file with `caption`.
async fn wait_for_file(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    caption: &str,
) -> MessageView {
    let message = wait_for_message(events, caption).await;
    assert!(message.attachment.is_some(), "the message carries the file");
    message
}

/// Fetches the file of `message` into `out` and returns its bytes,
/// waiting for the node to hold all of it.
async fn fetch(node: &Node, message: &MessageView, out: &Path) -> Vec<u8> {
    let file = &message.attachment.as_ref().expect("a file").file_id;
    let mut events = node.handle().events();
    let view = node
        .handle()
        .fetch_file(DIV, file, Some(out))
        .await
        .expect("fetch starts");
    let attachment = view.attachment.expect("a file");
    if attachment.held < attachment.chunks {
        // A debug build on a loaded machine moves a few MiB a second.
        tokio::time::timeout(TRANSFER, async {
            loop {
                match events.recv().await {
                    Ok(NodeEvent::FileProgress(view))
                        if view
                            .attachment
                            .as_ref()
                            .is_some_and(|a| a.file_id == *file && a.held == a.chunks) =>
                    {
                        return;
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("node stopped: {e}"),
                }
            }
        })
        .await
        .expect("the whole file arrives");
        node.handle()
            .fetch_file(DIV, file, Some(out))
            .await
            .expect("saved");
    }
    std::fs::read(out).expect("the fetched file is written")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mib_file_reaches_two_members_with_identical_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [kim, lee, choi] = three_connected_officials(191).await;
    let data = content(20 * MIB, 1);
    let path = write_file(dir.path(), "현장 보고서.pdf", &data);
    let mut lee_events = lee.handle().events();
    let mut choi_events = choi.handle().events();
    send_file(&kim, DIV, &path, "출장 보고서").await;
    let at_lee = wait_for_file(&mut lee_events, "출장 보고서").await;
    let at_choi = wait_for_file(&mut choi_events, "출장 보고서").await;
    let attachment = at_lee.attachment.clone().expect("file");
    assert_eq!(
        (
            attachment.name.as_str(),
            attachment.media_type.as_str(),
            attachment.size,
            attachment.chunks
        ),
        ("현장 보고서.pdf", "application/pdf", 20 * MIB as u64, 80)
    );
    assert_eq!(attachment.held, 0, "a document waits to be asked for");
    let lee_out = dir.path().join("lee.pdf");
    let choi_out = dir.path().join("choi.pdf");
    let (at_lee_bytes, at_choi_bytes) = tokio::join!(
        fetch(&lee, &at_lee, &lee_out),
        fetch(&choi, &at_choi, &choi_out)
    );
    assert!(at_lee_bytes == data, "Lee's copy is identical");
    assert!(at_choi_bytes == data, "Choi's copy is identical");
    let listed = lee.handle().files(DIV).await.expect("files");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attachment.as_ref().map(|a| a.held), Some(80));
    let again = lee
        .handle()
        .fetch_file(DIV, &attachment.file_id, Some(&lee_out))
        .await;
    assert!(
        again
            .expect_err("no overwrite")
            .to_string()
            .contains("already exists"),
        "an existing file is never overwritten"
    );
}

fn open_sled(dir: &Path) -> Arc<dyn Store> {
    let home = Home::open_or_create_with(dir, &baro_tests::test_unlock()).expect("home");
    Arc::new(SledStore::open(home).expect("sled"))
}

async fn wait_for_relay_chunks(relay: &Node, count: usize) {
    let deadline = tokio::time::Instant::now() + TRANSFER;
    loop {
        let status = relay.handle().status().await.expect("status");
        if status.file_chunks >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay holds {} of {count} chunks",
            status.file_chunks
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_reaches_a_device_that_was_offline_through_the_relay_after_its_sender_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agency = TestAgency::new(192);
    let relay_store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let relay_credentials = agency.relay("relay-seoul");
    let relay = agency.spawn_relay(relay_credentials, &[], relay_store.clone());
    let bootstrap = [listen_address(&relay).await.expect("relay listens")];
    let ahn_credentials = agency.member("ahn");
    let ahn = agency.spawn(ahn_credentials, &bootstrap);
    let baek_credentials = agency.member("baek");
    let baek = agency.spawn_with_store(
        baek_credentials.clone(),
        &bootstrap,
        open_sled(&dir.path().join("baek")),
    );
    for node in [&relay, &ahn, &baek] {
        node.handle().wait_for_peers(2, SETTLE).await.expect("mesh");
    }
    // Baek reads the room once, then goes offline.
    let mut events = baek.handle().events();
    send(&ahn, DIV, "출발합니다").await;
    wait_for_message(&mut events, "출발합니다").await;
    baek.shutdown().await;

    let data = content(5 * MIB, 2);
    let path = write_file(dir.path(), "photo-of-document.bin", &data);
    send_file(&ahn, DIV, &path, "계약서 사본").await;
    wait_for_relay_chunks(&relay, 20).await;
    ahn.shutdown().await;

    let baek = agency.spawn_with_store(
        baek_credentials,
        &bootstrap,
        open_sled(&dir.path().join("baek")),
    );
    baek.handle()
        .wait_for_peers(1, SETTLE)
        .await
        .expect("the relay");
    let deadline = tokio::time::Instant::now() + SETTLE;
    let message = loop {
        let files = baek.handle().files(DIV).await.expect("files");
        if let Some(message) = files.into_iter().find(|m| m.text == "계약서 사본") {
            break message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the file's message arrives"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let out = dir.path().join("baek.bin");
    assert!(
        fetch(&baek, &message, &out).await == data,
        "identical bytes, from the relay"
    );
    let peers = baek.handle().peers().await.expect("peers");
    assert_eq!(peers.len(), 1, "only the relay was there: {peers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_stopped_half_way_resumes_with_what_it_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agency = TestAgency::new(193);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &[]);
    let bootstrap = [listen_address(&kim).await.expect("listening")];
    let lee_credentials = agency.member("lee");
    let lee_home = dir.path().join("lee");
    let lee = agency.spawn_with_store(lee_credentials.clone(), &bootstrap, open_sled(&lee_home));
    lee.handle().wait_for_peers(1, SETTLE).await.expect("peer");
    let data = content(5 * MIB, 3);
    let path = write_file(dir.path(), "scan.tif", &data);
    let mut events = lee.handle().events();
    send_file(&kim, DIV, &path, "스캔본").await;
    let message = wait_for_file(&mut events, "스캔본").await;
    let file = message.attachment.clone().expect("file").file_id;
    lee.handle()
        .fetch_file(DIV, &file, None)
        .await
        .expect("fetch starts");
    let before = wait_for(&mut events, "part of the file", |event| match event {
        NodeEvent::FileProgress(view) => view
            .attachment
            .as_ref()
            .filter(|a| a.held >= 6)
            .map(|a| a.held),
        _ => None,
    })
    .await;
    lee.shutdown().await;

    let lee = agency.spawn_with_store(lee_credentials, &bootstrap, open_sled(&lee_home));
    lee.handle().wait_for_peers(1, SETTLE).await.expect("peer");
    let listed = lee.handle().files(DIV).await.expect("files");
    let held = listed[0].attachment.as_ref().expect("file").held;
    assert!(
        held >= before,
        "held {held} after the restart, {before} before"
    );
    assert!(held < 20, "the file was not complete yet");
    let mut events = lee.handle().events();
    lee.handle()
        .fetch_file(DIV, &file, None)
        .await
        .expect("fetch resumes");
    // Each chunk stored after the restart is one more than before it: the
    // first progress counts on from what was held.
    let first = wait_for(&mut events, "progress", |event| match event {
        NodeEvent::FileProgress(view) => view.attachment.as_ref().map(|a| a.held),
        _ => None,
    })
    .await;
    assert_eq!(first, held + 1, "nothing held was fetched again");
    let out = dir.path().join("scan-lee.tif");
    assert!(fetch(&lee, &message, &out).await == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_are_refused_to_a_certified_device_outside_the_room_by_member_and_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agency = TestAgency::new(194);
    let relay_store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let relay_credentials = agency.relay("relay-seoul");
    let relay = agency.spawn_relay(relay_credentials, &[], relay_store.clone());
    let bootstrap = [listen_address(&relay).await.expect("relay listens")];
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &bootstrap);
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, &bootstrap);
    let choi_credentials = agency.member("choi");
    let choi = agency.spawn(choi_credentials, &bootstrap);
    for node in [&relay, &kim, &lee, &choi] {
        node.handle().wait_for_peers(3, SETTLE).await.expect("mesh");
    }
    let group = kim
        .handle()
        .create_group("예산", vec!["lee".into()])
        .await
        .expect("group");
    let mut events = lee.handle().events();
    let data = content(600 * 1024, 4);
    let path = write_file(dir.path(), "budget.xlsx", &data);
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        match kim
            .handle()
            .send_file(&group.id, &path, "예산안", false)
            .await
        {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("send failed: {e}"),
        }
    }
    wait_for_file(&mut events, "예산안").await;
    wait_for_relay_chunks(&relay, 3).await;
    let hash = *ChunkStore::open(relay_store)
        .expect("relay chunks")
        .hashes()
        .next()
        .expect("a chunk");
    let room = baro_node::rooms::RoomId(
        hex::decode(&group.id)
            .expect("hex")
            .try_into()
            .expect("32 bytes"),
    );
    let ask = ChunkRequest::Get { room, hash };
    for holder in [&kim, &relay] {
        let refused = choi
            .handle()
            .raw_chunk_request(holder.handle().device(), ask.clone())
            .await
            .expect("answered");
        assert_eq!(refused, ChunkResponse::Refused, "Choi is not in the group");
        let served = lee
            .handle()
            .raw_chunk_request(holder.handle().device(), ask.clone())
            .await
            .expect("answered");
        assert!(
            matches!(served, ChunkResponse::Chunk(ref c) if baro_node::crypto::chunk_hash(c) == hash),
            "Lee is"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_keeps_chunks_within_its_quota_oldest_out_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agency = TestAgency::new(195);
    let relay = NodeBuilder::new(agency.relay("relay-small"))
        .config(NodeConfig {
            relay: Some(RelayConfig {
                max_files_mb: 1,
                ..RelayConfig::default()
            }),
            ..memory_config(&[])
        })
        .transport(TransportKind::Memory)
        .clock(Arc::new(agency.clock.clone()))
        .store(Arc::new(MemoryStore::new()))
        .spawn()
        .expect("relay starts");
    let bootstrap = [listen_address(&relay).await.expect("relay listens")];
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &bootstrap);
    kim.handle().wait_for_peers(1, SETTLE).await.expect("relay");
    let first = write_file(dir.path(), "first.bin", &content(700 * 1024, 5));
    send_file(&kim, DIV, &first, "first").await;
    wait_for_relay_chunks(&relay, 3).await;
    let second = write_file(dir.path(), "second.bin", &content(700 * 1024, 6));
    send_file(&kim, DIV, &second, "second").await;
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let status = relay.handle().status().await.expect("status");
        assert!(
            status.file_bytes <= MIB as u64,
            "within the quota: {}",
            status.file_bytes
        );
        if status.file_chunks == 3 && status.file_bytes > 600 * 1024 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second file replaces the first"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 1600×1200 JPEG with an EXIF segment naming a GPS position, and the
/// same JPEG without it.
fn photo_with_gps() -> (Vec<u8>, Vec<u8>) {
    let image = image::RgbImage::from_fn(1600, 1200, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 64;
        image::Rgb([(x / 7) as u8, (y / 5) as u8, n as u8 * 3])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&image)
        .expect("encode");
    // TIFF, little endian: IFD0 with a GPS IFD pointer; the GPS IFD with
    // GPSLatitudeRef "N"; then the position as text.
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend(1u16.to_le_bytes());
    tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0, 26, 0, 0, 0]);
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(1u16.to_le_bytes());
    tiff.extend([0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(GPS_TEXT);
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xff, 0xe1]);
    out.extend(((segment.len() + 2) as u16).to_be_bytes());
    out.extend(segment);
    out.extend(&jpeg[2..]);
    (out, jpeg)
}

const GPS_TEXT: &[u8] = b"GPS-37.5665N-126.9780E";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_s_preview_arrives_before_the_photo_and_carries_no_gps_tag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [kim, lee, _choi] = three_connected_officials(196).await;
    let (photo, clean) = photo_with_gps();
    assert!(photo.windows(GPS_TEXT.len()).any(|w| w == GPS_TEXT));
    let path = write_file(dir.path(), "계약서.jpg", &photo);
    let mut events = lee.handle().events();
    send_file(&kim, DIV, &path, "현장 사진").await;
    let message = wait_for_file(&mut events, "현장 사진").await;
    let file = message.attachment.clone().expect("file");
    assert_eq!(file.media_type, "image/jpeg");
    assert_eq!(file.held, 0, "the message comes first");
    let preview = file.preview.expect("a preview in the message");
    let bytes = hex::decode(&preview.hex).expect("hex");
    assert!(bytes.len() <= 32 * 1024, "{} bytes", bytes.len());
    assert_eq!((preview.width, preview.height), (320, 240));
    for needle in [GPS_TEXT, &b"Exif"[..]] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "metadata in the preview"
        );
    }
    image::load_from_memory(&bytes).expect("the preview is an image");
    // A photo is fetched without being asked for.
    tokio::time::timeout(TRANSFER, async {
        loop {
            if let Ok(NodeEvent::FileProgress(view)) = events.recv().await
                && view.attachment.as_ref().is_some_and(|a| a.held == a.chunks)
            {
                return;
            }
        }
    })
    .await
    .expect("the photo arrives by itself");
    // The photo itself went without its EXIF (GPS): the encoder's bytes,
    // byte for byte.
    let out = dir.path().join("lee.jpg");
    let received = fetch(&lee, &message, &out).await;
    for needle in [GPS_TEXT, &b"Exif"[..]] {
        assert!(
            !received.windows(needle.len()).any(|w| w == needle),
            "metadata in the photo"
        );
    }
    assert!(received == clean, "the photo, only its metadata removed");
    assert_eq!(file.size, clean.len() as u64);

    // With --keep-metadata, the photo goes as it is.
    let path = write_file(dir.path(), "원본.jpg", &photo);
    send_file_with(&kim, DIV, &path, "원본 그대로", true).await;
    let message = wait_for_file(&mut events, "원본 그대로").await;
    let out = dir.path().join("lee-original.jpg");
    assert!(
        fetch(&lee, &message, &out).await == photo,
        "the photo as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_chunk_is_refused_its_server_penalised_and_the_file_comes_from_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [kim, lee, choi] = three_connected_officials(197).await;
    // 24 chunks: more than one peer may be asked at once (4 each), so
    // both holders are asked.
    let data = content(24 * 256 * 1024, 9);
    let path = write_file(dir.path(), "조서.bin", &data);
    let mut events = lee.handle().events();
    let mut choi_events = choi.handle().events();
    send_file(&kim, DIV, &path, "조서").await;
    let message = wait_for_file(&mut events, "조서").await;
    wait_for_file(&mut choi_events, "조서").await;
    // Choi holds it all, honestly; then Kim serves every chunk tampered.
    assert!(fetch(&choi, &message, &dir.path().join("choi.bin")).await == data);
    kim.handle()
        .tamper_served_chunks(true)
        .await
        .expect("kim turns");
    let mut rejections = lee.handle().events();
    let received = fetch(&lee, &message, &dir.path().join("lee.bin")).await;
    assert!(received == data, "the file arrives intact from Choi");
    let kim_peer = kim.handle().device().peer_id().expect("kim's peer id");
    let mut rejected = 0;
    while let Ok(event) = rejections.try_recv() {
        if let NodeEvent::ChunkRejected { from, reason } = event {
            assert_eq!(from, kim_peer, "only Kim served bad chunks");
            assert!(reason.contains("did not match its hash"), "{reason}");
            rejected += 1;
        }
    }
    // Kim is asked nothing after the first bad chunks: at most the 4
    // asked at once before the first answer.
    assert!((1..=4).contains(&rejected), "{rejected} rejections");
}

/// Sends a file, retrying while the room's first key is on its way;
/// `Err` with the node's refusal otherwise.
async fn try_send_file(node: &Node, path: &Path, caption: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        match node.handle().send_file(DIV, path, caption, false).await {
            Ok(_) => return Ok(()),
            Err(e)
                if tokio::time::Instant::now() < deadline
                    && e.to_string().contains("holds no key") =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agency_s_largest_file_size_reaches_a_device_which_then_sends_and_fetches_no_larger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agency = TestAgency::new(198);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &[]);
    let bootstrap = [listen_address(&kim).await.expect("listening")];
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, &bootstrap);
    for node in [&kim, &lee] {
        node.handle().wait_for_peers(1, SETTLE).await.expect("peer");
    }
    // Before any policy, Kim sends a 2 MiB document (its own limit is 100 MiB).
    let two_mib = content(2 * MIB, 10);
    let big = write_file(dir.path(), "2mib.pdf", &two_mib);
    let mut lee_events = lee.handle().events();
    try_send_file(&kim, &big, "before the policy")
        .await
        .expect("under the device's own limit");
    let early = wait_for_file(&mut lee_events, "before the policy").await;

    // The operator's policy (largest file 1 MiB) is handed to Lee's node
    // and reaches Kim's through the mesh.
    let mut kim_events = kim.handle().events();
    lee.handle()
        .submit_policy(agency.file_size_policy(1, 1))
        .await
        .expect("the operator's policy is taken");
    let view = wait_for(&mut kim_events, "the policy at Kim", |event| match event {
        NodeEvent::PolicyChanged(view) => Some(view.clone()),
        _ => None,
    })
    .await;
    assert_eq!((view.version, view.max_file_mb), (1, Some(1)));
    let status = kim.handle().status().await.expect("status");
    assert_eq!(
        (status.file_limit.bytes(), status.file_limit.is_agencys()),
        (MIB as u64, true)
    );
    assert!(
        status
            .policy
            .policy
            .as_deref()
            .is_some_and(|p| p.ends_with("files up to 1 MiB")),
        "{:?}",
        status.policy.policy
    );

    // Kim cannot send 2 MiB any more, and is told whose limit it is.
    let refused = try_send_file(&kim, &big, "after the policy")
        .await
        .expect_err("over the agency's limit");
    assert!(
        refused.ends_with("2mib.pdf is 2.0 MiB, over the agency's limit of 1.0 MiB for a file"),
        "{refused}"
    );
    // 512 KiB goes through, and reaches Lee intact.
    let half = content(MIB / 2, 11);
    let small = write_file(dir.path(), "512kib.pdf", &half);
    try_send_file(&kim, &small, "within the policy")
        .await
        .expect("under the agency's limit");
    let message = wait_for_file(&mut lee_events, "within the policy").await;
    assert!(fetch(&lee, &message, &dir.path().join("lee.pdf")).await == half);
    // The 2 MiB file sent before the policy is not fetched now.
    let file = &early.attachment.as_ref().expect("a file").file_id;
    let refused = lee
        .handle()
        .fetch_file(DIV, file, Some(&dir.path().join("lee-2mib.pdf")))
        .await
        .expect_err("over the agency's limit")
        .to_string();
    assert!(
        refused.ends_with(
            "this file is 2.0 MiB, over the agency's limit of 1.0 MiB for a file: not fetched"
        ),
        "{refused}"
    );
    let held = lee.handle().files(DIV).await.expect("files");
    let early_held = held
        .iter()
        .find(|m| m.text == "before the policy")
        .and_then(|m| m.attachment.as_ref())
        .map(|a| a.held);
    assert_eq!(early_held, Some(0), "no chunk of it was asked for");
}
