//! The producer (`sluice_client::producer`, the KPL core driven over a real connection) and
//! the consumer's read path against a real `sluiced`: records read back, read by software
//! nobody here wrote (boto3 and aws-kinesis-agg), and a SIGKILL of the daemon mid-produce
//! that loses no acknowledged record.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use common::{run, Daemon};
use sluice_client::consumer::{read_stream, Item, ReadConfig, ReadMode, Start};
use sluice_client::producer::{Producer, PutResult};
use sluice_client::transport::{Endpoint, Transport};
use sluice_client::{Client, CreateStreamInput, DescribeStreamSummaryInput, Encoding, StreamStatus};
use sluice_kpl::producer::{ProducerConfig, UserRecord};
use sluice_kpl::types::HashKey;

fn create_stream(endpoint: String, name: &'static str, shards: i32) {
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let input = CreateStreamInput { stream_name: name.into(), shard_count: Some(shards), ..Default::default() };
        client.call(&input).await.unwrap();
        loop {
            let input = DescribeStreamSummaryInput { stream_name: Some(name.into()), ..Default::default() };
            let summary = client.call(&input).await.unwrap().stream_description_summary;
            if summary.stream_status == StreamStatus::Active {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// A user record as read back: (shard, sequence number, sub-sequence number, key, data).
type Read = (String, String, u64, String, Bytes);

/// Reads every shard to its tip with the consumer's read path.
fn read_all(endpoint: Endpoint, stream: &'static str) -> Vec<Read> {
    let (sender, receiver) = mpsc::channel();
    run(move || async move {
        let transport = Rc::new(Transport::new(endpoint));
        let config = ReadConfig {
            start: Start::TrimHorizon,
            mode: ReadMode::Polling { idle_ms: 50 },
            stop_when_caught_up: true,
        };
        let (sink, items) = async_channel::bounded(1024);
        let reader = glommio::spawn_local(async move { read_stream(transport, stream, &config, sink).await });
        while let Ok(item) = items.recv().await {
            match item {
                Item::Record { shard_id, record } => sender
                    .send((
                        shard_id.to_string(),
                        record.sequence_number.to_string(),
                        record.sub_sequence_number,
                        record.partition_key,
                        record.data,
                    ))
                    .unwrap(),
                Item::Issue { shard_id, issue } => panic!("{shard_id}: {issue:?}"),
                Item::ShardEnded { .. } => {}
            }
        }
        reader.await.unwrap();
    });
    receiver.into_iter().collect()
}

/// What the producer said about a record: (shard, sequence number, sub-sequence number).
fn where_put(result: &PutResult) -> (String, String, u64) {
    let put = result.as_ref().unwrap_or_else(|error| panic!("record not put: {error}"));
    (put.shard_id.to_string(), put.sequence_number.to_string(), put.sub_sequence_number.unwrap_or(0))
}

/// 100-byte data naming its key and index.
fn data_of(key: &str, index: usize) -> Bytes {
    let mut text = format!("{key}/{index}/");
    text.extend(std::iter::repeat_n('x', 100 - text.len()));
    Bytes::from(text)
}

/// Checks that every record read back is one that was submitted and acknowledged, at the
/// position the producer reported, each exactly once, and every key's records in
/// submission order.
fn check_read_back(submitted: &[(String, Bytes, (String, String, u64))], read: &[Read]) {
    let mut at: HashMap<(String, String, u64), (String, Bytes)> = HashMap::new();
    for (shard, seq, sub, key, data) in read {
        let previous = at.insert((shard.clone(), seq.clone(), *sub), (key.clone(), data.clone()));
        assert!(previous.is_none(), "{shard} {seq}/{sub} read twice");
    }
    assert_eq!(read.len(), submitted.len(), "records read back");
    for (key, data, position) in submitted {
        let found = at.get(position).unwrap_or_else(|| panic!("{key} record at {position:?} not read back"));
        assert_eq!((&found.0, &found.1), (key, data), "record at {position:?}");
    }
    // Per key, the read order (shard order: sequence number, then sub-sequence number) is the
    // submission order.
    let mut by_key: BTreeMap<&str, Vec<&Bytes>> = BTreeMap::new();
    let mut sorted: Vec<&Read> = read.iter().collect();
    sorted.sort_by_key(|(shard, seq, sub, _, _)| (shard.clone(), seq.len(), seq.clone(), *sub));
    for (_, _, _, key, data) in sorted {
        by_key.entry(key).or_default().push(data);
    }
    let mut expected: BTreeMap<&str, Vec<&Bytes>> = BTreeMap::new();
    for (key, data, _) in submitted {
        expected.entry(key).or_default().push(data);
    }
    assert_eq!(by_key, expected, "per-key order");
}

#[test]
fn aggregated_records_are_read_back_in_key_order_over_both_protocols() {
    let daemon = Daemon::start("kinesis", 2);
    create_stream(daemon.endpoint(), "produced", 2);
    let mut submitted = Vec::new();
    for (endpoint, count) in [
        (Endpoint::Native(daemon.endpoint()), 3000),
        (Endpoint::Http { addr: daemon.http_addr.to_string(), encoding: Encoding::Json }, 600),
        (Endpoint::Http { addr: daemon.http_addr.to_string(), encoding: Encoding::Cbor }, 600),
    ] {
        let producer = Producer::start(endpoint, "produced", ProducerConfig::default()).unwrap();
        // Submitted from this thread (blocking API); results awaited afterwards.
        let futures: Vec<_> = (0..count)
            .map(|index| {
                let key = format!("key-{}", index % 40);
                let data = data_of(&key, submitted.len() + index);
                (key.clone(), data.clone(), producer.put_blocking(UserRecord::new(key, data)))
            })
            .collect();
        let metrics = producer.metrics_blocking().unwrap();
        for (key, data, future) in futures {
            submitted.push((key, data, where_put(&future.wait())));
        }
        let metrics_after = producer.metrics_blocking().unwrap();
        producer.close();
        assert_eq!(metrics_after.user_records_put, count as u64);
        assert!(metrics_after.aggregated_records_put > 0, "aggregation happened");
        assert!(metrics_after.aggregation_ratio() > 2.0, "ratio {}", metrics_after.aggregation_ratio());
        assert!(metrics.user_records_received >= count as u64);
    }
    let read = read_all(Endpoint::Native(daemon.endpoint()), "produced");
    check_read_back(&submitted, &read);
    // The HTTP read path sees the same.
    let read_http =
        read_all(Endpoint::Http { addr: daemon.http_addr.to_string(), encoding: Encoding::Json }, "produced");
    assert_eq!(read_http.len(), read.len());
}

#[test]
fn a_sigkill_of_sluiced_during_produce_loses_no_acknowledged_record() {
    let mut daemon = Daemon::start("unlimited", 2);
    create_stream(daemon.endpoint(), "killed", 2);
    let config = ProducerConfig { record_ttl_ms: 120_000, retry_backoff_max_ms: 1_000, ..Default::default() };
    let producer = Producer::start(Endpoint::Native(daemon.endpoint()), "killed", config).unwrap();
    let total = 40_000usize;
    let (acks, acked) = mpsc::channel::<(String, Bytes, PutResult)>();
    let submitter = {
        let producer = producer.clone();
        std::thread::spawn(move || {
            let (futures_sender, futures) = mpsc::sync_channel(total);
            let waiter = std::thread::spawn(move || {
                for (key, data, future) in futures {
                    let future: sluice_client::producer::RecordFuture = future;
                    acks.send((key, data, future.wait())).unwrap();
                }
            });
            for index in 0..total {
                let key = format!("key-{}", index % 100);
                let data = data_of(&key, index);
                futures_sender
                    .send((key.clone(), data.clone(), producer.put_blocking(UserRecord::new(key, data))))
                    .unwrap();
                if index % 1000 == 999 {
                    // Spread the load over time so the kill lands mid-stream.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            drop(futures_sender);
            waiter.join().unwrap();
        })
    };
    let mut results = Vec::new();
    while results.len() < total / 4 {
        results.push(acked.recv().unwrap());
    }
    daemon.kill_and_restart_same_ports();
    results.extend(acked.iter());
    submitter.join().unwrap();
    let metrics = producer.metrics_blocking().unwrap();
    producer.close();
    assert_eq!(results.len(), total);
    // Every record was acknowledged in the end (retries across the restart), and every
    // acknowledged one is in the stream where the producer said. A record whose call was
    // durable but whose answer was lost is written twice (at least once); the check below
    // finds each acknowledged copy.
    let submitted: Vec<_> =
        results.iter().map(|(key, data, result)| (key.clone(), data.clone(), where_put(result))).collect();
    let read = read_all(Endpoint::Native(daemon.endpoint()), "killed");
    let at: HashMap<(String, String, u64), (String, Bytes)> = read
        .iter()
        .map(|(shard, seq, sub, key, data)| ((shard.clone(), seq.clone(), *sub), (key.clone(), data.clone())))
        .collect();
    for (key, data, position) in &submitted {
        assert_eq!(at.get(position), Some(&(key.clone(), data.clone())), "acknowledged record at {position:?}");
    }
    let duplicates = read.len() - total;
    eprintln!(
        "kill during produce: {total} acknowledged, {} read back ({duplicates} duplicates), {} retries, errors {:?}",
        read.len(),
        metrics.retries,
        metrics.errors_by_code
    );
}

fn venv_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(root.join("kpl/tests/interop/setup.sh")).status().expect("run setup.sh");
    assert!(status.success(), "kpl/tests/interop/setup.sh failed: cannot install aws-kinesis-agg and boto3");
    root.join(".venv-kpl/bin/python")
}

#[test]
fn boto3_reads_our_aggregates_as_records_and_aws_kinesis_agg_deaggregates_them() {
    let daemon = Daemon::start("unlimited", 2);
    create_stream(daemon.endpoint(), "interop", 3);
    let producer = Producer::start(Endpoint::Native(daemon.endpoint()), "interop", ProducerConfig::default()).unwrap();
    let mut futures = Vec::new();
    for index in 0..2000usize {
        let key = format!("k{}", index % 30);
        let mut record = UserRecord::new(key.clone(), data_of(&key, index));
        // Some records route by an explicit hash key: the aggregate's key table carries it.
        if index % 7 == 0 {
            record.explicit_hash_key = Some(HashKey(u128::MAX / 3 * (index as u128 % 3) + 5));
        }
        futures.push((record.clone(), producer.put_blocking(record)));
    }
    let results: Vec<_> = futures.into_iter().map(|(record, future)| (record, where_put(&future.wait()))).collect();
    let metrics = producer.metrics_blocking().unwrap();
    producer.close();

    let output = Command::new(venv_python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kpl/tests/interop/read_stream.py"))
        .arg(format!("http://{}", daemon.http_addr))
        .arg("interop")
        .output()
        .expect("run read_stream.py");
    assert!(output.status.success(), "read_stream.py: {}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();

    // boto3: ordinary records, one per Kinesis record the producer put; aggregates carry the
    // KPL's partition key "a" and the magic bytes.
    let kinesis: Vec<_> = lines.iter().filter(|line| line["kind"] == "kinesis").collect();
    assert_eq!(kinesis.len() as u64, metrics.kinesis_records_put);
    let aggregates = kinesis
        .iter()
        .filter(|line| BASE64.decode(line["data"].as_str().unwrap()).unwrap().starts_with(&[0xF3, 0x89, 0x9A, 0xC2]))
        .count();
    assert_eq!(aggregates as u64, metrics.aggregated_records_put);
    assert!(aggregates > 0 && aggregates < 200, "{aggregates} aggregates for 2000 records");

    // aws-kinesis-agg: exactly our user records, at the positions our producer reported.
    let users: HashMap<(String, String, u64), &serde_json::Value> = lines
        .iter()
        .filter(|line| line["kind"] == "user")
        .map(|line| {
            let sub = line["sub"].as_u64().unwrap_or(0);
            ((line["shard"].as_str().unwrap().to_owned(), line["seq"].as_str().unwrap().to_owned(), sub), line)
        })
        .collect();
    assert_eq!(users.len(), results.len());
    for (record, position) in &results {
        let user = users.get(position).unwrap_or_else(|| panic!("{position:?} not deaggregated"));
        assert_eq!(user["pk"], record.partition_key.as_str());
        assert_eq!(BASE64.decode(user["data"].as_str().unwrap()).unwrap(), record.data);
        if let (Some(ehk), Some(sub)) = (record.explicit_hash_key, user["sub"].as_u64()) {
            // aws-kinesis-agg reports explicit hash keys of aggregated records only.
            let _ = sub;
            assert_eq!(user["ehk"].as_str(), Some(ehk.to_string().as_str()));
        }
    }
}
