//! The stream sink: ships records to a Kinesis stream on a real `sluiced` (or anything that
//! speaks Kinesis' API) with PutRecords through `sluice-client`, and to a Firehose delivery
//! stream with PutRecordBatch, as the AWS Kinesis Agent does, and acknowledges each record
//! only once the service answered that it holds it (sluiced answers PutRecords after the
//! records are durable on disk, and PutRecordBatch once they are durable in the delivery
//! stream's hidden stream).
//!
//! - **Protocols.** `kinesis.endpoint` picks one: `sluice://host:port` or a bare `host:port`
//!   is sluiced's native protocol; `http://host:port` is the AWS JSON 1.1 API over HTTP/1.1
//!   (sluiced's `--http-listen`, or any Kinesis-compatible HTTP service); `https://host[:port]`
//!   or a bare host name (`kinesis.eu-west-1.amazonaws.com`, as the AWS agent takes it) is the
//!   same over TLS (AWS itself, or sluiced with `--tls-cert`). Unset, it is the AWS agent's
//!   default: AWS's Kinesis endpoint of the region. `deliveryStream` flows go to
//!   `firehose.endpoint` (HTTP or HTTPS: Firehose's API is JSON over HTTP only, which sluiced
//!   serves on its `--http-listen` port); unset, to `kinesis.endpoint` if that is a sluiced
//!   HTTP(S) port, else to AWS's Firehose endpoint of the region. Requests are signed with the
//!   credentials `access.rs` finds (`kinesis` or `firehose` as the SigV4 service).
//! - **Batching**, the AWS agent's: per destination, records collect until
//!   `maxBufferSizeRecords` (at most 500, PutRecords' limit), `maxBufferSizeBytes` (at most
//!   5 MiB, counting data and partition keys as Kinesis does) or `maxBufferAgeMillis`; for
//!   delivery streams at most 500 records and 4 MiB of data, PutRecordBatch's limits.
//! - **One call in flight per destination**, and a call's failed entries are retried (after a
//!   backoff from `retryInitialBackoffMillis` doubling to `retryMaxBackoffMillis`, with
//!   jitter) before the next call is sent. So with no failed entries (no throttling), each
//!   shard holds every file's records in file order, and a re-sent call (after a broken
//!   connection) repeats records right after themselves. A throttled entry retried alone can
//!   land after records that followed it, as with the AWS agent.
//! - **Errors.** A failed entry (throttled, internal failure; for delivery streams
//!   `ServiceUnavailableException`, Firehose's throttling) is retried. A whole call that
//!   fails for a reason that can pass (connection lost, sluiced restarting, throttling, a
//!   stream that does not exist yet, access denied) is retried with backoff, forever, holding
//!   the records: the flows stop reading when the sink is full, nothing is dropped. A call the
//!   service refuses as malformed (`InvalidArgument`, `Validation`, `Serialization`) fails its
//!   records for good (logged, counted, skipped), as the AWS agent drops them.
//! - **Bounded.** Between the flows and the driver, a queue of
//!   [`limits::SINK_QUEUE_BATCHES_MAX`] submissions; in the driver, at most
//!   [`limits::STREAM_SINK_CALLS_HELD_MAX`] sealed calls (queued or in flight) over all
//!   destinations, plus one collecting buffer per destination. When they are full `submit`
//!   waits, then hands the records back.
//!
//! The driver is one thread running a glommio executor (the client is glommio-based, like
//! sluiced); the flows' threads talk to it through a crossbeam queue and a doorbell.
//!
//! Stream flows that set `aggregatedRecordSizeBytes` go through the KPL producer instead
//! (`producer_sink`), which wraps this sink for the other flows.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender, TryRecvError};
use rand::Rng;
use sluice_client::aws::HttpClient;
use sluice_client::firehose::{FirehoseRecord, PutRecordBatchInput, PutRecordBatchOutput, SERVICE_UNAVAILABLE};
use sluice_client::routed::{RoutedClient, RoutedConfig};
use sluice_client::{
    Client, ClientError, ConnectOptions, Encoding, ErrorKind, PutRecordsInput, PutRecordsOutput, PutRecordsRequestEntry,
};

use crate::access::Access;
use crate::config::{BufferLimits, Destination, DestinationKind};
use crate::endpoint::{Protocol, SinkEndpoints, StreamEndpoint};
use crate::limits;
use crate::sink::{Ack, Sink, SinkError, SinkRecord, SubmitError};

