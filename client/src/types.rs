//! The plain-Rust requests, responses and shapes of the Kinesis operations the client speaks.
//!
//! Each type mirrors an AWS Kinesis shape member by member, with the AWS names in snake case
//! (`StreamARN` → `stream_arn`, `MaxRecordSizeInKiB` → `max_record_size_in_kib`), as the wire
//! schema does (`protocol/schema/sluice.fbs`, docs/protocol.md section 5). Operation inputs and
//! outputs are `<Op>Request` / `<Op>Response`; `PutRecordsRequestEntry` keeps its AWS name.
//!
//! Members are typed the way botocore's Kinesis model marks them: a member the model requires
//! is a plain value, an optional one is an `Option`. Requests send exactly what they hold (the
//! server validates, as AWS does). Responses are checked on arrival: a member the model
//! requires but the server left out is an error ([`crate::ClientError::MissingMember`]), not
//! a silent empty string. Lists the server leaves out read as empty, which is how
//! flatbuffers writers commonly encode an empty vector.
//!
//! Everything here is owned: record payloads are [`Bytes`] slices of one copy of the response
//! frame (see `recv_buffer`), so a response can outlive the connection's receive buffer.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sluice_protocol::wire::{self, ErrorCode};

// ---------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------

/// A point in time as the wire carries it: milliseconds since the Unix epoch.
///
/// The AWS JSON protocol writes timestamps as fractional epoch seconds
/// ([`Timestamp::epoch_seconds`]); the native protocol, like AWS's CBOR, uses milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    epoch_ms: i64,
}

impl Timestamp {
    /// The time `epoch_ms` milliseconds after the Unix epoch (before it, if negative).
    pub const fn from_epoch_ms(epoch_ms: i64) -> Self {
        Self { epoch_ms }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn epoch_ms(self) -> i64 {
        self.epoch_ms
    }

    /// Seconds since the Unix epoch with the milliseconds as a fraction, as the AWS JSON
    /// protocol and the AWS CLI write timestamps (`1704164645.678`).
    pub fn epoch_seconds(self) -> f64 {
        // Exact for every millisecond timestamp within ±2^53 ms (±285,000 years).
        self.epoch_ms as f64 / 1000.0
    }

    /// The current time, to the millisecond.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }
}

impl From<SystemTime> for Timestamp {
    /// Truncates to whole milliseconds; saturates beyond ±2^63 ms.
    fn from(time: SystemTime) -> Self {
        let epoch_ms = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        };
        Self { epoch_ms }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(timestamp: Timestamp) -> Self {
        let offset = Duration::from_millis(timestamp.epoch_ms.unsigned_abs());
        if timestamp.epoch_ms >= 0 {
            UNIX_EPOCH + offset
        } else {
            UNIX_EPOCH - offset
        }
    }
}

// ---------------------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------------------

/// A string that names no value of an enum ([`FromStr`] for the enums of this module).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {enum_name}; expected one of: {expected}")]
pub struct ParseEnumError {
    /// The enum's AWS shape name, e.g. `ShardIteratorType`.
    pub enum_name: &'static str,
    /// The string that was given.
    pub value: String,
    /// The valid spellings, comma-separated.
    pub expected: String,
}

/// Declares a Rust enum for one wire enum: its variants, the AWS spelling of each (the wire
/// constant's name, which the schema keeps equal to AWS's), conversions both ways and a
/// parser. Values from a newer server that this build does not know are kept as `Unknown`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $repr:ty {
            $( $(#[$variant_meta:meta])* $variant:ident = $wire:ident, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )*
            /// A value this build does not know: the server was built from a newer schema.
            Unknown($repr),
        }

        impl $name {
            /// Every value this build knows, in schema order.
            pub const ALL: &'static [Self] = &[$( Self::$variant, )*];

            /// The AWS spelling (`"TRIM_HORIZON"`), or `"UNKNOWN"` for a value this build does
            /// not know; [`fmt::Display`] adds the number to the latter.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => stringify!($wire), )*
                    Self::Unknown(_) => "UNKNOWN",
                }
            }

