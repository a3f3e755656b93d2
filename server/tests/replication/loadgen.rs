//! The load of the replication tests as a real client process: with
//! `SLUICE_CLUSTER_LOADGEN=/path/to/sluice-loadgen`, the leader-kill and partition tests run
//! `sluice-loadgen endure` instead of their writer threads (issue 13 asks for the loadgen).
//!
//! The test learns what was acknowledged, when and by which node by tailing the loadgen's ack
//! log, and fills the same [`Shared`] the writer threads fill: which node answered last (the
//! leader to kill or cut off), when each answer came (failover), and the acknowledged
//! records. It takes from the loadgen only "this record was acknowledged at this sequence
//! number": the data is derived here, independently, from the writer id, counter and attempt
//! ([`record_data`], pinned against the loadgen's own derivation), and the checker reads the
//! nodes itself.
//!
//! `SLUICE_CLUSTER_WRITERS` (default 2 here) becomes `--connections`, and
//! `SLUICE_CLUSTER_LOADGEN_ARGS` (whitespace-separated) is appended to the loadgen's flags
//! (e.g. `--batch-records 50 --record-bytes 4096`).

use super::Shared;
use bytes::Bytes;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `SLUICE_CLUSTER_LOADGEN`: the loadgen binary, if the tests are to use it.
pub fn binary() -> Option<PathBuf> {
    std::env::var_os("SLUICE_CLUSTER_LOADGEN").map(PathBuf::from)
}

/// How long the loadgen may take to stop once its stdin closed: the calls in flight end
/// within its call timeout (500 ms), then it prints its summary.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// A running `sluice-loadgen endure` and the thread that tails its ack log.
pub struct Loadgen {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    summary: PathBuf,
    tail: Option<JoinHandle<usize>>,
    tail_stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl Loadgen {
    /// Starts the loadgen writing to `stream` through `endpoints` (in the network namespace
    /// `namespace`, if given), as writer `writer_id`. `nodes[i]` is the node of `endpoints[i]`,
    /// as [`Shared`] counts them. With `stream_exists`, it writes at once (`--stream-exists`)
    /// instead of describing the stream (or creating it) first.
    #[expect(clippy::too_many_arguments, reason = "one loadgen's whole configuration")]
    pub fn start(
        binary: &Path,
        namespace: Option<&str>,
        shared: Arc<Shared>,
        nodes: Vec<usize>,
        endpoints: &[String],
        stream: &str,
        writer_id: u64,
        stream_exists: bool,
    ) -> Loadgen {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let ack_log = dir.path().join("acks.log");
        let summary = dir.path().join("summary.txt");
        let connections = std::env::var("SLUICE_CLUSTER_WRITERS").unwrap_or_else(|_| "2".into());
        let extra = std::env::var("SLUICE_CLUSTER_LOADGEN_ARGS").unwrap_or_default();
        let mut command = match namespace {
            None => Command::new(binary),
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace]).arg(binary);
                command
            }
        };
        command
            .arg("endure")
            .args(["--endpoints", &endpoints.join(",")])
            .args(["--stream", stream, "--shards", "1"])
            .args(["--writer-id", &writer_id.to_string()])
            .args(["--connections", &connections])
            .arg("--ack-log")
            .arg(&ack_log)
            .arg("--until-stdin-closes")
            .args(stream_exists.then_some("--stream-exists"))
            .args(extra.split_whitespace())
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&summary).unwrap());
        eprintln!("loadgen: {command:?}");
        let mut child = command.spawn().expect("spawn sluice-loadgen (SLUICE_CLUSTER_LOADGEN)");
        let stdin = child.stdin.take();
        let tail_stop = Arc::new(AtomicBool::new(false));
        let tail = {
            let stop = tail_stop.clone();
            std::thread::spawn(move || tail(&ack_log, &shared, &nodes, &stop))
        };
        Loadgen { child: Some(child), stdin, summary, tail: Some(tail), tail_stop, _dir: dir }
    }

    /// Stops (SIGSTOP) or continues (SIGCONT) the loadgen's process: its writes pause, its
    /// connections stay open. A call it had on its way may time out on its side meanwhile and
    /// be retried, as after a kill.
    pub fn pause(&self, paused: bool) {
        let pid = self.child.as_ref().expect("running").id() as libc::pid_t;
        let signal = if paused { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) of the child this Loadgen spawned and has not waited for.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "signal {signal} to sluice-loadgen: {}", std::io::Error::last_os_error());
    }

    /// Closes the loadgen's stdin, waits for it to finish (it must exit 0) and for every line
    /// of its ack log to be taken in; prints its summary and returns how many records it logged.
    pub fn stop(mut self) -> usize {
        drop(self.stdin.take());
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + STOP_WAIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("sluice-loadgen did not stop within {STOP_WAIT:?} of its stdin closing");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut summary = String::new();
        std::fs::File::open(&self.summary).unwrap().read_to_string(&mut summary).unwrap();
        eprint!("{summary}");
        assert!(status.success(), "sluice-loadgen exited with {status}");
        self.tail_stop.store(true, Ordering::SeqCst);
        self.tail.take().unwrap().join().expect("the ack log's tail")
    }
}

