//! The per-core journal: every shard a core owns appends into one log, so one write and one
//! `fdatasync` make a whole group of appends durable, whichever shards they target.
//!
//! ```text
//! append() ──► pending queue (bounded in bytes) ──► flusher task: one batch at a time
//!                                                    │ assign record indexes per shard
//!                                                    │ frame into one O_DIRECT buffer
//!                                                    │ write + fdatasync
//!                                                    ▼
//!                       shard indexes, tail cache, waiters ◄── only now: acknowledge
//! ```
//!
//! The journal is a directory of segments named by the journal position of their first byte
//! (`00000000000000000000.seg`). Only the last segment is written; when it would pass
//! `segment_bytes_max` a new one starts and the sealed one gets an index checkpoint (`.idx`)
//! so that recovery reads only the unsealed segment. The journal is `!Send`: it lives on the
//! glommio executor of its core.

use crate::clock::SharedClock;
use crate::error::{EngineError, Result};
use crate::format::{self, align_up, BatchWriter, FrameError, SegmentEnd, BLOCK_BYTES};
use crate::limits;
use crate::sequence::{SequenceNumber, ShardSeqPrefix};
use crate::shard_index::{RunEntry, ShardIndex};
use bytes::Bytes;
use futures_channel::oneshot;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};
use glommio::sync::{Semaphore, StaticPermit};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use xxhash_rust::xxh3::xxh3_64;

const SEGMENT_SUFFIX: &str = "seg";
const INDEX_SUFFIX: &str = "idx";
const WATERMARKS_FILE: &str = "watermarks.json";
/// Any file of at least this size primes glommio's IOPOLL probe correctly (see `iopoll`).
const IOPOLL_PROBE_BYTES: usize = 4096;
const IOPOLL_PROBE_FILE: &str = ".iopoll-probe";

#[derive(Debug, Clone)]
pub struct JournalConfig {
    pub dir: PathBuf,
    pub segment_bytes_max: u64,
    /// Most bytes of one batch: the unit of write; a commit writes several at once.
    pub batch_bytes_max: usize,
    /// Most bytes of one group commit (whole appends only).
    pub commit_bytes_max: usize,
    pub pending_bytes_max: usize,
    pub tail_cache_bytes_max: usize,
}

impl JournalConfig {
    pub fn new(dir: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig {
            dir: dir.into(),
            segment_bytes_max: limits::SEGMENT_BYTES_MAX_DEFAULT,
            batch_bytes_max: limits::BATCH_BYTES_MAX,
            commit_bytes_max: limits::COMMIT_BYTES_MAX,
            pending_bytes_max: limits::PENDING_BYTES_MAX_DEFAULT,
            tail_cache_bytes_max: limits::TAIL_CACHE_BYTES_DEFAULT,
        }
    }
}

/// What the journal must know of a shard to write and serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub uid: u64,
    pub seq_prefix: ShardSeqPrefix,
    pub retention_ms: i64,
}

#[derive(Debug, Clone)]
pub struct AppendRecord {
    pub shard_uid: u64,
    pub partition_key: Bytes,
    pub data: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub sequence_number: SequenceNumber,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub sequence_number: SequenceNumber,
    /// Arrival time: when the record's group commit assigned its sequence number.
    pub timestamp_ms: i64,
    pub partition_key: Bytes,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBatch {
    pub records: Vec<StoredRecord>,
    /// Record index to continue from.
    pub next_index: u64,
    /// How far `next_index` is behind the newest record, 0 when caught up.
    pub millis_behind_latest: i64,
}

/// Where a reader starts, in record indexes (a sequence number's last field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    TrimHorizon,
    Latest,
    AtIndex(u64),
    AfterIndex(u64),
    AtTimestamp(i64),
}

#[derive(Clone)]
pub struct Journal {
    inner: Rc<Inner>,
}

struct Inner {
    config: JournalConfig,
    clock: SharedClock,
    state: RefCell<State>,
    space: Rc<Semaphore>,
    wake: LocalSender<()>,
    flusher: RefCell<Option<glommio::Task<()>>>,
}

struct State {
    shards: HashMap<u64, ShardState>,
    pending: VecDeque<Pending>,
    segments: BTreeMap<u64, Segment>,
    /// Journal position where the next batch goes: the end of the active segment.
    write_position: u64,
    cache: VecDeque<CachedBatch>,
    cache_bytes: usize,
    closing: bool,
    stats: JournalStats,
}

/// Counters for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Group commits: one write and one fdatasync each.
    pub commits: u64,
    pub records: u64,
    /// Bytes written, padding included.
    pub bytes_written: u64,
}

#[derive(Default)]
struct ShardState {
    spec: Option<ShardSpec>,
    index: ShardIndex,
    waiters: Vec<oneshot::Sender<()>>,
    /// Closed by a reshard: takes no more appends; its records stay readable.
    closed: bool,
}

struct Segment {
    base: u64,
    path: PathBuf,
    file: Rc<DmaFile>,
    bytes: u64,
    /// Newest arrival time of each shard's records here: the segment can go once all expired.
    shard_last_timestamp_ms: HashMap<u64, i64>,
}

struct Pending {
    records: Vec<AppendRecord>,
    encoded_bytes: usize,
    _permit: StaticPermit,
    reply: oneshot::Sender<Result<Vec<Appended>>>,
}

struct CachedBatch {
    position: u64,
    buffer: Rc<DmaBuffer>,
}

impl Journal {
    /// Opens (recovering) or creates the journal in `config.dir`. Must run on the executor that
    /// will own the journal, before that executor opens any other `DmaFile` (see `iopoll`).
    pub async fn open(config: JournalConfig, clock: SharedClock) -> Result<Journal> {
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(EngineError::io(&dir, "create directory"))?;
        prime_iopoll_probe(&dir).await?;
        let recovered = recover(&dir).await?;
        let (wake, wake_rx) = local_channel::new_bounded(1);
        let state = State {
            shards: recovered.shards,
            pending: VecDeque::new(),
            write_position: recovered.write_position,
            segments: recovered.segments,
            cache: VecDeque::new(),
            cache_bytes: 0,
            closing: false,
            stats: JournalStats::default(),
        };
        let inner = Rc::new(Inner {
            space: Rc::new(Semaphore::new(config.pending_bytes_max as u64)),
            config,
            clock,
            state: RefCell::new(state),
            wake,
            flusher: RefCell::new(None),
        });
        let task = glommio::spawn_local(flush_loop(inner.clone(), wake_rx));
        *inner.flusher.borrow_mut() = Some(task);
        Ok(Journal { inner })
    }

