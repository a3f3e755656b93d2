//! Every request and response kind survives encode → frame → decode through the public API,
//! with its fields intact and its byte payloads borrowed from the frame.

use sluice_protocol::flatbuffers::{FlatBufferBuilder, ForwardsUOffset, Vector, WIPOffset};
use sluice_protocol::wire::*;
use sluice_protocol::{
    decode_request, decode_response, encode_error_response, encode_request, encode_response, RequestBodyRef,
    ResponseBodyRef,
};

const STREAM_NAME: &str = "orders";
const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";
const CONSUMER_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/audit:1704164645";
/// 2^128 - 1, the largest hash key.
const HASH_KEY_MAX: HashKey = HashKey(wide(u128::MAX));
/// The smallest hash key.
const HASH_KEY_ZERO: HashKey = HashKey(wide(0));
/// A sequence number as Sluice issues them (version 1, shard epoch, shard 1, record 1).
const SEQUENCE_NUMBER: SequenceNumber = SequenceNumber(wide(1_331_398_394_219_979_422_966_694_971_397_111_809));

/// The schema's 128-bit struct layout: `high` then `low`, each little-endian.
const fn wide(value: u128) -> [u8; 16] {
    let high = ((value >> 64) as u64).to_le_bytes();
    let low = (value as u64).to_le_bytes();
    let mut bytes = [0; 16];
    let mut i = 0;
    while i < 8 {
        bytes[i] = high[i];
        bytes[8 + i] = low[i];
        i += 1;
    }
    bytes
}
const TIMESTAMP_MS: i64 = 1_704_164_645_678;
/// Binary payload with the bytes a text-minded codec would mangle.
const DATA: &[u8] = &[0, 1, 0xff, b'\n', 0, 0x80, b'"'];

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn string<'b>(fbb: &mut FlatBufferBuilder<'b>, value: &str) -> Option<WIPOffset<&'b str>> {
    Some(fbb.create_string(value))
}

fn bytes<'b>(fbb: &mut FlatBufferBuilder<'b>, value: &[u8]) -> Option<WIPOffset<Vector<'b, u8>>> {
    Some(fbb.create_vector(value))
}

type TableVector<'b, T> = Option<WIPOffset<Vector<'b, ForwardsUOffset<T>>>>;

fn tags<'b>(fbb: &mut FlatBufferBuilder<'b>, pairs: &[(&str, &str)]) -> TableVector<'b, Tag<'b>> {
    let tags: Vec<_> = pairs
        .iter()
        .map(|(key, value)| {
            let args = TagArgs { key: string(fbb, key), value: string(fbb, value) };
            Tag::create(fbb, &args)
        })
        .collect();
    Some(fbb.create_vector(&tags))
}

fn check_tags(tags: Option<Vector<'_, ForwardsUOffset<Tag<'_>>>>, expected: &[(&str, &str)]) {
    let actual: Vec<_> = tags.expect("tags").iter().map(|tag| (tag.key().unwrap(), tag.value().unwrap())).collect();
    assert_eq!(actual, expected);
}

fn strings(vector: Option<Vector<'_, ForwardsUOffset<&str>>>) -> Vec<String> {
    vector.expect("string vector").iter().map(str::to_owned).collect()
}

/// Asserts that `slice` lies inside `frame`: the payload was read in place, not copied.
fn assert_borrowed_from(frame: &[u8], slice: &[u8]) {
    let frame_range = frame.as_ptr_range();
    let slice_range = slice.as_ptr_range();
    assert!(
        frame_range.start <= slice_range.start && slice_range.end <= frame_range.end,
        "payload is not borrowed from the frame"
    );
}

/// Decodes `frame` as one whole request frame with the given correlation id.
fn decoded_request(frame: &[u8], correlation_id: u64) -> RequestBodyRef<'_> {
    let (frame_len, request) = decode_request(frame).unwrap().expect("whole frame");
    assert_eq!(frame_len, frame.len());
    assert_eq!(request.correlation_id(), correlation_id);
    RequestBodyRef::of(&request)
}

fn decoded_response(frame: &[u8], correlation_id: u64) -> ResponseBodyRef<'_> {
    let (frame_len, response) = decode_response(frame).unwrap().expect("whole frame");
    assert_eq!(frame_len, frame.len());
    assert_eq!(response.correlation_id(), correlation_id);
    assert!(response.error().is_none());
    ResponseBodyRef::of(&response)
}

fn shard<'b>(fbb: &mut FlatBufferBuilder<'b>, index: u32, closed: bool) -> WIPOffset<Shard<'b>> {
    let hash_key_range = hash_key_range(&HASH_KEY_ZERO, &HASH_KEY_MAX, fbb);
    let sequence_number_range = {
        let args = SequenceNumberRangeArgs {
            starting_sequence_number: Some(&SEQUENCE_NUMBER),
            ending_sequence_number: if closed { Some(&SEQUENCE_NUMBER) } else { None },
        };
        SequenceNumberRange::create(fbb, &args)
    };
    let args = ShardArgs {
        shard_id: string(fbb, &format!("shardId-{index:012}")),
        parent_shard_id: if closed { None } else { string(fbb, "shardId-000000000000") },
        adjacent_parent_shard_id: None,
        hash_key_range: Some(hash_key_range),
        sequence_number_range: Some(sequence_number_range),
    };
    Shard::create(fbb, &args)
}

fn check_shard(shard: Shard<'_>, index: u32, closed: bool) {
    assert_eq!(shard.shard_id(), Some(format!("shardId-{index:012}").as_str()));
    assert_eq!(shard.parent_shard_id(), (!closed).then_some("shardId-000000000000"));
    assert_eq!(shard.adjacent_parent_shard_id(), None);
    let range = shard.hash_key_range().unwrap();
    assert_eq!(range.starting_hash_key(), Some(&HASH_KEY_ZERO));
    assert_eq!(range.ending_hash_key(), Some(&HASH_KEY_MAX));
    let range = shard.sequence_number_range().unwrap();
    assert_eq!(range.starting_sequence_number(), Some(&SEQUENCE_NUMBER));
    assert_eq!(range.ending_sequence_number(), closed.then_some(&SEQUENCE_NUMBER));
}

