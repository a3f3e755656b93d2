//! The Kinesis operations of the HTTP API: checked request documents to [`model`] values,
//! the call on the [`Core`] that accepted the connection, and the result back to a document
//! with AWS's member names.
//!
//! SubscribeToShard is not here: its response is a stream, see [`super::subscribe`].

use super::value::{int, list, map, text, Value};
use crate::error::{ErrorKind, ServiceError};
use crate::model::*;
use crate::node::Core;
use bytes::Bytes;
use std::rc::Rc;

type Result<T> = std::result::Result<T, ServiceError>;

/// Every operation the HTTP API serves. Any other `X-Amz-Target` is UnknownOperationException,
/// as AWS answers an operation it does not know. `scripts/kinesis-model.py` extracts the
/// request shapes of exactly these.
pub const OPERATIONS: [&str; 31] = [
    "AddTagsToStream",
    "CreateStream",
    "DecreaseStreamRetentionPeriod",
    "DeleteStream",
    "DeregisterStreamConsumer",
    "DescribeAccountSettings",
    "DescribeLimits",
    "DescribeStream",
    "DescribeStreamConsumer",
    "DescribeStreamSummary",
    "DisableEnhancedMonitoring",
    "EnableEnhancedMonitoring",
    "GetRecords",
    "GetShardIterator",
    "IncreaseStreamRetentionPeriod",
    "ListShards",
    "ListStreamConsumers",
    "ListStreams",
    "ListTagsForResource",
    "ListTagsForStream",
    "MergeShards",
    "PutRecord",
    "PutRecords",
    "RegisterStreamConsumer",
    "RemoveTagsFromStream",
    "SplitShard",
    "SubscribeToShard",
    "TagResource",
    "UntagResource",
    "UpdateShardCount",
    "UpdateStreamMode",
];

// ---------------------------------------------------------------------------------------------
// Reading a checked request. The shape checker has already refused wrong types and missing
// required members, so these only pick the values out; `required` still answers
// ValidationException rather than trusting that.

fn text_of(request: &Value, name: &str) -> Option<String> {
    match request.get(name) {
        Some(Value::Text(value)) => Some(value.clone()),
        _ => None,
    }
}

fn required(request: &Value, name: &str) -> Result<String> {
    text_of(request, name).ok_or_else(|| null_member(name))
}

fn null_member(name: &str) -> ServiceError {
    let mut chars = name.chars();
    let path: String = chars.next().map(|c| c.to_ascii_lowercase()).into_iter().chain(chars).collect();
    ServiceError::validation(format!(
        "1 validation error detected: Value null at '{path}' failed to satisfy constraint: Member must not be null"
    ))
}

fn int_of(request: &Value, name: &str) -> Option<i64> {
    match request.get(name) {
        Some(Value::Int(value)) => Some(*value),
        _ => None,
    }
}

/// An integer member as the service's `u32`: the model's bounds already hold; a negative value
/// of an unbounded member (RetentionPeriodHours) becomes 0, which the service refuses as out
/// of range.
fn u32_of(request: &Value, name: &str) -> Option<u32> {
    int_of(request, name).map(|value| u32::try_from(value).unwrap_or(0))
}

fn bool_of(request: &Value, name: &str) -> Option<bool> {
    match request.get(name) {
        Some(Value::Bool(value)) => Some(*value),
        _ => None,
    }
}

fn blob_of(request: &Value, name: &str) -> Option<Bytes> {
    match request.get(name) {
        Some(Value::Blob(value)) => Some(value.clone()),
        _ => None,
    }
}

fn timestamp_of(request: &Value, name: &str) -> Option<i64> {
    match request.get(name) {
        Some(Value::Timestamp(ms)) => Some(*ms),
        _ => None,
    }
}

fn items<'v>(request: &'v Value, name: &str) -> &'v [Value] {
    match request.get(name) {
        Some(Value::List(items)) => items,
        _ => &[],
    }
}

