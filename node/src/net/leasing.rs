//! The actor's agency policy and lease glue: takes policies from gossip,
//! sync and the local operator (the newest valid one is in force, kept in
//! the store and held for sync beside the revocations); notes every meeting
//! with an admitted peer; and on every tick moves lease time forward (never
//! back) and erases this device when its lease has ended.
//!
//! The decisions are [`crate::trust`]'s ([`PolicyInForce`], [`Lease`]); the
//! records are [`crate::agency_policy::PolicyStore`]'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::Actor;
use super::syncing::Intake;
use crate::agency_policy::{PolicyStore, PolicyView, check_at_start};
use crate::node::{NodeError, NodeEvent};
use crate::store::Store;
use crate::sync::{SyncItem, SyncScope};
use crate::trust::{AgencyPolicy, Lease, LeaseState, PolicyInForce, PolicyOffer, Role};
use crate::wire::{self, Kind};

/// How often lease time is written to disk while the node runs (and at
/// every meeting, and when the node stops).
const SAVE_EVERY_SECS: u64 = 60;

/// The policy in force and this device's lease.
#[derive(Debug)]
pub(crate) struct Leasing {
    records: PolicyStore,
    in_force: PolicyInForce,
    /// The policy in force as it travelled, and its sync item.
    bytes: Option<(Vec<u8>, SyncItem)>,
    lease: Lease,
    role: Role,
    /// When lease time last moved, on the monotonic clock.
    observed: Instant,
    /// Lease time last written to disk.
    saved: u64,
    /// Days left last announced (a warning is given once per day left).
    warned: Option<u64>,
}

impl Leasing {
    /// Loads the policy and lease of a device of `role` at start. A device
    /// past its lease erases its store here, before anything else, and the
    /// node does not start: [`NodeError::Wiped`].
    pub(crate) fn start(
        store: &Arc<dyn Store>,
        agency: &crate::trust::AgencyInfo,
        role: Role,
        wall: u64,
    ) -> Result<Self, NodeError> {
        let at_start = check_at_start(store, agency, role, wall)
            .map_err(|e| NodeError::Storage(format!("cannot read the lease: {e}")))?;
        if let LeaseState::Ended { .. } = at_start.state {
            let notice = at_start.lease.notice(&at_start.in_force.settings());
            // Said once, by the caller (`baro run` prints the error).
            tracing::info!(%notice, "lease ended: wiping this device");
            if let Err(e) = store.wipe(Some(&notice)) {
                tracing::error!(error = %e, "wipe failed");
            }
            return Err(NodeError::Wiped(notice));
        }
        keep_pin_limit(store, &at_start.in_force);
        let records = PolicyStore::new(store.clone());
        let bytes = records
            .policy_bytes()
            .ok()
            .flatten()
            .filter(|_| at_start.in_force.current().is_some())
            .map(|bytes| {
                let item = sync_item(&bytes);
                (bytes, item)
            });
        Ok(Leasing {
            records,
            in_force: at_start.in_force,
            bytes,
            saved: at_start.lease.latest,
            lease: at_start.lease,
            role,
            observed: Instant::now(),
            warned: None,
        })
    }

    /// Lease time now: the wall clock, never below the latest time seen,
    /// advancing with the monotonic clock.
    fn now(&mut self, wall: u64) -> u64 {
        let elapsed = self.observed.elapsed();
        // Whole seconds only; the rest is counted next time.
        let whole = Duration::from_secs(elapsed.as_secs());
        self.observed += whole;
        self.lease.observe(wall, whole.as_secs())
    }

    fn save(&mut self) {
        if let Err(e) = self.records.save_lease(&self.lease) {
            tracing::error!(error = %e, "cannot save the lease");
        } else {
            self.saved = self.lease.latest;
        }
    }

    /// The agency's largest file in MiB (`None`: its policy sets none).
    pub(crate) fn max_file_mb(&self) -> Option<u32> {
        self.in_force.max_file_mb()
    }

    /// The view `baro status` shows.
    pub(crate) fn view(&self) -> PolicyView {
        let state = self
            .lease
            .state(&self.in_force.settings(), self.role, self.lease.latest);
        PolicyView::new(&self.in_force, state, self.lease.last_met)
    }
}

/// Copies the policy's wrong-PIN limit to where the next unlock reads it.
fn keep_pin_limit(store: &Arc<dyn Store>, in_force: &PolicyInForce) {
    if let Err(e) = store.keep_pin_limit(in_force.max_pin_attempts()) {
        tracing::error!(error = %e, "cannot keep the wrong-PIN limit");
    }
}

/// The sync item of a policy, dated by its signing time (as revocations are).
fn sync_item(bytes: &[u8]) -> SyncItem {
    let at = wire::decode::<AgencyPolicy>(bytes).map_or(0, |p| p.body.issued_at);
    (at.saturating_mul(1000), *blake3::hash(bytes).as_bytes())
}

impl Actor {
    /// At start: holds the policy in force for sync and drops the
    /// policies it replaced from what is held.
    pub(super) fn load_policy(&mut self) {
        let Some(messaging) = self.messaging.as_ref() else {
            return;
        };
        let current = self.leasing.bytes.as_ref().map(|(_, item)| *item);
        let stored = messaging.log.signed_revocations().unwrap_or_default();
        let mut stale = Vec::new();
        for bytes in stored {
            if wire::kind_of(&bytes) == Some(Kind::AgencyPolicy) {
                let item = sync_item(&bytes);
                if Some(item) != current {
                    stale.push(item);
                }
            }
        }
        for item in stale {
            self.drop_policy_item(item);
        }
        if let Some((bytes, item)) = self.leasing.bytes.clone()
            && let Some(messaging) = self.messaging.as_ref()
        {
            match messaging.log.save_signed_revocation(&bytes, item.0 / 1000) {
                Ok(item) => self.hold(SyncScope::Revocations, item, bytes.len()),
                Err(e) => tracing::error!(error = %e, "cannot hold the agency policy"),
            }
        }
    }