fn hash_key_range<'b>(
    starting: &HashKey,
    ending: &HashKey,
    fbb: &mut FlatBufferBuilder<'b>,
) -> WIPOffset<HashKeyRange<'b>> {
    let args = HashKeyRangeArgs { starting_hash_key: Some(starting), ending_hash_key: Some(ending) };
    HashKeyRange::create(fbb, &args)
}

fn record<'b>(fbb: &mut FlatBufferBuilder<'b>, data: &[u8]) -> WIPOffset<Record<'b>> {
    let args = RecordArgs {
        sequence_number: Some(&SEQUENCE_NUMBER),
        approximate_arrival_timestamp: Some(TIMESTAMP_MS),
        data: bytes(fbb, data),
        partition_key: string(fbb, "customer-17"),
        encryption_type: Some(EncryptionType::NONE),
    };
    Record::create(fbb, &args)
}

fn check_record(frame: &[u8], record: Record<'_>, data: &[u8]) {
    assert_eq!(record.sequence_number(), Some(&SEQUENCE_NUMBER));
    assert_eq!(record.approximate_arrival_timestamp(), Some(TIMESTAMP_MS));
    let actual = record.data().unwrap().bytes();
    assert_eq!(actual, data);
    assert_borrowed_from(frame, actual);
    assert_eq!(record.partition_key(), Some("customer-17"));
    assert_eq!(record.encryption_type(), Some(EncryptionType::NONE));
}

/// The two children of a split.
fn child_shards<'b>(fbb: &mut FlatBufferBuilder<'b>) -> TableVector<'b, ChildShard<'b>> {
    let children: Vec<_> = (1..=2)
        .map(|index| {
            let parents = [fbb.create_string("shardId-000000000000")];
            let args = ChildShardArgs {
                shard_id: string(fbb, &format!("shardId-{index:012}")),
                parent_shards: Some(fbb.create_vector(&parents)),
                hash_key_range: Some(hash_key_range(&HASH_KEY_ZERO, &HASH_KEY_MAX, fbb)),
            };
            ChildShard::create(fbb, &args)
        })
        .collect();
    Some(fbb.create_vector(&children))
}

fn check_child_shards(children: Option<Vector<'_, ForwardsUOffset<ChildShard<'_>>>>) {
    let children = children.expect("child shards");
    assert_eq!(children.len(), 2);
    for (index, child) in (1..=2).zip(children.iter()) {
        assert_eq!(child.shard_id(), Some(format!("shardId-{index:012}").as_str()));
        assert_eq!(strings(child.parent_shards()), vec!["shardId-000000000000".to_owned()]);
        let range = child.hash_key_range().unwrap();
        assert_eq!(range.starting_hash_key(), Some(&HASH_KEY_ZERO));
        assert_eq!(range.ending_hash_key(), Some(&HASH_KEY_MAX));
    }
}

fn consumer<'b>(fbb: &mut FlatBufferBuilder<'b>) -> WIPOffset<Consumer<'b>> {
    let args = ConsumerArgs {
        consumer_name: string(fbb, "audit"),
        consumer_arn: string(fbb, CONSUMER_ARN),
        consumer_status: ConsumerStatus::ACTIVE,
        consumer_creation_timestamp: TIMESTAMP_MS,
    };
    Consumer::create(fbb, &args)
}

fn check_consumer(consumer: Consumer<'_>) {
    assert_eq!(consumer.consumer_name(), Some("audit"));
    assert_eq!(consumer.consumer_arn(), Some(CONSUMER_ARN));
    assert_eq!(consumer.consumer_status(), ConsumerStatus::ACTIVE);
    assert_eq!(consumer.consumer_creation_timestamp(), TIMESTAMP_MS);
}

fn enhanced_monitoring<'b>(fbb: &mut FlatBufferBuilder<'b>) -> TableVector<'b, EnhancedMetrics<'b>> {
    let metrics = fbb.create_vector(&[MetricsName::IncomingBytes, MetricsName::ALL]);
    let args = EnhancedMetricsArgs { shard_level_metrics: Some(metrics) };
    let enhanced = EnhancedMetrics::create(fbb, &args);
    Some(fbb.create_vector(&[enhanced]))
}

fn check_enhanced_monitoring(list: Option<Vector<'_, ForwardsUOffset<EnhancedMetrics<'_>>>>) {
    let list = list.expect("enhanced monitoring");
    assert_eq!(list.len(), 1);
    let metrics: Vec<_> = list.get(0).shard_level_metrics().unwrap().iter().collect();
    assert_eq!(metrics, [MetricsName::IncomingBytes, MetricsName::ALL]);
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

#[test]
fn create_stream_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = CreateStreamRequestArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        shard_count: Some(4),
        stream_mode: Some(StreamMode::ON_DEMAND),
        tags: tags(&mut fbb, &[("team", "data"), ("env", "")]),
        max_record_size_in_kib: Some(10_240),
    };
    let body = CreateStreamRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 1, body).unwrap();
    let RequestBodyRef::CreateStream(request) = decoded_request(frame, 1) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_name(), Some(STREAM_NAME));
    assert_eq!(request.shard_count(), Some(4));
    assert_eq!(request.stream_mode(), Some(StreamMode::ON_DEMAND));
    check_tags(request.tags(), &[("team", "data"), ("env", "")]);
    assert_eq!(request.max_record_size_in_kib(), Some(10_240));
}

#[test]
fn create_stream_request_absent_members_read_as_absent() {
    let mut fbb = FlatBufferBuilder::new();
    let body = CreateStreamRequest::create(&mut fbb, &CreateStreamRequestArgs::default());
    let frame = encode_request(&mut fbb, 0, body).unwrap();
    let RequestBodyRef::CreateStream(request) = decoded_request(frame, 0) else {
        panic!("wrong body");
    };
    // The server needs to tell "absent" from "zero" to answer Validation like AWS.
    assert_eq!(request.stream_name(), None);
    assert_eq!(request.shard_count(), None);
    assert_eq!(request.stream_mode(), None);
    assert!(request.tags().is_none());
}

