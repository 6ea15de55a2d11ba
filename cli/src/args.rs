//! Command-line arguments (clap derive).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand};

/// The heading of the options every command takes, apart from its own.
const GLOBAL: &str = "Global options (any command)";

/// Names typed at the command line, in Unicode NFC (Korean typed as
/// conjoining jamo names the same thing as precomposed syllables).
fn nfc(text: &str) -> Result<String, std::convert::Infallible> {
    Ok(baro_node::text::nfc_string(text))
}

/// Baro Mesh: a peer-to-peer, offline-capable messenger for government officials.
#[derive(Debug, Parser)]
#[command(name = "baro", version, about, propagate_version = true)]
pub struct Cli {
    /// The node's home directory [default: $HOME/.baro].
    #[arg(
        long,
        global = true,
        env = "BARO_HOME",
        value_name = "DIR",
        help_heading = GLOBAL
    )]
    pub home: Option<PathBuf>,

    /// Services such as relays: keep the storage key in this owner-only file
    /// (created with the home) instead of sealing it under a device PIN.
    /// Without it, the PIN is read from BARO_PIN or asked at the terminal.
    #[arg(
        long,
        global = true,
        env = "BARO_STORAGE_KEY_FILE",
        value_name = "PATH",
        help_heading = GLOBAL
    )]
    pub storage_key_file: Option<PathBuf>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// More log output on stderr (-v, -vv); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// Refuses global options the command would ignore: `demo` makes its own
