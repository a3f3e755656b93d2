//! The producer: the KPL's job (aggregation, collection into PutRecords, per-shard rate
//! limits, retries, per-key order) as a handle usable from any thread, async or blocking.
//!
//! The decisions are the sans-IO core's (`sluice_kpl::producer::Producer`, see
//! docs/clients.md); this module only drives it. [`Producer::start`] spawns one thread running
//! a glommio executor that owns the core, the connection ([`Transport`]: native protocol or
//! HTTP) and the timers:
//!
//! ```text
//!  any thread ── put / put_blocking ──► bounded command channel ──► driver thread
//!     ▲                                                              │ core.submit(now, record)
//!     └──── RecordResult (oneshot) ◄── Completed ◄── core.poll(now) ─┤ Send(call) → PutRecords task
//!                                                                    │ RefreshShardMap → ListShards task
//!                                      call results (bounded) ──────►┘ core.on_put_records_result
//! ```
//!
//! Back-pressure: when the core refuses a record (`max_outstanding_records` / `_bytes`), the
//! driver holds that one record and stops reading commands until completions make room, so
//! the command channel fills and `put` waits (`put_blocking` blocks). Memory is bounded by the
//! core's limits plus [`COMMANDS_QUEUED_MAX`] records.
//!
//! The shard map is listed with ListShards at start (before [`Producer::start`] returns, so a
//! missing stream fails there) and again whenever the core asks: after a reshard
//! (`ResourceNotFound`/`InvalidArgument` on a closed shard) or a record landing on a shard it
//! did not predict.
//!
//! Dropping every [`Producer`] handle (or calling [`Producer::close`]) flushes what is buffered,
//! waits for every outstanding record to complete, then stops the thread.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::oneshot;
use futures_lite::future;
use sluice_kpl::producer::{
    CallError, CallId, EntryResult, Output, Producer as Core, ProducerConfig, ProducerMetrics, RecordFailure,
    RecordPut, SubmitError, UserRecord,
};
use sluice_kpl::retry::CONNECTION_ERROR_CODE;
use sluice_kpl::types::{HashKeyRange, ShardId};
use sluice_model::{ListShardsInput, PutRecordsInput, PutRecordsRequestEntry};

use crate::auth::ConnectOptions;
use crate::errors::ClientError;
use crate::transport::{Endpoint, Transport};

pub use sluice_kpl::producer::{ConfigError, RecordFailure as PutFailure, RecordPut as Put};

/// Commands (records, flushes, metric reads) queued from the application to the driver thread.
/// Beyond it `put` waits: with the core's own outstanding limits this bounds the producer's
/// memory. 1,024 records is a few PutRecords calls' worth, enough that a submitting thread
/// rarely waits on the driver's turn-around.
pub const COMMANDS_QUEUED_MAX: usize = 1024;

/// Wait before listing the shards again after ListShards failed. Meanwhile the core sends
/// records unpredicted and unaggregated, which still works.
const SHARD_LIST_RETRY_MS: u64 = 1_000;

/// Registered io_uring buffer memory of the driver thread's executor: it does no DMA file I/O
/// (glommio's 10 MiB default is for that), and the minimum keeps it within a non-root user's
/// default RLIMIT_MEMLOCK.
const DRIVER_IO_MEMORY_BYTES: usize = 64 * 1024;

/// Why a record was not put.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PutError {
    /// The record was tried and failed (`Expired` after `RecordTtl`, a non-retryable error, or
    /// a throttle with `fail_if_throttled`).
    #[error("{0}")]
    Failed(RecordFailure),
    /// The record was refused before it was buffered (partition key length, record size).
    #[error("{0}")]
    Refused(SubmitError),
    /// The producer stopped (its thread ended) before the record completed.
    #[error("the producer stopped: {0}")]
    Stopped(String),
}

/// Why a producer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid producer setting: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot list the shards of {stream}: {error}")]
    ListShards { stream: String, error: Box<ClientError> },
    #[error("cannot start the producer's thread: {0}")]
    Thread(String),
}

/// The result of one user record: where it was put, or why it was not.
pub type PutResult = Result<RecordPut, PutError>;

/// A user record's pending result. Await it (from any runtime), or [`RecordFuture::wait`].
pub struct RecordFuture {
    receiver: oneshot::Receiver<PutResult>,
}

impl std::future::Future for RecordFuture {
    type Output = PutResult;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<PutResult> {
        std::pin::Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|result| result.unwrap_or_else(|_| Err(PutError::Stopped("the driver dropped the record".into()))))
    }
}

