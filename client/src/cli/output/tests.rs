use bytes::Bytes;
use serde_json::json;

use super::*;
use sluice_client::*;

const TIMESTAMP: Timestamp = Timestamp::from_epoch_ms(1_704_164_645_678);
const SEQUENCE_NUMBER: &str = "49546986683135544286507457936321625675700192471156785154";

fn sequence() -> SequenceNumber {
    SEQUENCE_NUMBER.parse().unwrap()
}

fn value<T: Serialize>(output: &T) -> serde_json::Value {
    serde_json::from_str(&pretty_json(output)).unwrap()
}

fn record(data: &'static [u8]) -> Record {
    Record {
        sequence_number: sequence(),
        approximate_arrival_timestamp: Some(TIMESTAMP),
        data: Bytes::from_static(data),
        partition_key: Some("k".into()),
        encryption_type: None,
    }
}

fn hash_key_range() -> HashKeyRange {
    HashKeyRange { starting_hash_key: HashKey(0), ending_hash_key: HashKey(u128::MAX) }
}

#[test]
fn put_record_prints_like_the_aws_cli() {
    let response =
        PutRecordOutput { shard_id: "shardId-000000000000".into(), sequence_number: sequence(), encryption_type: None };
    let expected =
        format!("{{\n    \"ShardId\": \"shardId-000000000000\",\n    \"SequenceNumber\": \"{SEQUENCE_NUMBER}\"\n}}");
    assert_eq!(pretty_json(&response), expected);
    let encrypted = PutRecordOutput { encryption_type: Some(EncryptionType::Kms), ..response };
    assert_eq!(value(&encrypted)["EncryptionType"], "KMS");
}

#[test]
fn get_records_prints_base64_data_and_epoch_second_timestamps() {
    let response = GetRecordsOutput {
        records: vec![record(b"hello"), record(&[0, 0xff])],
        next_shard_iterator: Some("AAAA".into()),
        millis_behind_latest: Some(0),
        child_shards: None,
    };
    assert_eq!(
        value(&response),
        json!({
            "Records": [
                {
                    "SequenceNumber": SEQUENCE_NUMBER,
                    "ApproximateArrivalTimestamp": 1704164645.678,
                    "Data": "aGVsbG8=",
                    "PartitionKey": "k"
                },
                {
                    "SequenceNumber": SEQUENCE_NUMBER,
                    "ApproximateArrivalTimestamp": 1704164645.678,
                    "Data": "AP8=",
                    "PartitionKey": "k"
                }
            ],
            "NextShardIterator": "AAAA",
            "MillisBehindLatest": 0
        })
    );
    // Member order follows botocore's shapes, and the timestamp is a number, not a string.
    let text = pretty_json(&response);
    assert!(text.find("\"SequenceNumber\"") < text.find("\"ApproximateArrivalTimestamp\""));
    assert!(text.contains("\"ApproximateArrivalTimestamp\": 1704164645.678,"), "{text}");

    let closed = GetRecordsOutput {
        records: Vec::new(),
        next_shard_iterator: None,
        millis_behind_latest: Some(0),
        child_shards: Some(vec![ChildShard {
            shard_id: "shardId-000000000001".into(),
            parent_shards: vec!["shardId-000000000000".into()],
            hash_key_range: hash_key_range(),
        }]),
    };
    assert_eq!(
        value(&closed),
        json!({
            "Records": [],
            "MillisBehindLatest": 0,
            "ChildShards": [{
                "ShardId": "shardId-000000000001",
                "ParentShards": ["shardId-000000000000"],
                "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "340282366920938463463374607431768211455"}
            }]
        })
    );
}

