//! The producer sink: stream flows with `aggregatedRecordSizeBytes` > 0 ship through
//! `sluice-client`'s KPL-compatible producer ([`sluice_client::producer::Producer`]), which
//! packs their records into KPL aggregates (one Kinesis record carrying many, the format the
//! KCL and `sluice_kpl::consumer` de-aggregate), collects them into PutRecords calls, keeps
//! each shard under its rate limit, and retries failed entries keeping each key's order. The
//! agent gets all of that without doing it itself: this module only adapts the producer to the
//! [`Sink`] contract.
//!
//! Aggregation changes what consumers read (they must de-aggregate), so it is the flow's
//! choice: `aggregatedRecordSizeBytes` is the aggregate's most bytes of data (the KPL's
//! `AggregationMaxSize`, 64 B to 1000 KiB here). The AWS agent reads that key for delivery
//! streams only; reading it for streams is Sluice's extension. Flows without it go to the
//! stream sink, which this sink wraps ([`ProducerSink::start`]).
//!
//! The flow's other keys map to the producer's settings: `maxBufferSizeRecords` and
//! `maxBufferSizeBytes` to its collection limits (per PutRecords call), `maxBufferAgeMillis` to
//! `RecordMaxBufferedTime`, `retryInitialBackoffMillis` / `retryMaxBackoffMillis` to its retry
//! backoff. Records never expire (`RecordTtl` of a year): a line is retried until it is in,
//! as with the stream sink.
//!
//! Threads, each queue bounded:
//!
//! ```text
//!  flows ── submit ──► queue (SINK_QUEUE_BATCHES_MAX) ──► feeder ── put_blocking ──► producer (one per stream)
//!                                                           │ (future, Ack)
//!                                                           ▼
//!                                     pending (PRODUCER_SINK_PENDING_MAX) ──► completer: wait, then Ack
//! ```
//!
//! Back-pressure: when a producer is full, `put_blocking` waits, the feeder stops taking
//! batches, the queue fills and `submit` hands records back, so the flows stop reading. A
//! stream that does not exist (yet) is retried when its producer starts: the feeder holds the
//! batch, logs once a minute, and tries again after the flow's backoff. `flush` is answered by
//! a flusher thread that asks every producer to send what it buffers (the producer's `flush`
//! waits for its records, so the flusher does, and requests meanwhile coalesce).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use sluice_client::producer::{Producer, PutError, RecordFuture, StartError};
use sluice_client::transport::Endpoint;
use sluice_client::{ConnectOptions, Encoding};
use sluice_kpl::limits::COLLECTION_MAX_SIZE_MIN;
use sluice_kpl::producer::{ProducerConfig, UserRecord};

use crate::access::Access;
use crate::config::{BufferLimits, Destination, DestinationKind, FlowConfig};
use crate::endpoint::{Protocol, StreamEndpoint};
use crate::limits;
use crate::sink::{Ack, Sink, SinkError, SinkRecord, SubmitError};
use crate::stream_sink::{backoff, StreamSink};

/// The producer's settings for an aggregating flow. `ProducerConfig::validate` checks them
/// against the KPL's ranges (so `aggregatedRecordSizeBytes` below 64 is refused at start).
pub fn producer_config(flow: &FlowConfig) -> ProducerConfig {
    ProducerConfig {
        aggregation_enabled: true,
        aggregation_max_size_bytes: flow.aggregated_record_size_bytes as usize,
        collection_max_count: flow.buffer.records as usize,
        // The KPL's floor: a call must hold at least one full aggregate.
        collection_max_size_bytes: (flow.buffer.bytes as usize).max(COLLECTION_MAX_SIZE_MIN),
        record_max_buffered_time_ms: flow.buffer.age.as_millis() as u64,
        record_ttl_ms: limits::PRODUCER_SINK_RECORD_TTL_MS,
        retry_backoff_base_ms: flow.retry_initial_backoff.as_millis() as u64,
        retry_backoff_max_ms: (flow.retry_max_backoff.as_millis() as u64)
            .max(flow.retry_initial_backoff.as_millis() as u64),
        ..ProducerConfig::default()
    }
}

/// Whether a flow ships through the producer.
pub fn aggregates(flow: &FlowConfig) -> bool {
    flow.destination.kind == DestinationKind::Stream && flow.aggregated_record_size_bytes > 0
}

