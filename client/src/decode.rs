//! Response frames to owned responses.
//!
//! The reader task decodes each response frame once, here, into a [`Reply`] that owns its
//! data, and hands it to the waiting request. Record payloads are not copied: they are
//! [`Bytes`] slices of the frame, which the receive buffer copied out once (see
//! `recv_buffer`). Members the Kinesis model requires must be present
//! ([`ClientError::MissingMember`] otherwise); optional ones become `Option`s; absent lists
//! read as empty.

use bytes::Bytes;
use sluice_protocol::flatbuffers::{Follow, ForwardsUOffset, Vector};
use sluice_protocol::wire::{self, ResponseBody};
use sluice_protocol::ResponseBodyRef;

use crate::error::ClientError;
use crate::types::*;

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A decoded response body, owned. Empty bodies are unit variants.
#[derive(Debug)]
pub(crate) enum Reply {
    CreateStream,
    DeleteStream,
    DescribeStream(DescribeStreamResponse),
    DescribeStreamSummary(DescribeStreamSummaryResponse),
    ListStreams(ListStreamsResponse),
    ListShards(ListShardsResponse),
    PutRecord(PutRecordResponse),
    PutRecords(PutRecordsResponse),
    GetShardIterator(GetShardIteratorResponse),
    GetRecords(GetRecordsResponse),
    IncreaseStreamRetentionPeriod,
    DecreaseStreamRetentionPeriod,
    AddTagsToStream,
    RemoveTagsFromStream,
    ListTagsForStream(ListTagsForStreamResponse),
    DescribeLimits(DescribeLimitsResponse),
    RegisterStreamConsumer(RegisterStreamConsumerResponse),
    DeregisterStreamConsumer,
    DescribeStreamConsumer(DescribeStreamConsumerResponse),
    ListStreamConsumers(ListStreamConsumersResponse),
    /// The subscription is accepted (the event stream's `initial-response`).
    SubscribeToShard,
    SubscribeToShardEvent(SubscribeToShardEvent),
    SubscribeToShardEnd,
    SplitShard,
    MergeShards,
    UpdateShardCount(UpdateShardCountResponse),
    /// No body, or a body this build does not know (a newer server): the tag.
    Unknown(ResponseBody),
}

impl Reply {
    /// What the body was, for [`ClientError::UnexpectedResponse`].
    pub(crate) fn describe(&self) -> String {
        let table = match self {
            Self::CreateStream => "CreateStreamResponse",
            Self::DeleteStream => "DeleteStreamResponse",
            Self::DescribeStream(_) => "DescribeStreamResponse",
            Self::DescribeStreamSummary(_) => "DescribeStreamSummaryResponse",
            Self::ListStreams(_) => "ListStreamsResponse",
            Self::ListShards(_) => "ListShardsResponse",
            Self::PutRecord(_) => "PutRecordResponse",
            Self::PutRecords(_) => "PutRecordsResponse",
            Self::GetShardIterator(_) => "GetShardIteratorResponse",
            Self::GetRecords(_) => "GetRecordsResponse",
            Self::IncreaseStreamRetentionPeriod => "IncreaseStreamRetentionPeriodResponse",
            Self::DecreaseStreamRetentionPeriod => "DecreaseStreamRetentionPeriodResponse",
            Self::AddTagsToStream => "AddTagsToStreamResponse",
            Self::RemoveTagsFromStream => "RemoveTagsFromStreamResponse",
            Self::ListTagsForStream(_) => "ListTagsForStreamResponse",
            Self::DescribeLimits(_) => "DescribeLimitsResponse",
            Self::RegisterStreamConsumer(_) => "RegisterStreamConsumerResponse",
            Self::DeregisterStreamConsumer => "DeregisterStreamConsumerResponse",
            Self::DescribeStreamConsumer(_) => "DescribeStreamConsumerResponse",
            Self::ListStreamConsumers(_) => "ListStreamConsumersResponse",
            Self::SubscribeToShard => "SubscribeToShardResponse",
            Self::SubscribeToShardEvent(_) => "SubscribeToShardEvent",
            Self::SubscribeToShardEnd => "SubscribeToShardEnd",
            Self::SplitShard => "SplitShardResponse",
            Self::MergeShards => "MergeShardsResponse",
            Self::UpdateShardCount(_) => "UpdateShardCountResponse",
            Self::Unknown(ResponseBody::NONE) => return "neither a body nor an error".to_owned(),
            Self::Unknown(tag) => return format!("a body this client does not know (union tag {})", tag.0),
        };
        format!("a {table}")
    }
}

