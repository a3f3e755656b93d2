//! Replication end to end: three real `sluiced` processes on loopback (`--node-id`,
//! `--peers`), a stream created through one of them, records put continuously by a writer that
//! knows only the nodes' addresses, and the leader of the shard killed with SIGKILL and
//! restarted again and again. An independent checker then reads the shard from every node
//! and demands that every acknowledged record is there exactly once, in order, byte-exact,
//! and that all three nodes serve the very same records (sequence numbers, arrival times,
//! keys, data).
//!
//! In the kill test the nodes' `--peers` name no client addresses, so nothing is forwarded and
//! the writer finds the leader by trying the nodes in turn (a follower answers "not the
//! leader"). In the forwarding test they do, and one writer talks to one follower only.
//! Failover is the time from the leader's SIGKILL to the next acknowledged write, printed with
//! `--nocapture`.
//!
//! The outage test takes two nodes down at once (nothing may be acknowledged), then all three
//! (nothing acknowledged may be lost), `SLUICE_CLUSTER_OUTAGES` times (default 2).
//!
//! In the partition test each node runs in a network namespace of its own, and the test cuts
//! the leader or a follower off and heals it, asking the cut-off node for LATEST (it must
//! refuse); then every node loses packets; then the link between a leader and a follower alone
//! is cut (see its section below).
//!
//! `SLUICE_CLUSTER_KILL_SECONDS` (default 20; CI sets 8) is how long leaders are killed for,
//! and `SLUICE_CLUSTER_PARTITION_SECONDS` how long partitions go on. For issue 13's figures
//! (100 kills, 50 partitions, a release build) `SLUICE_CLUSTER_KILLS` and
//! `SLUICE_CLUSTER_PARTITIONS` set the least number of each, and `SLUICE_CLUSTER_WRITERS` (one
//! by default) how many writers put records at once, each with its own records.
//!
//! `SLUICE_CLUSTER_CORES` sets the cores per node of every test: otherwise one, but two in the
//! partition test (the issue's partition figures until 2026-12-06 were measured with one: set
//! it to 1 to compare).
//!
//! With `SLUICE_CLUSTER_LOADGEN=/path/to/sluice-loadgen` the kill, outage and partition tests
//! put their load through that binary (`sluice-loadgen endure`, a real client process that
//! knows every node's address) instead of the writer threads, and learn what it got
//! acknowledged, when and by which node from its ack log (`replication/loadgen.rs`). Nodes killed are then restarted
//! on their own addresses, which the loadgen knows.

mod common;
mod replication;

use bytes::Bytes;
use common::{free_port, run, Daemon, Rng};
use replication::delay::Delay;
use replication::loadgen::Loadgen;
use replication::netns::{Network, Way};
use replication::{
    check_node, create_everywhere, percentile, read_shard, read_stream_shard, wait_until_every_node_agrees, within,
    write, DiskProbe, Shared,
};
use sluice_client::aws::HttpClient;
use sluice_client::*;
use sluice_testkit::free_port_run;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STREAM: &str = "replicated";
const NODES: usize = 3;
/// Cores per node: one unless `SLUICE_CLUSTER_CORES` says otherwise. One, in CI: the machine
/// is shared, and the shard and the metadata group then live on the same core, as they would
/// on core 0 of a bigger node. (The forwarding test's members run two, and so do the partition
/// test's: [`partition_test_cores`].)
fn cores() -> usize {
    env_number("SLUICE_CLUSTER_CORES", 1)
}

/// Cores per node of the partition test: two unless `SLUICE_CLUSTER_CORES` says otherwise, so
/// that CI cuts links carrying one peer connection per core and member (a leak of dead ones
/// filled a core's listener only with two cores per node, `docs/replication.md`, "What is
/// left"). With CI's durations and one core kept busy beside it, the whole cluster binary
/// passed 3 of 3 runs so (2026-12-06).
fn partition_test_cores() -> usize {
    env_number("SLUICE_CLUSTER_CORES", 2)
}

/// A number from the environment, or `default`.
fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// Starts `SLUICE_CLUSTER_WRITERS` writers (seeds from `seed`), each on a thread of its own.
fn start_writers(
    shared: &Arc<Shared>,
    stream: &'static str,
    label: &'static str,
    seed: u64,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..env_number("SLUICE_CLUSTER_WRITERS", 1u64))
        .map(|writer| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                run(move || async move { write(&shared, stream, &format!("{label}{writer}"), seed + writer).await })
            })
        })
        .collect()
}

/// Three nodes on loopback whose `--peers` name no client addresses (nothing is forwarded),
/// under load on `STREAM`: writer threads, or with SLUICE_CLUSTER_LOADGEN that binary, which
/// creates the stream itself through whichever node answers.
struct LoadedCluster {
    daemons: Vec<Daemon>,
    shared: Arc<Shared>,
    writers: Vec<std::thread::JoinHandle<()>>,
    load: Option<Loadgen>,
    /// What puts the load, for the figures' log lines.
    load_name: &'static str,
}

impl LoadedCluster {
    /// Starts the nodes and the load; the writer threads are labelled `label` and seeded from
    /// `seed`.
    fn start(label: &'static str, seed: u64) -> LoadedCluster {
        let peers: Vec<String> =
            (0..NODES).map(|id| format!("{}=127.0.0.1:{}", id + 1, free_port_run(cores()))).collect();
        let peers = peers.join(",");
        let daemons: Vec<Daemon> = (0..NODES).map(|id| start_node(id, &peers)).collect();
        let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
        let shared = Arc::new(Shared::new(endpoints.clone()));
        shared.report_stalls_of(STREAM, daemons.iter().map(|daemon| daemon.metrics_addr).collect());
        let (writers, load) = match replication::loadgen::binary() {
            None => {
                create_everywhere(&shared, STREAM);
                (start_writers(&shared, STREAM, label, seed), None)
            }
            Some(binary) => {
                let nodes = (0..NODES).collect();
                (Vec::new(), Some(Loadgen::start(&binary, None, shared.clone(), nodes, &endpoints, STREAM, 1, false)))
            }
        };
        let load_name = if load.is_some() { "sluice-loadgen endure" } else { "writer threads" };
        LoadedCluster { daemons, shared, writers, load, load_name }
    }

    /// Starts node `node` again after a kill: on its own addresses when the loadgen, which
    /// knows the nodes by them, is the load.
    fn restart(&mut self, node: usize) {
        if self.load.is_some() {
            restart_member(&mut self.daemons[node]);
        } else {
            self.daemons[node].restart();
        }
        self.shared.endpoints.lock().unwrap()[node] = Some(self.daemons[node].endpoint());
    }

    /// Once one more write is acknowledged after `moment`, stops the load and waits until
    /// every node serves every acknowledged record, once and alike
    /// ([`wait_until_every_node_agrees`]): how many were acknowledged and how many each node
    /// stores (more: committed, but the answer was lost).
    fn finish(&mut self, moment: Instant) -> (usize, usize) {
        self.shared.wait_for_ack_after(moment, None);
        self.shared.stop.store(true, Ordering::SeqCst);
        self.writers.drain(..).for_each(|writer| writer.join().unwrap());
        if let Some(load) = self.load.take() {
            load.stop();
        }
        let acked = std::mem::take(&mut *self.shared.acked.lock().unwrap());
        let (acknowledged, stored) =
            wait_until_every_node_agrees(self.daemons.iter().map(Daemon::endpoint).collect(), STREAM, acked);
        assert!(acknowledged > 0);
        (acknowledged, stored)
    }
}

fn start_node(id: usize, peers: &str) -> Daemon {
    let node_id = (id + 1).to_string();
    Daemon::start_with("unlimited", cores(), &["--node-id", &node_id, "--peers", peers])
}

#[test]
fn leader_kills_lose_no_acknowledged_record_and_every_node_serves_the_same() {
    let kill_seconds: u64 = env_number("SLUICE_CLUSTER_KILL_SECONDS", 20);
    let kills_min: usize = env_number("SLUICE_CLUSTER_KILLS", 1);
    let mut cluster = LoadedCluster::start("kill", 0x5EED_0FC1_A57E_1200);
    let shared = cluster.shared.clone();

    // Kill the shard's leader, wait for the next acknowledged write, restart the dead node.
    let wait_for_ack_after = |moment, not_from| shared.wait_for_ack_after(moment, not_from);
    let mut failovers = Vec::new();
    let started = Instant::now();
    let mut healthy_since = wait_for_ack_after(started, None);
    while started.elapsed() < Duration::from_secs(kill_seconds) || failovers.len() < kills_min {
        // Let writes flow for a moment with every node up.
        wait_for_ack_after(healthy_since, None);
        std::thread::sleep(Duration::from_millis(300));
        let leader = shared.leader.load(Ordering::SeqCst);
        let killed_at = Instant::now();
        cluster.daemons[leader].kill();
        shared.endpoints.lock().unwrap()[leader] = None;
        let acknowledged_at = wait_for_ack_after(killed_at, Some(leader));
        failovers.push(acknowledged_at - killed_at);
        eprintln!(
            "killed node {} (the leader): next write acknowledged after {:?}",
            leader + 1,
            acknowledged_at - killed_at
        );
        cluster.restart(leader);
        healthy_since = Instant::now();
    }
    // Every node catches up (a restarted one from its peers), then all must agree.
    let (acknowledged, stored) = cluster.finish(healthy_since);
    failovers.sort();
    eprintln!(
        "{} leader kills, {acknowledged} records acknowledged, {stored} stored on each node (the rest committed \
         but not acknowledged before a kill); failover p50 {:?}, p99 {:?}, max {:?}; load: {}",
        failovers.len(),
        percentile(&failovers, 0.5),
        percentile(&failovers, 0.99),
        failovers.last().unwrap(),
        cluster.load_name,
    );
    // The last kill's survivors saw the shard's leader die and another member take over.
    let changes: f64 = cluster
        .daemons
        .iter()
        .map(|daemon| common::scrape(daemon.metrics_addr, "sluice_raft_leader_changes_total"))
        .sum();
    eprintln!("leader changes counted by the nodes (since their last restart): {changes}");
    assert!(changes >= 1.0, "no leader change counted after {} kills", failovers.len());
    for daemon in &mut cluster.daemons {
        daemon.stop();
    }
}

/// Two of the three nodes SIGKILLed under writes: the shard's leader, alone, commits nothing,
/// so it acknowledges nothing (its callers hear a retriable error after the commit wait), yet
/// it still serves every record acknowledged before; once one of the two is back, writes go on.
/// Then every node is SIGKILLed at once under writes and restarted: each loses what it held in
/// memory (records acknowledged and queued to its journal but not yet written among it, which
/// it applies again from its Raft log), and every acknowledged record is still served, once
/// and alike, by every node. `SLUICE_CLUSTER_OUTAGES` (default 2) is how many times both are
/// done; the load is the writer threads or, with `SLUICE_CLUSTER_LOADGEN`, the loadgen.
#[test]
fn without_a_quorum_nothing_is_acknowledged_and_killing_every_node_at_once_loses_nothing() {
    let outages: usize = env_number("SLUICE_CLUSTER_OUTAGES", 2);
    let mut cluster = LoadedCluster::start("outage", 0x5EED_0FC1_A57E_1300);
    let (shared, daemons) = (cluster.shared.clone(), &mut cluster.daemons);

    // A call answered after this long past the kills was not committed before them: a
    // proposer waits this long at most for its entry's commit, then answers that it may not
    // be stored.
    let commit_wait = Duration::from_millis(sluice_cluster::limits::APPEND_COMMIT_WAIT_MS + 500);
    let (mut quorum_back, mut cluster_back) = (Vec::new(), Vec::new());
    let mut healthy_since = shared.wait_for_ack_after(Instant::now(), None);
    for _ in 0..outages {
        shared.wait_for_ack_after(healthy_since, None);
        std::thread::sleep(Duration::from_millis(300));
        let leader = shared.leader.load(Ordering::SeqCst);
        let killed: Vec<usize> = (0..NODES).filter(|&node| node != leader).collect();
        for &node in &killed {
            daemons[node].kill();
        }
        std::thread::sleep(commit_wait);
        let quiet_from = Instant::now();
        std::thread::sleep(Duration::from_secs(3));
        let acknowledged = shared.acks_after(quiet_from);
        assert_eq!(
            acknowledged,
            0,
            "node {} acknowledged {acknowledged} calls with two of three nodes dead",
            leader + 1
        );

        // Whoever answered last, after the kills, led the shard then and had applied every
        // committed entry: it serves every acknowledged record, alone.
        let last_answer = shared.acked_at.lock().unwrap().last().map(|&(_, node)| node);
        let acked = shared.acked.lock().unwrap().clone();
        if last_answer == Some(leader) {
            let survivor = daemons[leader].endpoint();
            let records = run(move || async move { read_stream_shard(&survivor, STREAM).await })
                .expect("the node left alone serves reads");
            check_node(leader + 1, &records, &acked).unwrap();
        } else {
            eprintln!(
                "the shard's leadership moved as its followers died: the survivor's reads are checked at the end only"
            );
        }

        // One of the two back: a quorum again.
        let back_at = Instant::now();
        restart_member(&mut daemons[killed[0]]);
        let resumed = shared.wait_for_ack_after(back_at, None) - back_at;
        restart_member(&mut daemons[killed[1]]);
        quorum_back.push(resumed);

        // Every node at once, under writes.
        shared.wait_for_ack_after(Instant::now(), None);
        std::thread::sleep(Duration::from_millis(300));
        for daemon in daemons.iter_mut() {
            daemon.kill();
        }
        let restarted_at = Instant::now();
        for daemon in daemons.iter_mut() {
            restart_member(daemon);
        }
        healthy_since = shared.wait_for_ack_after(restarted_at, None);
        cluster_back.push(healthy_since - restarted_at);
        eprintln!(
            "two nodes dead: none of the writes for 3 s acknowledged; one restarted: next write acknowledged after \
             {resumed:?}; all three killed and restarted: next write acknowledged after {:?}",
            healthy_since - restarted_at
        );
    }
    let (acknowledged, stored) = cluster.finish(healthy_since);
    eprintln!(
        "{outages} outages of two nodes and of all three: {acknowledged} records acknowledged, {stored} stored on \
         each node; from a quorum's return to the next acknowledged write {quorum_back:?}, from every node's \
         restart {cluster_back:?}; load: {}",
        cluster.load_name,
    );
    for daemon in &mut cluster.daemons {
        daemon.stop();
    }
}

/// Each node's `sluice_raft_follower_lag_entries`: how far behind the slowest member of the
/// groups it leads is.
fn follower_lags(daemons: &[Daemon]) -> Vec<f64> {
    daemons.iter().map(|daemon| common::scrape(daemon.metrics_addr, "sluice_raft_follower_lag_entries")).collect()
}

/// The Raft log segments of every shard group in a node's data directory, and how many of
/// those groups recorded a compaction.
fn shard_log_segments(data_dir: &Path) -> (usize, usize) {
    let groups = shard_group_dirs(data_dir);
    let segments = groups
        .iter()
        .filter_map(|group| std::fs::read_dir(group).ok())
        .flatten()
        .flatten()
        .filter(|file| {
            let name = file.file_name().to_string_lossy().into_owned();
            name.starts_with("raft-") && name.ends_with(".log")
        })
        .count();
    let compacted = groups.iter().filter(|group| group.join("raft.compacted").exists()).count();
    (segments, compacted)
}

/// Bytes of data acknowledged so far.
fn acked_bytes(shared: &Shared) -> usize {
    shared.acked.lock().unwrap().values().map(Bytes::len).sum()
}

