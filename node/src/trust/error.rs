//! Why a certificate, chain, request or bundle is not trusted.

use super::{AgencyId, Role};
use crate::clock::format_utc;
use crate::identity::DeviceId;

/// A trust decision that went against the input. Each message says what was
/// wrong in one line.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TrustError {
    /// Issued under another agency than the one we trust.
    #[error("unknown agency {found}: this device trusts agency {expected}")]
    UnknownAgency {
        /// The agency we trust.
        expected: AgencyId,
        /// The agency named by the input.
        found: AgencyId,
    },
    /// A signature does not verify with the key that should have made it.
    #[error("bad signature on {what}: it was not signed by {signer}")]
    BadSignature {
        /// What carried the signature.
        what: String,
        /// Who should have signed it.
        signer: String,
    },
    /// The validity window ended.
    #[error("{what} expired at {} (now {})", format_utc(*not_after), format_utc(*now))]
    Expired {
        /// Which certificate.
        what: String,
        /// End of validity, Unix seconds.
        not_after: u64,
        /// The clock used, Unix seconds.
        now: u64,
    },
    /// The validity window has not started.
    #[error("{what} is not valid until {} (now {}); check this device's clock", format_utc(*not_before), format_utc(*now))]
    NotYetValid {
        /// Which certificate.
        what: String,
        /// Start of validity, Unix seconds.
        not_before: u64,
        /// The clock used, Unix seconds.
        now: u64,
    },
    /// The certificate's role does not allow the action.
    #[error("{who} has role {role}, which cannot {action}; an operator certificate is required")]
    WrongRole {
        /// Whose certificate.
        who: String,
        /// Its role.
        role: Role,
        /// What it tried to do.
        action: &'static str,
    },
    /// The certificate is for another key than the one presenting it.
    #[error(
        "key mismatch: the certificate is for device {certified} but was presented by {presenter}"
    )]
    KeyMismatch {
        /// Device named in the certificate.
        certified: DeviceId,
        /// Device that presented it.
        presenter: DeviceId,
    },
    /// Structurally invalid: empty chain, bad field, window reversed, etc.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid.
        what: String,
        /// Why.
        reason: String,
    },
}

impl TrustError {
    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        TrustError::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
