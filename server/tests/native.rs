//! The real `sluiced` (two cores, so requests cross cores) driven through the real client:
//! every operation, its errors, the quotas, enhanced fan-out, restarts and hostile frames.

mod common;

use bytes::Bytes;
use common::{run, Daemon, Rng};
use sluice_client::*;
use std::io::Write;
use std::time::Duration;

fn name(stream: &str) -> Option<String> {
    Some(stream.to_string())
}

async fn connect(endpoint: &str) -> Client {
    Client::connect(endpoint).await.expect("connect")
}

/// The Kinesis error a call failed with.
fn code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorKind {
    match result {
        Err(ClientError::Service(error)) => error.kind,
        other => panic!("expected a service error, got {other:?}"),
    }
}

async fn create(client: &Client, stream: &str, shards: i32) {
    let request = CreateStreamInput { stream_name: stream.into(), shard_count: Some(shards), ..Default::default() };
    client.call(&request).await.expect("create stream");
}

async fn put(client: &Client, stream: &str, key: &str, data: &[u8]) -> PutRecordOutput {
    let request = PutRecordInput {
        stream_name: name(stream),
        data: Bytes::copy_from_slice(data),
        partition_key: Some(key.into()),
        ..Default::default()
    };
    client.call(&request).await.expect("put record")
}

async fn iterator(
    client: &Client,
    stream: &str,
    shard_id: &(impl AsRef<str> + ?Sized),
    kind: ShardIteratorType,
    sequence: Option<&SequenceNumber>,
) -> String {
    let request = GetShardIteratorInput {
        stream_name: name(stream),
        stream_arn: None,
        shard_id: shard_id.as_ref().into(),
        shard_iterator_type: kind,
        starting_sequence_number: sequence.cloned(),
        timestamp: None,
    };
    client.call(&request).await.expect("get shard iterator").shard_iterator.expect("an iterator")
}

async fn records(client: &Client, shard_iterator: &str) -> GetRecordsOutput {
    let request = GetRecordsInput { shard_iterator: shard_iterator.into(), ..Default::default() };
    client.call(&request).await.expect("get records")
}

