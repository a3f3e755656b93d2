//! Starts the real `sluiced` binary as a child process on a free port and a fresh data
//! directory on disk, for the integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The AWS-compatible HTTP API's address.
    pub http_addr: SocketAddr,
    /// The metrics port's address (`/metrics`, `/health/*`).
    pub metrics_addr: SocketAddr,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    limits: &'static str,
    cores: usize,
    extra_args: Vec<String>,
    /// The network namespace it runs in (`ip netns exec`), if not the test's own.
    namespace: Option<String>,
}

/// The `sluice` CLI next to `sluiced` (`cargo build -p sluice-client --bin sluice`, which the
/// workspace build makes), or `$SLUICE`.
pub fn sluice_bin() -> PathBuf {
    sibling_bin("SLUICE", "sluice", "cargo build -p sluice-client --bin sluice")
}

/// The log agent next to `sluiced` (the workspace build makes it), or `$SLUICE_AGENT`.
pub fn agent_bin() -> PathBuf {
    sibling_bin("SLUICE_AGENT", "sluice-agent", "cargo build -p sluice-agent")
}

/// `$variable` if set, else the binary `name` next to `sluiced`, which `build` makes.
fn sibling_bin(variable: &str, name: &str, build: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_BIN_EXE_sluiced")).with_file_name(name);
    assert!(path.exists(), "{} is missing: build it with `{build}`", path.display());
    path
}

/// The ports of a daemon alone in a network namespace ([`Daemon::start_in_namespace`]).
pub const NAMESPACE_NATIVE_PORT: u16 = 4568;
pub const NAMESPACE_HTTP_PORT: u16 = 4567;
pub const NAMESPACE_METRICS_PORT: u16 = 9568;

/// The daemons' `--log-level`: `warn`, or `SLUICE_TEST_LOG_LEVEL` (`warn,raft=debug` shows
/// every election).
fn log_level() -> String {
    std::env::var("SLUICE_TEST_LOG_LEVEL").unwrap_or_else(|_| "warn".to_owned())
}

/// Start-ups to try before giving up, each on new ports (see `Daemon::spawn`).
const START_ATTEMPTS_MAX: usize = 5;

/// Copies a child's stderr to ours line by line (so test logs show it, as when inherited) and
/// returns everything it wrote once it closes.
pub fn forward_stderr(child: &mut Child) -> std::thread::JoinHandle<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            all.push_str(&line);
            all.push('\n');
        }
        all
    })
}

pub use sluice_testkit::free_port;

impl Daemon {
    /// The value `sluiced` was given for `flag` (`--peers`, say), if any.
    pub fn flag(&self, flag: &str) -> Option<&str> {
        let at = self.extra_args.iter().position(|arg| arg == flag)?;
        self.extra_args.get(at + 1).map(String::as_str)
    }

    /// Starts `sluiced` with the AWS quotas (`limits = "kinesis"`) or none (`"unlimited"`).
    pub fn start(limits: &'static str, cores: usize) -> Daemon {
        Daemon::start_with(limits, cores, &[])
    }

    /// Like [`Daemon::start`], with more `sluiced` flags.
    pub fn start_with(limits: &'static str, cores: usize, extra_args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let data_dir = dir.path().join("data");
        let unbound: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let extra_args = extra_args.iter().map(|arg| arg.to_string()).collect();
        let mut daemon = Daemon {
            child: None,
            addr: unbound,
            http_addr: unbound,
            metrics_addr: unbound,
            data_dir,
            _dir: Some(dir),
            limits,
            cores,
            extra_args,
            namespace: None,
        };
        daemon.spawn();
        daemon
    }

