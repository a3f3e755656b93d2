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
//! executor of its core.
//!
//! Every file operation goes through the journal's [`Storage`] (`crate::storage`): glommio's
//! O_DIRECT files in production, the simulated disk in the simulation tests.
//!
//! This module holds the journal's state and its small operations; the rest is split by
//! concern: [`commit`] (the group-commit pipeline), [`segment`] (segment files, rolls,
//! checkpoints), [`recovery`], [`retention`], [`read`], and [`sealed_runs`] (the runs of sealed
//! segments, loaded from their checkpoints when a read lands in one: the shard indexes keep
//! only one span per sealed segment in memory, `crate::shard_index`).

mod commit;
mod read;
mod recovery;
mod retention;
mod sealed_runs;
mod segment;

use crate::clock::SharedClock;
use crate::error::{EngineError, Result};
use crate::format::{self, RaftPosition};
use crate::histogram::Histogram;
use crate::limits;
use crate::sequence::{SequenceNumber, ShardSeqPrefix};
use crate::shard_index::{RunEntry, ShardIndex};
use crate::storage::{DmaStorage, Storage};
use bytes::Bytes;
use commit::Pending;
use futures_channel::oneshot;
// glommio's local channel and semaphore are plain single-threaded primitives (wakers only, no
// reactor): they work on any executor, the simulator's included. Timers, spawning and files
// are what need glommio's executor, and those go through `Storage`.
use glommio::channels::local_channel::{self, LocalSender};
use glommio::sync::Semaphore;
use rustc_hash::FxHashMap;
use segment::{CachedBatch, Segment};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;

pub use crate::storage::dma::prime_iopoll_probe;

/// An append queued by [`Journal::queue_at`], on its way to the disk.
pub struct QueuedAppend(oneshot::Receiver<Result<Vec<Appended>>>);

impl QueuedAppend {
    /// The records' acknowledgements once they are durable, or why they were refused. Once
    /// answered, it answers nothing more (a caller waits on it until then, or drops it).
    pub async fn durable(&mut self) -> Result<Vec<Appended>> {
        (&mut self.0).await.map_err(|_| EngineError::Closed)?
    }

    /// The answer, if it came already ([`QueuedAppend::durable`] without waiting).
    pub fn try_durable(&mut self) -> Option<Result<Vec<Appended>>> {
        match self.0.try_recv() {
            Ok(Some(answer)) => Some(answer),
            Ok(None) => None,
            Err(_) => Some(Err(EngineError::Closed)),
        }
    }
}

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
    /// Bytes the active segment reserves ahead of the commit being written (fallocate; see
    /// `limits::SEGMENT_RESERVE_BYTES_DEFAULT`); 0: none, the segment grows by its writes.
    pub segment_reserve_bytes: u64,
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
            segment_reserve_bytes: limits::SEGMENT_RESERVE_BYTES_DEFAULT,
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
    /// The caller sealed (encrypted) `data`: stored as the record's `RECORD_SEALED` flag and
    /// returned in [`StoredRecord::sealed`]; the engine never interprets the data. A sealed
    /// record may exceed [`limits::RECORD_BYTES_MAX`] by [`limits::RECORD_SEALING_BYTES_MAX`].
    pub sealed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub sequence_number: SequenceNumber,
    pub timestamp_ms: i64,
}

/// What a replicated shard's runs say of its Raft log ([`Journal::raft_runs`]): each run of
/// an entry carries the entry's term and index (`format::RaftPosition`), so the journal knows,
/// from its own bytes, which entries it holds. Kept as the Raft log keeps its terms
/// (`sluice_cluster::log_store`): a list of changes, not one per entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftRuns {
    /// `(first index, term)` at each change of term, in index order.
    pub terms: Vec<(u64, u64)>,
    /// The newest entry whose records the journal holds durably.
    pub tip: Option<RaftTip>,
}

/// The newest Raft entry a shard's journal holds ([`RaftRuns::tip`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTip {
    pub position: RaftPosition,
    /// The record index after the entry's records: where the next entry's go.
    pub end_index: u64,
}

impl RaftRuns {
    /// A run of the entry at `position`, ending before record index `end_index`, is durable.
    /// One at or below the tip, but for the tip's own entry (whose records span several runs),
    /// replaced the entries from its index on: a position-only run cuts no records, so nothing
    /// cut them before.
    fn observe(&mut self, position: RaftPosition, end_index: u64) {
        if self.tip.is_some_and(|tip| tip.position.index >= position.index && tip.position != position) {
            self.cut(position.index);
        }
        if self.terms.last().is_none_or(|&(_, term)| term != position.term) {
            self.terms.push((position.index, position.term));
        }
        self.tip = Some(RaftTip { position, end_index });
    }

    /// The entries from `index` on were replaced (a new leader's suffix): their terms go, and
    /// the tip with them until a run of the replacing entries is durable.
    fn cut(&mut self, index: u64) {
        self.terms.retain(|&(first, _)| first < index);
        if self.tip.is_some_and(|tip| tip.position.index >= index) {
            self.tip = None;
        }
    }

