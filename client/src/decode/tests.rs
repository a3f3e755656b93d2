use sluice_protocol::decode_response;
use sluice_protocol::flatbuffers::FlatBufferBuilder;
use sluice_protocol::wire::ErrorCode;

use super::*;
use crate::test_frames::{self, hash_key_range, response, HASH_KEY_MAX, STREAM_ARN, TIMESTAMP_MS};

/// Decodes a whole response frame the way the reader does; `frame` is kept so tests can check
/// that payloads are borrowed from it.
fn check(frame: Vec<u8>) -> (Bytes, Result<Reply>) {
    let frame = Bytes::from(frame);
    let (frame_len, response) = decode_response(&frame).unwrap().expect("a whole frame");
    assert_eq!(frame_len, frame.len());
    assert!(response.error().is_none());
    let reply = reply(&frame, ResponseBodyRef::of(&response));
    (frame, reply)
}

fn assert_borrowed_from(frame: &Bytes, data: &Bytes) {
    let frame_range = frame.as_ptr_range();
    let data_range = data.as_ptr_range();
    assert!(frame_range.start <= data_range.start && data_range.end <= frame_range.end, "payload was copied");
}

fn string<'b>(
    fbb: &mut FlatBufferBuilder<'b>,
    value: &str,
) -> Option<sluice_protocol::flatbuffers::WIPOffset<&'b str>> {
    Some(fbb.create_string(value))
}

