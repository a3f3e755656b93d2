//! Recovery: rebuilding every shard's index from the segments at start-up. Sealed segments are
//! read from their checkpoints when those are valid; the last segment is scanned, and a torn
//! tail (the last group commit cut short by a crash, never acknowledged) is cut off.

use super::retention::load_watermarks;
use super::sealed_runs::load_span_runs;
use super::segment::{checkpoint_path, create_segment, segment_base, segment_path, Segment};
use super::ShardState;
use crate::error::{EngineError, Result};
use crate::format::{self, SegmentEnd, SegmentRuns};
use crate::shard_index::{GapError, NeedRuns, RunEntry, SealedRuns, SealedSpan, ShardIndex};
use crate::storage::{self, Storage, StorageFile};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::rc::Rc;

pub(super) struct Recovered<S: Storage> {
    pub shards: FxHashMap<u64, ShardState>,
    /// Shards the watermarks list as forgotten whose runs some segment still holds.
    pub forgotten: BTreeSet<u64>,
    pub segments: BTreeMap<u64, Segment<S>>,
    pub write_position: u64,
}

pub(super) async fn recover<S: Storage>(storage: &S, dir: &Path) -> Result<Recovered<S>> {
    // What recovery spends its time on, logged once at the end (issue 19 asks what dominates
    // recovery of a large data directory): wall time here, not the simulator's clock, because
    // the figure is for operators of a real disk.
    let started = std::time::Instant::now();
    let mut timing = RecoveryTiming::default();
    let mut bases: Vec<u64> = storage
        .list(dir)
        .await
        .map_err(EngineError::io(dir, "list"))?
        .iter()
        .filter_map(|name| segment_base(name))
        .collect();
    bases.sort_unstable();
    let mut files = Vec::with_capacity(bases.len());
    for &base in &bases {
        let path = segment_path(dir, base);
        let file = storage.open(&path, true).await.map_err(EngineError::io(&path, "open"))?;
        let size = file.size().await.map_err(EngineError::io(&path, "stat"))?;
        files.push((base, path, file, size));
    }
    reconcile_segments(storage, &mut files).await?;
    timing.open_ms = started.elapsed().as_millis();
    // Watermarks first: they say which runs retention may have deleted around.
    let watermarks = load_watermarks(storage, dir).await?;

    let mut shards: FxHashMap<u64, ShardState> = FxHashMap::default();
    // Per shard: the earliest run with a Raft position held back because it does not continue
    // the shard (above its trim while its index is empty, or past its end), which a later run
    // must replace (below): its first index, where the shard ended, and its segment.
    let mut held_back: BTreeMap<u64, (u64, u64, std::path::PathBuf)> = BTreeMap::new();
    let mut segments = BTreeMap::new();
    let count = files.len();
    for (ordinal, (base, path, file, size)) in files.into_iter().enumerate() {
        let last = ordinal + 1 == count;
        let step = std::time::Instant::now();
        let checkpoint = if last { None } else { load_checkpoint(storage, &path, base, size).await };
        if checkpoint.is_some() {
            timing.checkpoints += 1;
            timing.checkpoints_ms += step.elapsed().as_millis();
        }
        let (runs, valid_bytes) = match checkpoint {
            Some(runs) => (runs, size),
            None => {
                let bytes = if size == 0 {
                    None
                } else {
                    Some(file.read_at(0, size as usize).await.map_err(EngineError::io(&path, "read"))?)
                };
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
                let runs = scanned_runs(&scan, base);
                if !last {
                    let checkpoint = format::encode_segment_checkpoint(base, &runs.runs, &runs.raft);
                    storage::write_atomic(storage, &checkpoint_path(&path), &checkpoint)
                        .await
                        .map_err(EngineError::io(&path, "write index"))?;
                }
                timing.scanned_segments += 1;
                timing.scanned_bytes += size;
                timing.scan_ms += step.elapsed().as_millis();
                (runs, scan.valid_bytes as u64)
            }
        };
        if valid_bytes < size {
            file.truncate(valid_bytes).await.map_err(EngineError::io(&path, "truncate"))?;
        }
        if last {
            // What recovery found is served from now on, so it must be durable first: after a
            // killed process the last commits may have reached only the device's cache (a
            // commit in flight, or one whose fdatasync failed), and a power loss before the
            // next commit's fdatasync would take back records already served, and then hand
            // their sequence numbers out again. (Found by reasoning while checking seed 502; no
            // seed up to 6000 reaches that window.)
            let sync = std::time::Instant::now();
            file.fdatasync().await.map_err(EngineError::io(&path, "fdatasync"))?;
            timing.sync_ms += sync.elapsed().as_millis();
        }
        let index_step = std::time::Instant::now();
        timing.runs += runs.runs.len();
        let mut segment = Segment {
            base,
            path: path.clone(),
            file: Rc::new(file),
            bytes: valid_bytes,
            shard_last_timestamp_ms: HashMap::new(),
            shard_end_index: HashMap::new(),
            shard_raft_spans: HashMap::new(),
            // Only the active segment keeps its runs: for its checkpoint, once it is sealed.
            runs: if last { runs.clone() } else { SegmentRuns::default() },
            pins: Rc::default(),
            // Past the last commit the file was cut off above: nothing is reserved.
            reserved: valid_bytes,
        };
        for (&(uid, run), position) in runs.with_raft() {
            segment.shard_last_timestamp_ms.insert(uid, run.timestamp_ms);
            segment.shard_end_index.insert(uid, run.end_index());
            if let Some(position) = position {
                segment.note_raft_run(uid, position, &run);
            }
            let watermark = watermarks.get(&uid);
            // Runs of deleted streams, and runs that had expired by the last retention pass
            // (their neighbours may be deleted): not indexed, never served again. The trim is
            // a boundary of the runs the shard served, so a run that starts below it and ends
            // past it is one a later run replaced (`Journal::queue_at`): skipped too.
            if let Some(watermark) = watermark.filter(|w| w.is_forgotten() || run.first_index < w.trim_index) {
                if let Some(position) = position.filter(|_| !watermark.is_forgotten()) {
                    // It replaced every run held back or indexed so far: they start at or
                    // above the trim. And the entries from its index on, position-only runs
                    // too, which the index does not hold (found as simulation seed 479).
                    held_back.remove(&uid);
                    if let Some(shard) = shards.get_mut(&uid) {
                        if !shard.index.is_empty() {
                            shard.index = ShardIndex::starting_at(watermark.trim_index, i64::MIN);
                        }
                        shard.raft.cut(position.index);
                    }
                }
                continue;
            }
            let shard = shards.entry(uid).or_insert_with(|| {
                let mut shard = ShardState::default();
                if let Some(watermark) = watermark {
                    shard.index = ShardIndex::starting_at(watermark.trim_index, i64::MIN);
                }
                shard
            });
            // Nothing at or after the trim index was ever deleted: the first run must start
            // exactly there, and every later one where the previous ended.
            let expected = watermark.filter(|_| shard.index.is_empty()).map(|w| w.trim_index);
            if let Some(expected) = expected.filter(|&expected| run.first_index != expected) {
                // Unless a later run replaces it: the runs the shard served from its trim on
                // were written in order, so one with a Raft position that comes before the
                // run at the trim is one that run (or one before it) replaced.
                if position.is_some() && run.first_index > expected {
                    hold_back(&mut held_back, uid, (run.first_index, expected), &path);
                    continue;
                }
                let gap = GapError { shard_uid: uid, expected, found: run.first_index };
                return Err(EngineError::Gap { path: path.clone(), gap });
            }
            // Likewise past the shard's end: a later run replaced the runs between (it starts
            // at or below them, and the later run wins), and retention deleted a segment of
            // them but kept this one, which is before the replacing run's (simulation seed
            // 5807; `tests/journal.rs`, `a_replaced_run_past_a_deleted_segment_waits_for_its_replacement`).
            let next = shard.index.next_index();
            if position.is_some() && !shard.index.is_empty() && run.first_index > next {
                hold_back(&mut held_back, uid, (run.first_index, next), &path);
                continue;
            }
            if held_back.contains_key(&uid) {
                // At the trim or the shard's end: it replaces what was held back, if it may.
                if position.is_none() {
                    let gap = GapError { shard_uid: uid, expected: run.first_index, found: held_back[&uid].0 };
                    return Err(EngineError::Gap { path: path.clone(), gap });
                }
                held_back.remove(&uid);
            }
            // A run with a Raft position that starts before the shard's end replaced the runs
            // from there on (a new leader's entries over a follower's uncommitted ones,
            // `Journal::queue_at`): the later run wins.
            if let Some(position) = position.filter(|_| run.first_index < shard.index.next_index()) {
                if cut_back(storage, &segments, uid, &mut shard.index, run.first_index).await? {
                    shard.raft.cut(position.index);
                }
            }
            let gap = |gap| EngineError::Gap { path: path.clone(), gap };
            if run.record_count > 0 {
                shard.index.push(uid, run).map_err(gap)?;
            } else {
                // A position-only run: where the shard's records end, not indexed.
                shard.index.check_next(uid, run.first_index).map_err(gap)?;
            }
            if let Some(position) = position {
                shard.raft.observe(position, run.end_index());
            }
        }
        if !last {
            // A sealed segment's runs collapse into one span per shard; its checkpoint
            // holds them for the reads that land inside (issue 19).
            for uid in segment.shard_end_index.keys() {
                if let Some(shard) = shards.get_mut(uid) {
                    shard.index.seal(base, base + valid_bytes);
                }
            }
        }
        segments.insert(base, segment);
        timing.index_ms += index_step.elapsed().as_millis();
    }

    // A run held back that nothing replaced: the records from where the shard ended up to it
    // are lost.
    if let Some((&uid, &(found, expected, ref path))) = held_back.iter().next() {
        let gap = GapError { shard_uid: uid, expected, found };
        return Err(EngineError::Gap { path: path.clone(), gap });
    }

    // Shards whose every retained record is gone continue after their watermark.
    let mut forgotten = BTreeSet::new();
    for (uid, watermark) in watermarks {
        if watermark.is_forgotten() {
            forgotten.insert(uid);
            continue;
        }
        let shard = shards.entry(uid).or_default();
        let found = shard.index.next_index();
        if watermark.next_index > found {
            if !shard.index.is_empty() {
                return Err(EngineError::MissingRecords { shard_uid: uid, watermark: watermark.next_index, found });
            }
            shard.index = ShardIndex::starting_at(watermark.next_index, watermark.last_timestamp_ms);
        }
    }

    if segments.is_empty() {
        segments.insert(0, create_segment(storage, dir, 0).await?);
    } else {
        // The segments found are served from now on, so their names must be durable: a
        // process that died (or failed) between creating a segment and syncing the directory
        // leaves a name a power loss can still take away, with every record acknowledged
        // into it since (simulation seed 137).
        storage.sync_dir(dir).await.map_err(EngineError::io(dir, "fsync directory"))?;
    }
    let (base, active) = segments.iter().next_back().expect("at least one segment");
    let write_position = base + active.bytes;
    tracing::info!(
        dir = %dir.display(),
        segments = segments.len(),
        shards = shards.len(),
        runs = timing.runs,
        open_ms = timing.open_ms,
        checkpoints = timing.checkpoints,
        checkpoints_ms = timing.checkpoints_ms,
        scanned_segments = timing.scanned_segments,
        scanned_bytes = timing.scanned_bytes,
        scan_ms = timing.scan_ms,
        index_ms = timing.index_ms,
        sync_ms = timing.sync_ms,
        total_ms = started.elapsed().as_millis(),
        "journal recovered"
    );
    Ok(Recovered { shards, forgotten, segments, write_position })
}

