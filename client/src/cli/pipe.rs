//! `sluice produce` and `sluice consume`: records from stdin through the producer (aggregated
//! as the KPL does), and every shard of a stream to stdout as JSON lines.
//!
//! Both take `--endpoint` as the other commands do; `--http` makes it an HTTP endpoint (AWS
//! JSON, or CBOR with `--cbor`) instead of the native protocol, so either command can be
//! pointed at sluiced's `--http-listen` or at any Kinesis-compatible HTTP endpoint. Both
//! authenticate as the other commands do (AWS credentials from the environment: the native
//! handshake, or SigV4 over HTTP) and use TLS with `--ca-bundle`.

use std::cell::{Cell, RefCell};
use std::io::{BufRead, BufWriter, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use serde::Serialize;
use sluice_client::consumer::{read_stream, Item, ReadConfig, ReadMode, Start};
use sluice_client::producer::{Producer, PutError, RecordFuture};
use sluice_client::transport::{Endpoint, Transport};
use sluice_client::worker::{run_worker, CreateSettings, WorkerConfig, WorkerEvent};
use sluice_client::{ConnectOptions, ConsumerArn, Encoding, InitialPosition, InitialPositionType, Timestamp};
use sluice_kpl::consumer::checkpoint::CheckpointError;
use sluice_kpl::consumer::lease::BalancerConfig;
use sluice_kpl::consumer::processor::{Checkpointer, InitializationInput, RecordProcessor};
use sluice_kpl::consumer::records::ConsumerRecord;
use sluice_kpl::producer::{ProducerConfig, UserRecord};

/// Results waiting to be printed, in input order, behind the record being awaited. Bounds the
/// memory of `produce` independently of how far the producer runs ahead of the printer.
const RESULTS_QUEUED_MAX: usize = 100_000;

/// Items between the shard readers and the printer of `consume`.
const ITEMS_QUEUED_MAX: usize = 10_000;

/// Largest record `--input-format length-prefixed` accepts: a Kinesis record's data limit.
const RECORD_DATA_BYTES_MAX: usize = 1024 * 1024;

#[derive(Debug, Clone, Args)]
pub struct TransportArgs {
    /// `--endpoint` speaks HTTP (AWS JSON 1.1) instead of the native protocol (not with
    /// `--route`, which is native).
    #[arg(long, conflicts_with = "route")]
    pub http: bool,
    /// With --http: AWS CBOR 1.1 instead of JSON.
    #[arg(long, requires = "http")]
    pub cbor: bool,
    #[command(flatten)]
    pub route: RouteArgs,
}

/// Where writes go on a cluster (`produce`, `consume`'s checkpoints, `put-record`,
/// `put-records`).
#[derive(Debug, Clone, Args)]
pub struct RouteArgs {
    /// On a cluster's native protocol: `direct` sends each record to its shard's leader,
    /// learned from `--endpoint` (DescribeStreamRoutes), saving the hop through the node that
    /// would forward it; `any` sends the call to `--endpoint`.
    #[arg(long, value_enum, default_value = "any")]
    pub route: Route,
}

/// Where the writes of `--route` go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Route {
    /// Everything to `--endpoint`.
    Any,
    /// Writes to their shards' leaders.
    Direct,
}

