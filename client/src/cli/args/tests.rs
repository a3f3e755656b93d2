use clap::CommandFactory;

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("sluice").chain(args.iter().copied()))
}

fn call(args: &[&str]) -> Call {
    parse(args).unwrap().command.to_call().unwrap()
}

/// The request of a command that makes a plain native call.
fn native(args: &[&str]) -> Request {
    match call(args) {
        Call::Native(request) => request,
        other => panic!("{args:?} made {other:?}"),
    }
}

fn param_failure(args: &[&str]) -> ParamError {
    parse(args).unwrap().command.to_call().unwrap_err()
}

#[test]
fn the_command_line_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn the_endpoint_defaults_and_can_be_given_anywhere() {
    assert_eq!(parse(&["describe-limits"]).unwrap().endpoint, "127.0.0.1:4568");
    assert_eq!(parse(&["--endpoint", "10.0.0.1:9000", "describe-limits"]).unwrap().endpoint, "10.0.0.1:9000");
    assert_eq!(parse(&["describe-limits", "--endpoint", "h:1"]).unwrap().endpoint, "h:1");
    assert_eq!(call(&["describe-limits"]), Call::DescribeLimits);
}

#[test]
fn create_stream_maps_every_parameter() {
    assert_eq!(
        call(&["create-stream", "--stream-name", "s", "--shard-count", "2"]),
        Call::CreateStream(CreateStreamInput { stream_name: "s".into(), shard_count: Some(2), ..Default::default() })
    );
    for mode in ["ON_DEMAND", "StreamMode=ON_DEMAND", r#"{"StreamMode": "ON_DEMAND"}"#] {
        let args = ["create-stream", "--stream-name", "s", "--stream-mode-details", mode, "--tags", "b=2,a=1"];
        assert_eq!(
            call(&args),
            Call::CreateStream(CreateStreamInput {
                stream_name: "s".into(),
                stream_mode_details: Some(StreamModeDetails::from(StreamMode::OnDemand)),
                tags: Some([("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())].into()),
                ..Default::default()
            }),
            "{mode}"
        );
    }
    let error = param_failure(&["create-stream", "--stream-name", "s", "--stream-mode-details", "SERVERLESS"]);
    assert_eq!(error.parameter, "--stream-mode-details");
    assert!(error.message.contains("PROVISIONED, ON_DEMAND"), "{error}");
}

#[test]
fn a_stream_must_be_named_by_name_or_arn() {
    assert!(parse(&["describe-stream"]).is_err());
    assert_eq!(
        call(&["describe-stream", "--stream-arn", "arn:s", "--limit", "5"]),
        Call::DescribeStream(DescribeStreamInput {
            stream_arn: Some("arn:s".into()),
            limit: Some(5),
            ..Default::default()
        })
    );
    assert_eq!(
        call(&["describe-stream-summary", "--stream-name", "s"]),
        Call::DescribeStreamSummary(DescribeStreamSummaryInput { stream_name: Some("s".into()), stream_arn: None })
    );
}

#[test]
fn put_record_data_is_text_or_base64() {
    let expected = |data: &'static [u8]| {
        Call::PutRecord(PutRecordInput {
            stream_name: Some("s".into()),
            data: Bytes::from_static(data),
            partition_key: Some("k".into()),
            ..Default::default()
        })
    };
    let base = ["put-record", "--stream-name", "s", "--partition-key", "k"];
    assert_eq!(call(&[&base[..], &["--data", "hello"]].concat()), expected(b"hello"));
    assert_eq!(call(&[&base[..], &["--data-base64", "AAH/"]].concat()), expected(&[0, 1, 0xff]));
    assert!(parse(&base).is_err(), "data is required");
    assert!(parse(&[&base[..], &["--data", "a", "--data-base64", "YQ=="]].concat()).is_err(), "but only once");
    let error = param_failure(&[&base[..], &["--data-base64", "not base64!"]].concat());
    assert_eq!(error.parameter, "--data-base64");
}

#[test]
fn put_records_takes_the_aws_cli_json() {
    let records = r#"[{"Data":"aGk=","PartitionKey":"k"},{"Data":"","PartitionKey":"k2","ExplicitHashKey":"0"}]"#;
    assert_eq!(
        call(&["put-records", "--stream-name", "s", "--records", records]),
        Call::PutRecords(PutRecordsInput {
            stream_name: Some("s".into()),
            stream_arn: None,
            records: vec![
                PutRecordsRequestEntry {
                    data: Bytes::from_static(b"hi"),
                    partition_key: Some("k".into()),
                    explicit_hash_key: None
                },
                PutRecordsRequestEntry {
                    data: Bytes::new(),
                    partition_key: Some("k2".into()),
                    explicit_hash_key: Some(HashKey(0))
                },
            ],
        })
    );
    for (records, expected) in [
        (r#"[{"Data":"%%%","PartitionKey":"k"}]"#, "Records[0].Data is not valid base64"),
        (r#"[{"Data":"aGk=","PartitionKey":"k","Extra":1}]"#, "Invalid JSON: unknown field `Extra`"),
        (r#"[{"Data":"aGk="}]"#, "Invalid JSON: missing field `PartitionKey`"),
        ("not json", "Invalid JSON"),
    ] {
        let error = param_failure(&["put-records", "--stream-name", "s", "--records", records]);
        assert!(error.to_string().starts_with("Error parsing parameter '--records': "), "{error}");
        assert!(error.message.contains(expected), "{error}");
    }
}

#[test]
fn put_records_reads_a_file() {
    let path = std::env::temp_dir().join(format!("sluice-records-{}.json", std::process::id()));
    std::fs::write(&path, r#"[{"Data":"aGk=","PartitionKey":"k"}]"#).unwrap();
    let parsed = parse_records(&format!("file://{}", path.display()));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(parsed.unwrap().len(), 1);
    let error = parse_records("file:///nonexistent/sluice-records.json").unwrap_err();
    assert!(error.message.starts_with("Unable to load paramfile"), "{error}");
}

#[test]
fn get_shard_iterator_parses_its_type_and_timestamp() {
    let args = [
        "get-shard-iterator",
        "--stream-name",
        "s",
        "--shard-id",
        "shardId-000000000000",
        "--shard-iterator-type",
        "AT_TIMESTAMP",
        "--timestamp",
        "1704164645.678",
    ];
    assert_eq!(
        call(&args),
        Call::GetShardIterator(GetShardIteratorInput {
            stream_name: Some("s".into()),
            stream_arn: None,
            shard_id: "shardId-000000000000".into(),
            shard_iterator_type: ShardIteratorType::AtTimestamp,
            starting_sequence_number: None,
            timestamp: Some(Timestamp::from_epoch_ms(1_704_164_645_678)),
        })
    );
    let args = [
        "get-shard-iterator",
        "--stream-name",
        "s",
        "--shard-id",
        "shardId-000000000000",
        "--shard-iterator-type",
        "AFTER_SEQUENCE_NUMBER",
        "--starting-sequence-number",
        "42",
    ];
    let Call::GetShardIterator(request) = call(&args) else { panic!() };
    assert_eq!(request.shard_iterator_type, ShardIteratorType::AfterSequenceNumber);
    assert_eq!(request.starting_sequence_number, Some(SequenceNumber::new(42)));
    let bad_type = ["get-shard-iterator", "--stream-name", "s", "--shard-id", "x", "--shard-iterator-type", "OLDEST"];
    assert!(parse(&bad_type).is_err());
}

#[test]
fn timestamps_are_epoch_seconds() {
    for (value, expected_ms) in [("0", 0), ("1704164645", 1_704_164_645_000), (" 1.0005 ", 1001), ("-1.5", -1500)] {
        assert_eq!(parse_timestamp("--timestamp", value), Ok(Timestamp::from_epoch_ms(expected_ms)), "{value}");
    }
    for value in ["", "yesterday", "NaN", "inf", "1e300"] {
        assert!(parse_timestamp("--timestamp", value).is_err(), "{value}");
    }
}

#[test]
fn get_records_and_retention_map_directly() {
    assert_eq!(
        call(&["get-records", "--shard-iterator", "IT", "--limit", "10"]),
        Call::GetRecords(GetRecordsInput { shard_iterator: "IT".into(), limit: Some(10), stream_arn: None })
    );
    assert_eq!(
        call(&["increase-stream-retention-period", "--stream-name", "s", "--retention-period-hours", "48"]),
        Call::IncreaseStreamRetentionPeriod(IncreaseStreamRetentionPeriodInput {
            stream_name: Some("s".into()),
            stream_arn: None,
            retention_period_hours: 48,
        })
    );
    assert!(matches!(
        call(&["decrease-stream-retention-period", "--stream-arn", "a", "--retention-period-hours", "24"]),
        Call::DecreaseStreamRetentionPeriod(_)
    ));
}

#[test]
fn list_shards_takes_a_shard_filter() {
    let args =
        ["list-shards", "--stream-name", "s", "--shard-filter", "Type=AFTER_SHARD_ID,ShardId=shardId-000000000001"];
    let Call::ListShards(request) = call(&args) else { panic!() };
    assert_eq!(
        request.shard_filter,
        Some(ShardFilter {
            r#type: ShardFilterType::AfterShardId,
            shard_id: Some("shardId-000000000001".into()),
            timestamp: None,
        })
    );
    let args = ["list-shards", "--stream-name", "s", "--shard-filter", r#"{"Type":"AT_TIMESTAMP","Timestamp":12.5}"#];
    let Call::ListShards(request) = call(&args) else { panic!() };
    assert_eq!(request.shard_filter.unwrap().timestamp, Some(Timestamp::from_epoch_ms(12_500)));
    // A continuation names no stream.
    let Call::ListShards(request) = call(&["list-shards", "--next-token", "T"]) else { panic!() };
    assert_eq!((request.stream_name, request.next_token.as_deref()), (None, Some("T")));
    let error = param_failure(&["list-shards", "--stream-name", "s", "--shard-filter", "Kind=AT_LATEST"]);
    assert!(error.message.contains("Unknown member \"Kind\""), "{error}");
}

#[test]
fn tags_commands_map_their_lists() {
    assert_eq!(
        call(&["add-tags-to-stream", "--stream-name", "s", "--tags", r#"{"team":"data","tier":"1"}"#]),
        Call::AddTagsToStream(AddTagsToStreamInput {
            stream_name: Some("s".into()),
            stream_arn: None,
            tags: [("team".to_owned(), "data".to_owned()), ("tier".to_owned(), "1".to_owned())].into(),
        })
    );
    assert_eq!(
        call(&["remove-tags-from-stream", "--stream-name", "s", "--tag-keys", "team", "tier"]),
        Call::RemoveTagsFromStream(RemoveTagsFromStreamInput {
            stream_name: Some("s".into()),
            stream_arn: None,
            tag_keys: vec!["team".into(), "tier".into()],
        })
    );
    assert!(parse(&["remove-tags-from-stream", "--stream-name", "s"]).is_err());
    let error = param_failure(&["add-tags-to-stream", "--stream-name", "s", "--tags", "novalue"]);
    assert_eq!(error.to_string(), "Error parsing parameter '--tags': Expected Key=Value, found \"novalue\"");
}

#[test]
fn consumer_commands_map_their_identities() {
    assert_eq!(
        call(&["register-stream-consumer", "--stream-arn", "arn:s", "--consumer-name", "c"]),
        Call::RegisterStreamConsumer(RegisterStreamConsumerInput {
            stream_arn: "arn:s".into(),
            consumer_name: "c".into(),
            tags: None,
        })
    );
    assert_eq!(
        call(&["deregister-stream-consumer", "--consumer-arn", "arn:c"]),
        Call::DeregisterStreamConsumer(DeregisterStreamConsumerInput {
            consumer_arn: Some("arn:c".into()),
            ..Default::default()
        })
    );
    assert_eq!(
        call(&["describe-stream-consumer", "--stream-arn", "arn:s", "--consumer-name", "c"]),
        Call::DescribeStreamConsumer(DescribeStreamConsumerInput {
            stream_arn: Some("arn:s".into()),
            consumer_name: Some("c".into()),
            consumer_arn: None,
        })
    );
    assert!(matches!(call(&["list-stream-consumers", "--stream-arn", "arn:s"]), Call::ListStreamConsumers(_)));
    let Call::DeleteStream(request) = call(&["delete-stream", "--stream-name", "s", "--enforce-consumer-deletion"])
    else {
        panic!()
    };
    assert_eq!(request.enforce_consumer_deletion, Some(true));
}

#[test]
fn subscribe_to_shard_takes_a_type_or_a_structure() {
    let base = ["subscribe-to-shard", "--consumer-arn", "arn:c", "--shard-id", "shardId-000000000000"];
    let position = |extra: &[&str]| match call(&[&base[..], extra].concat()) {
        Call::SubscribeToShard { request, max_events } => (request.starting_position, max_events),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        position(&["--starting-position", "TRIM_HORIZON"]),
        (StartingPosition::new(ShardIteratorType::TrimHorizon), None)
    );
    let expected = StartingPosition {
        r#type: ShardIteratorType::AfterSequenceNumber,
        sequence_number: Some(SequenceNumber::new(7)),
        timestamp: None,
    };
    assert_eq!(position(&["--starting-position", "Type=AFTER_SEQUENCE_NUMBER,SequenceNumber=7"]).0, expected);
    assert_eq!(
        position(&[
            "--starting-position",
            "AFTER_SEQUENCE_NUMBER",
            "--starting-sequence-number",
            "7",
            "--max-events",
            "3"
        ]),
        (expected, Some(3))
    );
    let at_timestamp = position(&["--starting-position", "AT_TIMESTAMP", "--timestamp", "10"]).0;
    assert_eq!(at_timestamp.timestamp, Some(Timestamp::from_epoch_ms(10_000)));
    let error = param_failure(&[&base[..], &["--starting-position", "Type=BEGINNING"]].concat());
    assert_eq!(error.parameter, "--starting-position");
}

#[test]
fn every_command_names_its_operation() {
    assert_eq!(call(&["list-streams"]).operation(), "ListStreams");
    assert_eq!(call(&["get-records", "--shard-iterator", "x"]).operation(), "GetRecords");
    let subscribe = ["subscribe-to-shard", "--consumer-arn", "a", "--shard-id", "s", "--starting-position", "LATEST"];
    assert_eq!(call(&subscribe).operation(), "SubscribeToShard");
}

#[test]
fn settings_commands_map_their_parameters() {
    assert_eq!(
        native(&["update-max-record-size", "--stream-arn", "arn:s", "--max-record-size-in-ki-b", "2048"]),
        Request::from(UpdateMaxRecordSizeInput { stream_arn: Some("arn:s".into()), max_record_size_in_kib: 2048 })
    );
    // The spelling create-stream takes works here too.
    assert_eq!(
        native(&["update-max-record-size", "--stream-arn", "arn:s", "--max-record-size-in-kib", "2048"]),
        native(&["update-max-record-size", "--stream-arn", "arn:s", "--max-record-size-in-ki-b", "2048"])
    );
    assert_eq!(
        native(&["update-stream-warm-throughput", "--stream-name", "s", "--warm-throughput-mi-bps", "6"]),
        Request::from(UpdateStreamWarmThroughputInput {
            stream_arn: None,
            stream_name: Some("s".into()),
            warm_throughput_mi_bps: 6
        })
    );
    assert_eq!(
        native(&[
            "update-stream-record-distribution-strategy",
            "--stream-arn",
            "arn:s",
            "--record-distribution-strategy",
            "AUTO"
        ]),
        Request::from(UpdateStreamRecordDistributionStrategyInput {
            stream_arn: "arn:s".into(),
            record_distribution_strategy: RecordDistributionStrategy::Auto
        })
    );
    for commitment in ["ENABLED", "Status=ENABLED", r#"{"Status": "ENABLED"}"#] {
        assert_eq!(
            native(&["update-account-settings", "--minimum-throughput-billing-commitment", commitment]),
            Request::from(UpdateAccountSettingsInput {
                minimum_throughput_billing_commitment: MinimumThroughputBillingCommitmentInput {
                    status: BillingCommitmentInputStatus::Enabled
                }
            }),
            "{commitment}"
        );
    }
    let error = param_failure(&["update-account-settings", "--minimum-throughput-billing-commitment", "Status=ON"]);
    assert!(error.message.contains("ENABLED, DISABLED"), "{error}");
    let error = param_failure(&["update-account-settings", "--minimum-throughput-billing-commitment", "State=ENABLED"]);
    assert_eq!(error.parameter, "--minimum-throughput-billing-commitment");
    assert_eq!(native(&["describe-account-settings"]), Request::from(DescribeAccountSettingsInput {}));
    assert_eq!(
        native(&["update-stream-mode", "--stream-arn", "arn:s", "--stream-mode-details", "StreamMode=ON_DEMAND"]),
        Request::from(UpdateStreamModeInput {
            stream_arn: "arn:s".into(),
            stream_mode_details: StreamModeDetails::from(StreamMode::OnDemand)
        })
    );
    assert_eq!(
        native(&["enable-enhanced-monitoring", "--stream-name", "s", "--shard-level-metrics", "IncomingBytes", "ALL"]),
        Request::from(EnableEnhancedMonitoringInput {
            stream_name: Some("s".into()),
            shard_level_metrics: vec![MetricsName::IncomingBytes, MetricsName::All],
            stream_arn: None
        })
    );
    let error = param_failure(&["disable-enhanced-monitoring", "--stream-name", "s", "--shard-level-metrics", "Bytes"]);
    assert_eq!(error.parameter, "--shard-level-metrics");
}

#[test]
fn policy_encryption_and_resource_tag_commands_map_their_parameters() {
    assert_eq!(
        native(&["put-resource-policy", "--resource-arn", "arn:s", "--policy", "{}"]),
        Request::from(PutResourcePolicyInput { resource_arn: "arn:s".into(), policy: "{}".into(), stream_id: None })
    );
    assert_eq!(
        native(&["get-resource-policy", "--resource-arn", "arn:s"]),
        Request::from(GetResourcePolicyInput { resource_arn: "arn:s".into(), stream_id: None })
    );
    assert_eq!(
        native(&["delete-resource-policy", "--resource-arn", "arn:s"]),
        Request::from(DeleteResourcePolicyInput { resource_arn: "arn:s".into(), stream_id: None })
    );
    assert_eq!(
        native(&[
            "start-stream-encryption",
            "--stream-name",
            "s",
            "--encryption-type",
            "KMS",
            "--key-id",
            "alias/aws/kinesis"
        ]),
        Request::from(StartStreamEncryptionInput {
            stream_name: Some("s".into()),
            encryption_type: EncryptionType::Kms,
            key_id: "alias/aws/kinesis".into(),
            stream_arn: None
        })
    );
    assert!(matches!(
        native(&["stop-stream-encryption", "--stream-arn", "arn:s", "--encryption-type", "KMS", "--key-id", "k"]),
        Request::StopStreamEncryption(_)
    ));
    assert_eq!(
        native(&["tag-resource", "--resource-arn", "arn:c", "--tags", "team=data"]),
        Request::from(TagResourceInput {
            tags: [("team".to_owned(), "data".to_owned())].into(),
            resource_arn: "arn:c".into()
        })
    );
    assert_eq!(
        native(&["untag-resource", "--resource-arn", "arn:c", "--tag-keys", "team"]),
        Request::from(UntagResourceInput { tag_keys: vec!["team".into()], resource_arn: "arn:c".into() })
    );
    assert_eq!(
        native(&["list-tags-for-resource", "--resource-arn", "arn:c"]),
        Request::from(ListTagsForResourceInput { resource_arn: "arn:c".into() })
    );
    assert!(parse(&["untag-resource", "--resource-arn", "arn:c"]).is_err());
}

#[test]
fn produce_and_consume_write_to_the_leaders_with_route_direct() {
    use sluice_client::transport::Endpoint;
    let Command::Produce(args) = parse(&["produce", "--stream-name", "s", "--route", "direct"]).unwrap().command else {
        panic!("not produce")
    };
    assert_eq!(args.transport.endpoint("h:1"), Endpoint::Routed(vec!["h:1".into()]));
    let Command::Consume(args) = parse(&["consume", "--stream-name", "s"]).unwrap().command else {
        panic!("not consume")
    };
    assert_eq!(args.transport.endpoint("h:1"), Endpoint::Native("h:1".into()));
    // Routing is the native protocol's.
    assert!(parse(&["produce", "--stream-name", "s", "--http", "--route", "direct"]).is_err());
}
