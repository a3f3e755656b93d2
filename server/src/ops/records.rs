//! The data plane: PutRecord, PutRecords, GetShardIterator, GetRecords.
//!
//! Writes are routed by the routes snapshot (MD5 of the partition key, or the explicit hash
//! key) to their shards' cores, appended there in one call per core (all cores at once), and
//! answered per record in request order. Each shard's core admits a record against the
//! shard's quotas before appending it.

use crate::kinesis::errors::engine_error;
use crate::kinesis::positions::{own_sequence_number, start_position};
use crate::kinesis::shard_iterator::{self, IteratorError, ShardIterator};
use crate::kinesis::views;
use crate::limits::{FOLLOWER_CATCH_UP_WAIT_MS, PUT_ROUTING_ATTEMPTS_MAX};
use crate::ops::node::Node;
use crate::runtime::routes::{ShardRoute, StreamRoute};
use bytes::{Bytes, BytesMut};
use rustc_hash::FxHashMap;
use sluice_engine::catalog::{RecordDistribution, StreamStatus};
use sluice_engine::routing::{HashKey, HashKeyRange};
use sluice_engine::{AppendRecord, Appended, EngineError, StartPosition};
use sluice_model::limits::{GET_RECORDS_BYTES_MAX, GET_RECORDS_COUNT_MAX};
use sluice_model::*;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

type Result<T, E = KinesisError> = std::result::Result<T, E>;

/// The stream a request names, from the routes.
pub fn stream_route(node: &Node, name: Option<&str>, arn: Option<&StreamArn>) -> Result<Arc<StreamRoute>> {
    let name = node.identity().resolve_stream(name, arn)?;
    route_of(node, name)
}

/// The stream named `name`, from the routes.
pub fn route_of(node: &Node, name: &str) -> Result<Arc<StreamRoute>> {
    node.routes().streams.get(name).cloned().ok_or_else(|| KinesisError::stream_not_found(node.identity(), name))
}

/// Shard `shard_id` of `stream`, or ResourceNotFound.
pub fn shard_of(node: &Node, stream: &StreamRoute, shard_id: &ShardId) -> Result<ShardRoute> {
    shard_id
        .number()
        .and_then(|number| stream.shard(number))
        .ok_or_else(|| KinesisError::shard_not_found(node.identity(), &stream.meta.name, shard_id))
}