impl TransportArgs {
    pub fn endpoint(&self, addr: &str) -> Endpoint {
        if self.http {
            let encoding = if self.cbor { Encoding::Cbor } else { Encoding::Json };
            Endpoint::Http { addr: addr.to_owned(), encoding }
        } else if self.route.route == Route::Direct {
            Endpoint::Routed(vec![addr.to_owned()])
        } else {
            Endpoint::Native(addr.to_owned())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// One record per line (the newline is not part of it).
    Lines,
    /// Each record is a 4-byte big-endian length, then that many bytes.
    LengthPrefixed,
}

/// Write records read from stdin through the producer: aggregated (KPL format), collected
/// into PutRecords calls, rate limited and retried. Settings carry the KPL's names.
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    #[arg(long)]
    pub stream_name: String,
    #[arg(long, value_enum, default_value = "lines")]
    pub input_format: InputFormat,
    /// The partition key of every record; without it each record gets its own (its line
    /// number), which spreads records evenly over the shards.
    #[arg(long)]
    pub partition_key: Option<String>,
    /// Print one JSON line per record, in input order, once it is acknowledged:
    /// `{"ShardId", "SequenceNumber", "SubSequenceNumber", "Attempts"}`.
    #[arg(long)]
    pub print_results: bool,
    /// Print the producer's metrics as a JSON line on stderr at the end.
    #[arg(long)]
    pub metrics: bool,
    /// KPL AggregationEnabled.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub aggregation_enabled: bool,
    /// KPL AggregationMaxCount.
    #[arg(long)]
    pub aggregation_max_count: Option<usize>,
    /// KPL AggregationMaxSize (bytes).
    #[arg(long)]
    pub aggregation_max_size: Option<usize>,
    /// KPL CollectionMaxCount.
    #[arg(long)]
    pub collection_max_count: Option<usize>,
    /// KPL CollectionMaxSize (bytes).
    #[arg(long)]
    pub collection_max_size: Option<usize>,
    /// KPL RecordMaxBufferedTime (ms).
    #[arg(long)]
    pub record_max_buffered_time: Option<u64>,
    /// KPL RecordTtl (ms).
    #[arg(long)]
    pub record_ttl: Option<u64>,
    /// KPL RateLimit (% of a shard's quota).
    #[arg(long)]
    pub rate_limit: Option<u64>,
    /// KPL FailIfThrottled.
    #[arg(long)]
    pub fail_if_throttled: bool,
    /// KPL MaxConnections: PutRecords calls in flight at once.
    #[arg(long)]
    pub max_connections: Option<usize>,
    #[command(flatten)]
    pub transport: TransportArgs,
}

impl ProduceArgs {
    fn config(&self) -> ProducerConfig {
        let mut config = ProducerConfig { aggregation_enabled: self.aggregation_enabled, ..Default::default() };
        let set = |target: &mut usize, value: Option<usize>| *target = value.unwrap_or(*target);
        set(&mut config.aggregation_max_count, self.aggregation_max_count);
        set(&mut config.aggregation_max_size_bytes, self.aggregation_max_size);
        set(&mut config.collection_max_count, self.collection_max_count);
        set(&mut config.collection_max_size_bytes, self.collection_max_size);
        set(&mut config.max_in_flight_calls, self.max_connections);
        config.record_max_buffered_time_ms =
            self.record_max_buffered_time.unwrap_or(config.record_max_buffered_time_ms);
        config.record_ttl_ms = self.record_ttl.unwrap_or(config.record_ttl_ms);
        config.rate_limit_percent = self.rate_limit.unwrap_or(config.rate_limit_percent);
        config.fail_if_throttled = self.fail_if_throttled;
        config
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutJson<'a> {
    shard_id: String,
    sequence_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_sequence_number: Option<u64>,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricsJson {
    user_records_put: u64,
    user_records_failed: u64,
    kinesis_records_put: u64,
    aggregated_records_put: u64,
    aggregation_ratio: f64,
    put_records_calls: u64,
    throttles: u64,
    retries: u64,
    buffered_time_ms_p50: u64,
    buffered_time_ms_p99: u64,
    elapsed_s: f64,
    user_records_per_s: f64,
}

fn read_record(input: &mut impl BufRead, format: InputFormat, line: &mut Vec<u8>) -> anyhow::Result<Option<Bytes>> {
    match format {
        InputFormat::Lines => {
            line.clear();
            if input.read_until(b'\n', line)? == 0 {
                return Ok(None);
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            Ok(Some(Bytes::copy_from_slice(line)))
        }
        InputFormat::LengthPrefixed => {
            let mut length = [0u8; 4];
            match input.read_exact(&mut length) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(error) => return Err(error.into()),
            }
            let length = u32::from_be_bytes(length) as usize;
            if length > RECORD_DATA_BYTES_MAX {
                bail!("a record of {length} bytes is above Kinesis' {RECORD_DATA_BYTES_MAX}-byte limit");
            }
            let mut data = vec![0u8; length];
            input.read_exact(&mut data).context("stdin ended inside a length-prefixed record")?;
            Ok(Some(Bytes::from(data)))
        }
    }
}

/// Runs `sluice produce`; the number of records that failed.
pub fn produce(endpoint: &str, options: &ConnectOptions, args: &ProduceArgs) -> anyhow::Result<u64> {
    let started = Instant::now();
    let producer =
        Producer::start_with(args.transport.endpoint(endpoint), options.clone(), &args.stream_name, args.config())?;
    let (results, pending) = std::sync::mpsc::sync_channel::<RecordFuture>(RESULTS_QUEUED_MAX);
    let print_results = args.print_results;
    // The printer waits for each record's result in input order.
    let printer = std::thread::spawn(move || -> anyhow::Result<u64> {
        let mut failed = 0u64;
        let mut out = BufWriter::new(std::io::stdout().lock());
        for future in pending {
            let result = future.wait();
            let line = match &result {
                Ok(put) => PutJson {
                    shard_id: put.shard_id.to_string(),
                    sequence_number: put.sequence_number.to_string(),
                    sub_sequence_number: put.sub_sequence_number,
                    attempts: put.attempts,
                    error_code: None,
                },
                Err(error) => {
                    failed += 1;
                    eprintln!("record not put: {error}");
                    let (code, attempts) = match error {
                        PutError::Failed(failure) => (failure.code.as_str(), failure.attempts),
                        PutError::Refused(_) => ("Refused", 0),
                        PutError::Stopped(_) => ("Stopped", 0),
                    };
                    PutJson {
                        shard_id: String::new(),
                        sequence_number: String::new(),
                        sub_sequence_number: None,
                        attempts,
                        error_code: Some(code),
                    }
                }
            };
            if print_results {
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
                // Acknowledged means printed: flush so a reader sees it now.
                out.flush()?;
            }
        }
        Ok(failed)
    });
    let mut input = std::io::stdin().lock();
    let mut line = Vec::new();
    let mut index: u64 = 0;
    while let Some(data) = read_record(&mut input, args.input_format, &mut line)? {
        let key = args.partition_key.clone().unwrap_or_else(|| index.to_string());
        index += 1;
        let future = producer.put_blocking(UserRecord::new(key, data));
        if results.send(future).is_err() {
            break;
        }
    }
    producer.flush_blocking();
    let metrics = producer.metrics_blocking();
    drop(results);
    producer.close();
    let failed = printer.join().map_err(|_| anyhow::anyhow!("the result printer panicked"))??;
    if let (true, Some(metrics)) = (args.metrics, metrics) {
        let elapsed_s = started.elapsed().as_secs_f64();
        let json = MetricsJson {
            user_records_put: metrics.user_records_put,
            user_records_failed: metrics.user_records_failed,
            kinesis_records_put: metrics.kinesis_records_put,
            aggregated_records_put: metrics.aggregated_records_put,
            aggregation_ratio: metrics.aggregation_ratio(),
            put_records_calls: metrics.put_records_calls,
            throttles: metrics.throttles,
            retries: metrics.retries,
            buffered_time_ms_p50: metrics.buffered_time_ms.value_at_quantile(0.5),
            buffered_time_ms_p99: metrics.buffered_time_ms.value_at_quantile(0.99),
            elapsed_s,
            user_records_per_s: metrics.user_records_put as f64 / elapsed_s,
        };
        eprintln!("{}", serde_json::to_string(&json)?);
    }
    Ok(failed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartFrom {
    TrimHorizon,
    Latest,
    AtTimestamp,
}

/// Read every shard of a stream (parents to their end before their children) and print its
/// user records as JSON lines, KPL aggregates split into their records:
/// `{"ShardId", "SequenceNumber", "SubSequenceNumber", "PartitionKey", "Data" (base64), ...}`.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    #[arg(long)]
    pub stream_name: String,
    /// Where to start in the shards that exist now (later shards: from their start).
    #[arg(long, value_enum, default_value = "TRIM_HORIZON")]
    pub shard_iterator_type: StartFrom,
    /// With AT_TIMESTAMP: epoch seconds.
    #[arg(long)]
    pub timestamp: Option<f64>,
    /// Read by SubscribeToShard as this registered consumer instead of polling.
    #[arg(long)]
    pub consumer_arn: Option<String>,
    /// Polling: wait after an empty GetRecords answer (ms).
    #[arg(long, default_value_t = 200)]
    pub idle_time_between_reads: u64,
    /// Stop after this many records.
    #[arg(long)]
    pub max_records: Option<u64>,
    /// Stop once every shard is read up to its tip (instead of following the stream).
    #[arg(long)]
    pub exit_at_tip: bool,
    /// Join this consumer group (an application of the stream; created if missing, starting
    /// at --shard-iterator-type): process only the shards whose leases this worker takes from
    /// sluiced, checkpoint through them, hand them over at SIGTERM/SIGINT. The lease calls go
    /// by the same protocol as the reads (native, or HTTP with --http).
    #[arg(long)]
    pub application: Option<String>,
    /// With --application: this worker's id (default: `worker-<pid>-<random>`).
    #[arg(long, requires = "application")]
    pub worker_id: Option<String>,
    /// With --application, when creating it: how long a lease lasts without renewal (ms).
    #[arg(long, default_value_t = 10_000, requires = "application")]
    pub lease_duration_ms: i64,
    /// With --application: checkpoint what was processed this often (ms); about this much is
    /// processed again after a takeover.
    #[arg(long, default_value_t = 1_000, requires = "application")]
    pub checkpoint_interval_ms: u64,
    /// With --application: how often the lease taker runs (ms; default half the lease
    /// duration).
    #[arg(long, requires = "application")]
    pub taker_interval_ms: Option<u64>,
    #[command(flatten)]
    pub transport: TransportArgs,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RecordJson<'a> {
    shard_id: &'a str,
    sequence_number: String,
    sub_sequence_number: u64,
    aggregated: bool,
    partition_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    explicit_hash_key: Option<String>,
    data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    approximate_arrival_timestamp: Option<f64>,
    /// With --application: the worker that processed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    worker_id: Option<&'a str>,
    /// With --application: when it was processed (epoch seconds, ms precision).
    #[serde(skip_serializing_if = "Option::is_none")]
    processed_at: Option<f64>,
}

impl<'a> RecordJson<'a> {
    fn new(shard_id: &'a str, record: &'a ConsumerRecord) -> RecordJson<'a> {
        RecordJson {
            shard_id,
            sequence_number: record.sequence_number.to_string(),
            sub_sequence_number: record.sub_sequence_number,
            aggregated: record.aggregated,
            partition_key: &record.partition_key,
            explicit_hash_key: record.explicit_hash_key.map(|key| key.to_string()),
            data: BASE64.encode(&record.data),
            approximate_arrival_timestamp: record.approximate_arrival_ms.map(|ms| ms as f64 / 1000.0),
            worker_id: None,
            processed_at: None,
        }
    }
}

/// Runs `sluice consume` inside a glommio executor.
pub async fn consume(endpoint: &str, options: &ConnectOptions, args: &ConsumeArgs) -> anyhow::Result<()> {
    let start = match args.shard_iterator_type {
        StartFrom::TrimHorizon => Start::TrimHorizon,
        StartFrom::Latest => Start::Latest,
        StartFrom::AtTimestamp => {
            let seconds = args.timestamp.context("AT_TIMESTAMP needs --timestamp")?;
            Start::AtTimestamp(Timestamp::from_epoch_ms((seconds * 1000.0).round() as i64))
        }
    };
    let mode = match &args.consumer_arn {
        Some(arn) => ReadMode::Subscribe { consumer_arn: ConsumerArn::from(arn.clone()) },
        None => ReadMode::Polling { idle_ms: args.idle_time_between_reads },
    };
    if let Some(application) = &args.application {
        return consume_as_group(endpoint, options, args, application, start, mode).await;
    }
    let config = ReadConfig { start, mode, stop_when_caught_up: args.exit_at_tip };
    let transport = Rc::new(Transport::with_options(args.transport.endpoint(endpoint), options.clone()));
    let (sink, items) = async_channel::bounded(ITEMS_QUEUED_MAX);
    let stream = args.stream_name.clone();
    let reader = glommio::spawn_local(async move { read_stream(transport, &stream, &config, sink).await });
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut printed: u64 = 0;
    while args.max_records.is_none_or(|max| printed < max) {
        let Ok(item) = items.recv().await else { break };
        match item {
            Item::Record { shard_id, record } => {
                let line = RecordJson::new(shard_id.as_str(), &record);
                // A closed pipe (`| head`) ends the read quietly.
                if serde_json::to_writer(&mut out, &line).is_err() || out.write_all(b"\n").is_err() {
                    return Ok(());
                }
                printed += 1;
            }
            Item::Issue { shard_id, issue } => eprintln!("{shard_id}: records not delivered: {issue:?}"),
            Item::ShardEnded { .. } => {}
        }
        if items.is_empty() && out.flush().is_err() {
            // A closed pipe (`| head`) ends the read quietly.
            return Ok(());
        }
    }
    let _ = out.flush();
    if args.max_records.is_some_and(|max| printed >= max) {
        // Done: the shard tasks end with the executor.
        return Ok(());
    }
    reader.await.context("reading the stream")?;
    Ok(())
}

/// What every shard's processor of `consume --application` shares: stdout, the record count,
/// and the flag that starts the worker's graceful shutdown.
struct GroupOutput {
    out: RefCell<BufWriter<std::io::Stdout>>,
    worker_id: String,
    printed: Cell<u64>,
    max_records: Option<u64>,
    stop: Arc<AtomicBool>,
}

fn epoch_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as f64 / 1000.0).unwrap_or_default()
}

/// The record processor of `consume --application`: prints each record as a JSON line and
/// flushes each batch before returning, so nothing is checkpointed (the worker checkpoints
/// what `process_records` returned from) before it is written out.
struct PrintProcessor {
    shard_id: String,
    output: Rc<GroupOutput>,
}

impl PrintProcessor {
    fn stop(&self, why: &str) {
        if !self.output.stop.swap(true, Ordering::Relaxed) {
            eprintln!("{why}: shutting down");
        }
    }
}

impl RecordProcessor for PrintProcessor {
    fn initialize(&mut self, _input: &InitializationInput) {}

