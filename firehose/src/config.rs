//! The configuration of a delivery stream, with AWS's member names.
//!
//! Every struct here is a shape of botocore's `firehose/2015-08-04` service model, with the
//! members Sluice delivers, spelled exactly as the model spells them (`SizeInMBs`, `BucketARN`,
//! `OpenXJsonSerDe`), so the JSON body of a `CreateDeliveryStream` call deserializes into
//! [`CreateDeliveryStreamInput`] unchanged. Enumerations are kept as strings here so that
//! [`crate::validate`] can answer an unknown value with AWS's own ValidationException text;
//! [`crate::plan`] turns a validated configuration into typed values.
//!
//! One member is Sluice's own: [`SchemaConfiguration::sluice_columns`] (`SluiceColumns`), the
//! columns of the Parquet schema given inline instead of naming an AWS Glue table (which
//! sluiced's own Data Catalog serves, `crate::glue`). Everything else is AWS's.
//!
//! Members of destinations Sluice does not deliver to (Redshift, OpenSearch, Splunk, Snowflake,
//! Iceberg through Firehose, MSK and database sources) are collected in `other` so the API layer
//! can refuse them by name instead of ignoring them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `CreateDeliveryStreamInput`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateDeliveryStreamInput {
    pub delivery_stream_name: String,
    /// `DirectPut` (the default) or `KinesisStreamAsSource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_stream_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_put_source_configuration: Option<DirectPutSourceConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_stream_source_configuration: Option<KinesisStreamSourceConfiguration>,
    /// Deprecated by AWS in favour of the extended one; accepted and treated as an extended S3
    /// destination with no processing, conversion or partitioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_destination_configuration: Option<S3DestinationConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_s3_destination_configuration: Option<ExtendedS3DestinationConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_endpoint_destination_configuration: Option<HttpEndpointDestinationConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    /// Members of the model Sluice does not deliver to, by name (see the module docs).
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `Tag`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `DirectPutSourceConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectPutSourceConfiguration {
    /// 1–100; a hint for provisioning, which Sluice records and does not need.
    #[serde(rename = "ThroughputHintInMBs")]
    pub throughput_hint_in_mbs: i64,
}

/// `KinesisStreamSourceConfiguration`: read a Sluice stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KinesisStreamSourceConfiguration {
    #[serde(rename = "KinesisStreamARN")]
    pub kinesis_stream_arn: String,
    /// Required by AWS's model; Sluice checks its form and does not assume roles.
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
}

/// `BufferingHints` (and `HttpEndpointBufferingHints`, which has the same members).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferingHints {
    #[serde(rename = "SizeInMBs", default, skip_serializing_if = "Option::is_none")]
    pub size_in_mbs: Option<i64>,
    #[serde(rename = "IntervalInSeconds", default, skip_serializing_if = "Option::is_none")]
    pub interval_in_seconds: Option<i64>,
}

/// `CloudWatchLoggingOptions`: accepted and kept; Sluice logs through its own log instead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CloudWatchLoggingOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_stream_name: Option<String>,
}

/// `S3DestinationConfiguration`: the plain S3 destination, also used as the S3 backup of an
/// extended S3 destination and as the error/backup bucket of an HTTP endpoint destination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3DestinationConfiguration {
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
    #[serde(rename = "BucketARN")]
    pub bucket_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_output_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    /// `UNCOMPRESSED` (default), `GZIP`, `ZIP`, `Snappy`, `HADOOP_SNAPPY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_format: Option<String>,
    /// Accepted and kept (`NoEncryptionConfig` / `KMSEncryptionConfig`); encryption at rest of
    /// delivered objects is the store's business.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_configuration: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<CloudWatchLoggingOptions>,
}

/// `ExtendedS3DestinationConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExtendedS3DestinationConfiguration {
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
    #[serde(rename = "BucketARN")]
    pub bucket_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_output_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_configuration: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<CloudWatchLoggingOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<ProcessingConfiguration>,
    /// `Disabled` (default) or `Enabled`: back up the source records, before processing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_backup_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_backup_configuration: Option<S3DestinationConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_format_conversion_configuration: Option<DataFormatConversionConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_partitioning_configuration: Option<DynamicPartitioningConfiguration>,
    /// Replaces the default extension of delivered objects (`.gz`, `.parquet`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_extension: Option<String>,
    /// Time zone of the timestamps in prefixes and object names; Sluice supports `UTC` (the
    /// default) only. Unfinished: other zones are refused by `validate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_time_zone: Option<String>,
}

/// `ProcessingConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessingConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processors: Option<Vec<Processor>>,
}