fn strings(request: &Value, name: &str) -> Vec<String> {
    items(request, name)
        .iter()
        .filter_map(|item| match item {
            Value::Text(text) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// A `TagMap` (`{"key": "value"}`) as tags.
fn tag_map(request: &Value, name: &str) -> Vec<Tag> {
    match request.get(name) {
        Some(Value::Map(entries)) => entries
            .iter()
            .map(|(key, value)| Tag {
                key: key.clone(),
                value: match value {
                    Value::Text(value) => Some(value.clone()),
                    _ => None,
                },
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn stream_ref(request: &Value) -> StreamRef {
    StreamRef { stream_name: text_of(request, "StreamName"), stream_arn: text_of(request, "StreamARN") }
}

fn consumer_ref(request: &Value) -> ConsumerRef {
    ConsumerRef {
        stream_arn: text_of(request, "StreamARN"),
        consumer_name: text_of(request, "ConsumerName"),
        consumer_arn: text_of(request, "ConsumerARN"),
    }
}

fn stream_mode_in(text: &str) -> Result<StreamMode> {
    match text {
        "PROVISIONED" => Ok(StreamMode::Provisioned),
        "ON_DEMAND" => Ok(StreamMode::OnDemand),
        other => Err(ServiceError::validation(format!("Unknown StreamMode {other}"))),
    }
}

pub fn iterator_type_in(text: &str) -> Result<ShardIteratorType> {
    Ok(match text {
        "AT_SEQUENCE_NUMBER" => ShardIteratorType::AtSequenceNumber,
        "AFTER_SEQUENCE_NUMBER" => ShardIteratorType::AfterSequenceNumber,
        "TRIM_HORIZON" => ShardIteratorType::TrimHorizon,
        "LATEST" => ShardIteratorType::Latest,
        "AT_TIMESTAMP" => ShardIteratorType::AtTimestamp,
        other => return Err(ServiceError::validation(format!("Unknown ShardIteratorType {other}"))),
    })
}

fn shard_filter_in(filter: &Value) -> Result<ShardFilter> {
    let filter_type = match required(filter, "Type")?.as_str() {
        "AFTER_SHARD_ID" => ShardFilterType::AfterShardId,
        "AT_TRIM_HORIZON" => ShardFilterType::AtTrimHorizon,
        "FROM_TRIM_HORIZON" => ShardFilterType::FromTrimHorizon,
        "AT_LATEST" => ShardFilterType::AtLatest,
        "AT_TIMESTAMP" => ShardFilterType::AtTimestamp,
        "FROM_TIMESTAMP" => ShardFilterType::FromTimestamp,
        other => return Err(ServiceError::validation(format!("Unknown ShardFilterType {other}"))),
    };
    Ok(ShardFilter {
        filter_type,
        shard_id: text_of(filter, "ShardId"),
        timestamp_ms: timestamp_of(filter, "Timestamp"),
    })
}

/// The SubscribeToShard request.
pub fn subscribe_request(request: &Value) -> Result<SubscribeToShard> {
    let position = request.get("StartingPosition").ok_or_else(|| null_member("StartingPosition"))?;
    Ok(SubscribeToShard {
        consumer_arn: required(request, "ConsumerARN")?,
        shard_id: required(request, "ShardId")?,
        starting_position: StartingPosition {
            position_type: iterator_type_in(&required(position, "Type")?)?,
            sequence_number: text_of(position, "SequenceNumber"),
            timestamp_ms: timestamp_of(position, "Timestamp"),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Writing results.

fn empty() -> Value {
    Value::Map(Vec::new())
}

fn stream_status_out(status: StreamStatus) -> Option<Value> {
    text(match status {
        StreamStatus::Creating => "CREATING",
        StreamStatus::Deleting => "DELETING",
        StreamStatus::Active => "ACTIVE",
        StreamStatus::Updating => "UPDATING",
    })
}

fn stream_mode_details(mode: StreamMode) -> Option<Value> {
    let mode = match mode {
        StreamMode::Provisioned => "PROVISIONED",
        StreamMode::OnDemand => "ON_DEMAND",
    };
    Some(map([("StreamMode", text(mode))]))
}

fn consumer_status_out(status: ConsumerStatus) -> Option<Value> {
    text(match status {
        ConsumerStatus::Creating => "CREATING",
        ConsumerStatus::Deleting => "DELETING",
        ConsumerStatus::Active => "ACTIVE",
    })
}

fn timestamp(ms: i64) -> Option<Value> {
    Some(Value::Timestamp(ms))
}

fn string_list(values: &[String]) -> Option<Value> {
    list(values, |value| Value::Text(value.clone()))
}

fn enhanced_monitoring(metrics: &[String]) -> Option<Value> {
    Some(Value::List(vec![map([("ShardLevelMetrics", string_list(metrics))])]))
}

fn hash_key_range_out(range: &HashKeyRange) -> Option<Value> {
    Some(map([
        ("StartingHashKey", text(range.starting_hash_key.clone())),
        ("EndingHashKey", text(range.ending_hash_key.clone())),
    ]))
}

fn shard_out(shard: &Shard) -> Value {
    map([
        ("ShardId", text(shard.shard_id.clone())),
        ("ParentShardId", shard.parent_shard_id.clone().map(Value::Text)),
        ("AdjacentParentShardId", shard.adjacent_parent_shard_id.clone().map(Value::Text)),
        ("HashKeyRange", hash_key_range_out(&shard.hash_key_range)),
        (
            "SequenceNumberRange",
            Some(map([
                ("StartingSequenceNumber", text(shard.starting_sequence_number.clone())),
                ("EndingSequenceNumber", shard.ending_sequence_number.clone().map(Value::Text)),
            ])),
        ),
    ])
}

fn child_shards_out(children: &[ChildShard]) -> Option<Value> {
    if children.is_empty() {
        return None;
    }
    list(children, |child| {
        map([
            ("ShardId", text(child.shard_id.clone())),
            ("ParentShards", string_list(&child.parent_shards)),
            ("HashKeyRange", hash_key_range_out(&child.hash_key_range)),
        ])
    })
}

pub fn records_out(records: &[Record]) -> Option<Value> {
    list(records, |record| {
        map([
            ("SequenceNumber", text(record.sequence_number.clone())),
            ("ApproximateArrivalTimestamp", timestamp(record.approximate_arrival_timestamp_ms)),
            ("Data", Some(Value::Blob(record.data.clone()))),
            ("PartitionKey", text(record.partition_key.clone())),
        ])
    })
}

/// A SubscribeToShardEvent's payload.
pub fn event_out(event: &SubscribeToShardEvent) -> Value {
    map([
        ("Records", records_out(&event.records)),
        ("ContinuationSequenceNumber", text(event.continuation_sequence_number.clone())),
        ("MillisBehindLatest", int(event.millis_behind_latest)),
        ("ChildShards", child_shards_out(&event.child_shards)),
    ])
}

fn consumer_out(consumer: &Consumer, with_stream_arn: bool) -> Value {
    map([
        ("ConsumerName", text(consumer.consumer_name.clone())),
        ("ConsumerARN", text(consumer.consumer_arn.clone())),
        ("ConsumerStatus", consumer_status_out(consumer.consumer_status)),
        ("ConsumerCreationTimestamp", timestamp(consumer.consumer_creation_timestamp_ms)),
        ("StreamARN", with_stream_arn.then(|| Value::Text(consumer.stream_arn.clone()))),
    ])
}

fn tags_out(tags: &[Tag]) -> Option<Value> {
    list(tags, |tag| map([("Key", text(tag.key.clone())), ("Value", tag.value.clone().map(Value::Text))]))
}

fn monitoring_out(output: EnhancedMonitoringOutput) -> Value {
    map([
        ("StreamName", text(output.stream_name)),
        ("CurrentShardLevelMetrics", string_list(&output.current_shard_level_metrics)),
        ("DesiredShardLevelMetrics", string_list(&output.desired_shard_level_metrics)),
        ("StreamARN", text(output.stream_arn)),
    ])
}

/// The per-record `ErrorCode` of PutRecords: AWS uses exactly these two.
fn put_error_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
        _ => "InternalFailure",
    }
}

/// Runs `operation` (already checked against the model) on `core`.
pub async fn call(core: &Rc<Core>, operation: &str, request: Value) -> Result<Value> {
    let r = &request;
    Ok(match operation {
        "CreateStream" => {
            let mode = match r.get("StreamModeDetails") {
                Some(details) => Some(stream_mode_in(&required(details, "StreamMode")?)?),
                None => None,
            };
            core.create_stream(CreateStream {
                stream_name: required(r, "StreamName")?,
                shard_count: u32_of(r, "ShardCount"),
                stream_mode: mode,
                tags: tag_map(r, "Tags"),
            })
            .await?;
            empty()
        }
        "DeleteStream" => {
            core.delete_stream(DeleteStream {
                stream: stream_ref(r),
                enforce_consumer_deletion: bool_of(r, "EnforceConsumerDeletion").unwrap_or(false),
            })
            .await?;
            empty()
        }
        "DescribeStream" => {
            let description = core.describe_stream(DescribeStream {
                stream: stream_ref(r),
                limit: u32_of(r, "Limit"),
                exclusive_start_shard_id: text_of(r, "ExclusiveStartShardId"),
            })?;
            map([(
                "StreamDescription",
                Some(map([
                    ("StreamName", text(description.stream_name)),
                    ("StreamARN", text(description.stream_arn)),
                    ("StreamStatus", stream_status_out(description.stream_status)),
                    ("StreamModeDetails", stream_mode_details(description.stream_mode)),
                    ("Shards", list(&description.shards, shard_out)),
                    ("HasMoreShards", Some(Value::Bool(description.has_more_shards))),
                    ("RetentionPeriodHours", int(description.retention_period_hours)),
                    ("StreamCreationTimestamp", timestamp(description.stream_creation_timestamp_ms)),
                    ("EnhancedMonitoring", enhanced_monitoring(&description.shard_level_metrics)),
                    ("EncryptionType", text("NONE")),
                ])),
            )])
        }
        "DescribeStreamSummary" => {
            let summary = core.describe_stream_summary(stream_ref(r))?;
            map([(
                "StreamDescriptionSummary",
                Some(map([
                    ("StreamName", text(summary.stream_name)),
                    ("StreamARN", text(summary.stream_arn)),
                    ("StreamStatus", stream_status_out(summary.stream_status)),
                    ("StreamModeDetails", stream_mode_details(summary.stream_mode)),
                    ("RetentionPeriodHours", int(summary.retention_period_hours)),
                    ("StreamCreationTimestamp", timestamp(summary.stream_creation_timestamp_ms)),
                    ("EnhancedMonitoring", enhanced_monitoring(&summary.shard_level_metrics)),
                    ("EncryptionType", text("NONE")),
                    ("OpenShardCount", int(summary.open_shard_count)),
                    ("ConsumerCount", int(summary.consumer_count)),
                    // Kinesis' default record size limit, which is Sluice's only one for now.
                    ("MaxRecordSizeInKiB", int(1024)),
                ])),
            )])
        }
        "ListStreams" => {
            let output = core.list_streams(ListStreams {
                limit: u32_of(r, "Limit"),
                exclusive_start_stream_name: text_of(r, "ExclusiveStartStreamName"),
                next_token: text_of(r, "NextToken"),
            })?;
            map([
                ("StreamNames", string_list(&output.stream_names)),
                ("HasMoreStreams", Some(Value::Bool(output.has_more_streams))),
                ("NextToken", output.next_token.map(Value::Text)),
                (
                    "StreamSummaries",
                    list(&output.stream_summaries, |summary| {
                        map([
                            ("StreamName", text(summary.stream_name.clone())),
                            ("StreamARN", text(summary.stream_arn.clone())),
                            ("StreamStatus", stream_status_out(summary.stream_status)),
                            ("StreamModeDetails", stream_mode_details(summary.stream_mode)),
                            ("StreamCreationTimestamp", timestamp(summary.stream_creation_timestamp_ms)),
                        ])
                    }),
                ),
            ])
        }
        "ListShards" => {
            let output = core.list_shards(ListShards {
                stream: stream_ref(r),
                next_token: text_of(r, "NextToken"),
                exclusive_start_shard_id: text_of(r, "ExclusiveStartShardId"),
                max_results: u32_of(r, "MaxResults"),
                stream_creation_timestamp_ms: timestamp_of(r, "StreamCreationTimestamp"),
                shard_filter: r.get("ShardFilter").map(shard_filter_in).transpose()?,
            })?;
            map([("Shards", list(&output.shards, shard_out)), ("NextToken", output.next_token.map(Value::Text))])
        }
        "PutRecord" => {
            let output = core
                .put_record(PutRecord {
                    stream: stream_ref(r),
                    entry: PutRecordsEntry {
                        data: blob_of(r, "Data").unwrap_or_default(),
                        partition_key: required(r, "PartitionKey")?,
                        explicit_hash_key: text_of(r, "ExplicitHashKey"),
                    },
                    sequence_number_for_ordering: text_of(r, "SequenceNumberForOrdering"),
                })
                .await?;
            map([
                ("ShardId", text(output.shard_id)),
                ("SequenceNumber", text(output.sequence_number)),
                ("EncryptionType", text("NONE")),
            ])
        }
        "PutRecords" => {
            let records = items(r, "Records")
                .iter()
                .enumerate()
                .map(|(i, entry)| {
                    Ok(PutRecordsEntry {
                        data: blob_of(entry, "Data").unwrap_or_default(),
                        partition_key: text_of(entry, "PartitionKey").ok_or_else(|| {
                            ServiceError::validation(format!(
                                "1 validation error detected: Value null at 'records.{}.member.partitionKey' failed to satisfy constraint: Member must not be null",
                                i + 1
                            ))
                        })?,
                        explicit_hash_key: text_of(entry, "ExplicitHashKey"),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let output = core.put_records(PutRecords { stream: stream_ref(r), records }).await?;
            map([
                ("FailedRecordCount", int(output.failed_record_count)),
                (
                    "Records",
                    list(&output.records, |result| match result {
                        Ok(put) => map([
                            ("SequenceNumber", text(put.sequence_number.clone())),
                            ("ShardId", text(put.shard_id.clone())),
                        ]),
                        Err(error) => map([
                            ("ErrorCode", text(put_error_code(error.kind))),
                            ("ErrorMessage", text(error.message.clone())),
                        ]),
                    }),
                ),
                ("EncryptionType", text("NONE")),
            ])
        }
        "GetShardIterator" => {
            let iterator = core
                .get_shard_iterator(GetShardIterator {
                    stream: stream_ref(r),
                    shard_id: required(r, "ShardId")?,
                    shard_iterator_type: text_of(r, "ShardIteratorType").map(|t| iterator_type_in(&t)).transpose()?,
                    starting_sequence_number: text_of(r, "StartingSequenceNumber"),
                    timestamp_ms: timestamp_of(r, "Timestamp"),
                })
                .await?;
            map([("ShardIterator", text(iterator))])
        }
        "GetRecords" => {
            let output = core
                .get_records(GetRecords { shard_iterator: required(r, "ShardIterator")?, limit: u32_of(r, "Limit") })
                .await?;
            map([
                ("Records", records_out(&output.records)),
                ("NextShardIterator", output.next_shard_iterator.map(Value::Text)),
                ("MillisBehindLatest", int(output.millis_behind_latest)),
                ("ChildShards", child_shards_out(&output.child_shards)),
            ])
        }
        "IncreaseStreamRetentionPeriod" | "DecreaseStreamRetentionPeriod" => {
            let request =
                ChangeRetention { stream: stream_ref(r), retention_period_hours: u32_of(r, "RetentionPeriodHours") };
            core.change_retention(request, operation == "IncreaseStreamRetentionPeriod").await?;
            empty()
        }
        "AddTagsToStream" => {
            core.add_tags(AddTagsToStream { stream: stream_ref(r), tags: tag_map(r, "Tags") }).await?;
            empty()
        }
        "RemoveTagsFromStream" => {
            core.remove_tags(RemoveTagsFromStream { stream: stream_ref(r), tag_keys: strings(r, "TagKeys") }).await?;
            empty()
        }
        "ListTagsForStream" => {
            let output = core.list_tags(ListTagsForStream {
                stream: stream_ref(r),
                exclusive_start_tag_key: text_of(r, "ExclusiveStartTagKey"),
                limit: u32_of(r, "Limit"),
            })?;
            map([("Tags", tags_out(&output.tags)), ("HasMoreTags", Some(Value::Bool(output.has_more_tags)))])
        }
        "DescribeLimits" => {
            let output = core.describe_limits();
            map([
                ("ShardLimit", int(output.shard_limit)),
                ("OpenShardCount", int(output.open_shard_count)),
                ("OnDemandStreamCount", int(output.on_demand_stream_count)),
                ("OnDemandStreamCountLimit", int(output.on_demand_stream_count_limit)),
            ])
        }
        "RegisterStreamConsumer" => {
            let consumer = core
                .register_consumer_tagged(required(r, "StreamARN")?, required(r, "ConsumerName")?, tag_map(r, "Tags"))
                .await?;
            map([("Consumer", Some(consumer_out(&consumer, false)))])
        }
        "DeregisterStreamConsumer" => {
            core.deregister_consumer(consumer_ref(r)).await?;
            empty()
        }
        "DescribeStreamConsumer" => {
            let consumer = core.describe_consumer(consumer_ref(r))?;
            map([("ConsumerDescription", Some(consumer_out(&consumer, true)))])
        }
        "ListStreamConsumers" => {
            let output = core.list_consumers(ListStreamConsumers {
                stream_arn: required(r, "StreamARN")?,
                next_token: text_of(r, "NextToken"),
                max_results: u32_of(r, "MaxResults"),
            })?;
            map([
                ("Consumers", list(&output.consumers, |consumer| consumer_out(consumer, false))),
                ("NextToken", output.next_token.map(Value::Text)),
            ])
        }
        "TagResource" => {
            core.tag_resource(TagResource { resource_arn: required(r, "ResourceARN")?, tags: tag_map(r, "Tags") })
                .await?;
            empty()
        }
        "UntagResource" => {
            core.untag_resource(UntagResource {
                resource_arn: required(r, "ResourceARN")?,
                tag_keys: strings(r, "TagKeys"),
            })
            .await?;
            empty()
        }
        "ListTagsForResource" => {
            let tags = core.list_tags_for_resource(&required(r, "ResourceARN")?)?;
            map([("Tags", tags_out(&tags))])
        }
        "EnableEnhancedMonitoring" | "DisableEnhancedMonitoring" => {
            let request =
                EnhancedMonitoring { stream: stream_ref(r), shard_level_metrics: strings(r, "ShardLevelMetrics") };
            monitoring_out(core.set_enhanced_monitoring(request, operation == "EnableEnhancedMonitoring").await?)
        }
        "UpdateStreamMode" => {
            let details = r.get("StreamModeDetails").ok_or_else(|| null_member("StreamModeDetails"))?;
            core.update_stream_mode(UpdateStreamMode {
                stream_arn: required(r, "StreamARN")?,
                stream_mode: stream_mode_in(&required(details, "StreamMode")?)?,
            })
            .await?;
            empty()
        }
        "SplitShard" => {
            core.split_shard(stream_ref(r), required(r, "ShardToSplit")?, required(r, "NewStartingHashKey")?).await?;
            empty()
        }
        "MergeShards" => {
            core.merge_shards(stream_ref(r), required(r, "ShardToMerge")?, required(r, "AdjacentShardToMerge")?)
                .await?;
            empty()
        }
        "UpdateShardCount" => {
            let target = u32_of(r, "TargetShardCount").ok_or_else(|| null_member("TargetShardCount"))?;
            let output = core.update_shard_count(stream_ref(r), target, &required(r, "ScalingType")?).await?;
            map([
                ("StreamName", text(output.stream_name)),
                ("CurrentShardCount", int(output.current_shard_count)),
                ("TargetShardCount", int(output.target_shard_count)),
                ("StreamARN", text(output.stream_arn)),
            ])
        }
        "DescribeAccountSettings" => {
            let settings = core.describe_account_settings();
            let status = if settings.minimum_throughput_billing_commitment_enabled { "ENABLED" } else { "DISABLED" };
            map([("MinimumThroughputBillingCommitment", Some(map([("Status", text(status))])))])
        }
        other => {
            return Err(ServiceError::new(ErrorKind::UnknownOperation, format!("Unknown operation {other}")));
        }
    })
}
