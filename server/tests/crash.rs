//! Crash loop: writers drive the real `sluiced`, which is killed with SIGKILL at a random
//! moment (mid group commit, more often than not), restarted, and checked. Every
//! acknowledged record must be readable, byte-exact, at its sequence number, exactly once
//! and in order; iterators and subscriptions from before the crash must resume. The stream is
//! encrypted at rest for the middle third of the cycles (StartStreamEncryption, then
//! StopStreamEncryption, over HTTP), so sealed records and the switches themselves go through
//! the kills too, and every record reads back as plaintext.
//!
//! CI runs 20 cycles; `SLUICE_CRASH_CYCLES=5000 cargo test --release -p sluice-server --test
//! crash` runs thousands.

mod common;

use bytes::Bytes;
use common::{run, Daemon, Rng};
use sluice_client::aws::HttpClient;
use sluice_client::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

const STREAM: &str = "crash";
const SHARDS: usize = 4;
const CONSUMER_STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/crash";

/// What the writers were told: shard -> sequence number -> data.
type Acked = BTreeMap<String, BTreeMap<u128, Bytes>>;

/// Writes until the daemon dies; returns what was acknowledged.
async fn write_until_killed(endpoint: String, cycle: u64, seed: u64) -> Acked {
    let acked: Rc<RefCell<Acked>> = Rc::default();
    let Ok(client) = Client::connect(&endpoint).await else { return Acked::new() };
    let writers: Vec<_> = (0..4u64)
        .map(|writer| {
            let (client, acked) = (client.clone(), acked.clone());
            glommio::spawn_local(async move {
                let mut rng = Rng(seed ^ (writer + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                for call in 0u64.. {
                    let count = 1 + (rng.next() % 40) as usize;
                    let entries: Vec<_> = (0..count)
                        .map(|i| {
                            let len = (rng.next() % 3000) as usize;
                            let mut data = format!("{cycle}/{writer}/{call}/{i}/").into_bytes();
                            data.resize(data.len() + len, (rng.next() & 0xff) as u8);
                            PutRecordsRequestEntry {
                                data: Bytes::from(data),
                                partition_key: Some(format!("key-{}", rng.next() % 64)),
                                explicit_hash_key: None,
                            }
                        })
                        .collect();
                    let request = PutRecordsInput {
                        stream_name: Some(STREAM.into()),
                        records: entries.clone(),
                        ..Default::default()
                    };
                    let Ok(response) = client.call(&request).await else { return };
                    let mut acked = acked.borrow_mut();
                    for (entry, result) in entries.into_iter().zip(response.records) {
                        if let (Some(shard), Some(sequence)) = (result.shard_id, result.sequence_number) {
                            acked
                                .entry(shard.into_string())
                                .or_default()
                                .insert(sequence.as_u128().unwrap(), entry.data);
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await;
    }
    Rc::try_unwrap(acked).unwrap().into_inner()
}

/// Reads every shard from the trim horizon: shard -> records in order.
async fn read_everything(client: &Client) -> HashMap<String, Vec<Record>> {
    let mut all = HashMap::new();
    for shard in 0..SHARDS {
        let shard_id = format!("shardId-{shard:012}");
        let request = GetShardIteratorInput {
            stream_name: Some(STREAM.into()),
            stream_arn: None,
            shard_id: shard_id.as_str().into(),
            shard_iterator_type: ShardIteratorType::TrimHorizon,
            starting_sequence_number: None,
            timestamp: None,
        };
        let mut iterator = client.call(&request).await.unwrap().shard_iterator.unwrap();
        let mut records = Vec::new();
        loop {
            let page =
                client.call(&GetRecordsInput { shard_iterator: iterator.clone(), ..Default::default() }).await.unwrap();
            if page.records.is_empty() {
                break;
            }
            records.extend(page.records);
            iterator = page.next_shard_iterator.unwrap();
        }
        all.insert(shard_id, records);
    }
    all
}

/// StartStreamEncryption (`start`) or StopStreamEncryption with the AWS-managed key, over HTTP
/// (the native protocol does not carry them), then waits for the stream to be ACTIVE again.
async fn switch_encryption(http: String, start: bool) {
    let client = HttpClient::connect(&http, Encoding::Json).await.unwrap();
    let key_id = "alias/aws/kinesis".to_string();
    if start {
        let input = StartStreamEncryptionInput {
            stream_name: Some(STREAM.into()),
            encryption_type: EncryptionType::Kms,
            key_id,
            stream_arn: None,
        };
        client.call(&input).await.unwrap();
    } else {
        let input = StopStreamEncryptionInput {
            stream_name: Some(STREAM.into()),
            encryption_type: EncryptionType::Kms,
            key_id,
            stream_arn: None,
        };
        client.call(&input).await.unwrap();
    }
    let describe = DescribeStreamSummaryInput { stream_name: Some(STREAM.into()), stream_arn: None };
    while client.call(&describe).await.unwrap().stream_description_summary.stream_status != StreamStatus::Active {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

fn check(acked: &Acked, found: &HashMap<String, Vec<Record>>, cycle: u64) {
    for (shard, records) in found {
        let sequences: Vec<u128> = records.iter().map(|r| r.sequence_number.as_u128().unwrap()).collect();
        assert!(
            sequences.windows(2).all(|pair| pair[0] < pair[1]),
            "cycle {cycle}: {shard} out of order or duplicated"
        );
        let by_sequence: HashMap<u128, &Record> = sequences.iter().copied().zip(records).collect();
        for (sequence, data) in acked.get(shard).into_iter().flatten() {
            let record = by_sequence
                .get(sequence)
                .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged record {sequence} of {shard} is lost"));
            assert_eq!(&record.data, data, "cycle {cycle}: record {sequence} of {shard} changed");
        }
    }
}

#[test]
fn acknowledged_records_survive_sigkill_at_random_moments() {
    let cycles: u64 = std::env::var("SLUICE_CRASH_CYCLES").ok().and_then(|n| n.parse().ok()).unwrap_or(20);
    let mut daemon = Daemon::start("unlimited", 2);
    let endpoint = daemon.endpoint();
    let (sender, receiver) = std::sync::mpsc::channel();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let request =
            CreateStreamInput { stream_name: STREAM.into(), shard_count: Some(SHARDS as i32), ..Default::default() };
        client.call(&request).await.unwrap();
        let register = RegisterStreamConsumerInput {
            stream_arn: CONSUMER_STREAM_ARN.into(),
            consumer_name: "c".into(),
            ..Default::default()
        };
        sender.send(client.call(&register).await.unwrap().consumer.consumer_arn).unwrap();
    });
    let consumer_arn = receiver.recv().unwrap();

    let mut acked = Acked::new();
    let mut rng = Rng(0xC0FF_EE00_D15E_A5E5);
    let mut kills_mid_write = 0;
    let mut sealed_cycles = 0;
    for cycle in 0..cycles {
        if cycle == cycles / 3 || cycle == 2 * cycles / 3 {
            let (http, start) = (daemon.http_addr.to_string(), cycle == cycles / 3);
            run(move || switch_encryption(http, start));
        }
        sealed_cycles += u64::from((cycles / 3..2 * cycles / 3).contains(&cycle));
        // Write for a random while, then SIGKILL without warning.
        let endpoint = daemon.endpoint();
        let seed = rng.next();
        let (sender, receiver) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            run(move || async move {
                sender.send(write_until_killed(endpoint, cycle, seed).await).unwrap();
            })
        });
        std::thread::sleep(Duration::from_millis(30 + rng.next() % 300));
        daemon.kill();
        writer.join().unwrap();
        let written = receiver.recv().unwrap();
        kills_mid_write += u64::from(!written.is_empty());
        for (shard, records) in written {
            acked.entry(shard).or_default().extend(records);
        }

        daemon.restart();
        let endpoint = daemon.endpoint();
        let (acked_now, consumer_arn) = (acked.clone(), consumer_arn.clone());
        run(move || async move {
            let client = Client::connect(&endpoint).await.unwrap();
            let found = read_everything(&client).await;
            check(&acked_now, &found, cycle);
            // A subscription resumes after the last record it saw, on a fresh connection.
            let (shard, records) =
                found.iter().find(|(_, records)| records.len() >= 2).expect("some shard has records");
            let subscriber = Client::connect(&endpoint).await.unwrap();
            let resume_after = records[records.len() - 2].sequence_number.clone();
            let position = StartingPosition {
                r#type: ShardIteratorType::AfterSequenceNumber,
                sequence_number: Some(resume_after),
                timestamp: None,
            };
            let mut subscription = subscriber
                .subscribe_to_shard(&SubscribeToShardInput {
                    consumer_arn: consumer_arn.clone(),
                    shard_id: shard.as_str().into(),
                    starting_position: position,
                })
                .await
                .unwrap();
            let event = subscription.next().await.unwrap().unwrap();
            assert_eq!(event.records[0].sequence_number, records[records.len() - 1].sequence_number);
        });
    }
    assert!(kills_mid_write > cycles / 2, "only {kills_mid_write} of {cycles} kills hit a daemon under write load");
    // Records written while the stream was encrypted say so, the others do not.
    let endpoint = daemon.endpoint();
    let (sender, receiver) = std::sync::mpsc::channel();
    run(move || async move {
        let found = read_everything(&Client::connect(&endpoint).await.unwrap()).await;
        let sealed = found.values().flatten().filter(|r| r.encryption_type == Some(EncryptionType::Kms)).count();
        sender.send((sealed, found.values().map(Vec::len).sum::<usize>())).unwrap();
    });
    let (sealed, all) = receiver.recv().unwrap();
    if sealed_cycles > 0 {
        assert!(sealed > 0 && sealed < all, "{sealed} of {all} records are sealed after {sealed_cycles} sealed cycles");
    }
    let total: usize = acked.values().map(BTreeMap::len).sum();
    println!(
        "crash loop: {cycles} SIGKILL cycles ({sealed_cycles} encrypted), {total} acknowledged records ({sealed} of \
         {all} read back sealed), none lost"
    );
}
