//! A shard group's Raft log kept in the core's journal: the second [`LogStorage`], so that a
//! replicated record is written and synced once (`docs/replication.md`, "The journal as the
//! Raft log", slice C).
//!
//! Each entry of the log is one run of the group's shard, carrying the entry's Raft position
//! (`sluice_engine::format::RaftPosition`): an entry holding records is a run of them
//! ([`Journal::queue_at`]), and an entry holding none (a new leader's first entry, a reshard's
//! seal, a membership change) is a *position-only run* ([`Journal::queue_position`]) at the
//! record index where the records before it end. An entry's *place* is that first record
//! index: places never decrease along the log, and an entry's records are those from its
//! place to the next entry's. The journal orders every write of the log, replacements
//! included ("the later run wins"), and [`Journal::raft_entries`] lists the log's entries as
//! the runs hold them, which is how [`JournalLog::open`] rebuilds the log after a restart.
//!
//! What an entry's bytes are is the host's: an [`EntryCodec`] takes the records (and their
//! arrival time) out of an entry's data, and makes the data again from the records as the
//! journal returns them. The bytes of an entry without records are kept beside, by index and
//! term, one small file each (`entry-<index>-<term>`, a `codec` frame), written and synced
//! before its run is queued: an index and a term name one entry (Raft's log matching), so
//! these files need no order of their own. An empty entry of the normal kind (a new leader's
//! first) writes none; reading it back finds no file. Entry contexts of records entries are
//! not kept (the group host matches proposals by index and term, `host.rs`).
//!
//! The hard state, the membership and the compaction point are the files every log keeps
//! (`raft_files`). The view gates the shard ([`Journal::gate_shard`]): readers see only what
//! the group published, which [`LogStorage::committed`] moves to the end of the committed
//! entries; after a restart, to the end of the stored commit.
//!
//! A seal (an entry the codec says *fences*, [`EntryCodec::fences`]) ends the shard's records:
//! no entry after it in the log stores any (their bytes are kept beside), since runs are
//! written before their entries commit. The fence is found again at open by reading the log,
//! and kept in [`FENCE_FILE`] once compacted away.
//!
//! Retention (`docs/replication.md`, "Retention while the group runs"): the journal expires
//! a gated shard's records only below the published end, so only committed entries' records
//! expire; a read that finds an entry's records gone stops there and notes it
//! ([`LogStorage::gone_through`]), and the replica compacts past it, so that a member that
//! far behind is sent a snapshot. The view holds the shard's runs on disk from its first
//! entry not compacted ([`Journal::hold_segments_from`]), so that a restart finds every entry
//! of the log with its term, whatever expired from the reads.
//!
//! Unfinished (`docs/replication.md`, "What is left"):
//! - compaction frees no storage of its own (the journal's retention does that): it only
//!   bounds the places kept in memory, every `limits::JOURNAL_LOG_COMPACT_ENTRIES` entries;
//! - `sluiced` does not run its groups on it yet (the cluster simulation does).

use std::cell::Cell;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, EntryType, HardState};
use sluice_engine::format::RaftPosition;
use sluice_engine::journal::{AppendRecord, Journal, QueuedAppend, RaftEntryRun, StoredRecord};
use sluice_engine::storage::{read_whole, write_atomic, Storage};

use crate::codec::{self, CompactedRecord};
use crate::error::{ClusterError, Result};
use crate::limits::JOURNAL_LOG_COMPACT_ENTRIES;
use crate::log_storage::LogStorage;
use crate::log_store::LogStore;
use crate::raft_files::{self, corrupt, log_entry, raft_entry};

const SIDE_FILE: &str = "raft entry without records";
/// The log's first fence entry ([`EntryCodec::fences`]) once it is compacted away (the log
/// holds it until then): its index and term, as a compaction record is written. Written only
/// for a compaction point at or past it, so only for a committed fence, which nothing
/// replaces.
pub const FENCE_FILE: &str = "raft.fence";
const JOURNAL: &str = "journal";

