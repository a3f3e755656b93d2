//! Responses: [`encode_response`] and its siblings (the server's direction) and
//! [`decode_response`] (the client's).

use super::convert::{
    error_code, error_kind, hash_key_from_wire, hash_key_to_wire, own_sequence_to_wire, sequence_from_wire, WireEnum,
};
use super::request::{metrics, strings};
use super::DecodeError;
use crate::flatbuffers::{FlatBufferBuilder, ForwardsUOffset, Vector, WIPOffset};
use crate::frame::RECORD_FRAMING_BYTES_MAX;
use crate::{create_bytes, wire, FrameError, ResponseBodyRef, ResponseBodyTable};
use bytes::Bytes;
use sluice_model::*;

type Fbb = FlatBufferBuilder<'static>;
type Offsets<T> = WIPOffset<Vector<'static, ForwardsUOffset<T>>>;

// ---------------------------------------------------------------------------------------------
// Encoding.

fn text(fbb: &mut Fbb, value: &str) -> Option<WIPOffset<&'static str>> {
    Some(fbb.create_string(value))
}

fn optional_text(fbb: &mut Fbb, value: Option<&str>) -> Option<WIPOffset<&'static str>> {
    value.map(|value| fbb.create_string(value))
}

fn finish<T: ResponseBodyTable>(fbb: &mut Fbb, correlation_id: u64, body: WIPOffset<T>) -> Result<&[u8], FrameError> {
    crate::encode_response(fbb, correlation_id, body)
}

/// A builder capacity that holds `response` without growing: records are most of any large
/// answer.
pub fn capacity_for(records: &[Record]) -> usize {
    const ENVELOPE_BYTES: usize = 1024;
    let bytes: usize = records
        .iter()
        .map(|record| {
            record.data.len() + record.partition_key.as_ref().map_or(0, String::len) + RECORD_FRAMING_BYTES_MAX
        })
        .sum();
    ENVELOPE_BYTES + bytes
}

pub(super) fn hash_key_range(fbb: &mut Fbb, range: &HashKeyRange) -> WIPOffset<wire::HashKeyRange<'static>> {
    let (start, end) = (hash_key_to_wire(range.starting_hash_key), hash_key_to_wire(range.ending_hash_key));
    wire::HashKeyRange::create(
        fbb,
        &wire::HashKeyRangeArgs { starting_hash_key: Some(&start), ending_hash_key: Some(&end) },
    )
}

fn shard_list(fbb: &mut Fbb, shards: &[Shard]) -> Offsets<wire::Shard<'static>> {
    let tables: Vec<_> = shards
        .iter()
        .map(|shard| {
            let shard_id = text(fbb, shard.shard_id.as_str());
            let parent_shard_id = optional_text(fbb, shard.parent_shard_id.as_ref().map(ShardId::as_str));
            let adjacent_parent_shard_id =
                optional_text(fbb, shard.adjacent_parent_shard_id.as_ref().map(ShardId::as_str));
            let hash_key_range = Some(hash_key_range(fbb, &shard.hash_key_range));
            let range = &shard.sequence_number_range;
            let start = own_sequence_to_wire(&range.starting_sequence_number);
            let end = range.ending_sequence_number.as_ref().map(own_sequence_to_wire);
            let sequence_number_range = Some(wire::SequenceNumberRange::create(
                fbb,
                &wire::SequenceNumberRangeArgs {
                    starting_sequence_number: Some(&start),
                    ending_sequence_number: end.as_ref(),
                },
            ));
            wire::Shard::create(
                fbb,
                &wire::ShardArgs {
                    shard_id,
                    parent_shard_id,
                    adjacent_parent_shard_id,
                    hash_key_range,
                    sequence_number_range,
                },
            )
        })
        .collect();
    fbb.create_vector(&tables)
}

fn child_shard_list(fbb: &mut Fbb, children: &[ChildShard]) -> Offsets<wire::ChildShard<'static>> {
    let tables: Vec<_> = children
        .iter()
        .map(|child| {
            let shard_id = text(fbb, child.shard_id.as_str());
            let parents: Vec<_> = child.parent_shards.iter().map(|parent| fbb.create_string(parent.as_str())).collect();
            let parent_shards = Some(fbb.create_vector(&parents));
            let hash_key_range = Some(hash_key_range(fbb, &child.hash_key_range));
            wire::ChildShard::create(fbb, &wire::ChildShardArgs { shard_id, parent_shards, hash_key_range })
        })
        .collect();
    fbb.create_vector(&tables)
}

fn record_list(fbb: &mut Fbb, records: &[Record]) -> Offsets<wire::Record<'static>> {
    let tables: Vec<_> = records
        .iter()
        .map(|record| {
            let sequence_number = own_sequence_to_wire(&record.sequence_number);
            let data = Some(create_bytes(fbb, &record.data));
            let partition_key = optional_text(fbb, record.partition_key.as_deref());
            wire::Record::create(
                fbb,
                &wire::RecordArgs {
                    sequence_number: Some(&sequence_number),
                    approximate_arrival_timestamp: record.approximate_arrival_timestamp.map(Timestamp::epoch_ms),
                    data,
                    partition_key,
                    encryption_type: record.encryption_type.as_ref().map(WireEnum::to_wire),
                },
            )
        })
        .collect();
    fbb.create_vector(&tables)
}

fn enhanced_metrics(fbb: &mut Fbb, list: &[EnhancedMetrics]) -> Offsets<wire::EnhancedMetrics<'static>> {
    let tables: Vec<_> = list
        .iter()
        .map(|metrics_list| {
            let shard_level_metrics = Some(metrics(fbb, &metrics_list.shard_level_metrics));
            wire::EnhancedMetrics::create(fbb, &wire::EnhancedMetricsArgs { shard_level_metrics })
        })
        .collect();
    fbb.create_vector(&tables)
}