impl RecordFuture {
    /// Blocks the calling thread until the record completes. Not from inside an async task.
    pub fn wait(self) -> PutResult {
        future::block_on(self)
    }
}

enum Command {
    Put(UserRecord, oneshot::Sender<PutResult>),
    /// Send everything buffered now; answer once nothing is outstanding.
    Flush(oneshot::Sender<()>),
    Metrics(oneshot::Sender<ProducerMetrics>),
}

/// A handle to a running producer. Cheap to clone, `Send + Sync`: use it from any thread.
#[derive(Clone)]
pub struct Producer {
    commands: async_channel::Sender<Command>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Producer {
    /// Starts a producer for `stream` at `endpoint`: checks `config`, spawns the driver thread,
    /// lists the shards, and returns once the producer is ready (or why it cannot be).
    /// Blocks the calling thread for that first ListShards.
    pub fn start(endpoint: Endpoint, stream: &str, config: ProducerConfig) -> Result<Producer, StartError> {
        Producer::start_with(endpoint, ConnectOptions::default(), stream, config)
    }

    /// [`Producer::start`] with credentials and TLS (`options`, e.g.
    /// [`ConnectOptions::from_environment`]) for every connection the producer opens.
    pub fn start_with(
        endpoint: Endpoint,
        options: ConnectOptions,
        stream: &str,
        config: ProducerConfig,
    ) -> Result<Producer, StartError> {
        config.validate()?;
        let (commands, receiver) = async_channel::bounded(COMMANDS_QUEUED_MAX);
        let (ready_sender, ready) = std::sync::mpsc::sync_channel(1);
        let stream = stream.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("sluice-producer-{stream}"))
            .spawn(move || {
                let executor = glommio::LocalExecutorBuilder::default()
                    .name("sluice-producer")
                    .io_memory(DRIVER_IO_MEMORY_BYTES)
                    .make();
                match executor {
                    Ok(executor) => executor.run(drive(endpoint, options, stream, config, receiver, ready_sender)),
                    Err(error) => {
                        let _ = ready_sender.send(Err(StartError::Thread(error.to_string())));
                    }
                }
            })
            .map_err(|error| StartError::Thread(error.to_string()))?;
        match ready.recv() {
            Ok(Ok(())) => Ok(Producer { commands, thread: Arc::new(Mutex::new(Some(thread))) }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => Err(StartError::Thread("the producer's thread ended before it was ready".into())),
        }
    }

    /// Submits a user record; waits while the producer is full (back-pressure). The returned
    /// future completes with the record's result.
    pub async fn put(&self, record: UserRecord) -> RecordFuture {
        let (sender, receiver) = oneshot::channel();
        if let Err(async_channel::SendError(Command::Put(_, sender))) =
            self.commands.send(Command::Put(record, sender)).await
        {
            let _ = sender.send(Err(PutError::Stopped("the producer's thread ended".into())));
        }
        RecordFuture { receiver }
    }

    /// [`Producer::put`] for threads outside any async runtime: blocks while the producer is full.
    pub fn put_blocking(&self, record: UserRecord) -> RecordFuture {
        future::block_on(self.put(record))
    }

    /// Shorthand for a record with a partition key and data.
    pub async fn put_data(&self, partition_key: impl Into<String>, data: impl Into<Bytes>) -> RecordFuture {
        self.put(UserRecord::new(partition_key, data)).await
    }

    /// Sends everything buffered without waiting for `RecordMaxBufferedTime`, and waits until
    /// every record submitted before it has completed (KPL `flushSync`).
    pub async fn flush(&self) {
        let (sender, receiver) = oneshot::channel();
        if self.commands.send(Command::Flush(sender)).await.is_ok() {
            let _ = receiver.await;
        }
    }

    pub fn flush_blocking(&self) {
        future::block_on(self.flush())
    }

    /// The core's counters and buffered-time histogram, as of now.
    pub async fn metrics(&self) -> Option<ProducerMetrics> {
        let (sender, receiver) = oneshot::channel();
        self.commands.send(Command::Metrics(sender)).await.ok()?;
        receiver.await.ok()
    }

    pub fn metrics_blocking(&self) -> Option<ProducerMetrics> {
        future::block_on(self.metrics())
    }

    /// Flushes, waits for every outstanding record, and stops the driver thread once no other
    /// handle is left (blocking). Records put through other handles meanwhile still complete.
    pub fn close(self) {
        self.flush_blocking();
        let thread = self.thread.lock().expect("not poisoned").take();
        drop(self.commands);
        if let Some(thread) = thread {
            // Other clones keep the channel open; only the last one's drop ends the thread.
            if Arc::strong_count(&self.thread) == 1 {
                let _ = thread.join();
            }
        }
    }
}

enum Event {
    Put(CallId, Result<Vec<EntryResult>, CallError>),
    Shards(Result<Vec<(ShardId, HashKeyRange)>, ClientError>),
}

fn now_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// Lists the stream's open shards, every page.
pub(crate) async fn list_open_shards(
    transport: &Transport,
    stream: &str,
) -> Result<Vec<(ShardId, HashKeyRange)>, ClientError> {
    let mut shards = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let input = match next_token.take() {
            Some(token) => ListShardsInput { next_token: Some(token), ..Default::default() },
            None => ListShardsInput { stream_name: Some(stream.to_owned()), ..Default::default() },
        };
        let output = transport.call(&input).await?;
        for shard in output.shards {
            if shard.sequence_number_range.ending_sequence_number.is_some() {
                continue;
            }
            let Ok(id) = ShardId::try_from(&shard.shard_id) else { continue };
            let range = HashKeyRange {
                start: shard.hash_key_range.starting_hash_key,
                end: shard.hash_key_range.ending_hash_key,
            };
            shards.push((id, range));
        }
        match output.next_token {
            Some(token) => next_token = Some(token),
            None => return Ok(shards),
        }
    }
}

