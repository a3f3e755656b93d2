//! DescribeStreamRoutes on the native protocol (`sluice_model::routes`): the request and
//! response tables of `sluice.fbs`'s "Routing" section, both directions, kept apart from the
//! Kinesis operations of [`super::request`] and [`super::response`], which call in here.
//!
//! A member id or leader id is any `u64` on the wire; what one means (0 for a node alone,
//! absence for an unknown leader) is the model's to say, so nothing here refuses a value a
//! newer server might send. A shard without its id or range, though, is a broken answer.

use super::response::{hash_key_range, hash_key_range_of};
use super::{DecodeError, EncodeError, EncodeInput};
use crate::flatbuffers::{FlatBufferBuilder, ForwardsUOffset, Vector};
use crate::wire;
use sluice_model::*;

type Fbb = FlatBufferBuilder<'static>;

impl EncodeInput for DescribeStreamRoutesInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let stream_name = self.stream_name.as_deref().map(|name| fbb.create_string(name));
        let stream_arn = self.stream_arn.as_ref().map(|arn| fbb.create_string(arn.as_str()));
        let body = wire::DescribeStreamRoutesRequest::create(
            fbb,
            &wire::DescribeStreamRoutesRequestArgs { stream_name, stream_arn },
        );
        crate::encode_request(fbb, cid, body).map_err(EncodeError::from)
    }
}

/// The request a DescribeStreamRoutes table carries. Both members are optional (either names
/// the stream); the model's validation answers when neither is there.
pub(super) fn request_of(t: wire::DescribeStreamRoutesRequest<'_>) -> Request {
    Request::DescribeStreamRoutes(DescribeStreamRoutesInput {
        stream_name: t.stream_name().map(str::to_owned),
        stream_arn: t.stream_arn().map(StreamArn::from),
    })
}

/// Builds DescribeStreamRoutes' answer under `cid`.
pub(super) fn encode_response<'f>(
    fbb: &'f mut Fbb,
    cid: u64,
    output: &DescribeStreamRoutesOutput,
) -> Result<&'f [u8], crate::FrameError> {
    let members: Vec<_> = output
        .members
        .iter()
        .map(|member| {
            let native_address = member.native_address.as_deref().map(|address| fbb.create_string(address));
            wire::RouteMember::create(fbb, &wire::RouteMemberArgs { node_id: member.node_id, native_address })
        })
        .collect();
    let members = Some(fbb.create_vector(&members));
    let shards: Vec<_> = output
        .shards
        .iter()
        .map(|shard| {
            let shard_id = Some(fbb.create_string(shard.shard_id.as_str()));
            let hash_key_range = Some(hash_key_range(fbb, &shard.hash_key_range));
            wire::ShardRoute::create(
                fbb,
                &wire::ShardRouteArgs { shard_id, hash_key_range, leader_node_id: shard.leader_node_id },
            )
        })
        .collect();
    let shards = Some(fbb.create_vector(&shards));
    let stream_arn = Some(fbb.create_string(output.stream_arn.as_str()));
    let body = wire::DescribeStreamRoutesResponse::create(
        fbb,
        &wire::DescribeStreamRoutesResponseArgs {
            stream_arn,
            stream_creation_timestamp: output.stream_creation_timestamp.epoch_ms(),
            node_id: output.node_id,
            members,
            shards,
        },
    );
    crate::encode_response(fbb, cid, body)
}

type Decoded<T> = Result<T, DecodeError>;

fn member<T>(value: Option<T>, shape: &'static str, member: &'static str) -> Decoded<T> {
    value.ok_or(DecodeError::MissingMember { shape, member })
}

/// The model's answer from its table (the client's direction).
pub(super) fn response_of(t: wire::DescribeStreamRoutesResponse<'_>) -> Decoded<Response> {
    const SHAPE: &str = "DescribeStreamRoutesResponse";
    let members = t
        .members()
        .into_iter()
        .flatten()
        .map(|member| RouteMember {
            node_id: member.node_id(),
            native_address: member.native_address().map(str::to_owned),
        })
        .collect();
    let shards = shards_of(t.shards())?;
    Ok(Response::DescribeStreamRoutes(DescribeStreamRoutesOutput {
        stream_arn: member(t.stream_arn(), SHAPE, "stream_arn")?.into(),
        stream_creation_timestamp: Timestamp::from_epoch_ms(t.stream_creation_timestamp()),
        node_id: t.node_id(),
        members,
        shards,
    }))
}