fn tag_list(fbb: &mut Fbb, tags: &[Tag]) -> Offsets<wire::Tag<'static>> {
    let tables: Vec<_> = tags
        .iter()
        .map(|tag| {
            let (key, value) = (text(fbb, &tag.key), optional_text(fbb, tag.value.as_deref()));
            wire::Tag::create(fbb, &wire::TagArgs { key, value })
        })
        .collect();
    fbb.create_vector(&tables)
}

fn consumer_table(fbb: &mut Fbb, consumer: &Consumer) -> WIPOffset<wire::Consumer<'static>> {
    let consumer_name = text(fbb, &consumer.consumer_name);
    let consumer_arn = text(fbb, consumer.consumer_arn.as_str());
    wire::Consumer::create(
        fbb,
        &wire::ConsumerArgs {
            consumer_name,
            consumer_arn,
            consumer_status: consumer.consumer_status.to_wire(),
            consumer_creation_timestamp: consumer.consumer_creation_timestamp.epoch_ms(),
        },
    )
}

macro_rules! empty {
    ($fbb:expr, $cid:expr, $table:ident, $args:ident) => {{
        let body = wire::$table::create($fbb, &wire::$args {});
        finish($fbb, $cid, body)
    }};
}

/// Builds `response` in `fbb` and finishes it as the answer under `correlation_id`.
pub fn encode_response<'f>(fbb: &'f mut Fbb, correlation_id: u64, response: &Response) -> Result<&'f [u8], FrameError> {
    let cid = correlation_id;
    match response {
        Response::CheckpointLease(_)
        | Response::CreateApplication(_)
        | Response::DeleteApplication(_)
        | Response::DescribeApplication(_)
        | Response::ListApplications(_)
        | Response::ListLeases(_)
        | Response::ReleaseLease(_)
        | Response::RenewLease(_)
        | Response::StealLease(_)
        | Response::TakeLease(_) => super::leases::encode_response(fbb, cid, response).expect("a lease response"),
        // Unfinished: no native tables for Kinesis queues; no native request decodes to one,
        // so this answers only a server bug, and says so.
        Response::AcknowledgeDeadLetterQueueRecords(_)
        | Response::AcknowledgeQueueRecords(_)
        | Response::CreateQueue(_)
        | Response::DeleteQueue(_)
        | Response::DescribeQueue(_)
        | Response::ListQueues(_)
        | Response::ReceiveDeadLetterQueueRecords(_)
        | Response::ReceiveQueueRecords(_)
        | Response::RestoreDeadLetterQueueRecords(_)
        | Response::UpdateDeadLetterQueueRecordsVisibility(_)
        | Response::UpdateQueue(_)
        | Response::UpdateQueueRecordsVisibility(_) => {
            encode_error(fbb, cid, &KinesisError::unknown_operation(response.operation().name()))
        }
        Response::DeleteResourcePolicy(_)
        | Response::GetResourcePolicy(_)
        | Response::PutResourcePolicy(_)
        | Response::UpdateAccountSettings(_)
        | Response::UpdateMaxRecordSize(_)
        | Response::UpdateStreamRecordDistributionStrategy(_)
        | Response::UpdateStreamWarmThroughput(_)
        | Response::StartStreamEncryption(_)
        | Response::StopStreamEncryption(_) => {
            super::settings::encode_response(fbb, cid, response).expect("a settings response")
        }
        Response::DescribeStreamRoutes(output) => super::routes::encode_response(fbb, cid, output),
        Response::AddTagsToStream(_) => empty!(fbb, cid, AddTagsToStreamResponse, AddTagsToStreamResponseArgs),
        Response::CreateStream(_) => empty!(fbb, cid, CreateStreamResponse, CreateStreamResponseArgs),
        Response::DecreaseStreamRetentionPeriod(_) => {
            empty!(fbb, cid, DecreaseStreamRetentionPeriodResponse, DecreaseStreamRetentionPeriodResponseArgs)
        }
        Response::DeleteStream(_) => empty!(fbb, cid, DeleteStreamResponse, DeleteStreamResponseArgs),
        Response::DeregisterStreamConsumer(_) => {
            empty!(fbb, cid, DeregisterStreamConsumerResponse, DeregisterStreamConsumerResponseArgs)
        }
        Response::DescribeAccountSettings(output) => {
            let commitment = output
                .minimum_throughput_billing_commitment
                .as_ref()
                .map(|commitment| super::settings::commitment_table(fbb, commitment));
            let body = wire::DescribeAccountSettingsResponse::create(
                fbb,
                &wire::DescribeAccountSettingsResponseArgs { minimum_throughput_billing_commitment: commitment },
            );
            finish(fbb, cid, body)
        }
        Response::DescribeLimits(output) => {
            let body = wire::DescribeLimitsResponse::create(
                fbb,
                &wire::DescribeLimitsResponseArgs {
                    shard_limit: output.shard_limit,
                    open_shard_count: output.open_shard_count,
                    on_demand_stream_count: output.on_demand_stream_count,
                    on_demand_stream_count_limit: output.on_demand_stream_count_limit,
                },
            );
            finish(fbb, cid, body)
        }
        Response::DescribeStream(output) => {
            let description = &output.stream_description;
            let shards = Some(shard_list(fbb, &description.shards));
            let enhanced_monitoring = Some(enhanced_metrics(fbb, &description.enhanced_monitoring));
            let stream_name = text(fbb, &description.stream_name);
            let stream_arn = text(fbb, description.stream_arn.as_str());
            let key_id = optional_text(fbb, description.key_id.as_deref());
            let table = wire::StreamDescription::create(
                fbb,
                &wire::StreamDescriptionArgs {
                    stream_name,
                    stream_arn,
                    stream_status: description.stream_status.to_wire(),
                    stream_mode: description.stream_mode_details.as_ref().map(|details| details.stream_mode.to_wire()),
                    shards,
                    has_more_shards: description.has_more_shards,
                    retention_period_hours: description.retention_period_hours,
                    stream_creation_timestamp: description.stream_creation_timestamp.epoch_ms(),
                    enhanced_monitoring,
                    encryption_type: description.encryption_type.as_ref().map(WireEnum::to_wire),
                    key_id,
                },
            );
            let body = wire::DescribeStreamResponse::create(
                fbb,
                &wire::DescribeStreamResponseArgs { stream_description: Some(table) },
            );
            finish(fbb, cid, body)
        }
        Response::DescribeStreamConsumer(output) => {
            let consumer = &output.consumer_description;
            let consumer_name = text(fbb, &consumer.consumer_name);
            let consumer_arn = text(fbb, consumer.consumer_arn.as_str());
            let stream_arn = text(fbb, consumer.stream_arn.as_str());
            let table = wire::ConsumerDescription::create(
                fbb,
                &wire::ConsumerDescriptionArgs {
                    consumer_name,
                    consumer_arn,
                    consumer_status: consumer.consumer_status.to_wire(),
                    consumer_creation_timestamp: consumer.consumer_creation_timestamp.epoch_ms(),
                    stream_arn,
                },
            );
            let body = wire::DescribeStreamConsumerResponse::create(
                fbb,
                &wire::DescribeStreamConsumerResponseArgs { consumer_description: Some(table) },
            );
            finish(fbb, cid, body)
        }
        Response::DescribeStreamSummary(output) => {
            let summary = &output.stream_description_summary;
            let enhanced_monitoring = Some(enhanced_metrics(fbb, &summary.enhanced_monitoring));
            let stream_name = text(fbb, &summary.stream_name);
            let stream_arn = text(fbb, summary.stream_arn.as_str());
            let key_id = optional_text(fbb, summary.key_id.as_deref());
            let warm_throughput =
                summary.warm_throughput.as_ref().map(|warm| super::settings::warm_throughput_table(fbb, warm));
            let table = wire::StreamDescriptionSummary::create(
                fbb,
                &wire::StreamDescriptionSummaryArgs {
                    stream_name,
                    stream_arn,
                    stream_status: summary.stream_status.to_wire(),
                    stream_mode: summary.stream_mode_details.as_ref().map(|details| details.stream_mode.to_wire()),
                    retention_period_hours: summary.retention_period_hours,
                    stream_creation_timestamp: summary.stream_creation_timestamp.epoch_ms(),
                    enhanced_monitoring,
                    encryption_type: summary.encryption_type.as_ref().map(WireEnum::to_wire),
                    key_id,
                    open_shard_count: summary.open_shard_count,
                    consumer_count: summary.consumer_count,
                    max_record_size_in_kib: summary.max_record_size_in_kib,
                    warm_throughput,
                    record_distribution_strategy: summary.record_distribution_strategy.as_ref().map(WireEnum::to_wire),
                },
            );
            let body = wire::DescribeStreamSummaryResponse::create(
                fbb,
                &wire::DescribeStreamSummaryResponseArgs { stream_description_summary: Some(table) },
            );
            finish(fbb, cid, body)
        }
        Response::DisableEnhancedMonitoring(output) => {
            let args = wire::DisableEnhancedMonitoringResponseArgs {
                stream_name: optional_text(fbb, output.stream_name.as_deref()),
                current_shard_level_metrics: Some(metrics(fbb, &output.current_shard_level_metrics)),
                desired_shard_level_metrics: Some(metrics(fbb, &output.desired_shard_level_metrics)),
                stream_arn: optional_text(fbb, output.stream_arn.as_ref().map(StreamArn::as_str)),
            };
            let body = wire::DisableEnhancedMonitoringResponse::create(fbb, &args);
            finish(fbb, cid, body)
        }
        Response::EnableEnhancedMonitoring(output) => {
            let args = wire::EnableEnhancedMonitoringResponseArgs {
                stream_name: optional_text(fbb, output.stream_name.as_deref()),
                current_shard_level_metrics: Some(metrics(fbb, &output.current_shard_level_metrics)),
                desired_shard_level_metrics: Some(metrics(fbb, &output.desired_shard_level_metrics)),
                stream_arn: optional_text(fbb, output.stream_arn.as_ref().map(StreamArn::as_str)),
            };
            let body = wire::EnableEnhancedMonitoringResponse::create(fbb, &args);
            finish(fbb, cid, body)
        }
        Response::GetRecords(output) => {
            let records = Some(record_list(fbb, &output.records));
            let next_shard_iterator = optional_text(fbb, output.next_shard_iterator.as_deref());
            let child_shards = output.child_shards.as_ref().map(|children| child_shard_list(fbb, children));
            let body = wire::GetRecordsResponse::create(
                fbb,
                &wire::GetRecordsResponseArgs {
                    records,
                    next_shard_iterator,
                    millis_behind_latest: output.millis_behind_latest,
                    child_shards,
                },
            );
            finish(fbb, cid, body)
        }
        Response::GetShardIterator(output) => {
            let shard_iterator = optional_text(fbb, output.shard_iterator.as_deref());
            let body =
                wire::GetShardIteratorResponse::create(fbb, &wire::GetShardIteratorResponseArgs { shard_iterator });
            finish(fbb, cid, body)
        }
        Response::IncreaseStreamRetentionPeriod(_) => {
            empty!(fbb, cid, IncreaseStreamRetentionPeriodResponse, IncreaseStreamRetentionPeriodResponseArgs)
        }
        Response::ListShards(output) => {
            let shards = Some(shard_list(fbb, &output.shards));
            let next_token = optional_text(fbb, output.next_token.as_deref());
            let body = wire::ListShardsResponse::create(fbb, &wire::ListShardsResponseArgs { shards, next_token });
            finish(fbb, cid, body)
        }
        Response::ListStreamConsumers(output) => {
            let consumers: Vec<_> = output.consumers.iter().map(|consumer| consumer_table(fbb, consumer)).collect();
            let consumers = Some(fbb.create_vector(&consumers));
            let next_token = optional_text(fbb, output.next_token.as_deref());
            let body = wire::ListStreamConsumersResponse::create(
                fbb,
                &wire::ListStreamConsumersResponseArgs { consumers, next_token },
            );
            finish(fbb, cid, body)
        }
        Response::ListStreams(output) => {
            let stream_names = Some(strings(fbb, &output.stream_names));
            let summaries: Vec<_> = output
                .stream_summaries
                .iter()
                .map(|summary| {
                    let stream_name = text(fbb, &summary.stream_name);
                    let stream_arn = text(fbb, summary.stream_arn.as_str());
                    wire::StreamSummary::create(
                        fbb,
                        &wire::StreamSummaryArgs {
                            stream_name,
                            stream_arn,
                            stream_status: summary.stream_status.to_wire(),
                            stream_mode: summary
                                .stream_mode_details
                                .as_ref()
                                .map(|details| details.stream_mode.to_wire()),
                            stream_creation_timestamp: summary.stream_creation_timestamp.map(Timestamp::epoch_ms),
                        },
                    )
                })
                .collect();
            let stream_summaries = Some(fbb.create_vector(&summaries));
            let next_token = optional_text(fbb, output.next_token.as_deref());
            let body = wire::ListStreamsResponse::create(
                fbb,
                &wire::ListStreamsResponseArgs {
                    stream_names,
                    has_more_streams: output.has_more_streams,
                    next_token,
                    stream_summaries,
                },
            );
            finish(fbb, cid, body)
        }
        Response::ListTagsForResource(output) => {
            let tags = Some(tag_list(fbb, &output.tags));
            let body = wire::ListTagsForResourceResponse::create(fbb, &wire::ListTagsForResourceResponseArgs { tags });
            finish(fbb, cid, body)
        }
        Response::ListTagsForStream(output) => {
            let tags = Some(tag_list(fbb, &output.tags));
            let body = wire::ListTagsForStreamResponse::create(
                fbb,
                &wire::ListTagsForStreamResponseArgs { tags, has_more_tags: output.has_more_tags },
            );
            finish(fbb, cid, body)
        }
        Response::MergeShards(_) => empty!(fbb, cid, MergeShardsResponse, MergeShardsResponseArgs),
        Response::PutRecord(output) => {
            let shard_id = text(fbb, output.shard_id.as_str());
            let sequence_number = own_sequence_to_wire(&output.sequence_number);
            let body = wire::PutRecordResponse::create(
                fbb,
                &wire::PutRecordResponseArgs {
                    shard_id,
                    sequence_number: Some(&sequence_number),
                    encryption_type: output.encryption_type.as_ref().map(WireEnum::to_wire),
                },
            );
            finish(fbb, cid, body)
        }
        Response::PutRecords(output) => {
            let entries: Vec<_> = output
                .records
                .iter()
                .map(|entry| {
                    let sequence_number = entry.sequence_number.as_ref().map(own_sequence_to_wire);
                    let shard_id = optional_text(fbb, entry.shard_id.as_ref().map(ShardId::as_str));
                    let error_message = optional_text(fbb, entry.error_message.as_deref());
                    wire::PutRecordsResultEntry::create(
                        fbb,
                        &wire::PutRecordsResultEntryArgs {
                            sequence_number: sequence_number.as_ref(),
                            shard_id,
                            error_code: entry.error_code.map(error_code),
                            error_message,
                        },
                    )
                })
                .collect();
            let records = Some(fbb.create_vector(&entries));
            let body = wire::PutRecordsResponse::create(
                fbb,
                &wire::PutRecordsResponseArgs {
                    failed_record_count: output.failed_record_count.unwrap_or_default(),
                    records,
                    encryption_type: output.encryption_type.as_ref().map(WireEnum::to_wire),
                },
            );
            finish(fbb, cid, body)
        }
        Response::RegisterStreamConsumer(output) => {
            let consumer = Some(consumer_table(fbb, &output.consumer));
            let body = wire::RegisterStreamConsumerResponse::create(
                fbb,
                &wire::RegisterStreamConsumerResponseArgs { consumer },
            );
            finish(fbb, cid, body)
        }
        Response::RemoveTagsFromStream(_) => {
            empty!(fbb, cid, RemoveTagsFromStreamResponse, RemoveTagsFromStreamResponseArgs)
        }
        Response::SplitShard(_) => empty!(fbb, cid, SplitShardResponse, SplitShardResponseArgs),
        Response::SubscribeToShard(_) => empty!(fbb, cid, SubscribeToShardResponse, SubscribeToShardResponseArgs),
        Response::TagResource(_) => empty!(fbb, cid, TagResourceResponse, TagResourceResponseArgs),
        Response::UntagResource(_) => empty!(fbb, cid, UntagResourceResponse, UntagResourceResponseArgs),
        Response::UpdateShardCount(output) => {
            let stream_name = optional_text(fbb, output.stream_name.as_deref());
            let stream_arn = optional_text(fbb, output.stream_arn.as_ref().map(StreamArn::as_str));
            let body = wire::UpdateShardCountResponse::create(
                fbb,
                &wire::UpdateShardCountResponseArgs {
                    stream_name,
                    current_shard_count: output.current_shard_count.unwrap_or_default(),
                    target_shard_count: output.target_shard_count.unwrap_or_default(),
                    stream_arn,
                },
            );
            finish(fbb, cid, body)
        }
        Response::UpdateStreamMode(_) => empty!(fbb, cid, UpdateStreamModeResponse, UpdateStreamModeResponseArgs),
    }
}

