//! Resharding against the real `sluiced`: SplitShard, MergeShards and UpdateShardCount while
//! records flow; lineage (closed parents keep their records, end with ChildShards); a
//! lineage-aware reader sees every acknowledged record exactly once and every key in order;
//! and a SIGKILL in the middle of a reshard comes back consistent.

mod common;

use bytes::Bytes;
use common::{run, Daemon, Rng};
use sluice_client::*;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

fn stream(name: &str) -> Option<String> {
    Some(name.to_string())
}

async fn shards(client: &Client, name: &str) -> Vec<Shard> {
    let request = ListShardsInput { stream_name: stream(name), ..Default::default() };
    client.call(&request).await.unwrap().shards
}

async fn status(client: &Client, name: &str) -> StreamStatus {
    let request = DescribeStreamSummaryInput { stream_name: stream(name), ..Default::default() };
    client.call(&request).await.unwrap().stream_description_summary.stream_status
}

async fn wait_active(client: &Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(client, name).await != StreamStatus::Active {
        assert!(Instant::now() < deadline, "stream {name} never became ACTIVE again");
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

async fn put(client: &Client, name: &str, key: &str, data: String) -> PutRecordOutput {
    let request = PutRecordInput {
        stream_name: stream(name),
        data: Bytes::from(data),
        partition_key: Some(key.into()),
        ..Default::default()
    };
    client.call(&request).await.unwrap()
}

/// Reads a whole shard from its trim horizon to its end (or the tip of an open shard).
async fn read_shard(client: &Client, name: &str, shard_id: &ShardId) -> (Vec<Record>, Option<Vec<ChildShard>>) {
    let request = GetShardIteratorInput {
        stream_name: stream(name),
        stream_arn: None,
        shard_id: shard_id.clone(),
        shard_iterator_type: ShardIteratorType::TrimHorizon,
        starting_sequence_number: None,
        timestamp: None,
    };
    let mut iterator = client.call(&request).await.unwrap().shard_iterator.unwrap();
    let mut records = Vec::new();
    loop {
        let page = client.call(&GetRecordsInput { shard_iterator: iterator, ..Default::default() }).await.unwrap();
        let empty = page.records.is_empty();
        records.extend(page.records);
        match page.next_shard_iterator {
            None => return (records, page.child_shards),
            Some(next) if !empty => iterator = next,
            Some(_) => return (records, None),
        }
    }
}

/// Reads every shard, parents before children (children always have higher numbers), and
/// checks every acknowledged record is there once and every key's records are in put order.
async fn check_lineage_read(client: &Client, name: &str, acked: &BTreeMap<String, Vec<String>>) {
    let mut all = shards(client, name).await;
    all.sort_by_key(|shard| shard.shard_id.clone());
    let mut per_key: HashMap<String, Vec<String>> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for shard in &all {
        let (records, children) = read_shard(client, name, &shard.shard_id).await;
        let closed = shard.sequence_number_range.ending_sequence_number.is_some();
        assert_eq!(children.is_some(), closed, "{}: ChildShards exactly at the end of a closed shard", shard.shard_id);
        for record in records {
            assert!(seen.insert(record.sequence_number.clone()), "record {} read twice", record.sequence_number);
            per_key
                .entry(record.partition_key.unwrap())
                .or_default()
                .push(String::from_utf8(record.data.to_vec()).unwrap());
        }
    }
    for (key, expected) in acked {
        assert_eq!(per_key.get(key), Some(expected), "key {key}: records missing or out of order");
    }
}

#[test]
fn split_and_merge_keep_lineage_and_order() {
    let daemon = Daemon::start("unlimited", 2);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let create = CreateStreamInput { stream_name: "s".into(), shard_count: Some(2), ..Default::default() };
        client.call(&create).await.unwrap();
        let mut acked: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let put_round = |round: usize| {
            let client = client.clone();
            async move {
                let mut done = Vec::new();
                for key in 0..20 {
                    let data = format!("{round}:{key}");
                    put(&client, "s", &format!("k{key}"), data.clone()).await;
                    done.push((format!("k{key}"), data));
                }
                done
            }
        };
        for (key, data) in put_round(0).await {
            acked.entry(key).or_default().push(data);
        }

        // Split shard 0 at the middle of its range.
        let before = shards(&client, "s").await;
        let end: u128 = before[0].hash_key_range.ending_hash_key.0;
        let split = SplitShardInput {
            stream_name: stream("s"),
            shard_to_split: "shardId-000000000000".into(),
            new_starting_hash_key: HashKey(end / 2),
            ..Default::default()
        };
        client.call(&split).await.unwrap();
        wait_active(&client, "s").await;
        let after = shards(&client, "s").await;
        assert_eq!(after.len(), 4);
        let parent = &after[0];
        assert!(parent.sequence_number_range.ending_sequence_number.is_some(), "the parent is closed");
        let children: Vec<_> = after
            .iter()
            .filter(|s| s.parent_shard_id.as_ref().map(ShardId::as_str) == Some("shardId-000000000000"))
            .collect();
        assert_eq!(children.len(), 2);
        assert_eq!(children[0].hash_key_range.starting_hash_key, HashKey(0));
        assert_eq!(children[1].hash_key_range.starting_hash_key, HashKey(end / 2));
        assert!(
            children[0].sequence_number_range.starting_sequence_number
                > parent.sequence_number_range.ending_sequence_number.clone().unwrap()
        );
        // Splitting a closed shard is refused.
        assert_eq!(client.call(&split).await.unwrap_err().code(), Some(ErrorKind::ResourceInUse));
        let outside = SplitShardInput {
            new_starting_hash_key: HashKey(0),
            shard_to_split: children[1].shard_id.clone(),
            ..split.clone()
        };
        assert_eq!(client.call(&outside).await.unwrap_err().code(), Some(ErrorKind::InvalidArgument));
        for (key, data) in put_round(1).await {
            acked.entry(key).or_default().push(data);
        }

        // AT_LATEST lists only open shards.
        let latest = ListShardsInput {
            stream_name: stream("s"),
            shard_filter: Some(ShardFilter { r#type: ShardFilterType::AtLatest, shard_id: None, timestamp: None }),
            ..Default::default()
        };
        assert_eq!(client.call(&latest).await.unwrap().shards.len(), 3);

        // Merge the two children back; non-adjacent shards are refused.
        let not_adjacent = MergeShardsInput {
            stream_name: stream("s"),
            shard_to_merge: children[0].shard_id.clone(),
            adjacent_shard_to_merge: "shardId-000000000001".into(),
            ..Default::default()
        };
        assert_eq!(client.call(&not_adjacent).await.unwrap_err().code(), Some(ErrorKind::InvalidArgument));
        let merge = MergeShardsInput {
            stream_name: stream("s"),
            shard_to_merge: children[0].shard_id.clone(),
            adjacent_shard_to_merge: children[1].shard_id.clone(),
            ..Default::default()
        };
        client.call(&merge).await.unwrap();
        wait_active(&client, "s").await;
        let merged = shards(&client, "s").await.into_iter().last().unwrap();
        assert_eq!(merged.parent_shard_id.as_ref(), Some(&children[0].shard_id));
        assert_eq!(merged.adjacent_parent_shard_id.as_ref(), Some(&children[1].shard_id));
        for (key, data) in put_round(2).await {
            acked.entry(key).or_default().push(data);
        }
        check_lineage_read(&client, "s", &acked).await;
    });
}

#[test]
fn update_shard_count_under_load_and_subscriptions_end_with_child_shards() {
    let daemon = Daemon::start("unlimited", 2);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let create = CreateStreamInput { stream_name: "s".into(), shard_count: Some(4), ..Default::default() };
        client.call(&create).await.unwrap();
        let register = RegisterStreamConsumerInput {
            stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s".into(),
            consumer_name: "c".into(),
            ..Default::default()
        };
        let consumer = client.call(&register).await.unwrap().consumer.consumer_arn;
        let subscriber = Client::connect(&endpoint).await.unwrap();
        let mut subscription = subscriber
            .subscribe_to_shard(&SubscribeToShardInput {
                consumer_arn: consumer,
                shard_id: "shardId-000000000000".into(),
                starting_position: StartingPosition::new(ShardIteratorType::TrimHorizon),
            })
            .await
            .unwrap();

        // Writers keep putting while the stream scales 4 -> 8.
        let writer_client = client.clone();
        let writer = glommio::spawn_local(async move {
            let mut acked: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for i in 0..400 {
                let key = format!("k{}", i % 50);
                let data = format!("{i}");
                put(&writer_client, "s", &key, data.clone()).await;
                acked.entry(key).or_default().push(data);
            }
            acked
        });
        glommio::timer::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let request = UpdateShardCountInput {
            stream_name: stream("s"),
            target_shard_count: 8,
            scaling_type: ScalingType::UniformScaling,
            stream_arn: None,
        };
        let response = client.call(&request).await.unwrap();
        assert_eq!((response.current_shard_count, response.target_shard_count), (Some(4), Some(8)));
        // A second reshard while this one runs is refused.
        let again = client.call(&request).await;
        let split = SplitShardInput {
            stream_name: stream("s"),
            shard_to_split: "shardId-000000000001".into(),
            new_starting_hash_key: HashKey(1),
            ..Default::default()
        };
        let in_use = [again.map(|_| ()), client.call(&split).await.map(|_| ())];
        assert!(in_use.iter().any(|r| r.as_ref().err().and_then(ClientError::code) == Some(ErrorKind::ResourceInUse)));
        wait_active(&client, "s").await;
        println!("UpdateShardCount 4 -> 8 under load took {:?}", started.elapsed());
        let open: Vec<_> = shards(&client, "s")
            .await
            .into_iter()
            .filter(|s| s.sequence_number_range.ending_sequence_number.is_none())
            .collect();
        assert_eq!(open.len(), 8);
        let step = (u128::MAX / 8) + 1;
        for (i, shard) in open.iter().enumerate() {
            assert_eq!(shard.hash_key_range.starting_hash_key, HashKey(i as u128 * step));
        }
        let acked = writer.await;
        check_lineage_read(&client, "s", &acked).await;

        // The subscription on a parent ends with its children.
        let mut children = None;
        while let Some(event) = subscription.next().await {
            let event = event.unwrap();
            if let Some(child_shards) = event.child_shards.filter(|c| !c.is_empty()) {
                children = Some(child_shards);
            }
        }
        let children = children.expect("the subscription ended with ChildShards");
        assert!(children.iter().all(|child| child.parent_shards.contains(&ShardId::from("shardId-000000000000"))));

        let too_far = UpdateShardCountInput { target_shard_count: 17, ..request.clone() };
        assert_eq!(client.call(&too_far).await.unwrap_err().code(), Some(ErrorKind::LimitExceeded));
    });
}

