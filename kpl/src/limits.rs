//! The Kinesis quotas the producer and consumer cores respect, each with where it comes from.
//!
//! These duplicate a few of `sluice_engine::limits` on purpose: this crate depends on no other
//! Sluice crate while the model crate (issue 11) is being built. When it lands, the shared
//! ones should come from it.

use crate::aggregation::{AGGREGATE_OVERHEAD_BYTES, AGGREGATE_PARTITION_KEY};

/// Longest partition key Kinesis accepts, in Unicode characters (`PartitionKey` max length 256).
pub const PARTITION_KEY_CHARS_MAX: usize = 256;

/// Largest Kinesis record: data blob plus partition key, 1 MiB (the default
/// `MaxRecordSizeInKiB`; Kinesis refuses larger ones with `ValidationException`). An aggregate
/// counts its data plus the one-byte [`AGGREGATE_PARTITION_KEY`].
pub const RECORD_BYTES_MAX: usize = 1 << 20;

/// Most records in one PutRecords call (Kinesis: 500).
pub const PUT_RECORDS_COUNT_MAX: usize = 500;

/// Most bytes (data plus partition keys) in one PutRecords call. Kinesis documented 5 MiB for
/// years (the 2022 developer guide; the KPL's `CollectionMaxSize` default); botocore's current
/// model allows 10 MiB. The producer keeps to 5 MiB so that it works against both.
pub const PUT_RECORDS_BYTES_MAX: usize = 5 << 20;

/// Kinesis quota "write throughput per shard": 1 MiB/s of data plus partition keys.
pub const SHARD_WRITE_BYTES_PER_S: u64 = 1 << 20;

/// Kinesis quota "records written per shard": 1,000 records per second. An aggregate is one
/// record here, which is the point of aggregation.
pub const SHARD_WRITE_RECORDS_PER_S: u64 = 1_000;

/// The smallest `AggregationMaxSize` the KPL accepts (`configuration.h`: minimum 64).
pub const AGGREGATION_MAX_SIZE_MIN: usize = 64;

/// The largest `AggregationMaxSize`: an aggregate's data plus its partition key must be a
/// valid Kinesis record.
pub const AGGREGATION_MAX_SIZE_MAX: usize = RECORD_BYTES_MAX - AGGREGATE_PARTITION_KEY.len();

/// The smallest `CollectionMaxSize` the KPL accepts (`configuration.h`: minimum 52224, 51 KiB:
/// the default aggregate plus room for its key).
pub const COLLECTION_MAX_SIZE_MIN: usize = 52_224;

// The default aggregate size fits the smallest collection, and every aggregate a valid record.
const _: () = assert!(COLLECTION_MAX_SIZE_MIN >= 51_200 + AGGREGATE_PARTITION_KEY.len());
const _: () = assert!(AGGREGATION_MAX_SIZE_MIN > AGGREGATE_OVERHEAD_BYTES);
// A record of the largest size fits a PutRecords call by itself.
const _: () = assert!(PUT_RECORDS_BYTES_MAX >= RECORD_BYTES_MAX);
// A record of the largest size fits a full rate-limit bucket (one second of quota), so it is
// never held back forever.
const _: () = assert!(SHARD_WRITE_BYTES_PER_S >= RECORD_BYTES_MAX as u64);
