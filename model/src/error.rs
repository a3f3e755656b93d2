//! Kinesis errors: the exception name ([`ErrorKind`]) and its message, built in one place per
//! kind of failure so that the same failure reads the same wherever it is found.
//!
//! Messages follow AWS's own where AWS's are known (the validation format, "Stream ... under
//! account ... not found.", "Shard ... in stream ... under account ... does not exist", the
//! retention and explicit-hash-key texts); the others say what was wrong and with which value.

use crate::ids::ShardId;
use std::fmt;

/// The Kinesis exceptions (botocore's Kinesis model lists these names).
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
    AccessDenied,
    Serialization,
    UnknownOperation,
    Throttling,
    KmsDisabled,
    KmsInvalidState,
    KmsAccessDenied,
    KmsNotFound,
    KmsOptInRequired,
    KmsThrottling,
    /// Sluice's own: the caller no longer holds the lease it named (docs/clients.md).
    LeaseLost,
    /// A refused signature or native handshake (docs/security.md): AWS's authentication
    /// errors, which SigV4 verification and the native challenge-response give alike.
    MissingAuthenticationToken,
    IncompleteSignature,
    InvalidSignature,
    UnrecognizedClient,
    ExpiredToken,
    /// Firehose's own (`Firehose_20150804`): the exceptions of delivery-stream calls that the
    /// Kinesis API does not have.
    ServiceUnavailable,
    ConcurrentModification,
    InvalidKmsResource,
    /// Sluice's own, between the members of a cluster only: the member a request was forwarded
    /// to does not lead its group, and stored nothing of it, so the forwarder may send it to
    /// the leader at once (`server/src/ops/cluster/forward.rs`). A client is answered
    /// InternalFailure instead ([`ErrorKind::for_client`]).
    NotLeader,
}

impl ErrorKind {
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::InternalFailure,
        ErrorKind::ResourceNotFound,
        ErrorKind::ResourceInUse,
        ErrorKind::InvalidArgument,
        ErrorKind::LimitExceeded,
        ErrorKind::ProvisionedThroughputExceeded,
        ErrorKind::ExpiredIterator,
        ErrorKind::ExpiredNextToken,
        ErrorKind::Validation,
        ErrorKind::AccessDenied,
        ErrorKind::Serialization,
        ErrorKind::UnknownOperation,
        ErrorKind::Throttling,
        ErrorKind::KmsDisabled,
        ErrorKind::KmsInvalidState,
        ErrorKind::KmsAccessDenied,
        ErrorKind::KmsNotFound,
        ErrorKind::KmsOptInRequired,
        ErrorKind::KmsThrottling,
        ErrorKind::LeaseLost,
        ErrorKind::MissingAuthenticationToken,
        ErrorKind::IncompleteSignature,
        ErrorKind::InvalidSignature,
        ErrorKind::UnrecognizedClient,
        ErrorKind::ExpiredToken,
        ErrorKind::ServiceUnavailable,
        ErrorKind::ConcurrentModification,
        ErrorKind::InvalidKmsResource,
        ErrorKind::NotLeader,
    ];

    /// The AWS exception name: the `__type` of a JSON error, the `:exception-type` of an
    /// event-stream exception.
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
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::Serialization => "SerializationException",
            ErrorKind::UnknownOperation => "UnknownOperationException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::KmsDisabled => "KMSDisabledException",
            ErrorKind::KmsInvalidState => "KMSInvalidStateException",
            ErrorKind::KmsAccessDenied => "KMSAccessDeniedException",
            ErrorKind::KmsNotFound => "KMSNotFoundException",
            // AWS spells this one without the suffix (botocore's Kinesis shapes).
            ErrorKind::KmsOptInRequired => "KMSOptInRequired",
            ErrorKind::KmsThrottling => "KMSThrottlingException",
            ErrorKind::LeaseLost => "LeaseLostException",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorKind::IncompleteSignature => "IncompleteSignatureException",
            ErrorKind::InvalidSignature => "InvalidSignatureException",
            ErrorKind::UnrecognizedClient => "UnrecognizedClientException",
            ErrorKind::ExpiredToken => "ExpiredTokenException",
            ErrorKind::ServiceUnavailable => "ServiceUnavailableException",
            ErrorKind::ConcurrentModification => "ConcurrentModificationException",
            ErrorKind::InvalidKmsResource => "InvalidKMSResourceException",
            ErrorKind::NotLeader => "NotLeaderException",
        }
    }

    /// The kind a client is answered: a member's [`ErrorKind::NotLeader`] reaches clients as
    /// the retriable InternalFailure every other node answers.
    pub fn for_client(self) -> ErrorKind {
        match self {
            ErrorKind::NotLeader => ErrorKind::InternalFailure,
            kind => kind,
        }
    }

    /// The kind an AWS error name stands for. Reads names as botocore does: a `prefix#` and a
    /// `:suffix` are dropped, and the `Exception` suffix is optional (`InternalFailure` and
    /// `InternalFailureException` both occur). Unknown names are `None`.
    pub fn from_exception_name(name: &str) -> Option<ErrorKind> {
        let name = name.rsplit('#').next().unwrap_or(name);
        let name = name.split(':').next().unwrap_or(name);
        let bare = name.strip_suffix("Exception").unwrap_or(name);
        ErrorKind::ALL.iter().copied().find(|kind| {
            let known = kind.exception_name();
            known == name || known.strip_suffix("Exception").unwrap_or(known) == bare
        })
    }

    /// The HTTP status AWS answers with: 500 for the service's own failures, 400 for the
    /// caller's.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InternalFailure | ErrorKind::NotLeader => 500,
            ErrorKind::ServiceUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.exception_name())
    }
}

