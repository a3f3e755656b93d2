//! The `endure` scenario: continuous writes to a cluster that loses nodes and links under it,
//! as a real client rides through them, with a log of every acknowledged record that an
//! independent checker can verify afterwards (issue 13: leader kills and partitions under
//! load, `server/tests/cluster.rs` with `SLUICE_CLUSTER_LOADGEN`).
//!
//! `--connections` workers each keep one PutRecords call in flight (closed loop). Every call
//! goes to the node that answered last (shared by the workers). On a connection error, no
//! answer within `--call-timeout-ms` (a partitioned node answers nothing, not even a connect)
//! or an error answer (not the leader, no leader, InternalFailure), the worker moves to the
//! next node; a node that said nothing is left alone for `--silent-node-skip-ms` while another
//! is left. A connection that timed out or broke is dropped and made afresh next time: one that
//! lost packets waits out TCP's retransmission backoff, seconds after the link is back.
//!
//! Records that failed (the whole call, or entries of a PutRecords answer) are sent again until
//! acknowledged. A record is `(writer id, counter)`; each attempt carries its attempt number in
//! its bytes, so an attempt that was committed but whose answer was lost (at-least-once, as on
//! AWS) never has the same data as the attempt that is acknowledged: every acknowledged record's
//! data occurs exactly once in the stream.
//!
//! # Record data
//!
//! ```text
//! offset  size  field
//! 0       4     DATA_MAGIC "SLE1"
//! 4       8     writer id, little-endian
//! 12      8     counter, little-endian (0, 1, 2, ... per writer)
//! 20      4     attempt, little-endian (0 for the first send)
//! 24      ..    filler: successive outputs of splitmix64, each little-endian, seeded with
//!               writer id * 0x9E3779B97F4A7C15 ^ counter * 0xC2B2AE3D27D4EB4F ^ attempt
//!               (wrapping), cut to the record's size
//! ```
//!
//! # The acknowledgement log (`--ack-log`)
//!
//! Lines starting with `#` are comments. Every other line is one acknowledged record, written
//! (and flushed) when its PutRecords answer arrived, space-separated:
//!
//! ```text
//! ack_unix_ns endpoint_index shard_id sequence_number writer_id counter attempt record_bytes
//! ```
//!
//! `endpoint_index` counts from 0 in `--endpoints` (with `--route direct`: the endpoint whose
//! address answered the record, or the number of endpoints if a member not among them did);
//! [`record_data`] of the last four fields gives the record's data byte-exactly.
//!
//! With `--route direct` the workers share one `sluice_client::RoutedClient` (seeded with
//! `--endpoints`): each record goes to its shard's leader, a PutRecords split by leader, and a
//! stale route is retried once through any node by the client itself; whatever is still not
//! acknowledged is sent again in the worker's next call, as above.

