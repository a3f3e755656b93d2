//! Segment files: naming, creating, rolling over to a new segment, and the index checkpoint
//! a sealed segment gets (its codec is `format::encode_segment_checkpoint`).

use super::commit::{commit_bytes_bound, Framed, Pending};
use super::Inner;
use crate::error::{EngineError, Result};
use crate::format::{self, RaftPosition, SegmentRuns};
use crate::shard_index::RunEntry;
use crate::storage::{self, Storage, StorageFile};
use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) const SEGMENT_SUFFIX: &str = "seg";
pub(super) const CHECKPOINT_SUFFIX: &str = "idx";

pub(super) struct Segment<S: Storage> {
    pub base: u64,
    pub path: PathBuf,
    pub file: Rc<S::File>,
    /// Bytes of published commits: where the next commit goes, for the active segment.
    pub bytes: u64,
    /// Newest arrival time of each shard's records here: the segment can go once all expired.
    pub shard_last_timestamp_ms: HashMap<u64, i64>,
    /// Where each shard's records here end (the index after its last one): the segment can
    /// also go once every shard's trim horizon passed it ([`Journal::trim_shard_before`]).
    ///
    /// [`Journal::trim_shard_before`]: super::Journal::trim_shard_before
    pub shard_end_index: HashMap<u64, u64>,
    /// What each replicated shard's runs here span, in Raft indexes and in record indexes: a
    /// run that replaced runs of an earlier segment (a new leader's entries over a follower's
    /// uncommitted ones) makes this segment outlive that one ([`SpansBefore::replaced_by`]).
    pub shard_raft_spans: HashMap<u64, RaftSpan>,
    /// Every run written here, for the checkpoint written when the segment is sealed (then
    /// emptied). Not the shard indexes: those drop expired runs and forgotten shards, and a
    /// checkpoint without them made recovery find gaps, or continue a shard from an older
    /// watermark and reuse its sequence numbers (simulation seeds 7 and 200). With the Raft
    /// positions of the runs that carry one.
    pub runs: SegmentRuns,
    /// Reads using this segment now (see [`SegmentPin`]).
    pub pins: Rc<Cell<u32>>,
    /// The file's size as the active segment's commits left it, reserved space included: a
    /// commit ending past it reserves more first ([`reservation`]).
    pub reserved: u64,
}

impl<S: Storage> Segment<S> {
    pub fn pinned(&self) -> bool {
        self.pins.get() > 0
    }

    /// A run of `shard_uid` with Raft position `raft` is written here (or found by recovery).
    pub fn note_raft_run(&mut self, shard_uid: u64, raft: RaftPosition, run: &RunEntry) {
        let span = RaftSpan {
            lowest: raft.index,
            highest: raft.index,
            first_index: run.first_index,
            end_index: run.end_index(),
        };
        self.shard_raft_spans.entry(shard_uid).and_modify(|spanned| spanned.widen(&span)).or_insert(span);
    }
}

/// What the replicated shards' runs of some segments span together, per shard: retention keeps a
/// later segment whose runs may have replaced some of theirs ([`SpansBefore::replaced_by`]).
#[derive(Default)]
pub(super) struct SpansBefore(HashMap<u64, RaftSpan>);

impl SpansBefore {
    /// Adds `segment`'s spans (it comes after those added before).
    pub fn add<S: Storage>(&mut self, segment: &Segment<S>) {
        for (&uid, span) in &segment.shard_raft_spans {
            self.widen(uid, span);
        }
    }

    /// Adds `segment`'s span of shard `uid` only: enough for [`SpansBefore::replaced_by`] asked
    /// about that shard alone, without a map entry per shard of every segment walked.
    pub fn add_shard<S: Storage>(&mut self, segment: &Segment<S>, uid: u64) {
        if let Some(span) = segment.shard_raft_spans.get(&uid) {
            self.widen(uid, span);
        }
    }

    fn widen(&mut self, uid: u64, span: &RaftSpan) {
        self.0.entry(uid).and_modify(|before| before.widen(span)).or_insert(*span);
    }

    /// Whether `segment`, written after the segments added, may hold a run that replaced runs
    /// of theirs, for a shard `known` says is still served ([`RaftSpan::replaces`]). Deleted
    /// first, it would leave recovery the replaced runs without what replaced them.
    pub fn replaced_by<S: Storage>(&self, segment: &Segment<S>, known: impl Fn(u64) -> bool) -> bool {
        segment
            .shard_raft_spans
            .iter()
            .any(|(uid, span)| known(*uid) && self.0.get(uid).is_some_and(|before| span.replaces(before)))
    }
}

