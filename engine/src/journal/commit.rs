//! The group-commit pipeline: the flusher task takes queued appends, frames them into batches,
//! writes them and makes them durable with one fdatasync, then publishes and acknowledges them.
//!
//! Two stages, pipelined: while commit N is being written and fsynced, commit N+1 is framed
//! (indexes assigned, records copied and checksummed). N+1's writes are submitted only once
//! N's fsync returned, so commits still reach the disk one after another, which is what lets
//! recovery tell a torn tail from corruption (see `format::scan_segment`). If N fails, N+1 is
//! unframed: its appends go back to the front of the queue and nothing of it was written.

use super::segment::{alignment_of, maybe_roll, needs_roll, reservation, reserve, CachedBatch};
use super::{AppendRecord, Appended, Inner};
use crate::error::{EngineError, Result};
use crate::format::{self, BatchWriter, RaftPosition};
use crate::limits;
use crate::sequence::ShardSeqPrefix;
use crate::shard_index::RunEntry;
use crate::storage::{short_write, BufferBytes, IoBuffer, Storage, StorageFile};
use futures_channel::oneshot;
use glommio::channels::local_channel::LocalReceiver;
use glommio::sync::StaticPermit;
use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;

/// Appends waiting for the next group commit, each with its reply.
pub(super) struct Pending {
    /// Empty for a position-only run (`Journal::queue_position`), and for a barrier
    /// (`Journal::close_shard`), which has no shard.
    pub records: Vec<AppendRecord>,
    /// The one shard of an append with a first index (`Journal::queue_at`,
    /// `Journal::queue_position`).
    pub shard_uid: Option<u64>,
    /// The records' arrival time, if the caller gives it (`Journal::queue_at`), instead of
    /// the clock's reading at framing.
    pub arrival_ms: Option<i64>,
    /// The record index the records must start at (`Journal::queue_at`: one shard's).
    pub first_index: Option<u64>,
    /// The Raft entry the records came from (`Journal::queue_at`): their runs carry it.
    pub raft: Option<RaftPosition>,
    pub encoded_bytes: usize,
    pub _permit: StaticPermit,
    pub reply: oneshot::Sender<Result<Vec<Appended>>>,
}

/// A commit framed and ready to write.
pub(super) struct Framed<S: Storage> {
    batch: Vec<Pending>,
    /// Per append: its records' acknowledgements, or why it was refused before writing.
    acks: Vec<Result<Vec<Appended>>>,
    runs: Vec<(u64, RunEntry)>,
    /// The Raft position of each of `runs`, if it carries one.
    raft: Vec<Option<RaftPosition>>,
    /// The commit's batches: journal position and the I/O buffer (kept for the tail cache).
    batches: Vec<(u64, Rc<S::Buffer>)>,
    /// Bytes allocated for each of `batches` (at least what is written): what the tail cache
    /// counts against its bound.
    allocated: Vec<usize>,
    file: Rc<S::File>,
    base: u64,
    path: PathBuf,
    position: u64,
    pub bytes: u64,
    /// The size to reserve the segment file to before the writes (see `segment::reservation`).
    reserve_to: Option<u64>,
    record_count: u64,
    /// When framing finished: the commit's latency (waiting for the previous commit, the
    /// writes, the fdatasync) runs from here to its publication.
    framed_at: std::time::Instant,
}

impl<S: Storage> Framed<S> {
    /// Where each shard's records end and the newest arrival time, after this commit.
    fn shard_ends(&self) -> HashMap<u64, (u64, i64)> {
        let mut ends = HashMap::new();
        for (uid, run) in &self.runs {
            ends.insert(*uid, (run.end_index(), run.timestamp_ms));
        }
        ends
    }
}

/// A commit being written, and the task writing it (boxed: it is polled from two places).
type InFlight<S> = (Framed<S>, Pin<Box<<S as Storage>::Task<Result<()>>>>);

/// What the flusher woke up for while a commit was on its way to the disk.
enum Event {
    Written(Result<()>),
    /// Appends arrived (or, `false`, the queue's sender is gone).
    Woken(bool),
}

