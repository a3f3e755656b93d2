//! The string enums of the Kinesis API, spelled as AWS spells them.
//!
//! Every enum has an `Unknown` variant for a value this build does not know, sent by a peer
//! newer than it (a server that learned a new value, or AWS itself): a client keeps such a
//! value rather than failing to read the whole response, as AWS's SDKs do. A server never
//! accepts one in a request: the codecs refuse unknown values with AWS's "Member must satisfy
//! enum value set" message, and [`crate::Request::validate`] refuses them again for callers that
//! build requests by hand. [`FromStr`] (user input: a CLI argument, a configuration value)
//! is strict.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A string that names no value of an enum.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {enum_name}; expected one of: {expected}")]
pub struct ParseEnumError {
    /// The AWS shape name, e.g. `ShardIteratorType`.
    pub enum_name: &'static str,
    pub value: String,
    /// The valid spellings, comma-separated.
    pub expected: String,
}

/// An enum value this build does not know, as it arrived.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnknownValue {
    /// A native-protocol enum number (`sluice.fbs` only ever appends values).
    Number(u64),
    /// An AWS JSON or CBOR spelling.
    Text(String),
}

impl fmt::Display for UnknownValue {
    /// `UNKNOWN(42)` for a number; the spelling itself for text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownValue::Number(number) => write!(f, "UNKNOWN({number})"),
            UnknownValue::Text(text) => f.write_str(text),
        }
    }
}

/// What every enum of this module has, for code generic over them (codecs, validation).
pub trait AwsEnum: Clone + fmt::Display + 'static {
    /// The AWS shape name, e.g. `ShardIteratorType`.
    const NAME: &'static str;
    /// Every value this build knows.
    fn all() -> &'static [Self];
    /// See the inherent `as_str` of each enum.
    fn spelling(&self) -> &str;
    fn unknown(value: UnknownValue) -> Self;
    fn is_known(&self) -> bool;
}

macro_rules! aws_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )*
            /// A value this build does not know: the peer is newer than this build.
            Unknown(UnknownValue),
        }

        impl $name {
            /// Every value this build knows, in the model's order.
            pub const ALL: &'static [$name] = &[$( $name::$variant, )*];

            /// The AWS spelling; for an unknown value, its text, or `UNKNOWN` for a number
            /// ([`fmt::Display`] adds the number).
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Unknown(UnknownValue::Text(text)) => text,
                    $name::Unknown(UnknownValue::Number(_)) => "UNKNOWN",
                }
            }

            /// False for a value this build does not know.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }

            /// The value an AWS spelling names, if this build knows it.
            pub fn from_aws(value: &str) -> Option<$name> {
                match value {
                    $( $text => Some($name::$variant), )*
                    _ => None,
                }
            }
        }

        impl AwsEnum for $name {
            const NAME: &'static str = stringify!($name);

            fn all() -> &'static [$name] {
                $name::ALL
            }

            fn spelling(&self) -> &str {
                self.as_str()
            }

            fn unknown(value: UnknownValue) -> $name {
                $name::Unknown(value)
            }

            fn is_known(&self) -> bool {
                $name::is_known(self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::Unknown(value) => value.fmt(f),
                    known => f.write_str(known.as_str()),
                }
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;

            /// The AWS spelling, case-sensitively as AWS reads it; nothing else.
            fn from_str(value: &str) -> Result<$name, ParseEnumError> {
                $name::from_aws(value).ok_or_else(|| ParseEnumError {
                    enum_name: stringify!($name),
                    value: value.to_owned(),
                    expected: $name::ALL.iter().map(|known| known.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $name::Unknown(value) => serializer.collect_str(value),
                    known => serializer.serialize_str(known.as_str()),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// Any string: the value it spells, or `Unknown` with the text.
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let text = deserializer.deserialize_str(SpellingVisitor(stringify!($name)))?;
                Ok($name::from_aws(&text).unwrap_or($name::Unknown(UnknownValue::Text(text))))
            }
        }
    };
}

/// Reads an enum's spelling as text.
struct SpellingVisitor(&'static str);

impl<'de> Visitor<'de> for SpellingVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} spelling", self.0)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
        Ok(value.to_owned())
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<String, E> {
        Ok(value)
    }
}

aws_enum! {
    /// Sluice's consumer groups: where an application's workers start in the shards that exist
    /// when it is created (KCL's `initialPositionInStream`; docs/clients.md).
    pub enum InitialPositionType {
        TrimHorizon = "TRIM_HORIZON",
        Latest = "LATEST",
        AtTimestamp = "AT_TIMESTAMP",
    }
}

aws_enum! {
    /// Sluice's consumer groups: an application's status.
    pub enum ApplicationStatus {
        Creating = "CREATING",
        Deleting = "DELETING",
        Active = "ACTIVE",
    }
}

aws_enum! {
    /// `StreamStatus`.
    pub enum StreamStatus {
        Creating = "CREATING",
        Deleting = "DELETING",
        Active = "ACTIVE",
        Updating = "UPDATING",
    }
}

aws_enum! {
    /// `StreamMode` (of `StreamModeDetails`).
    pub enum StreamMode {
        Provisioned = "PROVISIONED",
        OnDemand = "ON_DEMAND",
    }
}

