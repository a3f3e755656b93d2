//! The codec against the schema itself, member by member. Round trips (tests.rs) cannot see
//! a mistake both directions share, such as writing a value into the wrong schema field and
//! reading it back from that same field; these build or read raw schema tables instead.
//! (Ported from the client's encoder and decoder tests, which held these checks before the
//! codec moved here.)

use super::*;
use crate::flatbuffers::{FlatBufferBuilder, WIPOffset};
use crate::{wire, RequestBodyRef, ResponseBodyTable, FRAME_BYTES_MAX};
use bytes::Bytes;
use sluice_model::*;

/// Encodes `request` and reads the frame back as raw schema tables, as a server would.
fn check(request: impl Into<Request>, verify: impl FnOnce(RequestBodyRef<'_>)) {
    let mut fbb = FlatBufferBuilder::new();
    let frame = encode_request(&mut fbb, 42, &request.into()).unwrap();
    let (frame_len, decoded) = crate::decode_request(frame).unwrap().expect("a whole frame");
    assert_eq!(frame_len, frame.len());
    assert_eq!(decoded.correlation_id(), 42);
    verify(RequestBodyRef::of(&decoded));
}

/// A response frame built by hand with the schema's builders, decoded by the codec.
fn decode<T: ResponseBodyTable>(
    build: impl FnOnce(&mut FlatBufferBuilder<'static>) -> WIPOffset<T>,
) -> (Bytes, Result<ResponseMessage, DecodeError>) {
    let mut fbb = FlatBufferBuilder::new();
    let body = build(&mut fbb);
    let frame = Bytes::copy_from_slice(crate::encode_response(&mut fbb, 7, body).unwrap());
    let decoded = decode_response(&frame).unwrap().expect("a whole frame");
    assert_eq!(decoded.correlation_id, 7);
    (frame, decoded.message)
}

fn text<'b>(fbb: &mut FlatBufferBuilder<'b>, value: &str) -> Option<WIPOffset<&'b str>> {
    Some(fbb.create_string(value))
}

fn wire_sequence(value: u128) -> wire::SequenceNumber {
    wire::SequenceNumber::new((value >> 64) as u64, value as u64)
}

fn wire_hash_key(value: u128) -> wire::HashKey {
    wire::HashKey::new((value >> 64) as u64, value as u64)
}

fn full_range<'b>(fbb: &mut FlatBufferBuilder<'b>) -> WIPOffset<wire::HashKeyRange<'b>> {
    let (start, end) = (wire_hash_key(0), wire_hash_key(u128::MAX));
    wire::HashKeyRange::create(
        fbb,
        &wire::HashKeyRangeArgs { starting_hash_key: Some(&start), ending_hash_key: Some(&end) },
    )
}

fn assert_borrowed_from(frame: &Bytes, data: &Bytes) {
    let (frame, data) = (frame.as_ptr_range(), data.as_ptr_range());
    assert!(frame.start <= data.start && data.end <= frame.end, "payload was copied");
}

// ---------------------------------------------------------------------------------------------
// Requests.

#[test]
fn put_record_writes_every_member() {
    let request = PutRecordInput {
        stream_name: None,
        stream_arn: Some("arn:stream".into()),
        data: Bytes::from_static(b"hello"),
        partition_key: Some("k".into()),
        explicit_hash_key: Some(HashKey(0)),
        sequence_number_for_ordering: Some(SequenceNumber::new(12)),
    };
    check(request, |body| {
        let RequestBodyRef::PutRecord(body) = body else { panic!("{body:?}") };
        assert_eq!(body.stream_name(), None);
        assert_eq!(body.stream_arn(), Some("arn:stream"));
        assert_eq!(body.data().unwrap().bytes(), b"hello");
        assert_eq!(body.partition_key(), Some("k"));
        assert_eq!(body.explicit_hash_key(), Some(&wire_hash_key(0)));
        assert_eq!(body.sequence_number_for_ordering(), Some(&wire_sequence(12)));
    });
}