/// `Processor`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Processor {
    /// `Lambda`, `MetadataExtraction`, `AppendDelimiterToRecord`, `RecordDeAggregation`,
    /// `Decompression`, `CloudWatchLogProcessing`.
    #[serde(rename = "Type")]
    pub processor_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Vec<ProcessorParameter>>,
}

/// `ProcessorParameter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessorParameter {
    pub parameter_name: String,
    pub parameter_value: String,
}

impl Processor {
    /// The value of parameter `name`, if given.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.iter().flatten().find(|p| p.parameter_name == name).map(|p| p.parameter_value.as_str())
    }
}

/// `DataFormatConversionConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataFormatConversionConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_configuration: Option<SchemaConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_format_configuration: Option<InputFormatConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format_configuration: Option<OutputFormatConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `SchemaConfiguration`, plus Sluice's `SluiceColumns`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SchemaConfiguration {
    #[serde(rename = "RoleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// **Sluice extension.** The table's columns, inline, in AWS Glue's `Column` shape
    /// (`Name`, `Type` as a Hive type name, optional `Comment`), instead of the Glue table
    /// named by `DatabaseName`/`TableName` (never both). It stays for the standalone
    /// `sluice-firehose` binary, which has no Data Catalog, and because Kinesis channels take
    /// the same member to create their Iceberg tables (`crate::channel`).
    #[serde(rename = "SluiceColumns", default, skip_serializing_if = "Option::is_none")]
    pub sluice_columns: Option<Vec<Column>>,
}

/// AWS Glue's `Column` shape, used by [`SchemaConfiguration::sluice_columns`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Column {
    pub name: String,
    /// A Hive type name: `string`, `boolean`, `tinyint`, `smallint`, `int`, `bigint`, `float`,
    /// `double`, `timestamp`, `date`, `binary`.
    #[serde(rename = "Type")]
    pub column_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `InputFormatConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputFormatConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deserializer: Option<Deserializer>,
}

/// `Deserializer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deserializer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_x_json_ser_de: Option<OpenXJsonSerDe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hive_json_ser_de: Option<HiveJsonSerDe>,
}

/// `OpenXJsonSerDe`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenXJsonSerDe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert_dots_in_json_keys_to_underscores: Option<bool>,
    /// Default true: JSON keys match columns case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_insensitive: Option<bool>,
    /// Column name → JSON key, for keys that are not valid column names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_to_json_key_mappings: Option<BTreeMap<String, String>>,
}

/// `HiveJsonSerDe`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HiveJsonSerDe {
    /// Joda-Time patterns, or `millis`. Unfinished: Sluice parses ISO-8601 timestamps and epoch
    /// seconds/milliseconds, and refuses other patterns at validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_formats: Option<Vec<String>>,
}

/// `OutputFormatConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputFormatConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serializer: Option<Serializer>,
}

/// `Serializer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Serializer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parquet_ser_de: Option<ParquetSerDe>,
    /// Unfinished: ORC output is refused at validation (no maintained Rust ORC writer is in
    /// the workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orc_ser_de: Option<serde_json::Value>,
}

/// `ParquetSerDe`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParquetSerDe {
    /// HDFS block size AWS pads row groups to (min 64 MiB); Sluice caps row groups at this many
    /// bytes of input instead (there is no HDFS block to align with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size_bytes: Option<i64>,
    /// Parquet page size (min 64 KiB; default 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size_bytes: Option<i64>,
    /// `UNCOMPRESSED`, `GZIP`, `SNAPPY` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dictionary_compression: Option<bool>,
    /// Accepted; meaningless without HDFS block alignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_padding_bytes: Option<i64>,
    /// `V1` (default) or `V2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_version: Option<String>,
}

/// `DynamicPartitioningConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DynamicPartitioningConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `RetryOptions` (and `HttpEndpointRetryOptions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetryOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_in_seconds: Option<i64>,
}

/// `HttpEndpointDestinationConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpEndpointDestinationConfiguration {
    pub endpoint_configuration: HttpEndpointConfiguration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<CloudWatchLoggingOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_configuration: Option<HttpEndpointRequestConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<ProcessingConfiguration>,
    #[serde(rename = "RoleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    /// `FailedDataOnly` (default) or `AllData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_backup_mode: Option<String>,
    pub s3_configuration: S3DestinationConfiguration,
    /// Unfinished: refused at validation until the security issue's key store exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager_configuration: Option<serde_json::Value>,
}

/// `HttpEndpointConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpEndpointConfiguration {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
}

/// `HttpEndpointRequestConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpEndpointRequestConfiguration {
    /// `NONE` (default) or `GZIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_attributes: Option<Vec<HttpEndpointCommonAttribute>>,
}

/// `HttpEndpointCommonAttribute`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpEndpointCommonAttribute {
    pub attribute_name: String,
    pub attribute_value: String,
}
