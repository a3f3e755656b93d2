//! The daemon's metrics: what each core counts, and how a scrape merges and exposes them.
//!
//! Nothing is shared on the hot path. Each core counts into plain cells of its own
//! ([`CoreMetrics`], and the [`ShardCounters`] in each shard's core state); a scrape asks every
//! core over its mailbox for a copy ([`CoreSnapshot`]), merges the copies and encodes them in
//! the Prometheus text format ([`exposition`]). The stream-level and shard-level metrics carry
//! CloudWatch's Kinesis names, mapped one to one ([`exposition`] has the table; so does
//! `docs/operations.md`).
//!
//! - [`health`]: the liveness and readiness the metrics port answers.
//! - [`request`]: the metrics port's request heads, parsed.
//! - [`exposition`]: the merged figures as Prometheus metric families.
//!
//! Layer: above `limits` only. It knows no operation and no runtime: the `ops` layer fills
//! the counters and builds the snapshots, the `net` layer serves them.

pub mod exposition;
pub mod health;
pub mod request;

use sluice_engine::histogram::Histogram;
use sluice_engine::journal::JournalStats;
use sluice_engine::storage::dma::DiskStats;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// The client protocols, for the per-protocol gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Native,
    Http,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::Native, Protocol::Http];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::Http => "http",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A shard's write counters, kept on the shard's core in its state, beside its quotas (the
/// admission check already has the shard in hand, so counting costs no lookup).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardCounters {
    /// CloudWatch IncomingBytes: data and partition key bytes admitted (what the quota counts).
    pub incoming_bytes: u64,
    /// CloudWatch IncomingRecords: records admitted to the journal.
    pub incoming_records: u64,
    /// CloudWatch WriteProvisionedThroughputExceeded: records refused by the shard's quota.
    pub write_throttled: u64,
}

impl ShardCounters {
    /// One record of `bytes` met the shard's write quota: admitted or not.
    pub fn count_write(&mut self, bytes: u64, admitted: bool) {
        if admitted {
            self.incoming_bytes += bytes;
            self.incoming_records += 1;
        } else {
            self.write_throttled += 1;
        }
    }

    pub fn merge(&mut self, other: &ShardCounters) {
        self.incoming_bytes += other.incoming_bytes;
        self.incoming_records += other.incoming_records;
        self.write_throttled += other.write_throttled;
    }
}

/// A shard's read counters, kept by the core that answered the reads (GetRecords is answered
/// by the core that received it; subscription events are pushed from the shard's core).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardReads {
    /// CloudWatch OutgoingBytes / OutgoingRecords: GetRecords and SubscribeToShard together.
    pub outgoing_bytes: u64,
    pub outgoing_records: u64,
    /// CloudWatch ReadProvisionedThroughputExceeded: GetRecords calls refused by the quota.
    pub read_throttled: u64,
    /// CloudWatch IteratorAgeMilliseconds: the last read's distance from the tip.
    pub iterator_age_ms: i64,
}

impl ShardReads {
    fn merge(&mut self, other: &ShardReads) {
        self.outgoing_bytes += other.outgoing_bytes;
        self.outgoing_records += other.outgoing_records;
        self.read_throttled += other.read_throttled;
        self.iterator_age_ms = self.iterator_age_ms.max(other.iterator_age_ms);
    }
}

/// One API's calls on one stream: CloudWatch's `<Api>.Success`, `.Latency`, `.Bytes`,
/// `.Records` (not every API has each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiCounters {
    pub success: u64,
    pub latency_us: Histogram,
    pub bytes: u64,
    pub records: u64,
}

impl ApiCounters {
    fn merge(&mut self, other: &ApiCounters) {
        self.success += other.success;
        self.latency_us.merge(&other.latency_us);
        self.bytes += other.bytes;
        self.records += other.records;
    }
}

/// The stream-level figures a core counts as it answers requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamCounters {
    pub put_record: ApiCounters,
    /// `records` is PutRecords.TotalRecords.
    pub put_records: ApiCounters,
    pub put_records_successful: u64,
    pub put_records_failed: u64,
    pub put_records_throttled: u64,
    pub get_records: ApiCounters,
    /// GetRecords.IteratorAgeMilliseconds: the newest call's (max over cores at a scrape).
    pub get_records_iterator_age_ms: i64,
    pub read_throttled: u64,
    pub subscribe_success: u64,
    pub subscribe_rate_exceeded: u64,
    /// SubscribeToShardEvent.{Success, Records, Bytes, MillisBehindLatest}.
    pub events: ApiCounters,
    pub events_millis_behind_latest: i64,
}