/// What one shard's runs with a Raft position in one segment span: the lowest and highest Raft
/// index, the lowest first record index and the highest end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RaftSpan {
    pub lowest: u64,
    pub highest: u64,
    pub first_index: u64,
    pub end_index: u64,
}

impl RaftSpan {
    fn widen(&mut self, other: &RaftSpan) {
        self.lowest = self.lowest.min(other.lowest);
        self.highest = self.highest.max(other.highest);
        self.first_index = self.first_index.min(other.first_index);
        self.end_index = self.end_index.max(other.end_index);
    }

    /// Whether runs spanning this, written after runs spanning `before`, may have replaced
    /// some of them: a Raft index at or below one there, or records starting before theirs
    /// end. Runs that continue a log start past both (a position-only run sits at the end).
    fn replaces(&self, before: &RaftSpan) -> bool {
        self.lowest <= before.highest || self.first_index < before.end_index
    }
}

/// Held by a read for each segment it reads: retention does not delete a pinned segment (a
/// later pass does, once the read is done), so every run a read found in the index stays
/// readable until the read ends. Without it a read racing retention panicked, or read another
/// segment and reported false corruption (simulation seeds 115, 201 and 407).
pub(super) struct SegmentPin(Rc<Cell<u32>>);

impl SegmentPin {
    pub fn new<S: Storage>(segment: &Segment<S>) -> SegmentPin {
        segment.pins.set(segment.pins.get() + 1);
        SegmentPin(segment.pins.clone())
    }
}

impl Drop for SegmentPin {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// A published batch kept in memory, so readers at the tip never touch the disk.
pub(super) struct CachedBatch<S: Storage> {
    pub position: u64,
    pub buffer: Rc<S::Buffer>,
    /// The buffer's size in memory (at least its written bytes).
    pub allocated_bytes: usize,
}

pub(super) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.{SEGMENT_SUFFIX}"))
}

/// The segment base a file name stands for, if it names a segment.
pub(super) fn segment_base(name: &str) -> Option<u64> {
    name.strip_suffix(&format!(".{SEGMENT_SUFFIX}")).and_then(|stem| stem.parse::<u64>().ok())
}

pub(super) fn checkpoint_path(segment_path: &Path) -> PathBuf {
    segment_path.with_extension(CHECKPOINT_SUFFIX)
}

/// The alignment batches are padded to in `file`: its O_DIRECT alignment, the format's block,
/// and the file system's block, so that every commit starts and ends on a block and is written
/// inline into reserved space (see `Storage::block_size`). On ext4 (4 KiB blocks) a commit of
/// one small record takes 4 KiB instead of 512 bytes' multiples: it saves a hand-off to an
/// io_uring worker thread per commit, and small commits come from a light load.
pub(super) fn alignment_of<S: Storage>(inner: &Inner<S>, file: &S::File) -> usize {
    file.alignment().max(inner.block_bytes)
}

pub(super) async fn create_segment<S: Storage>(storage: &S, dir: &Path, base: u64) -> Result<Segment<S>> {
    let path = segment_path(dir, base);
    let file = storage.open(&path, true).await.map_err(EngineError::io(&path, "open"))?;
    // The new file's directory entry must be durable before any record in it is acknowledged.
    storage.sync_dir(dir).await.map_err(EngineError::io(dir, "fsync directory"))?;
    Ok(Segment {
        base,
        path,
        file: Rc::new(file),
        bytes: 0,
        shard_last_timestamp_ms: HashMap::new(),
        shard_end_index: HashMap::new(),
        shard_raft_spans: HashMap::new(),
        runs: SegmentRuns::default(),
        pins: Rc::default(),
        reserved: 0,
    })
}

/// Linux's EOPNOTSUPP: the file system cannot reserve space (fallocate).
const EOPNOTSUPP: i32 = 95;

/// Set once the data directory's file system refused a reservation as unsupported: segments
/// then grow by their writes alone, and nothing asks again.
static RESERVING_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// The size to reserve the active segment at `base` to before writing a commit that ends `end`
/// bytes into it, if what it reserved does not cover that (which it then counts as reserved):
/// `segment_reserve_bytes` past the commit, within the segment's size.
pub(super) fn reservation<S: Storage>(inner: &Inner<S>, base: u64, end: u64) -> Option<u64> {
    let ahead = inner.config.segment_reserve_bytes;
    if ahead == 0 || RESERVING_UNSUPPORTED.load(Ordering::Relaxed) {
        return None;
    }
    let mut state = inner.state.borrow_mut();
    let segment = state.segments.get_mut(&base)?;
    if end <= segment.reserved {
        return None;
    }
    let target = (end + ahead).min(inner.config.segment_bytes_max).max(end);
    segment.reserved = target;
    Some(target)
}

