//! The agency policy and the lease on a node's store: the policy in force
//! and the lease record are kept in the store, checked when the node starts
//! (a device past its lease erases itself before anything else), and an
//! operator signs a new policy from the operator's home.
//!
//! The decisions are made in [`crate::trust`] ([`PolicyInForce`],
//! [`Lease`]); this module only reads and writes them. While `baro run`
//! holds the database, the CLI hands a new policy to the running node over
//! the control API instead of [`keep_for_next_start`].

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::format_utc;
use crate::enrollment::{self, EnrollmentError};
use crate::store::{Home, MessageLog, SledStore, Store, StoreError};
use crate::trust::{
    AgencyInfo, AgencyPolicy, AgencyPolicyBody, KnownExtensions, Lease, LeaseState, POLICY_FORMAT,
    PolicyInForce, PolicySettings, Role, TrustError, TrustPolicy, VerifiedPolicy,
};
use crate::wire::{self, Format};

/// The tree holding the policy in force and the lease record.
const TREE: &str = "agency_policy";
/// The policy in force, as it travelled.
const POLICY: &[u8] = b"policy";
/// When an admitted peer was last met (u64, big-endian).
const LAST_MET: &[u8] = b"last_met";
/// The latest time ever seen (u64, big-endian).
const LATEST: &[u8] = b"latest";

/// The policy and lease, as shown by `baro status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyView {
    /// The policy in force ("none received": the defaults apply).
    pub policy: Option<String>,
    /// Its version (0: none received).
    pub version: u64,
    /// Lease in days (0: none).
    pub lease_days: u32,
    /// Days of warning before the lease ends.
    pub lease_warning_days: u32,
    /// Wrong PINs accepted before a wipe.
    pub max_pin_attempts: u32,
    /// The agency's largest file in MiB (`None`: it sets none, each
    /// device's own limit applies).
    #[serde(default)]
    pub max_file_mb: Option<u32>,
    /// Where this device stands with its lease, in words (`None`: no lease here).
    pub lease: Option<String>,
    /// Whole days left on the lease, if it is ending (the warning is due).
    pub lease_days_left: Option<u64>,
    /// When an admitted peer was last met, Unix seconds.
    pub last_met: u64,
}

impl PolicyView {
    /// The view of `in_force` and `state` for a device that last met a peer at `last_met`.
    pub fn new(in_force: &PolicyInForce, state: LeaseState, last_met: u64) -> Self {
        let settings = in_force.settings();
        PolicyView {
            policy: in_force.current().map(VerifiedPolicy::describe),
            version: in_force.current().map_or(0, |p| p.version),
            lease_days: settings.lease_days,
            lease_warning_days: settings.lease_warning_days,
            max_pin_attempts: settings.max_pin_attempts,
            max_file_mb: in_force.max_file_mb(),
            lease: state.describe(),
            lease_days_left: match state {
                LeaseState::Ending { days_left, .. } => Some(days_left),
                _ => None,
            },
            last_met,
        }
    }
}

/// Why a policy flow failed; one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The home, its keys or its bundle.
    #[error(transparent)]
    Enrollment(#[from] EnrollmentError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The policy does not check out.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// Not newer than the policy in force.
    #[error(
        "this home already holds policy version {in_force}: give a higher --policy-version (or leave it out)"
    )]
    NotNewer {
        /// The version in force.
        in_force: u64,
    },
}

/// The policy and lease records of one store.
#[derive(Clone, Debug)]
pub struct PolicyStore {
    store: Arc<dyn Store>,
}

