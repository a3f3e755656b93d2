//! Requests to frames: each request struct writes its flatbuffers table into a builder and
//! finishes it as a request frame (`sluice_protocol::encode_request`).
//!
//! Members are written exactly as the struct holds them: `None` is an absent field, so the
//! server sees what the caller set and answers `Validation` for what is missing, as AWS does.
//! Record payloads are written with `create_bytes`, one copy into the frame.

use sluice_protocol::flatbuffers::{FlatBufferBuilder, ForwardsUOffset, Vector, WIPOffset};
use sluice_protocol::wire;
use sluice_protocol::{create_bytes, encode_request, FrameError};

use crate::types::*;

/// A request that can be sent: its operation name and its encoding.
pub(crate) trait EncodeRequest {
    /// The AWS operation name, for errors (`PutRecords`).
    const OPERATION: &'static str;

    /// Builds the request in `fbb` (fresh or reset) and finishes it as one frame.
    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError>;
}

fn string<'b>(fbb: &mut FlatBufferBuilder<'b>, value: &str) -> Option<WIPOffset<&'b str>> {
    Some(fbb.create_string(value))
}

fn optional_string<'b>(fbb: &mut FlatBufferBuilder<'b>, value: Option<&str>) -> Option<WIPOffset<&'b str>> {
    value.map(|value| fbb.create_string(value))
}

type TableVector<'b, T> = WIPOffset<Vector<'b, ForwardsUOffset<T>>>;

fn tags<'b>(fbb: &mut FlatBufferBuilder<'b>, tags: &[Tag]) -> TableVector<'b, wire::Tag<'b>> {
    let tags: Vec<_> = tags
        .iter()
        .map(|tag| {
            let key = string(fbb, &tag.key);
            let value = optional_string(fbb, tag.value.as_deref());
            wire::Tag::create(fbb, &wire::TagArgs { key, value })
        })
        .collect();
    fbb.create_vector(&tags)
}

/// Tags for an operation where AWS makes them optional: an empty list is sent as absent.
fn optional_tags<'b>(fbb: &mut FlatBufferBuilder<'b>, list: &[Tag]) -> Option<TableVector<'b, wire::Tag<'b>>> {
    (!list.is_empty()).then(|| tags(fbb, list))
}

fn timestamp(value: Option<Timestamp>) -> Option<i64> {
    value.map(Timestamp::epoch_ms)
}

