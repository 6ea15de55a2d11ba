//! In-process meshes: an agency made with a seeded entropy source and nodes
//! on MemoryTransport, plus waiting helpers driven by node events.

use std::sync::Arc;
use std::time::Duration;

use baro_node::clock::ManualClock;
use baro_node::identity::{KeyPair, SeededEntropy};
use baro_node::net::TransportKind;
use baro_node::trust::{
    CertificateChain, Enrollment, EnrollmentRequest, NewAgency, Role, Subject, TrustPolicy,
};
use baro_node::{Credentials, Node, NodeBuilder, NodeConfig, NodeEvent};
use libp2p::Multiaddr;
use tokio::sync::broadcast;

/// The agency's creation time in tests.
pub const T0: u64 = 1_800_000_000;
/// How long tests wait for a mesh to settle before failing.
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
        let request =
            EnrollmentRequest::new(key, &format!("Official {user}"), T0).expect("request");
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
                T0,
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

    /// Credentials presenting `chain` with `key`, with this agency's network key.
    pub fn credentials(&self, key: KeyPair, chain: CertificateChain) -> Credentials {
        Credentials {
            key,
            chain,
            agency: self.agency.operator.agency.clone(),
            network_key: Some(self.agency.network_key.clone()),
        }
    }

    /// Starts a node with `credentials` on MemoryTransport with this agency's clock.
    pub fn spawn(&self, credentials: Credentials, bootstrap: &[Multiaddr]) -> Node {
        NodeBuilder::new(credentials)
            .config(memory_config(bootstrap))
            .transport(TransportKind::Memory)
            .clock(Arc::new(self.clock.clone()))
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
        ..NodeConfig::default()
    }
}

/// The first listen address of a node (waits for it).
pub async fn listen_address(node: &Node) -> Multiaddr {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let status = node.handle().status().await.expect("status");
        if let Some(address) = status.listen.first() {
            return address.parse().expect("multiaddr");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the first event matching `pick`, or fails after [`SETTLE`].
pub async fn wait_for<T>(
    events: &mut broadcast::Receiver<NodeEvent>,
    what: &str,
    mut pick: impl FnMut(&NodeEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(SETTLE, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("node stopped while waiting for {what}")
                }
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