/// A Kinesis error: what the caller gets back, whichever protocol it spoke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct KinesisError {
    pub kind: ErrorKind,
    pub message: String,
}

/// How much of an offending value a validation message quotes: AWS quotes the value, but a
/// 1 MiB partition key must not become a 1 MiB error message.
pub const QUOTED_VALUE_CHARS_MAX: usize = 128;

fn quoted(value: &str) -> String {
    value.chars().take(QUOTED_VALUE_CHARS_MAX).collect()
}

impl KinesisError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> KinesisError {
        KinesisError { kind, message: message.into() }
    }

    /// A ValidationException for an enum value this build does not know, at `path` (the
    /// request member, as AWS names it in messages: `shardIteratorType`).
    pub fn not_in_enum<E: crate::enums::AwsEnum>(value: &E, path: &str) -> KinesisError {
        let allowed = E::all().iter().map(crate::enums::AwsEnum::spelling);
        KinesisError::validation(Violation::enumeration(&value.to_string(), path, allowed))
    }

    pub fn invalid_argument(message: impl Into<String>) -> KinesisError {
        KinesisError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn resource_in_use(message: impl Into<String>) -> KinesisError {
        KinesisError::new(ErrorKind::ResourceInUse, message)
    }

    pub fn resource_not_found(message: impl Into<String>) -> KinesisError {
        KinesisError::new(ErrorKind::ResourceNotFound, message)
    }

    pub fn limit_exceeded(message: impl Into<String>) -> KinesisError {
        KinesisError::new(ErrorKind::LimitExceeded, message)
    }

    pub fn internal(message: impl Into<String>) -> KinesisError {
        KinesisError::new(ErrorKind::InternalFailure, message)
    }

    pub fn serialization(message: impl Into<String>) -> KinesisError {
        KinesisError::new(ErrorKind::Serialization, message)
    }

    pub fn unknown_operation(operation: &str) -> KinesisError {
        KinesisError::new(ErrorKind::UnknownOperation, format!("Unknown operation {operation:?}"))
    }

    /// One validation failure, in AWS's words (see [`Violations`] for several).
    pub fn validation(violation: Violation) -> KinesisError {
        let mut violations = Violations::default();
        violations.push(violation);
        violations.into_error().expect("one violation")
    }

    // ----- Streams, shards, consumers -----

    /// A resource would have more tags than the quota allows.
    pub fn too_many_tags(resource: &str, limit: usize) -> KinesisError {
        KinesisError::limit_exceeded(format!("A {resource} can have at most {limit} tags"))
    }

    pub fn consumer_not_found(stream: &str, consumer: &str) -> KinesisError {
        KinesisError::resource_not_found(format!("Consumer {consumer} under stream {stream} not found"))
    }

    // ----- Arguments -----

    pub fn invalid_stream_arn(arn: &str) -> KinesisError {
        KinesisError::invalid_argument(format!("Invalid StreamARN {}", quoted(arn)))
    }

    pub fn invalid_consumer_arn(arn: &str) -> KinesisError {
        KinesisError::invalid_argument(format!("Invalid ConsumerARN {}", quoted(arn)))
    }

    pub fn invalid_resource_arn(arn: &str) -> KinesisError {
        KinesisError::invalid_argument(format!("Invalid ResourceARN {}", quoted(arn)))
    }

    /// A hash key member (`ExplicitHashKey`, `NewStartingHashKey`) above 2^128 - 1. AWS:
    /// `Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1].
    /// Specified value was 340282366920938463463374607431768211456`.
    pub fn invalid_hash_key(member: &str, text: &str) -> KinesisError {
        KinesisError::invalid_argument(format!(
            "Invalid {member}. {member} must be in the range: [0, 2^128-1]. Specified value was {}",
            quoted(text)
        ))
    }

    /// A member that names a shard (`ExclusiveStartShardId`, `ShardFilter.ShardId`) holds no
    /// shard id.
    pub fn invalid_shard_id(member: &str, shard: &ShardId) -> KinesisError {
        KinesisError::invalid_argument(format!("Invalid {member} {}", quoted(shard.as_str())))
    }

    /// AWS: `Minimum allowed retention period is 24 hours. Maximum allowed retention period is
    /// 8760 hours. Requested retention period (8761 hours) is out of range.`
    pub fn retention_out_of_range(hours: i64, min: i32, max: i32) -> KinesisError {
        KinesisError::invalid_argument(format!(
            "Minimum allowed retention period is {min} hours. Maximum allowed retention period is {max} hours. Requested retention period ({hours} hours) is out of range."
        ))
    }

    pub fn invalid_next_token(token: &str) -> KinesisError {
        KinesisError::invalid_argument(format!("Invalid NextToken: {}", token.chars().take(64).collect::<String>()))
    }

    pub fn expired_next_token() -> KinesisError {
        KinesisError::new(ErrorKind::ExpiredNextToken, "The NextToken has expired")
    }
}

