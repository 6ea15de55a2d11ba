//! Seeded agencies and in-memory nodes, for tests and simulations.
//!
//! Everything here is deterministic given a seed: keys, serials and the
//! agency itself come from a [`SeededEntropy`]; nodes use MemoryTransport and
//! a [`ManualClock`]. Never use these keys for real devices.

use std::sync::Arc;
use std::time::Duration;

use libp2p::Multiaddr;

use crate::clock::Clock;
use crate::clock::ManualClock;
use crate::identity::{KeyPair, SeededEntropy};
use crate::net::TransportKind;
use crate::store::{MemoryStore, Store};
use crate::trust::{
    CertificateChain, Enrollment, EnrollmentRequest, Issuer, NewAgency, Revocation, RevocationBody,
    RevocationScope, Role, Subject, TrustPolicy,
};
use crate::{Credentials, Node, NodeBuilder, NodeConfig, NodeError};

/// The agency's creation time in tests.
pub const T0: u64 = 1_800_000_000;
/// How long to wait for a mesh to settle before giving up.
pub const SETTLE: Duration = Duration::from_secs(30);

/// A test agency: its operator, and a seeded source for every key.
#[derive(Debug)]
pub struct TestAgency {
    /// The agency with its root, operator and network key.
    pub agency: NewAgency,
    entropy: SeededEntropy,
    /// The clock every node of this agency uses.
    pub clock: ManualClock,
}

impl TestAgency {
    /// An agency created at [`T0`], its clock one day later.
    pub fn new(seed: u64) -> Self {
        let mut entropy = SeededEntropy::new(seed);
        let agency = NewAgency::create("MOIS", subject("operator", "MOIS"), T0, &mut entropy)
            .expect("agency");
        TestAgency {
            agency,
            entropy,
            clock: ManualClock::new(T0 + 86_400),
        }
    }

    /// A fresh device key.
    pub fn key(&mut self) -> KeyPair {
        KeyPair::generate(&mut self.entropy)
    }

    /// Certifies `key` for `user` at `org` with `role`, valid for `days` from [`T0`].
    pub fn certify(
        &mut self,
        key: &KeyPair,
        user: &str,
        org: &str,
        role: Role,
        days: u64,
    ) -> CertificateChain {
        self.certify_at(key, user, org, role, days, T0)
    }

    /// Certifies `key` like [`Self::certify`], valid for `days` from `at`.
    pub fn certify_at(
        &mut self,
        key: &KeyPair,
        user: &str,
        org: &str,
        role: Role,
        days: u64,
        at: u64,
    ) -> CertificateChain {
        let request =
            EnrollmentRequest::new(key, &format!("Official {user}"), at).expect("request");
        self.agency
            .operator
            .enroll(
                &request,
                Enrollment {
                    subject: subject(user, org),
                    role,
                    days,
                    bootstrap: vec![],
                },
                &self.agency.network_key,
                at,
                &TrustPolicy::default(),
                &mut self.entropy,
            )
            .expect("enroll")
            .body
            .chain
    }

    /// Credentials of a new member device for `user`.
    pub fn member(&mut self, user: &str) -> Credentials {
        let key = self.key();
        let chain = self.certify(
            &key,
            user,
            "MOIS/Digital Government Bureau",
            Role::Member,
            365,
        );
        self.credentials(key, chain)
    }

    /// Credentials of a new member device for `user`, certified at `at`
    /// (a device enrolled later than another of the same user).
    pub fn member_at(&mut self, user: &str, at: u64) -> Credentials {
        let key = self.key();
        let chain = self.certify_at(
            &key,
            user,
            "MOIS/Digital Government Bureau",
            Role::Member,
            365,
            at,
        );
        self.credentials(key, chain)
    }

    /// Credentials of the operator's own device (its console; role member,
    /// as only the root certifies operators), user `operator`.
    pub fn operator_device(&mut self) -> Credentials {
        let key = self.key();
        let chain = self.certify(&key, "operator", "MOIS", Role::Member, 365);
        self.credentials(key, chain)
    }

    /// A revocation of the device `target` certifies (or, with
    /// [`RevocationScope::User`], of its user), signed by the operator key
    /// at the agency clock's time; its encoding, as it travels.
    pub fn revocation(
        &self,
        target: &CertificateChain,
        scope: RevocationScope,
        reason: &str,
        wipe: bool,
    ) -> Vec<u8> {
        let operator = &self.agency.operator;
        let revocation = Revocation::sign(
            RevocationBody {
                agency: operator.agency.id(),
                scope,
                target: target.clone(),
                reason: reason.into(),
                issued_at: self.clock.now(),
                wipe,
                issuer: Issuer::Chain(operator.chain.clone()),
            },
            &operator.key,
        );
        crate::wire::encode(&revocation)
    }

