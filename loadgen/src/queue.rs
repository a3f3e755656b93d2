//! The `queue` scenario: Kinesis queues under competing consumers (issue 18's figures).
//!
//! Queues are served over the AWS API only, so this scenario speaks HTTP (`--endpoint` is the
//! daemon's `--http-listen` port) whatever `--protocol` says. Two phases:
//!
//! 1. **Throughput**, for each of `--consumers` (e.g. `1,4,16`): a fresh ON_DEMAND stream is
//!    loaded with `--records` records, a queue starts at TRIM_HORIZON, and that many consumer
//!    tasks each loop ReceiveQueueRecords (10 records, long polling) then
//!    AcknowledgeQueueRecords of what they got, until every record is acknowledged (or
//!    `--duration-s` passes). The figure is records received and acknowledged per second,
//!    from the first receive to the answer of the last acknowledgement (the consumers' last
//!    long polls after it are not counted): every record counted was acknowledged durably.
//! 2. **Redelivery and dead-lettering**: a queue with `--visibility-timeout-s` and
//!    `--max-receive-count`; `--redelivery-consumers` consumers receive
//!    `--redelivery-records` records and leave `--unacked-fraction` of them unacknowledged.
//!    Each unacknowledged record comes back after the timeout: the delay between the answer
//!    that delivered it and the answer that redelivered it is recorded (p50/p99 against the
//!    configured timeout), until it has been received `--max-receive-count` times; then it
//!    must be on the dead-letter side (ReceiveDeadLetterQueueRecords counts them).