/// An error answer under `correlation_id` (0 for an error of the connection itself).
pub fn encode_error<'f>(fbb: &'f mut Fbb, correlation_id: u64, error: &KinesisError) -> Result<&'f [u8], FrameError> {
    crate::encode_error_response(fbb, correlation_id, error_code(error.kind), &error.message)
}

/// One event of the subscription under `correlation_id`.
pub fn encode_event<'f>(
    fbb: &'f mut Fbb,
    correlation_id: u64,
    event: &SubscribeToShardEvent,
) -> Result<&'f [u8], FrameError> {
    let records = Some(record_list(fbb, &event.records));
    let continuation = own_sequence_to_wire(&event.continuation_sequence_number);
    let child_shards = event.child_shards.as_ref().map(|children| child_shard_list(fbb, children));
    let body = wire::SubscribeToShardEvent::create(
        fbb,
        &wire::SubscribeToShardEventArgs {
            records,
            continuation_sequence_number: Some(&continuation),
            millis_behind_latest: event.millis_behind_latest,
            child_shards,
        },
    );
    finish(fbb, correlation_id, body)
}

/// The end of the subscription under `correlation_id`, after which the id is free.
pub fn encode_subscription_end(fbb: &mut Fbb, correlation_id: u64) -> Result<&[u8], FrameError> {
    empty!(fbb, correlation_id, SubscribeToShardEnd, SubscribeToShardEndArgs)
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/// What one response frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseMessage {
    /// The answer of a call, or the acceptance of a subscription (`SubscribeToShard`).
    Response(Response),
    /// The call failed; or, under a subscription's id, the subscription did.
    Error(KinesisError),
    /// One event of a subscription.
    Event(SubscribeToShardEvent),
    /// A subscription ended; its id is free.
    SubscriptionEnd,
    /// The answer of a Firehose call (`super::firehose`).
    Firehose(FirehoseResponse),
}

