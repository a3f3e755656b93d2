//! Consumer groups with real processes: `sluice consume --application` workers (the real
//! `sluice` binary, over HTTP) against a real `sluiced`, with records put throughout.
//!
//! - `a_sigkilled_worker_s_shards_are_taken_over_and_nothing_is_lost`: three workers on eight
//!   shards; one is SIGKILLed; the others take its leases once they expire and go on from its
//!   checkpoints; every acknowledged record is processed at least once; checkpoints never move
//!   backwards; SIGTERM hands the leases back with final checkpoints at the shards' last
//!   records. Prints the takeover times (lease expiry to the new owner's first record).
//! - `a_worker_paused_past_its_lease_is_fenced_when_it_wakes`: SIGSTOP past the lease, the
//!   other worker takes over and checkpoints, SIGCONT: the woken worker learns it lost its
//!   leases, no checkpoint of it lands at its old counters, and it processes nothing on them.
//! - `parents_are_processed_before_children_across_a_split_and_a_merge`: a split and a merge
//!   under two workers; a child's records are processed only after all of its parents', every
//!   key's records in order.
//!
//! The `sluice` binary is found next to `sluiced` (`cargo build --workspace` builds both; or
//! set `$SLUICE`). Leases last 1.5 s here so the takeovers are quick.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use common::{run, sluice_bin, Daemon};
use serde_json::Value;
use sluice_client::aws::HttpClient;
use sluice_client::*;

/// Lease duration of the tests' applications (the daemon's minimum is 1 s).
const LEASE_MS: i64 = 1_500;
/// The workers' checkpoint interval.
const CHECKPOINT_MS: u64 = 200;
/// How long a condition may take before the test fails (a liveness bound, far above what the
/// conditions need on an idle machine).
const DEADLINE_S: u64 = 90;

/// One test at a time: each runs a daemon, a producer and several worker processes, and the
/// takeover figures mean little when three such tests share two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn epoch_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Polls `done` every 50 ms until it holds; fails the test after [`DEADLINE_S`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(DEADLINE_S);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A record as a worker printed it.
#[derive(Debug, Clone)]
struct Processed {
    shard: String,
    /// The record's place in its shard: sequence number and sub-sequence number.
    position: (String, u64),
    data: String,
    worker: String,
    at_ms: i64,
}

/// A worker event (stderr JSON line).
#[derive(Debug, Clone)]
struct Event {
    event: String,
    shard: Option<String>,
    counter: Option<i64>,
    message: Option<String>,
    at_ms: i64,
}

/// A `sluice consume --application app` process and what it printed.
struct Worker {
    id: String,
    child: Option<Child>,
    records: Arc<Mutex<Vec<Processed>>>,
    events: Arc<Mutex<Vec<Event>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Worker {
    /// A worker over HTTP (reads and lease calls), polling every 50 ms when idle.
    fn start(daemon: &Daemon, stream: &str, id: &str) -> Worker {
        let endpoint = daemon.http_addr.to_string();
        Worker::start_with(&["--endpoint", &endpoint, "consume", "--http"], stream, id, 50)
    }

    /// A worker over the native protocol (reads and lease calls), polling each shard again
    /// `idle_ms` after an empty answer.
    fn start_native(daemon: &Daemon, stream: &str, id: &str, idle_ms: u64) -> Worker {
        Worker::start_with(&["--endpoint", &daemon.endpoint(), "consume"], stream, id, idle_ms)
    }

    fn start_with(command: &[&str], stream: &str, id: &str, idle_ms: u64) -> Worker {
        let mut child = Command::new(sluice_bin())
            .args(command)
            .args(["--stream-name", stream])
            .args(["--application", "app", "--worker-id", id, "--lease-duration-ms", &LEASE_MS.to_string()])
            .args(["--checkpoint-interval-ms", &CHECKPOINT_MS.to_string()])
            .args(["--idle-time-between-reads", &idle_ms.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice consume");
        let records: Arc<Mutex<Vec<Processed>>> = Arc::default();
        let events: Arc<Mutex<Vec<Event>>> = Arc::default();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sink, name) = (records.clone(), id.to_owned());
        let out = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("[{name}] {line}: {e}"));
                let data = BASE64.decode(value["Data"].as_str().unwrap()).unwrap();
                sink.lock().unwrap().push(Processed {
                    shard: value["ShardId"].as_str().unwrap().to_owned(),
                    position: (
                        value["SequenceNumber"].as_str().unwrap().to_owned(),
                        value["SubSequenceNumber"].as_u64().unwrap(),
                    ),
                    data: String::from_utf8(data).unwrap(),
                    worker: value["WorkerId"].as_str().unwrap().to_owned(),
                    at_ms: (value["ProcessedAt"].as_f64().unwrap() * 1000.0).round() as i64,
                });
            }
        });
        let (sink, name) = (events.clone(), id.to_owned());
        let err = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    eprintln!("[{name}] {line}");
                    continue;
                };
                let event = Event {
                    event: value["Event"].as_str().unwrap_or_default().to_owned(),
                    shard: value["ShardId"].as_str().map(str::to_owned),
                    counter: value["LeaseCounter"].as_i64(),
                    message: value["Message"].as_str().map(str::to_owned),
                    at_ms: (value["At"].as_f64().unwrap_or_default() * 1000.0).round() as i64,
                };
                if event.event != "Checkpointed" {
                    eprintln!("[{name}] {line}");
                }
                sink.lock().unwrap().push(event);
            }
        });
        Worker { id: id.to_owned(), child: Some(child), records, events, readers: vec![out, err] }
    }

    fn signal(&self, signal: i32) {
        let pid = self.child.as_ref().expect("running").id() as i32;
        // SAFETY: a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM (graceful: final checkpoints, leases released) and the exit status, once its
    /// output is read to the end.
    fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let status = self.child.take().unwrap().wait().unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        status
    }

    fn records(&self) -> Vec<Processed> {
        self.records.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A record the producer had acknowledged: (shard, sequence number, partition key, data).
type Acked = (String, u128, String, String);

/// Puts records (data `r<n>`, key `k<n % keys>`) by PutRecords over the native protocol, ten
/// every 20 ms, until stopped.
struct Producer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
    thread: Option<JoinHandle<()>>,
}

