//! The agency directory a relay keeps: the certificate chains it has
//! verified, answering who a user is (their devices), who is in an org unit,
//! and name searches. With it a device need not know every device of the
//! agency to write `@user`, find a colleague who is offline, or list a
//! department: it asks its relay, and checks every chain it gets back itself.
//!
//! One entry per device key; when a key holds several certificates (someone
//! moved between org units), the newest wins (latest `not_before`, then
//! highest serial), so an old certificate cannot keep someone in their old
//! unit (audit M12). Entries are removed on revocation and once expired.
//! Bounded: at most [`MAX_DIRECTORY_DEVICES`] devices; answers carry at most
//! [`MAX_ANSWER_DEVICES`] chains and a cursor for the next page.
//!
//! Pure: the caller verifies chains (and drops revoked ones) before they go
//! in; time comes in as `now`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{CertificateChain, OrgUnit, VerifiedDevice};
use crate::identity::PublicKey;
use crate::wire::{Format, Kind};

/// Most devices a directory holds (twice the largest agency we plan for).
pub const MAX_DIRECTORY_DEVICES: usize = 262_144;
/// Most chains in one answer.
pub const MAX_ANSWER_DEVICES: usize = 64;
/// Longest search text, in bytes.
pub const MAX_SEARCH_LEN: usize = 128;

/// A question to the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryQuery {
    /// Every device of one user.
    User(String),
    /// The devices of an org unit (and, with `below`, of every unit under
    /// it), in order of unit, user and key, starting after `after`.
    Unit {
        /// The unit.
        unit: OrgUnit,
        /// Whether sub-units count.
        below: bool,
        /// Where the previous page stopped.
        after: Option<DirectoryCursor>,
    },
    /// Users whose user id or display name contains the text (ignoring case).
    Search(String),
}

/// Where a page of a unit listing stopped.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DirectoryCursor {
    /// The last entry's org unit.
    pub unit: String,
    /// Its user id.
    pub user: String,
    /// Its device key.
    pub device: PublicKey,
}

/// An answer: chains to verify, and where to continue if there are more.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryAnswer {
    /// The devices found, as their certificate chains.
    pub chains: Vec<CertificateChain>,
    /// Set when the answer was cut at [`MAX_ANSWER_DEVICES`].
    pub next: Option<DirectoryCursor>,
}

impl Format for DirectoryQuery {
    const KIND: Kind = Kind::DirectoryQuery;
    const MAX_LEN: usize = 2 * 1024;
}

impl Format for DirectoryAnswer {
    const KIND: Kind = Kind::DirectoryAnswer;
    const MAX_LEN: usize = MAX_ANSWER_DEVICES * CertificateChain::MAX_LEN + 1024;
}

/// Why an entry was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DirectoryError {
    /// The directory holds as many devices as it may.
    #[error("the directory is full ({MAX_DIRECTORY_DEVICES} devices)")]
    Full,
    /// A newer certificate for the same key is already held.
    #[error("a newer certificate for this device is already known")]
    Older,
    /// The chain has no device certificate.
    #[error("the certificate chain is empty")]
    Empty,
}

struct Entry {
    chain: CertificateChain,
    device: VerifiedDevice,
}

impl Entry {
    fn cursor(&self, key: PublicKey) -> DirectoryCursor {
        DirectoryCursor {
            unit: self.device.subject.org_unit.to_string(),
            user: self.device.subject.user_id.clone(),
            device: key,
        }
    }
}

