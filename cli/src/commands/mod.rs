//! One function per command; each returns `anyhow::Result` and prints its result.

mod agency;
mod background;
mod chat;
mod demo;
mod device;
mod file_transfer;
mod files;
mod node;
mod policy;
mod revoke;
mod rooms;

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::args::{AgencyCommand, Cli, Command, DeviceCommand, PolicyCommand, RoomCommand};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    let key_file = cli.storage_key_file.as_deref();
    match cli.command {
        Command::Demo { ui } => demo::run(ui),
        Command::Agency(AgencyCommand::Init(args)) => agency::init(&home(cli.home)?, args, json),
        Command::Agency(AgencyCommand::Enroll(args)) => {
            agency::enroll(&home(cli.home)?, args, json)
        }
        Command::Agency(AgencyCommand::Revoke(args)) => {
            revoke::agency_revoke(&home(cli.home)?, args, json)
        }
        Command::Agency(AgencyCommand::Revocations) => revoke::list(&home(cli.home)?, json),
        Command::Agency(AgencyCommand::Policy(PolicyCommand::Set(args))) => {
            policy::set(&home(cli.home)?, args, json)
        }
        Command::Agency(AgencyCommand::Show) => agency::show(&home(cli.home)?, json),
        Command::Agency(AgencyCommand::ExportRoot { file }) => {
            agency::export_root(&home(cli.home)?, &file, json)
        }
        Command::Agency(AgencyCommand::ImportRoot { file }) => {
            agency::import_root(&home(cli.home)?, &file, json)
        }
        Command::Device(DeviceCommand::Revoke { device, reason }) => {
            revoke::device_revoke(&home(cli.home)?, &device, &reason, json)
        }
        Command::Device(DeviceCommand::Init(args)) => device::init(&home(cli.home)?, args, json),
        Command::Device(DeviceCommand::List) => revoke::device_list(&home(cli.home)?, json),
        Command::Device(DeviceCommand::Install(args)) => {
            device::install(&home(cli.home)?, args, json)
        }
        Command::Whoami => device::whoami(&home(cli.home)?, json),
        Command::Run(args) if args.detach => {
            let home = home(cli.home)?;
            let words = [vec!["run".into()], verbosity(cli.verbose), args.to_words()].concat();
            background::start(&home, &words, key_file)?;
            detached(&home, json)?;
            if args.ui.is_some()
                && !json
                && let Some(url) = baro_ui::read_url(&home)
            {
                println!("app: {url}");
            }
            Ok(())
        }
        Command::Relay(args) if args.network.ui.is_some() => {
            bail!("a relay serves no app: --ui is for `baro run` on an official's device")
        }
        Command::App(args) => node::app(&home(cli.home)?, args),
        Command::Relay(args) if args.network.detach => {
            let home = home(cli.home)?;
            let words = [
                vec!["relay".into()],
                verbosity(cli.verbose),
                args.to_words(),
            ]
            .concat();
            background::start(&home, &words, key_file)?;
            detached(&home, json)
        }
        Command::Stop => background::stop(&home(cli.home)?, json),
        Command::Run(args) => node::run(&home(cli.home)?, args, None),
        Command::Relay(args) => node::run(
            &home(cli.home)?,
            args.network,
            Some(baro_node::config::RelayConfig {
                retention_days: args.retention_days,
                max_store_mb: args.max_store_mb,
                max_files_mb: args.max_files_mb,
                file_retention_days: args.file_retention_days,
            }),
        ),
        Command::Peers => node::peers(&home(cli.home)?, json),
        Command::Status => node::status(&home(cli.home)?, json),
        Command::People {
            text,
            user,
            unit,
            below,
        } => node::people(&home(cli.home)?, text, user, unit, below, json),
        Command::Room(RoomCommand::Create { name, members }) => {
            rooms::create(&home(cli.home)?, name, members, json)
        }
        Command::Room(RoomCommand::List { all }) => rooms::list(&home(cli.home)?, all, json),
        Command::Room(RoomCommand::Admin { room, user }) => {
            rooms::make_admin(&home(cli.home)?, room, user, json)
        }
        Command::Room(RoomCommand::Hide { room }) => {
            rooms::hide(&home(cli.home)?, room, true, json)
        }
        Command::Room(RoomCommand::Unhide { room }) => {
            rooms::hide(&home(cli.home)?, room, false, json)
        }
        Command::Room(RoomCommand::Invite { room, user }) => {
            rooms::invite(&home(cli.home)?, room, user)
        }
        Command::Room(RoomCommand::Remove { room, user }) => {
            rooms::remove(&home(cli.home)?, room, user)
        }
        Command::Room(RoomCommand::Leave { room }) => rooms::leave(&home(cli.home)?, room),
        Command::Send {
            room,
            text,
            file: Some(file),
            caption,
            keep_metadata,
        } => {
            let home = home(cli.home)?;
            let caption = caption.or(text).unwrap_or_default();
            // Refused before a node is started for it (or asked to send it).
            let path = file_transfer::check_file(&file, &file_transfer::file_limit(&home))?;
            crate::message_size::check(&caption)?;
            background::ensure_running(&home, key_file)?;
            file_transfer::send(&home, room, &path, caption, keep_metadata, json)
        }
        Command::Files { room } => {
            let home = home(cli.home)?;
            background::ensure_running(&home, key_file)?;
            file_transfer::list(&home, room, json)
        }
        Command::Fetch { room, file_id, out } => {
            let home = home(cli.home)?;
            background::ensure_running(&home, key_file)?;
            file_transfer::fetch(&home, room, file_id, &out, json)
        }
        Command::Send { room, text, .. } => {
            let text = text.unwrap_or_default();
            let home = home(cli.home)?;
            // Refused before a node is started for it.
            crate::message_size::check(&text)?;
            background::ensure_running(&home, key_file)?;
            rooms::send(&home, room, text, json)
        }
        Command::History { room, limit } => {
            let home = home(cli.home)?;
            background::ensure_running(&home, key_file)?;
            rooms::history(&home, room, limit, json)
        }
        Command::Watch { room } => rooms::watch(&home(cli.home)?, room, json),
        Command::Chat { room } => chat::chat(&home(cli.home)?, room, key_file),
    }
}

/// `-v`, `-vv` for the background node.
fn verbosity(verbose: u8) -> Vec<std::ffi::OsString> {
    (0..verbose).map(|_| "-v".into()).collect()
}

/// After `run --detach`: where the node is and how to stop it.
fn detached(home: &std::path::Path, json: bool) -> Result<()> {
    let log = home.join(background::LOG_NAME);
    if json {
        return print_json(&serde_json::json!({
            "running": true,
            "log": log.display().to_string(),
        }));
    }
    println!(
        "The node runs in the background: `baro stop` stops it; its log is {}",
        log.display()
    );
    Ok(())
}

/// `--home`, else `BARO_HOME` (clap reads it), else `$HOME/.baro`. A wipe
/// that was interrupted is finished first; a home erased by a revocation
/// says so, whatever the command.
fn home(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let home = match (explicit, std::env::var_os("HOME")) {
        (Some(home), _) => home,
        (None, Some(user_home)) => PathBuf::from(user_home).join(".baro"),
        (None, None) => bail!("no home directory: pass --home DIR or set BARO_HOME"),
    };
    baro_node::store::Home::finish_interrupted_wipe(&home)?;
    if let Some(notice) = baro_node::store::Home::revoked_notice(&home) {
        bail!("{notice}");
    }
    Ok(home)
}

/// Prints `value` as pretty JSON.
fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