use crate::cli::{EndureArgs, Route};
use anyhow::{bail, Context};
use bytes::Bytes;
use serde::Serialize;
use sluice_client::tls::TlsOptions;
use sluice_client::{
    Client, ClientError, ConnectOptions, CreateStreamInput, DescribeStreamSummaryInput, ErrorKind, PutRecordsInput,
    PutRecordsRequestEntry, PutRecordsResultEntry, RoutedClient, RoutedConfig, StreamStatus,
};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io::{BufWriter, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Marks a record as written by this scenario ("SLE1").
pub const DATA_MAGIC: [u8; 4] = *b"SLE1";

/// Bytes of a record's header; also the smallest record.
pub const HEADER_BYTES: usize = 24;

/// PutRecords takes at most 500 records per call (the Kinesis limit).
const BATCH_RECORDS_MAX: usize = 500;

/// A record is at most 1 MiB of data (the Kinesis limit).
const RECORD_BYTES_MAX: usize = 1 << 20;

/// Connections the workers open at most: each keeps one call in flight, so this bounds the
/// calls in flight and the records waiting to be sent again (`BATCH_RECORDS_MAX` each).
const CONNECTIONS_MAX: usize = 256;

/// How long to wait for the stream: created through some node and described ACTIVE by all.
const STREAM_WAIT: Duration = Duration::from_secs(60);

/// A pause after every node failed once in a row: an election takes about a second, and a
/// tight loop over refusing nodes would only burn the CPU the nodes need.
const ROUND_FAILED_PAUSE: Duration = Duration::from_millis(20);

/// How often a status line is printed (stderr).
const STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// The longest gaps without an acknowledgement kept for the summary.
const GAPS_KEPT: usize = 10;

const SPLITMIX_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The data of attempt `attempt` of record `counter` of writer `writer_id`, `record_bytes`
/// long (at least [`HEADER_BYTES`]): see the module's docs.
pub fn record_data(writer_id: u64, counter: u64, attempt: u32, record_bytes: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(record_bytes.max(HEADER_BYTES) + 8);
    data.extend_from_slice(&DATA_MAGIC);
    data.extend_from_slice(&writer_id.to_le_bytes());
    data.extend_from_slice(&counter.to_le_bytes());
    data.extend_from_slice(&attempt.to_le_bytes());
    let mut state =
        writer_id.wrapping_mul(SPLITMIX_GAMMA) ^ counter.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ u64::from(attempt);
    while data.len() < record_bytes {
        state = state.wrapping_add(SPLITMIX_GAMMA);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        data.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    data.truncate(record_bytes.max(HEADER_BYTES));
    data
}

/// One record waiting to be sent (again).
#[derive(Clone, Copy, Debug)]
struct Pending {
    counter: u64,
    attempt: u32,
}

/// Why a call acknowledged nothing.
#[derive(Default, Serialize, Clone, Debug)]
pub struct CallFailures {
    /// No connection could be made (refused, or not within the timeout).
    pub connect: u64,
    /// No answer within `--call-timeout-ms`.
    pub timeout: u64,
    /// The connection broke under the call.
    pub connection: u64,
    /// An error answer (not the leader, no leader, InternalFailure, ...).
    pub error_answer: u64,
}

#[derive(Serialize, Clone, Debug)]
pub struct Gap {
    /// Seconds from the run's start to the acknowledgement that opened the gap.
    pub after_s: f64,
    pub gap_s: f64,
    /// The endpoint that acknowledged before the gap, and the one after.
    pub from_endpoint: usize,
    pub to_endpoint: usize,
}

#[derive(Serialize)]
pub struct EndureResult {
    pub scenario: &'static str,
    pub endpoints: Vec<String>,
    /// `--route`: `any` or `direct`.
    pub route: &'static str,
    pub stream: String,
    pub shards: usize,
    pub record_bytes: usize,
    pub batch_records: usize,
    pub connections: usize,
    pub writer_id: u64,
    pub call_timeout_ms: u64,
    pub silent_node_skip_ms: u64,
    pub seconds: f64,
    pub records_acknowledged: u64,
    pub calls_acknowledged: u64,
    /// Records sent again after a failed attempt.
    pub records_retried: u64,
    /// Entries of PutRecords answers that failed (the call itself was answered).
    pub records_failed_in_answers: u64,
    pub call_failures: CallFailures,
    /// Records acknowledged by each endpoint.
    pub acknowledged_by_endpoint: Vec<u64>,
    /// Records still waiting to be sent again when the run stopped (never acknowledged).
    pub records_unacknowledged_at_stop: u64,
    /// The longest intervals without an acknowledgement, longest first.
    pub gaps: Vec<Gap>,
}

#[derive(Default)]
struct Stats {
    records_acknowledged: u64,
    calls_acknowledged: u64,
    records_retried: u64,
    records_failed_in_answers: u64,
    call_failures: CallFailures,
    acknowledged_by_endpoint: Vec<u64>,
    records_unacknowledged_at_stop: u64,
    /// The last acknowledgement: nanoseconds since the start, and by which endpoint.
    last_ack: Option<(u64, usize)>,
    /// Longest first, at most [`GAPS_KEPT`].
    gaps: Vec<Gap>,
}

impl Stats {
    fn acknowledged(&mut self, at_ns: u64, endpoint: usize, records: u64) {
        self.records_acknowledged += records;
        self.calls_acknowledged += 1;
        self.acknowledged_by_endpoint[endpoint] += records;
        if let Some((last_ns, last_endpoint)) = self.last_ack {
            let gap = Gap {
                after_s: last_ns as f64 / 1e9,
                gap_s: at_ns.saturating_sub(last_ns) as f64 / 1e9,
                from_endpoint: last_endpoint,
                to_endpoint: endpoint,
            };
            let at = self.gaps.partition_point(|kept| kept.gap_s >= gap.gap_s);
            if at < GAPS_KEPT {
                self.gaps.insert(at, gap);
                self.gaps.truncate(GAPS_KEPT);
            }
        }
        if self.last_ack.is_none_or(|(last_ns, _)| at_ns >= last_ns) {
            self.last_ack = Some((at_ns, endpoint));
        }
    }
}

/// What the workers share (one executor thread).
struct Run {
    args: EndureArgs,
    options: ConnectOptions,
    stream: String,
    start: Instant,
    stop: Arc<AtomicBool>,
    /// The node that answered last: where every worker sends its next call.
    target: Cell<usize>,
    /// Until when each node is left alone after it said nothing.
    silent_until: RefCell<Vec<Option<Instant>>>,
    /// The writer's next record counter (shared by the workers, so records are unique).
    counter: Cell<u64>,
    ack_log: RefCell<Option<BufWriter<File>>>,
    stats: RefCell<Stats>,
    /// `--route direct`: the client that sends each record to its shard's leader (the
    /// workers share it, and its connections).
    routed: Option<RoutedClient>,
}

impl Run {
    fn nodes(&self) -> usize {
        self.args.endpoints.len()
    }

    fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.args.call_timeout_ms)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn is_silent(&self, node: usize) -> bool {
        self.silent_until.borrow()[node].is_some_and(|until| Instant::now() < until)
    }

    fn mark_silent(&self, node: usize) {
        self.silent_until.borrow_mut()[node] =
            Some(Instant::now() + Duration::from_millis(self.args.silent_node_skip_ms));
    }

    /// The node to call: the one that answered last, or the next that has not gone silent.
    fn choose_target(&self) -> usize {
        let mut target = self.target.get();
        for _ in 0..self.nodes() {
            if !self.is_silent(target) {
                break;
            }
            target = (target + 1) % self.nodes();
        }
        target
    }

    /// `node` failed this worker: the next call (of every worker) goes to the node after it,
    /// unless another worker has already moved on. `node` is compared with the node
    /// [`Run::choose_target`] picks, not with `target`: while the node that answered last is
    /// silent, `target` still names it, and comparing with it never moved past the first node
    /// after it (the partition test's leader failover was 3 s: the silent node's 2 s, then its
    /// timeout, before the third node was tried).
    fn failed(&self, node: usize) {
        if self.choose_target() == node {
            self.target.set((node + 1) % self.nodes());
        }
    }

    /// The PutRecords of the records `sent`.
    fn request(&self, sent: &[Pending]) -> PutRecordsInput {
        let (writer_id, record_bytes) = (self.args.writer_id, self.args.record_bytes);
        let records = sent
            .iter()
            .map(|pending| PutRecordsRequestEntry {
                data: Bytes::from(record_data(writer_id, pending.counter, pending.attempt, record_bytes)),
                partition_key: Some(format!("{writer_id}-{}", pending.counter)),
                explicit_hash_key: None,
            })
            .collect();
        PutRecordsInput { stream_name: Some(self.stream.clone()), stream_arn: None, records }
    }

    fn next_counter(&self) -> u64 {
        let counter = self.counter.get();
        self.counter.set(counter + 1);
        counter
    }
}

/// `work`, or `None` once `limit` has passed.
async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(work.await) }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await
}