#[test]
fn delete_stream_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = DeleteStreamRequestArgs {
        stream_name: None,
        stream_arn: string(&mut fbb, STREAM_ARN),
        enforce_consumer_deletion: Some(true),
    };
    let body = DeleteStreamRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 2, body).unwrap();
    let RequestBodyRef::DeleteStream(request) = decoded_request(frame, 2) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_name(), None);
    assert_eq!(request.stream_arn(), Some(STREAM_ARN));
    assert_eq!(request.enforce_consumer_deletion(), Some(true));
}

#[test]
fn describe_stream_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = DescribeStreamRequestArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        stream_arn: None,
        limit: Some(100),
        exclusive_start_shard_id: string(&mut fbb, "shardId-000000000001"),
    };
    let body = DescribeStreamRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 3, body).unwrap();
    let RequestBodyRef::DescribeStream(request) = decoded_request(frame, 3) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_name(), Some(STREAM_NAME));
    assert_eq!(request.limit(), Some(100));
    assert_eq!(request.exclusive_start_shard_id(), Some("shardId-000000000001"));
}

#[test]
fn describe_stream_summary_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = DescribeStreamSummaryRequestArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        stream_arn: string(&mut fbb, STREAM_ARN),
    };
    let body = DescribeStreamSummaryRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 4, body).unwrap();
    let RequestBodyRef::DescribeStreamSummary(request) = decoded_request(frame, 4) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_name(), Some(STREAM_NAME));
    assert_eq!(request.stream_arn(), Some(STREAM_ARN));
}

#[test]
fn list_streams_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = ListStreamsRequestArgs {
        limit: Some(10),
        exclusive_start_stream_name: string(&mut fbb, "a-stream"),
        next_token: string(&mut fbb, "token-1"),
    };
    let body = ListStreamsRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 5, body).unwrap();
    let RequestBodyRef::ListStreams(request) = decoded_request(frame, 5) else {
        panic!("wrong body");
    };
    assert_eq!(request.limit(), Some(10));
    assert_eq!(request.exclusive_start_stream_name(), Some("a-stream"));
    assert_eq!(request.next_token(), Some("token-1"));
}

#[test]
fn list_shards_request() {
    let mut fbb = FlatBufferBuilder::new();
    let shard_filter = {
        let args = ShardFilterArgs {
            type_: Some(ShardFilterType::AT_TIMESTAMP),
            shard_id: string(&mut fbb, "shardId-000000000002"),
            timestamp: Some(TIMESTAMP_MS),
        };
        ShardFilter::create(&mut fbb, &args)
    };
    let args = ListShardsRequestArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        stream_arn: None,
        next_token: string(&mut fbb, "token-2"),
        exclusive_start_shard_id: string(&mut fbb, "shardId-000000000001"),
        max_results: Some(1000),
        stream_creation_timestamp: Some(TIMESTAMP_MS - 1),
        shard_filter: Some(shard_filter),
    };
    let body = ListShardsRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 6, body).unwrap();
    let RequestBodyRef::ListShards(request) = decoded_request(frame, 6) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_name(), Some(STREAM_NAME));
    assert_eq!(request.next_token(), Some("token-2"));
    assert_eq!(request.exclusive_start_shard_id(), Some("shardId-000000000001"));
    assert_eq!(request.max_results(), Some(1000));
    assert_eq!(request.stream_creation_timestamp(), Some(TIMESTAMP_MS - 1));
    let filter = request.shard_filter().unwrap();
    assert_eq!(filter.type_(), Some(ShardFilterType::AT_TIMESTAMP));
    assert_eq!(filter.shard_id(), Some("shardId-000000000002"));
    assert_eq!(filter.timestamp(), Some(TIMESTAMP_MS));
}

#[test]
fn put_record_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = PutRecordRequestArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        stream_arn: None,
        data: bytes(&mut fbb, DATA),
        partition_key: string(&mut fbb, "customer-17"),
        explicit_hash_key: Some(&HASH_KEY_MAX),
        sequence_number_for_ordering: Some(&SEQUENCE_NUMBER),
    };
    let body = PutRecordRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 7, body).unwrap();
    let RequestBodyRef::PutRecord(request) = decoded_request(frame, 7) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_name(), Some(STREAM_NAME));
    let data = request.data().unwrap().bytes();
    assert_eq!(data, DATA);
    assert_borrowed_from(frame, data);
    assert_eq!(request.partition_key(), Some("customer-17"));
    assert_eq!(request.explicit_hash_key(), Some(&HASH_KEY_MAX));
    assert_eq!(request.sequence_number_for_ordering(), Some(&SEQUENCE_NUMBER));
}

#[test]
fn put_records_request() {
    let payloads: [&[u8]; 3] = [DATA, b"", b"third"];
    let mut fbb = FlatBufferBuilder::new();
    let entries: Vec<_> = payloads
        .iter()
        .enumerate()
        .map(|(index, payload)| {
            let args = PutRecordsEntryArgs {
                data: bytes(&mut fbb, payload),
                partition_key: string(&mut fbb, &format!("key-{index}")),
                explicit_hash_key: if index == 2 { Some(&HASH_KEY_ZERO) } else { None },
            };
            PutRecordsEntry::create(&mut fbb, &args)
        })
        .collect();
    let args = PutRecordsRequestArgs {
        stream_name: None,
        stream_arn: string(&mut fbb, STREAM_ARN),
        records: Some(fbb.create_vector(&entries)),
    };
    let body = PutRecordsRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 8, body).unwrap();
    let RequestBodyRef::PutRecords(request) = decoded_request(frame, 8) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_arn(), Some(STREAM_ARN));
    let records = request.records().unwrap();
    assert_eq!(records.len(), payloads.len());
    for (index, (entry, payload)) in records.iter().zip(payloads).enumerate() {
        let data = entry.data().unwrap().bytes();
        assert_eq!(data, payload);
        assert_borrowed_from(frame, data);
        assert_eq!(entry.partition_key(), Some(format!("key-{index}").as_str()));
        assert_eq!(entry.explicit_hash_key(), (index == 2).then_some(&HASH_KEY_ZERO));
    }
}