impl EncodeRequest for CreateStreamRequest {
    const OPERATION: &'static str = "CreateStream";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::CreateStreamRequestArgs {
            stream_name: string(fbb, &self.stream_name),
            shard_count: self.shard_count,
            stream_mode: self.stream_mode.map(StreamMode::to_wire),
            tags: optional_tags(fbb, &self.tags),
            max_record_size_in_kib: self.max_record_size_in_kib,
        };
        let body = wire::CreateStreamRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for DeleteStreamRequest {
    const OPERATION: &'static str = "DeleteStream";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::DeleteStreamRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            enforce_consumer_deletion: self.enforce_consumer_deletion,
        };
        let body = wire::DeleteStreamRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for DescribeStreamRequest {
    const OPERATION: &'static str = "DescribeStream";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::DescribeStreamRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            limit: self.limit,
            exclusive_start_shard_id: optional_string(fbb, self.exclusive_start_shard_id.as_deref()),
        };
        let body = wire::DescribeStreamRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for DescribeStreamSummaryRequest {
    const OPERATION: &'static str = "DescribeStreamSummary";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::DescribeStreamSummaryRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
        };
        let body = wire::DescribeStreamSummaryRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for ListStreamsRequest {
    const OPERATION: &'static str = "ListStreams";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::ListStreamsRequestArgs {
            limit: self.limit,
            exclusive_start_stream_name: optional_string(fbb, self.exclusive_start_stream_name.as_deref()),
            next_token: optional_string(fbb, self.next_token.as_deref()),
        };
        let body = wire::ListStreamsRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for ListShardsRequest {
    const OPERATION: &'static str = "ListShards";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let shard_filter = self.shard_filter.as_ref().map(|filter| {
            let args = wire::ShardFilterArgs {
                type_: Some(filter.r#type.to_wire()),
                shard_id: optional_string(fbb, filter.shard_id.as_deref()),
                timestamp: timestamp(filter.timestamp),
            };
            wire::ShardFilter::create(fbb, &args)
        });
        let args = wire::ListShardsRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            next_token: optional_string(fbb, self.next_token.as_deref()),
            exclusive_start_shard_id: optional_string(fbb, self.exclusive_start_shard_id.as_deref()),
            max_results: self.max_results,
            stream_creation_timestamp: timestamp(self.stream_creation_timestamp),
            shard_filter,
        };
        let body = wire::ListShardsRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for PutRecordRequest {
    const OPERATION: &'static str = "PutRecord";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::PutRecordRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            data: Some(create_bytes(fbb, &self.data)),
            partition_key: string(fbb, &self.partition_key),
            explicit_hash_key: optional_string(fbb, self.explicit_hash_key.as_deref()),
            sequence_number_for_ordering: optional_string(fbb, self.sequence_number_for_ordering.as_deref()),
        };
        let body = wire::PutRecordRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for PutRecordsRequest {
    const OPERATION: &'static str = "PutRecords";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let records: Vec<_> = self
            .records
            .iter()
            .map(|record| {
                let args = wire::PutRecordsEntryArgs {
                    data: Some(create_bytes(fbb, &record.data)),
                    partition_key: string(fbb, &record.partition_key),
                    explicit_hash_key: optional_string(fbb, record.explicit_hash_key.as_deref()),
                };
                wire::PutRecordsEntry::create(fbb, &args)
            })
            .collect();
        let args = wire::PutRecordsRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            records: Some(fbb.create_vector(&records)),
        };
        let body = wire::PutRecordsRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for GetShardIteratorRequest {
    const OPERATION: &'static str = "GetShardIterator";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::GetShardIteratorRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            shard_id: string(fbb, &self.shard_id),
            shard_iterator_type: Some(self.shard_iterator_type.to_wire()),
            starting_sequence_number: optional_string(fbb, self.starting_sequence_number.as_deref()),
            timestamp: timestamp(self.timestamp),
        };
        let body = wire::GetShardIteratorRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for GetRecordsRequest {
    const OPERATION: &'static str = "GetRecords";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::GetRecordsRequestArgs {
            shard_iterator: string(fbb, &self.shard_iterator),
            limit: self.limit,
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
        };
        let body = wire::GetRecordsRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for IncreaseStreamRetentionPeriodRequest {
    const OPERATION: &'static str = "IncreaseStreamRetentionPeriod";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::IncreaseStreamRetentionPeriodRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            retention_period_hours: Some(self.retention_period_hours),
        };
        let body = wire::IncreaseStreamRetentionPeriodRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for DecreaseStreamRetentionPeriodRequest {
    const OPERATION: &'static str = "DecreaseStreamRetentionPeriod";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::DecreaseStreamRetentionPeriodRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            retention_period_hours: Some(self.retention_period_hours),
        };
        let body = wire::DecreaseStreamRetentionPeriodRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for AddTagsToStreamRequest {
    const OPERATION: &'static str = "AddTagsToStream";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::AddTagsToStreamRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            // Required by AWS: sent even when empty, so the server can say so.
            tags: Some(tags(fbb, &self.tags)),
        };
        let body = wire::AddTagsToStreamRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for RemoveTagsFromStreamRequest {
    const OPERATION: &'static str = "RemoveTagsFromStream";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let tag_keys: Vec<_> = self.tag_keys.iter().map(|key| fbb.create_string(key)).collect();
        let args = wire::RemoveTagsFromStreamRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            tag_keys: Some(fbb.create_vector(&tag_keys)),
        };
        let body = wire::RemoveTagsFromStreamRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for ListTagsForStreamRequest {
    const OPERATION: &'static str = "ListTagsForStream";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::ListTagsForStreamRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            exclusive_start_tag_key: optional_string(fbb, self.exclusive_start_tag_key.as_deref()),
            limit: self.limit,
        };
        let body = wire::ListTagsForStreamRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

