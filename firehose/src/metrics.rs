//! Per-delivery-stream metrics as plain counters, named as AWS's CloudWatch metrics for Firehose
//! (namespace `AWS/Firehose`), for the metrics issue's endpoint to export.
//!
//! Counters only grow; `*.Success` ratios are exported as two counters (successful attempts and
//! all attempts) so an exporter can compute the ratio over any window. `DataFreshness` is a gauge
//! computed at snapshot time: the age of the oldest record not yet delivered.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

macro_rules! counters {
    ($($field:ident => $name:literal),* $(,)?) => {
        /// The counters of one delivery stream.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $(pub $field: AtomicU64,)*
            /// Arrival time (ms since the epoch) of the oldest record not yet delivered, or
            /// `i64::MAX` when everything is delivered.
            pub oldest_pending_arrival_ms: AtomicI64,
        }

        impl Metrics {
            /// Every counter by its AWS metric name, then `DeliveryToS3.DataFreshness` (seconds,
            /// at `now_ms`).
            pub fn snapshot(&self, now_ms: i64) -> Vec<(&'static str, u64)> {
                let mut out = vec![$(($name, self.$field.load(Ordering::Relaxed)),)*];
                out.push(("DeliveryToS3.DataFreshness", self.data_freshness_s(now_ms)));
                out
            }
        }
    };
}

counters! {
    incoming_records => "IncomingRecords",
    incoming_bytes => "IncomingBytes",
    delivery_to_s3_records => "DeliveryToS3.Records",
    delivery_to_s3_bytes => "DeliveryToS3.Bytes",
    delivery_to_s3_objects => "DeliveryToS3.ObjectCount",
    delivery_to_s3_success => "DeliveryToS3.Success.Succeeded",
    delivery_to_s3_attempts => "DeliveryToS3.Success.Attempts",
    backup_to_s3_records => "BackupToS3.Records",
    backup_to_s3_bytes => "BackupToS3.Bytes",
    backup_to_s3_success => "BackupToS3.Success.Succeeded",
    backup_to_s3_attempts => "BackupToS3.Success.Attempts",
    delivery_to_http_records => "DeliveryToHttpEndpoint.Records",
    delivery_to_http_bytes => "DeliveryToHttpEndpoint.Bytes",
    delivery_to_http_success => "DeliveryToHttpEndpoint.Success.Succeeded",
    delivery_to_http_attempts => "DeliveryToHttpEndpoint.Success.Attempts",
    delivery_to_http_failed_records => "DeliveryToHttpEndpoint.ProcessingFailed",
    processing_success => "ExecuteProcessing.Success.Succeeded",
    processing_attempts => "ExecuteProcessing.Success.Attempts",
    processing_succeeded_records => "SucceedProcessing.Records",
    processing_succeeded_bytes => "SucceedProcessing.Bytes",
    processing_dropped_records => "DroppedProcessing.Records",
    processing_failed_records => "FailedProcessing.Records",
    conversion_succeeded_records => "SucceedConversion.Records",
    conversion_failed_records => "FailedConversion.Records",
    partitioning_failed_records => "PartitioningFailed.Records",
    active_partitions_exceeded_records => "PartitionCountExceeded",
    error_output_records => "ErrorOutput.Records",
    error_output_bytes => "ErrorOutput.Bytes",
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics::default();
        m.oldest_pending_arrival_ms.store(i64::MAX, Ordering::Relaxed);
        m
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// `DataFreshness`: seconds since the oldest undelivered record arrived (0 when none).
    pub fn data_freshness_s(&self, now_ms: i64) -> u64 {
        let oldest = self.oldest_pending_arrival_ms.load(Ordering::Relaxed);
        if oldest == i64::MAX {
            0
        } else {
            (now_ms.saturating_sub(oldest).max(0) / 1000) as u64
        }
    }
}
