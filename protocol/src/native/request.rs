//! Requests: [`encode_request`] (the client's direction) and [`decode_request`] (the server's).

use super::convert::{hash_key_from_wire, hash_key_to_wire, sequence_from_wire, sequence_to_wire, WireEnum};
use super::forwarded::Forwarded;
use super::EncodeError;
use crate::flatbuffers::{FlatBufferBuilder, ForwardsUOffset, Vector, WIPOffset};
use crate::{create_bytes, wire, FrameError, RequestBodyRef, RequestBodyTable};
use bytes::Bytes;
use sluice_model::*;

type Fbb = FlatBufferBuilder<'static>;
type Offsets<T> = WIPOffset<Vector<'static, ForwardsUOffset<T>>>;

// ---------------------------------------------------------------------------------------------
// Encoding.

pub(super) fn text(fbb: &mut Fbb, value: &str) -> Option<WIPOffset<&'static str>> {
    Some(fbb.create_string(value))
}

pub(super) fn optional_text(fbb: &mut Fbb, value: Option<&str>) -> Option<WIPOffset<&'static str>> {
    value.map(|value| fbb.create_string(value))
}

pub(super) fn stream_arn(fbb: &mut Fbb, arn: &Option<StreamArn>) -> Option<WIPOffset<&'static str>> {
    optional_text(fbb, arn.as_ref().map(StreamArn::as_str))
}

pub(super) fn tag_map(fbb: &mut Fbb, tags: &TagMap) -> Offsets<wire::Tag<'static>> {
    let tables: Vec<_> = tags
        .iter()
        .map(|(key, value)| {
            let (key, value) = (text(fbb, key), text(fbb, value));
            wire::Tag::create(fbb, &wire::TagArgs { key, value })
        })
        .collect();
    fbb.create_vector(&tables)
}

pub(super) fn strings(fbb: &mut Fbb, values: &[String]) -> Offsets<&'static str> {
    let offsets: Vec<_> = values.iter().map(|value| fbb.create_string(value)).collect();
    fbb.create_vector(&offsets)
}

pub(super) fn metrics(fbb: &mut Fbb, values: &[MetricsName]) -> WIPOffset<Vector<'static, wire::MetricsName>> {
    let values: Vec<_> = values.iter().map(WireEnum::to_wire).collect();
    fbb.create_vector(&values)
}

fn request_metrics(
    fbb: &mut Fbb,
    values: &[MetricsName],
) -> Result<WIPOffset<Vector<'static, wire::MetricsName>>, EncodeError> {
    let values = values.iter().map(|metric| metric.encode("ShardLevelMetrics")).collect::<Result<Vec<_>, _>>()?;
    Ok(fbb.create_vector(&values))
}

fn sequence(
    number: Option<&SequenceNumber>,
    member: &'static str,
) -> Result<Option<wire::SequenceNumber>, EncodeError> {
    number.map(|number| sequence_to_wire(number, member)).transpose()
}

fn finish<T: RequestBodyTable>(fbb: &mut Fbb, correlation_id: u64, body: WIPOffset<T>) -> Result<&[u8], EncodeError> {
    crate::encode_request(fbb, correlation_id, body).map_err(EncodeError::from)
}

/// An input with a native form: builds itself in a builder (fresh or reset) and finishes it as
/// one request frame under a correlation id. Implemented for every operation's input.
pub trait EncodeInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, correlation_id: u64) -> Result<&'f [u8], EncodeError>;
}

impl EncodeInput for Request {
    fn encode<'f>(&self, fbb: &'f mut Fbb, correlation_id: u64) -> Result<&'f [u8], EncodeError> {
        encode_request(fbb, correlation_id, self)
    }
}

