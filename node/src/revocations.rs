//! The revocation flows a user has on a node's home: sign a revocation (an
//! operator with the operator or root key; an official with this device's
//! key, for another of their own devices), keep one to publish at the next
//! start when the node is not running, list what is known of each, and find
//! the certificate chain of the device to revoke.
//!
//! While `baro run` holds the database the CLI asks the running node over
//! the control API instead; both paths share [`RevocationView`] and the
//! checks in [`crate::trust`].

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::crypto::Passphrase;
use crate::enrollment::{self, EnrollmentError};
use crate::identity::{DeviceId, KeyPair};
use crate::store::{Home, MessageLog, RevocationRecord, SledStore, StoreError};
use crate::trust::{
    AgencyInfo, CertificateChain, Issuer, Revocation, RevocationBody, RevocationError,
    RevocationScope, RevocationSet, Role, TrustError, TrustPolicy, VerifiedRevocation, WipeReceipt,
};
use crate::wire;

/// One device's wipe receipt, as shown. A receipt proves that the revoked
/// device's key signed it, i.e. that the device acknowledged the wipe
/// order; it cannot prove that the data was erased (a thief's copy of the
/// key signs one just as well).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WipeView {
    /// The device that acknowledged the wipe order.
    pub device: DeviceId,
    /// When it says it began to wipe, Unix seconds.
    pub wiped_at: u64,
}

/// A peer known to hold a revocation, with who it is when this node has
/// met its certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderView {
    /// Its device id.
    pub device: DeviceId,
    /// Its user id, if its certificate is known here.
    pub user: Option<String>,
    /// "member", "relay" or "operator", if known.
    pub role: Option<String>,
    /// Its display name, if its certificate is known here (with its device
    /// label, "김민지 (휴대폰)", once [`RevocationView::with_labels`] knows it).
    #[serde(default)]
    pub name: Option<String>,
}

/// A revocation as shown to operators and officials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationView {
    /// Its id (hex).
    pub id: String,
    /// "device" or "user".
    pub scope: String,
    /// The device its certificate chain names.
    pub device: DeviceId,
    /// That device's user.
    pub user: String,
    /// That user's display name.
    pub display_name: String,
    /// Why.
    pub reason: String,
    /// When it was issued, Unix seconds.
    pub issued_at: u64,
    /// Who issued it.
    pub issued_by: String,
    /// Whether the device is told to erase itself.
    pub wipe: bool,
    /// Whether it has left this node (false: issued here while offline).
    pub published: bool,
    /// Peers known to hold it.
    pub seen_by: Vec<DeviceId>,
    /// The same peers, with who they are (relays and devices).
    pub held_by: Vec<HolderView>,
    /// When this node last saw the device it names (it tried to connect
    /// and was shown it, was connected when it arrived, or acknowledged
    /// it), Unix seconds.
    pub device_last_seen: Option<u64>,
    /// Wipe receipts received: acknowledgements signed by the device's
    /// key, not proof of erasure.
    pub wiped: Vec<WipeView>,
    /// The revoked device's label ("휴대폰"), if it announced one here.
    #[serde(default)]
    pub label: Option<String>,
}

impl RevocationView {
    /// The view of `verified` with what `record` says about it.
    pub fn new(verified: &VerifiedRevocation, record: &RevocationRecord) -> Self {
        RevocationView {
            id: hex::encode(verified.id),
            scope: match verified.scope {
                RevocationScope::Device => "device".into(),
                RevocationScope::User => "user".into(),
                RevocationScope::Certificate => "certificate".into(),
            },
            device: verified.target_device(),
            user: verified.user.clone(),
            display_name: verified.display_name.clone(),
            reason: verified.reason.clone(),
            issued_at: verified.issued_at,
            issued_by: verified.issued_by.clone(),
            wipe: verified.wipe,
            published: !record.unpublished,
            seen_by: record.seen_by.iter().map(|k| k.device_id()).collect(),
            held_by: record
                .seen_by
                .iter()
                .map(|k| HolderView {
                    device: k.device_id(),
                    user: None,
                    role: None,
                    name: None,
                })
                .collect(),
            device_last_seen: None,
            label: None,
            wiped: record
                .wiped
                .iter()
                .map(|(key, at)| WipeView {
                    device: key.device_id(),
                    wiped_at: *at,
                })
                .collect(),
        }
    }
}

impl RevocationView {
    /// Adds what this node knows of the coverage: who the holders are
    /// (from `known`, the chains of devices it has met) and when the
    /// revoked device was last seen.
    pub fn with_coverage(mut self, known: &[CertificateChain], last_seen: Option<u64>) -> Self {
        for holder in &mut self.held_by {
            if let Some(leaf) = known
                .iter()
                .filter_map(CertificateChain::leaf)
                .find(|leaf| leaf.body.key.device_id() == holder.device)
            {
                holder.user = Some(leaf.body.subject.user_id.clone());
                holder.name = Some(leaf.body.subject.display_name.clone());
                holder.role = Some(leaf.body.role.to_string());
            }
        }
        self.device_last_seen = last_seen;
        self
    }