    /// Makes a shard writable and readable here, or updates its settings. Records the journal
    /// already holds for `spec.uid` become readable.
    pub fn register_shard(&self, spec: ShardSpec) {
        let mut state = self.inner.state.borrow_mut();
        state.shards.entry(spec.uid).or_default().spec = Some(spec);
    }

    /// Stops a shard taking appends (a reshard closed it) and resolves with its final record
    /// index, once every append accepted for it before the call is durable. Appends after it
    /// fail with [`EngineError::ShardClosed`]; the shard's records stay readable, and waiting
    /// readers are woken so they notice the end. Calling it again returns the same index.
    pub async fn close_shard(&self, uid: u64) -> Result<u64> {
        {
            let mut state = self.inner.state.borrow_mut();
            let shard = state.shards.get_mut(&uid).ok_or(EngineError::UnknownShard(uid))?;
            shard.closed = true;
            for waiter in shard.waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
        // A barrier: an empty append queued behind every append already accepted.
        let permit = self.inner.space.acquire_static_permit(1).await.map_err(|_| EngineError::Closed)?;
        let (reply, receiver) = oneshot::channel();
        {
            let mut state = self.inner.state.borrow_mut();
            if state.closing {
                return Err(EngineError::Closed);
            }
            state.pending.push_back(Pending { records: Vec::new(), encoded_bytes: 0, _permit: permit, reply });
        }
        let _ = self.inner.wake.try_send(());
        receiver.await.map_err(|_| EngineError::Closed)??;
        let state = self.inner.state.borrow();
        Ok(state.shards.get(&uid).map_or(0, |shard| shard.index.next_index()))
    }

    /// Whether a reshard closed the shard (see [`Journal::close_shard`]).
    pub fn is_closed(&self, uid: u64) -> bool {
        self.inner.state.borrow().shards.get(&uid).is_some_and(|shard| shard.closed)
    }

    /// Marks a shard closed without waiting: at start-up, for shards the catalog records as
    /// closed (their final index is already known and everything before it is durable).
    pub fn mark_closed(&self, uid: u64) {
        self.inner.state.borrow_mut().shards.entry(uid).or_default().closed = true;
    }

    /// Forgets a shard (its stream was deleted): its records are no longer served, and its
    /// segments can be deleted without waiting for its retention.
    pub fn forget_shard(&self, uid: u64) {
        self.inner.state.borrow_mut().shards.remove(&uid);
    }

    /// Forgets every shard found in the journal that `keep` rejects: after recovery, the
    /// shards of streams deleted before the restart.
    pub fn retain_shards(&self, keep: impl Fn(u64) -> bool) {
        self.inner.state.borrow_mut().shards.retain(|&uid, _| keep(uid));
    }

    /// Appends records (to any shards of this core) and resolves once they are durable, with
    /// their sequence numbers in request order. Records of one shard keep their order.
    pub async fn append(&self, records: Vec<AppendRecord>) -> Result<Vec<Appended>> {
        let encoded_bytes = self.validate_append(&records)?;
        let permit =
            self.inner.space.acquire_static_permit(encoded_bytes as u64).await.map_err(|_| EngineError::Closed)?;
        let (reply, receiver) = oneshot::channel();
        {
            let mut state = self.inner.state.borrow_mut();
            if state.closing {
                return Err(EngineError::Closed);
            }
            // The shard may have been closed while this append waited for queue space.
            if let Some(closed) = records.iter().find(|r| state.shards.get(&r.shard_uid).is_some_and(|s| s.closed)) {
                return Err(EngineError::ShardClosed(closed.shard_uid));
            }
            state.pending.push_back(Pending { records, encoded_bytes, _permit: permit, reply });
        }
        // A full channel means the flusher is already signalled.
        let _ = self.inner.wake.try_send(());
        receiver.await.map_err(|_| EngineError::Closed)?
    }

    fn validate_append(&self, records: &[AppendRecord]) -> Result<usize> {
        if records.is_empty() {
            return Err(EngineError::EmptyAppend);
        }
        let state = self.inner.state.borrow();
        let mut encoded_bytes = format::BATCH_HEADER_BYTES;
        for record in records {
            let key_bytes = record.partition_key.len();
            if !(1..=limits::PARTITION_KEY_BYTES_MAX).contains(&key_bytes) {
                return Err(EngineError::PartitionKeyLength { bytes: key_bytes, max: limits::PARTITION_KEY_BYTES_MAX });
            }
            let record_bytes = key_bytes + record.data.len();
            if record_bytes > limits::RECORD_BYTES_MAX {
                return Err(EngineError::RecordTooLarge { bytes: record_bytes, max: limits::RECORD_BYTES_MAX });
            }
            match state.shards.get(&record.shard_uid) {
                Some(shard) if shard.closed => return Err(EngineError::ShardClosed(record.shard_uid)),
                Some(shard) if shard.spec.is_some() => {}
                _ => return Err(EngineError::UnknownShard(record.shard_uid)),
            }
            // Upper bound: as if every record opened a run of its own.
            encoded_bytes += format::RUN_HEADER_BYTES + format::record_bytes(key_bytes, record.data.len());
        }
        if encoded_bytes > limits::APPEND_ENCODED_BYTES_MAX {
            return Err(EngineError::AppendTooLarge { bytes: encoded_bytes, max: limits::APPEND_ENCODED_BYTES_MAX });
        }
        Ok(encoded_bytes)
    }

    /// Resolves a start position to a record index of the shard.
    pub fn resolve(&self, shard_uid: u64, position: StartPosition) -> Result<u64> {
        let mut state = self.inner.state.borrow_mut();
        let now_ms = self.inner.clock.now_ms();
        let shard = served_shard(&mut state, shard_uid, now_ms)?;
        let (trim, next) = (shard.index.trim_index(), shard.index.next_index());
        let index = match position {
            StartPosition::TrimHorizon => trim,
            StartPosition::Latest => next,
            StartPosition::AtIndex(index) => index,
            StartPosition::AfterIndex(index) => index.saturating_add(1),
            StartPosition::AtTimestamp(timestamp_ms) => shard.index.index_at_timestamp(timestamp_ms),
        };
        if index > next {
            return Err(EngineError::IndexBeyondTip { index, next_index: next });
        }
        Ok(index.max(trim))
    }

    /// Index the next record of the shard will get, and its trim horizon.
    pub fn bounds(&self, shard_uid: u64) -> Result<(u64, u64)> {
        let mut state = self.inner.state.borrow_mut();
        let shard = served_shard(&mut state, shard_uid, self.inner.clock.now_ms())?;
        Ok((shard.index.trim_index(), shard.index.next_index()))
    }

    /// Reads up to `records_max` records and about `bytes_max` bytes (data plus keys; always at
    /// least one record if there is one) starting at record index `from_index`. Records that
    /// expired are skipped: reading starts at the trim horizon at the earliest.
    pub async fn read(
        &self,
        shard_uid: u64,
        from_index: u64,
        records_max: usize,
        bytes_max: usize,
    ) -> Result<ReadBatch> {
        let now_ms = self.inner.clock.now_ms();
        let (spec, start, runs) = {
            let mut state = self.inner.state.borrow_mut();
            let shard = served_shard(&mut state, shard_uid, now_ms)?;
            let spec = shard.spec.expect("served shards are registered");
            let start = from_index.max(shard.index.trim_index());
            let mut runs = Vec::new();
            let (mut records, mut bytes) = (0usize, 0usize);
            for run in shard.index.runs_from(start) {
                if records >= records_max || bytes >= bytes_max {
                    break;
                }
                records += (run.end_index() - run.first_index.max(start)) as usize;
                bytes += run.run_bytes as usize;
                runs.push(*run);
            }
            (spec, start, runs)
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        'runs: for run in &runs {
            let (source, path) = self.run_bytes(run).await?;
            let corrupt =
                |offset: usize, reason| EngineError::Corrupt { path: path.clone(), offset: offset as u64, reason };
            let view = format::decode_run(&source, 0).map_err(|reason| corrupt(0, reason))?;
            if view.shard_uid != shard_uid
                || view.first_index != run.first_index
                || view.record_count != run.record_count
            {
                let reason = FrameError::RunMismatch { expected_shard: shard_uid, expected_index: run.first_index };
                return Err(corrupt(0, reason));
            }
            for record in view.records() {
                let record = record.map_err(|reason| corrupt(0, reason))?;
                if record.record_index < start {
                    continue;
                }
                let size = record.key.len() + record.data.len();
                if out.len() >= records_max || (bytes + size > bytes_max && !out.is_empty()) {
                    break 'runs;
                }
                bytes += size;
                out.push(StoredRecord {
                    sequence_number: spec.seq_prefix.sequence_number(record.record_index),
                    timestamp_ms: run.timestamp_ms,
                    partition_key: Bytes::copy_from_slice(record.key),
                    data: Bytes::copy_from_slice(record.data),
                });
            }
        }
        let next_index = out.last().map_or(start, |record| record.sequence_number.record_index() + 1);
        let state = self.inner.state.borrow();
        let millis_behind_latest = state
            .shards
            .get(&shard_uid)
            .and_then(|shard| shard.index.timestamp_of(next_index))
            .map_or(0, |timestamp_ms| (now_ms - timestamp_ms).max(0));
        Ok(ReadBatch { records: out, next_index, millis_behind_latest })
    }

    /// The bytes of one run, from the tail cache or else from disk with O_DIRECT.
    async fn run_bytes(&self, run: &RunEntry) -> Result<(RunSource, PathBuf)> {
        let (file, offset, path) = {
            let state = self.inner.state.borrow();
            let (base, segment) =
                state.segments.range(..=run.position).next_back().expect("indexed runs lie in live segments");
            let path = segment.path.clone();
            let after = state.cache.partition_point(|batch| batch.position <= run.position);
            if let Some(batch) = after.checked_sub(1).map(|i| &state.cache[i]) {
                let start = (run.position - batch.position) as usize;
                if start + run.run_bytes as usize <= batch.buffer.len() {
                    let source = RunSource::Cached { buffer: batch.buffer.clone(), start, len: run.run_bytes as usize };
                    return Ok((source, path));
                }
            }
            (segment.file.clone(), run.position - base, path)
        };
        let bytes = file.read_at(offset, run.run_bytes as usize).await.map_err(|error| EngineError::Io {
            path: path.clone(),
            operation: "read",
            source: error.into(),
        })?;
        if bytes.len() != run.run_bytes as usize {
            let reason = FrameError::Truncated;
            return Err(EngineError::Corrupt { path, offset, reason });
        }
        Ok((RunSource::Disk(bytes), path))
    }

    /// A receiver that fires once the shard holds a record at `index` (or is forgotten), or
    /// `None` if it already does. Lets subscribers wait for new records without polling.
    pub fn wait_for_index(&self, shard_uid: u64, index: u64) -> Result<Option<oneshot::Receiver<()>>> {
        let mut state = self.inner.state.borrow_mut();
        let shard = state.shards.get_mut(&shard_uid).ok_or(EngineError::UnknownShard(shard_uid))?;
        if shard.index.next_index() > index {
            return Ok(None);
        }
        let (sender, receiver) = oneshot::channel();
        shard.waiters.retain(|waiter| !waiter.is_canceled());
        shard.waiters.push(sender);
        Ok(Some(receiver))
    }

    /// Drops expired runs from every shard's index and deletes sealed segments that hold only
    /// expired records or records of forgotten shards. Returns how many segments went.
    pub async fn enforce_retention(&self) -> Result<usize> {
        let now_ms = self.inner.clock.now_ms();
        let (doomed, watermarks) = {
            let mut state = self.inner.state.borrow_mut();
            let state = &mut *state;
            for shard in state.shards.values_mut() {
                if let Some(spec) = shard.spec {
                    shard.index.expire_before(now_ms - spec.retention_ms);
                }
            }
            let active = *state.segments.keys().next_back().expect("there is always an active segment");
            let expired = |uid: &u64, last_ms: &i64| match state.shards.get(uid) {
                None => true,
                Some(ShardState { spec: Some(spec), .. }) => *last_ms < now_ms - spec.retention_ms,
                // Found by recovery but not registered yet: keep until we know its retention.
                Some(_) => false,
            };
            let doomed: Vec<u64> = state
                .segments
                .values()
                .filter(|segment| segment.base != active)
                .filter(|segment| segment.shard_last_timestamp_ms.iter().all(|(uid, last)| expired(uid, last)))
                .map(|segment| segment.base)
                .collect();
            let watermarks: BTreeMap<u64, (u64, i64)> = state
                .shards
                .iter()
                .map(|(&uid, shard)| (uid, (shard.index.next_index(), shard.index.last_timestamp_ms())))
                .collect();
            (doomed, watermarks)
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        // The watermarks go first: once a segment is gone, its shards' indexes must still
        // continue after the records it held, so that no sequence number is ever reused.
        let dir = self.inner.config.dir.clone();
        let bytes = serde_json::to_vec(&watermarks).expect("watermarks serialize");
        let path = dir.join(WATERMARKS_FILE);
        blocking(move || crate::catalog::write_atomic(&path, &bytes)).await.map_err(|error| EngineError::Io {
            path: dir.join(WATERMARKS_FILE),
            operation: "write watermarks",
            source: std::io::Error::other(error.to_string()),
        })?;
        for base in &doomed {
            let segment = self.inner.state.borrow_mut().segments.remove(base).expect("doomed segments exist");
            let index_path = segment.path.with_extension(INDEX_SUFFIX);
            let segment_path = segment.path.clone();
            drop(segment);
            blocking(move || {
                std::fs::remove_file(&segment_path)?;
                match std::fs::remove_file(&index_path) {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
                    _ => Ok(()),
                }
            })
            .await
            .map_err(EngineError::io(&self.inner.config.dir, "delete expired segment"))?;
        }
        tracing::info!(dir = %self.inner.config.dir.display(), segments = doomed.len(), "deleted expired segments");
        Ok(doomed.len())
    }

    pub fn stats(&self) -> JournalStats {
        self.inner.state.borrow().stats
    }

    /// How many segment files the journal has, the active one included.
    pub fn segment_count(&self) -> usize {
        self.inner.state.borrow().segments.len()
    }

    /// Stops taking appends, commits what is pending, writes a closing empty batch (so that
    /// the last data batch is followed by a valid one and recovery can tell a bit flip in it
    /// from a torn write), and stops the flusher.
    pub async fn close(&self) -> Result<()> {
        self.inner.state.borrow_mut().closing = true;
        let _ = self.inner.wake.try_send(());
        let task = self.inner.flusher.borrow_mut().take();
        if let Some(task) = task {
            task.await;
        }
        Ok(())
    }
}

enum RunSource {
    Cached { buffer: Rc<DmaBuffer>, start: usize, len: usize },
    Disk(glommio::io::ReadResult),
}

impl std::ops::Deref for RunSource {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            RunSource::Cached { buffer, start, len } => &buffer.as_bytes()[*start..*start + *len],
            RunSource::Disk(bytes) => bytes,
        }
    }
}

