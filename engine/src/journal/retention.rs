//! Retention: expiring records from the shard indexes and deleting segments that hold nothing
//! but expired records (or records of forgotten shards), after persisting the watermarks that
//! keep sequence numbers from ever being reused and tell recovery which holes are deletions.

use super::segment::{checkpoint_path, Segment, SpansBefore};
use super::{Journal, ShardState};
use crate::error::{EngineError, Result};
use crate::format::{self, Watermark, Watermarks};
use crate::shard_index::ShardIndex;
use crate::storage::{self, Storage};
use std::path::Path;

pub(super) const WATERMARKS_FILE: &str = "watermarks";
/// The JSON watermarks of Sluice before the format had trims and a checksum.
const LEGACY_WATERMARKS_FILE: &str = "watermarks.json";

impl<S: Storage> Journal<S> {
    /// Lets the records of `shard_uid` before `index` go: a shard that keeps its own log (the
    /// delivery state's internal shard, which has no time-based retention) calls it once a
    /// snapshot covers them. Whole runs only (a run `index` cuts stays readable), so the trim
    /// horizon may stay a little below `index`. The next retention pass records the new trim
    /// index in the watermarks before it deletes any segment the shard no longer needs; until
    /// then a restart finds the trimmed records again, which is harmless for a log whose
    /// reader starts at its latest snapshot. Returns the shard's trim horizon.
    pub async fn trim_shard_before(&self, shard_uid: u64, index: u64) -> Result<u64> {
        self.with_sealed_runs(shard_uid, |state, runs| {
            let shard = state.shards.get_mut(&shard_uid).ok_or(EngineError::UnknownShard(shard_uid))?;
            shard.index.trim_before(index);
            Ok(shard.index.trim_index(runs)?)
        })
        .await
    }

    /// [`Journal::trim_shard_before`], durably: the watermarks with the new trim are written
    /// before this returns, so that a restart does not find the trimmed records again. For a
    /// replicated shard restoring from a peer whose retention took the records before `index`
    /// while this one still holds some of its own there, which it cannot tell are the group's
    /// (`sluice_cluster::journal_log::ShardRestore`). The shard's hold
    /// ([`Journal::hold_segments_from`]) must not be below `index`: the watermarks' trim stays
    /// at or below it. Returns the shard's trim horizon.
    pub async fn trim_shard_durably(&self, uid: u64, index: u64) -> Result<u64> {
        // One watermark writer at a time (see `enforce_retention`): waits for a pass under way.
        let _writer = self.inner.watermark_writer.acquire_permit(1).await.map_err(|_| EngineError::Closed)?;
        let trim = self.trim_shard_before(uid, index).await?;
        let watermarks = watermarks_of(&self.inner.state.borrow());
        self.write_watermarks(&watermarks).await?;
        Ok(trim)
    }

    /// For a replica whose records of `uid` all lie before `next_index`, restoring the shard
    /// from a peer whose retention already dropped every record before `next_index`
    /// (`server/src/ops/cluster/snapshot.rs`): the records here go as well, as if retention had
    /// dropped them (or never came: a new member), and the shard continues at `next_index`.
    /// The new start is written to the watermarks before this returns: a restart then skips
    /// the old runs and takes the first run appended from here, which a hole after them would
    /// otherwise stop. Refused
    /// ([`EngineError::NotNext`]) if the shard's records reach `next_index` or past it, or an
    /// append of the shard is queued.
    pub async fn restart_shard_at(&self, uid: u64, next_index: u64) -> Result<()> {
        // One watermark writer at a time (see `enforce_retention`): waits for a pass under way.
        let _writer = self.inner.watermark_writer.acquire_permit(1).await.map_err(|_| EngineError::Closed)?;
        let watermarks = {
            let mut state = self.inner.state.borrow_mut();
            let state = &mut *state;
            let queued =
                state.pending.iter().any(|pending| pending.records.iter().any(|record| record.shard_uid == uid));
            let shard = state
                .shards
                .get_mut(&uid)
                .filter(|shard| shard.spec.is_some())
                .ok_or(EngineError::UnknownShard(uid))?;
            let actual = shard.index.next_index();
            if queued || actual >= next_index {
                return Err(EngineError::NotNext { shard_uid: uid, expected: next_index, actual });
            }
            shard.index = ShardIndex::starting_at(next_index, shard.index.last_timestamp_ms());
            // The runs left behind are not read again, at a restart either: their Raft
            // positions go with them.
            shard.raft = super::RaftRuns::default();
            watermarks_of(state)
        };
        self.write_watermarks(&watermarks).await
    }