/// A response frame, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFrame {
    pub correlation_id: u64,
    pub message: Result<ResponseMessage, DecodeError>,
}

type Decoded<T> = Result<T, DecodeError>;

pub(super) fn required<T>(value: Option<T>, shape: &'static str, member: &'static str) -> Decoded<T> {
    value.ok_or(DecodeError::MissingMember { shape, member })
}

fn owned(value: Option<&str>) -> Option<String> {
    value.map(str::to_owned)
}

fn payload(frame: &Bytes, data: Option<Vector<'_, u8>>) -> Bytes {
    data.map_or_else(Bytes::new, |data| frame.slice_ref(data.bytes()))
}

pub(super) fn hash_key_range_of(range: Option<wire::HashKeyRange<'_>>, shape: &'static str) -> Decoded<HashKeyRange> {
    let range = required(range, shape, "hash_key_range")?;
    Ok(HashKeyRange {
        starting_hash_key: hash_key_from_wire(required(
            range.starting_hash_key(),
            "HashKeyRange",
            "starting_hash_key",
        )?),
        ending_hash_key: hash_key_from_wire(required(range.ending_hash_key(), "HashKeyRange", "ending_hash_key")?),
    })
}

fn shards_of(list: Option<Vector<'_, ForwardsUOffset<wire::Shard<'_>>>>) -> Decoded<Vec<Shard>> {
    list.into_iter()
        .flatten()
        .map(|shard| {
            let range = required(shard.sequence_number_range(), "Shard", "sequence_number_range")?;
            Ok(Shard {
                shard_id: required(shard.shard_id(), "Shard", "shard_id")?.into(),
                parent_shard_id: shard.parent_shard_id().map(ShardId::from),
                adjacent_parent_shard_id: shard.adjacent_parent_shard_id().map(ShardId::from),
                hash_key_range: hash_key_range_of(shard.hash_key_range(), "Shard")?,
                sequence_number_range: SequenceNumberRange {
                    starting_sequence_number: sequence_from_wire(required(
                        range.starting_sequence_number(),
                        "SequenceNumberRange",
                        "starting_sequence_number",
                    )?),
                    ending_sequence_number: range.ending_sequence_number().map(sequence_from_wire),
                },
            })
        })
        .collect()
}