    fn drop_policy_item(&mut self, item: SyncItem) {
        self.sync.forget(SyncScope::Revocations, item);
        if let Some(messaging) = self.messaging.as_ref()
            && let Err(e) = messaging.log.remove_item(SyncScope::Revocations, &item)
        {
            tracing::error!(error = %e, "cannot drop a replaced agency policy");
        }
    }

    /// Takes an agency policy from gossip or sync (`from`), or signed here
    /// (`None`): in force if it is valid and newer than the one in force.
    pub(super) fn take_policy(&mut self, bytes: &[u8], from: Option<PeerId>) -> Intake {
        let policy = match wire::decode::<AgencyPolicy>(bytes) {
            Ok(policy) => policy,
            Err(e) => return Intake::Rejected(format!("malformed agency policy: {e}")),
        };
        let now = self.clock.now();
        let gate = &self.gate;
        let offered =
            self.leasing
                .in_force
                .offer(&policy, &self.agency, now, &self.policy, |issuer| {
                    gate.revocation_of(issuer).map(|r| r.describe())
                });
        let verified = match offered {
            Ok(PolicyOffer::Taken(verified)) => *verified,
            Ok(PolicyOffer::NotNewer { .. }) => return Intake::Duplicate,
            Err(e) => return Intake::Rejected(e.to_string()),
        };
        if let Err(e) = self.leasing.records.save_policy(bytes) {
            tracing::error!(error = %e, "cannot save the agency policy");
        }
        keep_pin_limit(&self.store, &self.leasing.in_force);
        if let Some((_, old)) = self.leasing.bytes.take() {
            self.drop_policy_item(old);
        }
        let item = sync_item(bytes);
        if let Some(messaging) = self.messaging.as_ref() {
            match messaging
                .log
                .save_signed_revocation(bytes, verified.issued_at)
            {
                Ok(item) => self.hold(SyncScope::Revocations, item, bytes.len()),
                Err(e) => tracing::error!(error = %e, "cannot hold the agency policy"),
            }
        }
        self.leasing.bytes = Some((bytes.to_vec(), item));
        self.leasing.warned = None;
        tracing::info!(policy = %verified.describe(), from = ?from, "agency policy in force");
        self.emit(NodeEvent::PolicyChanged(self.leasing.view()));
        self.check_lease();
        Intake::New
    }

    /// An agency policy signed by an operator's tools, handed to this node:
    /// taken, then published (peers that miss it fetch it by sync).
    pub(super) fn submit_policy(&mut self, bytes: Vec<u8>) -> Result<PolicyView, NodeError> {
        match self.take_policy(&bytes, None) {
            Intake::New => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(self.control.clone(), bytes);
                Ok(self.leasing.view())
            }
            Intake::Duplicate => Err(NodeError::Room(format!(
                "this node already holds agency policy version {}: give a higher version",
                self.leasing.view().version
            ))),
            Intake::Rejected(reason) | Intake::Deferred(reason) => Err(NodeError::Room(reason)),
            _ => Err(NodeError::Room("the agency policy was not taken".into())),
        }
    }

    /// This device just met an admitted peer: its lease starts again.
    pub(super) fn lease_met_peer(&mut self) {
        let wall = self.clock.now();
        let now = self.leasing.now(wall);
        self.leasing.lease.met(now);
        self.leasing.warned = None;
        self.leasing.save();
    }

    /// Every tick: lease time moves on (being connected to an admitted
    /// peer is meeting it); a device past its lease erases itself, one
    /// near its end warns.
    pub(super) fn check_lease(&mut self) {
        if self.enforcement.is_wiping() {
            return;
        }
        let wall = self.clock.now();
        let now = self.leasing.now(wall);
        if !self.connections.peers().is_empty() {
            self.leasing.lease.met(now);
        }
        if self.leasing.lease.latest >= self.leasing.saved.saturating_add(SAVE_EVERY_SECS) {
            self.leasing.save();
        }
        let settings = self.leasing.in_force.settings();
        match self.leasing.lease.state(&settings, self.leasing.role, now) {
            LeaseState::Ended { .. } => {
                let notice = self.leasing.lease.notice(&settings);
                tracing::warn!(%notice, "lease ended: wiping this device");
                self.emit(NodeEvent::Wiping {
                    notice: notice.clone(),
                });
                self.enforcement
                    .begin_wipe(notice, tokio::time::Instant::now());
            }
            LeaseState::Ending { days_left, .. } if self.leasing.warned != Some(days_left) => {
                self.leasing.warned = Some(days_left);
                let view = self.leasing.view();
                if let Some(warning) = view.lease.clone() {
                    tracing::warn!(%warning, "lease ending");
                }
                self.emit(NodeEvent::LeaseEnding(view));
            }
            _ => {}
        }
    }

    /// Writes lease time to disk (when the node stops).
    pub(super) fn save_lease(&mut self) {
        self.leasing.save();
    }

    /// The policy in force and the lease, for `baro status`.
    pub(super) fn policy_view(&self) -> PolicyView {
        self.leasing.view()
    }
}
