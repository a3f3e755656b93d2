//! The in-memory index of one shard: where its runs lie in the core's journal, kept bounded
//! by segments, not by commits (issue 19, "the run index kept bounded for long retention").
//!
//! A run is the records a shard received in one group commit. The runs of the **active**
//! segment are held in memory, 32 bytes each ([`RunEntry`]); the active segment is at most
//! `segment_bytes_max`, so they are bounded. When a segment is sealed, each shard's runs in
//! it collapse into one [`SealedSpan`] (its first and end record index and its first and last
//! arrival time, 40 bytes), whatever the number of commits. A shard taking one record per
//! group commit at 1,000 commits/s for a year held 3.2e10 runs (a terabyte); it now holds one
//! span per sealed segment it wrote into.
//!
//! The runs of a sealed segment are on disk in its checkpoint (`.idx`, `docs/format.md`),
//! which lists every run written into the segment. A lookup that needs the runs inside a span
//! (reading records there, AT_TIMESTAMP landing inside it, a trim horizon inside it) returns
//! [`NeedRuns`] naming the span; the journal loads that segment's runs of this shard through
//! its storage (a bounded cache in front, `journal::sealed_runs`) and asks again, passing
//! them in through [`SealedRuns`]. Lookups the spans answer alone never touch the disk: a
//! sequence number outside every span, LATEST, the trim horizon when retention has not cut
//! into a sealed span, AT_TIMESTAMP at a span's first record.
//!
//! Trimming is lazy inside sealed spans: retention records the cutoff time
//! (`expire_before`) and a shard that trims its own log records the index (`trim_before`);
//! spans and active runs wholly before them are dropped at once, and a span they cut stays,
//! its gone runs skipped by every lookup. So the exact trim horizon is
//! [`ShardIndex::trim_index`] (which may need the first span's runs), and
//! [`ShardIndex::trim_index_floor`] is a run boundary at or below it that memory alone gives:
//! what retention uses to decide which segments to delete (a segment goes only when every
//! run of it is gone, and then its span was dropped, so the two agree) and what the
//! watermarks record (recovery skips runs below it and expires the rest by time again).
//!
//! Every lookup is a binary search: over spans, then over one span's runs or the active runs.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEntry {
    pub first_index: u64,
    pub record_count: u32,
    pub run_bytes: u32,
    /// Journal position of the run header.
    pub position: u64,
    pub timestamp_ms: i64,
}

impl RunEntry {
    pub fn end_index(&self) -> u64 {
        self.first_index + u64::from(self.record_count)
    }
}

/// A shard's runs in one sealed segment, summarised: records `first_index..end_index`, which
/// arrived from `first_timestamp_ms` to `last_timestamp_ms`. `first_index` is the first index
/// of a run (the first run kept when the segment was sealed or recovered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedSpan {
    /// The sealed segment's base position: which checkpoint lists the runs.
    pub segment_base: u64,
    pub first_index: u64,
    pub end_index: u64,
    pub first_timestamp_ms: i64,
    pub last_timestamp_ms: i64,
}

/// A lookup needs the runs of this span, which only the segment's checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedRuns(pub SealedSpan);

/// The runs of sealed spans that the caller has at hand: for `span`, this shard's runs in
/// segment `span.segment_base` that overlap the span (exactly its records, in order), or
/// `None` if they must be loaded first.
pub trait SealedRuns {
    fn runs(&self, span: &SealedSpan) -> Option<&[RunEntry]>;
}

/// No sealed runs at hand: lookups that need some return [`NeedRuns`].
pub struct NoSealedRuns;

