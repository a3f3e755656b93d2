//! A validated configuration turned into what the engine runs: typed, with defaults applied,
//! buckets and functions resolved.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::compress::Compression;
use crate::config::*;
use crate::convert::{Conversion, ParquetConverter};
use crate::error::{ApiError, DeliveryError};
use crate::limits::*;
pub use crate::output::{BufferLimits, ErrorTarget};
use crate::partition::KeyQuery;
use crate::prefix::{PrefixKind, PrefixTemplate};
use crate::store::{Bucket, Buckets};
use crate::transform::{function_name, Functions, Transformer};
use crate::validate;

/// What a plan is built with: the daemon's buckets and functions, and its identity.
#[derive(Debug, Clone)]
pub struct Environment {
    pub buckets: Buckets,
    pub functions: Functions,
    pub region: String,
    pub account_id: String,
    pub options: EngineOptions,
    /// The AWS Glue Data Catalog Parquet conversion reads its tables from (sluiced's);
    /// `None` where there is none (the standalone binary), and a delivery stream naming a
    /// Glue table is refused.
    pub glue: Option<crate::glue::SharedCatalog>,
}

/// Engine settings that are not part of AWS's configuration.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How long to wait for an HTTP endpoint's response (AWS: 3 minutes).
    pub http_response_timeout: Duration,
    /// Longest back-off between HTTP endpoint attempts.
    pub http_backoff_max: Duration,
    /// How long a transformation invocation may run.
    pub transform_timeout: Duration,
    /// Uploads in flight at once per delivery stream.
    pub uploads_in_flight_max: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            http_response_timeout: Duration::from_secs(HTTP_RESPONSE_TIMEOUT_S_DEFAULT),
            http_backoff_max: Duration::from_millis(HTTP_BACKOFF_MS_MAX),
            transform_timeout: Duration::from_secs(TRANSFORM_TIMEOUT_S_DEFAULT),
            uploads_in_flight_max: UPLOADS_IN_FLIGHT_MAX,
        }
    }
}

/// An S3 location objects are written to, with its naming and compression.
#[derive(Debug, Clone)]
pub struct ObjectTarget {
    pub bucket: Bucket,
    pub prefix: PrefixTemplate,
    pub compression: Compression,
    pub extension: String,
    pub buffer: BufferLimits,
}

/// The S3 destination (extended or plain) and channels to general-purpose buckets.
#[derive(Debug, Clone)]
pub struct S3Plan {
    pub main: ObjectTarget,
    pub errors: ErrorTarget,
    pub converter: Option<Conversion>,
    /// Source records before processing, when `S3BackupMode` is `Enabled`.
    pub backup: Option<ObjectTarget>,
}

/// The HTTP endpoint destination.
#[derive(Debug, Clone)]
pub struct HttpPlan {
    pub url: String,
    pub name: Option<String>,
    pub access_key: Option<String>,
    pub gzip: bool,
    pub common_attributes: BTreeMap<String, String>,
    pub retry_duration: Duration,
    pub buffer: BufferLimits,
    /// Failed requests' records go here, under `http-endpoint-failed`.
    pub errors: ErrorTarget,
    /// Every source record is also written here when `S3BackupMode` is `AllData`.
    pub backup: Option<ObjectTarget>,
}

/// Where a delivery stream delivers.
#[derive(Debug, Clone)]
pub enum Destination {
    // Both boxed: plans are built once and read by reference, and the two differ in size.
    S3(Box<S3Plan>),
    Http(Box<HttpPlan>),
    /// An Iceberg table (a channel's `S3TablesDestinationConfiguration`).
    #[cfg(feature = "iceberg")]
    /// Shared with the engine's uploads: one plan runs one engine (it holds the opened table).
    Table(std::sync::Arc<crate::iceberg::TablePlan>),
}

/// Processing before buffering.
#[derive(Debug, Default)]
pub struct Processing {
    pub transformer: Option<Transformer>,
    /// Records per invocation are grouped up to this many bytes.
    pub transform_batch_bytes: usize,
    /// How long records wait for a full invocation batch.
    pub transform_interval: Duration,
    pub key_query: Option<KeyQuery>,
    /// Appended to every record (`AppendDelimiterToRecord`).
    pub delimiter: Option<Vec<u8>>,
}

/// Everything the engine needs to run one delivery stream (or channel).
#[derive(Debug)]
pub struct DeliveryPlan {
    pub name: String,
    pub arn: String,
    pub region: String,
    /// `DeliveryStreamVersion`: 1, plus one per configuration change.
    pub version: u64,
    pub destination: Destination,
    pub processing: Processing,
    pub options: EngineOptions,
}

fn target_from_s3(
    s3: &S3DestinationConfiguration,
    env: &Environment,
    default_timestamp: bool,
) -> Result<ObjectTarget, DeliveryError> {
    let compression = Compression::from_firehose(s3.compression_format.as_deref().unwrap_or("UNCOMPRESSED"))
        .unwrap_or(Compression::None);
    let mut prefix = PrefixTemplate::parse(s3.prefix.as_deref().unwrap_or(""), PrefixKind::Prefix)?;
    if default_timestamp && !prefix.has_timestamp() {
        prefix = prefix.with_default_timestamp();
    }
    Ok(ObjectTarget {
        bucket: env.buckets.resolve(&s3.bucket_arn)?,
        prefix,
        compression,
        extension: compression.extension().to_string(),
        buffer: BufferLimits::from_hints(
            s3.buffering_hints.as_ref(),
            BUFFER_SIZE_MIB_DEFAULT,
            BUFFER_INTERVAL_S_DEFAULT,
        ),
    })
}

