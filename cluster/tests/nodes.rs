//! Three `sluice-cluster-node` processes on loopback (the raw Raft layer: one group on the
//! durable log, not Sluice streams), a client appending continuously, and the leader killed
//! with SIGKILL and restarted, cycle after cycle. An independent checker, which sees the nodes
//! only through their client interface, holds them to Raft's promises:
//!
//! - every acknowledged append is in the log exactly once, at the index it was acknowledged
//!   at, byte-exact, in the order of the acknowledgements, on every node after the cluster
//!   heals; no append is in the log twice;
//! - no two nodes ever serve different entries at one index (sampled: every live node's whole
//!   log is compared with what every other node served, at every cycle and at the end);
//! - after every kill, another node acknowledges an append (failover), and the test prints
//!   the failover times (the leader's death to the next acknowledged append), p50 and p99.
//!
//! `SLUICE_CLUSTER_KILL_SECONDS` sets how long the kill cycles go on (20 s by default, at
//! least `KILL_CYCLES_MIN` cycles); `SLUICE_CLUSTER_NODE_BIN` runs another build of the node
//! (a release one, to measure failover; the test reports which). Before the kills, garbage is sent to a node's peer and
//! client ports: it must refuse it and go on serving.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_cluster::limits::{CLIENT_FRAME_BYTES_MAX, TICK_INTERVAL_MS};
use sluice_cluster::wire::{
    frame_body_bytes, ClientRequest, ClientResponse, FailReason, NodeStatus, LENGTH_PREFIX_BYTES,
};

const NODES: u64 = 3;
const KILL_SECONDS_DEFAULT: u64 = 20;
const KILL_CYCLES_MIN: usize = 3;
/// Not a threshold on speed: only keeps a broken cluster from hanging the test forever.
const HANG_GUARD: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

fn node_binary() -> PathBuf {
    std::env::var_os("SLUICE_CLUSTER_NODE_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_sluice-cluster-node").into(), PathBuf::from)
}

use sluice_testkit::free_port;

/// The client's data for `value`: the value, then filler derived from it (100 to 999 bytes),
/// so a damaged or misplaced copy cannot pass for it.
fn payload(value: u64) -> Vec<u8> {
    let mut data = value.to_le_bytes().to_vec();
    let length = 100 + (value.wrapping_mul(7919) % 900) as usize;
    data.extend((0..length).map(|at| (value as usize).wrapping_mul(31).wrapping_add(at) as u8));
    data
}

/// The value an entry's data holds; panics on data no client wrote.
fn value_of(data: &[u8], index: u64) -> u64 {
    assert!(data.len() >= 8, "entry {index} of {} bytes is no client's", data.len());
    let value = u64::from_le_bytes(data[..8].try_into().unwrap());
    assert!(data == payload(value), "entry {index} (value {value}) is not byte-exact");
    value
}

fn call(address: SocketAddr, request: &ClientRequest) -> io::Result<ClientResponse> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_nodelay(true)?;
    stream.write_all(&request.encode())?;
    read_response(&mut stream)
}

fn read_response(stream: &mut TcpStream) -> io::Result<ClientResponse> {
    let mut prefix = [0; LENGTH_PREFIX_BYTES];
    stream.read_exact(&mut prefix)?;
    let body_bytes = frame_body_bytes(prefix, CLIENT_FRAME_BYTES_MAX).map_err(io::Error::other)?;
    let mut body = vec![0; body_bytes];
    stream.read_exact(&mut body)?;
    ClientResponse::decode(&body).map_err(io::Error::other)
}

struct Node {
    id: u64,
    peer: SocketAddr,
    client: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

struct Cluster {
    nodes: Vec<Node>,
    peers: String,
    root: PathBuf,
}

impl Cluster {
    fn new() -> Cluster {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cluster-nodes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let nodes: Vec<Node> = (1..=NODES)
            .map(|id| Node {
                id,
                peer: SocketAddr::from(([127, 0, 0, 1], free_port())),
                client: SocketAddr::from(([127, 0, 0, 1], free_port())),
                dir: root.join(format!("node-{id}")),
                child: None,
            })
            .collect();
        let peers = nodes.iter().map(|node| format!("{}={}", node.id, node.peer)).collect::<Vec<_>>().join(",");
        Cluster { nodes, peers, root }
    }

