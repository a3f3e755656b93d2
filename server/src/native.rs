//! The native protocol: flatbuffers requests to [`model`](crate::model) values and back.
//!
//! Payloads are not copied on the way in: a record's data is a [`Bytes`] slice of the
//! received frame, and it is copied once, into the journal's O_DIRECT buffer.

use crate::error::{ErrorKind, ServiceError};
use crate::model::{self, *};
use crate::node::Core;
use crate::subscription::SubscriptionItem;
use bytes::Bytes;
use sluice_protocol::flatbuffers::{FlatBufferBuilder, ForwardsUOffset, Vector, WIPOffset};
use sluice_protocol::wire::{self, ErrorCode};
use sluice_protocol::{
    create_bytes, decode_request, encode_error_response, encode_response, RequestBodyRef, ResponseBodyTable,
};
use std::rc::Rc;

type Result<T> = std::result::Result<T, ServiceError>;

/// Where response frames go: the connection's writer.
pub type FrameSink = crate::connection::Outbound;

pub fn error_code(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::InternalFailure => ErrorCode::InternalFailure,
        ErrorKind::ResourceNotFound => ErrorCode::ResourceNotFound,
        ErrorKind::ResourceInUse => ErrorCode::ResourceInUse,
        ErrorKind::InvalidArgument => ErrorCode::InvalidArgument,
        ErrorKind::LimitExceeded => ErrorCode::LimitExceeded,
        ErrorKind::ProvisionedThroughputExceeded => ErrorCode::ProvisionedThroughputExceeded,
        ErrorKind::ExpiredIterator => ErrorCode::ExpiredIterator,
        ErrorKind::ExpiredNextToken => ErrorCode::ExpiredNextToken,
        ErrorKind::Validation => ErrorCode::Validation,
        ErrorKind::Serialization => ErrorCode::Serialization,
        ErrorKind::UnknownOperation => ErrorCode::UnknownOperation,
    }
}

pub fn error_frame(correlation_id: u64, error: &ServiceError) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::with_capacity(256 + error.message.len());
    let frame = encode_error_response(&mut fbb, correlation_id, error_code(error.kind), &error.message);
    frame.expect("an error frame fits").to_vec()
}

/// Answers one request frame: sends its response frame(s) to `sink`.
pub async fn handle(core: &Rc<Core>, frame: Bytes, sink: &FrameSink) {
    let (correlation_id, outcome): (u64, Result<Vec<u8>>) = match decode_request(&frame) {
        Ok(Some((_, request))) => {
            let correlation_id = request.correlation_id();
            let body = RequestBodyRef::of(&request);
            if let RequestBodyRef::SubscribeToShard(request) = body {
                let request = subscribe_request(request);
                drop(frame);
                subscribe(core, correlation_id, request, sink).await;
                return;
            }
            let Ok(reservation) = sink.reserve(response_bytes_max(&body)).await else { return };
            let outcome = dispatch(core, correlation_id, &frame, body).await;
            let bytes = outcome.unwrap_or_else(|error| error_frame(correlation_id, &error));
            let _ = sink.send_reserved(bytes, reservation).await;
            return;
        }
        // The connection checked the frame's length; the body failed verification.
        Ok(None) | Err(_) => (0, Err(ServiceError::new(ErrorKind::Serialization, "malformed request frame"))),
    };
    let bytes = outcome.unwrap_or_else(|error| error_frame(correlation_id, &error));
    let _ = sink.send(bytes).await;
}

/// How large the answer to `body` can be, reserved before it is computed. Only GetRecords
/// answers can be large; every other response is small next to the connection's budget.
fn response_bytes_max(body: &RequestBodyRef<'_>) -> usize {
    const SMALL_RESPONSE_BYTES: usize = 64 << 10;
    match body {
        RequestBodyRef::GetRecords(request) => {
            let records =
                request.limit().map_or(sluice_engine::limits::GET_RECORDS_COUNT_MAX, |limit| limit.max(1) as usize);
            records.saturating_mul(sluice_engine::limits::RECORD_BYTES_MAX + 256).min(sluice_protocol::FRAME_BYTES_MAX)
        }
        _ => SMALL_RESPONSE_BYTES,
    }
}

fn string(text: Option<&str>) -> Option<String> {
    text.map(str::to_string)
}