#[test]
fn get_shard_iterator_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = GetShardIteratorRequestArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        stream_arn: None,
        shard_id: string(&mut fbb, "shardId-000000000000"),
        shard_iterator_type: Some(ShardIteratorType::AT_SEQUENCE_NUMBER),
        starting_sequence_number: Some(&SEQUENCE_NUMBER),
        timestamp: Some(TIMESTAMP_MS),
    };
    let body = GetShardIteratorRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 9, body).unwrap();
    let RequestBodyRef::GetShardIterator(request) = decoded_request(frame, 9) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_name(), Some(STREAM_NAME));
    assert_eq!(request.shard_id(), Some("shardId-000000000000"));
    // AT_SEQUENCE_NUMBER is the enum's zero: present-and-zero must not read as absent.
    assert_eq!(request.shard_iterator_type(), Some(ShardIteratorType::AT_SEQUENCE_NUMBER));
    assert_eq!(request.starting_sequence_number(), Some(&SEQUENCE_NUMBER));
    assert_eq!(request.timestamp(), Some(TIMESTAMP_MS));
}

#[test]
fn get_records_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = GetRecordsRequestArgs {
        shard_iterator: string(&mut fbb, "AAAAiterator"),
        limit: Some(10_000),
        stream_arn: string(&mut fbb, STREAM_ARN),
    };
    let body = GetRecordsRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 10, body).unwrap();
    let RequestBodyRef::GetRecords(request) = decoded_request(frame, 10) else {
        panic!("wrong body");
    };
    assert_eq!(request.shard_iterator(), Some("AAAAiterator"));
    assert_eq!(request.limit(), Some(10_000));
    assert_eq!(request.stream_arn(), Some(STREAM_ARN));
}

#[test]
fn increase_stream_retention_period_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = IncreaseStreamRetentionPeriodRequestArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        stream_arn: None,
        retention_period_hours: Some(168),
    };
    let body = IncreaseStreamRetentionPeriodRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 11, body).unwrap();
    let RequestBodyRef::IncreaseStreamRetentionPeriod(request) = decoded_request(frame, 11) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_name(), Some(STREAM_NAME));
    assert_eq!(request.retention_period_hours(), Some(168));
}

#[test]
fn decrease_stream_retention_period_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = DecreaseStreamRetentionPeriodRequestArgs {
        stream_name: None,
        stream_arn: string(&mut fbb, STREAM_ARN),
        retention_period_hours: Some(24),
    };
    let body = DecreaseStreamRetentionPeriodRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 12, body).unwrap();
    let RequestBodyRef::DecreaseStreamRetentionPeriod(request) = decoded_request(frame, 12) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_arn(), Some(STREAM_ARN));
    assert_eq!(request.retention_period_hours(), Some(24));
}

#[test]
fn add_tags_to_stream_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = AddTagsToStreamRequestArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        stream_arn: None,
        tags: tags(&mut fbb, &[("owner", "ops")]),
    };
    let body = AddTagsToStreamRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 13, body).unwrap();
    let RequestBodyRef::AddTagsToStream(request) = decoded_request(frame, 13) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_name(), Some(STREAM_NAME));
    check_tags(request.tags(), &[("owner", "ops")]);
}

#[test]
fn remove_tags_from_stream_request() {
    let mut fbb = FlatBufferBuilder::new();
    let keys = [fbb.create_string("owner"), fbb.create_string("env")];
    let args = RemoveTagsFromStreamRequestArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        stream_arn: None,
        tag_keys: Some(fbb.create_vector(&keys)),
    };
    let body = RemoveTagsFromStreamRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 14, body).unwrap();
    let RequestBodyRef::RemoveTagsFromStream(request) = decoded_request(frame, 14) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_name(), Some(STREAM_NAME));
    assert_eq!(strings(request.tag_keys()), ["owner", "env"]);
}

#[test]
fn list_tags_for_stream_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = ListTagsForStreamRequestArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        stream_arn: None,
        exclusive_start_tag_key: string(&mut fbb, "env"),
        limit: Some(50),
    };
    let body = ListTagsForStreamRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 15, body).unwrap();
    let RequestBodyRef::ListTagsForStream(request) = decoded_request(frame, 15) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_name(), Some(STREAM_NAME));
    assert_eq!(request.exclusive_start_tag_key(), Some("env"));
    assert_eq!(request.limit(), Some(50));
}

#[test]
fn describe_limits_request() {
    let mut fbb = FlatBufferBuilder::new();
    let body = DescribeLimitsRequest::create(&mut fbb, &DescribeLimitsRequestArgs {});
    let frame = encode_request(&mut fbb, 16, body).unwrap();
    assert!(matches!(decoded_request(frame, 16), RequestBodyRef::DescribeLimits(_)));
}

#[test]
fn register_stream_consumer_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = RegisterStreamConsumerRequestArgs {
        stream_arn: string(&mut fbb, STREAM_ARN),
        consumer_name: string(&mut fbb, "audit"),
        tags: tags(&mut fbb, &[("team", "security")]),
    };
    let body = RegisterStreamConsumerRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 17, body).unwrap();
    let RequestBodyRef::RegisterStreamConsumer(request) = decoded_request(frame, 17) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_arn(), Some(STREAM_ARN));
    assert_eq!(request.consumer_name(), Some("audit"));
    check_tags(request.tags(), &[("team", "security")]);
}

#[test]
fn deregister_stream_consumer_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = DeregisterStreamConsumerRequestArgs {
        stream_arn: None,
        consumer_name: None,
        consumer_arn: string(&mut fbb, CONSUMER_ARN),
    };
    let body = DeregisterStreamConsumerRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 18, body).unwrap();
    let RequestBodyRef::DeregisterStreamConsumer(request) = decoded_request(frame, 18) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_arn(), None);
    assert_eq!(request.consumer_name(), None);
    assert_eq!(request.consumer_arn(), Some(CONSUMER_ARN));
}

#[test]
fn describe_stream_consumer_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = DescribeStreamConsumerRequestArgs {
        stream_arn: string(&mut fbb, STREAM_ARN),
        consumer_name: string(&mut fbb, "audit"),
        consumer_arn: None,
    };
    let body = DescribeStreamConsumerRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 19, body).unwrap();
    let RequestBodyRef::DescribeStreamConsumer(request) = decoded_request(frame, 19) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_arn(), Some(STREAM_ARN));
    assert_eq!(request.consumer_name(), Some("audit"));
    assert_eq!(request.consumer_arn(), None);
}

