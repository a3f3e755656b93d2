//! Helpers shared by the agent's process tests: a scratch directory with a configuration, the
//! agent binary and the writer example, and the file sink's output split into sessions.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice_agent::file_sink::{self, Frame};

pub struct Scene {
    pub dir: tempfile::TempDir,
    pub logs: PathBuf,
    pub out: PathBuf,
    pub checkpoint: PathBuf,
    pub config: PathBuf,
}

impl Scene {
    /// A scratch directory with `logs/`, `out/`, and an `agent.json` of one flow named
    /// `kinesisStream: "s"` over `logs/PATTERN`, with `extra` flow keys (a JSON fragment).
    pub fn new(pattern: &str, extra: &str) -> Scene {
        let dir = tempfile::tempdir().expect("temporary directory");
        let logs = dir.path().join("logs");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&logs).unwrap();
        let checkpoint = dir.path().join("checkpoints");
        let config = dir.path().join("agent.json");
        let scene = Scene { logs, out, checkpoint, config, dir };
        scene.configure(pattern, extra);
        scene
    }

    pub fn configure(&self, pattern: &str, extra: &str) {
        let extra = if extra.is_empty() { String::new() } else { format!(", {extra}") };
        let text = format!(
            r#"{{"checkpointFile": {:?}, "flows": [{{"filePattern": {:?}, "kinesisStream": "s", "maxBufferAgeMillis": 1000{extra}}}]}}"#,
            self.checkpoint.display().to_string(),
            self.logs.join(pattern).display().to_string()
        );
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.logs.join(name)
    }

    pub fn sink_file(&self) -> PathBuf {
        self.out.join("kinesis-s.records")
    }

    /// Starts the agent in the background.
    pub fn start(&self, extra_args: &[&str]) -> Child {
        Command::new(agent_bin())
            .arg("--config")
            .arg(&self.config)
            .arg("--sink-file")
            .arg(&self.out)
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice-agent")
    }

    /// Runs `--once` to completion and returns its stderr.
    pub fn once(&self) -> String {
        let output = Command::new(agent_bin())
            .arg("--config")
            .arg(&self.config)
            .arg("--sink-file")
            .arg(&self.out)
            .arg("--once")
            .output()
            .expect("run sluice-agent --once");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "sluice-agent --once failed: {stderr}");
        stderr
    }

    /// The records shipped so far, as strings, all sessions together.
    pub fn records(&self) -> Vec<String> {
        sessions(&self.sink_file()).into_iter().flatten().collect()
    }

    /// Waits until at least `count` records were shipped.
    pub fn wait_records(&self, count: usize) -> Vec<String> {
        wait_for(&format!("{count} records"), || {
            let records = self.records();
            (records.len() >= count).then_some(records)
        })
    }
}

pub fn agent_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluice-agent")
}

/// The `rotating_writer` example, which `cargo test` builds next to the test binaries.
pub fn writer_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().and_then(Path::parent).unwrap();
    let path = debug.join("examples/rotating_writer");
    assert!(path.exists(), "{} is missing: build it with cargo test (or cargo build --examples)", path.display());
    path
}

/// The file sink's records, one list per session (agent run), torn tails excluded.
pub fn sessions(path: &Path) -> Vec<Vec<String>> {
    let mut sessions: Vec<Vec<String>> = Vec::new();
    if !path.exists() {
        return sessions;
    }
    file_sink::scan_file(path, |frame| match frame {
        Frame::Session { .. } => sessions.push(Vec::new()),
        Frame::Record { data, .. } => sessions
            .last_mut()
            .expect("a session frame comes first")
            .push(String::from_utf8(data).expect("UTF-8 records")),
    })
    .expect("read the sink file");
    sessions
}

/// Polls `check` until it returns something; fails after a minute (a correctness wait, not a
/// speed assertion: the agent normally answers within milliseconds).
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn signal(child: &Child, signal: i32) {
    // SAFETY: sending a signal to our own child process, by its pid.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill failed");
}