/// What the threads share.
struct Shared {
    endpoint: Endpoint,
    /// Credentials (SigV4 over HTTP(S), the handshake natively), region and TLS.
    options: ConnectOptions,
    /// The endpoint as configured (`https://…`), for `describe`.
    label: String,
    /// Settings per aggregating stream, from its (first) flow.
    configs: Mutex<HashMap<Destination, (ProducerConfig, Duration, Duration)>>,
    /// Running producers, per stream.
    producers: Mutex<HashMap<Destination, Producer>>,
    /// Records submitted and not yet completed.
    outstanding: AtomicUsize,
    closed: AtomicBool,
}

/// The producer sink. See the module docs.
pub struct ProducerSink {
    shared: Arc<Shared>,
    queue: Sender<Vec<SinkRecord>>,
    flushes: Sender<()>,
    /// Flows that do not aggregate.
    streams: Arc<StreamSink>,
}

impl ProducerSink {
    /// Starts the feeder, completer and flusher threads for `endpoint`; `streams` takes the
    /// flows that do not aggregate (and delivery streams).
    pub fn start(
        endpoint: &StreamEndpoint,
        access: &Access,
        streams: Arc<StreamSink>,
    ) -> std::io::Result<Arc<ProducerSink>> {
        let options = access.options(endpoint);
        let label = endpoint.to_string();
        let endpoint = match endpoint.protocol {
            Protocol::Native if endpoint.routed => Endpoint::Routed(vec![endpoint.address.clone()]),
            Protocol::Native => Endpoint::Native(endpoint.address.clone()),
            Protocol::Http | Protocol::Https => {
                Endpoint::Http { addr: endpoint.address.clone(), encoding: Encoding::Json }
            }
        };
        let shared = Arc::new(Shared {
            endpoint,
            options,
            label,
            configs: Mutex::new(HashMap::new()),
            producers: Mutex::new(HashMap::new()),
            outstanding: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        let (queue, batches) = bounded(limits::SINK_QUEUE_BATCHES_MAX);
        let (pending, waiting) = bounded(limits::PRODUCER_SINK_PENDING_MAX);
        let (flushes, flush_requests) = bounded(1);
        let feeder_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("producer-feeder".into())
            .spawn(move || feed(&feeder_shared, &batches, &pending))?;
        let completer_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("producer-completer".into())
            .spawn(move || complete(&completer_shared, &waiting))?;
        let flusher_shared = Arc::clone(&shared);
        std::thread::Builder::new().name("producer-flusher".into()).spawn(move || {
            while flush_requests.recv().is_ok() {
                let producers: Vec<Producer> =
                    flusher_shared.producers.lock().expect("not poisoned").values().cloned().collect();
                for producer in producers {
                    producer.flush_blocking();
                }
            }
        })?;
        Ok(Arc::new(ProducerSink { shared, queue, flushes, streams }))
    }
}

impl Sink for ProducerSink {
    fn open(&self, destination: &Destination, limits: BufferLimits) -> Result<(), SinkError> {
        self.streams.open(destination, limits)
    }

    fn open_flow(&self, flow: &FlowConfig) -> Result<(), SinkError> {
        if !aggregates(flow) {
            return self.streams.open_flow(flow);
        }
        let config = producer_config(flow);
        config.validate().map_err(|error| SinkError {
            destination: flow.destination.name.clone(),
            message: format!("aggregatedRecordSizeBytes and the buffer keys must suit the KPL producer: {error}"),
        })?;
        self.shared.configs.lock().expect("not poisoned").entry(flow.destination.clone()).or_insert((
            config,
            flow.retry_initial_backoff,
            flow.retry_max_backoff,
        ));
        Ok(())
    }

    fn submit(&self, records: Vec<SinkRecord>, wait: Duration) -> Result<(), SubmitError> {
        // A flow submits records of its own only: all aggregated, or none.
        let Some(first) = records.first() else { return Ok(()) };
        if !first.aggregated {
            return self.streams.submit(records, wait);
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(SubmitError::Closed(records));
        }
        let count = records.len();
        self.shared.outstanding.fetch_add(count, Ordering::AcqRel);
        match self.queue.send_timeout(records, wait) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(records)) => {
                self.shared.outstanding.fetch_sub(count, Ordering::AcqRel);
                Err(SubmitError::Full(records))
            }
            Err(SendTimeoutError::Disconnected(records)) => {
                self.shared.outstanding.fetch_sub(count, Ordering::AcqRel);
                Err(SubmitError::Closed(records))
            }
        }
    }

