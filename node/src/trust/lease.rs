//! The lease: a device that has met no admitted peer for longer than the
//! agency policy allows erases itself, so a stolen device kept offline does
//! not keep its data for ever.
//!
//! Time here is the device's own clock, which a thief can set back. So the
//! lease never reads it alone: [`Lease::observe`] keeps the latest time
//! ever seen (persisted by the node), never goes back, and, while the node
//! runs, advances at least as fast as the monotonic clock, whatever the
//! wall clock says. What remains: a thief who keeps the device switched
//! off, or who starts it only with its wall clock set back to just after
//! its last meeting, spends no lease time while it is off; without a
//! trusted clock (a secure RTC, a TPM counter) the device cannot tell how
//! long it was off.
//!
//! Relays hold no lease: a relay sits in a locked office and may
//! legitimately be alone for weeks (every device of its office away) while
//! it keeps messages for devices that are offline, and it unlocks with a
//! key file rather than a PIN; wiping it would lose what it holds for
//! everyone. An operator's console is a member device and holds a lease
//! like any other, which is one more reason to keep the agency root key
//! offline. (A certificate with role operator belongs to an operator's
//! signing key, never to a running device.)

use super::{DAY_SECS, PolicySettings, Role};
use crate::clock::format_utc;

/// Where a device stands with its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// No lease: the policy sets none, or none applies to this role.
    None,
    /// The lease runs until `ends_at` (Unix seconds).
    Running {
        /// When it ends.
        ends_at: u64,
    },
    /// The lease ends in `days_left` days (rounded up): warn the user.
    Ending {
        /// When it ends.
        ends_at: u64,
        /// Whole days left, at least 1.
        days_left: u64,
    },
    /// The lease ended: the device erases itself now.
    Ended {
        /// When it ended.
        ended_at: u64,
    },
}

impl LeaseState {
    /// One line for people: "lease ends in 3 days (…)"; `None` without a lease.
    pub fn describe(&self) -> Option<String> {
        match self {
            LeaseState::None => None,
            LeaseState::Running { ends_at } => {
                Some(format!("lease runs until {}", format_utc(*ends_at)))
            }
            LeaseState::Ending { ends_at, days_left } => Some(format!(
                "lease ends in {days_left} day{} ({}): connect to the agency network before then or this device erases itself",
                if *days_left == 1 { "" } else { "s" },
                format_utc(*ends_at)
            )),
            LeaseState::Ended { ended_at } => {
                Some(format!("lease ended at {}", format_utc(*ended_at)))
            }
        }
    }
}

/// Whether a device of `role` holds a lease (members do; relays do not,
/// see the module docs).
pub fn lease_applies_to(role: Role) -> bool {
    role == Role::Member
}

/// A device's lease record: when it last met an admitted peer, and the
/// latest time it has ever seen. Both are persisted by the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The last time an admitted peer was met (Unix seconds, lease time).
    pub last_met: u64,
    /// The latest time seen: lease time never goes below it.
    pub latest: u64,
}

impl Lease {
    /// A lease record begun at `now`: a device's first start counts as a
    /// meeting (it was just enrolled, or upgraded to a build with leases).
    pub fn begin(now: u64) -> Self {
        Lease {
            last_met: now,
            latest: now,
        }
    }

    /// The lease time now, given the wall clock reading `wall` and the
    /// seconds `elapsed` on the monotonic clock since the previous call in
    /// this process (0 at start): the latest of the wall clock and the
    /// previous lease time plus `elapsed`. It never goes back.
    pub fn observe(&mut self, wall: u64, elapsed: u64) -> u64 {
        self.latest = wall.max(self.latest.saturating_add(elapsed));
        self.latest
    }

    /// Notes a meeting with an admitted peer at lease time `now`.
    pub fn met(&mut self, now: u64) {
        self.last_met = self.last_met.max(now);
        self.latest = self.latest.max(now);
    }