    /// The term of entry `index`, if the journal holds entries up to it (those before the
    /// first run with a position, and those past the tip, are not known here).
    pub fn term_of(&self, index: u64) -> Option<u64> {
        let tip = self.tip?;
        if index > tip.position.index {
            return None;
        }
        let changes_at_or_before = self.terms.partition_point(|&(first, _)| first <= index);
        changes_at_or_before.checked_sub(1).map(|at| self.terms[at].1)
    }
}

/// One entry of a replicated shard's Raft log, as its runs hold it ([`Journal::raft_entries`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftEntryRun {
    pub position: RaftPosition,
    /// The entry's records are `first_index..end_index` (none: a position-only run, which sits
    /// where the records before it end).
    pub first_index: u64,
    pub end_index: u64,
}

impl RaftEntryRun {
    /// Adds a run of `position` written after the `entries` found so far (in log order): the
    /// next run of the newest entry (one entry's records may span runs), or an entry that
    /// replaces those from its index on, and, as recovery resolves records, those whose
    /// records start at or after its first record (a position-only run there sits before it).
    fn resolve(entries: &mut Vec<RaftEntryRun>, position: RaftPosition, run: &RunEntry) {
        if let Some(last) = entries.last_mut().filter(|last| last.position == position) {
            if last.end_index == run.first_index {
                last.end_index = run.end_index();
                return;
            }
        }
        let replaced = |entry: &RaftEntryRun| {
            entry.position.index >= position.index
                || entry.first_index > run.first_index
                || (entry.first_index == run.first_index && entry.end_index > entry.first_index)
        };
        entries.truncate(entries.iter().position(replaced).unwrap_or(entries.len()));
        entries.push(RaftEntryRun { position, first_index: run.first_index, end_index: run.end_index() });
    }
}

/// Where a shard's records end ([`Journal::tip`]), moved past appends queued after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardTip {
    pub next_index: u64,
    pub last_timestamp_ms: i64,
    pub seq_prefix: ShardSeqPrefix,
}

impl ShardTip {
    /// What the commit of `count` records queued at this tip with `arrival_ms`
    /// ([`Journal::queue_at`]) gives them, as the commit's framing does: the indexes from
    /// `next_index` on, and the arrival time never before the shard's last one. The tip moves
    /// past them.
    pub fn append(&mut self, count: u64, arrival_ms: i64) -> Vec<Appended> {
        let timestamp_ms = arrival_ms.max(self.last_timestamp_ms);
        let acks = (self.next_index..self.next_index + count)
            .map(|index| Appended { sequence_number: self.seq_prefix.sequence_number(index), timestamp_ms })
            .collect();
        self.next_index += count;
        self.last_timestamp_ms = timestamp_ms;
        acks
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub sequence_number: SequenceNumber,
    /// Arrival time: when the record's group commit assigned its sequence number.
    pub timestamp_ms: i64,
    pub partition_key: Bytes,
    pub data: Bytes,
    /// The record was appended with [`AppendRecord::sealed`].
    pub sealed: bool,
    /// The Raft entry the record came from, if its run carries one ([`Journal::queue_at`]).
    pub raft: Option<RaftPosition>,
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

/// A journal on storage `S`; `Journal` alone is the production one, on glommio's O_DIRECT files.
pub struct Journal<S: Storage = DmaStorage> {
    inner: Rc<Inner<S>>,
}

impl<S: Storage> Clone for Journal<S> {
    fn clone(&self) -> Journal<S> {
        Journal { inner: self.inner.clone() }
    }
}

struct Inner<S: Storage> {
    config: JournalConfig,
    clock: SharedClock,
    storage: S,
    state: RefCell<State<S>>,
    space: Rc<Semaphore>,
    wake: LocalSender<()>,
    flusher: RefCell<Option<S::Task<()>>>,
    /// One watermark writer at a time: a retention pass (see [`Journal::enforce_retention`])
    /// or a shard's restart ([`Journal::restart_shard_at`]). One permit.
    watermark_writer: Semaphore,
    /// Shards' runs of sealed segments, loaded for lookups inside a sealed span. Apart from
    /// `state` so that a lookup borrows it while it changes the state (expiry, pins).
    sealed_runs: RefCell<sealed_runs::SealedRunsCache>,
    /// The file system's block size, within `format::BLOCK_BYTES..=COMMIT_ALIGNMENT_BYTES_MAX`:
    /// commits start and end on it (`segment::alignment_of`).
    block_bytes: usize,
}

struct State<S: Storage> {
    shards: FxHashMap<u64, ShardState>,
    /// Shards forgotten (their streams deleted) whose runs may still lie in segments: the
    /// watermarks list them, so that recovery ignores those runs.
    forgotten: BTreeSet<u64>,
    pending: VecDeque<Pending>,
    segments: BTreeMap<u64, Segment<S>>,
    /// Journal position where the next batch goes: the end of the active segment.
    write_position: u64,
    cache: VecDeque<CachedBatch<S>>,
    cache_bytes: usize,
    closing: bool,
    /// Why the closing batch could not be written ([`Journal::close`]).
    close_error: Option<EngineError>,
    stats: JournalStats,
}

/// Counters for tests, benchmarks and the daemon's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Group commits: one write and one fdatasync each.
    pub commits: u64,
    pub records: u64,
    /// Bytes written, padding included.
    pub bytes_written: u64,
    /// Records per group commit.
    pub commit_records: Histogram,
    /// Microseconds from a commit's framing to its publication (writes and fdatasync).
    pub commit_us: Histogram,
    /// Runs (one shard's records in one batch) reads took from the tail cache in memory:
    /// the cache's hits. Counted per run because a read that spans the cache's edge takes
    /// some runs from each.
    pub tail_cache_hits: u64,
    /// Runs reads took from a segment file on disk: the tail cache's misses.
    pub tail_cache_misses: u64,
    /// Records that left the shard indexes because their retention period ended (not those
    /// of deleted streams, which go with their stream). The expired records of a sealed
    /// segment count when the shard's last record in that segment expires: until then the
    /// index keeps the segment's span (and skips the expired records in it).
    pub retention_expired_records: u64,
    /// Sealed segment files retention deleted (expired records, or deleted streams' only).
    pub retention_deleted_segments: u64,
    /// Bytes of journal those segments held.
    pub retention_deleted_bytes: u64,
    /// Times a lookup inside a sealed segment loaded one shard's runs of it (from its
    /// checkpoint, or a scan): the sealed-run cache's misses.
    pub sealed_run_loads: u64,
    /// Of those, loads that scanned the segment because its checkpoint was missing or failed
    /// a check.
    pub sealed_run_scans: u64,
}

/// What the shard indexes hold in memory (see [`Journal::index_footprint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexFootprint {
    pub active_runs: usize,
    pub sealed_spans: usize,
    pub cached_runs: usize,
}

