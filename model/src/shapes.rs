//! The structures several operations share, member for member as botocore's Kinesis model
//! has them (2013-12-02): the same names (serde renames the fields to the AWS member names),
//! the same order (the AWS CLI prints members in this order), and a member is an `Option`
//! exactly when the model does not require it. Optional lists a server always sends are plain
//! `Vec`s that read as empty when absent.

use crate::enums::{
    BillingCommitmentStatus, ConsumerStatus, EncryptionType, MetricsName, ShardFilterType, ShardIteratorType,
    StreamMode, StreamStatus,
};
use crate::error::{ErrorKind, KinesisError};
use crate::ids::{blob, ConsumerArn, HashKey, SequenceNumber, ShardId, StreamArn, Timestamp};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// AWS `TagMap`: tag keys to values. Sorted, and a key given twice keeps its last value.
pub type TagMap = BTreeMap<String, String>;

/// AWS `Tag`, as ListTagsForStream and ListTagsForResource return them.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: Option<String>,
}

impl Tag {
    /// A tag with a value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Tag {
        Tag { key: key.into(), value: Some(value.into()) }
    }
}

/// AWS `HashKeyRange`: the inclusive range of hash keys a shard owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRange {
    pub starting_hash_key: HashKey,
    pub ending_hash_key: HashKey,
}

/// AWS `SequenceNumberRange`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRange {
    pub starting_sequence_number: SequenceNumber,
    /// Absent while the shard is open.
    pub ending_sequence_number: Option<SequenceNumber>,
}

/// AWS `Shard`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Shard {
    pub shard_id: ShardId,
    pub parent_shard_id: Option<ShardId>,
    pub adjacent_parent_shard_id: Option<ShardId>,
    pub hash_key_range: HashKeyRange,
    pub sequence_number_range: SequenceNumberRange,
}

/// AWS `ChildShard`: a shard that took over (part of) a closed one's hash keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChildShard {
    pub shard_id: ShardId,
    pub parent_shards: Vec<ShardId>,
    pub hash_key_range: HashKeyRange,
}

/// AWS `EnhancedMetrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMetrics {
    #[serde(default)]
    pub shard_level_metrics: Vec<MetricsName>,
}

/// AWS `StreamModeDetails`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    pub stream_mode: StreamMode,
}

impl From<StreamMode> for StreamModeDetails {
    fn from(stream_mode: StreamMode) -> StreamModeDetails {
        StreamModeDetails { stream_mode }
    }
}

/// AWS `Record`, as GetRecords and SubscribeToShard return it.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub sequence_number: SequenceNumber,
    pub approximate_arrival_timestamp: Option<Timestamp>,
    /// The payload. On the native protocol, a slice of the frame it arrived in.
    #[serde(with = "blob")]
    pub data: Bytes,
    pub partition_key: Option<String>,
    pub encryption_type: Option<EncryptionType>,
}

/// AWS `StreamDescription` (DescribeStream).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescription {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    pub stream_status: StreamStatus,
    pub stream_mode_details: Option<StreamModeDetails>,
    pub shards: Vec<Shard>,
    pub has_more_shards: bool,
    pub retention_period_hours: i32,
    pub stream_creation_timestamp: Timestamp,
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    pub encryption_type: Option<EncryptionType>,
    pub key_id: Option<String>,
}

/// AWS `StreamDescriptionSummary` (DescribeStreamSummary).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescriptionSummary {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    pub stream_status: StreamStatus,
    pub stream_mode_details: Option<StreamModeDetails>,
    pub retention_period_hours: i32,
    pub stream_creation_timestamp: Timestamp,
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    pub encryption_type: Option<EncryptionType>,
    pub key_id: Option<String>,
    pub open_shard_count: i32,
    pub consumer_count: Option<i32>,
    /// Present for ON_DEMAND streams while the account's MinimumThroughputBillingCommitment is
    /// enabled (UpdateStreamWarmThroughput).
    pub warm_throughput: Option<WarmThroughput>,
    #[serde(rename = "MaxRecordSizeInKiB")]
    pub max_record_size_in_kib: Option<i32>,
    pub record_distribution_strategy: Option<crate::enums::RecordDistributionStrategy>,
}

/// AWS `StreamSummary` (ListStreams).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummary {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    pub stream_status: StreamStatus,
    pub stream_mode_details: Option<StreamModeDetails>,
    pub stream_creation_timestamp: Option<Timestamp>,
}

/// AWS `Consumer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Consumer {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: ConsumerArn,
    pub consumer_status: ConsumerStatus,
    pub consumer_creation_timestamp: Timestamp,
}

