//! Replication end to end: three real `sluiced` processes on loopback (`--node-id`,
//! `--peers`), a stream created through one of them, records put continuously by a writer that
//! knows only the nodes' addresses, and the leader of the shard killed with SIGKILL and
//! restarted again and again. An independent checker then reads the shard from every node
//! and demands that every acknowledged record is there exactly once, in order, byte-exact,
//! and that all three nodes serve the very same records (sequence numbers, arrival times,
//! keys, data).
//!
//! The writer finds the leader by trying the nodes in turn (a follower answers "not the
//! leader"; forwarding is not implemented yet). Failover is the time from the leader's
//! SIGKILL to the next acknowledged write, printed with `--nocapture`.
//!
//! `SLUICE_CLUSTER_KILL_SECONDS` (default 20; CI sets 8) is how long leaders are killed for.

mod common;

use bytes::Bytes;
use common::{free_port, run, Daemon, Rng};
use sluice_client::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STREAM: &str = "replicated";
const NODES: usize = 3;
/// One core per node: the machine is shared, and the shard and the metadata group then live
/// on the same core, as they would on core 0 of a bigger node.
const CORES: usize = 1;

/// What the writer shares with the test's thread.
#[derive(Default)]
struct Shared {
    /// Each node's native endpoint, `None` while it is down.
    endpoints: Mutex<Vec<Option<String>>>,
    /// The node that acknowledged the last write: the shard's leader.
    leader: AtomicUsize,
    /// Sequence number → data, of every acknowledged record.
    acked: Mutex<BTreeMap<u128, Bytes>>,
    /// When each acknowledged call was answered, and by which node.
    acked_at: Mutex<Vec<(Instant, usize)>>,
    stop: AtomicBool,
}

fn start_node(id: usize, peers: &str) -> Daemon {
    let node_id = (id + 1).to_string();
    Daemon::start_with("unlimited", CORES, &["--node-id", &node_id, "--peers", peers])
}