impl JournalStats {
    fn record_commit(&mut self, records: u64, bytes: u64, latency: std::time::Duration) {
        self.commits += 1;
        self.records += records;
        self.bytes_written += bytes;
        self.commit_records.record(records);
        self.commit_us.record(latency.as_micros() as u64);
    }
}

/// Where a replicated shard's runs are held on disk from ([`Journal::hold_segments_from`]).
#[derive(Debug, Clone, Copy)]
struct HeldFrom {
    first_index: u64,
    first_entry: u64,
}

#[derive(Default)]
struct ShardState {
    spec: Option<ShardSpec>,
    index: ShardIndex,
    /// What the runs' Raft positions say of a replicated shard's log.
    raft: RaftRuns,
    /// A gated shard's published end ([`Journal::gate_shard`]): records are served only
    /// below it (and below the durable end). `None`: the shard serves what is durable.
    published: Option<u64>,
    /// Readers waiting for the record at an index to be served ([`Journal::wait_for_index`]).
    waiters: Vec<(u64, oneshot::Sender<()>)>,
    /// Appends queued with a first index ([`Journal::queue_at`]) not answered yet: a
    /// replacement waits for none.
    unanswered: u32,
    /// Closed by a reshard: takes no more appends; its records stay readable.
    closed: bool,
    /// Where the shard's runs stay on disk whatever their age ([`Journal::hold_segments_from`]):
    /// from this record index and this Raft entry on, not compacted yet.
    segments_held_from: Option<HeldFrom>,
}

impl ShardState {
    /// Runs that arrived before this expire (`spec` must be set): those older than the
    /// shard's retention, but for a gated shard none past its published end. Its runs past
    /// it are Raft entries not known to be committed, which the group may still have to
    /// send, replace or commit (`Journal::gate_shard`). Arrival times never decrease along
    /// a shard, so the runs before the first one past the published end that arrived before
    /// it are a prefix, all published.
    fn expiry_cutoff(&self, now_ms: i64) -> i64 {
        let cutoff = now_ms - self.spec.expect("a registered shard").retention_ms;
        match self.published.and_then(|published| self.index.first_timestamp_past(published)) {
            Some(unpublished_ms) => cutoff.min(unpublished_ms),
            None => cutoff,
        }
    }

    /// Where a read stops: the visible end, or (`gated` false, the shard's Raft group reading
    /// its log) the durable end.
    fn read_end(&self, gated: bool) -> u64 {
        if gated {
            self.visible_end()
        } else {
            self.index.next_index()
        }
    }

    /// Where the records served end: the durable end, or a gated shard's published end if
    /// that is lower, but never below the trim horizon's floor (retention is not gated).
    fn visible_end(&self) -> u64 {
        let durable = self.index.next_index();
        let end = self.published.map_or(durable, |published| published.min(durable));
        end.max(self.index.trim_index_floor())
    }

    /// Wakes the readers waiting for a record the shard now serves (all of them if `all`:
    /// the shard closed), and forgets those that stopped waiting.
    fn wake_waiters(&mut self, all: bool) {
        let end = self.visible_end();
        for (index, waiter) in std::mem::take(&mut self.waiters) {
            if all || index < end {
                let _ = waiter.send(());
            } else if !waiter.is_canceled() {
                self.waiters.push((index, waiter));
            }
        }
    }
}

impl Journal {
    /// Opens (recovering) or creates the journal in `config.dir` on the local disk. Must run on
    /// the glommio executor that will own the journal, before that executor opens any other
    /// `DmaFile` (see [`prime_iopoll_probe`]).
    pub async fn open(config: JournalConfig, clock: SharedClock) -> Result<Journal> {
        Journal::open_in(DmaStorage, config, clock).await
    }
}

