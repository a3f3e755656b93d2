//! Errors of the replication layer. Any of them stops the replica that met it (fail-stop: a
//! Raft member that cannot trust its storage must not vote or acknowledge); the process
//! restarts it from what its disk holds durably.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("raft storage I/O on {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("raft {file} is corrupt at byte {offset}: {reason}")]
    Corrupt { file: &'static str, offset: u64, reason: String },
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// The journal that keeps a shard group's log (`journal_log`) refused or failed.
    #[error("raft log in the journal: {0}")]
    Journal(#[from] sluice_engine::EngineError),
    /// A restore of the snapshot at entry `index` from a peer failed after it had changed the
    /// log's storage (`replica::Restored::LogChanged`): the log must be opened again.
    #[error("raft: a restore of the snapshot at entry {index} failed halfway; the log must be opened again")]
    LogChanged { index: u64 },
}

impl ClusterError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(io::Error) -> ClusterError {
        move |source| ClusterError::Io { what, source }
    }
}

pub type Result<T> = std::result::Result<T, ClusterError>;
