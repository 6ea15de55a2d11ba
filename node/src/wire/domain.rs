//! Domain-separation strings: every signature and derived hash states what it is for.

/// What a signature or derived value is for. The string is prefixed to the
/// signed bytes, so a signature made for one purpose never verifies for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// A certificate issued by the agency root or an operator.
    Certificate,
    /// A device's proof that it holds the key in its enrollment request.
    EnrollmentRequest,
    /// An operator's signature over a whole enrollment bundle.
    EnrollmentBundle,
    /// Agency id derivation from the root public key.
    AgencyId,
    /// A device's signature over a gossip frame.
    GossipFrame,
    /// A device's signature over a message envelope (also its AEAD header binding).
    Envelope,
    /// A device's signature over a room key grant.
    KeyGrant,
    /// Context of a room key wrapped to a device.
    KeyWrap,
    /// A revocation, signed by the root, an operator or a device of the same user.
    Revocation,
    /// A revoked device's receipt that it wiped itself.
    WipeReceipt,
    /// Context of an org unit's secret wrapped to a child unit or a device,
    /// and of the department room key derived from it.
    UnitKeyWrap,
    /// A device's signature over a re-key of a path of the department key tree.
    PathRekey,
    /// An epoch creator's statement of which revoked devices it left out.
    EpochOrigin,
    /// An operator's agency policy (lease, wrong-PIN limit).
    AgencyPolicy,
}

impl Domain {
    /// The domain string, `baro/<kind>/v1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Certificate => "baro/certificate/v1",
            Domain::EnrollmentRequest => "baro/enrollment-request/v1",
            Domain::EnrollmentBundle => "baro/enrollment-bundle/v1",
            Domain::AgencyId => "baro/agency-id/v1",
            Domain::GossipFrame => "baro/gossip-frame/v1",
            Domain::Envelope => "baro/envelope/v1",
            Domain::KeyGrant => "baro/key-grant/v1",
            Domain::KeyWrap => "baro/key-wrap/v1",
            Domain::Revocation => "baro/revocation/v1",
            Domain::WipeReceipt => "baro/wipe-receipt/v1",
            Domain::UnitKeyWrap => "baro/unit-key-wrap/v1",
            Domain::PathRekey => "baro/path-rekey/v1",
            Domain::EpochOrigin => "baro/epoch-origin/v1",
            Domain::AgencyPolicy => "baro/agency-policy/v1",
        }
    }
}
