//! The agency directory as a node serves or asks it (control plane v2: no
//! device needs to know every device). A relay keeps a [`Directory`] of
//! every certificate chain it verified and answers admitted peers' queries,
//! each peer at a bounded rate; a device asks a relay and checks every chain
//! of the answer itself, so a relay can withhold but never invent people.
//!
//! A component with its own state: the actor feeds it verified chains,
//! queries and answers, and moves the bytes.

use std::collections::HashMap;

use crate::trust::{
    AgencyInfo, CertificateChain, Directory, DirectoryAnswer, DirectoryQuery, TrustPolicy,
    VerifiedDevice,
};

use super::quotas::{Rate, RateLimiter};

/// Questions a device may have waiting for an answer at once.
pub(crate) const MAX_ASKED: usize = 64;
/// Peers whose query rate a relay remembers.
const MAX_ASKERS: usize = 4096;
/// Queries one peer may ask at once, and per minute after that.
const QUERIES: Rate = Rate {
    burst: 30,
    per_minute: 120,
};
/// Query rates count queries only.
const UNMETERED: Rate = Rate {
    burst: u64::MAX >> 20,
    per_minute: u64::MAX >> 20,
};

/// The directory side of one node.
#[derive(Debug)]
pub(crate) struct DirectoryService<Peer: Ord + Clone, Request, Reply> {
    /// On relays: every device chain this relay verified.
    directory: Option<Directory>,
    /// On relays: how fast each peer asks.
    askers: RateLimiter<Peer>,
    /// Questions this device asked, by request, waiting for their answer.
    asked: HashMap<Request, Reply>,
}

impl<Peer: Ord + Clone, Request: std::hash::Hash + Eq, Reply>
    DirectoryService<Peer, Request, Reply>
{
    /// A relay keeps and serves a directory; a device only asks.
    pub(crate) fn new(relay: bool) -> Self {
        DirectoryService {
            directory: relay.then(Directory::new),
            askers: RateLimiter::new(MAX_ASKERS),
            asked: HashMap::new(),
        }
    }

    /// Whether this node answers queries itself.
    pub(crate) fn serves(&self) -> bool {
        self.directory.is_some()
    }

    /// A chain this node verified (admission, a frame's author): a relay
    /// keeps it, replacing an older certificate of the same key.
    pub(crate) fn learn(&mut self, chain: &CertificateChain, device: &VerifiedDevice) {
        if let Some(directory) = &mut self.directory {
            let _ = directory.insert(chain.clone(), device.clone());
        }
    }

    /// Answers `peer`'s query (relays), or `None` if it asks too fast or
    /// this node keeps no directory; `keep` is the revocation check.
    pub(crate) fn answer(
        &mut self,
        peer: &Peer,
        query: &DirectoryQuery,
        now: u64,
        keep: impl Fn(&VerifiedDevice) -> bool,
    ) -> Option<DirectoryAnswer> {
        let directory = self.directory.as_ref()?;
        if !self
            .askers
            .allow(peer, 1, 0, (QUERIES, UNMETERED), now.saturating_mul(1000))
        {
            return None;
        }
        Some(directory.answer(query, now, keep))
    }

    /// Answers a query of this node's own user (relays).
    pub(crate) fn answer_locally(
        &self,
        query: &DirectoryQuery,
        now: u64,
        keep: impl Fn(&VerifiedDevice) -> bool,
    ) -> Option<DirectoryAnswer> {
        Some(self.directory.as_ref()?.answer(query, now, keep))
    }

    /// Remembers who waits for the answer to `request`; gives the reply
    /// back if too many questions are already waiting.
    pub(crate) fn asked(&mut self, request: Request, reply: Reply) -> Result<(), Reply> {
        if self.asked.len() >= MAX_ASKED {
            return Err(reply);
        }
        self.asked.insert(request, reply);
        Ok(())
    }

    /// Whether another question may be asked now.
    pub(crate) fn may_ask(&self) -> bool {
        self.asked.len() < MAX_ASKED
    }

    /// Who waits for the answer to `request`.
    pub(crate) fn answered(&mut self, request: &Request) -> Option<Reply> {
        self.asked.remove(request)
    }
}

/// Checks every chain of a relay's answer (against the agency, now, and
/// `keep`, the revocation check); chains that do not check out are dropped.
pub(crate) fn verified(
    answer: DirectoryAnswer,
    agency: &AgencyInfo,
    now: u64,
    policy: &TrustPolicy,
    keep: impl Fn(&VerifiedDevice) -> bool,
) -> Vec<(CertificateChain, VerifiedDevice)> {
    answer
        .chains
        .into_iter()
        .filter_map(|chain| {
            let leaf = chain.leaf()?;
            let device = chain
                .verify_for(leaf.body.key.device_id(), agency, now, policy)
                .ok()?;
            keep(&device).then_some((chain, device))
        })
        .collect()
}