/// Waits (up to 120 s) until at least `bytes` of data are acknowledged.
fn wait_for_acked_bytes(shared: &Shared, bytes: usize) {
    let start = Instant::now();
    while acked_bytes(shared) < bytes {
        assert!(start.elapsed() < Duration::from_secs(120), "{bytes} bytes not acknowledged in 120 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (up to 60 s) until `condition` holds of every node's (segments, compacted groups).
fn wait_for_segments(daemons: &[Daemon], nodes: &[usize], what: &str, condition: impl Fn((usize, usize)) -> bool) {
    let start = Instant::now();
    loop {
        let seen: Vec<(usize, usize)> =
            nodes.iter().map(|&node| shard_log_segments(daemons[node].data_dir())).collect();
        if seen.iter().all(|&counts| condition(counts)) {
            eprintln!("{what}: (segments, compacted groups) per node {seen:?}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: after 60 s, (segments, compacted) per node {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each shard group's Raft log is compacted (whole 64 KiB segments deleted) once every member
/// holds its entries and has applied them durably. A member that is down holds compaction
/// back while it lacks less than 32 segments (2 MiB here), so that it can catch up from the
/// others' logs; past that the others compact without it, and when it returns it is sent a
/// snapshot and copies the records it lacks from a peer's journal (their logs no longer hold
/// them: the check that every node serves every record fails otherwise). Every acknowledged
/// record is then served by every node, byte-exact, with the same sequence numbers and times.
#[test]
fn raft_logs_are_compacted_and_a_member_far_behind_catches_up_from_a_snapshot() {
    const SEGMENT_BYTES: usize = 64 << 10;
    const WRITTEN_BYTES: usize = 2 << 20;
    let stream = "compacted";
    let peers: Vec<String> = (0..NODES).map(|id| format!("{}=127.0.0.1:{}", id + 1, free_port_run(cores()))).collect();
    let peers = peers.join(",");
    let segment = SEGMENT_BYTES.to_string();
    let mut daemons: Vec<Daemon> = (0..NODES)
        .map(|id| {
            let node_id = (id + 1).to_string();
            let args =
                ["--node-id", node_id.as_str(), "--peers", peers.as_str(), "--raft-segment-bytes", segment.as_str()];
            Daemon::start_with("unlimited", cores(), &args)
        })
        .collect();
    let shared = Arc::new(Shared::new(daemons.iter().map(Daemon::endpoint).collect()));
    create_everywhere(&shared, stream);
    let writers = start_writers(&shared, stream, "compact", 0xC0_4FAC_7ED0);
    let all: Vec<usize> = (0..NODES).collect();
    let wait_for_bytes = |bytes: usize| wait_for_acked_bytes(&shared, bytes);

    // Every member up: logs stay within a few segments although many were written.
    wait_for_bytes(WRITTEN_BYTES);
    let few = |(segments, compacted): (usize, usize)| compacted == 1 && segments <= 8;
    wait_for_segments(&daemons, &all, "all members up", few);

    // A follower down: the others keep every segment it lacks, up to 32.
    let leader = shared.leader.load(Ordering::SeqCst);
    let down = (leader + 1) % NODES;
    daemons[down].kill();
    shared.endpoints.lock().unwrap()[down] = None;
    let killed_at = acked_bytes(&shared);
    wait_for_bytes(killed_at + WRITTEN_BYTES / 2);
    let up: Vec<usize> = all.iter().copied().filter(|&node| node != down).collect();
    let many = |(segments, _): (usize, usize)| segments >= 10;
    wait_for_segments(&daemons, &up, "one follower down", many);
    // The leader counts what the member down lacks: the 10 segments' entries at least.
    let leader = shared.leader.load(Ordering::SeqCst);
    let lag = common::scrape(daemons[leader].metrics_addr, "sluice_raft_follower_lag_entries");
    assert!(lag >= 10.0, "node {} leads with a member down for 10 segments, and counts a lag of {lag}", leader + 1);

    // Further behind than that: the others compact without it (holding everything since it
    // went down would be 64 segments and more).
    wait_for_bytes(killed_at + 2 * WRITTEN_BYTES);
    let without_it = |(segments, compacted): (usize, usize)| compacted == 1 && segments <= 40;
    wait_for_segments(&daemons, &up, "the follower far behind", without_it);

    // The shard's leader dies and comes back first: the leader elected then has not heard from
    // the member down, so tells it no commit past what it knows the member holds (nothing) and
    // sends it a snapshot at once. Its stored commit lags its journal, whose newest entry its
    // applier must confirm against the log before it applies more: that confirmation now waits
    // for the snapshot (CI saw the member 609 records short for 30 s; with this step and the
    // applier as it was, it never applied an entry past the snapshot).
    // (Asked of the nodes up, for 10 s at most: leader balancing may be handing it over.)
    let start = Instant::now();
    let leads = |node: &usize| common::scrape(daemons[*node].metrics_addr, "sluice_raft_groups_led") >= 1.0;
    let shard_leader = loop {
        if let Some(node) = up.iter().copied().find(leads) {
            break node;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no member up led the shard for 10 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    daemons[shard_leader].kill();
    restart_member(&mut daemons[shard_leader]);
    let restarted_at = acked_bytes(&shared);
    wait_for_bytes(restarted_at + WRITTEN_BYTES / 8);

    // Back: it restores from a snapshot (copying the records from a peer), catches up from
    // their logs after it, and every log is compacted again.
    restart_member(&mut daemons[down]);
    shared.endpoints.lock().unwrap()[down] = Some(daemons[down].endpoint());
    let metrics = daemons[down].metrics_addr;
    let start = Instant::now();
    while common::scrape(metrics, "sluice_raft_snapshots_restored_total") < 1.0 {
        assert!(start.elapsed() < Duration::from_secs(60), "the follower restored no snapshot in 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let copied = common::scrape(metrics, "sluice_raft_snapshot_records_copied_total");
    let failed = common::scrape(metrics, "sluice_raft_snapshots_failed_total");
    eprintln!(
        "the follower back: a snapshot restored after {:?}, {copied} records copied, {failed} failed",
        start.elapsed()
    );
    assert!(copied >= 1.0, "the snapshot copied no record");
    wait_for_segments(&daemons, &all, "the follower back", few);
    shared.stop.store(true, Ordering::SeqCst);
    writers.into_iter().for_each(|writer| writer.join().unwrap());
    let acked = std::mem::take(&mut *shared.acked.lock().unwrap());
    // CI once saw the member back 609 records short for 30 s (2026-12-07, sixth session): the
    // nodes' Raft metrics say whether it lacked entries or had not applied them.
    let explain = {
        let metrics: Vec<SocketAddr> = daemons.iter().map(|daemon| daemon.metrics_addr).collect();
        Box::new(move || replication::raft_metrics_view(&metrics))
    };
    let endpoints = daemons.iter().map(Daemon::endpoint).collect();
    let (acknowledged, stored) = replication::wait_until_every_node_agrees_explained(endpoints, stream, acked, explain);
    eprintln!("compaction: {acknowledged} records acknowledged, {stored} stored on each node, lag {lag} entries");
    // Every member holds every entry now: no leader counts a lag (once the last answers came),
    // and no member has a committed entry left to apply.
    let start = Instant::now();
    let apply_lags = || -> Vec<f64> {
        daemons.iter().map(|daemon| common::scrape(daemon.metrics_addr, "sluice_raft_apply_lag_entries")).collect()
    };
    while follower_lags(&daemons).iter().chain(&apply_lags()).any(|&lag| lag != 0.0) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "10 s after the writes stopped, the leaders count {:?}, and the members have {:?} to apply",
            follower_lags(&daemons),
            apply_lags()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for daemon in &mut daemons {
        daemon.stop();
    }
}

/// One admin call (`SluiceAdmin_20261201.<operation>`, unsigned: the nodes run without
/// credentials) to the HTTP listener at `http`: the status and the body.
fn admin_call(http: SocketAddr, operation: &str, body: &str) -> (u16, String) {
    json_call(http, &format!("SluiceAdmin_20261201.{operation}"), body)
}

/// The string field `name` of a JSON answer.
fn json_field(answer: &str, name: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(answer).unwrap_or_else(|error| panic!("{error}: {answer}"));
    value[name].as_str().unwrap_or_else(|| panic!("no {name} in {answer}")).to_string()
}

/// One unsigned AWS JSON 1.1 call (`X-Amz-Target: target`) to the HTTP listener at `http`:
/// the status and the body.
fn json_call(http: SocketAddr, target: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(http) else { return (0, "no connection".into()) };
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: {target}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut answer = String::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_string(&mut answer).is_err() {
        return (0, answer);
    }
    let status = answer.split(' ').nth(1).and_then(|status| status.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    (status, body)
}

/// Makes the admin call `operation` with `body` at each of `https` in turn until one takes it
/// (the node leading the catalog does; another names it), for 30 s at most.
fn admin_call_on_the_catalog_leader(https: &[SocketAddr], operation: &str, body: &str) {
    let asked = Instant::now();
    loop {
        for &http in https {
            let (status, answer) = admin_call(http, operation, body);
            if status == 200 {
                return;
            }
            eprintln!("{operation} at {http}: {status} {answer}");
        }
        assert!(asked.elapsed() < Duration::from_secs(30), "no node took {operation} in 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The member leading the catalog by a node's DescribeCluster answer `view`, if one does and it
/// is another node.
fn other_catalog_leader(view: &serde_json::Value) -> Option<u64> {
    let groups = view["Groups"].as_array().into_iter().flatten();
    let leader = groups.filter(|group| group["Group"] == "catalog").find_map(|group| group["Leader"].as_u64());
    leader.filter(|&leader| leader != 0 && Some(leader) != view["NodeId"].as_u64())
}

/// A node of `https` that does not lead the catalog, by what DescribeCluster says there (up
/// to 30 s, while the catalog elects a leader).
fn catalog_follower(https: &[SocketAddr]) -> SocketAddr {
    let start = Instant::now();
    loop {
        for &http in https {
            let (_, body) = admin_call(http, "DescribeCluster", "{}");
            if other_catalog_leader(&serde_json::from_str(&body).unwrap_or_default()).is_some() {
                return http;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no node named another as the catalog's leader");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (up to 90 s) until DescribeCluster on every node at `https` shows the members
/// `members` and every group it hosts with exactly them as voters.
fn wait_until_settled(https: &[SocketAddr], members: &[u64]) {
    let start = Instant::now();
    for &http in https {
        loop {
            let (status, body) = admin_call(http, "DescribeCluster", "{}");
            let view: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let listed: Vec<u64> =
                view["Members"].as_array().into_iter().flatten().filter_map(|m| m["NodeId"].as_u64()).collect();
            if status == 200 && view["Settled"] == true && listed == members {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(90), "{http} did not settle on {members:?}: {status} {body}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    eprintln!("every node settled on members {members:?} after {:?}", start.elapsed());
}

/// A member whose disk is lost for good is replaced by a new node (`--join`, then the admin
/// call ReplaceClusterMember) while a writer goes on: the catalog and the shard's records reach
/// the new node by snapshots (the others compacted their logs meanwhile), every group ends with
/// the new members as voters, and the new node is one of them: with another old member killed
/// afterwards, the two left (one old, the new one) still acknowledge writes, create a stream
/// (whose group the new node founds) and serve every record, byte-exact and alike, also after
/// the old one restarts with its old `--peers`.
#[test]
fn a_lost_member_is_replaced_by_a_new_node_that_copies_everything_and_votes() {
    const SEGMENT_BYTES: usize = 64 << 10;
    const WRITTEN_BYTES: usize = 1 << 20;
    let stream = "replaced";
    let peer_ports: Vec<u16> = (0..=NODES).map(|_| free_port_run(cores())).collect();
    let peer = |id: usize| format!("{}=127.0.0.1:{}", id + 1, peer_ports[id]);
    let peers = (0..NODES).map(peer).collect::<Vec<_>>().join(",");
    let segment = SEGMENT_BYTES.to_string();
    let start = |id: usize, peers: &str, extra: &[&str]| {
        let node_id = (id + 1).to_string();
        let mut args = vec!["--node-id", node_id.as_str(), "--peers", peers, "--raft-segment-bytes", segment.as_str()];
        args.extend_from_slice(extra);
        Daemon::start_with("unlimited", cores(), &args)
    };
    let mut daemons: Vec<Daemon> = (0..NODES).map(|id| start(id, &peers, &[])).collect();
    let shared = Arc::new(Shared::new(daemons.iter().map(Daemon::endpoint).collect()));
    create_everywhere(&shared, stream);
    let writers = start_writers(&shared, stream, "replace", 0x4E9_1ACE);
    let wait_for_bytes = |bytes: usize| wait_for_acked_bytes(&shared, bytes);
    wait_for_bytes(WRITTEN_BYTES);

    // Node 3 is lost with its disk; the two others go on, and compact their logs.
    daemons[2].kill();
    shared.endpoints.lock().unwrap()[2] = None;
    wait_for_bytes(acked_bytes(&shared) + WRITTEN_BYTES);

    // Node 4 starts empty and joins in node 3's place.
    let new_peers = [peer(0), peer(1), peer(3)].join(",");
    let mut new = start(3, &new_peers, &["--join"]);
    let body = format!(r#"{{"OldNodeId":3,"NewNodeId":4,"PeerAddress":"127.0.0.1:{}"}}"#, peer_ports[3]);
    admin_call_on_the_catalog_leader(&[daemons[0].http_addr, daemons[1].http_addr], "ReplaceClusterMember", &body);
    // Asked again, it is refused: node 3 is no member any more.
    let answers: Vec<(u16, String)> =
        daemons[..2].iter().map(|daemon| admin_call(daemon.http_addr, "ReplaceClusterMember", &body)).collect();
    let refused = answers.iter().any(|(status, answer)| *status == 400 && answer.contains("not a member"));
    assert!(refused, "a second replacement of node 3 was not refused: {answers:?}");
    shared.endpoints.lock().unwrap()[2] = Some(new.endpoint());
    wait_until_settled(&[daemons[0].http_addr, daemons[1].http_addr, new.http_addr], &[1, 2, 4]);
    let restored = common::scrape(new.metrics_addr, "sluice_raft_snapshots_restored_total");
    let copied = common::scrape(new.metrics_addr, "sluice_raft_snapshot_records_copied_total");
    eprintln!("the new node restored {restored} shard snapshots, copying {copied} records");
    assert!(restored >= 1.0 && copied >= 1.0, "the new node copied no shard");

    // The new node votes: with node 1 killed too, nodes 2 and 4 are a majority.
    wait_for_bytes(acked_bytes(&shared) + WRITTEN_BYTES / 4);
    daemons[0].kill();
    shared.endpoints.lock().unwrap()[0] = None;
    let killed = Instant::now();
    wait_for_bytes(acked_bytes(&shared) + WRITTEN_BYTES / 4);
    eprintln!("writes acknowledged by nodes 2 and 4 alone within {:?} of node 1's kill", killed.elapsed());
    shared.stop.store(true, Ordering::SeqCst);
    writers.into_iter().for_each(|writer| writer.join().unwrap());
    let acked = std::mem::take(&mut *shared.acked.lock().unwrap());
    let survivors = vec![daemons[1].endpoint(), new.endpoint()];
    let (acknowledged, stored) = wait_until_every_node_agrees(survivors.clone(), stream, acked);
    eprintln!("replacement: {acknowledged} records acknowledged, {stored} stored on nodes 2 and 4");

    // A stream created now has a group that nodes 2 and 4 founded (with node 1): they elect
    // its leader and store its records alone.
    let later = Arc::new(Shared::new(survivors.clone()));
    create_everywhere(&later, "after");
    let writers = start_writers(&later, "after", "after", 0xAF7E5);
    let start_after = Instant::now();
    while later.acked.lock().unwrap().len() < 100 {
        assert!(start_after.elapsed() < Duration::from_secs(60), "the new stream took no writes in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    later.stop.store(true, Ordering::SeqCst);
    writers.into_iter().for_each(|writer| writer.join().unwrap());
    let mut acked = std::mem::take(&mut *later.acked.lock().unwrap());

    // Node 2 restarts with its old --peers (naming node 3): the catalog's members win, so it
    // dials node 4, and with node 4 it is a majority again.
    daemons[1].kill_and_restart_same_ports();
    let again = Arc::new(Shared::new(survivors.clone()));
    let writers = start_writers(&again, "after", "again", 0xA6A1);
    let restarted = Instant::now();
    while again.acked.lock().unwrap().len() < 50 {
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "nodes 2 and 4 took no writes in 60 s after the restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    again.stop.store(true, Ordering::SeqCst);
    writers.into_iter().for_each(|writer| writer.join().unwrap());
    acked.append(&mut again.acked.lock().unwrap());
    wait_until_every_node_agrees(survivors, "after", acked);
    new.stop();
    for daemon in &mut daemons {
        daemon.stop();
    }
}

/// A node is added (`--join`, then AddClusterMember) while a writer goes on: every group takes
/// it as a fourth voter, and it copies the catalog and the records by snapshots. Then a member
/// dies and is removed (RemoveClusterMember): every group ends with the three others as
/// voters, so with one more of the first members killed, the two left (one of the first and
/// the added node) are a majority and still acknowledge writes. Both serve every acknowledged
/// record, byte-exact and alike. The members forward to each other, so the added node must
/// be given its native address.
#[test]
fn a_node_is_added_then_a_dead_member_removed_and_every_group_follows() {
    const WRITTEN_BYTES: usize = 256 << 10;
    let stream = "grown";
    let members: Vec<Member> = (0..=NODES)
        .map(|_| Member { peer_port: free_port_run(cores()), native: free_address(), http: free_address() })
        .collect();
    let peer = |id: usize| {
        let member = &members[id];
        format!("{}=127.0.0.1:{}/native@{}/http@{}", id + 1, member.peer_port, member.native, member.http)
    };
    let start = |id: usize, nodes: usize, extra: &[&str]| {
        let peers = (0..nodes).map(peer).collect::<Vec<_>>().join(",");
        start_member(id, &members, &peers, extra)
    };
    let mut daemons: Vec<Daemon> = (0..NODES).map(|id| start(id, NODES, &[])).collect();
    let shared = Arc::new(Shared::new(daemons.iter().map(Daemon::endpoint).collect()));
    create_everywhere(&shared, stream);
    let writers = start_writers(&shared, stream, "grow", 0x06A0_E4DD);
    let wait_for_more_bytes = |bytes: usize| wait_for_acked_bytes(&shared, acked_bytes(&shared) + bytes);
    wait_for_more_bytes(WRITTEN_BYTES);
    // Delivery state too: an application of the stream.
    let application = CreateApplicationInput {
        stream_name: Some(stream.into()),
        application_name: "grown-app".into(),
        ..Default::default()
    };
    let endpoint = daemons[0].endpoint();
    let created = run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        call_until_ok(&client, &application).await.application_description.application_arn
    });

    // Node 4 starts empty and is added: a fourth voter in every group.
    let mut added = start(NODES, NODES + 1, &["--join"]);
    let https: Vec<SocketAddr> = daemons.iter().map(|daemon| daemon.http_addr).collect();
    // Without its native address the others could not forward to it once it leads: refused.
    let peer_address = format!("127.0.0.1:{}", members[NODES].peer_port);
    let body = format!(r#"{{"NewNodeId":4,"PeerAddress":"{peer_address}"}}"#);
    let (status, answer) = admin_call(https[0], "AddClusterMember", &body);
    assert!(status == 400 && answer.contains("NativeAddress of node 4 is required"), "{status} {answer}");
    let body = format!(
        r#"{{"NewNodeId":4,"PeerAddress":"{peer_address}","NativeAddress":"{}","HttpAddress":"{}"}}"#,
        added.addr, added.http_addr
    );
    // Asked of a node that does not lead the catalog: it forwards the call to the one that does.
    let follower = catalog_follower(&https);
    let (status, answer) = admin_call(follower, "AddClusterMember", &body);
    assert_eq!(
        (status, answer.as_str()),
        (200, "{}"),
        "AddClusterMember at {follower}, which does not lead the catalog"
    );
    wait_until_settled(&[https[0], https[1], https[2], added.http_addr], &[1, 2, 3, 4]);
    let restored = common::scrape(added.metrics_addr, "sluice_raft_snapshots_restored_total");
    assert!(restored >= 1.0, "the added node restored no shard snapshot");
    wait_for_more_bytes(WRITTEN_BYTES / 4);

    // Node 1 dies; three of four still decide. It is removed.
    daemons[0].kill();
    shared.endpoints.lock().unwrap()[0] = None;
    wait_for_more_bytes(WRITTEN_BYTES / 4);
    let (status, answer) = admin_call(https[1], "RemoveClusterMember", r#"{"OldNodeId":1,"NewNodeId":4}"#);
    assert!(status == 400 && answer.contains("SerializationException"), "{status} {answer}");
    // (Leaders even out over the members: node 4 may lead the catalog by now.)
    admin_call_on_the_catalog_leader(
        &[https[1], https[2], added.http_addr],
        "RemoveClusterMember",
        r#"{"OldNodeId":1}"#,
    );
    wait_until_settled(&[https[1], https[2], added.http_addr], &[2, 3, 4]);

    // Node 2 dies too: nodes 3 and 4 are two of the three members left, a majority.
    wait_for_more_bytes(WRITTEN_BYTES / 4);
    daemons[1].kill();
    shared.endpoints.lock().unwrap()[1] = None;
    shared.endpoints.lock().unwrap()[0] = Some(added.endpoint());
    let killed = Instant::now();
    wait_for_more_bytes(WRITTEN_BYTES / 4);
    eprintln!("writes acknowledged by nodes 3 and 4 alone within {:?} of node 2's kill", killed.elapsed());
    shared.stop.store(true, Ordering::SeqCst);
    writers.into_iter().for_each(|writer| writer.join().unwrap());
    let acked = std::mem::take(&mut *shared.acked.lock().unwrap());
    let survivors = vec![daemons[2].endpoint(), added.endpoint()];
    let (acknowledged, stored) = wait_until_every_node_agrees(survivors, stream, acked);
    eprintln!("add and remove: {acknowledged} records acknowledged, {stored} stored on nodes 3 and 4");
    // The delivery state's log reached node 4 (copied from a peer, then replicated) and the
    // application is there, through it.
    let held = common::scrape(added.metrics_addr, "sluice_delivery_log_entries");
    assert!(held >= 1.0, "node 4 holds no entry of the delivery state's log");
    let endpoint = added.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let listed = ListApplicationsInput { stream_name: Some(stream.into()), ..Default::default() };
        let arns: Vec<String> =
            call_until_ok(&client, &listed).await.applications.into_iter().map(|app| app.application_arn).collect();
        assert_eq!(arns, [created]);
    });
    added.stop();
    for daemon in &mut daemons {
        daemon.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Forwarding: clients that know one node.

/// A member's listeners, chosen before any starts so that each node's `--peers` names every
/// member's client addresses (`ID=PEER/native@ADDR/http@ADDR`).
struct Member {
    peer_port: u16,
    native: SocketAddr,
    http: SocketAddr,
}

/// An ON_DEMAND stream created through node 2 (a CreateStream without a shard count is one,
/// as on AWS) grows under writes through node 1: every node applies them, the catalog's leader
/// sees the demand and splits, and every node shows the new shards. UpdateStreamMode through
/// node 3 then reaches every node. (Both were refused on a replicated node before.)
async fn on_demand_streams_split_on_the_catalog_leader_and_change_mode_through_any_node(endpoints: &[String]) {
    let clients = {
        let mut clients = Vec::new();
        for endpoint in endpoints {
            clients.push(Client::connect(endpoint).await.unwrap());
        }
        clients
    };
    let create = CreateStreamInput {
        stream_name: "auto".into(),
        stream_mode_details: Some(StreamModeDetails::from(StreamMode::OnDemand)),
        ..Default::default()
    };
    call_until_ok(&clients[1], &create).await;
    let describe = DescribeStreamSummaryInput { stream_name: Some("auto".into()), stream_arn: None };
    let summary = |client: Client| {
        let describe = describe.clone();
        async move { call_until_ok(&client, &describe).await.stream_description_summary }
    };
    for (node, client) in clients.iter().enumerate() {
        let waiting = Instant::now();
        while summary(client.clone()).await.stream_status != StreamStatus::Active {
            assert!(waiting.elapsed() < Duration::from_secs(30), "auto never became ACTIVE on node {}", node + 1);
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(summary(clients[0].clone()).await.open_shard_count, 4);
    // About 1.1 MiB/s for 3 s, all in the first shard's hash-key range: over the 80% of its
    // 1 MiB/s at which the scaler splits it. (Records refused while a split is under way, a
    // new child's group still electing, are not the point here: they are not counted.)
    let data = Bytes::from(vec![7u8; 8 << 10]);
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(3) {
        let records = (0..30)
            .map(|_| {
                sent += 1;
                PutRecordsRequestEntry {
                    data: data.clone(),
                    partition_key: Some("hot".into()),
                    explicit_hash_key: Some(HashKey(sent as u128)),
                }
            })
            .collect();
        let put = PutRecordsInput { records, stream_name: Some("auto".into()), stream_arn: None };
        clients[0].call(&put).await.expect("PutRecords through node 1");
        glommio::timer::sleep(Duration::from_millis(200)).await;
    }
    let waiting = Instant::now();
    for (node, client) in clients.iter().enumerate() {
        loop {
            let open = summary(client.clone()).await.open_shard_count;
            if open > 4 {
                break;
            }
            assert!(
                waiting.elapsed() < Duration::from_secs(30),
                "node {} still shows {open} open shards of the ON_DEMAND stream after {sent} hot 8 KiB records",
                node + 1
            );
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    }
    let stream_arn = summary(clients[2].clone()).await.stream_arn;
    let to_provisioned =
        UpdateStreamModeInput { stream_arn, stream_mode_details: StreamModeDetails::from(StreamMode::Provisioned) };
    call_until_ok(&clients[2], &to_provisioned).await;
    for (node, client) in clients.iter().enumerate() {
        let waiting = Instant::now();
        loop {
            let mode = summary(client.clone()).await.stream_mode_details.map(|details| details.stream_mode);
            if mode == Some(StreamMode::Provisioned) {
                break;
            }
            assert!(waiting.elapsed() < Duration::from_secs(30), "node {} shows auto as {mode:?}", node + 1);
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The shard groups whose Raft files are in a node's data directory.
/// CreateStream of a stream of many shards, through a member that forwards it to the catalog's
/// leader, answers as soon as the catalog has the stream, which then shows CREATING until each
/// shard's group has started and elected a leader, then ACTIVE, and takes a record in every
/// shard. Before, the command's application waited for every group to start (one after
/// another): 200 shards took over 2 s in a debug build, and the call answered InternalFailure
/// ("committed but was not applied in time") for a stream it had created, which a retry then
/// found existing; with the groups started 32 at a time, 300 shards answered just under 2 s.
/// The stream is deleted at the end, and its groups with it.
async fn a_stream_of_many_shards_is_created_at_once(endpoints: &[String], data_dirs: &[PathBuf]) {
    const SHARDS: usize = 300;
    let stream = "many-shards";
    let groups_before: Vec<usize> = data_dirs.iter().map(|dir| shard_groups_on_disk(dir)).collect();
    let client = Client::connect(&endpoints[1]).await.unwrap();
    let create =
        CreateStreamInput { stream_name: stream.into(), shard_count: Some(SHARDS as i32), ..Default::default() };
    let created = Instant::now();
    loop {
        match client.call(&create).await {
            Ok(_) => break,
            // Only an election of the catalog's leader under way may refuse it; no answer may
            // come from a creation that went through.
            Err(ClientError::Service(error))
                if error.kind == ErrorKind::InternalFailure && !error.message.contains("committed") =>
            {
                assert!(created.elapsed() < Duration::from_secs(30), "CreateStream: {error:?}");
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("CreateStream of {SHARDS} shards: {error:?}"),
        }
    }
    let answered = created.elapsed();
    for (node, endpoint) in endpoints.iter().enumerate() {
        let client = Client::connect(endpoint).await.unwrap();
        let describe = DescribeStreamSummaryInput { stream_name: Some(stream.into()), stream_arn: None };
        while call_until_ok(&client, &describe).await.stream_description_summary.stream_status != StreamStatus::Active {
            assert!(created.elapsed() < Duration::from_secs(120), "{stream} never became ACTIVE on node {}", node + 1);
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    }
    // The creation does not wait for the groups: it answers well before the stream is ACTIVE
    // everywhere, which takes every group's start and first election. Waiting for the starts
    // (32 at a time per core), it answered after 1.5 and 1.8 s in two runs here, with the
    // stream ACTIVE everywhere 2.5 and 2.7 s after the call: more than half of it.
    let active = created.elapsed();
    eprintln!("CreateStream of {SHARDS} shards answered in {answered:?}; ACTIVE on every node after {active:?}");
    assert!(
        answered < active / 2,
        "CreateStream answered in {answered:?}, the stream was ACTIVE everywhere after {active:?}"
    );
    let list = ListShardsInput { stream_name: Some(stream.into()), max_results: Some(1000), ..Default::default() };
    let shards = call_until_ok(&client, &list).await.shards;
    assert_eq!(shards.len(), SHARDS);
    let mut unstored: Vec<PutRecordsRequestEntry> = shards
        .iter()
        .map(|shard| PutRecordsRequestEntry {
            data: Bytes::from(format!("into {}", shard.shard_id.as_str())),
            partition_key: Some("many".into()),
            explicit_hash_key: Some(shard.hash_key_range.starting_hash_key),
        })
        .collect();
    // Leader balancing may hand a group over meanwhile: its record is sent again.
    for _ in 0..20 {
        let put = PutRecordsInput { records: unstored.clone(), stream_name: Some(stream.into()), stream_arn: None };
        let answer = call_until_ok(&client, &put).await;
        unstored = unstored
            .into_iter()
            .zip(&answer.records)
            .filter(|(_, entry)| entry.error_code.is_some())
            .map(|(record, _)| record)
            .collect();
        if unstored.is_empty() {
            break;
        }
        glommio::timer::sleep(Duration::from_millis(200)).await;
    }
    assert!(unstored.is_empty(), "{} records of {SHARDS} were never stored", unstored.len());
    call_until_ok(&client, &DeleteStreamInput { stream_name: Some(stream.into()), ..Default::default() }).await;
    let waiting = Instant::now();
    loop {
        let groups: Vec<usize> = data_dirs.iter().map(|dir| shard_groups_on_disk(dir)).collect();
        if groups == groups_before {
            break;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "shard groups on disk per node: {groups_before:?} before the {SHARDS}-shard stream, {groups:?} after deleting it"
        );
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `stream` is ACTIVE through every node in `endpoints`.
async fn active_everywhere(endpoints: &[String], stream: &str) {
    for (node, endpoint) in endpoints.iter().enumerate() {
        let client = Client::connect(endpoint).await.unwrap();
        let describe = DescribeStreamSummaryInput { stream_name: Some(stream.into()), stream_arn: None };
        let waiting = Instant::now();
        while call_until_ok(&client, &describe).await.stream_description_summary.stream_status != StreamStatus::Active {
            assert!(waiting.elapsed() < Duration::from_secs(30), "{stream} never became ACTIVE on node {}", node + 1);
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `call`'s answer, or a failure of the test if none comes within `CALL_ANSWERED_WITHIN_S`: a
/// plain `Client` waits for an answer for as long as it takes, so a node that stopped serving
/// would hold the test up for good.
async fn answered<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    const CALL_ANSWERED_WITHIN_S: u64 = 30;
    futures_lite::future::or(async { Some(call.await) }, async {
        glommio::timer::sleep(Duration::from_secs(CALL_ANSWERED_WITHIN_S)).await;
        None
    })
    .await
    .unwrap_or_else(|| panic!("{what}: not done within {CALL_ANSWERED_WITHIN_S} s"))
}

/// `stream` (two shards) written through every node by `calls_per_node` callers each, and
/// deleted while they write.
async fn deleted_under_writes(endpoints: &[String], stream: &str, calls_per_node: usize) {
    const WRITES_BEFORE_DELETE: usize = 30;
    const BUSY_RECORDS: usize = 200;
    let first = answered("a connection", Client::connect(&endpoints[0])).await.unwrap();
    let create = CreateStreamInput { stream_name: stream.into(), shard_count: Some(2), ..Default::default() };
    answered("CreateStream", call_until_ok(&first, &create)).await;
    answered("ACTIVE on every node", active_everywhere(endpoints, stream)).await;
    let writing = std::rc::Rc::new(std::cell::Cell::new(true));
    let acked = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let writers: Vec<_> = endpoints
        .iter()
        .flat_map(|endpoint| std::iter::repeat_n(endpoint, calls_per_node))
        .map(|endpoint| {
            let (endpoint, stream, writing, acked) =
                (endpoint.clone(), stream.to_owned(), writing.clone(), acked.clone());
            glommio::spawn_local(async move {
                let client = answered("a connection", Client::connect(&endpoint)).await.unwrap();
                let mut call = 0u64;
                while writing.get() {
                    call += 1;
                    let records = (0..BUSY_RECORDS)
                        .map(|i| PutRecordsRequestEntry {
                            data: Bytes::from(vec![b'b'; 1024]),
                            partition_key: Some(format!("{stream}-{call}-{i}")),
                            explicit_hash_key: None,
                        })
                        .collect();
                    let put = PutRecordsInput { records, stream_name: Some(stream.clone()), stream_arn: None };
                    // Refused once the stream is gone.
                    if let Ok(answer) = answered(&format!("a write through {endpoint}"), client.call(&put)).await {
                        acked.set(acked.get() + BUSY_RECORDS - answer.failed_record_count.unwrap_or(0) as usize);
                    }
                }
            })
        })
        .collect();
    let waiting = Instant::now();
    while acked.get() < WRITES_BEFORE_DELETE * BUSY_RECORDS {
        assert!(waiting.elapsed() < Duration::from_secs(60), "the writers got {} records acknowledged", acked.get());
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    let delete = DeleteStreamInput { stream_name: Some(stream.into()), ..Default::default() };
    answered("DeleteStream under writes", call_until_ok(&first, &delete)).await;
    glommio::timer::sleep(Duration::from_millis(200)).await;
    writing.set(false);
    for writer in writers {
        writer.await;
    }
}

/// A stream deleted while writes to it are on their way to the members' journals: every node
/// goes on serving. A leader answers a write once it is committed and queued to its journal,
/// before the journal synced it (`ops::cluster::records`), so appends are still in flight when
/// the deletion stops the shard's group. An applier that went back to waiting for its stopped
/// group's next commit, which answers at once, spun its core without yielding for good (seen
/// under the loadgen, which deletes its stream right after its last write): the calls below
/// through that node then timed out until `call_until_ok` gave up.
async fn a_stream_deleted_under_writes_leaves_every_node_serving(endpoints: &[String]) {
    // Three rounds, each a stream written and deleted: with 4, 2 and 1 calls on their way per
    // node (of 200 KiB each), so that some applier has an append on its way to the journal and
    // nothing more committed when its group stops. One round caught the applier's spin about
    // one time in six; whichever round meets it, the calls after it go unanswered.
    for (round, calls_per_node) in [4, 2, 1].into_iter().enumerate() {
        deleted_under_writes(endpoints, &format!("busy-{round}"), calls_per_node).await;
    }
    // Every node still serves: a new stream, written through each node to each shard.
    let first = answered("a connection", Client::connect(&endpoints[0])).await.unwrap();
    let create = CreateStreamInput { stream_name: "after-busy".into(), shard_count: Some(2), ..Default::default() };
    answered("CreateStream after the deletion", call_until_ok(&first, &create)).await;
    answered("ACTIVE on every node after the deletion", active_everywhere(endpoints, "after-busy")).await;
    for (node, endpoint) in endpoints.iter().enumerate() {
        let client = answered("a connection", Client::connect(endpoint)).await.unwrap();
        let records = [0u128, 1 << 127]
            .into_iter()
            .map(|key| PutRecordsRequestEntry {
                data: Bytes::from(format!("after the deletion, through node {}", node + 1)),
                partition_key: Some("after".into()),
                explicit_hash_key: Some(HashKey(key)),
            })
            .collect();
        let put = PutRecordsInput { records, stream_name: Some("after-busy".into()), stream_arn: None };
        let answer = answered(&format!("a write through node {}", node + 1), call_until_ok(&client, &put)).await;
        assert_eq!(answer.failed_record_count, Some(0), "through node {}: {answer:?}", node + 1);
    }
    let delete = DeleteStreamInput { stream_name: Some("after-busy".into()), ..Default::default() };
    answered("DeleteStream after the deletion", call_until_ok(&first, &delete)).await;
}

fn shard_groups_on_disk(data_dir: &Path) -> usize {
    shard_group_dirs(data_dir).len()
}

/// The directories of the shard groups in a node's data directory (`raft/<core>/shard-<uid>`).
fn shard_group_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let Ok(cores) = std::fs::read_dir(data_dir.join("raft")) else { return Vec::new() };
    cores
        .flatten()
        .filter_map(|core| std::fs::read_dir(core.path()).ok())
        .flatten()
        .flatten()
        .filter(|group| group.file_name().to_string_lossy().starts_with("shard-"))
        .map(|group| group.path())
        .collect()
}

fn free_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

fn start_member(id: usize, members: &[Member], peers: &str, extra: &[&str]) -> Daemon {
    start_member_on(cores(), id, members, peers, extra)
}

/// [`start_member`] with `cores` cores.
fn start_member_on(cores: usize, id: usize, members: &[Member], peers: &str, extra: &[&str]) -> Daemon {
    let node_id = (id + 1).to_string();
    // A short on-demand window, so that an ON_DEMAND stream splits within the test.
    let mut args = vec!["--node-id", node_id.as_str(), "--peers", peers, "--on-demand-window-ms", "500"];
    args.extend_from_slice(extra);
    Daemon::start_on("unlimited", cores, &args, members[id].native, members[id].http)
}

/// Three members whose `--peers` name every member's native and HTTP listeners, so that each
/// forwards to the others.
fn start_forwarding_cluster() -> Vec<Daemon> {
    start_forwarding_cluster_with(|_| Vec::new())
}

/// [`start_forwarding_cluster`], member `id` (from 0) with the flags `extra(id)` besides.
fn start_forwarding_cluster_with(extra: impl Fn(usize) -> Vec<String>) -> Vec<Daemon> {
    start_forwarding_cluster_on(cores(), extra)
}

/// [`start_forwarding_cluster_with`], each member with `cores` cores.
fn start_forwarding_cluster_on(cores: usize, extra: impl Fn(usize) -> Vec<String>) -> Vec<Daemon> {
    // Core `c` listens for its peers on the peer port plus `c`.
    let member = || Member { peer_port: free_port_run(cores), native: free_address(), http: free_address() };
    let members: Vec<Member> = (0..NODES).map(|_| member()).collect();
    let peers: Vec<String> = members
        .iter()
        .enumerate()
        .map(|(id, member)| {
            format!("{}=127.0.0.1:{}/native@{}/http@{}", id + 1, member.peer_port, member.native, member.http)
        })
        .collect();
    let peers = peers.join(",");
    (0..NODES)
        .map(|id| {
            let extra = extra(id);
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            start_member_on(cores, id, &members, &peers, &extra)
        })
        .collect()
}

/// Restarts a killed member on its own addresses (the others' `--peers` name them), once the
/// kernel lets them go.
fn restart_member(daemon: &mut Daemon) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpListener::bind(daemon.addr).is_err() || TcpListener::bind(daemon.http_addr).is_err() {
        assert!(Instant::now() < deadline, "{} stayed taken after the kill", daemon.addr);
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon.restart_on_same_addresses();
}

/// PutRecord of `data` sent to `addr` as another member forwards it (wrapped in a
/// `ForwardedRequest`): the node that leads the shard stores it, any other refuses it as not
/// its leader (NotLeader, naming the leader); a forwarded request is never forwarded again.
fn put_as_forwarded(addr: SocketAddr, stream: &str, data: &[u8]) -> Result<SequenceNumber, KinesisError> {
    let request = sluice_model::Request::PutRecord(PutRecordInput {
        stream_name: Some(stream.into()),
        data: Bytes::copy_from_slice(data),
        partition_key: Some("probe".into()),
        ..Default::default()
    });
    match call_as_forwarded(addr, &request)? {
        sluice_model::Response::PutRecord(output) => Ok(output.sequence_number),
        other => panic!("PutRecord answered {other:?}"),
    }
}

/// `request` sent to `addr` as another member forwards it: served there or refused, never
/// forwarded again.
fn call_as_forwarded(
    addr: SocketAddr,
    request: &sluice_model::Request,
) -> Result<sluice_model::Response, KinesisError> {
    use sluice_protocol::flatbuffers::FlatBufferBuilder;
    use sluice_protocol::native::{self, ResponseMessage};
    use std::io::{Read, Write};
    let correlation_id = 7;
    let mut builder = FlatBufferBuilder::new();
    let inner = native::encode_request(&mut builder, correlation_id, request).unwrap();
    let mut wrapper = FlatBufferBuilder::new();
    let frame = native::encode_forwarded(&mut wrapper, correlation_id, None, inner).unwrap();
    let mut stream = std::net::TcpStream::connect(addr).map_err(|error| KinesisError::internal(error.to_string()))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(frame).unwrap();
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).unwrap();
    let mut answer = prefix.to_vec();
    answer.resize(4 + u32::from_le_bytes(prefix) as usize, 0);
    stream.read_exact(&mut answer[4..]).unwrap();
    let decoded = native::decode_response(&Bytes::from(answer)).unwrap().unwrap();
    assert_eq!(decoded.correlation_id, correlation_id);
    match decoded.message.unwrap() {
        ResponseMessage::Response(response) => Ok(response),
        ResponseMessage::Error(error) => Err(error),
        other => panic!("{request:?} answered {other:?}"),
    }
}

/// The member that leads `stream`'s one shard, found by putting a record marked as forwarded
/// to each: exactly one stores it, the others refuse it as forwarding requires (retriable,
/// naming the leader). Retries while an election is under way.
fn shard_leader(daemons: &[Daemon], stream: &str, probe: &mut u64) -> usize {
    let start = Instant::now();
    loop {
        let mut stored = Vec::new();
        for (node, daemon) in daemons.iter().enumerate() {
            *probe += 1;
            match put_as_forwarded(daemon.addr, stream, format!("probe/{probe}").as_bytes()) {
                Ok(_) => stored.push(node),
                Err(error) => {
                    // Typed for the member that forwarded it, which sends it on to the leader
                    // (a client hears InternalFailure).
                    assert_eq!(error.kind, ErrorKind::NotLeader, "{error:?}");
                    assert!(
                        error.message.contains("does not lead") || error.message.contains("no leader"),
                        "a forwarded request at a follower must be refused, not forwarded: {error:?}"
                    );
                }
            }
        }
        assert!(stored.len() <= 1, "two nodes led the shard at once: {stored:?}");
        if let [leader] = stored[..] {
            return leader;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the shard of {stream} got no leader");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Retries `call` on one node while it fails (an election, a dead leader), for up to 60 s.
async fn call_until_ok<I>(client: &Client, input: &I) -> I::Output
where
    I: OperationInput + EncodeInput + std::fmt::Debug,
{
    until_ok(input, || client.call(input)).await
}

/// Makes `call` (of `input`) again while it fails, every 50 ms, for up to 60 s.
async fn until_ok<T, E: std::fmt::Display, Fut: std::future::Future<Output = Result<T, E>>>(
    input: &impl std::fmt::Debug,
    call: impl Fn() -> Fut,
) -> T {
    let start = Instant::now();
    loop {
        match call().await {
            Ok(output) => return output,
            Err(error) => assert!(start.elapsed() < Duration::from_secs(60), "{input:?} kept failing: {error}"),
        }
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

/// The shards of the stream the forwarding test's writer writes to (one per member).
const WRITER_SHARDS: i32 = 3;

/// One writer that only knows one node, a follower: its writes (native protocol, each
/// PutRecords split over the leaders of the stream's three shards) and stream creations reach
/// the leaders by forwarding, through a SIGKILL of a shard's leader; an
/// HTTP client does PutRecord and GetRecords through a follower; every acknowledged record is
/// on every node afterwards, and the nodes agree. Then, on the same members, the catalog's
/// changes through a follower of the catalog, across a SIGKILL of the catalog's leader
/// ([`catalog_changes_through_a_follower_reach_every_node_and_survive_the_leaders_death`]).
/// Its members run two cores each (the others one): a request arriving at a core that hosts
/// neither the shard's group nor the catalog's crosses cores before and after forwarding.
#[test]
fn a_client_of_one_follower_reaches_the_leaders_by_forwarding() {
    let mut daemons = start_forwarding_cluster_on(2, |_| Vec::new());
    let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
    let data_dirs: Vec<PathBuf> = daemons.iter().map(|daemon| daemon.data_dir().to_path_buf()).collect();

    // A stream created through each node: at most one of them leads the catalog, so at least
    // two creations are forwarded. Each is then visible on every node.
    let created_endpoints = endpoints.clone();
    run(move || async move {
        for (node, endpoint) in created_endpoints.iter().enumerate() {
            let client = Client::connect(endpoint).await.unwrap();
            let name = format!("forwarded-{}", node + 1);
            // forwarded-1, which the writer below writes to, has a shard per member: its
            // PutRecords are split by leader.
            let shard_count = if node == 0 { WRITER_SHARDS } else { 1 };
            call_until_ok(
                &client,
                &CreateStreamInput { stream_name: name, shard_count: Some(shard_count), ..Default::default() },
            )
            .await;
        }
        for endpoint in &created_endpoints {
            let client = Client::connect(endpoint).await.unwrap();
            for node in 0..NODES {
                let name = format!("forwarded-{}", node + 1);
                call_until_ok(&client, &DescribeStreamSummaryInput { stream_name: Some(name), stream_arn: None }).await;
            }
        }
        // ACTIVE means writable, as on AWS: a stream shows CREATING on a node until its
        // shard's group has a leader there, so the first put after ACTIVE succeeds at once
        // through any node (without that, it met the first election's retriable errors).
        for (node, endpoint) in created_endpoints.iter().enumerate() {
            let client = Client::connect(endpoint).await.unwrap();
            let describe = DescribeStreamSummaryInput { stream_name: Some("forwarded-3".into()), stream_arn: None };
            let waiting = Instant::now();
            while call_until_ok(&client, &describe).await.stream_description_summary.stream_status
                != StreamStatus::Active
            {
                assert!(
                    waiting.elapsed() < Duration::from_secs(30),
                    "forwarded-3 never became ACTIVE on node {}",
                    node + 1
                );
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            let put = PutRecordInput {
                stream_name: Some("forwarded-3".into()),
                data: Bytes::from_static(b"first"),
                partition_key: Some("first".into()),
                ..Default::default()
            };
            if let Err(error) = client.call(&put).await {
                panic!("the first put through node {} after ACTIVE failed: {error:?}", node + 1);
            }
        }
        // Written at once, without waiting for ACTIVE: a member that has the new stream but
        // not yet its shards' groups or their leaders holds the put until a leader is known
        // (`forward::leader_known`), and forwards or serves it then. Refused at once with a
        // retriable InternalFailure before ("no replication group here yet", "no leader right
        // now"), 8 streams in 8 through boto3. A refusal after the whole wait is allowed: a
        // loaded machine may elect slower than that.
        let second = Client::connect(&created_endpoints[1]).await.unwrap();
        call_until_ok(
            &second,
            &CreateStreamInput { stream_name: "at-once".into(), shard_count: Some(4), ..Default::default() },
        )
        .await;
        let leader_wait = Duration::from_millis(sluice_server::limits::LEADER_WAIT_MS);
        for shard in 0..4u128 {
            let put = PutRecordInput {
                stream_name: Some("at-once".into()),
                data: Bytes::from(format!("at once to shard {shard}")),
                partition_key: Some("at-once".into()),
                explicit_hash_key: Some(HashKey(shard << 126)),
                ..Default::default()
            };
            loop {
                let asked = Instant::now();
                match second.call(&put).await {
                    Ok(_) => break,
                    // The catalog's change not applied at this member yet: nothing about leaders.
                    Err(ClientError::Service(error)) if error.kind == ErrorKind::ResourceNotFound => {
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                    }
                    Err(error) => {
                        assert!(
                            asked.elapsed() >= leader_wait,
                            "a put to a new stream's shard {shard} was refused after {:?}, without waiting for \
                             its leader: {error:?}",
                            asked.elapsed()
                        );
                        eprintln!("a put to shard {shard} of a new stream was refused after the whole wait: {error:?}");
                        break;
                    }
                }
            }
        }
        // A PutRecords its shard's leader refuses whole (a record above the stream's
        // MaxRecordSizeInKiB, 1 MiB by default, which the model lets through: a stream may take
        // 10 MiB) is refused whole through every node, forwarded or not: the leader's error,
        // not a failure per record.
        for (node, endpoint) in created_endpoints.iter().enumerate() {
            let client = Client::connect(endpoint).await.unwrap();
            let put = PutRecordsInput {
                records: vec![PutRecordsRequestEntry {
                    data: Bytes::from(vec![7u8; 1536 << 10]),
                    partition_key: Some("big".into()),
                    explicit_hash_key: None,
                }],
                stream_name: Some("forwarded-3".into()),
                stream_arn: None,
            };
            match client.call(&put).await {
                Err(ClientError::Service(error)) if error.kind == ErrorKind::Validation => {}
                other => panic!("a record above the stream's largest through node {}: {other:?}", node + 1),
            }
        }
        // Gone again: the leader balancing at the end of this test moves fewer groups.
        call_until_ok(&second, &DeleteStreamInput { stream_name: Some("at-once".into()), ..Default::default() }).await;
        // A PutRecords with a record for each of six shards, whose leaders are spread over the
        // members by their elections (all six on one member: 1 in 243), is split by leader:
        // through any node, every record is stored in its shard on the first call.
        let first = Client::connect(&created_endpoints[0]).await.unwrap();
        call_until_ok(
            &first,
            &CreateStreamInput { stream_name: "spread".into(), shard_count: Some(6), ..Default::default() },
        )
        .await;
        active_everywhere(&created_endpoints, "spread").await;
        for (node, endpoint) in created_endpoints.iter().enumerate() {
            let client = Client::connect(endpoint).await.unwrap();
            let list = ListShardsInput { stream_name: Some("spread".into()), ..Default::default() };
            let shards = call_until_ok(&client, &list).await.shards;
            assert_eq!(shards.len(), 6);
            let records = shards
                .iter()
                .map(|shard| PutRecordsRequestEntry {
                    data: Bytes::from(format!("spread through node {} to {}", node + 1, shard.shard_id.as_str())),
                    partition_key: Some("spread".into()),
                    explicit_hash_key: Some(shard.hash_key_range.starting_hash_key),
                })
                .collect();
            let put = PutRecordsInput { records, stream_name: Some("spread".into()), stream_arn: None };
            let answer = client.call(&put).await.expect("PutRecords through a node");
            assert_eq!(answer.failed_record_count, Some(0), "through node {}: {answer:?}", node + 1);
            for (shard, entry) in shards.iter().zip(&answer.records) {
                assert_eq!(entry.shard_id.as_ref(), Some(&shard.shard_id), "records answered out of order: {answer:?}");
            }
        }
        // Deleting the stream stops its six shards' groups on every node and removes their
        // Raft files (before, they ran until the node restarted).
        let groups_before: Vec<usize> = data_dirs.iter().map(|dir| shard_groups_on_disk(dir)).collect();
        let delete = DeleteStreamInput { stream_name: Some("spread".into()), ..Default::default() };
        call_until_ok(&first, &delete).await;
        let waiting = Instant::now();
        loop {
            let groups: Vec<usize> = data_dirs.iter().map(|dir| shard_groups_on_disk(dir)).collect();
            if groups.iter().zip(&groups_before).all(|(now, before)| now + 6 == *before) {
                break;
            }
            assert!(
                waiting.elapsed() < Duration::from_secs(30),
                "shard groups on disk per node: {groups_before:?} before deleting a 6-shard stream, {groups:?} now"
            );
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        a_stream_of_many_shards_is_created_at_once(&created_endpoints, &data_dirs).await;
        a_stream_deleted_under_writes_leaves_every_node_serving(&created_endpoints).await;
        on_demand_streams_split_on_the_catalog_leader_and_change_mode_through_any_node(&created_endpoints).await;
    });
    let stream = "forwarded-1";
    let mut probe = 0;
    let leader = shard_leader(&daemons, stream, &mut probe);
    let follower = (leader + 1) % NODES;
    eprintln!("shard leader: node {}; the writer talks to node {} only", leader + 1, follower + 1);

    // The writer: PutRecords to the follower only, retrying on it when a call fails. Each call
    // has a record for every shard of the stream (by explicit hash key), so it is acknowledged
    // whole only once every shard has a leader, and is split whenever two members lead them.
    let shared = Arc::new(Shared::default());
    let writer_shared = shared.clone();
    let failed_calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer_failed = failed_calls.clone();
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let writer_failures = failures.clone();
    let writer_endpoint = endpoints[follower].clone();
    let writer = std::thread::spawn(move || {
        run(move || async move {
            let mut rng = Rng(0xF0_0A4D_ED00_0001);
            let mut client: Option<Client> = None;
            for call in 0u64.. {
                if writer_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if client.as_ref().is_none_or(|client| client.connection_error().is_some()) {
                    client = Client::connect(&writer_endpoint).await.ok();
                }
                let Some(client) = client.as_ref() else {
                    glommio::timer::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let shards = WRITER_SHARDS as u64;
                let entries: Vec<_> = (0..shards + rng.next() % 20)
                    .map(|i| PutRecordsRequestEntry {
                        data: Bytes::from(format!("writer/{call}/{i}/{}", "x".repeat((rng.next() % 1000) as usize))),
                        partition_key: Some(format!("key-{}", rng.next() % 64)),
                        // Shard k of n starts at k * (2^128 - 1) / n.
                        explicit_hash_key: Some(HashKey(
                            u128::from(i % shards) * (u128::MAX / u128::from(shards)) + u128::from(rng.next() % 1000),
                        )),
                    })
                    .collect();
                let request = PutRecordsInput {
                    stream_name: Some("forwarded-1".into()),
                    records: entries.clone(),
                    ..Default::default()
                };
                let (mut acknowledged, sent) = (0, entries.len());
                let mut why = None;
                match client.call(&request).await {
                    Ok(response) => {
                        let mut acked = writer_shared.acked.lock().unwrap();
                        for (entry, result) in entries.into_iter().zip(response.records) {
                            if let Some(sequence) = result.sequence_number {
                                assert!(acked.insert(sequence.as_u128().unwrap(), entry.data).is_none());
                                acknowledged += 1;
                            } else {
                                why = why.or(result.error_message);
                            }
                        }
                    }
                    Err(error) => why = Some(format!("{error:?}")),
                }
                if let Some(why) = why {
                    writer_failures.lock().unwrap().push(why);
                }
                // A call counts as acknowledged once every record of it was: a record failed
                // inside the answer fails the call.
                if acknowledged == sent {
                    writer_shared.acked_at.lock().unwrap().push((Instant::now(), follower));
                } else {
                    writer_failed.fetch_add(1, Ordering::SeqCst);
                    glommio::timer::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    });
    let acked_calls_after = |moment: Instant, count: usize| -> Instant {
        let start = Instant::now();
        loop {
            let acked_at = shared.acked_at.lock().unwrap();
            let mut after: Vec<Instant> = acked_at.iter().map(|(at, _)| *at).filter(|at| *at > moment).collect();
            after.sort();
            if after.len() >= count {
                return after[count - 1];
            }
            drop(acked_at);
            assert!(start.elapsed() < Duration::from_secs(60), "the writer's follower acknowledged nothing for 60 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let started = Instant::now();
    acked_calls_after(started, 20);

    // Kill the shard's leader (never the writer's node) and restart it, twice while the
    // writer's node is still a follower.
    let mut failovers = Vec::new();
    let mut failed_in_handovers = 0;
    let mut leader = leader;
    for _ in 0..2 {
        if leader == follower {
            break;
        }
        let killed_at = Instant::now();
        let failed_before = failed_calls.load(Ordering::SeqCst);
        daemons[leader].kill();
        let acknowledged_at = acked_calls_after(killed_at, 1);
        let failover = acknowledged_at - killed_at;
        failovers.push(failover);
        // A call through the follower meanwhile waits up to LEADER_WAIT_MS for the next leader
        // (`forward::leader_moved`) instead of failing at once, so at most one fails per wait,
        // besides the one in flight at the kill and one cut short by the end of the failover.
        // Failing at once, 25 to 40 calls failed per failover (the writer retries every 20 ms).
        let failed = failed_calls.load(Ordering::SeqCst) - failed_before;
        eprintln!(
            "killed node {} (the leader): the follower's next write acknowledged after {failover:?}; \
             {failed} calls failed meanwhile",
            leader + 1,
        );
        let waits = failover.as_millis() as u64 / sluice_server::limits::LEADER_WAIT_MS;
        assert!(
            failed <= waits + 3,
            "{failed} calls through the follower failed in a failover of {failover:?}: they did not wait for the next leader"
        );
        // The restarted member is handed its share of the leaders back (leader balancing):
        // each handover is a leadership transfer under the writer's calls. A call's records
        // proposed to the old leader are followed to their commit by the new one, and those
        // the old one turns out not to lead any more go on to the new one (`dispatch::routed`),
        // so no call fails for it: before, 2 or 3 calls failed per restart, each with a
        // record "this node stopped leading before the entry committed" or "does not lead".
        // The writer calls one at a time: ten acknowledged calls end the election.
        acked_calls_after(killed_at, 10);
        let failed_before = failed_calls.load(Ordering::SeqCst);
        let failures_before = failures.lock().unwrap().len();
        restart_member(&mut daemons[leader]);
        let restarted = Instant::now();
        loop {
            let led = groups_led(&daemons);
            if led.iter().max().unwrap() - led.iter().min().unwrap() <= 1 && led[leader] > 0 {
                break;
            }
            assert!(restarted.elapsed() < Duration::from_secs(60), "leaders never evened out: {led:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        acked_calls_after(Instant::now(), 10);
        let failed = failed_calls.load(Ordering::SeqCst) - failed_before;
        let why = failures.lock().unwrap()[failures_before..].to_vec();
        eprintln!(
            "restarted node {} and its leaders came back in {:?}: {failed} calls failed meanwhile: {why:?}",
            leader + 1,
            restarted.elapsed(),
        );
        failed_in_handovers += failed;
        leader = shard_leader(&daemons, stream, &mut probe);
    }
    assert!(!failovers.is_empty());
    // One is allowed for a loaded machine (a commit wait that runs out); before, 2 to 4 failed
    // over the two restarts, in each of three runs.
    assert!(
        failed_in_handovers <= 1,
        "{failed_in_handovers} calls through the follower failed while leaders were handed back to restarted members"
    );

    // HTTP (AWS JSON, as an SDK sends it) through a node that does not lead the shard:
    // PutRecord is forwarded, GetRecords is served by that node from its applied log.
    let leader = shard_leader(&daemons, stream, &mut probe);
    let http_follower = (leader + 2) % NODES;
    let http = daemons[http_follower].http_addr.to_string();
    let (http_sequence, http_data) = run(move || async move {
        let client = HttpClient::connect(&http, Encoding::Json).await.unwrap();
        let data = Bytes::from_static(b"through a follower's HTTP port");
        let put = PutRecordInput {
            stream_name: Some("forwarded-1".into()),
            data: data.clone(),
            partition_key: Some("http".into()),
            ..Default::default()
        };
        let start = Instant::now();
        let (shard_id, sequence) = loop {
            match client.call(&put).await {
                Ok(output) => break (output.shard_id, output.sequence_number),
                Err(error) => assert!(start.elapsed() < Duration::from_secs(60), "PutRecord over HTTP: {error}"),
            }
            glommio::timer::sleep(Duration::from_millis(50)).await;
        };
        let iterator = GetShardIteratorInput {
            stream_name: Some("forwarded-1".into()),
            stream_arn: None,
            shard_id,
            shard_iterator_type: ShardIteratorType::AtSequenceNumber,
            starting_sequence_number: Some(sequence.clone()),
            timestamp: None,
        };
        // The follower applies the entry a moment after the leader answered.
        let start = Instant::now();
        loop {
            // Until the follower applied the record, its sequence number is past this node's
            // tip (InvalidArgument) or the page is empty.
            if let Ok(GetShardIteratorOutput { shard_iterator: Some(iterator), .. }) = client.call(&iterator).await {
                let page = client
                    .call(&GetRecordsInput { shard_iterator: iterator, limit: Some(1), ..Default::default() })
                    .await
                    .unwrap();
                if let Some(record) = page.records.first() {
                    assert_eq!(record.sequence_number, sequence);
                    assert_eq!(record.data, data);
                    return (sequence, data);
                }
            }
            assert!(start.elapsed() < Duration::from_secs(30), "the follower never served {sequence:?}");
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    });
    eprintln!("PutRecord and GetRecords over HTTP through node {}: {http_sequence:?}", http_follower + 1);

    shared.stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let mut acked = std::mem::take(&mut *shared.acked.lock().unwrap());
    acked.insert(http_sequence.as_u128().unwrap(), http_data);
    let acknowledged = acked.len();
    let endpoints = daemons.iter().map(Daemon::endpoint).collect();
    let view = wait_until_every_node_agrees_on_shards(endpoints, stream, WRITER_SHARDS as usize, acked);
    let stored: usize = view.records.iter().map(|(records, _)| records.len()).sum();
    failovers.sort();
    eprintln!(
        "forwarding: {acknowledged} records acknowledged by one follower (and HTTP), {stored} stored on each node; \
         {} leader kills, failover max {:?}",
        failovers.len(),
        failovers.last().unwrap()
    );

    // The catalog's changes, through a follower of the catalog, on the same members.
    catalog_changes_through_a_follower_reach_every_node_and_survive_the_leaders_death(&mut daemons);
    a_created_stream_is_found_at_once_through_either_follower(&daemons);
    reshards_through_a_follower_under_writes_end_alike_on_every_node_and_survive_the_leaders_death(&mut daemons);
    subscriptions_deliver_every_record_through_a_leader_kill_and_resume_on_another_node(&mut daemons);
    leaders_even_out_over_the_members_after_a_restart(&mut daemons);
    delivery_streams_and_channels_are_refused_on_every_member(&daemons);
    for daemon in &mut daemons {
        daemon.stop();
    }
}

/// Delivery streams (Firehose) and channels are not replicated yet: every member refuses them,
/// with an error that says so and that a client does not retry (`ops::firehose::refuse_on_replicated`).
fn delivery_streams_and_channels_are_refused_on_every_member(daemons: &[Daemon]) {
    for daemon in daemons {
        for target in ["Firehose_20150804.ListDeliveryStreams", "Kinesis_20131202.ListChannels"] {
            let (status, answer) = json_call(daemon.http_addr, target, "{}");
            assert_eq!(status, 400, "{target} on a replicated node: {answer}");
            assert!(
                answer.contains("InvalidArgumentException") && answer.contains("not available on a replicated node"),
                "{target} on a replicated node: {answer}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The delivery state (consumer groups, queues) as the log of a group of its own.

/// The member leading the delivery state's group, once every node of `nodes` names the same
/// one of them in DescribeCluster (up to 30 s).
fn delivery_leader(daemons: &[Daemon], nodes: &[usize]) -> usize {
    let start = Instant::now();
    loop {
        let named: Vec<Option<u64>> = nodes
            .iter()
            .map(|&node| {
                let (_, body) = admin_call(daemons[node].http_addr, "DescribeCluster", "{}");
                let view: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let groups = view["Groups"].as_array().cloned().unwrap_or_default();
                groups.iter().find(|group| group["Group"] == "delivery").and_then(|group| group["Leader"].as_u64())
            })
            .collect();
        // A leader among `nodes` (the others may be dead, and named until an election ends).
        if let Some(Some(leader)) = named.first() {
            let among = *leader != 0 && nodes.contains(&(*leader as usize - 1));
            if among && named.iter().all(|other| *other == Some(*leader)) {
                return *leader as usize - 1;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the nodes do not agree on the delivery state's leader: {named:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Retries `call` over HTTP on one node while it fails (an election, a dead leader), for up
/// to 60 s.
async fn http_until_ok<I>(client: &HttpClient, input: &I) -> I::Output
where
    I: OperationInput + serde::Serialize + std::fmt::Debug,
{
    until_ok(input, || client.call(input)).await
}

/// Receives from `queue` through `client` until `wanted` says it has what it waits for (up to
/// 60 s), acknowledging through `acknowledger` the records `acknowledge` picks; returns the
/// ids of the records received, and of those acknowledged (every acknowledgement answered
/// Successful).
async fn receive_until(
    client: &HttpClient,
    acknowledger: &HttpClient,
    queue: &str,
    acknowledge: impl Fn(&QueueRecord) -> bool,
    wanted: impl Fn(&BTreeSet<String>) -> bool,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut received, mut acknowledged) = (BTreeSet::new(), BTreeSet::new());
    let start = Instant::now();
    while !wanted(&received) {
        assert!(start.elapsed() < Duration::from_secs(60), "the queue delivered only {received:?}");
        let receive = ReceiveQueueRecordsInput {
            queue_arn: queue.to_string(),
            limit: Some(10),
            wait_time_seconds: Some(1),
            visibility_timeout_seconds: None,
        };
        let Ok(output) = client.call(&receive).await else {
            glommio::timer::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let picked: Vec<&QueueRecord> = output.queue_records.iter().filter(|record| acknowledge(record)).collect();
        received.extend(output.queue_records.iter().map(|record| record.record_id.clone()));
        if !picked.is_empty() {
            let entries = picked
                .iter()
                .map(|record| ReceiptHandleEntry { receipt_handle: record.receipt_handle.clone() })
                .collect();
            let input = AcknowledgeQueueRecordsInput { queue_arn: queue.to_string(), entries };
            let answer = http_until_ok(acknowledger, &input).await;
            assert!(answer.failed.is_empty(), "acknowledgements failed: {:?}", answer.failed);
            acknowledged.extend(picked.iter().map(|record| record.record_id.clone()));
        }
    }
    (received, acknowledged)
}

/// A sequence number the shard's leader acknowledged is a position on every member at once: a
/// GetShardIterator after it, sent to a follower that was paused (SIGSTOP) while the record
/// was written and is resumed with the request waiting, is answered (the follower waits for
/// the record, or past a bound asks the leader) rather than refused as past its tip. And an
/// iterator any member hands out reads at every member (a client behind a load balancer
/// moves between them): the cluster signs them with one key.
#[test]
fn a_follower_reads_from_a_sequence_number_its_leader_just_acknowledged() {
    let mut daemons = start_forwarding_cluster();
    let stream = "caught-up";
    let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
    run(move || async move {
        let client = Client::connect(&endpoints[0]).await.unwrap();
        let create = CreateStreamInput { stream_name: stream.into(), shard_count: Some(1), ..Default::default() };
        call_until_ok(&client, &create).await;
        // Every member has the stream, with its shard led (ACTIVE), before the leader is probed.
        let describe = DescribeStreamSummaryInput { stream_name: Some(stream.into()), stream_arn: None };
        for endpoint in &endpoints {
            let client = Client::connect(endpoint).await.unwrap();
            let waiting = Instant::now();
            while call_until_ok(&client, &describe).await.stream_description_summary.stream_status
                != StreamStatus::Active
            {
                assert!(waiting.elapsed() < Duration::from_secs(30), "{stream} never became ACTIVE at {endpoint}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let mut probe = 0;
    // A record put through the leader while a follower is stopped, and a GetShardIterator
    // (`request` of the record's sequence number) sent to that follower, which it answers once
    // resumed. The leadership may move between the probe and the put (an election on a loaded
    // machine: CI saw the put refused once): then the follower is resumed and both are chosen
    // again. Returns the follower's HTTP address too.
    let mut while_paused = |data: &[u8], request: &dyn Fn(&SequenceNumber) -> String| loop {
        let leader = shard_leader(&daemons, stream, &mut probe);
        let follower = (leader + 1) % NODES;
        let pid = daemons[follower].pid() as libc::pid_t;
        let follower_http = daemons[follower].http_addr;
        // SAFETY: a signal to the follower's process, which this test started.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let sequence = match put_as_forwarded(daemons[leader].addr, stream, data) {
            Ok(sequence) => sequence,
            Err(error) if error.message.contains("does not lead") || error.message.contains("no leader") => {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGCONT) };
                continue;
            }
            Err(error) => panic!("PutRecord at the shard's leader: {error:?}"),
        };
        let resume = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        });
        let answer = json_call(follower_http, "Kinesis_20131202.GetShardIterator", &request(&sequence));
        resume.join().unwrap();
        return (sequence, answer, follower_http);
    };
    let shard = format!(r#""StreamName":"{stream}","ShardId":"shardId-000000000000""#);
    let (sequence, (status, answer), _) = while_paused(b"while the follower slept", &|sequence| {
        format!(r#"{{{shard},"ShardIteratorType":"AFTER_SEQUENCE_NUMBER","StartingSequenceNumber":"{sequence}"}}"#)
    });
    assert_eq!(status, 200, "GetShardIterator after {sequence} at the resumed follower: {answer}");
    let after_last = json_field(&answer, "ShardIterator");
    let trim_horizon =
        format!(r#"{{"StreamName":"{stream}","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}}"#);
    for (giver, daemon) in daemons.iter().enumerate() {
        let (status, answer) = json_call(daemon.http_addr, "Kinesis_20131202.GetShardIterator", &trim_horizon);
        assert_eq!(status, 200, "TRIM_HORIZON at member {giver}: {answer}");
        let from_start = json_field(&answer, "ShardIterator");
        for (reader, daemon) in daemons.iter().enumerate() {
            // (A member applies the last records a moment after the others, hence the retries.)
            let reading = Instant::now();
            for (iterator, records_min) in [(&from_start, 2), (&after_last, 0)] {
                let body = format!(r#"{{"ShardIterator":"{iterator}"}}"#);
                loop {
                    let (status, answer) = json_call(daemon.http_addr, "Kinesis_20131202.GetRecords", &body);
                    assert_eq!(status, 200, "GetRecords at member {reader} with member {giver}'s iterator: {answer}");
                    let page: serde_json::Value = serde_json::from_str(&answer).unwrap();
                    if page["Records"].as_array().map_or(0, Vec::len) >= records_min {
                        break;
                    }
                    assert!(reading.elapsed() < Duration::from_secs(30), "member {reader} read too few: {answer}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    // LATEST at the follower is after the record the leader acknowledged just before, though
    // the follower had not applied it: it learns the group's commit from the leader (a read
    // index) and applies up to it first.
    let (_, (status, answer), follower_http) =
        while_paused(b"before LATEST", &|_| format!(r#"{{{shard},"ShardIteratorType":"LATEST"}}"#));
    assert_eq!(status, 200, "LATEST at the resumed follower: {answer}");
    let latest = format!(r#"{{"ShardIterator":"{}"}}"#, json_field(&answer, "ShardIterator"));
    let from_start = json_call(follower_http, "Kinesis_20131202.GetShardIterator", &trim_horizon).1;
    let from_start = format!(r#"{{"ShardIterator":"{}"}}"#, json_field(&from_start, "ShardIterator"));
    let earlier = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("before LATEST")
    };
    let waiting = Instant::now();
    // Once the follower holds the record, a read from LATEST still does not return it.
    while !json_call(follower_http, "Kinesis_20131202.GetRecords", &from_start).1.contains(&earlier) {
        assert!(waiting.elapsed() < Duration::from_secs(30), "the follower never applied the record");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, page) = json_call(follower_http, "Kinesis_20131202.GetRecords", &latest);
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains(&earlier), "LATEST at the follower read an earlier record: {page}");
    for daemon in &mut daemons {
        daemon.stop();
    }
}

/// Entries of the delivery state's log between two snapshots in
/// [`consumer_groups_and_queues_through_followers_survive_the_delivery_leaders_death`]: several
/// snapshots (and trims) while it runs.
const DELIVERY_SNAPSHOT_INTERVAL_ENTRIES: u64 = 10;

#[test]
fn consumer_groups_and_queues_through_followers_survive_the_delivery_leaders_death() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = dir.path().join("sluiced.toml");
    let overrides = format!(
        "[limit-overrides]\ndelivery-snapshot-interval-entries = {DELIVERY_SNAPSHOT_INTERVAL_ENTRIES}\n\
         segment-bytes-max = 65536\nretention-interval-ms = 100\n"
    );
    std::fs::write(&config, overrides).unwrap();
    let config = config.to_str().unwrap().to_string();
    let mut daemons = start_forwarding_cluster_with(|_| vec!["--config".into(), config.clone()]);
    let snapshots = the_delivery_state_through_followers_survives_its_leaders_death(&mut daemons);
    // The leaders wrote snapshots of the log as entries (counted before the first death: a
    // killed member's count starts again at 0), and every member trimmed its log before the
    // latest: the restarted ones too, which replayed from one.
    let entries: Vec<f64> =
        daemons.iter().map(|daemon| common::scrape(daemon.metrics_addr, "sluice_delivery_log_entries")).collect();
    eprintln!(
        "delivery state: {snapshots} snapshots written before the first kill, log entries held per member {entries:?}"
    );
    assert!(snapshots >= 1.0, "no snapshot of the delivery state's log was written");
    // At most the entries since the last snapshot, its parts, and those applied while it was
    // being written.
    let held_max = 2 * DELIVERY_SNAPSHOT_INTERVAL_ENTRIES;
    assert!(entries.iter().all(|&held| held <= held_max as f64), "a member's log was not trimmed: {entries:?}");
    for daemon in &mut daemons {
        daemon.stop();
    }
}

/// Consumer groups and queues on a replicated node: their state is the log of the delivery
/// group, which one member leads; the others forward the lease calls to it (either protocol)
/// and relay the queue calls (HTTP). Through the two followers: an application, a lease taken
/// and checkpointed, a queue (with tags) delivering records, half of them acknowledged. Then the
/// delivery group's leader is SIGKILLed: through the survivors, the lease keeps its owner and
/// checkpoint, the queue its tags, no acknowledged record is received again while every other one is, and a
/// second application gets an ARN of its own. Returns the snapshots of the log the members
/// wrote before the first death.
fn the_delivery_state_through_followers_survives_its_leaders_death(daemons: &mut [Daemon]) -> f64 {
    const RECORDS: usize = 20;
    let leader = delivery_leader(daemons, &[0, 1, 2]);
    let (first, second) = ((leader + 1) % NODES, (leader + 2) % NODES);
    let (http_first, http_second) = (daemons[first].http_addr.to_string(), daemons[second].http_addr.to_string());
    let native_second = daemons[second].endpoint();
    let stream = "delivered";
    let lease_input = |input: ListLeasesInput| ListLeasesInput {
        stream_name: Some(stream.into()),
        application_name: Some("first".into()),
        ..input
    };
    let (queue, first_arn, checkpoint, acknowledged) = run({
        let (http_first, http_second) = (http_first.clone(), http_second.clone());
        move || async move {
            let http = HttpClient::connect(&http_first, Encoding::Json).await.unwrap();
            let other = HttpClient::connect(&http_second, Encoding::Json).await.unwrap();
            let native = Client::connect(&native_second).await.unwrap();
            let create = CreateStreamInput {
                stream_name: stream.into(),
                stream_mode_details: Some(StreamModeDetails { stream_mode: StreamMode::OnDemand }),
                ..Default::default()
            };
            http_until_ok(&http, &create).await;
            let describe = DescribeStreamSummaryInput { stream_name: Some(stream.into()), stream_arn: None };
            let start = Instant::now();
            while http_until_ok(&http, &describe).await.stream_description_summary.stream_status != StreamStatus::Active
            {
                assert!(start.elapsed() < Duration::from_secs(30), "{stream} never became ACTIVE");
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
            // An application through a follower's native port (forwarded to the leader).
            let app = CreateApplicationInput {
                stream_name: Some(stream.into()),
                application_name: "first".into(),
                lease_duration_millis: Some(600_000),
                ..Default::default()
            };
            let created = call_until_ok(&native, &app).await;
            assert!(created.application_description.lease_count >= 1, "{created:?}");
            let first_arn = created.application_description.application_arn;
            // A lease taken over HTTP through the other follower, checkpointed over the native
            // protocol.
            let leases = http_until_ok(&http, &lease_input(ListLeasesInput::default())).await.leases;
            let key = leases[0].lease_key.clone();
            let take = TakeLeaseInput {
                stream_name: Some(stream.into()),
                application_name: Some("first".into()),
                lease_key: key.clone(),
                worker_id: "worker-1".into(),
                lease_counter: leases[0].lease_counter,
                ..Default::default()
            };
            let taken = http.take_lease(&take).await.unwrap();
            assert_eq!(
                (taken.lease_owner.as_deref(), taken.lease_counter),
                (Some("worker-1"), leases[0].lease_counter + 1)
            );
            // A queue through a follower's HTTP port (relayed), then records to it.
            let stream_arn = Identity::default().stream_arn(stream);
            let create = common::queue_from_trim_horizon("work", &stream_arn, 2, Some(tags(&[("created", "with")])));
            let queue = http_until_ok(&http, &create).await.queue_description.queue_arn;
            // Its tags are the delivery state's too: a tag added through the native port.
            let tag =
                TagResourceInput { tags: tags(&[("added", "later")]), resource_arn: ResourceArn::from(queue.as_str()) };
            call_until_ok(&native, &tag).await;
            // Records refused for a moment (a leader change: the stream's groups are new and
            // being balanced) are sent again, as a producer does.
            let mut pending: Vec<usize> = (0..RECORDS).collect();
            let mut stored = Vec::new();
            let putting = Instant::now();
            while !pending.is_empty() {
                assert!(putting.elapsed() < Duration::from_secs(60), "records {pending:?} kept being refused");
                let put = PutRecordsInput {
                    records: pending
                        .iter()
                        .map(|i| PutRecordsRequestEntry {
                            data: Bytes::from(format!("queued {i}")),
                            partition_key: Some(format!("key-{i}")),
                            ..Default::default()
                        })
                        .collect(),
                    stream_arn: Some(stream_arn.clone()),
                    ..Default::default()
                };
                let output = http_until_ok(&http, &put).await;
                let answers = pending.iter().copied().zip(output.records);
                let (done, refused): (Vec<_>, Vec<_>) = answers.partition(|(_, answer)| answer.error_code.is_none());
                stored.extend(done.into_iter().filter_map(|(_, answer)| answer.sequence_number));
                pending = refused.into_iter().map(|(i, _)| i).collect();
            }
            let checkpoint = stored[0].to_string();
            let mut checkpointed = CheckpointLeaseInput {
                stream_name: Some(stream.into()),
                application_name: Some("first".into()),
                lease_key: key,
                worker_id: "worker-1".into(),
                lease_counter: taken.lease_counter,
                checkpoint: checkpoint.clone(),
                ..Default::default()
            };
            checkpointed.checkpoint_sub_sequence_number = Some(0);
            call_until_ok(&native, &checkpointed).await;
            // Received through one follower, every other record acknowledged through the other.
            let even = |record: &QueueRecord| record.data.last().is_some_and(|digit| digit % 2 == 0);
            let (received, acknowledged) =
                receive_until(&other, &http, &queue, even, |received| received.len() == RECORDS).await;
            assert_eq!(acknowledged.len(), RECORDS / 2);
            (queue, first_arn, checkpoint, (received, acknowledged))
        }
    });
    // The followers relayed the queue calls over connections they keep alive for the next
    // ones: some stay open at the leader once the calls are answered (the test's own clients
    // are the followers'). At the leader now, should an election have moved the group.
    std::thread::sleep(Duration::from_millis(300));
    let leader_now = &daemons[delivery_leader(daemons, &[0, 1, 2])];
    let relays = common::scrape_labelled(leader_now.metrics_addr, "sluice_connections", r#"protocol="http""#);
    assert!((1.0..=16.0).contains(&relays), "{relays} HTTP connections open at the delivery leader");
    // Written by whichever member led while the entries were applied; counted before any dies.
    let snapshots: f64 =
        daemons.iter().map(|daemon| common::scrape(daemon.metrics_addr, "sluice_delivery_snapshots_total")).sum();
    let killed = Instant::now();
    daemons[leader].kill();
    eprintln!("killed node {} (the delivery state's leader)", leader + 1);
    let expected = Arc::new(DeliveryExpected { stream, queue, checkpoint, applications: vec![first_arn] });
    let (received, acknowledged) = acknowledged;
    let unacknowledged: BTreeSet<String> = received.difference(&acknowledged).cloned().collect();
    let (native_first, check) = (daemons[first].endpoint(), expected.clone());
    let second_arn = run(move || async move {
        let (http, other) = (http_client(&http_first).await, http_client(&http_second).await);
        let native = Client::connect(&native_first).await.unwrap();
        // The failover as a client sees it: retried every 50 ms until the new leader answers.
        let list = ListLeasesInput {
            stream_name: Some(stream.into()),
            application_name: Some("first".into()),
            ..Default::default()
        };
        http_until_ok(&http, &list).await;
        eprintln!(
            "delivery state: a lease call through a survivor answered {:?} after the leader's SIGKILL",
            killed.elapsed()
        );
        // A second application: an ARN of its own.
        let app = CreateApplicationInput {
            stream_name: Some(stream.into()),
            application_name: "second".into(),
            ..Default::default()
        };
        let second_arn = call_until_ok(&native, &app).await.application_description.application_arn;
        assert!(!check.applications.contains(&second_arn), "{second_arn} named two applications");
        check.expect(&native, &http, &[&second_arn]).await;
        // The records not acknowledged come again once their visibility ends; no other does.
        let wanted = unacknowledged.len();
        let (again, _) = receive_until(&other, &http, &check.queue, |_| true, |again| again.len() >= wanted).await;
        assert_eq!(again, unacknowledged, "received after the leader's death");
        second_arn
    });
    // The killed member comes back and catches up; then the leader at that moment dies too,
    // and the two members left (the restarted one among them) still hold everything.
    restart_member(&mut daemons[leader]);
    let next = delivery_leader(daemons, &[0, 1, 2]);
    daemons[next].kill();
    let left: Vec<usize> = (0..NODES).filter(|&node| node != next).collect();
    let now_leading = delivery_leader(daemons, &left);
    eprintln!("killed node {} (the delivery state's next leader); node {} leads it now", next + 1, now_leading + 1);
    let (native_left, http_left) = (daemons[left[0]].endpoint(), daemons[left[1]].http_addr.to_string());
    run(move || async move {
        let native = Client::connect(&native_left).await.unwrap();
        expected.expect(&native, &*http_client(&http_left).await, &[&second_arn]).await;
    });
    restart_member(&mut daemons[next]);
    delivery_leader(daemons, &[0, 1, 2]);
    eprintln!("the delivery state: leases, applications and a queue survived the deaths of two leaders in turn");
    snapshots
}

/// What [`the_delivery_state_through_followers_survives_its_leaders_death`] left in the
/// delivery state.
struct DeliveryExpected {
    stream: &'static str,
    queue: String,
    /// Of the one lease taken, by `worker-1`.
    checkpoint: String,
    applications: Vec<String>,
}

impl DeliveryExpected {
    /// Checks through `native` and `http` (any members) that the lease keeps its owner and
    /// checkpoint, the stream has exactly the expected applications (and `more`), and the queue
    /// its tags.
    async fn expect(&self, native: &Client, http: &HttpClient, more: &[&str]) {
        let list = ListLeasesInput {
            stream_name: Some(self.stream.into()),
            application_name: Some("first".into()),
            ..Default::default()
        };
        let leases = http_until_ok(http, &list).await.leases;
        let lease = leases.iter().find(|lease| lease.lease_owner.is_some()).expect("the taken lease kept its owner");
        assert_eq!(
            (lease.lease_owner.as_deref(), lease.checkpoint.as_str()),
            (Some("worker-1"), self.checkpoint.as_str())
        );
        let listed = ListApplicationsInput { stream_name: Some(self.stream.into()), ..Default::default() };
        let mut arns: Vec<String> =
            call_until_ok(native, &listed).await.applications.into_iter().map(|app| app.application_arn).collect();
        let mut expected: Vec<String> =
            self.applications.iter().cloned().chain(more.iter().map(|arn| arn.to_string())).collect();
        arns.sort();
        expected.sort();
        assert_eq!(arns, expected);
        let listed = ListTagsForResourceInput { resource_arn: ResourceArn::from(self.queue.as_str()) };
        let mut tags = call_until_ok(native, &listed).await.tags;
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(tags, tag_list(&[("added", "later"), ("created", "with")]));
    }
}

async fn http_client(endpoint: &str) -> std::rc::Rc<HttpClient> {
    HttpClient::connect(endpoint, Encoding::Json).await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// The catalog's changes as metadata commands: tags, retention, consumers.

/// What one node's catalog says about a stream, as its clients read it.
#[derive(Debug, Clone, PartialEq)]
struct CatalogView {
    retention_period_hours: i32,
    max_record_size_in_kib: Option<i32>,
    stream_policy: String,
    consumer_count: Option<i32>,
    stream_tags: Vec<Tag>,
    consumer: Option<ConsumerDescription>,
    consumer_tags: Vec<Tag>,
}

/// The view of `stream` (and of its consumer `consumer_arn`) on the node at `endpoint`;
/// `None` while the node cannot answer.
async fn catalog_view(endpoint: &str, stream: &str, consumer_arn: &ConsumerArn) -> Option<CatalogView> {
    let client = Client::connect(endpoint).await.ok()?;
    let summary = client
        .call(&DescribeStreamSummaryInput { stream_name: Some(stream.into()), stream_arn: None })
        .await
        .ok()?
        .stream_description_summary;
    let tags = client
        .call(&ListTagsForStreamInput { stream_name: Some(stream.into()), ..Default::default() })
        .await
        .ok()?
        .tags;
    let consumer = client
        .call(&DescribeStreamConsumerInput { consumer_arn: Some(consumer_arn.clone()), ..Default::default() })
        .await
        .ok()
        .map(|output| output.consumer_description);
    let consumer_tags = client
        .call(&ListTagsForResourceInput { resource_arn: ResourceArn::from(consumer_arn.as_str()) })
        .await
        .map(|output| output.tags)
        .unwrap_or_default();
    let policy =
        GetResourcePolicyInput { resource_arn: ResourceArn::from(summary.stream_arn.as_str()), stream_id: None };
    let stream_policy = client.call(&policy).await.ok()?.policy;
    Some(CatalogView {
        retention_period_hours: summary.retention_period_hours,
        max_record_size_in_kib: summary.max_record_size_in_kib,
        stream_policy,
        consumer_count: summary.consumer_count,
        stream_tags: tags,
        consumer,
        consumer_tags,
    })
}

/// Waits (at most 30 s) until every node at `endpoints` shows `expected`: each applies the
/// metadata commands a moment after the leader answered.
fn expect_everywhere(endpoints: Vec<String>, stream: &str, consumer_arn: &ConsumerArn, expected: &CatalogView) {
    let (stream, consumer_arn, expected) = (stream.to_owned(), consumer_arn.clone(), expected.clone());
    run(move || async move {
        let start = Instant::now();
        for endpoint in &endpoints {
            loop {
                let view = catalog_view(endpoint, &stream, &consumer_arn).await;
                if view.as_ref() == Some(&expected) {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(30), "{endpoint} still shows {view:?}, not {expected:?}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    });
}

/// A resource policy for `stream`: it lets one user read it (so it parses and names the stream,
/// and changes nothing for the test's unauthenticated clients).
fn stream_policy(stream: &StreamArn) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::000000000000:user/reader"}},"Action":"kinesis:GetRecords","Resource":"{stream}"}}]}}"#
    )
}

fn tags(pairs: &[(&str, &str)]) -> TagMap {
    pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
}

fn tag_list(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs.iter().map(|(key, value)| Tag { key: key.to_string(), value: Some(value.to_string()) }).collect()
}

/// UpdateStreamWarmThroughput is a catalog command (`BeginWarmThroughput`): sent to a
/// follower of the catalog over HTTP (which forwards it to the leader on the native protocol,
/// as it does UpdateAccountSettings before it), it scales an ON_DEMAND stream from its 4
/// shards to the 6 that 6 MiB/s need, and every node shows the new shards and the target.
fn warm_throughput_scales_an_on_demand_stream_on_every_node(endpoints: &[String], follower_http: SocketAddr) {
    let endpoints = endpoints.to_vec();
    run(move || async move {
        let http = HttpClient::connect(&follower_http.to_string(), Encoding::Json).await.unwrap();
        let commitment = MinimumThroughputBillingCommitmentInput { status: BillingCommitmentInputStatus::Enabled };
        let enable = UpdateAccountSettingsInput { minimum_throughput_billing_commitment: commitment };
        let enabled = http.call(&enable).await.expect("UpdateAccountSettings through a follower");
        let status = enabled.minimum_throughput_billing_commitment.map(|commitment| commitment.status);
        assert_eq!(status, Some(BillingCommitmentStatus::Enabled));
        let native = Client::connect(&endpoints[0]).await.unwrap();
        let create = CreateStreamInput {
            stream_name: "warm".into(),
            stream_mode_details: Some(StreamModeDetails::from(StreamMode::OnDemand)),
            ..Default::default()
        };
        call_until_ok(&native, &create).await;
        let warm = UpdateStreamWarmThroughputInput {
            stream_arn: None,
            stream_name: Some("warm".into()),
            warm_throughput_mi_bps: 6,
        };
        // The stream may still be CREATING on the leader: ResourceInUse until it is ACTIVE.
        let waiting = Instant::now();
        let answer = loop {
            match http.call(&warm).await {
                Ok(answer) => break answer,
                Err(error) => {
                    assert!(waiting.elapsed() < Duration::from_secs(30), "UpdateStreamWarmThroughput: {error}");
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        assert_eq!(answer.warm_throughput.and_then(|warm| warm.target_mi_bps), Some(6));
        let describe = DescribeStreamSummaryInput { stream_name: Some("warm".into()), stream_arn: None };
        let waiting = Instant::now();
        for (node, endpoint) in endpoints.iter().enumerate() {
            let client = Client::connect(endpoint).await.unwrap();
            loop {
                let summary = match client.call(&describe).await {
                    Ok(summary) => summary,
                    Err(error) => {
                        assert!(waiting.elapsed() < Duration::from_secs(60), "node {}: {error}", node + 1);
                        glommio::timer::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let summary = summary.stream_description_summary;
                let target = summary.warm_throughput.as_ref().and_then(|warm| warm.target_mi_bps);
                if summary.open_shard_count == 6 && summary.stream_status == StreamStatus::Active && target == Some(6) {
                    break;
                }
                assert!(
                    waiting.elapsed() < Duration::from_secs(60),
                    "node {}: {} open shards, {:?}, warm target {target:?}",
                    node + 1,
                    summary.open_shard_count,
                    summary.stream_status
                );
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
        // The scaled stream's records are then spread over its shards as they come
        // (UpdateStreamRecordDistributionStrategy, forwarded too; AUTO needs ON_DEMAND).
        let stream_arn = native.call(&describe).await.unwrap().stream_description_summary.stream_arn;
        let auto = UpdateStreamRecordDistributionStrategyInput {
            stream_arn,
            record_distribution_strategy: RecordDistributionStrategy::Auto,
        };
        http.call(&auto).await.expect("UpdateStreamRecordDistributionStrategy through a follower");
        for (node, endpoint) in endpoints.iter().enumerate() {
            let client = Client::connect(endpoint).await.unwrap();
            loop {
                let summary = client.call(&describe).await.unwrap().stream_description_summary;
                if summary.record_distribution_strategy == Some(RecordDistributionStrategy::Auto) {
                    break;
                }
                let strategy = summary.record_distribution_strategy;
                assert!(waiting.elapsed() < Duration::from_secs(90), "node {}: distribution {strategy:?}", node + 1);
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
        // Through each node, an AUTO stream's records go to the shards that node leads (or,
        // leading none, to a member that leads one): they are stored at once, not refused
        // by shards whose leader is elsewhere (a second try for what a leader change
        // refused; without this, about two thirds failed at each try).
        let mut shards = BTreeSet::new();
        for (node, endpoint) in endpoints.iter().enumerate() {
            let client = Client::connect(endpoint).await.unwrap();
            let entry = |i: usize| PutRecordsRequestEntry {
                data: Bytes::from(format!("auto {node}-{i}")),
                partition_key: Some("one key".into()),
                ..Default::default()
            };
            let mut pending: Vec<usize> = (0..30).collect();
            for _ in 0..2 {
                if pending.is_empty() {
                    break;
                }
                let put = PutRecordsInput {
                    records: pending.iter().map(|&i| entry(i)).collect(),
                    stream_name: Some("warm".into()),
                    ..Default::default()
                };
                let output = call_until_ok(&client, &put).await;
                let mut failed = Vec::new();
                for (&i, record) in pending.iter().zip(&output.records) {
                    match &record.shard_id {
                        Some(shard) if record.error_code.is_none() => {
                            shards.insert(shard.clone());
                        }
                        _ => failed.push(i),
                    }
                }
                pending = failed;
            }
            assert!(pending.is_empty(), "node {}: {} AUTO records refused twice", node + 1, pending.len());
        }
        // One partition key, yet spread over the shards the members lead.
        assert!(shards.len() >= 2, "AUTO records of one key went to {shards:?} only");
    });
}

/// Streams created through a follower of the catalog are found the moment the creation is
/// answered, through that follower (it waits until it applied the change before answering)
/// and through the other one (a catalog read first catches up with the catalog's leader, and
/// a write that finds no such stream does), as AWS's DescribeStream finds a stream
/// CreateStream just answered: the AWS SDKs' StreamExists waiters stop at the first
/// ResourceNotFoundException. The other follower is stopped (SIGSTOP) while the stream is
/// created, so that when it continues, the call waiting in its socket (a Describe, or a
/// PutRecord to the new stream) meets a catalog that has not applied the creation yet. Then
/// the same for a change to a stream that exists (tags added, then listed through the other
/// follower: reads are linearizable), and for a consumer registered, then subscribed to.
fn a_created_stream_is_found_at_once_through_either_follower(daemons: &[Daemon]) {
    const STREAMS: usize = 5;
    let leader = catalog_leader(daemons, "catalog");
    let followers: Vec<usize> = (0..NODES).filter(|&node| node != leader).collect();
    let endpoints: Vec<String> = followers.iter().map(|&node| daemons[node].endpoint()).collect();
    let other_pid = daemons[followers[1]].pid() as libc::pid_t;
    let signal = move |signal| {
        // SAFETY: kill(2) of a daemon this test started and has not waited for.
        let sent = unsafe { libc::kill(other_pid, signal) };
        assert_eq!(sent, 0, "signal {signal}: {}", std::io::Error::last_os_error());
    };
    run(move || async move {
        let through = Client::connect(&endpoints[0]).await.unwrap();
        let other = Client::connect(&endpoints[1]).await.unwrap();
        for number in 0..STREAMS {
            let name = format!("found-at-once-{number}");
            signal(libc::SIGSTOP);
            let create = CreateStreamInput { stream_name: name.clone(), shard_count: Some(1), ..Default::default() };
            call_until_ok(&through, &create).await;
            let describe = DescribeStreamSummaryInput { stream_name: Some(name.clone()), stream_arn: None };
            let here = through.call(&describe).await.map(|_| ());
            signal(libc::SIGCONT);
            // A read of the catalog, or a write to the new stream's shard.
            let there = if number % 2 == 0 {
                other.call(&describe).await.map(|_| ())
            } else {
                let put = PutRecordInput {
                    stream_name: Some(name.clone()),
                    data: Bytes::from_static(b"first"),
                    partition_key: Some("key".into()),
                    ..Default::default()
                };
                other.call(&put).await.map(|_| ())
            };
            for (which, answer) in [("that created it", here), ("stopped during the creation", there)] {
                if let Err(error) = answer {
                    panic!(
                        "stream {name}, created through a follower, not found through the follower {which}: {error}"
                    );
                }
            }
        }
        // Reads are linearizable: a change answered through one follower is seen by a read
        // through the other that starts after it, though that read meets a catalog copy
        // without the change (sent while the other follower is stopped, it is in its socket
        // when the follower continues).
        for round in 0..STREAMS {
            let stream_name = Some("found-at-once-0".to_string());
            let key = format!("round-{round}");
            signal(libc::SIGSTOP);
            let add = AddTagsToStreamInput {
                stream_name: stream_name.clone(),
                tags: tags(&[(&key, "set")]),
                stream_arn: None,
            };
            call_until_ok(&through, &add).await;
            let list = ListTagsForStreamInput { stream_name, ..Default::default() };
            let continued = async {
                glommio::timer::sleep(Duration::from_millis(100)).await;
                signal(libc::SIGCONT);
            };
            let (listed, ()) = futures_lite::future::zip(other.call(&list), continued).await;
            let listed = listed.unwrap_or_else(|error| panic!("ListTagsForStream after round {round}: {error}"));
            assert!(
                listed.tags.iter().any(|tag| tag.key == key),
                "the tag {key}, added through one follower, is missing from a read through the other that \
                 began after it was answered: {:?}",
                listed.tags
            );
        }
        // A consumer registered through one follower, subscribed through the other.
        let describe = DescribeStreamSummaryInput { stream_name: Some("found-at-once-0".into()), stream_arn: None };
        let stream_arn = through.call(&describe).await.unwrap().stream_description_summary.stream_arn;
        signal(libc::SIGSTOP);
        let register = RegisterStreamConsumerInput { stream_arn, consumer_name: "at-once".into(), tags: None };
        let consumer = call_until_ok(&through, &register).await.consumer;
        signal(libc::SIGCONT);
        let subscribe = SubscribeToShardInput {
            consumer_arn: consumer.consumer_arn,
            shard_id: "shardId-000000000000".into(),
            starting_position: StartingPosition {
                r#type: ShardIteratorType::TrimHorizon,
                sequence_number: None,
                timestamp: None,
            },
        };
        if let Err(error) = other.subscribe_to_shard(&subscribe).await {
            panic!("a consumer registered through a follower, subscribed through the other one: {error}");
        }
    });
}

/// The member that leads the catalog, found by sending each a catalog change marked as
/// forwarded (removing a tag the stream does not have: it changes nothing): the leader
/// applies it, the others refuse it. Retries while an election is under way.
fn catalog_leader(daemons: &[Daemon], stream: &str) -> usize {
    let probe = sluice_model::Request::RemoveTagsFromStream(RemoveTagsFromStreamInput {
        stream_name: Some(stream.into()),
        tag_keys: vec!["probe".into()],
        stream_arn: None,
    });
    let start = Instant::now();
    loop {
        let mut applied = Vec::new();
        for (node, daemon) in daemons.iter().enumerate() {
            match call_as_forwarded(daemon.addr, &probe) {
                Ok(_) => applied.push(node),
                Err(error) => assert!(
                    error.message.contains("does not lead") || error.message.contains("no leader"),
                    "a forwarded catalog change at a follower must be refused, not forwarded: {error:?}"
                ),
            }
        }
        assert!(applied.len() <= 1, "two nodes led the catalog at once: {applied:?}");
        if let [leader] = applied[..] {
            return leader;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the catalog got no leader");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Through a follower of the catalog only: a stream is tagged, its retention raised, a
/// consumer registered and tagged; every node then shows the same tags, retention and
/// consumer (its ARN and registration time are the proposer's). The catalog's leader is
/// SIGKILLed: the follower's next changes go through the new leader, and the killed node,
/// restarted, shows every change too.
///
/// Run on the forwarding test's three members once that test is done with them (three more
/// daemons beside the kill test cost CI several seconds on two cores).
fn catalog_changes_through_a_follower_reach_every_node_and_survive_the_leaders_death(daemons: &mut [Daemon]) {
    const CATALOG_STREAM: &str = "catalog";
    let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
    let first = endpoints[0].clone();
    run(move || async move {
        let client = Client::connect(&first).await.unwrap();
        let create =
            CreateStreamInput { stream_name: CATALOG_STREAM.into(), shard_count: Some(1), ..Default::default() };
        call_until_ok(&client, &create).await;
    });
    let leader = catalog_leader(daemons, CATALOG_STREAM);
    let follower = (leader + 1) % NODES;
    eprintln!("catalog leader: node {}; changes go through node {}", leader + 1, follower + 1);

    let through = endpoints[follower].clone();
    let (consumer, stream_arn) = run(move || async move {
        let client = Client::connect(&through).await.unwrap();
        let name = Some(CATALOG_STREAM.to_string());
        let add = AddTagsToStreamInput {
            stream_name: name.clone(),
            tags: tags(&[("team", "data"), ("tier", "gold")]),
            stream_arn: None,
        };
        call_until_ok(&client, &add).await;
        let remove =
            RemoveTagsFromStreamInput { stream_name: name.clone(), tag_keys: vec!["tier".into()], stream_arn: None };
        call_until_ok(&client, &remove).await;
        let retention = IncreaseStreamRetentionPeriodInput {
            stream_name: name.clone(),
            retention_period_hours: 48,
            stream_arn: None,
        };
        call_until_ok(&client, &retention).await;
        let summary = DescribeStreamSummaryInput { stream_name: name, stream_arn: None };
        let stream_arn = call_until_ok(&client, &summary).await.stream_description_summary.stream_arn;
        let register =
            RegisterStreamConsumerInput { stream_arn: stream_arn.clone(), consumer_name: "reader".into(), tags: None };
        let consumer = client.call(&register).await.expect("RegisterStreamConsumer through a follower").consumer;
        let tag = TagResourceInput {
            tags: tags(&[("owner", "raft4")]),
            resource_arn: ResourceArn::from(consumer.consumer_arn.as_str()),
        };
        call_until_ok(&client, &tag).await;
        (consumer, stream_arn)
    });
    // The settings and the resource policy through the same follower, over HTTP: it forwards
    // them to the leader on the native protocol, as it does the changes above.
    let follower_http = daemons[follower].http_addr;
    let (settings_arn, policy) = (stream_arn.clone(), stream_policy(&stream_arn));
    run(move || async move {
        let http = HttpClient::connect(&follower_http.to_string(), Encoding::Json).await.unwrap();
        let resize = UpdateMaxRecordSizeInput { stream_arn: Some(settings_arn.clone()), max_record_size_in_kib: 2048 };
        http.call(&resize).await.expect("UpdateMaxRecordSize through a follower");
        let put =
            PutResourcePolicyInput { resource_arn: ResourceArn::from(settings_arn.as_str()), policy, stream_id: None };
        http.call(&put).await.expect("PutResourcePolicy through a follower");
    });
    warm_throughput_scales_an_on_demand_stream_on_every_node(&endpoints, follower_http);
    let consumer_arn = consumer.consumer_arn.clone();
    let mut expected = CatalogView {
        retention_period_hours: 48,
        max_record_size_in_kib: Some(2048),
        stream_policy: stream_policy(&stream_arn),
        consumer_count: Some(1),
        stream_tags: tag_list(&[("team", "data")]),
        consumer: Some(ConsumerDescription {
            consumer_name: consumer.consumer_name.clone(),
            consumer_arn: consumer.consumer_arn.clone(),
            consumer_status: consumer.consumer_status.clone(),
            consumer_creation_timestamp: consumer.consumer_creation_timestamp,
            stream_arn: stream_arn.clone(),
        }),
        consumer_tags: tag_list(&[("owner", "raft4")]),
    };
    expect_everywhere(endpoints.clone(), CATALOG_STREAM, &consumer_arn, &expected);

    // The catalog's leader dies; the follower's next changes reach the new leader.
    daemons[leader].kill();
    let killed_at = Instant::now();
    let through = endpoints[follower].clone();
    let policy_arn = stream_arn.clone();
    run(move || async move {
        let client = Client::connect(&through).await.unwrap();
        let add = AddTagsToStreamInput {
            stream_name: Some(CATALOG_STREAM.into()),
            tags: tags(&[("after", "failover")]),
            stream_arn: None,
        };
        call_until_ok(&client, &add).await;
        let decrease = DecreaseStreamRetentionPeriodInput {
            stream_name: Some(CATALOG_STREAM.into()),
            retention_period_hours: 36,
            stream_arn: None,
        };
        call_until_ok(&client, &decrease).await;
        let delete =
            DeleteResourcePolicyInput { resource_arn: ResourceArn::from(policy_arn.as_str()), stream_id: None };
        call_until_ok(&client, &delete).await;
    });
    eprintln!("catalog leader killed: the next changes went through after {:?}", killed_at.elapsed());
    expected.retention_period_hours = 36;
    expected.stream_policy = "{}".into();
    expected.stream_tags = tag_list(&[("after", "failover"), ("team", "data")]);
    let survivors: Vec<String> =
        (0..NODES).filter(|&node| node != leader).map(|node| endpoints[node].clone()).collect();
    expect_everywhere(survivors, CATALOG_STREAM, &consumer_arn, &expected);

    // The killed node comes back with every change, its own applied ones and those it missed.
    restart_member(&mut daemons[leader]);
    let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
    expect_everywhere(endpoints, CATALOG_STREAM, &consumer_arn, &expected);
}

// ---------------------------------------------------------------------------------------------
// Resharding as metadata commands, each parent ended by a seal entry in its own group.

const RESHARDED: &str = "resharded";

/// What one node serves of a stream: its shards as ListShards gives them, and each shard's
/// records from the trim horizon, with whether the read reached the shard's end (a closed
/// shard read to its ending sequence number has no next iterator).
#[derive(Debug, Clone, PartialEq)]
struct StreamView {
    shards: Vec<Shard>,
    records: Vec<(Vec<Record>, bool)>,
}

/// `stream` as the node at `endpoint` serves it; `None` while it cannot answer.
async fn stream_view(endpoint: &str, stream: &str) -> Option<StreamView> {
    let client = within(Duration::from_secs(5), Client::connect(endpoint)).await?.ok()?;
    let list = ListShardsInput { stream_name: Some(stream.into()), ..Default::default() };
    let shards = client.call(&list).await.ok()?.shards;
    let mut records = Vec::new();
    for shard in &shards {
        let request = GetShardIteratorInput {
            stream_name: Some(stream.into()),
            stream_arn: None,
            shard_id: shard.shard_id.clone(),
            shard_iterator_type: ShardIteratorType::TrimHorizon,
            starting_sequence_number: None,
            timestamp: None,
        };
        let mut iterator = client.call(&request).await.ok()?.shard_iterator?;
        let mut read = Vec::new();
        let ended = loop {
            let page =
                client.call(&GetRecordsInput { shard_iterator: iterator.clone(), ..Default::default() }).await.ok()?;
            let empty = page.records.is_empty();
            read.extend(page.records);
            match page.next_shard_iterator {
                None => break true,
                Some(_) if empty => break false,
                Some(next) => iterator = next,
            }
        };
        records.push((read, ended));
    }
    Some(StreamView { shards, records })
}

/// The checker for a resharded stream on one node: every closed shard read to its end, its
/// last record the one its ending sequence number names, sequence numbers increasing in
/// each shard, and every acknowledged record stored exactly once in the stream, byte-exact.
fn check_resharded(node: usize, view: &StreamView, acked: &BTreeMap<u128, Bytes>) -> Result<(), String> {
    let mut all = Vec::new();
    for (shard, (records, ended)) in view.shards.iter().zip(&view.records) {
        let sequences: Vec<u128> = records.iter().map(|r| r.sequence_number.as_u128().unwrap()).collect();
        if let Some(pair) = sequences.windows(2).find(|pair| pair[0] >= pair[1]) {
            return Err(format!("node {node}: {}: sequence numbers out of order: {pair:?}", shard.shard_id));
        }
        if let Some(end) = &shard.sequence_number_range.ending_sequence_number {
            if !ended {
                return Err(format!("node {node}: closed {} not read to its end yet", shard.shard_id));
            }
            // The ending sequence number is the shard's last record's.
            let end = end.as_u128().unwrap();
            if let Some(&last) = sequences.last() {
                if last != end {
                    return Err(format!("node {node}: {} ends at {end} but its last record is {last}", shard.shard_id));
                }
            }
        }
        all.extend(records.iter().cloned());
    }
    check_node(node, &sorted_by_sequence(all), acked)
}

fn sorted_by_sequence(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by_key(|record| record.sequence_number.as_u128().unwrap());
    records
}

/// Waits (up to 60 s) until `stream` is ACTIVE with `open` open shards on every node at
/// `endpoints`, every node passes [`check_resharded`], and all serve the very same shards
/// (ids, hash ranges, parents, sequence-number ranges with each parent's end) and records.
fn wait_until_every_node_agrees_on_shards(
    endpoints: Vec<String>,
    stream: &str,
    open: usize,
    acked: BTreeMap<u128, Bytes>,
) -> StreamView {
    let stream = stream.to_owned();
    run(move || async move {
        let start = Instant::now();
        loop {
            let mut views = Vec::new();
            let mut active = true;
            for endpoint in &endpoints {
                let client = Client::connect(endpoint).await.ok();
                let summary = DescribeStreamSummaryInput { stream_name: Some(stream.clone()), stream_arn: None };
                let status = match &client {
                    Some(client) => client.call(&summary).await.ok().map(|s| s.stream_description_summary),
                    None => None,
                };
                active &= status.is_some_and(|summary| {
                    summary.stream_status == StreamStatus::Active && summary.open_shard_count as usize == open
                });
                views.push(stream_view(endpoint, &stream).await);
            }
            let verdicts: Result<(), String> = views.iter().enumerate().try_for_each(|(node, view)| match view {
                Some(view) => check_resharded(node + 1, view, &acked),
                None => Err(format!("node {} did not answer", node + 1)),
            });
            let same = views.windows(2).all(|pair| pair[0] == pair[1]);
            if active && verdicts.is_ok() && same {
                return views.swap_remove(0).expect("checked");
            }
            if start.elapsed() > Duration::from_secs(60) {
                let shards: Vec<_> = views.iter().map(|view| view.as_ref().map(|view| view.shards.clone())).collect();
                panic!("after 60 s the nodes still differ: active {active}, {verdicts:?}, same: {same}; {shards:#?}");
            }
            glommio::timer::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// Resharding on a replicated cluster, with a writer putting records all along (through
/// whichever node answers: a follower forwards to the shards' leaders): SplitShard and
/// MergeShards through a follower of the catalog, then UpdateShardCount through it with the
/// catalog's leader SIGKILLed as soon as it answered, while its scaling goes on. The new
/// leader finishes the scaling (from the catalog's closing shards and target). Every node then
/// serves the same shards with the same ends and the same records, every acknowledged record
/// exactly once, and no record past a parent's end: a parent fenced where each node happened
/// to be instead of at its seal entry would end at different sequence numbers (or hold
/// records past its end) on some node.
fn reshards_through_a_follower_under_writes_end_alike_on_every_node_and_survive_the_leaders_death(
    daemons: &mut [Daemon],
) {
    let started = Instant::now();
    let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
    let shared = Arc::new(Shared::new(endpoints.clone()));
    create_everywhere(&shared, RESHARDED);
    let writer_shared = shared.clone();
    let writer =
        std::thread::spawn(move || run(move || async move { write(&writer_shared, RESHARDED, "reshard", 13).await }));
    shared.wait_for_ack_after(Instant::now(), None);

    let leader = catalog_leader(daemons, RESHARDED);
    let follower = (leader + 1) % NODES;
    eprintln!("reshards: catalog leader node {}; requests go through node {}", leader + 1, follower + 1);
    let through = endpoints[follower].clone();
    let writes = shared.clone();
    run(move || async move {
        let client = Client::connect(&through).await.unwrap();
        let split = SplitShardInput {
            stream_name: Some(RESHARDED.into()),
            shard_to_split: "shardId-000000000000".into(),
            new_starting_hash_key: HashKey::from(1u128 << 127),
            stream_arn: None,
        };
        call_until_ok(&client, &split).await;
        // Records go to the children for a while before they merge.
        writes.wait_for_ack_after(Instant::now(), None);
        let merge = MergeShardsInput {
            stream_name: Some(RESHARDED.into()),
            shard_to_merge: "shardId-000000000001".into(),
            adjacent_shard_to_merge: "shardId-000000000002".into(),
            stream_arn: None,
        };
        call_until_ok(&client, &merge).await;
        writes.wait_for_ack_after(Instant::now(), None);
    });
    // 1 → 2 open shards by UpdateShardCount: its split runs on the leader after it answered.
    let through = endpoints[follower].clone();
    run(move || async move {
        let client = Client::connect(&through).await.unwrap();
        let scale = UpdateShardCountInput {
            stream_name: Some(RESHARDED.into()),
            target_shard_count: 2,
            scaling_type: ScalingType::UniformScaling,
            stream_arn: None,
        };
        call_until_ok(&client, &scale).await;
    });
    daemons[leader].kill();
    shared.endpoints.lock().unwrap()[leader] = None;
    let killed_at = Instant::now();
    let survivors: Vec<String> =
        (0..NODES).filter(|&node| node != leader).map(|node| endpoints[node].clone()).collect();
    let scaled_at = run({
        let survivor = survivors[0].clone();
        move || async move {
            let client = Client::connect(&survivor).await.unwrap();
            let summary = DescribeStreamSummaryInput { stream_name: Some(RESHARDED.into()), stream_arn: None };
            let interrupted = client.call(&summary).await.unwrap().stream_description_summary.stream_status;
            let start = Instant::now();
            loop {
                let now = client.call(&summary).await.unwrap().stream_description_summary;
                if now.stream_status == StreamStatus::Active && now.open_shard_count == 2 {
                    return (interrupted, start.elapsed());
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "the new leader never finished the scaling: {now:?}"
                );
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    eprintln!(
        "catalog leader killed right after UpdateShardCount answered (the stream was {:?} on a survivor then): \
         the scaling finished {:?} after the kill",
        scaled_at.0,
        killed_at.elapsed()
    );
    shared.wait_for_ack_after(Instant::now(), None);
    restart_member(&mut daemons[leader]);
    shared.endpoints.lock().unwrap()[leader] = Some(endpoints[leader].clone());
    shared.wait_for_ack_after(Instant::now(), None);
    shared.stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();

    let acked = std::mem::take(&mut *shared.acked.lock().unwrap());
    let acknowledged = acked.len();
    let view = wait_until_every_node_agrees_on_shards(endpoints, RESHARDED, 2, acked);
    // Shard 0 split into 1 and 2, merged into 3, which UpdateShardCount split into 4 and 5.
    let ids: Vec<&str> = view.shards.iter().map(|shard| shard.shard_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002",
            "shardId-000000000003",
            "shardId-000000000004",
            "shardId-000000000005"
        ]
    );
    let per_shard: Vec<usize> = view.records.iter().map(|(records, _)| records.len()).collect();
    eprintln!(
        "reshards: {acknowledged} records acknowledged, per shard on every node {per_shard:?}; {:?} in all",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// SubscribeToShard on a replicated node.

const SUBSCRIBED: &str = "subscribed";

/// A consumer registered through one member subscribes (native protocol) at a follower of the
/// shard, which pushes each record as it applies it, while a writer puts records through the
/// third member. The shard's leader is SIGKILLed: the subscription goes on, fed by the new
/// leader's entries. Then the subscriber's own node is SIGKILLed: the consumer subscribes
/// again at another member after the last sequence number it received, as AWS consumers do
/// when a subscription ends. Every acknowledged record must arrive exactly once, in order,
/// byte-exact, and what arrived must be the shard as every node stores it (probes included).
fn subscriptions_deliver_every_record_through_a_leader_kill_and_resume_on_another_node(daemons: &mut [Daemon]) {
    let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
    let setup_endpoints = endpoints.clone();
    let consumer_arn = run(move || async move {
        let first = Client::connect(&setup_endpoints[0]).await.unwrap();
        call_until_ok(
            &first,
            &CreateStreamInput { stream_name: SUBSCRIBED.into(), shard_count: Some(1), ..Default::default() },
        )
        .await;
        let describe = DescribeStreamSummaryInput { stream_name: Some(SUBSCRIBED.into()), stream_arn: None };
        let mut stream_arn = None;
        for endpoint in &setup_endpoints {
            let client = Client::connect(endpoint).await.unwrap();
            let waiting = Instant::now();
            loop {
                let summary = call_until_ok(&client, &describe).await.stream_description_summary;
                if summary.stream_status == StreamStatus::Active {
                    stream_arn = Some(summary.stream_arn);
                    break;
                }
                assert!(waiting.elapsed() < Duration::from_secs(30), "{SUBSCRIBED} never became ACTIVE at {endpoint}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
        let register = RegisterStreamConsumerInput {
            stream_arn: stream_arn.unwrap(),
            consumer_name: "fan-out".into(),
            tags: None,
        };
        let second = Client::connect(&setup_endpoints[1]).await.unwrap();
        let consumer_arn = call_until_ok(&second, &register).await.consumer.consumer_arn;
        for endpoint in &setup_endpoints {
            let client = Client::connect(endpoint).await.unwrap();
            let waiting = Instant::now();
            let describe =
                DescribeStreamConsumerInput { consumer_arn: Some(consumer_arn.clone()), ..Default::default() };
            while call_until_ok(&client, &describe).await.consumer_description.consumer_status != ConsumerStatus::Active
            {
                assert!(waiting.elapsed() < Duration::from_secs(30), "the consumer never became ACTIVE at {endpoint}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
        consumer_arn
    });
    let mut probe = 0;
    let leader = shard_leader(daemons, SUBSCRIBED, &mut probe);
    let subscriber_node = (leader + 1) % NODES;
    let writer_node = (leader + 2) % NODES;
    eprintln!(
        "subscription: leader node {}, subscribed at node {}, writes through node {}",
        leader + 1,
        subscriber_node + 1,
        writer_node + 1
    );

    // The writer: one PutRecord at a time through its node, reconnecting and retrying.
    let shared = Arc::new(Shared::default());
    let writer_shared = shared.clone();
    let writer_endpoint = endpoints[writer_node].clone();
    let writer = std::thread::spawn(move || {
        run(move || async move {
            let mut client: Option<Client> = None;
            for call in 0u64.. {
                if writer_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if client.as_ref().is_none_or(|client| client.connection_error().is_some()) {
                    client = Client::connect(&writer_endpoint).await.ok();
                }
                let data = Bytes::from(format!("subscribed/{call}"));
                let put = PutRecordInput {
                    stream_name: Some(SUBSCRIBED.into()),
                    data: data.clone(),
                    partition_key: Some(format!("key-{}", call % 16)),
                    ..Default::default()
                };
                match client.as_ref() {
                    Some(client) => match client.call(&put).await {
                        Ok(output) => {
                            let sequence = output.sequence_number.as_u128().unwrap();
                            writer_shared.acked.lock().unwrap().insert(sequence, data);
                        }
                        Err(_) => glommio::timer::sleep(Duration::from_millis(20)).await,
                    },
                    None => glommio::timer::sleep(Duration::from_millis(20)).await,
                }
            }
        })
    });

    // The consumer: subscribed at `subscribe_at`'s node; when its subscription fails or ends,
    // it subscribes again there after the last record it received.
    let received: Arc<std::sync::Mutex<Vec<Record>>> = Arc::default();
    let subscribe_at = Arc::new(std::sync::atomic::AtomicUsize::new(subscriber_node));
    let consumer_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (consumer_stopped, consumer_received, consumer_at, consumer_endpoints) =
        (consumer_stop.clone(), received.clone(), subscribe_at.clone(), endpoints.clone());
    let latest_arn = consumer_arn.clone();
    let consumer = std::thread::spawn(move || {
        run(move || async move {
            let mut subscriptions = 0u32;
            while !consumer_stopped.load(Ordering::SeqCst) {
                let endpoint = &consumer_endpoints[consumer_at.load(Ordering::SeqCst)];
                let last = consumer_received.lock().unwrap().last().map(|record| record.sequence_number.clone());
                let starting_position = match last {
                    Some(sequence) => StartingPosition {
                        r#type: ShardIteratorType::AfterSequenceNumber,
                        sequence_number: Some(sequence),
                        timestamp: None,
                    },
                    None => StartingPosition {
                        r#type: ShardIteratorType::TrimHorizon,
                        sequence_number: None,
                        timestamp: None,
                    },
                };
                let input = SubscribeToShardInput {
                    consumer_arn: consumer_arn.clone(),
                    shard_id: "shardId-000000000000".into(),
                    starting_position,
                };
                let subscribed = match within(Duration::from_secs(5), Client::connect(endpoint)).await {
                    Some(Ok(client)) => client.subscribe_to_shard(&input).await.ok(),
                    _ => None,
                };
                let Some(mut subscription) = subscribed else {
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                subscriptions += 1;
                // A node killed under the subscription closes its connection: the events end.
                while !consumer_stopped.load(Ordering::SeqCst) {
                    match within(Duration::from_millis(500), subscription.next()).await {
                        Some(Some(Ok(event))) => consumer_received.lock().unwrap().extend(event.records),
                        Some(_) => break,
                        None => {}
                    }
                }
            }
            eprintln!("subscription: {subscriptions} subscriptions made");
        })
    });

    let received_count = || received.lock().unwrap().len();
    let received_beyond = |count: usize| {
        let start = Instant::now();
        while received_count() < count {
            assert!(start.elapsed() < Duration::from_secs(60), "the subscription delivered nothing new for 60 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    received_beyond(20);
    let killed_at = Instant::now();
    daemons[leader].kill();
    received_beyond(received_count() + 20);
    eprintln!("subscription: records kept arriving after the leader's SIGKILL ({:?})", killed_at.elapsed());
    restart_member(&mut daemons[leader]);
    subscribe_at.store(writer_node, Ordering::SeqCst);
    let killed_at = Instant::now();
    daemons[subscriber_node].kill();
    received_beyond(received_count() + 20);
    eprintln!("subscription: resumed at node {} after its node's SIGKILL ({:?})", writer_node + 1, killed_at.elapsed());
    restart_member(&mut daemons[subscriber_node]);

    // Writes stop; the subscription must then deliver up to the shard's last record.
    shared.stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let acked = std::mem::take(&mut *shared.acked.lock().unwrap());
    wait_until_every_node_agrees(endpoints.clone(), SUBSCRIBED, acked.clone());
    let stored = run({
        let endpoint = endpoints[writer_node].clone();
        move || async move { read_stream_shard(&endpoint, SUBSCRIBED).await.expect("read the shard") }
    });
    received_beyond(stored.len());
    consumer_stop.store(true, Ordering::SeqCst);
    consumer.join().unwrap();
    let received = std::mem::take(&mut *received.lock().unwrap());
    check_node(writer_node + 1, &received, &acked)
        .unwrap_or_else(|error| panic!("what the subscription received: {error}"));
    assert!(
        received == stored,
        "the subscription received {} records, the shard holds {}: they differ",
        received.len(),
        stored.len()
    );
    eprintln!(
        "subscription: {} records received exactly once, in order ({} acknowledged)",
        received.len(),
        acked.len()
    );
    // LATEST: a subscription at a member once the writes stopped starts past every record
    // acknowledged before it (the member first applies its group's commit: a read index), and
    // delivers the record put after it, first.
    let (at, through, arn) = (endpoints[subscriber_node].clone(), endpoints[writer_node].clone(), latest_arn);
    let delivered = run(move || async move {
        let client = Client::connect(&at).await.unwrap();
        let latest = StartingPosition { r#type: ShardIteratorType::Latest, sequence_number: None, timestamp: None };
        let input = SubscribeToShardInput {
            consumer_arn: arn,
            shard_id: "shardId-000000000000".into(),
            starting_position: latest,
        };
        let asking = Instant::now();
        let mut subscription = loop {
            match client.subscribe_to_shard(&input).await {
                Ok(subscription) => break subscription,
                Err(error) => assert!(asking.elapsed() < Duration::from_secs(30), "LATEST subscription: {error}"),
            }
            glommio::timer::sleep(Duration::from_millis(100)).await;
        };
        let probe = Bytes::from_static(b"after LATEST");
        let put = PutRecordInput {
            stream_name: Some(SUBSCRIBED.into()),
            data: probe.clone(),
            partition_key: Some("latest".into()),
            ..Default::default()
        };
        call_until_ok(&Client::connect(&through).await.unwrap(), &put).await;
        let mut delivered: Vec<Record> = Vec::new();
        while !delivered.iter().any(|record| record.data == probe) {
            match within(Duration::from_secs(30), subscription.next()).await {
                Some(Some(Ok(event))) => delivered.extend(event.records),
                _ => panic!("the LATEST subscription ended before the record put after it"),
            }
        }
        delivered
    });
    assert_eq!(delivered.len(), 1, "a LATEST subscription delivered records put before it: {delivered:?}");
}

// ---------------------------------------------------------------------------------------------
// Leader balancing.

/// How many shard groups each member leads, from its `sluice_raft_groups_led`.
fn groups_led(daemons: &[Daemon]) -> Vec<usize> {
    daemons.iter().map(|daemon| common::scrape(daemon.metrics_addr, "sluice_raft_groups_led") as usize).collect()
}

/// After the tests above the members host a dozen shard groups. A member is SIGKILLed and
/// restarted: the survivors took over every group it led, and it leads none. Leader balancing
/// must then hand it its share: every member within one group of the others, the restarted
/// one included. Without balancing it led nothing until the next failure.
fn leaders_even_out_over_the_members_after_a_restart(daemons: &mut [Daemon]) {
    let restarted = 0;
    daemons[restarted].kill();
    // The survivors elect leaders for the groups the dead member led.
    std::thread::sleep(Duration::from_secs(2));
    restart_member(&mut daemons[restarted]);
    let start = Instant::now();
    loop {
        let led = groups_led(daemons);
        let (most, fewest) = (led.iter().max().unwrap(), led.iter().min().unwrap());
        if most - fewest <= 1 && led[restarted] > 0 {
            eprintln!("leader balancing: {led:?} groups led, {:?} after the restart", start.elapsed());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "60 s after node {} restarted the members still lead {led:?} groups",
            restarted + 1
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------------
// Partitions: each node in a network namespace of its own (`replication/netns.rs`). A writer
// in the test's namespace puts records continuously to whichever node leads the shard, while
// the test cuts one node off and heals it again and again: the shard's leader (a new one must
// be elected by the two left, and the old one must acknowledge nothing it cannot commit) and a
// follower (the majority writes on without it; it catches up once healed). A second writer,
// inside the cut-off node's namespace, keeps writing to that node while it is alone: whatever
// it gets acknowledged must be on every node afterwards. Needs root (network namespaces).
// `SLUICE_CLUSTER_PARTITION_SECONDS` (default 20; CI sets 8) is how long partitions go on; at
// least one of each kind happens. Then every node loses 10 % of the packets that reach it, for
// `SLUICE_CLUSTER_LOSS_SECONDS` (default 10; CI sets 5): writes must go on being acknowledged.
// So they must with `SLUICE_CLUSTER_DELAY_MS` (default 20) of delay on every packet from one
// node to another, for as long, after which the leader is cut off once more; with one link
// cut, both ways then each one way; and with the leader cut off one way (deaf, then mute).
// Needs nftables' `nft` and iptables too (`replication/netns.rs`, `replication/delay.rs`).

const PARTITIONED: &str = "partitioned";
/// The share of packets each node drops in the partition test's loss phase, percent.
const LOSS_PERCENT: u32 = 10;
/// The port each node listens on for its peers (alone in its namespace, so fixed).
const PEER_PORT: u16 = 7400;

/// Runs `work` on a glommio executor whose thread is in network namespace `namespace`: a
/// thread enters it with setns(2), and the executor's thread, created from it, inherits it.
fn run_in_namespace<F, Fut>(namespace: String, work: F) -> std::thread::JoinHandle<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    std::thread::spawn(move || {
        replication::netns::enter(&namespace);
        run(work);
    })
}

/// A LATEST iterator of [`PARTITIONED`]'s first shard from `endpoint`, or why not.
async fn latest_iterator(endpoint: &str) -> Result<String, String> {
    let client = Client::connect(endpoint).await.map_err(|error| error.to_string())?;
    let request = GetShardIteratorInput {
        stream_name: Some(PARTITIONED.into()),
        stream_arn: None,
        shard_id: "shardId-000000000000".into(),
        shard_iterator_type: ShardIteratorType::Latest,
        starting_sequence_number: None,
        timestamp: None,
    };
    let output = client.call(&request).await.map_err(|error| error.to_string())?;
    output.shard_iterator.ok_or_else(|| "no iterator".to_owned())
}

/// How long a TCP connection from node `from`'s namespace to `target` took to open, if it did
/// within 500 ms.
fn connect_time(network: &Network, from: usize, target: std::net::SocketAddr) -> Option<Duration> {
    let (slot, took) = (Arc::new(std::sync::Mutex::new(None)), Instant::now());
    let answer = slot.clone();
    run_in_namespace(network.namespace(from + 1), move || async move {
        let connected = std::net::TcpStream::connect_timeout(&target, Duration::from_millis(500)).is_ok();
        *answer.lock().unwrap() = connected.then(|| took.elapsed());
    })
    .join()
    .unwrap();
    let took = slot.lock().unwrap().take();
    took
}

/// Leader changes every node counted, summed.
fn leader_changes(daemons: &[Daemon]) -> f64 {
    daemons.iter().map(|daemon| common::scrape(daemon.metrics_addr, "sluice_raft_leader_changes_total")).sum()
}

/// Entries a member may lack while it keeps up, over every group: those on their way under
/// the partition test's writes.
const LAG_IN_FLIGHT_MAX: f64 = 64.0;

/// Pauses the writes (the writer threads, or the loadgen's process) until no leader counts a
/// member further behind than [`LAG_IN_FLIGHT_MAX`] entries (`sluice_raft_follower_lag_entries`),
/// and says how long that took. A member cut off from its leader falls behind; the next phase
/// must not start while it catches up, or a failover there waits for its catch-up too (the
/// next leader needs it for a quorum): the one-way cut of a leader after a follower's link was
/// cut took 3.3 s instead of 1.2. And under writes at full speed (the loadgen) it may not
/// catch up while they go on: its leader commits with the third node, as fast as ever (one
/// was still 108,876 entries behind 60 s after its link was mended).
fn wait_until_caught_up(daemons: &[Daemon], shared: &Shared, load: Option<&Loadgen>) -> Duration {
    shared.paused.store(true, Ordering::SeqCst);
    if let Some(load) = load {
        load.pause(true);
    }
    let start = Instant::now();
    loop {
        let lag = follower_lags(daemons);
        if lag.iter().sum::<f64>() <= LAG_IN_FLIGHT_MAX {
            let took = start.elapsed();
            if let Some(load) = load {
                load.pause(false);
            }
            shared.paused.store(false, Ordering::SeqCst);
            return took;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "60 s after a partition healed, the leaders count {lag:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn partitions_of_the_leader_or_a_follower_lose_no_acknowledged_record() {
    let partition_seconds: u64 = env_number("SLUICE_CLUSTER_PARTITION_SECONDS", 20);
    let partitions_min: usize = env_number("SLUICE_CLUSTER_PARTITIONS", 2);
    let loss_seconds: u64 = env_number("SLUICE_CLUSTER_LOSS_SECONDS", 10);
    let network = Network::new(NODES);
    let probe_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let disk = DiskProbe::start(probe_dir.path());
    let peers: Vec<String> = (1..=NODES).map(|node| format!("{node}={}:{PEER_PORT}", network.address(node))).collect();
    let peers = peers.join(",");
    let mut daemons: Vec<Daemon> = (1..=NODES)
        .map(|node| {
            let id = node.to_string();
            let args = ["--node-id", id.as_str(), "--peers", peers.as_str()];
            Daemon::start_in_namespace(
                &network.namespace(node),
                network.address(node),
                "unlimited",
                partition_test_cores(),
                &args,
            )
        })
        .collect();
    let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
    let shared = Arc::new(Shared::new(endpoints.clone()));
    let metrics: Vec<std::net::SocketAddr> = daemons.iter().map(|daemon| daemon.metrics_addr).collect();
    shared.report_stalls_of(PARTITIONED, metrics.clone());

    // The load: the writer threads, or with SLUICE_CLUSTER_LOADGEN the loadgen, in the
    // test's namespace (it reaches every node through the bridge).
    let loadgen = replication::loadgen::binary();
    let (writers, load) = match &loadgen {
        None => {
            create_everywhere(&shared, PARTITIONED);
            (start_writers(&shared, PARTITIONED, "main", 7), None)
        }
        Some(binary) => {
            let nodes = (0..NODES).collect();
            (Vec::new(), Some(Loadgen::start(binary, None, shared.clone(), nodes, &endpoints, PARTITIONED, 1, false)))
        }
    };

    let mut leader_failovers = Vec::new();
    let mut follower_stalls = Vec::new();
    let mut minority_acked = 0;
    let started = Instant::now();
    let mut healthy_since = shared.wait_for_ack_after(started, None);
    for cycle in 0.. {
        if started.elapsed() >= Duration::from_secs(partition_seconds) && cycle >= partitions_min.max(2) {
            break;
        }
        shared.wait_for_ack_after(healthy_since, None);
        std::thread::sleep(Duration::from_millis(300));
        let leader = shared.leader.load(Ordering::SeqCst);
        let cut = if cycle % 2 == 0 { leader } else { (leader + 1) % NODES };
        let cut_at = Instant::now();
        network.isolate(cut + 1);
        // The cut-off node's own writer: alone, it must not get an acknowledgement for what
        // it cannot commit (or if it does, the record must survive: the checker sees to it).
        let minority = Arc::new(Shared::new(vec![endpoints[cut].clone()]));
        let minority_writer = match &loadgen {
            None => {
                let minority = minority.clone();
                let label = format!("minority-{cycle}");
                Ok(run_in_namespace(network.namespace(cut + 1), move || async move {
                    write(&minority, PARTITIONED, &label, 11 + cycle as u64).await
                }))
            }
            // A loadgen of its own in the node's namespace, writer 100 + the cycle.
            Some(binary) => Err(Loadgen::start(
                binary,
                Some(&network.namespace(cut + 1)),
                minority.clone(),
                vec![cut],
                &endpoints[cut..=cut],
                PARTITIONED,
                100 + cycle as u64,
                // Its node, cut off, answers no catalog read.
                true,
            )),
        };
        let next = shared.wait_for_ack_after(cut_at, Some(cut));
        if cut == leader {
            leader_failovers.push(next - cut_at);
        } else {
            follower_stalls.push(next - cut_at);
        }
        eprintln!(
            "cut off node {} ({}): next write acknowledged by another after {:?} (slowest fdatasync meanwhile {:?})",
            cut + 1,
            if cut == leader { "the leader" } else { "a follower" },
            next - cut_at,
            disk.slowest_between(cut_at, next),
        );
        // LATEST while cut off: the member cannot learn its shard's commit (its leader, or
        // itself leading, hears from no quorum; nothing is forwarded without `native@`
        // addresses), so it must not answer with its own tip, which the majority has written
        // past. A member of the majority answers.
        let at_cut = endpoints[cut].clone();
        let answer = Arc::new(std::sync::Mutex::new(None));
        let slot = answer.clone();
        run_in_namespace(network.namespace(cut + 1), move || async move {
            *slot.lock().unwrap() = Some(latest_iterator(&at_cut).await);
        })
        .join()
        .unwrap();
        let answer = answer.lock().unwrap().take().unwrap();
        assert!(answer.is_err(), "node {} answered LATEST while cut off: {answer:?}", cut + 1);
        let in_majority = endpoints[(cut + 1) % NODES].clone();
        run(move || async move {
            let asking = Instant::now();
            while let Err(error) = latest_iterator(&in_majority).await {
                assert!(asking.elapsed() < Duration::from_secs(10), "LATEST in the majority: {error}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        });
        // The majority writes on for a while without it.
        std::thread::sleep(Duration::from_millis(700));
        minority.stop.store(true, Ordering::SeqCst);
        match minority_writer {
            Ok(writer) => writer.join().unwrap(),
            Err(load) => {
                load.stop();
            }
        }
        let acked = std::mem::take(&mut *minority.acked.lock().unwrap());
        minority_acked += acked.len();
        shared.acked.lock().unwrap().extend(acked);
        network.heal(cut + 1);
        shared.network_changes.fetch_add(1, Ordering::SeqCst);
        healthy_since = Instant::now();
    }
    // Packet loss: every node drops LOSS_PERCENT % of what reaches it, at random, while the
    // writers go on. Writes must still be acknowledged (TCP retransmits; Raft resends what a
    // follower lacks and elects again when heartbeats go missing), and nothing acknowledged
    // may be lost (the checker below).
    shared.wait_for_ack_after(healthy_since, None);
    let changes_before_loss = leader_changes(&daemons);
    let lossy_since = Instant::now();
    for node in 1..=NODES {
        network.lose(node, LOSS_PERCENT);
    }
    std::thread::sleep(Duration::from_secs(loss_seconds));
    let acked_under_loss = shared.acks_after(lossy_since);
    for node in 1..=NODES {
        network.stop_losing(node);
    }
    shared.network_changes.fetch_add(1, Ordering::SeqCst);
    let changes_under_loss = leader_changes(&daemons) - changes_before_loss;
    assert!(acked_under_loss > 0, "no write was acknowledged in {loss_seconds} s of {LOSS_PERCENT} % packet loss");
    // The same time healed, for comparison.
    healthy_since = Instant::now();
    std::thread::sleep(Duration::from_secs(loss_seconds));
    let acked_healed = shared.acks_after(healthy_since);
    eprintln!(
        "{LOSS_PERCENT} % packet loss on every node for {loss_seconds} s: {acked_under_loss} calls acknowledged \
         ({changes_under_loss} leader changes); the next {loss_seconds} s healed: {acked_healed}"
    );
    // Delay: every node holds what it receives from the others for `SLUICE_CLUSTER_DELAY_MS`,
    // so a round trip between two members takes twice that, as between distant sites. Writes
    // go on (each now waits for a round trip between the leader and a follower), then the
    // leader is cut off under the delay: the two left elect another over the slow links.
    // Nothing acknowledged may be lost (the checker below).
    shared.wait_for_ack_after(healthy_since, None);
    let one_way = Duration::from_millis(env_number("SLUICE_CLUSTER_DELAY_MS", 20));
    let changes_before_delay = leader_changes(&daemons);
    let delays: Vec<Delay> = (1..=NODES)
        .map(|node| {
            let others: Vec<_> =
                (1..=NODES).filter(|&other| other != node).map(|other| network.address(other)).collect();
            Delay::start(&network.namespace(node), &others, one_way)
        })
        .collect();
    // The delay is real: a connection between two nodes opens in a round trip, no sooner.
    let opened = connect_time(&network, 0, daemons[1].addr).expect("node 1 reaches node 2 under the delay");
    assert!(opened >= 2 * one_way, "a connection between two nodes opened in {opened:?} under {one_way:?} of delay");
    let delayed_since = Instant::now();
    std::thread::sleep(Duration::from_secs(loss_seconds));
    let acked_delayed = shared.acks_after(delayed_since);
    let changes_delayed = leader_changes(&daemons) - changes_before_delay;
    assert!(acked_delayed > 0, "no write was acknowledged in {loss_seconds} s with {one_way:?} of delay");
    let leader = shared.leader.load(Ordering::SeqCst);
    let cut_at = Instant::now();
    network.isolate(leader + 1);
    let failover_delayed = shared.wait_for_ack_after(cut_at, Some(leader)) - cut_at;
    network.heal(leader + 1);
    drop(delays);
    shared.network_changes.fetch_add(1, Ordering::SeqCst);
    eprintln!(
        "{one_way:?} one-way delay between the nodes for {loss_seconds} s: {acked_delayed} calls acknowledged \
         ({changes_delayed} leader changes); the leader (node {}) cut off under it: next write acknowledged by \
         another after {failover_delayed:?} (with the writer's {:?} wait for the silent old leader)",
        leader + 1,
        replication::CALL_LIMIT
    );
    healthy_since = Instant::now();
    // A partial partition: the link between a leader and one follower alone is cut, each
    // still reaching the third node. The leader hears from a quorum through the third and
    // keeps leading (check-quorum); the follower, hearing from no leader, campaigns, but the
    // third node still hears from the leader and refuses it (pre-vote). Then the same link is
    // cut one way only: first the leader hears nothing from the follower, whose answers are
    // lost while it still gets every append and heartbeat (the leader commits through the
    // third node); then the follower hears nothing from the leader while its answers and votes
    // still arrive (refused by the third, as above). Writes go on, and nothing acknowledged may
    // be lost (the checker below).
    for way in [None, Some(Way::Inbound), Some(Way::Outbound)] {
        shared.wait_for_ack_after(healthy_since, None);
        let leader = shared.leader.load(Ordering::SeqCst);
        let follower = (leader + 1) % NODES;
        let changes_before_cut = leader_changes(&daemons);
        let cut_since = Instant::now();
        let cut = match way {
            None => {
                network.cut(leader + 1, follower + 1);
                // The cut is real: from the leader's namespace the follower is out of reach,
                // the third node is not.
                let third = (leader + 2) % NODES;
                let reaches = |from: usize, to: usize| connect_time(&network, from, daemons[to].addr).is_some();
                assert!(!reaches(leader, follower) && reaches(leader, third), "the link cut is not as meant");
                "both ways (each still reaching the third)"
            }
            Some(way) => {
                network.cut_link_one_way(leader + 1, follower + 1, way);
                match way {
                    Way::Inbound => "one way (the leader hearing nothing from the follower)",
                    Way::Outbound => "one way (the follower hearing nothing from the leader)",
                }
            }
        };
        std::thread::sleep(Duration::from_secs(loss_seconds));
        let acked_cut = shared.acks_after(cut_since);
        let changes_cut = leader_changes(&daemons) - changes_before_cut;
        network.mend(leader + 1);
        shared.network_changes.fetch_add(1, Ordering::SeqCst);
        let caught_up = wait_until_caught_up(&daemons, &shared, load.as_ref());
        eprintln!(
            "the link between node {} (a leader) and node {} cut for {loss_seconds} s, {cut}: {acked_cut} calls \
             acknowledged ({changes_cut} leader changes); every member caught up {caught_up:?} after (writes paused)",
            leader + 1,
            follower + 1
        );
        assert!(acked_cut > 0, "no write was acknowledged in {loss_seconds} s with the link cut {cut}");
        healthy_since = Instant::now();
    }
    // One-way partitions of the leader: first it hears nothing from the other two while they
    // still hear it (its heartbeats arrive, their answers do not: it must step down, and they
    // elect another once its heartbeats stop), then the reverse (they elect another, whose
    // higher term deposes it). Either way the two others write on, and nothing acknowledged
    // may be lost (the checker below).
    for way in [Way::Inbound, Way::Outbound] {
        shared.wait_for_ack_after(healthy_since, None);
        let leader = shared.leader.load(Ordering::SeqCst);
        let cut_at = Instant::now();
        network.cut_one_way(leader + 1, way);
        // A client that waits as long as the leader takes: the deaf leader cannot commit its
        // put, and says so (the outcome is unknown) at the end of its commit wait
        // (`docs/replication.md`, "Leadership transfers fail no write").
        let probe = (way == Way::Inbound).then(|| {
            let endpoint = endpoints[leader].clone();
            std::thread::spawn(move || {
                let answer = Arc::new(std::sync::Mutex::new(None));
                let slot = answer.clone();
                run(move || async move {
                    let put = PutRecordInput {
                        stream_name: Some(PARTITIONED.into()),
                        data: Bytes::from_static(b"to a deaf leader"),
                        partition_key: Some("deaf".into()),
                        ..Default::default()
                    };
                    let started = Instant::now();
                    let client = Client::connect(&endpoint).await.expect("the deaf leader takes connections");
                    let answered = client.call(&put).await.map(|output| output.sequence_number);
                    *slot.lock().unwrap() = Some((started.elapsed(), answered));
                });
                let answered = answer.lock().unwrap().take().expect("answered");
                answered
            })
        });
        let next = shared.wait_for_ack_after(cut_at, Some(leader));
        std::thread::sleep(Duration::from_millis(700));
        let probed = probe.map(|probe| probe.join().unwrap());
        network.mend(leader + 1);
        shared.network_changes.fetch_add(1, Ordering::SeqCst);
        healthy_since = Instant::now();
        eprintln!(
            "the leader (node {}) cut off from the others one way ({way:?}): next write acknowledged by another \
             after {:?} (with the writer's {:?} wait for the silent old leader)",
            leader + 1,
            next - cut_at,
            replication::CALL_LIMIT
        );
        if let Some((took, answered)) = probed {
            eprintln!("a put to the deaf leader, its client waiting as long as it takes: {answered:?} after {took:?}");
            answered.expect_err("a leader that hears no quorum acknowledged a put");
        }
    }
    shared.wait_for_ack_after(healthy_since, None);
    shared.stop.store(true, Ordering::SeqCst);
    writers.into_iter().for_each(|writer| writer.join().unwrap());
    if let Some(load) = load {
        load.stop();
    }
    let acked = std::mem::take(&mut *shared.acked.lock().unwrap());
    let explain = {
        let metrics = metrics.clone();
        Box::new(move || replication::raft_metrics_view(&metrics))
    };
    let (acknowledged, stored) =
        replication::wait_until_every_node_agrees_explained(endpoints, PARTITIONED, acked, explain);
    replication::wait_for_incoming_peer_connections(&metrics, 2 * partition_test_cores());
    leader_failovers.sort();
    follower_stalls.sort();
    let syncs = disk.finish();
    eprintln!(
        "{} partitions of the leader, {} of a follower; {acknowledged} records acknowledged ({minority_acked} by a \
         node while cut off), {stored} stored on each node; leader failover p50 {:?} p99 {:?} max {:?} (with the \
         writer's {:?} wait for the silent old leader); next write after a follower was cut off: p50 {:?} max {:?}; \
         the disk meanwhile: {} fdatasyncs of 4 KiB, p50 {:?} p99 {:?} max {:?}; load: {}",
        leader_failovers.len(),
        follower_stalls.len(),
        percentile(&leader_failovers, 0.5),
        percentile(&leader_failovers, 0.99),
        leader_failovers.last().unwrap(),
        replication::CALL_LIMIT,
        percentile(&follower_stalls, 0.5),
        follower_stalls.last().unwrap(),
        syncs.len(),
        percentile(&syncs, 0.5),
        percentile(&syncs, 0.99),
        syncs.last().unwrap(),
        if loadgen.is_some() { "sluice-loadgen endure" } else { "writer threads" },
    );
    assert!(acknowledged > 0);
    // The nodes left with a majority elected another leader each time the leader was cut off.
    let changes = leader_changes(&daemons);
    assert!(
        leader_failovers.is_empty() || changes >= 1.0,
        "no leader change counted after {} partitions of the leader",
        leader_failovers.len()
    );
    for daemon in &mut daemons {
        daemon.stop();
    }
}

/// A catalog change a client sends to a member that does not lead the catalog is relayed to the
/// leader (over HTTP), which authorizes and audits it as the client: with the client's address,
/// not the relaying member's. Each node here has a namespace and an address of its own, and the
/// test another (`Network::address(0)`); the client's principal may act only from the test's
/// address (`aws:SourceIp`). Relayed without its client, the call would be the relaying
/// member's at the leader: refused there, and audited with that member's address. With
/// `--cluster-secret`, which the leader needs to believe the relaying member's word
/// (`x-sluice-relay-proof`). Needs root, as the partition test does.
#[test]
fn a_relayed_call_is_authorized_and_audited_as_its_client_across_namespaces() {
    let network = Network::new(NODES);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let client_ip = network.address(0);
    let credentials = dir.path().join("credentials.toml");
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "sluice:*", "Resource": "*", "Condition": {{"IpAddress": {{"aws:SourceIp": "{client_ip}/32"}}}}}}]}}"#
    );
    let text = format!(
        "account_id = \"000000000000\"\n\n[[principal]]\nname = \"near\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\npolicies = ['''{policy}''']\n",
        ADMIN.0, ADMIN.1
    );
    std::fs::write(&credentials, text).unwrap();
    let secret = dir.path().join("cluster.secret");
    std::fs::write(&secret, format!("{CLUSTER_SECRET}\n")).unwrap();
    let member = |node: usize| {
        let ip = network.address(node);
        format!(
            "{node}={ip}:{PEER_PORT}/native@{ip}:{}/http@{ip}:{}",
            common::NAMESPACE_NATIVE_PORT,
            common::NAMESPACE_HTTP_PORT
        )
    };
    let peers: Vec<String> = (1..=NODES).map(member).collect();
    let peers = peers.join(",");
    let audit = |node: usize| dir.path().join(format!("audit-{node}"));
    let daemons: Vec<Daemon> = (1..=NODES)
        .map(|node| {
            let id = node.to_string();
            let [credentials, secret, audit] =
                [&credentials, &secret, &audit(node)].map(|path| path.display().to_string());
            let args = [
                "--node-id",
                &id,
                "--peers",
                &peers,
                "--credentials",
                &credentials,
                "--cluster-secret",
                &secret,
                "--audit-dir",
                &audit,
            ];
            Daemon::start_in_namespace(&network.namespace(node), network.address(node), "unlimited", cores(), &args)
        })
        .collect();
    let https: Vec<SocketAddr> = daemons.iter().map(|daemon| daemon.http_addr).collect();
    let audit_logs: Vec<PathBuf> = (1..=NODES).map(|node| audit(node).join("audit.log")).collect();
    let addresses: Vec<String> = (1..=NODES).map(|node| network.address(node).to_string()).collect();
    run(move || async move {
        const TARGET: &str = "SluiceAdmin_20261201.";
        let options = ConnectOptions {
            credentials: Some(sluice_client::auth::SigningCredentials {
                access_key_id: ADMIN.0.into(),
                secret_access_key: sluice_security::Secret::new(ADMIN.1),
                session_token: None,
            }),
            region: "us-east-1".into(),
            tls: None,
        };
        let removals = |log: &Path| -> Vec<String> {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            text.lines().filter(|line| line.contains("RemoveClusterMember")).map(str::to_owned).collect()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "no call was relayed to the catalog's leader and audited there in 60 s");
            glommio::timer::sleep(Duration::from_millis(200)).await;
            for (index, http) in https.iter().enumerate() {
                let Ok(client) = HttpClient::connect_with(&http.to_string(), Encoding::Json, &options).await else {
                    continue;
                };
                let Ok((status, view)) =
                    client.post(&format!("{TARGET}DescribeCluster"), Encoding::Json, b"{}".to_vec()).await
                else {
                    continue;
                };
                if status != 200 {
                    continue;
                }
                let Some(leader) = other_catalog_leader(&serde_json::from_slice(&view).unwrap()) else { continue };
                let log = &audit_logs[leader as usize - 1];
                let before = removals(log).len();
                let body = br#"{"OldNodeId":9}"#.to_vec();
                let (status, answer) =
                    client.post(&format!("{TARGET}RemoveClusterMember"), Encoding::Json, body).await.unwrap();
                let answer = String::from_utf8_lossy(&answer);
                let waited = Instant::now();
                while removals(log).len() == before && waited.elapsed() < Duration::from_secs(5) {
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
                let Some(record) = removals(log).get(before).cloned() else {
                    // The catalog's leadership moved meanwhile: the call went elsewhere. Again.
                    eprintln!(
                        "node {leader} did not audit the call sent through node {}: {status} {answer}",
                        index + 1
                    );
                    continue;
                };
                // Authorized as the client (from its address), then refused by the leader as
                // no member's removal.
                assert!(status == 400 && answer.contains("Node 9 is not a member"), "{status} {answer}");
                let record: serde_json::Value = serde_json::from_str(&record).unwrap();
                let relaying = &addresses[index];
                assert_eq!(record["sourceIPAddress"], client_ip.to_string(), "relayed by {relaying}: {record}");
                return;
            }
        }
    });
    for mut daemon in daemons {
        daemon.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Direct routing: a client that learns the leaders (DescribeStreamRoutes) and writes to them.

const ROUTED_STREAM: &str = "routed";
const ROUTED_SHARDS: usize = 6;

/// Requests the members forwarded to each other, summed over the members given.
fn forwarded(metrics: &[SocketAddr]) -> f64 {
    metrics.iter().map(|&addr| common::scrape(addr, "sluice_forwarded_requests_total")).sum()
}

/// Each shard's leader as every node in `endpoints` tells it, once all of them agree on a
/// leader for every shard and on the members (`None` while they do not).
async fn agreed_leaders(endpoints: &[String]) -> Option<BTreeMap<ShardId, u64>> {
    let mut agreed: Option<BTreeMap<ShardId, u64>> = None;
    for endpoint in endpoints {
        let client = within(Duration::from_secs(5), Client::connect(endpoint)).await?.ok()?;
        let input = DescribeStreamRoutesInput { stream_name: Some(ROUTED_STREAM.into()), stream_arn: None };
        let table = within(Duration::from_secs(5), client.call(&input)).await?.ok()?;
        assert_eq!(table.members.len(), NODES, "every member is in the table: {table:?}");
        assert!(table.members.iter().all(|member| member.native_address.is_some()), "{table:?}");
        let leaders: BTreeMap<ShardId, u64> = table
            .shards
            .iter()
            .map(|shard| Some((shard.shard_id.clone(), shard.leader_node_id?)))
            .collect::<Option<_>>()?;
        if leaders.len() != ROUTED_SHARDS || agreed.as_ref().is_some_and(|agreed| *agreed != leaders) {
            return None;
        }
        agreed = Some(leaders);
    }
    agreed
}

/// Leaders every node agrees on, unchanged over three looks in a row (leader balancing moves
/// groups for a while after a stream is created) and spread over at least two members.
async fn settled_leaders(endpoints: &[String]) -> BTreeMap<ShardId, u64> {
    let start = Instant::now();
    let mut same_in_a_row = 0;
    let mut last = None;
    loop {
        let now = agreed_leaders(endpoints).await;
        same_in_a_row = if now.is_some() && now == last { same_in_a_row + 1 } else { 0 };
        last = now;
        if let Some(leaders) = last.as_ref().filter(|_| same_in_a_row >= 2) {
            let members: std::collections::BTreeSet<u64> = leaders.values().copied().collect();
            if members.len() >= 2 {
                return leaders.clone();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the shards' leaders never settled over two members: {last:?}"
        );
        glommio::timer::sleep(Duration::from_millis(300)).await;
    }
}

/// The KPL producer through a routed transport (`Endpoint::Routed`, seeded with the
/// `survivors`): every record is acknowledged, and while the leaders stay put no member
/// forwards any of them. Its records (not aggregated, so each is one Kinesis record) go into
/// `acked`.
/// The log agent with `kinesis.route: direct`, through one survivor: a plain flow (the stream
/// sink) and an aggregating one (the KPL producer sink) ship their lines to the shards' leaders,
/// so no member forwards (while the leaders stay put); the plain flow's lines are in the stream.
async fn agent_ships_routed(survivors: &[String], metrics: &[SocketAddr]) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lines = ROUTED_SHARDS * 10;
    for (file, prefix) in [("plain.log", "agent"), ("aggregated.log", "agent-kpl")] {
        let text: String = (0..lines).map(|i| format!("{prefix}/{i}\n")).collect();
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    let config = serde_json::json!({
        "kinesis.endpoint": format!("sluice://{}", survivors[0]),
        "kinesis.route": "DIRECT",
        "checkpointFile": dir.path().join("checkpoints"),
        "flows": [
            {"filePattern": dir.path().join("plain.log"), "kinesisStream": ROUTED_STREAM,
             "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000},
            {"filePattern": dir.path().join("aggregated.log"), "kinesisStream": ROUTED_STREAM,
             "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000, "aggregatedRecordSizeBytes": 65536},
        ],
    });
    let config_path = dir.path().join("agent.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let leaders = settled_leaders(survivors).await;
    let forwarded_before = forwarded(metrics);
    let records_before = read_routed_stream(&survivors[0]).await.len();
    let output = std::process::Command::new(common::agent_bin())
        .arg("--config")
        .arg(&config_path)
        .arg("--once")
        .output()
        .expect("run sluice-agent");
    assert!(output.status.success(), "sluice-agent --once: {}", String::from_utf8_lossy(&output.stderr));
    let forwarded_after = forwarded(metrics);
    if agreed_leaders(survivors).await.as_ref() == Some(&leaders) {
        assert_eq!(forwarded_after, forwarded_before, "the agent's writes were forwarded: leaders {leaders:?}");
    }
    // Every line of the plain flow is a record of its own (the plain flow does not go through
    // the KPL producer because the stream also has an aggregating flow), and every line of the
    // aggregating flow is in the stream: in an aggregate, or alone, as the KPL sends a record
    // that had nothing to be aggregated with (a CI run once saw the first line so). The survivor
    // read may follow some shards' leaders: it applies what they committed a moment later, so
    // the read is made again until then.
    let start = Instant::now();
    loop {
        let (mut plain, mut aggregated) = (Vec::new(), Vec::new());
        for data in read_routed_stream(&survivors[0]).await.into_values() {
            match sluice_kpl::aggregation::deaggregate(&data).expect("aggregates are intact") {
                sluice_kpl::aggregation::Deaggregated::Plain(_) => plain.push(data),
                sluice_kpl::aggregation::Deaggregated::Aggregated(subs) => {
                    aggregated.extend(subs.into_iter().map(|sub| sub.data));
                }
            }
        }
        // Each line is sent newline included, as the AWS agent sends it.
        let either: Vec<Bytes> = plain.iter().chain(&aggregated).cloned().collect();
        let missing: Vec<String> = [("agent", &plain), ("agent-kpl", &either)]
            .into_iter()
            .flat_map(|(prefix, records)| {
                (0..lines)
                    .map(move |i| format!("{prefix}/{i}\n"))
                    .filter(|line| !records.iter().any(|data| data.as_ref() == line.as_bytes()))
            })
            .collect();
        if missing.is_empty() {
            assert!(plain.len() + aggregated.len() >= records_before + 2 * lines);
            let aggregated_lines = aggregated.iter().filter(|data| data.starts_with(b"agent-kpl/")).count();
            assert!(aggregated_lines > 0, "the aggregating flow aggregated none of its {lines} lines");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "lines not in the stream ({} plain records, {} aggregated): {missing:?}",
            plain.len(),
            aggregated.len()
        );
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

/// The `sluice` CLI's put-record and put-records with `--route direct`, through one survivor:
/// each record goes to its shard's leader, so no member forwards (while the leaders stay put).
async fn cli_puts_routed(survivors: &[String], metrics: &[SocketAddr], acked: &mut BTreeMap<(ShardId, u128), Bytes>) {
    let leaders = settled_leaders(survivors).await;
    let forwarded_before = forwarded(metrics);
    let sluice = |args: &[&str]| -> serde_json::Value {
        // A leader change after the leaders settled (a handover by leader balancing) may leave
        // a shard without a leader for a moment: the call appended nothing, and is made again.
        for _ in 0..20 {
            let output = std::process::Command::new(common::sluice_bin())
                .args(["--endpoint", &survivors[0]])
                .args(args)
                .args(["--route", "direct"])
                .output()
                .expect("run sluice");
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !output.status.success() && stderr.contains("has no leader right now") {
                std::thread::sleep(Duration::from_millis(250));
                continue;
            }
            assert!(output.status.success(), "sluice {args:?}: {stderr}");
            return serde_json::from_slice(&output.stdout).expect("sluice prints JSON");
        }
        panic!("sluice {args:?}: the shard had no leader for 5 s");
    };
    let mut put = |shard: &serde_json::Value, sequence: &serde_json::Value, data: String| {
        let shard = ShardId::from(shard.as_str().expect("a shard id"));
        let sequence: u128 = sequence.as_str().expect("a sequence number").parse().expect("a decimal number");
        acked.insert((shard, sequence), Bytes::from(data));
    };
    for i in 0..ROUTED_SHARDS * 2 {
        let data = format!("cli/{i}");
        let key = format!("cli-{i}");
        let answer = sluice(&["put-record", "--stream-name", ROUTED_STREAM, "--data", &data, "--partition-key", &key]);
        put(&answer["ShardId"], &answer["SequenceNumber"], data);
    }
    let entries: Vec<serde_json::Value> = (0..ROUTED_SHARDS * 2)
        .map(|i| {
            use base64::Engine;
            let data = base64::engine::general_purpose::STANDARD.encode(format!("cli-batch/{i}"));
            serde_json::json!({"Data": data, "PartitionKey": format!("cli-batch-{i}")})
        })
        .collect();
    let records = serde_json::Value::Array(entries).to_string();
    let answer = sluice(&["put-records", "--stream-name", ROUTED_STREAM, "--records", &records]);
    assert_eq!(answer["FailedRecordCount"], 0, "{answer}");
    for (i, entry) in answer["Records"].as_array().expect("records").iter().enumerate() {
        put(&entry["ShardId"], &entry["SequenceNumber"], format!("cli-batch/{i}"));
    }
    let forwarded_after = forwarded(metrics);
    if agreed_leaders(survivors).await.as_ref() == Some(&leaders) {
        assert_eq!(forwarded_after, forwarded_before, "the CLI's writes were forwarded: leaders {leaders:?}");
    }
}

async fn produce_routed(survivors: &[String], metrics: &[SocketAddr], acked: &mut BTreeMap<(ShardId, u128), Bytes>) {
    use sluice_client::producer::Producer;
    use sluice_kpl::producer::{ProducerConfig, UserRecord};
    let leaders = settled_leaders(survivors).await;
    let forwarded_before = forwarded(metrics);
    let config = ProducerConfig { aggregation_enabled: false, record_ttl_ms: 60_000, ..Default::default() };
    let producer = Producer::start(transport::Endpoint::Routed(survivors.to_vec()), ROUTED_STREAM, config).unwrap();
    let mut pending = Vec::new();
    for i in 0..ROUTED_SHARDS * 20 {
        let data = Bytes::from(format!("producer/{i}"));
        pending.push((data.clone(), producer.put(UserRecord::new(format!("producer-{i}"), data)).await));
    }
    for (data, future) in pending {
        let put = future.await.unwrap_or_else(|error| panic!("the producer did not put {data:?}: {error}"));
        assert_eq!(put.sub_sequence_number, None, "not aggregated");
        let shard = ShardId::from_number(u32::try_from(put.shard_id.0).expect("a shard number sluiced made"));
        acked.insert((shard, put.sequence_number.as_u128().expect("sluiced's own number")), data);
    }
    let forwarded_after = forwarded(metrics);
    if agreed_leaders(survivors).await.as_ref() == Some(&leaders) {
        assert_eq!(forwarded_after, forwarded_before, "the producer's writes were forwarded: leaders {leaders:?}");
    }
    producer.close();
}

/// PutRecords of a record for every shard (random partition keys, routed by their MD5) and a
/// PutRecord, through `client`, until each record is acknowledged: the acknowledged records,
/// `(shard id, sequence number) -> data`, go into `acked`. Records are sent again only if
/// they failed (at most 60 s: a failover takes about one).
async fn put_until_acknowledged(
    client: &RoutedClient,
    round: &str,
    rng: &mut Rng,
    acked: &mut BTreeMap<(ShardId, u128), Bytes>,
) {
    let start = Instant::now();
    let mut pending: Vec<(String, Bytes)> = (0..ROUTED_SHARDS * 3)
        .map(|i| (format!("{round}-{i}-{}", rng.next()), Bytes::from(format!("{round}/{i}/{}", rng.next()))))
        .collect();
    while !pending.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "round {round}: {} records never acknowledged",
            pending.len()
        );
        let records = pending
            .iter()
            .map(|(key, data)| PutRecordsRequestEntry {
                data: data.clone(),
                partition_key: Some(key.clone()),
                explicit_hash_key: None,
            })
            .collect();
        let put = PutRecordsInput { records, stream_name: Some(ROUTED_STREAM.into()), stream_arn: None };
        let Ok(answer) = client.put_records(&put).await else {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            continue;
        };
        assert_eq!(answer.records.len(), pending.len());
        let mut failed = Vec::new();
        for ((key, data), entry) in pending.into_iter().zip(answer.records) {
            match (entry.shard_id, entry.sequence_number) {
                (Some(shard), Some(sequence)) => {
                    acked.insert((shard, sequence.as_u128().unwrap()), data);
                }
                _ => failed.push((key, data)),
            }
        }
        if !failed.is_empty() {
            // No leader yet (a failover): a moment for the election, as any client backs off.
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        pending = failed;
    }
    let single = Bytes::from(format!("{round}/single/{}", rng.next()));
    let put = PutRecordInput {
        stream_name: Some(ROUTED_STREAM.into()),
        data: single.clone(),
        partition_key: Some(format!("{round}-single")),
        ..Default::default()
    };
    loop {
        match client.put_record(&put).await {
            Ok(output) => {
                acked.insert((output.shard_id, output.sequence_number.as_u128().unwrap()), single);
                break;
            }
            Err(error) => assert!(start.elapsed() < Duration::from_secs(60), "round {round}: PutRecord: {error}"),
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

/// Every record of every shard of the stream, as the node at `endpoint` serves them.
async fn read_routed_stream(endpoint: &str) -> BTreeMap<(ShardId, u128), Bytes> {
    let client = Client::connect(endpoint).await.unwrap();
    let list = ListShardsInput { stream_name: Some(ROUTED_STREAM.into()), ..Default::default() };
    let mut stored = BTreeMap::new();
    for shard in call_until_ok(&client, &list).await.shards {
        let request = GetShardIteratorInput {
            stream_name: Some(ROUTED_STREAM.into()),
            stream_arn: None,
            shard_id: shard.shard_id.clone(),
            shard_iterator_type: ShardIteratorType::TrimHorizon,
            starting_sequence_number: None,
            timestamp: None,
        };
        let mut iterator = call_until_ok(&client, &request).await.shard_iterator;
        while let Some(current) = iterator {
            let page = call_until_ok(&client, &GetRecordsInput { shard_iterator: current, ..Default::default() }).await;
            if page.records.is_empty() {
                break;
            }
            for record in page.records {
                stored.insert((shard.shard_id.clone(), record.sequence_number.as_u128().unwrap()), record.data);
            }
            iterator = page.next_shard_iterator;
        }
    }
    stored
}

/// Every acknowledged record is on the node at `endpoint`, at its shard and sequence number,
/// byte-exact (records the client's retries stored twice are there too, and allowed).
async fn check_routed_records(endpoint: &str, acked: &BTreeMap<(ShardId, u128), Bytes>) {
    let start = Instant::now();
    loop {
        let stored = read_routed_stream(endpoint).await;
        let missing: Vec<_> = acked.iter().filter(|(at, data)| stored.get(*at) != Some(*data)).collect();
        if missing.is_empty() {
            return;
        }
        // A follower applies what the leader committed a moment later.
        assert!(start.elapsed() < Duration::from_secs(30), "{endpoint} lacks acknowledged records: {missing:?}");
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

/// A routed client that knows one node learns the table, keeps a connection per member and
/// writes each record to its shard's leader: while the leaders stay put, no member forwards
/// anything (`sluice_forwarded_requests_total`), though the leaders are spread over the
/// members and a plain client of that one node needs forwarding for most records. Then the
/// leader of some shards is SIGKILLed: the client's writes fail over (a fresh table, a retry
/// through any node) and go on to the new leaders. Every acknowledged record is on every
/// surviving node.
#[test]
fn a_routed_client_writes_to_the_leaders_directly_and_reroutes_after_a_leader_dies() {
    let mut daemons = start_forwarding_cluster();
    let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
    let metrics: Vec<SocketAddr> = daemons.iter().map(|daemon| daemon.metrics_addr).collect();
    let pids: Vec<u32> = daemons.iter().map(Daemon::pid).collect();
    let killed = run(move || async move {
        // One seed: node 1. The client learns the others from the table.
        let client = RoutedClient::connect(RoutedConfig::new(vec![endpoints[0].clone()])).await.unwrap();
        let create = CreateStreamInput {
            stream_name: ROUTED_STREAM.into(),
            shard_count: Some(ROUTED_SHARDS as i32),
            ..Default::default()
        };
        call_until_ok(&client.any().await.unwrap(), &create).await;
        let mut rng = Rng(0x5EED_0020_77E5);
        let mut acked = BTreeMap::new();

        // While the leaders stay where they are, nothing is forwarded. Leaders move now and
        // then (balancing): a round during which they moved is done again, a few times at most.
        let mut direct_rounds = 0;
        for attempt in 0..5 {
            let before = settled_leaders(&endpoints).await;
            let (table, _) = client.refresh_table(Some(ROUTED_STREAM), None).await.expect("a routing table");
            let (stats_before, forwarded_before) = (client.stats(), forwarded(&metrics));
            put_until_acknowledged(&client, &format!("direct{attempt}"), &mut rng, &mut acked).await;
            let (stats_after, forwarded_after) = (client.stats(), forwarded(&metrics));
            let known: Vec<Option<u64>> = before.values().map(|&leader| Some(leader)).collect();
            if table.leaders() != known.as_slice() || agreed_leaders(&endpoints).await.as_ref() != Some(&before) {
                continue;
            }
            assert_eq!(
                forwarded_after, forwarded_before,
                "writes were forwarded though the client knew the leaders {before:?}"
            );
            assert!(stats_after.direct_calls > stats_before.direct_calls, "{stats_after:?}");
            assert_eq!(stats_after.any_calls, stats_before.any_calls, "every write went direct: {stats_after:?}");
            direct_rounds += 1;
            break;
        }
        assert_eq!(direct_rounds, 1, "the leaders never stayed put for one round of writes");
        // The same writes through node 1 alone are forwarded: the figure above means something.
        let plain = Client::connect(&endpoints[0]).await.unwrap();
        let leaders = settled_leaders(&endpoints).await;
        let forwarded_before = forwarded(&metrics);
        let records = (0..ROUTED_SHARDS * 3)
            .map(|i| PutRecordsRequestEntry {
                data: Bytes::from(format!("plain/{i}")),
                partition_key: Some(format!("plain-{i}")),
                explicit_hash_key: None,
            })
            .collect();
        let put = PutRecordsInput { records, stream_name: Some(ROUTED_STREAM.into()), stream_arn: None };
        call_until_ok(&plain, &put).await;
        if leaders.values().any(|&leader| leader != 1) && agreed_leaders(&endpoints).await == Some(leaders) {
            assert!(forwarded(&metrics) > forwarded_before, "a plain client of node 1 was not forwarded");
        }

        // SIGKILL a leader: node 1, the client's only seed, if it leads a shard (then the
        // client's other calls must move to a member it learned from the table), else the
        // leader of the first shard. The client goes on.
        let leaders = settled_leaders(&endpoints).await;
        let victim = if leaders.values().any(|&leader| leader == 1) { 1 } else { *leaders.values().next().unwrap() };
        let victim_index = victim as usize - 1;
        // SAFETY: a signal to a child process of this test.
        unsafe { libc::kill(pids[victim_index] as i32, libc::SIGKILL) };
        let fetches_before = client.stats().table_fetches;
        for round in 0..3 {
            put_until_acknowledged(&client, &format!("after-kill{round}"), &mut rng, &mut acked).await;
        }
        let stats = client.stats();
        assert!(stats.table_fetches > fetches_before, "the client never fetched a new table: {stats:?}");
        // The survivors elect new leaders for the dead node's shards; the client's table names
        // them once they have, and its writes go there directly again.
        let survivors: Vec<String> =
            endpoints.iter().enumerate().filter(|(node, _)| *node != victim_index).map(|(_, e)| e.clone()).collect();
        let start = Instant::now();
        loop {
            // The table as the client holds it: fetched again after a call failed or a member
            // went down, and at least every few seconds.
            let table = client.table(Some(ROUTED_STREAM), None).await;
            let rerouted = table.as_ref().is_some_and(|(table, _)| {
                table.shard_count() == ROUTED_SHARDS
                    && table.leaders().iter().all(|leader| leader.is_some_and(|leader| leader != victim))
            });
            if rerouted {
                break;
            }
            let held = table.map(|(table, _)| table.leaders().to_vec());
            assert!(start.elapsed() < Duration::from_secs(60), "the client's table kept the dead leader: {held:?}");
            glommio::timer::sleep(Duration::from_millis(200)).await;
        }
        let direct_before = client.stats().direct_calls;
        put_until_acknowledged(&client, "rerouted", &mut rng, &mut acked).await;
        assert!(client.stats().direct_calls > direct_before, "{:?}", client.stats());
        let survivor_metrics: Vec<SocketAddr> =
            metrics.iter().enumerate().filter(|(node, _)| *node != victim_index).map(|(_, &addr)| addr).collect();
        produce_routed(&survivors, &survivor_metrics, &mut acked).await;
        cli_puts_routed(&survivors, &survivor_metrics, &mut acked).await;
        agent_ships_routed(&survivors, &survivor_metrics).await;
        for survivor in &survivors {
            check_routed_records(survivor, &acked).await;
        }
        eprintln!("routed: {} records acknowledged, node {victim} killed; client {:?}", acked.len(), client.stats());
        victim_index
    });
    daemons[killed].kill();
    for daemon in &mut daemons {
        daemon.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Forwarding with credentials: the members authenticate to each other with the cluster secret,
// and a forwarded request runs as the client that sent it.

const SECURED_STREAM: &str = "secured";
const CLUSTER_SECRET: &str = "7d1f0c2a9b8e4f6a1c3d5e7f9a0b2c4d";
const ADMIN: (&str, &str) = ("AKIAADMIN00000000001", "admin/secret+key");
/// May read and describe, not write.
const READER: (&str, &str) = ("AKIAREADER0000000001", "reader-secret");

/// Puts `puts` records through each of `admins` into the secured stream, the data of the `n`th
/// through node `node` being `data(node, n)`, and adds each to `acked` by sequence number.
async fn put_through_each(
    admins: &[Client],
    puts: usize,
    acked: &mut BTreeMap<u128, Bytes>,
    data: impl Fn(usize, usize) -> String,
) {
    for (node, admin) in admins.iter().enumerate() {
        for n in 0..puts {
            let data = Bytes::from(data(node, n));
            let put = PutRecordInput {
                stream_name: Some(SECURED_STREAM.into()),
                data: data.clone(),
                partition_key: Some(format!("key-{n}")),
                ..Default::default()
            };
            let output = call_until_ok(admin, &put).await;
            acked.insert(output.sequence_number.as_u128().unwrap(), data);
        }
    }
}

/// Waits (30 s at most) until `reader` of `endpoint` reads exactly `acked` from the secured
/// stream, byte-exact.
async fn read_until_served(reader: &Client, endpoint: &str, acked: &BTreeMap<u128, Bytes>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let records = read_shard(reader, SECURED_STREAM).await.unwrap_or_default();
        let read: BTreeMap<u128, Bytes> =
            records.into_iter().map(|record| (record.sequence_number.as_u128().unwrap(), record.data)).collect();
        if &read == acked {
            return;
        }
        assert!(Instant::now() < deadline, "{endpoint} serves {} of {} records", read.len(), acked.len());
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

/// What the records written to the encrypted stream start with: never on disk in plaintext.
const SEALED_MARKER: &str = "sealed record of node";

/// The contents of every file under `dir`.
fn files_under(dir: &Path) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map_while(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                files.push(bytes);
            }
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// A test CA's certificate (PEM), and in `dir` the certificate for 127.0.0.1 it issued, which
/// every member serves, and its key.
fn cluster_certificates(dir: &Path) -> (String, PathBuf, PathBuf) {
    let ca = sluice_testkit::TestCa::new("Sluice cluster test CA");
    ca.install(dir);
    (ca.ca_pem, dir.join("cert.pem"), dir.join("key.pem"))
}

/// The credentials file (admin may do everything, reader only read) and the cluster secret's
/// file, in `dir`.
fn secured_files(dir: &Path) -> (PathBuf, PathBuf) {
    let credentials = dir.join("credentials.toml");
    let reader_actions = r#"["kinesis:Get*", "kinesis:Describe*", "kinesis:List*"]"#;
    let text = format!(
        r#"account_id = "000000000000"

[[principal]]
name = "admin"
access_key_id = "{}"
secret_access_key = "{}"
policies = ['''{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": ["kinesis:*", "sluice:*"], "Resource": "*"}}]}}''']

[[principal]]
name = "reader"
access_key_id = "{}"
secret_access_key = "{}"
policies = ['''{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": {reader_actions}, "Resource": "*"}}]}}''']
"#,
        ADMIN.0, ADMIN.1, READER.0, READER.1
    );
    std::fs::write(&credentials, text).unwrap();
    let secret = dir.join("cluster.secret");
    std::fs::write(&secret, format!("{CLUSTER_SECRET}\n")).unwrap();
    (credentials, secret)
}

fn signed_with((access_key_id, secret): (&str, &str), ca_pem: &str) -> ConnectOptions {
    ConnectOptions {
        credentials: Some(sluice_client::auth::SigningCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: sluice_security::Secret::new(secret),
            session_token: None,
        }),
        region: "us-east-1".into(),
        tls: Some(sluice_client::tls::TlsOptions::from_ca_pem(ca_pem.as_bytes()).unwrap()),
    }
}

/// The error kind a call or a connection was refused with.
fn refused<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (ErrorKind, String) {
    match result {
        Err(ClientError::Service(error)) => (error.kind, error.message),
        Err(ClientError::Connection(ConnectionError::Rejected(error))) => (error.kind, error.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A blocking byte stream both ways (TLS over a `TcpStream`, here).
trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

/// A TLS connection to `addr`, trusting `ca_pem`, that went through the native handshake as
/// `credentials` (its proof bound to the TLS session): frames are written and read by hand, so
/// that it can send what no client would.
fn handshaken(
    addr: SocketAddr,
    credentials: &sluice_security::sigv4::SigningCredentials,
    ca_pem: &str,
) -> Box<dyn ReadWrite> {
    use sluice_protocol::flatbuffers::FlatBufferBuilder;
    use sluice_protocol::native::handshake::{self, AuthenticateFields, HandshakeResponse};
    use sluice_security::challenge::{Challenge, ClientHandshake, ServerProof, CHANNEL_BINDING_LABEL};
    use sluice_security::tls::{client_config, ALPN_NATIVE};
    use std::io::Write;
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let config = Arc::new(client_config(ca_pem.as_bytes(), &ALPN_NATIVE).unwrap());
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = rustls::StreamOwned::new(rustls::ClientConnection::new(config, name).unwrap(), tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).unwrap();
    }
    let binding = stream.conn.export_keying_material(vec![0u8; 32], CHANNEL_BINDING_LABEL, None).unwrap();
    let mut fbb = FlatBufferBuilder::new();
    stream.write_all(handshake::encode_hello(&mut fbb, 1).unwrap()).unwrap();
    let answer = |stream: &mut dyn ReadWrite| match handshake::decode_handshake_response(&read_frame(stream)) {
        Ok(Some((_, answer))) => answer,
        other => panic!("a handshake answer: {other:?}"),
    };
    let HandshakeResponse::Hello { server_nonce, authentication_required: true } = answer(&mut stream) else {
        panic!("the node did not ask for authentication");
    };
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (proof, expected) =
        ClientHandshake::respond(&Challenge { server_nonce }, credentials, "us-east-1", &binding, now_ms);
    let fields = AuthenticateFields {
        access_key_id: proof.access_key_id,
        timestamp_ms: proof.timestamp_ms,
        client_nonce: proof.client_nonce,
        session_token: proof.session_token,
        mac: proof.mac,
    };
    fbb.reset();
    stream.write_all(handshake::encode_authenticate(&mut fbb, 2, &fields).unwrap()).unwrap();
    match answer(&mut stream) {
        HandshakeResponse::Authenticated { server_mac, .. } => {
            assert!(expected.check_server(&ServerProof { mac: server_mac }));
        }
        other => panic!("{} was not authenticated: {other:?}", credentials.access_key_id),
    }
    Box::new(stream)
}

fn read_frame(stream: &mut dyn ReadWrite) -> Bytes {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).unwrap();
    let mut frame = prefix.to_vec();
    frame.resize(4 + u32::from_le_bytes(prefix) as usize, 0);
    stream.read_exact(&mut frame[4..]).unwrap();
    Bytes::from(frame)
}

/// ListStreams sent on `stream` as a ForwardedRequest naming `caller` (by access key id).
fn list_streams_forwarded_as(
    stream: &mut Box<dyn ReadWrite>,
    caller: &str,
) -> Result<sluice_model::Response, KinesisError> {
    use sluice_protocol::flatbuffers::FlatBufferBuilder;
    use sluice_protocol::native::{self, ForwardedCaller, ResponseMessage};
    use std::io::Write;
    let request = sluice_model::Request::ListStreams(ListStreamsInput::default());
    let mut builder = FlatBufferBuilder::new();
    let inner = native::encode_request(&mut builder, 3, &request).unwrap();
    let caller =
        ForwardedCaller { access_key_id: caller.into(), source_ip: Some("192.0.2.7".into()), ..Default::default() };
    let mut wrapper = FlatBufferBuilder::new();
    stream.write_all(native::encode_forwarded(&mut wrapper, 3, Some(&caller), inner).unwrap()).unwrap();
    let decoded = native::decode_response(&read_frame(stream)).unwrap().unwrap();
    assert_eq!(decoded.correlation_id, 3);
    match decoded.message.unwrap() {
        ResponseMessage::Response(response) => Ok(response),
        ResponseMessage::Error(error) => Err(error),
        other => panic!("ListStreams answered {other:?}"),
    }
}

/// A membership call signed by a client reaches the catalog's leader through a member that does
/// not lead it: forwarded over TLS as it came, the leader verifies the client's signature,
/// authorizes and audits the call, and its answer comes back. The call removes node 9, which is
/// no member, so the leader refuses it and nothing changes; only the leader could have written
/// the refusal into its own audit log.
async fn forwarded_membership_calls_reach_the_catalog_leader(https: &[SocketAddr], audit_logs: &[PathBuf], ca: &str) {
    const TARGET: &str = "SluiceAdmin_20261201.";
    let removals = |log: &Path| std::fs::read_to_string(log).unwrap_or_default().matches("RemoveClusterMember").count();
    let mut forwarded = 0;
    let mut catalog_leader = None;
    for &http in https {
        let client =
            HttpClient::connect_with(&http.to_string(), Encoding::Json, &signed_with(ADMIN, ca)).await.unwrap();
        let (status, view) =
            client.post(&format!("{TARGET}DescribeCluster"), Encoding::Json, b"{}".to_vec()).await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&view));
        let Some(leader) = other_catalog_leader(&serde_json::from_slice(&view).unwrap()) else { continue };
        let before = removals(&audit_logs[leader as usize - 1]);
        let body = br#"{"OldNodeId":9}"#.to_vec();
        let (status, answer) =
            client.post(&format!("{TARGET}RemoveClusterMember"), Encoding::Json, body).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(status == 400 && answer.contains("Node 9 is not a member"), "{http}: {status} {answer}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while removals(&audit_logs[leader as usize - 1]) == before && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        if removals(&audit_logs[leader as usize - 1]) == before {
            // Not audited there: only if the catalog's leadership moved meanwhile (on a loaded
            // machine), and the call went to the new leader or ran here.
            let (_, view) =
                client.post(&format!("{TARGET}DescribeCluster"), Encoding::Json, b"{}".to_vec()).await.unwrap();
            let now = other_catalog_leader(&serde_json::from_slice(&view).unwrap());
            assert_ne!(now, Some(leader), "node {leader}, the catalog's leader, did not audit the call via {http}");
            eprintln!("the catalog's leadership moved from node {leader} during a forwarded call via {http}");
            continue;
        }
        forwarded += 1;
        catalog_leader = Some(leader);
    }
    assert!(forwarded >= 1, "no member named another as the catalog's leader");
    relayed_calls_are_their_clients_when_proved(https, audit_logs, ca, catalog_leader.unwrap()).await;
}

/// A relayed call carries its client's address and transport (`net/http/relay.rs`), which the
/// member it reaches believes only with the relaying member's proof: a call sent straight to
/// the catalog's leader as though another member relayed it for 203.0.113.7 is audited with
/// that address when the proof (made here with the cluster secret) holds, and with the
/// connection's own address when the proof is one for another client.
async fn relayed_calls_are_their_clients_when_proved(
    https: &[SocketAddr],
    audit_logs: &[PathBuf],
    ca: &str,
    leader: u64,
) {
    use http::{HeaderName, HeaderValue};
    let by = if leader == 1 { 2 } else { 1 };
    let log = &audit_logs[leader as usize - 1];
    let client =
        HttpClient::connect_with(&https[leader as usize - 1].to_string(), Encoding::Json, &signed_with(ADMIN, ca))
            .await
            .unwrap();
    let secret = sluice_security::members::ClusterSecret::parse(CLUSTER_SECRET).unwrap();
    let relayed_for = "203.0.113.7 tls";
    for proof_of in ["198.51.100.1 tls", relayed_for] {
        let mut request =
            client.signed("SluiceAdmin_20261201.RemoveClusterMember", Encoding::Json, br#"{"OldNodeId":9}"#.to_vec());
        let signed = |name: &str| request.headers().get(name).map_or("", |value| value.to_str().unwrap()).to_owned();
        let by_text = by.to_string();
        let covered = [signed("authorization"), signed("x-amz-date"), signed("x-amz-target")];
        let vouched = [by_text.as_str(), proof_of, &covered[0], &covered[1], &covered[2]];
        let proof = secret.relay_proof(by, &vouched);
        for (name, value) in [
            ("x-sluice-forwarded-by", by_text.as_str()),
            ("x-sluice-relayed-for", relayed_for),
            ("x-sluice-relay-proof", &proof),
        ] {
            request.headers_mut().insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        let lines_before = std::fs::read_to_string(log).unwrap_or_default().lines().count();
        let (status, answer) = client.send(request).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(status == 400 && answer.contains("Node 9 is not a member"), "{status} {answer}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let record = loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            // Whole lines only: the node may be writing the record as it is read.
            let whole = &text[..text.rfind('\n').map_or(0, |at| at + 1)];
            let added = whole.lines().skip(lines_before).find(|line| line.contains("RemoveClusterMember"));
            if let Some(line) = added {
                break line.to_owned();
            }
            assert!(Instant::now() < deadline, "node {leader} did not audit the relayed call");
            glommio::timer::sleep(Duration::from_millis(50)).await;
        };
        let record: serde_json::Value = serde_json::from_str(&record).unwrap();
        let expected = if proof_of == relayed_for { "203.0.113.7" } else { "127.0.0.1" };
        assert_eq!(record["sourceIPAddress"], expected, "a call relayed with a proof for {proof_of}: {record}");
    }
}

/// With `--credentials`, TLS and `--cluster-secret`, a client that knows one node still
/// reaches every leader: the members forward its writes and catalog changes over TLS,
/// authenticated to each other with keys derived from the secret, and the leader serves each as
/// the client that sent it, authorized by the client's own policies. A member's key opens no
/// door of its own, a wrong secret opens none, and a client cannot pass its request off as
/// another's.
#[test]
fn with_credentials_and_tls_members_forward_their_clients_requests_as_those_clients() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (credentials, secret) = secured_files(dir.path());
    let (ca_pem, cert, key) = cluster_certificates(dir.path());
    let ca_bundle = dir.path().join("ca.pem");
    std::fs::write(&ca_bundle, &ca_pem).unwrap();
    let audit = |id: usize| dir.path().join(format!("audit-{id}"));
    let daemons = start_forwarding_cluster_with(|id| {
        let files = [&credentials, &secret, &audit(id), &cert, &key, &ca_bundle].map(|path| path.display().to_string());
        let [credentials, secret, audit, cert, key, ca_bundle] = files;
        let flags =
            ["--credentials", "--cluster-secret", "--audit-dir", "--tls-cert", "--tls-key", "--cluster-ca-bundle"];
        let values = [credentials, secret, audit, cert, key, ca_bundle];
        flags.into_iter().zip(values).flat_map(|(flag, value)| [flag.to_owned(), value]).collect()
    });
    let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
    let metrics: Vec<SocketAddr> = daemons.iter().map(|daemon| daemon.metrics_addr).collect();
    let addresses: Vec<SocketAddr> = daemons.iter().map(|daemon| daemon.addr).collect();
    let peers_flag = daemons[0].flag("--peers").unwrap().to_owned();
    let puts_per_node = 10;
    let client_ca = ca_pem.clone();
    let https: Vec<SocketAddr> = daemons.iter().map(|daemon| daemon.http_addr).collect();
    let audit_logs: Vec<PathBuf> = (0..NODES).map(|id| audit(id).join("audit.log")).collect();
    run(move || async move {
        let mut admins = Vec::new();
        for endpoint in &endpoints {
            admins.push(Client::connect_with(endpoint, &signed_with(ADMIN, &client_ca)).await.unwrap());
        }
        // Created through node 1: a catalog change, forwarded unless node 1 leads the catalog.
        let create =
            CreateStreamInput { stream_name: SECURED_STREAM.into(), shard_count: Some(1), ..Default::default() };
        call_until_ok(&admins[0], &create).await;
        forwarded_membership_calls_reach_the_catalog_leader(&https, &audit_logs, &client_ca).await;
        let before = forwarded(&metrics);
        // Every node takes writes; the two that do not lead the shard forward theirs.
        let mut acked = BTreeMap::new();
        put_through_each(&admins, puts_per_node, &mut acked, |node, n| format!("node {node} record {n}")).await;
        let forwarded_writes = forwarded(&metrics) - before;
        // Each core's peer network holds a connection to both others (the metric sums the
        // cores): the secret's proof was accepted everywhere, and nothing was refused.
        let connected = 2.0 * cores() as f64;
        for &addr in &metrics {
            assert_eq!(common::scrape(addr, "sluice_peers_connected"), connected, "members connected to {addr}");
            let incoming = common::scrape(addr, "sluice_peer_connections_incoming");
            assert_eq!(incoming, connected, "members connected in to {addr}");
            assert_eq!(common::scrape(addr, "sluice_peer_connections_refused_total"), 0.0, "refused at {addr}");
        }
        // The peer ports speak TLS: a member's hello in plain TCP is refused.
        let peer_port = |peers: &str| -> u16 {
            let first = peers.split(',').next().unwrap().split('/').next().unwrap();
            first.rsplit(':').next().unwrap().parse().unwrap()
        };
        let node_one_peer = SocketAddr::from(([127, 0, 0, 1], peer_port(peers_flag.as_str())));
        let mut plain = std::net::TcpStream::connect(node_one_peer).unwrap();
        plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        use std::io::{Read, Write};
        let hello =
            sluice_cluster::wire::encode_hello(sluice_cluster::wire::Hello { from: 2, to: 1, authenticated: true });
        plain.write_all(&hello).unwrap();
        let mut answer = Vec::new();
        let _ = plain.read_to_end(&mut answer);
        // Plain TCP would answer the hello with the challenge's nonce; TLS answers with an
        // alert record (content type 21), or nothing.
        assert!(
            answer.len() != sluice_cluster::peer_auth::PEER_NONCE_BYTES
                && answer.first().is_none_or(|&byte| byte == 21),
            "the peer port answered a plain hello with {answer:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while common::scrape(metrics[0], "sluice_peer_connections_refused_total") < 1.0 {
            assert!(Instant::now() < deadline, "node 1 took a plain peer connection");
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(common::scrape(metrics[0], "sluice_peers_connected"), connected, "the members stay connected");
        assert!(
            forwarded_writes >= (2 * puts_per_node) as f64,
            "two of the three nodes forward their writes: {forwarded_writes} forwarded"
        );
        // Every node serves every record, to a caller allowed to read.
        for endpoint in &endpoints {
            let reader = Client::connect_with(endpoint, &signed_with(READER, &client_ca)).await.unwrap();
            read_until_served(&reader, endpoint, &acked).await;
            // The reader may not write, through whichever node.
            let put = PutRecordInput {
                stream_name: Some(SECURED_STREAM.into()),
                data: Bytes::from_static(b"denied"),
                partition_key: Some("k".into()),
                ..Default::default()
            };
            assert_eq!(refused(reader.call(&put).await).0, ErrorKind::AccessDenied);
        }

        // Encryption at rest, replicated: started through a node that may not lead the catalog,
        // with the cluster's AWS-managed key (from the secret); every member seals and opens.
        let start = StartStreamEncryptionInput {
            stream_name: Some(SECURED_STREAM.into()),
            encryption_type: EncryptionType::Kms,
            key_id: "alias/aws/kinesis".into(),
            stream_arn: None,
        };
        call_until_ok(&admins[1], &start).await;
        for admin in &admins {
            let describe = DescribeStreamSummaryInput { stream_name: Some(SECURED_STREAM.into()), stream_arn: None };
            let deadline = Instant::now() + Duration::from_secs(30);
            // A member reads its own catalog: it shows the start once it has applied it.
            loop {
                let summary = call_until_ok(admin, &describe).await.stream_description_summary;
                let applied = summary.encryption_type == Some(EncryptionType::Kms);
                if applied {
                    assert_eq!(summary.key_id.as_deref(), Some("alias/aws/kinesis"));
                }
                if applied && summary.stream_status == StreamStatus::Active {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "a member stayed {:?}, encryption {:?}",
                    summary.stream_status,
                    summary.encryption_type
                );
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
        put_through_each(&admins, puts_per_node, &mut acked, |node, n| format!("{SEALED_MARKER} {node} {n}")).await;
        for endpoint in &endpoints {
            let reader = Client::connect_with(endpoint, &signed_with(READER, &client_ca)).await.unwrap();
            read_until_served(&reader, endpoint, &acked).await;
        }

        // A member's own key: authenticated, but it may do nothing by itself; with another
        // secret it is not even authenticated.
        let cluster_secret = sluice_security::members::ClusterSecret::parse(CLUSTER_SECRET).unwrap();
        let member = cluster_secret.credentials(2);
        let member_options = signed_with((&member.access_key_id, member.secret_access_key.expose()), &client_ca);
        let as_member = Client::connect_with(&endpoints[0], &member_options).await.unwrap();
        assert_eq!(refused(as_member.call(&ListStreamsInput::default()).await).0, ErrorKind::AccessDenied);
        let wrong = sluice_security::members::ClusterSecret::parse(&CLUSTER_SECRET.replace('7', "8")).unwrap();
        let wrong = wrong.credentials(2);
        let wrong_options = signed_with((&wrong.access_key_id, wrong.secret_access_key.expose()), &client_ca);
        assert_eq!(
            refused(Client::connect_with(&endpoints[0], &wrong_options).await.map(|_| ())).0,
            ErrorKind::InvalidSignature
        );
    });

    // On every member's disk (journal segments and Raft logs): the records written before the
    // start in plaintext (the scan sees them), none written after it.
    for daemon in &daemons {
        let files = files_under(&daemon.data_dir);
        let holding = |needle: &[u8]| files.iter().filter(|bytes| contains(bytes, needle)).count();
        assert!(holding(b"node 0 record 0") > 0, "{}: the plaintext records are not where the scan looks", daemon.addr);
        assert_eq!(
            holding(SEALED_MARKER.as_bytes()),
            0,
            "{}: a sealed record's data is on disk in plaintext",
            daemon.addr
        );
    }

    // By hand: a member's connection carries a client's request, which runs as that client,
    // authorized by the client's policies on the node that serves it.
    let cluster_secret = sluice_security::members::ClusterSecret::parse(CLUSTER_SECRET).unwrap();
    let mut member = handshaken(addresses[0], &cluster_secret.credentials(2), &ca_pem);
    match list_streams_forwarded_as(&mut member, ADMIN.0) {
        Ok(sluice_model::Response::ListStreams(output)) => assert_eq!(output.stream_names, vec![SECURED_STREAM]),
        other => panic!("ListStreams as admin answered {other:?}"),
    }
    let as_writer_only = list_streams_forwarded_as(&mut member, READER.0).map(|_| ());
    assert_eq!(as_writer_only, Ok(()), "the reader may list streams");
    let nobody = list_streams_forwarded_as(&mut member, "AKIANOBODY0000000001").unwrap_err();
    assert_eq!(nobody.kind, ErrorKind::UnrecognizedClient, "{nobody:?}");
    // A client that is not a member cannot pass its request off as another's.
    let reader = sluice_security::sigv4::SigningCredentials {
        access_key_id: READER.0.into(),
        secret_access_key: sluice_security::Secret::new(READER.1),
        session_token: None,
    };
    let mut not_a_member = handshaken(addresses[0], &reader, &ca_pem);
    let error = list_streams_forwarded_as(&mut not_a_member, ADMIN.0).unwrap_err();
    assert_eq!(error.kind, ErrorKind::AccessDenied, "{error:?}");
    assert!(error.message.contains("only a cluster member"), "{error:?}");
    drop(daemons);
}
