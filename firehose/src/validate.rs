//! Validation of a `CreateDeliveryStream` configuration the way AWS answers it.
//!
//! Two stages, as AWS has them: first every member is checked against its shape in botocore's
//! model (length, range, pattern, enum, required), and all violations are reported together
//! as one `ValidationException` ("2 validation errors detected: Value '200' at
//! 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to satisfy constraint:
//! Member must have value less than or equal to 128; …"). Then the members are checked against
//! each other, and the first problem is an `InvalidArgumentException`.
//!
//! Sluice-specific refusals (a destination Sluice does not deliver to, a schema naming both a
//! Glue table and inline columns, a time zone other than UTC) are InvalidArgumentExceptions whose text says
//! it is Sluice that refuses.

use std::sync::LazyLock;

use regex::Regex;

use crate::compress::Compression;
use crate::config::*;
use crate::error::{validation_error, ApiError, Violation};
use crate::limits::*;
use crate::prefix::{PrefixKind, PrefixTemplate};

/// Collects shape violations with AWS's paths and sentences.
#[derive(Default)]
pub struct Checker {
    pub violations: Vec<Violation>,
}

fn camel(member: &str) -> String {
    let mut chars = member.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Joins a path and a member as AWS does (`a.b`, first letter of each member lowercased).
pub fn at(path: &str, member: &str) -> String {
    if path.is_empty() {
        camel(member)
    } else {
        format!("{path}.{}", camel(member))
    }
}

impl Checker {
    fn push(&mut self, path: String, value: Option<String>, constraint: String) {
        self.violations.push(Violation { path, value, constraint });
    }

    pub fn required<T>(&mut self, path: String, value: &Option<T>) {
        if value.is_none() {
            self.push(path, None, "Member must not be null".into());
        }
    }

    pub fn string(&mut self, path: String, value: &str, min: usize, max: usize, pattern: Option<&Regex>) {
        let chars = value.chars().count();
        if chars < min {
            self.push(
                path.clone(),
                Some(value.into()),
                format!("Member must have length greater than or equal to {min}"),
            );
        }
        if chars > max {
            self.push(path.clone(), Some(value.into()), format!("Member must have length less than or equal to {max}"));
        }
        if let Some(re) = pattern {
            if !re.is_match(value) {
                let shown = model_text(re);
                self.push(path, Some(value.into()), format!("Member must satisfy regular expression pattern: {shown}"));
            }
        }
    }

    pub fn range(&mut self, path: String, value: i64, min: i64, max: Option<i64>) {
        if value < min {
            self.push(
                path.clone(),
                Some(value.to_string()),
                format!("Member must have value greater than or equal to {min}"),
            );
        }
        if let Some(max) = max {
            if value > max {
                self.push(path, Some(value.to_string()), format!("Member must have value less than or equal to {max}"));
            }
        }
    }

    pub fn one_of(&mut self, path: String, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.push(
                path,
                Some(value.into()),
                format!("Member must satisfy enum value set: [{}]", allowed.join(", ")),
            );
        }
    }

    pub fn count(&mut self, path: String, len: usize, min: usize, max: usize) {
        if len < min {
            self.push(
                path.clone(),
                Some(format!("[{len} items]")),
                format!("Member must have length greater than or equal to {min}"),
            );
        }
        if len > max {
            self.push(
                path,
                Some(format!("[{len} items]")),
                format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(validation_error(&self.violations))
        }
    }
}

/// What `\w` means in the model's (Java) patterns: ASCII word characters. Rust's `\w` is
/// Unicode's, whose compiled form for `[\w.-]{1,255}` exceeds the regex size limit.
const WORD_ASCII: &str = "[0-9A-Za-z_]";

/// A whole-string regex from a model pattern.
pub fn pattern(p: &str) -> Regex {
    Regex::new(&format!("^(?:{})$", p.replace(r"\w", WORD_ASCII))).expect("model patterns compile")
}

/// The model's text of a pattern made by [`pattern`], for error messages.
fn model_text(re: &Regex) -> String {
    re.as_str().trim_start_matches("^(?:").trim_end_matches(")$").replace(WORD_ASCII, r"\w")
}

static NAME: LazyLock<Regex> = LazyLock::new(|| pattern("[a-zA-Z0-9_.-]+"));
static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| pattern(r"arn:.*:iam::\d{12}:role/[a-zA-Z_0-9+=,.@\-_/]+"));
static BUCKET_ARN: LazyLock<Regex> = LazyLock::new(|| pattern(r"arn:.*:s3:::[\w\.\-]{1,255}"));
static KINESIS_STREAM_ARN: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"arn:.*:kinesis:[a-zA-Z0-9\-]+:\d{12}:stream/[a-zA-Z0-9_.-]+"));
static FILE_EXTENSION: LazyLock<Regex> = LazyLock::new(|| pattern(r"|\.[0-9a-z!\-_.*'()]+"));
static TIME_ZONE: LazyLock<Regex> = LazyLock::new(|| pattern(r"|[a-zA-Z/_]+"));
static NOT_BLANK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\S").expect("compiles"));
/// AWS requires `https://`; Sluice also delivers to `http://` endpoints (self-hosted receivers
/// on a private network), a documented deviation.
static HTTP_URL: LazyLock<Regex> = LazyLock::new(|| pattern("https?://.*"));
static NON_EMPTY_NO_WHITESPACE: LazyLock<Regex> = LazyLock::new(|| pattern(r"\S+"));

