//! The `latency` scenario: how long after a producer meant to send a record it is
//! acknowledged (durable), and how long until each kind of consumer has it.
//!
//! - **Producers** run open-loop: each shard gets a PutRecords call of `--batch-records`
//!   records every `batch / rate` seconds on a fixed schedule, whether or not earlier calls
//!   were answered. Each record carries its call's *intended* send time (`payload`), and
//!   every latency is measured from it, so a stall of the producer, the connection or the
//!   server is charged to every record it delayed: the coordinated-omission correction.
//! - **Polling consumers** (`--polling-consumers` per shard) each run a GetRecords loop at a
//!   fixed interval that keeps the shard within its 5 calls/s (200 ms × the polling
//!   consumers), as the Kinesis Client Library does with its idle time between reads.
//! - **Enhanced fan-out consumers** (`--efo-consumers`) each subscribe to every shard.
//!
//! Records intended before `--warmup-s` are not counted. After `--duration-s` the producers
//! stop and the consumers get a drain period to receive the rest; anything still missing is
//! reported.

use crate::cli::LatencyArgs;
use crate::conn::{subscription_input, Conn};
use crate::limits::{shard_iterator, sleep_until};
use crate::payload::{self, Clock};
use crate::plot::{self, Curve, Reference};
use crate::progress::{self, Progress};
use crate::setup::{self, Target, PARTITION_KEY};
use crate::stats::{Latency, Summary};
use anyhow::Context;
use bytes::Bytes;
use plotters::style::RGBColor;
use serde::Serialize;
use sluice_client::{
    ConsumerArn, ErrorKind, GetRecordsInput, PutRecordsInput, PutRecordsRequestEntry, Record, ShardIteratorType,
    StartingPosition, StreamArn,
};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

const DURATION_S_DEFAULT: f64 = 30.0;
const WARMUP_S_DEFAULT: f64 = 2.0;

/// Kinesis GetRecords calls per second per shard, shared by its polling consumers.
const GET_RECORDS_CALLS_PER_S: f64 = 5.0;

/// Records one GetRecords call may return (the Kinesis maximum).
const GET_RECORDS_LIMIT: i32 = 10_000;

/// How long consumers get after the producers stop, on top of three polling intervals.
const DRAIN_S: f64 = 2.0;

/// AWS's published figures, drawn on the plot for comparison: a record is typically delivered
/// to a polling consumer in about 200 ms with one consumer per shard and about 1 s with five,
/// and to an enhanced fan-out consumer in about 70 ms.
pub const AWS_POLLING_1_MS: f64 = 200.0;
pub const AWS_POLLING_5_MS: f64 = 1_000.0;
pub const AWS_EFO_MS: f64 = 70.0;

const PUT_COLOR: RGBColor = RGBColor(110, 110, 110);
const POLLING_COLOR: RGBColor = RGBColor(214, 39, 40);
const EFO_COLOR: RGBColor = RGBColor(31, 119, 180);

struct Run {
    clock: Clock,
    /// Records intended in `[measure_from_ns, measure_until_ns)` are counted.
    measure_from_ns: Cell<u64>,
    measure_until_ns: Cell<u64>,
    producing: Cell<bool>,
    put_ack: RefCell<Latency>,
    polling: RefCell<Latency>,
    efo: RefCell<Latency>,
    sent: Cell<u64>,
    acked: Cell<u64>,
    acked_counted: Cell<u64>,
    put_throttled: Cell<u64>,
    put_errors: Cell<u64>,
    get_throttled: Cell<u64>,
    read_errors: Cell<u64>,
}

impl Run {
    fn counted(&self, send_ns: u64) -> bool {
        send_ns >= self.measure_from_ns.get() && send_ns < self.measure_until_ns.get()
    }

    /// Records the delivery of `records` at `now_ns` into `histogram`.
    fn delivered(&self, histogram: &RefCell<Latency>, records: &[Record]) {
        let now_ns = self.clock.now_ns();
        let mut histogram = histogram.borrow_mut();
        for record in records {
            if let Some(send_ns) = payload::decode(&record.data) {
                if self.counted(send_ns) {
                    histogram.record_ns(now_ns.saturating_sub(send_ns));
                }
            }
        }
    }
}

/// Deliveries of one consumer kind: what should have arrived and what did.
#[derive(Serialize)]
pub struct Deliveries {
    pub kind: &'static str,
    pub consumers: usize,
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
}

