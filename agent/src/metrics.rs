//! Counters per flow, the status file, and the status line.
//!
//! Every counter only grows, so a reader can take differences over time (rates). The status
//! file (JSON, rewritten atomically every [`crate::limits::STATUS_FILE_INTERVAL`]) is what
//! `sluice-agent status` prints; SIGUSR1 and `log.statusReportingPeriodSeconds` print the same
//! figures as one line in the log.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A status file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot read status file {path}: {source} (is sluice-agent running with this configuration?)")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("status file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The counters of one flow.
#[derive(Debug, Default)]
pub struct FlowMetrics {
    /// Records (lines, or multi-line records) parsed from files.
    pub lines_read: AtomicU64,
    /// Bytes consumed from files (including skipped headers and discarded bytes).
    pub bytes_read: AtomicU64,
    /// Records handed to the sink.
    pub records_submitted: AtomicU64,
    /// Records the sink acknowledged as delivered.
    pub records_sent: AtomicU64,
    /// Bytes of data in delivered records.
    pub bytes_sent: AtomicU64,
    /// Records the sink gave up on for good.
    pub records_failed: AtomicU64,
    /// Records LOGTOJSON did not match (not sent, as in the AWS agent).
    pub records_skipped: AtomicU64,
    /// Records cut to the destination's record size with `truncatedRecordTerminator`.
    pub records_truncated: AtomicU64,
    /// Records a processing option failed on (sent unprocessed).
    pub processing_errors: AtomicU64,
    /// Throttling errors the sink met on the way (from the sink's completions).
    pub throttles: AtomicU64,
    /// Times the flow stopped reading because its window of records in flight was full.
    pub backpressure_stalls: AtomicU64,
    /// Files whose content was cut before it was read (truncated with no copy found).
    pub bytes_lost_to_truncation: AtomicU64,
    /// Per-file figures, replaced by the flow thread after each pass.
    pub files: Mutex<Vec<FileStatus>>,
}

/// One tracked file in the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileStatus {
    pub path: PathBuf,
    pub size: u64,
    /// Offset read up to.
    pub read_offset: u64,
    /// Offset acknowledged up to.
    pub acked_offset: u64,
    /// Bytes behind the end of the file: `size - acked_offset`.
    pub lag_bytes: u64,
}

/// One flow in the status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowStatus {
    pub id: String,
    pub lines_read: u64,
    pub bytes_read: u64,
    pub records_submitted: u64,
    pub records_sent: u64,
    pub bytes_sent: u64,
    pub records_failed: u64,
    pub records_skipped: u64,
    pub records_truncated: u64,
    pub processing_errors: u64,
    pub throttles: u64,
    pub backpressure_stalls: u64,
    pub bytes_lost_to_truncation: u64,
    pub lag_bytes: u64,
    pub files: Vec<FileStatus>,
}

/// The whole status file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub pid: u32,
    pub started_unix_ms: u64,
    pub updated_unix_ms: u64,
    pub sink: String,
    pub flows: Vec<FlowStatus>,
}

impl FlowMetrics {
    /// A snapshot of the counters.
    pub fn snapshot(&self, id: &str) -> FlowStatus {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let files = self.files.lock().expect("not poisoned").clone();
        FlowStatus {
            id: id.to_string(),
            lines_read: get(&self.lines_read),
            bytes_read: get(&self.bytes_read),
            records_submitted: get(&self.records_submitted),
            records_sent: get(&self.records_sent),
            bytes_sent: get(&self.bytes_sent),
            records_failed: get(&self.records_failed),
            records_skipped: get(&self.records_skipped),
            records_truncated: get(&self.records_truncated),
            processing_errors: get(&self.processing_errors),
            throttles: get(&self.throttles),
            backpressure_stalls: get(&self.backpressure_stalls),
            bytes_lost_to_truncation: get(&self.bytes_lost_to_truncation),
            lag_bytes: files.iter().map(|f| f.lag_bytes).sum(),
            files,
        }
    }
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Status {
    /// One line per flow, for the log and SIGUSR1.
    pub fn lines(&self) -> Vec<String> {
        self.flows
            .iter()
            .map(|f| {
                format!(
                    "flow {}: lines read {}, records sent {} ({} bytes), in flight {}, skipped {}, failed {}, throttles {}, stalls {}, lag {} bytes in {} files",
                    f.id,
                    f.lines_read,
                    f.records_sent,
                    f.bytes_sent,
                    f.records_submitted.saturating_sub(f.records_sent + f.records_failed),
                    f.records_skipped,
                    f.records_failed,
                    f.throttles,
                    f.backpressure_stalls,
                    f.lag_bytes,
                    f.files.len()
                )
            })
            .collect()
    }

    /// Writes the status file atomically.
    pub fn store(&self, path: &Path) -> std::io::Result<()> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(self).expect("status serializes"))?;
        std::fs::rename(&temporary, path)
    }

    /// Reads a status file.
    pub fn load(path: &Path) -> Result<Status, StatusError> {
        let bytes = std::fs::read(path).map_err(|source| StatusError::Read { path: path.to_owned(), source })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| StatusError::Invalid { path: path.to_owned(), message: e.to_string() })
    }
}