/// What the sink needs per destination, from its (first) flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendSettings {
    pub buffer: BufferLimits,
    pub retry_initial_backoff: Duration,
    pub retry_max_backoff: Duration,
    /// `aggregatedRecordSizeBytes` of a delivery stream: consecutive records are sent as one
    /// Firehose record of at most this many bytes (0: one Firehose record per record).
    pub aggregated_record_bytes: u64,
}

/// The delay before retry number `attempt` (0-based): `initial` doubled per attempt up to
/// `max`, then a uniformly random point in its upper half, so that agents retrying against
/// one service spread out.
pub fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let full = initial.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)).min(max);
    let half = full / 2;
    half + rand::thread_rng().gen_range(Duration::ZERO..=half)
}

/// What the flows' threads share with the driver.
struct Shared {
    settings: Mutex<HashMap<Destination, SendSettings>>,
    flush: AtomicBool,
    /// Set with the deadline of records in flight by `shutdown`.
    shutdown: Mutex<Option<Instant>>,
}

/// The stream sink. See the module docs.
pub struct StreamSink {
    endpoints: SinkEndpoints,
    queue: Sender<Vec<SinkRecord>>,
    doorbell: async_channel::Sender<()>,
    shared: Arc<Shared>,
    closed: AtomicBool,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl StreamSink {
    /// Starts the driver thread for `endpoints`. It connects lazily (and again after every
    /// broken connection), so a sluiced that is not up yet delays records, not the start.
    pub fn start(endpoints: SinkEndpoints, access: Access) -> std::io::Result<Arc<StreamSink>> {
        let (queue, records) = bounded(limits::SINK_QUEUE_BATCHES_MAX);
        let (doorbell, rings) = async_channel::bounded(1);
        let shared = Arc::new(Shared {
            settings: Mutex::new(HashMap::new()),
            flush: AtomicBool::new(false),
            shutdown: Mutex::new(None),
        });
        let driver_shared = Arc::clone(&shared);
        let driver_endpoints = endpoints.clone();
        let driver_doorbell = doorbell.clone();
        let worker = std::thread::Builder::new().name("stream-sink".into()).spawn(move || {
            let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                .name("stream-sink")
                .io_memory(limits::STREAM_SINK_IO_MEMORY_BYTES)
                .make();
            match executor {
                Ok(executor) => executor.run(async move {
                    Driver::new(driver_endpoints, &access, driver_shared, records, rings, driver_doorbell).run().await;
                }),
                Err(error) => tracing::error!(%error, "cannot start the stream sink's executor; nothing is shipped"),
            }
        })?;
        Ok(Arc::new(StreamSink {
            endpoints,
            queue,
            doorbell,
            shared,
            closed: AtomicBool::new(false),
            worker: Mutex::new(Some(worker)),
        }))
    }

    /// [`Sink::open`] with the retry settings too (the file sink needs none).
    pub fn open_with(&self, destination: &Destination, settings: SendSettings) -> Result<(), SinkError> {
        if destination.kind == DestinationKind::DeliveryStream && self.endpoints.firehose.is_none() {
            return Err(SinkError {
                destination: destination.name.clone(),
                message: "deliveryStream flows need firehose.endpoint (http://host:port)".into(),
            });
        }
        self.shared.settings.lock().expect("not poisoned").entry(destination.clone()).or_insert(settings);
        Ok(())
    }
}

impl Sink for StreamSink {
    fn open(&self, destination: &Destination, limits: BufferLimits) -> Result<(), SinkError> {
        self.open_with(
            destination,
            SendSettings {
                buffer: limits,
                retry_initial_backoff: Duration::from_millis(limits::RETRY_INITIAL_BACKOFF_MS_DEFAULT),
                retry_max_backoff: Duration::from_millis(limits::RETRY_MAX_BACKOFF_MS_DEFAULT),
                aggregated_record_bytes: 0,
            },
        )
    }

    fn open_flow(&self, flow: &crate::config::FlowConfig) -> Result<(), SinkError> {
        self.open_with(
            &flow.destination,
            SendSettings {
                buffer: flow.buffer,
                retry_initial_backoff: flow.retry_initial_backoff,
                retry_max_backoff: flow.retry_max_backoff,
                aggregated_record_bytes: match flow.destination.kind {
                    DestinationKind::DeliveryStream => flow.aggregated_record_size_bytes,
                    DestinationKind::Stream => 0,
                },
            },
        )
    }

