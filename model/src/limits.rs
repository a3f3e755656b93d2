//! The limits of the Kinesis API itself: what a request may hold, whichever protocol carries
//! it and whichever server answers it. Each comes from botocore's Kinesis model (`service-2.json`,
//! 2013-12-02) or the Kinesis developer guide ("Quotas and limits"), named below.
//!
//! Account quotas a server may configure (open shards, consumers per stream, ...) are not
//! here: they belong to the server (`server/src/limits.rs`, its `Limits` value).

/// Stream and consumer names: 1..=128 characters of `[a-zA-Z0-9_.-]` (`StreamName`,
/// `ConsumerName` shapes).
pub const NAME_CHARS_MAX: usize = 128;

/// Partition keys: 1..=256 Unicode characters (`PartitionKey` shape).
pub const PARTITION_KEY_CHARS_MAX: usize = 256;
/// The same bound in bytes: UTF-8 spends at most four bytes per character.
pub const PARTITION_KEY_BYTES_MAX: usize = PARTITION_KEY_CHARS_MAX * 4;

/// A record (data plus partition key) at the default `MaxRecordSizeInKiB`: 1 MiB.
pub const RECORD_BYTES_MAX: usize = 1 << 20;
/// `MaxRecordSizeInKiB` (UpdateMaxRecordSize, CreateStream): 1,024..=10,240 KiB, the
/// model's `MaxRecordSizeInKiB` shape; 1,024 KiB is what a stream takes unless raised.
pub const MAX_RECORD_SIZE_KIB_MIN: i32 = 1024;
pub const MAX_RECORD_SIZE_KIB_MAX: i32 = 10_240;
pub const MAX_RECORD_SIZE_KIB_DEFAULT: i32 = MAX_RECORD_SIZE_KIB_MIN;
/// The largest record (data plus partition key) any stream can be set to take: 10 MiB, at
/// the top of `MaxRecordSizeInKiB`. Each stream's own bound is the server's to check.
pub const STREAM_RECORD_BYTES_MAX: usize = MAX_RECORD_SIZE_KIB_MAX as usize * 1024;
const _: () = assert!(RECORD_BYTES_MAX == MAX_RECORD_SIZE_KIB_DEFAULT as usize * 1024);
const _: () = assert!(STREAM_RECORD_BYTES_MAX <= PUT_RECORDS_BYTES_MAX);

/// Characters of StartStreamEncryption's and StopStreamEncryption's `KeyId` (`KeyId` shape:
/// 1..=2048).
pub const KEY_ID_CHARS_MAX: usize = 2048;
/// Records in one PutRecords call (`PutRecordsRequestEntryList` max 500).
pub const PUT_RECORDS_COUNT_MAX: usize = 500;
/// Bytes of data and partition keys in one PutRecords call (Kinesis: 10 MiB).
pub const PUT_RECORDS_BYTES_MAX: usize = 10 << 20;

/// Records one GetRecords call returns, and its `Limit` maximum (`GetRecordsInputLimit`).
pub const GET_RECORDS_COUNT_MAX: usize = 10_000;
/// Bytes one GetRecords call returns (Kinesis: 10 MiB). Data and partition keys count.
pub const GET_RECORDS_BYTES_MAX: usize = 10 << 20;

/// The largest page any listing may ask for: `Limit` of DescribeStream and ListStreams,
/// `MaxResults` of ListShards and ListStreamConsumers (each `...InputLimit` max 10,000).
pub const PAGE_SIZE_MAX: usize = 10_000;
/// Tags per ListTagsForStream page (`ListTagsForStreamInputLimit` 1..=50).
pub const LIST_TAGS_PAGE_SIZE_MAX: usize = 50;
/// Tag keys per RemoveTagsFromStream call (`TagKeyList` 1..=50).
pub const TAG_KEYS_PER_CALL_MAX: usize = 50;
/// Tag keys are 1..=128 characters (`TagKey`).
pub const TAG_KEY_CHARS_MAX: usize = 128;
/// Tag values are 0..=256 characters (`TagValue`).
pub const TAG_VALUE_CHARS_MAX: usize = 256;

