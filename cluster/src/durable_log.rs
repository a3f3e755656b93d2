//! A replica's Raft log and hard state on disk, through the engine's storage seam (O_DIRECT
//! files through glommio in the daemon, the simulated disk in the simulation).
//!
//! Two files in the replica's directory: `raft.log`, the entries as checksummed frames
//! (`codec`), only ever appended to; and `raft.state`, the hard state (term, vote, commit),
//! replaced atomically. Durability follows the seam's contract: [`DurableLog::append`] only
//! writes; the entries are durable once [`DurableLog::sync`] returns, and the replica tells
//! Raft (and its peers) that it has them only after that.
//!
//! Recovery reads the whole log, keeps the valid frames, cuts the file after the last one (a
//! torn tail must not come back to life behind a later append) and syncs what it kept: bytes
//! that were written but never synced before a crash may still be there, and from now on the
//! replica vouches for them.
//!
//! Unfinished: this is a second log beside the core's journal. The design stores a shard
//! group's entries in the journal itself (one write of the data, one group commit for every
//! group on the core); see `docs/replication.md`.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use raft::eraftpb::{Entry, EntryType, HardState};
use sluice_engine::storage::{read_whole, write_atomic, IoBuffer, Storage, StorageFile};

use crate::codec::{self, HardStateRecord, LogDefect, LogEntry};
use crate::error::{ClusterError, Result};

pub const LOG_FILE: &str = "raft.log";
pub const HARD_STATE_FILE: &str = "raft.state";

/// What a replica's disk held when it opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The log from index 1, contiguous.
    pub entries: Vec<Entry>,
    pub hard_state: HardState,
}

pub struct DurableLog<S: Storage> {
    storage: S,
    dir: PathBuf,
    file: S::File,
    /// End of the last frame: where the next append goes.
    end_bytes: u64,
    /// The bytes from the last aligned offset before `end_bytes` to it: an O_DIRECT write
    /// starts on an aligned offset, so each append rewrites them ahead of its frames.
    tail: Vec<u8>,
}

impl<S: Storage> DurableLog<S> {
    /// Opens (creating if needed) the Raft files in `dir` and returns what they hold.
    pub async fn open(storage: S, dir: &Path) -> Result<(DurableLog<S>, Recovered)> {
        storage.prepare_dir(dir).await.map_err(ClusterError::io("prepare the raft directory"))?;
        let file = storage.open(&dir.join(LOG_FILE), true).await.map_err(ClusterError::io("open the raft log"))?;
        let size = file.size().await.map_err(ClusterError::io("size the raft log"))?;
        let size = usize::try_from(size).map_err(|_| ClusterError::Corrupt {
            file: LOG_FILE,
            offset: size,
            reason: "larger than memory".to_owned(),
        })?;
        let bytes = file.read_at(0, size).await.map_err(ClusterError::io("read the raft log"))?;
        if bytes.len() != size {
            return Err(ClusterError::Corrupt {
                file: LOG_FILE,
                offset: bytes.len() as u64,
                reason: format!("read {} of {size} bytes", bytes.len()),
            });
        }
        let decoded = codec::decode_log(&bytes);
        if let LogDefect::Gap { expected_max, actual } = decoded.stop {
            return Err(ClusterError::Corrupt {
                file: LOG_FILE,
                offset: decoded.valid_bytes as u64,
                reason: format!("entry {actual} follows a log that ends before {expected_max}"),
            });
        }
        // Unfinished: a checksum failure in the middle of the log (a flipped bit in a durable
        // frame) is taken for a torn tail here, and the frames after it are dropped; it must
        // be told apart (a durable watermark, as the engine's journal keeps) and stop the
        // replica instead, since a member that forgets entries it acknowledged breaks Raft.
        let valid_bytes = decoded.valid_bytes;
        if valid_bytes < size {
            file.truncate(valid_bytes as u64).await.map_err(ClusterError::io("cut the raft log's torn tail"))?;
        }
        file.fdatasync().await.map_err(ClusterError::io("sync the recovered raft log"))?;
        let alignment = file.alignment();
        let tail = bytes[valid_bytes - valid_bytes % alignment..valid_bytes].to_vec();
        let hard_state = match read_whole(&storage, &dir.join(HARD_STATE_FILE))
            .await
            .map_err(ClusterError::io("read the raft hard state"))?
        {
            Some(bytes) => {
                let record = codec::decode_hard_state(&bytes).map_err(|reason| ClusterError::Corrupt {
                    file: HARD_STATE_FILE,
                    offset: 0,
                    reason,
                })?;
                HardState { term: record.term, vote: record.vote, commit: record.commit, ..HardState::default() }
            }
            None => HardState::default(),
        };
        // The log's creation and the last hard state's rename may not be durable yet.
        storage.sync_dir(dir).await.map_err(ClusterError::io("sync the raft directory"))?;
        let last_index = decoded.entries.len() as u64;
        if hard_state.commit > last_index {
            return Err(ClusterError::Corrupt {
                file: HARD_STATE_FILE,
                offset: 0,
                reason: format!("commit {} is past the log's last entry {last_index}", hard_state.commit),
            });
        }
        let log = DurableLog { storage, dir: dir.to_path_buf(), file, end_bytes: valid_bytes as u64, tail };
        let entries = decoded.entries.into_iter().map(raft_entry).collect();
        Ok((log, Recovered { entries, hard_state }))
    }