    fn submit(&self, records: Vec<SinkRecord>, wait: Duration) -> Result<(), SubmitError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(SubmitError::Closed(records));
        }
        match self.queue.send_timeout(records, wait) {
            Ok(()) => {
                // A full doorbell already rings.
                let _ = self.doorbell.try_send(());
                Ok(())
            }
            Err(SendTimeoutError::Timeout(records)) => Err(SubmitError::Full(records)),
            Err(SendTimeoutError::Disconnected(records)) => Err(SubmitError::Closed(records)),
        }
    }

    fn flush(&self) {
        self.shared.flush.store(true, Ordering::Release);
        let _ = self.doorbell.try_send(());
    }

    fn shutdown(&self, timeout: Duration) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.shared.shutdown.lock().expect("not poisoned") = Some(Instant::now() + timeout);
        let _ = self.doorbell.try_send(());
        if let Some(worker) = self.worker.lock().expect("not poisoned").take() {
            let _ = worker.join();
        }
    }

    fn describe(&self) -> String {
        format!("stream sink: {}", self.endpoints)
    }
}

impl Drop for StreamSink {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

// ----- the driver (one glommio thread) -----

/// A record on its way, with what retries need.
struct Pending {
    data: Bytes,
    /// Empty for delivery streams.
    partition_key: String,
    ack: Ack,
    throttles: u32,
}

/// One PutRecords (or PutRecordBatch) call's records.
struct Call {
    destination: Destination,
    records: Vec<Pending>,
}

/// A destination's collecting buffer and the calls waiting for its sender.
struct Lane {
    settings: SendSettings,
    buffer: Vec<Pending>,
    bytes: u64,
    oldest: Option<Instant>,
    calls: async_channel::Sender<Call>,
}

/// A client of either protocol.
#[derive(Clone)]
enum Transport {
    Native(Client),
    /// To each shard's leader (`kinesis.route: direct`).
    Routed(Rc<RoutedClient>),
    Http(Rc<HttpClient>),
}

impl Transport {
    async fn put_records(&self, input: &PutRecordsInput) -> Result<PutRecordsOutput, ClientError> {
        match self {
            Transport::Native(client) => client.call(input).await,
            Transport::Routed(client) => client.put_records(input).await,
            Transport::Http(client) => client.call(input).await,
        }
    }

    async fn put_record_batch(&self, input: &PutRecordBatchInput) -> Result<PutRecordBatchOutput, ClientError> {
        match self {
            Transport::Http(client) => client.put_record_batch(input).await,
            Transport::Native(_) | Transport::Routed(_) => {
                unreachable!("firehose endpoints are HTTP (StreamEndpoint::parse_firehose)")
            }
        }
    }

    fn broken(&self) -> bool {
        match self {
            Transport::Native(client) => client.connection_error().is_some(),
            // These open connections (and learn routes again) as requests need them.
            Transport::Routed(_) | Transport::Http(_) => false,
        }
    }
}

/// The connection the destinations' senders share, opened lazily and again when broken.
struct Connector {
    endpoint: StreamEndpoint,
    /// Credentials, the endpoint's region, TLS.
    options: ConnectOptions,
    current: RefCell<Option<Transport>>,
}

impl Connector {
    fn new(endpoint: StreamEndpoint, access: &Access) -> Connector {
        Connector { options: access.options(&endpoint), endpoint, current: RefCell::new(None) }
    }

    async fn get(&self) -> Result<Transport, ClientError> {
        if let Some(transport) = self.current.borrow().as_ref().filter(|t| !t.broken()) {
            return Ok(transport.clone());
        }
        let transport = match self.endpoint.protocol {
            Protocol::Native if self.endpoint.routed => {
                let seeds = vec![self.endpoint.address.clone()];
                let config = RoutedConfig { options: self.options.clone(), ..RoutedConfig::new(seeds) };
                Transport::Routed(Rc::new(RoutedClient::connect(config).await?))
            }
            Protocol::Native => Transport::Native(Client::connect_with(&self.endpoint.address, &self.options).await?),
            Protocol::Http | Protocol::Https => {
                Transport::Http(HttpClient::connect_with(&self.endpoint.address, Encoding::Json, &self.options).await?)
            }
        };
        *self.current.borrow_mut() = Some(transport.clone());
        Ok(transport)
    }

