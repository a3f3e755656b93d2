//! A scrape's figures as Prometheus metric families, encoded by `prometheus-client` in the
//! text exposition format (OpenMetrics 1.0 text, which Prometheus reads natively).
//!
//! Kinesis's CloudWatch metrics keep their names, turned into Prometheus's spelling: the
//! `sluice_` prefix, snake case, `.` as `_`, `_total` on counters, seconds for latencies (as
//! Prometheus prefers base units; CloudWatch's are milliseconds), and the stream (and shard) as
//! labels where CloudWatch has dimensions. [`STREAM_METRICS`] and [`SHARD_METRICS`] are the
//! mapping; `docs/operations.md` prints it.

use crate::metrics::{ApiCounters, NodeSnapshot, Protocol, StreamCounters};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use sluice_engine::histogram::Histogram;

/// CloudWatch's stream-level metric (dimension StreamName) and its Prometheus series (label
/// `stream`).
pub const STREAM_METRICS: &[(&str, &str)] = &[
    ("GetRecords.Bytes", "sluice_get_records_bytes_total"),
    ("GetRecords.IteratorAgeMilliseconds", "sluice_get_records_iterator_age_milliseconds"),
    ("GetRecords.Latency", "sluice_get_records_latency_seconds"),
    ("GetRecords.Records", "sluice_get_records_records_total"),
    ("GetRecords.Success", "sluice_get_records_success_total"),
    ("IncomingBytes", "sluice_incoming_bytes_total"),
    ("IncomingRecords", "sluice_incoming_records_total"),
    ("PutRecord.Bytes", "sluice_put_record_bytes_total"),
    ("PutRecord.Latency", "sluice_put_record_latency_seconds"),
    ("PutRecord.Success", "sluice_put_record_success_total"),
    ("PutRecords.Bytes", "sluice_put_records_bytes_total"),
    ("PutRecords.Latency", "sluice_put_records_latency_seconds"),
    ("PutRecords.Success", "sluice_put_records_success_total"),
    ("PutRecords.TotalRecords", "sluice_put_records_total_records_total"),
    ("PutRecords.SuccessfulRecords", "sluice_put_records_successful_records_total"),
    ("PutRecords.FailedRecords", "sluice_put_records_failed_records_total"),
    ("PutRecords.ThrottledRecords", "sluice_put_records_throttled_records_total"),
    ("ReadProvisionedThroughputExceeded", "sluice_read_provisioned_throughput_exceeded_total"),
    ("WriteProvisionedThroughputExceeded", "sluice_write_provisioned_throughput_exceeded_total"),
    ("SubscribeToShard.RateExceeded", "sluice_subscribe_to_shard_rate_exceeded_total"),
    ("SubscribeToShard.Success", "sluice_subscribe_to_shard_success_total"),
    ("SubscribeToShardEvent.Bytes", "sluice_subscribe_to_shard_event_bytes_total"),
    ("SubscribeToShardEvent.MillisBehindLatest", "sluice_subscribe_to_shard_event_millis_behind_latest"),
    ("SubscribeToShardEvent.Records", "sluice_subscribe_to_shard_event_records_total"),
    ("SubscribeToShardEvent.Success", "sluice_subscribe_to_shard_event_success_total"),
];

/// CloudWatch's shard-level metric (dimensions StreamName, ShardId; enabled per stream and
/// name by EnableEnhancedMonitoring) and its Prometheus series (labels `stream`, `shard`).
pub const SHARD_METRICS: &[(&str, &str)] = &[
    ("IncomingBytes", "sluice_shard_incoming_bytes_total"),
    ("IncomingRecords", "sluice_shard_incoming_records_total"),
    ("IteratorAgeMilliseconds", "sluice_shard_iterator_age_milliseconds"),
    ("OutgoingBytes", "sluice_shard_outgoing_bytes_total"),
    ("OutgoingRecords", "sluice_shard_outgoing_records_total"),
    ("ReadProvisionedThroughputExceeded", "sluice_shard_read_provisioned_throughput_exceeded_total"),
    ("WriteProvisionedThroughputExceeded", "sluice_shard_write_provisioned_throughput_exceeded_total"),
];

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The build this daemon is, for `sluice_build_info`.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: &'static str,
    pub profile: &'static str,
}

impl BuildInfo {
    pub fn of_this_build() -> BuildInfo {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            profile: if cfg!(debug_assertions) { "debug" } else { "release" },
        }
    }
}

