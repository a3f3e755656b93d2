//! The small files every kind of log storage keeps beside its entries, in the group's
//! directory, each replaced atomically (`storage::write_atomic`): `raft.state` (term, vote,
//! commit), `raft.compacted` (the index and term the log was compacted to) and `raft.conf`
//! (the membership, once it changed from the one the group started with). Shared by
//! [`crate::durable_log::DurableLog`] and [`crate::journal_log::JournalLog`], so that a group's
//! hard state is one format whichever keeps its entries.

use std::path::Path;

use raft::eraftpb::{ConfState, Entry, EntryType, HardState};
use sluice_engine::storage::{read_whole, write_atomic, Storage};

use crate::codec::{self, CompactedRecord, HardStateRecord, LogEntry};
use crate::error::{ClusterError, Result};
use crate::log_store::LogStore;

pub const HARD_STATE_FILE: &str = "raft.state";
pub const COMPACTED_FILE: &str = "raft.compacted";
/// The group's membership, once it changed from the one the group started with.
pub const CONF_FILE: &str = "raft.conf";

pub(crate) fn corrupt(file: &'static str, offset: u64, reason: String) -> ClusterError {
    ClusterError::Corrupt { file, offset, reason }
}

/// Reads the files in `dir` (created if needed) into an empty [`LogStore`] whose log starts
/// after the compaction point, a new group's membership being `conf_state`; returns the store
/// and the compaction point (index and term).
pub(crate) async fn open_store<S: Storage>(
    storage: &S,
    dir: &Path,
    conf_state: ConfState,
    cache_bytes_max: usize,
) -> Result<(LogStore, CompactedRecord)> {
    storage.prepare_dir(dir).await.map_err(ClusterError::io("prepare the raft directory"))?;
    let hard_state = match read_whole(storage, &dir.join(HARD_STATE_FILE))
        .await
        .map_err(ClusterError::io("read the raft hard state"))?
    {
        Some(bytes) => {
            let record = codec::decode_hard_state(&bytes).map_err(|reason| corrupt(HARD_STATE_FILE, 0, reason))?;
            HardState { term: record.term, vote: record.vote, commit: record.commit, ..HardState::default() }
        }
        None => HardState::default(),
    };
    let compacted = match read_whole(storage, &dir.join(COMPACTED_FILE))
        .await
        .map_err(ClusterError::io("read the raft compaction record"))?
    {
        Some(bytes) => codec::decode_compacted(&bytes).map_err(|reason| corrupt(COMPACTED_FILE, 0, reason))?,
        None => CompactedRecord::default(),
    };
    // Compaction writes the hard state first (its commit at least the new start); a
    // snapshot's installation writes the compaction record first (the entries before it
    // are in the state machine, so committed), and a crash may come before its hard state.
    let mut hard_state = hard_state;
    hard_state.commit = hard_state.commit.max(compacted.index);
    let (conf_index, conf_state) =
        match read_whole(storage, &dir.join(CONF_FILE)).await.map_err(ClusterError::io("read the raft membership"))? {
            Some(bytes) => codec::decode_conf(&bytes).map_err(|reason| corrupt(CONF_FILE, 0, reason))?,
            None => (0, conf_state),
        };
    let store = LogStore::new(hard_state, conf_state, (compacted.index, compacted.term), cache_bytes_max);
    store.set_conf_state(conf_index, store.conf_state());
    Ok((store, compacted))
}

/// Fails if the opened log ends before the stored commit: entries this member counted as
/// committed are gone.
pub(crate) fn check_commit_held(store: &LogStore) -> Result<()> {
    let (commit, last_index) = (store.hard_state().commit, store.last_index());
    if commit > last_index {
        let reason = format!("commit {commit} is past the log's last entry {last_index}");
        return Err(corrupt(HARD_STATE_FILE, 0, reason));
    }
    Ok(())
}

/// Records durably that the log's entries up to `index` (of `term`) are gone.
pub(crate) async fn save_compacted<S: Storage>(storage: &S, dir: &Path, index: u64, term: u64) -> Result<()> {
    let bytes = codec::encode_compacted(&CompactedRecord { index, term });
    write_atomic(storage, &dir.join(COMPACTED_FILE), &bytes)
        .await
        .map_err(ClusterError::io("write the raft compaction record"))
}

/// Replaces the membership record with `conf_state`, as of entry (or snapshot) `index`,
/// durably: it is what the group's membership is after a restart.
pub(crate) async fn save_conf<S: Storage>(storage: &S, dir: &Path, index: u64, conf_state: &ConfState) -> Result<()> {
    write_atomic(storage, &dir.join(CONF_FILE), &codec::encode_conf(index, conf_state))
        .await
        .map_err(ClusterError::io("write the raft membership"))
}

/// Replaces the hard state, durably (the vote must be on disk before the vote message leaves).
pub(crate) async fn save_hard_state<S: Storage>(storage: &S, dir: &Path, hard_state: &HardState) -> Result<()> {
    let record = HardStateRecord { term: hard_state.term, vote: hard_state.vote, commit: hard_state.commit };
    write_atomic(storage, &dir.join(HARD_STATE_FILE), &codec::encode_hard_state(&record))
        .await
        .map_err(ClusterError::io("write the raft hard state"))
}

/// An entry as the log's frames hold it (`codec`). Bytes clones share the buffer: no copy of
/// the data.
pub(crate) fn log_entry(entry: &Entry) -> LogEntry {
    let entry_type = match entry.entry_type {
        EntryType::EntryNormal => 0,
        EntryType::EntryConfChange => 1,
        EntryType::EntryConfChangeV2 => 2,
    };
    LogEntry {
        term: entry.term,
        index: entry.index,
        entry_type,
        context: entry.context.clone(),
        data: entry.data.clone(),
        after_sync: false,
    }
}

/// The raft-rs entry a frame holds.
pub(crate) fn raft_entry(entry: LogEntry) -> Entry {
    let entry_type = match entry.entry_type {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        _ => EntryType::EntryConfChangeV2,
    };
    Entry {
        entry_type,
        term: entry.term,
        index: entry.index,
        context: entry.context,
        data: entry.data,
        ..Entry::default()
    }
}
