//! The native codec: every request and response survives encode → frame → decode unchanged,
//! payloads are read in place, and bad requests decode to AWS's errors.

use super::*;
use crate::flatbuffers::FlatBufferBuilder;
use crate::testing;
use bytes::Bytes;
use proptest::prelude::*;
use sluice_model::*;

fn request_frame(request: &Request) -> Bytes {
    let mut fbb = FlatBufferBuilder::new();
    Bytes::copy_from_slice(encode_request(&mut fbb, 42, request).unwrap())
}

fn decoded_request(frame: &Bytes) -> Result<Request, KinesisError> {
    let decoded = decode_request(frame).unwrap().expect("a whole frame");
    assert_eq!(decoded.correlation_id, 42);
    decoded.request
}

fn decoded_response(frame: &[u8]) -> ResponseMessage {
    let frame = Bytes::copy_from_slice(frame);
    let decoded = decode_response(&frame).unwrap().expect("a whole frame");
    assert_eq!(decoded.correlation_id, 7);
    decoded.message.unwrap()
}

fn assert_borrowed_from(frame: &Bytes, data: &Bytes) {
    let (frame, data) = (frame.as_ptr_range(), data.as_ptr_range());
    assert!(data.is_empty() || (frame.start <= data.start && data.end <= frame.end), "payload was copied");
}

proptest! {
    #[test]
    fn every_request_round_trips(request in testing::request()) {
        let frame = request_frame(&request);
        prop_assert_eq!(decoded_request(&frame), Ok(request));
    }

    #[test]
    fn every_response_round_trips(response in testing::response()) {
        let mut fbb = FlatBufferBuilder::new();
        let frame = encode_response(&mut fbb, 7, &response).unwrap().to_vec();
        prop_assert_eq!(decoded_response(&frame), ResponseMessage::Response(response));
    }

    #[test]
    fn every_lease_request_round_trips(request in testing::sluice_request()) {
        let frame = request_frame(&request);
        prop_assert_eq!(decoded_request(&frame), Ok(request));
    }

    #[test]
    fn every_lease_response_round_trips(response in testing::sluice_response()) {
        let mut fbb = FlatBufferBuilder::new();
        let frame = encode_response(&mut fbb, 7, &response).unwrap().to_vec();
        prop_assert_eq!(decoded_response(&frame), ResponseMessage::Response(response));
    }

    #[test]
    fn every_settings_and_policy_request_round_trips(
        request in prop_oneof![testing::settings_request(), testing::policy_request()]
    ) {
        let frame = request_frame(&request);
        prop_assert_eq!(decoded_request(&frame), Ok(request));
    }

    #[test]
    fn every_settings_and_policy_response_round_trips(
        response in prop_oneof![testing::settings_response(), testing::policy_response()]
    ) {
        let mut fbb = FlatBufferBuilder::new();
        let frame = encode_response(&mut fbb, 7, &response).unwrap().to_vec();
        prop_assert_eq!(decoded_response(&frame), ResponseMessage::Response(response));
    }

    #[test]
    fn events_errors_and_ends_round_trip(event in testing::event(), message in "\\PC{0,40}") {
        let mut fbb = FlatBufferBuilder::new();
        let frame = encode_event(&mut fbb, 7, &event).unwrap().to_vec();
        prop_assert_eq!(decoded_response(&frame), ResponseMessage::Event(event));
        for &kind in ErrorKind::ALL {
            let error = KinesisError::new(kind, message.clone());
            let mut fbb = FlatBufferBuilder::new();
            let frame = encode_error(&mut fbb, 7, &error).unwrap().to_vec();
            prop_assert_eq!(decoded_response(&frame), ResponseMessage::Error(error));
        }
        let mut fbb = FlatBufferBuilder::new();
        let frame = encode_subscription_end(&mut fbb, 7).unwrap().to_vec();
        prop_assert_eq!(decoded_response(&frame), ResponseMessage::SubscriptionEnd);
    }
}

#[test]
fn payloads_are_slices_of_the_frame() {
    let put = PutRecordsInput {
        records: vec![
            PutRecordsRequestEntry {
                data: Bytes::from_static(&[0, 0xff, b'"', 0]),
                partition_key: Some("k1".into()),
                explicit_hash_key: None,
            },
            PutRecordsRequestEntry {
                data: Bytes::new(),
                partition_key: Some("k2".into()),
                explicit_hash_key: Some(HashKey::MAX),
            },
        ],
        stream_name: Some("orders".into()),
        stream_arn: None,
    };
    let frame = request_frame(&Request::from(put.clone()));
    let Ok(Request::PutRecords(decoded)) = decoded_request(&frame) else { panic!("not PutRecords") };
    assert_eq!(decoded, put);
    for entry in &decoded.records {
        assert_borrowed_from(&frame, &entry.data);
    }
    let records = vec![Record {
        sequence_number: SequenceNumber::new(1),
        approximate_arrival_timestamp: Some(Timestamp::from_epoch_ms(1_704_164_645_678)),
        data: Bytes::from_static(b"hello"),
        partition_key: Some("k".into()),
        encryption_type: None,
    }];
    let response = Response::GetRecords(GetRecordsOutput { records, ..Default::default() });
    let mut fbb = FlatBufferBuilder::with_capacity(capacity_for(&[]));
    let frame = Bytes::copy_from_slice(encode_response(&mut fbb, 7, &response).unwrap());
    let decoded = decode_response(&frame).unwrap().unwrap();
    let Ok(ResponseMessage::Response(Response::GetRecords(output))) = decoded.message else { panic!("not GetRecords") };
    assert_borrowed_from(&frame, &output.records[0].data);
}

