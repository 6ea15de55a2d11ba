//! `baro`: the Baro Mesh command for operators, officials and relays.
//!
//! Parse → validate → run; every error ends the process with a non-zero
//! exit code and one line on stderr saying what was wrong.

mod args;
mod closed_pipe;
mod commands;
mod display_width;
mod local_time;
mod message_size;
mod output;
mod passphrase;
mod pin;
mod sanitize;
mod secrets;
mod table;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    // First, while this is the only thread.
    secrets::take_from_environment();
    closed_pipe::end_quietly();
    let matches = args::Cli::command()
        .try_get_matches()
        .unwrap_or_else(|e| usage_error(e));
    let args = args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| usage_error(e));
    let json = args.json;
    if let Err(error) = args::refuse_unused(&matches) {
        return fail(&error, json);
    }
    // The demo narrates on stdout; its refusals would repeat as warnings.
    let quiet = matches!(args.command, args::Command::Demo { .. });
    init_tracing(args.verbose, quiet);
    secrets::forbid_core_dumps();
    pin::install(args.storage_key_file.clone());
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error, json),
    }
}

/// A command line clap refused: its own text, or with `--json` anywhere
/// on it one JSON object on stderr (what was wrong and the usage line);
/// exit status 2 as clap's. `--help` and `--version` print as usual.
fn usage_error(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let asked = matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if asked || !std::env::args_os().any(|arg| arg == "--json") {
        error.exit();
    }
    let text = error.to_string();
    let (what, rest) = text.split_once("\n\n").unwrap_or((&text, ""));
    let what = one_line(what.trim_start_matches("error: "));
    let message = match rest.lines().find(|line| line.starts_with("Usage:")) {
        Some(usage) => format!("{what} ({usage})"),
        None => what,
    };
    eprintln!("{}", serde_json::json!({ "error": message }));
    std::process::exit(2);
}

/// One line on stderr: `error: …`, or with `--json` an object
/// `{"error": "…"}` for scripts.
fn fail(error: &anyhow::Error, json: bool) -> ExitCode {
    // `{:#}` joins the cause chain into one line; the node's errors can
    // quote names and text from the network.
    let message = one_line(&format!("{error:#}"));
    if json {
        // JSON escapes control characters itself.
        eprintln!("{}", serde_json::json!({ "error": message }));
    } else {
        eprintln!("error: {}", sanitize::printable(&message));
    }
    ExitCode::FAILURE
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