impl StreamCounters {
    fn merge(&mut self, other: &StreamCounters) {
        self.put_record.merge(&other.put_record);
        self.put_records.merge(&other.put_records);
        self.put_records_successful += other.put_records_successful;
        self.put_records_failed += other.put_records_failed;
        self.put_records_throttled += other.put_records_throttled;
        self.get_records.merge(&other.get_records);
        self.get_records_iterator_age_ms = self.get_records_iterator_age_ms.max(other.get_records_iterator_age_ms);
        self.read_throttled += other.read_throttled;
        self.subscribe_success += other.subscribe_success;
        self.subscribe_rate_exceeded += other.subscribe_rate_exceeded;
        self.events.merge(&other.events);
        self.events_millis_behind_latest = self.events_millis_behind_latest.max(other.events_millis_behind_latest);
    }
}

/// Requests of one operation, whatever their stream: the daemon's own view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationCounters {
    pub requests: u64,
    pub errors: u64,
    pub latency_us: Histogram,
}

/// What one core counts besides its shards' write counters. Lives on that core only; only
/// the core's own tasks touch it, so plain cells suffice.
#[derive(Default)]
pub struct CoreMetrics {
    pub streams: RefCell<HashMap<Arc<str>, StreamCounters>>,
    /// By (stream, shard number).
    pub shard_reads: RefCell<HashMap<(Arc<str>, u32), ShardReads>>,
    pub operations: RefCell<BTreeMap<&'static str, OperationCounters>>,
    connections: [Cell<u64>; 2],
    requests_in_flight: [Cell<u64>; 2],
    pub reshards: Cell<u64>,
    pub on_demand_splits: Cell<u64>,
    /// Requests (or parts of a split PutRecords) this core sent to the member leading them
    /// (`ops/cluster/forward.rs`): what a client that routes by the table avoids.
    pub forwarded_requests: Cell<u64>,
    /// Jobs this core took from its mailbox: work other cores sent it, and each scrape's one.
    pub mailbox_jobs: Cell<u64>,
}

impl CoreMetrics {
    /// Runs `change` on `stream`'s counters, creating them on first use.
    pub fn stream(&self, stream: &str, change: impl FnOnce(&mut StreamCounters)) {
        let mut streams = self.streams.borrow_mut();
        match streams.get_mut(stream) {
            Some(counters) => change(counters),
            None => change(streams.entry(Arc::from(stream)).or_default()),
        }
    }

    pub fn shard_read(&self, stream: &str, shard_number: u32, change: impl FnOnce(&mut ShardReads)) {
        let mut reads = self.shard_reads.borrow_mut();
        change(reads.entry((Arc::from(stream), shard_number)).or_default());
    }

    pub fn operation(&self, name: &'static str, latency: Duration, failed: bool) {
        let mut operations = self.operations.borrow_mut();
        let counters = operations.entry(name).or_default();
        counters.requests += 1;
        counters.errors += u64::from(failed);
        counters.latency_us.record(latency.as_micros() as u64);
    }

    /// A connection of `protocol` opened (`+1`) or closed (`-1`).
    pub fn connection(&self, protocol: Protocol, opened: bool) {
        let cell = &self.connections[protocol.index()];
        cell.set(if opened { cell.get() + 1 } else { cell.get().saturating_sub(1) });
    }

    /// A request of `protocol` started: counted in flight until the guard drops.
    pub fn request(&self, protocol: Protocol) -> InFlight<'_> {
        let cell = &self.requests_in_flight[protocol.index()];
        cell.set(cell.get() + 1);
        InFlight(cell)
    }

    pub fn connections(&self, protocol: Protocol) -> u64 {
        self.connections[protocol.index()].get()
    }

    pub fn requests_in_flight(&self, protocol: Protocol) -> u64 {
        self.requests_in_flight[protocol.index()].get()
    }
}

/// A request in flight; counted until dropped.
pub struct InFlight<'a>(&'a Cell<u64>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// A shard's identity in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardKey {
    pub stream: String,
    pub shard_number: u32,
}