#[derive(Serialize)]
pub struct LatencyConfig {
    pub streams: usize,
    pub shards_per_stream: usize,
    pub producers: usize,
    pub polling_consumers: usize,
    pub efo_consumers: usize,
    pub record_bytes: usize,
    pub rate_records_per_s_per_shard: f64,
    pub batch_records: usize,
    pub poll_interval_ms: u64,
    pub duration_s: f64,
    pub warmup_s: f64,
}

#[derive(Serialize)]
pub struct LatencyJson {
    pub scenario: &'static str,
    pub endpoint: String,
    /// `--route`: `any` (through the node given) or `direct` (to each shard's leader).
    pub route: &'static str,
    pub config: LatencyConfig,
    /// Put-to-delivery latency, one entry per consumer kind present ("polling", "efo").
    pub latency: Vec<Summary>,
    /// Put-to-acknowledgement latency (durable), from the intended send time.
    pub put_ack: Summary,
    pub deliveries: Vec<Deliveries>,
    pub records_sent: u64,
    pub records_acked: u64,
    pub put_throttled: u64,
    pub put_errors: u64,
    pub get_records_throttled: u64,
    pub read_errors: u64,
    /// AWS's published typical delivery latencies, for comparison.
    pub aws_reference_ms: AwsReference,
}

#[derive(Serialize)]
pub struct AwsReference {
    pub polling_1_consumer: f64,
    pub polling_5_consumers: f64,
    pub efo: f64,
}

pub struct LatencyResult {
    pub json: LatencyJson,
    pub put_ack: Latency,
    pub polling: Latency,
    pub efo: Latency,
    /// Prefix of the output files: the JSON file's stem, or "latency".
    pub name: String,
}