#[test]
fn random_reshards_lose_nothing_and_keep_key_order() {
    let daemon = Daemon::start("unlimited", 2);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        for seed in [1u64, 7, 42] {
            let name = format!("random-{seed}");
            let create = CreateStreamInput {
                stream_name: name.clone(),
                shard_count: Some(1 + (seed % 3) as i32),
                ..Default::default()
            };
            client.call(&create).await.unwrap();
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut acked: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for step in 0..40 {
                match rng.next() % 10 {
                    0..=5 => {
                        for i in 0..(rng.next() % 20) {
                            let key = format!("k{}", rng.next() % 30);
                            let data = format!("{step}:{i}");
                            put(&client, &name, &key, data.clone()).await;
                            acked.entry(key).or_default().push(data);
                        }
                    }
                    6 | 7 => {
                        let open: Vec<_> = shards(&client, &name)
                            .await
                            .into_iter()
                            .filter(|s| s.sequence_number_range.ending_sequence_number.is_none())
                            .collect();
                        let shard = &open[(rng.next() % open.len() as u64) as usize];
                        let start: u128 = shard.hash_key_range.starting_hash_key.0;
                        let end: u128 = shard.hash_key_range.ending_hash_key.0;
                        if end > start {
                            let key = start + 1 + (u128::from(rng.next()) % (end - start));
                            let split = SplitShardInput {
                                stream_name: Some(name.clone()),
                                shard_to_split: shard.shard_id.clone(),
                                new_starting_hash_key: HashKey(key),
                                ..Default::default()
                            };
                            client.call(&split).await.unwrap();
                        }
                    }
                    8 => {
                        let mut open: Vec<_> = shards(&client, &name)
                            .await
                            .into_iter()
                            .filter(|s| s.sequence_number_range.ending_sequence_number.is_none())
                            .collect();
                        open.sort_by_key(|s| s.hash_key_range.starting_hash_key);
                        if open.len() >= 2 {
                            let i = (rng.next() % (open.len() as u64 - 1)) as usize;
                            let merge = MergeShardsInput {
                                stream_name: Some(name.clone()),
                                shard_to_merge: open[i].shard_id.clone(),
                                adjacent_shard_to_merge: open[i + 1].shard_id.clone(),
                                ..Default::default()
                            };
                            client.call(&merge).await.unwrap();
                        }
                    }
                    _ => {
                        let open = shards(&client, &name)
                            .await
                            .into_iter()
                            .filter(|s| s.sequence_number_range.ending_sequence_number.is_none())
                            .count() as i32;
                        let target = (open + (rng.next() % 3) as i32 - 1).clamp((open + 1) / 2, open * 2).max(1);
                        let request = UpdateShardCountInput {
                            stream_name: Some(name.clone()),
                            target_shard_count: target,
                            scaling_type: ScalingType::UniformScaling,
                            stream_arn: None,
                        };
                        client.call(&request).await.unwrap();
                    }
                }
                wait_active(&client, &name).await;
            }
            check_lineage_read(&client, &name, &acked).await;
        }
    });
}