/// Builds `request` in `fbb` (fresh or reset) and finishes it as one frame under
/// `correlation_id`.
pub fn encode_request<'f>(fbb: &'f mut Fbb, correlation_id: u64, request: &Request) -> Result<&'f [u8], EncodeError> {
    match request {
        Request::AddTagsToStream(input) => input.encode(fbb, correlation_id),
        Request::CreateStream(input) => input.encode(fbb, correlation_id),
        Request::DecreaseStreamRetentionPeriod(input) => input.encode(fbb, correlation_id),
        Request::DeleteStream(input) => input.encode(fbb, correlation_id),
        Request::DeregisterStreamConsumer(input) => input.encode(fbb, correlation_id),
        Request::DescribeAccountSettings(input) => input.encode(fbb, correlation_id),
        Request::DescribeLimits(input) => input.encode(fbb, correlation_id),
        Request::DescribeStream(input) => input.encode(fbb, correlation_id),
        Request::DescribeStreamConsumer(input) => input.encode(fbb, correlation_id),
        Request::DescribeStreamSummary(input) => input.encode(fbb, correlation_id),
        Request::DisableEnhancedMonitoring(input) => input.encode(fbb, correlation_id),
        Request::EnableEnhancedMonitoring(input) => input.encode(fbb, correlation_id),
        Request::GetRecords(input) => input.encode(fbb, correlation_id),
        Request::GetShardIterator(input) => input.encode(fbb, correlation_id),
        Request::IncreaseStreamRetentionPeriod(input) => input.encode(fbb, correlation_id),
        Request::ListShards(input) => input.encode(fbb, correlation_id),
        Request::ListStreamConsumers(input) => input.encode(fbb, correlation_id),
        Request::ListStreams(input) => input.encode(fbb, correlation_id),
        Request::ListTagsForResource(input) => input.encode(fbb, correlation_id),
        Request::ListTagsForStream(input) => input.encode(fbb, correlation_id),
        Request::MergeShards(input) => input.encode(fbb, correlation_id),
        Request::PutRecord(input) => input.encode(fbb, correlation_id),
        Request::PutRecords(input) => input.encode(fbb, correlation_id),
        Request::RegisterStreamConsumer(input) => input.encode(fbb, correlation_id),
        Request::RemoveTagsFromStream(input) => input.encode(fbb, correlation_id),
        Request::SplitShard(input) => input.encode(fbb, correlation_id),
        Request::SubscribeToShard(input) => input.encode(fbb, correlation_id),
        Request::TagResource(input) => input.encode(fbb, correlation_id),
        Request::UntagResource(input) => input.encode(fbb, correlation_id),
        Request::UpdateShardCount(input) => input.encode(fbb, correlation_id),
        Request::UpdateStreamMode(input) => input.encode(fbb, correlation_id),
        Request::CreateApplication(input) => input.encode(fbb, correlation_id),
        Request::DescribeApplication(input) => input.encode(fbb, correlation_id),
        Request::ListApplications(input) => input.encode(fbb, correlation_id),
        Request::DeleteApplication(input) => input.encode(fbb, correlation_id),
        Request::ListLeases(input) => input.encode(fbb, correlation_id),
        Request::DescribeStreamRoutes(input) => input.encode(fbb, correlation_id),
        Request::TakeLease(input) => input.encode(fbb, correlation_id),
        Request::RenewLease(input) => input.encode(fbb, correlation_id),
        Request::ReleaseLease(input) => input.encode(fbb, correlation_id),
        Request::StealLease(input) => input.encode(fbb, correlation_id),
        Request::CheckpointLease(input) => input.encode(fbb, correlation_id),
        Request::UpdateMaxRecordSize(input) => input.encode(fbb, correlation_id),
        Request::UpdateStreamWarmThroughput(input) => input.encode(fbb, correlation_id),
        Request::UpdateStreamRecordDistributionStrategy(input) => input.encode(fbb, correlation_id),
        Request::UpdateAccountSettings(input) => input.encode(fbb, correlation_id),
        Request::PutResourcePolicy(input) => input.encode(fbb, correlation_id),
        Request::GetResourcePolicy(input) => input.encode(fbb, correlation_id),
        Request::DeleteResourcePolicy(input) => input.encode(fbb, correlation_id),
        Request::StartStreamEncryption(input) => input.encode(fbb, correlation_id),
        Request::StopStreamEncryption(input) => input.encode(fbb, correlation_id),
        // Unfinished: Kinesis queues have no flatbuffers tables yet; over HTTP only.
        Request::AcknowledgeDeadLetterQueueRecords(_)
        | Request::AcknowledgeQueueRecords(_)
        | Request::CreateQueue(_)
        | Request::DeleteQueue(_)
        | Request::DescribeQueue(_)
        | Request::ListQueues(_)
        | Request::ReceiveDeadLetterQueueRecords(_)
        | Request::ReceiveQueueRecords(_)
        | Request::RestoreDeadLetterQueueRecords(_)
        | Request::UpdateDeadLetterQueueRecordsVisibility(_)
        | Request::UpdateQueue(_)
        | Request::UpdateQueueRecordsVisibility(_) => {
            Err(EncodeError::NotNative { operation: request.operation().name() })
        }
    }
}

impl EncodeInput for AddTagsToStreamInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::AddTagsToStreamRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            tags: Some(tag_map(fbb, &input.tags)),
        };
        let body = wire::AddTagsToStreamRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for CreateStreamInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::CreateStreamRequestArgs {
            stream_name: text(fbb, &input.stream_name),
            shard_count: input.shard_count,
            stream_mode: input
                .stream_mode_details
                .as_ref()
                .map(|details| details.stream_mode.encode("StreamModeDetails.StreamMode"))
                .transpose()?,
            tags: input.tags.as_ref().map(|tags| tag_map(fbb, tags)),
            max_record_size_in_kib: input.max_record_size_in_kib,
        };
        let body = wire::CreateStreamRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for DecreaseStreamRetentionPeriodInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::DecreaseStreamRetentionPeriodRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            retention_period_hours: Some(input.retention_period_hours),
        };
        let body = wire::DecreaseStreamRetentionPeriodRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for DeleteStreamInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::DeleteStreamRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            enforce_consumer_deletion: input.enforce_consumer_deletion,
        };
        let body = wire::DeleteStreamRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for DeregisterStreamConsumerInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::DeregisterStreamConsumerRequestArgs {
            stream_arn: stream_arn(fbb, &input.stream_arn),
            consumer_name: optional_text(fbb, input.consumer_name.as_deref()),
            consumer_arn: optional_text(fbb, input.consumer_arn.as_ref().map(ConsumerArn::as_str)),
        };
        let body = wire::DeregisterStreamConsumerRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for DescribeAccountSettingsInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let body = wire::DescribeAccountSettingsRequest::create(fbb, &wire::DescribeAccountSettingsRequestArgs {});
        finish(fbb, cid, body)
    }
}

