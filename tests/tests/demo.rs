//! The README's first command: `baro demo` runs every step of its narrated
//! tour with Korean officials, org units and messages (real homes, real nodes, the relay, a photo
//! of a document fetched through it, revocation and wipe, a killed
//! process, a thief's copy, a phone past its lease) to the end, in a
//! temporary directory it removes afterwards.

use std::process::Command;

use baro_tests::baro_bin;

#[test]
fn the_demo_runs_every_step_to_the_end() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let output = Command::new(baro_bin())
        .arg("demo")
        .current_dir(scratch.path())
        .env("TMPDIR", scratch.path())
        .output()
        .expect("baro demo starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "baro demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for step in 1..=12 {
        assert!(
            stdout.contains(&format!("\n{step}. ")),
            "step {step} is missing:\n{stdout}"
        );
    }
    for shown in [
        "in the agency directory",
        "removes 최서연: the group moves to a new key",
        "the phone hears of it",
        "all 3 messages are there once",
        "its EXIF says where: GPS 36°30′14″N 127°15′54″E",
        "(sealed: it cannot open them) to keep for the others",
        "the photo's message arrives with its preview (240×320,",
        "while 0 of its",
        "fetched from relay.sejong (the only peer up)",
        "no EXIF, no GPS position in what 이준호 received",
        "the copy is unreadable without her PIN",
        "no file in the copy names Kim",
        "erased its data after 10 wrong PINs",
        "at start the phone warns: lease ends in 2 days",
        "longer than the agency's lease of 14 days: local data erased",
        "Done.",
        "`baro demo --ui`",
    ] {
        assert!(stdout.contains(shown), "'{shown}' is missing:\n{stdout}");
    }
    let left: Vec<_> = std::fs::read_dir(scratch.path())
        .expect("scratch dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the demo left {left:?} behind");
}
