//! Moving a shard group's log from [`DurableLog`] into the core's journal
//! ([`JournalLog`]): the existing data a node brings to the switch-over (`docs/replication.md`,
//! "What is left"). Unfinished: `sluiced` does not call it yet (its groups keep `DurableLog`).
//!
//! Before the switch, a shard group keeps its entries in a log of its own, and its applier
//! writes each committed entry's records to the journal as one run carrying the entry's Raft
//! position (slice A). So the journal already holds every applied entry, up to its newest Raft
//! run (the *applied tip*), and the log holds those after it, which may not be committed. The
//! move:
//!
//! 1. compacts the log to the applied tip (every entry up to it is committed: the applier took
//!    only committed ones; or to the log's compaction point if that is later, the entries
//!    between holding no records), saving the commit there first, and records that a move is
//!    under way ([`ADOPTING_FILE`]);
//! 2. writes the log's entries after the tip as the view writes any append: runs at the
//!    shard's next record index, entries without records as position-only runs with their
//!    bytes beside; and syncs them;
//! 3. deletes the log's segments, then the record of the move.
//!
//! A crash anywhere is followed by the move again at the next start: while the record is
//! there, step 1 is not done again (the journal's newest run may then be an entry the move
//! wrote, which need not be committed), and step 2 writes only what the view does not hold
//! yet, once the terms of what it holds are the log's. Once the segments are gone, the log is
//! the view's alone.

use std::path::Path;

use raft::eraftpb::{ConfState, HardState};
use sluice_engine::format::RaftPosition;
use sluice_engine::journal::Journal;
use sluice_engine::shard_index::FIRST_RECORD_INDEX;
use sluice_engine::storage::{read_whole, write_atomic, Storage};

use crate::durable_log::{segment_base, DurableLog, LEGACY_LOG_FILE};
use crate::error::{ClusterError, Result};
use crate::journal_log::{EntryCodec, JournalLog};
use crate::log_storage::LogStorage;
use crate::raft_files::{self, corrupt};

/// Present while a move is under way (between steps 1 and 3 above).
pub const ADOPTING_FILE: &str = "raft.adopting";

/// Bytes of entries read from the old log and written to the journal at a time.
const MOVE_CHUNK_BYTES: usize = 4 << 20;

/// What [`adopt_durable_log`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// The group's directory holds no log segments: its log is the view's already (or new).
    Nothing,
    /// The log was compacted to entry `compacted` (the applied tip), and `moved` entries after
    /// it were written to the journal.
    Moved { compacted: u64, moved: u64 },
}