pub(super) async fn flush_loop<S: Storage>(inner: Rc<Inner<S>>, wake: LocalReceiver<()>) {
    let mut in_flight: Option<InFlight<S>> = None;
    loop {
        let batch = take_batch(&inner);
        if batch.is_empty() {
            if let Some((_, io)) = in_flight.as_mut() {
                // Wait for the commit on its way to the disk *or* for appends: those are framed
                // at once, while the disk works, so the next commit is ready to go the moment
                // this one's fdatasync returns, instead of after it (which left the disk idle
                // while the next commit was framed). Commits still reach the disk one at a
                // time: the next is written only after this one is finished.
                let written = async { Event::Written(io.as_mut().await) };
                let woken = async { Event::Woken(wake.recv().await.is_some()) };
                match futures_lite::future::or(written, woken).await {
                    Event::Woken(true) => {}
                    Event::Written(written) => {
                        let (framed, _) = in_flight.take().expect("in flight");
                        finish_commit(&inner, framed, written);
                    }
                    Event::Woken(false) => {
                        let (framed, io) = in_flight.take().expect("in flight");
                        finish_commit(&inner, framed, io.await);
                    }
                }
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
                let io = inner.storage.spawn(write_commit(
                    inner.storage.clone(),
                    framed.file.clone(),
                    framed.path.clone(),
                    framed.base,
                    framed.reserve_to,
                    framed.batches.clone(),
                ));
                in_flight = Some((framed, Box::pin(io)));
            }
            Err((batch, error)) => fail_appends(&inner, batch, &error),
        }
    }
}

/// Shard uids a failed commit's log line lists at most: enough to tell one hot shard from a
/// whole core's worth, while a commit touching thousands of shards still logs one short line.
const LOGGED_SHARD_UIDS_MAX: usize = 16;

/// Publishes a written commit and answers its appends, or fails them. True on success.
fn finish_commit<S: Storage>(inner: &Inner<S>, framed: Framed<S>, written: Result<()>) -> bool {
    match written {
        Ok(()) => {
            let Framed { batch, acks, .. } = publish(inner, framed);
            for (pending, ack) in batch.into_iter().zip(acks) {
                answer(inner, pending, ack);
            }
            true
        }
        Err(error) => {
            // A commit spans shards (and streams, which the engine knows only by uid): the
            // log names the segment and the shards it concerned; each refused request's own
            // error log names its stream, shard and request id.
            let records = framed.batch.iter().flat_map(|pending| pending.records.iter().map(|record| record.shard_uid));
            let positions = framed.batch.iter().filter_map(|pending| pending.shard_uid);
            let mut shard_uids: Vec<u64> = records.chain(positions).collect();
            shard_uids.sort_unstable();
            shard_uids.dedup();
            let shards = shard_uids.len();
            shard_uids.truncate(LOGGED_SHARD_UIDS_MAX);
            tracing::error!(
                %error,
                path = %framed.path.display(),
                appends = framed.batch.len(),
                shards,
                ?shard_uids,
                "group commit failed; its appends are refused",
            );
            fail_appends(inner, framed.batch, &error);
            false
        }
    }
}

fn fail_appends<S: Storage>(inner: &Inner<S>, batch: Vec<Pending>, error: &EngineError) {
    for pending in batch {
        answer(inner, pending, Err(error.for_each_append()));
    }
}

/// Answers an append; one queued with a first index (`Journal::queue_at`) is no longer
/// unanswered on its shard.
fn answer<S: Storage>(inner: &Inner<S>, pending: Pending, result: Result<Vec<Appended>>) {
    if let Some(uid) = pending.first_index.and(pending.shard_uid) {
        if let Some(shard) = inner.state.borrow_mut().shards.get_mut(&uid) {
            shard.unanswered = shard.unanswered.saturating_sub(1);
        }
    }
    let _ = pending.reply.send(result);
}

/// Puts a framed-but-unwritten commit's appends back at the front of the queue, in order.
fn requeue<S: Storage>(inner: &Inner<S>, batch: Vec<Pending>) {
    let mut state = inner.state.borrow_mut();
    for pending in batch.into_iter().rev() {
        state.pending.push_front(pending);
    }
}