/// A registered shard with its expired runs dropped.
fn served_shard(state: &mut State, shard_uid: u64, now_ms: i64) -> Result<&mut ShardState> {
    let shard = state.shards.get_mut(&shard_uid).filter(|shard| shard.spec.is_some());
    let shard = shard.ok_or(EngineError::UnknownShard(shard_uid))?;
    let retention_ms = shard.spec.expect("filtered").retention_ms;
    shard.index.expire_before(now_ms - retention_ms);
    Ok(shard)
}

async fn blocking<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
    glommio::executor().spawn_blocking(work).await
}

// ---------------------------------------------------------------------------------------------
// Group commit.
//
// Two stages, pipelined: while commit N is being written and fsynced, commit N+1 is framed
// (indexes assigned, records copied and checksummed). N+1's writes are submitted only once
// N's fsync returned, so commits still reach the disk one after another, which is what lets
// recovery tell a torn tail from corruption (see `format::scan_segment`). If N fails, N+1 is
// unframed: its appends go back to the front of the queue and nothing of it was written.

/// A commit framed and ready to write.
struct Framed {
    batch: Vec<Pending>,
    /// Per append: its records' acknowledgements, or why it was refused before writing.
    acks: Vec<Result<Vec<Appended>>>,
    runs: Vec<(u64, RunEntry)>,
    /// The commit's batches: journal position and the I/O buffer (kept for the tail cache).
    batches: Vec<(u64, Rc<DmaBuffer>)>,
    file: Rc<DmaFile>,
    base: u64,
    path: PathBuf,
    position: u64,
    bytes: u64,
    record_count: u64,
}

