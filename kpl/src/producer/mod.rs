//! The producer core: user records in, PutRecords calls out, completions back; no I/O.
//!
//! [`Producer`] is a deterministic state machine. It reads no clock (every call takes
//! `now_ms`), does no I/O and draws randomness only from the seeded RNG it was built with. A
//! driver (the async one planned for `sluice-client`, or a test) feeds it four kinds of event
//! and carries out what [`Producer::poll`] hands back:
//!
//! | the driver calls | when |
//! |---|---|
//! | [`submit`](Producer::submit) | the application puts a user record (back-pressure: `Err(Backpressure)`, retry after a completion) |
//! | [`on_put_records_result`](Producer::on_put_records_result) | a PutRecords call it sent returned, or failed as a whole |
//! | [`update_shard_map`](Producer::update_shard_map) | it listed the stream's open shards (at start, and after `RefreshShardMap`) |
//! | [`poll`](Producer::poll) | after any of the above, and when [`next_wakeup_ms`](Producer::next_wakeup_ms) comes |
//!
//! `poll` returns [`Output::Send`] (a PutRecords call to make), [`Output::Completed`] (a user
//! record's final result, exactly once per accepted record) and [`Output::RefreshShardMap`].
//!
//! # Pipeline
//!
//! A submitted record gets a predicted shard from the [`ShardMap`] (MD5 of its partition key,
//! or its explicit hash key) and waits, in submission order, in that shard's queue. A call is
//! built when some queue's oldest record reached `RecordMaxBufferedTime`, when enough bytes
//! wait to fill a call (`CollectionMaxSize`, or `CollectionMaxCount` records without
//! aggregation), or after [`flush`](Producer::flush). Building walks the queues, most urgent
//! first, and cuts each into aggregates (`AggregationMaxCount`, `AggregationMaxSize`, sized
//! exactly with [`AggregateBuilder`]) or single records, each admitted by the shard's rate
//! limiter (token buckets of `RateLimit`% of 1 MiB/s and 1,000 records/s), until the call
//! holds `CollectionMaxCount` records or `CollectionMaxSize` bytes. Aggregation happens when a
//! call is built, not when a record arrives, so a record that comes back for a retry is simply
//! aggregated again, in order, with whatever is waiting. Without a shard map (before the first,
//! or while a refresh is pending) records go out one by one, unlimited, as the KPL does.
//!
//! # Per-key ordering across retries
//!
//! The ordering key is the partition key together with the explicit hash key (records that
//! share both always route to the same shard). The producer keeps this rule: **a key has at
//! most one Kinesis record (aggregate or single record) in flight at any time**, and a key's
//! records are sent in submission order. Concretely:
//! - while a call is built, a key's first record joins the aggregate being filled; its later
//!   records may join the same aggregate, but once that aggregate is sealed they stay behind
//!   ("parked") for a later call;
//! - while a key has a record in flight, its newly submitted records are parked;
//! - when the call returns: on success the key's parked records become ready again, in order;
//!   on a retryable failure the failed records are parked *ahead of* the key's later ones
//!   (parking is ordered by submission), and the key waits out its backoff before any of them
//!   is sent; on a final failure the records complete with the error and the rest proceed.
//!
//! An aggregate succeeds or fails as a whole, so within a shard a key's records are written in
//! submission order, each at most once apart from the misrouting case below. The cost: one
//! key cannot have two calls in flight, so a single hot key sends at most one aggregate (up to
//! `AggregationMaxSize`) per round trip.
//!
//! # Misrouted records
//!
//! A PutRecords result names the shard a record landed on. A single record is fine wherever
//! it landed. An aggregate that landed on another shard than predicted is kept only if the
//! shard map knows that shard and every user record inside hashes into its range (that is
//! what the KCL checks before it accepts an aggregate); otherwise its user records are retried
//! (`WrongShard`), because consumers that follow the KCL drop such an aggregate. Either way the
//! map is stale: the producer stops predicting and asks for a refresh.

mod config;
mod metrics;

pub use config::{ConfigError, ProducerConfig};
pub use metrics::ProducerMetrics;

use crate::aggregation::{AggregateBuilder, AGGREGATE_PARTITION_KEY};
use crate::limits::{
    PARTITION_KEY_CHARS_MAX, PUT_RECORDS_BYTES_MAX, RECORD_BYTES_MAX, SHARD_WRITE_BYTES_PER_S,
    SHARD_WRITE_RECORDS_PER_S,
};
use crate::retry::{backoff_ms, classify, ErrorClass};
use crate::shard_map::{ShardMap, ShardMapError};
use crate::token_bucket::TokenBucket;
use crate::types::{HashKey, HashKeyRange, SequenceNumber, ShardId};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// The error code of a user record whose `RecordTtl` passed before it was put (the KPL's).
pub const EXPIRED_ERROR_CODE: &str = "Expired";
/// The error code of an attempt whose aggregate landed on a shard that does not own all of
/// its user records.
pub const WRONG_SHARD_ERROR_CODE: &str = "WrongShard";
/// The error code of the records of a PutRecords response whose entry count differs from the
/// request's (a broken server: which result belongs to which record is unknown).
pub const COUNT_MISMATCH_ERROR_CODE: &str = "RecordCountMismatch";