/// Writes the closing empty commit (see `Journal::close`) and fails anything left.
async fn close_journal<S: Storage>(inner: &Inner<S>) {
    match frame(inner, Vec::new(), None).await {
        Ok(framed) => {
            let written = write_commit(
                inner.storage.clone(),
                framed.file.clone(),
                framed.path.clone(),
                framed.base,
                framed.reserve_to,
                framed.batches.clone(),
            )
            .await;
            if let Err(error) = &written {
                tracing::error!(%error, "writing the closing batch failed");
                inner.state.borrow_mut().close_error = Some(error.for_each_append());
            }
            finish_commit(inner, framed, written);
        }
        Err((_, error)) => {
            tracing::error!(%error, "framing the closing batch failed");
            inner.state.borrow_mut().close_error = Some(error);
        }
    }
    let left: Vec<Pending> = inner.state.borrow_mut().pending.drain(..).collect();
    fail_appends(inner, left, &EngineError::Closed);
}

/// Takes whole appends off the queue, up to the commit size (always at least one).
fn take_batch<S: Storage>(inner: &Inner<S>) -> Vec<Pending> {
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

/// Consecutive records of one shard in a commit, of one time: `(append, slot)` pairs in
/// arrival order. The appends that take the clock's time share their shard's group; an append
/// with its own arrival time (`Journal::queue_at`) gets a group of its own.
struct ShardGroup {
    uid: u64,
    slots: Vec<(usize, usize)>,
    seq_prefix: ShardSeqPrefix,
    first_index: u64,
    timestamp_ms: i64,
    /// The append that opened the group, if it gave its own arrival time.
    own_time_of: Option<usize>,
    /// That append's Raft entry: the group's runs carry it.
    raft: Option<RaftPosition>,
}

impl ShardGroup {
    fn end(&self) -> (u64, i64) {
        (self.first_index + self.slots.len() as u64, self.timestamp_ms)
    }

    fn run_header_bytes(&self) -> usize {
        RaftPosition::run_header_bytes(self.raft)
    }
}

/// Upper bound on the bytes a commit of `batch` takes: every batch may waste a header and
/// an alignment.
pub(super) fn commit_bytes_bound<S: Storage>(inner: &Inner<S>, batch: &[Pending], alignment: usize) -> u64 {
    let used: usize = batch.iter().map(|pending| pending.encoded_bytes).sum();
    let capacity = inner.config.batch_bytes_max;
    let fill = capacity - format::BATCH_HEADER_BYTES - format::RUN_RAFT_HEADER_BYTES;
    // A record above the batch size seals the batch before it early: one batch more each.
    let oversized = batch
        .iter()
        .flat_map(|pending| &pending.records)
        .filter(|record| format::record_bytes(record.partition_key.len(), record.data.len()) > fill)
        .count();
    let batches_max = used / fill + 1 + oversized;
    (used + batches_max * (format::BATCH_HEADER_BYTES + alignment)) as u64
}

type FrameResult<S> = std::result::Result<Framed<S>, (Vec<Pending>, EngineError)>;

/// Frames `batch` into O_DIRECT batches after `previous` (the commit still being written, if
/// any): assigns each record its index, copies and checksums it. Writes nothing. An append
/// whose shard was forgotten while it waited is refused.
async fn frame<S: Storage>(inner: &Inner<S>, batch: Vec<Pending>, previous: Option<&Framed<S>>) -> FrameResult<S> {
    if previous.is_none() {
        if let Err(error) = maybe_roll(inner, &batch).await {
            return Err((batch, error.into_commit()));
        }
    }
    let now_ms = inner.clock.now_ms();
    let after_previous = previous.map(Framed::shard_ends).unwrap_or_default();
    // Per append, per record: filled run by run, so each append's list ends in request order.
    let mut acks: Vec<Result<Vec<Option<Appended>>>> = Vec::with_capacity(batch.len());
    let mut groups: Vec<ShardGroup> = Vec::new();
    {
        let state = inner.state.borrow();
        // Each shard's newest group in this commit: later records of the shard follow it.
        let mut latest_group: HashMap<u64, usize> = HashMap::new();
        // Where shard `uid`'s next record goes, and its last arrival time, so far.
        let end_of = |uid: u64, latest_group: &HashMap<u64, usize>, groups: &[ShardGroup]| match latest_group.get(&uid)
        {
            Some(&group) => groups[group].end(),
            None => after_previous.get(&uid).copied().unwrap_or_else(|| {
                let shard = &state.shards[&uid];
                (shard.index.next_index(), shard.index.last_timestamp_ms())
            }),
        };
        for (append, pending) in batch.iter().enumerate() {
            let mut uids = pending.records.iter().map(|record| record.shard_uid).chain(pending.shard_uid);
            let missing = uids.find(|uid| state.shards.get(uid).is_none_or(|shard| shard.spec.is_none()));
            if let Some(missing) = missing {
                acks.push(Err(EngineError::UnknownShard(missing)));
                continue;
            }
            if let Some(expected) = pending.first_index {
                let shard_uid = pending.shard_uid.expect("an append with a first index names its shard");
                let (actual, _) = end_of(shard_uid, &latest_group, &groups);
                if actual != expected {
                    acks.push(Err(EngineError::NotNext { shard_uid, expected, actual }));
                    continue;
                }
            }
            acks.push(Ok(vec![None; pending.records.len()]));
            if let (true, Some(uid), Some(raft)) = (pending.records.is_empty(), pending.shard_uid, pending.raft) {
                // A position-only run, where the shard's records end. It keeps the shard's
                // last arrival time: the next records' time is foretold from the records
                // alone (`ShardTip::append`).
                let (next_index, last_ms) = end_of(uid, &latest_group, &groups);
                groups.push(ShardGroup {
                    uid,
                    slots: Vec::new(),
                    seq_prefix: state.shards[&uid].spec.expect("checked above").seq_prefix,
                    first_index: next_index,
                    timestamp_ms: last_ms,
                    own_time_of: Some(append),
                    raft: Some(raft),
                });
                latest_group.insert(uid, groups.len() - 1);
            }
            for (slot, record) in pending.records.iter().enumerate() {
                let uid = record.shard_uid;
                let own_time_of = pending.arrival_ms.map(|_| append);
                let joins = latest_group.get(&uid).copied().filter(|&group| groups[group].own_time_of == own_time_of);
                let group = match joins {
                    Some(group) => group,
                    None => {
                        let (next_index, last_ms) = end_of(uid, &latest_group, &groups);
                        groups.push(ShardGroup {
                            uid,
                            slots: Vec::new(),
                            seq_prefix: state.shards[&uid].spec.expect("checked above").seq_prefix,
                            first_index: next_index,
                            timestamp_ms: pending.arrival_ms.unwrap_or(now_ms).max(last_ms),
                            own_time_of,
                            raft: pending.raft,
                        });
                        latest_group.insert(uid, groups.len() - 1);
                        groups.len() - 1
                    }
                };
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
    let alignment = alignment_of(inner, &file);
    let capacity = inner.config.batch_bytes_max;
    // Each batch's buffer is sized to what is left to frame (an upper bound: a run header for
    // every record), not to `capacity`: the tail cache keeps published buffers whole, and a
    // 2 MiB buffer holding one small commit cost 2 MiB for as long as it stayed cached (issue
    // 19: 2.3 GiB resident after one small PutRecords per stream of 1,000).
    let mut unframed: usize = groups
        .iter()
        .flat_map(|group| group.slots.iter().map(move |slot| (group, slot)))
        .map(|(group, &(append, slot))| {
            let record = &batch[append].records[slot];
            group.run_header_bytes() + format::record_bytes(record.partition_key.len(), record.data.len())
        })
        .sum::<usize>()
        + groups.iter().filter(|group| group.slots.is_empty()).count() * format::RUN_RAFT_HEADER_BYTES;
    let buffer_bytes = |unframed: usize| batch_buffer_bytes(unframed, capacity, alignment);

    let mut batches: Vec<(u64, Rc<S::Buffer>)> = Vec::new();
    let mut allocated: Vec<usize> = Vec::new();
    let mut runs: Vec<(u64, RunEntry)> = Vec::with_capacity(groups.len());
    let mut raft: Vec<Option<RaftPosition>> = Vec::with_capacity(groups.len());
    let mut batch_position = position;
    let mut writer = BatchWriter::new(BufferBytes(file.alloc_buffer(buffer_bytes(unframed))));
    let mut flags = format::COMMIT_START;
    let seal = |writer: BatchWriter<BufferBytes<S::Buffer>>,
                at: u64,
                flags: u16,
                batches: &mut Vec<(u64, Rc<S::Buffer>)>,
                allocated: &mut Vec<usize>| {
        let (buffer, padded) = writer.finish(at, now_ms, flags, alignment);
        let mut buffer = buffer.0;
        allocated.push(buffer.bytes().len());
        buffer.shrink_to(padded);
        batches.push((at, Rc::new(buffer)));
        padded as u64
    };
    for group in &groups {
        if group.slots.is_empty() {
            let position = group.raft.expect("only a position-only run has no records");
            if !writer.fits_position() {
                let fresh = BatchWriter::new(BufferBytes(file.alloc_buffer(buffer_bytes(unframed))));
                let full = std::mem::replace(&mut writer, fresh);
                if !full.is_empty() {
                    batch_position += seal(full, batch_position, flags, &mut batches, &mut allocated);
                    flags = 0;
                }
            }
            let offset = writer.offset();
            writer.push_position(group.uid, group.first_index, group.timestamp_ms, position);
            unframed -= format::RUN_RAFT_HEADER_BYTES;
            let run_bytes = format::RUN_RAFT_HEADER_BYTES as u32;
            let at = batch_position + offset as u64;
            let entry = RunEntry {
                first_index: group.first_index,
                record_count: 0,
                run_bytes,
                position: at,
                timestamp_ms: group.timestamp_ms,
            };
            runs.push((group.uid, entry));
            raft.push(group.raft);
            continue;
        }
        // The run open in the current batch: (offset in batch, first record index, records).
        let mut open_run: Option<(usize, u64, u32)> = None;
        for (ordinal, &(append, slot)) in group.slots.iter().enumerate() {
            let record = &batch[append].records[slot];
            let index = group.first_index + ordinal as u64;
            let new_run_header = if open_run.is_none() { group.run_header_bytes() } else { 0 };
            if !writer.fits(record.partition_key.len(), record.data.len(), new_run_header) {
                if let Some((offset, first_index, record_count)) = open_run.take() {
                    let run_bytes = (writer.offset() - offset) as u32;
                    let position = batch_position + offset as u64;
                    let entry =
                        RunEntry { first_index, record_count, run_bytes, position, timestamp_ms: group.timestamp_ms };
                    runs.push((group.uid, entry));
                    raft.push(group.raft);
                }
                // A record above the batch size (a stream's raised MaxRecordSizeInKiB) gets a
                // batch sized to it; an empty batch is dropped rather than written.
                let needed = format::BATCH_HEADER_BYTES
                    + group.run_header_bytes()
                    + format::record_bytes(record.partition_key.len(), record.data.len());
                let fresh_capacity =
                    buffer_bytes(unframed).max(needed.next_multiple_of(alignment.max(format::BLOCK_BYTES)));
                let fresh = BatchWriter::new(BufferBytes(file.alloc_buffer(fresh_capacity)));
                let full = std::mem::replace(&mut writer, fresh);
                if !full.is_empty() {
                    batch_position += seal(full, batch_position, flags, &mut batches, &mut allocated);
                    flags = 0;
                }
            }
            if open_run.is_none() {
                open_run = Some((writer.offset(), index, 0));
                writer.begin_run(group.uid, index, group.timestamp_ms, group.raft);
            }
            writer.push_record(
                &record.partition_key,
                &record.data,
                if record.sealed { format::RECORD_SEALED } else { 0 },
            );
            unframed -= group.run_header_bytes() + format::record_bytes(record.partition_key.len(), record.data.len());
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
            raft.push(group.raft);
        }
        // Framing a large commit is the longest stretch of CPU here: let others run between shards.
        futures_lite::future::yield_now().await;
    }
    batch_position += seal(writer, batch_position, flags | format::COMMIT_END, &mut batches, &mut allocated);
    let reserve_to = reservation(inner, base, batch_position - base);
    let every_slot =
        |list: Vec<Option<Appended>>| list.into_iter().map(|ack| ack.expect("every record was framed")).collect();
    Ok(Framed {
        acks: acks.into_iter().map(|ack| ack.map(every_slot)).collect(),
        record_count: groups.iter().map(|group| group.slots.len() as u64).sum(),
        batch,
        runs,
        raft,
        batches,
        allocated,
        file,
        base,
        path,
        position,
        bytes: batch_position - position,
        reserve_to,
        framed_at: std::time::Instant::now(),
    })
}

/// Bytes of the buffer a batch is framed into when `unframed` bytes (headers included) are left
/// to frame: enough for all of them with the batch header and the alignment padding, at most
/// `capacity` (the batch size; a larger record gets a buffer of its own size). A multiple of
/// the alignment and of the format's block, as the batch writer needs.
pub(super) fn batch_buffer_bytes(unframed: usize, capacity: usize, alignment: usize) -> usize {
    (format::BATCH_HEADER_BYTES + unframed).next_multiple_of(alignment.max(format::BLOCK_BYTES)).min(capacity)
}

/// Writes a framed commit's batches all at once (into reserved space: `reserve_to`, if the
/// segment needs more first), then one fdatasync.
async fn write_commit<S: Storage>(
    storage: S,
    file: Rc<S::File>,
    path: PathBuf,
    base: u64,
    reserve_to: Option<u64>,
    batches: Vec<(u64, Rc<S::Buffer>)>,
) -> Result<()> {
    if let Some(bytes) = reserve_to {
        reserve(&*file, &path, bytes).await;
    }
    let writes: Vec<_> = batches
        .iter()
        .map(|(position, buffer)| {
            let (file, buffer, offset) = (file.clone(), buffer.clone(), position - base);
            storage.spawn(async move { file.write_at(buffer, offset).await })
        })
        .collect();
    let mut failure = None;
    for (write, (_, buffer)) in writes.into_iter().zip(&batches) {
        match write.await {
            Ok(written) if written == buffer.bytes().len() => {}
            Ok(written) => failure = Some(short_write(written, buffer.bytes().len())),
            Err(error) => failure = Some(error),
        }
    }
    if let Some(error) = failure {
        // Nothing is published: the next commit goes to the same position and overwrites
        // whatever of this one reached the disk.
        return Err(EngineError::commit(path, "write", error));
    }
    file.fdatasync().await.map_err(|error| EngineError::commit(path, "fdatasync", error))
}

/// Makes a durable commit visible: shard indexes, tail cache, waiters, counters.
fn publish<S: Storage>(inner: &Inner<S>, framed: Framed<S>) -> Framed<S> {
    let mut state = inner.state.borrow_mut();
    let state = &mut *state;
    assert_eq!(state.write_position, framed.position, "commits publish in order");
    let segment = state.segments.get_mut(&framed.base).expect("active segment");
    segment.bytes += framed.bytes;
    segment.runs.runs.extend_from_slice(&framed.runs);
    for ((uid, run), raft) in framed.runs.iter().zip(&framed.raft) {
        if let Some(raft) = raft {
            segment.runs.raft.push((run.position, *raft));
            segment.note_raft_run(*uid, *raft, run);
        }
        segment.shard_last_timestamp_ms.insert(*uid, run.timestamp_ms);
        segment.shard_end_index.insert(*uid, run.end_index());
        // A shard forgotten while its commit was in flight: its bytes are on disk, unserved.
        let Some(shard) = state.shards.get_mut(uid) else { continue };
        // A position-only run holds no record for the index.
        if run.record_count > 0 {
            shard.index.push(*uid, *run).expect("commits publish in order, so runs are contiguous");
        }
        if let Some(raft) = raft {
            shard.raft.observe(*raft, run.end_index());
        }
        shard.wake_waiters(false);
    }
    state.write_position += framed.bytes;
    state.stats.record_commit(framed.record_count, framed.bytes, framed.framed_at.elapsed());
    // The cache counts what its buffers hold in memory, not what they wrote, so that its
    // bound is a bound on memory.
    for ((position, buffer), &allocated_bytes) in framed.batches.iter().zip(&framed.allocated) {
        state.cache_bytes += allocated_bytes;
        state.cache.push_back(CachedBatch { position: *position, buffer: buffer.clone(), allocated_bytes });
    }
    while state.cache_bytes > inner.config.tail_cache_bytes_max {
        let evicted = state.cache.pop_front().expect("cache holds bytes");
        state.cache_bytes -= evicted.allocated_bytes;
    }
    framed
}