#[test]
fn put_records_carries_binary_payloads_and_optional_keys() {
    let half = 1u128 << 127;
    let request = PutRecordsInput {
        stream_name: Some("orders".into()),
        stream_arn: None,
        records: vec![
            PutRecordsRequestEntry {
                data: Bytes::from_static(&[0, 0xff, b'"', 0]),
                partition_key: Some("k1".into()),
                explicit_hash_key: None,
            },
            PutRecordsRequestEntry {
                data: Bytes::new(),
                partition_key: Some("k2".into()),
                explicit_hash_key: Some(HashKey(half)),
            },
        ],
    };
    check(request, |body| {
        let RequestBodyRef::PutRecords(body) = body else { panic!("{body:?}") };
        assert_eq!(body.stream_name(), Some("orders"));
        assert_eq!(body.stream_arn(), None);
        let records: Vec<_> = body
            .records()
            .unwrap()
            .iter()
            .map(|entry| {
                (entry.data().unwrap().bytes().to_vec(), entry.partition_key(), entry.explicit_hash_key().copied())
            })
            .collect();
        assert_eq!(
            records,
            [(vec![0, 0xff, b'"', 0], Some("k1"), None), (vec![], Some("k2"), Some(wire_hash_key(half)))]
        );
    });
}

#[test]
fn create_stream_sends_absent_members_as_absent() {
    let request = CreateStreamInput { stream_name: "orders".into(), shard_count: Some(2), ..Default::default() };
    check(request, |body| {
        let RequestBodyRef::CreateStream(body) = body else { panic!("{body:?}") };
        assert_eq!(body.stream_name(), Some("orders"));
        assert_eq!(body.shard_count(), Some(2));
        assert_eq!(body.stream_mode(), None);
        assert!(body.tags().is_none(), "no tags is sent as absent");
        assert_eq!(body.max_record_size_in_kib(), None);
    });
    let request = CreateStreamInput {
        stream_name: "orders".into(),
        stream_mode_details: Some(StreamModeDetails { stream_mode: StreamMode::OnDemand }),
        tags: Some([("team".to_owned(), "data".to_owned())].into()),
        max_record_size_in_kib: Some(2048),
        ..Default::default()
    };
    check(request, |body| {
        let RequestBodyRef::CreateStream(body) = body else { panic!("{body:?}") };
        assert_eq!(body.shard_count(), None);
        assert_eq!(body.stream_mode(), Some(wire::StreamMode::ON_DEMAND));
        let tags: Vec<_> = body.tags().unwrap().iter().map(|tag| (tag.key(), tag.value())).collect();
        assert_eq!(tags, [(Some("team"), Some("data"))]);
        assert_eq!(body.max_record_size_in_kib(), Some(2048));
    });
}

#[test]
fn get_shard_iterator_and_list_shards_carry_enums_and_timestamps() {
    let request = GetShardIteratorInput {
        stream_name: Some("orders".into()),
        stream_arn: None,
        shard_id: "shardId-000000000001".into(),
        shard_iterator_type: ShardIteratorType::AtTimestamp,
        starting_sequence_number: None,
        timestamp: Some(Timestamp::from_epoch_ms(1_704_164_645_678)),
    };
    check(request, |body| {
        let RequestBodyRef::GetShardIterator(body) = body else { panic!("{body:?}") };
        assert_eq!(body.shard_id(), Some("shardId-000000000001"));
        assert_eq!(body.shard_iterator_type(), Some(wire::ShardIteratorType::AT_TIMESTAMP));
        assert_eq!(body.starting_sequence_number(), None);
        assert_eq!(body.timestamp(), Some(1_704_164_645_678));
    });
    let request = ListShardsInput {
        stream_name: Some("orders".into()),
        max_results: Some(10),
        shard_filter: Some(ShardFilter {
            r#type: ShardFilterType::AfterShardId,
            shard_id: Some("shardId-000000000000".into()),
            timestamp: None,
        }),
        ..Default::default()
    };
    check(request, |body| {
        let RequestBodyRef::ListShards(body) = body else { panic!("{body:?}") };
        assert_eq!(body.max_results(), Some(10));
        assert_eq!(body.next_token(), None);
        let filter = body.shard_filter().unwrap();
        assert_eq!(filter.type_(), Some(wire::ShardFilterType::AFTER_SHARD_ID));
        assert_eq!(filter.shard_id(), Some("shardId-000000000000"));
        assert_eq!(filter.timestamp(), None);
    });
}

