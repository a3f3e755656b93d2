//! Every limit of delivery streams and channels, each a named constant with the reason for
//! its value.
//!
//! Firehose quotas come from botocore's `firehose/2015-08-04` service model (the `min`/`max` of
//! its shapes) and the Amazon Data Firehose developer guide ("Quota", "HTTP endpoint delivery
//! request and response specifications", "Dynamic partitioning"); channel quotas from botocore's
//! `kinesis/2013-12-02` model. Engine-internal bounds say which resource they protect.

/// `BufferingHints.SizeInMBs` minimum (model shape `SizeInMBs`).
pub const BUFFER_SIZE_MIB_MIN: u32 = 1;
/// `BufferingHints.SizeInMBs` maximum for S3 destinations (model shape `SizeInMBs`).
pub const BUFFER_SIZE_MIB_MAX: u32 = 128;
/// AWS's default buffer size for S3 destinations: 5 MiB.
pub const BUFFER_SIZE_MIB_DEFAULT: u32 = 5;
/// `BufferingHints.IntervalInSeconds` minimum (model shape `IntervalInSeconds`): 0 means
/// "deliver without buffering" (zero buffering).
pub const BUFFER_INTERVAL_S_MIN: u32 = 0;
/// `BufferingHints.IntervalInSeconds` maximum (model shape `IntervalInSeconds`).
pub const BUFFER_INTERVAL_S_MAX: u32 = 900;
/// AWS's default buffer interval: 300 s.
pub const BUFFER_INTERVAL_S_DEFAULT: u32 = 300;

/// `HttpEndpointBufferingHints.SizeInMBs` maximum (model shape `HttpEndpointBufferingSizeInMBs`);
/// also the largest request body AWS sends, before compression.
pub const HTTP_BUFFER_SIZE_MIB_MAX: u32 = 64;
/// AWS's default for HTTP endpoint buffering: 5 MiB.
pub const HTTP_BUFFER_SIZE_MIB_DEFAULT: u32 = 5;
/// AWS's default HTTP endpoint buffer interval: 300 s.
pub const HTTP_BUFFER_INTERVAL_S_DEFAULT: u32 = 300;
/// Most records in one HTTP endpoint request (the request schema's `records.maxItems`).
pub const HTTP_REQUEST_RECORDS_MAX: usize = 10_000;
/// Largest HTTP endpoint response body read (the response specification: "1 MiB or less").
pub const HTTP_RESPONSE_BYTES_MAX: usize = 1 << 20;
/// How long AWS waits for an HTTP endpoint to answer one request: 3 minutes.
pub const HTTP_RESPONSE_TIMEOUT_S_DEFAULT: u64 = 180;
/// `RetryOptions.DurationInSeconds` maximum (model shape `HttpEndpointRetryDurationInSeconds`).
pub const RETRY_DURATION_S_MAX: u32 = 7200;
/// AWS's default retry duration for HTTP endpoints: 300 s.
pub const HTTP_RETRY_DURATION_S_DEFAULT: u32 = 300;
/// First back-off between HTTP endpoint attempts (the specification: 1 s, doubling).
pub const HTTP_BACKOFF_MS_INITIAL: u64 = 1_000;
/// Longest back-off between HTTP endpoint attempts (the specification: 2 minutes).
pub const HTTP_BACKOFF_MS_MAX: u64 = 120_000;
/// `HttpEndpointAccessKey` maximum length.
pub const HTTP_ACCESS_KEY_CHARS_MAX: usize = 4096;
/// `HttpEndpointCommonAttributesList` maximum length.
pub const HTTP_COMMON_ATTRIBUTES_MAX: usize = 50;

/// Largest record PutRecord/PutRecordBatch accept: 1,000 KiB of data (Firehose quota).
pub const RECORD_BYTES_MAX: usize = 1_000 * 1024;
/// Most records in one PutRecordBatch call.
pub const PUT_RECORD_BATCH_COUNT_MAX: usize = 500;
/// Most bytes in one PutRecordBatch call: 4 MiB.
pub const PUT_RECORD_BATCH_BYTES_MAX: usize = 4 << 20;

/// `DeliveryStreamName` maximum length.
pub const DELIVERY_STREAM_NAME_CHARS_MAX: usize = 64;
/// `Prefix` and `ErrorOutputPrefix` may hold at most 1,024 characters as configured...
pub const PREFIX_CHARS_MAX: usize = 1024;
/// ...and at most 512 once evaluated (the developer guide's prefix rules).
pub const PREFIX_EVALUATED_CHARS_MAX: usize = 512;
/// Length of `!{firehose:random-string}` and of the random suffix of object names.
pub const RANDOM_STRING_CHARS: usize = 11;

/// Most active partitions (distinct evaluated prefixes with an open buffer) of one delivery
/// stream with dynamic partitioning: AWS's quota is 500; records beyond it go to the error
/// output with `DynamicPartitioning.ActivePartitionsLimitExceeded`. It also bounds the memory
/// of open buffers to `ACTIVE_PARTITIONS_MAX` × the buffer size.
pub const ACTIVE_PARTITIONS_MAX: usize = 500;