const DELIVERY_STREAM_TYPES: &[&str] = &["DirectPut", "KinesisStreamAsSource", "MSKAsSource", "DatabaseAsSource"];
const COMPRESSION_FORMATS: &[&str] = &["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"];
const PROCESSOR_TYPES: &[&str] = &[
    "RecordDeAggregation",
    "Decompression",
    "CloudWatchLogProcessing",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
];
const PROCESSOR_PARAMETER_NAMES: &[&str] = &[
    "LambdaArn",
    "NumberOfRetries",
    "MetadataExtractionQuery",
    "JsonParsingEngine",
    "RoleArn",
    "BufferSizeInMBs",
    "BufferIntervalInSeconds",
    "SubRecordType",
    "Delimiter",
    "CompressionFormat",
    "DataMessageExtraction",
];

/// Dynamic partitioning and format conversion need at least this buffer (AWS: 64 MiB).
pub const BUFFER_SIZE_MIB_MIN_DYNAMIC: i64 = 64;

/// Validates a `CreateDeliveryStream` request; `Ok` means it can be planned.
pub fn create_delivery_stream(input: &CreateDeliveryStreamInput) -> Result<(), ApiError> {
    let mut c = Checker::default();
    c.string(at("", "DeliveryStreamName"), &input.delivery_stream_name, 1, DELIVERY_STREAM_NAME_CHARS_MAX, Some(&NAME));
    if let Some(t) = &input.delivery_stream_type {
        c.one_of(at("", "DeliveryStreamType"), t, DELIVERY_STREAM_TYPES);
    }
    if let Some(d) = &input.direct_put_source_configuration {
        c.range(at("directPutSourceConfiguration", "ThroughputHintInMBs"), d.throughput_hint_in_mbs, 1, Some(100));
    }
    if let Some(k) = &input.kinesis_stream_source_configuration {
        let p = at("", "KinesisStreamSourceConfiguration");
        c.string(at(&p, "KinesisStreamARN"), &k.kinesis_stream_arn, 1, 512, Some(&KINESIS_STREAM_ARN));
        c.string(at(&p, "RoleARN"), &k.role_arn, 1, 512, Some(&ROLE_ARN));
    }
    if let Some(s3) = &input.s3_destination_configuration {
        shape_s3(&mut c, &at("", "S3DestinationConfiguration"), s3);
    }
    if let Some(e) = &input.extended_s3_destination_configuration {
        shape_extended_s3(&mut c, &at("", "ExtendedS3DestinationConfiguration"), e);
    }
    if let Some(h) = &input.http_endpoint_destination_configuration {
        shape_http(&mut c, &at("", "HttpEndpointDestinationConfiguration"), h);
    }
    if let Some(tags) = &input.tags {
        c.count(at("", "Tags"), tags.len(), 1, 50);
        for (i, tag) in tags.iter().enumerate() {
            let p = format!("tags.{}", i + 1);
            c.string(at(&p, "Key"), &tag.key, 1, 128, None);
            if let Some(v) = &tag.value {
                c.string(at(&p, "Value"), v, 0, 256, None);
            }
        }
    }
    c.finish()?;
    semantics(input)
}