#[test]
fn list_stream_consumers_request() {
    let mut fbb = FlatBufferBuilder::new();
    let args = ListStreamConsumersRequestArgs {
        stream_arn: string(&mut fbb, STREAM_ARN),
        next_token: string(&mut fbb, "token-3"),
        max_results: Some(100),
        stream_creation_timestamp: Some(TIMESTAMP_MS),
    };
    let body = ListStreamConsumersRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, 20, body).unwrap();
    let RequestBodyRef::ListStreamConsumers(request) = decoded_request(frame, 20) else {
        panic!("wrong body");
    };
    assert_eq!(request.stream_arn(), Some(STREAM_ARN));
    assert_eq!(request.next_token(), Some("token-3"));
    assert_eq!(request.max_results(), Some(100));
    assert_eq!(request.stream_creation_timestamp(), Some(TIMESTAMP_MS));
}

#[test]
fn subscribe_to_shard_request() {
    let mut fbb = FlatBufferBuilder::new();
    let starting_position = {
        let args = StartingPositionArgs {
            type_: Some(ShardIteratorType::AFTER_SEQUENCE_NUMBER),
            sequence_number: Some(&SEQUENCE_NUMBER),
            timestamp: None,
        };
        StartingPosition::create(&mut fbb, &args)
    };
    let args = SubscribeToShardRequestArgs {
        consumer_arn: string(&mut fbb, CONSUMER_ARN),
        shard_id: string(&mut fbb, "shardId-000000000000"),
        starting_position: Some(starting_position),
    };
    let body = SubscribeToShardRequest::create(&mut fbb, &args);
    let frame = encode_request(&mut fbb, u64::MAX, body).unwrap();
    let RequestBodyRef::SubscribeToShard(request) = decoded_request(frame, u64::MAX) else {
        panic!("wrong body");
    };
    assert_eq!(request.consumer_arn(), Some(CONSUMER_ARN));
    assert_eq!(request.shard_id(), Some("shardId-000000000000"));
    let position = request.starting_position().unwrap();
    assert_eq!(position.type_(), Some(ShardIteratorType::AFTER_SEQUENCE_NUMBER));
    assert_eq!(position.sequence_number(), Some(&SEQUENCE_NUMBER));
    assert_eq!(position.timestamp(), None);
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// Response kinds with no members: the body only confirms which operation succeeded.
#[test]
fn empty_responses() {
    fn check<T: sluice_protocol::ResponseBodyTable>(
        build: impl FnOnce(&mut FlatBufferBuilder<'static>) -> WIPOffset<T>,
        is_expected: fn(&ResponseBodyRef<'_>) -> bool,
    ) {
        let mut fbb = FlatBufferBuilder::new();
        let body = build(&mut fbb);
        let frame = encode_response(&mut fbb, 42, body).unwrap();
        let body = decoded_response(frame, 42);
        assert!(is_expected(&body), "wrong body {body:?}");
    }
    check(
        |fbb| CreateStreamResponse::create(fbb, &CreateStreamResponseArgs {}),
        |body| matches!(body, ResponseBodyRef::CreateStream(_)),
    );
    check(
        |fbb| DeleteStreamResponse::create(fbb, &DeleteStreamResponseArgs {}),
        |body| matches!(body, ResponseBodyRef::DeleteStream(_)),
    );
    check(
        |fbb| IncreaseStreamRetentionPeriodResponse::create(fbb, &IncreaseStreamRetentionPeriodResponseArgs {}),
        |body| matches!(body, ResponseBodyRef::IncreaseStreamRetentionPeriod(_)),
    );
    check(
        |fbb| DecreaseStreamRetentionPeriodResponse::create(fbb, &DecreaseStreamRetentionPeriodResponseArgs {}),
        |body| matches!(body, ResponseBodyRef::DecreaseStreamRetentionPeriod(_)),
    );
    check(
        |fbb| AddTagsToStreamResponse::create(fbb, &AddTagsToStreamResponseArgs {}),
        |body| matches!(body, ResponseBodyRef::AddTagsToStream(_)),
    );
    check(
        |fbb| RemoveTagsFromStreamResponse::create(fbb, &RemoveTagsFromStreamResponseArgs {}),
        |body| matches!(body, ResponseBodyRef::RemoveTagsFromStream(_)),
    );
    check(
        |fbb| DeregisterStreamConsumerResponse::create(fbb, &DeregisterStreamConsumerResponseArgs {}),
        |body| matches!(body, ResponseBodyRef::DeregisterStreamConsumer(_)),
    );
    check(
        |fbb| SubscribeToShardResponse::create(fbb, &SubscribeToShardResponseArgs {}),
        |body| matches!(body, ResponseBodyRef::SubscribeToShard(_)),
    );
    check(
        |fbb| SubscribeToShardEnd::create(fbb, &SubscribeToShardEndArgs {}),
        |body| matches!(body, ResponseBodyRef::SubscribeToShardEnd(_)),
    );
}

#[test]
fn describe_stream_response() {
    let mut fbb = FlatBufferBuilder::new();
    let shards = [shard(&mut fbb, 0, true), shard(&mut fbb, 1, false)];
    let args = StreamDescriptionArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        stream_arn: string(&mut fbb, STREAM_ARN),
        stream_status: StreamStatus::ACTIVE,
        stream_mode: Some(StreamMode::PROVISIONED),
        shards: Some(fbb.create_vector(&shards)),
        has_more_shards: true,
        retention_period_hours: 24,
        stream_creation_timestamp: TIMESTAMP_MS,
        enhanced_monitoring: enhanced_monitoring(&mut fbb),
        encryption_type: Some(EncryptionType::KMS),
        key_id: string(&mut fbb, "alias/aws/kinesis"),
    };
    let description = StreamDescription::create(&mut fbb, &args);
    let args = DescribeStreamResponseArgs { stream_description: Some(description) };
    let body = DescribeStreamResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 3, body).unwrap();
    let ResponseBodyRef::DescribeStream(response) = decoded_response(frame, 3) else {
        panic!("wrong body");
    };
    let description = response.stream_description().unwrap();
    assert_eq!(description.stream_name(), Some(STREAM_NAME));
    assert_eq!(description.stream_arn(), Some(STREAM_ARN));
    assert_eq!(description.stream_status(), StreamStatus::ACTIVE);
    assert_eq!(description.stream_mode(), Some(StreamMode::PROVISIONED));
    let shards = description.shards().unwrap();
    assert_eq!(shards.len(), 2);
    check_shard(shards.get(0), 0, true);
    check_shard(shards.get(1), 1, false);
    assert!(description.has_more_shards());
    assert_eq!(description.retention_period_hours(), 24);
    assert_eq!(description.stream_creation_timestamp(), TIMESTAMP_MS);
    check_enhanced_monitoring(description.enhanced_monitoring());
    assert_eq!(description.encryption_type(), Some(EncryptionType::KMS));
    assert_eq!(description.key_id(), Some("alias/aws/kinesis"));
}

#[test]
fn describe_stream_summary_response() {
    let mut fbb = FlatBufferBuilder::new();
    let args = StreamDescriptionSummaryArgs {
        stream_name: string(&mut fbb, STREAM_NAME),
        stream_arn: string(&mut fbb, STREAM_ARN),
        stream_status: StreamStatus::UPDATING,
        stream_mode: Some(StreamMode::ON_DEMAND),
        retention_period_hours: 8760,
        stream_creation_timestamp: TIMESTAMP_MS,
        enhanced_monitoring: enhanced_monitoring(&mut fbb),
        encryption_type: Some(EncryptionType::NONE),
        key_id: None,
        open_shard_count: 4,
        consumer_count: Some(2),
        max_record_size_in_kib: Some(1024),
        warm_throughput: None,
        record_distribution_strategy: None,
    };
    let summary = StreamDescriptionSummary::create(&mut fbb, &args);
    let args = DescribeStreamSummaryResponseArgs { stream_description_summary: Some(summary) };
    let body = DescribeStreamSummaryResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 4, body).unwrap();
    let ResponseBodyRef::DescribeStreamSummary(response) = decoded_response(frame, 4) else {
        panic!("wrong body");
    };
    let summary = response.stream_description_summary().unwrap();
    assert_eq!(summary.stream_name(), Some(STREAM_NAME));
    assert_eq!(summary.stream_arn(), Some(STREAM_ARN));
    assert_eq!(summary.stream_status(), StreamStatus::UPDATING);
    assert_eq!(summary.stream_mode(), Some(StreamMode::ON_DEMAND));
    assert_eq!(summary.retention_period_hours(), 8760);
    assert_eq!(summary.stream_creation_timestamp(), TIMESTAMP_MS);
    check_enhanced_monitoring(summary.enhanced_monitoring());
    assert_eq!(summary.encryption_type(), Some(EncryptionType::NONE));
    assert_eq!(summary.key_id(), None);
    assert_eq!(summary.open_shard_count(), 4);
    assert_eq!(summary.consumer_count(), Some(2));
    assert_eq!(summary.max_record_size_in_kib(), Some(1024));
}

