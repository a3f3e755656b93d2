//! Responses as the AWS CLI prints them: JSON with the Kinesis member names, in the order of
//! botocore's output shapes, indented by four spaces, absent members left out. Blobs are
//! base64 and timestamps are epoch seconds with a fraction, as in the Kinesis JSON protocol
//! that `aws kinesis` prints from.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::Serialize;
use sluice_client::*;

/// Serializes `value` as the AWS CLI's JSON output does (`json.dumps(indent=4)`).
pub fn pretty_json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer).expect("these shapes serialize to memory without error");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// One line of JSON, for streams of events.
pub fn json_line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("these shapes serialize to memory without error")
}

/// The AWS CLI's message for a failed call: the same text botocore's `ClientError` has.
pub fn service_error_message(operation: &str, exception: &str, message: &str) -> String {
    format!("An error occurred ({exception}) when calling the {operation} operation: {message}")
}

fn seconds(timestamp: Timestamp) -> f64 {
    timestamp.epoch_seconds()
}

fn name<T: ToString>(value: T) -> String {
    value.to_string()
}

// ---------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordJson {
    sequence_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    approximate_arrival_timestamp: Option<f64>,
    data: String,
    partition_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_type: Option<String>,
}

impl From<&Record> for RecordJson {
    fn from(record: &Record) -> Self {
        Self {
            sequence_number: record.sequence_number.clone(),
            approximate_arrival_timestamp: record.approximate_arrival_timestamp.map(seconds),
            data: BASE64.encode(&record.data),
            partition_key: record.partition_key.clone(),
            encryption_type: record.encryption_type.map(name),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRangeJson {
    starting_hash_key: String,
    ending_hash_key: String,
}

impl From<&HashKeyRange> for HashKeyRangeJson {
    fn from(range: &HashKeyRange) -> Self {
        Self { starting_hash_key: range.starting_hash_key.clone(), ending_hash_key: range.ending_hash_key.clone() }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRangeJson {
    starting_sequence_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ending_sequence_number: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardJson {
    shard_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    adjacent_parent_shard_id: Option<String>,
    hash_key_range: HashKeyRangeJson,
    sequence_number_range: SequenceNumberRangeJson,
}

impl From<&Shard> for ShardJson {
    fn from(shard: &Shard) -> Self {
        Self {
            shard_id: shard.shard_id.clone(),
            parent_shard_id: shard.parent_shard_id.clone(),
            adjacent_parent_shard_id: shard.adjacent_parent_shard_id.clone(),
            hash_key_range: (&shard.hash_key_range).into(),
            sequence_number_range: SequenceNumberRangeJson {
                starting_sequence_number: shard.sequence_number_range.starting_sequence_number.clone(),
                ending_sequence_number: shard.sequence_number_range.ending_sequence_number.clone(),
            },
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChildShardJson {
    shard_id: String,
    parent_shards: Vec<String>,
    hash_key_range: HashKeyRangeJson,
}

fn child_shards(children: &Option<Vec<ChildShard>>) -> Option<Vec<ChildShardJson>> {
    children.as_ref().map(|children| {
        children
            .iter()
            .map(|child| ChildShardJson {
                shard_id: child.shard_id.clone(),
                parent_shards: child.parent_shards.clone(),
                hash_key_range: (&child.hash_key_range).into(),
            })
            .collect()
    })
}

/// AWS `StreamModeDetails`, which the wire flattens to `stream_mode`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetailsJson {
    stream_mode: String,
}

fn stream_mode_details(mode: Option<StreamMode>) -> Option<StreamModeDetailsJson> {
    mode.map(|mode| StreamModeDetailsJson { stream_mode: mode.to_string() })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMetricsJson {
    shard_level_metrics: Vec<String>,
}

fn enhanced_monitoring(list: &[EnhancedMetrics]) -> Vec<EnhancedMetricsJson> {
    list.iter()
        .map(|metrics| EnhancedMetricsJson {
            shard_level_metrics: metrics.shard_level_metrics.iter().map(name).collect(),
        })
        .collect()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescriptionJson {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_mode_details: Option<StreamModeDetailsJson>,
    shards: Vec<ShardJson>,
    has_more_shards: bool,
    retention_period_hours: i32,
    stream_creation_timestamp: f64,
    enhanced_monitoring: Vec<EnhancedMetricsJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescriptionSummaryJson {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_mode_details: Option<StreamModeDetailsJson>,
    retention_period_hours: i32,
    stream_creation_timestamp: f64,
    enhanced_monitoring: Vec<EnhancedMetricsJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    open_shard_count: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_count: Option<i32>,
    #[serde(rename = "MaxRecordSizeInKiB", skip_serializing_if = "Option::is_none")]
    max_record_size_in_kib: Option<i32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummaryJson {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_mode_details: Option<StreamModeDetailsJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_creation_timestamp: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerJson {
    consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    consumer_arn: String,
    consumer_status: String,
    consumer_creation_timestamp: f64,
}

impl From<&Consumer> for ConsumerJson {
    fn from(consumer: &Consumer) -> Self {
        Self {
            consumer_name: consumer.consumer_name.clone(),
            consumer_arn: consumer.consumer_arn.clone(),
            consumer_status: consumer.consumer_status.to_string(),
            consumer_creation_timestamp: seconds(consumer.consumer_creation_timestamp),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerDescriptionJson {
    consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    consumer_arn: String,
    consumer_status: String,
    consumer_creation_timestamp: f64,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagJson {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResultEntryJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

/// A PutRecords entry's `ErrorCode` as AWS's JSON spells it: the two codes AWS uses here are
/// `ProvisionedThroughputExceededException` and `InternalFailure`, without the suffix on the
/// latter (docs/protocol.md section 4).
fn put_records_error_code(code: ErrorCode) -> String {
    match code {
        ErrorCode::InternalFailure => "InternalFailure".to_owned(),
        other => other.exception_name().to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Operation outputs
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    shard_id: String,
    sequence_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_type: Option<String>,
}

pub fn put_record(response: &PutRecordResponse) -> PutRecordOutput {
    PutRecordOutput {
        shard_id: response.shard_id.clone(),
        sequence_number: response.sequence_number.clone(),
        encryption_type: response.encryption_type.map(name),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsOutput {
    failed_record_count: i32,
    records: Vec<PutRecordsResultEntryJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_type: Option<String>,
}

pub fn put_records(response: &PutRecordsResponse) -> PutRecordsOutput {
    PutRecordsOutput {
        failed_record_count: response.failed_record_count,
        records: response
            .records
            .iter()
            .map(|entry| PutRecordsResultEntryJson {
                sequence_number: entry.sequence_number.clone(),
                shard_id: entry.shard_id.clone(),
                error_code: entry.error_code.map(put_records_error_code),
                error_message: entry.error_message.clone(),
            })
            .collect(),
        encryption_type: response.encryption_type.map(name),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorOutput {
    shard_iterator: String,
}

pub fn get_shard_iterator(response: &GetShardIteratorResponse) -> GetShardIteratorOutput {
    GetShardIteratorOutput { shard_iterator: response.shard_iterator.clone() }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    records: Vec<RecordJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_shard_iterator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    millis_behind_latest: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    child_shards: Option<Vec<ChildShardJson>>,
}

pub fn get_records(response: &GetRecordsResponse) -> GetRecordsOutput {
    GetRecordsOutput {
        records: response.records.iter().map(RecordJson::from).collect(),
        next_shard_iterator: response.next_shard_iterator.clone(),
        millis_behind_latest: response.millis_behind_latest,
        child_shards: child_shards(&response.child_shards),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamOutput {
    stream_description: StreamDescriptionJson,
}

pub fn describe_stream(response: &DescribeStreamResponse) -> DescribeStreamOutput {
    let description = &response.stream_description;
    DescribeStreamOutput {
        stream_description: StreamDescriptionJson {
            stream_name: description.stream_name.clone(),
            stream_arn: description.stream_arn.clone(),
            stream_status: description.stream_status.to_string(),
            stream_mode_details: stream_mode_details(description.stream_mode),
            shards: description.shards.iter().map(ShardJson::from).collect(),
            has_more_shards: description.has_more_shards,
            retention_period_hours: description.retention_period_hours,
            stream_creation_timestamp: seconds(description.stream_creation_timestamp),
            enhanced_monitoring: enhanced_monitoring(&description.enhanced_monitoring),
            encryption_type: description.encryption_type.map(name),
            key_id: description.key_id.clone(),
        },
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryOutput {
    stream_description_summary: StreamDescriptionSummaryJson,
}

pub fn describe_stream_summary(response: &DescribeStreamSummaryResponse) -> DescribeStreamSummaryOutput {
    let summary = &response.stream_description_summary;
    DescribeStreamSummaryOutput {
        stream_description_summary: StreamDescriptionSummaryJson {
            stream_name: summary.stream_name.clone(),
            stream_arn: summary.stream_arn.clone(),
            stream_status: summary.stream_status.to_string(),
            stream_mode_details: stream_mode_details(summary.stream_mode),
            retention_period_hours: summary.retention_period_hours,
            stream_creation_timestamp: seconds(summary.stream_creation_timestamp),
            enhanced_monitoring: enhanced_monitoring(&summary.enhanced_monitoring),
            encryption_type: summary.encryption_type.map(name),
            key_id: summary.key_id.clone(),
            open_shard_count: summary.open_shard_count,
            consumer_count: summary.consumer_count,
            max_record_size_in_kib: summary.max_record_size_in_kib,
        },
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsOutput {
    stream_names: Vec<String>,
    has_more_streams: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
    stream_summaries: Vec<StreamSummaryJson>,
}

pub fn list_streams(response: &ListStreamsResponse) -> ListStreamsOutput {
    ListStreamsOutput {
        stream_names: response.stream_names.clone(),
        has_more_streams: response.has_more_streams,
        next_token: response.next_token.clone(),
        stream_summaries: response
            .stream_summaries
            .iter()
            .map(|summary| StreamSummaryJson {
                stream_name: summary.stream_name.clone(),
                stream_arn: summary.stream_arn.clone(),
                stream_status: summary.stream_status.to_string(),
                stream_mode_details: stream_mode_details(summary.stream_mode),
                stream_creation_timestamp: summary.stream_creation_timestamp.map(seconds),
            })
            .collect(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsOutput {
    shards: Vec<ShardJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub fn list_shards(response: &ListShardsResponse) -> ListShardsOutput {
    ListShardsOutput {
        shards: response.shards.iter().map(ShardJson::from).collect(),
        next_token: response.next_token.clone(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamOutput {
    tags: Vec<TagJson>,
    has_more_tags: bool,
}

pub fn list_tags_for_stream(response: &ListTagsForStreamResponse) -> ListTagsForStreamOutput {
    ListTagsForStreamOutput {
        tags: response.tags.iter().map(|tag| TagJson { key: tag.key.clone(), value: tag.value.clone() }).collect(),
        has_more_tags: response.has_more_tags,
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeLimitsOutput {
    shard_limit: i32,
    open_shard_count: i32,
    on_demand_stream_count: i32,
    on_demand_stream_count_limit: i32,
}

pub fn describe_limits(response: &DescribeLimitsResponse) -> DescribeLimitsOutput {
    DescribeLimitsOutput {
        shard_limit: response.shard_limit,
        open_shard_count: response.open_shard_count,
        on_demand_stream_count: response.on_demand_stream_count,
        on_demand_stream_count_limit: response.on_demand_stream_count_limit,
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerOutput {
    consumer: ConsumerJson,
}

pub fn register_stream_consumer(response: &RegisterStreamConsumerResponse) -> RegisterStreamConsumerOutput {
    RegisterStreamConsumerOutput { consumer: (&response.consumer).into() }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamConsumerOutput {
    consumer_description: ConsumerDescriptionJson,
}

pub fn describe_stream_consumer(response: &DescribeStreamConsumerResponse) -> DescribeStreamConsumerOutput {
    let description = &response.consumer_description;
    DescribeStreamConsumerOutput {
        consumer_description: ConsumerDescriptionJson {
            consumer_name: description.consumer_name.clone(),
            consumer_arn: description.consumer_arn.clone(),
            consumer_status: description.consumer_status.to_string(),
            consumer_creation_timestamp: seconds(description.consumer_creation_timestamp),
            stream_arn: description.stream_arn.clone(),
        },
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamConsumersOutput {
    consumers: Vec<ConsumerJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub fn list_stream_consumers(response: &ListStreamConsumersResponse) -> ListStreamConsumersOutput {
    ListStreamConsumersOutput {
        consumers: response.consumers.iter().map(ConsumerJson::from).collect(),
        next_token: response.next_token.clone(),
    }
}

/// One event of a subscription, as botocore's event stream yields it:
/// `{"SubscribeToShardEvent": {...}}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEventOutput {
    subscribe_to_shard_event: SubscribeToShardEventJson,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEventJson {
    records: Vec<RecordJson>,
    continuation_sequence_number: String,
    millis_behind_latest: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    child_shards: Option<Vec<ChildShardJson>>,
}

pub fn subscribe_to_shard_event(event: &SubscribeToShardEvent) -> SubscribeToShardEventOutput {
    SubscribeToShardEventOutput {
        subscribe_to_shard_event: SubscribeToShardEventJson {
            records: event.records.iter().map(RecordJson::from).collect(),
            continuation_sequence_number: event.continuation_sequence_number.clone(),
            millis_behind_latest: event.millis_behind_latest,
            child_shards: child_shards(&event.child_shards),
        },
    }
}

#[cfg(test)]
mod tests;

/// `aws kinesis update-shard-count` output.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    pub current_shard_count: i32,
    pub target_shard_count: i32,
    #[serde(rename = "StreamARN", skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

pub fn update_shard_count(response: &UpdateShardCountResponse) -> UpdateShardCountOutput {
    UpdateShardCountOutput {
        stream_name: response.stream_name.clone(),
        current_shard_count: response.current_shard_count,
        target_shard_count: response.target_shard_count,
        stream_arn: response.stream_arn.clone(),
    }
}
