use bytes::Bytes;
use sluice_protocol::{decode_request, RequestBodyRef, FRAME_BYTES_MAX};

use super::*;

/// Encodes `request` with correlation id 42 and decodes the frame as the server would.
fn check<R: EncodeRequest>(request: &R, verify: impl FnOnce(RequestBodyRef<'_>)) {
    let mut fbb = FlatBufferBuilder::new();
    let frame = request.encode(&mut fbb, 42).unwrap();
    let (frame_len, decoded) = decode_request(frame).unwrap().expect("a whole frame");
    assert_eq!(frame_len, frame.len());
    assert_eq!(decoded.correlation_id(), 42);
    verify(RequestBodyRef::of(&decoded));
}

fn strings(list: Option<Vector<'_, ForwardsUOffset<&str>>>) -> Vec<String> {
    list.map(|list| list.iter().map(str::to_owned).collect()).unwrap_or_default()
}

#[test]
fn put_records_carries_binary_payloads_and_optional_keys() {
    let request = PutRecordsRequest {
        stream_name: Some("orders".into()),
        stream_arn: None,
        records: vec![
            PutRecordsRequestEntry {
                data: Bytes::from_static(&[0, 0xff, b'"', 0]),
                partition_key: "k1".into(),
                explicit_hash_key: None,
            },
            PutRecordsRequestEntry {
                data: Bytes::new(),
                partition_key: "k2".into(),
                explicit_hash_key: Some("170141183460469231731687303715884105728".into()),
            },
        ],
    };
    check(&request, |body| {
        let RequestBodyRef::PutRecords(body) = body else { panic!("{body:?}") };
        assert_eq!(body.stream_name(), Some("orders"));
        assert_eq!(body.stream_arn(), None);
        let records: Vec<_> = body
            .records()
            .unwrap()
            .iter()
            .map(|entry| (entry.data().unwrap().bytes().to_vec(), entry.partition_key(), entry.explicit_hash_key()))
            .collect();
        assert_eq!(
            records,
            [
                (vec![0, 0xff, b'"', 0], Some("k1"), None),
                (vec![], Some("k2"), Some("170141183460469231731687303715884105728")),
            ]
        );
    });
}

#[test]
fn put_record_writes_every_member() {
    let request = PutRecordRequest {
        stream_name: None,
        stream_arn: Some("arn:stream".into()),
        data: Bytes::from_static(b"hello"),
        partition_key: "k".into(),
        explicit_hash_key: Some("0".into()),
        sequence_number_for_ordering: Some("12".into()),
    };
    check(&request, |body| {
        let RequestBodyRef::PutRecord(body) = body else { panic!("{body:?}") };
        assert_eq!(body.stream_name(), None);
        assert_eq!(body.stream_arn(), Some("arn:stream"));
        assert_eq!(body.data().unwrap().bytes(), b"hello");
        assert_eq!(body.partition_key(), Some("k"));
        assert_eq!(body.explicit_hash_key(), Some("0"));
        assert_eq!(body.sequence_number_for_ordering(), Some("12"));
    });
}

#[test]
fn create_stream_sends_absent_members_as_absent() {
    let request = CreateStreamRequest { stream_name: "orders".into(), shard_count: Some(2), ..Default::default() };
    check(&request, |body| {
        let RequestBodyRef::CreateStream(body) = body else { panic!("{body:?}") };
        assert_eq!(body.stream_name(), Some("orders"));
        assert_eq!(body.shard_count(), Some(2));
        assert_eq!(body.stream_mode(), None);
        assert!(body.tags().is_none(), "no tags is sent as absent");
        assert_eq!(body.max_record_size_in_kib(), None);
    });
    let request = CreateStreamRequest {
        stream_name: "orders".into(),
        stream_mode: Some(StreamMode::OnDemand),
        tags: vec![Tag::new("team", "data")],
        max_record_size_in_kib: Some(2048),
        ..Default::default()
    };
    check(&request, |body| {
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
    let request = GetShardIteratorRequest {
        stream_name: Some("orders".into()),
        stream_arn: None,
        shard_id: "shardId-000000000001".into(),
        shard_iterator_type: ShardIteratorType::AtTimestamp,
        starting_sequence_number: None,
        timestamp: Some(Timestamp::from_epoch_ms(1_704_164_645_678)),
    };
    check(&request, |body| {
        let RequestBodyRef::GetShardIterator(body) = body else { panic!("{body:?}") };
        assert_eq!(body.shard_id(), Some("shardId-000000000001"));
        assert_eq!(body.shard_iterator_type(), Some(wire::ShardIteratorType::AT_TIMESTAMP));
        assert_eq!(body.starting_sequence_number(), None);
        assert_eq!(body.timestamp(), Some(1_704_164_645_678));
    });
    let request = ListShardsRequest {
        stream_name: Some("orders".into()),
        max_results: Some(10),
        shard_filter: Some(ShardFilter {
            r#type: ShardFilterType::AfterShardId,
            shard_id: Some("shardId-000000000000".into()),
            timestamp: None,
        }),
        ..Default::default()
    };
    check(&request, |body| {
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
    let request = SubscribeToShardRequest {
        consumer_arn: "arn:consumer".into(),
        shard_id: "shardId-000000000000".into(),
        starting_position: StartingPosition {
            r#type: ShardIteratorType::AfterSequenceNumber,
            sequence_number: Some("77".into()),
            timestamp: None,
        },
    };
    check(&request, |body| {
        let RequestBodyRef::SubscribeToShard(body) = body else { panic!("{body:?}") };
        assert_eq!(body.consumer_arn(), Some("arn:consumer"));
        assert_eq!(body.shard_id(), Some("shardId-000000000000"));
        let position = body.starting_position().unwrap();
        assert_eq!(position.type_(), Some(wire::ShardIteratorType::AFTER_SEQUENCE_NUMBER));
        assert_eq!(position.sequence_number(), Some("77"));
        assert_eq!(position.timestamp(), None);
    });
}

#[test]
fn required_lists_are_sent_even_when_empty() {
    check(&AddTagsToStreamRequest { stream_name: Some("s".into()), ..Default::default() }, |body| {
        let RequestBodyRef::AddTagsToStream(body) = body else { panic!("{body:?}") };
        assert_eq!(body.tags().map(|tags| tags.len()), Some(0));
    });
    let request = RemoveTagsFromStreamRequest {
        stream_name: Some("s".into()),
        tag_keys: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    check(&request, |body| {
        let RequestBodyRef::RemoveTagsFromStream(body) = body else { panic!("{body:?}") };
        assert_eq!(strings(body.tag_keys()), ["a", "b"]);
    });
}

#[test]
fn every_other_operation_encodes_to_its_own_body() {
    let stream = || Some("s".to_owned());
    check(
        &DeleteStreamRequest { stream_name: stream(), enforce_consumer_deletion: Some(true), ..Default::default() },
        |b| {
            let RequestBodyRef::DeleteStream(b) = b else { panic!("{b:?}") };
            assert_eq!(b.enforce_consumer_deletion(), Some(true));
        },
    );
    check(&DescribeStreamRequest { stream_name: stream(), limit: Some(5), ..Default::default() }, |b| {
        let RequestBodyRef::DescribeStream(b) = b else { panic!("{b:?}") };
        assert_eq!(b.limit(), Some(5));
    });
    check(&DescribeStreamSummaryRequest { stream_name: stream(), stream_arn: None }, |b| {
        assert!(matches!(b, RequestBodyRef::DescribeStreamSummary(_)));
    });
    check(&ListStreamsRequest { next_token: Some("t".into()), ..Default::default() }, |b| {
        let RequestBodyRef::ListStreams(b) = b else { panic!("{b:?}") };
        assert_eq!(b.next_token(), Some("t"));
        assert_eq!(b.limit(), None);
    });
    check(&GetRecordsRequest { shard_iterator: "it".into(), limit: Some(100), stream_arn: None }, |b| {
        let RequestBodyRef::GetRecords(b) = b else { panic!("{b:?}") };
        assert_eq!((b.shard_iterator(), b.limit()), (Some("it"), Some(100)));
    });
    check(
        &IncreaseStreamRetentionPeriodRequest { stream_name: stream(), retention_period_hours: 48, stream_arn: None },
        |b| {
            let RequestBodyRef::IncreaseStreamRetentionPeriod(b) = b else { panic!("{b:?}") };
            assert_eq!(b.retention_period_hours(), Some(48));
        },
    );
    check(
        &DecreaseStreamRetentionPeriodRequest { stream_name: stream(), retention_period_hours: 24, stream_arn: None },
        |b| {
            let RequestBodyRef::DecreaseStreamRetentionPeriod(b) = b else { panic!("{b:?}") };
            assert_eq!(b.retention_period_hours(), Some(24));
        },
    );
    check(&ListTagsForStreamRequest { stream_name: stream(), limit: Some(3), ..Default::default() }, |b| {
        let RequestBodyRef::ListTagsForStream(b) = b else { panic!("{b:?}") };
        assert_eq!(b.limit(), Some(3));
    });
    check(&DescribeLimitsRequest, |b| assert!(matches!(b, RequestBodyRef::DescribeLimits(_))));
    let register = RegisterStreamConsumerRequest {
        stream_arn: "arn:stream".into(),
        consumer_name: "audit".into(),
        tags: Vec::new(),
    };
    check(&register, |b| {
        let RequestBodyRef::RegisterStreamConsumer(b) = b else { panic!("{b:?}") };
        assert_eq!((b.stream_arn(), b.consumer_name()), (Some("arn:stream"), Some("audit")));
        assert!(b.tags().is_none());
    });
    check(&DeregisterStreamConsumerRequest { consumer_arn: Some("arn:c".into()), ..Default::default() }, |b| {
        let RequestBodyRef::DeregisterStreamConsumer(b) = b else { panic!("{b:?}") };
        assert_eq!((b.consumer_arn(), b.stream_arn()), (Some("arn:c"), None));
    });
    check(&DescribeStreamConsumerRequest { consumer_arn: Some("arn:c".into()), ..Default::default() }, |b| {
        assert!(matches!(b, RequestBodyRef::DescribeStreamConsumer(_)));
    });
    check(
        &ListStreamConsumersRequest { stream_arn: "arn:stream".into(), max_results: Some(2), ..Default::default() },
        |b| {
            let RequestBodyRef::ListStreamConsumers(b) = b else { panic!("{b:?}") };
            assert_eq!(b.max_results(), Some(2));
        },
    );
}

#[test]
fn a_request_too_large_for_a_frame_is_refused() {
    let request = PutRecordRequest {
        stream_name: Some("orders".into()),
        data: Bytes::from(vec![0; FRAME_BYTES_MAX]),
        partition_key: "k".into(),
        ..Default::default()
    };
    let mut fbb = FlatBufferBuilder::new();
    assert!(matches!(request.encode(&mut fbb, 1), Err(FrameError::TooLarge { .. })));
}