    /// Names the revoked device and each holder by its label too, where
    /// `label` knows one ("김민지 (휴대폰)").
    pub fn with_labels(mut self, label: impl Fn(&DeviceId) -> Option<String>) -> Self {
        self.label = label(&self.device);
        for holder in &mut self.held_by {
            if let (Some(name), Some(label)) = (&holder.name, label(&holder.device)) {
                holder.name = Some(format!("{name} ({label})"));
            }
        }
        self
    }
}

/// What a user revoking a device that is already revoked is told: which
/// device (its `label` if known), by whom and when, and whether it
/// acknowledged a wipe (`wiped_at`).
pub fn already_revoked(
    existing: &VerifiedRevocation,
    label: Option<&str>,
    wiped_at: Option<u64>,
) -> String {
    let wipe = match (existing.wipe, wiped_at) {
        (true, Some(at)) => format!(
            "; the device acknowledged the wipe at {}",
            crate::clock::format_utc(at)
        ),
        (true, None) => "; wipe ordered, not acknowledged yet".to_string(),
        (false, _) => String::new(),
    };
    let device = match label {
        Some(label) => format!("{} ({label})", existing.target.device.short()),
        None => existing.target.device.short(),
    };
    format!(
        "device {device} of {} ({}) is already revoked by {} at {}{wipe}: nothing was added",
        existing.user,
        existing.display_name,
        existing.issued_by,
        crate::clock::format_utc(existing.issued_at),
    )
}

/// Why a revocation flow failed; one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum RevocationFlowError {
    /// The home, its keys or its bundle.
    #[error(transparent)]
    Enrollment(#[from] EnrollmentError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The revocation does not check out.
    #[error(transparent)]
    Revocation(#[from] RevocationError),
    /// A revocation in force already does what this one would.
    #[error("{0}")]
    Already(String),
    /// A certificate check failed.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// No certificate of the target is known here.
    #[error(
        "{0} has never been seen by this node, so its certificate is unknown here: run `baro run` on this home until it has met the mesh, then try again"
    )]
    UnknownTarget(String),
}

/// What to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One device.
    Device(DeviceId),
    /// Every device of a user.
    User(String),
    /// One certificate (by serial) of a device, which keeps its others: a
    /// user who moved to another org unit or role (audit M12).
    Certificate(DeviceId, u64),
}

impl Target {
    /// The scope a revocation of this target has.
    pub fn scope(&self) -> RevocationScope {
        match self {
            Target::Device(_) => RevocationScope::Device,
            Target::User(_) => RevocationScope::User,
            Target::Certificate(..) => RevocationScope::Certificate,
        }
    }

    /// Picks the chain naming this target among `chains` (for a user: the
    /// most recently certified of their devices).
    pub fn pick(
        &self,
        chains: impl IntoIterator<Item = CertificateChain>,
    ) -> Option<CertificateChain> {
        let mut best: Option<(u64, CertificateChain)> = None;
        for chain in chains {
            let Some(leaf) = chain.leaf() else { continue };
            let matches = match self {
                Target::Device(device) => leaf.body.key.device_id() == *device,
                Target::User(user) => leaf.body.subject.user_id == *user,
                Target::Certificate(device, serial) => {
                    leaf.body.key.device_id() == *device && leaf.body.serial == *serial
                }
            };
            if matches
                && best
                    .as_ref()
                    .is_none_or(|(at, _)| leaf.body.not_before > *at)
            {
                best = Some((leaf.body.not_before, chain.clone()));
            }
        }
        best.map(|(_, chain)| chain)
    }

    /// "device 12D3…" or "user kim.minji", for messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Device(device) => format!("device {device}"),
            Target::User(user) => format!("user {user}"),
            Target::Certificate(device, serial) => {
                format!("certificate #{serial} of device {device}")
            }
        }
    }
}

/// What the revocation says; the signer and the target chain come apart.
#[derive(Clone, Debug)]
pub struct Order {
    /// Why.
    pub reason: String,
    /// Whether the device must erase itself.
    pub wipe: bool,
    /// Issue time, Unix seconds.
    pub now: u64,
}

