//! The delivery engine of one delivery stream (or channel): records in, objects and requests
//! out, and the position up to which everything is delivered.
//!
//! # The contract with sluiced
//!
//! sluiced feeds the engine an ordered source of [`SourceRecord`]s through a bounded channel:
//! the records of a Direct PUT delivery stream's hidden internal stream, or of the user's
//! Kinesis stream for `KinesisStreamAsSource`. Each record carries its data, its approximate
//! arrival time and an opaque [`Position`] in a *lane* (one lane per shard read; Direct PUT has
//! one). The engine publishes [`Progress`] on a `watch` channel: for each lane, the position of
//! the last record up to which **every** record of that lane is done, and sluiced checkpoints
//! that durably. A record is done only once its buffer reached the destination (the object
//! store acknowledged the PUT, the directory's file and entry were fsynced, the HTTP endpoint
//! answered 200) or the error output (the same way), and, with S3 backup, once its backup
//! object is durable too. A record dropped by the transformation is done when its batch is.
//!
//! So after a crash, restarting from the checkpoint re-delivers only records that were not yet
//! durably done: those of buffers delivered after the last checkpoint written, plus records of
//! buffers delivered after an older buffer that was still open. The engine bounds both:
//!
//! - Sealing a buffer seals every open buffer holding older records with it (`seal`), so
//!   buffers are uploaded in the order of their oldest records.
//! - Uploads prepare their bodies (conversion, compression) concurrently, but *deliver* (write
//!   to the destination, error output or backup) one at a time, in that order, and with
//!   [`spawn_checkpointed`] each only once the progress published after the one before it is
//!   reported durable by the checkpoint keeper ([`Durable`]); see [`Turn`].
//!
//! With one buffer open at a time (no dynamic partitioning, no S3 backup, nothing in the error
//! output), every finished delivery moves the checkpoint past its buffer, so a crash
//! re-delivers at most one buffer: the one writing, or written and waiting for its
//! checkpoint. With several buffers open at once (dynamic partitions, error-output types, the
//! S3 backup, each with a buffer of its own), the checkpoint cannot pass the oldest record of
//! a buffer still open or waiting, so a crash may also re-deliver the records after it of the
//! buffers delivered meanwhile: at most one buffer per partition, error-output type and
//! backup. Nothing is ever lost.
//!
//! # Inside
//!
//! Records get a dense index on arrival. Each buffer (one per partition of the main
//! destination, one per error-output type, one for the S3 backup, plus the batch waiting for the
//! transformation) is *live* from its first record until its upload completed; the engine keeps
//! the multiset of live buffers' lowest indexes, and every record below the lowest is done.
//! Uploads run as tokio tasks, at most `uploads_in_flight_max` at once; while they are all busy
//! the engine stops reading the source, which pushes back on sluiced through the bounded channel.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::convert::Conversion;
use crate::http_endpoint;
use crate::limits::{
    ACTIVE_PARTITIONS_MAX, SOURCE_CHANNEL_RECORDS_MAX, STORE_BACKOFF_MS_INITIAL, STORE_BACKOFF_MS_MAX,
};
use crate::metrics::Metrics;
use crate::plan::{BufferLimits, DeliveryPlan, Destination, ErrorTarget, ObjectTarget};
use crate::prefix::{object_name, PrefixContext};
use crate::source::{Lane, Position, Progress, SourceRecord};
use crate::store::Bucket;
use crate::transform::{Input, Outcome};

/// The ends of a running delivery stream.
pub struct Handle {
    /// Send records here; dropping it makes the engine deliver everything and stop.
    pub records: mpsc::Sender<SourceRecord>,
    pub progress: watch::Receiver<Progress>,
    pub metrics: Arc<Metrics>,
    pub task: tokio::task::JoinHandle<()>,
}

/// The checkpoint keeper's answer to the engine of [`spawn_checkpointed`]: what of the
/// published [`Progress`] is durable.
pub struct Durable(watch::Sender<u64>);

impl Durable {
    /// Says that `written` (a [`Progress`] the engine published) is durable in the checkpoint,
    /// or that nothing in it needs writing (its positions are those already written).
    pub fn report(&self, written: &Progress) {
        self.0.send_if_modified(|durable| {
            let newer = written.records_done > *durable;
            if newer {
                *durable = written.records_done;
            }
            newer
        });
    }
}

/// Starts the engine of `plan` on the current tokio runtime, with nothing to wait for: the
/// progress it publishes counts as durable at once (for callers that keep no checkpoint, or
/// keep it synchronously with the progress).
pub fn spawn(plan: DeliveryPlan) -> Handle {
    spawn_with(plan, None)
}

