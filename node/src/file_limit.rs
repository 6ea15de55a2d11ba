//! The largest file a device sends or fetches: its own limit
//! ([`crate::config::NodeConfig::max_file_mb`], 100 MiB by default), lowered
//! by the agency's policy when it sets one ([`crate::trust::KnownExtensions`]),
//! and never above what the file format carries. Errors say whose limit it
//! is, so an official who hits the agency's knows to ask the agency.

use serde::{Deserialize, Serialize};

use crate::net::size_text;
use crate::wire::MAX_FILE_LEN;

/// A device's limit and the agency's, if any; the lower applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLimit {
    /// This device's own limit, in MiB.
    pub device_mb: u64,
    /// The agency's limit, in MiB (`None`: its policy sets none).
    pub agency_mb: Option<u32>,
}

impl Default for FileLimit {
    /// The default device limit, no agency limit.
    fn default() -> Self {
        FileLimit::new(crate::net::DEFAULT_MAX_FILE_MB, None)
    }
}

impl FileLimit {
    /// The limit of a device allowing `device_mb` under an agency allowing `agency_mb`.
    pub fn new(device_mb: u64, agency_mb: Option<u32>) -> Self {
        FileLimit {
            device_mb,
            agency_mb,
        }
    }

    /// The largest file, in bytes.
    pub fn bytes(&self) -> u64 {
        let device = self.device_mb.saturating_mul(1 << 20);
        let agency = self.agency_mb.map_or(u64::MAX, |mb| u64::from(mb) << 20);
        device.min(agency).min(MAX_FILE_LEN)
    }

    /// Whether the agency's limit is the one that applies.
    pub fn is_agencys(&self) -> bool {
        self.agency_mb
            .is_some_and(|mb| u64::from(mb) <= self.device_mb)
    }

    /// "the agency's limit of 1.0 MiB" or "the limit of 100.0 MiB".
    pub fn describe(&self) -> String {
        let whose = if self.is_agencys() {
            "the agency's"
        } else {
            "the"
        };
        format!("{whose} limit of {}", size_text(self.bytes()))
    }

    /// `Err` (one line naming the limit) if a file of `len` bytes is over it;
    /// `what` names the file ("report.pdf", "this file").
    pub fn check(&self, what: &str, len: u64) -> Result<(), String> {
        if len <= self.bytes() {
            return Ok(());
        }
        Err(format!(
            "{what} is {}, over {} for a file",
            size_text(len),
            self.describe()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_lower_limit_applies_and_the_error_says_whose_it_is() {
        let device = FileLimit::default();
        assert_eq!((device.bytes(), device.is_agencys()), (100 * MIB, false));
        assert_eq!(device.check("a.pdf", 100 * MIB), Ok(()));
        assert_eq!(
            device.check("a.pdf", 101 * MIB).expect_err("over"),
            "a.pdf is 101.0 MiB, over the limit of 100.0 MiB for a file"
        );
        let agency = FileLimit::new(100, Some(1));
        assert_eq!((agency.bytes(), agency.is_agencys()), (MIB, true));
        assert_eq!(agency.check("a.pdf", 512 * 1024), Ok(()));
        assert_eq!(
            agency.check("a.pdf", 2 * MIB).expect_err("over"),
            "a.pdf is 2.0 MiB, over the agency's limit of 1.0 MiB for a file"
        );
        // An agency allowing more than this device does not raise it.
        let higher = FileLimit::new(10, Some(50));
        assert_eq!((higher.bytes(), higher.is_agencys()), (10 * MIB, false));
        // Nothing goes over what the format carries.
        assert_eq!(FileLimit::new(u64::MAX, None).bytes(), MAX_FILE_LEN);
    }
}