    /// Writes `watermarks` in place of the file's, atomically.
    pub(super) async fn write_watermarks(&self, watermarks: &Watermarks) -> Result<()> {
        let path = self.inner.config.dir.join(WATERMARKS_FILE);
        storage::write_atomic(&self.inner.storage, &path, &format::encode_watermarks(watermarks))
            .await
            .map_err(EngineError::io(&path, "write watermarks"))
    }

    /// Whether a sealed segment (one retention could delete) holds records of `shard_uid` at
    /// or after its trim horizon: whether trimming the shard could release a segment.
    pub fn shard_pins_sealed_segment(&self, shard_uid: u64) -> bool {
        let state = self.inner.state.borrow();
        let Some(shard) = state.shards.get(&shard_uid) else { return false };
        // The floor is the horizon unless a trim cut into a sealed span, and then the segment
        // of that span is pinned either way.
        let trim = shard.index.trim_index_floor();
        let active = *state.segments.keys().next_back().expect("there is always an active segment");
        state
            .segments
            .values()
            .filter(|segment| segment.base != active)
            .any(|segment| segment.shard_end_index.get(&shard_uid).is_some_and(|&end| end > trim))
    }

    /// Drops expired runs from every shard's index and deletes sealed segments that hold only
    /// expired records or records of forgotten shards, unless a read is using them (a later
    /// pass deletes those). Returns how many segments went.
    ///
    /// Segments need not go oldest first: one that holds a long-retention shard stays while
    /// later ones go. The watermarks written first record each shard's trim index, so that
    /// recovery knows a hole below it is a deletion, not a loss (simulation seeds 9 and 316).
    /// But a segment holding a replicated shard's run that replaced runs of an earlier one (by
    /// Raft or record indexes, `RaftSpan::replaces`) stays while that one does: recovery
    /// resolves a replacement by the later run, which must still be there (found as simulation
    /// seed 10635; `tests/journal.rs`, `a_replacing_run_stays_while_the_runs_it_replaced_do`).
    ///
    /// One pass at a time: a call while another runs returns `Ok(0)` at once. Two passes
    /// interleaved could write their watermarks out of order (an older file last, after the
    /// newer one's segments were deleted) and delete one segment twice (simulation seed 301).
    pub async fn enforce_retention(&self) -> Result<usize> {
        let Ok(_writer) = self.inner.watermark_writer.try_acquire_permit(1) else {
            return Ok(0);
        };
        let now_ms = self.inner.clock.now_ms();
        let (doomed, watermarks) = {
            let mut state = self.inner.state.borrow_mut();
            let state = &mut *state;
            for shard in state.shards.values_mut() {
                if shard.spec.is_some() {
                    state.stats.retention_expired_records += shard.index.expire_before(shard.expiry_cutoff(now_ms));
                }
            }
            let active = *state.segments.keys().next_back().expect("there is always an active segment");
            // A shard's records in a segment are gone once the newest of them expired, or once
            // its owner trimmed past them (`trim_shard_before`: the index no longer has them).
            let expired = |segment: &Segment<S>, uid: &u64, last_ms: &i64| match state.shards.get(uid) {
                None => true,
                Some(shard @ ShardState { spec: Some(_), index, segments_held_from, .. }) => {
                    let end = segment.shard_end_index.get(uid).copied();
                    let highest_entry = segment.shard_raft_spans.get(uid).map(|span| span.highest);
                    let held = segments_held_from.is_some_and(|held| {
                        end.is_none_or(|end| end > held.first_index)
                            || highest_entry.is_some_and(|highest| highest >= held.first_entry)
                    });
                    !held
                        && (*last_ms < shard.expiry_cutoff(now_ms)
                            || end.is_some_and(|end| end <= index.trim_index_floor()))
                }
                // Found by recovery but not registered yet: keep until we know its retention.
                Some(_) => false,
            };
            // Oldest first, so that a segment whose runs replaced runs of an earlier one stays
            // while that one does.
            let mut doomed: Vec<u64> = Vec::new();
            let mut staying = SpansBefore::default();
            // Forgotten shards' runs are never served again: theirs do not count.
            let known = |uid: u64| state.shards.contains_key(&uid);
            for segment in state.segments.values() {
                let all_expired = segment.shard_last_timestamp_ms.iter().all(|(uid, last)| expired(segment, uid, last));
                if segment.base != active && all_expired && !staying.replaced_by(segment, known) {
                    doomed.push(segment.base);
                } else {
                    staying.add(segment);
                }
            }
            // Forgotten shards stay listed while some segment still holds their runs.
            let in_segments = |uid: &u64| state.segments.values().any(|s| s.shard_last_timestamp_ms.contains_key(uid));
            state.forgotten.retain(in_segments);
            (doomed, watermarks_of(state))
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        // The watermarks go first: once a segment is gone, its shards' indexes must still
        // continue after the records it held, so that no sequence number is ever reused.
        self.write_watermarks(&watermarks).await?;
        let dir = &self.inner.config.dir;
        let mut deleted = 0;
        // Doomed segments a read kept: those after them that replaced their runs stay too.
        let mut kept = SpansBefore::default();
        for base in doomed {
            let segment_path = {
                let state = self.inner.state.borrow();
                let Some(segment) = state.segments.get(&base) else { continue };
                if segment.pinned() || kept.replaced_by(segment, |uid| state.shards.contains_key(&uid)) {
                    // A read uses it (or one it must outlive): the next pass deletes it.
                    kept.add(segment);
                    continue;
                }
                segment.path.clone()
            };
            // The segment stays known until its file is gone, so a failed delete is retried.
            self.inner
                .storage
                .remove(&segment_path)
                .await
                .map_err(EngineError::io(&segment_path, "delete expired segment"))?;
            {
                let mut state = self.inner.state.borrow_mut();
                let removed = state.segments.remove(&base).map_or(0, |segment| segment.bytes);
                self.inner.sealed_runs.borrow_mut().forget_segment(base);
                state.stats.retention_deleted_segments += 1;
                state.stats.retention_deleted_bytes += removed;
            }
            deleted += 1;
            // A checkpoint without its segment is never read: failing to delete it costs space.
            let index_path = checkpoint_path(&segment_path);
            match self.inner.storage.remove(&index_path).await {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(path = %index_path.display(), %error, "could not delete an expired checkpoint");
                }
                _ => {}
            }
        }
        tracing::info!(dir = %dir.display(), segments = deleted, "deleted expired segments");
        Ok(deleted)
    }
}

