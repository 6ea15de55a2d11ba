//! `baro`: the Baro Mesh command for operators, officials and relays.
//!
//! Parse → validate → run; every error ends the process with a non-zero
//! exit code and one line on stderr saying what was wrong.

mod args;
mod commands;
mod output;
mod passphrase;
mod pin;
mod sanitize;
mod secrets;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // First, while this is the only thread.
    secrets::take_from_environment();
    let args = args::Cli::parse();
    // The demo narrates on stdout; its refusals would repeat as warnings.
    let quiet = matches!(args.command, args::Command::Demo);
    init_tracing(args.verbose, quiet);
    secrets::forbid_core_dumps();
    pin::install(args.storage_key_file.clone());
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` joins the cause chain into one line; the node's
            // errors can quote names and text from the network.
            let message = one_line(&format!("{error:#}"));
            eprintln!("error: {}", sanitize::printable(&message));
            ExitCode::FAILURE
        }
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn init_tracing(verbose: u8, quiet: bool) {
    let default = match verbose {
        0 if quiet => "error",
        // libp2p warns about routine events (e.g. a Kademlia round with no peers yet).
        0 => "warn,libp2p_kad=error,libp2p_gossipsub=error",
        1 => "info,baro_node=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