/// One broken constraint of a request member, as AWS words it inside a ValidationException.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(String);

impl Violation {
    /// `Value null at 'streamName' failed to satisfy constraint: Member must not be null`.
    pub fn null(path: &str) -> Violation {
        Violation(format!("Value null at '{path}' failed to satisfy constraint: Member must not be null"))
    }

    /// `Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater
    /// than or equal to 1`. The value is quoted up to [`QUOTED_VALUE_CHARS_MAX`] characters.
    pub fn value(value: &str, path: &str, constraint: impl fmt::Display) -> Violation {
        Violation(format!("Value '{}' at '{path}' failed to satisfy constraint: {constraint}", quoted(value)))
    }

    pub fn min_length(value: &str, path: &str, min: impl fmt::Display) -> Violation {
        Violation::value(value, path, format!("Member must have length greater than or equal to {min}"))
    }

    pub fn max_length(value: &str, path: &str, max: impl fmt::Display) -> Violation {
        Violation::value(value, path, format!("Member must have length less than or equal to {max}"))
    }

    pub fn min_value(value: impl fmt::Display, path: &str, min: impl fmt::Display) -> Violation {
        Violation::value(&value.to_string(), path, format!("Member must have value greater than or equal to {min}"))
    }

    pub fn max_value(value: impl fmt::Display, path: &str, max: impl fmt::Display) -> Violation {
        Violation::value(&value.to_string(), path, format!("Member must have value less than or equal to {max}"))
    }

    pub fn pattern(value: &str, path: &str, pattern: &str) -> Violation {
        Violation::value(value, path, format!("Member must satisfy regular expression pattern: {pattern}"))
    }

    pub fn enumeration<'a>(value: &str, path: &str, allowed: impl IntoIterator<Item = &'a str>) -> Violation {
        let allowed: Vec<&str> = allowed.into_iter().collect();
        Violation::value(value, path, format!("Member must satisfy enum value set: [{}]", allowed.join(", ")))
    }
}

/// Every broken constraint of one request, reported together as AWS does:
/// `2 validation errors detected: Value null at 'streamName' ...; Value '0' at ...`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn push(&mut self, violation: Violation) {
        self.0.push(violation);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ValidationException, if any constraint was broken.
    pub fn into_error(self) -> Option<KinesisError> {
        let count = self.0.len();
        if count == 0 {
            return None;
        }
        let list: Vec<String> = self.0.into_iter().map(|violation| violation.0).collect();
        Some(KinesisError::new(
            ErrorKind::Validation,
            format!("{count} validation error{} detected: {}", if count == 1 { "" } else { "s" }, list.join("; ")),
        ))
    }

    /// `Ok` if no constraint was broken, else the ValidationException.
    pub fn check(self) -> Result<(), KinesisError> {
        self.into_error().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_as_botocore_reads_them() {
        for &kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_exception_name(kind.exception_name()), Some(kind));
        }
        assert_eq!(ErrorKind::from_exception_name("InternalFailureException"), Some(ErrorKind::InternalFailure));
        assert_eq!(
            ErrorKind::from_exception_name("com.amazonaws.kinesis#ResourceNotFoundException"),
            Some(ErrorKind::ResourceNotFound)
        );
        assert_eq!(ErrorKind::from_exception_name("ExpiredIteratorException:extra"), Some(ErrorKind::ExpiredIterator));
        assert_eq!(ErrorKind::from_exception_name("SomethingNew"), None);
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|kind| kind.exception_name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn validation_messages_read_like_aws() {
        let mut violations = Violations::default();
        assert!(violations.clone().check().is_ok());
        violations.push(Violation::null("streamName"));
        violations.push(Violation::min_value(0, "shardCount", 1));
        assert_eq!(
            violations.into_error().unwrap().message,
            "2 validation errors detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null; \
             Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
        let long = KinesisError::validation(Violation::max_length(&"k".repeat(1000), "partitionKey", 256));
        assert!(long.message.starts_with("1 validation error detected: Value 'kkk"));
        assert!(long.message.len() < 300, "values are quoted shortly");
    }
}