pub async fn run(args: LatencyArgs) -> anyhow::Result<LatencyResult> {
    let common = &args.common;
    let duration_s = common.duration_s(DURATION_S_DEFAULT);
    let warmup_s = common.warmup_s(WARMUP_S_DEFAULT);
    anyhow::ensure!(warmup_s < duration_s, "--warmup-s must be shorter than --duration-s");
    anyhow::ensure!(args.rate > 0.0 && args.batch_records >= 1, "--rate and --batch-records must be positive");
    let polling_n = args.polling_consumers;
    let poll_interval_ms = args
        .poll_interval_ms
        .unwrap_or_else(|| (polling_n.max(1) as f64 * 1_000.0 / GET_RECORDS_CALLS_PER_S) as u64)
        .max(1);
    let control = setup::connect(common).await?;
    let targets = setup::create_streams(&control, "latency", "s", args.streams, args.shards).await?;
    let mut efo_arns = Vec::new();
    for index in 0..args.efo_consumers {
        let name = format!("loadgen-efo-{index}");
        let mut arns = Vec::new();
        for target in &targets {
            if arns.iter().all(|(stream_arn, _): &(StreamArn, ConsumerArn)| stream_arn != &target.stream_arn) {
                let arn = setup::register_consumer(&control, &target.stream_arn, &name).await?;
                arns.push((target.stream_arn.clone(), arn));
            }
        }
        efo_arns.push(arns);
    }

    let clock = Clock::start();
    // Producers start shortly after the consumers are in place.
    let mut consumer_tasks = Vec::new();
    let run = Rc::new(Run {
        clock,
        measure_from_ns: Cell::new(u64::MAX),
        measure_until_ns: Cell::new(u64::MAX),
        producing: Cell::new(true),
        put_ack: RefCell::new(Latency::new()),
        polling: RefCell::new(Latency::new()),
        efo: RefCell::new(Latency::new()),
        sent: Cell::new(0),
        acked: Cell::new(0),
        acked_counted: Cell::new(0),
        put_throttled: Cell::new(0),
        put_errors: Cell::new(0),
        get_throttled: Cell::new(0),
        read_errors: Cell::new(0),
    });
    for arns in &efo_arns {
        for target in &targets {
            let arn = arns.iter().find(|(stream_arn, _)| stream_arn == &target.stream_arn).map(|(_, a)| a.clone());
            let arn = arn.context("a consumer per stream")?;
            // Each subscription gets its own connection (see Client::subscribe_to_shard).
            let client = setup::connect(common).await?;
            let mut subscription = client
                .subscribe_to_shard(&subscription_input(
                    &arn,
                    &target.shard_id,
                    StartingPosition::new(ShardIteratorType::TrimHorizon),
                ))
                .await
                .with_context(|| format!("subscribe to {}", target.shard_id))?;
            let (run, target) = (run.clone(), target.clone());
            consumer_tasks.push(glommio::spawn_local(async move {
                let mut position = None;
                loop {
                    while let Some(item) = subscription.next().await {
                        let Ok(event) = item else {
                            run.read_errors.set(run.read_errors.get() + 1);
                            return;
                        };
                        run.delivered(&run.efo, &event.records);
                        position = Some(event.continuation_sequence_number);
                    }
                    // The subscription's 5 minutes are over: renew it where it ended.
                    let start = StartingPosition {
                        r#type: ShardIteratorType::AfterSequenceNumber,
                        sequence_number: position.clone(),
                        timestamp: None,
                    };
                    match client.subscribe_to_shard(&subscription_input(&arn, &target.shard_id, start)).await {
                        Ok(renewed) => subscription = renewed,
                        Err(_) => {
                            run.read_errors.set(run.read_errors.get() + 1);
                            return;
                        }
                    }
                }
            }));
        }
    }
    let interval = Duration::from_millis(poll_interval_ms);
    for _ in 0..polling_n {
        let client = setup::connect(common).await?;
        for target in &targets {
            let iterator = shard_iterator(&client, target, ShardIteratorType::TrimHorizon, None).await?;
            let phase = interval.mul_f64(rand::random::<f64>());
            consumer_tasks.push(glommio::spawn_local(poll_loop(
                run.clone(),
                client.clone(),
                iterator,
                interval,
                phase,
            )));
        }
    }

    // Producers: every shard on a fixed schedule, phases spread evenly over one interval.
    let mut producers = Vec::new();
    for _ in 0..args.producers.max(1) {
        producers.push(setup::connect(common).await?);
    }
    let start_ns = run.clock.now_ns() + 100_000_000;
    run.measure_from_ns.set(start_ns + (warmup_s * 1e9) as u64);
    let call_interval_ns = (args.batch_records as f64 * 1e9 / args.rate) as u64;
    let end_ns = start_ns + (duration_s * 1e9) as u64;
    let mut producer_tasks = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let first_ns = start_ns + call_interval_ns * index as u64 / targets.len() as u64;
        producer_tasks.push(glommio::spawn_local(produce(
            run.clone(),
            producers[index % producers.len()].clone(),
            target.clone(),
            args.record_bytes,
            args.batch_records,
            first_ns,
            call_interval_ns,
            end_ns,
        )));
    }

    let progress = Progress::new("latency", duration_s + 0.1);
    let message = || {
        format!(
            "sent {} acked {} | polling p50 {:.1} ms p99 {:.1} ms | efo p50 {:.1} ms p99 {:.1} ms",
            run.sent.get(),
            run.acked.get(),
            run.polling.borrow().quantile_ms(0.5),
            run.polling.borrow().quantile_ms(0.99),
            run.efo.borrow().quantile_ms(0.5),
            run.efo.borrow().quantile_ms(0.99),
        )
    };
    progress::run_until(&progress, run.clock.instant_at(end_ns), &message).await;
    run.measure_until_ns.set(end_ns);
    run.producing.set(false);
    for task in producer_tasks {
        task.await;
    }
    // Drain: wait for the acknowledgements, then for the consumers to catch up.
    let drain_until = Instant::now() + Duration::from_secs_f64(DRAIN_S) + 3 * interval;
    let expected = |consumers: usize| run.acked_counted.get() * consumers as u64;
    let consumers_per_shard_efo = args.efo_consumers;
    while Instant::now() < drain_until
        && (run.polling.borrow().count() < expected(polling_n)
            || run.efo.borrow().count() < expected(consumers_per_shard_efo))
    {
        progress.update(message());
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    progress.finish();
    drop(consumer_tasks);
    setup::delete_streams(&control, &targets, common.keep_streams).await?;

    let deliveries = |kind, consumers: usize, latency: &Latency| Deliveries {
        kind,
        consumers,
        expected: expected_count(run.acked_counted.get(), consumers),
        delivered: latency.count(),
        missing: expected_count(run.acked_counted.get(), consumers).saturating_sub(latency.count()),
    };
    let (put_ack, polling, efo) =
        (run.put_ack.borrow().clone(), run.polling.borrow().clone(), run.efo.borrow().clone());
    let mut latency = Vec::new();
    let mut delivered = Vec::new();
    if polling_n > 0 {
        latency.push(polling.summary("polling"));
        delivered.push(deliveries("polling", polling_n, &polling));
    }
    if args.efo_consumers > 0 {
        latency.push(efo.summary("efo"));
        delivered.push(deliveries("efo", args.efo_consumers, &efo));
    }
    let json = LatencyJson {
        scenario: "latency",
        endpoint: common.endpoint.clone(),
        route: common.route.as_str(),
        config: LatencyConfig {
            streams: args.streams,
            shards_per_stream: args.shards,
            producers: args.producers,
            polling_consumers: polling_n,
            efo_consumers: args.efo_consumers,
            record_bytes: args.record_bytes.max(payload::HEADER_BYTES),
            rate_records_per_s_per_shard: args.rate,
            batch_records: args.batch_records,
            poll_interval_ms,
            duration_s,
            warmup_s,
        },
        latency,
        put_ack: put_ack.summary("put_ack"),
        deliveries: delivered,
        records_sent: run.sent.get(),
        records_acked: run.acked.get(),
        put_throttled: run.put_throttled.get(),
        put_errors: run.put_errors.get(),
        get_records_throttled: run.get_throttled.get(),
        read_errors: run.read_errors.get(),
        aws_reference_ms: AwsReference {
            polling_1_consumer: AWS_POLLING_1_MS,
            polling_5_consumers: AWS_POLLING_5_MS,
            efo: AWS_EFO_MS,
        },
    };
    let name = common
        .json
        .as_deref()
        .and_then(Path::file_stem)
        .map_or_else(|| "latency".to_owned(), |stem| stem.to_string_lossy().into_owned());
    Ok(LatencyResult { json, put_ack, polling, efo, name })
}