impl Framed {
    /// Where each shard's records end and the newest arrival time, after this commit.
    fn shard_ends(&self) -> HashMap<u64, (u64, i64)> {
        let mut ends = HashMap::new();
        for (uid, run) in &self.runs {
            ends.insert(*uid, (run.end_index(), run.timestamp_ms));
        }
        ends
    }
}

async fn flush_loop(inner: Rc<Inner>, wake: LocalReceiver<()>) {
    // The commit being written, and the task writing it.
    let mut in_flight: Option<(Framed, glommio::Task<std::result::Result<(), String>>)> = None;
    loop {
        let batch = take_batch(&inner);
        if batch.is_empty() {
            if let Some((framed, io)) = in_flight.take() {
                finish_commit(&inner, framed, io.await);
                continue;
            }
            if inner.state.borrow().closing {
                close_journal(&inner).await;
                return;
            }
            if wake.recv().await.is_none() {
                return;
            }
            continue;
        }
        // A segment roll must see every earlier commit published (it checkpoints their runs).
        if needs_roll(&inner, &batch, in_flight.as_ref().map(|(framed, _)| framed)) {
            if let Some((framed, io)) = in_flight.take() {
                finish_commit(&inner, framed, io.await);
            }
        }
        let next = frame(&inner, batch, in_flight.as_ref().map(|(framed, _)| framed)).await;
        if let Some((framed, io)) = in_flight.take() {
            if !finish_commit(&inner, framed, io.await) {
                // Indexes and positions were assigned after the failed commit: frame again.
                if let Ok(next) = next {
                    requeue(&inner, next.batch);
                }
                continue;
            }
        }
        match next {
            Ok(framed) => {
                let io = glommio::spawn_local(write_commit(framed.file.clone(), framed.base, framed.batches.clone()));
                in_flight = Some((framed, io));
            }
            Err((batch, error)) => fail_appends(&inner, batch, &error),
        }
    }
}

/// Publishes a written commit and answers its appends, or fails them. True on success.
fn finish_commit(inner: &Inner, framed: Framed, written: std::result::Result<(), String>) -> bool {
    match written {
        Ok(()) => {
            let Framed { batch, acks, .. } = publish(inner, framed);
            for (pending, ack) in batch.into_iter().zip(acks) {
                let _ = pending.reply.send(ack);
            }
            true
        }
        Err(message) => {
            let error = EngineError::WriteFailed { path: framed.path.clone(), message };
            tracing::error!(%error, "group commit failed; its appends are refused");
            fail_appends(inner, framed.batch, &error);
            false
        }
    }
}

