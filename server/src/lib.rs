//! `sluiced`, the Sluice daemon: Kinesis Data Streams semantics on a thread-per-core runtime.
//!
//! The modules form layers; each imports only the layers below it (checked by
//! `tests/layering.rs`, which reads the `use crate::` lines):
//!
//! ```text
//!  daemon    configuration, start-up, shutdown
//!    │
//!  ownership one daemon per data directory and per listening address
//!    │
//!  net       one listener loop; the native protocol; the HTTP API (services by target prefix)
//!    │
//!  ops       one dispatch (model Request → Response), the operations, reshards, the scaler
//!    │
//!  runtime   cores, bounded mailboxes, the routes snapshot, shutdown signalling
//!    │
//!  control   catalog changes as pure functions
//!    │
//!  kinesis   pure Kinesis semantics: errors, views, positions, paging, iterators, quotas
//!    │
//!  metrics   per-core counters, their snapshots, the Prometheus text, health
//!    │
//!  limits    every limit, and the `Limits` a node is configured with
//! ```
//!
//! The model (`sluice-model`) and the codecs (`sluice-protocol`) are crates of their own, shared
//! with the clients; only this crate runs operations, and only the engine touches the disk.

pub mod control;
pub mod daemon;
pub mod kinesis;
pub mod limits;
pub mod metrics;
pub mod net;
pub mod ops;
pub mod ownership;
pub mod runtime;
