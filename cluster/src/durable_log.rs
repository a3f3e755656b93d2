//! A replica's Raft log and hard state on disk, through the engine's storage seam (O_DIRECT
//! files through glommio in the daemon, the simulated disk in the simulation).
//!
//! Two files in the replica's directory: `raft.log`, the entries as checksummed frames
//! (`codec`), only ever appended to; and `raft.state`, the hard state (term, vote, commit),
//! replaced atomically. Durability follows the seam's contract: [`DurableLog::append`] only
//! writes; the entries are durable once [`DurableLog::sync`] returns, and the replica tells
//! Raft (and its peers) that it has them only after that.
//!
//! Recovery reads the whole log in chunks, keeps the valid frames, cuts the file after the
//! last one (a torn tail must not come back to life behind a later append) and syncs what it
//! kept: bytes that were written but never synced before a crash may still be there, and from
//! now on the replica vouches for them. What stays in memory is bounded (`log_store`): older
//! entries are read back from the file where the store says each is ([`DurableLog::read`]).
//!
//! Unfinished: this is a second log beside the core's journal. The design stores a shard
//! group's entries in the journal itself (one write of the data, one group commit for every
//! group on the core); see `docs/replication.md`.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use raft::eraftpb::{ConfState, Entry, EntryType, HardState};
use sluice_engine::storage::{read_whole, write_atomic, IoBuffer, Storage, StorageFile};

use crate::codec::{self, HardStateRecord, LogDefect, LogEntry, FRAME_HEADER_BYTES};
use crate::error::{ClusterError, Result};
use crate::limits::{ENTRY_PAYLOAD_BYTES_MAX, LOG_READ_CHUNK_BYTES};
use crate::log_store::LogStore;

pub const LOG_FILE: &str = "raft.log";
pub const HARD_STATE_FILE: &str = "raft.state";

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

fn corrupt(file: &'static str, offset: u64, reason: String) -> ClusterError {
    ClusterError::Corrupt { file, offset, reason }
}

impl<S: Storage> DurableLog<S> {
    /// Opens (creating if needed) the Raft files in `dir` and returns what they hold, as the
    /// store raft-rs reads: the whole log's places and terms, and in memory the entries after
    /// the stored commit plus the newest up to `cache_bytes_max`. The log is read in chunks
    /// of `limits::LOG_READ_CHUNK_BYTES`, never whole.
    pub async fn open(
        storage: S,
        dir: &Path,
        conf_state: ConfState,
        cache_bytes_max: usize,
    ) -> Result<(DurableLog<S>, LogStore)> {
        storage.prepare_dir(dir).await.map_err(ClusterError::io("prepare the raft directory"))?;
        let hard_state = match read_whole(&storage, &dir.join(HARD_STATE_FILE))
            .await
            .map_err(ClusterError::io("read the raft hard state"))?
        {
            Some(bytes) => {
                let record = codec::decode_hard_state(&bytes).map_err(|reason| corrupt(HARD_STATE_FILE, 0, reason))?;
                HardState { term: record.term, vote: record.vote, commit: record.commit, ..HardState::default() }
            }
            None => HardState::default(),
        };
        let commit = hard_state.commit;
        let store = LogStore::new(hard_state, conf_state, Vec::new(), Vec::new(), Default::default(), cache_bytes_max);
        let file = storage.open(&dir.join(LOG_FILE), true).await.map_err(ClusterError::io("open the raft log"))?;
        let size = file.size().await.map_err(ClusterError::io("size the raft log"))?;
        // The frames from `buffer_at`; `at` is the next to decode.
        let mut buffer: Vec<u8> = Vec::new();
        let mut buffer_at: u64 = 0;
        let mut at = 0usize;
        let stop = loop {
            let defect = match codec::decode_frame(&buffer[at..]) {
                Ok((entry, length)) => match codec::check_follows(entry.index, store.last_index()) {
                    Ok(()) => {
                        store.append(&[raft_entry(entry)], &[buffer_at + at as u64]);
                        store.evict(commit);
                        at += length;
                        continue;
                    }
                    Err(defect) => defect,
                },
                Err(defect) => defect,
            };
            let read_to = buffer_at + buffer.len() as u64;
            if read_to < size && buffer.len() - at < FRAME_HEADER_BYTES + ENTRY_PAYLOAD_BYTES_MAX {
                // The frame may go on past what was read: read on.
                buffer.drain(..at);
                buffer_at += at as u64;
                at = 0;
                let want = (size - read_to).min(LOG_READ_CHUNK_BYTES as u64) as usize;
                let bytes = file.read_at(read_to, want).await.map_err(ClusterError::io("read the raft log"))?;
                if bytes.len() != want {
                    let reason = format!("read {} of {want} bytes", bytes.len());
                    return Err(corrupt(LOG_FILE, read_to + bytes.len() as u64, reason));
                }
                buffer.extend_from_slice(&bytes);
                continue;
            }
            break defect;
        };
        let valid_bytes = buffer_at + at as u64;
        if let LogDefect::Gap { expected_max, actual } = stop {
            let reason = format!("entry {actual} follows a log that ends before {expected_max}");
            return Err(corrupt(LOG_FILE, valid_bytes, reason));
        }
        // Unfinished: a checksum failure in the middle of the log (a flipped bit in a durable
        // frame) is taken for a torn tail here, and the frames after it are dropped; it must
        // be told apart (a durable watermark, as the engine's journal keeps) and stop the
        // replica instead, since a member that forgets entries it acknowledged breaks Raft.
        if valid_bytes < size {
            file.truncate(valid_bytes).await.map_err(ClusterError::io("cut the raft log's torn tail"))?;
        }
        file.fdatasync().await.map_err(ClusterError::io("sync the recovered raft log"))?;
        let alignment = file.alignment() as u64;
        let tail_at = valid_bytes - valid_bytes % alignment;
        let tail_bytes = (valid_bytes - tail_at) as usize;
        let tail = if tail_bytes == 0 {
            Vec::new()
        } else {
            let bytes = file.read_at(tail_at, tail_bytes).await.map_err(ClusterError::io("read the raft log"))?;
            bytes.get(..tail_bytes).map(<[u8]>::to_vec).ok_or_else(|| {
                corrupt(LOG_FILE, tail_at, format!("read {} of the tail's {tail_bytes} bytes", bytes.len()))
            })?
        };
        // The log's creation and the last hard state's rename may not be durable yet.
        storage.sync_dir(dir).await.map_err(ClusterError::io("sync the raft directory"))?;
        let last_index = store.last_index();
        if commit > last_index {
            let reason = format!("commit {commit} is past the log's last entry {last_index}");
            return Err(corrupt(HARD_STATE_FILE, 0, reason));
        }
        let log = DurableLog { storage, dir: dir.to_path_buf(), file, end_bytes: valid_bytes, tail };
        Ok((log, store))
    }

