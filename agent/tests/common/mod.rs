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
