//! The `throughput` scenario: the highest durable ingest rate, and how fast consumers read.
//!
//! Run it against `sluiced --limits unlimited`. For every pair of `--record-bytes` and
//! `--batch-records`, `--producers` connections (spread over `--client-threads` executor
//! threads) each keep `--in-flight` PutRecords calls pipelined for `--duration-s`: a closed
//! loop, so the offered load is whatever the daemon absorbs, and every record counted was
//! acknowledged, so it is durable. The rate is taken over the run less its first
//! `--warmup-s`, together with the slowest and fastest whole second of that window, which
//! shows whether the rate held (a ceiling that sags towards the end is not sustainable).
//! The records of one call cycle over the stream's shards, as an SDK client's would.
//!
//! Afterwards the consumers read everything back from the start of each shard, first
//! `--polling-consumers` GetRecords loops (as fast as answers come, 10,000 records per call),
//! then `--efo-consumers` enhanced fan-out subscriptions, each for at most `--duration-s`.

use crate::cli::ThroughputArgs;
use crate::conn::{subscription_input, Conn};
use crate::limits::shard_iterator;
use crate::progress::Progress;
use crate::setup::{self, Target, PARTITION_KEY};
use crate::stats::Latency;
use anyhow::Context;
use bytes::Bytes;
use serde::Serialize;
use sluice_client::{
    ConsumerArn, ErrorKind, GetRecordsInput, PutRecordsInput, PutRecordsRequestEntry, ShardIteratorType,
    StartingPosition, StreamArn,
};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DURATION_S_DEFAULT: f64 = 10.0;
const WARMUP_S_DEFAULT: f64 = 2.0;

/// Records one GetRecords call may return (the Kinesis maximum).
const GET_RECORDS_LIMIT: i32 = 10_000;

#[derive(Clone, Debug, Serialize)]
pub struct Ingest {
    pub record_bytes: usize,
    pub batch_records: usize,
    /// Data plus partition keys acknowledged per second, in MB (10^6 bytes).
    pub mb_per_s: f64,
    pub mib_per_s: f64,
    pub records_per_s: f64,
    /// The slowest and the fastest whole second of the measured window, in MB/s.
    pub second_min_mb_per_s: f64,
    pub second_max_mb_per_s: f64,
    /// PutRecords call latency (closed loop: time from sending to the answer).
    pub call_p50_ms: f64,
    pub call_p99_ms: f64,
    pub failed_records: u64,
    pub throttled_records: u64,
    /// The error code and message of the first record that failed (not throttled), to tell
    /// why without a second run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
    /// `--route direct`: the producers' PutRecords parts sent straight to a leader, and those
    /// sent through the node given (no leader known, or a retry after a stale route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routed: Option<RoutedCalls>,
}

/// What the routed clients of the producers did, summed.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RoutedCalls {
    pub direct_calls: u64,
    pub any_calls: u64,
    pub table_fetches: u64,
    pub retries: u64,
}