fn shards_of(list: Option<Vector<'_, ForwardsUOffset<wire::ShardRoute<'_>>>>) -> Decoded<Vec<ShardRoute>> {
    list.into_iter()
        .flatten()
        .map(|shard| {
            Ok(ShardRoute {
                shard_id: member(shard.shard_id(), "ShardRoute", "shard_id")?.into(),
                hash_key_range: hash_key_range_of(shard.hash_key_range(), "ShardRoute")?,
                leader_node_id: shard.leader_node_id(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{decode_request, decode_response, encode_request, encode_response, ResponseMessage};
    use super::*;
    use bytes::Bytes;

    fn table() -> DescribeStreamRoutesOutput {
        let range =
            |start: u128, end: u128| HashKeyRange { starting_hash_key: HashKey(start), ending_hash_key: HashKey(end) };
        DescribeStreamRoutesOutput {
            stream_arn: StreamArn::from("arn:aws:kinesis:us-east-1:000000000000:stream/orders"),
            stream_creation_timestamp: Timestamp::from_epoch_ms(1_796_000_000_000),
            node_id: 2,
            members: vec![
                RouteMember { node_id: 1, native_address: Some("10.0.0.1:4568".into()) },
                RouteMember { node_id: 2, native_address: None },
            ],
            shards: vec![
                ShardRoute { shard_id: ShardId::from_number(0), hash_key_range: range(0, 9), leader_node_id: Some(1) },
                ShardRoute {
                    shard_id: ShardId::from_number(1),
                    hash_key_range: range(10, u128::MAX),
                    leader_node_id: None,
                },
            ],
        }
    }

    fn response_frame(output: &DescribeStreamRoutesOutput) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        encode_response(&mut fbb, 7, &Response::DescribeStreamRoutes(output.clone())).unwrap().to_vec()
    }

    #[test]
    fn a_table_round_trips_with_its_unknown_leaders_and_missing_addresses() {
        let frame = Bytes::from(response_frame(&table()));
        let decoded = decode_response(&frame).unwrap().unwrap();
        assert_eq!(decoded.correlation_id, 7);
        assert_eq!(decoded.message, Ok(ResponseMessage::Response(Response::DescribeStreamRoutes(table()))));
    }

    #[test]
    fn a_shard_without_its_id_or_range_is_a_broken_answer() {
        let mut fbb = FlatBufferBuilder::new();
        let no_id =
            wire::ShardRoute::create(&mut fbb, &wire::ShardRouteArgs { leader_node_id: Some(1), ..Default::default() });
        let shards = Some(fbb.create_vector(&[no_id]));
        let stream_arn = Some(fbb.create_string("arn:aws:kinesis:us-east-1:000000000000:stream/s"));
        let args = wire::DescribeStreamRoutesResponseArgs { stream_arn, shards, ..Default::default() };
        let body = wire::DescribeStreamRoutesResponse::create(&mut fbb, &args);
        let frame = Bytes::copy_from_slice(crate::encode_response(&mut fbb, 7, body).unwrap());
        let decoded = decode_response(&frame).unwrap().unwrap();
        assert_eq!(decoded.message, Err(DecodeError::MissingMember { shape: "ShardRoute", member: "shard_id" }));

        let mut fbb = FlatBufferBuilder::new();
        let body = wire::DescribeStreamRoutesResponse::create(&mut fbb, &Default::default());
        let frame = Bytes::copy_from_slice(crate::encode_response(&mut fbb, 7, body).unwrap());
        let decoded = decode_response(&frame).unwrap().unwrap();
        let missing = DecodeError::MissingMember { shape: "DescribeStreamRoutesResponse", member: "stream_arn" };
        assert_eq!(decoded.message, Err(missing));
    }

    #[test]
    fn a_request_naming_no_stream_reaches_validation() {
        let mut fbb = FlatBufferBuilder::new();
        let body = wire::DescribeStreamRoutesRequest::create(&mut fbb, &Default::default());
        let frame = Bytes::copy_from_slice(crate::encode_request(&mut fbb, 9, body).unwrap());
        let decoded = decode_request(&frame).unwrap().unwrap();
        assert_eq!(decoded.correlation_id, 9);
        let request = decoded.request.unwrap();
        assert_eq!(request, Request::DescribeStreamRoutes(DescribeStreamRoutesInput::default()));
        let refused = request.validate(&Identity::default()).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::InvalidArgument);
    }

    /// Every byte of a real frame changed, and every prefix cut off: the decoders answer
    /// (a frame error, a broken answer, or some table) and never panic.
    #[test]
    fn garbage_frames_decode_to_errors_never_panics() {
        let response = response_frame(&table());
        let mut fbb = FlatBufferBuilder::new();
        let input = DescribeStreamRoutesInput {
            stream_name: Some("orders".into()),
            stream_arn: Some(StreamArn::from("arn:aws:kinesis:us-east-1:000000000000:stream/orders")),
        };
        let request = encode_request(&mut fbb, 3, &Request::from(input)).unwrap().to_vec();
        let mut decoded = 0usize;
        for frame in [&response, &request] {
            for index in 0..frame.len() {
                for value in [0x00, 0xff, frame[index] ^ 0x80, frame[index].wrapping_add(1)] {
                    let mut broken = frame.clone();
                    broken[index] = value;
                    let broken = Bytes::from(broken);
                    decoded += usize::from(matches!(decode_response(&broken), Ok(Some(_))));
                    decoded += usize::from(matches!(decode_request(&broken), Ok(Some(_))));
                }
            }
            for len in 0..frame.len() {
                let cut = Bytes::copy_from_slice(&frame[..len]);
                assert!(!matches!(decode_response(&cut), Ok(Some(_))), "a cut frame is never whole");
                assert!(!matches!(decode_request(&cut), Ok(Some(_))), "a cut frame is never whole");
            }
        }
        assert!(decoded > 0, "some changes (to data bytes) still verify");
    }
}