/// The scrape's figures in the text format.
pub fn render(snapshot: NodeSnapshot, build: BuildInfo) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { snapshot, build }));
    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String cannot fail");
    text
}

#[derive(Debug)]
struct Scrape {
    snapshot: NodeSnapshot,
    build: BuildInfo,
}

/// A family's name without the `_total` the encoder adds to counters.
fn base(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(base(name), help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        family.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        family.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

/// A histogram of `scale`-unit values as Prometheus buckets (`scale` 1e-6 turns µs into s).
/// The encoder takes each bucket's own count and writes the cumulative ones.
fn histogram(metric: &mut MetricEncoder, histogram: &Histogram, scale: f64) -> Result<(), std::fmt::Error> {
    let buckets: Vec<(f64, u64)> = histogram
        .bucket_counts()
        .map(|(bound, count)| (if bound == u64::MAX { f64::INFINITY } else { bound as f64 * scale }, count))
        .collect();
    metric.encode_histogram::<NoLabelSet>(histogram.sum as f64 * scale, histogram.count, &buckets, None)
}

fn histograms<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    scale: f64,
    rows: impl IntoIterator<Item = (L, Histogram)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, values) in rows {
        histogram(&mut family.encode_family(&labels)?, &values, scale)?;
    }
    Ok(())
}

type Shard<'a> = [(&'static str, String); 2];
type Core = [(&'static str, String); 1];

/// One API's counters of a stream's.
type PickApi = fn(&StreamCounters) -> &ApiCounters;

const MICROS: f64 = 1e-6;

/// The label set of a family with one series.
const NONE: [(&str, &str); 0] = [];

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut out: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = &self.snapshot;
        let streams = snapshot.streams();
        let rows = |pick: fn(&crate::metrics::StreamCounters, &crate::metrics::ShardCounters) -> u64| {
            streams.iter().map(move |(name, (counters, writes))| ([("stream", name.as_str())], pick(counters, writes)))
        };
        let out = &mut out;
        let name = |cloudwatch: &str| {
            STREAM_METRICS.iter().find(|(from, _)| *from == cloudwatch).map(|(_, to)| *to).expect("mapped")
        };
        counters(
            out,
            name("IncomingBytes"),
            "IncomingBytes: bytes admitted (data and partition keys)",
            rows(|_, w| w.incoming_bytes),
        )?;
        counters(out, name("IncomingRecords"), "IncomingRecords: records admitted", rows(|_, w| w.incoming_records))?;
        counters(
            out,
            name("WriteProvisionedThroughputExceeded"),
            "WriteProvisionedThroughputExceeded: records refused by a shard's write quota",
            rows(|_, w| w.write_throttled),
        )?;
        counters(
            out,
            name("ReadProvisionedThroughputExceeded"),
            "ReadProvisionedThroughputExceeded: GetRecords calls refused by a shard's read quota",
            rows(|c, _| c.read_throttled),
        )?;
        let apis: [(&str, PickApi); 3] =
            [("PutRecord", |c| &c.put_record), ("PutRecords", |c| &c.put_records), ("GetRecords", |c| &c.get_records)];
        for (api, pick) in apis {
            let success = format!("{api}.Success");
            counters(
                out,
                name(&success),
                &format!("{success}: successful {api} calls"),
                streams.iter().map(|(stream, (c, _))| ([("stream", stream.as_str())], pick(c).success)),
            )?;
            let bytes = format!("{api}.Bytes");
            counters(
                out,
                name(&bytes),
                &format!("{bytes}: bytes in successful {api} calls"),
                streams.iter().map(|(stream, (c, _))| ([("stream", stream.as_str())], pick(c).bytes)),
            )?;
            let latency = format!("{api}.Latency");
            histograms(
                out,
                name(&latency),
                &format!("{latency}: seconds per successful {api} call, as the server measures it"),
                MICROS,
                streams.iter().map(|(stream, (c, _))| ([("stream", stream.as_str())], pick(c).latency_us)),
            )?;
        }
        counters(
            out,
            name("PutRecords.TotalRecords"),
            "PutRecords.TotalRecords: records in PutRecords calls",
            rows(|c, _| c.put_records.records),
        )?;
        counters(
            out,
            name("PutRecords.SuccessfulRecords"),
            "PutRecords.SuccessfulRecords: records PutRecords stored",
            rows(|c, _| c.put_records_successful),
        )?;
        counters(
            out,
            name("PutRecords.FailedRecords"),
            "PutRecords.FailedRecords: records PutRecords failed with an internal error",
            rows(|c, _| c.put_records_failed),
        )?;
        counters(
            out,
            name("PutRecords.ThrottledRecords"),
            "PutRecords.ThrottledRecords: records PutRecords refused for throughput",
            rows(|c, _| c.put_records_throttled),
        )?;
        counters(
            out,
            name("GetRecords.Records"),
            "GetRecords.Records: records returned by GetRecords",
            rows(|c, _| c.get_records.records),
        )?;
        gauges(
            out,
            name("GetRecords.IteratorAgeMilliseconds"),
            "GetRecords.IteratorAgeMilliseconds: how far behind the tip the newest GetRecords read (max over shards)",
            streams.iter().map(|(stream, (c, _))| ([("stream", stream.as_str())], c.get_records_iterator_age_ms)),
        )?;
        counters(
            out,
            name("SubscribeToShard.Success"),
            "SubscribeToShard.Success: subscriptions started",
            rows(|c, _| c.subscribe_success),
        )?;
        counters(
            out,
            name("SubscribeToShard.RateExceeded"),
            "SubscribeToShard.RateExceeded: subscriptions refused (resubscribed within 5 s, or too many)",
            rows(|c, _| c.subscribe_rate_exceeded),
        )?;
        counters(
            out,
            name("SubscribeToShardEvent.Success"),
            "SubscribeToShardEvent.Success: events pushed",
            rows(|c, _| c.events.success),
        )?;
        counters(
            out,
            name("SubscribeToShardEvent.Records"),
            "SubscribeToShardEvent.Records: records pushed",
            rows(|c, _| c.events.records),
        )?;
        counters(
            out,
            name("SubscribeToShardEvent.Bytes"),
            "SubscribeToShardEvent.Bytes: bytes pushed",
            rows(|c, _| c.events.bytes),
        )?;
        gauges(
            out,
            name("SubscribeToShardEvent.MillisBehindLatest"),
            "SubscribeToShardEvent.MillisBehindLatest: the newest event's distance from the tip (max over shards)",
            streams.iter().map(|(stream, (c, _))| ([("stream", stream.as_str())], c.events_millis_behind_latest)),
        )?;
        self.encode_shards(out)?;
        self.encode_delivery_streams(out)?;
        self.encode_daemon(out)
    }
}