    fn process_records(&mut self, records: &[ConsumerRecord], _checkpointer: &mut Checkpointer<'_>) {
        let processed_at = epoch_s();
        let mut out = self.output.out.borrow_mut();
        let mut failed = false;
        for record in records {
            let mut line = RecordJson::new(&self.shard_id, record);
            line.worker_id = Some(self.output.worker_id.as_str());
            line.processed_at = Some(processed_at);
            failed |= serde_json::to_writer(&mut *out, &line).is_err() || out.write_all(b"\n").is_err();
        }
        failed |= out.flush().is_err();
        drop(out);
        self.output.printed.set(self.output.printed.get() + records.len() as u64);
        if failed {
            // Unprinted records must not be checkpointed: stop without a final checkpoint.
            eprintln!("stdout is closed: exiting without checkpointing");
            std::process::exit(0);
        }
        if self.output.max_records.is_some_and(|max| self.output.printed.get() >= max) {
            self.stop("--max-records reached");
        }
    }

    fn lease_lost(&mut self) {}

    fn shard_ended(&mut self, checkpointer: &mut Checkpointer<'_>) {
        if let Err(error) = checkpointer.checkpoint() {
            eprintln!("{}: SHARD_END not checkpointed: {error}", self.shard_id);
        }
    }

    fn shutdown_requested(&mut self, checkpointer: &mut Checkpointer<'_>) {
        match checkpointer.checkpoint() {
            Ok(()) | Err(CheckpointError::NotAfterLastCheckpoint { .. }) => {}
            Err(error) => eprintln!("{}: final checkpoint not taken: {error}", self.shard_id),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventJson<'a> {
    event: &'static str,
    worker_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_counter: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stolen_from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    at: f64,
}

/// A worker event as one JSON line on stderr.
fn print_event(worker_id: &str, event: &WorkerEvent) {
    let mut line = EventJson {
        event: "",
        worker_id,
        shard_id: None,
        lease_counter: None,
        stolen_from: None,
        checkpoint: None,
        message: None,
        at: epoch_s(),
    };
    match event {
        WorkerEvent::LeaseTaken { shard_id, counter, stolen_from } => {
            (line.event, line.shard_id, line.lease_counter) = ("LeaseTaken", Some(shard_id.as_str()), Some(*counter));
            line.stolen_from = stolen_from.as_deref();
        }
        WorkerEvent::LeaseLost { shard_id, reason } => {
            (line.event, line.shard_id, line.message) = ("LeaseLost", Some(shard_id.as_str()), Some(reason.as_str()));
        }
        WorkerEvent::Checkpointed { shard_id, checkpoint, counter } => {
            (line.event, line.shard_id, line.checkpoint) =
                ("Checkpointed", Some(shard_id.as_str()), Some(checkpoint.as_str()));
            line.lease_counter = Some(*counter);
        }
        WorkerEvent::ShardEnded { shard_id } => (line.event, line.shard_id) = ("ShardEnded", Some(shard_id.as_str())),
        WorkerEvent::LeaseReleased { shard_id } => {
            (line.event, line.shard_id) = ("LeaseReleased", Some(shard_id.as_str()))
        }
        WorkerEvent::Warning { shard_id, message } => {
            (line.event, line.shard_id, line.message) = ("Warning", shard_id.as_deref(), Some(message.as_str()));
        }
    }
    if let Ok(text) = serde_json::to_string(&line) {
        eprintln!("{text}");
    }
}

/// `sluice consume --application NAME`: one worker of the consumer group.
async fn consume_as_group(
    endpoint: &str,
    options: &ConnectOptions,
    args: &ConsumeArgs,
    application: &str,
    start: Start,
    mode: ReadMode,
) -> anyhow::Result<()> {
    let worker_id = args.worker_id.clone().unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
        format!("worker-{}-{nanos:08x}", std::process::id())
    });
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("installing the signal handlers")?;
    }
    let initial_position = match start {
        Start::TrimHorizon => InitialPosition { r#type: InitialPositionType::TrimHorizon, timestamp: None },
        Start::Latest => InitialPosition { r#type: InitialPositionType::Latest, timestamp: None },
        Start::AtTimestamp(at) => InitialPosition { r#type: InitialPositionType::AtTimestamp, timestamp: Some(at) },
        Start::AtSequenceNumber(_) => bail!("an application starts at TRIM_HORIZON, LATEST or AT_TIMESTAMP"),
    };
    let config = WorkerConfig {
        stream: args.stream_name.clone(),
        application: application.to_owned(),
        worker_id: worker_id.clone(),
        create: Some(CreateSettings { initial_position, lease_duration_ms: args.lease_duration_ms }),
        mode,
        checkpoint_interval_ms: args.checkpoint_interval_ms,
        taker_interval_ms: args.taker_interval_ms,
        balancer: BalancerConfig::default(),
    };
    let leases = Rc::new(Transport::with_options(args.transport.endpoint(endpoint), options.clone()));
    let reads = Rc::new(Transport::with_options(args.transport.endpoint(endpoint), options.clone()));
    let output = Rc::new(GroupOutput {
        out: RefCell::new(BufWriter::new(std::io::stdout())),
        worker_id: worker_id.clone(),
        printed: Cell::new(0),
        max_records: args.max_records,
        stop: stop.clone(),
    });
    let new_processor = move |shard_id: sluice_kpl::types::ShardId| PrintProcessor {
        shard_id: shard_id.to_string(),
        output: output.clone(),
    };
    let on_event = move |event: WorkerEvent| print_event(&worker_id, &event);
    run_worker(leases, reads, config, new_processor, on_event, stop).await?;
    Ok(())
}
