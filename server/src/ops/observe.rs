//! What the operations tell the metrics (`crate::metrics`): one observation per request,
//! taken around the dispatch; the per-event counts of subscriptions; and the copy of a core's
//! figures that a scrape asks each core for ([`snapshot`]).
//!
//! Stream labels come only from streams that exist (the routes), so a client naming streams
//! at random cannot grow the number of series.

use crate::kinesis::shard_iterator;
use crate::limits::REQUEST_FAILURE_LOG_INTERVAL_MS;
use crate::metrics::{CoreSnapshot, ShardKey, StreamCounters};
use crate::ops::node::Node;
use sluice_model::{ErrorKind, KinesisError, Request, Response, SubscribeToShardEvent};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// A request being served: what its figures need from the request, before it is consumed.
pub struct Observation {
    operation: &'static str,
    /// The stream (and shard, for GetRecords) it concerns, if it exists.
    stream: Option<(String, Option<u32>)>,
    started: Instant,
    bytes: u64,
}

/// Called by the dispatch before the request runs.
pub fn begin(node: &Node, request: &Request) -> Observation {
    let identity = node.identity();
    let (stream, bytes) = match request {
        Request::PutRecord(input) => (
            identity
                .resolve_stream(input.stream_name.as_deref(), input.stream_arn.as_ref())
                .ok()
                .map(|s| (s.to_owned(), None)),
            input.data.len() as u64,
        ),
        Request::PutRecords(input) => (
            identity
                .resolve_stream(input.stream_name.as_deref(), input.stream_arn.as_ref())
                .ok()
                .map(|s| (s.to_owned(), None)),
            input.records.iter().map(|record| record.data.len() as u64).sum(),
        ),
        Request::GetRecords(input) => (
            // The iterator is checked again by GetRecords; a bad one just goes unlabelled here.
            shard_iterator::decode(&input.shard_iterator, &node.shared.iterator_key(), node.now_ms())
                .ok()
                .map(|iterator| (iterator.stream_name, Some(iterator.shard_number))),
            0,
        ),
        Request::SubscribeToShard(input) => {
            (identity.consumer_of(&input.consumer_arn).ok().map(|consumer| (consumer.stream, None)), 0)
        }
        _ => (None, 0),
    };
    let stream = stream.filter(|(name, _)| node.routes().streams.contains_key(name));
    Observation { operation: request.operation().name(), stream, started: Instant::now(), bytes }
}

thread_local! {
    /// This core's last "request failed" line, and the failures it left out since.
    static FAILURE_LOGGED: Cell<(Option<Instant>, u64)> = const { Cell::new((None, 0)) };
}

/// Whether this core logs a failed request now ([`REQUEST_FAILURE_LOG_INTERVAL_MS`]), with
/// the failures it left out since its last line; `None`: left out (counted for the next).
fn failure_to_log() -> Option<u64> {
    FAILURE_LOGGED.with(|logged| {
        let (last, suppressed) = logged.get();
        let now = Instant::now();
        let due =
            last.is_none_or(|at| now.duration_since(at) >= Duration::from_millis(REQUEST_FAILURE_LOG_INTERVAL_MS));
        logged.set(if due { (Some(now), 0) } else { (last, suppressed + 1) });
        due.then_some(suppressed)
    })
}

/// Called by the dispatch with the request's outcome.
/// `result` is the request's answer as this module needs it: `Ok(Some(response))`, `Ok(None)`
/// for an accepted subscription (whose events follow), or the error. (Not the dispatch's
/// `Answer` itself, which would make the two modules import each other.)
pub fn finish(node: &Node, observation: Observation, result: Result<Option<&Response>, &KinesisError>) {
    let latency = observation.started.elapsed();
    let metrics = &node.metrics;
    metrics.operation(observation.operation, latency, result.is_err());
    if let Err(error) = result {
        // The server's own failures are logged with what they concern (the request's id comes
        // from the protocol's span); a client's mistakes are its answer, not a log line.
        if error.kind == ErrorKind::InternalFailure {
            let (stream, shard) = match &observation.stream {
                Some((stream, shard)) => (stream.as_str(), shard.map(sluice_model::ShardId::from_number)),
                None => ("", None),
            };
            let shard = shard.map(|id| id.to_string()).unwrap_or_default();
            if let Some(suppressed) = failure_to_log() {
                tracing::error!(operation = observation.operation, stream, shard, %error, suppressed, "request failed");
            }
        }
    }
    let Some((stream, shard)) = observation.stream else { return };
    let latency_us = latency.as_micros() as u64;
    let throttled = matches!(result, Err(error) if error.kind == ErrorKind::ProvisionedThroughputExceeded);
    match result {
        Ok(Some(Response::PutRecord(_))) => metrics.stream(&stream, |counters| {
            counters.put_record.success += 1;
            counters.put_record.bytes += observation.bytes;
            counters.put_record.latency_us.record(latency_us);
        }),
        Ok(Some(Response::PutRecords(output))) => metrics.stream(&stream, |counters| {
            let total = output.records.len() as u64;
            let throttled = output
                .records
                .iter()
                .filter(|record| record.error_code == Some(ErrorKind::ProvisionedThroughputExceeded))
                .count() as u64;
            let failed = output.records.iter().filter(|record| record.error_code.is_some()).count() as u64;
            counters.put_records.success += 1;
            counters.put_records.bytes += observation.bytes;
            counters.put_records.records += total;
            counters.put_records.latency_us.record(latency_us);
            counters.put_records_successful += total - failed;
            counters.put_records_throttled += throttled;
            counters.put_records_failed += failed - throttled;
        }),
        Ok(Some(Response::GetRecords(output))) => {
            let records = output.records.len() as u64;
            let bytes: u64 = output.records.iter().map(|record| record.data.len() as u64).sum();
            let age_ms = output.millis_behind_latest.unwrap_or(0);
            metrics.stream(&stream, |counters| {
                counters.get_records.success += 1;
                counters.get_records.records += records;
                counters.get_records.bytes += bytes;
                counters.get_records.latency_us.record(latency_us);
                counters.get_records_iterator_age_ms = age_ms;
            });
            if let Some(number) = shard {
                metrics.shard_read(&stream, number, |reads| {
                    reads.outgoing_bytes += bytes;
                    reads.outgoing_records += records;
                    reads.iterator_age_ms = age_ms;
                });
            }
        }
        Ok(None) => metrics.stream(&stream, |counters| counters.subscribe_success += 1),
        Err(_) if observation.operation == "GetRecords" && throttled => {
            metrics.stream(&stream, |counters| counters.read_throttled += 1);
            if let Some(number) = shard {
                metrics.shard_read(&stream, number, |reads| reads.read_throttled += 1);
            }
        }
        Err(error)
            if observation.operation == "SubscribeToShard"
                && matches!(error.kind, ErrorKind::ResourceInUse | ErrorKind::LimitExceeded) =>
        {
            metrics.stream(&stream, |counters| counters.subscribe_rate_exceeded += 1)
        }
        _ => {}
    }
}

