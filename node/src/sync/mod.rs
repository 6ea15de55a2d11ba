//! Pure bookkeeping for delivery: de-duplication and hybrid logical clocks;
//! reconciliation and the outbox come with offline sync.

mod dedup;
mod hlc;

pub use dedup::Dedup;
pub use hlc::{Hlc, MAX_DRIFT_MS};
