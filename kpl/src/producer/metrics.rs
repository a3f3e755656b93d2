//! What the producer counts, readable at any time with `Producer::metrics`.
//!
//! The names follow the KPL's metrics (`aws/metrics/metrics_constants`) where they have one.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// The longest buffered time the histogram tells apart; longer ones are recorded as this.
/// An hour is far beyond any sensible `RecordTtl`.
const BUFFERED_TIME_MS_MAX: u64 = 3_600_000;

#[derive(Debug, Clone)]
pub struct ProducerMetrics {
    /// User records accepted by `submit`.
    pub user_records_received: u64,
    /// KPL `UserRecordsPut` (successes): user records put.
    pub user_records_put: u64,
    /// User records completed with an error (any code, expiry included).
    pub user_records_failed: u64,
    /// KPL `UserRecordExpired`: user records failed because their TTL passed.
    pub user_records_expired: u64,
    /// KPL `KinesisRecordsPut`: Kinesis records (aggregates or single records) put.
    pub kinesis_records_put: u64,
    /// Aggregates (Kinesis records of two or more user records) put.
    pub aggregated_records_put: u64,
    /// User records that were put inside an aggregate.
    pub user_records_aggregated: u64,
    /// PutRecords calls handed to the driver.
    pub put_records_calls: u64,
    /// Kinesis records (or whole calls) refused as throttled.
    pub throttles: u64,
    /// KPL `RetriesPerRecord`, summed: user-record retries scheduled.
    pub retries: u64,
    /// Aggregates that landed on a shard other than the predicted one, outside its range.
    pub misrouted_aggregates: u64,
    /// KPL `ErrorsByCode`: every error seen per code, retried or not.
    pub errors_by_code: BTreeMap<String, u64>,
    /// User records that finally failed, per code.
    pub failures_by_code: BTreeMap<String, u64>,
    /// KPL `BufferingTime`: milliseconds from submission (or the previous attempt's end) to
    /// the start of each attempt.
    pub buffered_time_ms: Histogram<u64>,
}

impl Default for ProducerMetrics {
    fn default() -> ProducerMetrics {
        ProducerMetrics {
            user_records_received: 0,
            user_records_put: 0,
            user_records_failed: 0,
            user_records_expired: 0,
            kinesis_records_put: 0,
            aggregated_records_put: 0,
            user_records_aggregated: 0,
            put_records_calls: 0,
            throttles: 0,
            retries: 0,
            misrouted_aggregates: 0,
            errors_by_code: BTreeMap::new(),
            failures_by_code: BTreeMap::new(),
            buffered_time_ms: Histogram::new_with_bounds(1, BUFFERED_TIME_MS_MAX, 2)
                .expect("the bounds are constants that hdrhistogram accepts"),
        }
    }
}

impl ProducerMetrics {
    pub(crate) fn error(&mut self, code: &str) {
        *self.errors_by_code.entry(code.to_owned()).or_default() += 1;
    }

    pub(crate) fn failure(&mut self, code: &str) {
        self.user_records_failed += 1;
        *self.failures_by_code.entry(code.to_owned()).or_default() += 1;
    }

    pub(crate) fn buffered(&mut self, ms: u64) {
        self.buffered_time_ms.saturating_record(ms.min(BUFFERED_TIME_MS_MAX));
    }

    /// User records per Kinesis record put: the aggregation ratio.
    pub fn aggregation_ratio(&self) -> f64 {
        if self.kinesis_records_put == 0 {
            0.0
        } else {
            self.user_records_put as f64 / self.kinesis_records_put as f64
        }
    }
}
