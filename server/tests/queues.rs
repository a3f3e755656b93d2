//! Kinesis queues across SIGKILL: competing consumers receive and acknowledge (about half of
//! what they receive, so the rest is redelivered after a 1 s visibility timeout) while the
//! daemon is killed at a random moment, again and again. Checks, over every cycle:
//! - no record whose acknowledgement was answered Successful is ever received again;
//! - no record is lost: once the last daemon drains the queue, every record put was
//!   acknowledged (or its acknowledgement was in flight at a kill, applied but unanswered);
//! - the queue's tags survive too.
//!
//! The daemon snapshots its delivery-state log every 25 entries and trims the log before each
//! snapshot (`[limit-overrides]`), so kills also land while snapshot parts are written and
//! restarts replay from a snapshot of a trimmed log; the metrics show that snapshots were
//! written and that the log stayed short.
//!
//! A second test kills the daemon between a trim of that log and the retention pass that would
//! record it: the restart trims again.
//!
//! The boto3 suite (`tests/aws/test_queues.py`) covers the operations one by one.

mod common;

use common::{Daemon, Rng};
use sluice_client::aws::HttpClient;
use sluice_client::*;
use sluice_protocol::aws::Encoding;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const STREAM: &str = "queued";
const RECORDS: usize = 800;
const CYCLES: u64 = 10;
const CONSUMERS: usize = 3;
/// A snapshot every this many delivery-state entries: several per cycle.
const SNAPSHOT_INTERVAL_ENTRIES: u64 = 25;

/// What every cycle's consumers saw, kept outside the daemon and the executors.
#[derive(Default)]
struct Seen {
    /// Record ids whose acknowledgement was answered Successful.
    acknowledged: BTreeSet<String>,
    /// Receives that returned a record already acknowledged.
    violations: Vec<String>,
    /// Record ids whose acknowledgement was sent but never answered (the daemon was killed
    /// meanwhile): it may or may not have been applied, so these may never come again.
    unanswered: BTreeSet<String>,
    receives: usize,
    /// Calls that logged at least one entry (receives that delivered, answered
    /// acknowledgements): a lower bound of the log's length without trims.
    logged_calls: usize,
}

fn queue_arn_of(description: &QueueDescriptionOutput) -> String {
    description.queue_description.queue_arn.clone()
}

/// Creates the ON_DEMAND stream [`STREAM`] (queues need one) and queue `name` on it, delivering
/// from its trim horizon; the queue's ARN.
async fn stream_and_queue(client: &HttpClient, name: &str, tags: Option<TagMap>) -> String {
    let create = CreateStreamInput {
        stream_name: STREAM.into(),
        stream_mode_details: Some(StreamModeDetails { stream_mode: StreamMode::OnDemand }),
        ..Default::default()
    };
    client.call(&create).await.unwrap();
    let stream_arn = Identity::default().stream_arn(STREAM);
    let create = common::queue_from_trim_horizon(name, &stream_arn, 1, tags);
    queue_arn_of(&client.call(&create).await.unwrap())
}

/// One consumer: receive, acknowledge a pseudo-random half, until the daemon goes away (any
/// transport error) or, if `drain`, until two receives in a row find nothing.
async fn consume(client: std::rc::Rc<HttpClient>, queue: String, seen: Arc<Mutex<Seen>>, seed: u64, drain: bool) {
    let mut rng = Rng(seed | 1);
    let mut empty_in_a_row = 0;
    loop {
        let receive = ReceiveQueueRecordsInput {
            queue_arn: queue.clone(),
            limit: Some(10),
            wait_time_seconds: Some(if drain { 2 } else { 1 }),
            visibility_timeout_seconds: None,
        };
        let records = match client.call(&receive).await {
            Ok(output) => output.queue_records,
            Err(ClientError::Service(error)) => panic!("a receive failed: {error}"),
            Err(_) => return,
        };
        {
            let mut seen = seen.lock().unwrap();
            seen.receives += 1;
            seen.logged_calls += usize::from(!records.is_empty());
            for record in &records {
                if seen.acknowledged.contains(&record.record_id) {
                    seen.violations.push(record.record_id.clone());
                }
            }
        }
        if records.is_empty() {
            empty_in_a_row += 1;
            if drain && empty_in_a_row >= 2 {
                return;
            }
            continue;
        }
        empty_in_a_row = 0;
        let chosen: Vec<&QueueRecord> = records.iter().filter(|_| drain || rng.next().is_multiple_of(2)).collect();
        if chosen.is_empty() {
            continue;
        }
        let acknowledge = AcknowledgeQueueRecordsInput {
            queue_arn: queue.clone(),
            entries: chosen
                .iter()
                .map(|record| ReceiptHandleEntry { receipt_handle: record.receipt_handle.clone() })
                .collect(),
        };
        match client.call(&acknowledge).await {
            Ok(output) => {
                let mut seen = seen.lock().unwrap();
                seen.logged_calls += 1;
                for entry in &output.successful {
                    let record = chosen.iter().find(|record| record.receipt_handle == entry.receipt_handle).unwrap();
                    seen.acknowledged.insert(record.record_id.clone());
                }
                // A handle whose visibility timeout ended meanwhile may be refused as stale:
                // that record comes again. Nothing else may fail.
                for failed in &output.failed {
                    assert_eq!(failed.error_code, "InvalidArgumentException", "{failed:?}");
                }
            }
            Err(ClientError::Service(error)) => panic!("an acknowledgement failed: {error}"),
            Err(_) => {
                seen.lock().unwrap().unanswered.extend(chosen.iter().map(|record| record.record_id.clone()));
                return;
            }
        }
    }
}