/// A copy of one core's figures, taken on that core and sent to the scraper.
#[derive(Debug, Clone, Default)]
pub struct CoreSnapshot {
    pub core: usize,
    pub streams: HashMap<String, StreamCounters>,
    pub shard_writes: HashMap<ShardKey, ShardCounters>,
    pub shard_reads: HashMap<ShardKey, ShardReads>,
    pub operations: BTreeMap<&'static str, OperationCounters>,
    pub journal: JournalStats,
    pub disk: DiskStats,
    pub segments: usize,
    /// Bytes of journal the segments hold.
    pub segment_bytes: u64,
    pub connections: [u64; 2],
    pub requests_in_flight: [u64; 2],
    pub subscriptions: usize,
    pub shards: usize,
    pub reshards: u64,
    pub on_demand_splits: u64,
    pub forwarded_requests: u64,
    pub mailbox_jobs: u64,
    /// Snapshots of the delivery-state log written since start-up (core 0).
    pub delivery_snapshots: u64,
    /// Entries the delivery-state log holds (its internal shard, after trims; core 0).
    pub delivery_log_entries: u64,
    /// Shards' Raft groups on this core that this node leads (cluster mode; 0 alone).
    pub raft_groups_led: usize,
    /// Over the shards' groups this core leads, the entries their slowest member lacks.
    pub raft_follower_lag_entries: u64,
    /// Over this core's shard groups, the entries committed and not yet applied to the journal.
    pub raft_apply_lag_entries: u64,
    /// Other members this core's peer network is connected to (cluster mode; 0 alone).
    pub peers_connected: usize,
    /// Connections other members dialed in to this core, open now (cluster mode).
    pub peer_connections_incoming: usize,
    /// Incoming peer connections this core refused (cluster mode).
    pub peer_connections_refused: u64,
    /// Snapshots this core's shard groups restored from a peer, and those that failed (cluster
    /// mode: `ops/cluster/snapshot.rs`).
    pub raft_snapshots_restored: u64,
    pub raft_snapshots_failed: u64,
    /// Records those snapshots copied from peers' journals.
    pub raft_snapshot_records_copied: u64,
    /// Changes of leader this core's groups went through, and the handovers leader balancing
    /// asked of them (cluster mode: `ops::cluster::LeadershipCounts`).
    pub raft_leader_changes: u64,
    pub raft_leader_transfers_requested: u64,
}

/// One delivery stream's figures at a scrape: the delivery engine's counters by their
/// CloudWatch (AWS/Firehose) names, and its data freshness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStreamSample {
    pub name: String,
    /// `IncomingRecords`, `DeliveryToS3.Records`, … (counters).
    pub counters: Vec<(&'static str, u64)>,
    /// `DeliveryToS3.DataFreshness` or `DeliveryToHttpEndpoint.DataFreshness`, by destination.
    pub data_freshness_name: &'static str,
    /// Seconds since the oldest record not yet delivered arrived (0 when none is pending).
    pub data_freshness_s: u64,
}

/// Where a scrape finds the delivery streams' figures: the `ops` layer's delivery streams,
/// registered once they run (this layer knows no delivery engine).
pub trait DeliveryMetrics: Send + Sync {
    fn samples(&self, now_ms: i64) -> Vec<DeliveryStreamSample>;
}

/// The whole node's figures at one scrape: every core's snapshot, and what the scraper reads
/// itself.
#[derive(Debug, Clone, Default)]
pub struct NodeSnapshot {
    pub cores: Vec<CoreSnapshot>,
    /// Jobs waiting in each core's mailbox.
    pub mailbox_depths: Vec<usize>,
    pub mailbox_capacity: usize,
    /// Cores that did not answer this scrape in time (their last answer is used).
    pub stale_cores: usize,
    /// Per stream, the shard-level metrics EnableEnhancedMonitoring enabled (CloudWatch names).
    pub enhanced: BTreeMap<String, std::collections::BTreeSet<String>>,
    pub uptime: Duration,
    /// Free and total bytes of the data directory's file system.
    pub disk_free_bytes: u64,
    pub disk_total_bytes: u64,
    pub ready: bool,
    /// Every delivery stream's figures, by name.
    pub delivery_streams: Vec<DeliveryStreamSample>,
    /// Streams encrypted with a master key this node's key store does not hold
    /// (`ops::sealing::streams_without_master_key`).
    pub encrypted_streams_without_master_key: u64,
}

impl NodeSnapshot {
    /// Every stream's counters, merged over the cores, with the shard write counters summed
    /// into the stream's.
    pub fn streams(&self) -> BTreeMap<String, (StreamCounters, ShardCounters)> {
        let mut merged: BTreeMap<String, (StreamCounters, ShardCounters)> = BTreeMap::new();
        for core in &self.cores {
            for (stream, counters) in &core.streams {
                merged.entry(stream.clone()).or_default().0.merge(counters);
            }
            for (shard, writes) in &core.shard_writes {
                merged.entry(shard.stream.clone()).or_default().1.merge(writes);
            }
        }
        merged
    }

