//! The checkpoint file: per flow, each tracked file's identity and the offset up to which
//! its records were acknowledged by the sink.
//!
//! The file is JSON (`docs/agent.md` shows it), written whole and atomically: to a temporary
//! file in the same directory, fsync'd, renamed over the old one, and the directory fsync'd.
//! A crash leaves either the old or the new checkpoint, never a torn one. Offsets in it only
//! move past records the sink acknowledged, so after a crash tailing resumes at the last
//! acknowledged record (at-least-once).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::identity::{Fingerprint, Inode};
use crate::limits;

/// The format version written in the file.
pub const CHECKPOINT_VERSION: u32 = 1;

/// A checkpoint file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write checkpoint file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("checkpoint file {path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{path} is the Kinesis Agent's SQLite checkpoint database, not a sluice-agent checkpoint file; point checkpointFile elsewhere")]
    Sqlite { path: PathBuf },
    #[error("checkpoint file {path} is not valid: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// One tracked file of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileCheckpoint {
    /// Where the file was last seen (informational: files are found by identity).
    pub path: PathBuf,
    pub inode: Inode,
    pub fingerprint: Fingerprint,
    /// Every byte before this offset was acknowledged (or skipped).
    pub offset: u64,
    /// When the agent last saw the file (milliseconds since the Unix epoch), for
    /// `checkpointTimeToLiveDays`.
    pub seen_unix_ms: u64,
}

/// One flow's checkpoint: its files, oldest first (the order they are read in).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowCheckpoint {
    pub files: Vec<FileCheckpoint>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoints {
    pub version: u32,
    /// By flow id (`kinesis:STREAM:PATTERN`, `fh:STREAM:PATTERN`).
    pub flows: BTreeMap<String, FlowCheckpoint>,
}

impl Checkpoints {
    /// Decodes the bytes of a checkpoint file.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Checkpoints, CheckpointError> {
        if bytes.starts_with(b"SQLite format 3\0") {
            return Err(CheckpointError::Sqlite { path: path.to_owned() });
        }
        let checkpoints: Checkpoints = serde_json::from_slice(bytes)
            .map_err(|e| CheckpointError::Corrupt { path: path.to_owned(), message: e.to_string() })?;
        if checkpoints.version != CHECKPOINT_VERSION {
            return Err(CheckpointError::Corrupt {
                path: path.to_owned(),
                message: format!("version {} (this agent writes version {CHECKPOINT_VERSION})", checkpoints.version),
            });
        }
        Ok(checkpoints)
    }

    /// Reads the checkpoint file; a missing file is an empty checkpoint.
    pub fn load(path: &Path) -> Result<Checkpoints, CheckpointError> {
        let read = |source| CheckpointError::Read { path: path.to_owned(), source };
        let len = match fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Checkpoints { version: CHECKPOINT_VERSION, flows: BTreeMap::new() })
            }
            Err(e) => return Err(read(e)),
        };
        if len > limits::CHECKPOINT_FILE_BYTES_MAX {
            return Err(CheckpointError::TooLarge { path: path.to_owned(), max: limits::CHECKPOINT_FILE_BYTES_MAX });
        }
        let bytes = fs::read(path).map_err(read)?;
        Checkpoints::decode(&bytes, path)
    }

    /// Writes the checkpoint file atomically (see the module docs).
    pub fn store(&self, path: &Path) -> Result<(), CheckpointError> {
        let write = |source| CheckpointError::Write { path: path.to_owned(), source };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(write)?;
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let bytes = serde_json::to_vec(self).expect("checkpoints serialize");
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&temporary).map_err(write)?;
        file.write_all(&bytes).map_err(write)?;
        file.sync_data().map_err(write)?;
        drop(file);
        fs::rename(&temporary, path).map_err(write)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(write)?;
        Ok(())
    }
}

/// The checkpoint file shared by all flows, and the thread that writes it.
///
/// Flows publish their checkpoint with [`CheckpointStore::update`] and get a generation
/// number; the writer thread writes the newest state at most every
/// [`limits::CHECKPOINT_INTERVAL`] and then publishes the generation it made durable
/// ([`CheckpointStore::durable_generation`]) and wakes the flows. A failed write is logged and
/// retried; meanwhile the flows' windows fill up and they stop reading.
pub struct CheckpointStore {
    path: PathBuf,
    ttl: std::time::Duration,
    state: std::sync::Mutex<StoreState>,
    changed: std::sync::Condvar,
    durable: std::sync::atomic::AtomicU64,
    wakes: std::sync::Mutex<Vec<std::sync::Arc<crate::watch::Wake>>>,
}

struct StoreState {
    checkpoints: Checkpoints,
    generation: u64,
    stop: bool,
}