/// Where recovery's time went, for the "journal recovered" log line.
#[derive(Default)]
struct RecoveryTiming {
    /// Listing, opening and sizing the segment files.
    open_ms: u128,
    /// Sealed segments whose checkpoint was read instead of the segment.
    checkpoints: usize,
    checkpoints_ms: u128,
    /// Segments read whole and scanned: the active one, and sealed ones without a valid
    /// checkpoint (whose checkpoint is then written).
    scanned_segments: usize,
    scanned_bytes: u64,
    scan_ms: u128,
    /// Putting the runs into the shard indexes and the segments' per-shard maps.
    index_ms: u128,
    runs: usize,
    /// The fdatasync of the active segment.
    sync_ms: u128,
}

/// Holds back shard `uid`'s run at `found` (the shard ending at `expected`), in the segment at
/// `path`, unless an earlier one is held back already.
fn hold_back(
    held_back: &mut BTreeMap<u64, (u64, u64, std::path::PathBuf)>,
    uid: u64,
    (found, expected): (u64, u64),
    path: &Path,
) {
    let earliest = held_back.entry(uid).or_insert((found, expected, path.to_path_buf()));
    if found < earliest.0 {
        *earliest = (found, expected, path.to_path_buf());
    }
}

/// Reconciles the segment files with what rolls meant them to be, before anything is read:
///
/// - A failed roll can leave an empty file behind: the roll creates the next segment, and if
///   syncing the directory then fails the roll fails, and the next commit may still fit the
///   active segment, past that file's base. It must not be taken for a segment: it would
///   shadow the positions it claims (simulation seed 347). A segment is never sealed empty (a
///   roll needs a non-empty active segment), so an empty file is an orphan if a later segment
///   exists or an earlier one already extends past its base; it is removed.
/// - A segment can extend past the next one's base: a failed commit left bytes there, and the
///   roll that sealed it could not make cutting them durable (its fdatasync failed, and the
///   process died before another: simulation seed 4898). The next segment
///   starts where the published commits ended, so those bytes were never acknowledged: they
///   are cut off.
async fn reconcile_segments<S: Storage>(
    storage: &S,
    files: &mut Vec<(u64, std::path::PathBuf, S::File, u64)>,
) -> Result<()> {
    let count = files.len();
    let mut kept: Vec<(u64, std::path::PathBuf, S::File, u64)> = Vec::with_capacity(count);
    for (ordinal, (base, path, file, size)) in std::mem::take(files).into_iter().enumerate() {
        let previous_end = kept.last().map_or(0, |(previous_base, _, _, previous_size)| previous_base + previous_size);
        if size == 0 && (ordinal + 1 < count || base < previous_end) {
            tracing::warn!(path = %path.display(), "removing an empty segment a failed roll left behind");
            drop(file);
            storage.remove(&path).await.map_err(EngineError::io(&path, "remove orphan segment"))?;
            continue;
        }
        if let Some((previous_base, previous_path, previous_file, previous_size)) = kept.last_mut() {
            if base < previous_end {
                tracing::warn!(path = %previous_path.display(), bytes = previous_end - base, "cutting off the bytes of a failed commit past the sealed segment's end");
                let cut = base - *previous_base;
                previous_file.truncate(cut).await.map_err(EngineError::io(&*previous_path, "truncate"))?;
                previous_file.fdatasync().await.map_err(EngineError::io(&*previous_path, "fdatasync"))?;
                *previous_size = cut;
            }
        }
        kept.push((base, path, file, size));
    }
    *files = kept;
    Ok(())
}