fn children_of(list: Option<Vector<'_, ForwardsUOffset<wire::ChildShard<'_>>>>) -> Decoded<Option<Vec<ChildShard>>> {
    list.map(|children| {
        children
            .iter()
            .map(|child| {
                Ok(ChildShard {
                    shard_id: required(child.shard_id(), "ChildShard", "shard_id")?.into(),
                    parent_shards: child.parent_shards().into_iter().flatten().map(ShardId::from).collect(),
                    hash_key_range: hash_key_range_of(child.hash_key_range(), "ChildShard")?,
                })
            })
            .collect()
    })
    .transpose()
}

fn records_of(frame: &Bytes, list: Option<Vector<'_, ForwardsUOffset<wire::Record<'_>>>>) -> Decoded<Vec<Record>> {
    list.into_iter()
        .flatten()
        .map(|record| {
            Ok(Record {
                sequence_number: sequence_from_wire(required(record.sequence_number(), "Record", "sequence_number")?),
                approximate_arrival_timestamp: record.approximate_arrival_timestamp().map(Timestamp::from_epoch_ms),
                data: payload(frame, record.data()),
                partition_key: owned(record.partition_key()),
                encryption_type: record.encryption_type().map(EncryptionType::from_response),
            })
        })
        .collect()
}

fn metrics_of(list: Option<Vector<'_, wire::MetricsName>>) -> Decoded<Vec<MetricsName>> {
    Ok(list.into_iter().flatten().map(MetricsName::from_response).collect())
}

fn enhanced_of(list: Option<Vector<'_, ForwardsUOffset<wire::EnhancedMetrics<'_>>>>) -> Decoded<Vec<EnhancedMetrics>> {
    list.into_iter()
        .flatten()
        .map(|entry| Ok(EnhancedMetrics { shard_level_metrics: metrics_of(entry.shard_level_metrics())? }))
        .collect()
}

