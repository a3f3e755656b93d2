//! Service errors, by their Kinesis names. This is the one place engine errors become
//! Kinesis exceptions; each protocol renders a [`ServiceError`] its own way.

use sluice_engine::catalog::CatalogError;
use sluice_engine::EngineError;
use std::fmt;

/// The Kinesis exceptions Sluice answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InternalFailure,
    ResourceNotFound,
    ResourceInUse,
    InvalidArgument,
    LimitExceeded,
    ProvisionedThroughputExceeded,
    ExpiredIterator,
    ExpiredNextToken,
    Validation,
    Serialization,
    UnknownOperation,
}

impl ErrorKind {
    /// The AWS `__type` / exception name.
    pub fn exception_name(self) -> &'static str {
        match self {
            ErrorKind::InternalFailure => "InternalFailure",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::ResourceInUse => "ResourceInUseException",
            ErrorKind::InvalidArgument => "InvalidArgumentException",
            ErrorKind::LimitExceeded => "LimitExceededException",
            ErrorKind::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorKind::ExpiredIterator => "ExpiredIteratorException",
            ErrorKind::ExpiredNextToken => "ExpiredNextTokenException",
            ErrorKind::Validation => "ValidationException",
            ErrorKind::Serialization => "SerializationException",
            ErrorKind::UnknownOperation => "UnknownOperationException",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ServiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ServiceError {
        ServiceError { kind, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn validation(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Validation, message)
    }

    pub fn not_found(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::ResourceNotFound, message)
    }

    pub fn in_use(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::ResourceInUse, message)
    }

    pub fn limit(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::LimitExceeded, message)
    }

    pub fn throttled(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::ProvisionedThroughputExceeded, message)
    }

    pub fn internal(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::InternalFailure, message)
    }

    pub fn stream_not_found(name: &str) -> ServiceError {
        ServiceError::not_found(format!("Stream {name} under account {} not found.", crate::arn::account_id()))
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.exception_name(), self.message)
    }
}

impl std::error::Error for ServiceError {}

impl From<EngineError> for ServiceError {
    fn from(error: EngineError) -> ServiceError {
        match &error {
            EngineError::UnknownShard(_) => ServiceError::not_found(error.to_string()),
            EngineError::PartitionKeyLength { .. }
            | EngineError::RecordTooLarge { .. }
            | EngineError::AppendTooLarge { .. }
            | EngineError::EmptyAppend
            | EngineError::IndexBeyondTip { .. } => ServiceError::invalid(error.to_string()),
            // The rest are the service's fault, not the caller's. AWS answers those with
            // InternalFailure (HTTP 500), which its SDKs retry; nothing was acknowledged, so a
            // retry is safe. The details (files, offsets, errno) go to the log, not the client.
            EngineError::DiskFull { .. } => {
                tracing::error!(%error, "disk full");
                ServiceError::internal("The records were not stored: the server's disk is full. Retry later.")
            }
            EngineError::WriteFailed { .. } | EngineError::Io { .. } => {
                tracing::error!(%error, "I/O error");
                ServiceError::internal("The records were not stored: the server's disk failed. Retry.")
            }
            EngineError::Corrupt { .. }
            | EngineError::Gap { .. }
            | EngineError::MissingRecords { .. }
            | EngineError::NoSegment { .. } => {
                tracing::error!(%error, "stored records failed their checks; they are not served");
                ServiceError::internal("Internal service failure: stored records failed their integrity checks.")
            }
            EngineError::ShardClosed(_) | EngineError::Closed => {
                tracing::warn!(%error, "engine refused");
                ServiceError::internal(error.to_string())
            }
        }
    }
}

impl From<CatalogError> for ServiceError {
    fn from(error: CatalogError) -> ServiceError {
        match &error {
            CatalogError::InvalidName(_) | CatalogError::InvalidShardCount => {
                ServiceError::validation(error.to_string())
            }
            CatalogError::InvalidRetention(_) => ServiceError::invalid(error.to_string()),
            CatalogError::StreamExists(name) => ServiceError::in_use(format!(
                "Stream {name} under account {} already exists.",
                crate::arn::account_id()
            )),
            CatalogError::StreamNotFound(name) => ServiceError::stream_not_found(name),
            _ => {
                tracing::error!(%error, "catalog error");
                ServiceError::internal(error.to_string())
            }
        }
    }
}