impl EncodeInput for DescribeLimitsInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let body = wire::DescribeLimitsRequest::create(fbb, &wire::DescribeLimitsRequestArgs {});
        finish(fbb, cid, body)
    }
}

impl EncodeInput for DescribeStreamInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::DescribeStreamRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            limit: input.limit,
            exclusive_start_shard_id: optional_text(fbb, input.exclusive_start_shard_id.as_ref().map(ShardId::as_str)),
        };
        let body = wire::DescribeStreamRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for DescribeStreamConsumerInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::DescribeStreamConsumerRequestArgs {
            stream_arn: stream_arn(fbb, &input.stream_arn),
            consumer_name: optional_text(fbb, input.consumer_name.as_deref()),
            consumer_arn: optional_text(fbb, input.consumer_arn.as_ref().map(ConsumerArn::as_str)),
        };
        let body = wire::DescribeStreamConsumerRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for DescribeStreamSummaryInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::DescribeStreamSummaryRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
        };
        let body = wire::DescribeStreamSummaryRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for DisableEnhancedMonitoringInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::DisableEnhancedMonitoringRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            shard_level_metrics: Some(request_metrics(fbb, &input.shard_level_metrics)?),
            stream_arn: stream_arn(fbb, &input.stream_arn),
        };
        let body = wire::DisableEnhancedMonitoringRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for EnableEnhancedMonitoringInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::EnableEnhancedMonitoringRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            shard_level_metrics: Some(request_metrics(fbb, &input.shard_level_metrics)?),
            stream_arn: stream_arn(fbb, &input.stream_arn),
        };
        let body = wire::EnableEnhancedMonitoringRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for GetRecordsInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::GetRecordsRequestArgs {
            shard_iterator: text(fbb, &input.shard_iterator),
            limit: input.limit,
            stream_arn: stream_arn(fbb, &input.stream_arn),
        };
        let body = wire::GetRecordsRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for GetShardIteratorInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let starting = sequence(input.starting_sequence_number.as_ref(), "StartingSequenceNumber")?;
        let args = wire::GetShardIteratorRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            shard_id: text(fbb, input.shard_id.as_str()),
            shard_iterator_type: Some(input.shard_iterator_type.encode("ShardIteratorType")?),
            starting_sequence_number: starting.as_ref(),
            timestamp: input.timestamp.map(Timestamp::epoch_ms),
        };
        let body = wire::GetShardIteratorRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for IncreaseStreamRetentionPeriodInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::IncreaseStreamRetentionPeriodRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            retention_period_hours: Some(input.retention_period_hours),
        };
        let body = wire::IncreaseStreamRetentionPeriodRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for ListShardsInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let filter_type =
            input.shard_filter.as_ref().map(|filter| filter.r#type.encode("ShardFilter.Type")).transpose()?;
        let shard_filter = input.shard_filter.as_ref().map(|filter| {
            let args = wire::ShardFilterArgs {
                type_: filter_type,
                shard_id: optional_text(fbb, filter.shard_id.as_ref().map(ShardId::as_str)),
                timestamp: filter.timestamp.map(Timestamp::epoch_ms),
            };
            wire::ShardFilter::create(fbb, &args)
        });
        let args = wire::ListShardsRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            next_token: optional_text(fbb, input.next_token.as_deref()),
            exclusive_start_shard_id: optional_text(fbb, input.exclusive_start_shard_id.as_ref().map(ShardId::as_str)),
            max_results: input.max_results,
            stream_creation_timestamp: input.stream_creation_timestamp.map(Timestamp::epoch_ms),
            shard_filter,
        };
        let body = wire::ListShardsRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for ListStreamConsumersInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::ListStreamConsumersRequestArgs {
            stream_arn: text(fbb, input.stream_arn.as_str()),
            next_token: optional_text(fbb, input.next_token.as_deref()),
            max_results: input.max_results,
            stream_creation_timestamp: input.stream_creation_timestamp.map(Timestamp::epoch_ms),
        };
        let body = wire::ListStreamConsumersRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for ListStreamsInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::ListStreamsRequestArgs {
            limit: input.limit,
            exclusive_start_stream_name: optional_text(fbb, input.exclusive_start_stream_name.as_deref()),
            next_token: optional_text(fbb, input.next_token.as_deref()),
        };
        let body = wire::ListStreamsRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for ListTagsForResourceInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::ListTagsForResourceRequestArgs { resource_arn: text(fbb, input.resource_arn.as_str()) };
        let body = wire::ListTagsForResourceRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for ListTagsForStreamInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::ListTagsForStreamRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            exclusive_start_tag_key: optional_text(fbb, input.exclusive_start_tag_key.as_deref()),
            limit: input.limit,
        };
        let body = wire::ListTagsForStreamRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for MergeShardsInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::MergeShardsRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            shard_to_merge: text(fbb, input.shard_to_merge.as_str()),
            adjacent_shard_to_merge: text(fbb, input.adjacent_shard_to_merge.as_str()),
        };
        let body = wire::MergeShardsRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for PutRecordInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let ordering = sequence(input.sequence_number_for_ordering.as_ref(), "SequenceNumberForOrdering")?;
        let hash_key = input.explicit_hash_key.map(hash_key_to_wire);
        let args = wire::PutRecordRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            data: Some(create_bytes(fbb, &input.data)),
            partition_key: optional_text(fbb, input.partition_key.as_deref()),
            explicit_hash_key: hash_key.as_ref(),
            sequence_number_for_ordering: ordering.as_ref(),
        };
        let body = wire::PutRecordRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for PutRecordsInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let entries: Vec<_> = input
            .records
            .iter()
            .map(|entry| {
                let hash_key = entry.explicit_hash_key.map(hash_key_to_wire);
                let args = wire::PutRecordsEntryArgs {
                    data: Some(create_bytes(fbb, &entry.data)),
                    partition_key: optional_text(fbb, entry.partition_key.as_deref()),
                    explicit_hash_key: hash_key.as_ref(),
                };
                wire::PutRecordsEntry::create(fbb, &args)
            })
            .collect();
        let records = Some(fbb.create_vector(&entries));
        let args = wire::PutRecordsRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            records,
        };
        let body = wire::PutRecordsRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for RegisterStreamConsumerInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::RegisterStreamConsumerRequestArgs {
            stream_arn: text(fbb, input.stream_arn.as_str()),
            consumer_name: text(fbb, &input.consumer_name),
            tags: input.tags.as_ref().map(|tags| tag_map(fbb, tags)),
        };
        let body = wire::RegisterStreamConsumerRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for RemoveTagsFromStreamInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::RemoveTagsFromStreamRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            tag_keys: Some(strings(fbb, &input.tag_keys)),
        };
        let body = wire::RemoveTagsFromStreamRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for SplitShardInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let key = hash_key_to_wire(input.new_starting_hash_key);
        let args = wire::SplitShardRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            shard_to_split: text(fbb, input.shard_to_split.as_str()),
            new_starting_hash_key: Some(&key),
        };
        let body = wire::SplitShardRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for SubscribeToShardInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let start = &input.starting_position;
        let sequence_number = sequence(start.sequence_number.as_ref(), "StartingPosition.SequenceNumber")?;
        let position = wire::StartingPosition::create(
            fbb,
            &wire::StartingPositionArgs {
                type_: Some(start.r#type.encode("StartingPosition.Type")?),
                sequence_number: sequence_number.as_ref(),
                timestamp: start.timestamp.map(Timestamp::epoch_ms),
            },
        );
        let args = wire::SubscribeToShardRequestArgs {
            consumer_arn: text(fbb, input.consumer_arn.as_str()),
            shard_id: text(fbb, input.shard_id.as_str()),
            starting_position: Some(position),
        };
        let body = wire::SubscribeToShardRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for TagResourceInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::TagResourceRequestArgs {
            tags: Some(tag_map(fbb, &input.tags)),
            resource_arn: text(fbb, input.resource_arn.as_str()),
        };
        let body = wire::TagResourceRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for UntagResourceInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::UntagResourceRequestArgs {
            tag_keys: Some(strings(fbb, &input.tag_keys)),
            resource_arn: text(fbb, input.resource_arn.as_str()),
        };
        let body = wire::UntagResourceRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for UpdateShardCountInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::UpdateShardCountRequestArgs {
            stream_name: optional_text(fbb, input.stream_name.as_deref()),
            stream_arn: stream_arn(fbb, &input.stream_arn),
            target_shard_count: Some(input.target_shard_count),
            scaling_type: text(fbb, input.scaling_type.as_str()),
        };
        let body = wire::UpdateShardCountRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

impl EncodeInput for UpdateStreamModeInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let input = self;
        let args = wire::UpdateStreamModeRequestArgs {
            stream_arn: text(fbb, input.stream_arn.as_str()),
            stream_mode: Some(input.stream_mode_details.stream_mode.encode("StreamModeDetails.StreamMode")?),
        };
        let body = wire::UpdateStreamModeRequest::create(fbb, &args);
        finish(fbb, cid, body)
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/// A request frame, decoded: its correlation id, and the request or why it is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFrame {
    pub correlation_id: u64,
    /// A ValidationException for a missing required member or an unknown enum value, an
    /// UnknownOperationException for a body type this build does not know.
    pub request: Result<Request, KinesisError>,
}