/// Signs a revocation of the device or user `target` names: with the
/// `signer` key behind `issuer` (the root key for [`Issuer::Root`]), then
/// checks it as every node will.
pub fn sign(
    agency: &AgencyInfo,
    target: CertificateChain,
    scope: RevocationScope,
    order: &Order,
    issuer: Issuer,
    signer: &KeyPair,
) -> Result<(Revocation, VerifiedRevocation), RevocationFlowError> {
    let revocation = Revocation::sign(
        RevocationBody {
            agency: agency.id(),
            scope,
            target,
            reason: order.reason.clone(),
            issued_at: order.now,
            wipe: order.wipe,
            issuer,
        },
        signer,
    );
    let verified = revocation.verify(agency, order.now, &TrustPolicy::default())?;
    Ok((revocation, verified))
}

/// Signs, on an operator's console in `root`, a revocation of `target`
/// (its device, or its user by `scope`) with the operator key; a
/// revocation naming an operator is signed with the agency root key (only
/// the root revokes operators). Both keys open with `passphrase`.
/// `baro agency revoke` and the app's operator page both sign here.
pub fn sign_as_operator(
    root: &Path,
    passphrase: &Passphrase,
    target: CertificateChain,
    scope: RevocationScope,
    order: &Order,
) -> Result<Revocation, RevocationFlowError> {
    let home = Home::open(root)?;
    let operator = enrollment::load_operator(&home, passphrase)?;
    let (issuer, signer) = if target.leaf().map(|c| c.body.role) == Some(Role::Operator) {
        (Issuer::Root, enrollment::load_root_key(&home, passphrase)?)
    } else {
        (Issuer::Chain(operator.chain.clone()), operator.key.clone())
    };
    let (revocation, _) = sign(&operator.agency, target, scope, order, issuer, &signer)?;
    Ok(revocation)
}

fn open_log(root: &Path) -> Result<(MessageLog, AgencyInfo), RevocationFlowError> {
    let home = Home::open(root)?;
    let agency = enrollment::load_bundle(&home)?.body.agency;
    let store = SledStore::open(home)?;
    Ok((MessageLog::new(Arc::new(store)), agency))
}

/// The certificate chain of `target` among the devices this (stopped)
/// node has met, its own, or (on an operator's console) the operator's
/// and those it issued.
pub fn find_target(root: &Path, target: &Target) -> Result<CertificateChain, RevocationFlowError> {
    let home = Home::open(root)?;
    let own = enrollment::load_bundle(&home)?.body.chain;
    // The operator's chain is named only by its key: revoking a user never
    // picks it (that would take down every device the operator enrolled).
    let operator = match target {
        Target::Device(_) | Target::Certificate(..) => enrollment::load_operator_chain(&home)?,
        Target::User(_) => None,
    };
    drop(home);
    let issued = enrollment::issued_chains(root)?;
    let (log, _) = open_log(root)?;
    let known = log.devices()?;
    target
        .pick(known.into_iter().chain([own]).chain(operator).chain(issued))
        .ok_or_else(|| RevocationFlowError::UnknownTarget(target.describe()))
}

/// The chain of `target` among those this operator home issued (`agency
/// enroll` keeps them), whether or not its node has met the device; read
/// from files, so it works while the node runs.
pub fn find_issued(root: &Path, target: &Target) -> Result<CertificateChain, RevocationFlowError> {
    target
        .pick(enrollment::issued_chains(root)?)
        .ok_or_else(|| RevocationFlowError::UnknownTarget(target.describe()))
}

/// Loads and checks every revocation the store holds, oldest first, with
/// their records.
fn load(
    log: &MessageLog,
    agency: &AgencyInfo,
    now: u64,
) -> Result<Vec<(VerifiedRevocation, RevocationRecord)>, RevocationFlowError> {
    // As the running node does: in the order the node took them, each
    // checked at the time it took it (audit M10).
    let mut set = RevocationSet::new();
    let mut out = Vec::new();
    for taken in log.revocations_as_taken(now)? {
        let Ok(revocation) = wire::decode::<Revocation>(&taken.bytes) else {
            continue;
        };
        let Ok(verified) = set.check(&revocation, agency, taken.received_at) else {
            continue;
        };
        if set.insert(verified.clone())? {
            let record = log.revocation_record(&verified.id)?;
            out.push((verified, record));
        }
    }
    Ok(out)
}