fn unix_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos())
}

/// Checks the arguments before anything connects.
pub fn validate(args: &EndureArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.endpoints.is_empty(), "--endpoints needs at least one address");
    anyhow::ensure!(args.endpoints.iter().all(|e| !e.trim().is_empty()), "--endpoints has an empty address");
    anyhow::ensure!(
        (HEADER_BYTES..=RECORD_BYTES_MAX).contains(&args.record_bytes),
        "--record-bytes must be within {HEADER_BYTES}..={RECORD_BYTES_MAX} (the record's header is {HEADER_BYTES} bytes)"
    );
    anyhow::ensure!(
        (1..=BATCH_RECORDS_MAX).contains(&args.batch_records),
        "--batch-records must be within 1..={BATCH_RECORDS_MAX}"
    );
    anyhow::ensure!(
        (1..=CONNECTIONS_MAX).contains(&args.connections),
        "--connections must be within 1..={CONNECTIONS_MAX}"
    );
    anyhow::ensure!((1..=1_000).contains(&args.shards), "--shards must be within 1..=1000");
    anyhow::ensure!(args.call_timeout_ms > 0, "--call-timeout-ms must be above 0");
    if let Some(duration_s) = args.duration_s {
        anyhow::ensure!(duration_s > 0.0 && duration_s.is_finite(), "--duration-s must be a positive number");
    }
    Ok(())
}