type Decoded<T> = Result<T, KinesisError>;

/// A required member, or AWS's ValidationException for its absence.
pub(super) fn required<T>(value: Option<T>, path: &str) -> Decoded<T> {
    value.ok_or_else(|| KinesisError::validation(Violation::null(path)))
}

pub(super) fn owned(value: Option<&str>) -> Option<String> {
    value.map(str::to_owned)
}

fn required_text(value: Option<&str>, path: &str) -> Decoded<String> {
    required(value, path).map(str::to_owned)
}

pub(super) fn stream_arn_of(value: Option<&str>) -> Option<StreamArn> {
    value.map(StreamArn::from)
}

/// A payload as a slice of its frame: no copy.
fn payload(frame: &Bytes, data: Option<Vector<'_, u8>>) -> Bytes {
    data.map_or_else(Bytes::new, |data| frame.slice_ref(data.bytes()))
}

pub(super) fn tags_to_map(list: Vector<'_, ForwardsUOffset<wire::Tag<'_>>>, path: &str) -> Decoded<TagMap> {
    list.iter()
        .map(|tag| {
            let key = required_text(tag.key(), &format!("{path}.key"))?;
            Ok((key, tag.value().unwrap_or_default().to_owned()))
        })
        .collect()
}

fn string_list(list: Option<Vector<'_, ForwardsUOffset<&str>>>, path: &str) -> Decoded<Vec<String>> {
    Ok(required(list, path)?.iter().map(str::to_owned).collect())
}