impl<S: Storage> Journal<S> {
    /// Opens (recovering) or creates the journal in `config.dir` of `storage`, on the executor
    /// `storage` spawns onto.
    pub async fn open_in(storage: S, config: JournalConfig, clock: SharedClock) -> Result<Journal<S>> {
        let dir = config.dir.clone();
        storage.prepare_dir(&dir).await.map_err(EngineError::io(&dir, "create directory"))?;
        let recovered = recovery::recover(&storage, &dir).await?;
        let block_bytes = match storage.block_size(&dir) {
            Ok(bytes) if bytes.is_power_of_two() => {
                bytes.clamp(format::BLOCK_BYTES, limits::COMMIT_ALIGNMENT_BYTES_MAX)
            }
            _ => format::BLOCK_BYTES,
        };
        let (wake, wake_rx) = local_channel::new_bounded(1);
        let state = State {
            shards: recovered.shards,
            forgotten: recovered.forgotten,
            pending: VecDeque::new(),
            write_position: recovered.write_position,
            segments: recovered.segments,
            cache: VecDeque::new(),
            cache_bytes: 0,
            closing: false,
            close_error: None,
            stats: JournalStats::default(),
        };
        let inner = Rc::new(Inner {
            space: Rc::new(Semaphore::new(config.pending_bytes_max as u64)),
            config,
            clock,
            storage,
            state: RefCell::new(state),
            wake,
            flusher: RefCell::new(None),
            watermark_writer: Semaphore::new(1),
            sealed_runs: RefCell::default(),
            block_bytes,
        });
        let task = inner.storage.spawn(commit::flush_loop(inner.clone(), wake_rx));
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
            shard.wake_waiters(true);
        }
        // A barrier: an empty append queued behind every append already accepted.
        let permit = self.inner.space.acquire_static_permit(1).await.map_err(|_| EngineError::Closed)?;
        let (reply, receiver) = oneshot::channel();
        {
            let mut state = self.inner.state.borrow_mut();
            if state.closing {
                return Err(EngineError::Closed);
            }
            state.pending.push_back(Pending {
                records: Vec::new(),
                shard_uid: None,
                arrival_ms: None,
                first_index: None,
                raft: None,
                encoded_bytes: 0,
                _permit: permit,
                reply,
            });
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

    /// Marks a shard closed without waiting, when everything before its end is durable
    /// already: at start-up, for shards the catalog records as closed, and when a replicated
    /// shard's seal commits (`sluice_cluster::journal_log`). Readers waiting for more of it
    /// are woken.
    pub fn mark_closed(&self, uid: u64) {
        let mut state = self.inner.state.borrow_mut();
        let shard = state.shards.entry(uid).or_default();
        shard.closed = true;
        shard.wake_waiters(true);
    }

    /// Forgets a shard (its stream was deleted): its records are no longer served, and its
    /// segments can be deleted without waiting for its retention.
    pub fn forget_shard(&self, uid: u64) {
        let mut state = self.inner.state.borrow_mut();
        state.shards.remove(&uid);
        state.forgotten.insert(uid);
    }

    /// Forgets every shard found in the journal that `keep` rejects: after recovery, the
    /// shards of streams deleted before the restart.
    pub fn retain_shards(&self, keep: impl Fn(u64) -> bool) {
        let mut state = self.inner.state.borrow_mut();
        let state = &mut *state;
        let forgotten = &mut state.forgotten;
        state.shards.retain(|&uid, _| {
            let kept = keep(uid);
            if !kept {
                forgotten.insert(uid);
            }
            kept
        });
    }

    /// Appends records (to any shards of this core) and resolves once they are durable, with
    /// their sequence numbers in request order. Records of one shard keep their order.
    pub async fn append(&self, records: Vec<AppendRecord>) -> Result<Vec<Appended>> {
        let encoded_bytes = self.validate_append(&records, None, None)?;
        self.enqueue(records, None, encoded_bytes, None, None, None).await?.await.map_err(|_| EngineError::Closed)?
    }

    /// For a replica applying its log (`server/src/ops/cluster/records.rs`): queues one
    /// shard's records with their arrival time given instead of read from the clock, to be
    /// stored from record index `first_index` on, and returns once they are queued (after
    /// waiting for queue space); [`QueuedAppend::durable`] resolves once they are durable.
    ///
    /// Appends queued one after another commit in that order, so an applier can have many on
    /// their way to the disk at once. Each keeps its own arrival time (two in one commit do not
    /// share one): the shard's records get `max(arrival_ms, the shard's last arrival time)`, so
    /// times never go backwards, and a replicated shard's records take the time its leader
    /// wrote into the Raft entry, equal on every replica (`docs/replication.md`). An append
    /// that would not start at `first_index` (an earlier one failed, so the shard ends before
    /// it) is refused with [`EngineError::NotNext`] and stores nothing: an applier never
    /// leaves a hole behind a failed append.
    ///
    /// With `raft`, the records' runs carry the position of the Raft entry they came from
    /// (`format::RaftPosition`), and once durable the shard's [`Journal::raft_runs`] says so,
    /// after a restart too.
    ///
    /// A gated shard's append with `raft` may start below the shard's durable end: a new
    /// leader replaces a follower's entries that never committed. The shard is cut back to
    /// `first_index` first (its records from there on, and the Raft terms from `raft.index`
    /// on, are gone), which must be a run boundary at or past the published end
    /// ([`EngineError::ReplacesPublished`] otherwise), with no other append of the shard
    /// unanswered ([`EngineError::NotNext`] otherwise). The watermarks are written before the
    /// cut, so a restart finds the shard as cut, or as before it with the replaced runs; once
    /// the replacing run is durable, recovery takes it over the runs it replaced ("the later
    /// run wins", `docs/format.md`). If the replacing append fails, the cut stands: the next
    /// append at `first_index` replaces the runs, and until one is durable a restart finds
    /// them again, as Raft lets a follower's log keep entries that never committed. So a
    /// replicated shard's close must follow its entries' durability, as a seal entry does.
    pub async fn queue_at(
        &self,
        records: Vec<AppendRecord>,
        arrival_ms: i64,
        first_index: u64,
        raft: Option<RaftPosition>,
    ) -> Result<QueuedAppend> {
        let encoded_bytes = self.validate_append(&records, Some(first_index), raft)?;
        let shard_uid = records[0].shard_uid;
        if let Some(position) = raft {
            self.replace_from(shard_uid, first_index, position).await?;
        }
        let queued = self.enqueue(records, Some(shard_uid), encoded_bytes, Some(arrival_ms), Some(first_index), raft);
        queued.await.map(QueuedAppend)
    }

    /// For a replicated shard's log: queues a *position-only run* (`format::RUN_RAFT`), which
    /// says that the Raft entry at `raft` holds no records (a new leader's first entry, a seal,
    /// a membership change) and sits where the shard's records end, at `first_index`
    /// ([`EngineError::NotNext`] otherwise, as [`Journal::queue_at`]). It serves no record; once
    /// durable, [`Journal::raft_runs`] counts it, after a restart too. So the journal orders
    /// every entry of the log by its write order, and a later run replaces it as any run
    /// (`docs/replication.md`, "The journal as the Raft log").
    ///
    /// Like [`Journal::queue_at`] with a position, it replaces the records from `first_index`
    /// on if the shard reaches past it, and the entries from `raft.index` on. A closed shard
    /// takes it too: a Raft log goes on past a seal, its entries storing no records.
    pub async fn queue_position(&self, shard_uid: u64, first_index: u64, raft: RaftPosition) -> Result<QueuedAppend> {
        if raft.index == 0 {
            return Err(EngineError::RaftIndexZero);
        }
        if self.inner.state.borrow().shards.get(&shard_uid).is_none_or(|shard| shard.spec.is_none()) {
            return Err(EngineError::UnknownShard(shard_uid));
        }
        self.replace_from(shard_uid, first_index, raft).await?;
        let encoded_bytes = format::BATCH_HEADER_BYTES + format::RUN_RAFT_HEADER_BYTES;
        let queued = self.enqueue(Vec::new(), Some(shard_uid), encoded_bytes, None, Some(first_index), Some(raft));
        queued.await.map(QueuedAppend)
    }

    /// Cuts gated shard `uid` back to `first_index` if its records reach past it, for an
    /// append of the Raft entry at `position` that replaces them ([`Journal::queue_at`]).
    async fn replace_from(&self, uid: u64, first_index: u64, position: RaftPosition) -> Result<()> {
        let check = |state: &State<S>| -> Result<bool> {
            let shard = state.shards.get(&uid).ok_or(EngineError::UnknownShard(uid))?;
            let actual = shard.index.next_index();
            if first_index >= actual {
                return Ok(false);
            }
            let not_next = EngineError::NotNext { shard_uid: uid, expected: first_index, actual };
            let published = shard.published.ok_or(not_next)?;
            if first_index < published {
                return Err(EngineError::ReplacesPublished { shard_uid: uid, first_index, published });
            }
            // Below the trim horizon there is nothing left to replace (and a watermark may
            // not end before its trim).
            if shard.unanswered > 0 || first_index < shard.index.trim_index_floor() {
                return Err(EngineError::NotNext { shard_uid: uid, expected: first_index, actual });
            }
            if shard.closed {
                return Err(EngineError::ShardClosed(uid));
            }
            Ok(true)
        };
        if !check(&self.inner.state.borrow())? {
            return Ok(());
        }
        // Recovery refuses a shard that ends below its watermark: the file must say the shard
        // may end at `first_index` before any replacing run can be durable.
        let _writer = self.inner.watermark_writer.acquire_permit(1).await.map_err(|_| EngineError::Closed)?;
        let mut watermarks = {
            // Checked again with the watermarks taken: reads may have moved the trim meanwhile.
            let state = self.inner.state.borrow();
            if !check(&state)? {
                return Ok(());
            }
            retention::watermarks_of(&state)
        };
        if let Some(watermark) = watermarks.get_mut(&uid) {
            watermark.next_index = watermark.next_index.min(first_index);
        }
        self.write_watermarks(&watermarks).await?;
        self.with_sealed_runs(uid, |state, runs| {
            // Again: appends and publications may have come while the file was written.
            if !check(state)? {
                return Ok(());
            }
            let shard = state.shards.get_mut(&uid).expect("checked");
            if !shard.index.truncate(first_index, runs)? {
                let actual = shard.index.next_index();
                return Err(EngineError::NotNext { shard_uid: uid, expected: first_index, actual }.into());
            }
            shard.raft.cut(position.index);
            Ok(())
        })
        .await
    }

    /// What the shard's runs say of its Raft log: the terms, and the newest entry held.
    pub fn raft_runs(&self, shard_uid: u64) -> Result<RaftRuns> {
        let state = self.inner.state.borrow();
        let shard = state.shards.get(&shard_uid).ok_or(EngineError::UnknownShard(shard_uid))?;
        Ok(shard.raft.clone())
    }

    /// The entries of `shard_uid`'s Raft log from index `from` on that the journal holds, in
    /// log order (`docs/replication.md`, "The journal as the Raft log"): what a group opening
    /// its log from the journal needs. Replacements are resolved by write order, as recovery
    /// resolves them. Read from the run lists of the segments (a sealed one's checkpoint, or a
    /// scan of it), but those whose entries all lie before `from` and replaced none written
    /// before them. Entries whose records lie below the trim horizon's floor are left out: their
    /// runs may be gone already, and those still there go with their segments (a position-only
    /// run at the floor may go too). A group compacts its log past such entries.
    pub async fn raft_entries(&self, shard_uid: u64, from: u64) -> Result<Vec<RaftEntryRun>> {
        self.raft_entries_between(shard_uid, from, u64::MAX).await
    }

    /// [`Journal::raft_entries`] from `from` to `to` (inclusive): what a peer restoring from
    /// this one asks for a page at a time. Segments whose runs all lie after `to` are not
    /// read (they replace no entry up to it: a replacement goes at its own index and after).
    pub async fn raft_entries_between(&self, shard_uid: u64, from: u64, to: u64) -> Result<Vec<RaftEntryRun>> {
        // Per segment to read, oldest first: its runs in memory (the active segment), or
        // where to load them from, pinned meanwhile.
        enum Source<S: Storage> {
            Active(Vec<(RunEntry, RaftPosition)>),
            Sealed { base: u64, path: PathBuf, file: Rc<S::File>, bytes: u64, _pin: segment::SegmentPin },
        }
        let (sources, floor) = {
            let state = self.inner.state.borrow();
            let shard = state.shards.get(&shard_uid).ok_or(EngineError::UnknownShard(shard_uid))?;
            let active = *state.segments.keys().next_back().expect("there is always an active segment");
            let mut sources: Vec<Source<S>> = Vec::new();
            let mut before = segment::SpansBefore::default();
            // Whether a segment read so far holds an entry from `from` on: a later segment whose
            // runs all lie before `from` matters only if it replaces such an entry (a run
            // replaces only runs written before it), so a walk of one page of a long log reads
            // the segments around the page, not every segment that replaced something.
            let mut holds_from = false;
            for segment in state.segments.values() {
                let Some(span) = segment.shard_raft_spans.get(&shard_uid) else { continue };
                let replaces = before.replaced_by(segment, |uid| uid == shard_uid);
                before.add_shard(segment, shard_uid);
                if (span.highest < from && !(replaces && holds_from)) || span.lowest > to {
                    continue;
                }
                holds_from |= span.highest >= from;
                if segment.base == active {
                    sources.push(Source::Active(segment.runs.positioned(shard_uid)));
                } else {
                    sources.push(Source::Sealed {
                        base: segment.base,
                        path: segment.path.clone(),
                        file: segment.file.clone(),
                        bytes: segment.bytes,
                        _pin: segment::SegmentPin::new(segment),
                    });
                }
            }
            (sources, shard.index.trim_index_floor())
        };
        let mut entries = Vec::new();
        for source in sources {
            let runs = match source {
                Source::Active(runs) => runs,
                Source::Sealed { base, path, file, bytes, _pin } => {
                    let (all, _) = sealed_runs::segment_runs(&self.inner.storage, &file, &path, base, bytes).await?;
                    all.positioned(shard_uid)
                }
            };
            for (run, position) in runs {
                RaftEntryRun::resolve(&mut entries, position, &run);
            }
        }
        // The floor is a run boundary: an entry's records lie wholly on one side of it.
        entries
            .retain(|entry| entry.position.index >= from && entry.position.index <= to && entry.first_index >= floor);
        Ok(entries)
    }

    /// Gates a replicated shard, whose runs are written before their Raft entries commit
    /// (`docs/replication.md`, "The journal as the Raft log"): from now on its reads,
    /// iterators (LATEST included), bounds and waiters stop at its *visible end*, the lower of
    /// `published` and its durable end, which [`Journal::publish_until`] moves as entries
    /// commit. Writes and [`Journal::tip`] are not gated: the shard's writer appends past the
    /// visible end. Called again, it sets the published end outright, lower too.
    ///
    /// Retention is gated too, at the published end: no record past it expires, whatever its
    /// age, since the group may still send, replace or commit its entry; records before it
    /// expire by time as others do (so a visible end below the trim horizon is the trim
    /// horizon). Every entry whose records expired was thus published, so committed
    /// (`docs/replication.md`, "Retention while the group runs"). Only a member cut off from
    /// its group's commits for a whole retention period keeps such old records. A replicated
    /// shard must be gated (at 0, say) before any retention pass, in the step that registers
    /// it, and held ([`Journal::hold_segments_from`]).
    ///
    /// The journal does not store the gate: after a restart every shard serves what is
    /// durable until its group gates it again, with the end it saved, before anything reads
    /// the shard. A restarted member may so serve less for a moment than before, never more.
    pub fn gate_shard(&self, uid: u64, published: u64) -> Result<()> {
        let mut state = self.inner.state.borrow_mut();
        let shard = state.shards.get_mut(&uid).ok_or(EngineError::UnknownShard(uid))?;
        shard.published = Some(published);
        shard.wake_waiters(false);
        Ok(())
    }

    /// Keeps a replicated shard's runs on disk, whatever their age, from record index
    /// `first_index` and Raft entry `first_entry` on: retention deletes no segment that holds
    /// records past `first_index` or a run of an entry at or past `first_entry` (a
    /// position-only run holds no record, and sits at the index where the records end), and
    /// the trim horizon the watermarks record stays at or below `first_index` (but not below
    /// where the shard's runs begin), so that a restart finds those runs again, with their
    /// Raft positions, although their records may expire from reads before. `first_index`
    /// must be a run boundary: recovery wants the first run at or past the watermarks' trim to
    /// start exactly there. The group's log calls it with its first entry not compacted and
    /// that entry's first record: what it compacted it no longer needs, the rest it may have
    /// to read back, or know the terms of, after a restart. Called again, it sets both
    /// outright. Like the gate, it is not stored: the group holds the shard again before
    /// anything reads it after a restart (in the step that registers it).
    pub fn hold_segments_from(&self, uid: u64, first_index: u64, first_entry: u64) -> Result<()> {
        let mut state = self.inner.state.borrow_mut();
        let shard = state.shards.get_mut(&uid).ok_or(EngineError::UnknownShard(uid))?;
        shard.segments_held_from = Some(HeldFrom { first_index, first_entry });
        Ok(())
    }

    /// Bytes of the segments holding records of replicated shard `uid` from record index
    /// `from_index` to `end_index` (whole segments; the active one as far as it is written):
    /// what keeping those records costs, as a group's log that keeps them for a member behind
    /// holds them from retention ([`Journal::hold_segments_from`]). Counted until they pass
    /// `bytes_max` (then the answer is only known to be above it), from the segment the
    /// shard's index serves `from_index` from: an older one holding only runs that a later
    /// run replaced is not counted. A group's leader asks for each member on every pass of its
    /// loop, so this walks only the segments from there on, not the journal's every segment.
    pub fn held_bytes(&self, uid: u64, from_index: u64, end_index: u64, bytes_max: u64) -> u64 {
        let state = self.inner.state.borrow();
        let Some(shard) = state.shards.get(&uid) else { return 0 };
        let active = *state.segments.keys().next_back().expect("there is always an active segment");
        let first_base = shard.index.sealed_span_from(from_index).map_or(active, |span| span.segment_base);
        let holds = |span: &segment::RaftSpan| span.first_index < end_index && span.end_index > from_index;
        let mut bytes = 0;
        for segment in state.segments.range(first_base..).map(|(_, segment)| segment) {
            if segment.shard_raft_spans.get(&uid).is_some_and(holds) {
                bytes += segment.bytes;
                if bytes > bytes_max {
                    break;
                }
            }
        }
        bytes
    }

    /// Moves a gated shard's published end to `end_index`, if that is later: the records
    /// before it are served once durable here (a follower may learn that an entry committed
    /// before its own copy is durable), and readers waiting for them are woken. A shard that
    /// is not gated serves what is durable already: nothing changes.
    pub fn publish_until(&self, uid: u64, end_index: u64) -> Result<()> {
        let mut state = self.inner.state.borrow_mut();
        let shard = state.shards.get_mut(&uid).ok_or(EngineError::UnknownShard(uid))?;
        if shard.published.is_some_and(|published| published < end_index) {
            shard.published = Some(end_index);
            shard.wake_waiters(false);
        }
        Ok(())
    }

    /// Queues a validated append for the next group commit (waiting for queue space); the
    /// receiver answers once it is durable, or refused.
    async fn enqueue(
        &self,
        records: Vec<AppendRecord>,
        shard_uid: Option<u64>,
        encoded_bytes: usize,
        arrival_ms: Option<i64>,
        first_index: Option<u64>,
        raft: Option<RaftPosition>,
    ) -> Result<oneshot::Receiver<Result<Vec<Appended>>>> {
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
            if first_index.is_some() {
                if let Some(shard) = shard_uid.and_then(|uid| state.shards.get_mut(&uid)) {
                    shard.unanswered += 1;
                }
            }
            state.pending.push_back(Pending {
                records,
                shard_uid,
                arrival_ms,
                first_index,
                raft,
                encoded_bytes,
                _permit: permit,
                reply,
            });
        }
        // A full channel means the flusher is already signalled.
        let _ = self.inner.wake.try_send(());
        Ok(receiver)
    }