impl Producer {
    fn start(endpoint: String, stream: &'static str, keys: u64) -> Producer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
        let (flag, sink) = (stop.clone(), acked.clone());
        let thread = std::thread::spawn(move || {
            run(move || async move {
                let client = Client::connect(&endpoint).await.unwrap();
                let mut n = 0u64;
                while !flag.load(Ordering::Relaxed) {
                    let entries: Vec<_> = (n..n + 10)
                        .map(|i| PutRecordsRequestEntry {
                            data: Bytes::from(format!("r{i}")),
                            partition_key: Some(format!("k{}", i % keys)),
                            explicit_hash_key: None,
                        })
                        .collect();
                    n += 10;
                    let input = PutRecordsInput {
                        stream_name: Some(stream.into()),
                        records: entries.clone(),
                        ..Default::default()
                    };
                    let output = client.call(&input).await.unwrap();
                    for (entry, result) in entries.into_iter().zip(output.records) {
                        if let (Some(shard), Some(sequence)) = (result.shard_id, result.sequence_number) {
                            let data = String::from_utf8(entry.data.to_vec()).unwrap();
                            let sequence: u128 = sequence.to_string().parse().unwrap();
                            let record = (shard.to_string(), sequence, entry.partition_key.unwrap(), data);
                            sink.lock().unwrap().push(record);
                        }
                    }
                    glommio::timer::sleep(Duration::from_millis(20)).await;
                }
            })
        });
        Producer { stop, acked, thread: Some(thread) }
    }

    /// Stops putting; everything acknowledged.
    fn stop(&mut self) -> Vec<Acked> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.acked.lock().unwrap().clone()
    }
}

/// A checkpoint's place in the order checkpoints may only move along.
fn rank(lease: &Lease) -> (u8, u128, i64) {
    match lease.checkpoint.as_str() {
        "TRIM_HORIZON" | "LATEST" | "AT_TIMESTAMP" => (0, 0, 0),
        "SHARD_END" => (2, 0, 0),
        sequence => (1, sequence.parse().unwrap(), lease.checkpoint_sub_sequence_number),
    }
}

fn list_input(stream: &str) -> ListLeasesInput {
    ListLeasesInput { stream_name: Some(stream.into()), application_name: Some("app".into()), ..Default::default() }
}

/// Lists the application's leases every 50 ms: the latest table, the history of each lease's
/// (owner, counter, expiry), and every checkpoint that moved backwards.
struct LeaseWatch {
    stop: Arc<AtomicBool>,
    latest: Arc<Mutex<BTreeMap<String, Lease>>>,
    /// Per lease: the last expiry seen for each owner (epoch ms).
    expiry_by_owner: Arc<Mutex<BTreeMap<(String, String), i64>>>,
    backwards: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl LeaseWatch {
    fn start(http: String, stream: &'static str) -> LeaseWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let latest: Arc<Mutex<BTreeMap<String, Lease>>> = Arc::default();
        let expiry_by_owner: Arc<Mutex<BTreeMap<(String, String), i64>>> = Arc::default();
        let backwards: Arc<Mutex<Vec<String>>> = Arc::default();
        let (flag, table, expiries, wrong) = (stop.clone(), latest.clone(), expiry_by_owner.clone(), backwards.clone());
        let thread = std::thread::spawn(move || {
            run(move || async move {
                let client = HttpClient::connect(&http, Encoding::Json).await.unwrap();
                let mut ranks: BTreeMap<String, (u8, u128, i64)> = BTreeMap::new();
                while !flag.load(Ordering::Relaxed) {
                    if let Ok(page) = client.list_leases(&list_input(stream)).await {
                        let mut table = table.lock().unwrap();
                        table.clear();
                        for lease in page.leases {
                            let now = rank(&lease);
                            if let Some(before) = ranks.insert(lease.lease_key.clone(), now) {
                                if now < before {
                                    wrong.lock().unwrap().push(format!("{}: {before:?} -> {now:?}", lease.lease_key));
                                }
                            }
                            if let (Some(owner), Some(expires)) = (&lease.lease_owner, lease.lease_expiration_timestamp)
                            {
                                expiries
                                    .lock()
                                    .unwrap()
                                    .insert((lease.lease_key.clone(), owner.clone()), expires.epoch_ms());
                            }
                            table.insert(lease.lease_key.clone(), lease);
                        }
                    }
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
            })
        });
        LeaseWatch { stop, latest, expiry_by_owner, backwards, thread: Some(thread) }
    }

    fn table(&self) -> BTreeMap<String, Lease> {
        self.latest.lock().unwrap().clone()
    }

    fn owned_by(&self, worker: &str) -> Vec<Lease> {
        self.table().into_values().filter(|lease| lease.lease_owner.as_deref() == Some(worker)).collect()
    }

    fn finish(&mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.backwards.lock().unwrap().clone()
    }
}

fn create_stream(endpoint: String, name: &'static str, shards: i32) {
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let input = CreateStreamInput { stream_name: name.into(), shard_count: Some(shards), ..Default::default() };
        client.call(&input).await.unwrap();
        wait_active(&client, name).await;
    });
}