/// The runs a scan found, in journal order, as a checkpoint lists them.
fn scanned_runs(scan: &format::SegmentScan, base: u64) -> SegmentRuns {
    let mut found = SegmentRuns::default();
    for run in scan.batches.iter().flat_map(|batch| batch.runs.iter()) {
        let position = base + run.offset as u64;
        let entry = RunEntry {
            first_index: run.first_index,
            record_count: run.record_count,
            run_bytes: run.run_bytes,
            position,
            timestamp_ms: run.timestamp_ms,
        };
        found.runs.push((run.shard_uid, entry));
        if let Some(raft) = run.raft {
            found.raft.push((position, raft));
        }
    }
    found
}

/// Cuts `index` back to `first_index` for a replacing run (`ShardIndex::truncate`), loading
/// the runs of a sealed span the cut lands inside from its segment, as a read does. False if
/// `first_index` is no run boundary of the shard: the run is then refused as a gap.
async fn cut_back<S: Storage>(
    storage: &S,
    segments: &BTreeMap<u64, Segment<S>>,
    uid: u64,
    index: &mut ShardIndex,
    first_index: u64,
) -> Result<bool> {
    struct Loaded(Option<(SealedSpan, Vec<RunEntry>)>);
    impl SealedRuns for Loaded {
        fn runs(&self, span: &SealedSpan) -> Option<&[RunEntry]> {
            self.0.as_ref().filter(|(loaded, _)| loaded == span).map(|(_, runs)| runs.as_slice())
        }
    }
    let mut loaded = Loaded(None);
    loop {
        let span = match index.truncate(first_index, &loaded) {
            Ok(cut) => return Ok(cut),
            Err(NeedRuns(span)) => span,
        };
        let segment = segments.get(&span.segment_base).ok_or(EngineError::NoSegment { position: span.segment_base })?;
        let (runs, _) = load_span_runs(storage, &segment.file, &segment.path, segment.bytes, uid, &span).await?;
        loaded = Loaded(Some((span, runs)));
    }
}

