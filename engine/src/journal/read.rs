//! Reads: resolving start positions, reading records by index (from the tail cache or the
//! segment files), and waiting for new records.

use super::segment::{Segment, SegmentPin};
use super::{served_shard, Journal, ReadBatch, ShardTip, StartPosition, StoredRecord};
use crate::error::{EngineError, Result};
use crate::format::{self, FrameError};
use crate::shard_index::{RunEntry, ShardIndex};
use crate::storage::{IoBuffer, Storage, StorageFile};
use bytes::Bytes;
use futures_channel::oneshot;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

impl<S: Storage> Journal<S> {
    /// Resolves a start position to a record index of the shard. May read a sealed segment's
    /// checkpoint (AT_TIMESTAMP inside a sealed segment, or TRIM_HORIZON once retention cut
    /// into one): see `crate::shard_index`.
    pub async fn resolve(&self, shard_uid: u64, position: StartPosition) -> Result<u64> {
        let now_ms = self.inner.clock.now_ms();
        self.with_sealed_runs(shard_uid, |state, runs| {
            let shard = served_shard(&mut state.shards, &mut state.stats, shard_uid, now_ms)?;
            let mut next = shard.visible_end();
            if shard.published.is_some() {
                // The floor `visible_end` keeps to may lie below the trim horizon.
                next = next.max(shard.index.trim_index(runs)?);
            }
            let index = match position {
                StartPosition::TrimHorizon => shard.index.trim_index(runs)?,
                StartPosition::Latest => next,
                StartPosition::AtIndex(index) => index,
                StartPosition::AfterIndex(index) => index.saturating_add(1),
                StartPosition::AtTimestamp(timestamp_ms) => shard.index.index_at_timestamp(timestamp_ms, runs)?,
            };
            if index > next {
                return Err(EngineError::IndexBeyondTip { index, next_index: next }.into());
            }
            Ok(shard.index.clamp_to_trim(index, runs)?)
        })
        .await
    }

    /// The shard's trim horizon, and where the records it serves end: the index its next
    /// record will get, or a gated shard's visible end ([`Journal::gate_shard`]).
    pub async fn bounds(&self, shard_uid: u64) -> Result<(u64, u64)> {
        let now_ms = self.inner.clock.now_ms();
        self.with_sealed_runs(shard_uid, |state, runs| {
            let shard = served_shard(&mut state.shards, &mut state.stats, shard_uid, now_ms)?;
            let trim = shard.index.trim_index(runs)?;
            Ok((trim, shard.visible_end().max(trim)))
        })
        .await
    }

    /// [`Journal::bounds`] from memory alone, never waiting on the disk (for metrics): the
    /// trim horizon is a run boundary at or below the true one (`ShardIndex::trim_index_floor`),
    /// equal to it unless retention or a trim cut into a sealed segment's runs of the shard.
    pub fn bounds_in_memory(&self, shard_uid: u64) -> Result<(u64, u64)> {
        let mut state = self.inner.state.borrow_mut();
        let state = &mut *state;
        let shard = served_shard(&mut state.shards, &mut state.stats, shard_uid, self.inner.clock.now_ms())?;
        Ok((shard.index.trim_index_floor(), shard.visible_end()))
    }

    /// The first and next record index shard `uid` holds in its index as it is, registered
    /// or not, without applying retention first (which [`Journal::bounds_in_memory`] does):
    /// for a host checking what recovery found before anything reads the shard. `None` if the
    /// journal knows no such shard.
    pub fn indexed_bounds(&self, shard_uid: u64) -> Option<(u64, u64)> {
        let state = self.inner.state.borrow();
        let shard = state.shards.get(&shard_uid)?;
        Some((shard.index.trim_index_floor(), shard.index.next_index()))
    }

    /// Where the shard's durable records end, from memory (a gated shard's too: its writer's
    /// view, not its readers'): the index its next record gets, the
    /// arrival time of its last record (what the next append's time is at least), and its
    /// sequence numbers' prefix. A replica's applier, the shard's only writer, takes this
    /// once nothing of its own is on the way, then follows the appends it queues itself.
    pub fn tip(&self, shard_uid: u64) -> Result<ShardTip> {
        let mut state = self.inner.state.borrow_mut();
        let state = &mut *state;
        let shard = served_shard(&mut state.shards, &mut state.stats, shard_uid, self.inner.clock.now_ms())?;
        Ok(ShardTip {
            next_index: shard.index.next_index(),
            last_timestamp_ms: shard.index.last_timestamp_ms(),
            seq_prefix: shard.spec.expect("a served shard has its spec").seq_prefix,
        })
    }

    /// Reads up to `records_max` records and about `bytes_max` bytes (data plus keys; always at
    /// least one record if there is one) starting at record index `from_index`. Records that
    /// expired are skipped: reading starts at the trim horizon at the earliest. A gated
    /// shard's read stops at its visible end when the read began ([`Journal::gate_shard`]).
    pub async fn read(
        &self,
        shard_uid: u64,
        from_index: u64,
        records_max: usize,
        bytes_max: usize,
    ) -> Result<ReadBatch> {
        self.read_to(shard_uid, from_index, records_max, bytes_max, true).await
    }

