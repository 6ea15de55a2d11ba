//! An agency's public identity: its name and root key; its id is the key's hash.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::identity::PublicKey;
use crate::wire::Domain;

/// The agency id: BLAKE3 of the root public key (domain-separated).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgencyId(pub [u8; 32]);

impl AgencyId {
    /// The id of the agency whose root key is `root`.
    pub fn of_root(root: &PublicKey) -> Self {
        AgencyId(blake3::derive_key(Domain::AgencyId.as_str(), &root.0))
    }

    /// Short form for logs and listings (first 8 bytes in hex).
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }

    /// The root's fingerprint for people to compare out of band (audit
    /// L8): the id's first 20 bytes as ten groups of four hex digits,
    /// e.g. `3f2a 9c01 …`. 160 bits: no one makes a root to match it.
    pub fn fingerprint(&self) -> String {
        let hex = hex::encode(&self.0[..FINGERPRINT_BYTES]);
        let groups: Vec<&str> = (0..hex.len())
            .step_by(4)
            .map(|start| &hex[start..start + 4])
            .collect();
        groups.join(" ")
    }

    /// Whether `typed` (a fingerprint as shown, in any case, with or
    /// without spaces, or the whole id in hex) names this agency.
    pub fn matches_fingerprint(&self, typed: &str) -> bool {
        let typed: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        typed == hex::encode(&self.0[..FINGERPRINT_BYTES]) || typed == hex::encode(self.0)
    }
}

/// Bytes of the agency id shown as the root's fingerprint.
const FINGERPRINT_BYTES: usize = 20;

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

impl fmt::Debug for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgencyId({})", hex::encode(self.0))
    }
}

/// What every device knows about its agency: a name for people and the root
/// key that anchors every certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyInfo {
    /// Human name, e.g. "Ministry of the Interior and Safety".
    pub name: String,
    /// The agency root's public key.
    pub root: PublicKey,
}

impl AgencyInfo {
    /// Longest accepted agency name, in bytes.
    pub const MAX_NAME_LEN: usize = 128;

    /// The agency id (hash of the root key).
    pub fn id(&self) -> AgencyId {
        AgencyId::of_root(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_ten_groups_of_four_hex_digits_and_matches_as_typed() {
        let id = AgencyId::of_root(&PublicKey([7; 32]));
        let fingerprint = id.fingerprint();
        assert_eq!(fingerprint.len(), 10 * 4 + 9);
        assert_eq!(fingerprint.split(' ').count(), 10);
        assert!(id.matches_fingerprint(&fingerprint));
        assert!(id.matches_fingerprint(&fingerprint.replace(' ', "").to_uppercase()));
        assert!(id.matches_fingerprint(&hex::encode(id.0)));
        let other = AgencyId::of_root(&PublicKey([8; 32]));
        assert!(!other.matches_fingerprint(&fingerprint));
        assert!(
            !id.matches_fingerprint(&fingerprint[..20]),
            "a prefix is not enough"
        );
        assert!(!id.matches_fingerprint(""));
    }
}