use crate::cli::QueueArgs;
use crate::progress::Progress;
use crate::setup::stream_name;
use crate::stats::Latency;
use anyhow::{bail, Context};
use bytes::Bytes;
use serde::Serialize;
use sluice_client::aws::HttpClient;
use sluice_client::{
    AcknowledgeDeadLetterQueueRecordsInput, AcknowledgeQueueRecordsInput, CreateQueueInput, CreateStreamInput,
    DeadLetterConfiguration, DeleteQueueInput, DeleteStreamInput, DescribeStreamSummaryInput, Encoding,
    PutRecordsInput, PutRecordsRequestEntry, QueueAttributes, QueueStartingPosition, QueueStartingPositionType,
    QueueStreamConfiguration, ReceiptHandleEntry, ReceiveDeadLetterQueueRecordsInput, ReceiveQueueRecordsInput,
    StreamArn, StreamMode, StreamModeDetails, StreamStatus, TargetType,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

const DURATION_S_DEFAULT: f64 = 120.0;
/// Records per ReceiveQueueRecords call: the model's maximum.
const RECEIVE_LIMIT: i32 = 10;
/// Long-poll seconds per receive: the model's minimum, so that a consumer notices the end soon.
const WAIT_TIME_S: i32 = 1;
/// Records per PutRecords call while loading a stream.
const LOAD_BATCH_RECORDS: usize = 500;

#[derive(Clone, Debug, Serialize)]
pub struct QueueThroughput {
    pub consumers: usize,
    pub records: u64,
    pub seconds: f64,
    /// Records received and acknowledged per second.
    pub records_per_s: f64,
    /// Receives that came back empty (long polls that found nothing visible).
    pub empty_receives: u64,
    pub receive_p50_ms: f64,
    pub receive_p99_ms: f64,
    pub acknowledge_p50_ms: f64,
    pub acknowledge_p99_ms: f64,
    /// Records delivered more than once (should be 0: the timeout is far above the drain).
    pub redelivered: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Redelivery {
    pub visibility_timeout_s: i32,
    pub max_receive_count: i32,
    pub records: usize,
    pub unacknowledged: usize,
    /// Delay between a delivery and the redelivery of an unacknowledged record.
    pub redeliveries: u64,
    pub delay_p50_ms: f64,
    pub delay_p99_ms: f64,
    pub delay_min_ms: f64,
    pub delay_max_ms: f64,
    /// Unacknowledged records found on the dead-letter side after `max_receive_count`
    /// deliveries (all of them, if dead-lettering works).
    pub dead_lettered: usize,
    pub seconds: f64,
}

#[derive(Serialize)]
pub struct QueueResult {
    pub scenario: &'static str,
    pub endpoint: String,
    pub record_bytes: usize,
    pub throughput: Vec<QueueThroughput>,
    pub redelivery: Option<Redelivery>,
}

pub async fn run(args: QueueArgs) -> anyhow::Result<QueueResult> {
    anyhow::ensure!(
        args.common.route == crate::cli::Route::Any,
        "--route direct is for the put scenarios: queues are served over HTTP, by any node"
    );
    let client = Rc::new(HttpClient::connect(&args.common.endpoint, Encoding::Json).await.with_context(|| {
        format!("connect to {} (the daemon's --http-listen port: queues are served over HTTP)", args.common.endpoint)
    })?);
    let mut throughput = Vec::new();
    for &consumers in &args.consumers {
        throughput.push(drain(&client, &args, consumers).await?);
    }
    let redelivery = if args.redelivery_records > 0 { Some(redelivery(&client, &args).await?) } else { None };
    Ok(QueueResult {
        scenario: "queue",
        endpoint: args.common.endpoint.clone(),
        record_bytes: args.record_bytes,
        throughput,
        redelivery,
    })
}

/// An ON_DEMAND stream holding `records` records, and a queue on it from TRIM_HORIZON.
async fn stream_and_queue(
    client: &HttpClient,
    label: &str,
    records: usize,
    record_bytes: usize,
    attributes: QueueAttributes,
) -> anyhow::Result<(String, String)> {
    let name = stream_name("queue", label);
    let create = CreateStreamInput {
        stream_name: name.clone(),
        stream_mode_details: Some(StreamModeDetails::from(StreamMode::OnDemand)),
        ..Default::default()
    };
    client.call(&create).await.with_context(|| format!("create stream {name}"))?;
    let arn = active_arn(client, &name).await?;
    let data = Bytes::from(vec![b'q'; record_bytes]);
    for start in (0..records).step_by(LOAD_BATCH_RECORDS) {
        let entries = (start..records.min(start + LOAD_BATCH_RECORDS))
            .map(|i| PutRecordsRequestEntry {
                data: data.clone(),
                explicit_hash_key: None,
                partition_key: Some(format!("key-{i}")),
            })
            .collect();
        let put = PutRecordsInput { records: entries, stream_name: Some(name.clone()), stream_arn: None };
        let answer = client.call(&put).await.context("load the stream")?;
        if answer.failed_record_count.unwrap_or(0) > 0 {
            bail!("loading {name}: {} records failed", answer.failed_record_count.unwrap_or(0));
        }
    }
    let queue = CreateQueueInput {
        queue_name: format!("{label}-{}", std::process::id()),
        stream_configuration_list: vec![QueueStreamConfiguration {
            stream_arn: arn,
            starting_position: Some(QueueStartingPosition {
                r#type: QueueStartingPositionType::TrimHorizon,
                timestamp: None,
            }),
        }],
        queue_attributes: Some(attributes),
        tags: None,
    };
    let queue_arn = client.call(&queue).await.context("create the queue")?.queue_description.queue_arn;
    Ok((name, queue_arn))
}

async fn active_arn(client: &HttpClient, name: &str) -> anyhow::Result<StreamArn> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let describe = DescribeStreamSummaryInput { stream_name: Some(name.to_owned()), stream_arn: None };
    loop {
        let summary = client.call(&describe).await?.stream_description_summary;
        if summary.stream_status == StreamStatus::Active {
            return Ok(summary.stream_arn);
        }
        if Instant::now() > deadline {
            bail!("stream {name} is not ACTIVE after 30 s");
        }
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

async fn clean_up(client: &HttpClient, keep: bool, stream: String, queue_arn: String) -> anyhow::Result<()> {
    if keep {
        return Ok(());
    }
    crate::server_metrics::before_clean_up();
    client.call(&DeleteQueueInput { queue_arn }).await.context("delete the queue")?;
    let delete =
        DeleteStreamInput { stream_name: Some(stream), enforce_consumer_deletion: Some(true), stream_arn: None };
    client.call(&delete).await.context("delete the stream")?;
    Ok(())
}

fn receive(queue_arn: &str, visibility_timeout_seconds: Option<i32>) -> ReceiveQueueRecordsInput {
    ReceiveQueueRecordsInput {
        queue_arn: queue_arn.to_owned(),
        limit: Some(RECEIVE_LIMIT),
        wait_time_seconds: Some(WAIT_TIME_S),
        visibility_timeout_seconds,
    }
}

/// Phase 1: `consumers` competing consumers drain a loaded queue.
async fn drain(client: &Rc<HttpClient>, args: &QueueArgs, consumers: usize) -> anyhow::Result<QueueThroughput> {
    let attributes = QueueAttributes { visibility_timeout_seconds: Some(300), dead_letter_configuration: None };
    let (stream, queue_arn) =
        stream_and_queue(client, &format!("drain{consumers}"), args.records, args.record_bytes, attributes).await?;
    let total = args.records as u64;
    let duration = Duration::from_secs_f64(args.common.duration_s(DURATION_S_DEFAULT));
    let acknowledged = Rc::new(Cell::new(0u64));
    let empty = Rc::new(Cell::new(0u64));
    let seen: Rc<RefCell<HashMap<String, u32>>> = Rc::default();
    let receive_latency = Rc::new(RefCell::new(Latency::new()));
    let acknowledge_latency = Rc::new(RefCell::new(Latency::new()));
    let progress = Progress::new(&format!("queue drain, {consumers} consumers"), duration.as_secs_f64());
    // When the last record's acknowledgement was answered: the drain's end. The consumers'
    // last long polls after it (up to WAIT_TIME_S each) are not part of the figure.
    let finished: Rc<Cell<Option<Instant>>> = Rc::default();
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..consumers)
        .map(|_| {
            let (client, queue_arn, finished) = (client.clone(), queue_arn.clone(), finished.clone());
            let (acknowledged, empty, seen) = (acknowledged.clone(), empty.clone(), seen.clone());
            let (receive_latency, acknowledge_latency) = (receive_latency.clone(), acknowledge_latency.clone());
            glommio::spawn_local(async move {
                while acknowledged.get() < total && Instant::now() < deadline {
                    let sent = Instant::now();
                    let records = client.call(&receive(&queue_arn, None)).await?.queue_records;
                    receive_latency.borrow_mut().record_ns(sent.elapsed().as_nanos() as u64);
                    if records.is_empty() {
                        empty.set(empty.get() + 1);
                        continue;
                    }
                    for record in &records {
                        *seen.borrow_mut().entry(record.record_id.clone()).or_default() += 1;
                    }
                    let entries = records
                        .iter()
                        .map(|record| ReceiptHandleEntry { receipt_handle: record.receipt_handle.clone() })
                        .collect();
                    let input = AcknowledgeQueueRecordsInput { queue_arn: queue_arn.clone(), entries };
                    let sent = Instant::now();
                    let answer = client.call(&input).await?;
                    acknowledge_latency.borrow_mut().record_ns(sent.elapsed().as_nanos() as u64);
                    if let Some(failed) = answer.failed.first() {
                        bail!("acknowledge failed: {} {:?}", failed.error_code, failed.error_message);
                    }
                    acknowledged.set(acknowledged.get() + answer.successful.len() as u64);
                    if acknowledged.get() >= total && finished.get().is_none() {
                        finished.set(Some(Instant::now()));
                    }
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    let reporter = {
        let acknowledged = acknowledged.clone();
        glommio::spawn_local(async move {
            while acknowledged.get() < total && Instant::now() < deadline {
                progress.update(format!("{} of {total} acknowledged", acknowledged.get()));
                glommio::timer::sleep(Duration::from_millis(500)).await;
            }
            progress.finish();
        })
    };
    for task in tasks {
        task.await?;
    }
    let seconds = finished.get().unwrap_or_else(Instant::now).duration_since(start).as_secs_f64();
    reporter.await;
    let done = acknowledged.get();
    clean_up(client, args.common.keep_streams, stream, queue_arn).await?;
    if done < total {
        bail!("{consumers} consumers acknowledged {done} of {total} records in {seconds:.1} s: raise --duration-s");
    }
    let redelivered = seen.borrow().values().filter(|&&count| count > 1).count() as u64;
    let (receive, acknowledge) = (receive_latency.borrow(), acknowledge_latency.borrow());
    Ok(QueueThroughput {
        consumers,
        records: done,
        seconds,
        records_per_s: done as f64 / seconds,
        empty_receives: empty.get(),
        receive_p50_ms: receive.quantile_ms(0.5),
        receive_p99_ms: receive.quantile_ms(0.99),
        acknowledge_p50_ms: acknowledge.quantile_ms(0.5),
        acknowledge_p99_ms: acknowledge.quantile_ms(0.99),
        redelivered,
    })
}

/// Phase 2: unacknowledged records come back after the visibility timeout, then go to the
/// dead-letter side.
async fn redelivery(client: &Rc<HttpClient>, args: &QueueArgs) -> anyhow::Result<Redelivery> {
    let (timeout_s, max_receives) = (args.visibility_timeout_s, args.max_receive_count);
    let attributes = QueueAttributes {
        visibility_timeout_seconds: Some(timeout_s),
        dead_letter_configuration: Some(DeadLetterConfiguration {
            target_type: TargetType::BuiltIn,
            max_receive_count: Some(max_receives),
        }),
    };
    let records = args.redelivery_records;
    let (stream, queue_arn) = stream_and_queue(client, "redelivery", records, args.record_bytes, attributes).await?;
    // Every `stride`-th record (by record id order of first delivery) is never acknowledged.
    let stride = (1.0 / args.unacked_fraction.clamp(1e-6, 1.0)).round().max(1.0) as usize;
    // Per record id: when its last delivery's answer arrived, and how many deliveries so far.
    let deliveries: Rc<RefCell<HashMap<String, (Instant, i32)>>> = Rc::default();
    let unacked: Rc<RefCell<std::collections::HashSet<String>>> = Rc::default();
    let acknowledged = Rc::new(Cell::new(0usize));
    let finished = Rc::new(Cell::new(0usize)); // unacknowledged records delivered max_receives times
    let delays = Rc::new(RefCell::new(Latency::new()));
    let first_seen = Rc::new(Cell::new(0usize));
    let expected_unacked = records.div_ceil(stride);
    let start = Instant::now();
    let deadline = start
        + Duration::from_secs_f64(args.common.duration_s(DURATION_S_DEFAULT))
        + Duration::from_secs((timeout_s as u64 + 2) * max_receives as u64);
    let progress = Progress::new("queue redelivery", (deadline - start).as_secs_f64());
    let tasks: Vec<_> = (0..args.redelivery_consumers)
        .map(|_| {
            let (client, queue_arn) = (client.clone(), queue_arn.clone());
            let (deliveries, unacked, delays) = (deliveries.clone(), unacked.clone(), delays.clone());
            let (acknowledged, finished, first_seen) = (acknowledged.clone(), finished.clone(), first_seen.clone());
            glommio::spawn_local(async move {
                let done = || acknowledged.get() + finished.get() >= records;
                while !done() && Instant::now() < deadline {
                    let got = client.call(&receive(&queue_arn, None)).await?.queue_records;
                    let now = Instant::now();
                    let mut to_acknowledge = Vec::new();
                    for record in got {
                        let mut deliveries = deliveries.borrow_mut();
                        let entry = deliveries.entry(record.record_id.clone());
                        match entry {
                            std::collections::hash_map::Entry::Vacant(vacant) => {
                                vacant.insert((now, 1));
                                let ordinal = first_seen.get();
                                first_seen.set(ordinal + 1);
                                if ordinal % stride == 0 {
                                    unacked.borrow_mut().insert(record.record_id.clone());
                                } else {
                                    to_acknowledge.push(ReceiptHandleEntry { receipt_handle: record.receipt_handle });
                                }
                            }
                            std::collections::hash_map::Entry::Occupied(mut occupied) => {
                                let (last, count) = *occupied.get();
                                delays.borrow_mut().record_ns((now - last).as_nanos() as u64);
                                occupied.insert((now, count + 1));
                                if !unacked.borrow().contains(&record.record_id) {
                                    // An acknowledged record delivered again: not expected.
                                    bail!("record {} was delivered again after its acknowledgement", record.record_id);
                                }
                                if count + 1 >= max_receives {
                                    finished.set(finished.get() + 1);
                                }
                            }
                        }
                    }
                    for chunk in to_acknowledge.chunks(RECEIVE_LIMIT as usize) {
                        let input =
                            AcknowledgeQueueRecordsInput { queue_arn: queue_arn.clone(), entries: chunk.to_vec() };
                        let answer = client.call(&input).await?;
                        if let Some(failed) = answer.failed.first() {
                            bail!("acknowledge failed: {} {:?}", failed.error_code, failed.error_message);
                        }
                        acknowledged.set(acknowledged.get() + answer.successful.len());
                    }
                    // Records delivered for the first time only once each: the rest of the
                    // time is waiting for redeliveries.
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    let reporter = {
        let (acknowledged, finished) = (acknowledged.clone(), finished.clone());
        glommio::spawn_local(async move {
            while acknowledged.get() + finished.get() < records && Instant::now() < deadline {
                progress.update(format!(
                    "{} acknowledged, {} of {expected_unacked} unacknowledged received {max_receives} times",
                    acknowledged.get(),
                    finished.get()
                ));
                glommio::timer::sleep(Duration::from_millis(500)).await;
            }
            progress.finish();
        })
    };
    for task in tasks {
        task.await?;
    }
    reporter.await;
    let unacknowledged = unacked.borrow().len();
    if acknowledged.get() + finished.get() < records {
        bail!(
            "redelivery: {} acknowledged and {} of {unacknowledged} unacknowledged records received {max_receives} times before the deadline",
            acknowledged.get(),
            finished.get()
        );
    }
    // The last delivery was the max_receives-th: the next time the timeout passes, the record
    // goes to the dead-letter side.
    let dead_letter_deadline = Instant::now() + Duration::from_secs(timeout_s as u64 + 30);
    let mut dead = std::collections::HashSet::new();
    while dead.len() < unacknowledged && Instant::now() < dead_letter_deadline {
        let input = ReceiveDeadLetterQueueRecordsInput {
            queue_arn: queue_arn.clone(),
            limit: Some(RECEIVE_LIMIT),
            wait_time_seconds: Some(WAIT_TIME_S),
            visibility_timeout_seconds: None,
        };
        let got = client.call(&input).await?.queue_records;
        let entries: Vec<_> =
            got.iter().map(|record| ReceiptHandleEntry { receipt_handle: record.receipt_handle.clone() }).collect();
        for record in got {
            dead.insert(record.record_id);
        }
        if !entries.is_empty() {
            client.call(&AcknowledgeDeadLetterQueueRecordsInput { queue_arn: queue_arn.clone(), entries }).await?;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    clean_up(client, args.common.keep_streams, stream, queue_arn).await?;
    let delays = delays.borrow();
    Ok(Redelivery {
        visibility_timeout_s: timeout_s,
        max_receive_count: max_receives,
        records,
        unacknowledged,
        redeliveries: delays.count(),
        delay_p50_ms: delays.quantile_ms(0.5),
        delay_p99_ms: delays.quantile_ms(0.99),
        delay_min_ms: delays.quantile_ms(0.0),
        delay_max_ms: delays.max_ms(),
        dead_lettered: dead.len(),
        seconds,
    })
}

pub fn table(result: &QueueResult) -> String {
    let mut out = String::new();
    out.push_str(&format!("queue: {} ({} B records)\n", result.endpoint, result.record_bytes));
    out.push_str("consumers  records  seconds  records/s  receive p50/p99 ms  ack p50/p99 ms  redelivered\n");
    for t in &result.throughput {
        out.push_str(&format!(
            "{:>9}  {:>7}  {:>7.2}  {:>9.0}  {:>8.1} / {:<8.1}  {:>6.1} / {:<6.1}  {:>11}\n",
            t.consumers,
            t.records,
            t.seconds,
            t.records_per_s,
            t.receive_p50_ms,
            t.receive_p99_ms,
            t.acknowledge_p50_ms,
            t.acknowledge_p99_ms,
            t.redelivered
        ));
    }
    if let Some(r) = &result.redelivery {
        out.push_str(&format!(
            "redelivery: timeout {} s, {} of {} records unacknowledged, {} redeliveries: delay p50 {:.0} ms, p99 {:.0} ms (min {:.0}, max {:.0}); {} of {} dead-lettered after {} receives\n",
            r.visibility_timeout_s,
            r.unacknowledged,
            r.records,
            r.redeliveries,
            r.delay_p50_ms,
            r.delay_p99_ms,
            r.delay_min_ms,
            r.delay_max_ms,
            r.dead_lettered,
            r.unacknowledged,
            r.max_receive_count
        ));
    }
    out
}
