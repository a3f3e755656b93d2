//! The seed corpora of the protocol's fuzz targets: `native_frame` (fuzz/corpus/native_frame,
//! real request frames of several operations), `aws_codec` and `aws_shapes`
//! (fuzz/corpus/aws_body: an operation byte and a JSON or CBOR body) and `event_stream`
//! (fuzz/corpus/event_stream). These tests check that the committed seeds are exactly what the
//! current code writes; `SLUICE_WRITE_FUZZ_SEEDS=1 cargo test -p sluice-protocol --test
//! fuzz_seeds` rewrites them after a change.

use sluice_protocol::flatbuffers::FlatBufferBuilder;
use sluice_protocol::wire::*;
use sluice_protocol::{create_bytes, decode_request, encode_request};
use std::path::PathBuf;

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut fbb = FlatBufferBuilder::new();

    let name = fbb.create_string("orders");
    let key = fbb.create_string("customer-17");
    let data = create_bytes(&mut fbb, &[0, 1, 2, 254, 255]);
    let body = PutRecordRequest::create(
        &mut fbb,
        &PutRecordRequestArgs {
            stream_name: Some(name),
            data: Some(data),
            partition_key: Some(key),
            ..Default::default()
        },
    );
    seeds.push(("put_record", encode_request(&mut fbb, 1, body).unwrap().to_vec()));

    fbb.reset();
    let entries: Vec<_> = (0..3u8)
        .map(|i| {
            let data = create_bytes(&mut fbb, &vec![i; 17 * usize::from(i)]);
            let key = fbb.create_string(&format!("k{i}"));
            let hash = (i == 2).then_some(&HashKey([0xff; 16]));
            PutRecordsEntry::create(
                &mut fbb,
                &PutRecordsEntryArgs { data: Some(data), partition_key: Some(key), explicit_hash_key: hash },
            )
        })
        .collect();
    let records = fbb.create_vector(&entries);
    let arn = fbb.create_string("arn:aws:kinesis:us-east-1:000000000000:stream/orders");
    let body = PutRecordsRequest::create(
        &mut fbb,
        &PutRecordsRequestArgs { stream_arn: Some(arn), records: Some(records), ..Default::default() },
    );
    seeds.push(("put_records", encode_request(&mut fbb, 2, body).unwrap().to_vec()));

    fbb.reset();
    let name = fbb.create_string("orders");
    let shard = fbb.create_string("shardId-000000000001");
    // 1331398394219979422966694971397111809: layout version 1, shard epoch 1795311507 s,
    // shard 0, record 1.
    let sequence = SequenceNumber::new(0x0100_6b02_4793_0000, 1);
    let body = GetShardIteratorRequest::create(
        &mut fbb,
        &GetShardIteratorRequestArgs {
            stream_name: Some(name),
            shard_id: Some(shard),
            shard_iterator_type: Some(ShardIteratorType::AFTER_SEQUENCE_NUMBER),
            starting_sequence_number: Some(&sequence),
            ..Default::default()
        },
    );
    seeds.push(("get_shard_iterator", encode_request(&mut fbb, 3, body).unwrap().to_vec()));

    fbb.reset();
    let iterator = fbb.create_string("AQEAAAAAAAAAAAAAAAIAAAAAAAAAVKPnAKIBAAAGb3JkZXJzvdxMZAYkIZz9dMHT7wkENw");
    let body = GetRecordsRequest::create(
        &mut fbb,
        &GetRecordsRequestArgs { shard_iterator: Some(iterator), limit: Some(100), ..Default::default() },
    );
    seeds.push(("get_records", encode_request(&mut fbb, 4, body).unwrap().to_vec()));

    fbb.reset();
    let name = fbb.create_string("orders");
    let tag_key = fbb.create_string("team");
    let tag_value = fbb.create_string("payments");
    let tag = Tag::create(&mut fbb, &TagArgs { key: Some(tag_key), value: Some(tag_value) });
    let tags = fbb.create_vector(&[tag]);
    let body = CreateStreamRequest::create(
        &mut fbb,
        &CreateStreamRequestArgs {
            stream_name: Some(name),
            shard_count: Some(3),
            tags: Some(tags),
            ..Default::default()
        },
    );
    seeds.push(("create_stream", encode_request(&mut fbb, 5, body).unwrap().to_vec()));

    fbb.reset();
    let name = fbb.create_string("orders");
    let after = fbb.create_string("shardId-000000000000");
    let filter = ShardFilter::create(
        &mut fbb,
        &ShardFilterArgs { type_: Some(ShardFilterType::AFTER_SHARD_ID), shard_id: Some(after), timestamp: None },
    );
    let body = ListShardsRequest::create(
        &mut fbb,
        &ListShardsRequestArgs {
            stream_name: Some(name),
            shard_filter: Some(filter),
            max_results: Some(2),
            ..Default::default()
        },
    );
    seeds.push(("list_shards", encode_request(&mut fbb, 6, body).unwrap().to_vec()));

    fbb.reset();
    let consumer = fbb.create_string("arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/app:1700000000");
    let shard = fbb.create_string("shardId-000000000000");
    let position = StartingPosition::create(
        &mut fbb,
        &StartingPositionArgs {
            type_: Some(ShardIteratorType::AT_TIMESTAMP),
            sequence_number: None,
            timestamp: Some(1_700_000_000_000),
        },
    );
    let body = SubscribeToShardRequest::create(
        &mut fbb,
        &SubscribeToShardRequestArgs {
            consumer_arn: Some(consumer),
            shard_id: Some(shard),
            starting_position: Some(position),
        },
    );
    seeds.push(("subscribe_to_shard", encode_request(&mut fbb, 7, body).unwrap().to_vec()));
    seeds.extend(firehose_seeds());
    seeds
}