    /// Starts `sluiced` in the network namespace `namespace`, listening on `ip` (an address
    /// of that namespace the test reaches) at fixed ports: it has the namespace to itself, so
    /// nothing else can take them. Non-loopback, so `--insecure` is passed.
    pub fn start_in_namespace(
        namespace: &str,
        ip: std::net::Ipv4Addr,
        limits: &'static str,
        cores: usize,
        extra_args: &[&str],
    ) -> Daemon {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let mut extra_args: Vec<String> = extra_args.iter().map(|arg| arg.to_string()).collect();
        extra_args.push("--insecure".into());
        let mut daemon = Daemon {
            child: None,
            addr: SocketAddr::from((ip, NAMESPACE_NATIVE_PORT)),
            http_addr: SocketAddr::from((ip, NAMESPACE_HTTP_PORT)),
            metrics_addr: SocketAddr::from((ip, NAMESPACE_METRICS_PORT)),
            data_dir: dir.path().join("data"),
            _dir: Some(dir),
            limits,
            cores,
            extra_args,
            namespace: Some(namespace.into()),
        };
        daemon.restart_on_same_addresses();
        daemon
    }

    /// Like [`Daemon::start_with`], listening on the given native and HTTP addresses (which a
    /// test chose beforehand, e.g. to name them in other daemons' flags).
    pub fn start_on(
        limits: &'static str,
        cores: usize,
        extra_args: &[&str],
        addr: SocketAddr,
        http_addr: SocketAddr,
    ) -> Daemon {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let data_dir = dir.path().join("data");
        let extra_args = extra_args.iter().map(|arg| arg.to_string()).collect();
        let mut daemon = Daemon {
            child: None,
            addr,
            http_addr,
            metrics_addr: addr,
            data_dir,
            _dir: Some(dir),
            limits,
            cores,
            extra_args,
            namespace: None,
        };
        daemon.spawn_on(Some((addr, http_addr)));
        daemon
    }

    /// Starts `sluiced` on two free ports. A free port can be taken by another test between
    /// our probe and the daemon's bind; the daemon then refuses to start (it never shares an
    /// address: `server/src/ownership.rs`), and we retry on new ports.
    fn spawn(&mut self) {
        self.spawn_on(None)
    }

    fn spawn_on(&mut self, ports: Option<(SocketAddr, SocketAddr)>) {
        for _ in 0..START_ATTEMPTS_MAX {
            (self.addr, self.http_addr) = ports.unwrap_or_else(|| {
                (SocketAddr::from(([127, 0, 0, 1], free_port())), SocketAddr::from(([127, 0, 0, 1], free_port())))
            });
            if self.namespace.is_none() {
                self.metrics_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            }
            // `ip netns exec` enters the namespace and then execs sluiced: the child's pid is
            // sluiced's, so a kill reaches it.
            let mut command = match &self.namespace {
                None => Command::new(env!("CARGO_BIN_EXE_sluiced")),
                Some(namespace) => {
                    let mut command = Command::new("ip");
                    command.args(["netns", "exec", namespace, env!("CARGO_BIN_EXE_sluiced")]);
                    command
                }
            };
            let mut child = command
                .arg("--data-dir")
                .arg(&self.data_dir)
                .arg("--listen")
                .arg(self.addr.to_string())
                .arg("--http-listen")
                .arg(self.http_addr.to_string())
                .arg("--metrics-listen")
                .arg(self.metrics_addr.to_string())
                .arg("--cores")
                .arg(self.cores.to_string())
                .arg("--limits")
                .arg(self.limits)
                .arg("--log-level")
                .arg(log_level())
                .args(&self.extra_args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn sluiced");
            let stderr = forward_stderr(&mut child);
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut exited = None;
            // Ready once the daemon says so on its metrics port, which it alone can hold (bound
            // without SO_REUSEPORT) and does hold (asked of this child's sockets): connecting to
            // the two ports would also succeed when another process took one of them, while this
            // one exits for that reason (it did, once, in CI).
            let pid = child.id();
            let ready = || {
                sluice_server::ownership::listens_on(pid, self.metrics_addr)
                    && try_http_get(self.metrics_addr, "/health/ready").is_some_and(|(status, _)| status == 200)
            };
            while !ready() {
                if let Some(status) = child.try_wait().unwrap() {
                    exited = Some(status);
                    break;
                }
                assert!(Instant::now() < deadline, "sluiced did not start listening on {}", self.addr);
                std::thread::sleep(Duration::from_millis(20));
            }
            let Some(status) = exited else {
                self.child = Some(child);
                return;
            };
            let output = stderr.join().expect("stderr reader");
            if !output.contains("already in use") && !output.contains("also listened on") {
                panic!("sluiced exited during start-up: {status}");
            }
        }
        panic!("sluiced found its ports taken {START_ATTEMPTS_MAX} times in a row");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// SIGTERM, and wait for a clean exit (status 0).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: sending a signal to our own child process.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().unwrap();
            assert!(status.success(), "sluiced exited with {status} after SIGTERM");
        }
    }