/// Decodes a successful response's body. `frame` is the whole frame `body` was read from, so
/// that record payloads can be sliced from it instead of copied.
pub(crate) fn reply(frame: &Bytes, body: ResponseBodyRef<'_>) -> Result<Reply> {
    use ResponseBodyRef as B;
    Ok(match body {
        B::CreateStream(_) => Reply::CreateStream,
        B::DeleteStream(_) => Reply::DeleteStream,
        B::DescribeStream(body) => {
            let description = required(body.stream_description(), "DescribeStreamResponse", "stream_description")?;
            Reply::DescribeStream(DescribeStreamResponse { stream_description: stream_description(description)? })
        }
        B::DescribeStreamSummary(body) => {
            let summary = required(
                body.stream_description_summary(),
                "DescribeStreamSummaryResponse",
                "stream_description_summary",
            )?;
            Reply::DescribeStreamSummary(DescribeStreamSummaryResponse {
                stream_description_summary: stream_description_summary(summary)?,
            })
        }
        B::ListStreams(body) => Reply::ListStreams(ListStreamsResponse {
            stream_names: strings(body.stream_names()),
            has_more_streams: body.has_more_streams(),
            next_token: optional_string(body.next_token()),
            stream_summaries: list(body.stream_summaries(), stream_summary)?,
        }),
        B::ListShards(body) => Reply::ListShards(ListShardsResponse {
            shards: list(body.shards(), shard)?,
            next_token: optional_string(body.next_token()),
        }),
        B::PutRecord(body) => Reply::PutRecord(PutRecordResponse {
            shard_id: required_string(body.shard_id(), "PutRecordResponse", "shard_id")?,
            sequence_number: required_string(body.sequence_number(), "PutRecordResponse", "sequence_number")?,
            encryption_type: body.encryption_type().map(EncryptionType::from_wire),
        }),
        B::PutRecords(body) => Reply::PutRecords(PutRecordsResponse {
            failed_record_count: body.failed_record_count(),
            records: list(body.records(), |entry| {
                Ok(PutRecordsResultEntry {
                    sequence_number: optional_string(entry.sequence_number()),
                    shard_id: optional_string(entry.shard_id()),
                    error_code: entry.error_code(),
                    error_message: optional_string(entry.error_message()),
                })
            })?,
            encryption_type: body.encryption_type().map(EncryptionType::from_wire),
        }),
        B::GetShardIterator(body) => Reply::GetShardIterator(GetShardIteratorResponse {
            shard_iterator: required_string(body.shard_iterator(), "GetShardIteratorResponse", "shard_iterator")?,
        }),
        B::GetRecords(body) => Reply::GetRecords(GetRecordsResponse {
            records: list(body.records(), |item| record(frame, item))?,
            next_shard_iterator: optional_string(body.next_shard_iterator()),
            millis_behind_latest: body.millis_behind_latest(),
            child_shards: body.child_shards().map(|children| list(Some(children), child_shard)).transpose()?,
        }),
        B::IncreaseStreamRetentionPeriod(_) => Reply::IncreaseStreamRetentionPeriod,
        B::DecreaseStreamRetentionPeriod(_) => Reply::DecreaseStreamRetentionPeriod,
        B::AddTagsToStream(_) => Reply::AddTagsToStream,
        B::RemoveTagsFromStream(_) => Reply::RemoveTagsFromStream,
        B::ListTagsForStream(body) => Reply::ListTagsForStream(ListTagsForStreamResponse {
            tags: list(body.tags(), tag)?,
            has_more_tags: body.has_more_tags(),
        }),
        B::DescribeLimits(body) => Reply::DescribeLimits(DescribeLimitsResponse {
            shard_limit: body.shard_limit(),
            open_shard_count: body.open_shard_count(),
            on_demand_stream_count: body.on_demand_stream_count(),
            on_demand_stream_count_limit: body.on_demand_stream_count_limit(),
        }),
        B::RegisterStreamConsumer(body) => {
            let item = required(body.consumer(), "RegisterStreamConsumerResponse", "consumer")?;
            Reply::RegisterStreamConsumer(RegisterStreamConsumerResponse { consumer: consumer(item)? })
        }
        B::DeregisterStreamConsumer(_) => Reply::DeregisterStreamConsumer,
        B::DescribeStreamConsumer(body) => {
            let description =
                required(body.consumer_description(), "DescribeStreamConsumerResponse", "consumer_description")?;
            Reply::DescribeStreamConsumer(DescribeStreamConsumerResponse {
                consumer_description: consumer_description(description)?,
            })
        }
        B::ListStreamConsumers(body) => Reply::ListStreamConsumers(ListStreamConsumersResponse {
            consumers: list(body.consumers(), consumer)?,
            next_token: optional_string(body.next_token()),
        }),
        B::SubscribeToShard(_) => Reply::SubscribeToShard,
        B::SubscribeToShardEvent(event) => Reply::SubscribeToShardEvent(SubscribeToShardEvent {
            records: list(event.records(), |item| record(frame, item))?,
            continuation_sequence_number: required_string(
                event.continuation_sequence_number(),
                "SubscribeToShardEvent",
                "continuation_sequence_number",
            )?,
            millis_behind_latest: event.millis_behind_latest(),
            child_shards: event.child_shards().map(|children| list(Some(children), child_shard)).transpose()?,
        }),
        B::SubscribeToShardEnd(_) => Reply::SubscribeToShardEnd,
        B::SplitShard(_) => Reply::SplitShard,
        B::MergeShards(_) => Reply::MergeShards,
        B::UpdateShardCount(body) => Reply::UpdateShardCount(UpdateShardCountResponse {
            stream_name: body.stream_name().map(str::to_owned),
            current_shard_count: body.current_shard_count(),
            target_shard_count: body.target_shard_count(),
            stream_arn: body.stream_arn().map(str::to_owned),
        }),
        B::Unknown(tag) => Reply::Unknown(tag),
    })
}

