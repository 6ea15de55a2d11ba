//! `baro-sim`: run a simulation scenario and print its measured report.

use anyhow::Result;
use std::time::Duration;

use baro_sim::{EnrollmentScenario, MeshScenario, run_enrollment, run_mesh};
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
    /// Run a scenario file on real nodes over shaped links; writes
    /// report.json and report.md into --out.
    Run {
        /// The scenario (TOML), e.g. simulations/scenarios/office-chat.toml.
        scenario: std::path::PathBuf,
        /// Directory for the report.
        #[arg(long, default_value = "sim-out")]
        out: std::path::PathBuf,
        /// No progress bar or notes on stderr.
        #[arg(long)]
        quiet: bool,
        /// Also run plain rust-libp2p gossipsub nodes on the same links and
        /// connections, and report our figures as ratios to theirs.
        #[arg(long)]
        baseline: bool,
    },
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
    /// Start N real nodes on MemoryTransport and measure mesh formation and gossip.
    Mesh {
        /// Seed for the agency and keys.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Nodes besides the bootstrap relay.
        #[arg(long, default_value_t = 30)]
        nodes: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> Result<()> {
    // Node logs only when asked (RUST_LOG), on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match Cli::parse().command {
        Command::Run {
            scenario,
            out,
            quiet,
            baseline,
        } => {
            let scenario = baro_sim::scenario::Scenario::load(&scenario)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let progress = if quiet {
                baro_sim::progress::Progress::quiet()
            } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                baro_sim::progress::Progress::bar()
            } else {
                baro_sim::progress::Progress::lines()
            };
            let options = baro_sim::run::Options { baseline };
            let report = runtime.block_on(baro_sim::run::run(&scenario, &options, &progress))?;
            report.write(&out)?;
            print!("{}", report.markdown());
            println!(
                "
report written to {}",
                out.display()
            );
            Ok(())
        }
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
        Command::Mesh {
            seed,
            nodes,
            timeout_secs,
            json,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = runtime.block_on(run_mesh(&MeshScenario {
                seed,
                nodes,
                timeout: Duration::from_secs(timeout_secs),
            }))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "mesh scenario, seed {}, {} nodes",
                    report.seed, report.nodes
                );
                println!("  full mesh after:          {:.2} s", report.full_mesh_secs);
                println!(
                    "  peers per node:           min {}, mean {:.1}",
                    report.min_peers, report.mean_peers
                );
                println!("  refusals:                 {}", report.refusals);
                println!(
                    "  frame delivered to:       {}/{}",
                    report.gossip_delivered,
                    report.nodes - 1
                );
                println!(
                    "  delivery latency:         p50 {:.1} ms, max {:.1} ms",
                    report.gossip_p50_ms, report.gossip_max_ms
                );
            }
            Ok(())
        }
    }
}