fn tags_of(list: Option<Vector<'_, ForwardsUOffset<wire::Tag<'_>>>>) -> Decoded<Vec<Tag>> {
    list.into_iter()
        .flatten()
        .map(|tag| Ok(Tag { key: required(tag.key(), "Tag", "key")?.to_owned(), value: owned(tag.value()) }))
        .collect()
}

fn consumer_of(consumer: wire::Consumer<'_>) -> Decoded<Consumer> {
    Ok(Consumer {
        consumer_name: required(consumer.consumer_name(), "Consumer", "consumer_name")?.to_owned(),
        consumer_arn: required(consumer.consumer_arn(), "Consumer", "consumer_arn")?.into(),
        consumer_status: ConsumerStatus::from_response(consumer.consumer_status()),
        consumer_creation_timestamp: Timestamp::from_epoch_ms(consumer.consumer_creation_timestamp()),
    })
}

fn mode_of(mode: Option<wire::StreamMode>) -> Decoded<Option<StreamModeDetails>> {
    Ok(mode.map(|mode| StreamModeDetails::from(StreamMode::from_response(mode))))
}

/// Decodes the response frame `frame` (a whole frame): `Ok(None)` if it is shorter than its
/// length prefix says.
pub fn decode_response(frame: &Bytes) -> Result<Option<ResponseFrame>, FrameError> {
    let Some((_, envelope)) = crate::decode_response(frame)? else { return Ok(None) };
    let correlation_id = envelope.correlation_id();
    let message = match envelope.error() {
        Some(error) => {
            Ok(ResponseMessage::Error(KinesisError::new(error_kind(error.code()), error.message().unwrap_or_default())))
        }
        None => message_of(frame, ResponseBodyRef::of(&envelope)),
    };
    Ok(Some(ResponseFrame { correlation_id, message }))
}

