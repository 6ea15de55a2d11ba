//! Scenario files (TOML), as `baro-sim run` reads them: parsed, checked,
//! and, if accepted, turned into the run's timed schedule (any scenario the
//! check accepts must schedule without a panic).
#![no_main]

use baro_node::identity::SeededEntropy;
use baro_sim::run::schedule;
use baro_sim::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(scenario) = toml::from_str::<Scenario>(text) else {
        return;
    };
    if scenario.check().is_err() {
        return;
    }
    // As the run picks them: devices after the relays, the revoked ones
    // by office and index, attackers among the rest.
    let t = &scenario.topology;
    let relays = t.offices * t.relays_per_office;
    let devices: Vec<usize> = (relays..scenario.nodes()).collect();
    let targets: Vec<usize> = scenario
        .revocations
        .iter()
        .map(|r| relays + r.office * t.devices_per_office + r.device)
        .collect();
    let pool: Vec<usize> = devices
        .into_iter()
        .filter(|d| !targets.contains(d))
        .collect();
    let attackers = scenario.attack.as_ref().map_or(0, |a| {
        ((a.fraction * pool.len() as f64).round() as usize).min(pool.len().saturating_sub(2))
    });
    let (attackers, recipients) = pool.split_at(attackers);
    let mut rng = SeededEntropy::new(scenario.seed ^ 0x5eed);
    let actions = schedule(&scenario, recipients, &targets, attackers, &mut rng);
    assert!(actions.is_sorted_by_key(|(at, _)| *at));
});
