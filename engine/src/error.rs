//! The engine's errors. Only the server maps them to Kinesis error names.

use crate::format::FrameError;
use crate::shard_index::GapError;
use std::path::PathBuf;

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
    /// A group commit failed (write or fsync error, disk full): none of its records were
    /// acknowledged, and none of their sequence numbers were used.
    #[error("write to {path} failed, nothing was acknowledged: {message}")]
    WriteFailed { path: PathBuf, message: String },
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
    #[error("the journal is closed")]
    Closed,
}

#[cfg(feature = "journal")]
impl EngineError {
    pub(crate) fn io(path: impl Into<PathBuf>, operation: &'static str) -> impl FnOnce(std::io::Error) -> EngineError {
        let path = path.into();
        move |source| EngineError::Io { path, operation, source }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
