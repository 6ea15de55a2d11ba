//! Pure bookkeeping for delivery: de-duplication now; reconciliation and the
//! outbox come with messaging and offline sync.

mod dedup;

pub use dedup::Dedup;