pub async fn put_record(node: &Rc<Node>, input: PutRecordInput) -> Result<PutRecordOutput> {
    if let Some(ordering) = &input.sequence_number_for_ordering {
        // Per-shard order is arrival order already; the argument only has to be one of ours.
        if own_sequence_number(ordering).is_none() {
            return Err(KinesisError::invalid_argument(format!("Invalid SequenceNumberForOrdering {ordering}")));
        }
    }
    let route = stream_route(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?;
    let encryption_type = Some(encryption_type(&route));
    let entry = (input.data, input.partition_key.unwrap_or_default(), input.explicit_hash_key);
    let mut results = put_entries(node, route, vec![entry], true).await?;
    let (shard_id, sequence_number) = results.pop().expect("one result per record")?;
    Ok(PutRecordOutput { shard_id, sequence_number, encryption_type })
}

/// What a put answers as its `EncryptionType`: whether the stream seals new records.
fn encryption_type(route: &StreamRoute) -> EncryptionType {
    if route.meta.encryption.is_some() {
        EncryptionType::Kms
    } else {
        EncryptionType::None
    }
}

pub async fn put_records(node: &Rc<Node>, input: PutRecordsInput) -> Result<PutRecordsOutput> {
    let route = stream_route(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?;
    let encryption_type = Some(encryption_type(&route));
    let entries = input
        .records
        .into_iter()
        .map(|entry| (entry.data, entry.partition_key.unwrap_or_default(), entry.explicit_hash_key))
        .collect();
    let results = put_entries(node, route, entries, false).await?;
    let failed = results.iter().filter(|result| result.is_err()).count() as i32;
    let records = results
        .into_iter()
        .map(|result| match result {
            Ok((shard_id, sequence_number)) => PutRecordsResultEntry {
                sequence_number: Some(sequence_number),
                shard_id: Some(shard_id),
                ..Default::default()
            },
            Err(error) => PutRecordsResultEntry::failed(error),
        })
        .collect();
    Ok(PutRecordsOutput { failed_record_count: Some(failed), records, encryption_type })
}

/// A record's outcome: its shard and sequence number, or why it failed.
type Outcome = Result<(ShardId, SequenceNumber)>;

/// Routes each record to its shard, appends on each shard's core (all cores at once), and
/// returns the outcomes in request order.
/// Records above the stream's MaxRecordSizeInKiB fail the whole call with AWS's validation
/// message (`single`: PutRecord's member path, else PutRecords' entry paths).
async fn put_entries(
    node: &Rc<Node>,
    route: Arc<StreamRoute>,
    entries: Vec<(Bytes, String, Option<sluice_model::HashKey>)>,
    single: bool,
) -> Result<Vec<Outcome>> {
    if matches!(route.meta.status, StreamStatus::Creating | StreamStatus::Deleting) {
        return Err(KinesisError::resource_not_found(format!("Stream {} is not active", route.meta.name)));
    }
    // The stream's own MaxRecordSizeInKiB (the model checked the largest any stream takes).
    let record_bytes_max = route.meta.max_record_size_kib as usize * 1024;
    for (position, (data, partition_key, _)) in entries.iter().enumerate() {
        let bytes = data.len() + partition_key.len();
        if bytes > record_bytes_max {
            let path = if single { "data".to_owned() } else { format!("records.{}.member.data", position + 1) };
            return Err(KinesisError::validation(Violation::max_length(
                &format!("[{bytes} bytes of data and partition key]"),
                &path,
                record_bytes_max,
            )));
        }
    }
    let auto = route.meta.distribution == RecordDistribution::Auto;
    // Replicated, an AUTO stream's records go to the shards this node leads, so that they are
    // proposed here rather than forwarded (`cluster::forward` sends the request to a member
    // that leads one when this node leads none).
    let led_here = if auto { open_ranges_led_here(node, &route) } else { Vec::new() };
    let name: Arc<str> = Arc::from(route.meta.name.as_str());
    // Every partition key of the request in one buffer, each record's key a slice of it: the
    // copies of a record (one kept here to route it again, one appended) are then reference
    // counts on one allocation per request, not an allocation per record (`Bytes::from` a
    // `String` allocates again on the first clone).
    let mut keys = BytesMut::with_capacity(entries.iter().map(|(_, key, _)| key.len()).sum());
    for (_, key, _) in &entries {
        keys.extend_from_slice(key.as_bytes());
    }
    let keys = keys.freeze();
    let mut key_start = 0;
    // (position in the request, hash key, record without its shard yet)
    let mut unrouted: Vec<(usize, HashKey, AppendRecord)> = entries
        .into_iter()
        .enumerate()
        .map(|(position, (data, partition_key, explicit))| {
            let hash_key = match explicit {
                _ if auto => auto_hash_key_in(&led_here),
                Some(key) => HashKey(key.0),
                None => HashKey::from_partition_key(&partition_key),
            };
            let partition_key = keys.slice(key_start..key_start + partition_key.len());
            key_start += partition_key.len();
            (position, hash_key, AppendRecord { shard_uid: 0, partition_key, data, sealed: false })
        })
        .collect();
    let mut results: Vec<Option<Outcome>> = vec![None; unrouted.len()];
    // A record routed to a shard that a reshard closed meanwhile comes back unanswered and is
    // routed again with the newer routes, which send its key to a child.
    let mut route = route;
    for attempt in 0..PUT_ROUTING_ATTEMPTS_MAX {
        if unrouted.is_empty() {
            break;
        }
        if attempt > 0 {
            route = route_of(node, &name)?;
        }
        // Per core: the records' positions and hash keys, and the records with their shards.
        type CoreBatch = (Vec<(usize, HashKey)>, Vec<(ShardRoute, AppendRecord)>);
        let mut by_core: BTreeMap<usize, CoreBatch> = BTreeMap::new();
        for (position, hash_key, mut record) in unrouted.drain(..) {
            let shard =
                route.shard_for(hash_key).ok_or_else(|| KinesisError::internal("no open shard covers the hash key"))?;
            record.shard_uid = shard.uid;
            let (positions, records) = by_core.entry(shard.core).or_default();
            positions.push((position, hash_key));
            records.push((shard, record));
        }
        let tasks: Vec<_> = by_core
            .into_iter()
            .map(|(core, (positions, records))| {
                let (node, name) = (node.clone(), name.clone());
                let retry: Vec<AppendRecord> = records.iter().map(|(_, record)| record.clone()).collect();
                let task = glommio::spawn_local(async move {
                    node.run_on(core, move |node| async move { append_admitted(node, name, records).await }).await
                });
                (positions, retry, task)
            })
            .collect();
        for (positions, retry, task) in tasks {
            match task.await {
                Ok(outcomes) => {
                    for (((position, hash_key), record), outcome) in positions.into_iter().zip(retry).zip(outcomes) {
                        match outcome {
                            Some(outcome) => results[position] = Some(outcome),
                            None => unrouted.push((position, hash_key, record)),
                        }
                    }
                }
                Err(error) => {
                    for (position, _) in positions {
                        results[position] = Some(Err(error.clone()));
                    }
                }
            }
        }
    }
    for (position, _, _) in unrouted {
        results[position] = Some(Err(KinesisError::internal("the stream is resharding; retry")));
    }
    Ok(results.into_iter().map(|result| result.expect("every record has a result")).collect())
}

/// The AUTO distribution strategy's hash key for the next record: it ignores the partition and
/// explicit hash keys (the strategy's documentation) and spreads records evenly over the
/// hash-key space, so over the open shards in proportion to their ranges. A Weyl sequence
/// (adding 2^128 divided by the golden ratio, odd) visits the space evenly without a random
/// number generator; each core keeps its own.
fn auto_hash_key() -> HashKey {
    const STEP: u128 = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835;
    thread_local! {
        static NEXT: std::cell::Cell<u128> = const { std::cell::Cell::new(0) };
    }
    NEXT.with(|next| {
        let key = next.get().wrapping_add(STEP);
        next.set(key);
        HashKey(key)
    })
}

/// The hash-key ranges of `route`'s open shards this node leads (none on a node alone): where
/// an AUTO-distribution stream's records arriving here go.
fn open_ranges_led_here(node: &Node, route: &StreamRoute) -> Vec<HashKeyRange> {
    let Some(cluster) = node.shared.config.cluster.as_ref() else { return Vec::new() };
    route
        .open_shards()
        .filter(|(_, shard)| node.shared.leaders.leader(shard.uid) == Some(cluster.node_id))
        .map(|(range, _)| range)
        .collect()
}

/// [`auto_hash_key`] mapped into one of `ranges` (picked by the key, so that records spread over
/// them all), or as it is if there are none.
fn auto_hash_key_in(ranges: &[HashKeyRange]) -> HashKey {
    let HashKey(key) = auto_hash_key();
    if ranges.is_empty() {
        return HashKey(key);
    }
    let range = ranges[(key % ranges.len() as u128) as usize];
    let width = range.end.0 - range.start.0;
    HashKey(range.start.0 + if width == u128::MAX { key } else { key % (width + 1) })
}

/// On the shards' core: admits each record against its shard's write quota, appends the
/// admitted ones in one call, and answers per record; `None` for a record whose shard a
/// reshard closed (or that this core does not serve yet), which the caller routes again.
async fn append_admitted(
    node: Rc<Node>,
    stream: Arc<str>,
    records: Vec<(ShardRoute, AppendRecord)>,
) -> Vec<Option<Outcome>> {
    let now_ms = node.now_ms();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; records.len()];
    let mut admitted = Vec::with_capacity(records.len());
    let mut admitted_at = Vec::with_capacity(records.len());
    for (position, (shard, record)) in records.iter().enumerate() {
        if node.journal.is_closed(shard.uid) {
            continue;
        }
        let bytes = (record.data.len() + record.partition_key.len()) as u64;
        let alone = node.shared.config.cluster.is_none();
        let verdict = node.shards.with(shard.uid, |state| {
            // Demand counts what producers asked for, admitted or not (see kinesis/demand.rs).
            // Replicated, every node counts what it applies instead (`cluster::records`): the
            // on-demand scaler runs on the metadata leader, which admits only its own shards.
            if alone {
                state.demand.bytes += bytes;
                state.demand.records += 1;
            }
            let admitted = state.limits.admit_write(now_ms, bytes);
            state.counters.count_write(bytes, admitted);
            admitted
        });
        match verdict {
            Some(true) => {
                admitted.push(record.clone());
                admitted_at.push(position);
            }
            Some(false) => {
                outcomes[position] = Some(Err(KinesisError::rate_exceeded(
                    node.identity(),
                    &stream,
                    &ShardId::from_number(shard.number),
                    "A shard takes 1 MiB/s and 1,000 records/s of writes.",
                )))
            }
            // Not served here: only in a core's own view of an unfinished catalog change.
            // Routed again like a closed shard's record.
            None => {}
        }
    }
    if admitted.is_empty() {
        return outcomes;
    }
    if let Err(error) = node.seal_appends(&stream, &mut admitted) {
        for position in admitted_at {
            outcomes[position] = Some(Err(error.clone()));
        }
        return outcomes;
    }
    if node.shared.config.cluster.is_some() {
        // Replicated: answered once the shard's entry is committed and applied here.
        let acks = crate::ops::cluster::records::append(&node, admitted).await;
        // A record without an answer came after its shard's seal: routed again.
        for (position, ack) in admitted_at.into_iter().zip(acks) {
            let number = records[position].0.number;
            outcomes[position] = ack.map(|ack| {
                ack.map(|Appended { sequence_number, .. }| {
                    (ShardId::from_number(number), views::sequence_number(sequence_number))
                })
            });
        }
        return outcomes;
    }
    match node.journal.append(admitted).await {
        Ok(acks) => {
            // A request's records interleave the core's shards (their keys are hashed), so
            // each shard's id is formatted once per call and copied for its records, not
            // formatted per record.
            let mut shard_ids: FxHashMap<u32, ShardId> = FxHashMap::default();
            for (position, Appended { sequence_number, .. }) in admitted_at.into_iter().zip(acks) {
                let number = records[position].0.number;
                let shard_id = shard_ids.entry(number).or_insert_with(|| ShardId::from_number(number)).clone();
                outcomes[position] = Some(Ok((shard_id, views::sequence_number(sequence_number))));
            }
        }
        // Closed while the append waited for queue space: nothing was written.
        Err(EngineError::ShardClosed(_)) => {}
        Err(error) => {
            // A PutRecords answers the failure per record, so the request's own log line
            // ("request failed", for whole failures) would not name what was lost.
            let mut shards: Vec<u32> = admitted_at.iter().map(|&position| records[position].0.number).collect();
            shards.sort_unstable();
            shards.dedup();
            let shards: Vec<String> =
                shards.into_iter().map(|number| ShardId::from_number(number).to_string()).collect();
            tracing::error!(%stream, ?shards, records = admitted_at.len(), %error, "append failed; its records are refused");
            let error = engine_error(error);
            for position in admitted_at {
                outcomes[position] = Some(Err(error.clone()));
            }
        }
    }
    outcomes
}

pub async fn get_shard_iterator(node: &Rc<Node>, input: GetShardIteratorInput) -> Result<GetShardIteratorOutput> {
    shard_iterator_here(node, input).await?.map_err(|behind| behind.error)
}

/// A GetShardIterator a replicated member cannot answer yet: its sequence number lies past
/// what the member applied of shard `shard_uid`, even after [`FOLLOWER_CATCH_UP_WAIT_MS`]; or
/// it asks for LATEST, and the member could not learn its group's commit or apply up to it
/// (`cluster::records::caught_up_to_commit`).
pub struct NotAppliedHere {
    pub shard_uid: u64,
    /// The answer if nobody else can give one (InvalidArgumentException: past the tip; an
    /// InternalFailure to retry for LATEST).
    pub error: KinesisError,
}

/// [`get_shard_iterator`], telling a sequence number this member has not applied yet apart
/// from the other errors: the dispatch then asks the shard's leader.
pub async fn shard_iterator_here(
    node: &Rc<Node>,
    input: GetShardIteratorInput,
) -> Result<std::result::Result<GetShardIteratorOutput, NotAppliedHere>> {
    let route = stream_route(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?;
    let shard = shard_of(node, &route, &input.shard_id)?;
    let position = start_position(
        &input.shard_iterator_type,
        input.starting_sequence_number.as_ref(),
        input.timestamp,
        shard.seq_prefix,
        shard.number,
        "GetShardIterator",
    )?;
    let stream_name = route.meta.name.clone();
    let throttled_stream = stream_name.clone();
    let record_index = node
        .run_on(shard.core, move |node| async move {
            let admitted = node.shards.with(shard.uid, |state| state.limits.admit_get_shard_iterator(node.now_ms()));
            match admitted {
                Some(true) if matches!(position, StartPosition::Latest) && node.shared.config.cluster.is_some() => {
                    match crate::ops::cluster::records::caught_up_to_commit(shard.uid).await {
                        Ok(()) => node.journal.resolve(shard.uid, position).await.map(Ok).map_err(engine_error),
                        Err(error) => Ok(Err(NotAppliedHere { shard_uid: shard.uid, error })),
                    }
                }
                Some(true) => match node.journal.resolve(shard.uid, position).await {
                    // Replicated: a sequence number the shard's leader acknowledged, which this
                    // member has not applied yet.
                    Err(EngineError::IndexBeyondTip { index, .. }) if node.shared.config.cluster.is_some() => {
                        caught_up(&node, shard.uid, index).await;
                        match node.journal.resolve(shard.uid, position).await {
                            Err(error @ EngineError::IndexBeyondTip { .. }) => {
                                Ok(Err(NotAppliedHere { shard_uid: shard.uid, error: engine_error(error) }))
                            }
                            resolved => resolved.map(Ok).map_err(engine_error),
                        }
                    }
                    resolved => resolved.map(Ok).map_err(engine_error),
                },
                Some(false) => Err(KinesisError::rate_exceeded(
                    node.identity(),
                    &throttled_stream,
                    &ShardId::from_number(shard.number),
                    "GetShardIterator allows 5 calls/s per shard.",
                )),
                None => Err(KinesisError::internal("shard moved; retry")),
            }
        })
        .await??;
    let record_index = match record_index {
        Ok(index) => index,
        Err(behind) => return Ok(Err(behind)),
    };
    let iterator = ShardIterator {
        stream_name,
        shard_uid: shard.uid,
        shard_number: shard.number,
        record_index,
        issued_ms: node.now_ms(),
    };
    let encoded = shard_iterator::encode(&iterator, &node.shared.iterator_key());
    Ok(Ok(GetShardIteratorOutput { shard_iterator: Some(encoded) }))
}

/// Waits until shard `uid`'s journal here holds the records before `index` (an iterator may
/// then start at `index`), for [`FOLLOWER_CATCH_UP_WAIT_MS`] at most.
async fn caught_up(node: &Node, uid: u64, index: u64) {
    let Ok(Some(stored)) = node.journal.wait_for_index(uid, index.saturating_sub(1)) else { return };
    let wait = glommio::timer::sleep(std::time::Duration::from_millis(FOLLOWER_CATCH_UP_WAIT_MS));
    futures_lite::future::or(
        async {
            let _ = stored.await;
        },
        wait,
    )
    .await;
}

pub async fn get_records(node: &Rc<Node>, input: GetRecordsInput) -> Result<GetRecordsOutput> {
    let limit = input.limit.map_or(GET_RECORDS_COUNT_MAX, |limit| limit as usize);
    let now_ms = node.now_ms();
    let key = node.shared.iterator_key();
    let iterator = shard_iterator::decode(&input.shard_iterator, &key, now_ms).map_err(|error| match error {
        IteratorError::Expired { .. } => KinesisError::new(
            ErrorKind::ExpiredIterator,
            "Iterator expired. The iterator was created more than 5 minutes ago",
        ),
        other => KinesisError::invalid_argument(format!("Invalid ShardIterator: {other}")),
    })?;
    let route = route_of(node, &iterator.stream_name)?;
    let shard_id = ShardId::from_number(iterator.shard_number);
    let shard = route
        .shard(iterator.shard_number)
        .filter(|shard| shard.uid == iterator.shard_uid)
        .ok_or_else(|| KinesisError::shard_not_found(node.identity(), &iterator.stream_name, &shard_id))?;
    let from = iterator.record_index;
    let stream_name = iterator.stream_name.clone();
    let batch = node
        .run_on(shard.core, move |node| async move {
            let now_ms = node.now_ms();
            match node.shards.with(shard.uid, |state| state.limits.admit_get_records_call(now_ms)) {
                Some(true) => {}
                Some(false) => {
                    return Err(KinesisError::rate_exceeded(
                        node.identity(),
                        &stream_name,
                        &shard_id,
                        "GetRecords allows 5 calls/s and 2 MiB/s per shard.",
                    ))
                }
                None => return Err(KinesisError::internal("shard moved; retry")),
            }
            let mut batch =
                node.journal.read(shard.uid, from, limit, GET_RECORDS_BYTES_MAX).await.map_err(engine_error)?;
            node.open_records(shard.uid, &mut batch.records)?;
            let bytes: usize = batch.records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
            node.shards.with(shard.uid, |state| state.limits.charge_read_bytes(node.now_ms(), bytes as u64));
            Ok(batch)
        })
        .await??;
    let records = batch.records.into_iter().map(views::record).collect();
    // A closed shard read to its end has no next iterator; its children come instead.
    let drained = shard.ending_index.is_some_and(|end| batch.next_index >= end);
    if drained {
        return Ok(GetRecordsOutput {
            records,
            next_shard_iterator: None,
            millis_behind_latest: Some(0),
            child_shards: Some(views::child_shards(&route.meta, shard.number)).filter(|children| !children.is_empty()),
        });
    }
    let next = ShardIterator { record_index: batch.next_index, issued_ms: now_ms, ..iterator };
    Ok(GetRecordsOutput {
        records,
        next_shard_iterator: Some(shard_iterator::encode(&next, &key)),
        millis_behind_latest: Some(batch.millis_behind_latest),
        child_shards: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_keys_stay_in_the_ranges_given_and_reach_each() {
        let range = |start: u128, end: u128| HashKeyRange { start: HashKey(start), end: HashKey(end) };
        let ranges = [range(10, 19), range(1 << 100, (1 << 101) - 1), range(u128::MAX - 5, u128::MAX)];
        let mut reached = [0usize; 3];
        for _ in 0..3000 {
            let key = auto_hash_key_in(&ranges);
            let within = ranges.iter().position(|range| range.contains(key));
            reached[within.unwrap_or_else(|| panic!("{key:?} is in none of the ranges"))] += 1;
        }
        assert!(reached.iter().all(|&count| count > 500), "{reached:?}");
    }
}
