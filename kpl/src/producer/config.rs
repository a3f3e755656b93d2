//! The producer's settings, each with the KPL setting it mirrors (docs/clients.md has the table).

use crate::limits::{
    AGGREGATION_MAX_SIZE_MAX, AGGREGATION_MAX_SIZE_MIN, COLLECTION_MAX_SIZE_MIN, PUT_RECORDS_BYTES_MAX,
    PUT_RECORDS_COUNT_MAX, RECORD_BYTES_MAX,
};

/// Producer settings. `Default` gives the KPL's defaults where the KPL has the setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// KPL `AggregationEnabled` (true): pack user records of one predicted shard into KPL
    /// aggregates.
    pub aggregation_enabled: bool,
    /// KPL `AggregationMaxCount` (4294967295): most user records in one aggregate.
    pub aggregation_max_count: usize,
    /// KPL `AggregationMaxSize` (51200): most bytes of an aggregate's data. A user record
    /// bigger than this by itself is sent alone, unaggregated.
    pub aggregation_max_size_bytes: usize,
    /// KPL `CollectionMaxCount` (500): most Kinesis records (aggregates or single records) in
    /// one PutRecords call.
    pub collection_max_count: usize,
    /// KPL `CollectionMaxSize` (5242880): most bytes (data plus partition keys) in one
    /// PutRecords call.
    pub collection_max_size_bytes: usize,
    /// KPL `RecordMaxBufferedTime` (100 ms): how long a user record may wait for others to
    /// share its aggregate and call before it is sent anyway.
    pub record_max_buffered_time_ms: u64,
    /// KPL `RecordTtl` (30000 ms): a user record not put within this time of its submission
    /// fails with [`EXPIRED_ERROR_CODE`](super::EXPIRED_ERROR_CODE).
    pub record_ttl_ms: u64,
    /// KPL `RateLimit` (150): the most this producer sends to one shard, as a percentage of the
    /// shard's 1 MiB/s and 1,000 records/s. 150 lets one producer fill a shard; lower it when
    /// several producers share a stream.
    pub rate_limit_percent: u64,
    /// KPL `FailIfThrottled` (false): fail throttled records at once instead of retrying.
    pub fail_if_throttled: bool,
    /// KPL `MaxConnections` (24), as the most PutRecords calls in flight at once.
    pub max_in_flight_calls: usize,
    /// No KPL equivalent (the KPL only reports its outstanding count): most user records
    /// submitted and not yet completed. Beyond it `submit` refuses with back-pressure.
    pub max_outstanding_records: usize,
    /// No KPL equivalent: most bytes (data plus partition keys) of outstanding user records.
    pub max_outstanding_bytes: usize,
    /// No KPL equivalent (the KPL retries without backoff, limited by `RateLimit`): the first
    /// retry waits up to this long, each later one up to twice the previous ceiling.
    pub retry_backoff_base_ms: u64,
    /// The ceiling of the retry backoff (the AWS SDKs use 20 s).
    pub retry_backoff_max_ms: u64,
}

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig {
            aggregation_enabled: true,
            aggregation_max_count: u32::MAX as usize,
            aggregation_max_size_bytes: 51_200,
            collection_max_count: PUT_RECORDS_COUNT_MAX,
            collection_max_size_bytes: PUT_RECORDS_BYTES_MAX,
            record_max_buffered_time_ms: 100,
            record_ttl_ms: 30_000,
            rate_limit_percent: 150,
            fail_if_throttled: false,
            max_in_flight_calls: 24,
            max_outstanding_records: 100_000,
            max_outstanding_bytes: 256 << 20,
            retry_backoff_base_ms: 100,
            retry_backoff_max_ms: 20_000,
        }
    }
}

/// A setting out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} must be in [{min}, {max}], got {value}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

fn check(setting: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError { setting, value, min, max })
    }
}

impl ProducerConfig {
    /// Checks every setting against the KPL's ranges and Kinesis' limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check("aggregation_max_count", self.aggregation_max_count as u64, 1, u64::MAX)?;
        check(
            "aggregation_max_size_bytes",
            self.aggregation_max_size_bytes as u64,
            AGGREGATION_MAX_SIZE_MIN as u64,
            AGGREGATION_MAX_SIZE_MAX as u64,
        )?;
        check("collection_max_count", self.collection_max_count as u64, 1, PUT_RECORDS_COUNT_MAX as u64)?;
        check(
            "collection_max_size_bytes",
            self.collection_max_size_bytes as u64,
            COLLECTION_MAX_SIZE_MIN as u64,
            PUT_RECORDS_BYTES_MAX as u64,
        )?;
        check("record_ttl_ms", self.record_ttl_ms, 100, u64::MAX)?;
        // Above 100x the quota a bucket's refill per millisecond overflows nothing but makes
        // the limit meaningless; the KPL allows any value, but nobody needs more.
        check("rate_limit_percent", self.rate_limit_percent, 1, 10_000)?;
        check("max_in_flight_calls", self.max_in_flight_calls as u64, 1, 256)?;
        check("max_outstanding_records", self.max_outstanding_records as u64, 1, u64::MAX)?;
        check("max_outstanding_bytes", self.max_outstanding_bytes as u64, RECORD_BYTES_MAX as u64, u64::MAX)?;
        check("retry_backoff_max_ms", self.retry_backoff_max_ms, self.retry_backoff_base_ms, u64::MAX)?;
        Ok(())
    }
}