fn shape_buffering(c: &mut Checker, path: &str, b: &BufferingHints, size_max: i64) {
    if let Some(size) = b.size_in_mbs {
        c.range(at(path, "SizeInMBs"), size, BUFFER_SIZE_MIB_MIN as i64, Some(size_max));
    }
    if let Some(interval) = b.interval_in_seconds {
        c.range(
            at(path, "IntervalInSeconds"),
            interval,
            BUFFER_INTERVAL_S_MIN as i64,
            Some(BUFFER_INTERVAL_S_MAX as i64),
        );
    }
}

fn shape_s3(c: &mut Checker, path: &str, s3: &S3DestinationConfiguration) {
    c.string(at(path, "RoleARN"), &s3.role_arn, 1, 512, Some(&ROLE_ARN));
    c.string(at(path, "BucketARN"), &s3.bucket_arn, 1, 2048, Some(&BUCKET_ARN));
    if let Some(p) = &s3.prefix {
        c.string(at(path, "Prefix"), p, 0, PREFIX_CHARS_MAX, None);
    }
    if let Some(p) = &s3.error_output_prefix {
        c.string(at(path, "ErrorOutputPrefix"), p, 0, PREFIX_CHARS_MAX, None);
    }
    if let Some(b) = &s3.buffering_hints {
        shape_buffering(c, &at(path, "BufferingHints"), b, BUFFER_SIZE_MIB_MAX as i64);
    }
    if let Some(f) = &s3.compression_format {
        c.one_of(at(path, "CompressionFormat"), f, COMPRESSION_FORMATS);
    }
}

fn shape_processing(c: &mut Checker, path: &str, p: &ProcessingConfiguration) {
    for (i, processor) in p.processors.iter().flatten().enumerate() {
        let pp = format!("{}.{}", at(path, "Processors"), i + 1);
        c.one_of(at(&pp, "Type"), &processor.processor_type, PROCESSOR_TYPES);
        for (j, parameter) in processor.parameters.iter().flatten().enumerate() {
            let ppp = format!("{}.{}", at(&pp, "Parameters"), j + 1);
            c.one_of(at(&ppp, "ParameterName"), &parameter.parameter_name, PROCESSOR_PARAMETER_NAMES);
            c.string(at(&ppp, "ParameterValue"), &parameter.parameter_value, 1, 5120, None);
            if !NOT_BLANK.is_match(&parameter.parameter_value) && !parameter.parameter_value.is_empty() {
                c.push(
                    at(&ppp, "ParameterValue"),
                    Some(parameter.parameter_value.clone()),
                    "Member must satisfy regular expression pattern: ^(?!\\s*$).+".into(),
                );
            }
        }
    }
}

