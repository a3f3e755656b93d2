//! The string enums of the Kinesis API, spelled as AWS spells them.
//!
//! A value this build does not know is an error when decoding (serde, [`FromStr`]): a server
//! answers it with AWS's "Member must satisfy enum value set" message, and a client built
//! before the server learned a new value reports the response as one it cannot read.

use serde::{Deserialize, Serialize};
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

macro_rules! aws_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $text)] $variant, )*
        }

        impl $name {
            /// Every value, in the model's order.
            pub const ALL: &'static [$name] = &[$( $name::$variant, )*];

            /// The AWS spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;

            /// The AWS spelling, case-sensitively as AWS reads it.
            fn from_str(value: &str) -> Result<$name, ParseEnumError> {
                $name::ALL.iter().copied().find(|known| known.as_str() == value).ok_or_else(|| ParseEnumError {
                    enum_name: stringify!($name),
                    value: value.to_owned(),
                    expected: $name::ALL.iter().map(|known| known.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }
    };
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
        for &value in ShardIteratorType::ALL {
            assert_eq!(value.as_str().parse::<ShardIteratorType>().unwrap(), value);
            assert_eq!(serde_json::to_string(&value).unwrap(), format!("\"{value}\""));
        }
        assert_eq!(MetricsName::All.as_str(), "ALL");
        assert_eq!(StreamMode::OnDemand.to_string(), "ON_DEMAND");
        let error = "trim_horizon".parse::<ShardIteratorType>().unwrap_err();
        assert_eq!(error.enum_name, "ShardIteratorType");
        assert!(error.to_string().contains("TRIM_HORIZON"), "{error}");
        assert!(serde_json::from_str::<StreamStatus>("\"NEW\"").is_err());
    }
}
