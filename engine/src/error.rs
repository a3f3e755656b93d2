//! The engine's errors. Only the server maps them to Kinesis error names.

use crate::format::FrameError;
use crate::shard_index::GapError;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {operation}: {source}")]
    Io { path: PathBuf, operation: &'static str, source: std::io::Error },
    /// Bytes that were acknowledged no longer pass their checks. The engine refuses to serve
    /// them and, at start-up, refuses to start.
    #[error("corruption in {path} at offset {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: FrameError },
    #[error("index of {path} is inconsistent: {gap}")]
    Gap { path: PathBuf, gap: GapError },
    #[error("watermark of shard {shard_uid} says {watermark} records were written but the journal holds only {found}: acknowledged records are missing")]
    MissingRecords { shard_uid: u64, watermark: u64, found: u64 },
    /// A group commit found the disk full (ENOSPC): none of its records were acknowledged,
    /// and none of their sequence numbers were used. Appends succeed again once space returns.
    #[error("disk full: {operation} {path} failed, nothing was acknowledged: {source}")]
    DiskFull { path: PathBuf, operation: &'static str, source: Arc<std::io::Error> },
    /// A group commit failed on an I/O error (EIO on write or fdatasync, a short write, a
    /// segment that could not be rolled): none of its records were acknowledged, and none of
    /// their sequence numbers were used. The journal goes on with the next commit.
    #[error("I/O error: {operation} {path} failed, nothing was acknowledged: {source}")]
    WriteFailed { path: PathBuf, operation: &'static str, source: Arc<std::io::Error> },
    /// A read found no live segment holding a run the shard's index points at. It would be a
    /// bug (segments a read uses are pinned against retention); it is an error, never a panic.
    #[error("journal position {position} lies in no live segment")]
    NoSegment { position: u64 },
    #[error("shard {0} is not registered on this core")]
    UnknownShard(u64),
    /// The shard was closed by a reshard: its hash keys now belong to its children.
    #[error("shard {0} is closed")]
    ShardClosed(u64),
    #[error("an append needs at least one record")]
    EmptyAppend,
    #[error("partition key of {bytes} bytes is outside [1, {max}]")]
    PartitionKeyLength { bytes: usize, max: usize },
    #[error("record of {bytes} bytes (data + key) exceeds {max}")]
    RecordTooLarge { bytes: usize, max: usize },
    #[error("append of {bytes} encoded bytes exceeds {max}")]
    AppendTooLarge { bytes: usize, max: usize },
    #[error("record index {index} is beyond the tip {next_index}")]
    IndexBeyondTip { index: u64, next_index: u64 },
    /// An append that had to start at record index `expected` (`Journal::queue_at`) found the
    /// shard ending at `actual`: an earlier one failed. Nothing of it was stored.
    #[error("shard {shard_uid}'s next record index is {actual}, not {expected}: an earlier append failed")]
    NotNext { shard_uid: u64, expected: u64, actual: u64 },
    /// An append that would replace records of a replicated shard (`Journal::queue_at`) from
    /// `first_index` on, below the end its group published: Raft never replaces a committed
    /// entry. Nothing was cut or stored.
    #[error(
        "shard {shard_uid}: an append at record index {first_index} would replace records published up to {published}"
    )]
    ReplacesPublished { shard_uid: u64, first_index: u64, published: u64 },
    /// A plain append to a gated shard (`Journal::gate_shard`): a replicated shard is written
    /// only by its group, through `Journal::queue_at`.
    #[error("shard {0} is replicated: only its Raft group appends to it")]
    Gated(u64),
    /// A Raft position with index 0 (`Journal::queue_at`, `Journal::queue_position`): Raft's
    /// first entry is index 1.
    #[error("a Raft position with index 0")]
    RaftIndexZero,
    #[error("the journal is closed")]
    Closed,
}

#[cfg(feature = "journal")]
impl EngineError {
    pub(crate) fn io(path: impl Into<PathBuf>, operation: &'static str) -> impl FnOnce(std::io::Error) -> EngineError {
        let path = path.into();
        move |source| EngineError::Io { path, operation, source }
    }

    /// The error of a failed group commit: [`EngineError::DiskFull`] for ENOSPC, else
    /// [`EngineError::WriteFailed`].
    pub(crate) fn commit(path: impl Into<PathBuf>, operation: &'static str, source: std::io::Error) -> EngineError {
        let path = path.into();
        let source = Arc::new(source);
        if source.kind() == std::io::ErrorKind::StorageFull {
            EngineError::DiskFull { path, operation, source }
        } else {
            EngineError::WriteFailed { path, operation, source }
        }
    }

    /// An I/O error met while preparing a commit (rolling the segment), as a commit failure.
    pub(crate) fn into_commit(self) -> EngineError {
        match self {
            EngineError::Io { path, operation, source } => EngineError::commit(path, operation, source),
            other => other,
        }
    }

    /// The same failure again, for every append of a failed commit.
    pub(crate) fn for_each_append(&self) -> EngineError {
        match self {
            EngineError::DiskFull { path, operation, source } => {
                EngineError::DiskFull { path: path.clone(), operation, source: source.clone() }
            }
            EngineError::WriteFailed { path, operation, source } => {
                EngineError::WriteFailed { path: path.clone(), operation, source: source.clone() }
            }
            EngineError::Closed => EngineError::Closed,
            other => EngineError::WriteFailed {
                path: PathBuf::new(),
                operation: "commit",
                source: Arc::new(std::io::Error::other(other.to_string())),
            },
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