fn shape_extended_s3(c: &mut Checker, path: &str, e: &ExtendedS3DestinationConfiguration) {
    let base = S3DestinationConfiguration {
        role_arn: e.role_arn.clone(),
        bucket_arn: e.bucket_arn.clone(),
        prefix: e.prefix.clone(),
        error_output_prefix: e.error_output_prefix.clone(),
        buffering_hints: e.buffering_hints,
        compression_format: e.compression_format.clone(),
        ..Default::default()
    };
    shape_s3(c, path, &base);
    if let Some(p) = &e.processing_configuration {
        shape_processing(c, &at(path, "ProcessingConfiguration"), p);
    }
    if let Some(m) = &e.s3_backup_mode {
        c.one_of(at(path, "S3BackupMode"), m, &["Disabled", "Enabled"]);
    }
    if let Some(b) = &e.s3_backup_configuration {
        shape_s3(c, &at(path, "S3BackupConfiguration"), b);
    }
    if let Some(d) = &e.data_format_conversion_configuration {
        let dp = at(path, "DataFormatConversionConfiguration");
        if let Some(s) = &d.schema_configuration {
            let sp = at(&dp, "SchemaConfiguration");
            for (member, value) in [
                ("RoleARN", &s.role_arn),
                ("CatalogId", &s.catalog_id),
                ("DatabaseName", &s.database_name),
                ("TableName", &s.table_name),
                ("Region", &s.region),
                ("VersionId", &s.version_id),
            ] {
                if let Some(v) = value {
                    c.string(at(&sp, member), v, 1, 1024, Some(&NON_EMPTY_NO_WHITESPACE));
                }
            }
            for (i, column) in s.sluice_columns.iter().flatten().enumerate() {
                let cp = format!("{}.{}", at(&sp, "SluiceColumns"), i + 1);
                c.string(at(&cp, "Name"), &column.name, 1, 255, None);
                c.string(at(&cp, "Type"), &column.column_type, 0, 131072, None);
            }
        }
        if let Some(serde) = d
            .output_format_configuration
            .as_ref()
            .and_then(|o| o.serializer.as_ref())
            .and_then(|s| s.parquet_ser_de.as_ref())
        {
            let pp = format!("{}.serializer.parquetSerDe", at(&dp, "OutputFormatConfiguration"));
            if let Some(v) = serde.block_size_bytes {
                c.range(at(&pp, "BlockSizeBytes"), v, 67_108_864, None);
            }
            if let Some(v) = serde.page_size_bytes {
                c.range(at(&pp, "PageSizeBytes"), v, 65_536, None);
            }
            if let Some(v) = &serde.compression {
                c.one_of(at(&pp, "Compression"), v, &["UNCOMPRESSED", "GZIP", "SNAPPY"]);
            }
            if let Some(v) = serde.max_padding_bytes {
                c.range(at(&pp, "MaxPaddingBytes"), v, 0, None);
            }
            if let Some(v) = &serde.writer_version {
                c.one_of(at(&pp, "WriterVersion"), v, &["V1", "V2"]);
            }
        }
    }
    if let Some(d) = &e.dynamic_partitioning_configuration {
        if let Some(r) = d.retry_options.and_then(|r| r.duration_in_seconds) {
            c.range(
                format!("{}.retryOptions.durationInSeconds", at(path, "DynamicPartitioningConfiguration")),
                r,
                0,
                Some(RETRY_DURATION_S_MAX as i64),
            );
        }
    }
    if let Some(x) = &e.file_extension {
        c.string(at(path, "FileExtension"), x, 0, 128, Some(&FILE_EXTENSION));
    }
    if let Some(z) = &e.custom_time_zone {
        c.string(at(path, "CustomTimeZone"), z, 0, 50, Some(&TIME_ZONE));
    }
}

fn shape_http(c: &mut Checker, path: &str, h: &HttpEndpointDestinationConfiguration) {
    let ep = at(path, "EndpointConfiguration");
    c.string(at(&ep, "Url"), &h.endpoint_configuration.url, 1, 1000, Some(&HTTP_URL));
    if let Some(n) = &h.endpoint_configuration.name {
        c.string(at(&ep, "Name"), n, 1, 256, None);
    }
    if let Some(k) = &h.endpoint_configuration.access_key {
        c.string(at(&ep, "AccessKey"), k, 0, HTTP_ACCESS_KEY_CHARS_MAX, None);
    }
    if let Some(b) = &h.buffering_hints {
        shape_buffering(c, &at(path, "BufferingHints"), b, HTTP_BUFFER_SIZE_MIB_MAX as i64);
    }
    if let Some(r) = &h.request_configuration {
        let rp = at(path, "RequestConfiguration");
        if let Some(e) = &r.content_encoding {
            c.one_of(at(&rp, "ContentEncoding"), e, &["NONE", "GZIP"]);
        }
        if let Some(attrs) = &r.common_attributes {
            c.count(at(&rp, "CommonAttributes"), attrs.len(), 0, HTTP_COMMON_ATTRIBUTES_MAX);
            for (i, a) in attrs.iter().enumerate() {
                let ap = format!("{}.{}", at(&rp, "CommonAttributes"), i + 1);
                c.string(at(&ap, "AttributeName"), &a.attribute_name, 1, 256, None);
                c.string(at(&ap, "AttributeValue"), &a.attribute_value, 0, 1024, None);
            }
        }
    }
    if let Some(p) = &h.processing_configuration {
        shape_processing(c, &at(path, "ProcessingConfiguration"), p);
    }
    if let Some(r) = &h.role_arn {
        c.string(at(path, "RoleARN"), r, 1, 512, Some(&ROLE_ARN));
    }
    if let Some(d) = h.retry_options.and_then(|r| r.duration_in_seconds) {
        c.range(format!("{}.durationInSeconds", at(path, "RetryOptions")), d, 0, Some(RETRY_DURATION_S_MAX as i64));
    }
    if let Some(m) = &h.s3_backup_mode {
        c.one_of(at(path, "S3BackupMode"), m, &["FailedDataOnly", "AllData"]);
    }
    shape_s3(c, &at(path, "S3Configuration"), &h.s3_configuration);
}