#[test]
fn subscribe_to_shard_carries_its_starting_position() {
    let request = SubscribeToShardInput {
        consumer_arn: "arn:consumer".into(),
        shard_id: "shardId-000000000000".into(),
        starting_position: StartingPosition {
            r#type: ShardIteratorType::AfterSequenceNumber,
            sequence_number: Some(SequenceNumber::new(77)),
            timestamp: None,
        },
    };
    check(request, |body| {
        let RequestBodyRef::SubscribeToShard(body) = body else { panic!("{body:?}") };
        assert_eq!(body.consumer_arn(), Some("arn:consumer"));
        assert_eq!(body.shard_id(), Some("shardId-000000000000"));
        let position = body.starting_position().unwrap();
        assert_eq!(position.type_(), Some(wire::ShardIteratorType::AFTER_SEQUENCE_NUMBER));
        assert_eq!(position.sequence_number(), Some(&wire_sequence(77)));
        assert_eq!(position.timestamp(), None);
    });
}

#[test]
fn required_lists_are_sent_even_when_empty() {
    check(AddTagsToStreamInput { stream_name: Some("s".into()), ..Default::default() }, |body| {
        let RequestBodyRef::AddTagsToStream(body) = body else { panic!("{body:?}") };
        assert_eq!(body.tags().map(|tags| tags.len()), Some(0));
    });
    let request = RemoveTagsFromStreamInput {
        stream_name: Some("s".into()),
        tag_keys: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    check(request, |body| {
        let RequestBodyRef::RemoveTagsFromStream(body) = body else { panic!("{body:?}") };
        let keys: Vec<_> = body.tag_keys().unwrap().iter().collect();
        assert_eq!(keys, ["a", "b"]);
    });
}

#[test]
fn a_request_too_large_for_a_frame_is_refused() {
    let request = Request::from(PutRecordInput {
        stream_name: Some("orders".into()),
        data: Bytes::from(vec![0; FRAME_BYTES_MAX]),
        partition_key: Some("k".into()),
        ..Default::default()
    });
    let mut fbb = FlatBufferBuilder::new();
    assert!(matches!(
        encode_request(&mut fbb, 1, &request),
        Err(EncodeError::Frame(crate::FrameError::TooLarge { .. }))
    ));
}

// ---------------------------------------------------------------------------------------------
// Responses.

#[test]
fn get_records_keeps_every_member_and_borrows_payloads() {
    let data: &[u8] = &[0, 1, 0xff, b'\n', 0];
    let (frame, message) = decode(|fbb| {
        let record = {
            let sequence_number = wire_sequence(u128::MAX - 1);
            let args = wire::RecordArgs {
                sequence_number: Some(&sequence_number),
                approximate_arrival_timestamp: Some(1_704_164_645_678),
                data: Some(fbb.create_vector(data)),
                partition_key: text(fbb, "customer-17"),
                encryption_type: Some(wire::EncryptionType::NONE),
            };
            wire::Record::create(fbb, &args)
        };
        let records = Some(fbb.create_vector(&[record]));
        let parents = [fbb.create_string("shardId-000000000000")];
        let child = wire::ChildShardArgs {
            shard_id: text(fbb, "shardId-000000000001"),
            parent_shards: Some(fbb.create_vector(&parents)),
            hash_key_range: Some(full_range(fbb)),
        };
        let children = [wire::ChildShard::create(fbb, &child)];
        let args = wire::GetRecordsResponseArgs {
            records,
            next_shard_iterator: None,
            millis_behind_latest: Some(0),
            child_shards: Some(fbb.create_vector(&children)),
        };
        wire::GetRecordsResponse::create(fbb, &args)
    });
    let Ok(ResponseMessage::Response(Response::GetRecords(output))) = message else { panic!("{message:?}") };
    assert_eq!(output.records.len(), 1);
    let record = &output.records[0];
    assert_eq!(record.sequence_number, SequenceNumber::new(u128::MAX - 1));
    assert_eq!(record.approximate_arrival_timestamp, Some(Timestamp::from_epoch_ms(1_704_164_645_678)));
    assert_eq!(record.data.as_ref(), data);
    assert_borrowed_from(&frame, &record.data);
    assert_eq!(record.partition_key.as_deref(), Some("customer-17"));
    assert_eq!(record.encryption_type, Some(EncryptionType::None));
    assert_eq!(output.next_shard_iterator, None);
    assert_eq!(output.millis_behind_latest, Some(0));
    let expected_child = ChildShard {
        shard_id: "shardId-000000000001".into(),
        parent_shards: vec!["shardId-000000000000".into()],
        hash_key_range: HashKeyRange { starting_hash_key: HashKey(0), ending_hash_key: HashKey(u128::MAX) },
    };
    assert_eq!(output.child_shards, Some(vec![expected_child]));
}

#[test]
fn get_records_without_child_shards_says_so() {
    let (_, message) = decode(|fbb| {
        let args = wire::GetRecordsResponseArgs {
            next_shard_iterator: text(fbb, "next"),
            millis_behind_latest: Some(12),
            ..Default::default()
        };
        wire::GetRecordsResponse::create(fbb, &args)
    });
    let Ok(ResponseMessage::Response(Response::GetRecords(output))) = message else { panic!("{message:?}") };
    assert!(output.records.is_empty(), "an absent list reads as empty");
    assert_eq!(output.next_shard_iterator.as_deref(), Some("next"));
    assert_eq!(output.child_shards, None);
}

#[test]
fn describe_stream_keeps_nested_shapes() {
    let (_, message) = decode(|fbb| {
        let start = wire_sequence(100);
        let sequence_number_range = wire::SequenceNumberRange::create(
            fbb,
            &wire::SequenceNumberRangeArgs { starting_sequence_number: Some(&start), ending_sequence_number: None },
        );
        let shard = {
            let args = wire::ShardArgs {
                shard_id: text(fbb, "shardId-000000000000"),
                parent_shard_id: None,
                adjacent_parent_shard_id: None,
                hash_key_range: Some(full_range(fbb)),
                sequence_number_range: Some(sequence_number_range),
            };
            wire::Shard::create(fbb, &args)
        };
        let shards = Some(fbb.create_vector(&[shard]));
        let metrics = fbb.create_vector(&[wire::MetricsName::IncomingBytes, wire::MetricsName::ALL]);
        let enhanced =
            wire::EnhancedMetrics::create(fbb, &wire::EnhancedMetricsArgs { shard_level_metrics: Some(metrics) });
        let enhanced_monitoring = Some(fbb.create_vector(&[enhanced]));
        let args = wire::StreamDescriptionArgs {
            stream_name: text(fbb, "orders"),
            stream_arn: text(fbb, "arn:aws:kinesis:us-east-1:000000000000:stream/orders"),
            stream_status: wire::StreamStatus::ACTIVE,
            stream_mode: Some(wire::StreamMode::PROVISIONED),
            shards,
            has_more_shards: false,
            retention_period_hours: 24,
            stream_creation_timestamp: 1_704_164_645_678,
            enhanced_monitoring,
            encryption_type: Some(wire::EncryptionType::NONE),
            key_id: None,
        };
        let stream_description = Some(wire::StreamDescription::create(fbb, &args));
        wire::DescribeStreamResponse::create(fbb, &wire::DescribeStreamResponseArgs { stream_description })
    });
    let Ok(ResponseMessage::Response(Response::DescribeStream(output))) = message else { panic!("{message:?}") };
    let description = output.stream_description;
    assert_eq!(description.stream_name, "orders");
    assert_eq!(description.stream_arn, "arn:aws:kinesis:us-east-1:000000000000:stream/orders");
    assert_eq!(description.stream_status, StreamStatus::Active);
    assert_eq!(description.stream_mode_details, Some(StreamModeDetails { stream_mode: StreamMode::Provisioned }));
    assert_eq!(description.retention_period_hours, 24);
    assert_eq!(description.stream_creation_timestamp, Timestamp::from_epoch_ms(1_704_164_645_678));
    assert_eq!(description.encryption_type, Some(EncryptionType::None));
    assert_eq!(description.key_id, None);
    assert_eq!(
        description.enhanced_monitoring,
        vec![EnhancedMetrics { shard_level_metrics: vec![MetricsName::IncomingBytes, MetricsName::All] }]
    );
    assert_eq!(
        description.shards,
        vec![Shard {
            shard_id: "shardId-000000000000".into(),
            parent_shard_id: None,
            adjacent_parent_shard_id: None,
            hash_key_range: HashKeyRange { starting_hash_key: HashKey(0), ending_hash_key: HashKey(u128::MAX) },
            sequence_number_range: SequenceNumberRange {
                starting_sequence_number: SequenceNumber::new(100),
                ending_sequence_number: None
            },
        }]
    );
}

#[test]
fn put_records_keeps_failed_entries_in_order() {
    let (_, message) = decode(|fbb| {
        let ok = {
            let sequence_number = wire_sequence(1);
            let args = wire::PutRecordsResultEntryArgs {
                sequence_number: Some(&sequence_number),
                shard_id: text(fbb, "shardId-000000000000"),
                ..Default::default()
            };
            wire::PutRecordsResultEntry::create(fbb, &args)
        };
        let failed = {
            let args = wire::PutRecordsResultEntryArgs {
                error_code: Some(wire::ErrorCode::ProvisionedThroughputExceeded),
                error_message: text(fbb, "slow down"),
                ..Default::default()
            };
            wire::PutRecordsResultEntry::create(fbb, &args)
        };
        let records = Some(fbb.create_vector(&[ok, failed]));
        let args = wire::PutRecordsResponseArgs { failed_record_count: 1, records, encryption_type: None };
        wire::PutRecordsResponse::create(fbb, &args)
    });
    let Ok(ResponseMessage::Response(Response::PutRecords(output))) = message else { panic!("{message:?}") };
    assert_eq!(output.failed_record_count, Some(1));
    assert_eq!(
        output.records,
        vec![
            PutRecordsResultEntry {
                sequence_number: Some(SequenceNumber::new(1)),
                shard_id: Some("shardId-000000000000".into()),
                error_code: None,
                error_message: None,
            },
            PutRecordsResultEntry {
                sequence_number: None,
                shard_id: None,
                error_code: Some(ErrorKind::ProvisionedThroughputExceeded),
                error_message: Some("slow down".into()),
            },
        ]
    );
}

#[test]
fn list_streams_and_consumers_decode() {
    let (_, message) = decode(|fbb| {
        let names = [fbb.create_string("a"), fbb.create_string("b")];
        let stream_names = Some(fbb.create_vector(&names));
        let summary = {
            let args = wire::StreamSummaryArgs {
                stream_name: text(fbb, "a"),
                stream_arn: text(fbb, "arn:aws:kinesis:us-east-1:000000000000:stream/a"),
                stream_status: wire::StreamStatus::CREATING,
                stream_mode: Some(wire::StreamMode::ON_DEMAND),
                stream_creation_timestamp: None,
            };
            wire::StreamSummary::create(fbb, &args)
        };
        let stream_summaries = Some(fbb.create_vector(&[summary]));
        let args =
            wire::ListStreamsResponseArgs { stream_names, has_more_streams: true, next_token: None, stream_summaries };
        wire::ListStreamsResponse::create(fbb, &args)
    });
    let Ok(ResponseMessage::Response(Response::ListStreams(list))) = message else { panic!("{message:?}") };
    assert_eq!(list.stream_names, ["a", "b"]);
    assert!(list.has_more_streams);
    let summary = &list.stream_summaries[0];
    assert_eq!(summary.stream_status, StreamStatus::Creating);
    assert_eq!(summary.stream_mode_details, Some(StreamModeDetails { stream_mode: StreamMode::OnDemand }));
    assert_eq!(summary.stream_creation_timestamp, None);
    let (_, message) = decode(|fbb| {
        let args = wire::ConsumerArgs {
            consumer_name: text(fbb, "audit"),
            consumer_arn: text(fbb, "arn:consumer"),
            consumer_status: wire::ConsumerStatus::ACTIVE,
            consumer_creation_timestamp: 1_704_164_645_678,
        };
        let consumer = Some(wire::Consumer::create(fbb, &args));
        wire::RegisterStreamConsumerResponse::create(fbb, &wire::RegisterStreamConsumerResponseArgs { consumer })
    });
    let Ok(ResponseMessage::Response(Response::RegisterStreamConsumer(registered))) = message else {
        panic!("{message:?}")
    };
    assert_eq!(
        registered.consumer,
        Consumer {
            consumer_name: "audit".into(),
            consumer_arn: "arn:consumer".into(),
            consumer_status: ConsumerStatus::Active,
            consumer_creation_timestamp: Timestamp::from_epoch_ms(1_704_164_645_678),
        }
    );
}

#[test]
fn a_missing_required_member_is_reported_by_shape_and_member() {
    let (_, message) = decode(|fbb| {
        let args = wire::PutRecordResponseArgs { shard_id: text(fbb, "shardId-000000000000"), ..Default::default() };
        wire::PutRecordResponse::create(fbb, &args)
    });
    assert_eq!(message, Err(DecodeError::MissingMember { shape: "PutRecordResponse", member: "sequence_number" }));
    // Deep inside a list, too. (AWS's model no longer requires a record's partition key, so
    // the sequence number stands in for it here.)
    let (_, message) = decode(|fbb| {
        let record = {
            let args = wire::RecordArgs { partition_key: text(fbb, "k"), ..Default::default() };
            wire::Record::create(fbb, &args)
        };
        let records = Some(fbb.create_vector(&[record]));
        wire::GetRecordsResponse::create(fbb, &wire::GetRecordsResponseArgs { records, ..Default::default() })
    });
    assert_eq!(message, Err(DecodeError::MissingMember { shape: "Record", member: "sequence_number" }));
}

#[test]
fn an_unknown_body_is_kept_as_its_tag() {
    let mut fbb = FlatBufferBuilder::new();
    let body = wire::CreateStreamResponse::create(&mut fbb, &wire::CreateStreamResponseArgs {});
    let args = wire::ResponseArgs {
        correlation_id: 1,
        body_type: wire::ResponseBody(200),
        body: Some(body.as_union_value()),
        error: None,
    };
    let root = wire::Response::create(&mut fbb, &args);
    fbb.finish_size_prefixed(root, None);
    let frame = Bytes::copy_from_slice(fbb.finished_data());
    let decoded = decode_response(&frame).unwrap().unwrap();
    assert_eq!(decoded.message, Err(DecodeError::UnknownBody(200)));
    assert_eq!(
        DecodeError::UnknownBody(200).to_string(),
        "the server sent a response of body type 200, which this build does not know"
    );
}

#[test]
fn unknown_enum_values_from_a_newer_server_are_kept() {
    let (_, message) = decode(|fbb| {
        let sequence_number = wire_sequence(1);
        let args = wire::PutRecordResponseArgs {
            shard_id: text(fbb, "shardId-000000000000"),
            sequence_number: Some(&sequence_number),
            encryption_type: Some(wire::EncryptionType(9)),
        };
        wire::PutRecordResponse::create(fbb, &args)
    });
    let Ok(ResponseMessage::Response(Response::PutRecord(output))) = message else { panic!("{message:?}") };
    assert_eq!(output.encryption_type, Some(EncryptionType::Unknown(UnknownValue::Number(9))));
}
