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

#[test]
fn the_agency_s_largest_file_size_set_by_the_operator_is_obeyed_by_a_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, [kim]) = agency_with(dir.path(), ROOM, ["kim"]);
    let said = operator
        .run([
            "agency",
            "policy",
            "set",
            "--lease-days",
            "0",
            "--max-file-mb",
            "1",
        ])
        .success();
    assert!(
        said.contains("Agency policy version 1: no lease, 10 wrong PINs, files up to 1 MiB")
            && said.contains("files of at most 1 MiB"),
        "{said}"
    );
    operator
        .run([
            "agency",
            "policy",
            "set",
            "--lease-days",
            "0",
            "--max-file-mb",
            "129",
        ])
        .fails_with("the largest file size must be 1 to 128 MiB, not 129");
    let console = start_on_loopback(&operator, None);
    let address = listen_address(&operator);
    let kim_node = start_on_loopback(&kim, Some(&address));
    eventually(60, "Kim's device takes the policy", || {
        let status = kim.run(["--json", "status"]);
        (status.output.status.success() && status.json()["policy"]["max_file_mb"] == 1)
            .then_some(())
    });
    let big = dir.path().join("2mib.pdf");
    std::fs::write(&big, vec![7u8; 2 << 20]).expect("write");
    kim.run(baro_tests::args(&["send", ROOM, "--file"], &[&big]))
        .fails_with("2mib.pdf is 2.0 MiB, over the agency's limit of 1.0 MiB for a file");
    let small = dir.path().join("512kib.pdf");
    std::fs::write(&small, vec![8u8; 512 << 10]).expect("write");
    eventually(60, "512 KiB is sent", || {
        kim.run(baro_tests::args(&["send", ROOM, "--file"], &[&small]))
            .output
            .status
            .success()
            .then_some(())
    });
    let files = kim.run(["--json", "files", ROOM]).json();
    assert_eq!(files[0]["attachment"]["size"], 512 << 10, "{files}");
    assert!(kim_node.stop() && console.stop(), "nodes stop cleanly");
}