async fn wait_active(client: &Client, name: &str) {
    loop {
        let input = DescribeStreamSummaryInput { stream_name: Some(name.into()), ..Default::default() };
        if client.call(&input).await.unwrap().stream_description_summary.stream_status == StreamStatus::Active {
            return;
        }
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

/// The application's leases, read now.
fn leases_now(http: String, stream: &'static str) -> BTreeMap<String, Lease> {
    let (sender, receiver) = std::sync::mpsc::channel();
    run(move || async move {
        let client = HttpClient::connect(&http, Encoding::Json).await.unwrap();
        let page = client.list_leases(&list_input(stream)).await.unwrap();
        sender.send(page.leases).unwrap();
    });
    receiver.recv().unwrap().into_iter().map(|lease| (lease.lease_key.clone(), lease)).collect()
}

fn all_records(workers: &[Worker]) -> Vec<Processed> {
    workers.iter().flat_map(Worker::records).collect()
}

/// Waits until every acknowledged record was processed by some worker.
fn wait_all_processed(workers: &[Worker], acked: &[Acked]) {
    let deadline = Instant::now() + Duration::from_secs(DEADLINE_S);
    loop {
        let seen: BTreeSet<String> = all_records(workers).into_iter().map(|r| r.data).collect();
        let missing: Vec<&Acked> = acked.iter().filter(|(_, _, _, data)| !seen.contains(data)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged records never processed, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM every worker still running: each exits 0 having checkpointed and released.
fn terminate_all(workers: &mut [Worker]) {
    for worker in workers.iter_mut().filter(|worker| worker.child.is_some()) {
        let status = worker.terminate();
        assert!(status.success(), "{} exited with {status} after SIGTERM", worker.id);
    }
}

/// After a graceful shutdown of every worker: no lease is owned, and every shard's checkpoint
/// is its last acknowledged record (or SHARD_END).
fn check_handed_back(http: String, stream: &'static str, acked: &[Acked]) {
    let mut last: BTreeMap<&str, u128> = BTreeMap::new();
    for (shard, sequence, _, _) in acked {
        let entry = last.entry(shard.as_str()).or_default();
        *entry = (*entry).max(*sequence);
    }
    for (key, lease) in leases_now(http, stream) {
        assert_eq!(lease.lease_owner, None, "{key} still owned after every worker shut down");
        if lease.checkpoint == "SHARD_END" {
            continue;
        }
        let expected = last.get(key.as_str()).map(|sequence| sequence.to_string());
        let actual = (lease.checkpoint != "TRIM_HORIZON").then(|| lease.checkpoint.clone());
        assert_eq!(actual, expected, "{key}: the final checkpoint is the shard's last record");
    }
}

#[test]
fn a_sigkilled_worker_s_shards_are_taken_over_and_nothing_is_lost() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    const STREAM: &str = "group";
    let daemon = Daemon::start("unlimited", 1);
    create_stream(daemon.endpoint(), STREAM, 8);
    let mut producer = Producer::start(daemon.endpoint(), STREAM, 64);
    let mut watch = LeaseWatch::start(daemon.http_addr.to_string(), STREAM);
    let mut workers: Vec<Worker> = (0..3).map(|i| Worker::start(&daemon, STREAM, &format!("w{i}"))).collect();
    wait_until("three workers share the eight leases (3, 3, 2)", || {
        let mut counts: Vec<usize> = (0..3).map(|i| watch.owned_by(&format!("w{i}")).len()).collect();
        counts.sort();
        counts == [2, 3, 3]
    });
    let victim: BTreeSet<String> = watch.owned_by("w0").into_iter().map(|lease| lease.lease_key).collect();
    let kill_ms = epoch_ms();
    workers[0].kill();
    wait_until("the survivors hold every lease of the killed worker and process its shards", || {
        let table = watch.table();
        let records = all_records(&workers[1..]);
        victim.iter().all(|shard| {
            table[shard].lease_owner.as_deref().is_some_and(|owner| owner != "w0")
                && records.iter().any(|r| r.shard == *shard && r.worker != "w0" && r.at_ms > kill_ms)
        })
    });
    // Takeover: the killed worker's lease expiry (the daemon's clock, this host) to the new
    // owner's first record of the shard.
    let expiries = watch.expiry_by_owner.lock().unwrap().clone();
    let records = all_records(&workers[1..]);
    let mut takeovers_ms: Vec<i64> = victim
        .iter()
        .map(|shard| {
            let expired_ms = expiries[&(shard.clone(), "w0".to_owned())];
            let first_ms = records.iter().filter(|r| r.shard == *shard && r.at_ms > kill_ms).map(|r| r.at_ms).min();
            first_ms.unwrap() - expired_ms
        })
        .collect();
    takeovers_ms.sort();
    std::thread::sleep(Duration::from_millis(1_000));
    let acked = producer.stop();
    wait_all_processed(&workers, &acked);
    let backwards = watch.finish();
    assert!(backwards.is_empty(), "checkpoints moved backwards: {backwards:?}");
    terminate_all(&mut workers[1..]);
    check_handed_back(daemon.http_addr.to_string(), STREAM, &acked);
    // Duplicates: records processed more than once (the killed worker's since its last
    // checkpoint, processed again by the new owners).
    let all = all_records(&workers);
    let unique: BTreeSet<&str> = all.iter().map(|r| r.data.as_str()).collect();
    let victim_duplicates = {
        let mut seen = BTreeSet::new();
        all.iter().filter(|r| victim.contains(&r.shard) && !seen.insert(r.data.as_str())).count()
    };
    eprintln!(
        "FIGURES sigkill: {} records acknowledged; {} shards taken over; takeover (lease expiry -> new owner's \
         first record) ms: p50 {} max {} all {takeovers_ms:?}; kill -> expiry of its leases ms: {:?}; \
         duplicates {} in total, {victim_duplicates} on the taken-over shards (lease {LEASE_MS} ms, checkpoint \
         every {CHECKPOINT_MS} ms)",
        acked.len(),
        victim.len(),
        takeovers_ms[takeovers_ms.len() / 2],
        takeovers_ms.last().unwrap(),
        victim.iter().map(|shard| expiries[&(shard.clone(), "w0".to_owned())] - kill_ms).collect::<Vec<_>>(),
        all.len() - unique.len(),
    );
}

#[test]
fn a_worker_paused_past_its_lease_is_fenced_when_it_wakes() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    const STREAM: &str = "fence";
    let daemon = Daemon::start("unlimited", 1);
    create_stream(daemon.endpoint(), STREAM, 4);
    let mut producer = Producer::start(daemon.endpoint(), STREAM, 64);
    let mut watch = LeaseWatch::start(daemon.http_addr.to_string(), STREAM);
    let mut workers: Vec<Worker> = ["a", "b"].iter().map(|id| Worker::start(&daemon, STREAM, id)).collect();
    wait_until("each worker holds two leases and processes them", || {
        watch.owned_by("a").len() == 2
            && watch.owned_by("b").len() == 2
            && watch.owned_by("a").iter().all(|l| workers[0].records().iter().any(|r| r.shard == l.lease_key))
    });
    let held: BTreeMap<String, i64> =
        watch.owned_by("a").into_iter().map(|lease| (lease.lease_key, lease.lease_counter)).collect();
    workers[0].signal(libc::SIGSTOP);
    wait_until("b holds a's leases and checkpointed them", || {
        let table = watch.table();
        let events = workers[1].events();
        held.keys().all(|shard| {
            let lease = &table[shard];
            lease.lease_owner.as_deref() == Some("b")
                && events.iter().any(|e| {
                    e.event == "Checkpointed"
                        && e.shard.as_ref() == Some(shard)
                        && e.counter == Some(lease.lease_counter)
                })
        })
    });
    let cont_ms = epoch_ms();
    workers[0].signal(libc::SIGCONT);
    wait_until("a learns that it lost each lease it held", || {
        let events = workers[0].events();
        held.keys().all(|shard| {
            events.iter().any(|e| e.event == "LeaseLost" && e.shard.as_ref() == Some(shard) && e.at_ms >= cont_ms)
        })
    });
    // Two more lease durations of running, for anything the woken worker might still do.
    std::thread::sleep(Duration::from_millis(2 * LEASE_MS as u64));
    let acked = producer.stop();
    wait_all_processed(&workers, &acked);
    let backwards = watch.finish();
    assert!(backwards.is_empty(), "checkpoints moved backwards: {backwards:?}");
    let events = workers[0].events();
    let woken: Vec<&Event> = events
        .iter()
        .filter(|e| e.at_ms >= cont_ms && e.shard.as_ref().is_some_and(|shard| held.contains_key(shard)))
        .collect();
    // A checkpoint a sends after waking reaches the server after b's takeover, which fences it;
    // a would report that as a refusal. So a refusal shows a checkpoint on a lapsed lease (a
    // looks at the lease's validity right before each checkpoint it sends).
    for event in &woken {
        let refused = event.event == "LeaseLost"
            && event.message.as_deref().is_some_and(|message| message.starts_with("checkpoint refused"));
        assert!(!refused, "a checkpointed a lease it held after waking: {event:?}");
    }
    // One accepted checkpoint per shard may still be reported after waking: the call that was
    // in flight when a stopped, which the server took while the lease was a's.
    for shard in held.keys() {
        let late: Vec<&&Event> = woken
            .iter()
            .filter(|e| {
                e.event == "Checkpointed" && e.shard.as_ref() == Some(shard) && e.counter == held.get(shard).copied()
            })
            .collect();
        assert!(late.len() <= 1, "a reported checkpoints of {shard} at its old counter after waking: {late:?}");
    }
    // Nothing processed on a lapsed lease: after waking, a record of a shard it held comes only
    // after it took that shard's lease again, except the one batch it may have been stopped in
    // the middle of (between its last lease check and the batch's timestamp).
    for shard in held.keys() {
        let retaken_ms = events
            .iter()
            .filter(|e| e.event == "LeaseTaken" && e.shard.as_ref() == Some(shard) && e.at_ms >= cont_ms)
            .map(|e| e.at_ms)
            .min()
            .unwrap_or(i64::MAX);
        let stale_batches: BTreeSet<i64> = workers[0]
            .records()
            .iter()
            .filter(|r| r.shard == *shard && r.at_ms >= cont_ms && r.at_ms < retaken_ms)
            .map(|r| r.at_ms)
            .collect();
        assert!(stale_batches.len() <= 1, "a processed {shard} on a lapsed lease at {stale_batches:?}");
    }
    terminate_all(&mut workers);
    check_handed_back(daemon.http_addr.to_string(), STREAM, &acked);
    eprintln!("FIGURES sigstop: {} records; a's leases {held:?} fenced", acked.len());
}

#[test]
fn parents_are_processed_before_children_across_a_split_and_a_merge() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    const STREAM: &str = "reshard";
    let daemon = Daemon::start("unlimited", 1);
    create_stream(daemon.endpoint(), STREAM, 2);
    let mut producer = Producer::start(daemon.endpoint(), STREAM, 16);
    let mut watch = LeaseWatch::start(daemon.http_addr.to_string(), STREAM);
    let mut workers: Vec<Worker> = ["a", "b"].iter().map(|id| Worker::start(&daemon, STREAM, id)).collect();
    wait_until("both shards are processed", || {
        let records = all_records(&workers);
        ["shardId-000000000000", "shardId-000000000001"].iter().all(|shard| records.iter().any(|r| r.shard == *shard))
    });
    // Split shard 0, then merge its two children, while records keep coming.
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let shards = |client: Client| async move {
            let input = ListShardsInput { stream_name: Some(STREAM.into()), ..Default::default() };
            client.call(&input).await.unwrap().shards
        };
        let end = shards(client.clone()).await[0].hash_key_range.ending_hash_key.0;
        let split = SplitShardInput {
            stream_name: Some(STREAM.into()),
            shard_to_split: "shardId-000000000000".into(),
            new_starting_hash_key: HashKey(end / 2),
            ..Default::default()
        };
        client.call(&split).await.unwrap();
        wait_active(&client, STREAM).await;
        glommio::timer::sleep(Duration::from_millis(1_500)).await;
        let children: Vec<ShardId> = shards(client.clone())
            .await
            .into_iter()
            .filter(|s| s.parent_shard_id.as_ref().is_some_and(|p| p.as_str() == "shardId-000000000000"))
            .map(|s| s.shard_id)
            .collect();
        assert_eq!(children.len(), 2);
        let merge = MergeShardsInput {
            stream_name: Some(STREAM.into()),
            shard_to_merge: children[0].clone(),
            adjacent_shard_to_merge: children[1].clone(),
            ..Default::default()
        };
        client.call(&merge).await.unwrap();
        wait_active(&client, STREAM).await;
        glommio::timer::sleep(Duration::from_millis(1_500)).await;
    });
    let acked = producer.stop();
    wait_all_processed(&workers, &acked);
    let backwards = watch.finish();
    assert!(backwards.is_empty(), "checkpoints moved backwards: {backwards:?}");
    terminate_all(&mut workers);
    check_handed_back(daemon.http_addr.to_string(), STREAM, &acked);
    let table = leases_now(daemon.http_addr.to_string(), STREAM);
    assert_eq!(table.len(), 5, "two shards, two children of a split, one of a merge: {table:?}");
    // First processing of each record.
    let mut first: BTreeMap<String, (String, i64)> = BTreeMap::new();
    for record in all_records(&workers) {
        let entry = first.entry(record.data.clone()).or_insert((record.shard.clone(), record.at_ms));
        entry.1 = entry.1.min(record.at_ms);
    }
    // Every child's records after every record of its parents.
    let mut pairs = 0;
    for lease in table.values() {
        for parent in &lease.parent_shard_ids {
            assert_eq!(table[parent].checkpoint, "SHARD_END", "{parent} ended");
            let parent_last = first.values().filter(|(s, _)| s == parent).map(|(_, at)| *at).max();
            let child_first = first.values().filter(|(s, _)| *s == lease.lease_key).map(|(_, at)| *at).min();
            if let (Some(parent_last), Some(child_first)) = (parent_last, child_first) {
                assert!(
                    parent_last <= child_first,
                    "{} processed from {child_first} ms, before its parent {parent} finished at {parent_last} ms",
                    lease.lease_key
                );
                pairs += 1;
            }
        }
    }
    assert_eq!(pairs, 4, "records on both sides of the split (0 -> 2, 3) and of the merge (2, 3 -> 4)");
    // Per key, records are first processed in the order they were put.
    let mut by_key: BTreeMap<&str, Vec<(u64, i64)>> = BTreeMap::new();
    for (_, _, key, data) in &acked {
        let n: u64 = data[1..].parse().unwrap();
        by_key.entry(key).or_default().push((n, first[data].1));
    }
    for (key, mut records) in by_key {
        records.sort();
        for pair in records.windows(2) {
            assert!(pair[0].1 <= pair[1].1, "{key}: r{} processed after r{}", pair[0].0, pair[1].0);
        }
    }
    eprintln!("FIGURES reshard: {} records, leases {:?}", acked.len(), table.keys().collect::<Vec<_>>());
}