            /// The value of the wire enum (`sluice_protocol::wire`) with the same number.
            pub fn from_wire(value: wire::$name) -> Self {
                match value {
                    $( wire::$name::$wire => Self::$variant, )*
                    other => Self::Unknown(other.0),
                }
            }

            /// The wire enum (`sluice_protocol::wire`) value of this one.
            pub fn to_wire(self) -> wire::$name {
                match self {
                    $( Self::$variant => wire::$name::$wire, )*
                    Self::Unknown(raw) => wire::$name(raw),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Unknown(raw) => write!(f, "UNKNOWN({raw})"),
                    known => f.write_str(known.as_str()),
                }
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;

            /// Parses the AWS spelling, case-sensitively as AWS does.
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|known| known.as_str() == value).ok_or_else(|| ParseEnumError {
                    enum_name: stringify!($name),
                    value: value.to_owned(),
                    expected: Self::ALL.iter().map(|known| known.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }
    };
}

wire_enum! {
    /// AWS `StreamModeDetails.StreamMode`.
    pub enum StreamMode: u8 {
        Provisioned = PROVISIONED,
        OnDemand = ON_DEMAND,
    }
}

wire_enum! {
    /// AWS `StreamStatus`.
    pub enum StreamStatus: u8 {
        Creating = CREATING,
        Deleting = DELETING,
        Active = ACTIVE,
        Updating = UPDATING,
    }
}

wire_enum! {
    /// AWS `ShardIteratorType`, also the `Type` of a SubscribeToShard `StartingPosition`.
    pub enum ShardIteratorType: u8 {
        AtSequenceNumber = AT_SEQUENCE_NUMBER,
        AfterSequenceNumber = AFTER_SEQUENCE_NUMBER,
        TrimHorizon = TRIM_HORIZON,
        Latest = LATEST,
        AtTimestamp = AT_TIMESTAMP,
    }
}

wire_enum! {
    /// AWS `ShardFilterType` (ListShards).
    pub enum ShardFilterType: u8 {
        AfterShardId = AFTER_SHARD_ID,
        AtTrimHorizon = AT_TRIM_HORIZON,
        FromTrimHorizon = FROM_TRIM_HORIZON,
        AtLatest = AT_LATEST,
        AtTimestamp = AT_TIMESTAMP,
        FromTimestamp = FROM_TIMESTAMP,
    }
}

wire_enum! {
    /// AWS `ConsumerStatus`.
    pub enum ConsumerStatus: u8 {
        Creating = CREATING,
        Deleting = DELETING,
        Active = ACTIVE,
    }
}

wire_enum! {
    /// AWS `EncryptionType`.
    pub enum EncryptionType: u8 {
        None = NONE,
        Kms = KMS,
    }
}

wire_enum! {
    /// AWS `MetricsName` (shard-level enhanced monitoring).
    pub enum MetricsName: u8 {
        IncomingBytes = IncomingBytes,
        IncomingRecords = IncomingRecords,
        OutgoingBytes = OutgoingBytes,
        OutgoingRecords = OutgoingRecords,
        WriteProvisionedThroughputExceeded = WriteProvisionedThroughputExceeded,
        ReadProvisionedThroughputExceeded = ReadProvisionedThroughputExceeded,
        IteratorAgeMilliseconds = IteratorAgeMilliseconds,
        All = ALL,
    }
}

// ---------------------------------------------------------------------------------------
// Shapes shared by several operations
// ---------------------------------------------------------------------------------------

/// AWS `Tag`, and one entry of an AWS `TagMap` (flatbuffers has no maps).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    /// Optional in AWS's `Tag` shape; a `TagMap` entry always has one (possibly empty).
    pub value: Option<String>,
}

impl Tag {
    /// A tag with a value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self { key: key.into(), value: Some(value.into()) }
    }
}

/// AWS `HashKeyRange`: decimal strings in [0, 2^128 - 1].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashKeyRange {
    pub starting_hash_key: String,
    pub ending_hash_key: String,
}