fn metric_list(list: Option<Vector<'_, wire::MetricsName>>, path: &str) -> Decoded<Vec<MetricsName>> {
    required(list, path)?.iter().map(|metric| MetricsName::from_request(metric, &format!("{path}.member"))).collect()
}

fn shard_id(value: Option<&str>, path: &str) -> Decoded<ShardId> {
    required(value, path).map(ShardId::from)
}

fn stream_mode(value: wire::StreamMode) -> Decoded<StreamModeDetails> {
    StreamMode::from_request(value, "streamModeDetails.streamMode").map(StreamModeDetails::from)
}

/// Decodes the request frame `frame` (a whole frame, as `frame_len` measured it): `Ok(None)`
/// if it is shorter than its length prefix says. A Firehose request decodes to
/// UnknownOperationException here; a server that serves them decodes with
/// [`decode_any_request`].
pub fn decode_request(frame: &Bytes) -> Result<Option<RequestFrame>, FrameError> {
    let Some((_, envelope)) = crate::decode_request(frame)? else { return Ok(None) };
    let correlation_id = envelope.correlation_id();
    let request = request_of(frame, RequestBodyRef::of(&envelope));
    Ok(Some(RequestFrame { correlation_id, request }))
}

/// A request of either API the native protocol carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeRequest {
    Kinesis(Request),
    Firehose(FirehoseRequest),
    /// A Kinesis request another cluster member forwarded (`super::forwarded`).
    Forwarded(Box<Forwarded>),
}

/// A request frame of either API, decoded: its correlation id, and the request or why it is
/// not one (as in [`RequestFrame`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnyRequestFrame {
    pub correlation_id: u64,
    pub request: Result<NativeRequest, KinesisError>,
}

/// [`decode_request`] for a server that serves the Firehose operations too: the frame is
/// verified once, whichever API its body belongs to.
pub fn decode_any_request(frame: &Bytes) -> Result<Option<AnyRequestFrame>, FrameError> {
    let Some((_, envelope)) = crate::decode_request(frame)? else { return Ok(None) };
    let correlation_id = envelope.correlation_id();
    let body = RequestBodyRef::of(&envelope);
    if let RequestBodyRef::Forwarded(t) = body {
        let request = forwarded(frame, t).map(|forwarded| NativeRequest::Forwarded(Box::new(forwarded)));
        return Ok(Some(AnyRequestFrame { correlation_id, request }));
    }
    let request = match super::firehose::request_of(frame, body) {
        Some(firehose) => firehose.map(NativeRequest::Firehose),
        None => request_of(frame, body).map(NativeRequest::Kinesis),
    };
    Ok(Some(AnyRequestFrame { correlation_id, request }))
}

/// The request a ForwardedRequest carries, decoded as a client's would be.
fn forwarded(frame: &Bytes, t: wire::ForwardedRequest<'_>) -> Result<Forwarded, KinesisError> {
    let (caller, inner) = super::forwarded::parts_of(frame, t)?;
    let request = match decode_request(&inner) {
        Ok(Some(RequestFrame { request, .. })) => request?,
        Ok(None) => return Err(super::forwarded::malformed("the request frame is cut short")),
        Err(error) => return Err(super::forwarded::malformed(&format!("the request frame does not verify: {error}"))),
    };
    Ok(Forwarded { caller, request })
}