/// Stops the agent with SIGTERM and waits for it; returns its stderr.
pub fn stop(child: Child) -> String {
    signal(&child, libc::SIGTERM);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "agent exit {:?}: {stderr}", output.status);
    stderr
}

pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The real `sluiced`: `$SLUICED`, or the one built next to the agent (`cargo build
/// --workspace`, which CI runs before the tests, builds it; alone: `cargo build -p
/// sluice-server --bin sluiced`).
pub fn sluiced_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SLUICED") {
        return PathBuf::from(path);
    }
    let path = Path::new(agent_bin()).with_file_name("sluiced");
    assert!(path.exists(), "{} is missing: build it with `cargo build -p sluice-server --bin sluiced`", path.display());
    path
}

/// A real `sluiced` child process on a fresh data directory and two free ports, which it keeps
/// across restarts (the agent's configuration names the port).
pub struct Sluiced {
    child: Option<Child>,
    pub data: PathBuf,
    pub native: std::net::SocketAddr,
    pub http: std::net::SocketAddr,
    limits: &'static str,
    /// More arguments (e.g. `--firehose-config FILE`).
    extra: Vec<String>,
}

use sluice_testkit::free_port;

impl Sluiced {
    /// Starts sluiced (`limits`: `kinesis` for AWS's quotas, `unlimited`) with its data in `dir`.
    pub fn start(dir: &Path, limits: &'static str) -> Sluiced {
        Sluiced::start_with(dir, limits, &[])
    }