#[test]
fn get_records_keeps_every_member_and_borrows_payloads() {
    let data: &[u8] = &[0, 1, 0xff, b'\n', 0];
    let frame = response(7, |fbb| {
        let records = [test_frames::record(fbb, "49546986683135544286507457936321625675700192471156785154", data)];
        let records = Some(fbb.create_vector(&records));
        let parents = [fbb.create_string("shardId-000000000000")];
        let child = wire::ChildShardArgs {
            shard_id: string(fbb, "shardId-000000000001"),
            parent_shards: Some(fbb.create_vector(&parents)),
            hash_key_range: Some(hash_key_range(fbb)),
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
    let (frame, reply) = check(frame);
    let Ok(Reply::GetRecords(response)) = reply else { panic!("{reply:?}") };
    assert_eq!(response.records.len(), 1);
    let record = &response.records[0];
    assert_eq!(record.sequence_number, "49546986683135544286507457936321625675700192471156785154");
    assert_eq!(record.approximate_arrival_timestamp, Some(Timestamp::from_epoch_ms(TIMESTAMP_MS)));
    assert_eq!(record.data.as_ref(), data);
    assert_borrowed_from(&frame, &record.data);
    assert_eq!(record.partition_key, "customer-17");
    assert_eq!(record.encryption_type, Some(EncryptionType::None));
    assert_eq!(response.next_shard_iterator, None);
    assert_eq!(response.millis_behind_latest, Some(0));
    let expected_child = ChildShard {
        shard_id: "shardId-000000000001".into(),
        parent_shards: vec!["shardId-000000000000".into()],
        hash_key_range: HashKeyRange { starting_hash_key: "0".into(), ending_hash_key: HASH_KEY_MAX.into() },
    };
    assert_eq!(response.child_shards, Some(vec![expected_child]));
}

#[test]
fn get_records_without_child_shards_says_so() {
    let frame = response(7, |fbb| {
        let args = wire::GetRecordsResponseArgs {
            next_shard_iterator: string(fbb, "next"),
            millis_behind_latest: Some(12),
            ..Default::default()
        };
        wire::GetRecordsResponse::create(fbb, &args)
    });
    let (_, reply) = check(frame);
    let Ok(Reply::GetRecords(response)) = reply else { panic!("{reply:?}") };
    assert!(response.records.is_empty(), "an absent list reads as empty");
    assert_eq!(response.next_shard_iterator.as_deref(), Some("next"));
    assert_eq!(response.child_shards, None);
}

#[test]
fn describe_stream_keeps_nested_shapes() {
    let frame = response(1, |fbb| {
        let sequence_number_range = {
            let args = wire::SequenceNumberRangeArgs {
                starting_sequence_number: string(fbb, "100"),
                ending_sequence_number: None,
            };
            wire::SequenceNumberRange::create(fbb, &args)
        };
        let shard = {
            let args = wire::ShardArgs {
                shard_id: string(fbb, "shardId-000000000000"),
                parent_shard_id: None,
                adjacent_parent_shard_id: None,
                hash_key_range: Some(hash_key_range(fbb)),
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
            stream_name: string(fbb, "orders"),
            stream_arn: string(fbb, STREAM_ARN),
            stream_status: wire::StreamStatus::ACTIVE,
            stream_mode: Some(wire::StreamMode::PROVISIONED),
            shards,
            has_more_shards: false,
            retention_period_hours: 24,
            stream_creation_timestamp: TIMESTAMP_MS,
            enhanced_monitoring,
            encryption_type: Some(wire::EncryptionType::NONE),
            key_id: None,
        };
        let stream_description = Some(wire::StreamDescription::create(fbb, &args));
        wire::DescribeStreamResponse::create(fbb, &wire::DescribeStreamResponseArgs { stream_description })
    });
    let (_, reply) = check(frame);
    let Ok(Reply::DescribeStream(DescribeStreamResponse { stream_description: description })) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(description.stream_name, "orders");
    assert_eq!(description.stream_arn, STREAM_ARN);
    assert_eq!(description.stream_status, StreamStatus::Active);
    assert_eq!(description.stream_mode, Some(StreamMode::Provisioned));
    assert_eq!(description.retention_period_hours, 24);
    assert_eq!(description.stream_creation_timestamp, Timestamp::from_epoch_ms(TIMESTAMP_MS));
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
            hash_key_range: HashKeyRange { starting_hash_key: "0".into(), ending_hash_key: HASH_KEY_MAX.into() },
            sequence_number_range: SequenceNumberRange {
                starting_sequence_number: "100".into(),
                ending_sequence_number: None
            },
        }]
    );
}

#[test]
fn put_records_keeps_failed_entries_in_order() {
    let frame = response(3, |fbb| {
        let ok = {
            let args = wire::PutRecordsResultEntryArgs {
                sequence_number: string(fbb, "1"),
                shard_id: string(fbb, "shardId-000000000000"),
                ..Default::default()
            };
            wire::PutRecordsResultEntry::create(fbb, &args)
        };
        let failed = {
            let args = wire::PutRecordsResultEntryArgs {
                error_code: Some(ErrorCode::ProvisionedThroughputExceeded),
                error_message: string(fbb, "slow down"),
                ..Default::default()
            };
            wire::PutRecordsResultEntry::create(fbb, &args)
        };
        let records = Some(fbb.create_vector(&[ok, failed]));
        let args = wire::PutRecordsResponseArgs { failed_record_count: 1, records, encryption_type: None };
        wire::PutRecordsResponse::create(fbb, &args)
    });
    let (_, reply) = check(frame);
    let Ok(Reply::PutRecords(response)) = reply else { panic!("{reply:?}") };
    assert_eq!(response.failed_record_count, 1);
    assert_eq!(
        response.records,
        vec![
            PutRecordsResultEntry {
                sequence_number: Some("1".into()),
                shard_id: Some("shardId-000000000000".into()),
                error_code: None,
                error_message: None,
            },
            PutRecordsResultEntry {
                sequence_number: None,
                shard_id: None,
                error_code: Some(ErrorCode::ProvisionedThroughputExceeded),
                error_message: Some("slow down".into()),
            },
        ]
    );
}

#[test]
fn list_streams_and_consumers_decode() {
    let frame = response(4, |fbb| {
        let names = [fbb.create_string("a"), fbb.create_string("b")];
        let stream_names = Some(fbb.create_vector(&names));
        let summary = {
            let args = wire::StreamSummaryArgs {
                stream_name: string(fbb, "a"),
                stream_arn: string(fbb, STREAM_ARN),
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
    let (_, reply) = check(frame);
    let Ok(Reply::ListStreams(list)) = reply else { panic!("{reply:?}") };
    assert_eq!(list.stream_names, ["a", "b"]);
    assert!(list.has_more_streams);
    assert_eq!(list.stream_summaries[0].stream_status, StreamStatus::Creating);
    assert_eq!(list.stream_summaries[0].stream_mode, Some(StreamMode::OnDemand));
    assert_eq!(list.stream_summaries[0].stream_creation_timestamp, None);

    let frame = response(5, |fbb| {
        let args = wire::ConsumerArgs {
            consumer_name: string(fbb, "audit"),
            consumer_arn: string(fbb, "arn:consumer"),
            consumer_status: wire::ConsumerStatus::ACTIVE,
            consumer_creation_timestamp: TIMESTAMP_MS,
        };
        let consumer = Some(wire::Consumer::create(fbb, &args));
        wire::RegisterStreamConsumerResponse::create(fbb, &wire::RegisterStreamConsumerResponseArgs { consumer })
    });
    let (_, reply) = check(frame);
    let Ok(Reply::RegisterStreamConsumer(registered)) = reply else { panic!("{reply:?}") };
    assert_eq!(
        registered.consumer,
        Consumer {
            consumer_name: "audit".into(),
            consumer_arn: "arn:consumer".into(),
            consumer_status: ConsumerStatus::Active,
            consumer_creation_timestamp: Timestamp::from_epoch_ms(TIMESTAMP_MS),
        }
    );
}

#[test]
fn subscription_frames_decode() {
    let (frame, reply) = check(test_frames::subscription_event(9, &[("5", b"x".as_slice()), ("6", b"yz".as_slice())]));
    let Ok(Reply::SubscribeToShardEvent(event)) = reply else { panic!("{reply:?}") };
    assert_eq!(event.continuation_sequence_number, "6");
    assert_eq!(event.records.iter().map(|record| record.data.as_ref()).collect::<Vec<_>>(), [b"x".as_ref(), b"yz"]);
    assert_borrowed_from(&frame, &event.records[1].data);
    assert!(matches!(check(test_frames::subscription_accepted(9)).1, Ok(Reply::SubscribeToShard)));
    assert!(matches!(check(test_frames::subscription_end(9)).1, Ok(Reply::SubscribeToShardEnd)));
}

#[test]
fn a_missing_required_member_is_reported_by_shape_and_member() {
    let frame = response(1, |fbb| {
        let args = wire::PutRecordResponseArgs { shard_id: string(fbb, "shardId-000000000000"), ..Default::default() };
        wire::PutRecordResponse::create(fbb, &args)
    });
    let (_, reply) = check(frame);
    let Err(ClientError::MissingMember { shape, member }) = reply else { panic!("{reply:?}") };
    assert_eq!((shape, member), ("PutRecordResponse", "sequence_number"));

    // Deep inside a list, too.
    let frame = response(1, |fbb| {
        let record = {
            let args = wire::RecordArgs { sequence_number: string(fbb, "1"), ..Default::default() };
            wire::Record::create(fbb, &args)
        };
        let records = Some(fbb.create_vector(&[record]));
        wire::GetRecordsResponse::create(fbb, &wire::GetRecordsResponseArgs { records, ..Default::default() })
    });
    let (_, reply) = check(frame);
    let Err(ClientError::MissingMember { shape, member }) = reply else { panic!("{reply:?}") };
    assert_eq!((shape, member), ("Record", "partition_key"));
}

#[test]
fn an_unknown_body_is_kept_as_its_tag() {
    let (_, reply) = check(test_frames::unknown_body(1, 200));
    let Ok(reply @ Reply::Unknown(ResponseBody(200))) = reply else { panic!("{reply:?}") };
    assert_eq!(reply.describe(), "a body this client does not know (union tag 200)");
    assert_eq!(
        Reply::PutRecords(PutRecordsResponse { failed_record_count: 0, records: Vec::new(), encryption_type: None })
            .describe(),
        "a PutRecordsResponse"
    );
}

#[test]
fn unknown_enum_values_from_a_newer_server_are_kept() {
    let frame = response(1, |fbb| {
        let args = wire::PutRecordResponseArgs {
            shard_id: string(fbb, "shardId-000000000000"),
            sequence_number: string(fbb, "1"),
            encryption_type: Some(wire::EncryptionType(9)),
        };
        wire::PutRecordResponse::create(fbb, &args)
    });
    let (_, reply) = check(frame);
    let Ok(Reply::PutRecord(response)) = reply else { panic!("{reply:?}") };
    assert_eq!(response.encryption_type, Some(EncryptionType::Unknown(9)));
}
