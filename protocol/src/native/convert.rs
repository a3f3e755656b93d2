//! Scalars between the model and the schema: numbers, enums, error codes.

use super::EncodeError;
use crate::wire;
use sluice_model::{
    AwsEnum, BillingCommitmentInputStatus, BillingCommitmentStatus, ConsumerStatus, EncryptionType, ErrorKind, HashKey,
    KinesisError, MetricsName, RecordDistributionStrategy, SequenceNumber, ShardFilterType, ShardIteratorType,
    StreamMode, StreamStatus, UnknownValue, Violation,
};

pub(super) fn sequence_to_wire(
    number: &SequenceNumber,
    member: &'static str,
) -> Result<wire::SequenceNumber, EncodeError> {
    let value = number.as_u128().ok_or_else(|| EncodeError::Unrepresentable { member, value: number.to_string() })?;
    Ok(wire::SequenceNumber::new((value >> 64) as u64, value as u64))
}

pub(super) fn sequence_from_wire(number: &wire::SequenceNumber) -> SequenceNumber {
    SequenceNumber::new((u128::from(number.high()) << 64) | u128::from(number.low()))
}

/// For the server's own numbers, which always fit.
pub(super) fn own_sequence_to_wire(number: &SequenceNumber) -> wire::SequenceNumber {
    let value = number.as_u128().expect("the server issues only sequence numbers that fit 128 bits");
    wire::SequenceNumber::new((value >> 64) as u64, value as u64)
}

pub(super) fn hash_key_to_wire(key: HashKey) -> wire::HashKey {
    wire::HashKey::new((key.0 >> 64) as u64, key.0 as u64)
}

pub(super) fn hash_key_from_wire(key: &wire::HashKey) -> HashKey {
    HashKey((u128::from(key.high()) << 64) | u128::from(key.low()))
}

/// The number an enum value goes out as when the sender does not know it either (a server
/// relaying a spelling AWS added): no schema value has it; see docs/protocol.md.
pub(super) const UNKNOWN_WIRE_VALUE: u8 = u8::MAX;

/// A model enum and the schema enum of the same values.
pub(super) trait WireEnum: AwsEnum {
    type Wire: Copy;
    fn known_to_wire(&self) -> Option<Self::Wire>;
    fn from_wire(value: Self::Wire) -> Option<Self>;
    fn wire_of(number: u8) -> Self::Wire;
    fn raw(value: Self::Wire) -> u64;

    /// The value as a response carries it: a value this build does not know goes out as its
    /// number when it came as one, otherwise as [`UNKNOWN_WIRE_VALUE`].
    fn to_wire(&self) -> Self::Wire {
        self.known_to_wire().unwrap_or_else(|| match self.unknown_value() {
            Some(UnknownValue::Number(number)) => Self::wire_of(u8::try_from(*number).unwrap_or(UNKNOWN_WIRE_VALUE)),
            _ => Self::wire_of(UNKNOWN_WIRE_VALUE),
        })
    }

    /// The value as a request carries it: a spelling this build does not know has no number.
    fn encode(&self, member: &'static str) -> Result<Self::Wire, EncodeError> {
        match (self.known_to_wire(), self.unknown_value()) {
            (Some(value), _) => Ok(value),
            (None, Some(UnknownValue::Number(number))) => u8::try_from(*number)
                .map(Self::wire_of)
                .map_err(|_| EncodeError::UnknownValue { member, value: self.to_string() }),
            (None, _) => Err(EncodeError::UnknownValue { member, value: self.to_string() }),
        }
    }

    fn unknown_value(&self) -> Option<&UnknownValue>;

    /// A request's enum value, or the ValidationException AWS answers for one outside the set.
    fn from_request(value: Self::Wire, path: &str) -> Result<Self, KinesisError> {
        Self::from_wire(value).ok_or_else(|| {
            KinesisError::validation(Violation::enumeration(
                &Self::raw(value).to_string(),
                path,
                Self::all().iter().map(AwsEnum::spelling),
            ))
        })
    }

    /// A response's enum value; one this build does not know is kept as its number.
    fn from_response(value: Self::Wire) -> Self {
        Self::from_wire(value).unwrap_or_else(|| Self::unknown(UnknownValue::Number(Self::raw(value))))
    }
}

macro_rules! wire_enum {
    ($model:ident, $wire:ident, $name:literal { $( $variant:ident = $constant:ident, )* }) => {
        impl WireEnum for $model {
            type Wire = wire::$wire;

            fn known_to_wire(&self) -> Option<wire::$wire> {
                match self {
                    $( $model::$variant => Some(wire::$wire::$constant), )*
                    $model::Unknown(_) => None,
                }
            }

            fn from_wire(value: wire::$wire) -> Option<$model> {
                match value {
                    $( wire::$wire::$constant => Some($model::$variant), )*
                    _ => None,
                }
            }

            fn wire_of(number: u8) -> wire::$wire {
                wire::$wire(number)
            }

            fn raw(value: wire::$wire) -> u64 {
                u64::from(value.0)
            }

            fn unknown_value(&self) -> Option<&UnknownValue> {
                match self {
                    $model::Unknown(value) => Some(value),
                    _ => None,
                }
            }
        }
    };
}