/// A subscription pushed `event` from shard `shard_number` of `stream` (on the shard's core).
pub fn event_pushed(node: &Node, stream: &str, shard_number: u32, event: &SubscribeToShardEvent) {
    let records = event.records.len() as u64;
    let bytes: u64 = event.records.iter().map(|record| record.data.len() as u64).sum();
    node.metrics.stream(stream, |counters: &mut StreamCounters| {
        counters.events.success += 1;
        counters.events.records += records;
        counters.events.bytes += bytes;
        counters.events_millis_behind_latest = event.millis_behind_latest;
    });
    node.metrics.shard_read(stream, shard_number, |reads| {
        reads.outgoing_bytes += bytes;
        reads.outgoing_records += records;
        reads.iterator_age_ms = event.millis_behind_latest;
    });
}

/// A copy of this core's figures, for a scrape.
pub fn snapshot(node: &Node) -> CoreSnapshot {
    let routes = node.routes();
    let mut shard_writes = std::collections::HashMap::new();
    for stream in routes.streams.values() {
        for shard in stream.shards().filter(|shard| shard.core == node.id) {
            if let Some(counters) = node.shards.with(shard.uid, |state| state.counters) {
                shard_writes
                    .insert(ShardKey { stream: stream.meta.name.clone(), shard_number: shard.number }, counters);
            }
        }
    }
    let metrics = &node.metrics;
    // Only streams that still exist: a deleted stream's series end with it.
    let streams = metrics
        .streams
        .borrow()
        .iter()
        .filter(|(name, _)| routes.streams.contains_key(&***name))
        .map(|(name, counters)| (name.to_string(), counters.clone()))
        .collect();
    let shard_reads = metrics
        .shard_reads
        .borrow()
        .iter()
        .filter(|((name, _), _)| routes.streams.contains_key(&**name))
        .map(|((name, number), reads)| (ShardKey { stream: name.to_string(), shard_number: *number }, *reads))
        .collect();
    use crate::metrics::Protocol::{Http, Native};
    let cluster = crate::ops::cluster::core();
    let peers = cluster.as_ref().map_or_else(Default::default, |core| core.peers());
    let led = cluster.as_ref().map_or_else(Vec::new, |core| core.led_groups());
    CoreSnapshot {
        core: node.id,
        streams,
        shard_writes,
        shard_reads,
        operations: metrics.operations.borrow().clone(),
        journal: node.journal.stats(),
        disk: sluice_engine::storage::dma::disk_stats(),
        segments: node.journal.segment_count(),
        segment_bytes: node.journal.segment_bytes(),
        connections: [metrics.connections(Native), metrics.connections(Http)],
        requests_in_flight: [metrics.requests_in_flight(Native), metrics.requests_in_flight(Http)],
        subscriptions: node.subscriptions.len(),
        shards: node.shards.len(),
        reshards: metrics.reshards.get(),
        on_demand_splits: metrics.on_demand_splits.get(),
        forwarded_requests: metrics.forwarded_requests.get(),
        mailbox_jobs: metrics.mailbox_jobs.get(),
        delivery_snapshots: node.delivery.as_ref().map_or(0, |delivery| delivery.snapshots_written()),
        delivery_log_entries: node.delivery.as_ref().map_or(0, |delivery| delivery.log_entries(&node.journal)),
        raft_groups_led: led.len(),
        raft_follower_lag_entries: led.iter().map(|group| group.host.follower_lag()).sum(),
        raft_apply_lag_entries: cluster.as_ref().map_or(0, |core| core.apply_lag_entries()),
        peers_connected: peers.connected,
        peer_connections_incoming: peers.incoming,
        peer_connections_refused: peers.refused,
        raft_snapshots_restored: cluster.as_ref().map_or(0, |core| core.snapshots.restored.get()),
        raft_snapshots_failed: cluster.as_ref().map_or(0, |core| core.snapshots.failed.get()),
        raft_snapshot_records_copied: cluster.as_ref().map_or(0, |core| core.snapshots.records_copied.get()),
        raft_leader_changes: cluster.as_ref().map_or(0, |core| core.leadership.changes.get()),
        raft_leader_transfers_requested: cluster.as_ref().map_or(0, |core| core.leadership.transfers_requested.get()),
    }
}