impl PolicyStore {
    /// The records kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        PolicyStore { store }
    }

    /// The policy in force: the one kept here (checked when it arrived; its
    /// signature is checked again, as of its own date), or none.
    pub fn in_force(&self, agency: &AgencyInfo) -> Result<PolicyInForce, StoreError> {
        Ok(self
            .policy_bytes()?
            .and_then(|bytes| restore(&bytes, agency))
            .map(PolicyInForce::restore)
            .unwrap_or_default())
    }

    /// The bytes of the policy in force, as they travelled.
    pub fn policy_bytes(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(TREE, POLICY)
    }

    /// Keeps `bytes` as the policy in force.
    pub fn save_policy(&self, bytes: &[u8]) -> Result<(), StoreError> {
        self.store.insert(TREE, POLICY, bytes)
    }

    /// The lease record; a store without one begins it at `now` (and keeps it).
    pub fn lease(&self, now: u64) -> Result<Lease, StoreError> {
        let read = |key: &[u8]| -> Result<Option<u64>, StoreError> {
            Ok(self
                .store
                .get(TREE, key)?
                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map(u64::from_be_bytes))
        };
        match (read(LAST_MET)?, read(LATEST)?) {
            (Some(last_met), Some(latest)) => Ok(Lease { last_met, latest }),
            _ => {
                let lease = Lease::begin(now);
                self.save_lease(&lease)?;
                Ok(lease)
            }
        }
    }

    /// Keeps the lease record.
    pub fn save_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.store
            .insert(TREE, LAST_MET, &lease.last_met.to_be_bytes())?;
        self.store.insert(TREE, LATEST, &lease.latest.to_be_bytes())
    }
}

/// Wrong PINs the agency policy kept in `store` allows ([`PolicySettings`]'s
/// default without one). The PIN check runs before the store can be
/// opened, so it keeps this number where it can read it then, refreshed
/// at each unlock.
pub fn max_pin_attempts(store: &Arc<dyn Store>, agency: &AgencyInfo) -> Result<u32, StoreError> {
    Ok(PolicyStore::new(store.clone())
        .in_force(agency)?
        .max_pin_attempts())
}

/// Decodes and re-checks a kept policy as of its own date.
fn restore(bytes: &[u8], agency: &AgencyInfo) -> Option<VerifiedPolicy> {
    let policy = wire::decode::<AgencyPolicy>(bytes).ok()?;
    match policy.verify(agency, policy.body.issued_at, &TrustPolicy::default()) {
        Ok(verified) => Some(verified),
        Err(e) => {
            tracing::error!(error = %e, "the kept agency policy no longer checks out");
            None
        }
    }
}

/// What a node found at start.
#[derive(Debug)]
pub struct AtStart {
    /// The policy in force.
    pub in_force: PolicyInForce,
    /// The lease record, its time moved to now.
    pub lease: Lease,
    /// Where the device stands.
    pub state: LeaseState,
}

/// The start check, before anything else: loads the policy and lease of
/// a device of `role`, moves lease time to the wall clock reading `wall`
/// (never back), keeps it, and says where the device stands. A device whose
/// lease has ended must erase itself ([`AtStart::state`] is `Ended`).
pub fn check_at_start(
    store: &Arc<dyn Store>,
    agency: &AgencyInfo,
    role: Role,
    wall: u64,
) -> Result<AtStart, StoreError> {
    let records = PolicyStore::new(store.clone());
    let in_force = records.in_force(agency)?;
    let mut lease = records.lease(wall)?;
    let now = lease.observe(wall, 0);
    records.save_lease(&lease)?;
    let state = lease.state(&in_force.settings(), role, now);
    Ok(AtStart {
        in_force,
        lease,
        state,
    })
}

/// What an operator decides for a new policy.
#[derive(Clone, Copy, Debug)]
pub struct NewPolicy {
    /// The settings.
    pub settings: PolicySettings,
    /// The settings carried as extensions (the largest file).
    pub extensions: KnownExtensions,
    /// Its version; `None`: one above the version this home holds.
    pub version: Option<u64>,
    /// Signing time, Unix seconds.
    pub now: u64,
}

/// Signs a new agency policy with the operator key of the home at `root`
/// (unlocked with `passphrase`), numbered above `held` (the version this
/// node holds, if known), and checks it as every node will.
pub fn sign(
    root: &Path,
    passphrase: &crate::crypto::Passphrase,
    new: NewPolicy,
    held: u64,
) -> Result<(AgencyPolicy, VerifiedPolicy), PolicyError> {
    new.settings.validate()?;
    let home = Home::open(root)?;
    let operator = enrollment::load_operator(&home, passphrase)?;
    let version = new.version.unwrap_or(held.saturating_add(1));
    if version <= held {
        return Err(PolicyError::NotNewer { in_force: held });
    }
    let policy = AgencyPolicy::sign(
        AgencyPolicyBody {
            agency: operator.agency.id(),
            format: POLICY_FORMAT,
            version,
            issued_at: new.now,
            settings: new.settings,
            extensions: new.extensions.encode()?,
            issuer: operator.chain.clone(),
        },
        &operator.key,
    );
    let bytes = wire::encode(&policy);
    if bytes.len() > AgencyPolicy::MAX_LEN {
        return Err(TrustError::invalid("agency policy", "too large").into());
    }
    let verified = policy.verify(&operator.agency, new.now, &TrustPolicy::default())?;
    Ok((policy, verified))
}

