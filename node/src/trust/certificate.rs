//! One certificate: an issuer's signed statement binding a key to a person and a role.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{AgencyId, OrgUnit, TrustError};
use crate::identity::{KeyPair, PublicKey, Signature};
use crate::wire::Domain;

/// What a certificate's holder may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An official's device: chats, nothing more.
    Member,
    /// A field-office relay: bootstrap, NAT relay, store-and-forward.
    Relay,
    /// An operator: may enroll and revoke devices.
    Operator,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Member => "member",
            Role::Relay => "relay",
            Role::Operator => "operator",
        })
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "member" => Ok(Role::Member),
            "relay" => Ok(Role::Relay),
            "operator" => Ok(Role::Operator),
            other => Err(format!(
                "unknown role '{other}' (expected member, relay or operator)"
            )),
        }
    }
}

/// Who a certificate is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// Stable user id, e.g. an employee number or `kim.minji`.
    pub user_id: String,
    /// Name shown to other officials.
    pub display_name: String,
    /// Org unit path; department rooms are derived from it.
    pub org_unit: OrgUnit,
}

impl Subject {
    /// Longest accepted user id, in bytes.
    pub const MAX_USER_ID_LEN: usize = 64;
    /// Longest accepted display name, in bytes.
    pub const MAX_DISPLAY_NAME_LEN: usize = 128;

    /// The same subject with every name in Unicode NFC ([`crate::text`]):
    /// what an operator certifies, so that a path typed as conjoining jamo
    /// names the same department as the precomposed one.
    pub fn normalized(self) -> Subject {
        Subject {
            user_id: crate::text::nfc_string(&self.user_id),
            display_name: crate::text::nfc_string(&self.display_name),
            org_unit: self.org_unit.normalized(),
        }
    }

    /// Checks every field; decoding alone does not.
    pub fn validate(&self) -> Result<(), TrustError> {
        validate_user_id(&self.user_id)?;
        validate_display_name(&self.display_name)?;
        self.org_unit.validate()
    }
}

/// Checks a user id: 1–64 bytes of letters, digits, `.`, `_`, `-` or `@`.
pub(crate) fn validate_user_id(user_id: &str) -> Result<(), TrustError> {
    let ok = !user_id.is_empty()
        && user_id.len() <= Subject::MAX_USER_ID_LEN
        && user_id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(TrustError::invalid(
            format!("user id '{user_id}'"),
            "use 1 to 64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

/// Checks a display name: 1–128 bytes of printable text.
pub(crate) fn validate_display_name(name: &str) -> Result<(), TrustError> {
    let ok = !name.trim().is_empty()
        && name.len() <= Subject::MAX_DISPLAY_NAME_LEN
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(TrustError::invalid(
            format!("display name '{name}'"),
            "use 1 to 128 bytes of printable text",
        ))
    }
}

/// Longest device label, in bytes ("PC", "휴대폰", "office laptop").
pub const MAX_DEVICE_LABEL_LEN: usize = 32;

/// A device label as typed (NFC, surrounding spaces dropped) if it is 1–32
/// bytes of printable text: it tells one official's devices apart.
pub fn device_label(label: &str) -> Result<String, TrustError> {
    let label = crate::text::nfc_string(label.trim());
    if label.is_empty()
        || label.len() > MAX_DEVICE_LABEL_LEN
        || label.chars().any(|c| c.is_control())
    {
        return Err(TrustError::invalid(
            format!("device label '{label}'"),
            "use 1 to 32 bytes of printable text, e.g. PC or 휴대폰",
        ));
    }
    Ok(label)
}

/// The signed part of a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateBody {
    /// Agency the certificate belongs to.
    pub agency: AgencyId,
    /// Issuer-chosen serial number.
    pub serial: u64,
    /// The certified key: a device key, or an operator's signing key.
    pub key: PublicKey,
    /// The person behind the key.
    pub subject: Subject,
    /// What the holder may do.
    pub role: Role,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// Key that signed this certificate (agency root or an operator).
    pub issuer: PublicKey,
}

/// A certificate: body plus the issuer's signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// What is certified.
    pub body: CertificateBody,
    /// Issuer's signature over [`Domain::Certificate`] and the body.
    pub signature: Signature,
}

impl Certificate {
    /// Signs `body` with `issuer`; the body's `issuer` field is set to match.
    pub fn issue(mut body: CertificateBody, issuer: &KeyPair) -> Self {
        body.issuer = issuer.public();
        let signature = issuer.sign(Domain::Certificate, &body);
        Certificate { body, signature }
    }

    /// Whether the signature verifies under `issuer` (strictly).
    pub fn is_signed_by(&self, issuer: &PublicKey) -> bool {
        self.body.issuer == *issuer
            && issuer.verify(Domain::Certificate, &self.body, &self.signature)
    }

    /// A one-line description for messages: "certificate #serial of user (role)".
    pub fn describe(&self) -> String {
        format!(
            "{} certificate #{} of {}",
            self.body.role, self.body.serial, self.body.subject.user_id
        )
    }
}