impl SealedRuns for NoSealedRuns {
    fn runs(&self, _: &SealedSpan) -> Option<&[RunEntry]> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shard {shard_uid}: run starts at record {found}, expected {expected}")]
pub struct GapError {
    pub shard_uid: u64,
    pub expected: u64,
    pub found: u64,
}

/// One shard's runs of one segment, in the order they were written, as they stand: a run
/// that starts at or before the first index of runs before it replaced them (a replicated
/// shard's replaced suffix, [`ShardIndex::truncate`]), which its flag says it may. A run that
/// starts inside another, or replaces without leave, is an error; gaps are left to the caller.
/// A run without records (a position-only run, `format::RUN_RAFT`) replaces as any other, and
/// is not kept: it holds no record index.
pub fn later_runs_win(
    shard_uid: u64,
    runs: impl IntoIterator<Item = (RunEntry, bool)>,
) -> Result<Vec<RunEntry>, GapError> {
    let mut kept: Vec<RunEntry> = Vec::new();
    for (run, may_replace) in runs {
        let end = kept.last().map_or(run.first_index, RunEntry::end_index);
        let refused = Err(GapError { shard_uid, expected: end, found: run.first_index });
        let kept_before = kept.partition_point(|earlier| earlier.first_index < run.first_index);
        if kept_before < kept.len() && !may_replace {
            return refused;
        }
        kept.truncate(kept_before);
        if kept.last().is_some_and(|last| last.end_index() > run.first_index) {
            return refused;
        }
        if run.record_count > 0 {
            kept.push(run);
        }
    }
    Ok(kept)
}

/// Index of a shard's first record. Index 0 is never a record: its sequence number is the
/// shard's StartingSequenceNumber, which sorts before every record of the shard, so "after
/// the shard's start" (a subscription's continuation on an empty shard) is expressible.
pub const FIRST_RECORD_INDEX: u64 = 1;

#[derive(Debug, Clone)]
pub struct ShardIndex {
    /// One per sealed segment the shard has retained records in, oldest first.
    sealed: VecDeque<SealedSpan>,
    /// The runs in the active segment, oldest first. None of them is gone unless `sealed` is
    /// empty (gone runs are a prefix, and those in memory are dropped at once).
    active: VecDeque<RunEntry>,
    /// Index the next appended record gets.
    next_index: u64,
    /// Arrival time of the newest record; later records never get an earlier one.
    last_timestamp_ms: i64,
    /// Runs that arrived before this are gone (retention's cutoff; only ever grows).
    expired_before_ms: i64,
    /// Runs that end at or before this index are gone (`trim_before`; only ever grows).
    trimmed_before: u64,
    /// The index this index started at ([`ShardIndex::starting_at`]): no run of the shard it
    /// takes (at recovery too) starts below it.
    origin: u64,
}

impl Default for ShardIndex {
    fn default() -> ShardIndex {
        ShardIndex::starting_at(FIRST_RECORD_INDEX, i64::MIN)
    }
}

impl ShardIndex {
    /// An index that continues after records that are no longer indexed (expired, or known
    /// only from a watermark), so that their indexes are never handed out again.
    pub fn starting_at(next_index: u64, last_timestamp_ms: i64) -> ShardIndex {
        ShardIndex {
            sealed: VecDeque::new(),
            active: VecDeque::new(),
            next_index,
            last_timestamp_ms,
            expired_before_ms: i64::MIN,
            trimmed_before: 0,
            origin: next_index,
        }
    }

    /// The index it started at: no run of the shard it takes starts below it.
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// Appends a run of the active segment.
    pub fn push(&mut self, shard_uid: u64, run: RunEntry) -> Result<(), GapError> {
        self.check_next(shard_uid, run.first_index)?;
        assert!(run.record_count > 0, "a position-only run is not indexed");
        self.next_index = run.end_index();
        self.last_timestamp_ms = self.last_timestamp_ms.max(run.timestamp_ms);
        self.active.push_back(run);
        Ok(())
    }

    /// Whether a run starting at `first_index` may come next: where the shard ends, or, before
    /// any run is indexed, anywhere at or past the watermark (earlier runs lived in segments
    /// retention has deleted). Also where a position-only run must sit, which is not pushed.
    pub fn check_next(&self, shard_uid: u64, first_index: u64) -> Result<(), GapError> {
        let contiguous = if self.is_empty() { first_index >= self.next_index } else { first_index == self.next_index };
        if !contiguous {
            return Err(GapError { shard_uid, expected: self.next_index, found: first_index });
        }
        Ok(())
    }

    /// Cuts the shard back to end before `index`, for a replicated shard whose uncommitted
    /// suffix a new leader replaces (`Journal::queue_at`): the spans and runs from `index` on
    /// go, and the next run pushed starts at `index`. A span the cut lands inside is shortened
    /// (its segment's checkpoint still lists the cut runs; loaders drop what lies past a span's
    /// end, see [`later_runs_win`]). `Ok(false)`, and nothing changes, unless `index` is a run
    /// boundary from the trim floor (and a trim's index) to the end; [`NeedRuns`] if the cut
    /// lands inside a span whose runs `sealed` lacks.
    ///
    /// The arrival time the next run is held to becomes the last kept run's (or stays, if no
    /// run is kept).
    pub fn truncate(&mut self, index: u64, sealed: &impl SealedRuns) -> Result<bool, NeedRuns> {
        if index == self.next_index {
            return Ok(true);
        }
        if index > self.next_index || index < self.trim_index_floor().max(self.trimmed_before) {
            return Ok(false);
        }
        if self.active.front().is_some_and(|run| run.first_index <= index) {
            let at = self.active.partition_point(|run| run.first_index < index);
            if self.active.get(at).is_none_or(|run| run.first_index != index) {
                return Ok(false);
            }
            self.active.truncate(at);
        } else {
            // Inside the spans: the one holding `index`, and those after it, which go whole.
            let at = self.sealed.partition_point(|span| span.end_index <= index);
            let span = self.sealed[at];
            let last_kept = if span.first_index == index {
                None
            } else {
                let runs = sealed.runs(&span).ok_or(NeedRuns(span))?;
                let cut = runs.partition_point(|run| run.first_index < index);
                match (cut.checked_sub(1).map(|kept| runs[kept]), runs.get(cut)) {
                    (Some(kept), Some(next)) if next.first_index == index => Some(kept.timestamp_ms),
                    _ => return Ok(false),
                }
            };
            self.active.clear();
            match last_kept {
                Some(last_timestamp_ms) => {
                    self.sealed.truncate(at + 1);
                    let span = self.sealed.back_mut().expect("kept");
                    span.end_index = index;
                    span.last_timestamp_ms = last_timestamp_ms;
                }
                None => self.sealed.truncate(at),
            }
        }
        self.next_index = index;
        let last_kept =
            self.active.back().map(|run| run.timestamp_ms).or(self.sealed.back().map(|span| span.last_timestamp_ms));
        self.last_timestamp_ms = last_kept.unwrap_or(self.last_timestamp_ms);
        // A shortened span may now hold only gone runs.
        self.drop_gone();
        Ok(true)
    }