/// Keeps `revocation` in the (stopped) node's store; the node publishes it
/// at its next start.
pub fn keep_for_next_start(
    root: &Path,
    revocation: &Revocation,
    now: u64,
) -> Result<RevocationView, RevocationFlowError> {
    let (log, agency) = open_log(root)?;
    let mut set = RevocationSet::new();
    for (verified, _) in load(&log, &agency, now)? {
        set.insert(verified)?;
    }
    let verified = set.check(revocation, &agency, now)?;
    if let Some(existing) = set.already_revoked(&verified) {
        let wiped = log
            .revocation_record(&existing.id)?
            .wiped
            .values()
            .next()
            .copied();
        let label = log
            .labels()?
            .into_iter()
            .find(|(key, _, _)| key.device_id() == existing.target.device)
            .map(|(_, _, label)| label);
        return Err(RevocationFlowError::Already(already_revoked(
            existing,
            label.as_deref(),
            wiped,
        )));
    }
    let bytes = wire::encode(revocation);
    log.save_signed_revocation(&bytes, verified.issued_at)?;
    log.save_revocation_arrival(&crate::store::Arrival {
        id: verified.id,
        number: log.next_arrival_number()?,
        received_at: now,
    })?;
    let mut record = log.revocation_record(&verified.id)?;
    if record.seen_by.is_empty() {
        record.unpublished = true;
    }
    log.save_revocation_record(&verified.id, &record)?;
    // Reported as kept: it must survive a crash before the next start.
    log.flush()?;
    Ok(RevocationView::new(&verified, &record))
}

/// Every revocation the (stopped) node holds, with what it knows of each.
pub fn list(root: &Path, now: u64) -> Result<Vec<RevocationView>, RevocationFlowError> {
    let (log, agency) = open_log(root)?;
    let known = log.devices()?;
    let labels: std::collections::HashMap<DeviceId, String> = log
        .labels()?
        .into_iter()
        .map(|(key, _, label)| (key.device_id(), label))
        .collect();
    load(&log, &agency, now)?
        .iter()
        .map(|(verified, record)| {
            let seen = log.revoked_device_last_seen(&verified.id)?;
            Ok(RevocationView::new(verified, record)
                .with_coverage(&known, seen)
                .with_labels(|device| labels.get(device).cloned()))
        })
        .collect()
}

/// This (stopped) node's user's devices, as its store knows them: what
/// `baro device list` shows while `baro run` is not running. Each chain is
/// read at its own start (an expired one still names its device).
pub fn own_devices(
    root: &Path,
    now: u64,
) -> Result<Vec<crate::api::DeviceView>, RevocationFlowError> {
    let home = Home::open(root)?;
    let me = enrollment::load_device_key(&home)?.device_id();
    let own = enrollment::load_bundle(&home)?.body.chain;
    let own_label = enrollment::load_label(&home)?;
    drop(home);
    let (log, agency) = open_log(root)?;
    let policy = TrustPolicy::default();
    let user = own
        .leaf()
        .map(|leaf| leaf.body.subject.user_id.clone())
        .unwrap_or_default();
    let mut set = RevocationSet::new();
    for (verified, _) in load(&log, &agency, now)? {
        set.insert(verified)?;
    }
    let labels: std::collections::HashMap<_, _> = log
        .labels()?
        .into_iter()
        .map(|(key, _, label)| (key, label))
        .collect();
    let seen: std::collections::HashMap<_, _> = log.last_seen()?.into_iter().collect();
    let mut devices: std::collections::BTreeMap<DeviceId, crate::api::DeviceView> =
        std::collections::BTreeMap::new();
    for chain in log.devices()?.into_iter().chain([own]) {
        let Some(leaf) = chain.leaf() else { continue };
        if leaf.body.subject.user_id != user || leaf.body.role == Role::Relay {
            continue;
        }
        let Ok(device) = chain.verify(&agency, leaf.body.not_before, &policy) else {
            continue;
        };
        let key = device.device.public_key();
        let label = if device.device == me {
            own_label.clone()
        } else {
            labels.get(&key).cloned()
        };
        devices.insert(
            device.device,
            crate::api::DeviceView {
                device: device.device,
                label,
                name: device.subject.display_name.clone(),
                this_device: device.device == me,
                connected: false,
                last_seen: seen.get(&key).copied(),
                not_after: device.not_after,
                revoked: set.covering(&device).map(|r| r.issued_by.clone()),
                revoked_at: set.covering(&device).map(|r| r.issued_at),
            },
        );
    }
    let mut devices: Vec<_> = devices.into_values().collect();
    devices.sort_by(|a, b| {
        b.this_device
            .cmp(&a.this_device)
            .then_with(|| a.label.cmp(&b.label))
            .then_with(|| a.device.cmp(&b.device))
    });
    Ok(devices)
}

/// Checks a wipe receipt's bytes against `revocations` (for tests and tools).
pub fn check_receipt(
    bytes: &[u8],
    revocations: &RevocationSet,
    agency: &AgencyInfo,
) -> Result<DeviceId, RevocationFlowError> {
    let receipt: WipeReceipt =
        wire::decode(bytes).map_err(|e| TrustError::invalid("wipe receipt", e.to_string()))?;
    let revocation = revocations
        .get(&receipt.body.revocation)
        .ok_or_else(|| TrustError::invalid("wipe receipt", "answers an unknown revocation"))?;
    Ok(receipt
        .verify(revocation, agency, &TrustPolicy::default())?
        .device)
}
