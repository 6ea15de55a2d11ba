//! Pure bookkeeping for delivery: de-duplication, hybrid logical clocks, and
//! offline sync (range-based set reconciliation, the index of what a node
//! holds, and the sync protocol's messages).

mod dedup;
mod hlc;
mod index;
mod messages;
mod reconcile;
mod scope;

pub use dedup::Dedup;
pub use hlc::{Hlc, MAX_DRIFT_MS};
pub use index::SyncIndex;
pub use messages::{MAX_FETCH_IDS, MAX_ITEMS_BYTES, SyncRequest, SyncResponse};
pub use reconcile::{
    MAX_NEED, MAX_RECONCILE_MESSAGE, MAX_ROUNDS, Reconciler, ResponderCache, Step, SyncError,
    SyncItem, respond,
};
pub use scope::SyncScope;