    fn drop_connection(&self) {
        self.current.borrow_mut().take();
    }
}

/// Logs a recurring problem at most once per [`limits::STREAM_SINK_LOG_EVERY`] per kind.
#[derive(Default)]
struct Quiet {
    last: RefCell<HashMap<String, Instant>>,
}

impl Quiet {
    fn due(&self, key: &str) -> bool {
        let mut last = self.last.borrow_mut();
        let now = Instant::now();
        match last.get(key) {
            Some(t) if now.duration_since(*t) < limits::STREAM_SINK_LOG_EVERY => false,
            _ => {
                last.insert(key.to_owned(), now);
                true
            }
        }
    }
}

/// What the senders share with the main loop.
struct Context {
    connector: Connector,
    /// Delivery streams' endpoint, when a flow names one.
    firehose: Option<Connector>,
    /// Sealed calls queued or in flight, over all destinations.
    held: Cell<usize>,
    shutdown: RefCell<Option<Instant>>,
    doorbell: async_channel::Sender<()>,
    quiet: Quiet,
}

impl Context {
    fn deadline_passed(&self) -> bool {
        self.shutdown.borrow().is_some_and(|deadline| Instant::now() >= deadline)
    }
}

struct Driver {
    shared: Arc<Shared>,
    records: Receiver<Vec<SinkRecord>>,
    rings: async_channel::Receiver<()>,
    context: Rc<Context>,
    lanes: HashMap<Destination, Lane>,
    senders: Vec<glommio::task::JoinHandle<()>>,
}

impl Driver {
    fn new(
        endpoints: SinkEndpoints,
        access: &Access,
        shared: Arc<Shared>,
        records: Receiver<Vec<SinkRecord>>,
        rings: async_channel::Receiver<()>,
        doorbell: async_channel::Sender<()>,
    ) -> Driver {
        let context = Rc::new(Context {
            connector: Connector::new(endpoints.kinesis, access),
            firehose: endpoints.firehose.map(|endpoint| Connector::new(endpoint, access)),
            held: Cell::new(0),
            shutdown: RefCell::new(None),
            doorbell,
            quiet: Quiet::default(),
        });
        Driver { shared, records, rings, context, lanes: HashMap::new(), senders: Vec::new() }
    }

    async fn run(mut self) {
        loop {
            let shutdown = *self.shared.shutdown.lock().expect("not poisoned");
            if let Some(deadline) = shutdown {
                self.context.shutdown.replace(Some(deadline));
                return self.finish(deadline).await;
            }
            self.take_records();
            if self.shared.flush.swap(false, Ordering::AcqRel) {
                self.seal_all();
            }
            self.seal_aged();
            let wait = self
                .lanes
                .values()
                .filter_map(|lane| {
                    lane.oldest.map(|t| (t + lane.settings.buffer.age).saturating_duration_since(Instant::now()))
                })
                .min()
                .unwrap_or(limits::STREAM_SINK_IDLE_WAKE);
            let rings = self.rings.clone();
            futures_lite::future::or(
                async move {
                    let _ = rings.recv().await;
                },
                glommio::timer::sleep(wait),
            )
            .await;
        }
    }