/// A CloudWatch metric name in Prometheus's spelling: `DeliveryToS3.Records` →
/// `delivery_to_s3_records`.
pub fn snake_case(cloudwatch: &str) -> String {
    let mut out = String::with_capacity(cloudwatch.len() + 8);
    let mut previous: Option<char> = None;
    for c in cloudwatch.chars() {
        if c == '.' {
            out.push('_');
        } else if c.is_ascii_uppercase() {
            if previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit()) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
        previous = Some(c);
    }
    out
}

/// The prefix of the delivery streams' families (CloudWatch's namespace AWS/Firehose).
pub const FIREHOSE_PREFIX: &str = "sluice_firehose_";

impl Scrape {
    /// The delivery streams' families: `sluice_firehose_` + the CloudWatch name in snake case
    /// (`_total` on counters, `_seconds` on the data freshness gauge), labelled
    /// `delivery_stream` (CloudWatch's DeliveryStreamName dimension). A family is written once
    /// per name any delivery stream reports; a delivery stream's series exist while it does.
    fn encode_delivery_streams(&self, out: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let samples = &self.snapshot.delivery_streams;
        let mut names: Vec<&'static str> =
            samples.iter().flat_map(|sample| sample.counters.iter().map(|(name, _)| *name)).collect();
        names.sort_unstable();
        names.dedup();
        for cloudwatch in names {
            let family = format!("{FIREHOSE_PREFIX}{}_total", snake_case(cloudwatch));
            let rows = samples.iter().filter_map(|sample| {
                let value = sample.counters.iter().find(|(name, _)| *name == cloudwatch)?.1;
                Some(([("delivery_stream", sample.name.as_str())], value))
            });
            counters(out, &family, &format!("{cloudwatch} (AWS/Firehose)"), rows)?;
        }
        let mut freshness: Vec<&'static str> = samples.iter().map(|sample| sample.data_freshness_name).collect();
        freshness.sort_unstable();
        freshness.dedup();
        for cloudwatch in freshness {
            let family = format!("{FIREHOSE_PREFIX}{}_seconds", snake_case(cloudwatch));
            let rows = samples.iter().filter(|sample| sample.data_freshness_name == cloudwatch).map(|sample| {
                (
                    [("delivery_stream", sample.name.as_str())],
                    i64::try_from(sample.data_freshness_s).unwrap_or(i64::MAX),
                )
            });
            gauges(out, &family, &format!("{cloudwatch}: age of the oldest record not yet delivered"), rows)?;
        }
        Ok(())
    }