    /// The shard-level figures of shards whose stream enabled enhanced monitoring.
    pub fn shards(&self) -> BTreeMap<ShardKey, (ShardCounters, ShardReads)> {
        let mut merged: BTreeMap<ShardKey, (ShardCounters, ShardReads)> = BTreeMap::new();
        for core in &self.cores {
            for (shard, writes) in &core.shard_writes {
                if self.enhanced.contains_key(&shard.stream) {
                    merged.entry(shard.clone()).or_default().0.merge(writes);
                }
            }
            for (shard, reads) in &core.shard_reads {
                if self.enhanced.contains_key(&shard.stream) {
                    merged.entry(shard.clone()).or_default().1.merge(reads);
                }
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudwatch_names_are_spelled_as_prometheus_families() {
        for (cloudwatch, family) in [
            ("IncomingRecords", "incoming_records"),
            ("DeliveryToS3.Records", "delivery_to_s3_records"),
            ("DeliveryToS3.Success.Succeeded", "delivery_to_s3_success_succeeded"),
            ("DeliveryToHttpEndpoint.DataFreshness", "delivery_to_http_endpoint_data_freshness"),
        ] {
            assert_eq!(exposition::snake_case(cloudwatch), family);
        }
    }

    /// The scrape's buckets are cumulative once: each at least the one before, the `+Inf`
    /// one equal to the count (they were summed twice once, and every quantile came out
    /// as the highest bound).
    #[test]
    fn histogram_buckets_count_the_values_at_or_below_their_bound() {
        let mut snapshot = CoreSnapshot::default();
        for records in [1, 3, 3, 500, u64::MAX] {
            snapshot.journal.commit_records.record(records);
        }
        let node = NodeSnapshot { cores: vec![snapshot], ..Default::default() };
        let text = exposition::render(node, exposition::BuildInfo::of_this_build());
        let bucket = |le: &str| -> u64 {
            let prefix = format!("sluice_group_commit_records_bucket{{le=\"{le}\",core=\"0\"}} ");
            let line = text.lines().find(|line| line.starts_with(&prefix)).unwrap_or_else(|| panic!("{prefix}"));
            line[prefix.len()..].parse().unwrap()
        };
        assert_eq!([bucket("1.0"), bucket("2.0"), bucket("4.0"), bucket("512.0")], [1, 1, 3, 4]);
        assert_eq!(bucket("2147483648.0"), 4);
        assert_eq!(bucket("+Inf"), 5, "every value, u64::MAX too");
        assert!(text.contains("sluice_group_commit_records_count{core=\"0\"} 5\n"), "{text}");
    }

    #[test]
    fn streams_merge_over_cores_and_shards_only_when_enabled() {
        let key = |stream: &str, shard_number| ShardKey { stream: stream.to_owned(), shard_number };
        let mut cores = Vec::new();
        for core in 0..2 {
            let mut snapshot = CoreSnapshot { core, ..Default::default() };
            let mut writes = ShardCounters::default();
            writes.count_write(10, true);
            writes.count_write(10, false);
            snapshot.shard_writes.insert(key("a", core as u32), writes);
            snapshot.shard_writes.insert(key("b", 0), writes);
            let counters = StreamCounters {
                get_records_iterator_age_ms: 100 * core as i64,
                put_records: ApiCounters { records: 3, ..Default::default() },
                ..Default::default()
            };
            snapshot.streams.insert("a".to_owned(), counters);
            cores.push(snapshot);
        }
        let mut enhanced = BTreeMap::new();
        enhanced.insert("a".to_owned(), ["IncomingBytes".to_owned()].into_iter().collect());
        let node = NodeSnapshot { cores, enhanced, ..Default::default() };
        let streams = node.streams();
        assert_eq!(streams["a"].1, ShardCounters { incoming_bytes: 20, incoming_records: 2, write_throttled: 2 });
        assert_eq!(streams["a"].0.put_records.records, 6);
        assert_eq!(streams["a"].0.get_records_iterator_age_ms, 100, "the oldest reader wins");
        assert_eq!(streams["b"].1.incoming_records, 2);
        let shards = node.shards();
        assert_eq!(shards.len(), 2, "stream a's two shards, not b's");
        assert_eq!(shards[&key("a", 1)].0.incoming_bytes, 10);
    }
}