    /// Takes submitted records while there is room for more sealed calls.
    fn take_records(&mut self) {
        while self.context.held.get() < limits::STREAM_SINK_CALLS_HELD_MAX {
            match self.records.try_recv() {
                Ok(records) => {
                    for record in records {
                        self.add(record);
                    }
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return,
            }
        }
    }

    fn lane(&mut self, destination: &Destination) -> Option<&mut Lane> {
        if !self.lanes.contains_key(destination) {
            let settings = *self.shared.settings.lock().expect("not poisoned").get(destination)?;
            let (calls, queue) = async_channel::unbounded();
            let context = Rc::clone(&self.context);
            let sender = glommio::spawn_local(send_calls(context, queue, settings)).detach();
            self.senders.push(sender);
            self.lanes
                .insert(destination.clone(), Lane { settings, buffer: Vec::new(), bytes: 0, oldest: None, calls });
        }
        self.lanes.get_mut(destination)
    }

    fn add(&mut self, record: SinkRecord) {
        let SinkRecord { destination, partition_key, data, ack, .. } = record;
        let partition_key = match (&destination.kind, partition_key) {
            (DestinationKind::Stream, Some(key)) => key,
            (DestinationKind::Stream, None) => {
                ack.failed("a stream record without a partition key");
                return;
            }
            (DestinationKind::DeliveryStream, _) => String::new(),
        };
        // Kinesis counts the partition key into the call's size.
        let size = (data.len() + partition_key.len()) as u64;
        let Some(lane) = self.lane(&destination) else {
            ack.failed("destination was not opened");
            return;
        };
        if !lane.buffer.is_empty() && lane.bytes + size > lane.settings.buffer.bytes {
            self.seal(&destination);
        }
        let lane = self.lanes.get_mut(&destination).expect("created above");
        lane.buffer.push(Pending { data: Bytes::from(data), partition_key, ack, throttles: 0 });
        lane.bytes += size;
        lane.oldest.get_or_insert_with(Instant::now);
        if lane.buffer.len() as u64 >= lane.settings.buffer.records || lane.bytes >= lane.settings.buffer.bytes {
            self.seal(&destination);
        }
    }

    fn seal(&mut self, destination: &Destination) {
        let Some(lane) = self.lanes.get_mut(destination) else {
            return;
        };
        if lane.buffer.is_empty() {
            return;
        }
        let records = std::mem::take(&mut lane.buffer);
        lane.bytes = 0;
        lane.oldest = None;
        self.context.held.set(self.context.held.get() + 1);
        // The sender lives as long as the lane; an unbounded channel, bounded by `held`.
        let _ = lane.calls.try_send(Call { destination: destination.clone(), records });
    }

    fn seal_all(&mut self) {
        let all: Vec<Destination> = self.lanes.keys().cloned().collect();
        for destination in all {
            self.seal(&destination);
        }
    }

    fn seal_aged(&mut self) {
        let now = Instant::now();
        let aged: Vec<Destination> = self
            .lanes
            .iter()
            .filter(|(_, lane)| lane.oldest.is_some_and(|t| now >= t + lane.settings.buffer.age))
            .map(|(d, _)| d.clone())
            .collect();
        for destination in aged {
            self.seal(&destination);
        }
    }

    /// Shutdown: send what was submitted, wait until `deadline` for it, then stop (records
    /// still held are dropped: their Acks report Abandoned and are read again after a restart).
    async fn finish(mut self, deadline: Instant) {
        if Instant::now() < deadline {
            loop {
                // Everything submitted, even past the held bound: the flows have stopped.
                while let Ok(records) = self.records.try_recv() {
                    for record in records {
                        self.add(record);
                    }
                }
                self.seal_all();
                if self.context.held.get() == 0 || Instant::now() >= deadline {
                    break;
                }
                let rings = self.rings.clone();
                futures_lite::future::or(
                    async move {
                        let _ = rings.recv().await;
                    },
                    glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())),
                )
                .await;
            }
        }
        for lane in self.lanes.values() {
            lane.calls.close();
        }
        // Senders see the deadline passed (or their queue closed) and drop what they hold.
        for sender in self.senders.drain(..) {
            futures_lite::future::or(
                async move {
                    sender.await;
                },
                glommio::timer::sleep(limits::STREAM_SINK_STOP_GRACE),
            )
            .await;
        }
    }
}

/// A destination's sender: one call at a time, in order, each retried until its records are
/// delivered (or failed for good, or the shutdown deadline passes).
async fn send_calls(context: Rc<Context>, queue: async_channel::Receiver<Call>, settings: SendSettings) {
    while let Ok(call) = queue.recv().await {
        send_call(&context, call, settings).await;
        context.held.set(context.held.get() - 1);
        let _ = context.doorbell.try_send(());
    }
}

/// How one record of a call came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Delivered,
    Throttled,
    /// Failed for a reason that can pass (an internal failure): retried like a throttle.
    Failed,
}

/// Consecutive records grouped into Firehose records of at most `aggregate_bytes` each (the
/// AWS agent's `aggregatedRecordSizeBytes`; a record larger than that goes alone): the number
/// of records in each group, in order. 0 means one record per group.
pub fn firehose_groups(sizes: impl IntoIterator<Item = usize>, aggregate_bytes: usize) -> Vec<usize> {
    let mut groups: Vec<usize> = Vec::new();
    let mut open_bytes = 0;
    for size in sizes {
        match groups.last_mut() {
            Some(count) if aggregate_bytes > 0 && open_bytes + size <= aggregate_bytes => {
                *count += 1;
                open_bytes += size;
            }
            _ => {
                groups.push(1);
                open_bytes = size;
            }
        }
    }
    groups
}