fn required(text: Option<&str>, member: &str) -> Result<String> {
    text.map(str::to_string)
        .ok_or_else(|| ServiceError::validation(format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null")))
}

fn unsigned(value: Option<i32>, member: &str) -> Result<Option<u32>> {
    value
        .map(|value| {
            u32::try_from(value).map_err(|_| {
                ServiceError::validation(format!("1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must have value greater than or equal to 0"))
            })
        })
        .transpose()
}

fn stream_ref(name: Option<&str>, arn: Option<&str>) -> StreamRef {
    StreamRef { stream_name: string(name), stream_arn: string(arn) }
}

/// A payload as a zero-copy slice of its frame.
fn payload(frame: &Bytes, data: Option<Vector<'_, u8>>) -> Bytes {
    data.map_or_else(Bytes::new, |data| frame.slice_ref(data.bytes()))
}

fn tags(list: Option<Vector<'_, ForwardsUOffset<wire::Tag<'_>>>>) -> Result<Vec<Tag>> {
    list.into_iter()
        .flatten()
        .map(|tag| Ok(Tag { key: required(tag.key(), "tags.key")?, value: string(tag.value()) }))
        .collect()
}

fn iterator_type(value: wire::ShardIteratorType) -> Result<ShardIteratorType> {
    Ok(match value {
        wire::ShardIteratorType::AT_SEQUENCE_NUMBER => ShardIteratorType::AtSequenceNumber,
        wire::ShardIteratorType::AFTER_SEQUENCE_NUMBER => ShardIteratorType::AfterSequenceNumber,
        wire::ShardIteratorType::TRIM_HORIZON => ShardIteratorType::TrimHorizon,
        wire::ShardIteratorType::LATEST => ShardIteratorType::Latest,
        wire::ShardIteratorType::AT_TIMESTAMP => ShardIteratorType::AtTimestamp,
        other => return Err(ServiceError::validation(format!("Unknown ShardIteratorType {}", other.0))),
    })
}

fn stream_mode_in(value: wire::StreamMode) -> Result<StreamMode> {
    match value {
        wire::StreamMode::PROVISIONED => Ok(StreamMode::Provisioned),
        wire::StreamMode::ON_DEMAND => Ok(StreamMode::OnDemand),
        other => Err(ServiceError::validation(format!("Unknown StreamMode {}", other.0))),
    }
}

fn stream_mode_out(value: StreamMode) -> wire::StreamMode {
    match value {
        StreamMode::Provisioned => wire::StreamMode::PROVISIONED,
        StreamMode::OnDemand => wire::StreamMode::ON_DEMAND,
    }
}

fn stream_status_out(value: StreamStatus) -> wire::StreamStatus {
    match value {
        StreamStatus::Creating => wire::StreamStatus::CREATING,
        StreamStatus::Deleting => wire::StreamStatus::DELETING,
        StreamStatus::Active => wire::StreamStatus::ACTIVE,
        StreamStatus::Updating => wire::StreamStatus::UPDATING,
    }
}

fn consumer_status_out(value: ConsumerStatus) -> wire::ConsumerStatus {
    match value {
        ConsumerStatus::Creating => wire::ConsumerStatus::CREATING,
        ConsumerStatus::Deleting => wire::ConsumerStatus::DELETING,
        ConsumerStatus::Active => wire::ConsumerStatus::ACTIVE,
    }
}

fn subscribe_request(request: wire::SubscribeToShardRequest<'_>) -> Result<SubscribeToShard> {
    let position = request
        .starting_position()
        .ok_or_else(|| ServiceError::validation("1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null"))?;
    let position_type =
        position.type_().ok_or_else(|| ServiceError::validation("StartingPosition.Type must not be null"))?;
    Ok(SubscribeToShard {
        consumer_arn: required(request.consumer_arn(), "consumerARN")?,
        shard_id: required(request.shard_id(), "shardId")?,
        starting_position: StartingPosition {
            position_type: iterator_type(position_type)?,
            sequence_number: string(position.sequence_number()),
            timestamp_ms: position.timestamp(),
        },
    })
}

type Builder = FlatBufferBuilder<'static>;

fn finish<T: ResponseBodyTable>(
    mut fbb: Builder,
    correlation_id: u64,
    build: impl FnOnce(&mut Builder) -> WIPOffset<T>,
) -> Result<Vec<u8>> {
    let body = build(&mut fbb);
    encode_response(&mut fbb, correlation_id, body)
        .map(<[u8]>::to_vec)
        .map_err(|error| ServiceError::internal(format!("response does not fit a frame: {error}")))
}

fn builder() -> Builder {
    FlatBufferBuilder::with_capacity(1024)
}

macro_rules! empty_response {
    ($table:ident, $args:ident, $correlation_id:expr) => {
        finish(builder(), $correlation_id, |fbb| wire::$table::create(fbb, &wire::$args {}))
    };
}

async fn dispatch(core: &Rc<Core>, correlation_id: u64, frame: &Bytes, body: RequestBodyRef<'_>) -> Result<Vec<u8>> {
    let cid = correlation_id;
    match body {
        RequestBodyRef::CreateStream(request) => {
            let request = CreateStream {
                stream_name: required(request.stream_name(), "streamName")?,
                shard_count: unsigned(request.shard_count(), "shardCount")?,
                stream_mode: request.stream_mode().map(stream_mode_in).transpose()?,
                tags: tags(request.tags())?,
            };
            core.create_stream(request).await?;
            empty_response!(CreateStreamResponse, CreateStreamResponseArgs, cid)
        }
        RequestBodyRef::DeleteStream(request) => {
            let request = DeleteStream {
                stream: stream_ref(request.stream_name(), request.stream_arn()),
                enforce_consumer_deletion: request.enforce_consumer_deletion().unwrap_or(false),
            };
            core.delete_stream(request).await?;
            empty_response!(DeleteStreamResponse, DeleteStreamResponseArgs, cid)
        }
        RequestBodyRef::DescribeStream(request) => {
            let description = core.describe_stream(DescribeStream {
                stream: stream_ref(request.stream_name(), request.stream_arn()),
                limit: unsigned(request.limit(), "limit")?,
                exclusive_start_shard_id: string(request.exclusive_start_shard_id()),
            })?;
            finish(builder(), cid, |fbb| {
                let shards = shard_list(fbb, &description.shards);
                let stream_name = fbb.create_string(&description.stream_name);
                let stream_arn = fbb.create_string(&description.stream_arn);
                let description = wire::StreamDescription::create(
                    fbb,
                    &wire::StreamDescriptionArgs {
                        stream_name: Some(stream_name),
                        stream_arn: Some(stream_arn),
                        stream_status: stream_status_out(description.stream_status),
                        stream_mode: Some(stream_mode_out(description.stream_mode)),
                        shards: Some(shards),
                        has_more_shards: description.has_more_shards,
                        retention_period_hours: description.retention_period_hours as i32,
                        stream_creation_timestamp: description.stream_creation_timestamp_ms,
                        encryption_type: Some(wire::EncryptionType::NONE),
                        ..Default::default()
                    },
                );
                wire::DescribeStreamResponse::create(
                    fbb,
                    &wire::DescribeStreamResponseArgs { stream_description: Some(description) },
                )
            })
        }
        RequestBodyRef::DescribeStreamSummary(request) => {
            let summary = core.describe_stream_summary(stream_ref(request.stream_name(), request.stream_arn()))?;
            finish(builder(), cid, |fbb| {
                let stream_name = fbb.create_string(&summary.stream_name);
                let stream_arn = fbb.create_string(&summary.stream_arn);
                let summary = wire::StreamDescriptionSummary::create(
                    fbb,
                    &wire::StreamDescriptionSummaryArgs {
                        stream_name: Some(stream_name),
                        stream_arn: Some(stream_arn),
                        stream_status: stream_status_out(summary.stream_status),
                        stream_mode: Some(stream_mode_out(summary.stream_mode)),
                        retention_period_hours: summary.retention_period_hours as i32,
                        stream_creation_timestamp: summary.stream_creation_timestamp_ms,
                        encryption_type: Some(wire::EncryptionType::NONE),
                        open_shard_count: summary.open_shard_count as i32,
                        consumer_count: Some(summary.consumer_count as i32),
                        max_record_size_in_kib: Some(1024),
                        ..Default::default()
                    },
                );
                wire::DescribeStreamSummaryResponse::create(
                    fbb,
                    &wire::DescribeStreamSummaryResponseArgs { stream_description_summary: Some(summary) },
                )
            })
        }
        RequestBodyRef::ListStreams(request) => {
            let output = core.list_streams(ListStreams {
                limit: unsigned(request.limit(), "limit")?,
                exclusive_start_stream_name: string(request.exclusive_start_stream_name()),
                next_token: string(request.next_token()),
            })?;
            finish(builder(), cid, |fbb| {
                let names: Vec<_> = output.stream_names.iter().map(|name| fbb.create_string(name)).collect();
                let names = fbb.create_vector(&names);
                let summaries: Vec<_> = output
                    .stream_summaries
                    .iter()
                    .map(|summary| {
                        let stream_name = fbb.create_string(&summary.stream_name);
                        let stream_arn = fbb.create_string(&summary.stream_arn);
                        wire::StreamSummary::create(
                            fbb,
                            &wire::StreamSummaryArgs {
                                stream_name: Some(stream_name),
                                stream_arn: Some(stream_arn),
                                stream_status: stream_status_out(summary.stream_status),
                                stream_mode: Some(stream_mode_out(summary.stream_mode)),
                                stream_creation_timestamp: Some(summary.stream_creation_timestamp_ms),
                            },
                        )
                    })
                    .collect();
                let summaries = fbb.create_vector(&summaries);
                let next_token = output.next_token.as_deref().map(|token| fbb.create_string(token));
                wire::ListStreamsResponse::create(
                    fbb,
                    &wire::ListStreamsResponseArgs {
                        stream_names: Some(names),
                        has_more_streams: output.has_more_streams,
                        next_token,
                        stream_summaries: Some(summaries),
                    },
                )
            })
        }
        RequestBodyRef::ListShards(request) => {
            let shard_filter = match request.shard_filter() {
                Some(filter) => Some(ShardFilter {
                    filter_type: match filter.type_() {
                        Some(wire::ShardFilterType::AFTER_SHARD_ID) => ShardFilterType::AfterShardId,
                        Some(wire::ShardFilterType::AT_TRIM_HORIZON) => ShardFilterType::AtTrimHorizon,
                        Some(wire::ShardFilterType::FROM_TRIM_HORIZON) => ShardFilterType::FromTrimHorizon,
                        Some(wire::ShardFilterType::AT_LATEST) => ShardFilterType::AtLatest,
                        Some(wire::ShardFilterType::AT_TIMESTAMP) => ShardFilterType::AtTimestamp,
                        Some(wire::ShardFilterType::FROM_TIMESTAMP) => ShardFilterType::FromTimestamp,
                        _ => return Err(ServiceError::validation("ShardFilter.Type is missing or unknown")),
                    },
                    shard_id: string(filter.shard_id()),
                    timestamp_ms: filter.timestamp(),
                }),
                None => None,
            };
            let output = core.list_shards(ListShards {
                stream: stream_ref(request.stream_name(), request.stream_arn()),
                next_token: string(request.next_token()),
                exclusive_start_shard_id: string(request.exclusive_start_shard_id()),
                max_results: unsigned(request.max_results(), "maxResults")?,
                stream_creation_timestamp_ms: request.stream_creation_timestamp(),
                shard_filter,
            })?;
            finish(builder(), cid, |fbb| {
                let shards = shard_list(fbb, &output.shards);
                let next_token = output.next_token.as_deref().map(|token| fbb.create_string(token));
                wire::ListShardsResponse::create(
                    fbb,
                    &wire::ListShardsResponseArgs { shards: Some(shards), next_token },
                )
            })
        }
        RequestBodyRef::PutRecord(request) => {
            let request = PutRecord {
                stream: stream_ref(request.stream_name(), request.stream_arn()),
                entry: PutRecordsEntry {
                    data: payload(frame, request.data()),
                    partition_key: required(request.partition_key(), "partitionKey")?,
                    explicit_hash_key: string(request.explicit_hash_key()),
                },
                sequence_number_for_ordering: string(request.sequence_number_for_ordering()),
            };
            let output = core.put_record(request).await?;
            finish(builder(), cid, |fbb| {
                let shard_id = fbb.create_string(&output.shard_id);
                let sequence_number = fbb.create_string(&output.sequence_number);
                wire::PutRecordResponse::create(
                    fbb,
                    &wire::PutRecordResponseArgs {
                        shard_id: Some(shard_id),
                        sequence_number: Some(sequence_number),
                        encryption_type: Some(wire::EncryptionType::NONE),
                    },
                )
            })
        }
        RequestBodyRef::PutRecords(request) => {
            let records = request
                .records()
                .into_iter()
                .flatten()
                .map(|entry| {
                    Ok(PutRecordsEntry {
                        data: payload(frame, entry.data()),
                        partition_key: required(entry.partition_key(), "records.member.partitionKey")?,
                        explicit_hash_key: string(entry.explicit_hash_key()),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let output = core
                .put_records(PutRecords { stream: stream_ref(request.stream_name(), request.stream_arn()), records })
                .await?;
            finish(FlatBufferBuilder::with_capacity(64 + output.records.len() * 128), cid, |fbb| {
                let entries: Vec<_> = output
                    .records
                    .iter()
                    .map(|result| match result {
                        Ok(put) => {
                            let shard_id = fbb.create_string(&put.shard_id);
                            let sequence_number = fbb.create_string(&put.sequence_number);
                            wire::PutRecordsResultEntry::create(
                                fbb,
                                &wire::PutRecordsResultEntryArgs {
                                    sequence_number: Some(sequence_number),
                                    shard_id: Some(shard_id),
                                    ..Default::default()
                                },
                            )
                        }
                        Err(error) => {
                            let message = fbb.create_string(&error.message);
                            wire::PutRecordsResultEntry::create(
                                fbb,
                                &wire::PutRecordsResultEntryArgs {
                                    error_code: Some(error_code(error.kind)),
                                    error_message: Some(message),
                                    ..Default::default()
                                },
                            )
                        }
                    })
                    .collect();
                let entries = fbb.create_vector(&entries);
                wire::PutRecordsResponse::create(
                    fbb,
                    &wire::PutRecordsResponseArgs {
                        failed_record_count: output.failed_record_count as i32,
                        records: Some(entries),
                        encryption_type: Some(wire::EncryptionType::NONE),
                    },
                )
            })
        }
        RequestBodyRef::GetShardIterator(request) => {
            let iterator = core
                .get_shard_iterator(GetShardIterator {
                    stream: stream_ref(request.stream_name(), request.stream_arn()),
                    shard_id: required(request.shard_id(), "shardId")?,
                    shard_iterator_type: request.shard_iterator_type().map(iterator_type).transpose()?,
                    starting_sequence_number: string(request.starting_sequence_number()),
                    timestamp_ms: request.timestamp(),
                })
                .await?;
            finish(builder(), cid, |fbb| {
                let iterator = fbb.create_string(&iterator);
                wire::GetShardIteratorResponse::create(
                    fbb,
                    &wire::GetShardIteratorResponseArgs { shard_iterator: Some(iterator) },
                )
            })
        }
        RequestBodyRef::GetRecords(request) => {
            let output = core
                .get_records(GetRecords {
                    shard_iterator: required(request.shard_iterator(), "shardIterator")?,
                    limit: unsigned(request.limit(), "limit")?,
                })
                .await?;
            let bytes: usize = output.records.iter().map(|r| r.data.len() + r.partition_key.len() + 128).sum();
            finish(FlatBufferBuilder::with_capacity(bytes + 1024), cid, |fbb| {
                let records = record_list(fbb, &output.records);
                let next = output.next_shard_iterator.as_deref().map(|it| fbb.create_string(it));
                let children = child_shard_list(fbb, &output.child_shards);
                wire::GetRecordsResponse::create(
                    fbb,
                    &wire::GetRecordsResponseArgs {
                        records: Some(records),
                        next_shard_iterator: next,
                        millis_behind_latest: Some(output.millis_behind_latest),
                        child_shards: (!output.child_shards.is_empty()).then_some(children),
                    },
                )
            })
        }
        RequestBodyRef::IncreaseStreamRetentionPeriod(request) => {
            let request = ChangeRetention {
                stream: stream_ref(request.stream_name(), request.stream_arn()),
                retention_period_hours: unsigned(request.retention_period_hours(), "retentionPeriodHours")?,
            };
            core.change_retention(request, true).await?;
            empty_response!(IncreaseStreamRetentionPeriodResponse, IncreaseStreamRetentionPeriodResponseArgs, cid)
        }
        RequestBodyRef::DecreaseStreamRetentionPeriod(request) => {
            let request = ChangeRetention {
                stream: stream_ref(request.stream_name(), request.stream_arn()),
                retention_period_hours: unsigned(request.retention_period_hours(), "retentionPeriodHours")?,
            };
            core.change_retention(request, false).await?;
            empty_response!(DecreaseStreamRetentionPeriodResponse, DecreaseStreamRetentionPeriodResponseArgs, cid)
        }
        RequestBodyRef::AddTagsToStream(request) => {
            let request = AddTagsToStream {
                stream: stream_ref(request.stream_name(), request.stream_arn()),
                tags: tags(request.tags())?,
            };
            core.add_tags(request).await?;
            empty_response!(AddTagsToStreamResponse, AddTagsToStreamResponseArgs, cid)
        }
        RequestBodyRef::RemoveTagsFromStream(request) => {
            let request = RemoveTagsFromStream {
                stream: stream_ref(request.stream_name(), request.stream_arn()),
                tag_keys: request.tag_keys().into_iter().flatten().map(str::to_string).collect(),
            };
            core.remove_tags(request).await?;
            empty_response!(RemoveTagsFromStreamResponse, RemoveTagsFromStreamResponseArgs, cid)
        }
        RequestBodyRef::ListTagsForStream(request) => {
            let output = core.list_tags(ListTagsForStream {
                stream: stream_ref(request.stream_name(), request.stream_arn()),
                exclusive_start_tag_key: string(request.exclusive_start_tag_key()),
                limit: unsigned(request.limit(), "limit")?,
            })?;
            finish(builder(), cid, |fbb| {
                let tags: Vec<_> = output
                    .tags
                    .iter()
                    .map(|tag| {
                        let key = fbb.create_string(&tag.key);
                        let value = tag.value.as_deref().map(|value| fbb.create_string(value));
                        wire::Tag::create(fbb, &wire::TagArgs { key: Some(key), value })
                    })
                    .collect();
                let tags = fbb.create_vector(&tags);
                wire::ListTagsForStreamResponse::create(
                    fbb,
                    &wire::ListTagsForStreamResponseArgs { tags: Some(tags), has_more_tags: output.has_more_tags },
                )
            })
        }
        RequestBodyRef::DescribeLimits(_) => {
            let output = core.describe_limits();
            finish(builder(), cid, |fbb| {
                wire::DescribeLimitsResponse::create(
                    fbb,
                    &wire::DescribeLimitsResponseArgs {
                        shard_limit: output.shard_limit as i32,
                        open_shard_count: output.open_shard_count as i32,
                        on_demand_stream_count: output.on_demand_stream_count as i32,
                        on_demand_stream_count_limit: output.on_demand_stream_count_limit as i32,
                    },
                )
            })
        }
        RequestBodyRef::RegisterStreamConsumer(request) => {
            let consumer = core
                .register_consumer(
                    required(request.stream_arn(), "streamARN")?,
                    required(request.consumer_name(), "consumerName")?,
                )
                .await?;
            finish(builder(), cid, |fbb| {
                let consumer = consumer_table(fbb, &consumer);
                wire::RegisterStreamConsumerResponse::create(
                    fbb,
                    &wire::RegisterStreamConsumerResponseArgs { consumer: Some(consumer) },
                )
            })
        }
        RequestBodyRef::DeregisterStreamConsumer(request) => {
            let consumer = ConsumerRef {
                stream_arn: string(request.stream_arn()),
                consumer_name: string(request.consumer_name()),
                consumer_arn: string(request.consumer_arn()),
            };
            core.deregister_consumer(consumer).await?;
            empty_response!(DeregisterStreamConsumerResponse, DeregisterStreamConsumerResponseArgs, cid)
        }
        RequestBodyRef::DescribeStreamConsumer(request) => {
            let consumer = core.describe_consumer(ConsumerRef {
                stream_arn: string(request.stream_arn()),
                consumer_name: string(request.consumer_name()),
                consumer_arn: string(request.consumer_arn()),
            })?;
            finish(builder(), cid, |fbb| {
                let consumer_name = fbb.create_string(&consumer.consumer_name);
                let consumer_arn = fbb.create_string(&consumer.consumer_arn);
                let stream_arn = fbb.create_string(&consumer.stream_arn);
                let description = wire::ConsumerDescription::create(
                    fbb,
                    &wire::ConsumerDescriptionArgs {
                        consumer_name: Some(consumer_name),
                        consumer_arn: Some(consumer_arn),
                        consumer_status: consumer_status_out(consumer.consumer_status),
                        consumer_creation_timestamp: consumer.consumer_creation_timestamp_ms,
                        stream_arn: Some(stream_arn),
                    },
                );
                wire::DescribeStreamConsumerResponse::create(
                    fbb,
                    &wire::DescribeStreamConsumerResponseArgs { consumer_description: Some(description) },
                )
            })
        }
        RequestBodyRef::ListStreamConsumers(request) => {
            let output = core.list_consumers(ListStreamConsumers {
                stream_arn: required(request.stream_arn(), "streamARN")?,
                next_token: string(request.next_token()),
                max_results: unsigned(request.max_results(), "maxResults")?,
            })?;
            finish(builder(), cid, |fbb| {
                let consumers: Vec<_> = output.consumers.iter().map(|consumer| consumer_table(fbb, consumer)).collect();
                let consumers = fbb.create_vector(&consumers);
                let next_token = output.next_token.as_deref().map(|token| fbb.create_string(token));
                wire::ListStreamConsumersResponse::create(
                    fbb,
                    &wire::ListStreamConsumersResponseArgs { consumers: Some(consumers), next_token },
                )
            })
        }
        RequestBodyRef::SplitShard(request) => {
            core.split_shard(
                stream_ref(request.stream_name(), request.stream_arn()),
                required(request.shard_to_split(), "shardToSplit")?,
                required(request.new_starting_hash_key(), "newStartingHashKey")?,
            )
            .await?;
            empty_response!(SplitShardResponse, SplitShardResponseArgs, cid)
        }
        RequestBodyRef::MergeShards(request) => {
            core.merge_shards(
                stream_ref(request.stream_name(), request.stream_arn()),
                required(request.shard_to_merge(), "shardToMerge")?,
                required(request.adjacent_shard_to_merge(), "adjacentShardToMerge")?,
            )
            .await?;
            empty_response!(MergeShardsResponse, MergeShardsResponseArgs, cid)
        }
        RequestBodyRef::UpdateShardCount(request) => {
            let target = unsigned(request.target_shard_count(), "targetShardCount")?
                .ok_or_else(|| ServiceError::validation("1 validation error detected: Value null at 'targetShardCount' failed to satisfy constraint: Member must not be null"))?;
            let scaling_type = required(request.scaling_type(), "scalingType")?;
            let output = core
                .update_shard_count(stream_ref(request.stream_name(), request.stream_arn()), target, &scaling_type)
                .await?;
            finish(builder(), cid, |fbb| {
                let stream_name = fbb.create_string(&output.stream_name);
                let stream_arn = fbb.create_string(&output.stream_arn);
                wire::UpdateShardCountResponse::create(
                    fbb,
                    &wire::UpdateShardCountResponseArgs {
                        stream_name: Some(stream_name),
                        current_shard_count: output.current_shard_count as i32,
                        target_shard_count: output.target_shard_count as i32,
                        stream_arn: Some(stream_arn),
                    },
                )
            })
        }
        RequestBodyRef::SubscribeToShard(_) => unreachable!("handled before dispatch"),
        RequestBodyRef::Unknown(tag) => Err(ServiceError::new(
            ErrorKind::UnknownOperation,
            format!("Unknown operation (request body type {})", tag.0),
        )),
    }
}

/// Runs a subscription: the accepted response, then every event, then its end or error, all
/// under the request's correlation id.
async fn subscribe(core: &Rc<Core>, correlation_id: u64, request: Result<SubscribeToShard>, sink: &FrameSink) {
    let events = match request {
        Ok(request) => core.subscribe_to_shard(request).await,
        Err(error) => Err(error),
    };
    let events = match events {
        Ok(events) => events,
        Err(error) => {
            let _ = sink.send(error_frame(correlation_id, &error)).await;
            return;
        }
    };
    let accepted = empty_response!(SubscribeToShardResponse, SubscribeToShardResponseArgs, correlation_id);
    if sink.send(accepted.expect("an empty response fits")).await.is_err() {
        return;
    }
    while let Ok(item) = events.recv().await {
        let frame = match item {
            SubscriptionItem::Event(event) => event_frame(correlation_id, &event),
            SubscriptionItem::End => {
                let end = empty_response!(SubscribeToShardEnd, SubscribeToShardEndArgs, correlation_id);
                let _ = sink.send(end.expect("an empty response fits")).await;
                return;
            }
            SubscriptionItem::Error(error) => {
                let _ = sink.send(error_frame(correlation_id, &error)).await;
                return;
            }
        };
        match frame {
            Ok(frame) => {
                if sink.send(frame).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                let _ = sink.send(error_frame(correlation_id, &error)).await;
                return;
            }
        }
    }
}

fn event_frame(correlation_id: u64, event: &model::SubscribeToShardEvent) -> Result<Vec<u8>> {
    let bytes: usize = event.records.iter().map(|r| r.data.len() + r.partition_key.len() + 128).sum();
    finish(FlatBufferBuilder::with_capacity(bytes + 512), correlation_id, |fbb| {
        let records = record_list(fbb, &event.records);
        let continuation = fbb.create_string(&event.continuation_sequence_number);
        let children = child_shard_list(fbb, &event.child_shards);
        wire::SubscribeToShardEvent::create(
            fbb,
            &wire::SubscribeToShardEventArgs {
                records: Some(records),
                continuation_sequence_number: Some(continuation),
                millis_behind_latest: event.millis_behind_latest,
                child_shards: (!event.child_shards.is_empty()).then_some(children),
            },
        )
    })
}

fn record_list(
    fbb: &mut Builder,
    records: &[Record],
) -> WIPOffset<Vector<'static, ForwardsUOffset<wire::Record<'static>>>> {
    let tables: Vec<_> = records
        .iter()
        .map(|record| {
            let sequence_number = fbb.create_string(&record.sequence_number);
            let data = create_bytes(fbb, &record.data);
            let partition_key = fbb.create_string(&record.partition_key);
            wire::Record::create(
                fbb,
                &wire::RecordArgs {
                    sequence_number: Some(sequence_number),
                    approximate_arrival_timestamp: Some(record.approximate_arrival_timestamp_ms),
                    data: Some(data),
                    partition_key: Some(partition_key),
                    encryption_type: Some(wire::EncryptionType::NONE),
                },
            )
        })
        .collect();
    fbb.create_vector(&tables)
}

fn hash_key_range(fbb: &mut Builder, range: &HashKeyRange) -> WIPOffset<wire::HashKeyRange<'static>> {
    let start = fbb.create_string(&range.starting_hash_key);
    let end = fbb.create_string(&range.ending_hash_key);
    wire::HashKeyRange::create(
        fbb,
        &wire::HashKeyRangeArgs { starting_hash_key: Some(start), ending_hash_key: Some(end) },
    )
}

fn shard_list(
    fbb: &mut Builder,
    shards: &[Shard],
) -> WIPOffset<Vector<'static, ForwardsUOffset<wire::Shard<'static>>>> {
    let tables: Vec<_> = shards
        .iter()
        .map(|shard| {
            let shard_id = fbb.create_string(&shard.shard_id);
            let parent = shard.parent_shard_id.as_deref().map(|id| fbb.create_string(id));
            let adjacent = shard.adjacent_parent_shard_id.as_deref().map(|id| fbb.create_string(id));
            let range = hash_key_range(fbb, &shard.hash_key_range);
            let start = fbb.create_string(&shard.starting_sequence_number);
            let end = shard.ending_sequence_number.as_deref().map(|seq| fbb.create_string(seq));
            let sequence_range = wire::SequenceNumberRange::create(
                fbb,
                &wire::SequenceNumberRangeArgs { starting_sequence_number: Some(start), ending_sequence_number: end },
            );
            wire::Shard::create(
                fbb,
                &wire::ShardArgs {
                    shard_id: Some(shard_id),
                    parent_shard_id: parent,
                    adjacent_parent_shard_id: adjacent,
                    hash_key_range: Some(range),
                    sequence_number_range: Some(sequence_range),
                },
            )
        })
        .collect();
    fbb.create_vector(&tables)
}

fn child_shard_list(
    fbb: &mut Builder,
    children: &[ChildShard],
) -> WIPOffset<Vector<'static, ForwardsUOffset<wire::ChildShard<'static>>>> {
    let tables: Vec<_> = children
        .iter()
        .map(|child| {
            let shard_id = fbb.create_string(&child.shard_id);
            let parents: Vec<_> = child.parent_shards.iter().map(|parent| fbb.create_string(parent)).collect();
            let parents = fbb.create_vector(&parents);
            let range = hash_key_range(fbb, &child.hash_key_range);
            wire::ChildShard::create(
                fbb,
                &wire::ChildShardArgs {
                    shard_id: Some(shard_id),
                    parent_shards: Some(parents),
                    hash_key_range: Some(range),
                },
            )
        })
        .collect();
    fbb.create_vector(&tables)
}

fn consumer_table(fbb: &mut Builder, consumer: &Consumer) -> WIPOffset<wire::Consumer<'static>> {
    let consumer_name = fbb.create_string(&consumer.consumer_name);
    let consumer_arn = fbb.create_string(&consumer.consumer_arn);
    wire::Consumer::create(
        fbb,
        &wire::ConsumerArgs {
            consumer_name: Some(consumer_name),
            consumer_arn: Some(consumer_arn),
            consumer_status: consumer_status_out(consumer.consumer_status),
            consumer_creation_timestamp: consumer.consumer_creation_timestamp_ms,
        },
    )
}
