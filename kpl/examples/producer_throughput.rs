//! How many user records per second the producer core itself handles on one core: submit,
//! aggregate, build calls, complete, with a stream that answers every call at once and no
//! rate limit in the way. It measures the state machine's CPU cost, not a network.
//!
//! `cargo run --release -p sluice-kpl --example producer_throughput [RECORDS] [SHARDS] [KEYS]`

use sluice_kpl::producer::{EntryResult, Output, Producer, ProducerConfig, UserRecord};
use sluice_kpl::types::{HashKey, HashKeyRange, SequenceNumber, ShardId};
use std::time::Instant;

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let records = args.first().copied().unwrap_or(2_000_000);
    let shards = args.get(1).copied().unwrap_or(16);
    let keys = args.get(2).copied().unwrap_or(10_000);
    let config =
        ProducerConfig { rate_limit_percent: 10_000, max_outstanding_records: 20_000, ..ProducerConfig::default() };
    let mut producer = Producer::new(config, 1, 0).expect("valid config");
    let width = u128::MAX / u128::from(shards);
    let map = (0..shards).map(|i| {
        let start = if i == 0 { 0 } else { width * u128::from(i) + 1 };
        let end = if i + 1 == shards { u128::MAX } else { width * u128::from(i + 1) };
        (ShardId(i), HashKeyRange { start: HashKey(start), end: HashKey(end) })
    });
    producer.update_shard_map(0, map.collect::<Vec<_>>()).expect("valid map");
    let data = bytes::Bytes::from(vec![7u8; 100]);
    let key_names: Vec<String> = (0..keys).map(|k| format!("key-{k}")).collect();
    let (mut submitted, mut completed, mut now) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    while completed < records {
        while submitted < records {
            let record = UserRecord::new(key_names[(submitted % keys) as usize].clone(), data.clone());
            if producer.submit(now, record, submitted).is_err() {
                break;
            }
            submitted += 1;
        }
        producer.flush();
        while let Some(output) = producer.poll(now) {
            match output {
                Output::Send(call) => {
                    let results = call
                        .entries
                        .iter()
                        .map(|e| EntryResult::Ok {
                            shard_id: e.predicted_shard.unwrap_or(ShardId(0)),
                            sequence_number: SequenceNumber(1),
                        })
                        .collect();
                    producer.on_put_records_result(now, call.call_id, Ok(results)).expect("known call");
                }
                Output::Completed(_) => completed += 1,
                Output::RefreshShardMap => {}
            }
        }
        now += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let metrics = producer.metrics();
    println!(
        "{records} user records of 100 bytes, {shards} shards, {keys} keys: {seconds:.2} s, {:.0} user records/s, aggregation ratio {:.0}, {} calls",
        records as f64 / seconds,
        metrics.aggregation_ratio(),
        metrics.put_records_calls
    );
}