fn message_of(frame: &Bytes, body: ResponseBodyRef<'_>) -> Decoded<ResponseMessage> {
    if let Some(answer) = super::firehose::response_of(frame, body) {
        return answer.map(ResponseMessage::Firehose);
    }
    let response = match body {
        ResponseBodyRef::AddTagsToStream(_) => Response::AddTagsToStream(Empty {}),
        ResponseBodyRef::CreateStream(_) => Response::CreateStream(Empty {}),
        ResponseBodyRef::DecreaseStreamRetentionPeriod(_) => Response::DecreaseStreamRetentionPeriod(Empty {}),
        ResponseBodyRef::DeleteStream(_) => Response::DeleteStream(Empty {}),
        ResponseBodyRef::DeregisterStreamConsumer(_) => Response::DeregisterStreamConsumer(Empty {}),
        ResponseBodyRef::DescribeAccountSettings(t) => {
            Response::DescribeAccountSettings(DescribeAccountSettingsOutput {
                minimum_throughput_billing_commitment: super::settings::commitment_of(
                    t.minimum_throughput_billing_commitment(),
                )?,
            })
        }
        ResponseBodyRef::DescribeLimits(t) => Response::DescribeLimits(DescribeLimitsOutput {
            shard_limit: t.shard_limit(),
            open_shard_count: t.open_shard_count(),
            on_demand_stream_count: t.on_demand_stream_count(),
            on_demand_stream_count_limit: t.on_demand_stream_count_limit(),
        }),
        ResponseBodyRef::DescribeStream(t) => {
            let d = required(t.stream_description(), "DescribeStreamResponse", "stream_description")?;
            Response::DescribeStream(DescribeStreamOutput {
                stream_description: StreamDescription {
                    stream_name: required(d.stream_name(), "StreamDescription", "stream_name")?.to_owned(),
                    stream_arn: required(d.stream_arn(), "StreamDescription", "stream_arn")?.into(),
                    stream_status: StreamStatus::from_response(d.stream_status()),
                    stream_mode_details: mode_of(d.stream_mode())?,
                    shards: shards_of(d.shards())?,
                    has_more_shards: d.has_more_shards(),
                    retention_period_hours: d.retention_period_hours(),
                    stream_creation_timestamp: Timestamp::from_epoch_ms(d.stream_creation_timestamp()),
                    enhanced_monitoring: enhanced_of(d.enhanced_monitoring())?,
                    encryption_type: d.encryption_type().map(EncryptionType::from_response),
                    key_id: owned(d.key_id()),
                },
            })
        }
        ResponseBodyRef::DescribeStreamConsumer(t) => {
            let d = required(t.consumer_description(), "DescribeStreamConsumerResponse", "consumer_description")?;
            Response::DescribeStreamConsumer(DescribeStreamConsumerOutput {
                consumer_description: ConsumerDescription {
                    consumer_name: required(d.consumer_name(), "ConsumerDescription", "consumer_name")?.to_owned(),
                    consumer_arn: required(d.consumer_arn(), "ConsumerDescription", "consumer_arn")?.into(),
                    consumer_status: ConsumerStatus::from_response(d.consumer_status()),
                    consumer_creation_timestamp: Timestamp::from_epoch_ms(d.consumer_creation_timestamp()),
                    stream_arn: required(d.stream_arn(), "ConsumerDescription", "stream_arn")?.into(),
                },
            })
        }
        ResponseBodyRef::DescribeStreamSummary(t) => {
            let s = required(
                t.stream_description_summary(),
                "DescribeStreamSummaryResponse",
                "stream_description_summary",
            )?;
            Response::DescribeStreamSummary(DescribeStreamSummaryOutput {
                stream_description_summary: StreamDescriptionSummary {
                    stream_name: required(s.stream_name(), "StreamDescriptionSummary", "stream_name")?.to_owned(),
                    stream_arn: required(s.stream_arn(), "StreamDescriptionSummary", "stream_arn")?.into(),
                    stream_status: StreamStatus::from_response(s.stream_status()),
                    stream_mode_details: mode_of(s.stream_mode())?,
                    retention_period_hours: s.retention_period_hours(),
                    stream_creation_timestamp: Timestamp::from_epoch_ms(s.stream_creation_timestamp()),
                    enhanced_monitoring: enhanced_of(s.enhanced_monitoring())?,
                    encryption_type: s.encryption_type().map(EncryptionType::from_response),
                    key_id: owned(s.key_id()),
                    open_shard_count: s.open_shard_count(),
                    consumer_count: s.consumer_count(),
                    warm_throughput: s.warm_throughput().map(super::settings::warm_throughput_of),
                    max_record_size_in_kib: s.max_record_size_in_kib(),
                    record_distribution_strategy: s
                        .record_distribution_strategy()
                        .map(RecordDistributionStrategy::from_response),
                },
            })
        }
        ResponseBodyRef::DisableEnhancedMonitoring(t) => {
            Response::DisableEnhancedMonitoring(EnhancedMonitoringOutput {
                stream_name: owned(t.stream_name()),
                current_shard_level_metrics: metrics_of(t.current_shard_level_metrics())?,
                desired_shard_level_metrics: metrics_of(t.desired_shard_level_metrics())?,
                stream_arn: t.stream_arn().map(StreamArn::from),
            })
        }
        ResponseBodyRef::EnableEnhancedMonitoring(t) => Response::EnableEnhancedMonitoring(EnhancedMonitoringOutput {
            stream_name: owned(t.stream_name()),
            current_shard_level_metrics: metrics_of(t.current_shard_level_metrics())?,
            desired_shard_level_metrics: metrics_of(t.desired_shard_level_metrics())?,
            stream_arn: t.stream_arn().map(StreamArn::from),
        }),
        ResponseBodyRef::GetRecords(t) => Response::GetRecords(GetRecordsOutput {
            records: records_of(frame, t.records())?,
            next_shard_iterator: owned(t.next_shard_iterator()),
            millis_behind_latest: t.millis_behind_latest(),
            child_shards: children_of(t.child_shards())?,
        }),
        ResponseBodyRef::GetShardIterator(t) => {
            Response::GetShardIterator(GetShardIteratorOutput { shard_iterator: owned(t.shard_iterator()) })
        }
        ResponseBodyRef::IncreaseStreamRetentionPeriod(_) => Response::IncreaseStreamRetentionPeriod(Empty {}),
        ResponseBodyRef::ListShards(t) => {
            Response::ListShards(ListShardsOutput { shards: shards_of(t.shards())?, next_token: owned(t.next_token()) })
        }
        ResponseBodyRef::ListStreamConsumers(t) => Response::ListStreamConsumers(ListStreamConsumersOutput {
            consumers: t.consumers().into_iter().flatten().map(consumer_of).collect::<Decoded<_>>()?,
            next_token: owned(t.next_token()),
        }),
        ResponseBodyRef::ListStreams(t) => Response::ListStreams(ListStreamsOutput {
            stream_names: t.stream_names().into_iter().flatten().map(str::to_owned).collect(),
            has_more_streams: t.has_more_streams(),
            next_token: owned(t.next_token()),
            stream_summaries: t
                .stream_summaries()
                .into_iter()
                .flatten()
                .map(|summary| {
                    Ok(StreamSummary {
                        stream_name: required(summary.stream_name(), "StreamSummary", "stream_name")?.to_owned(),
                        stream_arn: required(summary.stream_arn(), "StreamSummary", "stream_arn")?.into(),
                        stream_status: StreamStatus::from_response(summary.stream_status()),
                        stream_mode_details: mode_of(summary.stream_mode())?,
                        stream_creation_timestamp: summary.stream_creation_timestamp().map(Timestamp::from_epoch_ms),
                    })
                })
                .collect::<Decoded<_>>()?,
        }),
        ResponseBodyRef::ListTagsForResource(t) => {
            Response::ListTagsForResource(ListTagsForResourceOutput { tags: tags_of(t.tags())? })
        }
        ResponseBodyRef::ListTagsForStream(t) => Response::ListTagsForStream(ListTagsForStreamOutput {
            tags: tags_of(t.tags())?,
            has_more_tags: t.has_more_tags(),
        }),
        ResponseBodyRef::MergeShards(_) => Response::MergeShards(Empty {}),
        ResponseBodyRef::PutRecord(t) => Response::PutRecord(PutRecordOutput {
            shard_id: required(t.shard_id(), "PutRecordResponse", "shard_id")?.into(),
            sequence_number: sequence_from_wire(required(t.sequence_number(), "PutRecordResponse", "sequence_number")?),
            encryption_type: t.encryption_type().map(EncryptionType::from_response),
        }),
        ResponseBodyRef::PutRecords(t) => Response::PutRecords(PutRecordsOutput {
            failed_record_count: Some(t.failed_record_count()),
            records: t
                .records()
                .into_iter()
                .flatten()
                .map(|entry| PutRecordsResultEntry {
                    sequence_number: entry.sequence_number().map(sequence_from_wire),
                    shard_id: entry.shard_id().map(ShardId::from),
                    error_code: entry.error_code().map(error_kind),
                    error_message: owned(entry.error_message()),
                })
                .collect(),
            encryption_type: t.encryption_type().map(EncryptionType::from_response),
        }),
        ResponseBodyRef::RegisterStreamConsumer(t) => Response::RegisterStreamConsumer(RegisterStreamConsumerOutput {
            consumer: consumer_of(required(t.consumer(), "RegisterStreamConsumerResponse", "consumer")?)?,
        }),
        ResponseBodyRef::RemoveTagsFromStream(_) => Response::RemoveTagsFromStream(Empty {}),
        ResponseBodyRef::SplitShard(_) => Response::SplitShard(Empty {}),
        ResponseBodyRef::SubscribeToShard(_) => Response::SubscribeToShard(Empty {}),
        ResponseBodyRef::SubscribeToShardEvent(t) => {
            return Ok(ResponseMessage::Event(SubscribeToShardEvent {
                records: records_of(frame, t.records())?,
                continuation_sequence_number: sequence_from_wire(required(
                    t.continuation_sequence_number(),
                    "SubscribeToShardEvent",
                    "continuation_sequence_number",
                )?),
                millis_behind_latest: t.millis_behind_latest(),
                child_shards: children_of(t.child_shards())?,
            }))
        }
        ResponseBodyRef::SubscribeToShardEnd(_) => return Ok(ResponseMessage::SubscriptionEnd),
        ResponseBodyRef::TagResource(_) => Response::TagResource(Empty {}),
        ResponseBodyRef::UntagResource(_) => Response::UntagResource(Empty {}),
        ResponseBodyRef::UpdateShardCount(t) => Response::UpdateShardCount(UpdateShardCountOutput {
            stream_name: owned(t.stream_name()),
            current_shard_count: Some(t.current_shard_count()),
            target_shard_count: Some(t.target_shard_count()),
            stream_arn: t.stream_arn().map(StreamArn::from),
        }),
        ResponseBodyRef::UpdateStreamMode(_) => Response::UpdateStreamMode(Empty {}),
        ResponseBodyRef::CreateApplication(t) => Response::CreateApplication(super::leases::description_of(
            t.application_description(),
            "CreateApplicationResponse",
        )?),
        ResponseBodyRef::DescribeApplication(t) => Response::DescribeApplication(super::leases::description_of(
            t.application_description(),
            "DescribeApplicationResponse",
        )?),
        ResponseBodyRef::DeleteApplication(_) => Response::DeleteApplication(Empty {}),
        ResponseBodyRef::ListApplications(t) => Response::ListApplications(super::leases::applications_of(t)?),
        ResponseBodyRef::ListLeases(t) => Response::ListLeases(super::leases::leases_of(t)?),
        ResponseBodyRef::TakeLease(t) => {
            Response::TakeLease(LeaseOutput { lease: super::leases::lease_of(t.lease(), "TakeLeaseResponse")? })
        }
        ResponseBodyRef::RenewLease(t) => {
            Response::RenewLease(LeaseOutput { lease: super::leases::lease_of(t.lease(), "RenewLeaseResponse")? })
        }
        ResponseBodyRef::ReleaseLease(t) => {
            Response::ReleaseLease(LeaseOutput { lease: super::leases::lease_of(t.lease(), "ReleaseLeaseResponse")? })
        }
        ResponseBodyRef::StealLease(t) => {
            Response::StealLease(LeaseOutput { lease: super::leases::lease_of(t.lease(), "StealLeaseResponse")? })
        }
        ResponseBodyRef::CheckpointLease(t) => Response::CheckpointLease(LeaseOutput {
            lease: super::leases::lease_of(t.lease(), "CheckpointLeaseResponse")?,
        }),
        ResponseBodyRef::DescribeStreamRoutes(t) => super::routes::response_of(t)?,
        ResponseBodyRef::UpdateMaxRecordSize(_) => Response::UpdateMaxRecordSize(Empty {}),
        ResponseBodyRef::UpdateStreamWarmThroughput(t) => super::settings::update_stream_warm_throughput_of(t),
        ResponseBodyRef::UpdateStreamRecordDistributionStrategy(_) => {
            Response::UpdateStreamRecordDistributionStrategy(Empty {})
        }
        ResponseBodyRef::UpdateAccountSettings(t) => super::settings::update_account_settings_of(t)?,
        ResponseBodyRef::PutResourcePolicy(_) => Response::PutResourcePolicy(Empty {}),
        ResponseBodyRef::GetResourcePolicy(t) => super::settings::get_resource_policy_of(t)?,
        ResponseBodyRef::DeleteResourcePolicy(_) => Response::DeleteResourcePolicy(Empty {}),
        ResponseBodyRef::StartStreamEncryption(_) => Response::StartStreamEncryption(Empty {}),
        ResponseBodyRef::StopStreamEncryption(_) => Response::StopStreamEncryption(Empty {}),
        // The handshake's answers come before any call (`native::handshake`); one anywhere
        // else answers nothing the client asked.
        ResponseBodyRef::Hello(_) => return Err(DecodeError::UnknownBody(wire::ResponseBody::HelloResponse.0)),
        ResponseBodyRef::Authenticate(_) => {
            return Err(DecodeError::UnknownBody(wire::ResponseBody::AuthenticateResponse.0))
        }
        ResponseBodyRef::Unknown(tag) => return Err(DecodeError::UnknownBody(tag.0)),
        // Answered by `super::firehose::response_of` above.
        ResponseBodyRef::CreateDeliveryStream(_)
        | ResponseBodyRef::DeleteDeliveryStream(_)
        | ResponseBodyRef::DescribeDeliveryStream(_)
        | ResponseBodyRef::ListDeliveryStreams(_)
        | ResponseBodyRef::FirehosePutRecord(_)
        | ResponseBodyRef::PutRecordBatch(_)
        | ResponseBodyRef::UpdateDestination(_)
        | ResponseBodyRef::TagDeliveryStream(_)
        | ResponseBodyRef::UntagDeliveryStream(_)
        | ResponseBodyRef::ListTagsForDeliveryStream(_)
        | ResponseBodyRef::StartDeliveryStreamEncryption(_)
        | ResponseBodyRef::StopDeliveryStreamEncryption(_) => unreachable!("Firehose answers decode above"),
    };
    Ok(ResponseMessage::Response(response))
}