/// [`put_once`], given up after [`limits::STREAM_SINK_CALL_TIMEOUT`] as a broken connection
/// (dropped, so the retry opens a new one).
async fn put(
    context: &Context,
    destination: &Destination,
    pending: &[Pending],
    aggregate_bytes: u64,
) -> Result<Vec<Entry>, ClientError> {
    let timeout = async {
        glommio::timer::sleep(limits::STREAM_SINK_CALL_TIMEOUT).await;
        Err(ClientError::Connection(sluice_client::ConnectionError::Io(Arc::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {} s", limits::STREAM_SINK_CALL_TIMEOUT.as_secs()),
        )))))
    };
    let result = futures_lite::future::or(put_once(context, destination, pending, aggregate_bytes), timeout).await;
    if result.as_ref().is_err_and(|e| matches!(e, ClientError::Connection(_))) {
        match destination.kind {
            DestinationKind::Stream => context.connector.drop_connection(),
            DestinationKind::DeliveryStream => {
                if let Some(firehose) = &context.firehose {
                    firehose.drop_connection();
                }
            }
        }
    }
    result
}

/// Sends one call of `pending` to `destination` (PutRecords or PutRecordBatch) and answers
/// per record, in order.
async fn put_once(
    context: &Context,
    destination: &Destination,
    pending: &[Pending],
    aggregate_bytes: u64,
) -> Result<Vec<Entry>, ClientError> {
    let connector = match destination.kind {
        DestinationKind::Stream => &context.connector,
        DestinationKind::DeliveryStream => context.firehose.as_ref().expect("checked by open_with"),
    };
    let transport = connector.get().await?;
    let result = match destination.kind {
        DestinationKind::Stream => {
            let input = PutRecordsInput {
                records: pending
                    .iter()
                    .map(|p| PutRecordsRequestEntry {
                        data: p.data.clone(),
                        explicit_hash_key: None,
                        partition_key: Some(p.partition_key.clone()),
                    })
                    .collect(),
                stream_name: Some(destination.name.clone()),
                stream_arn: None,
            };
            transport.put_records(&input).await.and_then(|output| {
                if output.records.len() != pending.len() {
                    return Err(ClientError::UnexpectedResponse {
                        operation: "PutRecords",
                        body: format!("{} entries for {} records", output.records.len(), pending.len()),
                    });
                }
                Ok(output
                    .records
                    .iter()
                    .map(|entry| match entry.error_code {
                        None => Entry::Delivered,
                        Some(ErrorKind::ProvisionedThroughputExceeded) => Entry::Throttled,
                        Some(_) => Entry::Failed,
                    })
                    .collect())
            })
        }
        DestinationKind::DeliveryStream => {
            let groups = firehose_groups(pending.iter().map(|p| p.data.len()), aggregate_bytes as usize);
            let mut records = Vec::with_capacity(groups.len());
            let mut next = 0;
            for &count in &groups {
                let members = &pending[next..next + count];
                next += count;
                let data = match members {
                    [one] => one.data.clone(),
                    many => Bytes::from(many.iter().flat_map(|p| p.data.iter().copied()).collect::<Vec<u8>>()),
                };
                records.push(FirehoseRecord { data });
            }
            let input = PutRecordBatchInput { delivery_stream_name: destination.name.clone(), records };
            // The client checks that every Firehose record has its entry; a group's entry
            // answers for each of its records.
            transport.put_record_batch(&input).await.map(|output| {
                output
                    .request_responses
                    .iter()
                    .zip(&groups)
                    .flat_map(|(entry, &count)| {
                        let entry = match entry.error_code.as_deref() {
                            None => Entry::Delivered,
                            Some(SERVICE_UNAVAILABLE) => Entry::Throttled,
                            Some(_) => Entry::Failed,
                        };
                        std::iter::repeat_n(entry, count)
                    })
                    .collect()
            })
        }
    };
    result
}

