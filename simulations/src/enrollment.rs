//! Enrollment at scale: certify N devices, verify every chain, refuse tampered ones.

use std::time::Instant;

use anyhow::{Result, bail};
use baro_node::identity::{KeyPair, SeededEntropy};
use baro_node::trust::{
    CertificateChain, Enrollment, EnrollmentRequest, NewAgency, Role, Subject, TrustPolicy,
};
use baro_node::wire::{self, Domain};
use serde::Serialize;

/// Fixed start time so a seed fully determines the run.
const NOW: u64 = 1_800_000_000;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct EnrollmentScenario {
    /// Seed for every key, serial and choice.
    pub seed: u64,
    /// Devices to enroll.
    pub devices: usize,
    /// Offices to spread devices over (org units `AGENCY/Office N`).
    pub offices: usize,
    /// Every `tamper_every`-th chain is tampered with (0: none).
    pub tamper_every: usize,
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollmentReport {
    /// Seed used.
    pub seed: u64,
    /// Agency id (short form): equal seeds give equal ids.
    pub agency_id: String,
    /// Devices enrolled.
    pub devices: usize,
    /// Genuine chains that verified.
    pub genuine_accepted: usize,
    /// Tampered chains presented.
    pub tampered: usize,
    /// Tampered chains refused.
    pub tampered_refused: usize,
    /// Mean encoded chain size in bytes (what admission will send).
    pub mean_chain_bytes: f64,
    /// Mean encoded bundle size in bytes.
    pub mean_bundle_bytes: f64,
    /// Chain verifications per second, measured.
    pub chain_verifications_per_sec: f64,
    /// Bare `verify_strict` calls per second, measured in the same run.
    pub bare_verifications_per_sec: f64,
    /// Chain verification cost in bare-signature units (ideally ≈ 2: two signatures).
    pub chain_cost_in_signatures: f64,
}

/// Runs the enrollment scenario.
pub fn run_enrollment(scenario: &EnrollmentScenario) -> Result<EnrollmentReport> {
    if scenario.devices == 0 || scenario.offices == 0 {
        bail!("devices and offices must be at least 1");
    }
    let mut entropy = SeededEntropy::new(scenario.seed);
    let policy = TrustPolicy::default();
    let subject = |user: String, org: String| -> Result<Subject> {
        Ok(Subject {
            display_name: format!("Official {user}"),
            user_id: user,
            org_unit: org.parse()?,
        })
    };
    let agency = NewAgency::create(
        "SIM",
        subject("op".into(), "SIM".into())?,
        NOW,
        &mut entropy,
    )?;
    let info = agency.operator.agency.clone();

    let mut chains: Vec<(CertificateChain, baro_node::DeviceId, bool)> = Vec::new();
    let (mut chain_bytes, mut bundle_bytes) = (0usize, 0usize);
    for i in 0..scenario.devices {
        let device = KeyPair::generate(&mut entropy);
        let request = EnrollmentRequest::new(&device, &format!("Device {i}"), NOW)?;
        let bundle = agency.operator.enroll(
            &request,
            Enrollment {
                subject: subject(
                    format!("u{i}"),
                    format!("SIM/Office {}", i % scenario.offices),
                )?,
                role: Role::Member,
                days: 365,
                bootstrap: vec![],
            },
            &agency.network_key,
            NOW,
            &policy,
            &mut entropy,
        )?;
        bundle_bytes += wire::encode(&bundle).len();
        chain_bytes += wire::encode(&bundle.body.chain).len();
        let mut chain = bundle.body.chain;
        let tamper = scenario.tamper_every > 0 && i % scenario.tamper_every == 0;
        if let (true, Some(leaf)) = (tamper, chain.certificates.last_mut()) {
            leaf.body.role = Role::Operator;
        }
        chains.push((chain, device.device_id(), tamper));
    }

    let started = Instant::now();
    let (mut genuine_accepted, mut tampered, mut tampered_refused) = (0, 0, 0);
    for (chain, device, is_tampered) in &chains {
        let ok = chain.verify_for(*device, &info, NOW + 60, &policy).is_ok();
        if *is_tampered {
            tampered += 1;
            tampered_refused += usize::from(!ok);
        } else {
            genuine_accepted += usize::from(ok);
        }
    }
    let chain_secs = started.elapsed().as_secs_f64().max(1e-9);

    // Baseline, same run, same machine: one bare strict verification per device.
    let signer = KeyPair::generate(&mut entropy);
    let signature = signer.sign(Domain::Certificate, &"baseline");
    let started = Instant::now();
    let mut bare_ok = 0usize;
    for _ in 0..chains.len() {
        bare_ok += usize::from(signer.public().verify(
            Domain::Certificate,
            &"baseline",
            &signature,
        ));
    }
    let bare_secs = started.elapsed().as_secs_f64().max(1e-9);
    if bare_ok != chains.len() {
        bail!("baseline signature failed to verify");
    }

    let n = chains.len() as f64;
    Ok(EnrollmentReport {
        seed: scenario.seed,
        agency_id: info.id().to_string(),
        devices: chains.len(),
        genuine_accepted,
        tampered,
        tampered_refused,
        mean_chain_bytes: chain_bytes as f64 / n,
        mean_bundle_bytes: bundle_bytes as f64 / n,
        chain_verifications_per_sec: n / chain_secs,
        bare_verifications_per_sec: n / bare_secs,
        chain_cost_in_signatures: chain_secs / bare_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> EnrollmentScenario {
        EnrollmentScenario {
            seed,
            devices: 40,
            offices: 4,
            tamper_every: 5,
        }
    }

    #[test]
    fn every_genuine_device_is_admitted_and_every_tampered_one_refused() {
        let report = run_enrollment(&small(1)).expect("run");
        assert_eq!(report.tampered, 8);
        assert_eq!(report.tampered_refused, 8);
        assert_eq!(report.genuine_accepted, 32);
    }

    #[test]
    fn same_seed_same_agency_other_seed_other_agency() {
        let a = run_enrollment(&small(7)).expect("run");
        let b = run_enrollment(&small(7)).expect("run");
        let c = run_enrollment(&small(8)).expect("run");
        assert_eq!(a.agency_id, b.agency_id);
        assert_eq!(a.mean_bundle_bytes, b.mean_bundle_bytes);
        assert_ne!(a.agency_id, c.agency_id);
    }
}
