//! The runs of sealed segments: loaded from a segment's checkpoint (`.idx`) when a lookup
//! lands inside a shard's [`SealedSpan`] (see `crate::shard_index`), kept in a bounded cache so
//! that a consumer reading through an old segment loads its runs once, not per read.
//!
//! Loading goes through the journal's storage, so the simulator fails, tears and corrupts it
//! like any other call. A checkpoint that is missing or fails a check is handled as recovery
//! handles it: the segment itself is scanned (every batch checked) and its runs taken from
//! the scan; a segment that fails the scan is corruption, refused with its file and offset
//! and never served. The checkpoint is not rewritten here (two reads could race to write the
//! same temporary file); the next recovery rewrites it.

use super::recovery::{load_checkpoint, scan_sealed_segment};
use super::segment::SegmentPin;
use super::{Journal, State};
use crate::error::{EngineError, Result};
use crate::format::SegmentRuns;
use crate::limits;
use crate::shard_index::{later_runs_win, GapError, NeedRuns, RunEntry, SealedRuns, SealedSpan};
use crate::storage::Storage;
use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

/// One shard's runs in one sealed segment: exactly the records of its span, in order.
struct Entry {
    segment_base: u64,
    shard_uid: u64,
    runs: Rc<[RunEntry]>,
    /// When a lookup last used it: the least recently used entry is evicted first.
    used: Cell<u64>,
}

/// Loaded run lists, bounded by [`limits::SEALED_RUNS_CACHE_ENTRIES_MAX`] entries and
/// [`limits::SEALED_RUNS_CACHE_RUNS_MAX`] runs. A few hundred entries: a linear search costs
/// less than hashing would save.
#[derive(Default)]
pub(super) struct SealedRunsCache {
    entries: Vec<Entry>,
    runs: usize,
    uses: Cell<u64>,
}

impl SealedRunsCache {
    fn get(&self, shard_uid: u64, segment_base: u64) -> Option<&[RunEntry]> {
        let entry = self.entries.iter().find(|e| e.shard_uid == shard_uid && e.segment_base == segment_base)?;
        self.uses.set(self.uses.get() + 1);
        entry.used.set(self.uses.get());
        Some(&entry.runs)
    }

    /// Adds a list, evicting the least recently used others while over a bound. The new list
    /// stays even if it alone is over the bound of runs.
    fn insert(&mut self, shard_uid: u64, segment_base: u64, runs: Rc<[RunEntry]>) {
        self.entries.retain(|e| !(e.shard_uid == shard_uid && e.segment_base == segment_base));
        self.runs = self.entries.iter().map(|e| e.runs.len()).sum();
        while !self.entries.is_empty()
            && (self.entries.len() >= limits::SEALED_RUNS_CACHE_ENTRIES_MAX
                || self.runs + runs.len() > limits::SEALED_RUNS_CACHE_RUNS_MAX)
        {
            let oldest = (0..self.entries.len()).min_by_key(|&i| self.entries[i].used.get()).expect("not empty");
            self.runs -= self.entries.swap_remove(oldest).runs.len();
        }
        self.uses.set(self.uses.get() + 1);
        self.runs += runs.len();
        self.entries.push(Entry { segment_base, shard_uid, runs, used: Cell::new(self.uses.get()) });
    }

    /// Forgets the lists of a segment retention deleted.
    pub(super) fn forget_segment(&mut self, segment_base: u64) {
        self.entries.retain(|e| e.segment_base != segment_base);
        self.runs = self.entries.iter().map(|e| e.runs.len()).sum();
    }

    /// Runs the cache holds now, over all its lists.
    pub(super) fn run_count(&self) -> usize {
        self.runs
    }
}

/// What a lookup sees of one shard's sealed runs: the cache, and the list loaded for it last.
pub(super) struct ShardRuns<'a> {
    cache: &'a SealedRunsCache,
    shard_uid: u64,
    loaded: Option<&'a (SealedSpan, Rc<[RunEntry]>)>,
}

impl SealedRuns for ShardRuns<'_> {
    fn runs(&self, span: &SealedSpan) -> Option<&[RunEntry]> {
        let runs = match self.loaded {
            Some((loaded, runs)) if loaded.segment_base == span.segment_base => runs,
            _ => self.cache.get(self.shard_uid, span.segment_base)?,
        };
        // Loaded before a replaced suffix shortened the span (`ShardIndex::truncate`).
        Some(&runs[..runs.partition_point(|run| run.first_index < span.end_index)])
    }
}

/// Why a lookup stopped: it needs a span's runs, or it failed.
pub(super) enum LookupError {
    NeedRuns(NeedRuns),
    Engine(EngineError),
}

impl From<NeedRuns> for LookupError {
    fn from(need: NeedRuns) -> LookupError {
        LookupError::NeedRuns(need)
    }
}

impl From<EngineError> for LookupError {
    fn from(error: EngineError) -> LookupError {
        LookupError::Engine(error)
    }
}