impl CheckpointStore {
    /// Loads the checkpoint file (a missing one is empty).
    pub fn open(path: &Path, ttl: std::time::Duration) -> Result<std::sync::Arc<CheckpointStore>, CheckpointError> {
        let checkpoints = Checkpoints::load(path)?;
        Ok(std::sync::Arc::new(CheckpointStore {
            path: path.to_owned(),
            ttl,
            state: std::sync::Mutex::new(StoreState { checkpoints, generation: 0, stop: false }),
            changed: std::sync::Condvar::new(),
            durable: std::sync::atomic::AtomicU64::new(0),
            wakes: std::sync::Mutex::new(Vec::new()),
        }))
    }

    /// `checkpointTimeToLiveDays`.
    pub fn ttl(&self) -> std::time::Duration {
        self.ttl
    }

    /// The checkpoint of one flow as loaded (before any update).
    pub fn flow(&self, id: &str) -> Option<FlowCheckpoint> {
        self.state.lock().expect("not poisoned").checkpoints.flows.get(id).cloned()
    }

    /// Flows to wake when a checkpoint becomes durable.
    pub fn register(&self, wake: std::sync::Arc<crate::watch::Wake>) {
        self.wakes.lock().expect("not poisoned").push(wake);
    }

    /// Replaces one flow's checkpoint; returns the generation that will cover it.
    pub fn update(&self, id: &str, flow: FlowCheckpoint) -> u64 {
        let mut state = self.state.lock().expect("not poisoned");
        state.checkpoints.flows.insert(id.to_string(), flow);
        state.generation += 1;
        self.changed.notify_one();
        state.generation
    }

    /// The newest generation written to disk.
    pub fn durable_generation(&self) -> u64 {
        self.durable.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Writes until [`CheckpointStore::stop`] is called, then writes the last state and
    /// returns. Run it on its own thread.
    pub fn run_writer(&self) {
        let mut last_write = std::time::Instant::now() - limits::CHECKPOINT_INTERVAL;
        loop {
            let (checkpoints, generation, stop) = {
                let mut state = self.state.lock().expect("not poisoned");
                while state.generation == self.durable_generation() && !state.stop {
                    state = self.changed.wait(state).expect("not poisoned");
                }
                (state.checkpoints.clone(), state.generation, state.stop)
            };
            if generation != self.durable_generation() {
                let wait = limits::CHECKPOINT_INTERVAL.saturating_sub(last_write.elapsed());
                if !wait.is_zero() && !stop {
                    std::thread::sleep(wait);
                    continue;
                }
                last_write = std::time::Instant::now();
                let mut checkpoints = checkpoints;
                checkpoints.version = CHECKPOINT_VERSION;
                match checkpoints.store(&self.path) {
                    Ok(()) => {
                        self.durable.store(generation, std::sync::atomic::Ordering::Release);
                        for wake in self.wakes.lock().expect("not poisoned").iter() {
                            wake.wake(false);
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "checkpoint write failed; retrying (flows stop reading when their windows fill)");
                        if stop {
                            return;
                        }
                        std::thread::sleep(limits::CHECKPOINT_INTERVAL);
                    }
                }
            }
            if stop {
                return;
            }
        }
    }

    /// Asks the writer to write what it has and return.
    pub fn stop(&self) {
        let mut state = self.state.lock().expect("not poisoned");
        state.stop = true;
        self.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/checkpoints");
        let mut checkpoints = Checkpoints::load(&path).unwrap();
        assert!(checkpoints.flows.is_empty());
        checkpoints.flows.insert(
            "kinesis:s:/tmp/a*".into(),
            FlowCheckpoint {
                files: vec![FileCheckpoint {
                    path: "/tmp/a".into(),
                    inode: Inode { dev: 1, ino: 2 },
                    fingerprint: Fingerprint { len: 3, hash: 4 },
                    offset: 5,
                    seen_unix_ms: 6,
                }],
            },
        );
        checkpoints.store(&path).unwrap();
        assert_eq!(Checkpoints::load(&path).unwrap(), checkpoints);

        std::fs::write(&path, b"SQLite format 3\0rest").unwrap();
        assert!(matches!(Checkpoints::load(&path), Err(CheckpointError::Sqlite { .. })));
        std::fs::write(&path, b"{\"version\":1,\"flows\":{").unwrap();
        assert!(matches!(Checkpoints::load(&path), Err(CheckpointError::Corrupt { .. })));
        std::fs::write(&path, b"{\"version\":9,\"flows\":{}}").unwrap();
        assert!(matches!(Checkpoints::load(&path), Err(CheckpointError::Corrupt { .. })));
    }
}