impl RoutedCalls {
    fn add(&mut self, stats: sluice_client::RoutedStats) {
        self.direct_calls += stats.direct_calls;
        self.any_calls += stats.any_calls;
        self.table_fetches += stats.table_fetches;
        self.retries += stats.retries;
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Read {
    /// "polling" or "efo".
    pub kind: &'static str,
    pub consumers: usize,
    pub mb_per_s: f64,
    pub mib_per_s: f64,
    pub records_per_s: f64,
    pub bytes: u64,
    pub seconds: f64,
    /// Every shard was read to its end within the time allowed.
    pub caught_up: bool,
    pub errors: u64,
}

#[derive(Serialize)]
pub struct ThroughputResult {
    pub scenario: &'static str,
    pub endpoint: String,
    /// `--route`: `any` (through the node given) or `direct` (to each shard's leader).
    pub route: &'static str,
    pub streams: usize,
    pub shards_per_stream: usize,
    pub producers: usize,
    pub in_flight: usize,
    pub client_threads: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub ingest: Vec<Ingest>,
    /// The configuration with the highest MB/s.
    pub ceiling: Option<Ingest>,
    pub read: Vec<Read>,
}

/// What one executor thread measured.
struct ThreadResult {
    bytes_per_second: Vec<u64>,
    records_per_second: Vec<u64>,
    calls: Latency,
    failed: u64,
    throttled: u64,
    first_failure: Option<String>,
    routed: Option<RoutedCalls>,
}

pub fn run(args: ThroughputArgs) -> anyhow::Result<ThroughputResult> {
    let common = args.common.clone();
    let duration_s = common.duration_s(DURATION_S_DEFAULT);
    let warmup_s = common.warmup_s(WARMUP_S_DEFAULT);
    anyhow::ensure!(warmup_s + 1.0 <= duration_s, "--duration-s must exceed --warmup-s by a second at least");
    let (streams, shards) = (args.streams, args.shards);
    let setup_common = common.clone();
    let targets = crate::on_executor(move || async move {
        let control = setup::connect(&setup_common).await?;
        setup::create_streams(&control, "throughput", "s", streams, shards).await
    })?;

    let mut ingest = Vec::new();
    for &record_bytes in &args.record_bytes {
        for &batch_records in &args.batch_records {
            anyhow::ensure!((1..=500).contains(&batch_records), "--batch-records must be within 1..=500");
            let measured = ingest_once(&args, &targets, record_bytes, batch_records, duration_s, warmup_s)?;
            if measured.throttled_records > 0 {
                eprintln!(
                    "warning: {} records were throttled: is sluiced running with --limits unlimited?",
                    measured.throttled_records
                );
            }
            ingest.push(measured);
        }
    }
    let ceiling = ingest.iter().max_by(|a, b| a.mb_per_s.total_cmp(&b.mb_per_s)).cloned();

    let read_common = common.clone();
    let (polling, efo, keep) = (args.polling_consumers, args.efo_consumers, common.keep_streams);
    let read_targets = targets.clone();
    let read = crate::on_executor(move || async move {
        let mut read = Vec::new();
        if polling > 0 {
            read.push(read_polling(&read_common, &read_targets, polling, duration_s).await?);
        }
        if efo > 0 {
            read.push(read_efo(&read_common, &read_targets, efo, duration_s).await?);
        }
        let control = setup::connect(&read_common).await?;
        setup::delete_streams(&control, &read_targets, keep).await?;
        Ok(read)
    })?;

    Ok(ThroughputResult {
        scenario: "throughput",
        endpoint: common.endpoint.clone(),
        route: common.route.as_str(),
        streams: args.streams,
        shards_per_stream: args.shards,
        producers: args.producers,
        in_flight: args.in_flight,
        client_threads: args.client_threads,
        duration_s,
        warmup_s,
        ingest,
        ceiling,
        read,
    })
}

fn ingest_once(
    args: &ThroughputArgs,
    targets: &[Target],
    record_bytes: usize,
    batch_records: usize,
    duration_s: f64,
    warmup_s: f64,
) -> anyhow::Result<Ingest> {
    let threads = args.client_threads.max(1);
    let start = Instant::now() + Duration::from_millis(200);
    let deadline = start + Duration::from_secs_f64(duration_s);
    let acked_bytes = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for thread in 0..threads {
        let connections = (0..args.producers).filter(|c| c % threads == thread).count();
        let (common, targets, acked_bytes) = (args.common.clone(), targets.to_vec(), acked_bytes.clone());
        let in_flight = args.in_flight.max(1);
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name("loadgen-producer")
            .spawn(move || async move {
                drive(
                    &common,
                    &targets,
                    connections,
                    in_flight,
                    record_bytes,
                    batch_records,
                    start,
                    deadline,
                    &acked_bytes,
                )
                .await
            })
            .map_err(|error| anyhow::anyhow!("start an executor: {error}"))?;
        handles.push(handle);
    }
    let label = format!("{record_bytes} B x{batch_records}");
    let progress = Progress::new(&label, duration_s + 0.2);
    let mut last = (Instant::now(), 0u64);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(crate::progress::REFRESH_MS));
        let (now, bytes) = (Instant::now(), acked_bytes.load(Ordering::Relaxed));
        let rate = (bytes - last.1) as f64 / 1e6 / (now - last.0).as_secs_f64();
        last = (now, bytes);
        progress.update(format!("{rate:>8.1} MB/s acknowledged, {:.0} MB so far", bytes as f64 / 1e6));
    }
    progress.finish();
    let mut bytes_per_second = Vec::new();
    let mut records_per_second = Vec::new();
    let mut calls = Latency::new();
    let (mut failed, mut throttled) = (0, 0);
    let mut first_failure = None;
    let mut routed: Option<RoutedCalls> = None;
    for handle in handles {
        let thread = handle.join().map_err(|error| anyhow::anyhow!("executor: {error:?}"))??;
        add_into(&mut bytes_per_second, &thread.bytes_per_second);
        add_into(&mut records_per_second, &thread.records_per_second);
        calls.add(&thread.calls);
        failed += thread.failed;
        throttled += thread.throttled;
        first_failure = first_failure.or(thread.first_failure);
        if let Some(thread) = thread.routed {
            let total = routed.get_or_insert_with(RoutedCalls::default);
            total.direct_calls += thread.direct_calls;
            total.any_calls += thread.any_calls;
            total.table_fetches += thread.table_fetches;
            total.retries += thread.retries;
        }
    }
    // Whole seconds after the warm-up and before the deadline.
    let first = warmup_s.ceil() as usize;
    let last = (duration_s.floor() as usize).max(first + 1);
    let window = first..last.min(bytes_per_second.len().max(first + 1));
    let seconds = window.len() as f64;
    let bytes: u64 = bytes_per_second.get(window.clone()).map_or(0, |s| s.iter().sum());
    let records: u64 = records_per_second.get(window.clone()).map_or(0, |s| s.iter().sum());
    let per_second = bytes_per_second.get(window).unwrap_or_default();
    Ok(Ingest {
        record_bytes,
        batch_records,
        mb_per_s: bytes as f64 / 1e6 / seconds,
        mib_per_s: bytes as f64 / (1 << 20) as f64 / seconds,
        records_per_s: records as f64 / seconds,
        second_min_mb_per_s: per_second.iter().min().map_or(0.0, |&b| b as f64 / 1e6),
        second_max_mb_per_s: per_second.iter().max().map_or(0.0, |&b| b as f64 / 1e6),
        call_p50_ms: calls.quantile_ms(0.5),
        call_p99_ms: calls.quantile_ms(0.99),
        failed_records: failed,
        throttled_records: throttled,
        first_failure,
        routed,
    })
}