/// Starts the engine of `plan` on the current tokio runtime for a caller that checkpoints the
/// published progress and reports each write on the [`Durable`]: the engine delivers no
/// buffer while the progress of the buffer delivered before it is not yet durable, so a crash
/// re-delivers at most the buffers sealed together with the one in delivery (see the module
/// documentation).
pub fn spawn_checkpointed(plan: DeliveryPlan) -> (Handle, Durable) {
    let (durable, gate) = watch::channel(0);
    (spawn_with(plan, Some(gate)), Durable(durable))
}

fn spawn_with(plan: DeliveryPlan, durable: Option<watch::Receiver<u64>>) -> Handle {
    let (records, source) = mpsc::channel(SOURCE_CHANNEL_RECORDS_MAX);
    let (progress_tx, progress) = watch::channel(Progress::default());
    let metrics = Arc::new(Metrics::new());
    let task = tokio::spawn(run(plan, source, progress_tx, durable, metrics.clone()));
    Handle { records, progress, metrics, task }
}

/// Runs the engine until `source` is closed and everything received is done. With `durable`,
/// each delivery waits until the progress published after the previous one is reported
/// durable there (see [`spawn_checkpointed`]).
pub async fn run(
    plan: DeliveryPlan,
    mut source: mpsc::Receiver<SourceRecord>,
    progress: watch::Sender<Progress>,
    mut durable: Option<watch::Receiver<u64>>,
    metrics: Arc<Metrics>,
) {
    let mut engine = Engine::new(plan, progress, metrics);
    #[cfg(feature = "iceberg")]
    if let Destination::Table(table) = &engine.plan.destination {
        // What the table already holds: records at or before these positions are skipped (see
        // `crate::iceberg`: the table, not the checkpoint, says what was delivered).
        engine.committed = table.open().await;
    }
    let mut closed = false;
    loop {
        engine.start_uploads();
        if closed && engine.idle() {
            break;
        }
        let accepting =
            !closed && engine.ready.is_empty() && engine.uploads.len() < engine.plan.options.uploads_in_flight_max;
        let deadline = engine.next_deadline();
        tokio::select! {
            record = source.recv(), if accepting => match record {
                Some(record) => engine.accept(record).await,
                None => {
                    closed = true;
                    engine.flush_all().await;
                }
            },
            Some(done) = engine.uploads.join_next(), if !engine.uploads.is_empty() => match done {
                Ok(min_index) => {
                    engine.live_remove(min_index);
                    engine.turns_finished += 1;
                }
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            },
            reported = durable_changed(&mut durable), if engine.turn_waits() => {
                if reported.is_err() {
                    // The checkpoint keeper stopped (sluiced is shutting the delivery down):
                    // nothing will be reported durable any more, so stop waiting for it.
                    tracing::warn!(delivery_stream = %engine.plan.name, "checkpoint keeper gone; delivering without it");
                    durable = None;
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))), if deadline.is_some() => {
                engine.flush_expired().await;
            }
        }
        engine.report();
        engine.next_turn(durable.as_ref());
    }
    engine.report();
}

/// Waits for the checkpoint keeper's next report (never, without one).
async fn durable_changed(durable: &mut Option<watch::Receiver<u64>>) -> Result<(), watch::error::RecvError> {
    match durable {
        Some(durable) => durable.changed().await,
        None => std::future::pending().await,
    }
}

/// An upload's place in the order of deliveries. Uploads prepare their bodies (conversion,
/// compression) concurrently, but deliver one at a time, in the order they started (which is
/// the order of their buffers' oldest records, see `Engine::seal`), each only once the
/// progress after the one before it is durable: [`Turn::wait`] before writing anywhere.
struct Turn {
    number: u64,
    allowed: watch::Receiver<u64>,
}