/// A user record as the application hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: String,
    pub explicit_hash_key: Option<HashKey>,
    pub data: Bytes,
}

impl UserRecord {
    pub fn new(partition_key: impl Into<String>, data: impl Into<Bytes>) -> UserRecord {
        UserRecord { partition_key: partition_key.into(), explicit_hash_key: None, data: data.into() }
    }

    /// Bytes Kinesis counts for this record: data plus partition key.
    pub fn bytes(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }

    fn hash_key(&self) -> HashKey {
        HashKey::effective(&self.partition_key, self.explicit_hash_key)
    }
}

/// The caller's name for a submitted record; it comes back in the record's [`Completion`].
pub type RecordHandle = u64;

/// The producer's name for a PutRecords call it asked the driver to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

/// A PutRecords call to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsCall {
    pub call_id: CallId,
    pub entries: Vec<PutRecordsEntry>,
}

impl PutRecordsCall {
    /// Bytes of the call as Kinesis counts them: data plus partition keys.
    pub fn bytes(&self) -> usize {
        self.entries.iter().map(PutRecordsEntry::bytes).sum()
    }
}

/// One record of a PutRecords call: an aggregate (partition key `"a"`, explicit hash key of
/// its first user record) or a single user record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsEntry {
    pub partition_key: String,
    pub explicit_hash_key: Option<HashKey>,
    pub data: Bytes,
    /// The shard the producer expects it to land on, if it had a prediction.
    pub predicted_shard: Option<ShardId>,
    /// User records inside: 1 for a single record.
    pub user_record_count: usize,
}

impl PutRecordsEntry {
    pub fn bytes(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// The result of one entry of a PutRecords response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    Ok { shard_id: ShardId, sequence_number: SequenceNumber },
    Err { error_code: String, error_message: String },
}

/// A PutRecords call that failed as a whole: an error response, or no response at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The AWS error code (`__type` without prefix), or
    /// [`CONNECTION_ERROR_CODE`](crate::retry::CONNECTION_ERROR_CODE) when there was no answer.
    pub code: String,
    pub message: String,
    /// The HTTP status, for the HTTP API; `None` for the native protocol and connection errors.
    pub http_status: Option<u16>,
}

/// What the driver has to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Make this PutRecords call and report its result with `on_put_records_result`.
    Send(PutRecordsCall),
    /// A user record is done.
    Completed(Completion),
    /// List the stream's open shards and call `update_shard_map`.
    RefreshShardMap,
}

/// The final result of one user record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub handle: RecordHandle,
    pub result: Result<RecordPut, RecordFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPut {
    pub shard_id: ShardId,
    /// The sequence number of the Kinesis record that holds it (shared by an aggregate's
    /// user records).
    pub sequence_number: SequenceNumber,
    /// Its position in the aggregate, or `None` if it was sent alone.
    pub sub_sequence_number: Option<u64>,
    /// Attempts it took, 1 if the first succeeded.
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message} (after {attempts} attempts)")]
pub struct RecordFailure {
    pub code: String,
    pub message: String,
    pub attempts: u32,
}

/// Why `submit` refused a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The producer holds `max_outstanding_records` or `max_outstanding_bytes` already; submit
    /// again after some records complete. The record is handed back untouched.
    #[error("back-pressure: {outstanding_records} records / {outstanding_bytes} bytes outstanding")]
    Backpressure { record: UserRecord, outstanding_records: usize, outstanding_bytes: usize },
    #[error("partition key must be 1 to {PARTITION_KEY_CHARS_MAX} characters, got {chars}")]
    InvalidPartitionKey { chars: usize },
    #[error("record of {bytes} bytes (data plus partition key) is above the {RECORD_BYTES_MAX}-byte limit")]
    RecordTooLarge { bytes: usize },
}

/// A result for a call the producer is not waiting for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no PutRecords call {0:?} is in flight")]
pub struct UnknownCall(pub CallId);

/// Submission order; also the record's internal id.
type Seq = u64;
/// A queue per predicted shard, and `None` for records without a prediction.
type QueueKey = Option<ShardId>;
/// Records that share it are kept in order (see the module docs). Shared, so that the many
/// places that name a record's key do not each copy the partition key.
type OrderingKey = Arc<(String, Option<HashKey>)>;

#[derive(Debug)]
struct Record {
    handle: RecordHandle,
    user: UserRecord,
    key: OrderingKey,
    hash_key: HashKey,
    /// Send by this time even if the aggregate or call is not full.
    deadline_ms: u64,
    /// Fail with `Expired` if not put by this time.
    expires_ms: u64,
    /// Submission, or the end of the last attempt: where the next buffered time starts.
    waiting_since_ms: u64,
    attempts: u32,
    state: RecordState,
}