    /// Where a device of `role` stands at lease time `now` under `settings`.
    pub fn state(&self, settings: &PolicySettings, role: Role, now: u64) -> LeaseState {
        let Some(lease) = settings.lease_secs() else {
            return LeaseState::None;
        };
        if !lease_applies_to(role) {
            return LeaseState::None;
        }
        let ends_at = self.last_met.saturating_add(lease);
        if now >= ends_at {
            return LeaseState::Ended { ended_at: ends_at };
        }
        let warning = u64::from(settings.lease_warning_days) * DAY_SECS;
        if now.saturating_add(warning) >= ends_at && warning > 0 {
            let days_left = (ends_at - now).div_ceil(DAY_SECS).max(1);
            return LeaseState::Ending { ends_at, days_left };
        }
        LeaseState::Running { ends_at }
    }

    /// What the device says when it erases itself for its lease.
    pub fn notice(&self, settings: &PolicySettings) -> String {
        format!(
            "this device met no admitted peer since {}, longer than the agency's lease of {} days: local data erased",
            format_utc(self.last_met),
            settings.lease_days
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000;

    fn policy(days: u32, warn: u32) -> PolicySettings {
        PolicySettings {
            lease_days: days,
            lease_warning_days: warn,
            ..PolicySettings::default()
        }
    }

    #[test]
    fn a_member_past_its_lease_must_wipe_and_warns_before() {
        let lease = Lease::begin(T);
        let p = policy(14, 3);
        assert_eq!(
            lease.state(&p, Role::Member, T + 10 * DAY_SECS),
            LeaseState::Running {
                ends_at: T + 14 * DAY_SECS
            }
        );
        let ending = lease.state(&p, Role::Member, T + 11 * DAY_SECS + 1);
        assert_eq!(
            ending,
            LeaseState::Ending {
                ends_at: T + 14 * DAY_SECS,
                days_left: 3
            }
        );
        assert!(
            ending
                .describe()
                .is_some_and(|d| d.starts_with("lease ends in 3 days"))
        );
        assert!(matches!(
            lease.state(&p, Role::Member, T + 14 * DAY_SECS - 60),
            LeaseState::Ending { days_left: 1, .. }
        ));
        assert_eq!(
            lease.state(&p, Role::Member, T + 14 * DAY_SECS),
            LeaseState::Ended {
                ended_at: T + 14 * DAY_SECS
            }
        );
        assert!(lease.notice(&p).contains("lease of 14 days"));
    }

    #[test]
    fn meeting_a_peer_renews_the_lease() {
        let mut lease = Lease::begin(T);
        let p = policy(14, 3);
        lease.met(T + 13 * DAY_SECS);
        assert!(matches!(
            lease.state(&p, Role::Member, T + 20 * DAY_SECS),
            LeaseState::Running { .. }
        ));
        assert!(matches!(
            lease.state(&p, Role::Member, T + 27 * DAY_SECS),
            LeaseState::Ended { .. }
        ));
    }

    #[test]
    fn no_lease_without_a_policy_nor_for_relays() {
        let lease = Lease::begin(T);
        let far = T + 1000 * DAY_SECS;
        assert_eq!(
            lease.state(&PolicySettings::default(), Role::Member, far),
            LeaseState::None
        );
        for role in [Role::Relay, Role::Operator] {
            assert_eq!(lease.state(&policy(14, 3), role, far), LeaseState::None);
        }
    }

    #[test]
    fn a_clock_set_back_does_not_turn_lease_time_back() {
        let mut lease = Lease::begin(T);
        let p = policy(14, 3);
        // Twenty days pass on the wall clock while the device runs alone.
        assert_eq!(lease.observe(T + 20 * DAY_SECS, 0), T + 20 * DAY_SECS);
        // The thief sets the clock back to the day after the last meeting.
        let now = lease.observe(T + DAY_SECS, 0);
        assert_eq!(now, T + 20 * DAY_SECS);
        assert!(matches!(
            lease.state(&p, Role::Member, now),
            LeaseState::Ended { .. }
        ));
        // While the node runs, lease time follows the monotonic clock even
        // if the wall clock is held still.
        let mut lease = Lease::begin(T);
        for _ in 0..15 {
            lease.observe(T, DAY_SECS);
        }
        assert_eq!(lease.latest, T + 15 * DAY_SECS);
        // A meeting dated before the latest time seen does not move it back.
        lease.met(T);
        assert_eq!((lease.last_met, lease.latest), (T, T + 15 * DAY_SECS));
    }
}