#[test]
fn list_streams_response() {
    let mut fbb = FlatBufferBuilder::new();
    let names = [fbb.create_string("a"), fbb.create_string(STREAM_NAME)];
    let stream_names = fbb.create_vector(&names);
    let summary = {
        let args = StreamSummaryArgs {
            stream_name: string(&mut fbb, STREAM_NAME),
            stream_arn: string(&mut fbb, STREAM_ARN),
            stream_status: StreamStatus::CREATING,
            stream_mode: Some(StreamMode::ON_DEMAND),
            stream_creation_timestamp: Some(TIMESTAMP_MS),
        };
        StreamSummary::create(&mut fbb, &args)
    };
    let args = ListStreamsResponseArgs {
        stream_names: Some(stream_names),
        has_more_streams: true,
        next_token: string(&mut fbb, "token-4"),
        stream_summaries: Some(fbb.create_vector(&[summary])),
    };
    let body = ListStreamsResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 5, body).unwrap();
    let ResponseBodyRef::ListStreams(response) = decoded_response(frame, 5) else {
        panic!("wrong body");
    };
    assert_eq!(strings(response.stream_names()), ["a", STREAM_NAME]);
    assert!(response.has_more_streams());
    assert_eq!(response.next_token(), Some("token-4"));
    let summaries = response.stream_summaries().unwrap();
    assert_eq!(summaries.len(), 1);
    let summary = summaries.get(0);
    assert_eq!(summary.stream_name(), Some(STREAM_NAME));
    assert_eq!(summary.stream_arn(), Some(STREAM_ARN));
    assert_eq!(summary.stream_status(), StreamStatus::CREATING);
    assert_eq!(summary.stream_mode(), Some(StreamMode::ON_DEMAND));
    assert_eq!(summary.stream_creation_timestamp(), Some(TIMESTAMP_MS));
}

#[test]
fn list_shards_response() {
    let mut fbb = FlatBufferBuilder::new();
    let shards: Vec<_> = (0..3).map(|index| shard(&mut fbb, index, false)).collect();
    let args =
        ListShardsResponseArgs { shards: Some(fbb.create_vector(&shards)), next_token: string(&mut fbb, "token-5") };
    let body = ListShardsResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 6, body).unwrap();
    let ResponseBodyRef::ListShards(response) = decoded_response(frame, 6) else {
        panic!("wrong body");
    };
    let shards = response.shards().unwrap();
    assert_eq!(shards.len(), 3);
    for (index, shard) in (0..).zip(shards.iter()) {
        check_shard(shard, index, false);
    }
    assert_eq!(response.next_token(), Some("token-5"));
}

#[test]
fn put_record_response() {
    let mut fbb = FlatBufferBuilder::new();
    let args = PutRecordResponseArgs {
        shard_id: string(&mut fbb, "shardId-000000000003"),
        sequence_number: Some(&SEQUENCE_NUMBER),
        encryption_type: Some(EncryptionType::NONE),
    };
    let body = PutRecordResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 7, body).unwrap();
    let ResponseBodyRef::PutRecord(response) = decoded_response(frame, 7) else {
        panic!("wrong body");
    };
    assert_eq!(response.shard_id(), Some("shardId-000000000003"));
    assert_eq!(response.sequence_number(), Some(&SEQUENCE_NUMBER));
    assert_eq!(response.encryption_type(), Some(EncryptionType::NONE));
}