    /// [`Journal::read`] up to the shard's durable end, a gated shard's too: for its Raft
    /// group, whose log holds entries past what it published (a leader sends them to its
    /// followers before they commit). Each record says which entry it came from
    /// ([`StoredRecord::raft`]).
    pub async fn read_log(
        &self,
        shard_uid: u64,
        from_index: u64,
        records_max: usize,
        bytes_max: usize,
    ) -> Result<ReadBatch> {
        self.read_to(shard_uid, from_index, records_max, bytes_max, false).await
    }

    async fn read_to(
        &self,
        shard_uid: u64,
        from_index: u64,
        records_max: usize,
        bytes_max: usize,
        gated: bool,
    ) -> Result<ReadBatch> {
        let now_ms = self.inner.clock.now_ms();
        // Planned under the state's borrow, pinning each segment the read needs while the
        // index and the segments agree. A read that reaches a sealed span may wait on the disk
        // for its runs, and what it returns must not depend on what retention or appends did
        // meanwhile: it walks a view of the index taken when it began (`view_from`), with the
        // segments of its spans pinned, stopping at a span whose runs are not loaded and going
        // on from `cursor` once they are. A read within the active segment walks the index.
        let mut runs: Vec<(RunEntry, Rc<ReadSegment<S>>)> = Vec::new();
        let (mut records, mut bytes) = (0usize, 0usize);
        let cursor = std::cell::Cell::new(from_index);
        let mut start = None;
        let mut view: Option<(ShardIndex, Vec<ReadSegment<S>>)> = None;
        let mut first_attempt = true;
        let mut end = u64::MAX;
        let spec = self
            .with_sealed_runs(shard_uid, |state, sealed| {
                let shard = served_shard(&mut state.shards, &mut state.stats, shard_uid, now_ms)?;
                let spec = shard.spec.expect("served shards are registered");
                // Taken in the first attempt, which runs when the read is called.
                let first = std::mem::take(&mut first_attempt);
                if first {
                    end = shard.read_end(gated);
                }
                if first && shard.index.reaches_sealed(from_index) {
                    let taken = shard.index.view_from(from_index, records_max);
                    let mut pins = taken
                        .sealed_spans()
                        .map(|span| ReadSegment::at(&state.segments, span.segment_base))
                        .collect::<Result<Vec<_>>>()?;
                    // The view's active runs are in the active segment, which a roll may seal
                    // while this read waits for sealed runs, and retention then delete: it is
                    // pinned too (simulation seed 2387 with reserved segments: NoSegment). So
                    // is the segment a roll under way sealed, whose runs the indexes hold until
                    // its checkpoint is written (simulation seed 7010: NoSegment again).
                    let mut bases: Vec<u64> = taken
                        .active_runs()
                        .filter_map(|run| state.segments.range(..=run.position).next_back().map(|(&base, _)| base))
                        .collect();
                    bases.dedup();
                    for base in bases {
                        pins.push(ReadSegment::at(&state.segments, base)?);
                    }
                    view = Some((taken, pins));
                }
                let index = view.as_ref().map_or(&shard.index, |(view, _)| view);
                let start = *match start {
                    Some(ref start) => start,
                    None => start.insert(index.clamp_to_trim(from_index, sealed)?),
                };
                let mut missing = None;
                index.visit_runs_from(cursor.get().max(start), sealed, |run| {
                    if records >= records_max || bytes >= bytes_max || run.first_index >= end {
                        return false;
                    }
                    let pinned = runs.last().map(|(_, segment)| segment.clone()).filter(|segment| segment.holds(run));
                    let segment = match pinned {
                        Some(segment) => segment,
                        None => match ReadSegment::find(&state.segments, run) {
                            Ok(segment) => Rc::new(segment),
                            Err(error) => {
                                missing = Some(error);
                                return false;
                            }
                        },
                    };
                    records += run.end_index().min(end).saturating_sub(run.first_index.max(start)) as usize;
                    bytes += run.run_bytes as usize;
                    cursor.set(run.end_index());
                    runs.push((*run, segment));
                    true
                })?;
                match missing {
                    Some(error) => Err(error.into()),
                    None => Ok(spec),
                }
            })
            .await?;
        let start = start.expect("set by the first attempt that found the shard");
        let mut out = Vec::new();
        let mut bytes = 0usize;
        'runs: for (run, segment) in &runs {
            let source = self.run_bytes(run, segment).await?;
            let path = &segment.path;
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
                if record.record_index >= end {
                    break 'runs;
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
                    sealed: record.flags & format::RECORD_SEALED != 0,
                    raft: view.raft,
                });
            }
        }
        let next_index = out.last().map_or(start, |record| record.sequence_number.record_index() + 1);
        // Usually answered without a load: `next_index` lies in the span just read, or starts
        // the next span (whose first arrival time the span holds), or is the tip.
        // Caught up to a gated shard's visible end is caught up, whatever lies past it.
        let next_timestamp_ms = self
            .with_sealed_runs(shard_uid, |state, sealed| match state.shards.get(&shard_uid) {
                Some(shard) if next_index < shard.read_end(gated) => {
                    Ok(shard.index.timestamp_of(next_index, sealed)?)
                }
                _ => Ok(None),
            })
            .await?;
        let millis_behind_latest = next_timestamp_ms.map_or(0, |timestamp_ms| (now_ms - timestamp_ms).max(0));
        Ok(ReadBatch { records: out, next_index, millis_behind_latest })
    }

    /// The bytes of one run, from the tail cache or else from its (pinned) segment file.
    async fn run_bytes(&self, run: &RunEntry, segment: &ReadSegment<S>) -> Result<RunSource<S>> {
        {
            let mut state = self.inner.state.borrow_mut();
            let after = state.cache.partition_point(|batch| batch.position <= run.position);
            let cached = after.checked_sub(1).map(|i| &state.cache[i]).and_then(|batch| {
                let start = (run.position - batch.position) as usize;
                let len = run.run_bytes as usize;
                (start + len <= batch.buffer.bytes().len()).then(|| RunSource::Cached {
                    buffer: batch.buffer.clone(),
                    start,
                    len,
                })
            });
            match cached {
                Some(source) => {
                    state.stats.tail_cache_hits += 1;
                    return Ok(source);
                }
                None => state.stats.tail_cache_misses += 1,
            }
        }
        let offset = run.position - segment.base;
        let path = &segment.path;
        let bytes =
            segment.file.read_at(offset, run.run_bytes as usize).await.map_err(EngineError::io(path, "read"))?;
        if bytes.len() != run.run_bytes as usize {
            let reason = FrameError::Truncated;
            return Err(EngineError::Corrupt { path: path.clone(), offset, reason });
        }
        Ok(RunSource::Disk(bytes))
    }

    /// A receiver that fires once the shard serves a record at `index` (or closes, or is
    /// forgotten), or `None` if it already does. Lets subscribers wait for new records without
    /// polling.
    pub fn wait_for_index(&self, shard_uid: u64, index: u64) -> Result<Option<oneshot::Receiver<()>>> {
        let mut state = self.inner.state.borrow_mut();
        let shard = state.shards.get_mut(&shard_uid).ok_or(EngineError::UnknownShard(shard_uid))?;
        if shard.visible_end() > index {
            return Ok(None);
        }
        let (sender, receiver) = oneshot::channel();
        shard.waiters.retain(|(_, waiter)| !waiter.is_canceled());
        shard.waiters.push((index, sender));
        Ok(Some(receiver))
    }
}