#[test]
fn stream_lifecycle_and_its_errors() {
    let daemon = Daemon::start("kinesis", 2);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = connect(&endpoint).await;
        create(&client, "orders", 3).await;
        create(&client, "clicks", 1).await;

        let duplicate = CreateStreamInput { stream_name: "orders".into(), shard_count: Some(1), ..Default::default() };
        assert_eq!(code(client.call(&duplicate).await), ErrorKind::ResourceInUse);
        let bad_name =
            CreateStreamInput { stream_name: "no spaces".into(), shard_count: Some(1), ..Default::default() };
        assert_eq!(code(client.call(&bad_name).await), ErrorKind::Validation);
        let no_count = CreateStreamInput { stream_name: "x".into(), ..Default::default() };
        assert_eq!(code(client.call(&no_count).await), ErrorKind::InvalidArgument);
        let too_many = CreateStreamInput { stream_name: "x".into(), shard_count: Some(501), ..Default::default() };
        assert_eq!(code(client.call(&too_many).await), ErrorKind::LimitExceeded);
        let on_demand = CreateStreamInput {
            stream_name: "auto".into(),
            stream_mode_details: Some(StreamModeDetails { stream_mode: StreamMode::OnDemand }),
            ..Default::default()
        };
        client.call(&on_demand).await.unwrap();

        let described = client
            .call(&DescribeStreamInput { stream_name: name("orders"), ..Default::default() })
            .await
            .unwrap()
            .stream_description;
        assert_eq!(described.stream_status, StreamStatus::Active);
        assert_eq!(described.stream_arn, "arn:aws:kinesis:us-east-1:000000000000:stream/orders");
        assert_eq!(described.retention_period_hours, 24);
        let ids: Vec<_> = described.shards.iter().map(|s| s.shard_id.as_str()).collect();
        assert_eq!(ids, ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]);
        assert_eq!(described.shards[0].hash_key_range.starting_hash_key, HashKey(0));
        assert_eq!(described.shards[2].hash_key_range.ending_hash_key, HashKey(u128::MAX));
        // Contiguous ranges.
        for pair in described.shards.windows(2) {
            let end = pair[0].hash_key_range.ending_hash_key.0;
            let start = pair[1].hash_key_range.starting_hash_key.0;
            assert_eq!(end + 1, start);
        }
        let page = client
            .call(&DescribeStreamInput { stream_name: name("orders"), limit: Some(2), ..Default::default() })
            .await
            .unwrap()
            .stream_description;
        assert!(page.has_more_shards);
        assert_eq!(page.shards.len(), 2);

        let summary = client
            .call(&DescribeStreamSummaryInput { stream_name: name("auto"), ..Default::default() })
            .await
            .unwrap()
            .stream_description_summary;
        let mode = summary.stream_mode_details.map(|details| details.stream_mode);
        assert_eq!((summary.open_shard_count, mode), (4, Some(StreamMode::OnDemand)));

        // ListStreams pages through names in order.
        let first = client.call(&ListStreamsInput { limit: Some(2), ..Default::default() }).await.unwrap();
        assert_eq!(first.stream_names, ["auto", "clicks"]);
        assert!(first.has_more_streams);
        let rest = client
            .call(&ListStreamsInput { next_token: first.next_token.clone(), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(rest.stream_names, ["orders"]);
        assert!(!rest.has_more_streams);

        // ListShards pages too, and filters.
        let shards = client
            .call(&ListShardsInput { stream_name: name("orders"), max_results: Some(2), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(shards.shards.len(), 2);
        let more = client
            .call(&ListShardsInput { next_token: shards.next_token.clone(), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(more.shards.len(), 1);
        assert!(more.next_token.is_none());
        let after = client
            .call(&ListShardsInput {
                stream_name: name("orders"),
                shard_filter: Some(ShardFilter {
                    r#type: ShardFilterType::AfterShardId,
                    shard_id: Some("shardId-000000000000".into()),
                    timestamp: None,
                }),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(after.shards.len(), 2);

        let limits = client.call(&DescribeLimitsInput {}).await.unwrap();
        assert_eq!((limits.shard_limit, limits.open_shard_count, limits.on_demand_stream_count), (500, 8, 1));

        let delete = DeleteStreamInput { stream_name: name("clicks"), ..Default::default() };
        client.call(&delete).await.unwrap();
        assert_eq!(code(client.call(&delete).await), ErrorKind::ResourceNotFound);
        let missing = DescribeStreamInput { stream_name: name("clicks"), ..Default::default() };
        assert_eq!(code(client.call(&missing).await), ErrorKind::ResourceNotFound);
    });
}

#[test]
fn records_round_trip_through_every_iterator_type() {
    // Many reads of one shard in quick succession: the quotas are tested on their own.
    let daemon = Daemon::start("unlimited", 2);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = connect(&endpoint).await;
        create(&client, "s", 4).await;
        // Every byte value, and an empty record.
        let all_bytes: Vec<u8> = (0..=255).collect();
        let first = put(&client, "s", "k", &all_bytes).await;
        let second = put(&client, "s", "k", b"").await;
        let third = put(&client, "s", "k", b"third").await;
        assert_eq!(first.shard_id, second.shard_id);
        assert!(first.sequence_number < second.sequence_number && second.sequence_number < third.sequence_number);
        let shard = first.shard_id.clone();

        let trim = records(&client, &iterator(&client, "s", &shard, ShardIteratorType::TrimHorizon, None).await).await;
        let data: Vec<&[u8]> = trim.records.iter().map(|r| &r.data[..]).collect();
        assert_eq!(data, [&all_bytes[..], b"", b"third"]);
        assert_eq!(trim.records[0].partition_key.as_deref(), Some("k"));
        assert_eq!(trim.millis_behind_latest, Some(0));
        assert!(trim.records[0].approximate_arrival_timestamp.is_some());

        let at =
            iterator(&client, "s", &shard, ShardIteratorType::AtSequenceNumber, Some(&second.sequence_number)).await;
        assert_eq!(records(&client, &at).await.records[0].sequence_number, second.sequence_number);
        let after =
            iterator(&client, "s", &shard, ShardIteratorType::AfterSequenceNumber, Some(&second.sequence_number)).await;
        assert_eq!(records(&client, &after).await.records[0].data, Bytes::from_static(b"third"));

        let latest = iterator(&client, "s", &shard, ShardIteratorType::Latest, None).await;
        let empty = records(&client, &latest).await;
        assert!(empty.records.is_empty());
        let fourth = put(&client, "s", "k", b"fourth").await;
        let next = records(&client, empty.next_shard_iterator.as_deref().unwrap()).await;
        assert_eq!(next.records[0].sequence_number, fourth.sequence_number);

        let arrival = trim.records[2].approximate_arrival_timestamp.unwrap();
        let at_time = GetShardIteratorInput {
            stream_name: name("s"),
            stream_arn: None,
            shard_id: shard.clone(),
            shard_iterator_type: ShardIteratorType::AtTimestamp,
            starting_sequence_number: None,
            timestamp: Some(arrival),
        };
        let at_time = client.call(&at_time).await.unwrap().shard_iterator.unwrap();
        let from_time = records(&client, &at_time).await;
        assert!(from_time.records.iter().all(|r| r.approximate_arrival_timestamp.unwrap() >= arrival));
        assert!(from_time.records.iter().any(|r| r.sequence_number == third.sequence_number));

        // GetRecords Limit.
        let trim_again = iterator(&client, "s", &shard, ShardIteratorType::TrimHorizon, None).await;
        let one = client
            .call(&GetRecordsInput { shard_iterator: trim_again.clone(), limit: Some(1), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(one.records.len(), 1);
        let zero = GetRecordsInput { shard_iterator: trim_again.clone(), limit: Some(0), ..Default::default() };
        assert_eq!(code(client.call(&zero).await), ErrorKind::InvalidArgument);
    });
}

#[test]
fn invalid_data_plane_requests_get_kinesis_errors() {
    let daemon = Daemon::start("kinesis", 2);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = connect(&endpoint).await;
        create(&client, "s", 2).await;
        let first = put(&client, "s", "k", b"x").await;

        let put_with = |key: &str, data: usize, hash: Option<HashKey>, stream: &str| PutRecordInput {
            stream_name: name(stream),
            data: Bytes::from(vec![0u8; data]),
            partition_key: Some(key.into()),
            explicit_hash_key: hash,
            ..Default::default()
        };
        assert_eq!(code(client.call(&put_with("", 1, None, "s")).await), ErrorKind::Validation);
        assert_eq!(code(client.call(&put_with(&"k".repeat(257), 1, None, "s")).await), ErrorKind::Validation);
        assert_eq!(code(client.call(&put_with("k", 1 << 20, None, "s")).await), ErrorKind::Validation);
        // A hash key above 2^128 - 1 cannot be put in a native frame (it carries 16 bytes): the
        // client cannot even form one. Over HTTP the server answers InvalidArgument (tests/aws).
        let too_big_hash = (u128::MAX as f64 * 2.0).to_string();
        assert!(too_big_hash.parse::<HashKey>().is_err());
        assert_eq!(code(client.call(&put_with("k", 1, None, "nope")).await), ErrorKind::ResourceNotFound);
        // An explicit hash key picks the shard: the top of the range is the last shard.
        let top = client.call(&put_with("k", 1, Some(HashKey(u128::MAX)), "s")).await.unwrap();
        assert_eq!(top.shard_id, "shardId-000000000001");

        let records_none = PutRecordsInput { stream_name: name("s"), ..Default::default() };
        assert_eq!(code(client.call(&records_none).await), ErrorKind::Validation);
        let entry = PutRecordsRequestEntry {
            data: Bytes::from_static(b"x"),
            partition_key: Some("k".into()),
            explicit_hash_key: None,
        };
        let too_many = PutRecordsInput { stream_name: name("s"), records: vec![entry; 501], ..Default::default() };
        assert_eq!(code(client.call(&too_many).await), ErrorKind::Validation);

        let shard_request = |shard: &str, kind, sequence: Option<&SequenceNumber>| GetShardIteratorInput {
            stream_name: name("s"),
            stream_arn: None,
            shard_id: shard.into(),
            shard_iterator_type: kind,
            starting_sequence_number: sequence.cloned(),
            timestamp: None,
        };
        let missing_shard = shard_request("shardId-000000000009", ShardIteratorType::Latest, None);
        assert_eq!(code(client.call(&missing_shard).await), ErrorKind::ResourceNotFound);
        let no_sequence = shard_request(first.shard_id.as_str(), ShardIteratorType::AtSequenceNumber, None);
        assert_eq!(code(client.call(&no_sequence).await), ErrorKind::InvalidArgument);
        let other_shard =
            if first.shard_id.as_str().ends_with('0') { "shardId-000000000001" } else { "shardId-000000000000" };
        let foreign = shard_request(other_shard, ShardIteratorType::AtSequenceNumber, Some(&first.sequence_number));
        assert_eq!(code(client.call(&foreign).await), ErrorKind::InvalidArgument);
        // A sequence number that is not a number cannot be put in a native frame (it carries 16
        // bytes): the client cannot form one. Over HTTP the server answers InvalidArgument.
        assert!("12x".parse::<SequenceNumber>().is_err());

        // Iterators are tamper-evident.
        let good = iterator(&client, "s", &first.shard_id, ShardIteratorType::TrimHorizon, None).await;
        let mut forged = good.into_bytes();
        let middle = forged.len() / 2;
        forged[middle] = if forged[middle] == b'A' { b'B' } else { b'A' };
        let forged = GetRecordsInput { shard_iterator: String::from_utf8(forged).unwrap(), ..Default::default() };
        assert_eq!(code(client.call(&forged).await), ErrorKind::InvalidArgument);
        let nonsense = GetRecordsInput { shard_iterator: "not-an-iterator".into(), ..Default::default() };
        assert_eq!(code(client.call(&nonsense).await), ErrorKind::InvalidArgument);
    });
}

#[test]
fn put_records_answers_in_request_order_and_throttles_per_record() {
    let daemon = Daemon::start("kinesis", 2);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = connect(&endpoint).await;
        create(&client, "s", 4).await;
        let entries: Vec<_> = (0..500)
            .map(|i| PutRecordsRequestEntry {
                data: Bytes::from(format!("record-{i}")),
                partition_key: Some(format!("key-{}", i % 37)),
                explicit_hash_key: None,
            })
            .collect();
        let request = PutRecordsInput { stream_name: name("s"), records: entries.clone(), ..Default::default() };
        let response = client.call(&request).await.unwrap();
        assert_eq!(response.failed_record_count, Some(0));
        assert_eq!(response.records.len(), 500);
        // Read every shard back and check that each result names where its record went.
        let mut found = std::collections::HashMap::new();
        for shard in 0..4 {
            let shard_id = ShardId::from_number(shard);
            let mut it = iterator(&client, "s", &shard_id, ShardIteratorType::TrimHorizon, None).await;
            loop {
                let page = records(&client, &it).await;
                if page.records.is_empty() {
                    break;
                }
                for record in page.records {
                    found.insert(record.sequence_number.clone(), (shard_id.clone(), record.data.clone()));
                }
                it = page.next_shard_iterator.unwrap();
            }
        }
        for (i, result) in response.records.iter().enumerate() {
            let (shard_id, data) = &found[result.sequence_number.as_ref().unwrap()];
            assert_eq!(Some(shard_id), result.shard_id.as_ref());
            assert_eq!(data, &Bytes::from(format!("record-{i}")));
        }

        // One shard, 1,000 records/s: 1,500 records at once overflow it; each refused record
        // says why, the others are stored.
        let hot: Vec<_> = (0..500)
            .map(|i| PutRecordsRequestEntry {
                data: Bytes::from(format!("{i}")),
                partition_key: Some("hot".into()),
                explicit_hash_key: None,
            })
            .collect();
        let started = std::time::Instant::now();
        let mut accepted = 0;
        let mut throttled = 0;
        for _ in 0..3 {
            let request = PutRecordsInput { stream_name: name("s"), records: hot.clone(), ..Default::default() };
            let response = client.call(&request).await.unwrap();
            for result in &response.records {
                match result.error_code {
                    None => accepted += 1,
                    Some(code) => {
                        assert_eq!(code, ErrorKind::ProvisionedThroughputExceeded);
                        assert!(result.error_message.is_some());
                        throttled += 1;
                    }
                }
            }
        }
        // The bucket holds one second of quota and refills at 1,000 records/s.
        let refill = (started.elapsed().as_secs_f64() * 1000.0).ceil() as i32;
        assert!(accepted <= 1000 + refill, "{accepted} accepted in {:?}", started.elapsed());
        assert!(throttled >= 500 - refill, "{throttled} throttled");
    });
}

#[test]
fn get_records_is_throttled_at_five_calls_per_second() {
    let daemon = Daemon::start("kinesis", 1);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = connect(&endpoint).await;
        create(&client, "s", 1).await;
        put(&client, "s", "k", b"x").await;
        let it = iterator(&client, "s", "shardId-000000000000", ShardIteratorType::TrimHorizon, None).await;
        let started = std::time::Instant::now();
        let mut throttled = 0;
        for _ in 0..10 {
            let request = GetRecordsInput { shard_iterator: it.clone(), ..Default::default() };
            match client.call(&request).await {
                Ok(_) => {}
                Err(error) => {
                    assert_eq!(error.code(), Some(ErrorKind::ProvisionedThroughputExceeded));
                    throttled += 1;
                }
            }
        }
        // 5 calls in the bucket, plus one per 200 ms elapsed.
        let refilled = (started.elapsed().as_millis() / 200) as i32;
        assert!(throttled >= 5 - refilled, "{throttled} of 10 calls throttled in {:?}", started.elapsed());
    });
}