#[test]
fn put_records_response() {
    let mut fbb = FlatBufferBuilder::new();
    let succeeded = {
        let args = PutRecordsResultEntryArgs {
            sequence_number: Some(&SEQUENCE_NUMBER),
            shard_id: string(&mut fbb, "shardId-000000000000"),
            error_code: None,
            error_message: None,
        };
        PutRecordsResultEntry::create(&mut fbb, &args)
    };
    let failed = {
        let args = PutRecordsResultEntryArgs {
            sequence_number: None,
            shard_id: None,
            error_code: Some(ErrorCode::ProvisionedThroughputExceeded),
            error_message: string(&mut fbb, "Rate exceeded for shard shardId-000000000001"),
        };
        PutRecordsResultEntry::create(&mut fbb, &args)
    };
    let args = PutRecordsResponseArgs {
        failed_record_count: 1,
        records: Some(fbb.create_vector(&[succeeded, failed])),
        encryption_type: Some(EncryptionType::NONE),
    };
    let body = PutRecordsResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 8, body).unwrap();
    let ResponseBodyRef::PutRecords(response) = decoded_response(frame, 8) else {
        panic!("wrong body");
    };
    assert_eq!(response.failed_record_count(), 1);
    assert_eq!(response.encryption_type(), Some(EncryptionType::NONE));
    let records = response.records().unwrap();
    assert_eq!(records.len(), 2);
    let succeeded = records.get(0);
    assert_eq!(succeeded.sequence_number(), Some(&SEQUENCE_NUMBER));
    assert_eq!(succeeded.shard_id(), Some("shardId-000000000000"));
    assert_eq!(succeeded.error_code(), None);
    assert_eq!(succeeded.error_message(), None);
    let failed = records.get(1);
    assert_eq!(failed.sequence_number(), None);
    assert_eq!(failed.shard_id(), None);
    assert_eq!(failed.error_code(), Some(ErrorCode::ProvisionedThroughputExceeded));
    assert_eq!(failed.error_message(), Some("Rate exceeded for shard shardId-000000000001"));
}

#[test]
fn get_shard_iterator_response() {
    let mut fbb = FlatBufferBuilder::new();
    let args = GetShardIteratorResponseArgs { shard_iterator: string(&mut fbb, "AAAAiterator") };
    let body = GetShardIteratorResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 9, body).unwrap();
    let ResponseBodyRef::GetShardIterator(response) = decoded_response(frame, 9) else {
        panic!("wrong body");
    };
    assert_eq!(response.shard_iterator(), Some("AAAAiterator"));
}

#[test]
fn get_records_response() {
    let payloads: [&[u8]; 2] = [DATA, b"second"];
    let mut fbb = FlatBufferBuilder::new();
    let records: Vec<_> = payloads.iter().map(|payload| record(&mut fbb, payload)).collect();
    let args = GetRecordsResponseArgs {
        records: Some(fbb.create_vector(&records)),
        // A drained closed shard: no next iterator, and its children.
        next_shard_iterator: None,
        millis_behind_latest: Some(0),
        child_shards: child_shards(&mut fbb),
    };
    let body = GetRecordsResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 10, body).unwrap();
    let ResponseBodyRef::GetRecords(response) = decoded_response(frame, 10) else {
        panic!("wrong body");
    };
    let records = response.records().unwrap();
    assert_eq!(records.len(), payloads.len());
    for (record, payload) in records.iter().zip(payloads) {
        check_record(frame, record, payload);
    }
    assert_eq!(response.next_shard_iterator(), None);
    assert_eq!(response.millis_behind_latest(), Some(0));
    check_child_shards(response.child_shards());
}

#[test]
fn list_tags_for_stream_response() {
    let mut fbb = FlatBufferBuilder::new();
    let args = ListTagsForStreamResponseArgs {
        tags: tags(&mut fbb, &[("env", "prod"), ("team", "data")]),
        has_more_tags: false,
    };
    let body = ListTagsForStreamResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 15, body).unwrap();
    let ResponseBodyRef::ListTagsForStream(response) = decoded_response(frame, 15) else {
        panic!("wrong body");
    };
    check_tags(response.tags(), &[("env", "prod"), ("team", "data")]);
    assert!(!response.has_more_tags());
}

#[test]
fn describe_limits_response() {
    let mut fbb = FlatBufferBuilder::new();
    let args = DescribeLimitsResponseArgs {
        shard_limit: 500,
        open_shard_count: 12,
        on_demand_stream_count: 3,
        on_demand_stream_count_limit: 50,
    };
    let body = DescribeLimitsResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 16, body).unwrap();
    let ResponseBodyRef::DescribeLimits(response) = decoded_response(frame, 16) else {
        panic!("wrong body");
    };
    assert_eq!(response.shard_limit(), 500);
    assert_eq!(response.open_shard_count(), 12);
    assert_eq!(response.on_demand_stream_count(), 3);
    assert_eq!(response.on_demand_stream_count_limit(), 50);
}

#[test]
fn register_stream_consumer_response() {
    let mut fbb = FlatBufferBuilder::new();
    let args = RegisterStreamConsumerResponseArgs { consumer: Some(consumer(&mut fbb)) };
    let body = RegisterStreamConsumerResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 17, body).unwrap();
    let ResponseBodyRef::RegisterStreamConsumer(response) = decoded_response(frame, 17) else {
        panic!("wrong body");
    };
    check_consumer(response.consumer().unwrap());
}

