//! The Sluice storage engine.
//!
//! Each core of the daemon owns a [`Journal`]: one append-only log, on O_DIRECT segments, into
//! which every shard the core owns writes. Appends that arrive together share one write and
//! one `fdatasync` (group commit), and an append resolves only once its bytes are durable.
//! Each shard keeps an in-memory [`shard_index::ShardIndex`] of where its runs of records lie,
//! so reads by sequence number, by time, and from either end are binary searches.
//!
//! The pure parts (byte layout in [`format`], [`routing`], [`sequence`] numbers, the
//! [`catalog`] model, the shard index) do no I/O and are tested exhaustively; [`journal`] is
//! the only module that touches files, and only through the [`storage`] seam: glommio's
//! O_DIRECT files in production, the simulated disk of [`sim`] (feature `simulation`) in the
//! deterministic simulation tests.
//!
//! Start with `ARCHITECTURE.md` at the repository root, then `docs/format.md`.

pub mod catalog;
pub mod checksum;
pub mod clock;
pub mod error;
pub mod format;
pub mod histogram;
#[cfg(feature = "journal")]
pub mod journal;
pub mod limits;
pub mod routing;
pub mod sequence;
pub mod shard_index;
#[cfg(feature = "simulation")]
pub mod sim;
#[cfg(feature = "journal")]
pub mod storage;

pub use error::{EngineError, Result};
#[cfg(feature = "journal")]
pub use journal::{
    AppendRecord, Appended, Journal, JournalConfig, QueuedAppend, RaftEntryRun, RaftRuns, RaftTip, ReadBatch,
    ShardSpec, ShardTip, StartPosition, StoredRecord,
};