impl Record {
    fn key(&self) -> OrderingKey {
        Arc::clone(&self.key)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordState {
    /// In the queue of a predicted shard (or of no shard), may be sent.
    Ready(QueueKey),
    /// Held back behind its key (in flight or backing off); in the key's `parked` set.
    Parked,
    InFlight,
}

#[derive(Debug, Default)]
struct KeyState {
    /// The call holding this key's one Kinesis record in flight.
    in_flight: Option<CallId>,
    /// After a retryable failure, the key sends nothing before this time.
    backoff_until_ms: Option<u64>,
    /// Records held back, in submission order.
    parked: BTreeSet<Seq>,
    /// Records of this key not yet completed; the state is dropped at zero.
    outstanding: usize,
}

impl KeyState {
    fn is_free(&self) -> bool {
        self.in_flight.is_none() && self.backoff_until_ms.is_none()
    }
}

#[derive(Debug)]
struct Queue {
    ready: BTreeSet<Seq>,
    deadlines: BTreeSet<(u64, Seq)>,
    /// The deadline this queue is indexed under in `Producer::queue_deadlines`.
    indexed_deadline_ms: Option<u64>,
    bytes: usize,
    limiter: Option<Limiter>,
    /// The limiter refused the next record until this time.
    blocked_until_ms: u64,
}

#[derive(Debug)]
struct Limiter {
    records: TokenBucket,
    bytes: TokenBucket,
}

impl Limiter {
    /// KPL `ShardLimiter`: buckets holding one second of the shard's quota, refilled at
    /// `RateLimit`% of it.
    fn new(rate_limit_percent: u64, now_ms: u64) -> Limiter {
        Limiter {
            records: TokenBucket::new_full(
                SHARD_WRITE_RECORDS_PER_S,
                (SHARD_WRITE_RECORDS_PER_S * rate_limit_percent / 100).max(1),
                now_ms,
            ),
            bytes: TokenBucket::new_full(
                SHARD_WRITE_BYTES_PER_S,
                (SHARD_WRITE_BYTES_PER_S * rate_limit_percent / 100).max(1),
                now_ms,
            ),
        }
    }
}

#[derive(Debug)]
struct Flight {
    entries: Vec<FlightEntry>,
}

#[derive(Debug)]
struct FlightEntry {
    records: Vec<Seq>,
    predicted: QueueKey,
    /// Sent as an aggregate (two or more user records).
    aggregated: bool,
}

/// The aggregate being filled while a call is built.
struct OpenAggregate {
    builder: AggregateBuilder,
    records: Vec<Seq>,
    /// Keys this aggregate marked in flight (undone if the limiter refuses it).
    keys: HashSet<OrderingKey>,
    limit_bytes: usize,
}

/// The producer state machine; see the module docs.
pub struct Producer {
    config: ProducerConfig,
    rng: StdRng,
    shard_map: ShardMap,
    /// Whether predictions use the map: false before the first map and while a refresh is pending.
    map_valid: bool,
    refresh_requested: bool,
    records: HashMap<Seq, Record>,
    keys: HashMap<OrderingKey, KeyState>,
    queues: BTreeMap<QueueKey, Queue>,
    /// Each non-empty queue under its earliest deadline.
    queue_deadlines: BTreeSet<(u64, QueueKey)>,
    /// Records not in flight, by expiry.
    expiries: BTreeSet<(u64, Seq)>,
    backoffs: BTreeSet<(u64, OrderingKey)>,
    flights: BTreeMap<CallId, Flight>,
    outputs: VecDeque<Output>,
    next_seq: Seq,
    next_call: u64,
    now_ms: u64,
    outstanding_bytes: usize,
    ready_count: usize,
    ready_bytes: usize,
    flush_requested: bool,
    metrics: ProducerMetrics,
}

impl Producer {
    /// A producer with no shard map yet: its first output asks for one.
    pub fn new(config: ProducerConfig, rng_seed: u64, now_ms: u64) -> Result<Producer, ConfigError> {
        config.validate()?;
        let mut producer = Producer {
            config,
            rng: StdRng::seed_from_u64(rng_seed),
            shard_map: ShardMap::default(),
            map_valid: false,
            refresh_requested: false,
            records: HashMap::new(),
            keys: HashMap::new(),
            queues: BTreeMap::new(),
            queue_deadlines: BTreeSet::new(),
            expiries: BTreeSet::new(),
            backoffs: BTreeSet::new(),
            flights: BTreeMap::new(),
            outputs: VecDeque::new(),
            next_seq: 0,
            next_call: 0,
            now_ms,
            outstanding_bytes: 0,
            ready_count: 0,
            ready_bytes: 0,
            flush_requested: false,
            metrics: ProducerMetrics::default(),
        };
        producer.request_refresh();
        Ok(producer)
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    pub fn metrics(&self) -> &ProducerMetrics {
        &self.metrics
    }

    /// User records submitted and not yet completed.
    pub fn outstanding_records(&self) -> usize {
        self.records.len()
    }

    /// Bytes (data plus partition keys) of the outstanding user records.
    pub fn outstanding_bytes(&self) -> usize {
        self.outstanding_bytes
    }

    /// PutRecords calls handed out and not yet answered.
    pub fn in_flight_calls(&self) -> usize {
        self.flights.len()
    }

    fn advance_clock(&mut self, now_ms: u64) -> u64 {
        self.now_ms = self.now_ms.max(now_ms);
        self.now_ms
    }

    /// Accepts a user record; its [`Completion`] will carry `handle`.
    pub fn submit(&mut self, now_ms: u64, record: UserRecord, handle: RecordHandle) -> Result<(), SubmitError> {
        let now = self.advance_clock(now_ms);
        let chars = record.partition_key.chars().count();
        if !(1..=PARTITION_KEY_CHARS_MAX).contains(&chars) {
            return Err(SubmitError::InvalidPartitionKey { chars });
        }
        let bytes = record.bytes();
        if bytes > RECORD_BYTES_MAX {
            return Err(SubmitError::RecordTooLarge { bytes });
        }
        if self.records.len() >= self.config.max_outstanding_records
            || self.outstanding_bytes + bytes > self.config.max_outstanding_bytes
        {
            return Err(SubmitError::Backpressure {
                record,
                outstanding_records: self.records.len(),
                outstanding_bytes: self.outstanding_bytes,
            });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let expires_ms = now.saturating_add(self.config.record_ttl_ms);
        let record = Record {
            handle,
            key: Arc::new((record.partition_key.clone(), record.explicit_hash_key)),
            hash_key: record.hash_key(),
            user: record,
            deadline_ms: now.saturating_add(self.config.record_max_buffered_time_ms),
            expires_ms,
            waiting_since_ms: now,
            attempts: 0,
            state: RecordState::Parked,
        };
        let key = record.key();
        self.records.insert(seq, record);
        self.outstanding_bytes += bytes;
        self.expiries.insert((expires_ms, seq));
        self.metrics.user_records_received += 1;
        let state = self.keys.entry(key).or_default();
        state.outstanding += 1;
        if state.is_free() && state.parked.is_empty() {
            self.make_ready(seq);
        } else {
            state.parked.insert(seq);
        }
        Ok(())
    }

    /// Sends everything buffered as soon as the rate limits and the per-key order allow,
    /// instead of waiting for `RecordMaxBufferedTime` (KPL `flush`).
    pub fn flush(&mut self) {
        self.flush_requested = true;
    }

    /// Replaces the shard map with the stream's open shards, and re-predicts every record
    /// waiting to be sent.
    pub fn update_shard_map(
        &mut self,
        now_ms: u64,
        open_shards: impl IntoIterator<Item = (ShardId, HashKeyRange)>,
    ) -> Result<(), ShardMapError> {
        self.advance_clock(now_ms);
        self.shard_map = ShardMap::new(open_shards)?;
        self.map_valid = true;
        self.refresh_requested = false;
        self.rehome_ready_records();
        // Drop the queues (and limiters) of shards that are gone, once empty.
        let gone: Vec<QueueKey> = self
            .queues
            .iter()
            .filter(|(key, queue)| {
                queue.ready.is_empty() && key.is_some_and(|id| self.shard_map.range_of(id).is_none())
            })
            .map(|(key, _)| *key)
            .collect();
        for key in gone {
            self.queues.remove(&key);
        }
        Ok(())
    }

    fn rehome_ready_records(&mut self) {
        let ready: Vec<Seq> = self.queues.values().flat_map(|queue| queue.ready.iter().copied()).collect();
        for &seq in &ready {
            self.remove_ready(seq);
        }
        for seq in ready {
            self.make_ready(seq);
        }
    }

    fn predict(&self, hash_key: HashKey) -> QueueKey {
        if self.map_valid {
            self.shard_map.shard_for(hash_key)
        } else {
            None
        }
    }

    /// Stops predicting until the driver delivers a fresh map. Every ready record moves to
    /// the queue of unpredicted records: all of a key's waiting records must sit in one queue,
    /// or a walk of one queue could send a key's later record before the other queue's earlier
    /// one.
    fn request_refresh(&mut self) {
        if self.map_valid {
            self.map_valid = false;
            self.rehome_ready_records();
        }
        if !self.refresh_requested {
            self.refresh_requested = true;
            self.outputs.push_back(Output::RefreshShardMap);
        }
    }

    /// Puts a record into the queue of its predicted shard.
    fn make_ready(&mut self, seq: Seq) {
        let now = self.now_ms;
        let rate_limit_percent = self.config.rate_limit_percent;
        let queue_key = self.predict(self.records[&seq].hash_key);
        let record = self.records.get_mut(&seq).expect("record exists");
        record.state = RecordState::Ready(queue_key);
        let (deadline_ms, bytes) = (record.deadline_ms, record.user.bytes());
        let queue = self.queues.entry(queue_key).or_insert_with(|| Queue {
            ready: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            indexed_deadline_ms: None,
            bytes: 0,
            limiter: queue_key.map(|_| Limiter::new(rate_limit_percent, now)),
            blocked_until_ms: 0,
        });
        queue.ready.insert(seq);
        queue.deadlines.insert((deadline_ms, seq));
        queue.bytes += bytes;
        self.ready_count += 1;
        self.ready_bytes += bytes;
        self.reindex_queue(queue_key);
    }

    /// Takes a ready record out of its queue (to send it, park it or complete it).
    fn remove_ready(&mut self, seq: Seq) {
        let record = &self.records[&seq];
        let RecordState::Ready(queue_key) = record.state else { panic!("record {seq} is not ready") };
        let (deadline_ms, bytes) = (record.deadline_ms, record.user.bytes());
        let queue = self.queues.get_mut(&queue_key).expect("a ready record's queue exists");
        assert!(queue.ready.remove(&seq));
        assert!(queue.deadlines.remove(&(deadline_ms, seq)));
        queue.bytes -= bytes;
        self.ready_count -= 1;
        self.ready_bytes -= bytes;
        self.reindex_queue(queue_key);
    }

    fn reindex_queue(&mut self, queue_key: QueueKey) {
        let queue = self.queues.get_mut(&queue_key).expect("queue exists");
        let earliest = queue.deadlines.first().map(|&(deadline, _)| deadline);
        if queue.indexed_deadline_ms != earliest {
            if let Some(old) = queue.indexed_deadline_ms {
                self.queue_deadlines.remove(&(old, queue_key));
            }
            if let Some(new) = earliest {
                self.queue_deadlines.insert((new, queue_key));
            }
            queue.indexed_deadline_ms = earliest;
        }
    }

    /// Holds a ready record back behind its key.
    fn park_ready(&mut self, seq: Seq) {
        self.remove_ready(seq);
        let record = self.records.get_mut(&seq).expect("record exists");
        record.state = RecordState::Parked;
        let key = record.key();
        self.keys.get_mut(&key).expect("key of an outstanding record").parked.insert(seq);
    }

    /// Makes a free key's parked records ready again, in order.
    fn release_key(&mut self, key: &OrderingKey) {
        let Some(state) = self.keys.get_mut(key) else { return };
        if !state.is_free() {
            return;
        }
        let parked = std::mem::take(&mut state.parked);
        for seq in parked {
            self.make_ready(seq);
        }
    }

    /// Finishes a record that is not in flight, or whose call just returned.
    fn complete(&mut self, seq: Seq, result: Result<RecordPut, RecordFailure>) {
        let record = self.records.remove(&seq).expect("a record completes once");
        match record.state {
            RecordState::Ready(_) => unreachable!("ready records are taken out of their queue first"),
            RecordState::Parked => {
                let state = self.keys.get_mut(&record.key()).expect("key of an outstanding record");
                state.parked.remove(&seq);
                self.expiries.remove(&(record.expires_ms, seq));
            }
            RecordState::InFlight => {}
        }
        self.outstanding_bytes -= record.user.bytes();
        let key = record.key();
        let state = self.keys.get_mut(&key).expect("key of an outstanding record");
        state.outstanding -= 1;
        if state.outstanding == 0 && state.is_free() {
            debug_assert!(state.parked.is_empty());
            self.keys.remove(&key);
        }
        match &result {
            Ok(_) => self.metrics.user_records_put += 1,
            Err(failure) => {
                self.metrics.failure(&failure.code);
                if failure.code == EXPIRED_ERROR_CODE {
                    self.metrics.user_records_expired += 1;
                }
            }
        }
        self.outputs.push_back(Output::Completed(Completion { handle: record.handle, result }));
    }

    /// Runs the timers due at `now_ms` (expiries, ends of backoffs), builds the calls that are
    /// due, and returns the next thing for the driver to do, if any.
    pub fn poll(&mut self, now_ms: u64) -> Option<Output> {
        if let Some(output) = self.outputs.pop_front() {
            return Some(output);
        }
        let now = self.advance_clock(now_ms);
        self.expire(now);
        self.end_backoffs(now);
        while self.flights.len() < self.config.max_in_flight_calls && self.should_send(now) {
            match self.build_call(now) {
                Some(call) => self.outputs.push_back(Output::Send(call)),
                None => break,
            }
        }
        if self.ready_count == 0 {
            self.flush_requested = false;
        }
        self.outputs.pop_front()
    }

    fn expire(&mut self, now: u64) {
        while let Some(&(expires_ms, seq)) = self.expiries.first() {
            if expires_ms > now {
                break;
            }
            self.expiries.pop_first();
            let record = &self.records[&seq];
            let attempts = record.attempts;
            if let RecordState::Ready(_) = record.state {
                self.remove_ready(seq);
                self.records.get_mut(&seq).expect("record exists").state = RecordState::Parked;
                let key = self.records[&seq].key();
                self.keys.get_mut(&key).expect("key exists").parked.insert(seq);
            }
            let message = format!("record not put within its RecordTtl of {} ms", self.config.record_ttl_ms);
            self.complete(seq, Err(RecordFailure { code: EXPIRED_ERROR_CODE.to_owned(), message, attempts }));
        }
    }

    fn end_backoffs(&mut self, now: u64) {
        while let Some((until_ms, _)) = self.backoffs.first() {
            if *until_ms > now {
                break;
            }
            let (_, key) = self.backoffs.pop_first().expect("checked above");
            if let Some(state) = self.keys.get_mut(&key) {
                state.backoff_until_ms = None;
                if state.outstanding == 0 && state.in_flight.is_none() {
                    self.keys.remove(&key);
                } else {
                    self.release_key(&key);
                }
            }
        }
    }

    /// Whether a call is due: some queue that the limiter lets through has a record past its
    /// `RecordMaxBufferedTime` (or a flush is asked), or a full call's worth is waiting.
    fn should_send(&self, now: u64) -> bool {
        if self.ready_count == 0 {
            return false;
        }
        let open = |queue_key: &QueueKey| self.queues[queue_key].blocked_until_ms <= now;
        let urgent = self
            .queue_deadlines
            .iter()
            .take_while(|(deadline, _)| self.flush_requested || *deadline <= now)
            .any(|(_, queue_key)| open(queue_key));
        let full = self.ready_bytes >= self.config.collection_max_size_bytes
            || (!self.config.aggregation_enabled && self.ready_count >= self.config.collection_max_count);
        urgent || full
    }

    /// When the driver should call `poll` next if nothing else happens.
    pub fn next_wakeup_ms(&self) -> Option<u64> {
        let mut next =
            [self.expiries.first().map(|e| e.0), self.backoffs.first().map(|b| b.0)].into_iter().flatten().min();
        if self.flights.len() < self.config.max_in_flight_calls {
            for (deadline, queue_key) in &self.queue_deadlines {
                let deadline = if self.flush_requested { self.now_ms } else { *deadline };
                let at = deadline.max(self.queues[queue_key].blocked_until_ms);
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        // Whatever is due now was done by the last poll; never ask to be woken in the past.
        next.map(|at| at.max(self.now_ms + 1))
    }

    /// Builds one PutRecords call from the ready records, most urgent queue first.
    fn build_call(&mut self, now: u64) -> Option<PutRecordsCall> {
        let call_id = CallId(self.next_call);
        let mut call = CallBuilder { entries: Vec::new(), flight: Vec::new(), bytes: 0 };
        let order: Vec<QueueKey> = self.queue_deadlines.iter().map(|&(_, key)| key).collect();
        for queue_key in order {
            if call.entries.len() >= self.config.collection_max_count {
                break;
            }
            if self.queues[&queue_key].blocked_until_ms > now {
                continue;
            }
            self.fill_from_queue(now, call_id, queue_key, &mut call);
        }
        if call.entries.is_empty() {
            return None;
        }
        self.next_call += 1;
        self.metrics.put_records_calls += 1;
        self.flights.insert(call_id, Flight { entries: call.flight });
        Some(PutRecordsCall { call_id, entries: call.entries })
    }

    /// Bytes the call may still take in one entry: the collection limit, or, for the first
    /// entry, anything up to the PutRecords limit (the KPL sends a record above
    /// `CollectionMaxSize` alone).
    fn call_room_bytes(&self, call: &CallBuilder) -> usize {
        if call.entries.is_empty() {
            PUT_RECORDS_BYTES_MAX
        } else {
            self.config.collection_max_size_bytes.saturating_sub(call.bytes)
        }
    }

    fn fill_from_queue(&mut self, now: u64, call_id: CallId, queue_key: QueueKey, call: &mut CallBuilder) {
        let aggregating = self.config.aggregation_enabled && queue_key.is_some();
        let mut open: Option<OpenAggregate> = None;
        let mut cursor: Option<Seq> = None;
        loop {
            let queue = &self.queues[&queue_key];
            let next = match cursor {
                None => queue.ready.first().copied(),
                Some(after) => queue.ready.range(after + 1..).next().copied(),
            };
            let Some(seq) = next else { break };
            let record = &self.records[&seq];
            let key = record.key();
            let state = &self.keys[&key];
            let in_open = open.as_ref().is_some_and(|open| open.keys.contains(&key));
            let key_free = state.is_free() && state.parked.is_empty();
            if !(in_open || key_free) {
                // The key is in flight (perhaps in an entry of this very call) or backing off.
                self.park_ready(seq);
                cursor = Some(seq);
                continue;
            }
            if let Some(aggregate) = open.as_mut() {
                let with = aggregate.builder.data_bytes_with(
                    &record.user.partition_key,
                    record.user.explicit_hash_key,
                    record.user.data.len(),
                );
                if aggregate.builder.len() < self.config.aggregation_max_count && with <= aggregate.limit_bytes {
                    aggregate.builder.push(
                        &record.user.partition_key,
                        record.user.explicit_hash_key,
                        record.user.data.clone(),
                    );
                    aggregate.records.push(seq);
                    if !in_open {
                        aggregate.keys.insert(key.clone());
                        self.keys.get_mut(&key).expect("key exists").in_flight = Some(call_id);
                    }
                    cursor = Some(seq);
                    continue;
                }
                // Full: seal it, then look at this record again (its key may now be in
                // flight in the sealed entry).
                let aggregate = open.take().expect("checked above");
                if !self.seal(now, call_id, queue_key, aggregate, call) {
                    return;
                }
                continue;
            }
            // This record starts the next entry.
            if call.entries.len() >= self.config.collection_max_count {
                return;
            }
            let room_bytes = self.call_room_bytes(call);
            let record = &self.records[&seq];
            let single_bytes = record.user.bytes();
            let alone_as_aggregate = AggregateBuilder::new().data_bytes_with(
                &record.user.partition_key,
                record.user.explicit_hash_key,
                record.user.data.len(),
            ) + AGGREGATE_PARTITION_KEY.len();
            let aggregate_limit = self.config.aggregation_max_size_bytes.min(room_bytes.saturating_sub(1));
            if aggregating && alone_as_aggregate <= aggregate_limit + 1 {
                let mut builder = AggregateBuilder::new();
                builder.push(&record.user.partition_key, record.user.explicit_hash_key, record.user.data.clone());
                self.keys.get_mut(&key).expect("key exists").in_flight = Some(call_id);
                open = Some(OpenAggregate {
                    builder,
                    records: vec![seq],
                    keys: HashSet::from([key]),
                    limit_bytes: aggregate_limit,
                });
                cursor = Some(seq);
                continue;
            }
            if single_bytes > room_bytes {
                // The call is too full for this record; later calls will take it.
                return;
            }
            if !self.admit(now, queue_key, single_bytes) {
                return;
            }
            self.keys.get_mut(&key).expect("key exists").in_flight = Some(call_id);
            self.dispatch(now, seq);
            let user = &self.records[&seq].user;
            call.bytes += single_bytes;
            call.entries.push(PutRecordsEntry {
                partition_key: user.partition_key.clone(),
                explicit_hash_key: user.explicit_hash_key,
                data: user.data.clone(),
                predicted_shard: queue_key,
                user_record_count: 1,
            });
            call.flight.push(FlightEntry { records: vec![seq], predicted: queue_key, aggregated: false });
            cursor = Some(seq);
        }
        if let Some(aggregate) = open {
            self.seal(now, call_id, queue_key, aggregate, call);
        }
    }

    /// Asks the queue's limiter for one record of `bytes`; on refusal, blocks the queue until
    /// the buckets hold enough.
    fn admit(&mut self, now: u64, queue_key: QueueKey, bytes: usize) -> bool {
        let queue = self.queues.get_mut(&queue_key).expect("queue exists");
        let Some(limiter) = queue.limiter.as_mut() else { return true };
        let bytes = bytes as u64;
        if limiter.records.available(now) >= 1 && limiter.bytes.available(now) >= bytes {
            limiter.records.take(now, 1);
            limiter.bytes.take(now, bytes);
            true
        } else {
            let wait_ms = limiter.records.wait_ms(now, 1).max(limiter.bytes.wait_ms(now, bytes)).max(1);
            queue.blocked_until_ms = now + wait_ms;
            false
        }
    }

    /// Turns a filled aggregate into an entry of the call, if the limiter admits it; returns
    /// false (and leaves its records ready, its keys free) if not.
    fn seal(
        &mut self,
        now: u64,
        call_id: CallId,
        queue_key: QueueKey,
        aggregate: OpenAggregate,
        call: &mut CallBuilder,
    ) -> bool {
        let OpenAggregate { builder, records, keys, .. } = aggregate;
        let single = records.len() == 1;
        let bytes = if single {
            self.records[&records[0]].user.bytes()
        } else {
            builder.data_bytes() + AGGREGATE_PARTITION_KEY.len()
        };
        if !self.admit(now, queue_key, bytes) {
            for key in &keys {
                let state = self.keys.get_mut(key).expect("key exists");
                debug_assert_eq!(state.in_flight, Some(call_id));
                state.in_flight = None;
            }
            return false;
        }
        for &seq in &records {
            self.dispatch(now, seq);
        }
        let entry = if single {
            let user = &self.records[&records[0]].user;
            PutRecordsEntry {
                partition_key: user.partition_key.clone(),
                explicit_hash_key: user.explicit_hash_key,
                data: user.data.clone(),
                predicted_shard: queue_key,
                user_record_count: 1,
            }
        } else {
            let hash_key = builder.hash_key();
            let count = builder.len();
            let data = builder.finish();
            debug_assert_eq!(data.len() + AGGREGATE_PARTITION_KEY.len(), bytes);
            PutRecordsEntry {
                partition_key: AGGREGATE_PARTITION_KEY.to_owned(),
                explicit_hash_key: hash_key,
                data,
                predicted_shard: queue_key,
                user_record_count: count,
            }
        };
        call.bytes += bytes;
        call.entries.push(entry);
        call.flight.push(FlightEntry { records, predicted: queue_key, aggregated: !single });
        true
    }

    /// Moves a ready record in flight.
    fn dispatch(&mut self, now: u64, seq: Seq) {
        self.remove_ready(seq);
        let record = self.records.get_mut(&seq).expect("record exists");
        record.state = RecordState::InFlight;
        record.attempts += 1;
        let buffered_ms = now.saturating_sub(record.waiting_since_ms);
        let expiry = (record.expires_ms, seq);
        self.metrics.buffered(buffered_ms);
        self.expiries.remove(&expiry);
    }

    /// Takes the result of a PutRecords call: completes, retries or fails its user records.
    pub fn on_put_records_result(
        &mut self,
        now_ms: u64,
        call_id: CallId,
        result: Result<Vec<EntryResult>, CallError>,
    ) -> Result<(), UnknownCall> {
        let now = self.advance_clock(now_ms);
        let flight = self.flights.remove(&call_id).ok_or(UnknownCall(call_id))?;
        match result {
            Ok(results) if results.len() == flight.entries.len() => {
                for (entry, result) in flight.entries.into_iter().zip(results) {
                    match result {
                        EntryResult::Ok { shard_id, sequence_number } => {
                            self.entry_landed(now, entry, shard_id, sequence_number)
                        }
                        EntryResult::Err { error_code, error_message } => {
                            let class = classify(&error_code, None);
                            self.entry_failed(now, entry, &error_code, &error_message, class);
                        }
                    }
                }
            }
            Ok(results) => {
                let message = format!(
                    "PutRecords answered {} results for {} records; which is which is unknown",
                    results.len(),
                    flight.entries.len()
                );
                for entry in flight.entries {
                    self.entry_failed(now, entry, COUNT_MISMATCH_ERROR_CODE, &message, ErrorClass::Permanent);
                }
            }
            Err(error) => {
                let class = classify(&error.code, error.http_status);
                for entry in flight.entries {
                    self.entry_failed(now, entry, &error.code, &error.message, class);
                }
            }
        }
        Ok(())
    }

    fn entry_landed(&mut self, now: u64, entry: FlightEntry, shard_id: ShardId, sequence_number: SequenceNumber) {
        if entry.predicted.is_some_and(|predicted| predicted != shard_id) {
            let accepted = entry.aggregated && {
                let range = self.shard_map.range_of(shard_id);
                range.is_some_and(|range| entry.records.iter().all(|seq| range.contains(self.records[seq].hash_key)))
            };
            self.request_refresh();
            if entry.aggregated && !accepted {
                self.metrics.misrouted_aggregates += 1;
                let message = format!("aggregate landed on {shard_id}, which does not own all of its user records");
                self.entry_failed(now, entry, WRONG_SHARD_ERROR_CODE, &message, ErrorClass::Transient);
                return;
            }
        }
        self.metrics.kinesis_records_put += 1;
        if entry.aggregated {
            self.metrics.aggregated_records_put += 1;
            self.metrics.user_records_aggregated += entry.records.len() as u64;
        }
        let mut keys = BTreeSet::new();
        for (index, &seq) in (0u64..).zip(&entry.records) {
            let record = &self.records[&seq];
            keys.insert(record.key());
            let put = RecordPut {
                shard_id,
                sequence_number,
                sub_sequence_number: entry.aggregated.then_some(index),
                attempts: record.attempts,
            };
            self.complete(seq, Ok(put));
        }
        for key in keys {
            if let Some(state) = self.keys.get_mut(&key) {
                state.in_flight = None;
                if state.outstanding == 0 && state.is_free() {
                    self.keys.remove(&key);
                } else {
                    self.release_key(&key);
                }
            }
        }
    }

    fn entry_failed(&mut self, now: u64, entry: FlightEntry, code: &str, message: &str, class: ErrorClass) {
        self.metrics.error(code);
        if class == ErrorClass::Throttled {
            self.metrics.throttles += 1;
        }
        let retry = match class {
            ErrorClass::Permanent => false,
            ErrorClass::Throttled => !self.config.fail_if_throttled,
            ErrorClass::Transient => true,
        };
        // Per key: the most attempts among its retried records, which sets its backoff.
        let mut retried: BTreeMap<OrderingKey, u32> = BTreeMap::new();
        let mut keys: BTreeSet<OrderingKey> = BTreeSet::new();
        for seq in entry.records {
            let record = self.records.get_mut(&seq).expect("record in flight");
            let key = record.key();
            record.waiting_since_ms = now;
            let attempts = record.attempts;
            keys.insert(key.clone());
            if !retry {
                let failure = RecordFailure { code: code.to_owned(), message: message.to_owned(), attempts };
                self.complete(seq, Err(failure));
            } else if now >= record.expires_ms {
                let message = format!(
                    "record not put within its RecordTtl of {} ms; last error {code}: {message}",
                    self.config.record_ttl_ms
                );
                self.complete(seq, Err(RecordFailure { code: EXPIRED_ERROR_CODE.to_owned(), message, attempts }));
            } else {
                self.metrics.retries += 1;
                // Retried records go out soon after their backoff, as the KPL does (half the
                // buffered time), ahead of the key's later records.
                record.deadline_ms = now.saturating_add(self.config.record_max_buffered_time_ms / 2);
                record.state = RecordState::Parked;
                self.expiries.insert((record.expires_ms, seq));
                let entry = retried.entry(key.clone()).or_default();
                *entry = (*entry).max(attempts);
                self.keys.get_mut(&key).expect("key exists").parked.insert(seq);
            }
        }
        for key in keys {
            let Some(state) = self.keys.get_mut(&key) else { continue };
            state.in_flight = None;
            if let Some(&attempts) = retried.get(&key) {
                let wait_ms = backoff_ms(
                    &mut self.rng,
                    attempts,
                    self.config.retry_backoff_base_ms,
                    self.config.retry_backoff_max_ms,
                );
                let until_ms = now.saturating_add(wait_ms);
                let state = self.keys.get_mut(&key).expect("key exists");
                state.backoff_until_ms = Some(until_ms);
                self.backoffs.insert((until_ms, key));
            } else if state.outstanding == 0 && state.is_free() {
                self.keys.remove(&key);
            } else {
                self.release_key(&key);
            }
        }
    }
}

struct CallBuilder {
    entries: Vec<PutRecordsEntry>,
    flight: Vec<FlightEntry>,
    bytes: usize,
}

// A driver may move the producer to whichever thread runs its task.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Producer>();
};