fn call_error(error: ClientError) -> CallError {
    match error {
        ClientError::Service(error) => CallError {
            code: error.kind.exception_name().to_owned(),
            http_status: Some(error.kind.http_status()),
            message: error.message,
        },
        other => CallError { code: CONNECTION_ERROR_CODE.to_owned(), message: other.to_string(), http_status: None },
    }
}

async fn put_records(transport: &Transport, stream: &str, call: sluice_kpl::producer::PutRecordsCall) -> Event {
    let input = PutRecordsInput {
        stream_name: Some(stream.to_owned()),
        records: call
            .entries
            .into_iter()
            .map(|entry| PutRecordsRequestEntry {
                data: entry.data,
                explicit_hash_key: entry.explicit_hash_key,
                partition_key: Some(entry.partition_key),
            })
            .collect(),
        ..Default::default()
    };
    let result = match transport.call(&input).await {
        Ok(output) => Ok(output
            .records
            .into_iter()
            .map(|entry| match (entry.error_code, entry.shard_id, entry.sequence_number) {
                (Some(code), _, _) => EntryResult::Err {
                    error_code: code.exception_name().to_owned(),
                    error_message: entry.error_message.unwrap_or_default(),
                },
                (None, Some(shard_id), Some(sequence_number)) => match ShardId::try_from(&shard_id) {
                    Ok(shard_id) => EntryResult::Ok { shard_id, sequence_number },
                    Err(error) => {
                        EntryResult::Err { error_code: "InternalFailure".into(), error_message: error.to_string() }
                    }
                },
                _ => EntryResult::Err {
                    error_code: "InternalFailure".into(),
                    error_message: "a PutRecords result without shard id or sequence number".into(),
                },
            })
            .collect()),
        Err(error) => Err(call_error(error)),
    };
    Event::Put(call.call_id, result)
}