#[test]
fn a_kill_in_the_middle_of_a_reshard_comes_back_consistent() {
    let mut daemon = Daemon::start("unlimited", 2);
    let endpoint = daemon.endpoint();
    let (sender, receiver) = std::sync::mpsc::channel();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let create = CreateStreamInput { stream_name: "s".into(), shard_count: Some(4), ..Default::default() };
        client.call(&create).await.unwrap();
        let mut acked: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in 0..200 {
            let key = format!("k{}", i % 40);
            put(&client, "s", &key, format!("{i}")).await;
            acked.entry(key).or_default().push(format!("{i}"));
        }
        let request = UpdateShardCountInput {
            stream_name: stream("s"),
            target_shard_count: 8,
            scaling_type: ScalingType::UniformScaling,
            stream_arn: None,
        };
        client.call(&request).await.unwrap();
        sender.send(acked).unwrap();
    });
    // Kill while the scaling runs in the background.
    daemon.kill();
    let acked = receiver.recv().unwrap();
    daemon.restart();
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        wait_active(&client, "s").await;
        let open: Vec<_> = shards(&client, "s")
            .await
            .into_iter()
            .filter(|s| s.sequence_number_range.ending_sequence_number.is_none())
            .collect();
        assert_eq!(open.len(), 8, "the interrupted UpdateShardCount resumed to its target");
        check_lineage_read(&client, "s", &acked).await;
        let after = put(&client, "s", "k1", "after".into()).await;
        assert!(open.iter().any(|s| s.shard_id == after.shard_id));
    });
}

