//! What the replication tests share: a writer that finds the shard's leader by trying the
//! nodes, and the independent checker that reads the shard back from every node.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod delay;
pub mod loadgen;
pub mod netns;

use crate::common::{run, Rng};
use bytes::Bytes;
use sluice_client::*;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a writer shares with the test's thread.
#[derive(Default)]
pub struct Shared {
    /// Each node's native endpoint, `None` while it is down.
    pub endpoints: Mutex<Vec<Option<String>>>,
    /// The node that acknowledged the last write: the shard's leader.
    pub leader: AtomicUsize,
    /// Sequence number → data, of every acknowledged record.
    pub acked: Mutex<BTreeMap<u128, Bytes>>,
    /// When each acknowledged call was answered, and by which node.
    pub acked_at: Mutex<Vec<(Instant, usize)>>,
    pub stop: AtomicBool,
    /// The writer threads make no call while it is set.
    pub paused: AtomicBool,
    /// Raised when the network changed under the writer's connections (a healed partition):
    /// a connection that lost packets waits out TCP's retransmission backoff, seconds after
    /// the link is back, so the writer drops its connections and connects afresh.
    pub network_changes: std::sync::atomic::AtomicU64,
    /// What [`Shared::wait_for_ack_after`] prints when no write was acknowledged for
    /// [`STALL_REPORT_AFTER`], and adds to its panic at [`STALL_LIMIT`]: each node's view
    /// ([`stall_report`]), set by a test that can ask the nodes.
    pub stall_report: Mutex<Option<StallReport>>,
}

/// See [`Shared::stall_report`].
pub type StallReport = Box<dyn Fn(&Shared) -> String + Send>;

/// How long [`Shared::wait_for_ack_after`] waits for an acknowledgement.
pub const STALL_LIMIT: Duration = Duration::from_secs(60);

/// How long [`Shared::wait_for_ack_after`] waits before it prints the stall report once and
/// waits on: a stall that ends before [`STALL_LIMIT`] (a later partition changed things) is
/// then still explained while it lasts.
pub const STALL_REPORT_AFTER: Duration = Duration::from_secs(10);

impl Shared {
    pub fn new(endpoints: Vec<String>) -> Shared {
        Shared { endpoints: Mutex::new(endpoints.into_iter().map(Some).collect()), ..Shared::default() }
    }

    /// Has a stall's report say what each node sees of `stream` ([`stall_report`]) and what
    /// the metrics at `metrics` (the nodes' as they were started: a node restarted on another
    /// port shows "no metrics") say ([`raft_metrics_view`]).
    pub fn report_stalls_of(&self, stream: &str, metrics: Vec<std::net::SocketAddr>) {
        let stream = stream.to_owned();
        *self.stall_report.lock().unwrap() =
            Some(Box::new(move |shared| stall_report(shared, &stream) + &raft_metrics_view(&metrics)));
    }

    /// Calls acknowledged after `moment`.
    pub fn acks_after(&self, moment: Instant) -> usize {
        self.acked_at.lock().unwrap().iter().filter(|(at, _)| *at > moment).count()
    }