/// The error prefix: the configured one, or `<Prefix><error-output-type>/yyyy/MM/dd/HH/` when
/// none is configured (allowed only when `Prefix` has no expressions).
fn error_target(
    bucket: Bucket,
    prefix: Option<&str>,
    error_output_prefix: Option<&str>,
) -> Result<ErrorTarget, ApiError> {
    let template = match error_output_prefix {
        Some(e) if !e.is_empty() => PrefixTemplate::parse(e, PrefixKind::ErrorOutputPrefix)?,
        _ => PrefixTemplate::literal(prefix.unwrap_or(""))
            .then(PrefixTemplate::parse("!{firehose:error-output-type}/", PrefixKind::ErrorOutputPrefix)?)
            .with_default_timestamp(),
    };
    Ok(ErrorTarget { bucket, prefix: template })
}

fn processing(
    p: Option<&ProcessingConfiguration>,
    env: &Environment,
    arn: &str,
    interval: Duration,
) -> Result<Processing, DeliveryError> {
    let mut out = Processing {
        transform_batch_bytes: TRANSFORM_BATCH_BYTES_DEFAULT,
        transform_interval: interval.min(Duration::from_secs(60)),
        ..Default::default()
    };
    let Some(p) = p.filter(|p| p.enabled != Some(false)) else { return Ok(out) };
    for processor in p.processors.iter().flatten() {
        match processor.processor_type.as_str() {
            "Lambda" => {
                let lambda_arn = processor.parameter("LambdaArn").unwrap_or_default().to_string();
                let function =
                    env.functions.resolve(&lambda_arn).cloned().ok_or_else(|| DeliveryError::UnknownFunction {
                        name: function_name(&lambda_arn).to_string(),
                    })?;
                let retries = processor
                    .parameter("NumberOfRetries")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(TRANSFORM_RETRIES_DEFAULT);
                if let Some(mib) = processor.parameter("BufferSizeInMBs").and_then(|n| n.parse::<f64>().ok()) {
                    out.transform_batch_bytes = ((mib * (1 << 20) as f64) as usize).min(TRANSFORM_BATCH_BYTES_MAX);
                }
                if let Some(s) = processor.parameter("BufferIntervalInSeconds").and_then(|n| n.parse::<u64>().ok()) {
                    out.transform_interval = Duration::from_secs(s).min(interval);
                }
                out.transformer = Some(Transformer::new(
                    function,
                    lambda_arn,
                    retries,
                    env.options.transform_timeout,
                    arn.to_string(),
                    env.region.clone(),
                ));
            }
            "MetadataExtraction" => {
                let query = processor.parameter("MetadataExtractionQuery").unwrap_or_default();
                out.key_query = Some(KeyQuery::compile(query).map_err(|why| {
                    ApiError::invalid_argument(format!("MetadataExtractionQuery is invalid: {why}."))
                })?);
            }
            "AppendDelimiterToRecord" => {
                out.delimiter = Some(match processor.parameter("Delimiter") {
                    Some(d) => validate::base64_delimiter(d)?,
                    None => b"\n".to_vec(),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Where a validated conversion's schema comes from: `SluiceColumns`, or the Glue table of
/// this node's catalog that `SchemaConfiguration` names (read at each buffer, not now: AWS
/// creates the delivery stream without reading the table, and a missing table fails the
/// records it would have converted).
fn conversion_of(d: &DataFormatConversionConfiguration, env: &Environment) -> Result<Conversion, ApiError> {
    let schema = d.schema_configuration.as_ref().expect("validation requires SchemaConfiguration");
    if let Some(columns) = &schema.sluice_columns {
        return Ok(Conversion::Inline(Box::new(ParquetConverter::new(columns, d)?)));
    }
    let Some(catalog) = &env.glue else {
        return Err(ApiError::invalid_argument(
            "SchemaConfiguration names an AWS Glue table, but this delivery runs without sluiced's Data Catalog; use SchemaConfiguration.SluiceColumns.",
        ));
    };
    if let Some(catalog_id) = schema.catalog_id.as_ref().filter(|id| **id != env.account_id) {
        return Err(ApiError::invalid_argument(format!(
            "SchemaConfiguration.CatalogId {catalog_id} is not this node's Data Catalog ({}): Sluice reads tables of its own account only.",
            env.account_id
        )));
    }
    if let Some(region) = schema.region.as_ref().filter(|region| **region != env.region) {
        return Err(ApiError::invalid_argument(format!(
            "SchemaConfiguration.Region {region} is not this node's region ({}): Sluice reads tables of its own region only.",
            env.region
        )));
    }
    Ok(Conversion::Table {
        catalog: catalog.clone(),
        database: schema.database_name.clone().expect("validation requires DatabaseName"),
        table: schema.table_name.clone().expect("validation requires TableName"),
        version: schema.version_id.clone(),
        config: Box::new(d.clone()),
    })
}

impl DeliveryPlan {
    /// Plans a delivery stream from a `CreateDeliveryStream` request (validated here too).
    pub fn from_create(
        input: &CreateDeliveryStreamInput,
        version: u64,
        env: &Environment,
    ) -> Result<Self, DeliveryError> {
        validate::create_delivery_stream(input)?;
        let name = input.delivery_stream_name.clone();
        let arn = format!("arn:aws:firehose:{}:{}:deliverystream/{name}", env.region, env.account_id);
        let (destination, processing) = if let Some(e) = &input.extended_s3_destination_configuration {
            let dynamic = e.dynamic_partitioning_configuration.as_ref().and_then(|d| d.enabled).unwrap_or(false);
            let conversion = e.data_format_conversion_configuration.as_ref().filter(|d| d.enabled.unwrap_or(true));
            // Dynamic partitioning and conversion raise AWS's default buffer size.
            let size_default = if conversion.is_some() {
                BUFFER_SIZE_MIB_MAX
            } else if dynamic {
                validate::BUFFER_SIZE_MIB_MIN_DYNAMIC as u32
            } else {
                BUFFER_SIZE_MIB_DEFAULT
            };
            let base = S3DestinationConfiguration {
                role_arn: e.role_arn.clone(),
                bucket_arn: e.bucket_arn.clone(),
                prefix: e.prefix.clone(),
                error_output_prefix: e.error_output_prefix.clone(),
                buffering_hints: Some(BufferingHints {
                    size_in_mbs: Some(e.buffering_hints.and_then(|b| b.size_in_mbs).unwrap_or(size_default as i64)),
                    interval_in_seconds: e.buffering_hints.and_then(|b| b.interval_in_seconds),
                }),
                compression_format: e.compression_format.clone(),
                ..Default::default()
            };
            let mut main = target_from_s3(&base, env, !dynamic)?;
            let converter = conversion.map(|d| conversion_of(d, env)).transpose()?;
            if converter.is_some() {
                main.extension = ".parquet".into();
            }
            if let Some(x) = &e.file_extension {
                main.extension = x.clone();
            }
            let errors = error_target(main.bucket.clone(), e.prefix.as_deref(), e.error_output_prefix.as_deref())?;
            let backup = match (e.s3_backup_mode.as_deref(), &e.s3_backup_configuration) {
                (Some("Enabled"), Some(b)) => Some(target_from_s3(b, env, true)?),
                _ => None,
            };
            let processing = processing(e.processing_configuration.as_ref(), env, &arn, main.buffer.interval)?;
            (Destination::S3(Box::new(S3Plan { main, errors, converter, backup })), processing)
        } else if let Some(s3) = &input.s3_destination_configuration {
            let main = target_from_s3(s3, env, true)?;
            let errors = error_target(main.bucket.clone(), s3.prefix.as_deref(), s3.error_output_prefix.as_deref())?;
            (Destination::S3(Box::new(S3Plan { main, errors, converter: None, backup: None })), Processing::default())
        } else if let Some(h) = &input.http_endpoint_destination_configuration {
            let s3 = target_from_s3(&h.s3_configuration, env, true)?;
            let errors = error_target(
                s3.bucket.clone(),
                h.s3_configuration.prefix.as_deref(),
                h.s3_configuration.error_output_prefix.as_deref(),
            )?;
            let buffer = BufferLimits::from_hints(
                h.buffering_hints.as_ref(),
                HTTP_BUFFER_SIZE_MIB_DEFAULT,
                HTTP_BUFFER_INTERVAL_S_DEFAULT,
            );
            let plan = HttpPlan {
                url: h.endpoint_configuration.url.clone(),
                name: h.endpoint_configuration.name.clone(),
                access_key: h.endpoint_configuration.access_key.clone(),
                gzip: h.request_configuration.as_ref().and_then(|r| r.content_encoding.as_deref()) == Some("GZIP"),
                common_attributes: h
                    .request_configuration
                    .as_ref()
                    .and_then(|r| r.common_attributes.as_ref())
                    .map(|a| a.iter().map(|a| (a.attribute_name.clone(), a.attribute_value.clone())).collect())
                    .unwrap_or_default(),
                retry_duration: Duration::from_secs(
                    h.retry_options.and_then(|r| r.duration_in_seconds).unwrap_or(HTTP_RETRY_DURATION_S_DEFAULT as i64)
                        as u64,
                ),
                buffer,
                errors,
                backup: (h.s3_backup_mode.as_deref() == Some("AllData")).then_some(s3),
            };
            let processing = processing(h.processing_configuration.as_ref(), env, &arn, buffer.interval)?;
            (Destination::Http(Box::new(plan)), processing)
        } else {
            unreachable!("validation requires one destination")
        };
        Ok(DeliveryPlan {
            name,
            arn,
            region: env.region.clone(),
            version,
            destination,
            processing,
            options: env.options.clone(),
        })
    }
}
