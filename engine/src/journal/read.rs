//! Reads: resolving start positions, reading records by index (from the tail cache or the
//! segment files), and waiting for new records.

use super::segment::{Segment, SegmentPin};
use super::{served_shard, Journal, ReadBatch, StartPosition, StoredRecord};
use crate::error::{EngineError, Result};
use crate::format::{self, FrameError};
use crate::shard_index::RunEntry;
use crate::storage::{IoBuffer, Storage, StorageFile};
use bytes::Bytes;
use futures_channel::oneshot;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

impl<S: Storage> Journal<S> {
    /// Resolves a start position to a record index of the shard.
    pub fn resolve(&self, shard_uid: u64, position: StartPosition) -> Result<u64> {
        let mut state = self.inner.state.borrow_mut();
        let state = &mut *state;
        let now_ms = self.inner.clock.now_ms();
        let shard = served_shard(&mut state.shards, &mut state.stats, shard_uid, now_ms)?;
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
        let state = &mut *state;
        let shard = served_shard(&mut state.shards, &mut state.stats, shard_uid, self.inner.clock.now_ms())?;
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
            let state = &mut *state;
            let shard = served_shard(&mut state.shards, &mut state.stats, shard_uid, now_ms)?;
            let spec = shard.spec.expect("served shards are registered");
            let start = from_index.max(shard.index.trim_index());
            let mut runs: Vec<(RunEntry, Rc<ReadSegment<S>>)> = Vec::new();
            let (mut records, mut bytes) = (0usize, 0usize);
            for run in shard.index.runs_from(start) {
                if records >= records_max || bytes >= bytes_max {
                    break;
                }
                records += (run.end_index() - run.first_index.max(start)) as usize;
                bytes += run.run_bytes as usize;
                // Pin each segment the read needs, once, while the index and the segments agree.
                let pinned = runs.last().map(|(_, segment)| segment.clone()).filter(|segment| segment.holds(run));
                let segment = match pinned {
                    Some(segment) => segment,
                    None => Rc::new(ReadSegment::find(&state.segments, run)?),
                };
                runs.push((*run, segment));
            }
            (spec, start, runs)
        };
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