/// Firehose frames (`native/firehose.rs`): a PutRecordBatch of raw records, and a
/// CreateDeliveryStream carrying its AWS JSON body.
fn firehose_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use sluice_model::FirehoseRequest;
    use sluice_protocol::native::EncodeInput;
    let mut fbb = FlatBufferBuilder::new();
    let batch = FirehoseRequest::PutRecordBatch {
        delivery_stream_name: "clicks".into(),
        records: vec![bytes::Bytes::from_static(&[0, 1, 2, 254, 255]), bytes::Bytes::from_static(b"{\"a\":1}\n")],
    };
    let mut seeds = vec![("firehose_put_record_batch", batch.encode(&mut fbb, 8).unwrap().to_vec())];
    fbb.reset();
    let create = FirehoseRequest::CreateDeliveryStream {
        input_json: bytes::Bytes::from_static(
            br#"{"DeliveryStreamName": "clicks", "ExtendedS3DestinationConfiguration": {"RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": "arn:aws:s3:::b"}}"#,
        ),
    };
    seeds.push(("firehose_create_delivery_stream", create.encode(&mut fbb, 9).unwrap().to_vec()));
    seeds
}

/// Compares (or, with `SLUICE_WRITE_FUZZ_SEEDS`, writes) the seeds of `corpus`; the directory
/// holds exactly these files.
fn check_corpus(corpus: &str, seeds: Vec<(&'static str, Vec<u8>)>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(corpus);
    let write = std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, seed) in &seeds {
        let path = dir.join(name);
        if write {
            std::fs::write(&path, seed).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert_eq!(&committed, seed, "{} is stale: rerun with SLUICE_WRITE_FUZZ_SEEDS=1", path.display());
        }
    }
    let mut committed: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    committed.sort();
    let mut expected: Vec<String> = seeds.iter().map(|(name, _)| name.to_string()).collect();
    expected.sort();
    assert_eq!(committed, expected, "{} holds files no seed writes", dir.display());
}

#[test]
fn the_committed_seed_corpus_matches_the_schema() {
    for (name, frame) in seeds() {
        assert!(decode_request(&frame).unwrap().is_some(), "{name} decodes");
    }
    check_corpus("native_frame", seeds());
}