fn expected_count(acked: u64, consumers: usize) -> u64 {
    acked * consumers as u64
}

/// The schedule of one shard: a call every `interval_ns` from `first_ns` until `end_ns`,
/// each spawned on time whatever became of the previous ones (open loop).
#[expect(clippy::too_many_arguments, reason = "one producer's whole configuration; a struct would only rename it")]
async fn produce(
    run: Rc<Run>,
    client: Conn,
    target: Target,
    record_bytes: usize,
    batch_records: usize,
    first_ns: u64,
    interval_ns: u64,
    end_ns: u64,
) {
    let mut calls = Vec::new();
    let mut due_ns = first_ns;
    while due_ns < end_ns && run.producing.get() {
        sleep_until(run.clock.instant_at(due_ns)).await;
        let data = Bytes::from(payload::encode(due_ns, record_bytes));
        let records = (0..batch_records)
            .map(|_| PutRecordsRequestEntry {
                data: data.clone(),
                partition_key: Some(PARTITION_KEY.to_owned()),
                explicit_hash_key: Some(target.hash_key),
            })
            .collect();
        let request = PutRecordsInput { stream_name: Some(target.stream.clone()), stream_arn: None, records };
        run.sent.set(run.sent.get() + batch_records as u64);
        let (run, client, intended_ns) = (run.clone(), client.clone(), due_ns);
        calls.push(glommio::spawn_local(async move {
            let result = client.call(&request).await;
            let latency_ns = run.clock.now_ns().saturating_sub(intended_ns);
            match result {
                Ok(response) => {
                    for entry in &response.records {
                        match entry.error_code {
                            None => {
                                run.acked.set(run.acked.get() + 1);
                                if run.counted(intended_ns) {
                                    run.acked_counted.set(run.acked_counted.get() + 1);
                                    run.put_ack.borrow_mut().record_ns(latency_ns);
                                }
                            }
                            Some(ErrorKind::ProvisionedThroughputExceeded) => {
                                run.put_throttled.set(run.put_throttled.get() + 1)
                            }
                            Some(_) => run.put_errors.set(run.put_errors.get() + 1),
                        }
                    }
                }
                Err(_) => run.put_errors.set(run.put_errors.get() + request.records.len() as u64),
            }
        }));
        due_ns += interval_ns;
    }
    for call in calls {
        call.await;
    }
}

/// A polling consumer of one shard: GetRecords every `interval`, whatever it returned.
async fn poll_loop(run: Rc<Run>, client: Conn, mut iterator: String, interval: Duration, phase: Duration) {
    let mut due = Instant::now() + phase;
    loop {
        sleep_until(due).await;
        due += interval;
        let request =
            GetRecordsInput { shard_iterator: iterator.clone(), limit: Some(GET_RECORDS_LIMIT), stream_arn: None };
        match client.call(&request).await {
            Ok(response) => {
                run.delivered(&run.polling, &response.records);
                match response.next_shard_iterator {
                    Some(next) => iterator = next,
                    None => return,
                }
            }
            Err(error) if error.code() == Some(ErrorKind::ProvisionedThroughputExceeded) => {
                run.get_throttled.set(run.get_throttled.get() + 1);
            }
            Err(_) => {
                run.read_errors.set(run.read_errors.get() + 1);
                return;
            }
        }
        // A consumer that fell behind by more than an interval does not try to catch up with
        // a burst of calls: the shard's quota is 5 calls/s.
        let now = Instant::now();
        if due < now {
            due = now;
        }
    }
}