/// DescribeLimits has no members; this stands for its empty request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DescribeLimitsRequest;

impl EncodeRequest for DescribeLimitsRequest {
    const OPERATION: &'static str = "DescribeLimits";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let body = wire::DescribeLimitsRequest::create(fbb, &wire::DescribeLimitsRequestArgs {});
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for RegisterStreamConsumerRequest {
    const OPERATION: &'static str = "RegisterStreamConsumer";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::RegisterStreamConsumerRequestArgs {
            stream_arn: string(fbb, &self.stream_arn),
            consumer_name: string(fbb, &self.consumer_name),
            tags: optional_tags(fbb, &self.tags),
        };
        let body = wire::RegisterStreamConsumerRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for DeregisterStreamConsumerRequest {
    const OPERATION: &'static str = "DeregisterStreamConsumer";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::DeregisterStreamConsumerRequestArgs {
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            consumer_name: optional_string(fbb, self.consumer_name.as_deref()),
            consumer_arn: optional_string(fbb, self.consumer_arn.as_deref()),
        };
        let body = wire::DeregisterStreamConsumerRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for DescribeStreamConsumerRequest {
    const OPERATION: &'static str = "DescribeStreamConsumer";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::DescribeStreamConsumerRequestArgs {
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            consumer_name: optional_string(fbb, self.consumer_name.as_deref()),
            consumer_arn: optional_string(fbb, self.consumer_arn.as_deref()),
        };
        let body = wire::DescribeStreamConsumerRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for ListStreamConsumersRequest {
    const OPERATION: &'static str = "ListStreamConsumers";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::ListStreamConsumersRequestArgs {
            stream_arn: string(fbb, &self.stream_arn),
            next_token: optional_string(fbb, self.next_token.as_deref()),
            max_results: self.max_results,
            stream_creation_timestamp: timestamp(self.stream_creation_timestamp),
        };
        let body = wire::ListStreamConsumersRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for SubscribeToShardRequest {
    const OPERATION: &'static str = "SubscribeToShard";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let position = &self.starting_position;
        let args = wire::StartingPositionArgs {
            type_: Some(position.r#type.to_wire()),
            sequence_number: optional_string(fbb, position.sequence_number.as_deref()),
            timestamp: timestamp(position.timestamp),
        };
        let starting_position = wire::StartingPosition::create(fbb, &args);
        let args = wire::SubscribeToShardRequestArgs {
            consumer_arn: string(fbb, &self.consumer_arn),
            shard_id: string(fbb, &self.shard_id),
            starting_position: Some(starting_position),
        };
        let body = wire::SubscribeToShardRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

#[cfg(test)]
mod tests;

impl EncodeRequest for SplitShardRequest {
    const OPERATION: &'static str = "SplitShard";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::SplitShardRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            shard_to_split: string(fbb, &self.shard_to_split),
            new_starting_hash_key: string(fbb, &self.new_starting_hash_key),
        };
        let body = wire::SplitShardRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for MergeShardsRequest {
    const OPERATION: &'static str = "MergeShards";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::MergeShardsRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            shard_to_merge: string(fbb, &self.shard_to_merge),
            adjacent_shard_to_merge: string(fbb, &self.adjacent_shard_to_merge),
        };
        let body = wire::MergeShardsRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}

impl EncodeRequest for UpdateShardCountRequest {
    const OPERATION: &'static str = "UpdateShardCount";

    fn encode<'f, 'b>(&self, fbb: &'f mut FlatBufferBuilder<'b>, correlation_id: u64) -> Result<&'f [u8], FrameError> {
        let args = wire::UpdateShardCountRequestArgs {
            stream_name: optional_string(fbb, self.stream_name.as_deref()),
            stream_arn: optional_string(fbb, self.stream_arn.as_deref()),
            target_shard_count: Some(self.target_shard_count),
            scaling_type: string(fbb, &self.scaling_type),
        };
        let body = wire::UpdateShardCountRequest::create(fbb, &args);
        encode_request(fbb, correlation_id, body)
    }
}