fn fail_appends(inner: &Inner, batch: Vec<Pending>, error: &EngineError) {
    for pending in batch {
        let failed = match error {
            EngineError::WriteFailed { path, message } => {
                EngineError::WriteFailed { path: path.clone(), message: message.clone() }
            }
            other => EngineError::WriteFailed { path: inner.config.dir.clone(), message: other.to_string() },
        };
        let _ = pending.reply.send(Err(failed));
    }
}

/// Puts a framed-but-unwritten commit's appends back at the front of the queue, in order.
fn requeue(inner: &Inner, batch: Vec<Pending>) {
    let mut state = inner.state.borrow_mut();
    for pending in batch.into_iter().rev() {
        state.pending.push_front(pending);
    }
}

/// Writes the closing empty commit (see `Journal::close`) and fails anything left.
async fn close_journal(inner: &Inner) {
    match frame(inner, Vec::new(), None).await {
        Ok(framed) => {
            let written = write_commit(framed.file.clone(), framed.base, framed.batches.clone()).await;
            if let Err(message) = &written {
                tracing::error!(%message, "writing the closing batch failed");
            }
            finish_commit(inner, framed, written);
        }
        Err((_, error)) => tracing::error!(%error, "framing the closing batch failed"),
    }
    let left: Vec<Pending> = inner.state.borrow_mut().pending.drain(..).collect();
    fail_appends(inner, left, &EngineError::Closed);
}

/// Takes whole appends off the queue, up to the commit size (always at least one).
fn take_batch(inner: &Inner) -> Vec<Pending> {
    let mut state = inner.state.borrow_mut();
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while let Some(next) = state.pending.front() {
        if !batch.is_empty() && bytes + next.encoded_bytes > inner.config.commit_bytes_max {
            break;
        }
        bytes += next.encoded_bytes;
        batch.push(state.pending.pop_front().expect("front exists"));
    }
    batch
}

/// One shard's records in a commit: `(append, slot)` pairs in arrival order.
struct ShardGroup {
    uid: u64,
    slots: Vec<(usize, usize)>,
    seq_prefix: ShardSeqPrefix,
    first_index: u64,
    timestamp_ms: i64,
}

/// `AsMut<[u8]>` for glommio's buffer, so [`BatchWriter`] can frame straight into it.
struct DmaBytes(DmaBuffer);

impl AsMut<[u8]> for DmaBytes {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0.as_bytes_mut()
    }
}

/// Upper bound on the bytes a commit of `batch` takes: every batch may waste a header and
/// an alignment.
fn commit_bytes_bound(inner: &Inner, batch: &[Pending], alignment: usize) -> u64 {
    let used: usize = batch.iter().map(|pending| pending.encoded_bytes).sum();
    let capacity = inner.config.batch_bytes_max;
    let batches_max = used / (capacity - format::BATCH_HEADER_BYTES - format::RUN_HEADER_BYTES) + 1;
    (used + batches_max * (format::BATCH_HEADER_BYTES + alignment)) as u64
}

fn alignment_of(file: &DmaFile) -> usize {
    (file.alignment() as usize).max(BLOCK_BYTES)
}

/// Whether framing `batch` after `previous` would overflow the active segment.
fn needs_roll(inner: &Inner, batch: &[Pending], previous: Option<&Framed>) -> bool {
    let state = inner.state.borrow();
    let active = state.segments.values().next_back().expect("active segment");
    let written = active.bytes + previous.map_or(0, |framed| framed.bytes);
    let incoming = commit_bytes_bound(inner, batch, alignment_of(&active.file));
    written > 0 && written + incoming > inner.config.segment_bytes_max
}