/// The members checked against each other (InvalidArgumentException, first problem only).
fn semantics(input: &CreateDeliveryStreamInput) -> Result<(), ApiError> {
    if let Some(name) = input.other.keys().next() {
        return Err(bad(format!("{name} is not supported by Sluice: it delivers to ExtendedS3DestinationConfiguration, S3DestinationConfiguration and HttpEndpointDestinationConfiguration.")));
    }
    let stream_type = input.delivery_stream_type.as_deref().unwrap_or("DirectPut");
    match stream_type {
        "DirectPut" => {
            if input.kinesis_stream_source_configuration.is_some() {
                return Err(bad("KinesisStreamSourceConfiguration can only be specified when DeliveryStreamType is KinesisStreamAsSource."));
            }
        }
        "KinesisStreamAsSource" => {
            if input.kinesis_stream_source_configuration.is_none() {
                return Err(bad(
                    "KinesisStreamSourceConfiguration is required when DeliveryStreamType is KinesisStreamAsSource.",
                ));
            }
            if input.direct_put_source_configuration.is_some() {
                return Err(bad(
                    "DirectPutSourceConfiguration can only be specified when DeliveryStreamType is DirectPut.",
                ));
            }
        }
        other => {
            return Err(bad(format!(
                "DeliveryStreamType {other} is not supported by Sluice (DirectPut, KinesisStreamAsSource)."
            )))
        }
    }
    let destinations = [
        input.s3_destination_configuration.is_some(),
        input.extended_s3_destination_configuration.is_some(),
        input.http_endpoint_destination_configuration.is_some(),
    ];
    match destinations.iter().filter(|d| **d).count() {
        0 => return Err(bad("Exactly one destination configuration must be specified; none was given.")),
        1 => {}
        _ => return Err(bad("Exactly one destination configuration must be specified; more than one was given.")),
    }
    if let Some(s3) = &input.s3_destination_configuration {
        prefixes(s3.prefix.as_deref(), s3.error_output_prefix.as_deref(), false)?;
    }
    if let Some(e) = &input.extended_s3_destination_configuration {
        extended_s3(e)?;
    }
    if let Some(h) = &input.http_endpoint_destination_configuration {
        if h.secrets_manager_configuration.is_some() {
            return Err(bad("SecretsManagerConfiguration is not supported by Sluice yet; give the key in EndpointConfiguration.AccessKey."));
        }
        processing(h.processing_configuration.as_ref(), false)?;
        prefixes(h.s3_configuration.prefix.as_deref(), h.s3_configuration.error_output_prefix.as_deref(), false)?;
    }
    Ok(())
}

/// The prefix rules of the developer guide; returns the parsed prefix.
pub fn prefixes(
    prefix: Option<&str>,
    error_output_prefix: Option<&str>,
    dynamic: bool,
) -> Result<PrefixTemplate, ApiError> {
    let p = PrefixTemplate::parse(prefix.unwrap_or(""), PrefixKind::Prefix)?;
    let e = match error_output_prefix {
        Some(text) if !text.is_empty() => Some(PrefixTemplate::parse(text, PrefixKind::ErrorOutputPrefix)?),
        _ => None,
    };
    if p.has_expressions() && e.is_none() {
        return Err(bad("ErrorOutputPrefix cannot be null or empty when Prefix contains expressions."));
    }
    if let Some(e) = &e {
        if e.has_expressions() && !e.has_error_output_type() {
            return Err(bad("ErrorOutputPrefix contains expressions, so it must contain at least one !{firehose:error-output-type} expression."));
        }
    }
    if p.is_dynamic() && !dynamic {
        return Err(bad("Prefix contains partitionKeyFromQuery or partitionKeyFromLambda expressions, which require DynamicPartitioningConfiguration to be enabled."));
    }
    if dynamic && !p.is_dynamic() {
        return Err(bad("When DynamicPartitioningConfiguration is enabled, Prefix must contain at least one partitionKeyFromQuery or partitionKeyFromLambda expression."));
    }
    if dynamic && e.is_none() {
        return Err(bad("ErrorOutputPrefix is required when DynamicPartitioningConfiguration is enabled."));
    }
    Ok(p)
}