/// A raw request frame built with the schema's own builders, to reach what the encoder never
/// writes: absent required members, unknown enum values.
fn raw_frame(build: impl FnOnce(&mut FlatBufferBuilder<'static>) -> Vec<u8>) -> Bytes {
    let mut fbb = FlatBufferBuilder::new();
    Bytes::from(build(&mut fbb))
}

#[test]
fn missing_members_and_unknown_values_are_aws_errors() {
    use crate::wire;
    let no_name = raw_frame(|fbb| {
        let body = wire::CreateStreamRequest::create(
            fbb,
            &wire::CreateStreamRequestArgs { shard_count: Some(1), ..Default::default() },
        );
        crate::encode_request(fbb, 42, body).unwrap().to_vec()
    });
    let error = decoded_request(&no_name).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Validation);
    assert_eq!(
        error.message,
        "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null"
    );
    let unknown_type = raw_frame(|fbb| {
        let shard_id = fbb.create_string("shardId-000000000000");
        let args = wire::GetShardIteratorRequestArgs {
            shard_id: Some(shard_id),
            shard_iterator_type: Some(wire::ShardIteratorType(9)),
            ..Default::default()
        };
        let body = wire::GetShardIteratorRequest::create(fbb, &args);
        crate::encode_request(fbb, 42, body).unwrap().to_vec()
    });
    let error = decoded_request(&unknown_type).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Validation);
    assert!(error.message.contains("Value '9' at 'shardIteratorType'"), "{}", error.message);
    let no_body = raw_frame(|fbb| {
        let request = wire::Request::create(fbb, &wire::RequestArgs { correlation_id: 42, ..Default::default() });
        fbb.finish_size_prefixed(request, None);
        fbb.finished_data().to_vec()
    });
    assert_eq!(decoded_request(&no_body).unwrap_err().kind, ErrorKind::UnknownOperation);
}

#[test]
fn foreign_sequence_numbers_cannot_be_sent() {
    let aws: SequenceNumber = "49590338271490256608559692538361571095921575989136588898".parse().unwrap();
    let request = Request::from(GetShardIteratorInput {
        stream_name: Some("s".into()),
        shard_id: ShardId::from_number(0),
        shard_iterator_type: ShardIteratorType::AtSequenceNumber,
        starting_sequence_number: Some(aws),
        timestamp: None,
        stream_arn: None,
    });
    let mut fbb = FlatBufferBuilder::new();
    assert!(matches!(encode_request(&mut fbb, 1, &request), Err(EncodeError::Unrepresentable { .. })));
}

#[test]
fn a_truncated_frame_is_not_yet_a_frame() {
    let frame = request_frame(&Request::from(DescribeLimitsInput {}));
    assert_eq!(decode_request(&frame.slice(..frame.len() - 1)), Ok(None));
    assert!(decode_request(&Bytes::from_static(&[4, 0, 0, 0, 1, 2, 3, 4])).is_err());
}

/// A client's request as one cluster member forwards it to another (`forwarded.rs`).
mod forwarded {
    use super::*;

    type Fbb = FlatBufferBuilder<'static>;

    fn put() -> Request {
        Request::PutRecord(PutRecordInput {
            stream_name: Some("s".into()),
            data: Bytes::from_static(b"payload"),
            partition_key: Some("k".into()),
            ..Default::default()
        })
    }

    fn wrapped(caller: Option<&ForwardedCaller>, inner: &[u8]) -> Bytes {
        let mut fbb = Fbb::new();
        Bytes::copy_from_slice(encode_forwarded(&mut fbb, 5, caller, inner).unwrap())
    }

    fn decoded(frame: &Bytes) -> Result<NativeRequest, KinesisError> {
        let decoded = decode_any_request(frame).unwrap().unwrap();
        assert_eq!(decoded.correlation_id, 5);
        decoded.request
    }

    #[test]
    fn round_trips_with_and_without_a_caller() {
        let mut fbb = Fbb::new();
        let inner = encode_request(&mut fbb, 1, &put()).unwrap().to_vec();
        let caller = ForwardedCaller {
            access_key_id: "AKIDALICE".into(),
            source_ip: Some("10.0.0.7".into()),
            secure_transport: true,
            user_agent: Some("boto3".into()),
            request_id: Some("id-1".into()),
        };
        for caller in [None, Some(caller)] {
            let expected = Forwarded { caller: caller.clone(), request: put() };
            assert_eq!(decoded(&wrapped(caller.as_ref(), &inner)), Ok(NativeRequest::Forwarded(Box::new(expected))));
        }
    }

    #[test]
    fn a_wrapper_is_not_forwarded_twice_and_its_frame_must_be_whole() {
        let mut fbb = Fbb::new();
        let inner = encode_request(&mut fbb, 1, &put()).unwrap().to_vec();
        let twice = wrapped(None, &wrapped(None, &inner));
        let error = decoded(&twice).unwrap_err();
        assert_eq!(error.kind, ErrorKind::UnknownOperation, "{error:?}");
        for cut in [&inner[..inner.len() - 1], &inner[..3], &[][..]] {
            let error = decoded(&wrapped(None, cut)).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Serialization, "{error:?}");
        }
        let mut longer = inner.clone();
        longer.push(0);
        assert_eq!(decoded(&wrapped(None, &longer)).unwrap_err().kind, ErrorKind::Serialization);
        let nameless = ForwardedCaller::default();
        assert_eq!(decoded(&wrapped(Some(&nameless), &inner)).unwrap_err().kind, ErrorKind::Serialization);
    }

    proptest! {
        #[test]
        fn any_inner_bytes_decode_or_fail_cleanly(inner in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decoded(&wrapped(None, &inner));
        }
    }
}