#[test]
fn put_records_spells_per_record_errors_as_aws_json_does() {
    let response = PutRecordsOutput {
        failed_record_count: Some(2),
        records: vec![
            PutRecordsResultEntry {
                sequence_number: Some(SequenceNumber::new(1)),
                shard_id: Some("shardId-000000000000".into()),
                error_code: None,
                error_message: None,
            },
            PutRecordsResultEntry {
                sequence_number: None,
                shard_id: None,
                error_code: Some(ErrorKind::ProvisionedThroughputExceeded),
                error_message: Some("Rate exceeded".into()),
            },
            PutRecordsResultEntry {
                sequence_number: None,
                shard_id: None,
                error_code: Some(ErrorKind::InternalFailure),
                error_message: Some("Internal service failure.".into()),
            },
        ],
        encryption_type: Some(EncryptionType::None),
    };
    assert_eq!(
        value(&response),
        json!({
            "FailedRecordCount": 2,
            "Records": [
                {"SequenceNumber": "1", "ShardId": "shardId-000000000000"},
                {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"},
                {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."}
            ],
            "EncryptionType": "NONE"
        })
    );
}

#[test]
fn describe_stream_uses_the_aws_member_names() {
    let response = DescribeStreamOutput {
        stream_description: StreamDescription {
            stream_name: "orders".into(),
            stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders".into(),
            stream_status: StreamStatus::Active,
            stream_mode_details: Some(StreamModeDetails::from(StreamMode::Provisioned)),
            shards: vec![Shard {
                shard_id: "shardId-000000000000".into(),
                parent_shard_id: None,
                adjacent_parent_shard_id: None,
                hash_key_range: hash_key_range(),
                sequence_number_range: SequenceNumberRange {
                    starting_sequence_number: SequenceNumber::new(100),
                    ending_sequence_number: None,
                },
            }],
            has_more_shards: false,
            retention_period_hours: 24,
            stream_creation_timestamp: Timestamp::from_epoch_ms(1_704_164_645_000),
            enhanced_monitoring: vec![EnhancedMetrics { shard_level_metrics: Vec::new() }],
            encryption_type: Some(EncryptionType::None),
            key_id: None,
        },
    };
    assert_eq!(
        value(&response),
        json!({
            "StreamDescription": {
                "StreamName": "orders",
                "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": {"StreamMode": "PROVISIONED"},
                "Shards": [{
                    "ShardId": "shardId-000000000000",
                    "HashKeyRange": {
                        "StartingHashKey": "0",
                        "EndingHashKey": "340282366920938463463374607431768211455"
                    },
                    "SequenceNumberRange": {"StartingSequenceNumber": "100"}
                }],
                "HasMoreShards": false,
                "RetentionPeriodHours": 24,
                "StreamCreationTimestamp": 1704164645.0,
                "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
                "EncryptionType": "NONE"
            }
        })
    );
    // Python's json prints a whole float as `1704164645.0`; so does this.
    assert!(pretty_json(&response).contains("\"StreamCreationTimestamp\": 1704164645.0,"));
}

#[test]
fn describe_stream_summary_names_the_kib_member_as_aws_does() {
    let response = DescribeStreamSummaryOutput {
        stream_description_summary: StreamDescriptionSummary {
            stream_name: "orders".into(),
            stream_arn: "arn:s".into(),
            stream_status: StreamStatus::Creating,
            stream_mode_details: Some(StreamModeDetails::from(StreamMode::OnDemand)),
            retention_period_hours: 24,
            stream_creation_timestamp: TIMESTAMP,
            enhanced_monitoring: Vec::new(),
            encryption_type: None,
            key_id: None,
            open_shard_count: 4,
            consumer_count: Some(0),
            warm_throughput: None,
            max_record_size_in_kib: Some(1024),
            record_distribution_strategy: None,
        },
    };
    assert_eq!(
        value(&response),
        json!({
            "StreamDescriptionSummary": {
                "StreamName": "orders",
                "StreamARN": "arn:s",
                "StreamStatus": "CREATING",
                "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
                "RetentionPeriodHours": 24,
                "StreamCreationTimestamp": 1704164645.678,
                "EnhancedMonitoring": [],
                "OpenShardCount": 4,
                "ConsumerCount": 0,
                "MaxRecordSizeInKiB": 1024
            }
        })
    );
}

#[test]
fn listings_print_their_pages() {
    let streams = ListStreamsOutput {
        stream_names: vec!["a".into()],
        has_more_streams: false,
        next_token: None,
        stream_summaries: vec![StreamSummary {
            stream_name: "a".into(),
            stream_arn: "arn:a".into(),
            stream_status: StreamStatus::Active,
            stream_mode_details: None,
            stream_creation_timestamp: Some(TIMESTAMP),
        }],
    };
    assert_eq!(
        value(&streams),
        json!({
            "StreamNames": ["a"],
            "HasMoreStreams": false,
            "StreamSummaries": [{
                "StreamName": "a",
                "StreamARN": "arn:a",
                "StreamStatus": "ACTIVE",
                "StreamCreationTimestamp": 1704164645.678
            }]
        })
    );
    let shards = ListShardsOutput { shards: Vec::new(), next_token: Some("T".into()) };
    assert_eq!(value(&shards), json!({"Shards": [], "NextToken": "T"}));
    let tags = ListTagsForStreamOutput {
        tags: vec![Tag::new("team", "data"), Tag { key: "bare".into(), value: None }],
        has_more_tags: false,
    };
    assert_eq!(
        value(&tags),
        json!({"Tags": [{"Key": "team", "Value": "data"}, {"Key": "bare"}], "HasMoreTags": false})
    );
    let limits = DescribeLimitsOutput {
        shard_limit: 500,
        open_shard_count: 2,
        on_demand_stream_count: 0,
        on_demand_stream_count_limit: 50,
    };
    assert_eq!(
        value(&limits),
        json!({"ShardLimit": 500, "OpenShardCount": 2, "OnDemandStreamCount": 0, "OnDemandStreamCountLimit": 50})
    );
}

#[test]
fn consumers_print_their_arns_and_timestamps() {
    let consumer = Consumer {
        consumer_name: "audit".into(),
        consumer_arn: "arn:c".into(),
        consumer_status: ConsumerStatus::Creating,
        consumer_creation_timestamp: TIMESTAMP,
    };
    let expected_consumer = json!({
        "ConsumerName": "audit",
        "ConsumerARN": "arn:c",
        "ConsumerStatus": "CREATING",
        "ConsumerCreationTimestamp": 1704164645.678
    });
    let registered = RegisterStreamConsumerOutput { consumer: consumer.clone() };
    assert_eq!(value(&registered), json!({"Consumer": expected_consumer}));
    let listed = ListStreamConsumersOutput { consumers: vec![consumer], next_token: None };
    assert_eq!(value(&listed), json!({"Consumers": [expected_consumer]}));
    let described = DescribeStreamConsumerOutput {
        consumer_description: ConsumerDescription {
            consumer_name: "audit".into(),
            consumer_arn: "arn:c".into(),
            consumer_status: ConsumerStatus::Active,
            consumer_creation_timestamp: TIMESTAMP,
            stream_arn: "arn:s".into(),
        },
    };
    assert_eq!(value(&described)["ConsumerDescription"]["StreamARN"], "arn:s");
    assert_eq!(value(&GetShardIteratorOutput { shard_iterator: Some("IT".into()) }), json!({"ShardIterator": "IT"}));
}

#[test]
fn a_subscription_event_is_one_line_shaped_like_botocore_events() {
    let event = SubscribeToShardEvent {
        records: vec![record(b"hi")],
        continuation_sequence_number: sequence(),
        millis_behind_latest: 5,
        child_shards: None,
    };
    let line = json_line(&subscribe_to_shard_event(&event));
    assert!(!line.contains('\n'));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&line).unwrap(),
        json!({
            "SubscribeToShardEvent": {
                "Records": [{
                    "SequenceNumber": SEQUENCE_NUMBER,
                    "ApproximateArrivalTimestamp": 1704164645.678,
                    "Data": "aGk=",
                    "PartitionKey": "k"
                }],
                "ContinuationSequenceNumber": SEQUENCE_NUMBER,
                "MillisBehindLatest": 5
            }
        })
    );
}

#[test]
fn service_errors_read_like_the_aws_cli() {
    assert_eq!(
        service_error_message("DescribeStream", "ResourceNotFoundException", "Stream s under account 0 not found."),
        "An error occurred (ResourceNotFoundException) when calling the DescribeStream operation: \
         Stream s under account 0 not found."
    );
}