    /// The first acknowledgement after `moment` by a node other than `not_from` (an answer a
    /// node sent just before it was killed or cut off can arrive after, and does not count).
    pub fn wait_for_ack_after(&self, moment: Instant, not_from: Option<usize>) -> Instant {
        let start = Instant::now();
        let mut reported = false;
        loop {
            let acked_at = self.acked_at.lock().unwrap();
            let after = acked_at.iter().filter(|(at, node)| *at > moment && Some(*node) != not_from).map(|(at, _)| *at);
            if let Some(at) = after.min() {
                return at;
            }
            drop(acked_at);
            let report = || self.stall_report.lock().unwrap().as_ref().map(|report| report(self)).unwrap_or_default();
            if !reported && start.elapsed() >= STALL_REPORT_AFTER {
                reported = true;
                eprintln!("no write acknowledged for {STALL_REPORT_AFTER:?} so far{}", report());
            }
            if start.elapsed() >= STALL_LIMIT {
                panic!("no write was acknowledged for {STALL_LIMIT:?}{}", report());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// What each node of `shared` says now, for a stall's report: the leader of each of
/// `stream`'s shards as it sees it (DescribeStreamRoutes, which answers its own view at once),
/// and its answer to a PutRecord. Each asked within a few seconds: a node cut off answers
/// nothing.
pub fn stall_report(shared: &Shared, stream: &str) -> String {
    let endpoints: Vec<Option<String>> = shared.endpoints.lock().unwrap().clone();
    let stream = stream.to_owned();
    run(move || async move {
        let mut report = String::new();
        for (node, endpoint) in endpoints.iter().enumerate() {
            let Some(endpoint) = endpoint else {
                report.push_str(&format!("\nnode {}: down", node + 1));
                continue;
            };
            let Some(Ok(client)) = within(Duration::from_secs(2), Client::connect(endpoint)).await else {
                report.push_str(&format!("\nnode {}: no connection within 2 s", node + 1));
                continue;
            };
            let routes = DescribeStreamRoutesInput { stream_name: Some(stream.clone()), stream_arn: None };
            let leaders = match within(Duration::from_secs(3), client.call(&routes)).await {
                Some(Ok(output)) => {
                    format!("leaders {:?}", output.shards.iter().map(|shard| shard.leader_node_id).collect::<Vec<_>>())
                }
                Some(Err(error)) => format!("routes refused: {error}"),
                None => "no routes within 3 s".to_owned(),
            };
            let put = PutRecordInput {
                stream_name: Some(stream.clone()),
                data: Bytes::from_static(b"stall probe"),
                partition_key: Some("stall".into()),
                ..Default::default()
            };
            let started = Instant::now();
            let answer = match within(Duration::from_secs(5), client.call(&put)).await {
                Some(Ok(output)) => format!("acknowledged as {}", output.sequence_number),
                Some(Err(error)) => format!("refused: {error}"),
                None => "no answer".to_owned(),
            };
            report.push_str(&format!(
                "\nnode {}: {leaders}; a PutRecord: {answer} after {:?}",
                node + 1,
                started.elapsed()
            ));
        }
        report
    })
}

/// Waits (10 s at most) until each node at `metrics` counts `expected` incoming peer
/// connections open (one per other member and core), and panics with the nodes' metrics if
/// one does not. More are connections that died in a partition but are still counted open on
/// the listener's side: they once piled up until the listener refused the members' new ones.
pub fn wait_for_incoming_peer_connections(metrics: &[std::net::SocketAddr], expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts: Vec<f64> =
            metrics.iter().map(|addr| crate::common::scrape(*addr, "sluice_peer_connections_incoming")).collect();
        if counts.iter().all(|&count| count == expected as f64) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after 10 s the nodes count {counts:?} incoming peer connections, not {expected} each:{}",
            raft_metrics_view(metrics)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Raft and peer-network samples of each node's metrics at `metrics` (node `i + 1` at
/// `metrics[i]`), for a failure's message: which member a leader counts behind and by how
/// much, what each has left to apply, its snapshots, and which peers each node is connected to.
pub fn raft_metrics_view(metrics: &[std::net::SocketAddr]) -> String {
    const FAMILIES: [&str; 10] = [
        "sluice_raft_follower_lag_entries",
        "sluice_raft_apply_lag_entries",
        "sluice_raft_snapshots_restored_total",
        "sluice_raft_snapshots_failed_total",
        "sluice_raft_snapshot_records_copied_total",
        "sluice_raft_groups_led",
        "sluice_peers_connected",
        "sluice_peer_connections_incoming",
        "sluice_peer_connections_refused_total",
        "sluice_raft_leader_changes_total",
    ];
    let mut view = String::new();
    for (node, addr) in metrics.iter().enumerate() {
        let Some((_, text)) = crate::common::try_http_get(*addr, "/metrics") else {
            view.push_str(&format!("\nnode {}: no metrics", node + 1));
            continue;
        };
        let samples: Vec<&str> =
            text.lines().filter(|line| FAMILIES.iter().any(|family| line.starts_with(family))).collect();
        view.push_str(&format!("\nnode {}: {}", node + 1, samples.join("; ")));
    }
    view
}

/// `work`, or `None` once `limit` has passed: a node cut off by a partition answers nothing,
/// and neither does a connect to it.
pub async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(work.await) }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await
}

/// How long a writer waits for one node to answer before trying the next.
pub const CALL_LIMIT: Duration = Duration::from_millis(500);

/// How long a writer leaves a node alone after it said nothing within [`CALL_LIMIT`], as a
/// client leaves a broker it lost: otherwise each round of the nodes waits on it again.
pub const SILENT_NODE_SKIPPED_FOR: Duration = Duration::from_secs(2);

/// Calls `input` on each live node in turn until one answers it (the metadata leader, for
/// catalog changes); gives up after `deadline`.
pub async fn call_any<I>(shared: &Shared, input: &I, deadline: Duration) -> I::Output
where
    I: OperationInput + EncodeInput + std::fmt::Debug,
{
    let start = Instant::now();
    loop {
        let endpoints: Vec<String> = shared.endpoints.lock().unwrap().iter().flatten().cloned().collect();
        for endpoint in endpoints {
            if let Some(Ok(client)) = within(CALL_LIMIT, Client::connect(&endpoint)).await {
                if let Some(Ok(output)) = within(Duration::from_secs(5), client.call(input)).await {
                    return output;
                }
            }
        }
        assert!(start.elapsed() < deadline, "no node answered {input:?}");
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates `stream` (one shard) through whichever node leads the catalog, then waits until
/// every node's catalog has it.
pub fn create_everywhere(shared: &std::sync::Arc<Shared>, stream: &str) {
    let (shared, stream) = (shared.clone(), stream.to_owned());
    run(move || async move {
        let create = CreateStreamInput { stream_name: stream.clone(), shard_count: Some(1), ..Default::default() };
        call_any(&shared, &create, Duration::from_secs(60)).await;
        let endpoints: Vec<String> = shared.endpoints.lock().unwrap().iter().flatten().cloned().collect();
        for endpoint in endpoints {
            let client = Client::connect(&endpoint).await.unwrap();
            let describe = DescribeStreamSummaryInput { stream_name: Some(stream.clone()), stream_arn: None };
            let start = Instant::now();
            while client.call(&describe).await.is_err() {
                assert!(start.elapsed() < Duration::from_secs(30), "the stream never reached {endpoint}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    });
}

/// Puts records to `stream` until told to stop, always to the node that answered last and to
/// the next one when that fails or says nothing within [`CALL_LIMIT`] (skipping a node that
/// said nothing for [`SILENT_NODE_SKIPPED_FOR`] while another is left). Every record's data
/// starts with `label`, so two writers never write the same bytes.
pub async fn write(shared: &Shared, stream: &str, label: &str, seed: u64) {
    let mut rng = Rng(seed);
    let mut clients: HashMap<usize, (String, Client)> = HashMap::new();
    let mut target = 0;
    let mut failures_in_a_row = 0;
    let nodes = shared.endpoints.lock().unwrap().len();
    let mut silent_until: HashMap<usize, Instant> = HashMap::new();
    let mut network_changes = 0;
    for call in 0u64.. {
        while shared.paused.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let changes = shared.network_changes.load(Ordering::SeqCst);
        if changes != network_changes {
            network_changes = changes;
            clients.clear();
            silent_until.clear();
        }
        for _ in 0..nodes {
            if silent_until.get(&target).is_some_and(|until| Instant::now() < *until) {
                target = (target + 1) % nodes;
            }
        }
        let endpoint = shared.endpoints.lock().unwrap()[target].clone();
        let client = match endpoint {
            None => None,
            Some(endpoint) => match clients.get(&target) {
                Some((known, client)) if *known == endpoint && client.connection_error().is_none() => {
                    Some(client.clone())
                }
                _ => match within(CALL_LIMIT, Client::connect(&endpoint)).await {
                    Some(Ok(client)) => {
                        clients.insert(target, (endpoint, client.clone()));
                        Some(client)
                    }
                    Some(Err(_)) => None,
                    None => {
                        silent_until.insert(target, Instant::now() + SILENT_NODE_SKIPPED_FOR);
                        None
                    }
                },
            },
        };
        let entries: Vec<_> = (0..1 + rng.next() % 20)
            .map(|i| {
                let mut data = format!("{label}/{call}/{i}/").into_bytes();
                let filler = (rng.next() % 1500) as usize;
                data.resize(data.len() + filler, (rng.next() & 0xff) as u8);
                PutRecordsRequestEntry {
                    data: Bytes::from(data),
                    partition_key: Some(format!("key-{}", rng.next() % 64)),
                    explicit_hash_key: None,
                }
            })
            .collect();
        let request =
            PutRecordsInput { stream_name: Some(stream.into()), records: entries.clone(), ..Default::default() };
        let answered = match client {
            Some(client) => match within(CALL_LIMIT, client.call(&request)).await {
                Some(answer) => answer.ok(),
                None => {
                    // A connection to a node that went silent: start afresh next time.
                    clients.remove(&target);
                    silent_until.insert(target, Instant::now() + SILENT_NODE_SKIPPED_FOR);
                    None
                }
            },
            None => None,
        };
        let mut acknowledged = 0;
        if let Some(response) = answered {
            let mut acked = shared.acked.lock().unwrap();
            for (entry, result) in entries.into_iter().zip(response.records) {
                if let Some(sequence) = result.sequence_number {
                    let previous = acked.insert(sequence.as_u128().unwrap(), entry.data);
                    assert!(previous.is_none(), "sequence number {sequence:?} acknowledged twice");
                    acknowledged += 1;
                }
            }
        }
        if acknowledged > 0 {
            shared.acked_at.lock().unwrap().push((Instant::now(), target));
            shared.leader.store(target, Ordering::SeqCst);
            failures_in_a_row = 0;
        } else {
            target = (target + 1) % nodes;
            failures_in_a_row += 1;
            if failures_in_a_row % nodes == 0 {
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Every record of `stream`'s one shard on the node at `endpoint`, from the trim horizon.
pub async fn read_stream_shard(endpoint: &str, stream: &str) -> Option<Vec<Record>> {
    let client = within(Duration::from_secs(5), Client::connect(endpoint)).await?.ok()?;
    read_shard(&client, stream).await
}

/// [`read_stream_shard`] through a client already connected.
pub async fn read_shard(client: &Client, stream: &str) -> Option<Vec<Record>> {
    let request = GetShardIteratorInput {
        stream_name: Some(stream.into()),
        stream_arn: None,
        shard_id: "shardId-000000000000".into(),
        shard_iterator_type: ShardIteratorType::TrimHorizon,
        starting_sequence_number: None,
        timestamp: None,
    };
    let mut iterator = client.call(&request).await.ok()?.shard_iterator?;
    let mut records = Vec::new();
    loop {
        let page =
            client.call(&GetRecordsInput { shard_iterator: iterator.clone(), ..Default::default() }).await.ok()?;
        if page.records.is_empty() {
            return Some(records);
        }
        records.extend(page.records);
        iterator = page.next_shard_iterator?;
    }
}

/// The checker: every acknowledged record on `records` exactly once, at its sequence number,
/// byte-exact, and sequence numbers strictly increasing.
pub fn check_node(node: usize, records: &[Record], acked: &BTreeMap<u128, Bytes>) -> Result<(), String> {
    let sequences: Vec<u128> = records.iter().map(|r| r.sequence_number.as_u128().unwrap()).collect();
    if let Some(pair) = sequences.windows(2).find(|pair| pair[0] >= pair[1]) {
        return Err(format!("node {node}: sequence numbers out of order or repeated: {pair:?}"));
    }
    let by_sequence: HashMap<u128, &Record> = sequences.iter().copied().zip(records).collect();
    let mut data_seen: HashMap<&Bytes, usize> = HashMap::new();
    for record in records {
        *data_seen.entry(&record.data).or_default() += 1;
    }
    for (sequence, data) in acked {
        let Some(record) = by_sequence.get(sequence) else {
            // Whether the node is behind (every record missing is past its last) or holds a
            // hole tells a slow member from a lost record.
            let missing = acked.keys().filter(|sequence| !by_sequence.contains_key(sequence)).count();
            let past_last = acked.keys().filter(|&&acked| sequences.last().is_none_or(|&last| acked > last)).count();
            return Err(format!(
                "node {node}: acknowledged record {sequence} is missing ({missing} of {} acknowledged missing, \
                 {past_last} past its last record {:?})",
                acked.len(),
                sequences.last()
            ));
        };
        if record.data != data {
            return Err(format!("node {node}: record {sequence} changed"));
        }
        if data_seen[data] != 1 {
            return Err(format!("node {node}: record {sequence} is stored {} times", data_seen[data]));
        }
    }
    Ok(())
}

/// Waits (up to 30 s) until every node at `endpoints` serves every record of `acked` as
/// [`check_node`] demands and all serve the very same records; returns how many were
/// acknowledged and how many each node stores (more: committed, but the answer was lost).
pub fn wait_until_every_node_agrees(
    endpoints: Vec<String>,
    stream: &str,
    acked: BTreeMap<u128, Bytes>,
) -> (usize, usize) {
    wait_until_every_node_agrees_explained(endpoints, stream, acked, Box::new(String::new))
}

/// [`wait_until_every_node_agrees`], whose panic adds what `explain` says then (the nodes'
/// Raft metrics, say: whether the member behind lacks the entries or has not applied them).
pub fn wait_until_every_node_agrees_explained(
    endpoints: Vec<String>,
    stream: &str,
    acked: BTreeMap<u128, Bytes>,
    explain: Box<dyn Fn() -> String + Send>,
) -> (usize, usize) {
    let stream = stream.to_owned();
    run(move || async move {
        let start = Instant::now();
        loop {
            let mut all = Vec::new();
            for endpoint in &endpoints {
                all.push(read_stream_shard(endpoint, &stream).await.unwrap_or_default());
            }
            let verdicts: Result<(), String> =
                all.iter().enumerate().try_for_each(|(node, records)| check_node(node + 1, records, &acked));
            let same = all.windows(2).all(|pair| pair[0] == pair[1]);
            if verdicts.is_ok() && same {
                return (acked.len(), all[0].len());
            }
            if start.elapsed() > Duration::from_secs(30) {
                let lengths: Vec<usize> = all.iter().map(Vec::len).collect();
                panic!(
                    "after 30 s the nodes still differ ({lengths:?} records): {verdicts:?}, same: {same}{}",
                    explain()
                );
            }
            glommio::timer::sleep(Duration::from_millis(200)).await;
        }
    })
}

pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Measures the disk beside a test: a thread appends 4 KiB to a file in `dir` and fdatasyncs
/// it every 50 ms, noting how long each sync took. Replication waits on fdatasync (a vote, an
/// entry), so a failover that took long is read beside the syncs of its moment: on a machine
/// shared with builds, a slow disk and a slow election look alike from the client.
pub struct DiskProbe {
    samples: std::sync::Arc<Mutex<Vec<(Instant, Duration)>>>,
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DiskProbe {
    pub fn start(dir: &std::path::Path) -> DiskProbe {
        use std::io::Write;
        let mut file = std::fs::File::create(dir.join("disk-probe")).unwrap();
        let samples = std::sync::Arc::new(Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let thread = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::spawn(move || {
                let block = [0x5a_u8; 4096];
                while !stop.load(Ordering::SeqCst) {
                    let start = Instant::now();
                    file.write_all(&block).unwrap();
                    file.sync_data().unwrap();
                    samples.lock().unwrap().push((start, start.elapsed()));
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        DiskProbe { samples, stop, thread: Some(thread) }
    }

    /// The slowest sync that started in `from..to` (or was still running at `from`).
    pub fn slowest_between(&self, from: Instant, to: Instant) -> Duration {
        let samples = self.samples.lock().unwrap();
        samples
            .iter()
            .filter(|(at, took)| *at < to && *at + *took > from)
            .map(|(_, took)| *took)
            .max()
            .unwrap_or_default()
    }

    /// Every sync's duration, sorted.
    pub fn finish(mut self) -> Vec<Duration> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        let mut took: Vec<Duration> = self.samples.lock().unwrap().iter().map(|(_, took)| *took).collect();
        took.sort();
        took
    }
}