wire_enum!(StreamStatus, StreamStatus, "StreamStatus" {
    Creating = CREATING, Deleting = DELETING, Active = ACTIVE, Updating = UPDATING,
});
wire_enum!(StreamMode, StreamMode, "StreamMode" { Provisioned = PROVISIONED, OnDemand = ON_DEMAND, });
wire_enum!(ShardIteratorType, ShardIteratorType, "ShardIteratorType" {
    AtSequenceNumber = AT_SEQUENCE_NUMBER,
    AfterSequenceNumber = AFTER_SEQUENCE_NUMBER,
    TrimHorizon = TRIM_HORIZON,
    Latest = LATEST,
    AtTimestamp = AT_TIMESTAMP,
});
wire_enum!(ShardFilterType, ShardFilterType, "ShardFilterType" {
    AfterShardId = AFTER_SHARD_ID,
    AtTrimHorizon = AT_TRIM_HORIZON,
    FromTrimHorizon = FROM_TRIM_HORIZON,
    AtLatest = AT_LATEST,
    AtTimestamp = AT_TIMESTAMP,
    FromTimestamp = FROM_TIMESTAMP,
});
wire_enum!(ConsumerStatus, ConsumerStatus, "ConsumerStatus" { Creating = CREATING, Deleting = DELETING, Active = ACTIVE, });
wire_enum!(EncryptionType, EncryptionType, "EncryptionType" { None = NONE, Kms = KMS, });
wire_enum!(MetricsName, MetricsName, "MetricsName" {
    IncomingBytes = IncomingBytes,
    IncomingRecords = IncomingRecords,
    OutgoingBytes = OutgoingBytes,
    OutgoingRecords = OutgoingRecords,
    WriteProvisionedThroughputExceeded = WriteProvisionedThroughputExceeded,
    ReadProvisionedThroughputExceeded = ReadProvisionedThroughputExceeded,
    IteratorAgeMilliseconds = IteratorAgeMilliseconds,
    All = ALL,
});
wire_enum!(BillingCommitmentStatus, BillingCommitmentStatus, "BillingCommitmentStatus" {
    Enabled = ENABLED,
    Disabled = DISABLED,
    EnabledUntilEarliestAllowedEnd = ENABLED_UNTIL_EARLIEST_ALLOWED_END,
});
wire_enum!(BillingCommitmentInputStatus, BillingCommitmentInputStatus, "BillingCommitmentInputStatus" {
    Enabled = ENABLED,
    Disabled = DISABLED,
});
wire_enum!(RecordDistributionStrategy, RecordDistributionStrategy, "RecordDistributionStrategy" {
    Auto = AUTO,
    UserPartitionKey = USER_PARTITION_KEY,
});

pub(super) fn error_code(kind: ErrorKind) -> wire::ErrorCode {
    use wire::ErrorCode as C;
    match kind {
        ErrorKind::InternalFailure => C::InternalFailure,
        ErrorKind::ResourceNotFound => C::ResourceNotFound,
        ErrorKind::ResourceInUse => C::ResourceInUse,
        ErrorKind::InvalidArgument => C::InvalidArgument,
        ErrorKind::LimitExceeded => C::LimitExceeded,
        ErrorKind::ProvisionedThroughputExceeded => C::ProvisionedThroughputExceeded,
        ErrorKind::ExpiredIterator => C::ExpiredIterator,
        ErrorKind::ExpiredNextToken => C::ExpiredNextToken,
        ErrorKind::Validation => C::Validation,
        ErrorKind::AccessDenied => C::AccessDenied,
        ErrorKind::Serialization => C::Serialization,
        ErrorKind::UnknownOperation => C::UnknownOperation,
        ErrorKind::Throttling => C::Throttling,
        ErrorKind::KmsDisabled => C::KMSDisabled,
        ErrorKind::KmsInvalidState => C::KMSInvalidState,
        ErrorKind::KmsAccessDenied => C::KMSAccessDenied,
        ErrorKind::KmsNotFound => C::KMSNotFound,
        ErrorKind::KmsOptInRequired => C::KMSOptInRequired,
        ErrorKind::KmsThrottling => C::KMSThrottling,
        ErrorKind::LeaseLost => C::LeaseLost,
        ErrorKind::MissingAuthenticationToken => C::MissingAuthenticationToken,
        ErrorKind::IncompleteSignature => C::IncompleteSignature,
        ErrorKind::InvalidSignature => C::InvalidSignature,
        ErrorKind::UnrecognizedClient => C::UnrecognizedClient,
        ErrorKind::ExpiredToken => C::ExpiredToken,
        ErrorKind::ServiceUnavailable => C::ServiceUnavailable,
        ErrorKind::ConcurrentModification => C::ConcurrentModification,
        ErrorKind::InvalidKmsResource => C::InvalidKMSResource,
        ErrorKind::NotLeader => C::NotLeader,
    }
}