impl Drop for Loadgen {
    /// Kills the loadgen; while a test panics (a stall, say), first asks it to stop as
    /// [`Loadgen::stop`] does and prints its summary: its failed calls by kind (timeouts, error
    /// answers, connects) tell a dead cluster from one that refuses.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if std::thread::panicking() {
                drop(self.stdin.take());
                let deadline = Instant::now() + Duration::from_secs(5);
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let mut summary = String::new();
                if std::fs::File::open(&self.summary).and_then(|mut file| file.read_to_string(&mut summary)).is_ok() {
                    eprint!("the loadgen, stopped by the panic:\n{summary}");
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Takes in the ack log at `path` as it grows, until `stop` is raised and the end is reached;
/// returns how many records it logged.
fn tail(path: &Path, shared: &Shared, nodes: &[usize], stop: &AtomicBool) -> usize {
    let file = loop {
        match std::fs::File::open(path) {
            Ok(file) => break file,
            Err(_) if !stop.load(Ordering::SeqCst) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => panic!("no ack log at {}: {error}", path.display()),
        }
    };
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    let mut records = 0;
    loop {
        // Read before looking at `stop`: once it is raised, the loadgen has exited and
        // flushed, so reaching the end then means everything was read.
        let stopping = stop.load(Ordering::SeqCst);
        let read = reader.read_line(&mut line).expect("read the ack log");
        if read == 0 || !line.ends_with('\n') {
            if stopping && read == 0 {
                assert!(line.is_empty(), "the ack log ends in a torn line: {line:?}");
                return records;
            }
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        if !line.starts_with('#') {
            take_in(line.trim_end(), shared, nodes);
            records += 1;
        }
        line.clear();
    }
}

/// One line of the ack log: the record into `shared.acked`, the answer's time and node into
/// `shared.acked_at` and `shared.leader`.
fn take_in(line: &str, shared: &Shared, nodes: &[usize]) {
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 8, "an ack log line of 8 fields: {line:?}");
    let number = |index: usize| -> u128 {
        fields[index].parse().unwrap_or_else(|_| panic!("field {index} of {line:?} is not a number"))
    };
    let (ack_unix_ns, endpoint, sequence) = (number(0), number(1) as usize, number(3));
    assert_eq!(fields[2], "shardId-000000000000", "the tests' streams have one shard: {line:?}");
    let data = record_data(number(4) as u64, number(5) as u64, number(6) as u32, number(7) as usize);
    let previous = shared.acked.lock().unwrap().insert(sequence, Bytes::from(data));
    assert!(previous.is_none(), "sequence number {sequence} acknowledged twice");
    // The answer's moment on this process's monotonic clock.
    let now_unix_ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let age = Duration::from_nanos(now_unix_ns.saturating_sub(ack_unix_ns) as u64);
    let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
    let node = nodes[endpoint];
    shared.acked_at.lock().unwrap().push((at, node));
    shared.leader.store(node, Ordering::SeqCst);
}

/// The data of attempt `attempt` of record `counter` of writer `writer_id`, as
/// loadgen/src/endure.rs documents it ("SLE1", writer id, counter, attempt, then splitmix64
/// filler), written again here so that the checker does not take the loadgen's word for it.
pub fn record_data(writer_id: u64, counter: u64, attempt: u32, record_bytes: usize) -> Vec<u8> {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let size = record_bytes.max(24);
    let mut data = Vec::with_capacity(size + 8);
    data.extend_from_slice(b"SLE1");
    data.extend_from_slice(&writer_id.to_le_bytes());
    data.extend_from_slice(&counter.to_le_bytes());
    data.extend_from_slice(&attempt.to_le_bytes());
    let mut state = writer_id.wrapping_mul(GAMMA) ^ counter.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ u64::from(attempt);
    while data.len() < size {
        state = state.wrapping_add(GAMMA);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        data.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    data.truncate(size);
    data
}

/// The loadgen's `derivation_is_pinned` checks the same vector: the two derivations agree.
#[test]
fn the_derivation_matches_the_loadgens() {
    let data = record_data(3, 5, 1, 40);
    let digest = data
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3));
    assert_eq!(digest, 0x8a6d_6fcb_6065_8e55, "{data:02x?}");
}