    /// The segment at `segment_base` was sealed: the active runs before journal position
    /// `segment_end` (all of them, as the journal seals only with every commit published)
    /// become one span.
    pub fn seal(&mut self, segment_base: u64, segment_end: u64) {
        let count = self.active.partition_point(|run| run.position < segment_end);
        if count == 0 {
            return;
        }
        let (first, last) = (self.active[0], self.active[count - 1]);
        assert!(first.position >= segment_base, "a run before the sealed segment is still active");
        self.sealed.push_back(SealedSpan {
            segment_base,
            first_index: first.first_index,
            end_index: last.end_index(),
            first_timestamp_ms: first.timestamp_ms,
            last_timestamp_ms: last.timestamp_ms,
        });
        self.active.drain(..count);
    }

    /// No run is indexed (all gone, or none written since the index started).
    pub fn is_empty(&self) -> bool {
        self.sealed.is_empty() && self.active.is_empty()
    }

    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    pub fn last_timestamp_ms(&self) -> i64 {
        self.last_timestamp_ms
    }

    /// Runs in memory: the active segment's. What grows with commits, up to a segment's worth.
    pub fn active_run_count(&self) -> usize {
        self.active.len()
    }

    /// The runs not sealed into a span yet, oldest first: the active segment's, and while a
    /// roll writes the sealed segment's checkpoint, that segment's too.
    pub fn active_runs(&self) -> impl Iterator<Item = &RunEntry> {
        self.active.iter()
    }

    /// Sealed segments the shard holds retained records in: one span each.
    pub fn sealed_span_count(&self) -> usize {
        self.sealed.len()
    }

    /// The oldest span, if it is partly gone: its gone runs are known only from its runs.
    fn cut_span(&self) -> Option<&SealedSpan> {
        self.sealed
            .front()
            .filter(|span| span.first_timestamp_ms < self.expired_before_ms || span.first_index < self.trimmed_before)
    }

    fn is_gone(&self, run: &RunEntry) -> bool {
        run.timestamp_ms < self.expired_before_ms || run.end_index() <= self.trimmed_before
    }

    /// A run boundary at or below the trim horizon, from memory alone: the first index of the
    /// oldest span or active run. Equal to [`ShardIndex::trim_index`] unless retention or a
    /// trim cut into the oldest sealed span.
    pub fn trim_index_floor(&self) -> u64 {
        match (self.sealed.front(), self.active.front()) {
            (Some(span), _) => span.first_index,
            (None, Some(run)) => run.first_index,
            (None, None) => self.next_index,
        }
    }

    /// First retained record: the trim horizon.
    pub fn trim_index(&self, sealed: &impl SealedRuns) -> Result<u64, NeedRuns> {
        if self.cut_span().is_none() {
            return Ok(self.trim_index_floor());
        }
        let mut first = self.next_index;
        self.visit_runs_from(0, sealed, |run| {
            first = run.first_index;
            false
        })?;
        Ok(first)
    }

    /// `index`, or the trim horizon if that is later. Needs runs only if `index` lies below
    /// the end of a sealed span that retention or a trim cut into.
    pub fn clamp_to_trim(&self, index: u64, sealed: &impl SealedRuns) -> Result<u64, NeedRuns> {
        match self.cut_span() {
            Some(span) if index < span.end_index => Ok(index.max(self.trim_index(sealed)?)),
            _ => Ok(index.max(self.trim_index_floor())),
        }
    }

    /// The arrival time of the oldest span or active run holding records at or past `index`
    /// (a span's first arrival time: no later than any of its runs'), if any is retained.
    pub fn first_timestamp_past(&self, index: u64) -> Option<i64> {
        // Every read of a gated shard asks (its expiry cutoff): a binary search each, as the
        // spans and runs end in index order.
        match self.sealed_span_from(index) {
            Some(span) => Some(span.first_timestamp_ms),
            None => {
                self.active.get(self.active.partition_point(|run| run.end_index() <= index)).map(|run| run.timestamp_ms)
            }
        }
    }