/// AWS `SequenceNumberRange`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceNumberRange {
    pub starting_sequence_number: String,
    /// Absent while the shard is open.
    pub ending_sequence_number: Option<String>,
}

/// AWS `Shard`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
    pub adjacent_parent_shard_id: Option<String>,
    pub hash_key_range: HashKeyRange,
    pub sequence_number_range: SequenceNumberRange,
}

/// AWS `ChildShard`: a shard that replaced a closed one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildShard {
    pub shard_id: String,
    pub parent_shards: Vec<String>,
    pub hash_key_range: HashKeyRange,
}

/// AWS `EnhancedMetrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnhancedMetrics {
    pub shard_level_metrics: Vec<MetricsName>,
}

/// AWS `Record`, as GetRecords and SubscribeToShard return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub sequence_number: String,
    pub approximate_arrival_timestamp: Option<Timestamp>,
    /// The payload, a slice of the response frame (no copy per record).
    pub data: Bytes,
    pub partition_key: String,
    pub encryption_type: Option<EncryptionType>,
}

/// AWS `StreamDescription` (DescribeStream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamDescription {
    pub stream_name: String,
    pub stream_arn: String,
    pub stream_status: StreamStatus,
    /// AWS `StreamModeDetails.StreamMode`, flattened.
    pub stream_mode: Option<StreamMode>,
    pub shards: Vec<Shard>,
    pub has_more_shards: bool,
    pub retention_period_hours: i32,
    pub stream_creation_timestamp: Timestamp,
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    pub encryption_type: Option<EncryptionType>,
    pub key_id: Option<String>,
}

/// AWS `StreamDescriptionSummary` (DescribeStreamSummary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamDescriptionSummary {
    pub stream_name: String,
    pub stream_arn: String,
    pub stream_status: StreamStatus,
    /// AWS `StreamModeDetails.StreamMode`, flattened.
    pub stream_mode: Option<StreamMode>,
    pub retention_period_hours: i32,
    pub stream_creation_timestamp: Timestamp,
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    pub encryption_type: Option<EncryptionType>,
    pub key_id: Option<String>,
    pub open_shard_count: i32,
    pub consumer_count: Option<i32>,
    pub max_record_size_in_kib: Option<i32>,
}

/// AWS `StreamSummary` (ListStreams).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSummary {
    pub stream_name: String,
    pub stream_arn: String,
    pub stream_status: StreamStatus,
    /// AWS `StreamModeDetails.StreamMode`, flattened.
    pub stream_mode: Option<StreamMode>,
    pub stream_creation_timestamp: Option<Timestamp>,
}

/// AWS `Consumer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    pub consumer_name: String,
    pub consumer_arn: String,
    pub consumer_status: ConsumerStatus,
    pub consumer_creation_timestamp: Timestamp,
}

/// AWS `ConsumerDescription`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerDescription {
    pub consumer_name: String,
    pub consumer_arn: String,
    pub consumer_status: ConsumerStatus,
    pub consumer_creation_timestamp: Timestamp,
    pub stream_arn: String,
}

/// AWS `ShardFilter` (ListShards).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardFilter {
    pub r#type: ShardFilterType,
    /// For `AFTER_SHARD_ID`.
    pub shard_id: Option<String>,
    /// For `AT_TIMESTAMP` and `FROM_TIMESTAMP`.
    pub timestamp: Option<Timestamp>,
}

/// AWS `StartingPosition` (SubscribeToShard).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartingPosition {
    pub r#type: ShardIteratorType,
    /// For `AT_SEQUENCE_NUMBER` and `AFTER_SEQUENCE_NUMBER`.
    pub sequence_number: Option<String>,
    /// For `AT_TIMESTAMP`.
    pub timestamp: Option<Timestamp>,
}

