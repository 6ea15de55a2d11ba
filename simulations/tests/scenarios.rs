//! The small scenarios, run in CI on real nodes over shaped links: they must
//! deliver everything.

use std::path::PathBuf;

use baro_sim::progress::Progress;
use baro_sim::run::{Options, run};
use baro_sim::scenario::Scenario;

fn scenario(name: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&path).expect("scenario loads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn office_chat_delivers_every_message_to_every_official() {
    let report = run(
        &scenario("office-chat"),
        &Options::default(),
        &Progress::lines(),
    )
    .await
    .expect("runs");
    eprintln!("{}", report.markdown());
    assert_eq!(report.devices, 12);
    assert_eq!(report.messages, 40);
    assert_eq!(report.delivery_after_sync, 1.0, "{report:?}");
    assert!(report.latency_p50_ms > 0.0);
}

#[test]
fn a_bad_scenario_is_a_one_line_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"x\"\n[topology]\noffices = 0\ndevices_per_office = 1\n[traffic]\nmessages = 1\nper_minute = 1\n",
    )
    .expect("write");
    let error = Scenario::load(&path).expect_err("refused").to_string();
    assert!(error.contains("topology.offices"), "{error}");
    std::fs::write(&path, "name = \"x\"\nunknown = 1\n").expect("write");
    assert!(Scenario::load(&path).is_err());
    assert!(Scenario::load(&dir.path().join("missing.toml")).is_err());
}

#[test]
fn a_scenario_with_an_endless_or_negative_time_is_refused() {
    // TOML allows inf and nan, and each of these passed the check, then
    // panicked when the run built its schedule (Duration::from_secs_f64 of
    // inf, nan or a negative number, or a duration overflow); reproduced
    // through the scenario fuzz target (fuzz/).
    let base = "name = \"x\"\n[topology]\noffices = 1\ndevices_per_office = 4\n";
    let traffic = "[traffic]\nmessages = 10\nper_minute = 60\n";
    for (what, text) in [
        (
            "partition at inf",
            format!("{base}{traffic}[[partitions]]\noffice = 0\nat_secs = inf\nfor_secs = 1\n"),
        ),
        (
            "partition for nan",
            format!("{base}{traffic}[[partitions]]\noffice = 0\nat_secs = 0\nfor_secs = nan\n"),
        ),
        (
            "churn offline inf",
            format!("{base}{traffic}[churn]\nfraction = 0.5\noffline_secs = inf\n"),
        ),
        (
            "revocation before the start",
            format!("{base}{traffic}[[revocations]]\noffice = 0\ndevice = 0\nat_secs = -1\n"),
        ),
        (
            "return after 1e300 s",
            format!(
                "{base}{traffic}[[revocations]]\noffice = 0\ndevice = 0\nat_secs = 1\nreturns_at_secs = 1e300\n"
            ),
        ),
        (
            "traffic over 1e300 s",
            format!("{base}[traffic]\nmessages = 10\nper_minute = 1e-300\n"),
        ),
        (
            "5 billion messages",
            format!("{base}[traffic]\nmessages = 5000000000\nper_minute = 1e12\n"),
        ),
    ] {
        let scenario: Scenario = toml::from_str(&text).expect(what);
        assert!(scenario.check().is_err(), "{what} accepted");
    }
    let fine: Scenario = toml::from_str(&format!("{base}{traffic}")).expect("parses");
    fine.check().expect("a plain scenario passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_heal_converges_after_the_link_is_back() {
    let report = run(
        &scenario("partition-heal"),
        &Options::default(),
        &Progress::lines(),
    )
    .await
    .expect("runs");
    eprintln!("{}", report.markdown());
    // Whether gossip's own retransmissions or a sync tick heal the gap
    // before the run stops watching depends on timing; what does not is
    // that nothing crosses the cut while it lasts, and that every message
    // reaches every device once it has healed.
    assert!(report.sent_across_cut > 0, "{report:?}");
    assert_eq!(
        report.crossed_during_cut, 0,
        "messages crossed a cut link: {report:?}"
    );
    assert_eq!(report.delivery_after_sync, 1.0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_online_node_and_the_revoked_devices_wipe() {
    let report = run(
        &scenario("revocation"),
        &Options::default(),
        &Progress::lines(),
    )
    .await
    .expect("runs");
    eprintln!("{}", report.markdown());
    assert_eq!(report.revocations.len(), 2);
    for revocation in &report.revocations {
        assert!(revocation.convergence_ms.is_some(), "{revocation:?}");
        assert!(revocation.wipe_ms.is_some(), "{revocation:?}");
    }
    assert!(report.revocations[1].offline);
    assert_eq!(report.delivery_after_sync, 1.0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_attack_honest_officials_get_their_messages_and_accept_no_forgery() {
    let mut attack = scenario("attack");
    // Fewer messages than the file: a debug build on 2 cores in CI.
    attack.traffic.messages = 20;
    let report = run(&attack, &Options::default(), &Progress::lines())
        .await
        .expect("runs");
    eprintln!("{}", report.markdown());
    assert_eq!(report.attackers, 4);
    assert!(report.forgeries_sent > 0);
    assert_eq!(report.forgeries_accepted, 0, "{report:?}");
    assert!(report.delivery_after_sync >= 0.99, "{report:?}");
}
