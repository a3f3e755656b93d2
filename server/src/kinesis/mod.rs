//! The Kinesis semantics that need no runtime: pure functions and types, tested alone.
//!
//! - [`errors`]: engine and catalog errors as Kinesis exceptions (the one place they become
//!   AWS names).
//! - [`views`]: the catalog's metadata as the model's shapes (Shard, StreamDescription, ...).
//! - [`positions`]: iterator types and sequence numbers as engine read positions.
//! - [`paging`]: pagination tokens and page sizes.
//! - [`shard_iterator`]: the signed, expiring shard iterator tokens.
//! - [`throttle`]: the per-shard quotas as token buckets.
//! - [`demand`]: the on-demand scaler's decision.
//!
//! Layer: imports `limits` only (besides the model and engine crates); everything above may
//! import it.

pub mod demand;
pub mod errors;
pub mod paging;
pub mod positions;
pub mod shard_iterator;
pub mod throttle;
pub mod views;
