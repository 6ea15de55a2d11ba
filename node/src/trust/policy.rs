//! Trust policy knobs and the actions certificates authorise.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Role, TrustError};

/// Tunables for trust decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustPolicy {
    /// How far apart two devices' clocks may be, in seconds: a certificate
    /// is accepted this long before its start and after its end.
    pub clock_skew_secs: u64,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        TrustPolicy {
            clock_skew_secs: 5 * 60,
        }
    }
}

/// Something only some roles may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Sign another certificate (enroll a device).
    Enroll,
    /// Revoke a device or user.
    Revoke,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Enroll => "enroll devices",
            Action::Revoke => "revoke devices",
        }
    }

    /// Checks that `role` may perform this action; `who` names the holder in the error.
    pub fn check(self, role: Role, who: impl Into<String>) -> Result<(), TrustError> {
        if role == Role::Operator {
            Ok(())
        } else {
            Err(TrustError::WrongRole {
                who: who.into(),
                role,
                action: self.as_str(),
            })
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
