//! The `limits` scenario: over-drive shards and show that each Kinesis per-shard quota holds.
//!
//! Two kinds of stream run side by side, so that each quota is the one that binds:
//!
//! - **byte-bound** streams get large records (4 KiB by default): 1 MiB/s is reached long
//!   before 1,000 records/s. Their polling consumers ask for about 512 KiB per GetRecords
//!   call, so the 2 MiB/s read quota binds before 5 calls/s does; enhanced fan-out consumers
//!   read them too.
//! - **record-bound** streams get small records (100 B): 1,000 records/s binds first. Their
//!   polling consumers ask for one record per call, so 5 calls/s binds first.
//!
//! Timeline: phase 1 (`--duration-s`, 15 s by default) only writes, at `--rate` times the write
//! quotas, which also builds a backlog for the readers. Phase 2 (as long again) keeps writing
//! and starts the readers at the start of the streams: the polling consumers of a shard
//! together attempt `--rate` times 5 calls/s; each enhanced fan-out consumer subscribes to
//! every byte-bound shard. Each measurement skips its phase's first `--warmup-s` seconds,
//! while the buckets' initial second of quota drains, and reads only while the reader is
//! behind the shard's tail (MillisBehindLatest > 0): a reader that has caught up is held back
//! by the writers, not by its quota.