impl StartingPosition {
    /// A position that needs neither a sequence number nor a timestamp (`TRIM_HORIZON`,
    /// `LATEST`).
    pub fn new(r#type: ShardIteratorType) -> Self {
        Self { r#type, sequence_number: None, timestamp: None }
    }
}

// ---------------------------------------------------------------------------------------
// Stream lifecycle
// ---------------------------------------------------------------------------------------

/// CreateStream. The response is empty; the stream starts in `CREATING`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateStreamRequest {
    pub stream_name: String,
    /// Absent for `ON_DEMAND` streams.
    pub shard_count: Option<i32>,
    /// AWS `StreamModeDetails.StreamMode`; absent means `PROVISIONED`.
    pub stream_mode: Option<StreamMode>,
    /// Sent only when not empty.
    pub tags: Vec<Tag>,
    /// 1024..=10240; absent means the 1 MiB default.
    pub max_record_size_in_kib: Option<i32>,
}

/// DeleteStream. Name the stream by `stream_name` or `stream_arn`. The response is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteStreamRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub enforce_consumer_deletion: Option<bool>,
}

/// DescribeStream. Name the stream by `stream_name` or `stream_arn`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeStreamRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub limit: Option<i32>,
    pub exclusive_start_shard_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribeStreamResponse {
    pub stream_description: StreamDescription,
}

/// DescribeStreamSummary. Name the stream by `stream_name` or `stream_arn`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeStreamSummaryRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribeStreamSummaryResponse {
    pub stream_description_summary: StreamDescriptionSummary,
}

/// ListStreams.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListStreamsRequest {
    pub limit: Option<i32>,
    pub exclusive_start_stream_name: Option<String>,
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListStreamsResponse {
    pub stream_names: Vec<String>,
    pub has_more_streams: bool,
    pub next_token: Option<String>,
    pub stream_summaries: Vec<StreamSummary>,
}

/// ListShards. Name the stream by `stream_name` or `stream_arn`, or continue with `next_token`
/// alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListShardsRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub next_token: Option<String>,
    pub exclusive_start_shard_id: Option<String>,
    pub max_results: Option<i32>,
    pub stream_creation_timestamp: Option<Timestamp>,
    pub shard_filter: Option<ShardFilter>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListShardsResponse {
    pub shards: Vec<Shard>,
    pub next_token: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Data plane
// ---------------------------------------------------------------------------------------

/// PutRecord. Name the stream by `stream_name` or `stream_arn`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutRecordRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub data: Bytes,
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub sequence_number_for_ordering: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutRecordResponse {
    pub shard_id: String,
    pub sequence_number: String,
    pub encryption_type: Option<EncryptionType>,
}

/// One record of a PutRecords request (AWS `PutRecordsRequestEntry`, the schema's
/// `PutRecordsEntry`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutRecordsRequestEntry {
    pub data: Bytes,
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
}

/// PutRecords. Name the stream by `stream_name` or `stream_arn`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutRecordsRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub records: Vec<PutRecordsRequestEntry>,
}

/// One result of a PutRecords request, in request order: either `shard_id` and
/// `sequence_number`, or `error_code` and `error_message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutRecordsResultEntry {
    pub sequence_number: Option<String>,
    pub shard_id: Option<String>,
    /// `ProvisionedThroughputExceeded` or `InternalFailure`. AWS's JSON spells these
    /// `ProvisionedThroughputExceededException` and `InternalFailure` (docs/protocol.md).
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<String>,
}

/// A PutRecords response. Failed records are not an error of the call: count them with
/// `failed_record_count` and retry the entries that carry an `error_code`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutRecordsResponse {
    pub failed_record_count: i32,
    pub records: Vec<PutRecordsResultEntry>,
    pub encryption_type: Option<EncryptionType>,
}

/// GetShardIterator. Name the stream by `stream_name` or `stream_arn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetShardIteratorRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub shard_id: String,
    pub shard_iterator_type: ShardIteratorType,
    /// For `AT_SEQUENCE_NUMBER` and `AFTER_SEQUENCE_NUMBER`.
    pub starting_sequence_number: Option<String>,
    /// For `AT_TIMESTAMP`.
    pub timestamp: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetShardIteratorResponse {
    /// Optional in botocore's model, but a response without one is useless, so this client
    /// treats it as required.
    pub shard_iterator: String,
}

