//! `baro send ROOM --file PATH`, `baro files ROOM` and `baro fetch ROOM
//! FILE_ID --out PATH`: attachments from the command line, with progress
//! bars (the node seals, stores, offers and fetches; these commands ask it
//! and show how far it got).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use baro_node::api::{self, AttachmentView, Request, Response};
use baro_node::file_limit::FileLimit;
use baro_node::net::{open_to_send, size_text};
use indicatif::{ProgressBar, ProgressStyle};

use super::print_json;
use crate::local_time::LocalTime;
use crate::sanitize::printable;

/// How often a fetch asks the node how far it got.
const POLL: Duration = Duration::from_millis(200);

/// "📎 report.pdf (2.4 MiB)", and how much is here if not all.
pub fn file_line(file: &AttachmentView) -> String {
    let held = if file.held == file.chunks {
        String::new()
    } else {
        format!(", {}% here", file.held * 100 / file.chunks.max(1))
    };
    format!(
        "📎 {} ({}{held}) [file {}]",
        printable(&file.name),
        size_text(file.size),
        file.file_id.get(..8).unwrap_or(&file.file_id)
    )
}

/// The largest file the node on `home` sends: asked of it if it runs
/// (its own limit and the agency policy's); otherwise the default, and the
/// node started for the file refuses it if its policy's limit is lower.
pub fn file_limit(home: &Path) -> FileLimit {
    match api::request(home, &Request::Status) {
        Ok(Response::Status(status)) => status.file_limit,
        _ => FileLimit::default(),
    }
}

/// Checks a file to send before it is handed to the node: it exists, is a
/// regular file, can be read, and is not over `limit`. Returns its
/// absolute path (the node reads it).
pub fn check_file(path: &Path, limit: &FileLimit) -> Result<PathBuf> {
    let (_, _, _) = open_to_send(path, limit).map_err(anyhow::Error::msg)?;
    std::path::absolute(path)
        .with_context(|| format!("{}: cannot tell where it is", path.display()))
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub fn send(
    home: &Path,
    room: String,
    path: &Path,
    caption: String,
    keep_metadata: bool,
    json: bool,
) -> Result<()> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = (!json).then(|| {
        spinner(format!(
            "sealing and storing {} ({})",
            path.display(),
            size_text(size)
        ))
    });
    let answer = api::request(
        home,
        &Request::SendFile {
            room,
            path: path.display().to_string(),
            caption,
            keep_metadata,
        },
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let Response::Sent(sent) = answer? else {
        bail!("the node answered something else than a sent message");
    };
    if json {
        return print_json(&serde_json::to_value(&sent)?);
    }
    println!(
        "{}: {} ({}); members fetch it from this device or a relay",
        super::rooms::sent_line(&sent),
        printable(
            &path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ),
        size_text(size)
    );
    Ok(())
}

pub fn list(home: &Path, room: String, json: bool) -> Result<()> {
    let Response::Files(files) = api::request(home, &Request::Files { room })? else {
        bail!("the node answered something else than a list of files");
    };
    if json {
        return print_json(&serde_json::to_value(&files)?);
    }
    if files.is_empty() {
        println!("no files in this room yet");
        return Ok(());
    }
    let mut table = crate::table::Table::new(&["ID", "NAME", "SIZE", "FROM", "SENT", "HERE"]);
    for message in &files {
        let Some(file) = &message.attachment else {
            continue;
        };
        table.row(vec![
            file.file_id.get(..12).unwrap_or(&file.file_id).to_string(),
            printable(&file.name).into_owned(),
            size_text(file.size),
            printable(&message.sender_name).into_owned(),
            LocalTime::system().short(message.wall_ms / 1000),
            format!("{}%", file.held * 100 / file.chunks.max(1)),
        ]);
    }
    for line in table.lines() {
        println!("{line}");
    }
    Ok(())
}

pub fn fetch(home: &Path, room: String, file: String, out: &Path, json: bool) -> Result<()> {
    if out.exists() {
        bail!("{} already exists; choose another path", out.display());
    }
    let out = std::path::absolute(out)
        .with_context(|| format!("{}: cannot tell where it is", out.display()))?;
    let request = Request::FetchFile {
        room,
        file,
        out: Some(out.display().to_string()),
    };
    let mut bar: Option<ProgressBar> = None;
    loop {
        let Response::File(message) = api::request(home, &request)? else {
            bail!("the node answered something else than a file");
        };
        let Some(file) = message.attachment.clone() else {
            bail!("that message carries no file");
        };
        if file.held == file.chunks {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            if !out.exists() {
                bail!("the file is here but was not written to {}", out.display());
            }
            if json {
                return print_json(&serde_json::to_value(&message)?);
            }
            println!(
                "wrote {} ({}) to {}",
                printable(&file.name),
                size_text(file.size),
                out.display()
            );
            return Ok(());
        }
        if !json {
            let bar = bar.get_or_insert_with(|| {
                let bar = ProgressBar::new(file.size);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_message(printable(&file.name).into_owned());
                bar
            });
            let held = (file.held as u64 * (256 << 10)).min(file.size);
            bar.set_position(held);
        }
        std::thread::sleep(POLL);
    }
}