/// The runs of a sealed segment of `bytes` bytes, from a scan of the whole segment: for a read
/// that lands in a sealed segment whose checkpoint fails (recovery scans such a segment too).
/// A sealed segment's every commit was acknowledged, so any failed check is corruption.
pub(super) async fn scan_sealed_segment<S: Storage>(
    file: &S::File,
    path: &Path,
    base: u64,
    bytes: u64,
) -> Result<SegmentRuns> {
    let content = file.read_at(0, bytes as usize).await.map_err(EngineError::io(path, "read"))?;
    let scan = format::scan_segment(&content[..content.len().min(bytes as usize)], base);
    match scan.end {
        SegmentEnd::Clean => Ok(scanned_runs(&scan, base)),
        SegmentEnd::Torn { error_offset: offset, error: reason, .. }
        | SegmentEnd::Corrupt { offset, error: reason } => {
            Err(EngineError::Corrupt { path: path.to_path_buf(), offset: offset as u64, reason })
        }
    }
}

/// A sealed segment's checkpoint, or `None` if it is missing or fails any check (then the
/// segment is scanned instead).
pub(super) async fn load_checkpoint<S: Storage>(
    storage: &S,
    segment_path: &Path,
    base: u64,
    segment_bytes: u64,
) -> Option<SegmentRuns> {
    let path = checkpoint_path(segment_path);
    let bytes = match storage::read_whole(storage, &path).await {
        Ok(bytes) => bytes?,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read a segment index checkpoint; scanning the segment");
            return None;
        }
    };
    match format::decode_segment_checkpoint(&bytes, base, segment_bytes) {
        Ok(runs) => Some(runs),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "refusing a segment index checkpoint; scanning the segment");
            None
        }
    }
}
