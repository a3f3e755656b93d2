//! A replica's Raft log and hard state on disk, through the engine's storage seam (O_DIRECT
//! files through glommio in the daemon, the simulated disk in the simulation).
//!
//! The log is a run of segment files, `raft-<BASE>.log` (BASE in 20 decimal digits), holding
//! the entries as checksummed frames (`codec`), only ever appended to; a new segment starts
//! when the last one holds `segment_bytes`. An entry's place is one number, BASE plus its
//! offset in its segment: each segment's BASE is the previous one's plus its length, so places
//! only grow. Beside them, `raft.state` holds the hard state (term, vote, commit) and
//! `raft.compacted` where the log was compacted, each replaced atomically. Durability follows
//! the seam's contract: [`LogStorage::append`] only writes; the entries are durable once
//! [`LogStorage::sync`] returns (a segment is synced, and the directory too, before the next
//! one takes appends), and the replica tells Raft (and its peers) that it has them only after.
//!
//! Compaction ([`LogStorage::compact`]) records its point, then deletes the oldest segments
//! whose every frame is at or before it; the newest segment always stays. Recovery skips the
//! frames at or before the recorded point, which a deletion cut short may leave.
//!
//! Recovery reads each segment in chunks, keeps the valid frames, cuts the last segment after
//! its last one (a torn tail must not come back to life behind a later append) and syncs what
//! it kept. A damaged frame is taken for a torn tail only if it can be one: the first frame
//! of an append made when everything before it was synced carries a mark (`codec`), so a valid
//! marked frame anywhere after the damage proves the damaged bytes were durable, and the log
//! refuses to open ([`ClusterError::Corrupt`]) instead of forgetting entries this member told
//! its peers it had. What stays undetected: damage to the last synced append when nothing
//! was appended after it. Bytes that were written but never synced before a crash may still
//! be there after the cut; from now on the replica vouches for them. What stays in memory is bounded (`log_store`):
//! older entries are read back from the segments where the store says each is
//! ([`LogStorage::read`]).
//!
//! Unfinished: this is a second log beside the core's journal. The design stores a shard
//! group's entries in the journal itself (one write of the data, one group commit for every
//! group on the core); see `docs/replication.md`.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use raft::eraftpb::{ConfState, Entry, HardState};
use sluice_engine::storage::{IoBuffer, Storage, StorageFile};

use crate::codec::{self, LogDefect, LogEntry, FRAME_HEADER_BYTES};
use crate::error::{ClusterError, Result};
use crate::limits::{ENTRY_PAYLOAD_BYTES_MAX, LOG_READ_CHUNK_BYTES};
use crate::log_storage::LogStorage;
use crate::log_store::LogStore;
use crate::raft_files::{self, corrupt, log_entry, raft_entry};
use crate::replica::ReplicaConfig;

/// The single log file of the layout before segments; opened as the segment at place 0.
pub const LEGACY_LOG_FILE: &str = "raft.log";
const LOG_FILE: &str = "raft log segment";

/// The file name of the segment whose first byte is at place `base`.
pub fn segment_name(base: u64) -> String {
    format!("raft-{base:020}.log")
}