/// A segment a read uses, pinned against retention for as long as the read holds it.
struct ReadSegment<S: Storage> {
    base: u64,
    end: u64,
    path: PathBuf,
    file: Rc<S::File>,
    _pin: SegmentPin,
}

impl<S: Storage> ReadSegment<S> {
    /// The live segment holding `run`. An index pointing elsewhere is a bug, reported as an
    /// error rather than a panic.
    fn find(segments: &BTreeMap<u64, Segment<S>>, run: &RunEntry) -> Result<ReadSegment<S>> {
        let (&base, segment) =
            segments.range(..=run.position).next_back().ok_or(EngineError::NoSegment { position: run.position })?;
        let found = ReadSegment {
            base,
            end: base + segment.bytes,
            path: segment.path.clone(),
            file: segment.file.clone(),
            _pin: SegmentPin::new(segment),
        };
        if !found.holds(run) {
            return Err(EngineError::NoSegment { position: run.position });
        }
        Ok(found)
    }

    /// The live segment at `base`, pinned.
    fn at(segments: &BTreeMap<u64, Segment<S>>, base: u64) -> Result<ReadSegment<S>> {
        let segment = segments.get(&base).ok_or(EngineError::NoSegment { position: base })?;
        Ok(ReadSegment {
            base,
            end: base + segment.bytes,
            path: segment.path.clone(),
            file: segment.file.clone(),
            _pin: SegmentPin::new(segment),
        })
    }

    fn holds(&self, run: &RunEntry) -> bool {
        self.base <= run.position && run.position + u64::from(run.run_bytes) <= self.end
    }
}

enum RunSource<S: Storage> {
    Cached { buffer: Rc<S::Buffer>, start: usize, len: usize },
    Disk(<S::File as StorageFile>::Bytes),
}

impl<S: Storage> std::ops::Deref for RunSource<S> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            RunSource::Cached { buffer, start, len } => &buffer.bytes()[*start..*start + *len],
            RunSource::Disk(bytes) => bytes,
        }
    }
}