    /// The shard-level families: each only for the streams that enabled its CloudWatch name.
    fn encode_shards(&self, out: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shards = self.snapshot.shards();
        let enabled =
            |stream: &str, metric: &str| self.snapshot.enhanced.get(stream).is_some_and(|set| set.contains(metric));
        for (metric, series) in SHARD_METRICS {
            let rows = shards.iter().filter(|(key, _)| enabled(&key.stream, metric)).map(|(key, (writes, reads))| {
                let labels: Shard =
                    [("stream", key.stream.clone()), ("shard", format!("shardId-{:012}", key.shard_number))];
                let value = match *metric {
                    "IncomingBytes" => writes.incoming_bytes as i64,
                    "IncomingRecords" => writes.incoming_records as i64,
                    "IteratorAgeMilliseconds" => reads.iterator_age_ms,
                    "OutgoingBytes" => reads.outgoing_bytes as i64,
                    "OutgoingRecords" => reads.outgoing_records as i64,
                    "ReadProvisionedThroughputExceeded" => reads.read_throttled as i64,
                    _ => writes.write_throttled as i64,
                };
                (labels, value)
            });
            let help = format!("{metric} per shard (enhanced monitoring)");
            if series.ends_with("_total") {
                counters(out, series, &help, rows.map(|(labels, value)| (labels, value.max(0) as u64)))?;
            } else {
                gauges(out, series, &help, rows)?;
            }
        }
        Ok(())
    }