/// The policy version the (stopped) node in `root` holds (0: none).
pub fn held_version(root: &Path) -> Result<u64, PolicyError> {
    let (store, agency) = open(root)?;
    Ok(PolicyStore::new(store)
        .in_force(&agency)?
        .current()
        .map_or(0, |p| p.version))
}

fn open(root: &Path) -> Result<(Arc<dyn Store>, AgencyInfo), PolicyError> {
    let home = Home::open(root)?;
    let agency = enrollment::load_bundle(&home)?.body.agency;
    let store: Arc<dyn Store> = Arc::new(SledStore::open(home)?);
    Ok((store, agency))
}

/// Keeps `policy` in the (stopped) node's store as the policy in force and
/// for sync; the node publishes it at its next start and peers fetch it.
pub fn keep_for_next_start(
    root: &Path,
    policy: &AgencyPolicy,
    now: u64,
) -> Result<VerifiedPolicy, PolicyError> {
    let (store, agency) = open(root)?;
    let records = PolicyStore::new(store.clone());
    let mut in_force = records.in_force(&agency)?;
    let verified = match in_force.offer(policy, &agency, now, &TrustPolicy::default(), |_| None)? {
        crate::trust::PolicyOffer::Taken(verified) => *verified,
        crate::trust::PolicyOffer::NotNewer { in_force } => {
            return Err(PolicyError::NotNewer { in_force });
        }
    };
    let bytes = wire::encode(policy);
    records.save_policy(&bytes)?;
    let log = MessageLog::new(store.clone());
    log.save_signed_revocation(&bytes, verified.issued_at)?;
    // Reported as kept: it must survive a crash before the next start.
    store.flush()?;
    tracing::info!(policy = %verified.describe(), at = %format_utc(now), "agency policy kept for the next start");
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testing::TestAgency;
    use crate::trust::{DAY_SECS, DEFAULT_MAX_PIN_ATTEMPTS};

    fn policy(agency: &TestAgency, max_pin_attempts: u32) -> Vec<u8> {
        let operator = &agency.agency.operator;
        wire::encode(&AgencyPolicy::sign(
            AgencyPolicyBody {
                agency: operator.agency.id(),
                format: POLICY_FORMAT,
                version: 1,
                issued_at: crate::testing::T0,
                settings: PolicySettings {
                    lease_days: 14,
                    lease_warning_days: 3,
                    max_pin_attempts,
                },
                extensions: Vec::new(),
                issuer: operator.chain.clone(),
            },
            &operator.key,
        ))
    }

    #[test]
    fn the_kept_policy_and_lease_come_back_and_a_device_past_its_lease_must_wipe() {
        let agency = TestAgency::new(5);
        let info = &agency.agency.operator.agency;
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let t = crate::testing::T0;
        assert_eq!(
            max_pin_attempts(&store, info).expect("read"),
            DEFAULT_MAX_PIN_ATTEMPTS
        );
        let first = check_at_start(&store, info, Role::Member, t).expect("start");
        assert_eq!((first.lease.last_met, first.state), (t, LeaseState::None));
        PolicyStore::new(store.clone())
            .save_policy(&policy(&agency, 4))
            .expect("saved");
        assert_eq!(max_pin_attempts(&store, info).expect("read"), 4);
        let later = check_at_start(&store, info, Role::Member, t + 15 * DAY_SECS).expect("start");
        assert!(matches!(later.state, LeaseState::Ended { .. }), "{later:?}");
        // Started again with the clock set back: lease time stays where it was.
        let back = check_at_start(&store, info, Role::Member, t + DAY_SECS).expect("start");
        assert_eq!(back.lease.latest, t + 15 * DAY_SECS);
        assert!(matches!(back.state, LeaseState::Ended { .. }));
        // A relay keeps its data.
        let relay = check_at_start(&store, info, Role::Relay, t + 15 * DAY_SECS).expect("start");
        assert_eq!(relay.state, LeaseState::None);
    }
}