aws_enum! {
    /// `ShardIteratorType`, also the `Type` of a SubscribeToShard `StartingPosition`.
    pub enum ShardIteratorType {
        AtSequenceNumber = "AT_SEQUENCE_NUMBER",
        AfterSequenceNumber = "AFTER_SEQUENCE_NUMBER",
        TrimHorizon = "TRIM_HORIZON",
        Latest = "LATEST",
        AtTimestamp = "AT_TIMESTAMP",
    }
}

aws_enum! {
    /// `ShardFilterType` (ListShards).
    pub enum ShardFilterType {
        AfterShardId = "AFTER_SHARD_ID",
        AtTrimHorizon = "AT_TRIM_HORIZON",
        FromTrimHorizon = "FROM_TRIM_HORIZON",
        AtLatest = "AT_LATEST",
        AtTimestamp = "AT_TIMESTAMP",
        FromTimestamp = "FROM_TIMESTAMP",
    }
}

aws_enum! {
    /// `ConsumerStatus`.
    pub enum ConsumerStatus {
        Creating = "CREATING",
        Deleting = "DELETING",
        Active = "ACTIVE",
    }
}

aws_enum! {
    /// `EncryptionType`.
    pub enum EncryptionType {
        None = "NONE",
        Kms = "KMS",
    }
}

aws_enum! {
    /// `MetricsName`: shard-level enhanced monitoring metrics; `ALL` stands for the others.
    pub enum MetricsName {
        IncomingBytes = "IncomingBytes",
        IncomingRecords = "IncomingRecords",
        OutgoingBytes = "OutgoingBytes",
        OutgoingRecords = "OutgoingRecords",
        WriteProvisionedThroughputExceeded = "WriteProvisionedThroughputExceeded",
        ReadProvisionedThroughputExceeded = "ReadProvisionedThroughputExceeded",
        IteratorAgeMilliseconds = "IteratorAgeMilliseconds",
        All = "ALL",
    }
}

aws_enum! {
    /// `ScalingType` (UpdateShardCount): Kinesis has only one.
    pub enum ScalingType {
        UniformScaling = "UNIFORM_SCALING",
    }
}

aws_enum! {
    /// `MinimumThroughputBillingCommitmentOutputStatus` (DescribeAccountSettings).
    pub enum BillingCommitmentStatus {
        Enabled = "ENABLED",
        Disabled = "DISABLED",
        EnabledUntilEarliestAllowedEnd = "ENABLED_UNTIL_EARLIEST_ALLOWED_END",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_aws_spelling() {
        for value in ShardIteratorType::ALL {
            assert_eq!(&value.as_str().parse::<ShardIteratorType>().unwrap(), value);
            assert_eq!(serde_json::to_string(value).unwrap(), format!("\"{value}\""));
        }
        assert_eq!(MetricsName::All.as_str(), "ALL");
        assert_eq!(StreamMode::OnDemand.to_string(), "ON_DEMAND");
        let error = "trim_horizon".parse::<ShardIteratorType>().unwrap_err();
        assert_eq!(error.enum_name, "ShardIteratorType");
        assert!(error.to_string().contains("TRIM_HORIZON"), "{error}");
        assert!(serde_json::from_str::<StreamStatus>("1").is_err());
    }

    #[test]
    fn unknown_values_survive_and_bad_spellings_are_rejected() {
        let unknown: StreamStatus = serde_json::from_str("\"RESHARDING\"").unwrap();
        assert_eq!(unknown, StreamStatus::Unknown(UnknownValue::Text("RESHARDING".into())));
        assert!(!unknown.is_known());
        assert_eq!(serde_json::to_string(&unknown).unwrap(), "\"RESHARDING\"");
        let number = StreamStatus::Unknown(UnknownValue::Number(42));
        assert_eq!(number.to_string(), "UNKNOWN(42)");
        assert_eq!(number.as_str(), "UNKNOWN");
        assert!("RESHARDING".parse::<StreamStatus>().is_err(), "user input is strict");
    }
}

aws_enum! {
    /// Kinesis queues: where a queue starts delivering (`QueueStartingPositionType`).
    pub enum QueueStartingPositionType {
        TrimHorizon = "TRIM_HORIZON",
        Latest = "LATEST",
        AtTimestamp = "AT_TIMESTAMP",
    }
}

aws_enum! {
    /// Kinesis queues: dead-letter handling (`TargetType`).
    pub enum TargetType {
        BuiltIn = "BUILT_IN",
        None = "NONE",
    }
}

aws_enum! {
    /// Kinesis queues: a queue's status (`QueueStatus`).
    pub enum QueueStatus {
        Creating = "CREATING",
        Active = "ACTIVE",
        Updating = "UPDATING",
        Deleting = "DELETING",
    }
}

aws_enum! {
    /// `RecordDistributionStrategy` (UpdateStreamRecordDistributionStrategy): how an
    /// on-demand stream spreads records over its shards.
    pub enum RecordDistributionStrategy {
        Auto = "AUTO",
        UserPartitionKey = "USER_PARTITION_KEY",
    }
}

aws_enum! {
    /// `MinimumThroughputBillingCommitmentInputStatus` (UpdateAccountSettings).
    pub enum BillingCommitmentInputStatus {
        Enabled = "ENABLED",
        Disabled = "DISABLED",
    }
}