    /// Checks an append before it is queued; returns its encoded size's upper bound. A gated
    /// shard takes only appends with a first index (its group's, [`Journal::queue_at`]).
    fn validate_append(
        &self,
        records: &[AppendRecord],
        first_index: Option<u64>,
        raft: Option<RaftPosition>,
    ) -> Result<usize> {
        if records.is_empty() {
            return Err(EngineError::EmptyAppend);
        }
        if raft.is_some_and(|raft| raft.index == 0) {
            return Err(EngineError::RaftIndexZero);
        }
        let state = self.inner.state.borrow();
        let mut encoded_bytes = format::BATCH_HEADER_BYTES;
        for record in records {
            let key_bytes = record.partition_key.len();
            if !(1..=limits::PARTITION_KEY_BYTES_MAX).contains(&key_bytes) {
                return Err(EngineError::PartitionKeyLength { bytes: key_bytes, max: limits::PARTITION_KEY_BYTES_MAX });
            }
            let record_bytes = key_bytes + record.data.len();
            let max = limits::RECORD_BYTES_MAX + if record.sealed { limits::RECORD_SEALING_BYTES_MAX } else { 0 };
            if record_bytes > max {
                return Err(EngineError::RecordTooLarge { bytes: record_bytes, max });
            }
            match state.shards.get(&record.shard_uid) {
                Some(shard) if shard.closed => return Err(EngineError::ShardClosed(record.shard_uid)),
                Some(shard) if shard.published.is_some() && first_index.is_none() => {
                    return Err(EngineError::Gated(record.shard_uid))
                }
                Some(shard) if shard.spec.is_some() => {}
                _ => return Err(EngineError::UnknownShard(record.shard_uid)),
            }
            // Upper bound: as if every record opened a run of its own.
            encoded_bytes += RaftPosition::run_header_bytes(raft) + format::record_bytes(key_bytes, record.data.len());
        }
        if encoded_bytes > limits::APPEND_ENCODED_BYTES_MAX {
            return Err(EngineError::AppendTooLarge { bytes: encoded_bytes, max: limits::APPEND_ENCODED_BYTES_MAX });
        }
        Ok(encoded_bytes)
    }

