//! Response frames as the server writes them, with the shared codec, for the unit tests.

use bytes::Bytes;
use sluice_model::*;
use sluice_protocol::flatbuffers::FlatBufferBuilder;
use sluice_protocol::{native, wire};

fn frame(build: impl FnOnce(&mut FlatBufferBuilder<'static>) -> Vec<u8>) -> Vec<u8> {
    build(&mut FlatBufferBuilder::new())
}

pub fn error(correlation_id: u64, kind: ErrorKind, message: &str) -> Vec<u8> {
    let error = KinesisError::new(kind, message);
    frame(|fbb| native::encode_error(fbb, correlation_id, &error).unwrap().to_vec())
}

/// An error with a code this build does not know (from a newer server).
pub fn unknown_error(correlation_id: u64, code: u16, message: &str) -> Vec<u8> {
    frame(|fbb| {
        sluice_protocol::encode_error_response(fbb, correlation_id, wire::ErrorCode(code), message).unwrap().to_vec()
    })
}

/// A response whose body has a union tag this build does not know.
pub fn unknown_body(correlation_id: u64, tag: u8) -> Vec<u8> {
    frame(|fbb| {
        let body = wire::CreateStreamResponse::create(fbb, &wire::CreateStreamResponseArgs {});
        let args = wire::ResponseArgs {
            correlation_id,
            body_type: wire::ResponseBody(tag),
            body: Some(body.as_union_value()),
            error: None,
        };
        let root = wire::Response::create(fbb, &args);
        fbb.finish_size_prefixed(root, None);
        fbb.finished_data().to_vec()
    })
}

fn response(correlation_id: u64, response: Response) -> Vec<u8> {
    frame(|fbb| native::encode_response(fbb, correlation_id, &response).unwrap().to_vec())
}

pub fn shard_iterator(correlation_id: u64, iterator: &str) -> Vec<u8> {
    response(
        correlation_id,
        Response::GetShardIterator(GetShardIteratorOutput { shard_iterator: Some(iterator.into()) }),
    )
}

pub fn subscription_accepted(correlation_id: u64) -> Vec<u8> {
    response(correlation_id, Response::SubscribeToShard(Empty {}))
}

pub fn subscription_end(correlation_id: u64) -> Vec<u8> {
    frame(|fbb| native::encode_subscription_end(fbb, correlation_id).unwrap().to_vec())
}

/// An event with one record per `(sequence number, data)`; the continuation is the last
/// sequence number.
pub fn subscription_event(correlation_id: u64, records: &[(u128, &[u8])]) -> Vec<u8> {
    let event = SubscribeToShardEvent {
        records: records.iter().map(|(sequence_number, data)| record(*sequence_number, data)).collect(),
        continuation_sequence_number: SequenceNumber::new(records.last().map_or(0, |(number, _)| *number)),
        millis_behind_latest: 0,
        child_shards: None,
    };
    frame(|fbb| native::encode_event(fbb, correlation_id, &event).unwrap().to_vec())
}

pub fn record(sequence_number: u128, data: &[u8]) -> Record {
    Record {
        sequence_number: SequenceNumber::new(sequence_number),
        approximate_arrival_timestamp: Some(Timestamp::from_epoch_ms(1_704_164_645_678)),
        data: Bytes::copy_from_slice(data),
        partition_key: Some("customer-17".into()),
        encryption_type: None,
    }
}