/// [`verified`], grouped by person.
#[cfg(test)]
fn people(
    answer: DirectoryAnswer,
    agency: &AgencyInfo,
    now: u64,
    policy: &TrustPolicy,
    keep: impl Fn(&VerifiedDevice) -> bool,
) -> Vec<String> {
    let checked = verified(answer, agency, now, policy, keep);
    crate::trust::people(checked.iter().map(|(_, d)| d))
        .into_iter()
        .map(|p| p.user_id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{KeyPair, SeededEntropy};
    use crate::trust::{Enrollment, EnrollmentRequest, NewAgency, Role, Subject};

    const NOW: u64 = 1_800_000_000;

    fn agency(seed: u64) -> (NewAgency, SeededEntropy) {
        let mut entropy = SeededEntropy::new(seed);
        let op = Subject {
            user_id: "op".into(),
            display_name: "Operator".into(),
            org_unit: "MOIS".parse().expect("org"),
        };
        let agency = NewAgency::create("MOIS", op, NOW, &mut entropy).expect("agency");
        (agency, entropy)
    }

    fn enroll(
        agency: &NewAgency,
        entropy: &mut SeededEntropy,
        user: &str,
    ) -> (CertificateChain, VerifiedDevice) {
        let key = KeyPair::generate(entropy);
        let request = EnrollmentRequest::new(&key, user, NOW).expect("request");
        let policy = TrustPolicy::default();
        let chain = agency
            .operator
            .enroll(
                &request,
                Enrollment {
                    subject: Subject {
                        user_id: user.into(),
                        display_name: user.into(),
                        org_unit: "MOIS/B1".parse().expect("org"),
                    },
                    role: Role::Member,
                    days: 30,
                    bootstrap: vec![],
                },
                &agency.network_key,
                NOW,
                &policy,
                entropy,
            )
            .expect("enroll")
            .body
            .chain;
        let device = chain
            .verify_for(key.device_id(), &agency.operator.agency, NOW, &policy)
            .expect("verifies");
        (chain, device)
    }

    #[test]
    fn a_relay_cannot_invent_or_alter_people_and_revoked_ones_are_dropped() {
        let (ours, mut entropy) = agency(1);
        let (theirs, mut other_entropy) = agency(2);
        let (kim, _) = enroll(&ours, &mut entropy, "kim");
        let (lee, lee_device) = enroll(&ours, &mut entropy, "lee");
        let (stranger, _) = enroll(&theirs, &mut other_entropy, "mallory");
        let mut renamed = kim.clone();
        if let Some(leaf) = renamed.certificates.last_mut() {
            leaf.body.subject.user_id = "kim.admin".into();
        }
        let answer = DirectoryAnswer {
            chains: vec![kim, stranger, renamed, lee],
            next: None,
        };
        let policy = TrustPolicy::default();
        let found = people(answer, &ours.operator.agency, NOW + 10, &policy, |d| {
            d.device != lee_device.device
        });
        assert_eq!(
            found,
            ["kim"],
            "another agency's, altered and revoked chains are dropped"
        );
    }

    #[test]
    fn a_peer_asking_too_fast_is_not_answered_and_others_still_are() {
        let (ours, mut entropy) = agency(3);
        let (kim, kim_device) = enroll(&ours, &mut entropy, "kim");
        let mut service: DirectoryService<u8, u8, ()> = DirectoryService::new(true);
        service.learn(&kim, &kim_device);
        let query = DirectoryQuery::User("kim".into());
        let answered = (0..100)
            .filter(|_| service.answer(&1, &query, NOW, |_| true).is_some())
            .count();
        assert_eq!(answered as u64, QUERIES.burst);
        let other = service.answer(&2, &query, NOW, |_| true).expect("answered");
        assert_eq!(other.chains, std::slice::from_ref(&kim));
        // A minute later the first peer may ask again.
        assert!(service.answer(&1, &query, NOW + 60, |_| true).is_some());
        // A device keeps no directory and answers nobody.
        let mut device: DirectoryService<u8, u8, ()> = DirectoryService::new(false);
        device.learn(&kim, &kim_device);
        assert!(device.answer(&1, &query, NOW, |_| true).is_none());
    }
}