/// Largest payload sent to one invocation of a transformation (the Lambda's role): AWS buffers
/// up to 3 MB for Lambda (the processor's `BufferSizeInMBs`, 0.2–3, default 1 MiB here) because
/// a synchronous Lambda invocation takes at most 6 MB.
pub const TRANSFORM_BATCH_BYTES_DEFAULT: usize = 1 << 20;
/// Upper bound of the processor's `BufferSizeInMBs`.
pub const TRANSFORM_BATCH_BYTES_MAX: usize = 3 << 20;
/// Largest response read back from a transformation: twice the largest payload (base64 plus
/// JSON), so a runaway command or endpoint cannot grow memory without bound.
pub const TRANSFORM_RESPONSE_BYTES_MAX: usize = 6 << 20;
/// AWS's default `NumberOfRetries` for a Lambda processor.
pub const TRANSFORM_RETRIES_DEFAULT: u32 = 3;
/// How long one transformation invocation may take (a Lambda's longest run is 15 minutes; a
/// Firehose transformation is documented to be cut at 5 minutes).
pub const TRANSFORM_TIMEOUT_S_DEFAULT: u64 = 300;

/// Uploads (objects or HTTP requests) of one delivery stream in flight at once. Each holds one
/// buffer, so this bounds memory to `UPLOADS_IN_FLIGHT_MAX` × the buffer size on top of the open
/// buffers, and bounds the duplicates a crash can cause (see `engine`).
pub const UPLOADS_IN_FLIGHT_MAX: usize = 4;

/// Records waiting in the channel between sluiced and one delivery stream's engine. Bounded so
/// a slow destination pushes back on the reader (the records stay durable in the journal).
pub const SOURCE_CHANNEL_RECORDS_MAX: usize = 4096;

/// Back-off between attempts to write an object to a store that failed, first and longest. AWS
/// retries S3 delivery for up to 24 hours; Sluice retries until it succeeds or the stream is
/// stopped, because the records stay in the journal and nothing is lost by waiting.
pub const STORE_BACKOFF_MS_INITIAL: u64 = 200;
/// See [`STORE_BACKOFF_MS_INITIAL`].
pub const STORE_BACKOFF_MS_MAX: u64 = 30_000;

/// Channels: `DataFreshnessInSeconds` default (the Kinesis model's documentation).
pub const CHANNEL_DATA_FRESHNESS_S_DEFAULT: u32 = 300;
/// Channels: shortest data freshness AWS documents for channels.
pub const CHANNEL_DATA_FRESHNESS_S_MIN: u32 = 300;
/// Channels: longest data freshness AWS documents for channels.
pub const CHANNEL_DATA_FRESHNESS_S_MAX: u32 = 900;
/// Channels deliver objects of up to this size: the Firehose S3 maximum buffer, since the model
/// gives channels no size knob.
pub const CHANNEL_BUFFER_SIZE_MIB: u32 = BUFFER_SIZE_MIB_MAX;

/// Most columns of an Iceberg table a channel creates (`SluiceColumns`): Glue's limit on a
/// table's columns is far higher, but a channel's records are converted row by row into every
/// column, and a bound keeps a configuration body from asking for millions.
pub const TABLE_COLUMNS_MAX: usize = 1000;

const _: () = assert!(BUFFER_SIZE_MIB_DEFAULT >= BUFFER_SIZE_MIB_MIN);
const _: () = assert!(BUFFER_SIZE_MIB_DEFAULT <= BUFFER_SIZE_MIB_MAX);
const _: () = assert!(BUFFER_INTERVAL_S_DEFAULT <= BUFFER_INTERVAL_S_MAX);
const _: () = assert!(HTTP_BUFFER_SIZE_MIB_MAX <= BUFFER_SIZE_MIB_MAX);
const _: () = assert!(TRANSFORM_BATCH_BYTES_DEFAULT <= TRANSFORM_BATCH_BYTES_MAX);
const _: () = assert!(TRANSFORM_RESPONSE_BYTES_MAX >= 2 * TRANSFORM_BATCH_BYTES_MAX);
const _: () = assert!(HTTP_BACKOFF_MS_INITIAL <= HTTP_BACKOFF_MS_MAX);
const _: () = assert!(STORE_BACKOFF_MS_INITIAL <= STORE_BACKOFF_MS_MAX);
const _: () = assert!(RECORD_BYTES_MAX <= PUT_RECORD_BATCH_BYTES_MAX);
const _: () = assert!(CHANNEL_DATA_FRESHNESS_S_DEFAULT >= CHANNEL_DATA_FRESHNESS_S_MIN);
const _: () = assert!(CHANNEL_DATA_FRESHNESS_S_MAX <= BUFFER_INTERVAL_S_MAX);

// The AWS Glue Data Catalog (`crate::glue`): botocore's `glue/2017-03-31` model and the AWS
// Glue endpoints and quotas page.

/// Databases per node. AWS's quota is 10,000 per account; Sluice keeps the whole catalog in one
/// file that is replaced on every change, and a Firehose user needs one database for a few
/// tables, so a node holds a tenth of it.
pub const GLUE_DATABASES_MAX: usize = 1_000;
/// Tables per node, all databases together. AWS's quotas are 200,000 per database and
/// 1,000,000 per account; here each delivery stream converting to Parquet needs one table (at
/// most 50 delivery streams per node), and every change rewrites the catalog file.
pub const GLUE_TABLES_MAX: usize = 1_000;
/// `GetDatabases` / `GetTables` page size maximum and default (model shape
/// `CatalogGetterPageSize`: 1–100; AWS documents no default and answers 100).
pub const GLUE_PAGE_SIZE_MAX: usize = 100;
/// Tags on `CreateDatabase` (model shape `TagsMap`: at most 50).
pub const GLUE_TAGS_MAX: usize = 50;
/// Longest `GetTables` `Expression` compiled into a regex, in bytes of the compiled program
/// (the model allows 2,048 characters; a bounded program keeps a hostile pattern from taking
/// the core's memory).
pub const GLUE_EXPRESSION_PROGRAM_BYTES_MAX: usize = 1 << 20;