    fn node(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    fn start(&mut self, id: u64) {
        let (peers, root) = (self.peers.clone(), self.root.clone());
        let node = self.node(id);
        assert!(node.child.is_none(), "node {id} is running");
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(root.join(format!("node-{id}.log"))).unwrap();
        let child = Command::new(node_binary())
            .args(["--node-id", &id.to_string(), "--peers", &peers, "--client", &node.client.to_string()])
            .arg("--data")
            .arg(&node.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
    }

    /// SIGKILL (`Child::kill`), and reaps it.
    fn kill(&mut self, id: u64) {
        let mut child = self.node(id).child.take().expect("a running node");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn status(&self, id: u64) -> Option<NodeStatus> {
        match call(self.nodes[id as usize - 1].client, &ClientRequest::Status) {
            Ok(ClientResponse::Status(status)) => Some(status),
            _ => None,
        }
    }

    /// A node's whole committed log, paged.
    fn read_log(&self, id: u64) -> Option<Vec<Bytes>> {
        let mut log = Vec::new();
        loop {
            let from = log.len() as u64 + 1;
            match call(self.nodes[id as usize - 1].client, &ClientRequest::Read { from, count_max: 4096 }).ok()? {
                ClientResponse::Entries { first, commit, entries } => {
                    assert_eq!(first, from, "node {id} answered a read from {from} with entries from {first}");
                    if entries.is_empty() {
                        assert_eq!(commit, log.len() as u64, "node {id} commits {commit} but served {}", log.len());
                        return Some(log);
                    }
                    log.extend(entries);
                }
                other => panic!("node {id} answered a read with {other:?}"),
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if thread::panicking() {
            eprintln!("the nodes' logs and data are kept in {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// What every node served so far, by index: no two may differ.
#[derive(Default)]
struct Served {
    entries: BTreeMap<u64, (u64, Bytes)>,
}

impl Served {
    fn check(&mut self, node: u64, log: &[Bytes]) {
        for (at, data) in log.iter().enumerate() {
            let index = at as u64 + 1;
            let (first_node, first) = self.entries.entry(index).or_insert_with(|| (node, data.clone()));
            assert!(first == data, "nodes {first_node} and {node} serve different entries at index {index}");
        }
    }
}

struct Ack {
    value: u64,
    index: u64,
    node: u64,
    at: Instant,
}

/// One client appending one value at a time, each value attempted once (a failed attempt is
/// not retried with the same value: whether it was committed is unknown), following the
/// leader hints and going round the nodes when there is none.
fn append_continuously(
    clients: Vec<SocketAddr>,
    acks: Arc<Mutex<Vec<Ack>>>,
    attempts: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let mut target = 1u64;
    let mut value = 0u64;
    while !stop.load(Ordering::Relaxed) {
        value += 1;
        attempts.fetch_add(1, Ordering::Relaxed);
        let next = |target: u64| target % NODES + 1;
        match call(clients[target as usize - 1], &ClientRequest::Append(Bytes::from(payload(value)))) {
            Ok(ClientResponse::Appended { index, .. }) => {
                acks.lock().unwrap().push(Ack { value, index, node: target, at: Instant::now() });
            }
            Ok(ClientResponse::NotLeader { leader }) => {
                target = if leader != 0 && leader != target { leader } else { next(target) };
                thread::sleep(Duration::from_millis(5));
            }
            Ok(ClientResponse::Failed { reason, message }) => {
                assert_ne!(reason, FailReason::Invalid, "a valid append refused: {message}");
                target = next(target);
                thread::sleep(Duration::from_millis(5));
            }
            Ok(other) => panic!("an append answered with {other:?}"),
            Err(_) => {
                target = next(target);
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(start.elapsed() < HANG_GUARD, "gave up waiting for {what} after {HANG_GUARD:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Garbage on a node's ports: the client port answers it with an `Invalid` failure and
/// closes, the peer port just closes; the node serves on.
fn send_garbage(cluster: &Cluster, id: u64) {
    let node = &cluster.nodes[id as usize - 1];
    let garbage: [&[u8]; 4] = [
        &[0xff; 64],
        &u32::MAX.to_le_bytes(),
        b"SLRT\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00garbage garbage garbage",
        &[7, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6],
    ];
    for bytes in garbage {
        let mut stream = TcpStream::connect(node.client).unwrap();
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
        stream.write_all(bytes).unwrap();
        match read_response(&mut stream) {
            Ok(ClientResponse::Failed { reason: FailReason::Invalid, .. }) => {}
            other => panic!("garbage {bytes:?} on the client port answered with {other:?}"),
        }
        let mut peer = TcpStream::connect(node.peer).unwrap();
        peer.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
        let _ = peer.write_all(bytes);
        // The node closes the connection (or reads on, waiting for the rest of a frame it
        // will never get: then our side closes it).
        let mut rest = Vec::new();
        let _ = peer.read_to_end(&mut rest);
        assert!(rest.is_empty(), "the peer port answered garbage with {rest:?}");
    }
}

#[test]
fn leader_kills_lose_no_acknowledged_append() {
    let kill_seconds =
        std::env::var("SLUICE_CLUSTER_KILL_SECONDS").map_or(KILL_SECONDS_DEFAULT, |text| text.parse().unwrap());
    let mut cluster = Cluster::new();
    for id in 1..=NODES {
        cluster.start(id);
    }
    let leader =
        wait_for("a leader", || (1..=NODES).find(|&id| cluster.status(id).is_some_and(|status| status.leader == id)));
    send_garbage(&cluster, leader % NODES + 1);

    let acks = Arc::new(Mutex::new(Vec::<Ack>::new()));
    let (attempts, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let appender = {
        let clients = cluster.nodes.iter().map(|node| node.client).collect();
        let (acks, attempts, stop) = (acks.clone(), attempts.clone(), stop.clone());
        thread::spawn(move || append_continuously(clients, acks, attempts, stop))
    };
    let acked = || acks.lock().unwrap().len();
    let mut served = Served::default();
    let mut failovers = Vec::new();
    let started = Instant::now();
    let mut restarted: Option<u64> = None;
    while failovers.len() < KILL_CYCLES_MIN || started.elapsed() < Duration::from_secs(kill_seconds) {
        // A healthy cluster before each kill: appends acknowledged again, and the node
        // restarted last caught up with them (so the kill leaves a quorum that has it all).
        let acked_before = acked();
        wait_for("appends acknowledged", || (acked() >= acked_before + 5).then_some(()));
        let last_index = acks.lock().unwrap().last().unwrap().index;
        if let Some(id) = restarted {
            wait_for("the restarted node to catch up", || {
                cluster.status(id).is_some_and(|status| status.commit >= last_index).then_some(())
            });
        }
        for id in 1..=NODES {
            let log = cluster.read_log(id).unwrap_or_else(|| panic!("node {id} did not serve its log"));
            served.check(id, &log);
        }
        // The leader: the node that acknowledged last, if it still says it leads.
        let leader = wait_for("the leader", || {
            let node = acks.lock().unwrap().last().unwrap().node;
            cluster.status(node).is_some_and(|status| status.leader == node).then_some(node)
        });
        let killed_at = Instant::now();
        cluster.kill(leader);
        let failover = wait_for("an append acknowledged by another node", || {
            let acks = acks.lock().unwrap();
            acks.iter()
                .rev()
                .take_while(|ack| ack.at > killed_at)
                .find(|ack| ack.node != leader)
                .map(|ack| ack.at - killed_at)
        });
        failovers.push(failover);
        cluster.start(leader);
        restarted = Some(leader);
    }
    stop.store(true, Ordering::Relaxed);
    appender.join().unwrap();

    // Heal: every node commits everything acknowledged.
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    let last_index = acks.last().unwrap().index;
    let commits = wait_for("every node to commit every acknowledged append", || {
        let commits: Vec<u64> = (1..=NODES).filter_map(|id| cluster.status(id).map(|status| status.commit)).collect();
        (commits.len() == NODES as usize && commits.iter().all(|&commit| commit >= last_index && commit == commits[0]))
            .then_some(commits)
    });
    let logs: Vec<Vec<Bytes>> =
        (1..=NODES).map(|id| cluster.read_log(id).expect("a healed node serves its log")).collect();
    for (id, log) in (1..=NODES).zip(&logs) {
        served.check(id, log);
        assert_eq!(log, &logs[0], "nodes 1 and {id} hold different logs after healing");
    }
    // Exactly once, at the acknowledged index, byte-exact, in acknowledgement order.
    let log = &logs[0];
    let mut times_in_log = BTreeMap::new();
    for (at, data) in log.iter().enumerate() {
        if !data.is_empty() {
            *times_in_log.entry(value_of(data, at as u64 + 1)).or_insert(0) += 1;
        }
    }
    for (value, times) in &times_in_log {
        assert_eq!(*times, 1, "value {value} is in the log {times} times");
    }
    let mut previous_index = 0;
    for ack in &acks {
        assert!(ack.index > previous_index, "value {} acknowledged at {} after {previous_index}", ack.value, ack.index);
        previous_index = ack.index;
        let data =
            log.get(ack.index as usize - 1).unwrap_or_else(|| panic!("acknowledged index {} is lost", ack.index));
        assert_eq!(value_of(data, ack.index), ack.value, "index {} holds another value than acknowledged", ack.index);
    }

    failovers.sort();
    println!(
        "{} leader kills (SIGKILL) in {:.1} s, nodes {}, one client appending sequentially (100-999 byte entries), \
         tick {TICK_INTERVAL_MS} ms: {} appends acknowledged of {} requests (refused ones included), {} in the log (commit {:?}); \
         failover (leader death to the next acknowledged append) p50 {} ms, p99 {} ms, max {} ms",
        failovers.len(),
        started.elapsed().as_secs_f64(),
        node_binary().display(),
        acks.len(),
        attempts.load(Ordering::Relaxed),
        times_in_log.len(),
        commits,
        percentile(&failovers, 0.5).as_millis(),
        percentile(&failovers, 0.99).as_millis(),
        failovers.last().unwrap().as_millis(),
    );
    assert!(failovers.len() >= KILL_CYCLES_MIN);
}