/// Moves shard `shard_uid`'s group log kept by [`DurableLog`] in `dir` into `journal` (see the
/// module doc); the shard must be registered in the journal. `conf_state` is the membership the
/// group started with, `segment_bytes` the old log's segment size. Afterwards
/// [`JournalLog::open`] opens the group's log.
pub async fn adopt_durable_log<S: Storage, C: EntryCodec>(
    journal: &Journal<S>,
    shard_uid: u64,
    codec: C,
    storage: &S,
    dir: &Path,
    conf_state: ConfState,
    segment_bytes: usize,
) -> Result<Adopted> {
    let adopting = dir.join(ADOPTING_FILE);
    let segments = old_segments(storage, dir).await?;
    let under_way = read_whole(storage, &adopting).await.map_err(ClusterError::io("read the raft move record"))?;
    if segments.is_empty() {
        if under_way.is_some() {
            // Step 3 was cut short after the segments went.
            remove(storage, &adopting).await?;
            storage.sync_dir(dir).await.map_err(ClusterError::io("sync the raft directory"))?;
        }
        return Ok(Adopted::Nothing);
    }
    let (old, old_store) = DurableLog::open(storage.clone(), dir, conf_state.clone(), 0, segment_bytes).await?;
    let (first, last) = (old_store.first_index(), old_store.last_index());
    let compacted = if under_way.is_some() {
        first - 1
    } else {
        // Step 1. The applier's newest run, which its shard's records end with (it wrote no
        // record without a position after it).
        let runs = journal.raft_runs(shard_uid)?;
        let next_index = journal.tip(shard_uid)?.next_index;
        let applied = match runs.tip {
            Some(tip) if tip.end_index == next_index => tip.position,
            Some(tip) => {
                let reason = format!(
                    "the journal's records end at {next_index}, its newest Raft run (entry {}) at {}",
                    tip.position.index, tip.end_index
                );
                return Err(corrupt(JOURNAL, 0, reason));
            }
            None if next_index == FIRST_RECORD_INDEX => RaftPosition { index: 0, term: 0 },
            None => {
                let reason = "the journal holds records of the shard without Raft positions (written by a build \
                              before 2026-12-06)"
                    .to_owned();
                return Err(corrupt(JOURNAL, 0, reason));
            }
        };
        // The log may be compacted past that run: the entries between were applied (compaction
        // follows the applier's saved progress) and hold no records, or the journal would
        // have their runs.
        let compaction = first - 1;
        let tip = if applied.index > compaction {
            if old_store.term_of(applied.index) != Some(applied.term) {
                let reason = format!(
                    "the applier's newest entry, {} of term {}, is of term {:?} in the log",
                    applied.index,
                    applied.term,
                    old_store.term_of(applied.index)
                );
                return Err(corrupt(JOURNAL, 0, reason));
            }
            applied
        } else {
            RaftPosition { index: compaction, term: old_store.term_of(compaction).unwrap_or(0) }
        };
        if tip.index > last {
            let reason = format!("the applier's newest entry, {}, is past the log's last, {last}", tip.index);
            return Err(corrupt(JOURNAL, 0, reason));
        }
        // The commit at the tip: every entry up to it is committed, and the view opens only
        // on a commit it holds (a stored commit may lag what the group committed, and the
        // leader tells it again).
        let hard_state = old_store.hard_state();
        if hard_state.commit != tip.index {
            let at_tip = HardState { commit: tip.index, ..hard_state };
            raft_files::save_hard_state(storage, dir, &at_tip).await?;
        }
        raft_files::save_compacted(storage, dir, tip.index, tip.term).await?;
        write_atomic(storage, &adopting, &[]).await.map_err(ClusterError::io("write the raft move record"))?;
        tip.index
    };
    // Step 2: what the view does not hold yet, after its terms were checked against the log's.
    let (mut view, view_store) =
        JournalLog::open(journal.clone(), shard_uid, codec, storage.clone(), dir, conf_state, 0).await?;
    let held = view_store.last_index();
    for index in compacted + 1..=held.min(last) {
        if view_store.term_of(index) != old_store.term_of(index) {
            let reason = format!(
                "entry {index} is of term {:?} in the journal, {:?} in the log being moved",
                view_store.term_of(index),
                old_store.term_of(index)
            );
            return Err(corrupt(JOURNAL, 0, reason));
        }
    }
    let mut moved = 0;
    let mut next = held.max(compacted) + 1;
    while next <= last {
        let entries = old.read(next, last, MOVE_CHUNK_BYTES, &old_store).await?;
        if entries.is_empty() {
            return Err(corrupt(JOURNAL, 0, format!("the log being moved has no entry {next}")));
        }
        view.append(&entries).await?;
        view.sync().await?;
        next += entries.len() as u64;
        moved += entries.len() as u64;
    }
    drop((old, view));
    // Step 3, the newest segment first, each deletion durable before the next: what a crash
    // leaves is a prefix of the old log, which opens (a hole would not: the simulated disk's
    // power loss at call 92 of the test, `entry 27 follows a log that ends before 22`).
    for name in segments.iter().rev() {
        remove(storage, &dir.join(name)).await?;
        storage.sync_dir(dir).await.map_err(ClusterError::io("sync the raft directory"))?;
    }
    remove(storage, &adopting).await?;
    storage.sync_dir(dir).await.map_err(ClusterError::io("sync the raft directory"))?;
    Ok(Adopted::Moved { compacted, moved })
}

const JOURNAL: &str = "journal";

/// The old log's segment files in `dir`, oldest first (the layout before segments had one
/// file, the segment at place 0).
async fn old_segments<S: Storage>(storage: &S, dir: &Path) -> Result<Vec<String>> {
    let names = match storage.list(dir).await {
        Ok(names) => names,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(ClusterError::io("list the raft directory")(error)),
    };
    let base = |name: &str| if name == LEGACY_LOG_FILE { Some(0) } else { segment_base(name) };
    let mut segments: Vec<(u64, String)> =
        names.into_iter().filter_map(|name| base(&name).map(|base| (base, name))).collect();
    segments.sort();
    Ok(segments.into_iter().map(|(_, name)| name).collect())
}

async fn remove<S: Storage>(storage: &S, path: &Path) -> Result<()> {
    match storage.remove(path).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(ClusterError::io("delete a file of the moved raft log")(error))
        }
        _ => Ok(()),
    }
}
