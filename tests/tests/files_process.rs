//! End to end with real `baro` processes: `send --file`, `history` showing
//! the attachment as a line, `files --json`, `fetch --out` writing the
//! same bytes, and the clear one-line errors for files that cannot be sent.

use baro_tests::{agency_with, eventually, listen_address, start_on_loopback};

const ROOM: &str = "MOIS/Division 2";

#[test]
fn a_file_sent_from_the_command_line_is_listed_and_fetched_with_the_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, [kim, lee]) = agency_with(dir.path(), ROOM, ["kim", "lee"]);
    let kim_node = start_on_loopback(&kim, None);
    let address = listen_address(&kim);
    let lee_node = start_on_loopback(&lee, Some(&address));
    eventually(60, "the two nodes met", || {
        let status = lee.run(["--json", "status"]);
        (status.output.status.success() && status.json()["peers"].as_u64() >= Some(1)).then_some(())
    });
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 77)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let path = dir.path().join("출장보고서.pdf");
    std::fs::write(&path, &data).expect("write");

    // What cannot be sent is refused in one line, before any node is asked.
    let missing = dir.path().join("nowhere.pdf");
    kim.run(baro_tests::args(&["send", ROOM, "--file"], &[&missing]))
        .fails_with("nowhere.pdf: no such file");
    kim.run(baro_tests::args(&["send", ROOM, "--file"], &[dir.path()]))
        .fails_with("is not a regular file");
    let huge = dir.path().join("huge.bin");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(101 << 20))
        .expect("sparse file");
    kim.run(baro_tests::args(&["send", ROOM, "--file"], &[&huge]))
        .fails_with("over the limit of 100.0 MiB");

    eventually(60, "the file is sent", || {
        kim.run(baro_tests::args(
            &["send", ROOM, "--text", "3쪽 보고서", "--file"],
            &[&path],
        ))
        .output
        .status
        .success()
        .then_some(())
    });
    let file_id = eventually(60, "Lee lists the file", || {
        let files = lee.run(["--json", "files", ROOM]);
        let files = files.json();
        let file = files.as_array()?.first()?.get("attachment")?.clone();
        assert_eq!(file["name"], "출장보고서.pdf");
        assert_eq!(file["size"], data.len() as u64);
        file["file_id"].as_str().map(str::to_string)
    });
    let history = lee.run(["history", ROOM]).success();
    assert!(
        history.contains("📎 출장보고서.pdf (3.0 MiB, 0% here)") && history.contains("3쪽 보고서"),
        "history shows the attachment as a line: {history}"
    );
    let out = dir.path().join("received.pdf");
    lee.run(baro_tests::args(
        &["fetch", ROOM, &file_id[..10], "--out"],
        &[&out],
    ))
    .success();
    assert!(
        std::fs::read(&out).expect("written") == data,
        "identical bytes"
    );
    lee.run(baro_tests::args(
        &["fetch", ROOM, &file_id[..10], "--out"],
        &[&out],
    ))
    .fails_with("already exists");
    let listed = lee.run(["files", ROOM]).success();
    assert!(listed.contains("100%"), "held here now: {listed}");
    assert!(lee_node.stop() && kim_node.stop(), "nodes stop cleanly");
}
