//! The agency's trust model: root key, certificates, enrollment and policy.
//!
//! - The **agency root** signs operator certificates; its public key is the
//!   agency's identity ([`AgencyId`] is its hash).
//! - An **operator** (a certificate with role [`Role::Operator`], which only
//!   the root issues) signs device certificates; a member or relay
//!   certificate cannot issue anything, so chains are at most root →
//!   operator → device. The operator's own console device is a member.
//! - A **device certificate** binds a device key (its libp2p identity) to a
//!   user, display name, org unit, role and validity window.
//! - A **revocation** shuts a device (or a user) out for good; the revoked
//!   device answers with a **wipe receipt**.
//! - The **agency policy**, signed by an operator, sets the **lease** (how
//!   long a device may go without meeting a peer before it erases itself),
//!   the wrong-PIN limit and the largest file a device sends or fetches.
//!
//! Pure: time comes in as `now` (Unix seconds), randomness as
//! [`Entropy`](crate::identity::Entropy); every check returns a typed
//! [`TrustError`].

mod admission;
mod agency;
mod agency_policy;
mod blocklist;
mod bundle;
mod certificate;
mod chain;
mod chain_cache;
mod directory;
mod error;
mod lease;
mod network_key;
mod offenders;
mod operator;
mod org_unit;
mod people;
mod policy;
mod policy_extensions;
mod request;
mod revocation;
mod revocation_set;
mod signed_frame;
mod wipe_receipt;

pub use admission::{AdmissionHello, admit, empty_revocation_digest};
pub use agency::{AgencyId, AgencyInfo};
pub use agency_policy::{
    AgencyPolicy, AgencyPolicyBody, DEFAULT_MAX_PIN_ATTEMPTS, MAX_EXTENSION_LEN, MAX_LEASE_DAYS,
    MAX_PIN_ATTEMPTS, MAX_POLICY_EXTENSIONS, POLICY_FORMAT, PolicyExtension, PolicyInForce,
    PolicyOffer, PolicySettings, VerifiedPolicy,
};
pub use blocklist::{Blocked, Blocklist};
pub use bundle::{BundleBody, EnrollmentBundle, check_bootstrap};
pub(crate) use certificate::validate_user_id;
pub use certificate::{
    Certificate, CertificateBody, MAX_DEVICE_LABEL_LEN, Role, Subject, device_label,
};
pub use chain::{CertificateChain, MAX_CHAIN_LEN, VerifiedDevice};
pub use chain_cache::{CHAIN_CACHE_CAPACITY, ChainCache};
pub use directory::{
    Directory, DirectoryAnswer, DirectoryCursor, DirectoryError, DirectoryQuery,
    MAX_ANSWER_DEVICES, MAX_DIRECTORY_DEVICES, MAX_SEARCH_LEN,
};
pub use error::TrustError;
pub use lease::{Lease, LeaseState, lease_applies_to};
pub use network_key::NetworkKey;
pub use offenders::{Ban, OffenderPolicy, Offenders, RemoteAddress};
pub use operator::{
    DAY_SECS, DEFAULT_DEVICE_CERT_DAYS, Enrollment, MAX_DEVICE_CERT_DAYS, NewAgency, Operator,
};
pub use org_unit::OrgUnit;
pub use people::{Lookup, MAX_SUGGESTIONS, PeopleError, Person, lookup, people, search};
pub use policy::{Action, TrustPolicy};
pub use policy_extensions::{EXT_MAX_FILE_MB, KnownExtensions, MAX_POLICY_FILE_MB};
pub use request::{EnrollmentRequest, RequestBody};
pub use revocation::{
    Issuer, MAX_REASON_LEN, Revocation, RevocationBody, RevocationScope, VerifiedRevocation,
    validate_reason,
};
pub use revocation_set::{KEPT_AFTER_EXPIRY_SECS, MAX_REVOCATIONS, RevocationError, RevocationSet};
pub use signed_frame::{FrameBody, MAX_FRAME_PAYLOAD, SignedFrame};
pub use wipe_receipt::{WipeReceipt, WipeReceiptBody};

#[cfg(test)]
mod agency_policy_tests;
#[cfg(test)]
mod authority_tests;
#[cfg(test)]
mod revocation_tests;
#[cfg(test)]
mod tests;
