//! Errors: the configuration errors the API layer answers with (AWS's error type names and
//! message shapes), and the delivery engine's typed errors.

use std::fmt;

/// AWS error types a configuration can be refused with (Firehose and Kinesis share them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// A member broke a constraint of its shape (length, range, pattern, enum, required).
    ValidationException,
    /// The members are well-formed but do not make sense together.
    InvalidArgumentException,
}

impl ErrorType {
    /// The name AWS puts in `__type` / `x-amzn-ErrorType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::ValidationException => "ValidationException",
            ErrorType::InvalidArgumentException => "InvalidArgumentException",
        }
    }
}

/// A refused configuration: an AWS error type and AWS's message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", error_type.as_str())]
pub struct ApiError {
    pub error_type: ErrorType,
    pub message: String,
}

impl ApiError {
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        ApiError { error_type: ErrorType::InvalidArgumentException, message: message.into() }
    }
}

/// One broken shape constraint, in AWS's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, as AWS writes it: camelCase members joined by dots
    /// (`extendedS3DestinationConfiguration.bufferingHints.sizeInMBs`).
    pub path: String,
    /// The value as AWS quotes it (`null` for a missing required member).
    pub value: Option<String>,
    /// AWS's constraint sentence (`Member must have value less than or equal to 128`).
    pub constraint: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "Value '{v}' at '{}' failed to satisfy constraint: {}", self.path, self.constraint),
            None => write!(f, "Value null at '{}' failed to satisfy constraint: {}", self.path, self.constraint),
        }
    }
}

/// AWS's ValidationException text for a list of violations:
/// `1 validation error detected: Value '0' at 'x' failed to satisfy constraint: …` (several
/// joined by `; `).
pub fn validation_error(violations: &[Violation]) -> ApiError {
    let count = violations.len();
    let noun = if count == 1 { "error" } else { "errors" };
    let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
    ApiError {
        error_type: ErrorType::ValidationException,
        message: format!("{count} validation {noun} detected: {}", list.join("; ")),
    }
}

/// Errors of the delivery engine and its destinations.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("object store {bucket}: {source}")]
    Store { bucket: String, source: object_store::Error },
    #[error("directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("bucket {bucket} is not configured in this Sluice (no directory or endpoint for it)")]
    UnknownBucket { bucket: String },
    #[error("function {name} is not configured in this Sluice (no command or URL for it)")]
    UnknownFunction { name: String },
    #[error("compression: {0}")]
    Compression(#[from] std::io::Error),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("partitioning query: {0}")]
    Query(String),
    #[error("configuration: {0}")]
    Config(#[from] ApiError),
    /// Boxed: the crate's error is large, and this enum travels in every `Result` of sluiced's
    /// delivery wiring.
    #[cfg(feature = "iceberg")]
    #[error("iceberg: {0}")]
    Iceberg(Box<iceberg::Error>),
}

#[cfg(feature = "iceberg")]
impl From<iceberg::Error> for DeliveryError {
    fn from(error: iceberg::Error) -> Self {
        DeliveryError::Iceberg(Box::new(error))
    }
}