/// homes in a temporary directory and narrates in text. (`BARO_HOME` and
/// `BARO_STORAGE_KEY_FILE` in the environment are for other commands and
/// are left alone.)
pub fn refuse_unused(matches: &ArgMatches) -> Result<()> {
    let Some(("demo", demo)) = matches.subcommand() else {
        return Ok(());
    };
    let typed = |id: &str| demo.value_source(id) == Some(ValueSource::CommandLine);
    for (id, option) in [
        ("home", "--home"),
        ("storage_key_file", "--storage-key-file"),
        ("json", "--json"),
    ] {
        if typed(id) {
            bail!(
                "`baro demo` does not take {option}: it makes its own homes in a temporary directory, removes them at the end and narrates in text"
            );
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Operator commands: create the agency, enroll devices.
    #[command(subcommand)]
    Agency(AgencyCommand),
    /// Device commands: create this device's key, install its enrollment.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Show this device's id, owner, agency, org unit, role and validity.
    Whoami,
    /// Run this device as a mesh node: in the foreground (Ctrl-C stops
    /// it), or in the background with --detach (`baro stop` stops it).
    /// `chat`, `send` and `history` start one in the background when none runs.
    Run(RunArgs),
    /// The officials' app: run this device's node with the app (as
    /// `baro run --ui`) and open it in the browser; if the node already
    /// runs with the app, just open it.
    App(RunArgs),
    /// Stop the node running on this home (started with --detach, by
    /// `chat`/`send`/`history`, or in another terminal) and wait until it
    /// has exited.
    Stop,
    /// Run this device as a field-office relay (needs a relay certificate):
    /// always on, bootstrap for devices, circuit relay for devices behind
    /// NAT, and store-and-forward of every room's ciphertext for devices
    /// that are offline.
    Relay(RelayArgs),
    /// List the peers the running node has admitted.
    Peers,
    /// Show the running node's status.
    Status,
    /// Find officials: those this device knows, and those the agency
    /// directory of a connected relay answers; by a piece of a name, user
    /// id or org unit, by user id (--user) or by org unit (--unit). With
    /// nothing to look for, everyone this device knows.
    People {
        /// Text in a display name, user id or org unit, e.g. 민지, kim or 2과.
        #[arg(conflicts_with_all = ["user", "unit"], value_parser = nfc)]
        text: Option<String>,
        /// Every device of this user id.
        #[arg(long, value_name = "ID", conflicts_with = "unit", value_parser = nfc)]
        user: Option<String>,
        /// The members of this org unit, e.g. "MOIS/Digital Government Bureau".
        #[arg(long, value_name = "PATH", value_parser = nfc)]
        unit: Option<String>,
        /// With --unit: the members of its sub-units too.
        #[arg(long, requires = "unit")]
        below: bool,
    },
    /// Rooms: create groups, list, invite, remove, leave.
    #[command(subcommand)]
    Room(RoomCommand),
    /// Send a text message to a room; says which room it went to.
    Send {
        /// Room: its name, 6+ hex characters of its id, a department's last
        /// part ("2과"), a unique name prefix (2+ characters), or @USER for
        /// the 1:1 room with USER (a user id, or a display name only one
        /// official has). Several matches are refused, never guessed.
        #[arg(value_parser = nfc)]
        room: String,
        /// The message (with --file: its caption, also given as --text).
        #[arg(required_unless_present = "file")]
        text: Option<String>,
        /// Attach this file (a document or a photo; at most 100 MiB, or the
        /// agency policy's limit if lower).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// The caption of the attached file.
        #[arg(
            long = "text",
            value_name = "CAPTION",
            requires = "file",
            conflicts_with = "text"
        )]
        caption: Option<String>,
        /// Send a photo as it is, with its metadata (EXIF: GPS position,
        /// camera, time). By default a JPEG or PNG is sent without it.
        #[arg(long, requires = "file")]
        keep_metadata: bool,
    },
    /// List the files sent in a room: id, name, size, sender, and how much
    /// of each this device holds.
    Files {
        /// Room name, id, or @USER.
        #[arg(value_parser = nfc)]
        room: String,
    },
    /// Fetch a file of a room from whoever holds it (the sender, a relay,
    /// another member), resuming where it stopped, and write it to a new file.
    Fetch {
        /// Room name, id, or @USER.
        #[arg(value_parser = nfc)]
        room: String,
        /// The file: 6 or more hex digits of its id (see `baro files`).
        file_id: String,
        /// Where to write it (a new file).
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Show the last messages of a room.
    History {
        /// Room: its name, 6+ hex characters of its id, a department's last
        /// part ("2과"), a unique name prefix (2+ characters), or @USER for
        /// the 1:1 room with USER (a user id, or a display name only one
        /// official has). Several matches are refused, never guessed.
        #[arg(value_parser = nfc)]
        room: String,
        /// How many messages.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print messages as they arrive (one room, or all); Ctrl-C stops.
    Watch {
        /// Room name, id, or @USER; all rooms if absent.
        #[arg(value_parser = nfc)]
        room: Option<String>,
    },
    /// Chat in a room: history, live messages, and every line you type is sent.
    Chat {
        /// Room: its name, 6+ hex characters of its id, a department's last
        /// part ("2과"), a unique name prefix (2+ characters), or @USER for
        /// the 1:1 room with USER (a user id, or a display name only one
        /// official has). Several matches are refused, never guessed.
        #[arg(value_parser = nfc)]
        room: String,
    },
    /// Run a narrated demonstration with Korean officials, in a temporary
    /// directory of its own (removed at the end; --home is not used).
    Demo {
        /// At the end, keep Kim's and Choi's nodes running with the app
        /// (`run --ui`) and print their login URLs, until Ctrl-C.
        #[arg(long)]
        ui: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgencyCommand {
    /// Create a new agency: root key, first operator, network key; this home
    /// becomes the operator's own device (role member: enrolling and revoking
    /// take the passphrase-sealed operator key, never the device key).
    Init(AgencyInit),
    /// Certify a device from its enrollment request and write its bundle.
    Enroll(AgencyEnroll),
    /// Revoke a device (or every device of a user): every node shuts it out,
    /// and with --wipe it erases itself when the revocation reaches it.
    /// Published at once if this home's node runs, else at its next start.
    Revoke(AgencyRevoke),
    /// List the revocations this home knows, with who has seen each and
    /// whether the device confirmed its wipe.
    Revocations,
    /// The agency policy every device obeys: the lease (how long a device
    /// may go without meeting a peer before it erases itself), the
    /// wrong-PIN limit and the largest file.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Show the agency: its root's fingerprint (to compare out of band when
    /// installing a bundle), the operator key, and where the root key is.
    Show,
    /// Move the agency root key off this console into FILE (still sealed
    /// with the passphrase), for offline storage; the console keeps only
    /// the root's public key. Needed again only to revoke an operator.
    ExportRoot {
        /// Where to write the root key file (must not exist yet).
        file: PathBuf,
    },
    /// Bring the agency root key back onto this console from FILE.
    ImportRoot {
        /// A file written by `baro agency export-root`.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Sign a new agency policy with the operator key; every device takes
    /// it when it next meets the mesh (published at once if this home's
    /// node runs, else at its next start).
    Set(PolicySet),
}

#[derive(Debug, Args)]
pub struct PolicySet {
    /// Longest time in days a device may go without meeting any admitted
    /// peer; past it, it erases itself (0: no lease). Relays hold no lease.
    #[arg(long, value_name = "DAYS")]
    pub lease_days: u32,
    /// Days before the end of its lease a device starts warning its user.
    #[arg(long, value_name = "DAYS", default_value_t = 3)]
    pub warn_days: u32,
    /// Wrong PINs a device accepts before it erases itself.
    #[arg(long, value_name = "N", default_value_t = baro_node::trust::DEFAULT_MAX_PIN_ATTEMPTS)]
    pub max_pin_attempts: u32,
    /// Largest file, in MiB (1 to 128), a device sends or fetches; a device
    /// whose own limit is lower keeps it [default: none set: each device's
    /// own, 100 MiB].
    #[arg(long, value_name = "MIB")]
    pub max_file_mb: Option<u32>,
    /// The policy's version [default: one above the policy this home holds].
    #[arg(long, value_name = "N")]
    pub policy_version: Option<u64>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["device", "user"])))]
pub struct AgencyRevoke {
    /// The device id (PeerId) to revoke.
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
    /// Revoke every device of this user id instead.
    #[arg(long, value_name = "ID", value_parser = nfc)]
    pub user: Option<String>,
    /// With --device: retire only this certificate (its serial) of the
    /// device, e.g. the old one of an official who moved to another org
    /// unit and was certified again; the device stays in under its newer one.
    #[arg(long, value_name = "SERIAL", requires = "device")]
    pub serial: Option<u64>,
    /// Why, e.g. "phone lost on the train" (shown to operators).
    #[arg(long)]
    pub reason: String,
    /// The device erases all its local data when it hears of the revocation.
    #[arg(long)]
    pub wipe: bool,
}

#[derive(Debug, Args)]
pub struct AgencyInit {
    /// Agency name, e.g. "Ministry of the Interior and Safety".
    #[arg(long, value_parser = nfc)]
    pub name: String,
    /// The first operator's user id.
    #[arg(long, value_parser = nfc)]
    pub user: String,
    /// The first operator's display name.
    #[arg(long, value_parser = nfc)]
    pub display_name: String,
    /// The first operator's org unit path, e.g. "MOIS/Digital Government Bureau".
    #[arg(long, value_parser = nfc)]
    pub org: String,
    /// Relay address this console's node dials (a multiaddr); repeatable,
    /// as for `agency enroll`.
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
    /// This console device's label, e.g. "console" (as `device init --label`).
    #[arg(long, value_parser = nfc)]
    pub label: Option<String>,
}

#[derive(Debug, Args)]
pub struct AgencyEnroll {
    /// The enrollment request file made by `baro device init`.
    pub request: PathBuf,
    /// User id of the device's owner.
    #[arg(long, value_parser = nfc)]
    pub user: String,
    /// Display name [default: the name in the request].
    #[arg(long, value_parser = nfc)]
    pub display_name: Option<String>,
    /// Org unit path of the owner, e.g. "MOIS/Digital Government Bureau/Division 2".
    #[arg(long, value_parser = nfc)]
    pub org: String,
    /// Role: member (officials) or relay (field-office relays). Operators are
    /// certified by the agency root only, never enrolled as devices.
    #[arg(long, default_value = "member")]
    pub role: String,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = 365)]
    pub days: u64,
    /// Relay address for the bundle (a multiaddr); repeatable.
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
    /// Where to write the bundle.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Create this device's key and write an enrollment request for an operator.
    Init(DeviceInit),
    /// Verify an enrollment bundle from an operator and install it.
    Install(DeviceInstall),
    /// List your own devices (label, id, last seen, revoked or not), as
    /// this device knows them.
    List,
    /// Revoke another of your own devices (a lost phone, from your PC): it
    /// is shut out and erases itself when the revocation reaches it.
    Revoke {
        /// The lost device: its label (e.g. 휴대폰), its id, or 6 or more
        /// characters of the start or end of its id (`baro device list`).
        #[arg(value_parser = nfc)]
        device: String,
        /// Why, e.g. "lost my phone".
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct DeviceInit {
    /// Your name as other officials will see it.
    #[arg(long, value_parser = nfc)]
    pub name: String,
    /// What this device is, to tell your devices apart, e.g. PC or 휴대폰
    /// (shown wherever the device is named; 1 to 32 bytes).
    #[arg(long, value_parser = nfc)]
    pub label: Option<String>,
    /// Where to write the enrollment request.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DeviceInstall {
    /// The bundle file from the operator.
    pub bundle: PathBuf,
    /// Refuse the bundle unless its agency root has this fingerprint (as
    /// `baro agency show` prints it on the operator's console; spaces and
    /// case do not matter). Get it from your operator in person or by phone.
    #[arg(long, value_name = "FINGERPRINT")]
    pub expect_root: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Address to listen on (repeatable) [default: /ip4/0.0.0.0/tcp/0].
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// Extra peer to connect to at start (repeatable), besides the bundle's relays.
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
    /// Do not discover peers on the local network with mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Seconds between reconciliation rounds with connected peers (peers
    /// also reconcile as soon as they connect).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub sync_interval: u64,
    /// Seconds between mDNS queries on the local network.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub mdns_interval: u64,
    /// Run in the background: return once the node answers, its lines go
    /// to node.log in the home (without message text); `baro stop` stops it.
    #[arg(long)]
    pub detach: bool,
    /// Internal: this process is the background node `--detach` started.
    #[arg(long, hide = true)]
    pub background: bool,
    /// Serve the officials' app in the browser, on ADDR (IP:PORT, default
    /// 127.0.0.1:2276, loopback): prints a login URL and writes it,
    /// owner-only, to ui.url in the home. Not for relays.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = baro_ui::DEFAULT_ADDR)]
    pub ui: Option<String>,
    /// Open the app in the browser once it is served (`baro app`).
    #[arg(skip)]
    pub open_app: bool,
}

impl RunArgs {
    /// These options as words for the background node, without --detach.
    pub fn to_words(&self) -> Vec<std::ffi::OsString> {
        let mut words: Vec<String> = Vec::new();
        for listen in &self.listen {
            words.extend(["--listen".into(), listen.clone()]);
        }
        for bootstrap in &self.bootstrap {
            words.extend(["--bootstrap".into(), bootstrap.clone()]);
        }
        if self.no_mdns {
            words.push("--no-mdns".into());
        }
        if let Some(ui) = &self.ui {
            words.extend(["--ui".into(), ui.clone()]);
        }
        words.extend([
            "--sync-interval".into(),
            self.sync_interval.to_string(),
            "--mdns-interval".into(),
            self.mdns_interval.to_string(),
        ]);
        words.into_iter().map(Into::into).collect()
    }
}

impl RelayArgs {
    /// These options as words for the background relay, without --detach.
    pub fn to_words(&self) -> Vec<std::ffi::OsString> {
        let mut words = self.network.to_words();
        words.extend(
            [
                "--retention-days".to_string(),
                self.retention_days.to_string(),
                "--max-store-mb".to_string(),
                self.max_store_mb.to_string(),
                "--max-files-mb".to_string(),
                self.max_files_mb.to_string(),
                "--file-retention-days".to_string(),
                self.file_retention_days.to_string(),
            ]
            .map(Into::into),
        );
        words
    }
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Network options, as for `baro run`.
    #[command(flatten)]
    pub network: RunArgs,
    /// Days a stored message is kept for devices that are offline.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub retention_days: u64,
    /// Most megabytes of stored messages; the oldest go first beyond it.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_store_mb: u64,
    /// Most megabytes of attached files' chunks kept for members (apart
    /// from messages); the oldest go first beyond it.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_files_mb: u64,
    /// Days a file's chunks are kept.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub file_retention_days: u64,
}

#[derive(Debug, Subcommand)]
pub enum RoomCommand {
    /// Create a group; you are its admin.
    Create {
        /// The group's name.
        #[arg(value_parser = nfc)]
        name: String,
        /// A member: a user id, or a display name only one official has
        /// (repeatable); unknown names are refused.
        #[arg(long = "member", value_name = "USER", value_parser = nfc)]
        members: Vec<String>,
    },
    /// List your rooms (department rooms are joined automatically).
    List {
        /// Also list the rooms you hid.
        #[arg(long)]
        all: bool,
    },
    /// Add a user to a group (admins).
    Invite {
        /// Room name or id.
        #[arg(value_parser = nfc)]
        room: String,
        /// A user id, or a display name only one official has.
        #[arg(value_parser = nfc)]
        user: String,
    },
    /// Remove a user from a group (admins): they cannot read what follows.
    Remove {
        /// Room name or id.
        #[arg(value_parser = nfc)]
        room: String,
        /// A user id, or a display name only one official has.
        #[arg(value_parser = nfc)]
        user: String,
    },
    /// Leave a group.
    Leave {
        /// Room name or id.
        #[arg(value_parser = nfc)]
        room: String,
    },
    /// Make a member of a group an admin too (admins): they can then
    /// invite, remove and hand over in turn, and you can leave.
    Admin {
        /// Room name or id.
        #[arg(value_parser = nfc)]
        room: String,
        /// User id of a member.
        #[arg(value_parser = nfc)]
        user: String,
    },
    /// Hide a room from `room list` on this device (a 1:1 or group made by
    /// mistake); its messages still arrive. `room unhide` shows it again.
    Hide {
        /// Room name or id.
        #[arg(value_parser = nfc)]
        room: String,
    },
    /// Show a hidden room in `room list` again.
    Unhide {
        /// Room name or id.
        #[arg(value_parser = nfc)]
        room: String,
    },
}