/// Runs the scenario; `stop` is raised by SIGTERM, SIGINT or (with `--until-stdin-closes`)
/// the end of stdin.
pub async fn run(args: EndureArgs, stop: Arc<AtomicBool>) -> anyhow::Result<EndureResult> {
    let mut options = ConnectOptions::from_environment().context("AWS credentials")?;
    if let Some(bundle) = &args.ca_bundle {
        options.tls = Some(TlsOptions::from_ca_bundle(bundle).context("--ca-bundle")?);
    }
    let stream = args.stream.clone().unwrap_or_else(|| crate::setup::stream_name("endure", "s"));
    let ack_log = match &args.ack_log {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
            let mut log = BufWriter::new(file);
            writeln!(log, "# sluice-loadgen endure: one acknowledged record a line (loadgen/src/endure.rs)")?;
            writeln!(log, "# endpoints {}", args.endpoints.join(","))?;
            writeln!(log, "# route {}", args.route.as_str())?;
            writeln!(log, "# stream {stream}")?;
            writeln!(
                log,
                "# ack_unix_ns endpoint_index shard_id sequence_number writer_id counter attempt record_bytes"
            )?;
            log.flush()?;
            Some(log)
        }
        None => None,
    };
    let nodes = args.endpoints.len();
    let routed = match args.route {
        Route::Any => None,
        Route::Direct => {
            let config = RoutedConfig {
                options: options.clone(),
                connect_timeout_ms: args.call_timeout_ms,
                call_timeout_ms: args.call_timeout_ms,
                ..RoutedConfig::new(args.endpoints.clone())
            };
            Some(RoutedClient::connect(config).await.context("connect to any of --endpoints")?)
        }
    };
    let run = Rc::new(Run {
        options,
        stream,
        start: Instant::now(),
        stop,
        target: Cell::new(0),
        silent_until: RefCell::new(vec![None; nodes]),
        counter: Cell::new(0),
        ack_log: RefCell::new(ack_log),
        // With `--route direct`, one more endpoint: records a member not among --endpoints
        // answered.
        stats: RefCell::new(Stats {
            acknowledged_by_endpoint: vec![0; nodes + usize::from(routed.is_some())],
            ..Stats::default()
        }),
        routed,
        args,
    });
    if !run.args.stream_exists {
        prepare_stream(&run).await?;
    }
    eprintln!(
        "endure: writing to {} through {} ({} connections, {} records of {} bytes a call)",
        run.stream,
        run.args.endpoints.join(","),
        run.args.connections,
        run.args.batch_records,
        run.args.record_bytes
    );
    let started = Instant::now();
    let workers: Vec<_> = (0..run.args.connections)
        .map(|_| match run.routed.clone() {
            Some(routed) => glommio::spawn_local(routed_worker(run.clone(), routed)).detach(),
            None => glommio::spawn_local(worker(run.clone())).detach(),
        })
        .collect();
    let deadline = run.args.duration_s.map(|s| started + Duration::from_secs_f64(s));
    let mut next_status = Instant::now() + STATUS_INTERVAL;
    while !run.stopping() && deadline.is_none_or(|deadline| Instant::now() < deadline) {
        glommio::timer::sleep(Duration::from_millis(50)).await;
        if Instant::now() >= next_status {
            next_status += STATUS_INTERVAL;
            let stats = run.stats.borrow();
            eprintln!(
                "endure: {:.0} s, {} records acknowledged, {} retried",
                started.elapsed().as_secs_f64(),
                stats.records_acknowledged,
                stats.records_retried
            );
        }
    }
    run.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await;
    }
    if let Some(log) = run.ack_log.borrow_mut().as_mut() {
        log.flush().context("flush the ack log")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats = std::mem::take(&mut *run.stats.borrow_mut());
    let args = &run.args;
    Ok(EndureResult {
        scenario: "endure",
        endpoints: args.endpoints.clone(),
        route: args.route.as_str(),
        stream: run.stream.clone(),
        shards: args.shards,
        record_bytes: args.record_bytes,
        batch_records: args.batch_records,
        connections: args.connections,
        writer_id: args.writer_id,
        call_timeout_ms: args.call_timeout_ms,
        silent_node_skip_ms: args.silent_node_skip_ms,
        seconds,
        records_acknowledged: stats.records_acknowledged,
        calls_acknowledged: stats.calls_acknowledged,
        records_retried: stats.records_retried,
        records_failed_in_answers: stats.records_failed_in_answers,
        call_failures: stats.call_failures,
        acknowledged_by_endpoint: stats.acknowledged_by_endpoint,
        records_unacknowledged_at_stop: stats.records_unacknowledged_at_stop,
        gaps: stats.gaps,
    })
}