#[test]
fn tags_and_retention() {
    let daemon = Daemon::start("kinesis", 2);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = connect(&endpoint).await;
        create(&client, "s", 1).await;
        let tags = (0..5).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
        client.call(&AddTagsToStreamInput { stream_name: name("s"), tags, ..Default::default() }).await.unwrap();
        let list = |start: Option<&str>, limit| ListTagsForStreamInput {
            stream_name: name("s"),
            exclusive_start_tag_key: start.map(str::to_string),
            limit,
            ..Default::default()
        };
        let page = client.call(&list(None, Some(2))).await.unwrap();
        assert_eq!(page.tags, [Tag::new("k0", "v0"), Tag::new("k1", "v1")]);
        assert!(page.has_more_tags);
        let rest = client.call(&list(Some("k1"), None)).await.unwrap();
        assert_eq!(rest.tags.len(), 3);
        assert!(!rest.has_more_tags);
        let remove =
            RemoveTagsFromStreamInput { stream_name: name("s"), tag_keys: vec!["k0".into()], ..Default::default() };
        client.call(&remove).await.unwrap();
        assert_eq!(client.call(&list(None, None)).await.unwrap().tags.len(), 4);
        let too_many = (0..50).map(|i| (format!("x{i}"), String::new())).collect();
        let add = AddTagsToStreamInput { stream_name: name("s"), tags: too_many, ..Default::default() };
        assert_eq!(code(client.call(&add).await), ErrorKind::LimitExceeded);

        let increase = |hours| IncreaseStreamRetentionPeriodInput {
            stream_name: name("s"),
            retention_period_hours: hours,
            ..Default::default()
        };
        let decrease = |hours| DecreaseStreamRetentionPeriodInput {
            stream_name: name("s"),
            retention_period_hours: hours,
            ..Default::default()
        };
        client.call(&increase(48)).await.unwrap();
        assert_eq!(code(client.call(&increase(30)).await), ErrorKind::InvalidArgument);
        assert_eq!(code(client.call(&increase(8761)).await), ErrorKind::InvalidArgument);
        assert_eq!(code(client.call(&decrease(72)).await), ErrorKind::InvalidArgument);
        assert_eq!(code(client.call(&decrease(23)).await), ErrorKind::InvalidArgument);
        client.call(&decrease(24)).await.unwrap();
        client.call(&increase(8760)).await.unwrap();
        let described =
            client.call(&DescribeStreamSummaryInput { stream_name: name("s"), ..Default::default() }).await.unwrap();
        assert_eq!(described.stream_description_summary.retention_period_hours, 8760);
    });
}

