//! The Kinesis operations as plain Rust values, independent of any wire format.
//!
//! The service (`service.rs`) takes and returns these; each protocol (the native flatbuffers
//! one in `native.rs`, the AWS JSON/CBOR one to come) only translates bytes to and from them.
//! Field names follow the AWS API shapes; timestamps are epoch milliseconds; sequence numbers
//! and hash keys are the decimal strings Kinesis uses.

use bytes::Bytes;

/// How a request names its stream: AWS accepts `StreamName` or `StreamARN`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamRef {
    pub stream_name: Option<String>,
    pub stream_arn: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    Creating,
    Deleting,
    Active,
    Updating,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardIteratorType {
    AtSequenceNumber,
    AfterSequenceNumber,
    TrimHorizon,
    Latest,
    AtTimestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardFilterType {
    AfterShardId,
    AtTrimHorizon,
    FromTrimHorizon,
    AtLatest,
    AtTimestamp,
    FromTimestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerStatus {
    Creating,
    Deleting,
    Active,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashKeyRange {
    pub starting_hash_key: String,
    pub ending_hash_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
    pub adjacent_parent_shard_id: Option<String>,
    pub hash_key_range: HashKeyRange,
    pub starting_sequence_number: String,
    pub ending_sequence_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildShard {
    pub shard_id: String,
    pub parent_shards: Vec<String>,
    pub hash_key_range: HashKeyRange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub sequence_number: String,
    pub approximate_arrival_timestamp_ms: i64,
    pub data: Bytes,
    pub partition_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDescription {
    pub stream_name: String,
    pub stream_arn: String,
    pub stream_status: StreamStatus,
    pub stream_mode: StreamMode,
    pub shards: Vec<Shard>,
    pub has_more_shards: bool,
    pub retention_period_hours: u32,
    pub stream_creation_timestamp_ms: i64,
    /// Enabled shard-level metrics (EnableEnhancedMonitoring), sorted.
    pub shard_level_metrics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDescriptionSummary {
    pub stream_name: String,
    pub stream_arn: String,
    pub stream_status: StreamStatus,
    pub stream_mode: StreamMode,
    pub retention_period_hours: u32,
    pub stream_creation_timestamp_ms: i64,
    pub open_shard_count: u32,
    pub consumer_count: u32,
    pub shard_level_metrics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    pub stream_name: String,
    pub stream_arn: String,
    pub stream_status: StreamStatus,
    pub stream_mode: StreamMode,
    pub stream_creation_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub consumer_name: String,
    pub consumer_arn: String,
    pub consumer_status: ConsumerStatus,
    pub consumer_creation_timestamp_ms: i64,
    pub stream_arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFilter {
    pub filter_type: ShardFilterType,
    pub shard_id: Option<String>,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartingPosition {
    pub position_type: ShardIteratorType,
    pub sequence_number: Option<String>,
    pub timestamp_ms: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Requests and responses, one pair per operation.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateStream {
    pub stream_name: String,
    pub shard_count: Option<u32>,
    pub stream_mode: Option<StreamMode>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteStream {
    pub stream: StreamRef,
    pub enforce_consumer_deletion: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeStream {
    pub stream: StreamRef,
    pub limit: Option<u32>,
    pub exclusive_start_shard_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreams {
    pub limit: Option<u32>,
    pub exclusive_start_stream_name: Option<String>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreamsOutput {
    pub stream_names: Vec<String>,
    pub has_more_streams: bool,
    pub next_token: Option<String>,
    pub stream_summaries: Vec<StreamSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListShards {
    pub stream: StreamRef,
    pub next_token: Option<String>,
    pub exclusive_start_shard_id: Option<String>,
    pub max_results: Option<u32>,
    pub stream_creation_timestamp_ms: Option<i64>,
    pub shard_filter: Option<ShardFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListShardsOutput {
    pub shards: Vec<Shard>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsEntry {
    pub data: Bytes,
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecord {
    pub stream: StreamRef,
    pub entry: PutRecordsEntry,
    pub sequence_number_for_ordering: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordOutput {
    pub shard_id: String,
    pub sequence_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecords {
    pub stream: StreamRef,
    pub records: Vec<PutRecordsEntry>,
}

/// Either `Ok` with the record's shard and sequence number, or the per-record error.
pub type PutRecordsResultEntry = Result<PutRecordOutput, crate::error::ServiceError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsOutput {
    pub failed_record_count: u32,
    pub records: Vec<PutRecordsResultEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetShardIterator {
    pub stream: StreamRef,
    pub shard_id: String,
    pub shard_iterator_type: Option<ShardIteratorType>,
    pub starting_sequence_number: Option<String>,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRecords {
    pub shard_iterator: String,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRecordsOutput {
    pub records: Vec<Record>,
    pub next_shard_iterator: Option<String>,
    pub millis_behind_latest: i64,
    pub child_shards: Vec<ChildShard>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRetention {
    pub stream: StreamRef,
    pub retention_period_hours: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddTagsToStream {
    pub stream: StreamRef,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveTagsFromStream {
    pub stream: StreamRef,
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTagsForStream {
    pub stream: StreamRef,
    pub exclusive_start_tag_key: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTagsForStreamOutput {
    pub tags: Vec<Tag>,
    pub has_more_tags: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLimitsOutput {
    pub shard_limit: u32,
    pub open_shard_count: u32,
    pub on_demand_stream_count: u32,
    pub on_demand_stream_count_limit: u32,
}

/// Names a consumer by ARN, or by stream ARN and consumer name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerRef {
    pub stream_arn: Option<String>,
    pub consumer_name: Option<String>,
    pub consumer_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreamConsumers {
    pub stream_arn: String,
    pub next_token: Option<String>,
    pub max_results: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreamConsumersOutput {
    pub consumers: Vec<Consumer>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeToShard {
    pub consumer_arn: String,
    pub shard_id: String,
    pub starting_position: StartingPosition,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeToShardEvent {
    pub records: Vec<Record>,
    pub continuation_sequence_number: String,
    pub millis_behind_latest: i64,
    pub child_shards: Vec<ChildShard>,
}

// ---------------------------------------------------------------------------------------------
// Account and metadata operations (served over the AWS HTTP API).

/// TagResource, UntagResource and ListTagsForResource name a stream or a consumer by ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagResource {
    pub resource_arn: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntagResource {
    pub resource_arn: String,
    pub tag_keys: Vec<String>,
}

/// Enable- or DisableEnhancedMonitoring: the Kinesis `MetricsName`s to switch (`ALL` for all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnhancedMonitoring {
    pub stream: StreamRef,
    pub shard_level_metrics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnhancedMonitoringOutput {
    pub stream_name: String,
    pub stream_arn: String,
    pub current_shard_level_metrics: Vec<String>,
    pub desired_shard_level_metrics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStreamMode {
    pub stream_arn: String,
    pub stream_mode: StreamMode,
}

/// DescribeAccountSettings: Sluice has no billing commitment to report, so it is DISABLED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSettings {
    pub minimum_throughput_billing_commitment_enabled: bool,
}