async fn send_call(context: &Context, call: Call, settings: SendSettings) {
    let destination = call.destination;
    let (operation, what) = match destination.kind {
        DestinationKind::Stream => ("PutRecords", "stream"),
        DestinationKind::DeliveryStream => ("PutRecordBatch", "delivery stream"),
    };
    let name = destination.name.as_str();
    let mut pending = call.records;
    let mut attempt: u32 = 0;
    loop {
        if context.deadline_passed() {
            // Dropped: Abandoned, sent again after a restart.
            return;
        }
        match put(context, &destination, &pending, settings.aggregated_record_bytes).await {
            Ok(entries) => {
                let before = pending.len();
                let mut retry = Vec::new();
                for (mut record, entry) in pending.into_iter().zip(entries) {
                    match entry {
                        Entry::Delivered => record.ack.delivered(record.throttles),
                        Entry::Throttled => {
                            record.throttles = record.throttles.saturating_add(1);
                            retry.push(record);
                        }
                        Entry::Failed => retry.push(record),
                    }
                }
                if retry.is_empty() {
                    return;
                }
                if retry.len() < before {
                    attempt = 0;
                }
                pending = retry;
                tracing::debug!(destination = name, failed = pending.len(), "retrying failed entries");
            }
            Err(error) => {
                let code = error.code();
                match code {
                    Some(ErrorKind::InvalidArgument | ErrorKind::Validation | ErrorKind::Serialization) => {
                        let reason = format!("{operation} to {what} {name} refused: {error}");
                        tracing::error!(destination = name, records = pending.len(), %error, "the service refused the call; its records are skipped");
                        for record in pending {
                            record.ack.failed(reason.clone());
                        }
                        return;
                    }
                    Some(ErrorKind::ResourceNotFound) => {
                        if context.quiet.due(&format!("missing:{name}")) {
                            tracing::warn!(
                                destination = name,
                                "{what} does not exist (yet); holding its records and retrying"
                            );
                        }
                    }
                    Some(
                        kind @ (ErrorKind::MissingAuthenticationToken
                        | ErrorKind::IncompleteSignature
                        | ErrorKind::InvalidSignature
                        | ErrorKind::UnrecognizedClient
                        | ErrorKind::ExpiredToken
                        | ErrorKind::AccessDenied),
                    ) => {
                        // Credentials the service refuses do not fix themselves; the records
                        // stay held (the flows stop reading) until the agent is restarted
                        // with credentials it takes, and nothing is lost meanwhile.
                        if context.quiet.due(&format!("refused:{name}")) {
                            tracing::error!(
                                destination = name,
                                refusal = kind.exception_name(),
                                %error,
                                "{operation} to {what} {name} refused ({}): check the credentials \
                                 (awsAccessKeyId / awsSecretAccessKey or the environment) and the permissions; \
                                 holding the records and retrying",
                                kind.exception_name()
                            );
                        }
                    }
                    Some(
                        ErrorKind::ProvisionedThroughputExceeded | ErrorKind::Throttling | ErrorKind::LimitExceeded,
                    ) => {
                        for record in &mut pending {
                            record.throttles = record.throttles.saturating_add(1);
                        }
                    }
                    _ => {
                        if context.quiet.due(&format!("error:{name}")) {
                            tracing::warn!(destination = name, %error, "{operation} failed; retrying with backoff");
                        }
                    }
                }
            }
        }
        let delay = backoff(settings.retry_initial_backoff, settings.retry_max_backoff, attempt);
        attempt = attempt.saturating_add(1);
        // Sleep, but not past the shutdown deadline.
        let delay = match *context.shutdown.borrow() {
            Some(deadline) => delay.min(deadline.saturating_duration_since(Instant::now())),
            None => delay,
        };
        glommio::timer::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(protocol: Protocol, address: &str, region: &str) -> StreamEndpoint {
        StreamEndpoint { protocol, address: address.into(), region: region.into(), routed: false }
    }

    #[test]
    fn direct_routing_is_for_native_endpoints_only() {
        let parse =
            |text: &str, route: Option<&str>| StreamEndpoint::parse(Some(text), None).unwrap().with_route(route);
        assert!(parse("sluice://h:1", Some("direct")).unwrap().routed);
        assert!(parse("sluice://h:1", Some("DIRECT")).unwrap().routed);
        assert!(!parse("sluice://h:1", Some("any")).unwrap().routed);
        assert!(!parse("sluice://h:1", None).unwrap().routed);
        let error = parse("http://h:1", Some("direct")).unwrap_err().to_string();
        assert!(error.contains("kinesis.route") && error.contains("native protocol"), "{error}");
        let error = parse("sluice://h:1", Some("leaders")).unwrap_err().to_string();
        assert!(error.contains("must be DIRECT") && error.contains("leaders"), "{error}");
        assert_eq!(parse("sluice://h:1", Some("direct")).unwrap().to_string(), "sluice://h:1 (routed to the leaders)");
    }

    #[test]
    fn endpoints_are_read_and_refused_with_reasons() {
        let parse = |text: &str| StreamEndpoint::parse(Some(text), Some("eu-north-1"));
        assert_eq!(parse("sluice://h:1").unwrap(), endpoint(Protocol::Native, "h:1", "eu-north-1"));
        assert_eq!(parse("sluice://h").unwrap(), endpoint(Protocol::Native, "h:4568", "eu-north-1"));
        assert_eq!(parse("10.0.0.1:4568").unwrap(), endpoint(Protocol::Native, "10.0.0.1:4568", "eu-north-1"));
        assert_eq!(parse("http://localhost:4567/").unwrap(), endpoint(Protocol::Http, "localhost:4567", "eu-north-1"));
        assert_eq!(parse("https://127.0.0.1:4443").unwrap(), endpoint(Protocol::Https, "127.0.0.1:4443", "eu-north-1"));
        // The AWS agent's forms: a bare host name is HTTPS; the region comes from the host
        // unless kinesis.region says otherwise.
        let aws = StreamEndpoint::parse(Some("kinesis.us-west-2.amazonaws.com"), None).unwrap();
        assert_eq!(aws, endpoint(Protocol::Https, "kinesis.us-west-2.amazonaws.com:443", "us-west-2"));
        assert!(aws.is_aws());
        let aws = StreamEndpoint::parse(Some("https://kinesis.ap-south-1.amazonaws.com/"), None).unwrap();
        assert_eq!(aws, endpoint(Protocol::Https, "kinesis.ap-south-1.amazonaws.com:443", "ap-south-1"));
        assert_eq!(parse("https://kinesis.us-west-2.amazonaws.com").unwrap().region, "eu-north-1");
        for bad in ["ftp://h:1", "http://h:1/path", "sluice://", "https://", "https://your/kinesis/endpoint"] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
        // Unset: AWS's regional endpoint.
        let default = StreamEndpoint::parse(None, Some("eu-west-3")).unwrap();
        assert_eq!(default, endpoint(Protocol::Https, "kinesis.eu-west-3.amazonaws.com:443", "eu-west-3"));
        assert!(default.is_aws());
    }

    #[test]
    fn firehose_endpoints_are_http_borrowed_from_sluiced_or_aws() {
        let sluiced_http = endpoint(Protocol::Http, "h:3", "us-east-1");
        let native = endpoint(Protocol::Native, "h:1", "us-east-1");
        let aws_kinesis = StreamEndpoint::parse(None, Some("eu-west-1")).unwrap();
        let parse = |text: Option<&str>, kinesis: &StreamEndpoint| StreamEndpoint::parse_firehose(text, None, kinesis);
        assert_eq!(parse(Some("http://h:2"), &native).unwrap().address, "h:2");
        assert_eq!(parse(Some("https://h:2"), &native).unwrap().protocol, Protocol::Https);
        assert_eq!(parse(None, &sluiced_http).unwrap(), sluiced_http);
        let none = parse(None, &native).unwrap_err();
        assert_eq!(none.key, "firehose.endpoint");
        assert!(none.reason.contains("HTTP only"), "{none}");
        for bad in ["sluice://h:1", "h:1"] {
            let error = parse(Some(bad), &native).unwrap_err();
            assert!(error.reason.contains("HTTP only"), "{bad}: {error}");
        }
        let aws = StreamEndpoint::parse_firehose(None, Some("sa-east-1"), &aws_kinesis).unwrap();
        assert_eq!(aws, endpoint(Protocol::Https, "firehose.sa-east-1.amazonaws.com:443", "sa-east-1"));
        let named = parse(Some("firehose.eu-central-1.amazonaws.com"), &aws_kinesis).unwrap();
        assert_eq!(named, endpoint(Protocol::Https, "firehose.eu-central-1.amazonaws.com:443", "eu-central-1"));
    }

    #[test]
    fn firehose_groups_fill_up_to_the_aggregate_size_and_keep_big_records_alone() {
        assert_eq!(firehose_groups([10, 10, 10], 0), [1, 1, 1]);
        assert_eq!(firehose_groups([10, 10, 10], 20), [2, 1]);
        assert_eq!(firehose_groups([10, 10, 10], 30), [3]);
        assert_eq!(firehose_groups([5, 50, 5, 5], 20), [1, 1, 2]);
        assert_eq!(firehose_groups([], 20), Vec::<usize>::new());
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        for attempt in 0..40 {
            let full = (100u64 << attempt.min(20)).min(1000);
            let delay = backoff(initial, max, attempt).as_millis() as u64;
            assert!((full / 2..=full).contains(&delay), "attempt {attempt}: {delay} ms");
        }
    }
}
