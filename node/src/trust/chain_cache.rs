//! Verified certificate chains, remembered: every control frame carries its
//! author's chain, and re-verifying the same chain (two signatures) for
//! every frame was most of a node's CPU in the 100-node simulation.
//!
//! Pure and bounded: a chain is looked up by the hash of its encoding and
//! trusted again only inside the validity window of all its certificates.

use std::collections::{HashMap, HashSet, VecDeque};

use super::{AgencyInfo, CertificateChain, TrustError, TrustPolicy, VerifiedDevice};
use crate::identity::{PublicKey, Verifier};
use crate::wire::{self, Domain};

/// Chains remembered; past it the oldest is forgotten.
pub const CHAIN_CACHE_CAPACITY: usize = 20_000;

#[derive(Debug, Clone)]
struct Entry {
    device: VerifiedDevice,
    verifier: Option<Verifier>,
    valid_from: u64,
    valid_until: u64,
}

/// A bounded memo of chains that verified.
#[derive(Debug, Default)]
pub struct ChainCache {
    entries: HashMap<[u8; 32], Entry>,
    order: VecDeque<[u8; 32]>,
    /// Issuing (operator) certificates whose signature verified under the
    /// signer key they are stored with: an operator enrolls thousands of
    /// devices, and each new device's chain re-checked its certificate.
    issuing: HashSet<([u8; 32], PublicKey)>,
}

impl ChainCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies `chain` like [`CertificateChain::verify`], answering from
    /// memory when the same chain verified before and `now` is still inside
    /// every certificate's window; also returns the holder's parsed key.
    pub fn verify(
        &mut self,
        chain: &CertificateChain,
        agency: &AgencyInfo,
        now: u64,
        policy: &TrustPolicy,
    ) -> Result<(VerifiedDevice, Option<Verifier>), TrustError> {
        let id = *blake3::hash(&wire::encode(chain)).as_bytes();
        if let Some(entry) = self.entries.get(&id)
            && entry.device.agency == agency.id()
            && now.saturating_add(policy.clock_skew_secs) >= entry.valid_from
            && now <= entry.valid_until.saturating_add(policy.clock_skew_secs)
        {
            return Ok((entry.device.clone(), entry.verifier));
        }
        let issuing = &mut self.issuing;
        let device = chain.verify_with(agency, now, policy, &mut |certificate, signer, leaf| {
            if leaf {
                return certificate.is_signed_by(signer);
            }
            let mut hasher = blake3::Hasher::new_derive_key("baro/issuing-certificate/v1");
            hasher.update(&wire::signing_bytes(Domain::Certificate, &certificate.body));
            hasher.update(&certificate.signature.0.0);
            let seen = (*hasher.finalize().as_bytes(), *signer);
            if issuing.contains(&seen) {
                return true;
            }
            let valid = certificate.is_signed_by(signer);
            if valid {
                if issuing.len() >= CHAIN_CACHE_CAPACITY {
                    issuing.clear();
                }
                issuing.insert(seen);
            }
            valid
        })?;
        let bodies = chain.certificates.iter().map(|c| &c.body);
        let entry = Entry {
            verifier: device.device.public_key().verifier(),
            valid_from: bodies.clone().map(|b| b.not_before).max().unwrap_or(0),
            valid_until: bodies.map(|b| b.not_after).min().unwrap_or(0),
            device: device.clone(),
        };
        if self.order.len() >= CHAIN_CACHE_CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.entries.remove(&oldest);
        }
        if self.entries.insert(id, entry.clone()).is_none() {
            self.order.push_back(id);
        }
        Ok((device, entry.verifier))
    }
}