/// Runs a single-call `sluice` command against the daemon's native port; its JSON output.
fn sluice_json(daemon: &Daemon, args: &[&str]) -> Value {
    let output = Command::new(sluice_bin()).args(["--endpoint", &daemon.endpoint()]).args(args).output().unwrap();
    assert!(output.status.success(), "sluice {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Bytes of every user record of the load test: the 100-byte records.
const LOAD_RECORD_BYTES: usize = 100;
/// Shards the load test starts with; `UpdateShardCount` doubles them mid-run.
const LOAD_SHARDS: i32 = 4;
/// User records per second per initial shard in CI: a quarter of a plain PutRecord user's
/// 1,000/s, enough to keep every shard busy across the kill and the reshard without the debug
/// build falling behind on two shared cores.
const LOAD_CI_RECORDS_PER_S_PER_SHARD: u64 = 250;
/// Seconds of steady load before the kill and after the reshard in CI.
const LOAD_CI_PHASE_S: u64 = 2;
/// The load: 100-byte records filling a shard's 1 MiB/s (about 10,000 a second).
const LOAD_FULL_RECORDS_PER_S_PER_SHARD: u64 = 10_000;

/// The load test's size: CI's by default; `SLUICE_GROUP_LOAD=<seconds per phase>` runs the
/// issue's load (`SLUICE_GROUP_LOAD_RATE` overrides its records per second per shard).
#[derive(Debug, Clone, Copy)]
struct GroupLoad {
    records_per_s_per_shard: u64,
    phase_s: u64,
}

impl GroupLoad {
    fn from_env() -> GroupLoad {
        let Some(phase) = std::env::var_os("SLUICE_GROUP_LOAD") else {
            return GroupLoad { records_per_s_per_shard: LOAD_CI_RECORDS_PER_S_PER_SHARD, phase_s: LOAD_CI_PHASE_S };
        };
        let phase_s = phase.to_str().and_then(|s| s.parse().ok()).expect("SLUICE_GROUP_LOAD is seconds per phase");
        let records_per_s_per_shard = std::env::var("SLUICE_GROUP_LOAD_RATE")
            .map(|rate| rate.parse().expect("SLUICE_GROUP_LOAD_RATE is records per second per shard"))
            .unwrap_or(LOAD_FULL_RECORDS_PER_S_PER_SHARD);
        GroupLoad { records_per_s_per_shard, phase_s }
    }
}

/// The record written on line `n`: `r<n>` padded with dots to [`LOAD_RECORD_BYTES`].
fn load_record(n: u64) -> String {
    format!("r{n:09}{}", ".".repeat(LOAD_RECORD_BYTES - 10))
}

/// `sluice produce` (the KPL-format producer: aggregated, collected, rate limited and retried)
/// over the native protocol, fed `records_per_s` records a second on stdin, one partition key
/// per record; every result it prints is read back in input order.
struct CliProducer {
    stop: Arc<AtomicBool>,
    child: Child,
    feeder: Option<JoinHandle<()>>,
    results: Option<JoinHandle<(Vec<Acked>, u64)>>,
    metrics: Option<JoinHandle<Option<Value>>>,
}

impl CliProducer {
    fn start(endpoint: String, stream: &str, records_per_s: u64) -> CliProducer {
        let mut child = Command::new(sluice_bin())
            .args(["--endpoint", &endpoint, "produce", "--stream-name", stream, "--print-results", "--metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice produce");
        let stop = Arc::new(AtomicBool::new(false));
        let mut stdin = std::io::BufWriter::new(child.stdin.take().unwrap());
        let flag = stop.clone();
        // Paced in 10 ms ticks; a producer that pushes back (its buffers full) blocks the write,
        // and the next ticks catch up.
        let feeder = std::thread::spawn(move || {
            use std::io::Write;
            let started = Instant::now();
            let mut written = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let due = (started.elapsed().as_secs_f64() * records_per_s as f64) as u64;
                while written < due {
                    writeln!(stdin, "{}", load_record(written)).unwrap();
                    written += 1;
                }
                stdin.flush().unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            // Dropping stdin ends the input: the producer flushes what it buffered and exits.
        });
        let stdout = child.stdout.take().unwrap();
        let results = std::thread::spawn(move || {
            let (mut acked, mut failed) = (Vec::new(), 0u64);
            for (n, line) in BufReader::new(stdout).lines().map_while(Result::ok).enumerate() {
                let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("[producer] {line}: {e}"));
                if value.get("ErrorCode").is_some() {
                    failed += 1;
                    continue;
                }
                let shard = value["ShardId"].as_str().unwrap().to_owned();
                let sequence: u128 = value["SequenceNumber"].as_str().unwrap().parse().unwrap();
                acked.push((shard, sequence, n.to_string(), load_record(n as u64)));
            }
            (acked, failed)
        });
        let stderr = child.stderr.take().unwrap();
        let metrics = std::thread::spawn(move || {
            let mut metrics = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) if value.get("UserRecordsPut").is_some() => metrics = Some(value),
                    _ => eprintln!("[producer] {line}"),
                }
            }
            metrics
        });
        CliProducer { stop, child, feeder: Some(feeder), results: Some(results), metrics: Some(metrics) }
    }

    /// Ends the input and waits for the producer to put what it buffered and exit: the
    /// acknowledged records, how many failed, and its metrics.
    fn stop(&mut self) -> (Vec<Acked>, u64, Value) {
        self.stop.store(true, Ordering::Relaxed);
        self.feeder.take().unwrap().join().unwrap();
        let status = self.child.wait().unwrap();
        let (acked, failed) = self.results.take().unwrap().join().unwrap();
        let metrics = self.metrics.take().unwrap().join().unwrap().expect("the producer printed its metrics");
        assert!(status.success() || failed > 0, "sluice produce exited with {status}");
        (acked, failed, metrics)
    }
}