/// AWS `ConsumerDescription` (DescribeStreamConsumer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerDescription {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: ConsumerArn,
    pub consumer_status: ConsumerStatus,
    pub consumer_creation_timestamp: Timestamp,
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
}

/// AWS `ShardFilter` (ListShards).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardFilter {
    pub r#type: ShardFilterType,
    /// For `AFTER_SHARD_ID`.
    pub shard_id: Option<ShardId>,
    /// For `AT_TIMESTAMP` and `FROM_TIMESTAMP`.
    pub timestamp: Option<Timestamp>,
}

/// AWS `StartingPosition` (SubscribeToShard).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartingPosition {
    pub r#type: ShardIteratorType,
    /// For `AT_SEQUENCE_NUMBER` and `AFTER_SEQUENCE_NUMBER`.
    pub sequence_number: Option<SequenceNumber>,
    /// For `AT_TIMESTAMP`.
    pub timestamp: Option<Timestamp>,
}

impl StartingPosition {
    /// A position that needs neither a sequence number nor a timestamp (`TRIM_HORIZON`,
    /// `LATEST`).
    pub fn new(r#type: ShardIteratorType) -> StartingPosition {
        StartingPosition { r#type, sequence_number: None, timestamp: None }
    }
}

/// AWS `PutRecordsRequestEntry`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsRequestEntry {
    #[serde(with = "blob")]
    pub data: Bytes,
    pub explicit_hash_key: Option<HashKey>,
    /// Required by Sluice (it routes by key); optional in the model for streams whose
    /// `RecordDistributionStrategy` is `AUTO`.
    pub partition_key: Option<String>,
}

/// AWS `PutRecordsResultEntry`: a sequence number and shard, or an error code and message.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResultEntry {
    pub sequence_number: Option<SequenceNumber>,
    pub shard_id: Option<ShardId>,
    /// `ProvisionedThroughputExceeded` or `InternalFailure`, spelled in JSON as AWS spells
    /// them here: `ProvisionedThroughputExceededException` and `InternalFailure`.
    #[serde(default, with = "put_records_error_code")]
    pub error_code: Option<ErrorKind>,
    pub error_message: Option<String>,
}

impl PutRecordsResultEntry {
    pub fn is_failure(&self) -> bool {
        self.error_code.is_some()
    }

    /// A record that failed with `error`. AWS fails single records with exactly two codes,
    /// ProvisionedThroughputExceeded and InternalFailure; every other kind is the latter, but
    /// for a cluster member's NotLeader, which goes back to the member that forwarded the
    /// request (a client hears InternalFailure: `ErrorKind::for_client`).
    pub fn failed(error: KinesisError) -> PutRecordsResultEntry {
        let code = match error.kind {
            ErrorKind::ProvisionedThroughputExceeded | ErrorKind::NotLeader => error.kind,
            _ => ErrorKind::InternalFailure,
        };
        PutRecordsResultEntry {
            sequence_number: None,
            shard_id: None,
            error_code: Some(code),
            error_message: Some(error.message),
        }
    }
}

/// A PutRecords entry's `ErrorCode` is a plain string in the model; these are its spellings.
mod put_records_error_code {
    use crate::error::ErrorKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(code: &Option<ErrorKind>, serializer: S) -> Result<S::Ok, S::Error> {
        match code {
            Some(kind) => serializer.serialize_str(kind.exception_name()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ErrorKind>, D::Error> {
        let name: Option<String> = Option::deserialize(deserializer)?;
        // A code this build does not know is still a failure: the least specific one.
        Ok(name.map(|name| ErrorKind::from_exception_name(&name).unwrap_or(ErrorKind::InternalFailure)))
    }
}

/// AWS `SubscribeToShardEvent`: one push of a subscription.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEvent {
    pub records: Vec<Record>,
    /// Where to resubscribe from (`AFTER_SEQUENCE_NUMBER`) to continue after this event.
    pub continuation_sequence_number: SequenceNumber,
    pub millis_behind_latest: i64,
    /// Present only once a closed shard has been delivered to its end.
    pub child_shards: Option<Vec<ChildShard>>,
}

/// AWS `MinimumThroughputBillingCommitmentOutput` (DescribeAccountSettings).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinimumThroughputBillingCommitment {
    pub status: BillingCommitmentStatus,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub earliest_allowed_end_at: Option<Timestamp>,
}

/// AWS `WarmThroughputObject`: what an on-demand stream is scaled to take now, and what it is
/// heading for.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WarmThroughput {
    pub target_mi_bps: Option<i32>,
    pub current_mi_bps: Option<i32>,
}
