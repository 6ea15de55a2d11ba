//! `baro-sim`: run a simulation scenario and print its measured report.

use anyhow::Result;
use baro_sim::{EnrollmentScenario, run_enrollment};
use clap::{Parser, Subcommand};

/// Baro Mesh simulations.
#[derive(Debug, Parser)]
#[command(name = "baro-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll many devices with the real trust code and verify every chain.
    Enrollment {
        /// Seed: the same seed gives the same agency, keys and choices.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Devices to enroll.
        #[arg(long, default_value_t = 1000)]
        devices: usize,
        /// Offices to spread them over.
        #[arg(long, default_value_t = 10)]
        offices: usize,
        /// Tamper with every N-th chain (0: none).
        #[arg(long, default_value_t = 10)]
        tamper_every: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Enrollment {
            seed,
            devices,
            offices,
            tamper_every,
            json,
        } => {
            let report = run_enrollment(&EnrollmentScenario {
                seed,
                devices,
                offices,
                tamper_every,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "enrollment scenario, seed {}, agency {}",
                    report.seed, report.agency_id
                );
                println!("  devices enrolled:         {}", report.devices);
                println!("  genuine chains accepted:  {}", report.genuine_accepted);
                println!(
                    "  tampered chains refused:  {}/{}",
                    report.tampered_refused, report.tampered
                );
                println!(
                    "  mean chain size:          {:.0} bytes",
                    report.mean_chain_bytes
                );
                println!(
                    "  mean bundle size:         {:.0} bytes",
                    report.mean_bundle_bytes
                );
                println!(
                    "  chain verifications/s:    {:.0}",
                    report.chain_verifications_per_sec
                );
                println!(
                    "  bare verify_strict/s:     {:.0}",
                    report.bare_verifications_per_sec
                );
                println!(
                    "  chain cost:               {:.2} bare signature verifications",
                    report.chain_cost_in_signatures
                );
            }
            Ok(())
        }
    }
}