/// What a group's entries hold, for the journal: records and their arrival time, or nothing
/// the journal stores as records.
pub trait EntryCodec {
    /// The records entry `data` holds for shard `shard_uid` (at least one), and their arrival
    /// time; `None` for an entry without records, or one this codec does not read (its bytes
    /// are then kept whole beside the journal, and its host refuses it when it applies it).
    fn records(&self, shard_uid: u64, data: &Bytes) -> Option<(i64, Vec<AppendRecord>)>;

    /// The data of an entry whose records the journal returns as `records` (in order, at
    /// least one; their arrival time is the entry's, at least the shard's previous one).
    fn entry(&self, records: &[StoredRecord]) -> Bytes;

    /// Whether entry `data` (of the normal kind) ends the shard's records: a reshard's seal.
    /// It stores no records itself, nor does any entry after it in the log (they are kept
    /// whole beside, as entries without records): the journal's runs are written when an entry
    /// is appended, before it commits, so the shard cannot wait for its seal to commit to
    /// refuse them.
    fn fences(&self, data: &Bytes) -> bool {
        let _ = data;
        false
    }
}

pub struct JournalLog<S: Storage, C: EntryCodec> {
    journal: Journal<S>,
    shard_uid: u64,
    codec: C,
    storage: S,
    dir: PathBuf,
    /// The log's last entry (the compaction point if it holds none).
    last_index: u64,
    /// The record index after the last entry's records: where the next entry's go.
    end: u64,
    /// The entries up to this one are compacted away.
    compacted: u64,
    /// Appends queued since the last [`LogStorage::sync`].
    queued: Vec<QueuedAppend>,
    /// Entries per unit of compaction ([`LogStorage::freed_by_compaction`]).
    compact_entries: u64,
    /// The log's first fence entry ([`EntryCodec::fences`]), in the log or compacted away: no
    /// entry after it stores records. And whether [`FENCE_FILE`] names it.
    fence: Option<RaftPosition>,
    fence_saved: bool,
    /// [`LogStorage::gone_through`]: set by reads, which take `&self`.
    gone_through: Cell<u64>,
}