    fn flush(&self) {
        // A full request channel already asks.
        let _ = self.flushes.try_send(());
        self.streams.flush();
    }

    fn shutdown(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        self.shared.closed.store(true, Ordering::Release);
        // Records already handed over get until the deadline; the threads are not joined (one
        // may wait on a producer that cannot send), and what is left is not acknowledged.
        while self.shared.outstanding.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            let _ = self.flushes.try_send(());
            std::thread::sleep(limits::PRODUCER_SINK_SHUTDOWN_POLL);
        }
        self.streams.shutdown(deadline.saturating_duration_since(Instant::now()));
    }

    fn describe(&self) -> String {
        format!("KPL producer to {} for aggregating flows; {}", self.shared.label, self.streams.describe())
    }
}

/// The feeder: hands each record to its stream's producer (starting it on first use) and the
/// record's pending result to the completer, in submission order.
fn feed(shared: &Shared, batches: &Receiver<Vec<SinkRecord>>, pending: &Sender<(RecordFuture, Ack)>) {
    let mut last_logged: HashMap<String, Instant> = HashMap::new();
    while let Ok(batch) = batches.recv() {
        for record in batch {
            let SinkRecord { destination, partition_key, data, ack, .. } = record;
            let Some(producer) = producer_for(shared, &destination, &mut last_logged) else {
                // Closed while the stream was missing: the Ack is dropped (Abandoned).
                shared.outstanding.fetch_sub(1, Ordering::AcqRel);
                continue;
            };
            let key = partition_key.unwrap_or_default();
            let future = producer.put_blocking(UserRecord::new(key, data));
            if pending.send((future, ack)).is_err() {
                return;
            }
        }
    }
}

/// The running producer of `destination`, started (after ListShards) on first use; while the
/// stream cannot be listed, retried with the flow's backoff. `None` once the sink is closed.
fn producer_for(
    shared: &Shared,
    destination: &Destination,
    last_logged: &mut HashMap<String, Instant>,
) -> Option<Producer> {
    let mut attempt = 0;
    loop {
        if let Some(producer) = shared.producers.lock().expect("not poisoned").get(destination) {
            return Some(producer.clone());
        }
        let (config, initial, max) = shared.configs.lock().expect("not poisoned").get(destination).cloned()?;
        match Producer::start_with(shared.endpoint.clone(), shared.options.clone(), &destination.name, config) {
            Ok(producer) => {
                tracing::info!(stream = destination.name.as_str(), "KPL producer started");
                shared.producers.lock().expect("not poisoned").insert(destination.clone(), producer.clone());
                return Some(producer);
            }
            Err(error) => {
                let due =
                    last_logged.get(&destination.name).is_none_or(|t| t.elapsed() >= limits::STREAM_SINK_LOG_EVERY);
                if due {
                    last_logged.insert(destination.name.clone(), Instant::now());
                    match &error {
                        StartError::ListShards { error, .. }
                            if error.code() == Some(sluice_client::ErrorKind::ResourceNotFound) =>
                        {
                            tracing::warn!(
                                stream = destination.name.as_str(),
                                "stream does not exist (yet); holding its records and retrying"
                            )
                        }
                        _ => {
                            tracing::warn!(stream = destination.name.as_str(), %error, "cannot start the KPL producer; retrying with backoff")
                        }
                    }
                }
            }
        }
        if shared.closed.load(Ordering::Acquire) {
            return None;
        }
        std::thread::sleep(backoff(initial, max, attempt));
        attempt += 1;
    }
}

/// The completer: waits for each record's result, in submission order, and completes its Ack.
fn complete(shared: &Shared, waiting: &Receiver<(RecordFuture, Ack)>) {
    loop {
        let (future, ack) = match waiting.recv_timeout(Duration::from_secs(1)) {
            Ok(next) => next,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        match future.wait() {
            // Attempts beyond the first were retries (throttling or failed entries).
            Ok(put) => ack.delivered(put.attempts.saturating_sub(1)),
            Err(PutError::Failed(failure)) => ack.failed(format!("the KPL producer gave up: {failure}")),
            Err(PutError::Refused(error)) => ack.failed(format!("the KPL producer refused the record: {error}")),
            // The producer's thread ended: not acknowledged, sent again after a restart.
            Err(PutError::Stopped(_)) => drop(ack),
        }
        shared.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}