/// The kind of a wire error code. A code from a newer peer that this build does not know is
/// `InternalFailure`, the least specific failure (why it is the schema's zero value).
pub(super) fn error_kind(code: wire::ErrorCode) -> ErrorKind {
    ErrorKind::ALL.iter().copied().find(|&kind| error_code(kind) == code).unwrap_or(ErrorKind::InternalFailure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_its_own_code_and_back() {
        for &kind in ErrorKind::ALL {
            assert_eq!(error_kind(error_code(kind)), kind);
            let code = error_code(kind);
            let variant = code.variant_name().expect("a schema code");
            assert!(kind.exception_name().to_uppercase().starts_with(&variant.to_uppercase()), "{variant}");
        }
        assert_eq!(ErrorKind::ALL.len(), wire::ErrorCode::ENUM_VALUES.len());
        assert_eq!(error_kind(wire::ErrorCode(u16::MAX)), ErrorKind::InternalFailure);
    }

    #[test]
    fn enums_map_one_to_one() {
        fn check<T: WireEnum + PartialEq + std::fmt::Debug>(count: usize) {
            assert_eq!(T::all().len(), count, "{}", T::NAME);
            for value in T::all() {
                assert_eq!(T::from_wire(value.to_wire()).as_ref(), Some(value));
            }
        }
        check::<StreamStatus>(wire::StreamStatus::ENUM_VALUES.len());
        check::<StreamMode>(wire::StreamMode::ENUM_VALUES.len());
        check::<ShardIteratorType>(wire::ShardIteratorType::ENUM_VALUES.len());
        check::<ShardFilterType>(wire::ShardFilterType::ENUM_VALUES.len());
        check::<ConsumerStatus>(wire::ConsumerStatus::ENUM_VALUES.len());
        check::<EncryptionType>(wire::EncryptionType::ENUM_VALUES.len());
        check::<MetricsName>(wire::MetricsName::ENUM_VALUES.len());
        check::<BillingCommitmentStatus>(wire::BillingCommitmentStatus::ENUM_VALUES.len());
        check::<BillingCommitmentInputStatus>(wire::BillingCommitmentInputStatus::ENUM_VALUES.len());
        check::<RecordDistributionStrategy>(wire::RecordDistributionStrategy::ENUM_VALUES.len());
        let unknown = ShardIteratorType::from_request(wire::ShardIteratorType(9), "shardIteratorType").unwrap_err();
        assert_eq!(unknown.kind, ErrorKind::Validation);
        assert!(
            unknown.message.contains("Member must satisfy enum value set: [AT_SEQUENCE_NUMBER"),
            "{}",
            unknown.message
        );
    }

    #[test]
    fn unknown_enum_values_survive_and_bad_spellings_are_rejected() {
        let unknown = StreamStatus::from_response(wire::StreamStatus(42));
        assert_eq!(unknown, StreamStatus::Unknown(UnknownValue::Number(42)));
        assert_eq!(unknown.to_string(), "UNKNOWN(42)");
        assert_eq!(unknown.to_wire(), wire::StreamStatus(42));
        let error = "trim_horizon".parse::<ShardIteratorType>().unwrap_err();
        assert_eq!(error.enum_name, "ShardIteratorType");
        assert!(error.to_string().contains("TRIM_HORIZON"), "{error}");
        // A spelling kept from an AWS JSON answer has no number: a response carries it as
        // the reserved unknown value, a request cannot carry it.
        let spelled = StreamMode::Unknown(UnknownValue::Text("SERVERLESS".into()));
        assert_eq!(spelled.to_wire(), wire::StreamMode(UNKNOWN_WIRE_VALUE));
        assert!(matches!(spelled.encode("StreamMode"), Err(EncodeError::UnknownValue { .. })));
    }

    #[test]
    fn numbers_keep_all_128_bits() {
        for value in [0, 1, u128::from(u64::MAX), u128::from(u64::MAX) + 1, u128::MAX] {
            let number = SequenceNumber::new(value);
            assert_eq!(sequence_from_wire(&sequence_to_wire(&number, "m").unwrap()), number);
            assert_eq!(hash_key_from_wire(&hash_key_to_wire(HashKey(value))), HashKey(value));
        }
        let aws: SequenceNumber = "49590338271490256608559692538361571095921575989136588898".parse().unwrap();
        assert!(matches!(sequence_to_wire(&aws, "startingSequenceNumber"), Err(EncodeError::Unrepresentable { .. })));
    }
}
