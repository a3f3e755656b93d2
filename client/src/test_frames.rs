//! Response frames as the server would write them, for the unit tests.

use sluice_protocol::flatbuffers::{FlatBufferBuilder, WIPOffset};
use sluice_protocol::wire::{self, ErrorCode};
use sluice_protocol::{create_bytes, encode_error_response, encode_response, ResponseBodyTable};

pub(crate) const TIMESTAMP_MS: i64 = 1_704_164_645_678;
pub(crate) const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";
/// 2^128 - 1, the largest hash key.
pub(crate) const HASH_KEY_MAX: &str = "340282366920938463463374607431768211455";

/// A successful response frame around the body `build` writes.
pub(crate) fn response<T: ResponseBodyTable>(
    correlation_id: u64,
    build: impl FnOnce(&mut FlatBufferBuilder<'static>) -> WIPOffset<T>,
) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let body = build(&mut fbb);
    encode_response(&mut fbb, correlation_id, body).unwrap().to_vec()
}

pub(crate) fn error(correlation_id: u64, code: ErrorCode, message: &str) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    encode_error_response(&mut fbb, correlation_id, code, message).unwrap().to_vec()
}

/// A response whose body has a union tag this build does not know.
pub(crate) fn unknown_body(correlation_id: u64, tag: u8) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let body = wire::CreateStreamResponse::create(&mut fbb, &wire::CreateStreamResponseArgs {});
    let args = wire::ResponseArgs {
        correlation_id,
        body_type: wire::ResponseBody(tag),
        body: Some(body.as_union_value()),
        error: None,
    };
    let root = wire::Response::create(&mut fbb, &args);
    fbb.finish_size_prefixed(root, None);
    fbb.finished_data().to_vec()
}

pub(crate) fn shard_iterator(correlation_id: u64, iterator: &str) -> Vec<u8> {
    response(correlation_id, |fbb| {
        let shard_iterator = Some(fbb.create_string(iterator));
        wire::GetShardIteratorResponse::create(fbb, &wire::GetShardIteratorResponseArgs { shard_iterator })
    })
}

pub(crate) fn subscription_accepted(correlation_id: u64) -> Vec<u8> {
    response(correlation_id, |fbb| wire::SubscribeToShardResponse::create(fbb, &wire::SubscribeToShardResponseArgs {}))
}

pub(crate) fn subscription_end(correlation_id: u64) -> Vec<u8> {
    response(correlation_id, |fbb| wire::SubscribeToShardEnd::create(fbb, &wire::SubscribeToShardEndArgs {}))
}

pub(crate) fn record<'b>(
    fbb: &mut FlatBufferBuilder<'b>,
    sequence_number: &str,
    data: &[u8],
) -> WIPOffset<wire::Record<'b>> {
    let args = wire::RecordArgs {
        sequence_number: Some(fbb.create_string(sequence_number)),
        approximate_arrival_timestamp: Some(TIMESTAMP_MS),
        data: Some(create_bytes(fbb, data)),
        partition_key: Some(fbb.create_string("customer-17")),
        encryption_type: Some(wire::EncryptionType::NONE),
    };
    wire::Record::create(fbb, &args)
}

/// An event with one record per `(sequence number, data)`; the continuation is the last
/// sequence number.
pub(crate) fn subscription_event(correlation_id: u64, records: &[(&str, &[u8])]) -> Vec<u8> {
    response(correlation_id, |fbb| {
        let list: Vec<_> = records.iter().map(|(sequence_number, data)| record(fbb, sequence_number, data)).collect();
        let records_vector = Some(fbb.create_vector(&list));
        let continuation = records.last().map_or("0", |(sequence_number, _)| sequence_number);
        let args = wire::SubscribeToShardEventArgs {
            records: records_vector,
            continuation_sequence_number: Some(fbb.create_string(continuation)),
            millis_behind_latest: 0,
            child_shards: None,
        };
        wire::SubscribeToShardEvent::create(fbb, &args)
    })
}

pub(crate) fn hash_key_range<'b>(fbb: &mut FlatBufferBuilder<'b>) -> WIPOffset<wire::HashKeyRange<'b>> {
    let args = wire::HashKeyRangeArgs {
        starting_hash_key: Some(fbb.create_string("0")),
        ending_hash_key: Some(fbb.create_string(HASH_KEY_MAX)),
    };
    wire::HashKeyRange::create(fbb, &args)
}