fn add_into(total: &mut Vec<u64>, part: &[u64]) {
    if total.len() < part.len() {
        total.resize(part.len(), 0);
    }
    for (sum, value) in total.iter_mut().zip(part) {
        *sum += value;
    }
}

/// One executor thread's producers: `connections` connections with `in_flight` loops each.
#[expect(clippy::too_many_arguments, reason = "one thread's share of the configuration")]
async fn drive(
    common: &crate::cli::Common,
    targets: &[Target],
    connections: usize,
    in_flight: usize,
    record_bytes: usize,
    batch_records: usize,
    start: Instant,
    deadline: Instant,
    acked_bytes: &Arc<AtomicU64>,
) -> anyhow::Result<ThreadResult> {
    let data = Bytes::from(vec![0x5Au8; record_bytes]);
    let entry_bytes = (record_bytes + PARTITION_KEY.len()) as u64;
    let mut streams: Vec<Vec<Target>> = Vec::new();
    for target in targets {
        match streams.iter_mut().find(|shards| shards[0].stream == target.stream) {
            Some(shards) => shards.push(target.clone()),
            None => streams.push(vec![target.clone()]),
        }
    }
    let streams = Rc::new(streams);
    let seconds = ((deadline - start).as_secs_f64().ceil() as usize) + 2;
    let totals = Rc::new(ThreadTotals {
        bytes: (0..seconds).map(|_| Cell::new(0)).collect(),
        records: (0..seconds).map(|_| Cell::new(0)).collect(),
        calls: std::cell::RefCell::new(Latency::new()),
        failed: Cell::new(0),
        throttled: Cell::new(0),
        first_failure: std::cell::RefCell::new(None),
    });
    let mut tasks = Vec::new();
    let next_call = Rc::new(Cell::new(0usize));
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = setup::connect(common).await?;
        clients.push(client.clone());
        for _ in 0..in_flight {
            let (client, streams, totals, data, next_call, acked_bytes) =
                (client.clone(), streams.clone(), totals.clone(), data.clone(), next_call.clone(), acked_bytes.clone());
            tasks.push(glommio::spawn_local(async move {
                crate::limits::sleep_until(start).await;
                while Instant::now() < deadline {
                    let call = next_call.get();
                    next_call.set(call + 1);
                    let shards = &streams[call % streams.len()];
                    let records = (0..batch_records)
                        .map(|i| PutRecordsRequestEntry {
                            data: data.clone(),
                            partition_key: Some(PARTITION_KEY.to_owned()),
                            explicit_hash_key: Some(shards[(call * batch_records + i) % shards.len()].hash_key),
                        })
                        .collect();
                    let request =
                        PutRecordsInput { stream_name: Some(shards[0].stream.clone()), stream_arn: None, records };
                    let sent = Instant::now();
                    let response = client.call(&request).await?;
                    let now = Instant::now();
                    totals.calls.borrow_mut().record_ns((now - sent).as_nanos() as u64);
                    let mut ok = 0u64;
                    for entry in &response.records {
                        match entry.error_code {
                            None => ok += 1,
                            Some(ErrorKind::ProvisionedThroughputExceeded) => {
                                totals.throttled.set(totals.throttled.get() + 1)
                            }
                            Some(kind) => {
                                totals.failed.set(totals.failed.get() + 1);
                                totals.first_failure.borrow_mut().get_or_insert_with(|| {
                                    format!("{kind:?}: {}", entry.error_message.as_deref().unwrap_or(""))
                                });
                            }
                        }
                    }
                    let second = (now.saturating_duration_since(start).as_secs() as usize).min(totals.bytes.len() - 1);
                    totals.bytes[second].set(totals.bytes[second].get() + ok * entry_bytes);
                    totals.records[second].set(totals.records[second].get() + ok);
                    acked_bytes.fetch_add(ok * entry_bytes, Ordering::Relaxed);
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
    }
    for task in tasks {
        task.await?;
    }
    let calls = totals.calls.borrow().clone();
    let mut routed: Option<RoutedCalls> = None;
    for stats in clients.iter().filter_map(Conn::routed_stats) {
        routed.get_or_insert_with(RoutedCalls::default).add(stats);
    }
    Ok(ThreadResult {
        bytes_per_second: totals.bytes.iter().map(Cell::get).collect(),
        records_per_second: totals.records.iter().map(Cell::get).collect(),
        calls,
        failed: totals.failed.get(),
        throttled: totals.throttled.get(),
        first_failure: totals.first_failure.take(),
        routed,
    })
}

struct ThreadTotals {
    bytes: Vec<Cell<u64>>,
    records: Vec<Cell<u64>>,
    calls: std::cell::RefCell<Latency>,
    failed: Cell<u64>,
    throttled: Cell<u64>,
    first_failure: std::cell::RefCell<Option<String>>,
}

#[derive(Default)]
struct ReadTotals {
    bytes: Cell<u64>,
    records: Cell<u64>,
    errors: Cell<u64>,
    /// Shards read to their end.
    done: Cell<usize>,
}

impl ReadTotals {
    fn add(&self, bytes: u64, records: u64) {
        self.bytes.set(self.bytes.get() + bytes);
        self.records.set(self.records.get() + records);
    }
}

/// Every shard read from the start by `consumers` GetRecords loops each, as fast as answers
/// come, until each loop is at the end of its shard or `limit_s` has passed.
async fn read_polling(
    common: &crate::cli::Common,
    targets: &[Target],
    consumers: usize,
    limit_s: f64,
) -> anyhow::Result<Read> {
    let totals = Rc::new(ReadTotals::default());
    let deadline = Instant::now() + Duration::from_secs_f64(limit_s);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let client = setup::connect(common).await?;
        for target in targets {
            let iterator = shard_iterator(&client, target, ShardIteratorType::TrimHorizon, None).await?;
            tasks.push(glommio::spawn_local(poll_to_end(client.clone(), iterator, totals.clone(), deadline)));
        }
    }
    let loops = tasks.len();
    let progress = Progress::new("read polling", limit_s);
    while !task_done(&totals, loops) && Instant::now() < deadline {
        progress.update(format!("{:.0} MB read", totals.bytes.get() as f64 / 1e6));
        glommio::timer::sleep(Duration::from_millis(crate::progress::REFRESH_MS)).await;
    }
    progress.finish();
    let elapsed = started.elapsed();
    drop(tasks);
    Ok(read_result("polling", consumers, &totals, elapsed, totals.done.get() == loops))
}

fn task_done(totals: &ReadTotals, loops: usize) -> bool {
    totals.done.get() >= loops
}

async fn poll_to_end(client: Conn, mut iterator: String, totals: Rc<ReadTotals>, deadline: Instant) {
    while Instant::now() < deadline {
        let request =
            GetRecordsInput { shard_iterator: iterator.clone(), limit: Some(GET_RECORDS_LIMIT), stream_arn: None };
        match client.call(&request).await {
            Ok(response) => {
                let bytes: usize = response
                    .records
                    .iter()
                    .map(|r| r.data.len() + r.partition_key.as_ref().map_or(0, String::len))
                    .sum();
                totals.add(bytes as u64, response.records.len() as u64);
                let at_end = response.records.is_empty() && response.millis_behind_latest.unwrap_or(0) == 0;
                match response.next_shard_iterator {
                    Some(next) if !at_end => iterator = next,
                    _ => break,
                }
            }
            Err(_) => {
                totals.errors.set(totals.errors.get() + 1);
                return;
            }
        }
    }
    if Instant::now() < deadline {
        totals.done.set(totals.done.get() + 1);
    }
}

/// Every shard read from the start by `consumers` enhanced fan-out subscriptions each, until
/// each is at the end of its shard or `limit_s` has passed.
async fn read_efo(
    common: &crate::cli::Common,
    targets: &[Target],
    consumers: usize,
    limit_s: f64,
) -> anyhow::Result<Read> {
    let control = setup::connect(common).await?;
    let totals = Rc::new(ReadTotals::default());
    let mut subscriptions = Vec::new();
    for index in 0..consumers {
        let mut arns: Vec<(StreamArn, ConsumerArn)> = Vec::new();
        for target in targets {
            if !arns.iter().any(|(stream_arn, _)| stream_arn == &target.stream_arn) {
                let name = format!("loadgen-read-{index}");
                arns.push((
                    target.stream_arn.clone(),
                    setup::register_consumer(&control, &target.stream_arn, &name).await?,
                ));
            }
            let arn = &arns.iter().find(|(stream_arn, _)| stream_arn == &target.stream_arn).context("registered")?.1;
            let client = setup::connect(common).await?;
            subscriptions.push((client, arn.clone(), target.shard_id.clone()));
        }
    }
    let loops = subscriptions.len();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(limit_s);
    let mut tasks = Vec::new();
    for (client, arn, shard_id) in subscriptions {
        let totals = totals.clone();
        tasks.push(glommio::spawn_local(async move {
            let start = StartingPosition::new(ShardIteratorType::TrimHorizon);
            let Ok(mut subscription) = client.subscribe_to_shard(&subscription_input(&arn, &shard_id, start)).await
            else {
                totals.errors.set(totals.errors.get() + 1);
                return;
            };
            while let Some(item) = subscription.next().await {
                let Ok(event) = item else {
                    totals.errors.set(totals.errors.get() + 1);
                    return;
                };
                let bytes: usize =
                    event.records.iter().map(|r| r.data.len() + r.partition_key.as_ref().map_or(0, String::len)).sum();
                totals.add(bytes as u64, event.records.len() as u64);
                if event.millis_behind_latest == 0 {
                    totals.done.set(totals.done.get() + 1);
                    return;
                }
            }
        }));
    }
    let progress = Progress::new("read efo", limit_s);
    while !task_done(&totals, loops) && Instant::now() < deadline {
        progress.update(format!("{:.0} MB read", totals.bytes.get() as f64 / 1e6));
        glommio::timer::sleep(Duration::from_millis(crate::progress::REFRESH_MS)).await;
    }
    progress.finish();
    let elapsed = started.elapsed();
    drop(tasks);
    Ok(read_result("efo", consumers, &totals, elapsed, totals.done.get() == loops))
}

fn read_result(kind: &'static str, consumers: usize, totals: &ReadTotals, elapsed: Duration, caught_up: bool) -> Read {
    let seconds = elapsed.as_secs_f64();
    Read {
        kind,
        consumers,
        mb_per_s: totals.bytes.get() as f64 / 1e6 / seconds,
        mib_per_s: totals.bytes.get() as f64 / (1 << 20) as f64 / seconds,
        records_per_s: totals.records.get() as f64 / seconds,
        bytes: totals.bytes.get(),
        seconds,
        caught_up,
        errors: totals.errors.get(),
    }
}

/// The human summary.
pub fn table(result: &ThroughputResult) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "throughput: {} shard(s), {} producer connection(s) x {} calls in flight on {} thread(s); {} s each, first {} s not counted",
        result.streams * result.shards_per_stream,
        result.producers,
        result.in_flight,
        result.client_threads,
        result.duration_s,
        result.warmup_s
    );
    let _ = writeln!(
        out,
        "{:>8} {:>6} {:>9} {:>9} {:>11} {:>17} {:>9} {:>9} {:>7}",
        "record B", "batch", "MB/s", "MiB/s", "records/s", "per s min..max", "call p50", "call p99", "failed"
    );
    for i in &result.ingest {
        let _ = writeln!(
            out,
            "{:>8} {:>6} {:>9.1} {:>9.1} {:>11.0} {:>8.1}..{:<8.1} {:>7.2}ms {:>7.2}ms {:>7}",
            i.record_bytes,
            i.batch_records,
            i.mb_per_s,
            i.mib_per_s,
            i.records_per_s,
            i.second_min_mb_per_s,
            i.second_max_mb_per_s,
            i.call_p50_ms,
            i.call_p99_ms,
            i.failed_records + i.throttled_records
        );
    }
    if let Some(c) = &result.ceiling {
        let _ = writeln!(
            out,
            "ceiling: {:.1} MB/s ({:.0} records/s) with {} B records, {} per call",
            c.mb_per_s, c.records_per_s, c.record_bytes, c.batch_records
        );
    }
    for r in &result.read {
        let _ = writeln!(
            out,
            "read back ({}, {} consumer(s)): {:.1} MB/s, {:.0} records/s, {:.0} MB in {:.1} s{}{}",
            r.kind,
            r.consumers,
            r.mb_per_s,
            r.records_per_s,
            r.bytes as f64 / 1e6,
            r.seconds,
            if r.caught_up { ", to the end" } else { ", stopped by the time limit" },
            if r.errors > 0 { format!(", {} errors", r.errors) } else { String::new() }
        );
    }
    out
}