#[test]
fn enhanced_fan_out_pushes_records_as_they_become_durable() {
    let daemon = Daemon::start("kinesis", 2);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = connect(&endpoint).await;
        create(&client, "s", 2).await;
        let stream_arn = StreamArn::from("arn:aws:kinesis:us-east-1:000000000000:stream/s");
        let register = RegisterStreamConsumerInput {
            stream_arn: stream_arn.clone(),
            consumer_name: "app".into(),
            ..Default::default()
        };
        let consumer = client.call(&register).await.unwrap().consumer;
        assert_eq!(consumer.consumer_status, ConsumerStatus::Active);
        assert!(consumer.consumer_arn.as_str().starts_with(&format!("{stream_arn}/consumer/app:")));
        assert_eq!(code(client.call(&register).await), ErrorKind::ResourceInUse);
        let described = client
            .call(&DescribeStreamConsumerInput {
                consumer_arn: Some(consumer.consumer_arn.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(described.consumer_description.stream_arn, stream_arn);
        let listed = client
            .call(&ListStreamConsumersInput { stream_arn: stream_arn.clone(), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(listed.consumers.len(), 1);

        let before = put(&client, "s", "k", b"before").await;
        let subscriber = connect(&endpoint).await;
        let mut subscription = subscriber
            .subscribe_to_shard(&SubscribeToShardInput {
                consumer_arn: consumer.consumer_arn.clone(),
                shard_id: before.shard_id.clone(),
                starting_position: StartingPosition::new(ShardIteratorType::TrimHorizon),
            })
            .await
            .unwrap();
        let first = subscription.next().await.unwrap().unwrap();
        assert_eq!(first.records[0].data, Bytes::from_static(b"before"));
        assert_eq!(first.continuation_sequence_number, before.sequence_number);

        // A record put now is pushed without polling.
        let after = put(&client, "s", "k", b"after").await;
        let mut pushed = None;
        while pushed.is_none() {
            let event = subscription.next().await.unwrap().unwrap();
            pushed = event.records.into_iter().next();
        }
        assert_eq!(pushed.unwrap().sequence_number, after.sequence_number);

        // A second subscription within 5 s is refused.
        let again = client
            .subscribe_to_shard(&SubscribeToShardInput {
                consumer_arn: consumer.consumer_arn.clone(),
                shard_id: before.shard_id.clone(),
                starting_position: StartingPosition::new(ShardIteratorType::Latest),
            })
            .await;
        assert_eq!(code(again.map(|_| ())), ErrorKind::ResourceInUse);
        // An unknown consumer is not found.
        let unknown = client
            .subscribe_to_shard(&SubscribeToShardInput {
                consumer_arn: format!("{stream_arn}/consumer/nobody:1").into(),
                shard_id: before.shard_id.clone(),
                starting_position: StartingPosition::new(ShardIteratorType::Latest),
            })
            .await;
        assert_eq!(code(unknown.map(|_| ())), ErrorKind::ResourceNotFound);

        // A stream with consumers is only deleted when asked to delete them too.
        let delete = DeleteStreamInput { stream_name: name("s"), ..Default::default() };
        assert_eq!(code(client.call(&delete).await), ErrorKind::ResourceInUse);
        let deregister =
            DeregisterStreamConsumerInput { consumer_arn: Some(consumer.consumer_arn.clone()), ..Default::default() };
        client.call(&deregister).await.unwrap();
        client.call(&delete).await.unwrap();
    });
}

#[test]
fn streams_records_consumers_and_iterators_survive_a_restart() {
    let mut daemon = Daemon::start("unlimited", 2);
    let endpoint = daemon.endpoint();
    let (sender, receiver) = std::sync::mpsc::channel();
    run(move || async move {
        let client = connect(&endpoint).await;
        create(&client, "s", 3).await;
        let register = RegisterStreamConsumerInput {
            stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s".into(),
            consumer_name: "app".into(),
            ..Default::default()
        };
        client.call(&register).await.unwrap();
        let mut acked = Vec::new();
        for i in 0..60 {
            acked.push(put(&client, "s", &format!("key-{i}"), format!("value-{i}").as_bytes()).await);
        }
        let it = iterator(&client, "s", &acked[0].shard_id, ShardIteratorType::TrimHorizon, None).await;
        sender.send((acked, it)).unwrap();
    });
    let (acked, iterator_before) = receiver.recv().unwrap();
    daemon.restart();
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = connect(&endpoint).await;
        let consumers = client
            .call(&ListStreamConsumersInput {
                stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(consumers.consumers.len(), 1);
        // The iterator issued before the restart still works: its key is kept on disk.
        let page = records(&client, &iterator_before).await;
        assert!(!page.records.is_empty());
        for (i, put) in acked.iter().enumerate() {
            let it =
                iterator(&client, "s", &put.shard_id, ShardIteratorType::AtSequenceNumber, Some(&put.sequence_number))
                    .await;
            let page = client
                .call(&GetRecordsInput { shard_iterator: it, limit: Some(1), ..Default::default() })
                .await
                .unwrap();
            assert_eq!(page.records[0].data, Bytes::from(format!("value-{i}")));
            assert_eq!(page.records[0].sequence_number, put.sequence_number);
        }
        // New records continue the sequence.
        let next = put(&client, "s", "key-0", b"after restart").await;
        let last_before =
            acked.iter().filter(|p| p.shard_id == next.shard_id).map(|p| p.sequence_number.clone()).max().unwrap();
        assert!(next.sequence_number > last_before);
    });
}

#[test]
fn garbage_frames_never_bring_the_daemon_down() {
    let daemon = Daemon::start("kinesis", 2);
    let endpoint = daemon.endpoint();
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let mut next = move || rng.next();
    for round in 0..200 {
        let mut stream = std::net::TcpStream::connect(&endpoint).unwrap();
        stream.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let len = (next() % 512) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 3 == 0 && bytes.len() >= 4 {
            // A plausible length prefix, so the body reaches the flatbuffers verifier.
            let body = (bytes.len() - 4) as u32;
            bytes[..4].copy_from_slice(&body.to_le_bytes());
        }
        let _ = stream.write_all(&bytes);
    }
    // An absurd length prefix is refused without the server allocating it.
    let mut stream = std::net::TcpStream::connect(&endpoint).unwrap();
    stream.write_all(&u32::MAX.to_le_bytes()).unwrap();
    run(move || async move {
        let client = connect(&endpoint).await;
        create(&client, "still-alive", 1).await;
        put(&client, "still-alive", "k", b"ok").await;
    });
}

/// A node alone answers DescribeStreamRoutes with itself (node 0, no address: the one the
/// client used) as the leader of every open shard, on both protocols, so clients can ask it
/// unconditionally; and a routed client writes through it as through a plain one.
#[test]
fn a_node_alone_routes_every_shard_to_itself() {
    let daemon = Daemon::start("unlimited", 2);
    let (endpoint, http) = (daemon.endpoint(), daemon.http_addr.to_string());
    run(move || async move {
        let client = connect(&endpoint).await;
        create(&client, "routes", 3).await;
        let input = DescribeStreamRoutesInput { stream_name: name("routes"), stream_arn: None };
        let table = client.call(&input).await.expect("DescribeStreamRoutes");
        assert_eq!(table.node_id, SINGLE_NODE_ID);
        assert_eq!(table.members, vec![RouteMember { node_id: SINGLE_NODE_ID, native_address: None }]);
        let shards = client.call(&ListShardsInput { stream_name: name("routes"), ..Default::default() }).await.unwrap();
        assert_eq!(table.shards.len(), 3);
        for (route, shard) in table.shards.iter().zip(&shards.shards) {
            assert_eq!((&route.shard_id, &route.hash_key_range), (&shard.shard_id, &shard.hash_key_range));
            assert_eq!(route.leader_node_id, Some(SINGLE_NODE_ID));
        }
        assert!(table.stream_arn.as_str().ends_with(":stream/routes"), "{table:?}");

        let over_http = aws::HttpClient::connect(&http, Encoding::Json).await.unwrap();
        assert_eq!(over_http.call(&input).await.expect("DescribeStreamRoutes over HTTP"), table);
        let missing = DescribeStreamRoutesInput { stream_name: name("nope"), stream_arn: None };
        assert_eq!(code(client.call(&missing).await), ErrorKind::ResourceNotFound);
        assert_eq!(code(client.call(&DescribeStreamRoutesInput::default()).await), ErrorKind::InvalidArgument);

        let routed = RoutedClient::connect(RoutedConfig::new(vec![endpoint.clone()])).await.unwrap();
        let records = (0..30)
            .map(|i| PutRecordsRequestEntry {
                data: Bytes::from(format!("r{i}")),
                partition_key: Some(format!("key-{i}")),
                explicit_hash_key: None,
            })
            .collect();
        let put = PutRecordsInput { records, stream_name: name("routes"), stream_arn: None };
        let answer = routed.put_records(&put).await.expect("a routed PutRecords");
        assert_eq!(answer.failed_record_count, Some(0));
        for (i, entry) in answer.records.iter().enumerate() {
            let key = HashKey(sluice_engine::routing::HashKey::from_partition_key(&format!("key-{i}")).0);
            let expected = table.shards.iter().find(|shard| {
                shard.hash_key_range.starting_hash_key <= key && key <= shard.hash_key_range.ending_hash_key
            });
            assert_eq!(entry.shard_id.as_ref(), expected.map(|shard| &shard.shard_id), "record {i}");
        }
        let stats = routed.stats();
        assert_eq!((stats.direct_calls, stats.any_calls, stats.table_fetches), (0, 1, 1), "{stats:?}");
    });
}

/// The `sluice` CLI's commands for settings, resource policies, account settings and resource
/// tags, run as a user runs them against the real daemon: each change shows in what the
/// daemon describes afterwards, and a refused one exits 255 naming AWS's exception.
#[test]
fn the_cli_changes_settings_policies_and_tags() {
    let daemon = Daemon::start("kinesis", 2);
    let endpoint = daemon.endpoint();
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(common::sluice_bin())
            .args(["--endpoint", &endpoint])
            .args(args)
            .output()
            .expect("run sluice");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let json = |args: &[&str]| -> serde_json::Value {
        let (status, stdout, stderr) = cli(args);
        assert_eq!(status, Some(0), "sluice {args:?}: {stderr}");
        if stdout.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap()
        }
    };
    let client_endpoint = endpoint.clone();
    let (provisioned, on_demand) = run(move || async move {
        let client = connect(&client_endpoint).await;
        create(&client, "settings", 1).await;
        let on_demand = CreateStreamInput {
            stream_name: "warm".into(),
            stream_mode_details: Some(StreamModeDetails::from(StreamMode::OnDemand)),
            ..Default::default()
        };
        client.call(&on_demand).await.expect("create an ON_DEMAND stream");
        let arn = |stream: &str| {
            let describe = DescribeStreamSummaryInput { stream_name: name(stream), stream_arn: None };
            let client = client.clone();
            async move { client.call(&describe).await.unwrap().stream_description_summary.stream_arn.to_string() }
        };
        (arn("settings").await, arn("warm").await)
    });
    let summary =
        |stream: &str| json(&["describe-stream-summary", "--stream-name", stream])["StreamDescriptionSummary"].clone();

    json(&["update-max-record-size", "--stream-arn", &provisioned, "--max-record-size-in-ki-b", "2048"]);
    assert_eq!(summary("settings")["MaxRecordSizeInKiB"], 2048);
    let (status, _, stderr) =
        cli(&["update-max-record-size", "--stream-arn", &provisioned, "--max-record-size-in-ki-b", "99"]);
    assert_eq!(status, Some(255), "{stderr}");
    assert!(stderr.contains("ValidationException") && stderr.contains("UpdateMaxRecordSize"), "{stderr}");

    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::000000000000:user/reader"}},"Action":"kinesis:GetRecords","Resource":"{provisioned}"}}]}}"#
    );
    json(&["put-resource-policy", "--resource-arn", &provisioned, "--policy", &policy]);
    assert_eq!(json(&["get-resource-policy", "--resource-arn", &provisioned])["Policy"], policy.as_str());
    json(&["delete-resource-policy", "--resource-arn", &provisioned]);
    assert_eq!(json(&["get-resource-policy", "--resource-arn", &provisioned])["Policy"], "{}");

    json(&["tag-resource", "--resource-arn", &provisioned, "--tags", "team=data,tier=gold"]);
    json(&["untag-resource", "--resource-arn", &provisioned, "--tag-keys", "tier"]);
    let tags = json(&["list-tags-for-resource", "--resource-arn", &provisioned]);
    assert_eq!(tags["Tags"], serde_json::json!([{"Key": "team", "Value": "data"}]));

    let enabled = json(&["update-account-settings", "--minimum-throughput-billing-commitment", "Status=ENABLED"]);
    assert_eq!(enabled["MinimumThroughputBillingCommitment"]["Status"], "ENABLED");
    let described = json(&["describe-account-settings"]);
    assert_eq!(described["MinimumThroughputBillingCommitment"]["Status"], "ENABLED");
    let warm = json(&["update-stream-warm-throughput", "--stream-name", "warm", "--warm-throughput-mi-bps", "6"]);
    assert_eq!(warm["WarmThroughput"]["TargetMiBps"], 6);
    assert_eq!(summary("warm")["WarmThroughput"]["TargetMiBps"], 6);
    // AUTO needs an ON_DEMAND stream: the PROVISIONED one is refused.
    let (status, _, stderr) = cli(&[
        "update-stream-record-distribution-strategy",
        "--stream-arn",
        &provisioned,
        "--record-distribution-strategy",
        "AUTO",
    ]);
    assert_eq!(status, Some(255), "{stderr}");
    assert!(stderr.contains("InvalidArgumentException"), "{stderr}");
    // The warm stream is UPDATING while it scales to its target: the change waits for ACTIVE.
    let started = std::time::Instant::now();
    loop {
        let (status, _, stderr) = cli(&[
            "update-stream-record-distribution-strategy",
            "--stream-arn",
            &on_demand,
            "--record-distribution-strategy",
            "AUTO",
        ]);
        if status == Some(0) {
            break;
        }
        assert!(stderr.contains("ResourceInUseException"), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(60), "the warm stream never became ACTIVE: {stderr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(summary("warm")["RecordDistributionStrategy"], "AUTO");
}