/// Frames `batch` into O_DIRECT batches after `previous` (the commit still being written, if
/// any): assigns each record its index, copies and checksums it. Writes nothing. An append
/// whose shard was forgotten while it waited is refused.
async fn frame(
    inner: &Inner,
    batch: Vec<Pending>,
    previous: Option<&Framed>,
) -> std::result::Result<Framed, (Vec<Pending>, EngineError)> {
    if previous.is_none() {
        if let Err(error) = maybe_roll(inner, &batch).await {
            return Err((batch, error));
        }
    }
    let now_ms = inner.clock.now_ms();
    let after_previous = previous.map(Framed::shard_ends).unwrap_or_default();
    // Per append, per record: filled run by run, so each append's list ends in request order.
    let mut acks: Vec<Result<Vec<Option<Appended>>>> = Vec::with_capacity(batch.len());
    let mut groups: Vec<ShardGroup> = Vec::new();
    {
        let state = inner.state.borrow();
        let mut group_of: HashMap<u64, usize> = HashMap::new();
        for (append, pending) in batch.iter().enumerate() {
            let missing =
                pending.records.iter().find(|r| state.shards.get(&r.shard_uid).is_none_or(|s| s.spec.is_none()));
            if let Some(missing) = missing {
                acks.push(Err(EngineError::UnknownShard(missing.shard_uid)));
                continue;
            }
            acks.push(Ok(vec![None; pending.records.len()]));
            for (slot, record) in pending.records.iter().enumerate() {
                let group = *group_of.entry(record.shard_uid).or_insert_with(|| {
                    let shard = &state.shards[&record.shard_uid];
                    let (next_index, last_ms) = after_previous
                        .get(&record.shard_uid)
                        .copied()
                        .unwrap_or((shard.index.next_index(), shard.index.last_timestamp_ms()));
                    groups.push(ShardGroup {
                        uid: record.shard_uid,
                        slots: Vec::new(),
                        seq_prefix: shard.spec.expect("checked above").seq_prefix,
                        first_index: next_index,
                        timestamp_ms: now_ms.max(last_ms),
                    });
                    groups.len() - 1
                });
                groups[group].slots.push((append, slot));
            }
        }
    }
    for group in &groups {
        let end = group.first_index + group.slots.len() as u64;
        assert!(end <= limits::RECORD_INDEX_MAX, "shard {} ran out of record indexes", group.uid);
    }
    let (file, base, path, position) = {
        let state = inner.state.borrow();
        let (base, segment) = state.segments.iter().next_back().expect("active segment");
        let position = state.write_position + previous.map_or(0, |framed| framed.bytes);
        (segment.file.clone(), *base, segment.path.clone(), position)
    };
    let alignment = alignment_of(&file);
    let capacity = inner.config.batch_bytes_max;

    let mut batches: Vec<(u64, Rc<DmaBuffer>)> = Vec::new();
    let mut runs: Vec<(u64, RunEntry)> = Vec::with_capacity(groups.len());
    let mut batch_position = position;
    let mut writer = BatchWriter::new(DmaBytes(file.alloc_dma_buffer(capacity)));
    let mut flags = format::COMMIT_START;
    let seal = |writer: BatchWriter<DmaBytes>, at: u64, flags: u16, batches: &mut Vec<(u64, Rc<DmaBuffer>)>| {
        let (buffer, padded) = writer.finish(at, now_ms, flags, alignment);
        let mut buffer = buffer.0;
        buffer.trim_to_size(padded);
        batches.push((at, Rc::new(buffer)));
        padded as u64
    };
    for group in &groups {
        // The run open in the current batch: (offset in batch, first record index, records).
        let mut open_run: Option<(usize, u64, u32)> = None;
        for (ordinal, &(append, slot)) in group.slots.iter().enumerate() {
            let record = &batch[append].records[slot];
            let index = group.first_index + ordinal as u64;
            if !writer.fits(record.partition_key.len(), record.data.len(), open_run.is_none()) {
                if let Some((offset, first_index, record_count)) = open_run.take() {
                    let run_bytes = (writer.offset() - offset) as u32;
                    let position = batch_position + offset as u64;
                    let entry =
                        RunEntry { first_index, record_count, run_bytes, position, timestamp_ms: group.timestamp_ms };
                    runs.push((group.uid, entry));
                }
                let full = std::mem::replace(&mut writer, BatchWriter::new(DmaBytes(file.alloc_dma_buffer(capacity))));
                batch_position += seal(full, batch_position, flags, &mut batches);
                flags = 0;
            }
            if open_run.is_none() {
                open_run = Some((writer.offset(), index, 0));
                writer.begin_run(group.uid, index, group.timestamp_ms);
            }
            writer.push_record(&record.partition_key, &record.data);
            open_run.as_mut().expect("a run is open").2 += 1;
            if let Ok(appended) = &mut acks[append] {
                let sequence_number = group.seq_prefix.sequence_number(index);
                appended[slot] = Some(Appended { sequence_number, timestamp_ms: group.timestamp_ms });
            }
        }
        if let Some((offset, first_index, record_count)) = open_run {
            let run_bytes = (writer.offset() - offset) as u32;
            let position = batch_position + offset as u64;
            runs.push((
                group.uid,
                RunEntry { first_index, record_count, run_bytes, position, timestamp_ms: group.timestamp_ms },
            ));
        }
        // Framing a large commit is the longest stretch of CPU here: let others run between shards.
        futures_lite::future::yield_now().await;
    }
    batch_position += seal(writer, batch_position, flags | format::COMMIT_END, &mut batches);
    let every_slot =
        |list: Vec<Option<Appended>>| list.into_iter().map(|ack| ack.expect("every record was framed")).collect();
    Ok(Framed {
        acks: acks.into_iter().map(|ack| ack.map(every_slot)).collect(),
        record_count: groups.iter().map(|group| group.slots.len() as u64).sum(),
        batch,
        runs,
        batches,
        file,
        base,
        path,
        position,
        bytes: batch_position - position,
    })
}

/// Writes a framed commit's batches all at once, then one fdatasync.
async fn write_commit(
    file: Rc<DmaFile>,
    base: u64,
    batches: Vec<(u64, Rc<DmaBuffer>)>,
) -> std::result::Result<(), String> {
    #[cfg(feature = "fault-injection")]
    let fault = faults::next();
    #[cfg(feature = "fault-injection")]
    match fault {
        Some(faults::Fault::WriteError) => return Err("injected: Input/output error (os error 5) on write".into()),
        Some(faults::Fault::TornWrite { blocks }) => {
            // Only the first `blocks` blocks of the commit's first batch reach the disk.
            let (position, buffer) = &batches[0];
            let keep = (blocks * BLOCK_BYTES).min(buffer.len());
            let mut torn = file.alloc_dma_buffer(keep);
            torn.as_bytes_mut().copy_from_slice(&buffer.as_bytes()[..keep]);
            let _ = file.write_at(torn, position - base).await;
            let _ = file.fdatasync().await;
            return Err("injected: torn write".into());
        }
        _ => {}
    }
    let writes: Vec<_> = batches
        .iter()
        .map(|(position, buffer)| {
            let (file, buffer, offset) = (file.clone(), buffer.clone(), position - base);
            glommio::spawn_local(async move { file.write_rc_at(buffer, offset).await })
        })
        .collect();
    let mut failure = None;
    for (write, (_, buffer)) in writes.into_iter().zip(&batches) {
        match write.await {
            Ok(written) if written == buffer.len() => {}
            Ok(written) => failure = Some(format!("short write: {written} of {} bytes", buffer.len())),
            Err(error) => failure = Some(std::io::Error::from(error).to_string()),
        }
    }
    if let Some(message) = failure {
        // Nothing is published: the next commit goes to the same position and overwrites
        // whatever of this one reached the disk.
        return Err(message);
    }
    #[cfg(feature = "fault-injection")]
    if matches!(fault, Some(faults::Fault::SyncError)) {
        // The writes landed, but the fsync says they may not have: nothing is acknowledged.
        return Err("injected: Input/output error (os error 5) on fdatasync".into());
    }
    file.fdatasync().await.map_err(|error| std::io::Error::from(error).to_string())
}

/// Faults injected at the journal's I/O boundary, for tests: the next group commits of this
/// thread's journals fail as the plan says. Built only with the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
pub mod faults {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Fault {
        /// The commit's writes fail with EIO; nothing is written.
        WriteError,
        /// The writes land, then fdatasync fails with EIO.
        SyncError,
        /// Only the first `blocks` 512-byte blocks of the commit reach the disk, then the
        /// write fails (as a crash or a failing device leaves it).
        TornWrite { blocks: usize },
    }

    thread_local! {
        static PLAN: RefCell<VecDeque<Option<Fault>>> = const { RefCell::new(VecDeque::new()) };
    }

    /// Queues what the next commits do: `None` for a commit that goes through.
    pub fn plan(faults: impl IntoIterator<Item = Option<Fault>>) {
        PLAN.with(|plan| plan.borrow_mut().extend(faults));
    }

    pub(super) fn next() -> Option<Fault> {
        PLAN.with(|plan| plan.borrow_mut().pop_front().flatten())
    }
}