    pub fn stats(&self) -> JournalStats {
        self.inner.state.borrow().stats
    }

    /// How many segment files the journal has, the active one included.
    pub fn segment_count(&self) -> usize {
        self.inner.state.borrow().segments.len()
    }

    /// Runs the shard indexes hold in memory (the active segment's) and sealed spans (one per
    /// shard and sealed segment), over every shard; and the runs the sealed-run cache holds.
    /// What issue 19 bounds: it grows with segments, not with commits.
    pub fn index_footprint(&self) -> IndexFootprint {
        let state = self.inner.state.borrow();
        let (mut active_runs, mut sealed_spans) = (0, 0);
        for shard in state.shards.values() {
            active_runs += shard.index.active_run_count();
            sealed_spans += shard.index.sealed_span_count();
        }
        IndexFootprint { active_runs, sealed_spans, cached_runs: self.inner.sealed_runs.borrow().run_count() }
    }

    /// Bytes of journal the segment files hold, the active one's published commits included.
    pub fn segment_bytes(&self) -> u64 {
        self.inner.state.borrow().segments.values().map(|segment| segment.bytes).sum()
    }

    /// Stops taking appends, commits what is pending, writes a closing empty batch (so that
    /// the last data batch is followed by a valid one and recovery can tell a bit flip in it
    /// from a torn write), and stops the flusher. `Err` if the closing batch could not be
    /// written: every acknowledged record is durable, but until the next commit a flip in
    /// the last one would pass for a torn write at the next start, and be cut off with it.
    pub async fn close(&self) -> Result<()> {
        self.inner.state.borrow_mut().closing = true;
        let _ = self.inner.wake.try_send(());
        let task = self.inner.flusher.borrow_mut().take();
        if let Some(task) = task {
            task.await;
        }
        self.inner.state.borrow_mut().close_error.take().map_or(Ok(()), Err)
    }
}

