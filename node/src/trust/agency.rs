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
}

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
