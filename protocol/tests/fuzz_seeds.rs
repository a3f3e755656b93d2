//! The seed corpus of the `native_frame` fuzz target (fuzz/corpus/native_frame): real
//! request frames of several operations. This test checks that the committed seeds are
//! exactly what the current schema encodes; `SLUICE_WRITE_FUZZ_SEEDS=1 cargo test -p
//! sluice-protocol --test fuzz_seeds` rewrites them after a schema change.

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
    seeds
}

#[test]
fn the_committed_seed_corpus_matches_the_schema() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/native_frame");
    let write = std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some();
    for (name, frame) in seeds() {
        assert!(decode_request(&frame).unwrap().is_some(), "{name} decodes");
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &frame).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert_eq!(committed, frame, "{} is stale: rerun with SLUICE_WRITE_FUZZ_SEEDS=1", path.display());
        }
    }
}