/// Retention: 24 hours (the default and minimum) to 365 days (`RetentionPeriodHours`,
/// "Changing the data retention period").
pub const RETENTION_HOURS_MIN: i32 = 24;
pub const RETENTION_HOURS_MAX: i32 = 8760;

/// `ShardIterator` strings are 1..=512 characters.
pub const SHARD_ITERATOR_CHARS_MAX: usize = 512;
/// Digits of a decimal hash key in `[0, 2^128 - 1]` (`HashKey` pattern `0|([1-9]\d{0,38})`).
pub const HASH_KEY_DIGITS_MAX: usize = 39;
/// Digits of a sequence number (`SequenceNumber` pattern `0|([1-9]\d{0,128})`).
pub const SEQUENCE_NUMBER_DIGITS_MAX: usize = 129;

/// Sluice's consumer groups (docs/clients.md): at most 100 applications per stream, the
/// delivery state's own bound (`sluice_state::limits::APPLICATIONS_PER_STREAM_MAX`), which is
/// also ListApplications' largest page.
pub const APPLICATIONS_PER_STREAM_MAX: usize = 100;
/// ListLeases pages: 1..=10,000 leases (default 1,000); one page of 10,000 leases is about
/// 4 MB of JSON, under the HTTP answer bound.
pub const LEASES_PAGE_SIZE_MAX: usize = 10_000;
pub const LEASES_PAGE_SIZE_DEFAULT: usize = 1_000;
/// A lease lasts 1 s..10 min from a take, steal or renewal (KCL's `failoverTimeMillis`
/// range); `sluice_state::limits` holds the same bounds for the log.
pub const LEASE_DURATION_MS_MIN: i64 = 1_000;
pub const LEASE_DURATION_MS_MAX: i64 = 600_000;
pub const LEASE_DURATION_MS_DEFAULT: i64 = 10_000;
/// Worker ids are 1..=256 bytes of UTF-8 (KCL's `workerIdentifier`).
pub const WORKER_ID_BYTES_MAX: usize = 256;

const _: () = assert!(GET_RECORDS_COUNT_MAX <= PAGE_SIZE_MAX);
const _: () = assert!(RECORD_BYTES_MAX <= PUT_RECORDS_BYTES_MAX);

/// Kinesis queues (`VisibilityTimeoutSeconds` 0..=43,200, default 30 s: the QueueAttributes
/// documentation).
pub const QUEUE_VISIBILITY_TIMEOUT_S_MAX: i32 = 43_200;
pub const QUEUE_VISIBILITY_TIMEOUT_S_DEFAULT: i32 = 30;
/// `MaxReceiveCount` 1..=1,000, default 6 (DeadLetterConfiguration documentation).
pub const QUEUE_MAX_RECEIVE_COUNT_MIN: i32 = 1;
pub const QUEUE_MAX_RECEIVE_COUNT_MAX: i32 = 1_000;
pub const QUEUE_MAX_RECEIVE_COUNT_DEFAULT: i32 = 6;
/// ReceiveQueueRecords `Limit` 1..=10, default 10 (`ReceiveQueueRecordsInputLimit`).
pub const QUEUE_RECEIVE_LIMIT_MAX: i32 = 10;
/// ReceiveQueueRecords `WaitTimeSeconds` 1..=20 (`ReceiveQueueRecordsWaitTimeSeconds`), default
/// 9 (the operation's documentation).
pub const QUEUE_WAIT_TIME_S_MIN: i32 = 1;
pub const QUEUE_WAIT_TIME_S_MAX: i32 = 20;
pub const QUEUE_WAIT_TIME_S_DEFAULT: i32 = 9;
/// Receipt handles per Acknowledge/Restore/UpdateVisibility call (`...RequestEntryList` 1..=10).
pub const QUEUE_ENTRIES_PER_CALL_MAX: usize = 10;
/// ListQueues `MaxResults` 1..=10,000 (`ListQueuesInputLimit`); the default page when absent.
pub const QUEUE_LIST_PAGE_SIZE_MAX: usize = 10_000;
pub const QUEUE_LIST_PAGE_SIZE_DEFAULT: usize = 100;
