//! Baro Mesh simulations: many real nodes in one process, seeded and
//! reproducible, with measured reports.
//!
//! - [`enrollment`]: an agency certifying N devices with the real trust code,
//!   every chain verified as at admission, tampered chains refused, and chain
//!   verification cost measured side by side with bare `verify_strict`.
//! - [`mesh`]: N real nodes on MemoryTransport joining through one bootstrap
//!   relay: time until everyone admitted everyone, and gossip delivery.
//! - [`scenario`], [`links`], [`world`], [`run`], [`report`]: scenario files
//!   (TOML) run on real nodes over shaped in-process links (latency,
//!   jitter, loss, bandwidth, partitions), with measured reports.
//! - [`trace`]: hop counts and duplicate copies, from what every node's
//!   gossip saw; [`baseline`]: the same messages on plain gossipsub nodes
//!   over the same links, for side-by-side ratios.
//! - [`plot`]: the report's charts as SVG; [`progress`]: the progress bar.

pub mod attack;
pub mod baseline;
pub mod enrollment;
pub mod links;
pub mod mesh;
pub mod plot;
pub mod progress;
pub mod report;
pub mod run;
pub mod scenario;
pub mod trace;
pub mod world;

pub use enrollment::{EnrollmentReport, EnrollmentScenario, run_enrollment};
pub use mesh::{MeshReport, MeshScenario, run_mesh};