/// The seeds of the AWS codec and the event-stream framing, which speak the model's types
/// (whose names the schema's shadow above).
mod aws_and_event_stream {
    use super::check_corpus;
    use bytes::Bytes;
    use sluice_model::{AcknowledgeQueueRecordsInput, CreateQueueInput, QueueStreamConfiguration, ReceiptHandleEntry};
    use sluice_model::{
        CreateStreamInput, EncryptionType, ErrorKind, GetRecordsOutput, GetShardIteratorInput, HashKey, KinesisError,
        ListShardsInput, Operation, PutRecordInput, PutRecordsInput, PutRecordsRequestEntry, Record, Request,
        SequenceNumber, ShardFilter, ShardFilterType, ShardId, ShardIteratorType, SubscribeToShardEvent, Timestamp,
    };
    use sluice_protocol::aws::{self, Encoding};
    use sluice_protocol::eventstream;

    /// An `aws_codec` / `aws_shapes` input: the operation's index, then the body.
    fn aws_input(operation: Operation, body: Vec<u8>) -> Vec<u8> {
        let index = Operation::ALL.iter().position(|known| *known == operation).unwrap();
        let mut input = vec![u8::try_from(index).unwrap()];
        input.extend(body);
        input
    }

    fn aws_seeds() -> Vec<(&'static str, Vec<u8>)> {
        // The HTTP fast path's (`aws/put_body.rs`) usual body: one record with an explicit hash key.
        let put_record = Request::from(PutRecordInput {
            stream_name: Some("orders".into()),
            data: Bytes::from_static(b"hello world"),
            partition_key: Some("customer-17".into()),
            explicit_hash_key: Some(HashKey(1 << 127)),
            ..Default::default()
        });
        let put_records = Request::from(PutRecordsInput {
            records: vec![
                PutRecordsRequestEntry {
                    data: Bytes::from_static(&[0, 1, 2, 254, 255]),
                    partition_key: Some("customer-17".into()),
                    explicit_hash_key: None,
                },
                PutRecordsRequestEntry {
                    data: Bytes::new(),
                    partition_key: Some("k2".into()),
                    explicit_hash_key: Some(HashKey(u128::MAX)),
                },
            ],
            stream_name: Some("orders".into()),
            stream_arn: None,
        });
        let create_stream = Request::from(CreateStreamInput {
            stream_name: "orders".into(),
            shard_count: Some(3),
            tags: Some([("team".to_owned(), "payments".to_owned())].into()),
            ..Default::default()
        });
        let at_time = Request::from(GetShardIteratorInput {
            stream_name: None,
            shard_id: ShardId::from_number(1),
            shard_iterator_type: ShardIteratorType::AtTimestamp,
            starting_sequence_number: None,
            timestamp: Some(Timestamp::from_epoch_ms(1_704_164_645_678)),
            stream_arn: Some("arn:aws:kinesis:us-east-1:000000000000:stream/orders".into()),
        });
        let list_shards = Request::from(ListShardsInput {
            stream_name: Some("orders".into()),
            shard_filter: Some(ShardFilter {
                r#type: ShardFilterType::AfterShardId,
                shard_id: Some(ShardId::from_number(0)),
                timestamp: None,
            }),
            max_results: Some(2),
            ..Default::default()
        });
        let records = GetRecordsOutput {
            records: vec![Record {
                sequence_number: SequenceNumber::new(1_331_398_394_219_979_422_966_694_971_397_111_809),
                approximate_arrival_timestamp: Some(Timestamp::from_epoch_ms(1_704_164_645_678)),
                data: Bytes::from_static(b"hello"),
                partition_key: Some("k".into()),
                encryption_type: Some(EncryptionType::None),
            }],
            next_shard_iterator: Some("AQEAAAAA".into()),
            millis_behind_latest: Some(0),
            child_shards: None,
        };
        let event = SubscribeToShardEvent {
            records: records.records.clone(),
            continuation_sequence_number: SequenceNumber::new(7),
            millis_behind_latest: 0,
            child_shards: None,
        };
        let create_queue = Request::from(CreateQueueInput {
            queue_name: "work".into(),
            stream_configuration_list: vec![QueueStreamConfiguration {
                stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders".into(),
                starting_position: None,
            }],
            ..Default::default()
        });
        let acknowledge = Request::from(AcknowledgeQueueRecordsInput {
            queue_arn: "arn:aws:kinesis:us-east-1:000000000000:queue/0000000000000001".into(),
            entries: vec![ReceiptHandleEntry { receipt_handle: "AQEAAAAAAAAAAQAAAAAAAAAHAAAAAAAAAAEAAAAA".into() }],
        });
        let json = |value: &dyn ErasedSerialize| value.to_body(Encoding::Json);
        let cbor = |value: &dyn ErasedSerialize| value.to_body(Encoding::Cbor);
        vec![
            ("put_record.json", aws_input(Operation::PutRecord, json(&put_record))),
            ("put_records.json", aws_input(Operation::PutRecords, json(&put_records))),
            ("put_records.cbor", aws_input(Operation::PutRecords, cbor(&put_records))),
            ("create_stream.json", aws_input(Operation::CreateStream, json(&create_stream))),
            ("create_stream.cbor", aws_input(Operation::CreateStream, cbor(&create_stream))),
            ("get_shard_iterator.json", aws_input(Operation::GetShardIterator, json(&at_time))),
            ("get_shard_iterator.cbor", aws_input(Operation::GetShardIterator, cbor(&at_time))),
            ("list_shards.json", aws_input(Operation::ListShards, json(&list_shards))),
            ("get_records_output.json", aws_input(Operation::GetRecords, json(&records))),
            ("get_records_output.cbor", aws_input(Operation::GetRecords, cbor(&records))),
            ("create_queue.json", aws_input(Operation::CreateQueue, json(&create_queue))),
            ("acknowledge_queue_records.cbor", aws_input(Operation::AcknowledgeQueueRecords, cbor(&acknowledge))),
            ("subscribe_to_shard_event.json", aws_input(Operation::SubscribeToShard, json(&event))),
            (
                "error.json",
                aws_input(
                    Operation::DescribeStream,
                    aws::encode_error(Encoding::Json, &KinesisError::new(ErrorKind::ResourceNotFound, "no stream")),
                ),
            ),
        ]
    }