    /// Reads entries `from` to `to` (inclusive, all in the log) from disk, where `store` says
    /// each is: at most `bytes_max` bytes of data, but at least one entry.
    pub async fn read(&self, from: u64, to: u64, bytes_max: usize, store: &LogStore) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        let mut next = from;
        while next <= to && (entries.is_empty() || bytes < bytes_max) {
            let Some(start) = store.offset(next) else { break };
            let want = (self.end_bytes - start).min(bytes_max.clamp(FRAME_HEADER_BYTES, LOG_READ_CHUNK_BYTES) as u64);
            let mut chunk = self.read_exactly(start, want as usize).await?;
            if codec::decode_frame(&chunk).is_err() {
                // A frame longer than the chunk: read it alone.
                let length = codec::frame_length(&chunk).unwrap_or(0).min((self.end_bytes - start) as usize);
                chunk = self.read_exactly(start, length).await?;
            }
            let mut at = 0;
            let read_before = entries.len();
            // The log's entries lie in file order, except where a replaced suffix was appended
            // again later: a frame of another index, or at another place, ends this chunk.
            while next <= to && (entries.is_empty() || bytes < bytes_max) {
                match codec::decode_frame(&chunk[at..]) {
                    Ok((entry, length)) if entry.index == next && store.offset(next) == Some(start + at as u64) => {
                        bytes += entry.data.len();
                        entries.push(raft_entry(entry));
                        at += length;
                        next += 1;
                    }
                    _ => break,
                }
            }
            if entries.len() == read_before {
                let reason = format!("entry {next} is not where the log's index says");
                return Err(corrupt(LOG_FILE, start, reason));
            }
        }
        Ok(entries)
    }

    async fn read_exactly(&self, offset: u64, length: usize) -> Result<Vec<u8>> {
        let bytes = self.file.read_at(offset, length).await.map_err(ClusterError::io("read the raft log"))?;
        match bytes.get(..length) {
            Some(bytes) => Ok(bytes.to_vec()),
            None => Err(corrupt(LOG_FILE, offset, format!("read {} of {length} bytes", bytes.len()))),
        }
    }

    /// Writes `entries` after the log's end (not yet durable: see [`DurableLog::sync`]) and
    /// returns where each frame starts. Entries whose index is already in the log replace it
    /// from there on (`codec`).
    pub async fn append(&mut self, entries: &[Entry]) -> Result<Vec<u64>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut frames = std::mem::take(&mut self.tail);
        let tail_bytes = frames.len();
        let entries: Vec<LogEntry> = entries.iter().map(log_entry).collect();
        frames.reserve(entries.iter().map(codec::frame_bytes).sum());
        let first_frame_at = self.end_bytes;
        let mut offsets = Vec::with_capacity(entries.len());
        for entry in &entries {
            offsets.push(first_frame_at + (frames.len() - tail_bytes) as u64);
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
        Ok(offsets)
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