/// Calls `input` on each live node in turn until one answers it (the metadata leader, for
/// catalog changes); gives up after `deadline`.
async fn call_any<I>(shared: &Shared, input: &I, deadline: Duration) -> I::Output
where
    I: OperationInput + EncodeInput + std::fmt::Debug,
{
    let start = Instant::now();
    loop {
        let endpoints: Vec<String> = shared.endpoints.lock().unwrap().iter().flatten().cloned().collect();
        for endpoint in endpoints {
            if let Ok(client) = Client::connect(&endpoint).await {
                if let Ok(output) = client.call(input).await {
                    return output;
                }
            }
        }
        assert!(start.elapsed() < deadline, "no node answered {input:?}");
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

/// Puts records until told to stop, always to the node that answered last and to the next
/// one when that fails.
async fn write(shared: Arc<Shared>) {
    let mut rng = Rng(0x5EED_0FC1_A57E_1200);
    let mut clients: HashMap<usize, (String, Client)> = HashMap::new();
    let mut target = 0;
    let mut failures_in_a_row = 0;
    for call in 0u64.. {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let endpoint = shared.endpoints.lock().unwrap()[target].clone();
        let client = match endpoint {
            None => None,
            Some(endpoint) => match clients.get(&target) {
                Some((known, client)) if *known == endpoint && client.connection_error().is_none() => {
                    Some(client.clone())
                }
                _ => match Client::connect(&endpoint).await {
                    Ok(client) => {
                        clients.insert(target, (endpoint, client.clone()));
                        Some(client)
                    }
                    Err(_) => None,
                },
            },
        };
        let entries: Vec<_> = (0..1 + rng.next() % 20)
            .map(|i| {
                let mut data = format!("{call}/{i}/").into_bytes();
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
            PutRecordsInput { stream_name: Some(STREAM.into()), records: entries.clone(), ..Default::default() };
        let answered = match client {
            Some(client) => client.call(&request).await.ok(),
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
            target = (target + 1) % NODES;
            failures_in_a_row += 1;
            if failures_in_a_row % NODES == 0 {
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Every record of the stream's one shard on the node at `endpoint`, from the trim horizon.
async fn read_shard(endpoint: &str) -> Option<Vec<Record>> {
    let client = Client::connect(endpoint).await.ok()?;
    let request = GetShardIteratorInput {
        stream_name: Some(STREAM.into()),
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
fn check_node(node: usize, records: &[Record], acked: &BTreeMap<u128, Bytes>) -> Result<(), String> {
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
            return Err(format!("node {node}: acknowledged record {sequence} is missing"));
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

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[test]
fn leader_kills_lose_no_acknowledged_record_and_every_node_serves_the_same() {
    let kill_seconds: u64 =
        std::env::var("SLUICE_CLUSTER_KILL_SECONDS").ok().and_then(|seconds| seconds.parse().ok()).unwrap_or(20);
    let peers: Vec<String> = (0..NODES).map(|id| format!("{}=127.0.0.1:{}", id + 1, free_port())).collect();
    let peers = peers.join(",");
    let mut daemons: Vec<Daemon> = (0..NODES).map(|id| start_node(id, &peers)).collect();
    let shared = Arc::new(Shared::default());
    *shared.endpoints.lock().unwrap() = daemons.iter().map(|daemon| Some(daemon.endpoint())).collect();

    // The stream, through whichever node leads the catalog; then visible on every node.
    let creator = shared.clone();
    run(move || async move {
        let create = CreateStreamInput { stream_name: STREAM.into(), shard_count: Some(1), ..Default::default() };
        call_any(&creator, &create, Duration::from_secs(60)).await;
        let endpoints: Vec<String> = creator.endpoints.lock().unwrap().iter().flatten().cloned().collect();
        for endpoint in endpoints {
            let client = Client::connect(&endpoint).await.unwrap();
            let describe = DescribeStreamSummaryInput { stream_name: Some(STREAM.into()), stream_arn: None };
            let start = Instant::now();
            while client.call(&describe).await.is_err() {
                assert!(start.elapsed() < Duration::from_secs(30), "the stream never reached {endpoint}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    });

    let writer_shared = shared.clone();
    let writer = std::thread::spawn(move || run(move || write(writer_shared)));

    // Kill the shard's leader, wait for the next acknowledged write, restart the dead node.
    // The first write another node acknowledges after `moment` (an answer the killed leader
    // sent just before its death can arrive after it, and does not count).
    let wait_for_ack_after = |moment: Instant, not_from: Option<usize>| -> Instant {
        let start = Instant::now();
        loop {
            let acked_at = shared.acked_at.lock().unwrap();
            let after = acked_at.iter().filter(|(at, node)| *at > moment && Some(*node) != not_from).map(|(at, _)| *at);
            if let Some(at) = after.min() {
                return at;
            }
            drop(acked_at);
            assert!(start.elapsed() < Duration::from_secs(60), "no write was acknowledged for 60 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let mut failovers = Vec::new();
    let started = Instant::now();
    let mut healthy_since = wait_for_ack_after(started, None);
    while started.elapsed() < Duration::from_secs(kill_seconds) || failovers.is_empty() {
        // Let writes flow for a moment with every node up.
        wait_for_ack_after(healthy_since, None);
        std::thread::sleep(Duration::from_millis(300));
        let leader = shared.leader.load(Ordering::SeqCst);
        let killed_at = Instant::now();
        daemons[leader].kill();
        shared.endpoints.lock().unwrap()[leader] = None;
        let acknowledged_at = wait_for_ack_after(killed_at, Some(leader));
        failovers.push(acknowledged_at - killed_at);
        eprintln!(
            "killed node {} (the leader): next write acknowledged after {:?}",
            leader + 1,
            acknowledged_at - killed_at
        );
        daemons[leader].restart();
        shared.endpoints.lock().unwrap()[leader] = Some(daemons[leader].endpoint());
        healthy_since = Instant::now();
    }
    wait_for_ack_after(healthy_since, None);
    shared.stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let acked = std::mem::take(&mut *shared.acked.lock().unwrap());

    // Every node catches up (a restarted one from its peers), then all must agree.
    let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
    let checked = run_returning(move || async move {
        let start = Instant::now();
        loop {
            let mut all = Vec::new();
            for endpoint in &endpoints {
                all.push(read_shard(endpoint).await.unwrap_or_default());
            }
            let verdicts: Result<(), String> =
                all.iter().enumerate().try_for_each(|(node, records)| check_node(node + 1, records, &acked));
            let same = all.windows(2).all(|pair| pair[0] == pair[1]);
            if verdicts.is_ok() && same {
                return (acked.len(), all[0].len());
            }
            if start.elapsed() > Duration::from_secs(30) {
                let lengths: Vec<usize> = all.iter().map(Vec::len).collect();
                panic!("after 30 s the nodes still differ ({lengths:?} records): {verdicts:?}, same: {same}");
            }
            glommio::timer::sleep(Duration::from_millis(200)).await;
        }
    });
    let (acknowledged, stored) = checked;
    failovers.sort();
    eprintln!(
        "{} leader kills, {acknowledged} records acknowledged, {stored} stored on each node (the rest committed \
         but not acknowledged before a kill); failover p50 {:?}, p99 {:?}, max {:?}",
        failovers.len(),
        percentile(&failovers, 0.5),
        percentile(&failovers, 0.99),
        failovers.last().unwrap(),
    );
    assert!(acknowledged > 0);
    for daemon in &mut daemons {
        daemon.stop();
    }
}

/// [`run`], returning what `work` returns.
fn run_returning<T, F, Fut>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    let (sender, receiver) = std::sync::mpsc::channel();
    run(move || async move {
        sender.send(work().await).unwrap();
    });
    receiver.recv().unwrap()
}
