//! Hybrid logical clock timestamps: wall-clock milliseconds plus a counter,
//! so every device orders messages the same way even with skewed clocks.

use serde::{Deserialize, Serialize};

/// A hybrid logical clock reading. Ordered by `(wall_ms, counter)`; ties
/// between devices are broken by the caller (e.g. by message id).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (never behind any reading seen).
    pub wall_ms: u64,
    /// Orders readings within the same millisecond.
    pub counter: u32,
}

/// Furthest a remote reading may be ahead of our clock before we stop
/// following it (a peer with a wild clock must not drag ours along).
pub const MAX_DRIFT_MS: u64 = 5 * 60 * 1000;

impl Hlc {
    /// The next reading for a local event at wall time `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        if now_ms > self.wall_ms {
            self.wall_ms = now_ms;
            self.counter = 0;
        } else {
            self.counter = self.counter.saturating_add(1);
        }
        *self
    }

    /// Merges a reading received from a peer at wall time `now_ms`; readings
    /// further than [`MAX_DRIFT_MS`] ahead are not followed.
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) {
        if remote.wall_ms > now_ms.saturating_add(MAX_DRIFT_MS) {
            return;
        }
        let wall = self.wall_ms.max(remote.wall_ms).max(now_ms);
        self.counter = match (wall == self.wall_ms, wall == remote.wall_ms) {
            (true, true) => self.counter.max(remote.counter).saturating_add(1),
            (true, false) => self.counter.saturating_add(1),
            (false, true) => remote.counter.saturating_add(1),
            (false, false) => 0,
        };
        self.wall_ms = wall;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_only_move_forward_even_when_the_wall_clock_goes_back() {
        let mut clock = Hlc::default();
        let a = clock.tick(1_000);
        let b = clock.tick(900);
        let c = clock.tick(900);
        assert!(a < b && b < c);
        assert_eq!(c.wall_ms, 1_000);
    }

    #[test]
    fn observed_readings_are_followed_within_the_drift_limit() {
        let mut clock = Hlc::default();
        clock.tick(1_000);
        clock.observe(
            Hlc {
                wall_ms: 5_000,
                counter: 7,
            },
            1_000,
        );
        let next = clock.tick(1_000);
        assert!(
            next > Hlc {
                wall_ms: 5_000,
                counter: 7
            }
        );
        let before = clock;
        clock.observe(
            Hlc {
                wall_ms: u64::MAX / 2,
                counter: 0,
            },
            1_000,
        );
        assert_eq!(clock, before, "a wild clock is not followed");
    }
}