/// Reserves the first `bytes` of a segment file. Failing loses nothing: the commit's writes
/// then extend the file, as they would without reserving (only slower).
pub(super) async fn reserve<F: StorageFile>(file: &F, path: &Path, bytes: u64) {
    if let Err(error) = file.allocate(bytes).await {
        if error.raw_os_error() == Some(EOPNOTSUPP) {
            RESERVING_UNSUPPORTED.store(true, Ordering::Relaxed);
            tracing::warn!(path = %path.display(), %error, "the file system cannot reserve segment space; writes extend the segments instead");
        } else {
            tracing::warn!(path = %path.display(), bytes, %error, "could not reserve segment space; this commit's writes extend the segment instead");
        }
    }
}

/// Whether framing `batch` after `previous` would overflow the active segment.
pub(super) fn needs_roll<S: Storage>(inner: &Inner<S>, batch: &[Pending], previous: Option<&Framed<S>>) -> bool {
    let state = inner.state.borrow();
    let active = state.segments.values().next_back().expect("active segment");
    let written = active.bytes + previous.map_or(0, |framed| framed.bytes);
    let incoming = commit_bytes_bound(inner, batch, alignment_of(inner, &active.file));
    written > 0 && written + incoming > inner.config.segment_bytes_max
}

/// Seals the active segment and starts a new one if a commit of `batch` would overflow it.
/// Every earlier commit must be published (the checkpoint lists their runs).
pub(super) async fn maybe_roll<S: Storage>(inner: &Inner<S>, batch: &[Pending]) -> Result<()> {
    if !needs_roll(inner, batch, None) {
        return Ok(());
    }
    // Past the sealed segment's last published commit are its reserved space and maybe a
    // failed commit's bytes (the next commit would have overwritten them, but it goes to the
    // new segment). Cut them off first: recovery treats a sealed segment's tail as acknowledged, and would
    // refuse a torn one or index a whole one twice (simulation seeds 312, 950, 1208, 1551).
    let (file, path, published) = {
        let state = inner.state.borrow();
        let active = state.segments.values().next_back().expect("active segment");
        (active.file.clone(), active.path.clone(), active.bytes)
    };
    let size = file.size().await.map_err(EngineError::io(&path, "stat"))?;
    if size > published {
        file.truncate(published).await.map_err(EngineError::io(&path, "truncate"))?;
        file.fdatasync().await.map_err(EngineError::io(&path, "fdatasync"))?;
    }
    let new_base = inner.state.borrow().write_position;
    let segment = create_segment(&inner.storage, &inner.config.dir, new_base).await?;
    let (sealed_base, sealed_path, runs) = {
        let mut state = inner.state.borrow_mut();
        let (&base, sealed) = state.segments.iter_mut().next_back().expect("active segment");
        let sealed = (base, sealed.path.clone(), std::mem::take(&mut sealed.runs));
        state.segments.insert(new_base, segment);
        sealed
    };
    // Failing to write the checkpoint loses nothing: recovery, and a read that lands in the
    // segment, scan the segment instead.
    let checkpoint = format::encode_segment_checkpoint(sealed_base, &runs.runs, &runs.raft);
    if let Err(error) = storage::write_atomic(&inner.storage, &checkpoint_path(&sealed_path), &checkpoint).await {
        tracing::warn!(%error, "could not write a segment index checkpoint; recovery and reads will scan the segment");
    }
    // Only now do the shard indexes let go of the sealed runs (one span per shard instead):
    // until the checkpoint is written (or failed) they serve reads from memory. Nothing is
    // published meanwhile: the flusher is here.
    let mut state = inner.state.borrow_mut();
    let state = &mut *state;
    // Retention may have deleted the segment meanwhile (every record in it expired), and then
    // no index holds a run of it any more.
    if let Some(sealed) = state.segments.get(&sealed_base) {
        for uid in sealed.shard_end_index.keys() {
            if let Some(shard) = state.shards.get_mut(uid) {
                shard.index.seal(sealed_base, new_base);
            }
        }
    }
    Ok(())
}