    /// An agency policy with a lease of `lease_days` (warning
    /// `warning_days` ahead), signed by the operator key at the agency
    /// clock's time; its encoding, as it travels.
    pub fn policy(&self, version: u64, lease_days: u32, warning_days: u32) -> Vec<u8> {
        let operator = &self.agency.operator;
        crate::wire::encode(&crate::trust::AgencyPolicy::sign(
            crate::trust::AgencyPolicyBody {
                agency: operator.agency.id(),
                format: crate::trust::POLICY_FORMAT,
                version,
                issued_at: self.clock.now(),
                settings: crate::trust::PolicySettings {
                    lease_days,
                    lease_warning_days: warning_days,
                    ..crate::trust::PolicySettings::default()
                },
                extensions: Vec::new(),
                issuer: operator.chain.clone(),
            },
            &operator.key,
        ))
    }

    /// An agency policy (no lease) whose largest file is `max_file_mb`
    /// MiB, signed like [`Self::policy`]; its encoding.
    pub fn file_size_policy(&self, version: u64, max_file_mb: u32) -> Vec<u8> {
        let operator = &self.agency.operator;
        let extensions = crate::trust::KnownExtensions {
            max_file_mb: Some(max_file_mb),
        };
        crate::wire::encode(&crate::trust::AgencyPolicy::sign(
            crate::trust::AgencyPolicyBody {
                agency: operator.agency.id(),
                format: crate::trust::POLICY_FORMAT,
                version,
                issued_at: self.clock.now(),
                settings: crate::trust::PolicySettings::default(),
                extensions: extensions.encode().expect("a valid largest file size"),
                issuer: operator.chain.clone(),
            },
            &operator.key,
        ))
    }

    /// Credentials of a new field-office relay named `name`.
    pub fn relay(&mut self, name: &str) -> Credentials {
        let key = self.key();
        let chain = self.certify(&key, name, "MOIS/Field Office", Role::Relay, 365);
        self.credentials(key, chain)
    }

    /// Starts a relay node (store-and-forward, circuit relay server).
    pub fn spawn_relay(
        &self,
        credentials: Credentials,
        bootstrap: &[Multiaddr],
        store: Arc<dyn Store>,
    ) -> Node {
        NodeBuilder::new(credentials)
            .config(NodeConfig {
                relay: Some(crate::config::RelayConfig::default()),
                ..memory_config(bootstrap)
            })
            .transport(TransportKind::Memory)
            .clock(Arc::new(self.clock.clone()))
            .store(store)
            .spawn()
            .expect("relay starts")
    }

    /// Credentials presenting `chain` with `key`, with this agency's network key.
    pub fn credentials(&self, key: KeyPair, chain: CertificateChain) -> Credentials {
        Credentials {
            key,
            chain,
            agency: self.agency.operator.agency.clone(),
            network_key: Some(self.agency.network_key.clone()),
        }
    }

    /// Starts a node with `credentials` on MemoryTransport with this agency's
    /// clock and an in-memory store.
    pub fn spawn(&self, credentials: Credentials, bootstrap: &[Multiaddr]) -> Node {
        self.spawn_with_store(credentials, bootstrap, Arc::new(MemoryStore::new()))
    }

    /// Like [`TestAgency::spawn`], keeping messages in `store`.
    pub fn spawn_with_store(
        &self,
        credentials: Credentials,
        bootstrap: &[Multiaddr],
        store: Arc<dyn Store>,
    ) -> Node {
        NodeBuilder::new(credentials)
            .config(memory_config(bootstrap))
            .transport(TransportKind::Memory)
            .clock(Arc::new(self.clock.clone()))
            .store(store)
            .spawn()
            .expect("node starts")
    }
}

/// A certificate subject.
pub fn subject(user: &str, org: &str) -> Subject {
    Subject {
        user_id: user.into(),
        display_name: format!("Official {user}"),
        org_unit: org.parse().expect("org unit"),
    }
}

/// Configuration for in-process nodes: memory address, no mDNS, fast discovery.
pub fn memory_config(bootstrap: &[Multiaddr]) -> NodeConfig {
    NodeConfig {
        listen: vec!["/memory/0".into()],
        bootstrap: bootstrap.iter().map(ToString::to_string).collect(),
        mdns: false,
        discovery_interval_secs: 1,
        admission_timeout_secs: 5,
        sync_interval_secs: 2,
        ..NodeConfig::default()
    }
}

/// The first listen address of a node, waiting up to [`SETTLE`] for it.
pub async fn listen_address(node: &Node) -> Result<Multiaddr, NodeError> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let status = node.handle().status().await?;
        if let Some(address) = status.listen.first().and_then(|a| a.parse().ok()) {
            return Ok(address);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(NodeError::Network(
                "the node never started listening".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