impl<S: Storage> Journal<S> {
    /// Runs `lookup` on the journal's state with `shard_uid`'s sealed runs at hand, loading
    /// each span's runs it asks for and running it again, until it answers. A lookup that
    /// walks runs keeps its own progress between attempts (see `read`), so it needs only the
    /// span it stopped at, which it is always given, whatever the cache evicted meanwhile.
    pub(super) async fn with_sealed_runs<T>(
        &self,
        shard_uid: u64,
        mut lookup: impl FnMut(&mut State<S>, &ShardRuns<'_>) -> std::result::Result<T, LookupError>,
    ) -> Result<T> {
        let mut loaded: Option<(SealedSpan, Rc<[RunEntry]>)> = None;
        let mut vanished: Option<SealedSpan> = None;
        loop {
            let outcome = {
                let cache = self.inner.sealed_runs.borrow();
                let mut state = self.inner.state.borrow_mut();
                lookup(&mut state, &ShardRuns { cache: &cache, shard_uid, loaded: loaded.as_ref() })
            };
            let span = match outcome {
                Ok(answer) => return Ok(answer),
                Err(LookupError::Engine(error)) => return Err(error),
                Err(LookupError::NeedRuns(NeedRuns(span))) => span,
            };
            // Given the runs it asked for, a lookup never asks for them again.
            assert!(loaded.as_ref().is_none_or(|(given, _)| *given != span), "a lookup asked twice for {span:?}");
            if vanished == Some(span) {
                // Retention deletes a segment only after every span in it was dropped.
                return Err(EngineError::NoSegment { position: span.segment_base });
            }
            match self.load_sealed_runs(shard_uid, span).await? {
                Some(runs) => loaded = Some((span, runs)),
                // Deleted while the lookup waited: asking again drops the span first.
                None => vanished = Some(span),
            }
        }
    }

    /// Loads `shard_uid`'s runs of `span` ([`load_span_runs`]) and caches them. `None` if the
    /// segment is gone.
    async fn load_sealed_runs(&self, shard_uid: u64, span: SealedSpan) -> Result<Option<Rc<[RunEntry]>>> {
        let (path, file, bytes, _pin) = {
            let state = self.inner.state.borrow();
            let Some(segment) = state.segments.get(&span.segment_base) else { return Ok(None) };
            (segment.path.clone(), segment.file.clone(), segment.bytes, SegmentPin::new(segment))
        };
        let (runs, scanned) = load_span_runs(&self.inner.storage, &file, &path, bytes, shard_uid, &span).await?;
        let runs: Rc<[RunEntry]> = runs.into();
        let mut state = self.inner.state.borrow_mut();
        state.stats.sealed_run_scans += u64::from(scanned);
        state.stats.sealed_run_loads += 1;
        self.inner.sealed_runs.borrow_mut().insert(shard_uid, span.segment_base, runs.clone());
        Ok(Some(runs))
    }
}

/// `shard_uid`'s runs of `span`, from the checkpoint of the sealed segment at `path` (of `bytes`
/// bytes), or from a scan of the segment if the checkpoint is missing or disagrees with the
/// span; true if it scanned. For reads and for recovery's cuts (`recovery::cut_back`).
pub(super) async fn load_span_runs<S: Storage>(
    storage: &S,
    file: &S::File,
    path: &Path,
    bytes: u64,
    shard_uid: u64,
    span: &SealedSpan,
) -> Result<(Vec<RunEntry>, bool)> {
    let from_checkpoint = load_checkpoint(storage, path, span.segment_base, bytes)
        .await
        .map(|runs| span_runs(&runs, shard_uid, span))
        .and_then(|selected| match selected {
            Ok(runs) => Some(runs),
            Err(gap) => {
                tracing::warn!(path = %path.display(), %gap, "a segment index checkpoint disagrees with the run index; scanning the segment");
                None
            }
        });
    if let Some(runs) = from_checkpoint {
        return Ok((runs, false));
    }
    let all = scan_sealed_segment::<S>(file, path, span.segment_base, bytes).await?;
    let runs = span_runs(&all, shard_uid, span).map_err(|gap| EngineError::Gap { path: path.to_path_buf(), gap })?;
    Ok((runs, true))
}

/// Every run of the sealed segment at `path` (its base `base`, of `bytes` bytes): from its
/// checkpoint, or from a scan if that is missing or fails a check; true if it scanned.
pub(super) async fn segment_runs<S: Storage>(
    storage: &S,
    file: &S::File,
    path: &Path,
    base: u64,
    bytes: u64,
) -> Result<(SegmentRuns, bool)> {
    if let Some(runs) = load_checkpoint(storage, path, base, bytes).await {
        return Ok((runs, false));
    }
    Ok((scan_sealed_segment::<S>(file, path, base, bytes).await?, true))
}

/// `shard_uid`'s runs among a segment's `runs` that hold the records of `span`, as they stand
/// (a run with a Raft position may replace earlier ones, `later_runs_win`), checked to be
/// exactly those records, contiguous.
fn span_runs(runs: &SegmentRuns, shard_uid: u64, span: &SealedSpan) -> std::result::Result<Vec<RunEntry>, GapError> {
    let written =
        runs.with_raft().filter(|((uid, _), _)| *uid == shard_uid).map(|((_, run), raft)| (*run, raft.is_some()));
    let selected: Vec<RunEntry> = later_runs_win(shard_uid, written)?
        .into_iter()
        .filter(|run| run.end_index() > span.first_index && run.first_index < span.end_index)
        .collect();
    let mut expected = span.first_index;
    for run in &selected {
        if run.first_index != expected {
            return Err(GapError { shard_uid, expected, found: run.first_index });
        }
        expected = run.end_index();
    }
    if expected != span.end_index {
        return Err(GapError { shard_uid, expected, found: span.end_index });
    }
    Ok(selected)
}