impl Turn {
    /// Returns once this upload may deliver (at once, when called again).
    async fn wait(&mut self) {
        let number = self.number;
        // The engine outlives its uploads (dropping the JoinSet aborts them), so the sender
        // is never gone while one waits.
        let _ = self.allowed.wait_for(|allowed| *allowed >= number).await;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BufferKey {
    /// The main destination; the string is the partition (evaluated partition keys).
    Main(String),
    /// The error output, by error-output type.
    Error(&'static str),
    /// The S3 backup of source records.
    Backup,
}

#[derive(Debug, Clone)]
struct BufRecord {
    arrival_ms: i64,
    data: Bytes,
}

#[derive(Debug)]
struct Buffer {
    key: BufferKey,
    min_index: u64,
    /// The index of the last record added.
    last_index: u64,
    /// For a table commit: the position of the buffer's last record of each lane (set when
    /// its upload starts).
    #[cfg(feature = "iceberg")]
    lanes: BTreeMap<Lane, Position>,
    bytes: usize,
    opened: Instant,
    limits: BufferLimits,
    oldest_arrival_ms: i64,
    records: Vec<BufRecord>,
    keys_from_query: Option<BTreeMap<String, String>>,
    keys_from_lambda: Option<BTreeMap<String, String>>,
}

#[derive(Debug)]
struct Intake {
    min_index: u64,
    opened: Instant,
    bytes: usize,
    records: Vec<(u64, i64, Bytes)>,
}

#[derive(Debug)]
struct Pending {
    index: u64,
    lane: Lane,
    position: Position,
    arrival_ms: i64,
}

struct Engine {
    plan: Arc<DeliveryPlan>,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    progress: watch::Sender<Progress>,
    next_index: u64,
    pending: VecDeque<Pending>,
    done: Progress,
    live: BTreeMap<u64, usize>,
    intake: Option<Intake>,
    buffers: HashMap<BufferKey, Buffer>,
    main_buffers: usize,
    ready: VecDeque<Buffer>,
    uploads: JoinSet<u64>,
    /// The turn an upload delivers in (see [`Turn`]): the highest allowed, published to the
    /// uploads.
    turn_allowed: watch::Sender<u64>,
    /// Turns handed out, and turns finished (uploads finish in turn order).
    turns_started: u64,
    turns_finished: u64,
    /// Records already in an Iceberg table (see `crate::iceberg`); empty for other destinations.
    #[cfg(feature = "iceberg")]
    committed: crate::iceberg::Committed,
}

/// Error-output types (`!{firehose:error-output-type}`).
const PROCESSING_FAILED: &str = "processing-failed";
const PARTITIONING_FAILED: &str = "partitioning-failed";
const FORMAT_CONVERSION_FAILED: &str = "format-conversion-failed";
const HTTP_ENDPOINT_FAILED: &str = "http-endpoint-failed";

impl Engine {
    fn new(plan: DeliveryPlan, progress: watch::Sender<Progress>, metrics: Arc<Metrics>) -> Self {
        Engine {
            plan: Arc::new(plan),
            metrics,
            client: reqwest::Client::new(),
            progress,
            next_index: 0,
            pending: VecDeque::new(),
            done: Progress::default(),
            live: BTreeMap::new(),
            intake: None,
            buffers: HashMap::new(),
            main_buffers: 0,
            ready: VecDeque::new(),
            uploads: JoinSet::new(),
            turn_allowed: watch::channel(0).0,
            turns_started: 0,
            turns_finished: 0,
            #[cfg(feature = "iceberg")]
            committed: crate::iceberg::Committed::default(),
        }
    }

    /// Whether the next turn is held until the checkpoint keeper reports durability.
    fn turn_waits(&self) -> bool {
        *self.turn_allowed.borrow() < self.turns_finished
    }

    /// Lets the next upload deliver once every upload before it has finished and the progress
    /// published since (by `report`) is durable.
    fn next_turn(&mut self, durable: Option<&watch::Receiver<u64>>) {
        let is_durable = durable.is_none_or(|durable| *durable.borrow() >= self.done.records_done);
        if self.turn_waits() && is_durable {
            self.turn_allowed.send_replace(self.turns_finished);
        }
    }

    fn idle(&self) -> bool {
        self.intake.is_none() && self.buffers.is_empty() && self.ready.is_empty() && self.uploads.is_empty()
    }

    fn live_add(&mut self, index: u64) {
        *self.live.entry(index).or_default() += 1;
    }

    fn live_remove(&mut self, index: u64) {
        let count = self.live.get_mut(&index).expect("a live buffer is registered");
        *count -= 1;
        if *count == 0 {
            self.live.remove(&index);
        }
    }

    /// Publishes the progress: every record below the lowest live index is done.
    fn report(&mut self) {
        let done_below = self.live.keys().next().copied().unwrap_or(self.next_index);
        let mut advanced = false;
        while self.pending.front().is_some_and(|p| p.index < done_below) {
            let p = self.pending.pop_front().expect("checked");
            self.done.lanes.insert(p.lane, p.position);
            self.done.records_done += 1;
            advanced = true;
        }
        let oldest = self.pending.front().map_or(i64::MAX, |p| p.arrival_ms);
        self.metrics.oldest_pending_arrival_ms.store(oldest, std::sync::atomic::Ordering::Relaxed);
        if advanced {
            self.progress.send_replace(self.done.clone());
        }
    }

    async fn accept(&mut self, record: SourceRecord) {
        let index = self.next_index;
        self.next_index += 1;
        Metrics::add(&self.metrics.incoming_records, 1);
        Metrics::add(&self.metrics.incoming_bytes, record.data.len() as u64);
        #[cfg(feature = "iceberg")]
        let committed = self.committed.covers(record.lane, &record.position);
        self.pending.push_back(Pending {
            index,
            lane: record.lane,
            position: record.position,
            arrival_ms: record.arrival_ms,
        });
        #[cfg(feature = "iceberg")]
        if committed {
            // Already in the table (read again after a crash between a commit and its
            // checkpoint): done, in its turn, without a buffer.
            return;
        }
        if self.backup_target().is_some() {
            let limits = self.backup_target().expect("checked").buffer;
            self.add(BufferKey::Backup, limits, index, record.arrival_ms, record.data.clone(), None, None);
        }
        if self.plan.processing.transformer.is_some() {
            let intake = self.intake.get_or_insert_with(|| Intake {
                min_index: index,
                opened: Instant::now(),
                bytes: 0,
                records: Vec::new(),
            });
            let first = intake.records.is_empty();
            intake.bytes += record.data.len();
            intake.records.push((index, record.arrival_ms, record.data));
            let full = intake.bytes >= self.plan.processing.transform_batch_bytes;
            if first {
                self.live_add(index);
            }
            if full {
                self.process_intake().await;
            }
        } else {
            self.route(index, record.arrival_ms, record.data, None);
        }
    }

    fn backup_target(&self) -> Option<&ObjectTarget> {
        match &self.plan.destination {
            Destination::S3(s3) => s3.backup.as_ref(),
            Destination::Http(h) => h.backup.as_ref(),
            #[cfg(feature = "iceberg")]
            Destination::Table(_) => None,
        }
    }

    fn main_limits(&self) -> BufferLimits {
        match &self.plan.destination {
            Destination::S3(s3) => s3.main.buffer,
            Destination::Http(h) => h.buffer,
            #[cfg(feature = "iceberg")]
            Destination::Table(t) => t.buffer,
        }
    }

    /// Runs the transformation over the waiting batch and routes its results.
    async fn process_intake(&mut self) {
        let Some(intake) = self.intake.take() else { return };
        let plan = self.plan.clone();
        let transformer = plan.processing.transformer.as_ref().expect("an intake exists only with a transformer");
        let inputs: Vec<Input<'_>> =
            intake.records.iter().map(|(_, arrival_ms, data)| Input { arrival_ms: *arrival_ms, data }).collect();
        let invocation = transformer.transform(&inputs).await;
        let attempts = invocation.attempts;
        let lambda_arn = transformer.lambda_arn.clone();
        Metrics::add(&self.metrics.processing_attempts, attempts as u64);
        if invocation.succeeded {
            Metrics::add(&self.metrics.processing_success, 1);
        }
        for ((index, arrival_ms, raw), outcome) in intake.records.into_iter().zip(invocation.outcomes) {
            match outcome {
                Outcome::Ok { data, partition_keys } => {
                    Metrics::add(&self.metrics.processing_succeeded_records, 1);
                    Metrics::add(&self.metrics.processing_succeeded_bytes, data.len() as u64);
                    self.route(index, arrival_ms, Bytes::from(data), partition_keys);
                }
                Outcome::Dropped => Metrics::add(&self.metrics.processing_dropped_records, 1),
                Outcome::Failed { error_code, error_message } => {
                    Metrics::add(&self.metrics.processing_failed_records, 1);
                    self.error(
                        index,
                        arrival_ms,
                        &raw,
                        PROCESSING_FAILED,
                        &error_code,
                        &error_message,
                        attempts,
                        Some(&lambda_arn),
                    );
                }
            }
        }
        // Only now: the routed records are registered in their buffers.
        self.live_remove(intake.min_index);
    }

    /// Puts a processed record into its main buffer (or the error output).
    fn route(&mut self, index: u64, arrival_ms: i64, data: Bytes, keys_from_lambda: Option<BTreeMap<String, String>>) {
        let plan = self.plan.clone();
        let keys_from_query = match &plan.processing.key_query {
            Some(query) => match query.keys(&data) {
                Ok(keys) => Some(keys),
                Err(why) => {
                    Metrics::add(&self.metrics.partitioning_failed_records, 1);
                    self.error(
                        index,
                        arrival_ms,
                        &data,
                        PARTITIONING_FAILED,
                        "DynamicPartitioning.MetadataExtractionFailed",
                        &why,
                        1,
                        None,
                    );
                    return;
                }
            },
            None => None,
        };
        let partition = match &plan.destination {
            Destination::S3(s3) => {
                let ctx = PrefixContext {
                    keys_from_query: keys_from_query.as_ref(),
                    keys_from_lambda: keys_from_lambda.as_ref(),
                    ..Default::default()
                };
                match s3.main.prefix.partition_of(&ctx) {
                    Ok(p) => p,
                    Err(why) => {
                        Metrics::add(&self.metrics.partitioning_failed_records, 1);
                        self.error(
                            index,
                            arrival_ms,
                            &data,
                            PARTITIONING_FAILED,
                            "DynamicPartitioning.PartitionKeyEvaluationFailed",
                            &why.to_string(),
                            1,
                            None,
                        );
                        return;
                    }
                }
            }
            Destination::Http(_) => String::new(),
            #[cfg(feature = "iceberg")]
            Destination::Table(_) => String::new(),
        };
        let key = BufferKey::Main(partition);
        if !self.buffers.contains_key(&key) && self.main_buffers >= ACTIVE_PARTITIONS_MAX {
            Metrics::add(&self.metrics.active_partitions_exceeded_records, 1);
            self.error(
                index,
                arrival_ms,
                &data,
                PARTITIONING_FAILED,
                "DynamicPartitioning.ActivePartitionsLimitExceeded",
                &format!("The delivery stream has {ACTIVE_PARTITIONS_MAX} active partitions, the most it can have."),
                1,
                None,
            );
            return;
        }
        let data = match &plan.processing.delimiter {
            Some(d) => {
                let mut b = BytesMut::with_capacity(data.len() + d.len());
                b.extend_from_slice(&data);
                b.extend_from_slice(d);
                b.freeze()
            }
            None => data,
        };
        let limits = self.main_limits();
        self.add(key, limits, index, arrival_ms, data, keys_from_query, keys_from_lambda);
    }

    /// Puts a failed record into the error output, in AWS's error record format.
    #[allow(clippy::too_many_arguments, reason = "the fields of one AWS error record")]
    fn error(
        &mut self,
        index: u64,
        arrival_ms: i64,
        raw: &[u8],
        error_type: &'static str,
        code: &str,
        message: &str,
        attempts: u32,
        lambda_arn: Option<&str>,
    ) {
        let line = error_line(arrival_ms, raw, code, message, attempts, lambda_arn);
        Metrics::add(&self.metrics.error_output_records, 1);
        Metrics::add(&self.metrics.error_output_bytes, raw.len() as u64);
        let limits = self.main_limits();
        self.add(BufferKey::Error(error_type), limits, index, arrival_ms, line, None, None);
    }

    #[allow(clippy::too_many_arguments, reason = "a record and where it goes; a struct would only be unpacked here")]
    fn add(
        &mut self,
        key: BufferKey,
        limits: BufferLimits,
        index: u64,
        arrival_ms: i64,
        data: Bytes,
        keys_from_query: Option<BTreeMap<String, String>>,
        keys_from_lambda: Option<BTreeMap<String, String>>,
    ) {
        if !self.buffers.contains_key(&key) {
            self.live_add(index);
            if matches!(key, BufferKey::Main(_)) {
                self.main_buffers += 1;
            }
            self.buffers.insert(
                key.clone(),
                Buffer {
                    key: key.clone(),
                    min_index: index,
                    last_index: index,
                    #[cfg(feature = "iceberg")]
                    lanes: BTreeMap::new(),
                    bytes: 0,
                    opened: Instant::now(),
                    limits,
                    oldest_arrival_ms: arrival_ms,
                    records: Vec::new(),
                    keys_from_query,
                    keys_from_lambda,
                },
            );
        }
        let buffer = self.buffers.get_mut(&key).expect("inserted above");
        buffer.last_index = index;
        buffer.bytes += data.len();
        buffer.oldest_arrival_ms = buffer.oldest_arrival_ms.min(arrival_ms);
        buffer.records.push(BufRecord { arrival_ms, data });
        if buffer.bytes >= buffer.limits.size_bytes {
            self.seal(&key);
        }
    }

    /// Hands buffer `key` to upload, with every open buffer holding older records, so that no
    /// more than one buffer per destination is ever delivered ahead of the checkpoint.
    fn seal(&mut self, key: &BufferKey) {
        let Some(buffer) = self.buffers.remove(key) else { return };
        let mut older: Vec<BufferKey> =
            self.buffers.values().filter(|b| b.min_index < buffer.min_index).map(|b| b.key.clone()).collect();
        older.sort_by_key(|k| self.buffers[k].min_index);
        for k in older {
            let b = self.buffers.remove(&k).expect("listed above");
            self.push_ready(b);
        }
        self.push_ready(buffer);
    }

    fn push_ready(&mut self, buffer: Buffer) {
        if matches!(buffer.key, BufferKey::Main(_)) {
            self.main_buffers -= 1;
        }
        self.ready.push_back(buffer);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let buffers = self.buffers.values().map(|b| b.opened + b.limits.interval);
        let intake = self.intake.as_ref().map(|i| i.opened + self.plan.processing.transform_interval);
        buffers.chain(intake).min()
    }

    async fn flush_expired(&mut self) {
        let now = Instant::now();
        if self.intake.as_ref().is_some_and(|i| i.opened + self.plan.processing.transform_interval <= now) {
            self.process_intake().await;
        }
        let mut expired: Vec<(u64, BufferKey)> = self
            .buffers
            .values()
            .filter(|b| b.opened + b.limits.interval <= now)
            .map(|b| (b.min_index, b.key.clone()))
            .collect();
        expired.sort_by_key(|(min, _)| *min);
        for (_, key) in expired {
            self.seal(&key);
        }
    }

    async fn flush_all(&mut self) {
        self.process_intake().await;
        let mut keys: Vec<(u64, BufferKey)> = self.buffers.values().map(|b| (b.min_index, b.key.clone())).collect();
        keys.sort_by_key(|(min, _)| *min);
        for (_, key) in keys {
            self.seal(&key);
        }
    }

    fn start_uploads(&mut self) {
        while self.uploads.len() < self.plan.options.uploads_in_flight_max {
            let Some(buffer) = self.ready.pop_front() else { break };
            #[cfg(feature = "iceberg")]
            let mut buffer = buffer;
            #[cfg(feature = "iceberg")]
            if matches!(self.plan.destination, Destination::Table(_)) {
                // Every record up to the buffer's last is still pending (the buffer is live),
                // and with one commit at a time no other buffer holds any of them.
                for p in self.pending.iter().take_while(|p| p.index <= buffer.last_index) {
                    buffer.lanes.insert(p.lane, p.position.clone());
                }
            }
            let plan = self.plan.clone();
            let metrics = self.metrics.clone();
            let client = self.client.clone();
            let mut turn = Turn { number: self.turns_started, allowed: self.turn_allowed.subscribe() };
            self.turns_started += 1;
            self.uploads.spawn(async move {
                let min_index = buffer.min_index;
                upload(&plan, &metrics, &client, buffer, &mut turn).await;
                // Every path through `upload` waited before writing; this also keeps uploads
                // finishing in turn order, which `Engine::next_turn` counts on.
                turn.wait().await;
                min_index
            });
        }
    }
}

/// One line of AWS's error record format (JSON, newline-terminated).
fn error_line(
    arrival_ms: i64,
    raw: &[u8],
    code: &str,
    message: &str,
    attempts: u32,
    lambda_arn: Option<&str>,
) -> Bytes {
    let mut record = serde_json::json!({
        "attemptsMade": attempts,
        "arrivalTimestamp": arrival_ms,
        "errorCode": code,
        "errorMessage": message,
        "attemptEndingTimestamp": Utc::now().timestamp_millis(),
        "rawData": base64::engine::general_purpose::STANDARD.encode(raw),
    });
    if let Some(arn) = lambda_arn {
        record["lambdaArn"] = serde_json::Value::String(arn.to_string());
    }
    let mut line = serde_json::to_vec(&record).expect("serializes");
    line.push(b'\n');
    Bytes::from(line)
}

fn timestamp(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_else(Utc::now)
}

fn concat(records: &[BufRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.iter().map(|r| r.data.len()).sum());
    for r in records {
        out.extend_from_slice(&r.data);
    }
    out
}

/// Writes an object, retrying until the store takes it: the records stay in the source until
/// then, so waiting loses nothing.
async fn put_until_durable(
    bucket: &Bucket,
    key: &str,
    body: Bytes,
    attempts: &std::sync::atomic::AtomicU64,
    successes: &std::sync::atomic::AtomicU64,
) {
    let mut backoff = Duration::from_millis(STORE_BACKOFF_MS_INITIAL);
    loop {
        Metrics::add(attempts, 1);
        match bucket.put(key, body.clone()).await {
            Ok(()) => {
                Metrics::add(successes, 1);
                return;
            }
            Err(e) => {
                tracing::warn!(bucket = bucket.name(), key, error = %e, "writing an object failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(STORE_BACKOFF_MS_MAX));
            }
        }
    }
}

/// Writes error lines to the error output.
async fn put_errors(
    plan: &DeliveryPlan,
    metrics: &Metrics,
    errors: &ErrorTarget,
    error_type: &str,
    oldest_ms: i64,
    body: Vec<u8>,
) {
    let ctx = PrefixContext {
        timestamp: Some(timestamp(oldest_ms)),
        error_output_type: Some(error_type),
        ..Default::default()
    };
    // An error prefix too long to evaluate still has to go somewhere: its literal type folder.
    let prefix = errors.prefix.evaluate(&ctx).unwrap_or_else(|_| format!("{error_type}/"));
    let key = format!("{prefix}{}", object_name(&plan.name, plan.version, timestamp(oldest_ms), ""));
    // The error output's own attempts are counted with the destination's.
    put_until_durable(
        &errors.bucket,
        &key,
        Bytes::from(body),
        &metrics.delivery_to_s3_attempts,
        &metrics.delivery_to_s3_success,
    )
    .await;
}

/// Delivers `buffer`: prepares what to write, then waits for its `turn` before writing
/// anything anywhere (destination, error output or backup).
async fn upload(plan: &DeliveryPlan, metrics: &Metrics, client: &reqwest::Client, buffer: Buffer, turn: &mut Turn) {
    let oldest = timestamp(buffer.oldest_arrival_ms);
    let errors = match &plan.destination {
        Destination::S3(s3) => &s3.errors,
        Destination::Http(h) => &h.errors,
        #[cfg(feature = "iceberg")]
        Destination::Table(t) => &t.errors,
    };
    match (&buffer.key, &plan.destination) {
        (BufferKey::Error(error_type), _) => {
            turn.wait().await;
            put_errors(plan, metrics, errors, error_type, buffer.oldest_arrival_ms, concat(&buffer.records)).await;
        }
        (BufferKey::Backup, destination) => {
            let target = match destination {
                Destination::S3(s3) => s3.backup.as_ref(),
                Destination::Http(h) => h.backup.as_ref(),
                #[cfg(feature = "iceberg")]
                Destination::Table(_) => None,
            }
            .expect("a backup buffer exists only with a backup target");
            let raw = concat(&buffer.records);
            let name = object_name(&plan.name, plan.version, oldest, &target.extension);
            let body = compress_blocking(target.compression, raw, name.clone()).await;
            let ctx = PrefixContext { timestamp: Some(oldest), ..Default::default() };
            let prefix = target.prefix.evaluate(&ctx).unwrap_or_default();
            turn.wait().await;
            put_until_durable(
                &target.bucket,
                &format!("{prefix}{name}"),
                body,
                &metrics.backup_to_s3_attempts,
                &metrics.backup_to_s3_success,
            )
            .await;
            Metrics::add(&metrics.backup_to_s3_records, buffer.records.len() as u64);
            Metrics::add(&metrics.backup_to_s3_bytes, buffer.bytes as u64);
        }
        (BufferKey::Main(_), Destination::S3(s3)) => {
            let ctx = PrefixContext {
                timestamp: Some(oldest),
                keys_from_query: buffer.keys_from_query.as_ref(),
                keys_from_lambda: buffer.keys_from_lambda.as_ref(),
                ..Default::default()
            };
            let prefix = match s3.main.prefix.evaluate(&ctx) {
                Ok(p) => p,
                Err(why) => {
                    let lines: Vec<u8> = buffer
                        .records
                        .iter()
                        .flat_map(|r| {
                            error_line(r.arrival_ms, &r.data, "S3.PrefixEvaluationFailed", &why.to_string(), 1, None)
                                .to_vec()
                        })
                        .collect();
                    Metrics::add(&metrics.error_output_records, buffer.records.len() as u64);
                    turn.wait().await;
                    put_errors(plan, metrics, errors, PARTITIONING_FAILED, buffer.oldest_arrival_ms, lines).await;
                    return;
                }
            };
            let name = object_name(&plan.name, plan.version, oldest, &s3.main.extension);
            let (body, delivered_records, failed_lines) = match s3.converter.as_ref().map(Conversion::converter) {
                Some(Ok(converter)) => {
                    let records = buffer.records.clone();
                    let converted =
                        tokio::task::spawn_blocking(move || converter.convert(records.iter().map(|r| &r.data[..])))
                            .await
                            .expect("conversion does not panic");
                    match converted {
                        Ok(c) => {
                            let lines: Vec<u8> = c
                                .failed
                                .iter()
                                .flat_map(|(i, why)| {
                                    let r = &buffer.records[*i];
                                    error_line(
                                        r.arrival_ms,
                                        &r.data,
                                        "DataFormatConversion.MalformedData",
                                        why,
                                        1,
                                        None,
                                    )
                                    .to_vec()
                                })
                                .collect();
                            Metrics::add(&metrics.conversion_succeeded_records, c.record_count as u64);
                            Metrics::add(&metrics.conversion_failed_records, c.failed.len() as u64);
                            (c.parquet.map(Bytes::from), c.record_count, lines)
                        }
                        // The whole buffer failed to convert (a writer error): every record
                        // goes to the error output rather than being lost.
                        Err(e) => {
                            (None, 0, unconverted(metrics, &buffer, "DataFormatConversion.WriterError", &e.to_string()))
                        }
                    }
                }
                // No schema to convert with (the Glue table is missing, or its columns are not
                // ones Sluice writes): as in AWS, the records go to the error output.
                Some(Err(failure)) => (None, 0, unconverted(metrics, &buffer, failure.code, &failure.message)),
                None => {
                    let raw = concat(&buffer.records);
                    (
                        Some(compress_blocking(s3.main.compression, raw, name.clone()).await),
                        buffer.records.len(),
                        Vec::new(),
                    )
                }
            };
            turn.wait().await;
            if let Some(body) = body {
                let len = body.len();
                put_until_durable(
                    &s3.main.bucket,
                    &format!("{prefix}{name}"),
                    body,
                    &metrics.delivery_to_s3_attempts,
                    &metrics.delivery_to_s3_success,
                )
                .await;
                Metrics::add(&metrics.delivery_to_s3_records, delivered_records as u64);
                Metrics::add(&metrics.delivery_to_s3_bytes, len as u64);
                Metrics::add(&metrics.delivery_to_s3_objects, 1);
            }
            if !failed_lines.is_empty() {
                Metrics::add(
                    &metrics.error_output_records,
                    failed_lines.iter().filter(|b| **b == b'\n').count() as u64,
                );
                put_errors(plan, metrics, errors, FORMAT_CONVERSION_FAILED, buffer.oldest_arrival_ms, failed_lines)
                    .await;
            }
        }
        #[cfg(feature = "iceberg")]
        (BufferKey::Main(_), Destination::Table(table)) => {
            upload_to_table(plan, metrics, table, buffer, turn).await;
        }
        (BufferKey::Main(_), Destination::Http(h)) => {
            let records: Vec<Bytes> = buffer.records.iter().map(|r| r.data.clone()).collect();
            turn.wait().await;
            let result = http_endpoint::deliver(
                client,
                h,
                &plan.arn,
                plan.options.http_response_timeout,
                plan.options.http_backoff_max,
                &records,
            )
            .await;
            match result {
                Ok(attempts) => {
                    Metrics::add(&metrics.delivery_to_http_attempts, attempts as u64);
                    Metrics::add(&metrics.delivery_to_http_success, 1);
                    Metrics::add(&metrics.delivery_to_http_records, records.len() as u64);
                    Metrics::add(&metrics.delivery_to_http_bytes, buffer.bytes as u64);
                }
                Err((start, failure)) => {
                    Metrics::add(&metrics.delivery_to_http_attempts, failure.attempts as u64);
                    Metrics::add(&metrics.delivery_to_http_records, start as u64);
                    Metrics::add(&metrics.delivery_to_http_failed_records, (records.len() - start) as u64);
                    Metrics::add(&metrics.error_output_records, (records.len() - start) as u64);
                    let lines: Vec<u8> = buffer.records[start..]
                        .iter()
                        .flat_map(|r| {
                            error_line(
                                r.arrival_ms,
                                &r.data,
                                &failure.error_code,
                                &failure.error_message,
                                failure.attempts,
                                None,
                            )
                            .to_vec()
                        })
                        .collect();
                    put_errors(plan, metrics, errors, HTTP_ENDPOINT_FAILED, buffer.oldest_arrival_ms, lines).await;
                }
            }
        }
    }
}

/// Delivers a buffer to an Iceberg table: records that do not convert go to the dead-letter
/// bucket first, then the rest are committed as one snapshot with the buffer's positions.
#[cfg(feature = "iceberg")]
async fn upload_to_table(
    plan: &DeliveryPlan,
    metrics: &Metrics,
    table: &crate::iceberg::TablePlan,
    buffer: Buffer,
    turn: &mut Turn,
) {
    let records: Vec<Bytes> = buffer.records.iter().map(|r| r.data.clone()).collect();
    let (batch, failed) = match table.convert(records).await {
        Ok(converted) => converted,
        Err(e) => {
            // The whole buffer failed to convert (a writer error): every record goes to the
            // dead-letter bucket rather than being lost.
            (None, (0..buffer.records.len()).map(|i| (i, e.to_string())).collect())
        }
    };
    turn.wait().await;
    if !failed.is_empty() {
        let lines: Vec<u8> = failed
            .iter()
            .flat_map(|(i, why)| {
                let r = &buffer.records[*i];
                error_line(r.arrival_ms, &r.data, "DataFormatConversion.MalformedData", why, 1, None).to_vec()
            })
            .collect();
        Metrics::add(&metrics.conversion_failed_records, failed.len() as u64);
        Metrics::add(&metrics.error_output_records, failed.len() as u64);
        put_errors(plan, metrics, &table.errors, FORMAT_CONVERSION_FAILED, buffer.oldest_arrival_ms, lines).await;
    }
    let rows = batch.as_ref().map_or(0, |b| b.num_rows());
    Metrics::add(&metrics.conversion_succeeded_records, rows as u64);
    Metrics::add(&metrics.delivery_to_s3_attempts, 1);
    let bytes = table.commit(batch, &buffer.lanes).await;
    Metrics::add(&metrics.delivery_to_s3_success, 1);
    Metrics::add(&metrics.delivery_to_s3_records, rows as u64);
    Metrics::add(&metrics.delivery_to_s3_bytes, bytes);
    Metrics::add(&metrics.delivery_to_s3_objects, 1);
}

/// The error-output lines of a buffer none of whose records converted, counted as failed.
fn unconverted(metrics: &Metrics, buffer: &Buffer, code: &str, why: &str) -> Vec<u8> {
    Metrics::add(&metrics.conversion_failed_records, buffer.records.len() as u64);
    buffer.records.iter().flat_map(|r| error_line(r.arrival_ms, &r.data, code, why, 1, None).to_vec()).collect()
}

async fn compress_blocking(compression: crate::compress::Compression, raw: Vec<u8>, name: String) -> Bytes {
    let entry = name.trim_end_matches(compression.extension()).to_string();
    tokio::task::spawn_blocking(move || compression.compress(&raw, &entry))
        .await
        .expect("compression does not panic")
        .map(Bytes::from)
        .expect("compressing into memory does not fail")
}