/// Makes a durable commit visible: shard indexes, tail cache, waiters, counters.
fn publish(inner: &Inner, framed: Framed) -> Framed {
    let mut state = inner.state.borrow_mut();
    let state = &mut *state;
    assert_eq!(state.write_position, framed.position, "commits publish in order");
    let segment = state.segments.get_mut(&framed.base).expect("active segment");
    segment.bytes += framed.bytes;
    for (uid, run) in &framed.runs {
        segment.shard_last_timestamp_ms.insert(*uid, run.timestamp_ms);
        // A shard forgotten while its commit was in flight: its bytes are on disk, unserved.
        let Some(shard) = state.shards.get_mut(uid) else { continue };
        shard.index.push(*uid, *run).expect("commits publish in order, so runs are contiguous");
        for waiter in shard.waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
    state.write_position += framed.bytes;
    state.stats.commits += 1;
    state.stats.records += framed.record_count;
    state.stats.bytes_written += framed.bytes;
    for (position, buffer) in &framed.batches {
        state.cache_bytes += buffer.len();
        state.cache.push_back(CachedBatch { position: *position, buffer: buffer.clone() });
    }
    while state.cache_bytes > inner.config.tail_cache_bytes_max {
        let evicted = state.cache.pop_front().expect("cache holds bytes");
        state.cache_bytes -= evicted.buffer.len();
    }
    framed
}

/// Seals the active segment and starts a new one if a commit of `batch` would overflow it.
/// Every earlier commit must be published (the checkpoint lists their runs).
async fn maybe_roll(inner: &Inner, batch: &[Pending]) -> Result<()> {
    if !needs_roll(inner, batch, None) {
        return Ok(());
    }
    let (sealed_base, sealed_path, runs) = {
        let state = inner.state.borrow();
        let (base, active) = state.segments.iter().next_back().expect("active segment");
        let end = base + active.bytes;
        let mut runs: Vec<(u64, RunEntry)> = Vec::new();
        for (&uid, shard) in &state.shards {
            let in_segment = shard.index.runs_from(0).filter(|run| (*base..end).contains(&run.position));
            runs.extend(in_segment.map(|run| (uid, *run)));
        }
        (*base, active.path.clone(), runs)
    };
    let new_base = inner.state.borrow().write_position;
    let segment = create_segment(&inner.config.dir, new_base).await?;
    inner.state.borrow_mut().segments.insert(new_base, segment);
    // The checkpoint only speeds up the next recovery; failing to write it loses nothing.
    let checkpoint = encode_segment_index(sealed_base, &runs);
    let index_path = sealed_path.with_extension(INDEX_SUFFIX);
    if let Err(error) = blocking(move || crate::catalog::write_atomic(&index_path, &checkpoint)).await {
        tracing::warn!(%error, "could not write a segment index checkpoint; recovery will scan the segment");
    }
    Ok(())
}

async fn create_segment(dir: &Path, base: u64) -> Result<Segment> {
    let path = dir.join(format!("{base:020}.{SEGMENT_SUFFIX}"));
    let file = open_read_write(&path).await?;
    // The new file's directory entry must be durable before any record in it is acknowledged.
    let dir_path = dir.to_path_buf();
    blocking(move || std::fs::File::open(&dir_path).and_then(|dir| dir.sync_all()))
        .await
        .map_err(EngineError::io(dir, "fsync directory"))?;
    Ok(Segment { base, path, file: Rc::new(file), bytes: 0, shard_last_timestamp_ms: HashMap::new() })
}

async fn open_read_write(path: &Path) -> Result<DmaFile> {
    // DmaFile::create opens write-only; reads need read + write (toolchain.md).
    OpenOptions::new().read(true).write(true).create(true).dma_open(path).await.map_err(|error| EngineError::Io {
        path: path.to_path_buf(),
        operation: "open",
        source: error.into(),
    })
}

/// glommio decides once per executor whether the disk supports IOPOLL, by probing the first
/// `DmaFile` it opens. If that file is new and empty the probe "succeeds" on EOF, IOPOLL is
/// wrongly enabled, and every later O_DIRECT read fails with EOPNOTSUPP (glommio issues 605
/// and 670). Opening an existing non-empty file first makes the probe read real data.
pub async fn prime_iopoll_probe(dir: &Path) -> Result<()> {
    let path = dir.join(IOPOLL_PROBE_FILE);
    let long_enough = std::fs::metadata(&path).is_ok_and(|meta| meta.len() >= IOPOLL_PROBE_BYTES as u64);
    if !long_enough {
        std::fs::write(&path, [0xA5u8; IOPOLL_PROBE_BYTES]).map_err(EngineError::io(&path, "write probe"))?;
    }
    let file = DmaFile::open(&path).await.map_err(|error| EngineError::Io {
        path: path.clone(),
        operation: "open probe",
        source: error.into(),
    })?;
    file.close().await.map_err(|error| EngineError::Io { path, operation: "close probe", source: error.into() })
}

// ---------------------------------------------------------------------------------------------
// Recovery.

struct Recovered {
    shards: HashMap<u64, ShardState>,
    segments: BTreeMap<u64, Segment>,
    write_position: u64,
}

async fn recover(dir: &Path) -> Result<Recovered> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(EngineError::io(dir, "list"))? {
        let entry = entry.map_err(EngineError::io(dir, "list"))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(base) = name.strip_suffix(&format!(".{SEGMENT_SUFFIX}")).and_then(|stem| stem.parse::<u64>().ok()) {
            bases.push(base);
        }
    }
    bases.sort_unstable();

    let mut shards: HashMap<u64, ShardState> = HashMap::new();
    let mut segments = BTreeMap::new();
    for (ordinal, &base) in bases.iter().enumerate() {
        let last = ordinal + 1 == bases.len();
        let path = dir.join(format!("{base:020}.{SEGMENT_SUFFIX}"));
        let file = open_read_write(&path).await?;
        let io = |operation| {
            let path = path.clone();
            move |error: glommio::GlommioError<()>| EngineError::Io { path, operation, source: error.into() }
        };
        let size = file.file_size().await.map_err(io("stat"))?;
        let checkpoint = if last { None } else { load_segment_index(&path.with_extension(INDEX_SUFFIX), base, size) };
        let (runs, valid_bytes) = match checkpoint {
            Some(runs) => (runs, size),
            None => {
                let read_bytes = align_up(size as usize, file.alignment() as usize);
                let bytes =
                    if size == 0 { None } else { Some(file.read_at_aligned(0, read_bytes).await.map_err(io("read"))?) };
                let bytes = bytes.as_deref().map_or(&[][..], |bytes| &bytes[..bytes.len().min(size as usize)]);
                let scan = format::scan_segment(bytes, base);
                match scan.end {
                    SegmentEnd::Clean => {}
                    SegmentEnd::Torn { offset, error_offset, error } if last => {
                        tracing::warn!(path = %path.display(), offset, error_offset, %error, "truncating a torn tail: the last group commit never completed, so none of it was acknowledged");
                    }
                    SegmentEnd::Torn { error_offset: offset, error: reason, .. }
                    | SegmentEnd::Corrupt { offset, error: reason } => {
                        return Err(EngineError::Corrupt { path, offset: offset as u64, reason });
                    }
                }
                let runs: Vec<(u64, RunEntry)> = scan
                    .batches
                    .iter()
                    .flat_map(|batch| batch.runs.iter())
                    .map(|run| {
                        let entry = RunEntry {
                            first_index: run.first_index,
                            record_count: run.record_count,
                            run_bytes: run.run_bytes,
                            position: base + run.offset as u64,
                            timestamp_ms: run.timestamp_ms,
                        };
                        (run.shard_uid, entry)
                    })
                    .collect();
                if !last {
                    let checkpoint = encode_segment_index(base, &runs);
                    let index_path = path.with_extension(INDEX_SUFFIX);
                    blocking(move || crate::catalog::write_atomic(&index_path, &checkpoint)).await.map_err(
                        |error| EngineError::Io {
                            path: path.clone(),
                            operation: "write index",
                            source: std::io::Error::other(error.to_string()),
                        },
                    )?;
                }
                (runs, scan.valid_bytes as u64)
            }
        };
        if valid_bytes < size {
            file.truncate(valid_bytes).await.map_err(io("truncate"))?;
            file.fdatasync().await.map_err(io("fdatasync"))?;
        }
        let mut segment = Segment {
            base,
            path: path.clone(),
            file: Rc::new(file),
            bytes: valid_bytes,
            shard_last_timestamp_ms: HashMap::new(),
        };
        for (uid, run) in runs {
            let shard = shards.entry(uid).or_default();
            shard.index.push(uid, run).map_err(|gap| EngineError::Gap { path: path.clone(), gap })?;
            segment.shard_last_timestamp_ms.insert(uid, run.timestamp_ms);
        }
        segments.insert(base, segment);
    }

    // Shards whose every segment retention deleted continue after their watermark.
    for (uid, (next_index, last_timestamp_ms)) in load_watermarks(dir)? {
        let shard = shards.entry(uid).or_default();
        let found = shard.index.next_index();
        if next_index > found {
            if shard.index.run_count() > 0 {
                return Err(EngineError::MissingRecords { shard_uid: uid, watermark: next_index, found });
            }
            shard.index = ShardIndex::starting_at(next_index, last_timestamp_ms);
        }
    }

    if segments.is_empty() {
        segments.insert(0, create_segment(dir, 0).await?);
    }
    let (base, active) = segments.iter().next_back().expect("at least one segment");
    let write_position = base + active.bytes;
    Ok(Recovered { shards, segments, write_position })
}