impl Drop for CliProducer {
    fn drop(&mut self) {
        if self.results.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until every acknowledged record was processed, looking only at what the workers
/// printed since the last look (the load test's record counts make a full rescan every time
/// quadratic).
fn wait_all_processed_incrementally(workers: &[Worker], acked: &[Acked]) {
    let mut missing: BTreeSet<&str> = acked.iter().map(|(_, _, _, data)| data.as_str()).collect();
    let mut seen_count = vec![0usize; workers.len()];
    let deadline = Instant::now() + Duration::from_secs(DEADLINE_S);
    loop {
        for (worker, seen) in workers.iter().zip(seen_count.iter_mut()) {
            let records = worker.records.lock().unwrap();
            for record in &records[*seen..] {
                missing.remove(record.data.as_str());
            }
            *seen = records.len();
        }
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged records never processed, e.g. {:?}",
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The "Done when" run, end to end with real processes: `sluice produce` (aggregating)
/// into a stream of four shards under `--limits kinesis`, three `sluice consume --application`
/// workers; one worker is SIGKILLed, its shards are taken over, then `UpdateShardCount` doubles
/// the shards under the group; every acknowledged user record is processed at least once,
/// checkpoints never move backwards, parents end before their children are read, and the
/// figures (takeover time, duplicates, the producer's rate and aggregation) are printed.
/// In CI it runs at a quarter of a plain user's record rate; `SLUICE_GROUP_LOAD=<seconds>`
/// runs it at the 1 MiB/s per shard (see [`GroupLoad`]).
#[test]
fn a_group_keeps_up_with_an_aggregating_producer_across_a_kill_and_a_reshard() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    const STREAM: &str = "load";
    let load = GroupLoad::from_env();
    let started = Instant::now();
    let daemon = Daemon::start("kinesis", 1);
    create_stream(daemon.endpoint(), STREAM, LOAD_SHARDS);
    let records_per_s = load.records_per_s_per_shard * LOAD_SHARDS as u64;
    let mut producer = CliProducer::start(daemon.endpoint(), STREAM, records_per_s);
    let mut watch = LeaseWatch::start(daemon.http_addr.to_string(), STREAM);
    // Polling at most five times a second per shard after an empty answer: the GetRecords quota.
    let mut workers: Vec<Worker> =
        (0..3).map(|i| Worker::start_native(&daemon, STREAM, &format!("w{i}"), 200)).collect();
    let ids: Vec<String> = workers.iter().map(|worker| worker.id.clone()).collect();
    wait_until("every worker holds a lease and processes its shards", || {
        let table = watch.table();
        table.len() == LOAD_SHARDS as usize
            && ids.iter().all(|id| !watch.owned_by(id).is_empty())
            && workers.iter().all(|worker| {
                let records = worker.records();
                watch.owned_by(&worker.id).iter().all(|lease| records.iter().any(|r| r.shard == lease.lease_key))
            })
    });
    std::thread::sleep(Duration::from_secs(load.phase_s));
    // The victim is the worker holding the most leases.
    let victim_index = (0..workers.len()).max_by_key(|&i| watch.owned_by(&ids[i]).len()).unwrap();
    let victim_id = ids[victim_index].clone();
    let victim: BTreeSet<String> = watch.owned_by(&victim_id).into_iter().map(|lease| lease.lease_key).collect();
    let kill_ms = epoch_ms();
    workers[victim_index].kill();
    wait_until("the survivors hold every lease of the killed worker and process its shards", || {
        let table = watch.table();
        victim.iter().all(|shard| {
            table[shard].lease_owner.as_deref().is_some_and(|owner| owner != victim_id)
                && workers
                    .iter()
                    .any(|w| w.id != victim_id && w.records().iter().any(|r| r.shard == *shard && r.at_ms > kill_ms))
        })
    });
    let expiries = watch.expiry_by_owner.lock().unwrap().clone();
    let survivors: Vec<Processed> =
        workers.iter().filter(|w| w.id != victim_id).flat_map(Worker::records).filter(|r| r.at_ms > kill_ms).collect();
    // Takeover: from the kill, and from the killed worker's lease expiry (the daemon's clock,
    // this host), to the new owner's first record of the shard.
    let mut from_kill_ms = Vec::new();
    let mut from_expiry_ms = Vec::new();
    for shard in &victim {
        let first_ms = survivors.iter().filter(|r| r.shard == *shard).map(|r| r.at_ms).min().unwrap();
        from_kill_ms.push(first_ms - kill_ms);
        from_expiry_ms.push(first_ms - expiries[&(shard.clone(), victim_id.clone())]);
    }
    from_kill_ms.sort();
    from_expiry_ms.sort();
    // Reshard under the group while the producer keeps going.
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let input = UpdateShardCountInput {
            stream_name: Some(STREAM.into()),
            target_shard_count: 2 * LOAD_SHARDS,
            scaling_type: ScalingType::UniformScaling,
            stream_arn: None,
        };
        client.call(&input).await.unwrap();
        wait_active(&client, STREAM).await;
    });
    std::thread::sleep(Duration::from_secs(load.phase_s));
    let (acked, failed, metrics) = producer.stop();
    assert_eq!(failed, 0, "the producer gave up on records");
    wait_all_processed_incrementally(&workers, &acked);
    // A record processed by a worker that lost the lease before checkpointing it is
    // processed again by the new owner, which may not have got to it yet: wait until every
    // shard's checkpoint reached its last record (or SHARD_END) before handing back.
    let mut last: BTreeMap<&str, u128> = BTreeMap::new();
    for (shard, sequence, _, _) in &acked {
        let entry = last.entry(shard.as_str()).or_default();
        *entry = (*entry).max(*sequence);
    }
    wait_until("every shard is checkpointed at its last record", || {
        watch.table().values().all(|lease| match rank(lease) {
            (2, _, _) => true,
            (_, sequence, _) => last.get(lease.lease_key.as_str()).is_none_or(|last| sequence >= *last),
        })
    });
    let backwards = watch.finish();
    assert!(backwards.is_empty(), "checkpoints moved backwards: {backwards:?}");
    terminate_all(&mut workers);
    check_handed_back(daemon.http_addr.to_string(), STREAM, &acked);
    // The CLI's lease commands (native protocol) see the table the HTTP API does.
    let listed = sluice_json(&daemon, &["list-leases", "--stream-name", STREAM, "--application-name", "app"]);
    let listed: BTreeMap<&str, &Value> =
        listed["Leases"].as_array().unwrap().iter().map(|lease| (lease["LeaseKey"].as_str().unwrap(), lease)).collect();
    let over_http = leases_now(daemon.http_addr.to_string(), STREAM);
    assert_eq!(listed.len(), over_http.len());
    for (key, lease) in &over_http {
        assert_eq!(listed[key.as_str()]["Checkpoint"].as_str(), Some(lease.checkpoint.as_str()), "{key}");
        assert_eq!(listed[key.as_str()]["LeaseCounter"].as_i64(), Some(lease.lease_counter), "{key}");
    }
    let described =
        sluice_json(&daemon, &["describe-application", "--stream-name", STREAM, "--application-name", "app"]);
    assert_eq!(described["ApplicationDescription"]["LeaseCount"].as_i64(), Some(over_http.len() as i64));
    // Every parent ended, and every child was read after its parents: each child's first
    // processed record comes after every first processing of its parents' records.
    let table = leases_now(daemon.http_addr.to_string(), STREAM);
    assert_eq!(table.len(), 3 * LOAD_SHARDS as usize, "the shards and the children of the doubling: {table:?}");
    let all = all_records(&workers);
    let mut first: BTreeMap<&str, (&str, i64)> = BTreeMap::new();
    for record in &all {
        let entry = first.entry(record.data.as_str()).or_insert((record.shard.as_str(), record.at_ms));
        entry.1 = entry.1.min(record.at_ms);
    }
    let mut last_by_shard: BTreeMap<&str, i64> = BTreeMap::new();
    let mut first_by_shard: BTreeMap<&str, i64> = BTreeMap::new();
    for (shard, at_ms) in first.values() {
        let last = last_by_shard.entry(shard).or_insert(*at_ms);
        *last = (*last).max(*at_ms);
        let earliest = first_by_shard.entry(shard).or_insert(*at_ms);
        *earliest = (*earliest).min(*at_ms);
    }
    let mut children_read = 0;
    for lease in table.values().filter(|lease| !lease.parent_shard_ids.is_empty()) {
        let Some(child_first) = first_by_shard.get(lease.lease_key.as_str()) else { continue };
        children_read += 1;
        for parent in &lease.parent_shard_ids {
            assert_eq!(table[parent].checkpoint, "SHARD_END", "{parent} ended");
            let parent_last = last_by_shard.get(parent.as_str()).copied().unwrap_or(i64::MIN);
            assert!(parent_last <= *child_first, "{} read before its parent {parent} ended", lease.lease_key);
        }
    }
    assert!(children_read > 0, "records reached the children of the reshard");
    // Duplicates of two kinds: a record processed again at the same place (a new owner going
    // on from the last checkpoint, the consumer's at-least-once), and a record the stream holds
    // twice (the producer retried a put whose answer it did not get).
    let positions: BTreeSet<(&str, &(String, u64))> = all.iter().map(|r| (r.shard.as_str(), &r.position)).collect();
    let reprocessed = all.len() - positions.len();
    let victim_reprocessed = {
        let mut seen = BTreeSet::new();
        all.iter().filter(|r| victim.contains(&r.shard) && !seen.insert((&r.shard, &r.position))).count()
    };
    let unique: BTreeSet<&str> = all.iter().map(|r| r.data.as_str()).collect();
    let stored_twice = positions.len() - unique.len();
    eprintln!(
        "FIGURES load: {} user records acknowledged ({records_per_s}/s offered: {} per shard of \
         {LOAD_RECORD_BYTES} B on {LOAD_SHARDS} shards, doubled mid-run), lost 0, {} processed; processed again \
         {reprocessed} in total, {victim_reprocessed} on the {} taken-over shards; stored twice by producer \
         retries {stored_twice}; takeover kill -> first record ms p50 {} max {} \
         {from_kill_ms:?}, lease expiry -> first record ms p50 {} max {} (lease {LEASE_MS} ms, checkpoint every \
         {CHECKPOINT_MS} ms); {children_read} children read; producer {metrics}; whole test {:.1} s",
        acked.len(),
        load.records_per_s_per_shard,
        all.len(),
        victim.len(),
        from_kill_ms[from_kill_ms.len() / 2],
        from_kill_ms.last().unwrap(),
        from_expiry_ms[from_expiry_ms.len() / 2],
        from_expiry_ms.last().unwrap(),
        started.elapsed().as_secs_f64(),
    );
}