    /// [`Sluiced::start`] with more arguments.
    pub fn start_with(dir: &Path, limits: &'static str, extra: &[&str]) -> Sluiced {
        let mut sluiced = Sluiced {
            child: None,
            data: dir.join("sluiced-data"),
            native: ([127, 0, 0, 1], free_port()).into(),
            http: ([127, 0, 0, 1], free_port()).into(),
            limits,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        sluiced.spawn();
        sluiced
    }

    /// Starts the process and waits until both ports answer. After a SIGKILL the old ports are
    /// held by TIME_WAIT connections for a minute; a start refused for that is retried on new
    /// ports (the agent reaches sluiced through a [`Forwarder`]).
    pub fn spawn(&mut self) {
        for attempt in 0..20 {
            if attempt > 0 {
                self.native = ([127, 0, 0, 1], free_port()).into();
                self.http = ([127, 0, 0, 1], free_port()).into();
            }
            let mut child = Command::new(sluiced_bin())
                .arg("--data-dir")
                .arg(&self.data)
                .args(["--listen", &self.native.to_string(), "--http-listen", &self.http.to_string()])
                .args(["--metrics-listen", "127.0.0.1:0"])
                .args(["--cores", "1", "--limits", self.limits, "--log-level", "warn"])
                .args(&self.extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start sluiced");
            let start = Instant::now();
            loop {
                if std::net::TcpStream::connect(self.native).is_ok() && std::net::TcpStream::connect(self.http).is_ok()
                {
                    self.child = Some(child);
                    return;
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(60), "sluiced did not start listening");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("sluiced could not start on {} / {}", self.native, self.http);
    }

    /// SIGKILL: sluiced dies between any two instructions.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn native_endpoint(&self) -> String {
        format!("sluice://{}", self.native)
    }

    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http)
    }
}

impl Drop for Sluiced {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `work` on a glommio executor (sluice-client is glommio-based).
pub fn on_glommio<T: Send + 'static, Fut: std::future::Future<Output = T> + 'static>(
    work: impl FnOnce() -> Fut + Send + 'static,
) -> T {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(2 << 20)
        .spawn(work)
        .expect("spawn executor")
        .join()
        .expect("executor")
}

/// Creates a stream of `shards` shards on sluiced's native port.
pub fn create_stream(native: std::net::SocketAddr, name: &str, shards: i32) {
    let endpoint = sluice_client::transport::Endpoint::Native(native.to_string());
    create_stream_via(endpoint, sluice_client::ConnectOptions::default(), name, shards);
}

/// Creates a stream through any endpoint, with `options` (credentials, TLS).
pub fn create_stream_via(
    endpoint: sluice_client::transport::Endpoint,
    options: sluice_client::ConnectOptions,
    name: &str,
    shards: i32,
) {
    let name = name.to_owned();
    on_glommio(move || async move {
        let transport = sluice_client::transport::Transport::with_options(endpoint, options);
        let create = sluice_client::CreateStreamInput {
            stream_name: name.clone(),
            shard_count: Some(shards),
            ..Default::default()
        };
        transport.call(&create).await.expect("create stream");
    })
}

/// Every record of a stream, per shard in sequence order: (shard id, data).
pub fn read_stream(native: std::net::SocketAddr, name: &str) -> Vec<(String, Vec<u8>)> {
    let endpoint = sluice_client::transport::Endpoint::Native(native.to_string());
    read_stream_via(endpoint, sluice_client::ConnectOptions::default(), name)
}

/// [`read_stream`] through any endpoint, with `options` (credentials, TLS).
pub fn read_stream_via(
    endpoint: sluice_client::transport::Endpoint,
    options: sluice_client::ConnectOptions,
    name: &str,
) -> Vec<(String, Vec<u8>)> {
    use sluice_client::*;
    let name = name.to_owned();
    on_glommio(move || async move {
        let client = transport::Transport::with_options(endpoint, options);
        let shards = client
            .call(&ListShardsInput { stream_name: Some(name.clone()), ..Default::default() })
            .await
            .expect("list shards")
            .shards;
        let mut all = Vec::new();
        for shard in shards {
            let iterator = client
                .call(&GetShardIteratorInput {
                    stream_name: Some(name.clone()),
                    stream_arn: None,
                    shard_id: shard.shard_id.clone(),
                    shard_iterator_type: ShardIteratorType::TrimHorizon,
                    starting_sequence_number: None,
                    timestamp: None,
                })
                .await
                .expect("shard iterator")
                .shard_iterator;
            let mut iterator = iterator.expect("an open shard has an iterator");
            loop {
                let page = client
                    .call(&GetRecordsInput { shard_iterator: iterator.clone(), ..Default::default() })
                    .await
                    .expect("get records");
                let empty = page.records.is_empty();
                for record in page.records {
                    all.push((shard.shard_id.to_string(), record.data.to_vec()));
                }
                match page.next_shard_iterator {
                    Some(next) if !(empty && page.millis_behind_latest.unwrap_or(0) == 0) => iterator = next,
                    _ => break,
                }
            }
        }
        all
    })
}

/// Every line of every delivered object under `dir` (temporary files excluded), counted.
/// (The same walk as `lines_under` in `server/tests/firehose.rs`: test helpers cannot be shared
/// between the two crates' test binaries without a crate of their own.)
pub fn delivered_lines(dir: &Path) -> std::collections::BTreeMap<String, u32> {
    let mut lines = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.to_string_lossy().ends_with(".tmp") {
                for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
                    *lines.entry(line.to_owned()).or_insert(0) += 1;
                }
            }
        }
    }
    lines
}

/// A TCP forwarder on a fixed port to wherever sluiced listens now: sluiced comes back from a
/// SIGKILL on new ports (its old port stays held by TIME_WAIT connections for a minute, which
/// its start-up probe refuses), while the agent's configuration names this one.
pub struct Forwarder {
    pub addr: std::net::SocketAddr,
    pub upstream: std::sync::Arc<std::sync::Mutex<std::net::SocketAddr>>,
}

impl Forwarder {
    pub fn start(upstream: std::net::SocketAddr) -> Forwarder {
        use std::net::{Shutdown, TcpListener, TcpStream};
        let listener = TcpListener::bind(("127.0.0.1", free_port())).unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = std::sync::Arc::new(std::sync::Mutex::new(upstream));
        let target = std::sync::Arc::clone(&upstream);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let to = *target.lock().unwrap();
                let Ok(server) = TcpStream::connect(to) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                for (mut from, mut into) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = into.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Forwarder { addr, upstream }
    }

    pub fn point_to(&self, upstream: std::net::SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }
}