/// A connection to node `node`, or `None` if the node said nothing within the call timeout.
async fn connect(run: &Run, node: usize) -> Option<Result<Client, ClientError>> {
    within(run.call_timeout(), Client::connect_with(&run.args.endpoints[node], &run.options)).await
}

/// The stream, created through whichever node answers unless some node already describes it,
/// then described ACTIVE by every node (so the first writes meet no first election).
async fn prepare_stream(run: &Run) -> anyhow::Result<()> {
    let describe = DescribeStreamSummaryInput { stream_name: Some(run.stream.clone()), stream_arn: None };
    let shard_count = i32::try_from(run.args.shards).context("--shards")?;
    let create =
        CreateStreamInput { stream_name: run.stream.clone(), shard_count: Some(shard_count), ..Default::default() };
    let start = Instant::now();
    let mut last_error = String::from("no node answered");
    'created: loop {
        for node in 0..run.nodes() {
            let Some(Ok(client)) = connect(run, node).await else { continue };
            if let Some(Ok(_)) = within(Duration::from_secs(5), client.call(&describe)).await {
                break 'created;
            }
        }
        for node in 0..run.nodes() {
            let Some(Ok(client)) = connect(run, node).await else { continue };
            match within(Duration::from_secs(5), client.call(&create)).await {
                Some(Ok(_)) => break 'created,
                Some(Err(error)) if error.code() == Some(ErrorKind::ResourceInUse) => break 'created,
                Some(Err(error)) => last_error = error.to_string(),
                None => last_error = format!("{} said nothing", run.args.endpoints[node]),
            }
        }
        if start.elapsed() > STREAM_WAIT || run.stopping() {
            bail!("could not create stream {} through any node: {last_error}", run.stream);
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
    for (node, endpoint) in run.args.endpoints.iter().enumerate() {
        loop {
            let status = match connect(run, node).await {
                Some(Ok(client)) => match within(Duration::from_secs(5), client.call(&describe)).await {
                    Some(Ok(output)) => Some(output.stream_description_summary.stream_status),
                    _ => None,
                },
                _ => None,
            };
            if status == Some(StreamStatus::Active) {
                break;
            }
            if start.elapsed() > STREAM_WAIT || run.stopping() {
                bail!("{endpoint} never described stream {} as ACTIVE (last: {status:?})", run.stream);
            }
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// One connection's closed loop: one PutRecords call at a time, to the node that answered last.
async fn worker(run: Rc<Run>) {
    let nodes = run.nodes();
    let mut clients: Vec<Option<Client>> = vec![None; nodes];
    let mut retries: VecDeque<Pending> = VecDeque::with_capacity(run.args.batch_records);
    let mut failures_in_a_row = 0usize;
    while !run.stopping() {
        let target = run.choose_target();
        let mut fresh = false;
        let client = match &clients[target] {
            Some(client) if client.connection_error().is_none() => Some(client.clone()),
            _ => match connect(&run, target).await {
                Some(Ok(client)) => {
                    clients[target] = Some(client.clone());
                    fresh = true;
                    Some(client)
                }
                Some(Err(_)) => None,
                None => {
                    run.mark_silent(target);
                    None
                }
            },
        };
        let acknowledged = match client {
            None => {
                run.stats.borrow_mut().call_failures.connect += 1;
                false
            }
            Some(client) => call_once(&run, &client, target, fresh, &mut retries, &mut clients).await,
        };
        if acknowledged {
            run.target.set(target);
            failures_in_a_row = 0;
        } else {
            run.failed(target);
            failures_in_a_row += 1;
            if failures_in_a_row.is_multiple_of(nodes) {
                glommio::timer::sleep(ROUND_FAILED_PAUSE).await;
            }
        }
    }
    run.stats.borrow_mut().records_unacknowledged_at_stop += retries.len() as u64;
}

/// One PutRecords call of the records waiting to be sent again, then fresh ones; whatever is
/// not acknowledged goes back to `retries` with its next attempt number. True if anything was
/// acknowledged.
async fn call_once(
    run: &Run,
    client: &Client,
    target: usize,
    fresh: bool,
    retries: &mut VecDeque<Pending>,
    clients: &mut [Option<Client>],
) -> bool {
    let batch = run.args.batch_records;
    let mut sent: Vec<Pending> = retries.drain(..).collect();
    while sent.len() < batch {
        sent.push(Pending { counter: run.next_counter(), attempt: 0 });
    }
    let request = run.request(&sent);
    let answer = within(run.call_timeout(), client.call(&request)).await;
    let response = match answer {
        Some(Ok(response)) if response.records.len() == sent.len() => response,
        failed => {
            let mut stats = run.stats.borrow_mut();
            match failed {
                None => {
                    // No answer: a fresh connection next time. A node is left alone only if it
                    // did not answer on a fresh one: a connection that lost packets while its
                    // node was cut off waits out TCP's retransmission backoff for seconds
                    // after the node is back (a partition healed), and skipping that node for
                    // it held every call for 3 s after the next leader's loss.
                    clients[target] = None;
                    if fresh {
                        run.mark_silent(target);
                    }
                    stats.call_failures.timeout += 1;
                }
                Some(Err(ClientError::Service(_))) | Some(Ok(_)) => stats.call_failures.error_answer += 1,
                Some(Err(_)) => {
                    clients[target] = None;
                    stats.call_failures.connection += 1;
                }
            }
            stats.records_retried += sent.len() as u64;
            retries.extend(sent.into_iter().map(|p| Pending { counter: p.counter, attempt: p.attempt + 1 }));
            return false;
        }
    };
    take_answer(run, sent, response.records, |_| target, retries)
}

/// `--route direct`: one connection's closed loop, each call through the routed client, which
/// splits it by leader and retries a stale route once through any node itself; what is still
/// not acknowledged is sent again in the next call, as in [`worker`].
async fn routed_worker(run: Rc<Run>, routed: RoutedClient) {
    let mut retries: VecDeque<Pending> = VecDeque::with_capacity(run.args.batch_records);
    while !run.stopping() {
        let batch = run.args.batch_records;
        let mut sent: Vec<Pending> = retries.drain(..).collect();
        while sent.len() < batch {
            sent.push(Pending { counter: run.next_counter(), attempt: 0 });
        }
        let request = run.request(&sent);
        // The routed client bounds each try (connect and call within --call-timeout-ms) and
        // makes two at most, after one table fetch at most.
        let acknowledged = match routed.put_records_answered(&request).await {
            Ok((response, answered_by)) if response.records.len() == sent.len() => {
                let endpoints = &run.args.endpoints;
                let endpoint_of = |index: usize| {
                    let address = answered_by[index].as_deref();
                    endpoints.iter().position(|endpoint| Some(endpoint.as_str()) == address).unwrap_or(endpoints.len())
                };
                take_answer(&run, sent, response.records, endpoint_of, &mut retries)
            }
            failed => {
                let mut stats = run.stats.borrow_mut();
                match failed {
                    Err(ClientError::Service(_)) | Ok(_) => stats.call_failures.error_answer += 1,
                    Err(ClientError::Connect { .. }) => stats.call_failures.connect += 1,
                    Err(_) => stats.call_failures.connection += 1,
                }
                stats.records_retried += sent.len() as u64;
                retries.extend(sent.into_iter().map(|p| Pending { counter: p.counter, attempt: p.attempt + 1 }));
                false
            }
        };
        if !acknowledged {
            glommio::timer::sleep(ROUND_FAILED_PAUSE).await;
        }
    }
    run.stats.borrow_mut().records_unacknowledged_at_stop += retries.len() as u64;
}

/// The answer to the records `sent`: each acknowledged one logged (with the endpoint
/// `endpoint_of` its index says answered it), the others back to `retries` with their next
/// attempt number. True if anything was acknowledged.
fn take_answer(
    run: &Run,
    sent: Vec<Pending>,
    answers: Vec<PutRecordsResultEntry>,
    endpoint_of: impl Fn(usize) -> usize,
    retries: &mut VecDeque<Pending>,
) -> bool {
    let (writer_id, record_bytes) = (run.args.writer_id, run.args.record_bytes);
    let ack_ns = unix_ns();
    let at_ns = u64::try_from(run.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut acknowledged = 0u64;
    let mut by_endpoint = vec![0u64; run.stats.borrow().acknowledged_by_endpoint.len()];
    let mut log = run.ack_log.borrow_mut();
    for (index, (pending, entry)) in sent.into_iter().zip(answers).enumerate() {
        match (entry.sequence_number, entry.shard_id, entry.error_code) {
            (Some(sequence), Some(shard_id), None) => {
                acknowledged += 1;
                let target = endpoint_of(index);
                by_endpoint[target] += 1;
                if let Some(log) = log.as_mut() {
                    // A full disk under the log must end the run: the log is the run's evidence.
                    writeln!(
                        log,
                        "{ack_ns} {target} {shard_id} {sequence} {writer_id} {} {} {record_bytes}",
                        pending.counter, pending.attempt
                    )
                    .expect("write the ack log");
                }
            }
            _ => {
                let mut stats = run.stats.borrow_mut();
                stats.records_failed_in_answers += 1;
                stats.records_retried += 1;
                retries.push_back(Pending { counter: pending.counter, attempt: pending.attempt + 1 });
            }
        }
    }
    if let Some(log) = log.as_mut() {
        log.flush().expect("flush the ack log");
    }
    if acknowledged > 0 {
        let mut stats = run.stats.borrow_mut();
        for (endpoint, &records) in by_endpoint.iter().enumerate().filter(|(_, records)| **records > 0) {
            stats.acknowledged(at_ns, endpoint, records);
        }
        true
    } else {
        run.stats.borrow_mut().call_failures.error_answer += 1;
        false
    }
}

/// The human summary.
pub fn table(result: &EndureResult) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "endure: {:.1} s to {} through {} ({} connections, {} x {} B a call)",
        result.seconds,
        result.stream,
        result.endpoints.join(","),
        result.connections,
        result.batch_records,
        result.record_bytes
    );
    let _ = writeln!(
        out,
        "records acknowledged {} in {} calls ({:.0} records/s); by endpoint {:?}",
        result.records_acknowledged,
        result.calls_acknowledged,
        result.records_acknowledged as f64 / result.seconds.max(1e-9),
        result.acknowledged_by_endpoint
    );
    let failures = &result.call_failures;
    let _ = writeln!(
        out,
        "records retried {} ({} failed inside answers); calls failed: {} connect, {} timeout, {} broken connection, \
         {} error answer; {} records never acknowledged (pending at stop)",
        result.records_retried,
        result.records_failed_in_answers,
        failures.connect,
        failures.timeout,
        failures.connection,
        failures.error_answer,
        result.records_unacknowledged_at_stop
    );
    let _ = writeln!(out, "longest gaps without an acknowledgement:");
    for gap in &result.gaps {
        let _ = writeln!(
            out,
            "  {:>8.3} s at {:>9.3} s (endpoint {} -> {})",
            gap.gap_s, gap.after_s, gap.from_endpoint, gap.to_endpoint
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_deterministic_sized_and_unique_per_attempt() {
        let a = record_data(7, 42, 0, 1024);
        assert_eq!(a.len(), 1024);
        assert_eq!(a, record_data(7, 42, 0, 1024));
        assert_ne!(a, record_data(7, 42, 1, 1024));
        assert_ne!(a, record_data(7, 43, 0, 1024));
        assert_ne!(a, record_data(8, 42, 0, 1024));
        assert_eq!(&a[..4], b"SLE1");
        assert_eq!(record_data(1, 2, 3, 0).len(), HEADER_BYTES);
        assert_eq!(record_data(1, 2, 3, 29).len(), 29);
    }

    /// The same vector is pinned in `server/tests/replication/loadgen.rs`, which derives the
    /// data on its own: if either side changes, both tests say so.
    #[test]
    fn derivation_is_pinned() {
        let data = record_data(3, 5, 1, 40);
        assert_eq!(pinned_digest(&data), 0x8a6d_6fcb_6065_8e55, "{data:02x?}");
    }

    /// FNV-1a 64 of `data`.
    fn pinned_digest(data: &[u8]) -> u64 {
        data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3))
    }

    #[test]
    fn gaps_keep_the_longest() {
        let mut stats = Stats { acknowledged_by_endpoint: vec![0; 2], ..Stats::default() };
        for (i, at_ms) in [0u64, 10, 500, 520, 2_520, 2_530].into_iter().enumerate() {
            stats.acknowledged(at_ms * 1_000_000, i % 2, 1);
        }
        assert_eq!(stats.gaps[0].gap_s, 2.0);
        assert_eq!(stats.gaps[1].gap_s, 0.49);
        assert_eq!(stats.records_acknowledged, 6);
    }
}