use crate::cli::LimitsArgs;
use crate::conn::{subscription_input, Conn};
use crate::payload::Clock;
use crate::progress::{self, Progress};
use crate::rate::{Limit, Observed, Series, Verdict};
use crate::setup::{self, Target, PARTITION_KEY};
use bytes::Bytes;
use serde::Serialize;
use sluice_client::{
    ClientError, ConsumerArn, ErrorKind, GetRecordsInput, GetShardIteratorInput, PutRecordsInput,
    PutRecordsRequestEntry, SequenceNumber, ShardIteratorType, StartingPosition,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Writers send one PutRecords call per shard this often: fine enough that a 10 s window
/// holds a hundred calls, coarse enough to keep the calls few.
const WRITE_TICK_MS: u64 = 100;

/// Bytes a byte-bound polling consumer asks for per GetRecords call: a quarter of the 2 MiB/s
/// read quota, so that the bytes run out at 4 calls/s, before the 5 calls/s quota, and one
/// call is a small lump (±3% of a 10 s window).
const READ_CALL_BYTES: usize = 512 << 10;

/// Phase length and warm-up when not given.
const DURATION_S_DEFAULT: f64 = 15.0;
const WARMUP_S_DEFAULT: f64 = 2.0;

#[derive(Default)]
struct ShardStats {
    write_records: Series,
    write_bytes: Series,
    write_throttled: u64,
    write_errors: u64,
    read_bytes: Series,
    read_calls: Series,
    read_throttled: u64,
    read_errors: u64,
}

struct EfoStats {
    consumer: String,
    target: usize,
    bytes: Series,
    errors: u64,
}

/// Everything the tasks of one run share (one executor thread).
struct Run {
    clock: Clock,
    stop: Cell<bool>,
    shards: RefCell<Vec<ShardStats>>,
    efo: RefCell<Vec<EfoStats>>,
}

#[derive(Serialize)]
pub struct LimitsResult {
    pub scenario: &'static str,
    pub endpoint: String,
    /// `--route`: `any` (through the node given) or `direct` (to each shard's leader).
    pub route: &'static str,
    pub phase_s: f64,
    pub warmup_s: f64,
    pub rate_multiple: f64,
    pub verdicts: Vec<Verdict>,
    /// Every verdict passed.
    pub pass: bool,
}

pub async fn run(args: LimitsArgs) -> anyhow::Result<LimitsResult> {
    let common = &args.common;
    let phase_s = common.duration_s(DURATION_S_DEFAULT);
    let warmup_s = common.warmup_s(WARMUP_S_DEFAULT);
    anyhow::ensure!(warmup_s < phase_s, "--warmup-s must be shorter than --duration-s");
    anyhow::ensure!(args.rate > 1.0, "--rate must be above 1 (a multiple of the quota) to show the limit");
    let control = setup::connect(common).await?;
    let big = setup::create_streams(&control, "limits", "bytes", args.streams, args.shards).await?;
    let small = setup::create_streams(&control, "limits", "records", args.streams, args.shards).await?;
    let mut consumers = Vec::new();
    for index in 0..args.efo_consumers {
        let name = format!("loadgen-efo-{index}");
        for stream_arn in dedup(big.iter().map(|t| t.stream_arn.clone())) {
            consumers.push((
                name.clone(),
                stream_arn.clone(),
                setup::register_consumer(&control, &stream_arn, &name).await?,
            ));
        }
    }
    let targets: Vec<Target> = big.iter().chain(&small).cloned().collect();
    let is_big = |index: usize| index < big.len();

    let run = Rc::new(Run {
        clock: Clock::start(),
        stop: Cell::new(false),
        shards: RefCell::new((0..targets.len()).map(|_| ShardStats::default()).collect()),
        efo: RefCell::new(Vec::new()),
    });
    let phase = Duration::from_secs_f64(phase_s);
    let start = run.clock.instant_at(0);

    // Writers, for both phases.
    let mut producers = Vec::new();
    for _ in 0..args.producers.max(1) {
        producers.push(setup::connect(common).await?);
    }
    let mut tasks = Vec::new();
    let mut offered_write = vec![0.0; targets.len()];
    for (index, target) in targets.iter().enumerate() {
        let (record_bytes, records_per_tick) = if is_big(index) {
            let unit = args.record_bytes + PARTITION_KEY.len();
            let per_tick = args.rate * Limit::WriteBytesPerS.quota() * WRITE_TICK_MS as f64 / 1_000.0 / unit as f64;
            offered_write[index] = per_tick.ceil() * unit as f64 * 1_000.0 / WRITE_TICK_MS as f64;
            (args.record_bytes, per_tick.ceil() as usize)
        } else {
            let per_tick = args.rate * Limit::WriteRecordsPerS.quota() * WRITE_TICK_MS as f64 / 1_000.0;
            offered_write[index] = per_tick.ceil() * 1_000.0 / WRITE_TICK_MS as f64;
            (args.small_record_bytes, per_tick.ceil() as usize)
        };
        let client = producers[index % producers.len()].clone();
        tasks.push(glommio::spawn_local(write_loop(
            run.clone(),
            client,
            target.clone(),
            index,
            Bytes::from(vec![0x5Au8; record_bytes]),
            records_per_tick,
        )));
    }

    let progress = Progress::new("limits", 2.0 * phase_s);
    let message = || status(&run);
    progress::run_until(&progress, start + phase, &message).await;

    // Phase 2: readers from the start of every shard.
    let polling = args.polling_consumers.max(1);
    let attempt_interval = Duration::from_secs_f64(polling as f64 / (args.rate * Limit::ReadCallsPerS.quota()));
    let big_limit = (READ_CALL_BYTES / (args.record_bytes + PARTITION_KEY.len())).max(1);
    for consumer in 0..polling {
        let client = setup::connect(common).await?;
        for (index, target) in targets.iter().enumerate() {
            let limit = if is_big(index) { big_limit } else { 1 };
            let phase_offset = attempt_interval.mul_f64(consumer as f64 / polling as f64);
            tasks.push(glommio::spawn_local(poll_loop(
                run.clone(),
                client.clone(),
                target.clone(),
                index,
                limit,
                attempt_interval,
                phase_offset,
            )));
        }
    }
    for (name, stream_arn, consumer_arn) in &consumers {
        for (index, target) in targets.iter().enumerate().filter(|(i, t)| is_big(*i) && t.stream_arn == *stream_arn) {
            // Each subscription gets its own connection (see Client::subscribe_to_shard).
            let client = setup::connect(common).await?;
            let slot = {
                let mut efo = run.efo.borrow_mut();
                efo.push(EfoStats { consumer: name.clone(), target: index, bytes: Series::default(), errors: 0 });
                efo.len() - 1
            };
            tasks.push(glommio::spawn_local(efo_loop(run.clone(), client, consumer_arn.clone(), target.clone(), slot)));
        }
    }
    let end = start + 2 * phase;
    progress::run_until(&progress, end, &message).await;
    run.stop.set(true);
    progress.finish();
    // Cancels the readers still waiting and the writers' last calls: the measurement is over.
    drop(tasks);

    let phase_ns = run.clock.ns_at(start + phase);
    let end_ns = run.clock.ns_at(end);
    let warmup_ns = (warmup_s * 1e9) as u64;
    let mut verdicts = Vec::new();
    {
        let shards = run.shards.borrow();
        for (index, (target, stats)) in targets.iter().zip(shards.iter()).enumerate() {
            let write = |series: &Series, offered| Observed {
                measured: series.steady_rate_per_s(warmup_ns, end_ns),
                offered,
                throttled: stats.write_throttled,
                other_errors: stats.write_errors,
            };
            let read = |series: &Series, offered| Observed {
                measured: series.steady_rate_per_s(phase_ns + warmup_ns, end_ns),
                offered,
                throttled: stats.read_throttled,
                other_errors: stats.read_errors,
            };
            let calls_offered = args.rate * Limit::ReadCallsPerS.quota();
            if is_big(index) {
                let observed = write(&stats.write_bytes, offered_write[index]);
                verdicts.push(Verdict::new(
                    Limit::WriteBytesPerS,
                    &target.stream,
                    target.shard_id.as_str(),
                    None,
                    observed,
                ));
                let offered = calls_offered * (big_limit * (args.record_bytes + PARTITION_KEY.len())) as f64;
                let observed = read(&stats.read_bytes, offered);
                verdicts.push(Verdict::new(
                    Limit::ReadBytesPerS,
                    &target.stream,
                    target.shard_id.as_str(),
                    None,
                    observed,
                ));
            } else {
                let observed = write(&stats.write_records, offered_write[index]);
                verdicts.push(Verdict::new(
                    Limit::WriteRecordsPerS,
                    &target.stream,
                    target.shard_id.as_str(),
                    None,
                    observed,
                ));
                let observed = read(&stats.read_calls, calls_offered);
                verdicts.push(Verdict::new(
                    Limit::ReadCallsPerS,
                    &target.stream,
                    target.shard_id.as_str(),
                    None,
                    observed,
                ));
            }
        }
        for efo in run.efo.borrow().iter() {
            let target = &targets[efo.target];
            let observed = Observed {
                measured: efo.bytes.steady_rate_per_s(phase_ns + warmup_ns, end_ns),
                offered: 0.0,
                throttled: 0,
                other_errors: efo.errors,
            };
            verdicts.push(Verdict::new(
                Limit::EfoBytesPerS,
                &target.stream,
                target.shard_id.as_str(),
                Some(efo.consumer.clone()),
                observed,
            ));
        }
    }
    setup::delete_streams(&control, &targets, common.keep_streams).await?;
    let pass = verdicts.iter().all(|v| v.pass);
    Ok(LimitsResult {
        scenario: "limits",
        endpoint: common.endpoint.clone(),
        route: common.route.as_str(),
        phase_s,
        warmup_s,
        rate_multiple: args.rate,
        verdicts,
        pass,
    })
}

fn dedup<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The progress line: totals so far.
fn status(run: &Run) -> String {
    let shards = run.shards.borrow();
    let records: u64 = shards.iter().map(|s| s.write_records.total()).sum();
    let throttled: u64 = shards.iter().map(|s| s.write_throttled).sum();
    let read_bytes: u64 = shards.iter().map(|s| s.read_bytes.total()).sum();
    let calls: u64 = shards.iter().map(|s| s.read_calls.total()).sum();
    let read_throttled: u64 = shards.iter().map(|s| s.read_throttled).sum();
    let efo_bytes: u64 = run.efo.borrow().iter().map(|e| e.bytes.total()).sum();
    format!(
        "writes {records} ok {throttled} throttled | GetRecords {calls} ok {read_throttled} throttled {:.1} MiB | EFO {:.1} MiB",
        read_bytes as f64 / (1 << 20) as f64,
        efo_bytes as f64 / (1 << 20) as f64
    )
}

/// One PutRecords call per tick to one shard, open-loop: a slow answer does not delay the
/// next call.
async fn write_loop(run: Rc<Run>, client: Conn, target: Target, index: usize, data: Bytes, records: usize) {
    let entries: Vec<PutRecordsRequestEntry> = (0..records)
        .map(|_| PutRecordsRequestEntry {
            data: data.clone(),
            partition_key: Some(PARTITION_KEY.to_owned()),
            explicit_hash_key: Some(target.hash_key),
        })
        .collect();
    let request =
        Rc::new(PutRecordsInput { stream_name: Some(target.stream.clone()), stream_arn: None, records: entries });
    let record_bytes = (data.len() + PARTITION_KEY.len()) as u64;
    for tick in 0u64.. {
        let due = run.clock.instant_at(tick * WRITE_TICK_MS * 1_000_000);
        sleep_until(due).await;
        if run.stop.get() {
            break;
        }
        let (run, client, request) = (run.clone(), client.clone(), request.clone());
        glommio::spawn_local(async move {
            let result = client.call(&*request).await;
            let at_ns = run.clock.now_ns();
            let mut shards = run.shards.borrow_mut();
            let stats = &mut shards[index];
            match result {
                Ok(response) => {
                    let mut accepted = 0;
                    for entry in &response.records {
                        match entry.error_code {
                            None => accepted += 1,
                            Some(ErrorKind::ProvisionedThroughputExceeded) => stats.write_throttled += 1,
                            Some(_) => stats.write_errors += 1,
                        }
                    }
                    stats.write_records.push(at_ns, accepted);
                    stats.write_bytes.push(at_ns, accepted * record_bytes);
                }
                Err(_) => stats.write_errors += request.records.len() as u64,
            }
        })
        .detach();
    }
}

/// A GetRecords loop on one shard: one attempt per `interval`, `limit` records per call.
async fn poll_loop(
    run: Rc<Run>,
    client: Conn,
    target: Target,
    index: usize,
    limit: usize,
    interval: Duration,
    offset: Duration,
) {
    let mut iterator = match shard_iterator(&client, &target, ShardIteratorType::TrimHorizon, None).await {
        Ok(iterator) => iterator,
        Err(_) => {
            run.shards.borrow_mut()[index].read_errors += 1;
            return;
        }
    };
    let mut last_sequence: Option<SequenceNumber> = None;
    let mut due = Instant::now() + offset;
    while !run.stop.get() {
        sleep_until(due).await;
        due += interval;
        let request = GetRecordsInput { shard_iterator: iterator.clone(), limit: Some(limit as i32), stream_arn: None };
        let result = client.call(&request).await;
        let at_ns = run.clock.now_ns();
        match result {
            Ok(response) => {
                let bytes: usize = response
                    .records
                    .iter()
                    .map(|r| r.data.len() + r.partition_key.as_ref().map_or(0, String::len))
                    .sum();
                let behind = response.millis_behind_latest.unwrap_or(0) > 0;
                let mut shards = run.shards.borrow_mut();
                let stats = &mut shards[index];
                stats.read_calls.push(at_ns, 1);
                if behind {
                    stats.read_bytes.push(at_ns, bytes as u64);
                }
                drop(shards);
                if let Some(record) = response.records.last() {
                    last_sequence = Some(record.sequence_number.clone());
                }
                match response.next_shard_iterator {
                    Some(next) => iterator = next,
                    None => return,
                }
            }
            Err(error) if error.code() == Some(ErrorKind::ProvisionedThroughputExceeded) => {
                run.shards.borrow_mut()[index].read_throttled += 1;
            }
            Err(error) if error.code() == Some(ErrorKind::ExpiredIterator) => {
                let (kind, at) = match &last_sequence {
                    Some(sequence) => (ShardIteratorType::AfterSequenceNumber, Some(sequence.clone())),
                    None => (ShardIteratorType::TrimHorizon, None),
                };
                match shard_iterator(&client, &target, kind, at).await {
                    Ok(fresh) => iterator = fresh,
                    Err(_) => run.shards.borrow_mut()[index].read_errors += 1,
                }
            }
            Err(_) => run.shards.borrow_mut()[index].read_errors += 1,
        }
    }
}

/// A GetShardIterator call, retried while throttled (5 calls/s per shard).
pub async fn shard_iterator(
    client: &Conn,
    target: &Target,
    kind: ShardIteratorType,
    sequence: Option<SequenceNumber>,
) -> Result<String, ClientError> {
    let request = GetShardIteratorInput {
        stream_name: Some(target.stream.clone()),
        stream_arn: None,
        shard_id: target.shard_id.clone(),
        shard_iterator_type: kind,
        starting_sequence_number: sequence,
        timestamp: None,
    };
    loop {
        match client.call(&request).await {
            Ok(response) => {
                return response.shard_iterator.ok_or_else(|| ClientError::UnexpectedResponse {
                    operation: "GetShardIterator",
                    body: "an answer without a ShardIterator".to_owned(),
                })
            }
            Err(error) if error.code() == Some(ErrorKind::ProvisionedThroughputExceeded) => {
                glommio::timer::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// One enhanced fan-out subscription from the start of the shard, renewed when it ends.
async fn efo_loop(run: Rc<Run>, client: Conn, consumer_arn: ConsumerArn, target: Target, slot: usize) {
    let mut position = StartingPosition::new(ShardIteratorType::TrimHorizon);
    while !run.stop.get() {
        let mut subscription = match client
            .subscribe_to_shard(&subscription_input(&consumer_arn, &target.shard_id, position.clone()))
            .await
        {
            Ok(subscription) => subscription,
            Err(_) => {
                run.efo.borrow_mut()[slot].errors += 1;
                return;
            }
        };
        while let Some(item) = subscription.next().await {
            let Ok(event) = item else {
                run.efo.borrow_mut()[slot].errors += 1;
                return;
            };
            let bytes: usize =
                event.records.iter().map(|r| r.data.len() + r.partition_key.as_ref().map_or(0, String::len)).sum();
            if event.millis_behind_latest > 0 {
                run.efo.borrow_mut()[slot].bytes.push(run.clock.now_ns(), bytes as u64);
            }
            position = StartingPosition {
                r#type: ShardIteratorType::AfterSequenceNumber,
                sequence_number: Some(event.continuation_sequence_number),
                timestamp: None,
            };
        }
    }
}

pub async fn sleep_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        glommio::timer::sleep(due - now).await;
    }
}

/// The human summary.
pub fn table(result: &LimitsResult) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "limits: {} s per phase, first {} s of each not counted, load at {}x each quota",
        result.phase_s, result.warmup_s, result.rate_multiple
    );
    let _ = writeln!(
        out,
        "{:<20} {:<44} {:<14} {:>12} {:>12} {:>7} {:>10} {:>7}",
        "limit", "stream / shard", "consumer", "quota", "measured", "ratio", "throttled", "verdict"
    );
    for v in &result.verdicts {
        let (scale, unit) = match v.limit {
            Limit::WriteBytesPerS | Limit::ReadBytesPerS | Limit::EfoBytesPerS => ((1u64 << 20) as f64, "MiB/s"),
            Limit::WriteRecordsPerS => (1.0, "rec/s"),
            Limit::ReadCallsPerS => (1.0, "calls/s"),
        };
        let verdict = if v.pass {
            "ok"
        } else if !v.within {
            "OFF"
        } else {
            "ERRORS"
        };
        let _ = writeln!(
            out,
            "{:<20} {:<44} {:<14} {:>6.2} {:<5} {:>6.3} {:<5} {:>7.3} {:>10} {:>7}",
            v.limit.name(),
            format!("{} {}", short(&v.stream), v.shard_id),
            v.consumer.as_deref().unwrap_or("-"),
            v.quota / scale,
            unit,
            v.measured / scale,
            unit,
            v.ratio,
            v.throttled,
            verdict
        );
    }
    let _ = writeln!(out, "{}", if result.pass { "all limits hold" } else { "SOME LIMITS DO NOT HOLD" });
    out
}

/// A stream name without the run's unique suffix (`-<seconds>-<pid>`).
pub fn short(stream: &str) -> &str {
    stream.rsplitn(3, '-').last().unwrap_or(stream)
}