fn request_of(frame: &Bytes, body: RequestBodyRef<'_>) -> Decoded<Request> {
    Ok(match body {
        RequestBodyRef::AddTagsToStream(t) => Request::AddTagsToStream(AddTagsToStreamInput {
            stream_name: owned(t.stream_name()),
            tags: tags_to_map(required(t.tags(), "tags")?, "tags")?,
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::CreateStream(t) => Request::CreateStream(CreateStreamInput {
            stream_name: required_text(t.stream_name(), "streamName")?,
            shard_count: t.shard_count(),
            stream_mode_details: t.stream_mode().map(stream_mode).transpose()?,
            tags: t.tags().map(|tags| tags_to_map(tags, "tags")).transpose()?,
            max_record_size_in_kib: t.max_record_size_in_kib(),
        }),
        RequestBodyRef::DecreaseStreamRetentionPeriod(t) => {
            Request::DecreaseStreamRetentionPeriod(DecreaseStreamRetentionPeriodInput {
                stream_name: owned(t.stream_name()),
                retention_period_hours: required(t.retention_period_hours(), "retentionPeriodHours")?,
                stream_arn: stream_arn_of(t.stream_arn()),
            })
        }
        RequestBodyRef::DeleteStream(t) => Request::DeleteStream(DeleteStreamInput {
            stream_name: owned(t.stream_name()),
            enforce_consumer_deletion: t.enforce_consumer_deletion(),
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::DeregisterStreamConsumer(t) => {
            Request::DeregisterStreamConsumer(DeregisterStreamConsumerInput {
                stream_arn: stream_arn_of(t.stream_arn()),
                consumer_name: owned(t.consumer_name()),
                consumer_arn: t.consumer_arn().map(ConsumerArn::from),
            })
        }
        RequestBodyRef::DescribeAccountSettings(_) => Request::DescribeAccountSettings(DescribeAccountSettingsInput {}),
        RequestBodyRef::DescribeLimits(_) => Request::DescribeLimits(DescribeLimitsInput {}),
        RequestBodyRef::DescribeStream(t) => Request::DescribeStream(DescribeStreamInput {
            stream_name: owned(t.stream_name()),
            limit: t.limit(),
            exclusive_start_shard_id: t.exclusive_start_shard_id().map(ShardId::from),
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::DescribeStreamConsumer(t) => Request::DescribeStreamConsumer(DescribeStreamConsumerInput {
            stream_arn: stream_arn_of(t.stream_arn()),
            consumer_name: owned(t.consumer_name()),
            consumer_arn: t.consumer_arn().map(ConsumerArn::from),
        }),
        RequestBodyRef::DescribeStreamSummary(t) => Request::DescribeStreamSummary(DescribeStreamSummaryInput {
            stream_name: owned(t.stream_name()),
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::DisableEnhancedMonitoring(t) => {
            Request::DisableEnhancedMonitoring(DisableEnhancedMonitoringInput {
                stream_name: owned(t.stream_name()),
                shard_level_metrics: metric_list(t.shard_level_metrics(), "shardLevelMetrics")?,
                stream_arn: stream_arn_of(t.stream_arn()),
            })
        }
        RequestBodyRef::EnableEnhancedMonitoring(t) => {
            Request::EnableEnhancedMonitoring(EnableEnhancedMonitoringInput {
                stream_name: owned(t.stream_name()),
                shard_level_metrics: metric_list(t.shard_level_metrics(), "shardLevelMetrics")?,
                stream_arn: stream_arn_of(t.stream_arn()),
            })
        }
        RequestBodyRef::GetRecords(t) => Request::GetRecords(GetRecordsInput {
            shard_iterator: required_text(t.shard_iterator(), "shardIterator")?,
            limit: t.limit(),
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::GetShardIterator(t) => Request::GetShardIterator(GetShardIteratorInput {
            stream_name: owned(t.stream_name()),
            shard_id: shard_id(t.shard_id(), "shardId")?,
            shard_iterator_type: ShardIteratorType::from_request(
                required(t.shard_iterator_type(), "shardIteratorType")?,
                "shardIteratorType",
            )?,
            starting_sequence_number: t.starting_sequence_number().map(sequence_from_wire),
            timestamp: t.timestamp().map(Timestamp::from_epoch_ms),
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::IncreaseStreamRetentionPeriod(t) => {
            Request::IncreaseStreamRetentionPeriod(IncreaseStreamRetentionPeriodInput {
                stream_name: owned(t.stream_name()),
                retention_period_hours: required(t.retention_period_hours(), "retentionPeriodHours")?,
                stream_arn: stream_arn_of(t.stream_arn()),
            })
        }
        RequestBodyRef::ListShards(t) => {
            let shard_filter = match t.shard_filter() {
                Some(filter) => Some(ShardFilter {
                    r#type: ShardFilterType::from_request(
                        required(filter.type_(), "shardFilter.type")?,
                        "shardFilter.type",
                    )?,
                    shard_id: filter.shard_id().map(ShardId::from),
                    timestamp: filter.timestamp().map(Timestamp::from_epoch_ms),
                }),
                None => None,
            };
            Request::ListShards(ListShardsInput {
                stream_name: owned(t.stream_name()),
                next_token: owned(t.next_token()),
                exclusive_start_shard_id: t.exclusive_start_shard_id().map(ShardId::from),
                max_results: t.max_results(),
                stream_creation_timestamp: t.stream_creation_timestamp().map(Timestamp::from_epoch_ms),
                shard_filter,
                stream_arn: stream_arn_of(t.stream_arn()),
            })
        }
        RequestBodyRef::ListStreamConsumers(t) => Request::ListStreamConsumers(ListStreamConsumersInput {
            stream_arn: StreamArn::from(required(t.stream_arn(), "streamARN")?),
            next_token: owned(t.next_token()),
            max_results: t.max_results(),
            stream_creation_timestamp: t.stream_creation_timestamp().map(Timestamp::from_epoch_ms),
        }),
        RequestBodyRef::ListStreams(t) => Request::ListStreams(ListStreamsInput {
            limit: t.limit(),
            exclusive_start_stream_name: owned(t.exclusive_start_stream_name()),
            next_token: owned(t.next_token()),
        }),
        RequestBodyRef::ListTagsForResource(t) => Request::ListTagsForResource(ListTagsForResourceInput {
            resource_arn: ResourceArn::from(required(t.resource_arn(), "resourceARN")?),
        }),
        RequestBodyRef::ListTagsForStream(t) => Request::ListTagsForStream(ListTagsForStreamInput {
            stream_name: owned(t.stream_name()),
            exclusive_start_tag_key: owned(t.exclusive_start_tag_key()),
            limit: t.limit(),
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::MergeShards(t) => Request::MergeShards(MergeShardsInput {
            stream_name: owned(t.stream_name()),
            shard_to_merge: shard_id(t.shard_to_merge(), "shardToMerge")?,
            adjacent_shard_to_merge: shard_id(t.adjacent_shard_to_merge(), "adjacentShardToMerge")?,
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::PutRecord(t) => Request::PutRecord(PutRecordInput {
            stream_name: owned(t.stream_name()),
            data: payload(frame, t.data()),
            partition_key: owned(t.partition_key()),
            explicit_hash_key: t.explicit_hash_key().map(hash_key_from_wire),
            sequence_number_for_ordering: t.sequence_number_for_ordering().map(sequence_from_wire),
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::PutRecords(t) => Request::PutRecords(PutRecordsInput {
            records: required(t.records(), "records")?
                .iter()
                .map(|entry| PutRecordsRequestEntry {
                    data: payload(frame, entry.data()),
                    explicit_hash_key: entry.explicit_hash_key().map(hash_key_from_wire),
                    partition_key: owned(entry.partition_key()),
                })
                .collect(),
            stream_name: owned(t.stream_name()),
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::RegisterStreamConsumer(t) => Request::RegisterStreamConsumer(RegisterStreamConsumerInput {
            stream_arn: StreamArn::from(required(t.stream_arn(), "streamARN")?),
            consumer_name: required_text(t.consumer_name(), "consumerName")?,
            tags: t.tags().map(|tags| tags_to_map(tags, "tags")).transpose()?,
        }),
        RequestBodyRef::RemoveTagsFromStream(t) => Request::RemoveTagsFromStream(RemoveTagsFromStreamInput {
            stream_name: owned(t.stream_name()),
            tag_keys: string_list(t.tag_keys(), "tagKeys")?,
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::SplitShard(t) => Request::SplitShard(SplitShardInput {
            stream_name: owned(t.stream_name()),
            shard_to_split: shard_id(t.shard_to_split(), "shardToSplit")?,
            new_starting_hash_key: hash_key_from_wire(required(t.new_starting_hash_key(), "newStartingHashKey")?),
            stream_arn: stream_arn_of(t.stream_arn()),
        }),
        RequestBodyRef::SubscribeToShard(t) => {
            let position = required(t.starting_position(), "startingPosition")?;
            Request::SubscribeToShard(SubscribeToShardInput {
                consumer_arn: ConsumerArn::from(required(t.consumer_arn(), "consumerARN")?),
                shard_id: shard_id(t.shard_id(), "shardId")?,
                starting_position: StartingPosition {
                    r#type: ShardIteratorType::from_request(
                        required(position.type_(), "startingPosition.type")?,
                        "startingPosition.type",
                    )?,
                    sequence_number: position.sequence_number().map(sequence_from_wire),
                    timestamp: position.timestamp().map(Timestamp::from_epoch_ms),
                },
            })
        }
        RequestBodyRef::TagResource(t) => Request::TagResource(TagResourceInput {
            tags: tags_to_map(required(t.tags(), "tags")?, "tags")?,
            resource_arn: ResourceArn::from(required(t.resource_arn(), "resourceARN")?),
        }),
        RequestBodyRef::UntagResource(t) => Request::UntagResource(UntagResourceInput {
            tag_keys: string_list(t.tag_keys(), "tagKeys")?,
            resource_arn: ResourceArn::from(required(t.resource_arn(), "resourceARN")?),
        }),
        RequestBodyRef::UpdateShardCount(t) => {
            let scaling_type = required(t.scaling_type(), "scalingType")?;
            Request::UpdateShardCount(UpdateShardCountInput {
                stream_name: owned(t.stream_name()),
                target_shard_count: required(t.target_shard_count(), "targetShardCount")?,
                scaling_type: scaling_type.parse().map_err(|_| {
                    KinesisError::validation(Violation::enumeration(
                        scaling_type,
                        "scalingType",
                        ScalingType::ALL.iter().map(|known| known.as_str()),
                    ))
                })?,
                stream_arn: stream_arn_of(t.stream_arn()),
            })
        }
        RequestBodyRef::UpdateStreamMode(t) => Request::UpdateStreamMode(UpdateStreamModeInput {
            stream_arn: StreamArn::from(required(t.stream_arn(), "streamARN")?),
            stream_mode_details: stream_mode(required(t.stream_mode(), "streamModeDetails")?)?,
        }),
        RequestBodyRef::CreateApplication(t) => super::leases::create_application(t)?,
        RequestBodyRef::DescribeApplication(t) => super::leases::describe_application(t)?,
        RequestBodyRef::ListApplications(t) => super::leases::list_applications(t)?,
        RequestBodyRef::DeleteApplication(t) => super::leases::delete_application(t)?,
        RequestBodyRef::ListLeases(t) => super::leases::list_leases(t)?,
        RequestBodyRef::DescribeStreamRoutes(t) => super::routes::request_of(t),
        RequestBodyRef::TakeLease(t) => super::leases::take_lease(t)?,
        RequestBodyRef::RenewLease(t) => super::leases::renew_lease(t)?,
        RequestBodyRef::ReleaseLease(t) => super::leases::release_lease(t)?,
        RequestBodyRef::StealLease(t) => super::leases::steal_lease(t)?,
        RequestBodyRef::CheckpointLease(t) => super::leases::checkpoint_lease(t)?,
        RequestBodyRef::UpdateMaxRecordSize(t) => super::settings::update_max_record_size(t)?,
        RequestBodyRef::UpdateStreamWarmThroughput(t) => super::settings::update_stream_warm_throughput(t)?,
        RequestBodyRef::UpdateStreamRecordDistributionStrategy(t) => {
            super::settings::update_stream_record_distribution_strategy(t)?
        }
        RequestBodyRef::UpdateAccountSettings(t) => super::settings::update_account_settings(t)?,
        RequestBodyRef::PutResourcePolicy(t) => super::settings::put_resource_policy(t)?,
        RequestBodyRef::GetResourcePolicy(t) => super::settings::get_resource_policy(t)?,
        RequestBodyRef::DeleteResourcePolicy(t) => super::settings::delete_resource_policy(t)?,
        RequestBodyRef::StartStreamEncryption(t) => super::settings::start_stream_encryption(t)?,
        RequestBodyRef::StopStreamEncryption(t) => super::settings::stop_stream_encryption(t)?,
        // The connection answers these itself before any operation (`native::handshake`);
        // once it is authenticated (or when the client did not start with them) they are out
        // of place.
        RequestBodyRef::Hello(_) | RequestBodyRef::Authenticate(_) => {
            return Err(KinesisError::new(
                ErrorKind::UnknownOperation,
                "The authentication handshake (Hello, Authenticate) only opens a connection",
            ))
        }
        // Only `decode_any_request` takes a forwarded request, and only around another one.
        RequestBodyRef::Forwarded(_) => return Err(KinesisError::new(
            ErrorKind::UnknownOperation,
            "ForwardedRequest is for cluster members, and carries a client's request, never another ForwardedRequest",
        )),
        RequestBodyRef::Unknown(tag) => {
            return Err(KinesisError::new(
                ErrorKind::UnknownOperation,
                format!("Unknown operation (request body type {})", tag.0),
            ))
        }
        RequestBodyRef::CreateDeliveryStream(_)
        | RequestBodyRef::DeleteDeliveryStream(_)
        | RequestBodyRef::DescribeDeliveryStream(_)
        | RequestBodyRef::ListDeliveryStreams(_)
        | RequestBodyRef::FirehosePutRecord(_)
        | RequestBodyRef::PutRecordBatch(_)
        | RequestBodyRef::UpdateDestination(_)
        | RequestBodyRef::TagDeliveryStream(_)
        | RequestBodyRef::UntagDeliveryStream(_)
        | RequestBodyRef::ListTagsForDeliveryStream(_)
        | RequestBodyRef::StartDeliveryStreamEncryption(_)
        | RequestBodyRef::StopDeliveryStreamEncryption(_) => {
            return Err(KinesisError::new(
                ErrorKind::UnknownOperation,
                "A Firehose operation, which this peer does not serve (decode_any_request decodes it)",
            ))
        }
    })
}