/// Runs `CONSUMERS` consumers on their own thread and executor.
fn consumers(
    daemon: &Daemon,
    queue: &str,
    seen: &Arc<Mutex<Seen>>,
    seed: u64,
    drain: bool,
) -> std::thread::JoinHandle<()> {
    let (endpoint, queue, seen) = (daemon.http_addr.to_string(), queue.to_owned(), seen.clone());
    std::thread::spawn(move || {
        common::run(move || async move {
            let client = HttpClient::connect(&endpoint, Encoding::Json).await.unwrap();
            let tasks: Vec<_> = (0..CONSUMERS)
                .map(|n| {
                    let seed = seed.wrapping_mul(31).wrapping_add(n as u64 + 1);
                    glommio::spawn_local(consume(client.clone(), queue.clone(), seen.clone(), seed, drain))
                })
                .collect();
            for task in tasks {
                task.await;
            }
        })
    })
}

#[test]
fn sigkill_during_receive_and_acknowledge_neither_redelivers_acknowledged_records_nor_loses_any() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = dir.path().join("sluiced.toml");
    let overrides = format!(
        "[limit-overrides]\ndelivery-snapshot-interval-entries = {SNAPSHOT_INTERVAL_ENTRIES}\n\
         segment-bytes-max = 65536\nretention-interval-ms = 100\n"
    );
    std::fs::write(&config, overrides).unwrap();
    let mut daemon = Daemon::start_with("unlimited", 2, &["--config", config.to_str().unwrap()]);
    let endpoint = daemon.http_addr.to_string();
    let sent = Arc::new(Mutex::new(BTreeSet::new()));
    let queue = Arc::new(Mutex::new(String::new()));
    let (sent_run, queue_run) = (sent.clone(), queue.clone());
    common::run(move || async move {
        let client = HttpClient::connect(&endpoint, Encoding::Json).await.unwrap();
        let tags = [("suite".to_owned(), "crash".to_owned())].into();
        *queue_run.lock().unwrap() = stream_and_queue(&client, "work", Some(tags)).await;
        let stream_arn = Identity::default().stream_arn(STREAM);
        for batch in 0..RECORDS / 100 {
            let put = PutRecordsInput {
                records: (0..100)
                    .map(|i| PutRecordsRequestEntry {
                        data: bytes::Bytes::from(format!("record {batch}-{i}")),
                        partition_key: Some(format!("key-{batch}-{i}")),
                        ..Default::default()
                    })
                    .collect(),
                stream_arn: Some(stream_arn.clone()),
                ..Default::default()
            };
            let output = client.call(&put).await.unwrap();
            assert_eq!(output.failed_record_count, Some(0));
            let mut sent = sent_run.lock().unwrap();
            sent.extend(output.records.iter().map(|r| r.sequence_number.as_ref().unwrap().to_string()));
        }
    });
    let queue = queue.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), RECORDS);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut rng = Rng(0x5eed_0018);
    for cycle in 0..CYCLES {
        let running = consumers(&daemon, &queue, &seen, cycle, false);
        // Kill at a random moment of the receive/acknowledge traffic: once this cycle's
        // consumers have made a few calls, a random while later.
        let (start, calls) = (seen.lock().unwrap().receives, 2 + rng.next() % 6);
        let started = std::time::Instant::now();
        while seen.lock().unwrap().receives < start + calls as usize {
            assert!(started.elapsed() < Duration::from_secs(60), "the consumers make no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.next() % 150));
        daemon.kill();
        running.join().unwrap();
        daemon.restart();
    }
    let before_drain = seen.lock().unwrap().acknowledged.len();
    consumers(&daemon, &queue, &seen, CYCLES, true).join().unwrap();
    // The last daemon snapshotted its log during the drain, and the log stayed far shorter
    // than what was written to it.
    let snapshots = common::scrape(daemon.metrics_addr, "sluice_delivery_snapshots_total");
    let log_entries = common::scrape(daemon.metrics_addr, "sluice_delivery_log_entries");
    let endpoint = daemon.http_addr.to_string();
    let queue_arn = queue.clone();
    common::run(move || async move {
        let client = HttpClient::connect(&endpoint, Encoding::Json).await.unwrap();
        let tags = client.call(&ListTagsForResourceInput { resource_arn: queue_arn.into() }).await.unwrap().tags;
        assert_eq!(tags, vec![Tag { key: "suite".into(), value: Some("crash".into()) }]);
    });
    let seen = seen.lock().unwrap();
    assert!(snapshots >= 1.0, "no snapshot during the drain");
    assert!(
        log_entries < (seen.logged_calls / 2) as f64,
        "the log holds {log_entries} entries after {} logging calls",
        seen.logged_calls
    );
    assert!(seen.violations.is_empty(), "acknowledged records received again: {:?}", seen.violations);
    // Every record was acknowledged, or its acknowledgement was in flight at a kill (applied
    // before the kill, unanswered: it is gone, as it should be).
    let missing: Vec<&String> =
        sent.difference(&seen.acknowledged).filter(|id| !seen.unanswered.contains(*id)).collect();
    assert!(missing.is_empty(), "{} records lost: {missing:?}", missing.len());
    assert!(seen.acknowledged.is_subset(&sent));
    // The kills came during real traffic: some records were acknowledged before the drain.
    assert!(before_drain > 0, "no acknowledgement before the drain ({} receives)", seen.receives);
    eprintln!(
        "{CYCLES} SIGKILL cycles: {before_drain} of {RECORDS} acknowledged before the drain, {} with the answer \
         lost to a kill, {} receives; {snapshots} snapshots in the last run, {log_entries} log entries left of \
         at least {} written",
        seen.unanswered.len(),
        seen.receives,
        seen.logged_calls
    );
    drop(seen);
    daemon.stop();
}

/// A trim of the delivery-state log is recorded by the retention pass after it; a daemon
/// killed before that pass finds the trimmed entries again, and trims them again as it replays
/// (else the log would stay long until the next snapshot). Here no pass runs: its interval is
/// an hour.
#[test]
fn a_restart_trims_the_delivery_log_before_its_latest_snapshot() {
    const INTERVAL: u64 = 5;
    const TAGGINGS: usize = 30;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = dir.path().join("sluiced.toml");
    let overrides = format!(
        "[limit-overrides]\ndelivery-snapshot-interval-entries = {INTERVAL}\nretention-interval-ms = 3600000\n"
    );
    std::fs::write(&config, overrides).unwrap();
    let mut daemon = Daemon::start_with("unlimited", 1, &["--config", config.to_str().unwrap()]);
    let endpoint = daemon.http_addr.to_string();
    common::run(move || async move {
        let client = HttpClient::connect(&endpoint, Encoding::Json).await.unwrap();
        let queue = stream_and_queue(&client, "tagged", None).await;
        // Each tagging is an entry of the log.
        for i in 0..TAGGINGS {
            let tag = TagResourceInput {
                resource_arn: queue.as_str().into(),
                tags: [("n".to_owned(), i.to_string())].into(),
            };
            client.call(&tag).await.unwrap();
        }
    });
    // At most the entries since the last snapshot, its parts, and those applied while it was
    // written.
    let held_max = (2 * INTERVAL) as f64;
    let before = common::scrape(daemon.metrics_addr, "sluice_delivery_log_entries");
    assert!(before <= held_max, "the log holds {before} entries after {TAGGINGS} taggings");
    daemon.kill();
    daemon.restart();
    let after = common::scrape(daemon.metrics_addr, "sluice_delivery_log_entries");
    eprintln!("delivery log: {before} entries held before the kill, {after} after the restart");
    assert!(after <= held_max, "the restarted daemon's log holds {after} entries, {before} before the kill");
    daemon.stop();
}