/// Every shard's watermark now, and the forgotten shards'.
pub(super) fn watermarks_of<S: Storage>(state: &super::State<S>) -> Watermarks {
    let mut watermarks: Watermarks = state
        .shards
        .iter()
        .map(|(&uid, shard)| {
            // The floor, a run boundary at or below the horizon: recovery skips the runs below
            // it and expires the others by time again, as before the restart.
            // A held shard's stays at or below where its runs are held (runs expired from the
            // index but on disk), but not below where its runs begin: recovery wants the first
            // run at or past the trim to start exactly there.
            let held = shard.segments_held_from.map_or(u64::MAX, |held| held.first_index.max(shard.index.origin()));
            let trim_index = shard.index.trim_index_floor().min(held);
            let watermark = Watermark {
                next_index: shard.index.next_index(),
                trim_index,
                last_timestamp_ms: shard.index.last_timestamp_ms(),
            };
            (uid, watermark)
        })
        .collect();
    watermarks.extend(state.forgotten.iter().map(|&uid| (uid, Watermark::forgotten())));
    watermarks
}

pub(super) async fn load_watermarks<S: Storage>(storage: &S, dir: &Path) -> Result<Watermarks> {
    let path = dir.join(WATERMARKS_FILE);
    match storage::read_whole(storage, &path).await {
        Ok(Some(bytes)) => format::decode_watermarks(&bytes).map_err(|error| EngineError::Io {
            path,
            operation: "decode watermarks",
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
        }),
        Ok(None) => {
            let legacy = dir.join(LEGACY_WATERMARKS_FILE);
            match storage::read_whole(storage, &legacy).await {
                // Without trims, a hole left by retention cannot be told from a loss.
                Ok(Some(_)) => Err(EngineError::Io {
                    path: legacy,
                    operation: "decode watermarks",
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "written by an older Sluice whose watermarks this version cannot trust; \
                         start with an empty data directory",
                    ),
                }),
                Ok(None) => Ok(Watermarks::new()),
                Err(source) => Err(EngineError::Io { path: legacy, operation: "read watermarks", source }),
            }
        }
        Err(source) => Err(EngineError::Io { path, operation: "read watermarks", source }),
    }
}