/// The place of the segment named `name`, if it is one.
pub fn segment_base(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("raft-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

struct Segment<F> {
    base: u64,
    file: F,
    /// Bytes of frames in it (for the last segment: where the next append goes).
    end: u64,
    /// The highest index of any frame in it (0: none).
    index_max: u64,
}

pub struct DurableLog<S: Storage> {
    storage: S,
    dir: PathBuf,
    /// Oldest first; the last takes appends.
    segments: Vec<Segment<S::File>>,
    segment_bytes: u64,
    /// The bytes from the last aligned offset before the last segment's end to it: an
    /// O_DIRECT write starts on an aligned offset, so each append rewrites them ahead of its
    /// frames.
    tail: Vec<u8>,
    /// Appends written to the last segment since its last sync.
    unsynced: bool,
}

impl<S: Storage> DurableLog<S> {
    /// Opens (creating if needed) the Raft files in `dir` and returns what they hold, as the
    /// store raft-rs reads: the whole log's places and terms, and in memory the entries after
    /// the stored commit plus the newest up to `cache_bytes_max`. Segments are read in chunks
    /// of `limits::LOG_READ_CHUNK_BYTES`, never whole; a new one starts past `segment_bytes`.
    pub async fn open(
        storage: S,
        dir: &Path,
        conf_state: ConfState,
        cache_bytes_max: usize,
        segment_bytes: usize,
    ) -> Result<(DurableLog<S>, LogStore)> {
        let (store, compacted) = raft_files::open_store(&storage, dir, conf_state, cache_bytes_max).await?;
        let names = storage.list(dir).await.map_err(ClusterError::io("list the raft directory"))?;
        let mut bases: Vec<u64> = names.iter().filter_map(|name| segment_base(name)).collect();
        if bases.is_empty() && names.iter().any(|name| name == LEGACY_LOG_FILE) {
            let from = dir.join(LEGACY_LOG_FILE);
            storage.rename(&from, &dir.join(segment_name(0))).await.map_err(ClusterError::io("rename raft.log"))?;
            bases.push(0);
        }
        if bases.is_empty() {
            bases.push(0);
        }
        bases.sort_unstable();
        let mut segments = Vec::with_capacity(bases.len());
        let mut tail = Vec::new();
        for (at, &base) in bases.iter().enumerate() {
            let last = at + 1 == bases.len();
            let path = dir.join(segment_name(base));
            let file = storage.open(&path, last).await.map_err(ClusterError::io("open a raft log segment"))?;
            let (end, index_max) = recover_segment(&file, base, &store, compacted.index, last).await?;
            if last {
                let alignment = file.alignment() as u64;
                let tail_at = end - end % alignment;
                let tail_bytes = (end - tail_at) as usize;
                if tail_bytes > 0 {
                    let bytes =
                        file.read_at(tail_at, tail_bytes).await.map_err(ClusterError::io("read the raft log"))?;
                    tail = bytes.get(..tail_bytes).map(<[u8]>::to_vec).ok_or_else(|| {
                        corrupt(LOG_FILE, tail_at, format!("read {} of the tail's {tail_bytes} bytes", bytes.len()))
                    })?;
                }
            }
            segments.push(Segment { base, file, end, index_max });
        }
        // The log's creation and the last hard state's rename may not be durable yet.
        storage.sync_dir(dir).await.map_err(ClusterError::io("sync the raft directory"))?;
        raft_files::check_commit_held(&store)?;
        let log = DurableLog {
            storage,
            dir: dir.to_path_buf(),
            segments,
            segment_bytes: segment_bytes as u64,
            tail,
            unsynced: false,
        };
        Ok((log, store))
    }

    /// Opens the log a replica configured by `config` keeps in `config.dir`, a new group's
    /// membership being `config.voters`.
    pub async fn open_for(storage: S, config: &ReplicaConfig) -> Result<(DurableLog<S>, LogStore)> {
        let conf_state = ConfState::from((config.voters.clone(), vec![]));
        DurableLog::open(storage, &config.dir, conf_state, config.entry_cache_bytes, config.segment_bytes).await
    }

    fn segment_at(&self, place: u64) -> Result<&Segment<S::File>> {
        let at = self.segments.partition_point(|segment| segment.base <= place);
        match at.checked_sub(1).map(|at| &self.segments[at]) {
            Some(segment) if place < segment.base + segment.end => Ok(segment),
            _ => Err(corrupt(LOG_FILE, place, "no segment holds this place".to_owned())),
        }
    }

    fn last(&self) -> &Segment<S::File> {
        self.segments.last().expect("a log has a segment")
    }

    /// Syncs the last segment (if an append is not synced yet) and starts the next, durably
    /// (its directory entry too), so that [`LogStorage::sync`] need only sync the last.
    async fn start_segment(&mut self) -> Result<()> {
        if self.unsynced {
            self.sync().await?;
        }
        let last = self.last();
        let base = last.base + last.end;
        let path = self.dir.join(segment_name(base));
        let file = self.storage.open(&path, true).await.map_err(ClusterError::io("create a raft log segment"))?;
        self.storage.sync_dir(&self.dir).await.map_err(ClusterError::io("sync the raft directory"))?;
        self.segments.push(Segment { base, file, end: 0, index_max: 0 });
        self.tail.clear();
        Ok(())
    }

    /// Segments on disk (for tests and metrics).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

impl<S: Storage> LogStorage for DurableLog<S> {
    /// Reads entries `from` to `to` (inclusive, all in the log) from disk, where `store` says
    /// each is: at most `bytes_max` bytes of data, but at least one entry.
    async fn read(&self, from: u64, to: u64, bytes_max: usize, store: &LogStore) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        let mut next = from;
        while next <= to && (entries.is_empty() || bytes < bytes_max) {
            let Some(place) = store.offset(next) else { break };
            let segment = self.segment_at(place)?;
            let start = place - segment.base;
            let want = (segment.end - start).min(bytes_max.clamp(FRAME_HEADER_BYTES, LOG_READ_CHUNK_BYTES) as u64);
            let mut chunk = read_exactly(&segment.file, start, want as usize).await?;
            if codec::decode_frame(&chunk).is_err() {
                // A frame longer than the chunk: read it alone.
                let length = codec::frame_length(&chunk).unwrap_or(0).min((segment.end - start) as usize);
                chunk = read_exactly(&segment.file, start, length).await?;
            }
            let mut at = 0;
            let read_before = entries.len();
            // The log's entries lie in file order, except where a replaced suffix was appended
            // again later: a frame of another index, or at another place, ends this chunk.
            while next <= to && (entries.is_empty() || bytes < bytes_max) {
                match codec::decode_frame(&chunk[at..]) {
                    Ok((entry, length)) if entry.index == next && store.offset(next) == Some(place + at as u64) => {
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
                return Err(corrupt(LOG_FILE, place, reason));
            }
        }
        Ok(entries)
    }

    /// Writes `entries` after the log's end (not yet durable: see [`LogStorage::sync`]) and
    /// returns the place of each frame. Entries whose index is already in the log replace it
    /// from there on (`codec`).
    async fn append(&mut self, entries: &[Entry]) -> Result<Vec<u64>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if self.last().end >= self.segment_bytes {
            self.start_segment().await?;
        }
        let mut frames = std::mem::take(&mut self.tail);
        let tail_bytes = frames.len();
        let mut entries: Vec<LogEntry> = entries.iter().map(log_entry).collect();
        // Everything before this append is durable: say so in its first frame.
        entries[0].after_sync = !self.unsynced;
        frames.reserve(entries.iter().map(codec::frame_bytes).sum());
        let segment = self.segments.last_mut().expect("a log has a segment");
        let first_frame_at = segment.end;
        let mut places = Vec::with_capacity(entries.len());
        for entry in &entries {
            places.push(segment.base + first_frame_at + (frames.len() - tail_bytes) as u64);
            codec::encode_entry(entry, &mut frames);
        }
        let alignment = segment.file.alignment();
        let padded = frames.len().div_ceil(alignment) * alignment;
        let mut buffer = segment.file.alloc_buffer(padded);
        let bytes = buffer.bytes_mut();
        bytes[..frames.len()].copy_from_slice(&frames);
        // Zeros after the last frame read as the end of the log.
        bytes[frames.len()..].fill(0);
        let offset = segment.end - tail_bytes as u64;
        let written = segment.file.write_at(Rc::new(buffer), offset).await;
        let failure = match written {
            Ok(written) if written == padded => None,
            Ok(written) => Some(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short write: {written} of {padded} bytes"),
            )),
            Err(error) => Some(error),
        };
        if let Some(error) = failure {
            // The tail is still what the file holds before the end; a replica stops on an
            // error anyway, but keep the value honest.
            frames.truncate(tail_bytes);
            self.tail = frames;
            return Err(ClusterError::Io { what: "append to the raft log", source: error });
        }
        self.unsynced = true;
        segment.end = offset + frames.len() as u64;
        segment.index_max = entries.iter().map(|entry| entry.index).fold(segment.index_max, u64::max);
        let keep = frames.len() % alignment;
        self.tail = frames.split_off(frames.len() - keep);
        Ok(places)
    }

    /// Makes every entry appended so far durable.
    async fn sync(&mut self) -> Result<()> {
        self.last().file.fdatasync().await.map_err(ClusterError::io("sync the raft log"))?;
        self.unsynced = false;
        Ok(())
    }

    /// How many segments [`LogStorage::compact`] at `index` would delete.
    fn freed_by_compaction(&self, index: u64) -> usize {
        let older = &self.segments[..self.segments.len() - 1];
        older.iter().take_while(|segment| segment.index_max <= index).count()
    }

    /// Records durably that entries up to `index` (of `term`) are gone, then deletes the
    /// oldest segments holding nothing after it (never the last). The caller keeps the hard
    /// state's commit at or past `index` on disk first, and has `store` compacted.
    async fn compact(&mut self, index: u64, term: u64, _store: &LogStore) -> Result<usize> {
        if self.freed_by_compaction(index) == 0 {
            return Ok(0);
        }
        raft_files::save_compacted(&self.storage, &self.dir, index, term).await?;
        let mut dropped = 0;
        while self.freed_by_compaction(index) > 0 {
            let segment = self.segments.remove(0);
            drop(segment.file);
            let path = self.dir.join(segment_name(segment.base));
            self.storage.remove(&path).await.map_err(ClusterError::io("delete a raft log segment"))?;
            dropped += 1;
        }
        // Not synced: a deletion lost to a crash leaves a segment whose frames recovery skips.
        Ok(dropped)
    }

    /// Installs a snapshot of the entries up to `index` (of `term`), which the host's state
    /// machine now holds: records durably that they are gone, then replaces every segment with
    /// an empty one, so the log continues at `index + 1`. The caller saves a hard state whose
    /// commit is at least `index` next, and restores `LogStore` to it. A crash midway leaves
    /// segments whose frames recovery skips (those up to `index`) or keeps as the log after it
    /// (entries of some leader, which the next one replaces if they differ); and a commit
    /// below the compaction record's index, which opening raises to it.
    async fn install_snapshot(&mut self, index: u64, term: u64) -> Result<()> {
        raft_files::save_compacted(&self.storage, &self.dir, index, term).await?;
        if self.last().end > 0 {
            // Places only grow: the new segment starts where the last one ends.
            self.start_segment().await?;
        }
        let last = self.segments.len() - 1;
        for segment in self.segments.drain(..last) {
            drop(segment.file);
            let path = self.dir.join(segment_name(segment.base));
            self.storage.remove(&path).await.map_err(ClusterError::io("delete a raft log segment"))?;
        }
        self.tail.clear();
        Ok(())
    }

    async fn save_conf(&self, index: u64, conf_state: &ConfState) -> Result<()> {
        raft_files::save_conf(&self.storage, &self.dir, index, conf_state).await
    }

    async fn save_hard_state(&self, hard_state: &HardState) -> Result<()> {
        raft_files::save_hard_state(&self.storage, &self.dir, hard_state).await
    }
}

async fn read_exactly<F: StorageFile>(file: &F, offset: u64, length: usize) -> Result<Vec<u8>> {
    let bytes = file.read_at(offset, length).await.map_err(ClusterError::io("read the raft log"))?;
    match bytes.get(..length) {
        Some(bytes) => Ok(bytes.to_vec()),
        None => Err(corrupt(LOG_FILE, offset, format!("read {} of {length} bytes", bytes.len()))),
    }
}

/// Reads one segment's frames into `store`, skipping those at or before `compacted`, and
/// returns where its valid frames end and the highest index among them. The last segment's
/// torn tail is cut and what it kept synced; an older one was synced whole before the next
/// began, so its frames end where its first defect is.
async fn recover_segment<F: StorageFile>(
    file: &F,
    base: u64,
    store: &LogStore,
    compacted: u64,
    last: bool,
) -> Result<(u64, u64)> {
    let size = file.size().await.map_err(ClusterError::io("size a raft log segment"))?;
    let mut window = Window::new(0);
    let mut index_max = 0;
    let commit = store.hard_state().commit;
    let stop = loop {
        let defect = match codec::decode_frame(window.rest()) {
            Ok((entry, length)) => {
                index_max = index_max.max(entry.index);
                if entry.index <= compacted {
                    // Compacted away; one that follows entries after the point replaced them
                    // (they were a deposed leader's, never committed).
                    store.discard_all();
                    window.at += length;
                    continue;
                }
                match codec::check_follows(entry.index, store.last_index()) {
                    Ok(()) => {
                        store.append(&[raft_entry(entry)], &[base + window.position()]);
                        store.evict(commit);
                        window.at += length;
                        continue;
                    }
                    Err(defect) => defect,
                }
            }
            Err(defect) => defect,
        };
        // The frame may go on past what was read: read on.
        if window.read_on(file, base, size).await? {
            continue;
        }
        break defect;
    };
    let valid_bytes = window.position();
    if let LogDefect::Gap { expected_max, actual } = stop {
        let reason = format!("entry {actual} follows a log that ends before {expected_max}");
        return Err(corrupt(LOG_FILE, base + valid_bytes, reason));
    }
    // Only the last append can be torn: one that began after a sync, found further on, means
    // the damaged bytes were durable.
    if let Some(at) = synced_append_after(file, base, valid_bytes, size).await? {
        let reason = format!(
            "a frame that was durable is damaged ({stop:?}): an append made after it was synced starts at byte {at}"
        );
        return Err(corrupt(LOG_FILE, base + valid_bytes, reason));
    }
    if last {
        if valid_bytes < size {
            file.truncate(valid_bytes).await.map_err(ClusterError::io("cut the raft log's torn tail"))?;
        }
        file.fdatasync().await.map_err(ClusterError::io("sync the recovered raft log"))?;
    }
    Ok((valid_bytes, index_max))
}

/// Where the first frame marked `after_sync` lies in `file` (the segment at place `base`) from
/// byte `from` to `size`, if one does. Tries every offset (the frames after damage do not line
/// up with anything). Record data that holds a well-formed marked frame would be taken for
/// one: a torn tail holding such data would then stop the replica, not lose data.
async fn synced_append_after<F: StorageFile>(file: &F, base: u64, from: u64, size: u64) -> Result<Option<u64>> {
    let mut window = Window::new(from);
    loop {
        if window.read_on(file, base, size).await? {
            continue;
        }
        if window.rest().is_empty() {
            return Ok(None);
        }
        if codec::opens_synced_append(window.rest()) {
            return Ok(Some(window.position()));
        }
        window.at += 1;
    }
}

/// A segment's bytes from `buffer_at`, read in chunks of `LOG_READ_CHUNK_BYTES`, and the next
/// to look at (`at`).
struct Window {
    buffer: Vec<u8>,
    buffer_at: u64,
    at: usize,
}

impl Window {
    fn new(from: u64) -> Window {
        Window { buffer: Vec::new(), buffer_at: from, at: 0 }
    }

    /// The bytes held from `at` on.
    fn rest(&self) -> &[u8] {
        &self.buffer[self.at..]
    }

    /// `at` as an offset in the segment.
    fn position(&self) -> u64 {
        self.buffer_at + self.at as u64
    }

    /// Reads the next chunk if fewer bytes than the largest frame are held from `at` and the
    /// segment (of `size` bytes, at place `base`) has more: whether it read.
    async fn read_on<F: StorageFile>(&mut self, file: &F, base: u64, size: u64) -> Result<bool> {
        let read_to = self.buffer_at + self.buffer.len() as u64;
        if read_to >= size || self.rest().len() >= FRAME_HEADER_BYTES + ENTRY_PAYLOAD_BYTES_MAX {
            return Ok(false);
        }
        self.buffer.drain(..self.at);
        self.buffer_at += self.at as u64;
        self.at = 0;
        let want = (size - read_to).min(LOG_READ_CHUNK_BYTES as u64) as usize;
        let bytes = file.read_at(read_to, want).await.map_err(ClusterError::io("read the raft log"))?;
        if bytes.len() != want {
            let reason = format!("read {} of {want} bytes", bytes.len());
            return Err(corrupt(LOG_FILE, base + read_to + bytes.len() as u64, reason));
        }
        self.buffer.extend_from_slice(&bytes);
        Ok(true)
    }
}
