//! The configuration: AWS's member names checked against botocore's models (from PyPI, in
//! `.venv`), AWS's error types and texts, and the defaults.

mod support;

use std::io::Read;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_firehose::channel::{self, CreateChannelInput};
use sluice_firehose::config::CreateDeliveryStreamInput;
use sluice_firehose::plan::{DeliveryPlan, Destination};
use sluice_firehose::{validate, ErrorType};
use support::*;

fn model(service: &str, version: &str) -> Value {
    let path =
        root().join(format!(".venv/lib/python3.11/site-packages/botocore/data/{service}/{version}/service-2.json.gz"));
    let file =
        std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}: run firehose/tests/setup.sh", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut text).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Checks that every member of `value` exists, spelled the same, in `shape` of `model`
/// (recursively), except Sluice's documented `SluiceColumns`.
fn check_names(model: &Value, shape: &str, value: &Value, path: &str) {
    let s = &model["shapes"][shape];
    match value {
        Value::Object(map) => {
            if s["type"] == "map" {
                return;
            }
            assert_eq!(s["type"], "structure", "{path} is a structure in the model");
            for (k, v) in map {
                if k == "SluiceColumns" {
                    assert_eq!(shape, "SchemaConfiguration", "SluiceColumns lives only in SchemaConfiguration");
                    continue;
                }
                let member = &s["members"][k];
                assert!(member.is_object(), "{path}.{k} is not a member of {shape} in botocore's model");
                check_names(model, member["shape"].as_str().unwrap(), v, &format!("{path}.{k}"));
            }
        }
        Value::Array(items) => {
            let member = s["member"]["shape"].as_str().unwrap_or_else(|| panic!("{path} is a list in the model"));
            for item in items {
                check_names(model, member, item, path);
            }
        }
        _ => {}
    }
}

fn full_firehose_request() -> Value {
    json!({
        "DeliveryStreamName": "orders",
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {"KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders", "RoleARN": "arn:aws:iam::123456789012:role/r"},
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::123456789012:role/r",
            "BucketARN": "arn:aws:s3:::lake",
            "Prefix": "orders/c=!{partitionKeyFromQuery:c}/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
            "CompressionFormat": "UNCOMPRESSED",
            "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
            "CloudWatchLoggingOptions": {"Enabled": false, "LogGroupName": "g", "LogStreamName": "s"},
            "ProcessingConfiguration": {"Enabled": true, "Processors": [
                {"Type": "MetadataExtraction", "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{c: .c}"},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
                {"Type": "AppendDelimiterToRecord", "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "Cg=="}]}]},
            "S3BackupMode": "Enabled",
            "S3BackupConfiguration": {"RoleARN": "arn:aws:iam::123456789012:role/r", "BucketARN": "arn:aws:s3:::backup", "Prefix": "raw/",
                                      "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300}, "CompressionFormat": "GZIP"},
            "DataFormatConversionConfiguration": {
                "Enabled": true,
                "SchemaConfiguration": {"SluiceColumns": [{"Name": "c", "Type": "string", "Comment": "customer"}], "Region": "us-east-1"},
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {"ConvertDotsInJsonKeysToUnderscores": true, "CaseInsensitive": true, "ColumnToJsonKeyMappings": {"c": "C"}}}},
                "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"BlockSizeBytes": 268435456, "PageSizeBytes": 1048576, "Compression": "SNAPPY", "EnableDictionaryCompression": true, "MaxPaddingBytes": 0, "WriterVersion": "V1"}}}
            },
            "DynamicPartitioningConfiguration": {"Enabled": true, "RetryOptions": {"DurationInSeconds": 300}},
            "FileExtension": ".parquet",
            "CustomTimeZone": "UTC"
        },
        "Tags": [{"Key": "team", "Value": "data"}]
    })
}

fn full_http_request() -> Value {
    json!({
        "DeliveryStreamName": "to-http",
        "DeliveryStreamType": "DirectPut",
        "DirectPutSourceConfiguration": {"ThroughputHintInMBs": 5},
        "HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": "https://receiver.example.com/firehose", "Name": "receiver", "AccessKey": "k"},
            "BufferingHints": {"SizeInMBs": 4, "IntervalInSeconds": 60},
            "CloudWatchLoggingOptions": {"Enabled": false},
            "RequestConfiguration": {"ContentEncoding": "GZIP", "CommonAttributes": [{"AttributeName": "env", "AttributeValue": "prod"}]},
            "ProcessingConfiguration": {"Enabled": false},
            "RoleARN": "arn:aws:iam::123456789012:role/r",
            "RetryOptions": {"DurationInSeconds": 300},
            "S3BackupMode": "FailedDataOnly",
            "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/r", "BucketARN": "arn:aws:s3:::errors", "CompressionFormat": "GZIP"}
        }
    })
}