    /// The model's values written as AWS bodies, whatever their type.
    trait ErasedSerialize {
        fn to_body(&self, encoding: Encoding) -> Vec<u8>;
    }

    impl<T: serde::Serialize> ErasedSerialize for T {
        fn to_body(&self, encoding: Encoding) -> Vec<u8> {
            aws::to_vec(encoding, self)
        }
    }

    #[test]
    fn the_committed_aws_seeds_match_the_codec() {
        for (name, input) in aws_seeds() {
            let operation = Operation::ALL[usize::from(input[0])];
            let encoding = if name.ends_with(".cbor") { Encoding::Cbor } else { Encoding::Json };
            let body = &input[1..];
            let read = aws::decode_request(operation, encoding, body).is_ok()
                || aws::decode_response(operation, encoding, body).is_ok()
                || aws::decode_event(encoding, body).is_ok()
                || aws::decode_error(encoding, body).kind != ErrorKind::InternalFailure;
            assert!(read, "{name} reads as something");
        }
        check_corpus("aws_body", aws_seeds());
    }

    fn event_stream_seeds() -> Vec<(&'static str, Vec<u8>)> {
        let with_mode = |mode: u8, message: &[u8]| {
            let mut input = vec![mode];
            input.extend_from_slice(message);
            input
        };
        let event = eventstream::event("SubscribeToShardEvent", "application/json", br#"{"Records":[]}"#);
        let exception = eventstream::exception("ResourceInUseException", "application/json", br#"{"message":"busy"}"#);
        let mut unchecked =
            eventstream::message(&[(":message-type", "event"), (":event-type", "initial-response")], b"{}").to_vec();
        // Zeroed CRCs: the target's odd mode writes valid ones before reading.
        unchecked[8..12].fill(0);
        let end = unchecked.len();
        unchecked[end - 4..].fill(0);
        vec![
            ("event", with_mode(0, &event)),
            ("exception", with_mode(0, &exception)),
            ("initial_response_crcs_fixed_by_the_target", with_mode(1, &unchecked)),
        ]
    }

    #[test]
    fn the_committed_event_stream_seeds_match_the_codec() {
        for (name, input) in event_stream_seeds() {
            if input[0] == 0 {
                assert!(eventstream::decode(&input[1..]).unwrap().is_some(), "{name} decodes");
            }
        }
        check_corpus("event_stream", event_stream_seeds());
    }
}