#[test]
fn describe_stream_consumer_response() {
    let mut fbb = FlatBufferBuilder::new();
    let description = {
        let args = ConsumerDescriptionArgs {
            consumer_name: string(&mut fbb, "audit"),
            consumer_arn: string(&mut fbb, CONSUMER_ARN),
            consumer_status: ConsumerStatus::DELETING,
            consumer_creation_timestamp: TIMESTAMP_MS,
            stream_arn: string(&mut fbb, STREAM_ARN),
        };
        ConsumerDescription::create(&mut fbb, &args)
    };
    let args = DescribeStreamConsumerResponseArgs { consumer_description: Some(description) };
    let body = DescribeStreamConsumerResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 19, body).unwrap();
    let ResponseBodyRef::DescribeStreamConsumer(response) = decoded_response(frame, 19) else {
        panic!("wrong body");
    };
    let description = response.consumer_description().unwrap();
    assert_eq!(description.consumer_name(), Some("audit"));
    assert_eq!(description.consumer_arn(), Some(CONSUMER_ARN));
    assert_eq!(description.consumer_status(), ConsumerStatus::DELETING);
    assert_eq!(description.consumer_creation_timestamp(), TIMESTAMP_MS);
    assert_eq!(description.stream_arn(), Some(STREAM_ARN));
}

#[test]
fn list_stream_consumers_response() {
    let mut fbb = FlatBufferBuilder::new();
    let consumers = [consumer(&mut fbb), consumer(&mut fbb)];
    let args = ListStreamConsumersResponseArgs {
        consumers: Some(fbb.create_vector(&consumers)),
        next_token: string(&mut fbb, "token-6"),
    };
    let body = ListStreamConsumersResponse::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 20, body).unwrap();
    let ResponseBodyRef::ListStreamConsumers(response) = decoded_response(frame, 20) else {
        panic!("wrong body");
    };
    let consumers = response.consumers().unwrap();
    assert_eq!(consumers.len(), 2);
    consumers.iter().for_each(check_consumer);
    assert_eq!(response.next_token(), Some("token-6"));
}

#[test]
fn subscribe_to_shard_event() {
    let mut fbb = FlatBufferBuilder::new();
    let records = [record(&mut fbb, DATA)];
    let args = SubscribeToShardEventArgs {
        records: Some(fbb.create_vector(&records)),
        continuation_sequence_number: Some(&SEQUENCE_NUMBER),
        millis_behind_latest: 1_500,
        child_shards: child_shards(&mut fbb),
    };
    let body = SubscribeToShardEvent::create(&mut fbb, &args);
    let frame = encode_response(&mut fbb, 21, body).unwrap();
    let ResponseBodyRef::SubscribeToShardEvent(event) = decoded_response(frame, 21) else {
        panic!("wrong body");
    };
    let records = event.records().unwrap();
    assert_eq!(records.len(), 1);
    check_record(frame, records.get(0), DATA);
    assert_eq!(event.continuation_sequence_number(), Some(&SEQUENCE_NUMBER));
    assert_eq!(event.millis_behind_latest(), 1_500);
    check_child_shards(event.child_shards());
}

#[test]
fn error_response() {
    for &code in ErrorCode::ENUM_VALUES {
        let mut fbb = FlatBufferBuilder::new();
        let frame = encode_error_response(&mut fbb, 99, code, "Stream orders not found").unwrap();
        let (frame_len, response) = decode_response(frame).unwrap().expect("whole frame");
        assert_eq!(frame_len, frame.len());
        assert_eq!(response.correlation_id(), 99);
        let error = response.error().expect("error");
        assert_eq!(error.code(), code);
        assert_eq!(error.message(), Some("Stream orders not found"));
        assert_eq!(ResponseBodyRef::of(&response), ResponseBodyRef::Unknown(ResponseBody::NONE));
    }
}

// ---------------------------------------------------------------------------------------
// Pipelining
// ---------------------------------------------------------------------------------------

/// A receive buffer holding several frames back to back, as a pipelined connection
/// delivers them: one subscription's initial response, events and end under one correlation
/// id, interleaved with another request's response.
#[test]
fn back_to_back_frames_decode_in_order() {
    let subscription = 7;
    let mut buffer = Vec::new();
    let mut fbb = FlatBufferBuilder::new();
    let body = SubscribeToShardResponse::create(&mut fbb, &SubscribeToShardResponseArgs {});
    buffer.extend_from_slice(encode_response(&mut fbb, subscription, body).unwrap());
    for (index, payload) in [b"one".as_slice(), b"two"].into_iter().enumerate() {
        fbb.reset();
        let records = [record(&mut fbb, payload)];
        let args = SubscribeToShardEventArgs {
            records: Some(fbb.create_vector(&records)),
            continuation_sequence_number: Some(&SEQUENCE_NUMBER),
            millis_behind_latest: 0,
            child_shards: None,
        };
        let body = SubscribeToShardEvent::create(&mut fbb, &args);
        buffer.extend_from_slice(encode_response(&mut fbb, subscription, body).unwrap());
        if index == 0 {
            fbb.reset();
            let args = GetShardIteratorResponseArgs { shard_iterator: string(&mut fbb, "AAAAiterator") };
            let body = GetShardIteratorResponse::create(&mut fbb, &args);
            buffer.extend_from_slice(encode_response(&mut fbb, 8, body).unwrap());
        }
    }
    fbb.reset();
    let body = SubscribeToShardEnd::create(&mut fbb, &SubscribeToShardEndArgs {});
    buffer.extend_from_slice(encode_response(&mut fbb, subscription, body).unwrap());

    let mut rest = buffer.as_slice();
    let mut seen = Vec::new();
    while let Some((frame_len, response)) = decode_response(rest).unwrap() {
        let kind = match ResponseBodyRef::of(&response) {
            ResponseBodyRef::SubscribeToShard(_) => "initial".to_owned(),
            ResponseBodyRef::SubscribeToShardEvent(event) => {
                let data = event.records().unwrap().get(0).data().unwrap().bytes();
                assert_borrowed_from(&buffer, data);
                String::from_utf8(data.to_vec()).unwrap()
            }
            ResponseBodyRef::SubscribeToShardEnd(_) => "end".to_owned(),
            ResponseBodyRef::GetShardIterator(_) => "iterator".to_owned(),
            other => panic!("unexpected {other:?}"),
        };
        seen.push((response.correlation_id(), kind));
        rest = &rest[frame_len..];
    }
    assert!(rest.is_empty());
    let expected = [(7, "initial"), (7, "one"), (8, "iterator"), (7, "two"), (7, "end")];
    let expected: Vec<_> = expected.iter().map(|(id, kind)| (*id, (*kind).to_owned())).collect();
    assert_eq!(seen, expected);
}