    /// Writes `entries` after the log's end (not yet durable: see [`DurableLog::sync`]).
    /// Entries whose index is already in the log replace it from there on (`codec`).
    pub async fn append(&mut self, entries: &[Entry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut frames = std::mem::take(&mut self.tail);
        let tail_bytes = frames.len();
        let entries: Vec<LogEntry> = entries.iter().map(log_entry).collect();
        frames.reserve(entries.iter().map(codec::frame_bytes).sum());
        for entry in &entries {
            codec::encode_entry(entry, &mut frames);
        }
        let alignment = self.file.alignment();
        let padded = frames.len().div_ceil(alignment) * alignment;
        let mut buffer = self.file.alloc_buffer(padded);
        let bytes = buffer.bytes_mut();
        bytes[..frames.len()].copy_from_slice(&frames);
        // Zeros after the last frame read as the end of the log.
        bytes[frames.len()..].fill(0);
        let offset = self.end_bytes - tail_bytes as u64;
        let written = self.file.write_at(Rc::new(buffer), offset).await;
        let written = match written {
            Ok(written) => written,
            Err(error) => {
                // The tail is still what the file holds before `end_bytes`; a replica stops on
                // an error anyway, but keep the value honest.
                frames.truncate(tail_bytes);
                self.tail = frames;
                return Err(ClusterError::Io { what: "append to the raft log", source: error });
            }
        };
        if written != padded {
            frames.truncate(tail_bytes);
            self.tail = frames;
            return Err(ClusterError::Io {
                what: "append to the raft log",
                source: std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write: {written} of {padded} bytes"),
                ),
            });
        }
        self.end_bytes = offset + frames.len() as u64;
        let keep = frames.len() % alignment;
        self.tail = frames.split_off(frames.len() - keep);
        Ok(())
    }

    /// Makes every entry appended so far durable.
    pub async fn sync(&self) -> Result<()> {
        self.file.fdatasync().await.map_err(ClusterError::io("sync the raft log"))
    }

    /// Replaces the hard state, durably (the vote must be on disk before the vote message
    /// leaves). Call after [`DurableLog::sync`] of the entries its commit covers.
    pub async fn save_hard_state(&self, hard_state: &HardState) -> Result<()> {
        let record = HardStateRecord { term: hard_state.term, vote: hard_state.vote, commit: hard_state.commit };
        let bytes = codec::encode_hard_state(&record);
        write_atomic(&self.storage, &self.dir.join(HARD_STATE_FILE), &bytes)
            .await
            .map_err(ClusterError::io("write the raft hard state"))
    }
}

fn log_entry(entry: &Entry) -> LogEntry {
    let entry_type = match entry.entry_type {
        EntryType::EntryNormal => 0,
        EntryType::EntryConfChange => 1,
        EntryType::EntryConfChangeV2 => 2,
    };
    // Bytes clones share the buffer: no copy of the data.
    LogEntry {
        term: entry.term,
        index: entry.index,
        entry_type,
        context: entry.context.clone(),
        data: entry.data.clone(),
    }
}

fn raft_entry(entry: LogEntry) -> Entry {
    let entry_type = match entry.entry_type {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        _ => EntryType::EntryConfChangeV2,
    };
    Entry {
        entry_type,
        term: entry.term,
        index: entry.index,
        context: entry.context,
        data: entry.data,
        ..Entry::default()
    }
}