/// The driver: owns the core, carries out its outputs, feeds it events.
async fn drive(
    endpoint: Endpoint,
    options: ConnectOptions,
    stream: String,
    config: ProducerConfig,
    commands: async_channel::Receiver<Command>,
    ready: std::sync::mpsc::SyncSender<Result<(), StartError>>,
) {
    let start = Instant::now();
    let transport = Rc::new(Transport::with_options(endpoint, options));
    let stream: Rc<str> = stream.into();
    let shards = match list_open_shards(&transport, &stream).await {
        Ok(shards) => shards,
        Err(error) => {
            let _ = ready.send(Err(StartError::ListShards { stream: stream.to_string(), error: Box::new(error) }));
            return;
        }
    };
    // The seed only spreads retry jitter; any value is correct.
    let seed = start.elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
    let max_in_flight = config.max_in_flight_calls;
    let mut core = match Core::new(config, seed, now_ms(start)) {
        Ok(core) => core,
        Err(error) => {
            let _ = ready.send(Err(StartError::Config(error)));
            return;
        }
    };
    if let Err(error) = core.update_shard_map(now_ms(start), shards) {
        let message = format!("ListShards answered shards that cannot be open at once: {error}");
        let error = ClientError::UnexpectedResponse { operation: "ListShards", body: message };
        let _ = ready.send(Err(StartError::ListShards { stream: stream.to_string(), error: Box::new(error) }));
        return;
    }
    let _ = ready.send(Ok(()));

    // Results of the calls in flight (at most `max_in_flight`) and of one shard listing.
    let (events, event_receiver) = async_channel::bounded::<Event>(max_in_flight + 1);
    let mut waiters: HashMap<u64, oneshot::Sender<PutResult>> = HashMap::new();
    let mut next_handle: u64 = 0;
    let mut held: Option<(UserRecord, oneshot::Sender<PutResult>, u64)> = None;
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    let mut listing = false;
    let mut commands_open = true;

    loop {
        let now = now_ms(start);
        if !commands_open {
            core.flush();
        }
        while let Some(output) = core.poll(now) {
            match output {
                Output::Send(call) => {
                    let (transport, stream, events) = (transport.clone(), stream.clone(), events.clone());
                    glommio::spawn_local(async move {
                        let event = put_records(&transport, &stream, call).await;
                        let _ = events.send(event).await;
                    })
                    .detach();
                }
                Output::Completed(completion) => {
                    if let Some(waiter) = waiters.remove(&completion.handle) {
                        let _ = waiter.send(completion.result.map_err(PutError::Failed));
                    }
                }
                Output::RefreshShardMap if !listing => {
                    listing = true;
                    let (transport, stream, events) = (transport.clone(), stream.clone(), events.clone());
                    glommio::spawn_local(async move {
                        let shards = list_open_shards(&transport, &stream).await;
                        if shards.is_err() {
                            glommio::timer::sleep(Duration::from_millis(SHARD_LIST_RETRY_MS)).await;
                        }
                        let _ = events.send(Event::Shards(shards)).await;
                    })
                    .detach();
                }
                Output::RefreshShardMap => {}
            }
        }
        // A record held back by back-pressure goes in as soon as there is room.
        if let Some((record, waiter, handle)) = held.take() {
            match core.submit(now, record, handle) {
                Ok(()) => {
                    waiters.insert(handle, waiter);
                    continue;
                }
                Err(SubmitError::Backpressure { record, .. }) => held = Some((record, waiter, handle)),
                Err(error) => {
                    let _ = waiter.send(Err(PutError::Refused(error)));
                    continue;
                }
            }
        }
        let idle = held.is_none() && core.outstanding_records() == 0;
        if idle {
            for flush in flushes.drain(..) {
                let _ = flush.send(());
            }
            if !commands_open {
                return;
            }
        }

        let wakeup = core.next_wakeup_ms();
        let timer = async {
            match wakeup {
                Some(at) => glommio::timer::sleep(Duration::from_millis(at.saturating_sub(now_ms(start)))).await,
                None => future::pending::<()>().await,
            }
            Wake::Timer
        };
        let event = async { event_receiver.recv().await.map_or(Wake::Timer, Wake::Event) };
        let accepting = commands_open && held.is_none();
        let command = async {
            if accepting {
                Wake::Command(commands.recv().await.ok())
            } else {
                future::pending().await
            }
        };
        match future::or(event, future::or(command, timer)).await {
            Wake::Timer => {}
            Wake::Event(Event::Put(call_id, result)) => {
                // The core made the call; it cannot be unknown to it.
                let _ = core.on_put_records_result(now_ms(start), call_id, result);
            }
            Wake::Event(Event::Shards(result)) => {
                listing = false;
                if let Ok(shards) = result {
                    let _ = core.update_shard_map(now_ms(start), shards);
                }
            }
            Wake::Command(None) => {
                commands_open = false;
                core.flush();
            }
            Wake::Command(Some(Command::Put(record, waiter))) => {
                let handle = next_handle;
                next_handle += 1;
                match core.submit(now_ms(start), record, handle) {
                    Ok(()) => {
                        waiters.insert(handle, waiter);
                    }
                    Err(SubmitError::Backpressure { record, .. }) => held = Some((record, waiter, handle)),
                    Err(error) => {
                        let _ = waiter.send(Err(PutError::Refused(error)));
                    }
                }
            }
            Wake::Command(Some(Command::Flush(done))) => {
                core.flush();
                flushes.push(done);
            }
            Wake::Command(Some(Command::Metrics(reply))) => {
                let _ = reply.send(core.metrics().clone());
            }
        }
    }
}

enum Wake {
    Timer,
    Event(Event),
    Command(Option<Command>),
}
