//! The thread-per-core runtime: one pinned glommio executor per core, talking to the others
//! only through bounded mailboxes, and reading the routes snapshot without locks.
//!
//! - [`mailbox`]: work sent to another core and its answer ([`mailbox::Mailboxes::run_on`]),
//!   generic over the per-core context the work runs with.
//! - [`routes`]: the data plane's read-only view of the catalog, replaced whole on every change.
//! - [`shutdown`]: telling every core to stop, and waiting until all have.
//!
//! Layer: imports `kinesis` and `limits`. It knows nothing of the operations: the per-core
//! context (`ops::node::Node`) is a type parameter here.

pub mod mailbox;
pub mod routes;
pub mod shutdown;

use crate::kinesis::throttle::LimitsProfile;
use crate::limits::Limits;
use sluice_model::Identity;
use std::path::PathBuf;

/// What a node is configured with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub cores: usize,
    /// `kinesis` enforces the per-shard quotas; `unlimited` does not.
    pub profile: LimitsProfile,
    /// Account quotas and server bounds.
    pub limits: Limits,
    /// The region and account in ARNs and messages.
    pub identity: Identity,
    /// How long the on-demand scaler measures demand before splitting hot shards.
    pub on_demand_window_ms: u64,
}