/// Verified certificate chains by device, user and org unit.
#[derive(Default)]
pub struct Directory {
    entries: HashMap<PublicKey, Entry>,
    by_user: BTreeMap<String, BTreeSet<PublicKey>>,
    by_unit: BTreeSet<DirectoryCursor>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("devices", &self.entries.len())
            .field("users", &self.by_user.len())
            .finish()
    }
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Devices held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes a chain the caller verified as `device`. A newer certificate
    /// for the same key replaces the older one; an older one is refused.
    pub fn insert(
        &mut self,
        chain: CertificateChain,
        device: VerifiedDevice,
    ) -> Result<(), DirectoryError> {
        let key = chain.leaf().ok_or(DirectoryError::Empty)?.body.key;
        if let Some(held) = self.entries.get(&key) {
            let newer =
                (device.not_before, device.serial) > (held.device.not_before, held.device.serial);
            if !newer {
                return Err(DirectoryError::Older);
            }
            self.remove(&key);
        } else if self.entries.len() >= MAX_DIRECTORY_DEVICES {
            return Err(DirectoryError::Full);
        }
        let entry = Entry { chain, device };
        self.by_user
            .entry(entry.device.subject.user_id.clone())
            .or_default()
            .insert(key);
        self.by_unit.insert(entry.cursor(key));
        self.entries.insert(key, entry);
        Ok(())
    }

    /// Drops a device (revoked); whether it was held.
    pub fn remove(&mut self, key: &PublicKey) -> bool {
        let Some(entry) = self.entries.remove(key) else {
            return false;
        };
        self.by_unit.remove(&entry.cursor(*key));
        let user = &entry.device.subject.user_id;
        if let Some(devices) = self.by_user.get_mut(user) {
            devices.remove(key);
            if devices.is_empty() {
                self.by_user.remove(user);
            }
        }
        true
    }

    /// Drops every device of a user (a user-wide revocation); how many.
    pub fn remove_user(&mut self, user: &str) -> usize {
        let keys: Vec<PublicKey> = self
            .by_user
            .get(user)
            .map(|k| k.iter().copied().collect())
            .unwrap_or_default();
        keys.iter().filter(|k| self.remove(k)).count()
    }

    /// Drops every entry whose certificate expired before `now`; how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let expired: Vec<PublicKey> = self
            .entries
            .iter()
            .filter(|(_, e)| e.device.not_after < now)
            .map(|(k, _)| *k)
            .collect();
        expired.iter().filter(|k| self.remove(k)).count()
    }

    /// Answers `query` with the chains of unexpired devices that `keep`
    /// accepts (the caller's revocation check).
    pub fn answer(
        &self,
        query: &DirectoryQuery,
        now: u64,
        keep: impl Fn(&VerifiedDevice) -> bool,
    ) -> DirectoryAnswer {
        let live = |key: &PublicKey| {
            self.entries.get(key).filter(|e| {
                e.device.not_before <= now && now <= e.device.not_after && keep(&e.device)
            })
        };
        match query {
            DirectoryQuery::User(user) => DirectoryAnswer {
                chains: self
                    .by_user
                    .get(user)
                    .into_iter()
                    .flatten()
                    .filter_map(live)
                    .take(MAX_ANSWER_DEVICES)
                    .map(|e| e.chain.clone())
                    .collect(),
                next: None,
            },
            DirectoryQuery::Unit { unit, below, after } => {
                let start = after.clone().unwrap_or(DirectoryCursor {
                    unit: unit.to_string(),
                    user: String::new(),
                    device: PublicKey([0; 32]),
                });
                let mut answer = DirectoryAnswer::default();
                let in_scope = |c: &DirectoryCursor| {
                    c.unit == unit.as_str() || *below && c.unit.starts_with(&format!("{unit}/"))
                };
                // Units under `unit` sort after it, possibly behind siblings
                // such as "unit 2": stop only once past every such prefix.
                let past = |c: &DirectoryCursor| !c.unit.starts_with(unit.as_str());
                for cursor in self
                    .by_unit
                    .range(start.clone()..)
                    .filter(|c| **c != start || after.is_none())
                {
                    if past(cursor) {
                        break;
                    }
                    if !in_scope(cursor) {
                        continue;
                    }
                    let Some(entry) = live(&cursor.device) else {
                        continue;
                    };
                    if answer.chains.len() == MAX_ANSWER_DEVICES {
                        answer.next = answer.chains.last().map(|_| last_cursor(&answer));
                        break;
                    }
                    answer.chains.push(entry.chain.clone());
                }
                answer
            }
            DirectoryQuery::Search(text) => {
                let needle = text.to_lowercase();
                let mut answer = DirectoryAnswer::default();
                if needle.is_empty() || text.len() > MAX_SEARCH_LEN {
                    return answer;
                }
                for (user, keys) in &self.by_user {
                    let matches = |e: &Entry| {
                        user.to_lowercase().contains(&needle)
                            || e.device
                                .subject
                                .display_name
                                .to_lowercase()
                                .contains(&needle)
                    };
                    for entry in keys.iter().filter_map(live).filter(|e| matches(e)) {
                        if answer.chains.len() == MAX_ANSWER_DEVICES {
                            return answer;
                        }
                        answer.chains.push(entry.chain.clone());
                    }
                }
                answer
            }
        }
    }
}

/// The cursor of the last chain of a page.
fn last_cursor(answer: &DirectoryAnswer) -> DirectoryCursor {
    let leaf = answer.chains.last().and_then(CertificateChain::leaf);
    match leaf {
        Some(leaf) => DirectoryCursor {
            unit: leaf.body.subject.org_unit.to_string(),
            user: leaf.body.subject.user_id.clone(),
            device: leaf.body.key,
        },
        None => DirectoryCursor {
            unit: String::new(),
            user: String::new(),
            device: PublicKey([0; 32]),
        },
    }
}

#[cfg(test)]
mod tests;