/// GetRecords.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetRecordsRequest {
    pub shard_iterator: String,
    pub limit: Option<i32>,
    pub stream_arn: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetRecordsResponse {
    pub records: Vec<Record>,
    /// Absent once a closed shard has been read to its end.
    pub next_shard_iterator: Option<String>,
    pub millis_behind_latest: Option<i64>,
    /// Present only at the end of a closed shard.
    pub child_shards: Option<Vec<ChildShard>>,
}

// ---------------------------------------------------------------------------------------
// Retention and tags
// ---------------------------------------------------------------------------------------

/// IncreaseStreamRetentionPeriod. Name the stream by `stream_name` or `stream_arn`. The
/// response is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncreaseStreamRetentionPeriodRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub retention_period_hours: i32,
}

/// DecreaseStreamRetentionPeriod. Name the stream by `stream_name` or `stream_arn`. The
/// response is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecreaseStreamRetentionPeriodRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub retention_period_hours: i32,
}

/// AddTagsToStream. Name the stream by `stream_name` or `stream_arn`. The response is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddTagsToStreamRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub tags: Vec<Tag>,
}

/// RemoveTagsFromStream. Name the stream by `stream_name` or `stream_arn`. The response is
/// empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoveTagsFromStreamRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub tag_keys: Vec<String>,
}

/// ListTagsForStream. Name the stream by `stream_name` or `stream_arn`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListTagsForStreamRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub exclusive_start_tag_key: Option<String>,
    pub limit: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListTagsForStreamResponse {
    pub tags: Vec<Tag>,
    pub has_more_tags: bool,
}

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribeLimitsResponse {
    pub shard_limit: i32,
    pub open_shard_count: i32,
    pub on_demand_stream_count: i32,
    pub on_demand_stream_count_limit: i32,
}

// ---------------------------------------------------------------------------------------
// Consumers and enhanced fan-out
// ---------------------------------------------------------------------------------------

/// RegisterStreamConsumer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterStreamConsumerRequest {
    pub stream_arn: String,
    pub consumer_name: String,
    /// Sent only when not empty.
    pub tags: Vec<Tag>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterStreamConsumerResponse {
    pub consumer: Consumer,
}

/// DeregisterStreamConsumer: name the consumer by `consumer_arn`, or by `stream_arn` and
/// `consumer_name`. The response is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeregisterStreamConsumerRequest {
    pub stream_arn: Option<String>,
    pub consumer_name: Option<String>,
    pub consumer_arn: Option<String>,
}

/// DescribeStreamConsumer: name the consumer by `consumer_arn`, or by `stream_arn` and
/// `consumer_name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeStreamConsumerRequest {
    pub stream_arn: Option<String>,
    pub consumer_name: Option<String>,
    pub consumer_arn: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribeStreamConsumerResponse {
    pub consumer_description: ConsumerDescription,
}

/// ListStreamConsumers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListStreamConsumersRequest {
    pub stream_arn: String,
    pub next_token: Option<String>,
    pub max_results: Option<i32>,
    pub stream_creation_timestamp: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListStreamConsumersResponse {
    pub consumers: Vec<Consumer>,
    pub next_token: Option<String>,
}

/// SubscribeToShard, as [`crate::Client::subscribe_to_shard`] sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeToShardRequest {
    pub consumer_arn: String,
    pub shard_id: String,
    pub starting_position: StartingPosition,
}