impl<S: Storage, C: EntryCodec> JournalLog<S, C> {
    /// Opens the log of shard `shard_uid`'s group: the Raft files in `dir` (created if needed),
    /// the entries from the journal's runs, and the side files beside them. The shard must be
    /// registered in `journal`. Returns the store raft-rs reads, holding in memory the entries
    /// after the stored commit plus the newest up to `cache_bytes_max`; gates the shard at the
    /// end of the committed entries.
    pub async fn open(
        journal: Journal<S>,
        shard_uid: u64,
        codec: C,
        storage: S,
        dir: &Path,
        conf_state: ConfState,
        cache_bytes_max: usize,
    ) -> Result<(JournalLog<S, C>, LogStore)> {
        // Nothing past the published end expires (`Journal::gate_shard`), nor is deleted past
        // what the log compacted (`Journal::hold_segments_from`): until both move below,
        // nothing at all. (The host gates and holds the shard when it registers it, before any
        // retention pass; this is for a host that did not.)
        journal.gate_shard(shard_uid, 0)?;
        journal.hold_segments_from(shard_uid, 0, 0)?;
        let (store, compacted) = raft_files::open_store(&storage, dir, conf_state, cache_bytes_max).await?;
        // Retention by time applies first, as at every read: the entries kept are those whose
        // records are still served, from the trim horizon on (`raft_entries` lists those from
        // a floor below it, where retention cut into a sealed segment's runs).
        let tip = journal.tip(shard_uid)?;
        let (trim, _) = journal.bounds(shard_uid).await?;
        let mut runs = journal.raft_entries(shard_uid, compacted.index + 1).await?;
        runs.retain(|run| run.first_index >= trim);
        let raft_runs = journal.raft_runs(shard_uid)?;
        let mut log = JournalLog {
            journal,
            shard_uid,
            codec,
            storage,
            dir: dir.to_path_buf(),
            last_index: compacted.index,
            end: 0,
            compacted: compacted.index,
            queued: Vec::new(),
            compact_entries: JOURNAL_LOG_COMPACT_ENTRIES,
            fence: None,
            fence_saved: false,
            gone_through: Cell::new(0),
        };
        // The first entry held: retention may have taken the records of entries the log had
        // not compacted yet (all of them, if no run is left past the compaction point).
        let held_from = match (runs.first(), raft_runs.tip) {
            (Some(first), _) => first.position.index,
            (None, Some(raft_tip)) => raft_tip.position.index.max(compacted.index) + 1,
            (None, None) => compacted.index + 1,
        };
        if held_from > compacted.index + 1 {
            // Retention deleted the runs of entries the log had not compacted yet, which the
            // hold prevents (`Journal::hold_segments_from`; a journal written without it). It
            // takes only published entries' (`Journal::gate_shard`), so committed ones, which
            // are in every member's state machine or on their way to it, as compacted entries
            // are: the log starts after them (the commit with it), if the journal still knows
            // the term of the last.
            let before = held_from - 1;
            let Some(term) = raft_runs.term_of(before) else {
                let reason = format!(
                    "retention took entries up to {before}, whose term the journal lacks (log compacted to {})",
                    compacted.index
                );
                return Err(corrupt(JOURNAL, 0, reason));
            };
            raft_files::save_compacted(&log.storage, dir, before, term).await?;
            store.restore(before, term);
            log.compacted = before;
            log.last_index = before;
        }
        // The log ends at a gap. Appends are queued a whole `Ready` at a time, before any is
        // answered: if one failed, later ones of the same `append` may be durable behind it,
        // but `sync` failed, so the replica acknowledged none of them (to Raft or its peers),
        // and they go as a suffix a new leader replaces does. The next append cuts their runs
        // from the journal (it goes at the end of the last entry kept). A gap below the stored
        // commit is a loss: refused below (`check_commit_held`).
        if let Some(gap) = runs.windows(2).position(|pair| pair[1].position.index != pair[0].position.index + 1) {
            runs.truncate(gap + 1);
        }
        let commit = store.hard_state().commit;
        // A fence compacted away is in its file; one in the log is found reading the log.
        let fence_file = read_whole(&log.storage, &dir.join(FENCE_FILE))
            .await
            .map_err(ClusterError::io("read the raft fence"))?
            .map(|bytes| codec::decode_compacted(&bytes).map_err(|reason| corrupt(FENCE_FILE, 0, reason)))
            .transpose()?;
        log.fence = fence_file.map(|fence| RaftPosition { index: fence.index, term: fence.term });
        log.fence_saved = log.fence.is_some();
        // In chunks, so that what is kept in memory stays the cache's (and the unapplied).
        for chunk in runs.chunks(64) {
            let entries = log.read_runs(chunk, usize::MAX).await?;
            if entries.len() != chunk.len() {
                // Nothing expires while the shard is gated at 0.
                let reason =
                    format!("entry {} lost its records while the log opened", chunk[entries.len()].position.index);
                return Err(corrupt(JOURNAL, 0, reason));
            }
            if log.fence.is_none() {
                log.fence = entries
                    .iter()
                    .find(|entry| log.is_fence(entry))
                    .map(|entry| RaftPosition { index: entry.index, term: entry.term });
            }
            let places: Vec<u64> = chunk.iter().map(|run| run.first_index).collect();
            store.append(&entries, &places);
            store.evict(commit);
        }
        log.last_index = store.last_index();
        log.end = runs.last().map_or(tip.next_index, |last| last.end_index);
        raft_files::check_commit_held(&store)?;
        log.journal.gate_shard(shard_uid, log.end_of(commit, &store))?;
        // Retention may delete what only compacted entries held.
        let held = runs.first().map_or(log.end, |run| run.first_index);
        log.journal.hold_segments_from(shard_uid, held, log.compacted + 1)?;
        Ok((log, store))
    }