// ---------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------

fn required<T>(value: Option<T>, shape: &'static str, member: &'static str) -> Result<T> {
    value.ok_or(ClientError::MissingMember { shape, member })
}

fn required_string(value: Option<&str>, shape: &'static str, member: &'static str) -> Result<String> {
    required(value, shape, member).map(str::to_owned)
}

fn optional_string(value: Option<&str>) -> Option<String> {
    value.map(str::to_owned)
}

fn strings(list: Option<Vector<'_, ForwardsUOffset<&str>>>) -> Vec<String> {
    list.map(|list| list.iter().map(str::to_owned).collect()).unwrap_or_default()
}

/// Converts every table of a vector; an absent vector is empty.
fn list<'a, T, U>(
    vector: Option<Vector<'a, ForwardsUOffset<T>>>,
    convert: impl FnMut(<T as Follow<'a>>::Inner) -> Result<U>,
) -> Result<Vec<U>>
where
    T: Follow<'a> + 'a,
{
    match vector {
        Some(vector) => vector.iter().map(convert).collect(),
        None => Ok(Vec::new()),
    }
}

/// `part` as a slice of `frame`, without a copy. `part` always lies inside `frame`, since
/// the verified flatbuffer it came from borrows `frame`; were that ever not so, the bytes are
/// copied rather than trusted, so no server input can make this panic.
fn bytes_of(frame: &Bytes, part: &[u8]) -> Bytes {
    let offset = (part.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
    match offset.checked_add(part.len()) {
        Some(end) if end <= frame.len() => frame.slice(offset..end),
        _ => Bytes::copy_from_slice(part),
    }
}

fn timestamp(epoch_ms: i64) -> Timestamp {
    Timestamp::from_epoch_ms(epoch_ms)
}

// ---------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------

fn tag(tag: wire::Tag<'_>) -> Result<Tag> {
    Ok(Tag { key: required_string(tag.key(), "Tag", "key")?, value: optional_string(tag.value()) })
}

fn hash_key_range(range: wire::HashKeyRange<'_>) -> Result<HashKeyRange> {
    Ok(HashKeyRange {
        starting_hash_key: required_string(range.starting_hash_key(), "HashKeyRange", "starting_hash_key")?,
        ending_hash_key: required_string(range.ending_hash_key(), "HashKeyRange", "ending_hash_key")?,
    })
}

fn shard(shard: wire::Shard<'_>) -> Result<Shard> {
    let range = required(shard.sequence_number_range(), "Shard", "sequence_number_range")?;
    Ok(Shard {
        shard_id: required_string(shard.shard_id(), "Shard", "shard_id")?,
        parent_shard_id: optional_string(shard.parent_shard_id()),
        adjacent_parent_shard_id: optional_string(shard.adjacent_parent_shard_id()),
        hash_key_range: hash_key_range(required(shard.hash_key_range(), "Shard", "hash_key_range")?)?,
        sequence_number_range: SequenceNumberRange {
            starting_sequence_number: required_string(
                range.starting_sequence_number(),
                "SequenceNumberRange",
                "starting_sequence_number",
            )?,
            ending_sequence_number: optional_string(range.ending_sequence_number()),
        },
    })
}

fn child_shard(child: wire::ChildShard<'_>) -> Result<ChildShard> {
    Ok(ChildShard {
        shard_id: required_string(child.shard_id(), "ChildShard", "shard_id")?,
        parent_shards: strings(child.parent_shards()),
        hash_key_range: hash_key_range(required(child.hash_key_range(), "ChildShard", "hash_key_range")?)?,
    })
}

fn enhanced_metrics(metrics: wire::EnhancedMetrics<'_>) -> Result<EnhancedMetrics> {
    let names = metrics.shard_level_metrics();
    Ok(EnhancedMetrics {
        shard_level_metrics: names.map(|names| names.iter().map(MetricsName::from_wire).collect()).unwrap_or_default(),
    })
}

fn record(frame: &Bytes, record: wire::Record<'_>) -> Result<Record> {
    Ok(Record {
        sequence_number: required_string(record.sequence_number(), "Record", "sequence_number")?,
        approximate_arrival_timestamp: record.approximate_arrival_timestamp().map(timestamp),
        // An absent vector is an empty payload (a writer may leave an empty vector out).
        data: record.data().map(|data| bytes_of(frame, data.bytes())).unwrap_or_default(),
        partition_key: required_string(record.partition_key(), "Record", "partition_key")?,
        encryption_type: record.encryption_type().map(EncryptionType::from_wire),
    })
}

fn stream_description(description: wire::StreamDescription<'_>) -> Result<StreamDescription> {
    const SHAPE: &str = "StreamDescription";
    Ok(StreamDescription {
        stream_name: required_string(description.stream_name(), SHAPE, "stream_name")?,
        stream_arn: required_string(description.stream_arn(), SHAPE, "stream_arn")?,
        stream_status: StreamStatus::from_wire(description.stream_status()),
        stream_mode: description.stream_mode().map(StreamMode::from_wire),
        shards: list(description.shards(), shard)?,
        has_more_shards: description.has_more_shards(),
        retention_period_hours: description.retention_period_hours(),
        stream_creation_timestamp: timestamp(description.stream_creation_timestamp()),
        enhanced_monitoring: list(description.enhanced_monitoring(), enhanced_metrics)?,
        encryption_type: description.encryption_type().map(EncryptionType::from_wire),
        key_id: optional_string(description.key_id()),
    })
}

fn stream_description_summary(summary: wire::StreamDescriptionSummary<'_>) -> Result<StreamDescriptionSummary> {
    const SHAPE: &str = "StreamDescriptionSummary";
    Ok(StreamDescriptionSummary {
        stream_name: required_string(summary.stream_name(), SHAPE, "stream_name")?,
        stream_arn: required_string(summary.stream_arn(), SHAPE, "stream_arn")?,
        stream_status: StreamStatus::from_wire(summary.stream_status()),
        stream_mode: summary.stream_mode().map(StreamMode::from_wire),
        retention_period_hours: summary.retention_period_hours(),
        stream_creation_timestamp: timestamp(summary.stream_creation_timestamp()),
        enhanced_monitoring: list(summary.enhanced_monitoring(), enhanced_metrics)?,
        encryption_type: summary.encryption_type().map(EncryptionType::from_wire),
        key_id: optional_string(summary.key_id()),
        open_shard_count: summary.open_shard_count(),
        consumer_count: summary.consumer_count(),
        max_record_size_in_kib: summary.max_record_size_in_kib(),
    })
}

fn stream_summary(summary: wire::StreamSummary<'_>) -> Result<StreamSummary> {
    const SHAPE: &str = "StreamSummary";
    Ok(StreamSummary {
        stream_name: required_string(summary.stream_name(), SHAPE, "stream_name")?,
        stream_arn: required_string(summary.stream_arn(), SHAPE, "stream_arn")?,
        stream_status: StreamStatus::from_wire(summary.stream_status()),
        stream_mode: summary.stream_mode().map(StreamMode::from_wire),
        stream_creation_timestamp: summary.stream_creation_timestamp().map(timestamp),
    })
}

fn consumer(consumer: wire::Consumer<'_>) -> Result<Consumer> {
    const SHAPE: &str = "Consumer";
    Ok(Consumer {
        consumer_name: required_string(consumer.consumer_name(), SHAPE, "consumer_name")?,
        consumer_arn: required_string(consumer.consumer_arn(), SHAPE, "consumer_arn")?,
        consumer_status: ConsumerStatus::from_wire(consumer.consumer_status()),
        consumer_creation_timestamp: timestamp(consumer.consumer_creation_timestamp()),
    })
}

fn consumer_description(description: wire::ConsumerDescription<'_>) -> Result<ConsumerDescription> {
    const SHAPE: &str = "ConsumerDescription";
    Ok(ConsumerDescription {
        consumer_name: required_string(description.consumer_name(), SHAPE, "consumer_name")?,
        consumer_arn: required_string(description.consumer_arn(), SHAPE, "consumer_arn")?,
        consumer_status: ConsumerStatus::from_wire(description.consumer_status()),
        consumer_creation_timestamp: timestamp(description.consumer_creation_timestamp()),
        stream_arn: required_string(description.stream_arn(), SHAPE, "stream_arn")?,
    })
}

#[cfg(test)]
mod tests;