/// Writes the `.hgrm` files and the plot; returns their paths.
pub fn write_outputs(result: &LatencyResult, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut files = Vec::new();
    let config = &result.json.config;
    let mut write = |kind: &str, latency: &Latency| -> anyhow::Result<()> {
        if latency.count() > 0 {
            let path = dir.join(format!("{}.{kind}.hgrm", result.name));
            std::fs::write(&path, latency.hgrm()).with_context(|| format!("write {}", path.display()))?;
            files.push(path);
        }
        Ok(())
    };
    write("put_ack", &result.put_ack)?;
    write("polling", &result.polling)?;
    write("efo", &result.efo)?;

    let mut curves =
        vec![Curve { label: "put → acknowledged (durable)".into(), latency: &result.put_ack, color: PUT_COLOR }];
    if config.polling_consumers > 0 {
        let label = format!(
            "put → polling consumer ({} per shard, every {} ms)",
            config.polling_consumers, config.poll_interval_ms
        );
        curves.push(Curve { label, latency: &result.polling, color: POLLING_COLOR });
    }
    if config.efo_consumers > 0 {
        let label =
            format!("put → enhanced fan-out ({} consumer{})", config.efo_consumers, plural(config.efo_consumers));
        curves.push(Curve { label, latency: &result.efo, color: EFO_COLOR });
    }
    curves.retain(|curve| curve.latency.count() > 0);
    let references = [
        Reference {
            label: "AWS polling, 1 consumer: ~200 ms".into(),
            ms: AWS_POLLING_1_MS,
            color: RGBColor(240, 150, 150),
        },
        Reference {
            label: "AWS polling, 5 consumers: ~1 s".into(),
            ms: AWS_POLLING_5_MS,
            color: RGBColor(250, 190, 120),
        },
        Reference { label: "AWS enhanced fan-out: ~70 ms".into(), ms: AWS_EFO_MS, color: RGBColor(110, 170, 220) },
    ];
    let title = format!(
        "Sluice latency: {} shard{} at {} records/s each, {} B records",
        config.streams * config.shards_per_stream,
        plural(config.streams * config.shards_per_stream),
        config.rate_records_per_s_per_shard,
        config.record_bytes
    );
    let path = dir.join(format!("{}.svg", result.name));
    plot::percentile_plot(&path, &title, &curves, &references)?;
    files.push(path);
    Ok(files)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The human summary.
pub fn table(result: &LatencyResult) -> String {
    use std::fmt::Write as _;
    let json = &result.json;
    let config = &json.config;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "latency: {} shard(s) at {} records/s each ({} B, {} per call, open loop), {} polling consumer(s) per shard every {} ms, {} enhanced fan-out consumer(s); {} s, first {} s not counted",
        config.streams * config.shards_per_stream,
        config.rate_records_per_s_per_shard,
        config.record_bytes,
        config.batch_records,
        config.polling_consumers,
        config.poll_interval_ms,
        config.efo_consumers,
        config.duration_s,
        config.warmup_s
    );
    let _ = writeln!(
        out,
        "{:<10} {:>9} {:>10} {:>10} {:>10} {:>10} {:>9} {:>10}",
        "kind", "count", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "missing", "AWS ~ms"
    );
    let mut row = |summary: &Summary, missing: Option<u64>, aws: Option<f64>| {
        let _ = writeln!(
            out,
            "{:<10} {:>9} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>9} {:>10}",
            summary.kind,
            summary.count,
            summary.p50_ms,
            summary.p99_ms,
            summary.p999_ms,
            summary.max_ms,
            missing.map_or("-".to_owned(), |m| m.to_string()),
            aws.map_or("-".to_owned(), |ms| format!("{ms:.0}"))
        );
    };
    row(&json.put_ack, None, None);
    for (summary, deliveries) in json.latency.iter().zip(&json.deliveries) {
        let aws = match summary.kind.as_str() {
            "efo" => AWS_EFO_MS,
            _ if config.polling_consumers >= 5 => AWS_POLLING_5_MS,
            _ => AWS_POLLING_1_MS,
        };
        row(summary, Some(deliveries.missing), Some(aws));
    }
    let _ = writeln!(
        out,
        "records sent {} acked {}; put throttled {} errors {}; GetRecords throttled {}; read errors {}",
        json.records_sent,
        json.records_acked,
        json.put_throttled,
        json.put_errors,
        json.get_records_throttled,
        json.read_errors
    );
    out
}