    /// Counts every `entries` entries behind every member as one unit of compaction, not
    /// `limits::JOURNAL_LOG_COMPACT_ENTRIES` (the simulation compacts small logs often).
    pub fn compacting_every(mut self, entries: u64) -> Self {
        self.compact_entries = entries.max(1);
        self
    }

    /// The record index after entry `index`'s records (at or past the compaction point).
    fn end_of(&self, index: u64, store: &LogStore) -> u64 {
        store.offset(index + 1).unwrap_or(self.end)
    }

    fn is_fence(&self, entry: &Entry) -> bool {
        entry.entry_type == EntryType::EntryNormal && self.codec.fences(&entry.data)
    }

    /// The place of entry `index`, in the journal (an append replacing it goes there).
    async fn place_of(&self, index: u64) -> Result<u64> {
        let runs = self.journal.raft_entries(self.shard_uid, index).await?;
        match runs.first() {
            Some(run) if run.position.index == index => Ok(run.first_index),
            _ => Err(corrupt(JOURNAL, 0, format!("entry {index} of the log is not in the journal"))),
        }
    }

    /// Reads the entries of `runs` (consecutive): at most `bytes_max` bytes of data, but at
    /// least one entry, unless retention took the records of the first. It stops at the first
    /// entry gone (those are a prefix of the log), noted in `gone_through`.
    async fn read_runs(&self, runs: &[RaftEntryRun], bytes_max: usize) -> Result<Vec<Entry>> {
        let mut entries = Vec::with_capacity(runs.len());
        let mut bytes = 0;
        for run in runs {
            if !entries.is_empty() && bytes >= bytes_max {
                break;
            }
            let entry = if run.first_index == run.end_index {
                self.entry_without_records(run.position).await?
            } else {
                let Some(records) = self.records_of(run).await? else {
                    // (Retention may take entries this read returns before it: they were read.)
                    self.gone_through.set(self.gone_through.get().max(run.position.index));
                    break;
                };
                Entry {
                    index: run.position.index,
                    term: run.position.term,
                    data: self.codec.entry(&records),
                    ..Entry::default()
                }
            };
            bytes += entry.data.len();
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The records of entry `run`, checked to be its own; `None` if retention took them.
    async fn records_of(&self, run: &RaftEntryRun) -> Result<Option<Vec<StoredRecord>>> {
        let (first, end) = (run.first_index, run.end_index);
        let mut records = Vec::with_capacity((end - first) as usize);
        let mut next = first;
        while next < end {
            let batch = self.journal.read_log(self.shard_uid, next, (end - next) as usize, usize::MAX).await?;
            let first_read = batch.records.first().map(|record| record.sequence_number.record_index());
            if first_read != Some(next) && self.journal.bounds(self.shard_uid).await?.0 > next {
                // Expired (reads start at the trim horizon): a whole entry, as retention takes
                // whole runs.
                return Ok(None);
            }
            if batch.records.is_empty() {
                let reason = format!("entry {} lacks records from {next} to {end}", run.position.index);
                return Err(corrupt(JOURNAL, next, reason));
            }
            for record in batch.records {
                let index = record.sequence_number.record_index();
                if index != next || record.raft != Some(run.position) {
                    let reason = format!(
                        "entry {} (term {}) wants record {next}, the journal has record {index} of {:?}",
                        run.position.index, run.position.term, record.raft
                    );
                    return Err(corrupt(JOURNAL, next, reason));
                }
                records.push(record);
                next += 1;
                if next == end {
                    break;
                }
            }
        }
        Ok(Some(records))
    }

    fn side_path(&self, position: RaftPosition) -> PathBuf {
        self.dir.join(format!("entry-{:020}-{:020}", position.index, position.term))
    }

    /// Keeps the bytes of an entry without records, durably; an empty normal entry needs none.
    async fn save_entry_without_records(&self, entry: &Entry) -> Result<()> {
        if entry.entry_type == EntryType::EntryNormal && entry.data.is_empty() && entry.context.is_empty() {
            return Ok(());
        }
        let mut frame = Vec::new();
        codec::encode_entry(&log_entry(entry), &mut frame);
        let position = RaftPosition { index: entry.index, term: entry.term };
        write_atomic(&self.storage, &self.side_path(position), &frame)
            .await
            .map_err(ClusterError::io("write a raft entry without records"))
    }

    async fn entry_without_records(&self, position: RaftPosition) -> Result<Entry> {
        let path = self.side_path(position);
        let read =
            read_whole(&self.storage, &path).await.map_err(ClusterError::io("read a raft entry without records"))?;
        let Some(bytes) = read else {
            return Ok(Entry { index: position.index, term: position.term, ..Entry::default() });
        };
        match codec::decode_frame(&bytes) {
            Ok((entry, length))
                if length == bytes.len() && entry.index == position.index && entry.term == position.term =>
            {
                Ok(raft_entry(entry))
            }
            Ok((entry, _)) => {
                let reason = format!("holds entry {} of term {}, not {position:?}", entry.index, entry.term);
                Err(corrupt(SIDE_FILE, 0, reason))
            }
            Err(defect) => Err(corrupt(SIDE_FILE, 0, format!("{defect:?}"))),
        }
    }

    /// Before the log is compacted to `index`: a fence at or before it must outlive its entry.
    async fn save_fence_before_compaction(&mut self, index: u64) -> Result<()> {
        let Some(fence) = self.fence.filter(|fence| fence.index <= index && !self.fence_saved) else {
            return Ok(());
        };
        let bytes = codec::encode_compacted(&CompactedRecord { index: fence.index, term: fence.term });
        write_atomic(&self.storage, &self.dir.join(FENCE_FILE), &bytes)
            .await
            .map_err(ClusterError::io("write the raft fence"))?;
        self.fence_saved = true;
        Ok(())
    }

    /// Deletes the side files of entries up to `index`.
    async fn remove_side_files(&self, index: u64) -> Result<()> {
        let names = self.storage.list(&self.dir).await.map_err(ClusterError::io("list the raft directory"))?;
        for name in names {
            let Some(entry_index) = side_file_index(&name) else { continue };
            if entry_index <= index {
                let path = self.dir.join(&name);
                self.storage.remove(&path).await.map_err(ClusterError::io("delete a raft entry without records"))?;
            }
        }
        Ok(())
    }
}

/// The index of the entry whose side file is `name`, if it is one.
fn side_file_index(name: &str) -> Option<u64> {
    let (index, term) = name.strip_prefix("entry-")?.split_once('-')?;
    let digits = |text: &str| text.len() == 20 && text.bytes().all(|byte| byte.is_ascii_digit());
    (digits(index) && digits(term)).then(|| index.parse().ok()).flatten()
}

impl<S: Storage, C: EntryCodec> LogStorage for JournalLog<S, C> {
    /// Queues each entry's run in the journal (not durable until [`LogStorage::sync`]), after
    /// writing an entry without records' bytes beside it; returns each entry's place, its
    /// first record index. An entry already in the log replaces it and those after it, from
    /// its place on.
    async fn append(&mut self, entries: &[Entry]) -> Result<Vec<u64>> {
        let Some(first) = entries.first() else { return Ok(Vec::new()) };
        let mut place = if first.index <= self.last_index { self.place_of(first.index).await? } else { self.end };
        if self.fence.is_some_and(|fence| fence.index >= first.index) {
            // The fence is replaced: it never committed (and has no file).
            self.fence = None;
        }
        let mut places = Vec::with_capacity(entries.len());
        for entry in entries {
            places.push(place);
            let position = RaftPosition { index: entry.index, term: entry.term };
            // After a fence, or once the host closed the shard (its fence committed, perhaps
            // in a snapshot this member restored), no entry stores records.
            // A fence stores no records either.
            let fenced = self.fence.is_some() || self.journal.is_closed(self.shard_uid);
            if !fenced && self.is_fence(entry) {
                self.fence = Some(position);
            }
            let records = (entry.entry_type == EntryType::EntryNormal && self.fence.is_none() && !fenced)
                .then(|| self.codec.records(self.shard_uid, &entry.data))
                .flatten()
                .filter(|(_, records)| !records.is_empty());
            let queued = match records {
                Some((arrival_ms, records)) => {
                    let count = records.len() as u64;
                    let queued = self.journal.queue_at(records, arrival_ms, place, Some(position)).await?;
                    place += count;
                    queued
                }
                None => {
                    self.save_entry_without_records(entry).await?;
                    self.journal.queue_position(self.shard_uid, place, position).await?
                }
            };
            self.queued.push(queued);
            self.last_index = entry.index;
            self.end = place;
        }
        Ok(places)
    }

    /// Waits until every run queued is durable: the core's group commit, shared by every group
    /// and writer of the core.
    async fn sync(&mut self) -> Result<()> {
        for mut queued in std::mem::take(&mut self.queued) {
            queued.durable().await?;
        }
        Ok(())
    }

    async fn read(&self, from: u64, to: u64, bytes_max: usize, store: &LogStore) -> Result<Vec<Entry>> {
        let mut runs = Vec::new();
        for index in from..=to {
            let (Some(first), Some(term)) = (store.offset(index), store.term_of(index)) else { break };
            let end_index = self.end_of(index, store);
            runs.push(RaftEntryRun { position: RaftPosition { index, term }, first_index: first, end_index });
        }
        self.read_runs(&runs, bytes_max).await
    }

    fn freed_by_compaction(&self, index: u64) -> usize {
        (index.saturating_sub(self.compacted) / self.compact_entries) as usize
    }

    fn gone_through(&self) -> u64 {
        self.gone_through.get()
    }

    /// Records the compaction point and deletes the side files up to it; the journal's
    /// retention deletes the runs.
    async fn compact(&mut self, index: u64, term: u64, store: &LogStore) -> Result<usize> {
        let freed = self.freed_by_compaction(index);
        self.save_fence_before_compaction(index).await?;
        raft_files::save_compacted(&self.storage, &self.dir, index, term).await?;
        self.compacted = index;
        // Retention may delete what only compacted entries held.
        let held = store.offset(index + 1).unwrap_or(self.end);
        self.journal.hold_segments_from(self.shard_uid, held, index + 1)?;
        self.remove_side_files(index).await?;
        Ok(freed)
    }

    /// The journal holds the shard's records up to `index` (the host restored them from a
    /// peer): the log continues at `index + 1`, at the shard's next record index.
    async fn install_snapshot(&mut self, index: u64, term: u64) -> Result<()> {
        if self.fence.is_some_and(|fence| fence.index > index) {
            // Past the snapshot, the log held is gone. (A fence the snapshot covers and this
            // member never held is the journal's: the host restored the shard closed.)
            self.fence = None;
        }
        self.save_fence_before_compaction(index).await?;
        raft_files::save_compacted(&self.storage, &self.dir, index, term).await?;
        self.compacted = index;
        self.last_index = index;
        self.end = self.journal.tip(self.shard_uid)?.next_index;
        self.journal.hold_segments_from(self.shard_uid, self.end, index + 1)?;
        self.remove_side_files(index).await
    }

    /// Moves the shard's published end to the end of entry `commit`: its records are then
    /// served, here once durable.
    fn committed(&mut self, commit: u64, store: &LogStore) -> Result<()> {
        Ok(self.journal.publish_until(self.shard_uid, self.end_of(commit, store))?)
    }

    async fn save_conf(&self, index: u64, conf_state: &ConfState) -> Result<()> {
        raft_files::save_conf(&self.storage, &self.dir, index, conf_state).await
    }

    async fn save_hard_state(&self, hard_state: &HardState) -> Result<()> {
        raft_files::save_hard_state(&self.storage, &self.dir, hard_state).await
    }
}