    /// Forgets runs that arrived before `cutoff_ms`. Returns how many records left memory
    /// (whole spans and active runs; the gone records of a span it cuts are counted when the
    /// span goes).
    ///
    /// The cutoff outlives the call, so it stays at or below the newest arrival time: a cutoff
    /// past it (every run here arrived before it) takes the runs by their indexes instead.
    /// Records still to come arrive no earlier than the newest, but may arrive before the
    /// cutoff (a Raft group's copy from a peer brings the leader's arrival times), and must not
    /// be gone on arrival (the cluster simulation's seed 15370: a member's restored records
    /// were, after a pass over its shard emptied by the restore).
    pub fn expire_before(&mut self, cutoff_ms: i64) -> u64 {
        if cutoff_ms > self.last_timestamp_ms {
            self.trimmed_before = self.trimmed_before.max(self.next_index);
            self.expired_before_ms = self.expired_before_ms.max(self.last_timestamp_ms);
        } else {
            self.expired_before_ms = self.expired_before_ms.max(cutoff_ms);
        }
        self.drop_gone()
    }

    /// Forgets the runs that end at or before `index` (whole runs only: a run that `index`
    /// cuts stays). Returns how many records left memory. The owner of a shard that trims its
    /// own log (the delivery state's internal shard) calls this through
    /// `Journal::trim_shard_before`.
    pub fn trim_before(&mut self, index: u64) -> u64 {
        self.trimmed_before = self.trimmed_before.max(index);
        self.drop_gone()
    }

    /// Drops the spans and active runs that are wholly gone; returns how far the floor moved.
    fn drop_gone(&mut self) -> u64 {
        let floor_before = self.trim_index_floor();
        let (expired_before_ms, trimmed_before) = (self.expired_before_ms, self.trimmed_before);
        // A span is wholly gone when its last run is (gone runs are a prefix).
        let spans = self
            .sealed
            .partition_point(|span| span.last_timestamp_ms < expired_before_ms || span.end_index <= trimmed_before);
        self.sealed.drain(..spans);
        if self.sealed.is_empty() {
            let runs = self
                .active
                .partition_point(|run| run.timestamp_ms < expired_before_ms || run.end_index() <= trimmed_before);
            self.active.drain(..runs);
        }
        self.trim_index_floor() - floor_before
    }

