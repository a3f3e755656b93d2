//! Engine and catalog errors as Kinesis exceptions: the one place they get AWS names. The
//! engine and the catalog return typed errors; a caller decides what the client is told.

use sluice_engine::catalog::CatalogError;
use sluice_engine::EngineError;
use sluice_model::{Identity, KinesisError, ShardId};

/// An engine error as the client's exception. Bad input the engine caught is the caller's
/// (InvalidArgument); corruption, I/O failures and a closing journal are the service's
/// (InternalFailure), and the details go to the log.
pub fn engine_error(error: EngineError) -> KinesisError {
    match &error {
        EngineError::UnknownShard(_) => KinesisError::resource_not_found(error.to_string()),
        EngineError::PartitionKeyLength { .. }
        | EngineError::RecordTooLarge { .. }
        | EngineError::AppendTooLarge { .. }
        | EngineError::EmptyAppend
        | EngineError::IndexBeyondTip { .. } => KinesisError::invalid_argument(error.to_string()),
        // The rest are the service's fault, not the caller's. AWS answers those with
        // InternalFailure (HTTP 500), which its SDKs retry; nothing was acknowledged, so a
        // retry is safe. The details (files, offsets, errno) go to the log, not the client.
        EngineError::DiskFull { .. } => {
            tracing::error!(%error, "disk full");
            KinesisError::internal("The records were not stored: the server's disk is full. Retry later.")
        }
        EngineError::WriteFailed { .. } | EngineError::Io { .. } => {
            tracing::error!(%error, "I/O error");
            KinesisError::internal("The records were not stored: the server's disk failed. Retry.")
        }
        EngineError::Corrupt { .. }
        | EngineError::Gap { .. }
        | EngineError::MissingRecords { .. }
        | EngineError::NoSegment { .. }
        | EngineError::ReplacesPublished { .. } => {
            tracing::error!(%error, "stored records failed their checks; they are not served");
            KinesisError::internal("Internal service failure: stored records failed their integrity checks.")
        }
        EngineError::ShardClosed(_)
        | EngineError::Closed
        | EngineError::NotNext { .. }
        | EngineError::Gated(_)
        | EngineError::RaftIndexZero => {
            tracing::warn!(%error, "engine refused");
            KinesisError::internal(error.to_string())
        }
    }
}

/// A catalog error of a control operation as the client's exception.
pub fn catalog_error(identity: &Identity, error: CatalogError) -> KinesisError {
    match error {
        CatalogError::InvalidName(name) => sluice_model::identity::invalid_name(&name, "streamName"),
        CatalogError::InvalidShardCount => {
            KinesisError::validation(sluice_model::Violation::min_value(0, "shardCount", 1))
        }
        CatalogError::InvalidRetention(_) => KinesisError::invalid_argument(error.to_string()),
        CatalogError::StreamExists(name) => KinesisError::stream_exists(identity, &name),
        CatalogError::StreamNotFound(name) => KinesisError::stream_not_found(identity, &name),
        CatalogError::ShardNotFound { stream, shard } => {
            KinesisError::shard_not_found(identity, &stream, &ShardId::from(shard))
        }
        CatalogError::ShardNotOpen { .. } => KinesisError::resource_in_use(error.to_string()),
        CatalogError::SplitKeyOutside { .. } | CatalogError::NotAdjacent { .. } => {
            KinesisError::invalid_argument(error.to_string())
        }
        other => {
            tracing::error!(error = %other, "catalog error");
            KinesisError::internal(other.to_string())
        }
    }
}