/// A registered shard with its expired runs dropped.
fn served_shard<'a>(
    shards: &'a mut FxHashMap<u64, ShardState>,
    stats: &mut JournalStats,
    shard_uid: u64,
    now_ms: i64,
) -> Result<&'a mut ShardState> {
    let shard = shards.get_mut(&shard_uid).filter(|shard| shard.spec.is_some());
    let shard = shard.ok_or(EngineError::UnknownShard(shard_uid))?;
    let cutoff_ms = shard.expiry_cutoff(now_ms);
    stats.retention_expired_records += shard.index.expire_before(cutoff_ms);
    Ok(shard)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the runs say of the Raft log when an entry at or below the tip comes again: split
    /// over runs (the same position), or replacing the entries from its index on.
    #[test]
    fn a_run_at_or_below_the_tip_replaces_the_entries_from_its_index() {
        let at = |term: u64, index: u64| RaftPosition { term, index };
        let mut runs = RaftRuns::default();
        runs.observe(at(3, 38), 30);
        runs.observe(at(3, 39), 31);
        runs.observe(at(5, 40), 31);
        runs.observe(at(5, 40), 33);
        assert_eq!(runs.terms, vec![(38, 3), (40, 5)]);
        assert_eq!(runs.tip, Some(RaftTip { position: at(5, 40), end_index: 33 }), "one entry over two runs");
        // Entries 39 and 40 replaced by a position-only run of term 4 (no records cut before).
        runs.observe(at(4, 39), 30);
        assert_eq!(runs.terms, vec![(38, 3), (39, 4)]);
        assert_eq!(runs.tip, Some(RaftTip { position: at(4, 39), end_index: 30 }));
        assert_eq!((runs.term_of(38), runs.term_of(39), runs.term_of(40)), (Some(3), Some(4), None));
    }
}