fn load_watermarks(dir: &Path) -> Result<BTreeMap<u64, (u64, i64)>> {
    let path = dir.join(WATERMARKS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| EngineError::Io {
            path,
            operation: "decode watermarks",
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(source) => Err(EngineError::Io { path, operation: "read watermarks", source }),
    }
}

// Segment index checkpoint: "SLX1" | base u64 | count u32 | count × 40-byte entries | xxh3 u64.
const INDEX_MAGIC: &[u8; 4] = b"SLX1";
const INDEX_ENTRY_BYTES: usize = 40;

fn encode_segment_index(base: u64, runs: &[(u64, RunEntry)]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + runs.len() * INDEX_ENTRY_BYTES + 8);
    bytes.extend_from_slice(INDEX_MAGIC);
    bytes.extend_from_slice(&base.to_le_bytes());
    bytes.extend_from_slice(&(runs.len() as u32).to_le_bytes());
    let mut sorted = runs.to_vec();
    sorted.sort_by_key(|(_, run)| run.position);
    for (uid, run) in sorted {
        bytes.extend_from_slice(&uid.to_le_bytes());
        bytes.extend_from_slice(&run.first_index.to_le_bytes());
        bytes.extend_from_slice(&run.record_count.to_le_bytes());
        bytes.extend_from_slice(&run.run_bytes.to_le_bytes());
        bytes.extend_from_slice(&run.position.to_le_bytes());
        bytes.extend_from_slice(&run.timestamp_ms.to_le_bytes());
    }
    let checksum = xxh3_64(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// A sealed segment's checkpoint, or `None` if it is missing or fails any check (then the
/// segment is scanned instead).
fn load_segment_index(path: &Path, base: u64, segment_bytes: u64) -> Option<Vec<(u64, RunEntry)>> {
    let bytes = std::fs::read(path).ok()?;
    let (body, checksum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if xxh3_64(body) != u64::from_le_bytes(checksum.try_into().ok()?) || body.get(..4)? != INDEX_MAGIC {
        return None;
    }
    let u64_at = |offset: usize| Some(u64::from_le_bytes(body.get(offset..offset + 8)?.try_into().ok()?));
    let u32_at = |offset: usize| Some(u32::from_le_bytes(body.get(offset..offset + 4)?.try_into().ok()?));
    if u64_at(4)? != base {
        return None;
    }
    let count = u32_at(12)? as usize;
    if body.len() != 16 + count * INDEX_ENTRY_BYTES {
        return None;
    }
    let mut runs = Vec::with_capacity(count);
    for entry in 0..count {
        let at = 16 + entry * INDEX_ENTRY_BYTES;
        let run = RunEntry {
            first_index: u64_at(at + 8)?,
            record_count: u32_at(at + 16)?,
            run_bytes: u32_at(at + 20)?,
            position: u64_at(at + 24)?,
            timestamp_ms: i64::from_le_bytes(body.get(at + 32..at + 40)?.try_into().ok()?),
        };
        let end = run.position.checked_add(u64::from(run.run_bytes))?;
        if run.position < base || end > base + segment_bytes || run.record_count == 0 {
            return None;
        }
        runs.push((u64_at(at)?, run));
    }
    Some(runs)
}