/// AWS `SubscribeToShardEvent`: one push of a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeToShardEvent {
    pub records: Vec<Record>,
    /// Where to resubscribe from (`AFTER_SEQUENCE_NUMBER`) to continue after this event.
    pub continuation_sequence_number: String,
    pub millis_behind_latest: i64,
    /// Present only once the shard is closed and fully delivered.
    pub child_shards: Option<Vec<ChildShard>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_aws_spelling_and_the_wire() {
        fn check<T>(all: &[T], as_str: fn(T) -> &'static str, to_wire_and_back: fn(T) -> T)
        where
            T: Copy + PartialEq + fmt::Debug + FromStr,
            <T as FromStr>::Err: fmt::Debug,
        {
            for &value in all {
                assert_eq!(as_str(value).parse::<T>().unwrap(), value);
                assert_eq!(to_wire_and_back(value), value);
            }
        }
        check(StreamMode::ALL, StreamMode::as_str, |v| StreamMode::from_wire(v.to_wire()));
        check(StreamStatus::ALL, StreamStatus::as_str, |v| StreamStatus::from_wire(v.to_wire()));
        check(ShardIteratorType::ALL, ShardIteratorType::as_str, |v| ShardIteratorType::from_wire(v.to_wire()));
        check(ShardFilterType::ALL, ShardFilterType::as_str, |v| ShardFilterType::from_wire(v.to_wire()));
        check(ConsumerStatus::ALL, ConsumerStatus::as_str, |v| ConsumerStatus::from_wire(v.to_wire()));
        check(EncryptionType::ALL, EncryptionType::as_str, |v| EncryptionType::from_wire(v.to_wire()));
        check(MetricsName::ALL, MetricsName::as_str, |v| MetricsName::from_wire(v.to_wire()));
        // Every wire value has a variant, and the spellings are AWS's.
        assert_eq!(ShardIteratorType::ALL.len(), wire::ShardIteratorType::ENUM_VALUES.len());
        assert_eq!(MetricsName::ALL.len(), wire::MetricsName::ENUM_VALUES.len());
        assert_eq!(ShardIteratorType::TrimHorizon.as_str(), "TRIM_HORIZON");
        assert_eq!(MetricsName::All.as_str(), "ALL");
        assert_eq!(StreamMode::OnDemand.to_string(), "ON_DEMAND");
    }

    #[test]
    fn unknown_enum_values_survive_and_bad_spellings_are_rejected() {
        let unknown = StreamStatus::from_wire(wire::StreamStatus(42));
        assert_eq!(unknown, StreamStatus::Unknown(42));
        assert_eq!(unknown.to_string(), "UNKNOWN(42)");
        assert_eq!(unknown.to_wire(), wire::StreamStatus(42));
        let error = "trim_horizon".parse::<ShardIteratorType>().unwrap_err();
        assert_eq!(error.enum_name, "ShardIteratorType");
        assert!(error.to_string().contains("TRIM_HORIZON"), "{error}");
    }

    #[test]
    fn timestamps_convert_to_seconds_and_system_time() {
        let timestamp = Timestamp::from_epoch_ms(1_704_164_645_678);
        assert_eq!(timestamp.epoch_seconds(), 1_704_164_645.678);
        assert_eq!(Timestamp::from(SystemTime::from(timestamp)), timestamp);
        let before_epoch = Timestamp::from_epoch_ms(-1_500);
        assert_eq!(Timestamp::from(SystemTime::from(before_epoch)), before_epoch);
        assert_eq!(before_epoch.epoch_seconds(), -1.5);
    }
}

// ---------------------------------------------------------------------------------------
// Resharding
// ---------------------------------------------------------------------------------------

/// SplitShard. Name the stream by `stream_name` or `stream_arn`. The response is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SplitShardRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub shard_to_split: String,
    /// Decimal hash key: the upper child starts here.
    pub new_starting_hash_key: String,
}

/// MergeShards. Name the stream by `stream_name` or `stream_arn`. The response is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeShardsRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub shard_to_merge: String,
    pub adjacent_shard_to_merge: String,
}

/// UpdateShardCount. `scaling_type` is `UNIFORM_SCALING`, the only type Kinesis has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateShardCountRequest {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
    pub target_shard_count: i32,
    pub scaling_type: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateShardCountResponse {
    pub stream_name: Option<String>,
    pub current_shard_count: i32,
    pub target_shard_count: i32,
    pub stream_arn: Option<String>,
}