#[test]
fn on_demand_streams_split_hot_shards_under_load() {
    // Quotas on, and a short scaler window so the test takes seconds.
    let daemon = Daemon::start_with("kinesis", 2, &["--on-demand-window-ms", "500"]);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let create = CreateStreamInput {
            stream_name: "auto".into(),
            stream_mode_details: Some(StreamModeDetails::from(StreamMode::OnDemand)),
            ..Default::default()
        };
        client.call(&create).await.unwrap();
        let open = |client: Client| async move {
            shards(&client, "auto")
                .await
                .into_iter()
                .filter(|s| s.sequence_number_range.ending_sequence_number.is_none())
                .count()
        };
        assert_eq!(open(client.clone()).await, 4);
        // Offer about 4x the starting capacity, spread over the key space, for a few windows.
        let data = Bytes::from(vec![1u8; 8 << 10]);
        let started = Instant::now();
        let mut throttled = 0;
        let mut accepted = 0;
        while started.elapsed() < Duration::from_secs(4) {
            let entries = (0..200)
                .map(|i| PutRecordsRequestEntry {
                    data: data.clone(),
                    partition_key: Some(format!("key-{}-{i}", accepted + throttled)),
                    explicit_hash_key: None,
                })
                .collect();
            let response = client
                .call(&PutRecordsInput { stream_name: stream("auto"), records: entries, ..Default::default() })
                .await
                .unwrap();
            throttled += response.failed_record_count.unwrap() as usize;
            accepted += 200 - response.failed_record_count.unwrap() as usize;
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
        let grown = open(client.clone()).await;
        println!("on-demand: 4 -> {grown} open shards after {accepted} accepted and {throttled} throttled 8 KiB records in 4 s");
        assert!(grown > 4, "the scaler split hot shards");
        // Its shards are not for users to reshard.
        let split = SplitShardInput {
            stream_name: stream("auto"),
            shard_to_split: "shardId-000000000000".into(),
            new_starting_hash_key: HashKey(1),
            ..Default::default()
        };
        assert_eq!(client.call(&split).await.unwrap_err().code(), Some(ErrorKind::Validation));
    });
}