/// Checks the processors.
fn processing(p: Option<&ProcessingConfiguration>, dynamic: bool) -> Result<(), ApiError> {
    let Some(p) = p else { return Ok(()) };
    if p.enabled == Some(false) {
        return Ok(());
    }
    let mut lambdas = 0;
    for processor in p.processors.iter().flatten() {
        match processor.processor_type.as_str() {
            "Lambda" => {
                lambdas += 1;
                if processor.parameter("LambdaArn").is_none() {
                    return Err(bad("Processor of type Lambda requires parameter LambdaArn."));
                }
                if let Some(n) = processor.parameter("NumberOfRetries") {
                    match n.parse::<u32>() {
                        Ok(n) if n <= 300 => {}
                        _ => return Err(bad(format!("NumberOfRetries must be an integer between 0 and 300, not '{n}'."))),
                    }
                }
                if let Some(n) = processor.parameter("BufferSizeInMBs") {
                    match n.parse::<f64>() {
                        Ok(mib) if (0.2..=3.0).contains(&mib) => {}
                        _ => return Err(bad(format!("BufferSizeInMBs of a Lambda processor must be between 0.2 and 3, not '{n}'."))),
                    }
                }
                if let Some(n) = processor.parameter("BufferIntervalInSeconds") {
                    match n.parse::<u32>() {
                        Ok(s) if (0..=900).contains(&s) => {}
                        _ => return Err(bad(format!("BufferIntervalInSeconds of a Lambda processor must be between 0 and 900, not '{n}'."))),
                    }
                }
            }
            "MetadataExtraction" => {
                if !dynamic {
                    return Err(bad("Processor of type MetadataExtraction requires DynamicPartitioningConfiguration to be enabled."));
                }
                let Some(query) = processor.parameter("MetadataExtractionQuery") else {
                    return Err(bad("Processor of type MetadataExtraction requires parameter MetadataExtractionQuery."));
                };
                match processor.parameter("JsonParsingEngine") {
                    Some("JQ-1.6") | None => {}
                    Some(other) => return Err(bad(format!("JsonParsingEngine '{other}' is not supported; use JQ-1.6."))),
                }
                crate::partition::KeyQuery::compile(query)
                    .map_err(|why| bad(format!("MetadataExtractionQuery '{query}' is invalid: {why}.")))?;
            }
            "AppendDelimiterToRecord" => {
                if let Some(d) = processor.parameter("Delimiter") {
                    base64_delimiter(d)?;
                }
            }
            other => return Err(bad(format!("Processor of type {other} is not supported by Sluice yet (Lambda, MetadataExtraction, AppendDelimiterToRecord)."))),
        }
    }
    if lambdas > 1 {
        return Err(bad("At most one processor of type Lambda can be specified."));
    }
    Ok(())
}

/// `AppendDelimiterToRecord`'s `Delimiter` parameter: base64 of the delimiter bytes (default
/// `\n`).
pub fn base64_delimiter(value: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| ApiError::invalid_argument(format!("Delimiter '{value}' must be base64-encoded.")))
}