#[test]
fn member_names_are_botocores() {
    let m = model("firehose", "2015-08-04");
    assert_eq!(m["metadata"]["targetPrefix"], "Firehose_20150804");
    for request in [full_firehose_request(), full_http_request()] {
        check_names(&m, "CreateDeliveryStreamInput", &request, "");
        // And they survive a round trip through the Rust types unchanged.
        let parsed: CreateDeliveryStreamInput = serde_json::from_value(request.clone()).unwrap();
        assert!(parsed.other.is_empty(), "every member is known: {:?}", parsed.other.keys());
        assert_eq!(serde_json::to_value(&parsed).unwrap(), request);
        validate::create_delivery_stream(&parsed).unwrap();
    }
    let k = model("kinesis", "2013-12-02");
    let channel = channel_request();
    check_names(&k, "CreateChannelInput", &channel, "");
    let parsed: CreateChannelInput = serde_json::from_value(channel.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), channel);
}

fn refusal(request: Value) -> (ErrorType, String) {
    let parsed: CreateDeliveryStreamInput = serde_json::from_value(request).unwrap();
    let e = validate::create_delivery_stream(&parsed).unwrap_err();
    (e.error_type, e.message)
}

fn extended(extra: Value) -> Value {
    let mut e = json!({"RoleARN": "arn:aws:iam::123456789012:role/r", "BucketARN": "arn:aws:s3:::b"});
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    json!({"DeliveryStreamName": "s", "ExtendedS3DestinationConfiguration": e})
}

#[test]
fn shape_violations_are_validation_exceptions_in_aws_words() {
    assert_eq!(
        refusal(extended(json!({"BufferingHints": {"SizeInMBs": 200}}))),
        (ErrorType::ValidationException, "1 validation error detected: Value '200' at 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to satisfy constraint: Member must have value less than or equal to 128".into())
    );
    let (t, m) = refusal(json!({"DeliveryStreamName": "bad name!", "ExtendedS3DestinationConfiguration": {
        "RoleARN": "arn:aws:iam::123456789012:role/r", "BucketARN": "arn:aws:s3:::b", "BufferingHints": {"IntervalInSeconds": 901}, "CompressionFormat": "LZ4"}}));
    assert_eq!(t, ErrorType::ValidationException);
    assert!(m.starts_with("3 validation errors detected: Value 'bad name!' at 'deliveryStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "), "{m}");
    assert!(m.contains("Value '901' at 'extendedS3DestinationConfiguration.bufferingHints.intervalInSeconds' failed to satisfy constraint: Member must have value less than or equal to 900"), "{m}");
    assert!(m.contains("Value 'LZ4' at 'extendedS3DestinationConfiguration.compressionFormat' failed to satisfy constraint: Member must satisfy enum value set: [UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY]"), "{m}");
    let (t, m) = refusal(extended(json!({"BucketARN": "bucket"})));
    assert_eq!(t, ErrorType::ValidationException);
    assert!(m.contains("at 'extendedS3DestinationConfiguration.bucketARN'"), "{m}");
    let (t, m) = refusal(json!({"DeliveryStreamName": "h", "HttpEndpointDestinationConfiguration": {
        "EndpointConfiguration": {"Url": "ftp://x"}, "RetryOptions": {"DurationInSeconds": 7201},
        "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/r", "BucketARN": "arn:aws:s3:::b"}}}));
    assert_eq!(t, ErrorType::ValidationException);
    assert!(m.starts_with("2 validation errors detected"), "{m}");
    assert!(m.contains("'httpEndpointDestinationConfiguration.endpointConfiguration.url'"), "{m}");
    assert!(m.contains("'httpEndpointDestinationConfiguration.retryOptions.durationInSeconds' failed to satisfy constraint: Member must have value less than or equal to 7200"), "{m}");
}