/// A split publishes its children's routes only once every core can take writes for them, so
/// a writer putting records while shards split never has an entry refused. (The routes used to
/// be published first: for 50-200 ms after each split, entries routed to a child on another
/// core failed with InternalFailure "shard moved; retry".)
#[test]
fn splits_under_a_writer_fail_no_entries() {
    const WRITERS: usize = 4;
    const SPLITS: usize = 6;
    // Writes to keep going across the end of each split before the next one starts.
    const CALLS_AFTER_EACH_SPLIT: u64 = 3 * WRITERS as u64;
    let daemon = Daemon::start("unlimited", 4);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let create = CreateStreamInput { stream_name: "w".into(), shard_count: Some(1), ..Default::default() };
        client.call(&create).await.unwrap();
        let writing = std::rc::Rc::new(std::cell::Cell::new(true));
        let calls = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let (client, writing, calls) = (client.clone(), writing.clone(), calls.clone());
            writers.push(glommio::spawn_local(async move {
                let mut failed = Vec::new();
                let mut round = 0u64;
                while writing.get() {
                    // Keys all over the hash key space, so every shard (and every child) gets some.
                    let records = (0..100)
                        .map(|i| PutRecordsRequestEntry {
                            data: Bytes::from_static(b"x"),
                            partition_key: Some(format!("{writer}-{round}-{i}")),
                            explicit_hash_key: None,
                        })
                        .collect();
                    let put = PutRecordsInput { stream_name: stream("w"), records, stream_arn: None };
                    let output = client.call(&put).await.unwrap();
                    failed.extend(output.records.into_iter().filter(|entry| entry.error_code.is_some()));
                    calls.set(calls.get() + 1);
                    round += 1;
                }
                failed
            }));
        }
        for _ in 0..SPLITS {
            // Split the open shard with the widest range at its middle.
            let open: Vec<Shard> = shards(&client, "w")
                .await
                .into_iter()
                .filter(|shard| shard.sequence_number_range.ending_sequence_number.is_none())
                .collect();
            let widest = open
                .iter()
                .max_by_key(|shard| shard.hash_key_range.ending_hash_key.0 - shard.hash_key_range.starting_hash_key.0)
                .unwrap();
            let (start, end) = (widest.hash_key_range.starting_hash_key.0, widest.hash_key_range.ending_hash_key.0);
            let split = SplitShardInput {
                stream_name: stream("w"),
                shard_to_split: widest.shard_id.clone(),
                new_starting_hash_key: HashKey(start + (end - start) / 2 + 1),
                stream_arn: None,
            };
            client.call(&split).await.unwrap();
            wait_active(&client, "w").await;
            let target = calls.get() + CALLS_AFTER_EACH_SPLIT;
            while calls.get() < target {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
        }
        writing.set(false);
        let mut failed = Vec::new();
        for writer in writers {
            failed.extend(writer.await);
        }
        assert_eq!(shards(&client, "w").await.len(), 1 + 2 * SPLITS);
        assert!(failed.is_empty(), "{} entries failed across the splits, e.g. {:?}", failed.len(), failed.first());
    });
}