    /// Calls `visit` with each retained run holding records from `index` on, oldest first,
    /// until it returns false. Stops with [`NeedRuns`] at the first sealed span whose runs
    /// `sealed` lacks (after visiting the runs before it), so a caller that loads them can go
    /// on from where it stopped.
    pub fn visit_runs_from(
        &self,
        index: u64,
        sealed: &impl SealedRuns,
        mut visit: impl FnMut(&RunEntry) -> bool,
    ) -> Result<(), NeedRuns> {
        let index = index.max(self.trimmed_before);
        let first_span = self.sealed.partition_point(|span| span.end_index <= index);
        for span in self.sealed.range(first_span..) {
            let runs = sealed.runs(span).ok_or(NeedRuns(*span))?;
            let expired = runs.partition_point(|run| run.timestamp_ms < self.expired_before_ms);
            let start = runs.partition_point(|run| run.end_index() <= index).max(expired);
            for run in &runs[start..] {
                if !visit(run) {
                    return Ok(());
                }
            }
        }
        let expired = self.active.partition_point(|run| self.is_gone(run));
        let start = self.active.partition_point(|run| run.end_index() <= index).max(expired);
        for run in self.active.range(start..) {
            if !visit(run) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Whether a walk from `index` reaches a sealed span (so may need to load runs).
    pub fn reaches_sealed(&self, index: u64) -> bool {
        self.sealed.back().is_some_and(|span| span.end_index > index.max(self.trimmed_before))
    }

    /// The spans and active runs holding records from `index` on, as far as `records_max`
    /// records (and no further), with this index's trims: an index of its own, which a read
    /// walks while it loads sealed runs, so that what it returns is what the index held when
    /// it began, however retention and appends move meanwhile (as a read whose runs were all
    /// in memory always did). At most `records_max` active runs are copied.
    pub fn view_from(&self, index: u64, records_max: usize) -> ShardIndex {
        let index = index.max(self.trimmed_before);
        let records_max = records_max as u64;
        let first_span = self.sealed.partition_point(|span| span.end_index <= index);
        let mut records = 0u64;
        let mut sealed = VecDeque::new();
        let cut = self.cut_span().copied();
        for span in self.sealed.range(first_span..) {
            if records >= records_max {
                break;
            }
            // How many of a cut span's records are gone only its runs tell: count none.
            if cut != Some(*span) {
                records += span.end_index - span.first_index.max(index);
            }
            sealed.push_back(*span);
        }
        let mut active = VecDeque::new();
        let first_run = self.active.partition_point(|run| run.end_index() <= index);
        for run in self.active.range(first_run..) {
            if records >= records_max {
                break;
            }
            records += run.end_index() - run.first_index.max(index);
            active.push_back(*run);
        }
        let next_index = match (active.back(), sealed.back()) {
            (Some(run), _) => run.end_index(),
            (None, Some(span)) => span.end_index,
            (None, None) => index,
        };
        ShardIndex {
            sealed,
            active,
            next_index,
            last_timestamp_ms: self.last_timestamp_ms,
            expired_before_ms: self.expired_before_ms,
            trimmed_before: self.trimmed_before,
            origin: self.origin,
        }
    }

    /// The sealed spans, oldest first.
    pub fn sealed_spans(&self) -> impl Iterator<Item = &SealedSpan> {
        self.sealed.iter()
    }

    /// The first sealed span holding records from `index` on (a binary search), if any does.
    pub fn sealed_span_from(&self, index: u64) -> Option<&SealedSpan> {
        self.sealed.get(self.sealed.partition_point(|span| span.end_index <= index))
    }

    /// The first retained run holding records from `index` on.
    pub fn run_from(&self, index: u64, sealed: &impl SealedRuns) -> Result<Option<RunEntry>, NeedRuns> {
        let mut found = None;
        self.visit_runs_from(index, sealed, |run| {
            found = Some(*run);
            false
        })?;
        Ok(found)
    }

    /// Index of the first retained record that arrived at or after `timestamp_ms`, or the tip.
    pub fn index_at_timestamp(&self, timestamp_ms: i64, sealed: &impl SealedRuns) -> Result<u64, NeedRuns> {
        let cut = self.cut_span().copied();
        let span = self.sealed.partition_point(|span| span.last_timestamp_ms < timestamp_ms);
        if let Some(span) = self.sealed.get(span) {
            // A span's first run arrived at its first timestamp: no runs needed to land on it.
            if span.first_timestamp_ms >= timestamp_ms && cut != Some(*span) {
                return Ok(span.first_index);
            }
            let runs = sealed.runs(span).ok_or(NeedRuns(*span))?;
            let at = runs.partition_point(|run| run.timestamp_ms < timestamp_ms || self.is_gone(run));
            return Ok(runs[at].first_index);
        }
        let at = self.active.partition_point(|run| run.timestamp_ms < timestamp_ms || self.is_gone(run));
        Ok(self.active.get(at).map_or(self.next_index, |run| run.first_index))
    }

    /// Arrival time of the record at `index`, if it is retained.
    pub fn timestamp_of(&self, index: u64, sealed: &impl SealedRuns) -> Result<Option<i64>, NeedRuns> {
        if index >= self.next_index || index < self.trim_index_floor() {
            return Ok(None);
        }
        let span = self.sealed.partition_point(|span| span.end_index <= index);
        if let Some(span) = self.sealed.get(span) {
            if span.first_index == index && self.cut_span() != Some(span) {
                return Ok(Some(span.first_timestamp_ms));
            }
        }
        Ok(self.run_from(index, sealed)?.filter(|run| run.first_index <= index).map(|run| run.timestamp_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Segment bases stand for the segment's position range: runs at positions
    /// `base..base + SEGMENT` (positions are `first_index * 1000` below).
    fn run(first_index: u64, record_count: u32, timestamp_ms: i64) -> RunEntry {
        RunEntry { first_index, record_count, run_bytes: 100, position: first_index * 1000, timestamp_ms }
    }

    /// Every run ever pushed, by the segment base it was sealed in: what the checkpoints hold.
    #[derive(Default)]
    struct Checkpoints(BTreeMap<u64, Vec<RunEntry>>);

    impl Checkpoints {
        /// As the journal's loader does: the runs as they stand (truncations replaced some),
        /// those of the span.
        fn span_runs(&self, span: &SealedSpan) -> Vec<RunEntry> {
            let runs = later_runs_win(1, self.0[&span.segment_base].iter().map(|run| (*run, true))).unwrap();
            runs.into_iter()
                .filter(|run| run.end_index() > span.first_index && run.first_index < span.end_index)
                .collect()
        }
    }

    /// The runs a caller loaded so far, as the journal's cache holds them.
    #[derive(Default)]
    struct Loaded(BTreeMap<u64, Vec<RunEntry>>);

    impl SealedRuns for Loaded {
        fn runs(&self, span: &SealedSpan) -> Option<&[RunEntry]> {
            self.0.get(&span.segment_base).map(Vec::as_slice)
        }
    }

    /// Runs `lookup`, loading what it asks for as the journal does; returns the answer and how
    /// many spans it loaded.
    fn loading<T>(checkpoints: &Checkpoints, mut lookup: impl FnMut(&Loaded) -> Result<T, NeedRuns>) -> (T, usize) {
        let mut loaded = Loaded::default();
        loop {
            match lookup(&loaded) {
                Ok(answer) => return (answer, loaded.0.len()),
                Err(NeedRuns(span)) => {
                    assert!(!loaded.0.contains_key(&span.segment_base), "asked twice for {span:?}");
                    loaded.0.insert(span.segment_base, checkpoints.span_runs(&span));
                }
            }
        }
    }

    fn index(runs: &[RunEntry]) -> ShardIndex {
        let mut index = ShardIndex::starting_at(0, i64::MIN);
        for entry in runs {
            index.push(1, *entry).unwrap();
        }
        index
    }

    #[test]
    fn lookups_by_index_and_time() {
        let index = index(&[run(0, 3, 10), run(3, 2, 20), run(5, 5, 20), run(10, 1, 40)]);
        assert_eq!(index.next_index(), 11);
        assert_eq!(index.trim_index(&NoSealedRuns), Ok(0));
        let check = |at: u64, expected_first: Option<u64>| {
            assert_eq!(index.run_from(at, &NoSealedRuns).unwrap().map(|r| r.first_index), expected_first, "from {at}");
        };
        check(0, Some(0));
        check(2, Some(0));
        check(3, Some(3));
        check(9, Some(5));
        check(10, Some(10));
        check(11, None);
        let at = |timestamp_ms| index.index_at_timestamp(timestamp_ms, &NoSealedRuns).unwrap();
        assert_eq!((at(0), at(11), at(20), at(21), at(41)), (0, 3, 3, 10, 11));
        assert_eq!(index.timestamp_of(6, &NoSealedRuns), Ok(Some(20)));
        assert_eq!(index.timestamp_of(11, &NoSealedRuns), Ok(None));
    }

    #[test]
    fn the_first_arrival_past_an_index_is_its_run_or_its_sealed_span() {
        let mut index = index(&[run(0, 3, 10), run(3, 2, 20)]);
        // Sealed into one span: its first arrival time stands for every run in it.
        index.seal(0, 5 * 1000);
        for entry in [run(5, 5, 30), run(10, 1, 40)] {
            index.push(1, entry).unwrap();
        }
        let past = |at: u64| index.first_timestamp_past(at);
        assert_eq!((past(0), past(2), past(4)), (Some(10), Some(10), Some(10)));
        assert_eq!((past(5), past(9), past(10)), (Some(30), Some(30), Some(40)));
        assert_eq!(past(11), None, "nothing past the end");
    }

    #[test]
    fn gaps_are_refused() {
        let mut index = index(&[run(0, 3, 10)]);
        assert_eq!(index.push(1, run(4, 1, 10)), Err(GapError { shard_uid: 1, expected: 3, found: 4 }));
    }

    #[test]
    fn trimming_by_index_drops_whole_runs_only() {
        let mut index = index(&[run(1, 3, 10), run(4, 2, 20), run(6, 4, 30)]);
        let trim = |index: &ShardIndex| index.trim_index(&NoSealedRuns).unwrap();
        assert_eq!(index.trim_before(3), 0, "run 1..4 is cut by 3: it stays");
        assert_eq!(trim(&index), 1);
        assert_eq!(index.trim_before(4), 3);
        assert_eq!(trim(&index), 4);
        assert_eq!(index.trim_before(9), 2, "run 6..10 is cut by 9: it stays");
        assert_eq!(trim(&index), 6);
        assert_eq!(index.trim_before(1), 0, "never backwards");
        assert_eq!(index.trim_before(100), 4);
        assert_eq!((trim(&index), index.next_index()), (10, 10), "the tip never moves");
    }

    #[test]
    fn expiry_moves_the_trim_horizon_but_never_the_tip() {
        let mut index = index(&[run(0, 3, 10), run(3, 2, 20)]);
        assert_eq!(index.expire_before(15), 3, "the first run's three records");
        assert_eq!(index.trim_index(&NoSealedRuns), Ok(3));
        assert_eq!(index.expire_before(15), 0, "nothing more arrived before 15");
        assert_eq!(index.expire_before(100), 2);
        assert_eq!((index.trim_index(&NoSealedRuns), index.next_index()), (Ok(5), 5));
        // A watermark-started index continues where the expired one stopped.
        let mut resumed = ShardIndex::starting_at(5, 20);
        assert!(resumed.push(1, run(4, 1, 30)).is_err());
        resumed.push(1, run(5, 1, 30)).unwrap();
    }

    /// A sealed segment costs one span, however many commits it took; lookups that the spans
    /// answer need no runs, and the others name the one span they need.
    #[test]
    fn sealed_segments_keep_one_span_and_load_runs_only_inside_one() {
        let mut checkpoints = Checkpoints::default();
        let mut index = ShardIndex::starting_at(1, i64::MIN);
        for segment in 0..3u64 {
            // Where the segment's first run lies (positions are first index × 1000).
            let base = (1 + segment * 100) * 1000;
            for i in 0..100u64 {
                let first = 1 + segment * 100 + i;
                let entry = run(first, 1, first as i64 * 10);
                index.push(1, entry).unwrap();
                checkpoints.0.entry(base).or_default().push(entry);
            }
            index.seal(base, base + 100 * 1000);
        }
        assert_eq!((index.sealed_span_count(), index.active_run_count()), (3, 0));
        assert_eq!(index.trim_index(&NoSealedRuns), Ok(1), "the trim horizon from memory");
        assert_eq!(index.index_at_timestamp(1010, &NoSealedRuns), Ok(101), "a span's first record");
        assert_eq!(index.timestamp_of(201, &NoSealedRuns), Ok(Some(2010)));
        let need = index.index_at_timestamp(1500, &NoSealedRuns).unwrap_err();
        assert_eq!(need.0.segment_base, 101_000);
        assert_eq!(loading(&checkpoints, |runs| index.index_at_timestamp(1500, runs)), (150, 1));
        // Retention cuts into the first span: the horizon needs its runs, the floor does not.
        index.expire_before(505);
        assert_eq!(index.trim_index_floor(), 1);
        assert_eq!(loading(&checkpoints, |runs| index.trim_index(runs)), (51, 1));
        index.expire_before(1005);
        assert_eq!((index.sealed_span_count(), index.trim_index_floor()), (2, 101), "span 0 went whole");
    }

    #[test]
    fn cuts_land_on_run_boundaries_and_later_runs_win() {
        let mut index = index(&[run(0, 3, 10), run(3, 2, 20), run(5, 5, 30)]);
        assert_eq!(index.truncate(4, &NoSealedRuns), Ok(false), "inside a run");
        assert_eq!(index.truncate(11, &NoSealedRuns), Ok(false), "past the end");
        assert_eq!(index.next_index(), 10);
        assert_eq!(index.truncate(3, &NoSealedRuns), Ok(true));
        assert_eq!((index.next_index(), index.last_timestamp_ms()), (3, 10));
        index.push(1, run(3, 1, 15)).unwrap();
        index.trim_before(3);
        assert_eq!(index.truncate(0, &NoSealedRuns), Ok(false), "below the trim");

        let written = [(run(0, 3, 10), false), (run(3, 2, 20), false), (run(3, 1, 25), true), (run(4, 2, 25), true)];
        assert_eq!(later_runs_win(1, written), Ok(vec![run(0, 3, 10), run(3, 1, 25), run(4, 2, 25)]));
        let without_leave = [(run(0, 3, 10), false), (run(3, 2, 20), false), (run(3, 1, 25), false)];
        assert!(later_runs_win(1, without_leave).is_err(), "a run replaced without leave");
        let inside = [(run(0, 3, 10), false), (run(2, 2, 20), true)];
        assert!(later_runs_win(1, inside).is_err(), "a run starting inside another");
        // Position-only runs (no records) are not kept, and cut as any run with a position:
        // one at the end cuts nothing, one at 3 cuts the runs from 3 written before it.
        let written = [(run(0, 3, 10), true), (run(3, 0, 11), true), (run(3, 2, 20), true), (run(3, 0, 25), true)];
        assert_eq!(later_runs_win(1, written), Ok(vec![run(0, 3, 10)]));
        let written = [(run(0, 3, 10), true), (run(3, 0, 11), true), (run(3, 2, 20), true), (run(5, 0, 25), true)];
        assert_eq!(later_runs_win(1, written), Ok(vec![run(0, 3, 10), run(3, 2, 20)]));
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// A commit of `records` records, `delay_ms` after the previous one.
        Push {
            records: u32,
            delay_ms: i64,
        },
        Seal,
        /// Retention's cutoff, `age_ms` before now (later records arrive at now or after).
        Expire {
            age_ms: i64,
        },
        /// A trim `back` records before the tip (an owner trims only records it has).
        Trim {
            back: u64,
        },
        /// A replaced suffix: the index cut back to the start of the `back`-th newest
        /// retained run (if that is at or past the last trim).
        Truncate {
            back: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (1..4u32, 0..3i64).prop_map(|(records, delay_ms)| Op::Push { records, delay_ms }),
            2 => Just(Op::Seal),
            1 => (0..40i64).prop_map(|age_ms| Op::Expire { age_ms }),
            1 => (0..200u64).prop_map(|back| Op::Trim { back }),
            1 => (0..12usize).prop_map(|back| Op::Truncate { back }),
        ]
    }

    /// The model: today's index, every retained run in memory, by first index.
    #[derive(Default)]
    struct Model {
        runs: BTreeMap<u64, RunEntry>,
        next_index: u64,
        trimmed_before: u64,
    }

    impl Model {
        fn trim_index(&self) -> u64 {
            self.runs.values().next().map_or(self.next_index, |run| run.first_index)
        }

        fn runs_from(&self, index: u64) -> impl Iterator<Item = &RunEntry> {
            self.runs.values().filter(move |run| run.end_index() > index)
        }
    }

    proptest! {
        /// The bounded index answers every lookup as the index that kept every run did, across
        /// pushes, seals, expiry and trims; it loads at most the spans a lookup lands in.
        #[test]
        fn matches_a_model_that_keeps_every_run(ops in proptest::collection::vec(op(), 1..120)) {
            let mut index = ShardIndex::starting_at(1, i64::MIN);
            let mut model = Model { next_index: 1, ..Model::default() };
            let mut checkpoints = Checkpoints::default();
            let (mut position, mut now_ms, mut segment_base, mut seals) = (0u64, 0i64, 0u64, 0usize);
            for op in ops {
                match op {
                    Op::Push { records, delay_ms } => {
                        now_ms += delay_ms;
                        let entry = RunEntry { first_index: model.next_index, record_count: records, run_bytes: 64, position, timestamp_ms: now_ms };
                        position += 64;
                        index.push(1, entry).unwrap();
                        checkpoints.0.entry(segment_base).or_default().push(entry);
                        model.runs.insert(entry.first_index, entry);
                        model.next_index = entry.end_index();
                    }
                    Op::Seal => {
                        index.seal(segment_base, position);
                        segment_base = position;
                        seals += 1;
                    }
                    Op::Expire { age_ms } => {
                        let cutoff_ms = now_ms - age_ms;
                        index.expire_before(cutoff_ms);
                        model.runs.retain(|_, run| run.timestamp_ms >= cutoff_ms);
                    }
                    Op::Trim { back } => {
                        let at = model.next_index.saturating_sub(back);
                        index.trim_before(at);
                        model.runs.retain(|_, run| run.end_index() > at);
                        model.trimmed_before = model.trimmed_before.max(at);
                    }
                    Op::Truncate { back } => {
                        let Some(&at) = model.runs.keys().rev().nth(back) else { continue };
                        if at < model.trimmed_before {
                            continue;
                        }
                        let (cut, _) = loading(&checkpoints, |runs| index.truncate(at, runs));
                        prop_assert!(cut, "a cut at run boundary {} refused", at);
                        model.runs.retain(|&first, _| first < at);
                        model.next_index = at;
                        let last = model.runs.values().next_back().map(|run| run.timestamp_ms);
                        prop_assert_eq!(index.last_timestamp_ms(), last.unwrap_or(index.last_timestamp_ms()));
                    }
                }
                // Gone runs are a prefix: the model drops them in order.
                let floor = index.trim_index_floor();
                let trim = model.trim_index();
                prop_assert!(floor <= trim, "floor {floor} above the horizon {trim}");
                prop_assert_eq!(loading(&checkpoints, |runs| index.trim_index(runs)).0, trim);
                prop_assert_eq!(index.next_index(), model.next_index);
                // Memory: one span per sealed segment at most, runs only of the active one.
                prop_assert!(index.sealed_span_count() <= seals, "{} spans after {} seals", index.sealed_span_count(), seals);
                prop_assert!(index.active_run_count() <= checkpoints.0.get(&segment_base).map_or(0, Vec::len));
                for at in 0..=model.next_index + 1 {
                    let (found, loads) = loading(&checkpoints, |runs| index.run_from(at, runs));
                    prop_assert_eq!(found, model.runs_from(at).next().copied(), "run from {}", at);
                    prop_assert!(loads <= 1, "run from {} loaded {} spans", at, loads);
                    let (timestamp, _) = loading(&checkpoints, |runs| index.timestamp_of(at, runs));
                    let expected = model.runs_from(at).next().filter(|run| run.first_index <= at).map(|run| run.timestamp_ms);
                    prop_assert_eq!(timestamp, expected, "timestamp of {}", at);
                }
                for timestamp_ms in -1..=now_ms + 1 {
                    let (at, loads) = loading(&checkpoints, |runs| index.index_at_timestamp(timestamp_ms, runs));
                    let expected = model.runs.values().find(|run| run.timestamp_ms >= timestamp_ms).map_or(model.next_index, |run| run.first_index);
                    prop_assert_eq!(at, expected, "at timestamp {}", timestamp_ms);
                    prop_assert!(loads <= 1);
                }
                // A walk over every retained run, loading span after span as a reader does.
                let (walked, _) = loading(&checkpoints, |runs| {
                    let mut walked = Vec::new();
                    index.visit_runs_from(0, runs, |run| { walked.push(*run); true }).map(|()| walked)
                });
                prop_assert_eq!(walked, model.runs.values().copied().collect::<Vec<_>>());
            }
        }
    }
}