    /// The daemon's own families: per core where they are a core's, per protocol where that
    /// matters.
    fn encode_daemon(&self, out: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = &self.snapshot;
        let core = |snapshot: &crate::metrics::CoreSnapshot| -> Core { [("core", snapshot.core.to_string())] };
        let cores = &snapshot.cores;
        histograms(
            out,
            "sluice_group_commit_records",
            "Records per group commit (one write and one fdatasync)",
            1.0,
            cores.iter().map(|c| (core(c), c.journal.commit_records)),
        )?;
        histograms(
            out,
            "sluice_group_commit_latency_seconds",
            "Seconds from a group commit's framing to its acknowledgement (writes and fdatasync)",
            MICROS,
            cores.iter().map(|c| (core(c), c.journal.commit_us)),
        )?;
        histograms(
            out,
            "sluice_fdatasync_latency_seconds",
            "Seconds per fdatasync of a journal segment",
            MICROS,
            cores.iter().map(|c| (core(c), c.disk.fdatasync_us)),
        )?;
        counters(
            out,
            "sluice_disk_written_bytes_total",
            "Journal bytes written, padding included",
            cores.iter().map(|c| (core(c), c.journal.bytes_written)),
        )?;
        counters(
            out,
            "sluice_disk_read_bytes_total",
            "Journal bytes read from disk (tail-cache misses)",
            cores.iter().map(|c| (core(c), c.disk.bytes_read)),
        )?;
        gauges(out, "sluice_segments", "Journal segment files", cores.iter().map(|c| (core(c), c.segments as i64)))?;
        gauges(
            out,
            "sluice_segment_bytes",
            "Journal bytes the segment files hold",
            cores.iter().map(|c| (core(c), c.segment_bytes as i64)),
        )?;
        counters(
            out,
            "sluice_tail_cache_hits_total",
            "Runs (a shard's records in one batch) reads took from the in-memory tail cache",
            cores.iter().map(|c| (core(c), c.journal.tail_cache_hits)),
        )?;
        counters(
            out,
            "sluice_tail_cache_misses_total",
            "Runs reads took from segment files on disk (the hit ratio is hits / (hits + misses))",
            cores.iter().map(|c| (core(c), c.journal.tail_cache_misses)),
        )?;
        counters(
            out,
            "sluice_retention_expired_records_total",
            "Records whose retention period ended (no longer readable)",
            cores.iter().map(|c| (core(c), c.journal.retention_expired_records)),
        )?;
        counters(
            out,
            "sluice_retention_deleted_segments_total",
            "Segment files retention deleted (all their records expired or their streams deleted)",
            cores.iter().map(|c| (core(c), c.journal.retention_deleted_segments)),
        )?;
        counters(
            out,
            "sluice_retention_deleted_bytes_total",
            "Journal bytes of the segment files retention deleted",
            cores.iter().map(|c| (core(c), c.journal.retention_deleted_bytes)),
        )?;
        counters(
            out,
            "sluice_delivery_snapshots_total",
            "Snapshots of the delivery-state log (consumer groups, queues) written since start-up",
            cores.iter().map(|c| (core(c), c.delivery_snapshots)),
        )?;
        gauges(
            out,
            "sluice_delivery_log_entries",
            "Entries the delivery-state log holds (what a restart replays from, after trims)",
            cores.iter().map(|c| (core(c), c.delivery_log_entries as i64)),
        )?;
        gauges(out, "sluice_shards", "Shards this core owns", cores.iter().map(|c| (core(c), c.shards as i64)))?;
        gauges(
            out,
            "sluice_raft_groups_led",
            "Shards' Raft groups on this core that this node leads (cluster mode; leader balancing evens them out over the members)",
            cores.iter().map(|c| (core(c), c.raft_groups_led as i64)),
        )?;
        gauges(
            out,
            "sluice_raft_follower_lag_entries",
            "Entries the slowest member of each shard's Raft group this core leads is not known to hold, summed (cluster mode; a member cut off or restarted catches up, and this falls back to what is in flight)",
            cores.iter().map(|c| (core(c), c.raft_follower_lag_entries as i64)),
        )?;
        gauges(
            out,
            "sluice_raft_apply_lag_entries",
            "Entries committed in this core's shards' Raft groups that this node has not yet applied to its journal, summed (cluster mode; reads wait for them; a member back from a snapshot or a crash shows a peak that falls as it catches up)",
            cores.iter().map(|c| (core(c), c.raft_apply_lag_entries as i64)),
        )?;
        gauges(
            out,
            "sluice_peers_connected",
            "Other cluster members this core's peer network holds an open connection to (cluster mode)",
            cores.iter().map(|c| (core(c), c.peers_connected as i64)),
        )?;
        gauges(
            out,
            "sluice_peer_connections_incoming",
            "Connections other cluster members dialed in to this core, open now: one per member once connected (cluster mode)",
            cores.iter().map(|c| (core(c), c.peer_connections_incoming as i64)),
        )?;
        gauges(
            out,
            "sluice_mailbox_jobs",
            "Jobs waiting in the core's mailbox",
            snapshot.mailbox_depths.iter().enumerate().map(|(at, depth)| ([("core", at.to_string())], *depth as i64)),
        )?;
        counters(
            out,
            "sluice_mailbox_jobs_received_total",
            "Jobs the core took from its mailbox: work other cores sent it (cross-core requests, reshard steps, subscriptions) and one per scrape",
            cores.iter().map(|c| (core(c), c.mailbox_jobs)),
        )?;
        gauges(
            out,
            "sluice_mailbox_capacity_jobs",
            "Jobs a core's mailbox holds at most",
            [(NONE, snapshot.mailbox_capacity as i64)],
        )?;
        let per_protocol = |pick: fn(&crate::metrics::CoreSnapshot) -> [u64; 2]| {
            cores.iter().flat_map(move |c| {
                Protocol::ALL.map(|protocol| {
                    let labels: Shard = [("core", c.core.to_string()), ("protocol", protocol.as_str().to_owned())];
                    (labels, pick(c)[protocol as usize] as i64)
                })
            })
        };
        gauges(out, "sluice_connections", "Open client connections", per_protocol(|c| c.connections))?;
        gauges(out, "sluice_requests_in_flight", "Requests being served", per_protocol(|c| c.requests_in_flight))?;
        gauges(
            out,
            "sluice_subscriptions",
            "SubscribeToShard subscriptions running",
            cores.iter().map(|c| (core(c), c.subscriptions as i64)),
        )?;
        let mut operations: std::collections::BTreeMap<&str, crate::metrics::OperationCounters> = Default::default();
        for c in cores {
            for (name, counters) in &c.operations {
                let merged = operations.entry(name).or_default();
                merged.requests += counters.requests;
                merged.errors += counters.errors;
                merged.latency_us.merge(&counters.latency_us);
            }
        }
        counters(
            out,
            "sluice_requests_total",
            "Requests by operation",
            operations.iter().map(|(op, c)| ([("operation", *op)], c.requests)),
        )?;
        counters(
            out,
            "sluice_request_errors_total",
            "Requests answered with an error, by operation",
            operations.iter().map(|(op, c)| ([("operation", *op)], c.errors)),
        )?;
        histograms(
            out,
            "sluice_request_latency_seconds",
            "Seconds per request, by operation",
            MICROS,
            operations.iter().map(|(op, c)| ([("operation", *op)], c.latency_us)),
        )?;
        counters(
            out,
            "sluice_reshards_total",
            "Shard splits and merges completed",
            [(NONE, cores.iter().map(|c| c.reshards).sum())],
        )?;
        counters(
            out,
            "sluice_on_demand_splits_total",
            "Shards the on-demand scaler split",
            [(NONE, cores.iter().map(|c| c.on_demand_splits).sum())],
        )?;
        counters(
            out,
            "sluice_forwarded_requests_total",
            "Requests (or parts of a split PutRecords) sent on to the member leading their shard, the catalog or the delivery state",
            [(NONE, cores.iter().map(|c| c.forwarded_requests).sum())],
        )?;
        counters(
            out,
            "sluice_peer_connections_refused_total",
            "Incoming Raft peer connections refused: a bad hello, a wrong or missing proof of the cluster secret, a broken frame, or too many open",
            [(NONE, cores.iter().map(|c| c.peer_connections_refused).sum())],
        )?;
        counters(
            out,
            "sluice_raft_snapshots_restored_total",
            "Snapshots a shard's replica restored from a peer (it was behind the others' compacted Raft logs)",
            [(NONE, cores.iter().map(|c| c.raft_snapshots_restored).sum())],
        )?;
        counters(
            out,
            "sluice_raft_snapshots_failed_total",
            "Snapshots a shard's replica could not restore (logged with the reason; the leader sends another)",
            [(NONE, cores.iter().map(|c| c.raft_snapshots_failed).sum())],
        )?;
        counters(
            out,
            "sluice_raft_snapshot_records_copied_total",
            "Records copied from peers' journals to restore snapshots",
            [(NONE, cores.iter().map(|c| c.raft_snapshot_records_copied).sum())],
        )?;
        counters(
            out,
            "sluice_raft_leader_changes_total",
            "Times a Raft group hosted here was seen led by another member than before (an election or a handover; writes in flight then get a retriable error)",
            [(NONE, cores.iter().map(|c| c.raft_leader_changes).sum())],
        )?;
        counters(
            out,
            "sluice_raft_leader_transfers_requested_total",
            "Handovers leader balancing asked of the groups this node leads (each to the member leading fewest)",
            [(NONE, cores.iter().map(|c| c.raft_leader_transfers_requested).sum())],
        )?;
        gauges(
            out,
            "sluice_scrape_stale_cores",
            "Cores whose figures in this scrape are from an earlier one (busy mailbox)",
            [(NONE, snapshot.stale_cores as i64)],
        )?;
        gauges(
            out,
            "sluice_disk_free_bytes",
            "Free bytes on the data directory's file system",
            [(NONE, snapshot.disk_free_bytes as i64)],
        )?;
        gauges(
            out,
            "sluice_disk_size_bytes",
            "Size of the data directory's file system",
            [(NONE, snapshot.disk_total_bytes as i64)],
        )?;
        gauges(
            out,
            "sluice_encrypted_streams_without_master_key",
            "Streams encrypted with a master key this node's key store does not hold (their writes and sealed \
             reads fail here with KMSNotFoundException)",
            [(NONE, snapshot.encrypted_streams_without_master_key as i64)],
        )?;
        gauges(
            out,
            "sluice_ready",
            "1 when ready (recovered, listening, not stopping)",
            [(NONE, i64::from(snapshot.ready))],
        )?;
        gauges(
            out,
            "sluice_uptime_seconds",
            "Seconds since the daemon started",
            [(NONE, snapshot.uptime.as_secs() as i64)],
        )?;
        let mut info =
            out.encode_descriptor("sluice_build", "The build: version and profile", None, MetricType::Info)?;
        info.encode_info(&[("version", self.build.version), ("profile", self.build.profile)])?;
        Ok(())
    }
}