fn extended_s3(e: &ExtendedS3DestinationConfiguration) -> Result<(), ApiError> {
    let dynamic = e.dynamic_partitioning_configuration.as_ref().and_then(|d| d.enabled).unwrap_or(false);
    let conversion = e.data_format_conversion_configuration.as_ref().filter(|d| d.enabled.unwrap_or(true));
    let prefix = prefixes(e.prefix.as_deref(), e.error_output_prefix.as_deref(), dynamic)?;
    processing(e.processing_configuration.as_ref(), dynamic)?;
    let processors: Vec<&Processor> = e
        .processing_configuration
        .as_ref()
        .filter(|p| p.enabled != Some(false))
        .and_then(|p| p.processors.as_ref())
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    if prefix.query_keys().next().is_some() && !processors.iter().any(|p| p.processor_type == "MetadataExtraction") {
        return Err(bad("Prefix uses partitionKeyFromQuery, which requires a processor of type MetadataExtraction."));
    }
    if prefix.lambda_keys().next().is_some() && !processors.iter().any(|p| p.processor_type == "Lambda") {
        return Err(bad("Prefix uses partitionKeyFromLambda, which requires a processor of type Lambda."));
    }
    let size = e.buffering_hints.and_then(|b| b.size_in_mbs);
    if (dynamic || conversion.is_some()) && size.is_some_and(|s| s < BUFFER_SIZE_MIB_MIN_DYNAMIC) {
        return Err(bad(format!(
            "BufferingHints.SizeInMBs must be at least {BUFFER_SIZE_MIB_MIN_DYNAMIC} when DynamicPartitioningConfiguration or DataFormatConversionConfiguration is enabled."
        )));
    }
    if let Some(d) = conversion {
        if e.compression_format.as_deref().is_some_and(|f| f != "UNCOMPRESSED") {
            return Err(bad("CompressionFormat must be UNCOMPRESSED when DataFormatConversionConfiguration is enabled; use ParquetSerDe.Compression instead."));
        }
        let serializer = d.output_format_configuration.as_ref().and_then(|o| o.serializer.as_ref());
        match serializer {
            Some(s) if s.orc_ser_de.is_some() => {
                return Err(bad("OrcSerDe is not supported by Sluice yet; use ParquetSerDe."))
            }
            Some(s) if s.parquet_ser_de.is_some() => {}
            _ => {
                return Err(bad(
                    "DataFormatConversionConfiguration requires OutputFormatConfiguration.Serializer.ParquetSerDe.",
                ))
            }
        }
        if let Some(hive) = d
            .input_format_configuration
            .as_ref()
            .and_then(|i| i.deserializer.as_ref())
            .and_then(|x| x.hive_json_ser_de.as_ref())
        {
            if hive.timestamp_formats.as_ref().is_some_and(|f| f.iter().any(|f| f != "millis")) {
                return Err(bad("HiveJsonSerDe.TimestampFormats other than 'millis' are not supported by Sluice yet; ISO-8601 and epoch milliseconds are read without them."));
            }
        }
        schema(d)?;
    }
    if let Some(z) = &e.custom_time_zone {
        if !z.is_empty() && z != "UTC" {
            return Err(bad(format!("CustomTimeZone '{z}' is not supported by Sluice yet; timestamps are UTC.")));
        }
    }
    let backup = e.s3_backup_mode.as_deref() == Some("Enabled");
    if backup && e.s3_backup_configuration.is_none() {
        return Err(bad("S3BackupConfiguration is required when S3BackupMode is Enabled."));
    }
    if let Some(b) = &e.s3_backup_configuration {
        prefixes(b.prefix.as_deref(), None, false).or_else(|err| {
            // In the backup configuration ErrorOutputPrefix is ignored, so a Prefix with
            // expressions needs none.
            if err.message.starts_with("ErrorOutputPrefix cannot be null") {
                Ok(PrefixTemplate::literal(""))
            } else {
                Err(err)
            }
        })?;
    }
    if let Some(f) = &e.compression_format {
        debug_assert!(Compression::from_firehose(f).is_some(), "checked by the shape stage");
    }
    Ok(())
}

/// `SchemaConfiguration`: the Glue table (`DatabaseName`, `TableName` and `RoleARN`, which
/// AWS requires in CreateDeliveryStream) or Sluice's `SluiceColumns`, never both.
fn schema(d: &DataFormatConversionConfiguration) -> Result<(), ApiError> {
    let Some(s) = &d.schema_configuration else {
        return Err(bad("SchemaConfiguration is required when DataFormatConversionConfiguration is enabled."));
    };
    let glue = s.database_name.is_some() || s.table_name.is_some();
    match &s.sluice_columns {
        Some(_) if glue => Err(bad(
            "SchemaConfiguration names either an AWS Glue table (DatabaseName, TableName) or SluiceColumns, not both.",
        )),
        Some(columns) => crate::columns::check(columns).map(drop),
        None => {
            for (member, value) in
                [("DatabaseName", &s.database_name), ("TableName", &s.table_name), ("RoleARN", &s.role_arn)]
            {
                if value.is_none() {
                    return Err(bad(format!(
                        "SchemaConfiguration.{member} is required when SchemaConfiguration is given in CreateDeliveryStream."
                    )));
                }
            }
            Ok(())
        }
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::invalid_argument(message)
}