    /// SIGKILL: the process dies between any two instructions.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGKILL, then start again on the same data directory and the same ports, so clients
    /// that reconnect to the old address find the new process (tries for a few seconds while
    /// the kernel still holds the ports).
    pub fn kill_and_restart_same_ports(&mut self) {
        self.kill();
        for _ in 0..50 {
            if TcpListener::bind(self.addr).is_ok() && TcpListener::bind(self.http_addr).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (addr, http_addr) = (self.addr, self.http_addr);
        self.spawn_on(Some((addr, http_addr)));
    }

    /// Starts again on the same data directory and the same addresses, at once (no waiting for
    /// the old connections to go).
    pub fn restart_on_same_addresses(&mut self) {
        let (addr, http_addr) = (self.addr, self.http_addr);
        self.spawn_on(Some((addr, http_addr)));
    }

    /// Starts again on the same data directory (on a new port).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `work` on a glommio executor (the client is glommio-based, like the daemon) and returns
/// what it returns.
pub fn run<T, F, Fut>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(work)
        .expect("spawn executor")
        .join()
        .expect("test executor")
}

/// A small deterministic generator (xorshift64) for randomized tests: seeds make failures
/// reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One plain HTTP/1.0 GET of `path` at `addr` (the metrics port): the status and the body, or
/// None when the connection or the answer fails.
pub fn try_http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok())?;
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// [`try_http_get`], which must succeed.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_http_get(addr, path).unwrap_or_else(|| panic!("GET {path} at {addr} failed"))
}

/// The sum of a metric family's samples in a scrape of the metrics port at `addr` (one
/// plain HTTP/1.0 GET of `/metrics`).
pub fn scrape(addr: SocketAddr, family: &str) -> f64 {
    scrape_labelled(addr, family, "")
}

/// [`scrape`] of the samples whose labels include `label` (`name="value"`; "" for all).
pub fn scrape_labelled(addr: SocketAddr, family: &str, label: &str) -> f64 {
    let (_, text) = http_get(addr, "/metrics");
    let samples: Vec<f64> = text
        .lines()
        .filter(|line| line.strip_prefix(family).is_some_and(|rest| rest.starts_with(['{', ' '])))
        .filter(|line| line.contains(label))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("a sample: {line}")))
        .collect();
    assert!(!samples.is_empty(), "no {family} in the scrape: {text}");
    samples.iter().sum()
}

/// A CreateQueue of `name` reading `stream_arn` from its trim horizon, with a visibility
/// timeout of `visibility_timeout_seconds`, no dead-letter side, and `tags`.
pub fn queue_from_trim_horizon(
    name: &str,
    stream_arn: &sluice_client::StreamArn,
    visibility_timeout_seconds: i32,
    tags: Option<sluice_client::TagMap>,
) -> sluice_client::CreateQueueInput {
    use sluice_client::*;
    CreateQueueInput {
        queue_name: name.into(),
        stream_configuration_list: vec![QueueStreamConfiguration {
            stream_arn: stream_arn.clone(),
            starting_position: Some(QueueStartingPosition {
                r#type: QueueStartingPositionType::TrimHorizon,
                timestamp: None,
            }),
        }],
        queue_attributes: Some(QueueAttributes {
            visibility_timeout_seconds: Some(visibility_timeout_seconds),
            dead_letter_configuration: Some(DeadLetterConfiguration {
                target_type: TargetType::None,
                max_receive_count: None,
            }),
        }),
        tags,
    }
}