#[test]
fn inconsistent_members_are_invalid_argument_exceptions() {
    let cases = [
        (
            extended(json!({"Prefix": "a/!{timestamp:yyyy}/"})),
            "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions.",
        ),
        (
            extended(json!({"Prefix": "a/", "ErrorOutputPrefix": "e/!{timestamp:yyyy}/"})),
            "must contain at least one !{firehose:error-output-type}",
        ),
        (
            extended(json!({"Prefix": "a/!{firehose:error-output-type}/", "ErrorOutputPrefix": "e/"})),
            "Prefix cannot contain !{firehose:error-output-type}",
        ),
        (
            extended(
                json!({"Prefix": "a/", "ErrorOutputPrefix": "e/", "DynamicPartitioningConfiguration": {"Enabled": true}, "BufferingHints": {"SizeInMBs": 64}}),
            ),
            "must contain at least one partitionKeyFromQuery or partitionKeyFromLambda",
        ),
        (
            extended(
                json!({"Prefix": "a/!{partitionKeyFromQuery:k}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}"}),
            ),
            "require DynamicPartitioningConfiguration to be enabled",
        ),
        (
            extended(
                json!({"Prefix": "a/!{partitionKeyFromQuery:k}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}", "DynamicPartitioningConfiguration": {"Enabled": true}, "BufferingHints": {"SizeInMBs": 64}}),
            ),
            "requires a processor of type MetadataExtraction",
        ),
        (
            extended(
                json!({"Prefix": "a/!{partitionKeyFromQuery:k}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}", "DynamicPartitioningConfiguration": {"Enabled": true}, "BufferingHints": {"SizeInMBs": 5},
            "ProcessingConfiguration": {"Processors": [{"Type": "MetadataExtraction", "Parameters": [{"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{k: .k}"}]}]}}),
            ),
            "must be at least 64",
        ),
        (
            extended(
                json!({"Prefix": "a/!{partitionKeyFromQuery:k}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}", "DynamicPartitioningConfiguration": {"Enabled": true}, "BufferingHints": {"SizeInMBs": 64},
            "ProcessingConfiguration": {"Processors": [{"Type": "MetadataExtraction", "Parameters": [{"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{k: .k"}]}]}}),
            ),
            "MetadataExtractionQuery '{k: .k' is invalid",
        ),
        (
            extended(
                json!({"CompressionFormat": "GZIP", "BufferingHints": {"SizeInMBs": 64}, "DataFormatConversionConfiguration": {"SchemaConfiguration": {"SluiceColumns": []}, "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}}}),
            ),
            "CompressionFormat must be UNCOMPRESSED",
        ),
        (
            extended(
                json!({"DataFormatConversionConfiguration": {"SchemaConfiguration": {"DatabaseName": "db", "TableName": "t"}, "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}}}),
            ),
            "SchemaConfiguration.RoleARN is required",
        ),
        (
            extended(
                json!({"DataFormatConversionConfiguration": {"SchemaConfiguration": {"TableName": "t", "RoleARN": "arn:aws:iam::123456789012:role/x"}, "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}}}),
            ),
            "SchemaConfiguration.DatabaseName is required",
        ),
        (
            extended(
                json!({"DataFormatConversionConfiguration": {"SchemaConfiguration": {"DatabaseName": "db", "TableName": "t", "SluiceColumns": [{"Name": "a", "Type": "int"}]}, "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}}}),
            ),
            "either an AWS Glue table (DatabaseName, TableName) or SluiceColumns, not both",
        ),
        (
            extended(
                json!({"DataFormatConversionConfiguration": {"OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}}}),
            ),
            "SchemaConfiguration is required",
        ),
        (
            extended(
                json!({"DataFormatConversionConfiguration": {"SchemaConfiguration": {"SluiceColumns": [{"Name": "m", "Type": "map<string,int>"}]}, "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}}}),
            ),
            "which Sluice does not convert to",
        ),
        (
            extended(
                json!({"DataFormatConversionConfiguration": {"OutputFormatConfiguration": {"Serializer": {"OrcSerDe": {}}}}}),
            ),
            "OrcSerDe is not supported by Sluice yet",
        ),
        (extended(json!({"S3BackupMode": "Enabled"})), "S3BackupConfiguration is required"),
        (extended(json!({"CustomTimeZone": "America/New_York"})), "CustomTimeZone 'America/New_York' is not supported"),
        (
            extended(json!({"ProcessingConfiguration": {"Processors": [{"Type": "Lambda"}]}})),
            "requires parameter LambdaArn",
        ),
        (
            extended(json!({"ProcessingConfiguration": {"Processors": [{"Type": "Decompression"}]}})),
            "Decompression is not supported by Sluice yet",
        ),
        (
            json!({"DeliveryStreamName": "s", "DeliveryStreamType": "KinesisStreamAsSource", "ExtendedS3DestinationConfiguration": {"RoleARN": "arn:aws:iam::123456789012:role/r", "BucketARN": "arn:aws:s3:::b"}}),
            "KinesisStreamSourceConfiguration is required",
        ),
        (
            json!({"DeliveryStreamName": "s"}),
            "Exactly one destination configuration must be specified; none was given.",
        ),
        (
            json!({"DeliveryStreamName": "s", "RedshiftDestinationConfiguration": {}}),
            "RedshiftDestinationConfiguration is not supported by Sluice",
        ),
    ];
    for (request, want) in cases {
        let (t, m) = refusal(request.clone());
        assert_eq!(t, ErrorType::InvalidArgumentException, "{request}: {m}");
        assert!(m.contains(want), "{request}\n  got:  {m}\n  want: {want}");
    }
}

fn plan_of(request: Value) -> DeliveryPlan {
    let dir = tempfile::tempdir().unwrap();
    let env = dir_env(dir.path(), &["b", "backup", "errors"]);
    DeliveryPlan::from_create(&serde_json::from_value(request).unwrap(), 1, &env).unwrap()
}

#[test]
fn aws_defaults() {
    let Destination::S3(s3) = plan_of(extended(json!({}))).destination else { panic!() };
    assert_eq!(s3.main.buffer.size_bytes, 5 << 20);
    assert_eq!(s3.main.buffer.interval, Duration::from_secs(300));
    let Destination::S3(s3) = plan_of(extended(json!({"DataFormatConversionConfiguration": {"SchemaConfiguration": {"SluiceColumns": [{"Name": "a", "Type": "int"}]}, "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}}}))).destination else { panic!() };
    assert_eq!(s3.main.buffer.size_bytes, 128 << 20, "format conversion raises the default size");
    assert_eq!(s3.main.extension, ".parquet");
    let Destination::Http(h) = plan_of(json!({"DeliveryStreamName": "h", "HttpEndpointDestinationConfiguration": {
        "EndpointConfiguration": {"Url": "https://x"},
        "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/r", "BucketARN": "arn:aws:s3:::errors"}}}))
    .destination
    else {
        panic!()
    };
    assert_eq!(h.buffer.size_bytes, 5 << 20);
    assert_eq!(h.buffer.interval, Duration::from_secs(300));
    assert_eq!(h.retry_duration, Duration::from_secs(300));
    assert!(h.backup.is_none(), "FailedDataOnly is the default");
}

fn channel_request() -> Value {
    json!({
        "ChannelName": "events-to-s3",
        "ServiceExecutionRoleARN": "arn:aws:iam::123456789012:role/channel",
        "StreamConfigurationList": [{"StreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/events", "RecordConfiguration": {"RecordFormatType": "JSON"}}],
        "S3DestinationConfiguration": {
            "DataFreshnessInSeconds": 300,
            "DeadLetterQueueS3Configuration": {"BucketARN": "arn:aws:s3:::dlq", "ExpectedBucketOwner": "123456789012", "ErrorOutputPrefix": "dead/"},
            "StorageConfiguration": {"BucketARN": "arn:aws:s3:::lake", "ExpectedBucketOwner": "123456789012", "OutputKeyTemplate": "events/!{timestamp:yyyy/MM/dd}/", "StorageClass": "STANDARD", "CompressionType": "GZIP"}
        },
        "Tags": {"team": "data"}
    })
}

#[test]
fn channels_validate_with_the_kinesis_model() {
    let ok: CreateChannelInput = serde_json::from_value(channel_request()).unwrap();
    channel::validate_create(&ok).unwrap();
    let mut bad = channel_request();
    bad["S3DestinationConfiguration"]["StorageConfiguration"]["CompressionType"] = json!("SNAPPY");
    bad["S3DestinationConfiguration"]["StorageConfiguration"]["ExpectedBucketOwner"] = json!("123");
    let e = channel::validate_create(&serde_json::from_value(bad).unwrap()).unwrap_err();
    assert_eq!(e.error_type, ErrorType::ValidationException);
    assert!(e.message.starts_with("3 validation errors detected"), "{}", e.message);
    assert!(e.message.contains("Value 'SNAPPY' at 's3DestinationConfiguration.storageConfiguration.compressionType' failed to satisfy constraint: Member must satisfy enum value set: [NONE, GZIP, ZSTD]"), "{}", e.message);
    let mut both = channel_request();
    both["S3TablesDestinationConfiguration"] = json!({
        "DeadLetterQueueS3Configuration": {"BucketARN": "arn:aws:s3:::dlq", "ExpectedBucketOwner": "123456789012"},
        "S3TablesConfigurationList": [{"TableBucketARN": "arn:aws:s3tables:us-east-1:123456789012:bucket/tables", "Namespace": "ns", "TableName": "events", "CompressionType": "ZSTD"}]});
    let e = channel::validate_create(&serde_json::from_value(both.clone()).unwrap()).unwrap_err();
    assert_eq!(e.error_type, ErrorType::InvalidArgumentException);
    assert_eq!(
        e.message,
        "You must specify either S3DestinationConfiguration or S3TablesDestinationConfiguration, but not both."
    );
    let mut fresh = channel_request();
    fresh["S3DestinationConfiguration"]["DataFreshnessInSeconds"] = json!(60);
    let e = channel::validate_create(&serde_json::from_value(fresh).unwrap()).unwrap_err();
    assert!(e.message.contains("between 300 and 900"), "{}", e.message);
    // Iceberg tables: validated; planned only with the `iceberg` feature, and only to a
    // configured bucket (firehose/tests/iceberg.rs plans and runs them).
    both.as_object_mut().unwrap().remove("S3DestinationConfiguration");
    let tables: CreateChannelInput = serde_json::from_value(both).unwrap();
    channel::validate_create(&tables).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = dir_env(dir.path(), &["lake", "dlq"]);
    let e = channel::plan(&tables, &env, None).unwrap_err();
    #[cfg(not(feature = "iceberg"))]
    assert!(e.to_string().contains("built without them (cargo feature `iceberg`)"), "{e}");
    #[cfg(feature = "iceberg")]
    assert!(e.to_string().contains("bucket tables is not configured"), "{e}");
    let plan = channel::plan(&ok, &env, None).unwrap();
    let Destination::S3(s3) = plan.destination else { panic!() };
    assert_eq!(s3.main.buffer.interval, Duration::from_secs(300));
    assert_eq!(plan.arn, "arn:aws:kinesis:us-east-1:000000000000:channel/events-to-s3");
}
