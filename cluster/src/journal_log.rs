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
//! and kept in [`FENCE_FILE`] once compacted away. Once it is committed, the view closes the
//! shard in the journal ([`Journal::mark_closed`]), at open too: its readers then learn that
//! it ended there.
//!
//! Retention (`docs/replication.md`, "Retention while the group runs"): the journal expires
//! a gated shard's records only below the published end, so only committed entries' records
//! expire; a read that finds an entry's records gone stops there and notes it
//! ([`LogStorage::gone_through`]), and the replica compacts past it, so that a member that
//! far behind is sent a snapshot. The view holds the shard's runs on disk from its first
//! entry not compacted ([`Journal::hold_segments_from`]), so that a restart finds every entry
//! of the log with its term, whatever expired from the reads.
//!
//! Snapshots (`docs/replication.md`, "Snapshots into the journal"): a member far behind
//! restores the shard from a peer before the replica installs the snapshot: [`peer_runs`] on
//! the peer lists its runs a page at a time, [`plan_restore`] on the member finds the first
//! it does not hold alike, and [`ShardRestore`] writes them with the peer's records, after a
//! record of its own ([`RESTORE_FILE`]) that lets [`JournalLog::open`] settle a restore a
//! crash cut short.
//!
//! Unfinished (`docs/replication.md`, "What is left"):
//! - compaction frees no storage of its own (the journal's retention does that): it only
//!   bounds the places kept in memory, every `limits::JOURNAL_LOG_COMPACT_ENTRIES` entries;
//! - `sluiced` does not run its groups on it yet (the cluster simulation does);
//! - a restore holds the peer's list of runs in memory (its records are written as they come),
//!   and a member one of whose entries before the first it would write runs across the copy's
//!   start is refused ([`plan_restore`]);
//! - a hole a failed append left right after the compaction point is told from entries
//!   retention took by the trim horizon (the first entry held starts past it) and by the
//!   stored commit (the entries missing are past it); a hole right after entries retention
//!   took past the compaction point makes the log refuse to open ([`JournalLog::open`]). Only
//!   a journal written without the log's hold can hold such entries (the watermarks' trim
//!   stays at or below the first record held, `Journal::hold_segments_from`, unless a restore
//!   moved the shard's start), so today one the applier wrote, which the switch must move over.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, EntryType, HardState};
use sluice_engine::format::RaftPosition;
use sluice_engine::journal::{AppendRecord, Journal, QueuedAppend, RaftEntryRun, StoredRecord};
use sluice_engine::storage::{read_whole, write_atomic, Storage};

use crate::codec::{self, CompactedRecord};
use crate::error::{ClusterError, Result};
use crate::limits::{JOURNAL_LOG_COMPACT_ENTRIES, JOURNAL_LOG_READ_ENTRIES_MAX, JOURNAL_LOG_READ_SIDE_FILES_MAX};
use crate::log_storage::LogStorage;
use crate::log_store::LogStore;
use crate::raft_files::{self, corrupt, log_entry, raft_entry};
use crate::transport::RunsAsked;

const SIDE_FILE: &str = "raft entry without records";
/// The log's first fence entry ([`EntryCodec::fences`]) once it is compacted away (the log
/// holds it until then): its index and term, as a compaction record is written. Written only
/// for a compaction point at or past it, so only for a committed fence, which nothing
/// replaces.
pub const FENCE_FILE: &str = "raft.fence";
/// A restore from a peer ([`ShardRestore`]) records here, before it changes the journal, the
/// first entry it writes, where that entry's records start, whether the member's records
/// before that go (a gap: [`GapPast`]), and the fence the snapshot covers
/// (`codec::RestoreRecord`); the entry's bytes are beside it as a side file. Removed once the snapshot is installed, or once
/// [`JournalLog::open`] has settled a restore a crash cut short.
pub const RESTORE_FILE: &str = "raft.restore";
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
        let compacted = settle_restore(&journal, shard_uid, (&codec, &storage, dir), &store, compacted).await?;
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
        // Where the log's records end when it holds no entry past the compaction point.
        let mut end = tip.next_index;
        // Retention takes only published entries' records, so committed ones, and a member
        // stores no commit past what it holds durably.
        let stored_commit = store.hard_state().commit;
        let missing = held_from > compacted.index + 1;
        if let Some(first) =
            runs.first().filter(|first| missing && (first.first_index > trim || held_from - 1 > stored_commit))
        {
            // Nothing before the first entry held expired, or the entries missing before it
            // are past the stored commit: no retention took them. A failed append left that
            // hole, with the entries after it written behind (position-only runs sit where the
            // records end, whatever came before them). `sync` failed, so the replica
            // acknowledged none of them: the log ends at the compaction point, where those
            // entries' places begin, and the next append cuts their runs (the gap rule below,
            // at the log's start). (An entry published and expired within the minute before
            // its commit was stored is taken for such a hole too: the log then lacks entries
            // it may have had, never holds one it did not, and gets them from its leader.)
            end = first.first_index;
            runs.clear();
        } else if missing {
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
            let entries = log.read_runs(chunk, usize::MAX, usize::MAX).await?;
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
        log.end = runs.last().map_or(end, |last| last.end_index);
        // What the files say is acted on from now on, so it must be durable, as in
        // `DurableLog::open`: a process that stopped between a file's rename and the
        // directory's sync (its sync failed) finds the new file, which a power loss can still
        // take back. (The cluster simulation's seed 9454: a hard state's sync failed; the
        // member, restarted, went on from its commit, and a power loss took the commit back.)
        log.storage.sync_dir(dir).await.map_err(ClusterError::io("sync the raft directory"))?;
        raft_files::check_commit_held(&store)?;
        log.journal.gate_shard(shard_uid, log.end_of(commit, &store))?;
        log.close_if_fence_committed(commit);
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

    /// Closes the shard in the journal once its fence is committed (`commit` at or past it):
    /// its records end where the fence's place is, on every member, since no entry after the
    /// fence stores any, and readers at that end learn that the shard is closed (a reshard's
    /// parent: they go on to its children). Every entry up to `commit` is durable here.
    fn close_if_fence_committed(&self, commit: u64) {
        if self.fence.is_some_and(|fence| fence.index <= commit) && !self.journal.is_closed(self.shard_uid) {
            self.journal.mark_closed(self.shard_uid);
        }
    }

    fn is_fence(&self, entry: &Entry) -> bool {
        entry.entry_type == EntryType::EntryNormal && self.codec.fences(&entry.data)
    }

    /// The place of entry `index`, in the journal (an append replacing it goes there).
    async fn place_of(&self, index: u64) -> Result<u64> {
        let runs = self.journal.raft_entries_between(self.shard_uid, index, index).await?;
        match runs.first() {
            Some(run) if run.position.index == index => Ok(run.first_index),
            _ => Err(corrupt(JOURNAL, 0, format!("entry {index} of the log is not in the journal"))),
        }
    }

    /// Reads the entries of `runs` (consecutive): at most `bytes_max` bytes of data and
    /// `side_files_max` entries without records (each a file of its own), but at least one
    /// entry, unless retention took the records of the first. It stops at the first entry gone
    /// (those are a prefix of the log), noted in `gone_through`.
    async fn read_runs(&self, runs: &[RaftEntryRun], bytes_max: usize, side_files_max: usize) -> Result<Vec<Entry>> {
        let mut entries = Vec::with_capacity(runs.len());
        let (mut bytes, mut side_files) = (0, 0);
        for run in runs {
            let without_records = run.first_index == run.end_index;
            if !entries.is_empty() && (bytes >= bytes_max || (without_records && side_files == side_files_max)) {
                break;
            }
            let entry = if without_records {
                side_files += 1;
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

    /// Keeps the bytes of an entry without records, durably; an empty normal entry needs none.
    async fn save_entry_without_records(&self, entry: &Entry) -> Result<()> {
        if entry.entry_type == EntryType::EntryNormal && entry.data.is_empty() && entry.context.is_empty() {
            return Ok(());
        }
        write_side_entry(&self.storage, &self.dir, entry).await
    }

    async fn entry_without_records(&self, position: RaftPosition) -> Result<Entry> {
        let entry = read_side_entry(&self.storage, &self.dir, position).await?;
        Ok(entry.unwrap_or(Entry { index: position.index, term: position.term, ..Entry::default() }))
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

/// Where the bytes of entry `position` are kept beside the journal, in the group's `dir`.
fn side_path(dir: &Path, position: RaftPosition) -> PathBuf {
    dir.join(format!("entry-{:020}-{:020}", position.index, position.term))
}

/// Keeps the bytes of `entry` beside the journal, durably ([`side_path`]).
async fn write_side_entry<S: Storage>(storage: &S, dir: &Path, entry: &Entry) -> Result<()> {
    let mut frame = Vec::new();
    codec::encode_entry(&log_entry(entry), &mut frame);
    let position = RaftPosition { index: entry.index, term: entry.term };
    write_atomic(storage, &side_path(dir, position), &frame)
        .await
        .map_err(ClusterError::io("write a raft entry beside the journal"))
}

/// The bytes of entry `position` kept beside the journal, if they are there.
async fn read_side_entry<S: Storage>(storage: &S, dir: &Path, position: RaftPosition) -> Result<Option<Entry>> {
    let path = side_path(dir, position);
    let read = read_whole(storage, &path).await.map_err(ClusterError::io("read a raft entry beside the journal"))?;
    let Some(bytes) = read else { return Ok(None) };
    match codec::decode_frame(&bytes) {
        Ok((entry, length))
            if length == bytes.len() && entry.index == position.index && entry.term == position.term =>
        {
            Ok(Some(raft_entry(entry)))
        }
        Ok((entry, _)) => {
            let reason = format!("holds entry {} of term {}, not {position:?}", entry.index, entry.term);
            Err(corrupt(SIDE_FILE, 0, reason))
        }
        Err(defect) => Err(corrupt(SIDE_FILE, 0, format!("{defect:?}"))),
    }
}

/// Deletes `path`, if it is there.
async fn remove_if_present<S: Storage>(storage: &S, path: &Path, what: &'static str) -> Result<()> {
    match storage.remove(path).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(ClusterError::io(what)(error)),
        _ => Ok(()),
    }
}

/// What a member restoring the snapshot at `position` learns from the peer it restores from
/// ([`peer_runs`], a page at a time): the peer's Raft runs of the shard up to the snapshot's
/// entry, each with its records' place, and where the snapshot entry's records end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRuns {
    /// The snapshot's entry.
    pub position: RaftPosition,
    /// The record index after the snapshot entry's records.
    pub end: u64,
    /// The peer's runs whose records it still serves (those before its trim horizon expired
    /// there, so on every member), in log order, from the member's hint on up to `through`
    /// (indexes may skip where runs expired). Empty if the peer's retention took every record
    /// up to there.
    pub runs: Vec<RaftEntryRun>,
    /// The last index the pages so far covered: the snapshot's entry once all are in.
    pub through: u64,
}

impl PeerRuns {
    /// Adds the next page (`peer_runs` from `self.through + 1`).
    pub fn add(&mut self, page: PeerRuns) {
        self.runs.extend(page.runs);
        self.through = page.through;
    }
}

/// The peer's side of a restore, a page at a time: its runs of `shard_uid` from entry `from`
/// on, at most `count` entries and up to the snapshot's entry `position`, that it still
/// serves records of, and where that entry's records end. `None` if the peer does not know
/// where they end (its log holds neither that entry's run nor the next one's, or its
/// retention took both).
pub async fn peer_runs<S: Storage>(
    journal: &Journal<S>,
    shard_uid: u64,
    position: RaftPosition,
    from: u64,
    count: u64,
) -> Result<Option<PeerRuns>> {
    let (trim, _) = journal.bounds(shard_uid).await?;
    // Where the snapshot entry's records end: its run's end, or where the next entry's start.
    let around = journal.raft_entries_between(shard_uid, position.index, position.index + 1).await?;
    let tip = journal.raft_runs(shard_uid)?.tip;
    let end = match around.first() {
        Some(run) if run.position == position => run.end_index,
        Some(run) if run.position.index == position.index + 1 => run.first_index,
        None if tip.is_some_and(|tip| tip.position == position) => tip.map_or(0, |tip| tip.end_index),
        _ => return Ok(None),
    };
    let mut through = from.saturating_add(count.max(1) - 1).min(position.index);
    let mut runs = journal.raft_entries_between(shard_uid, from, through).await?;
    runs.retain(|run| run.first_index >= trim);
    if runs.is_empty() && through < position.index {
        // Retention took this page's records: the next page starts at the entry of the first
        // record still served, so that a member far behind does not walk the expired part of
        // the log a page at a time. (Entries without records at the trim horizon before that
        // one are passed over: they lie below the snapshot, which the log is compacted to.)
        let first = journal.read_log(shard_uid, trim, 1, usize::MAX).await?;
        let held = first.records.first().and_then(|record| record.raft).map(|raft| raft.index);
        if let Some(held) = held.filter(|&held| held > through + 1) {
            through = (held - 1).min(position.index);
        }
    }
    Ok(Some(PeerRuns { position, end, runs, through }))
}

/// Bytes of one run in an encoded page of a peer's runs: its entry's index and term, its first
/// record index and the one after its records.
const PEER_RUN_BYTES: usize = 32;
/// An encoded page's fixed fields: `found u8 | index u64 | term u64 | end u64 | through u64 |
/// count u32`.
const PEER_RUNS_FIXED_BYTES: usize = 1 + 4 * 8 + 4;

/// A page of a peer's runs ([`peer_runs`]) as it travels between members (`None`: the peer
/// cannot tell where the snapshot entry's records end), little endian: the fixed fields, then
/// each run's index, term, first record index and end.
pub fn encode_peer_runs(page: Option<&PeerRuns>) -> Bytes {
    let Some(page) = page else { return Bytes::from_static(&[0]) };
    let mut bytes = Vec::with_capacity(PEER_RUNS_FIXED_BYTES + page.runs.len() * PEER_RUN_BYTES);
    bytes.push(1);
    for word in [page.position.index, page.position.term, page.end, page.through] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bytes.extend_from_slice(&(page.runs.len() as u32).to_le_bytes());
    for run in &page.runs {
        for word in [run.position.index, run.position.term, run.first_index, run.end_index] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
    }
    Bytes::from(bytes)
}

/// Decodes a page of a peer's runs: an error (never a panic, nor an allocation past the
/// answer's own size) for bytes that are not one, or a page that cannot be a peer's: runs
/// whose indexes do not increase, past the page or the snapshot's entry, or whose places go
/// back. (Indexes may skip: runs whose records expired are not listed, and the position-only
/// runs after them may still be; the cluster simulation's seed 71910 lists 129 to 132, then
/// 143.)
pub fn decode_peer_runs(bytes: &[u8]) -> std::result::Result<Option<PeerRuns>, String> {
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
    match bytes.first() {
        Some(0) if bytes.len() == 1 => return Ok(None),
        Some(1) if bytes.len() >= PEER_RUNS_FIXED_BYTES => {}
        _ => return Err(format!("not a page of runs ({} bytes)", bytes.len())),
    }
    let position = RaftPosition { index: word(1), term: word(9) };
    let (end, through) = (word(17), word(25));
    let count = u32::from_le_bytes(bytes[33..37].try_into().expect("four bytes")) as usize;
    if bytes.len() - PEER_RUNS_FIXED_BYTES != count.saturating_mul(PEER_RUN_BYTES) {
        return Err(format!("{count} runs in {} bytes", bytes.len()));
    }
    if through > position.index {
        return Err(format!("a page through entry {through}, past the snapshot's {}", position.index));
    }
    let mut runs: Vec<RaftEntryRun> = Vec::with_capacity(count);
    for at in (PEER_RUNS_FIXED_BYTES..bytes.len()).step_by(PEER_RUN_BYTES) {
        let run = RaftEntryRun {
            position: RaftPosition { index: word(at), term: word(at + 8) },
            first_index: word(at + 16),
            end_index: word(at + 24),
        };
        let follows = runs
            .last()
            .is_none_or(|last| run.position.index > last.position.index && run.first_index >= last.end_index);
        if !follows || run.first_index > run.end_index || run.position.index > through || run.position.index == 0 {
            return Err(format!("run {} of the page is not one a peer's log can hold: {run:?}", runs.len()));
        }
        runs.push(run);
    }
    Ok(Some(PeerRuns { position, end, runs, through }))
}

/// Entries a page of runs lists at most, whatever a peer asks: 32 KiB an answer.
pub const PEER_RUNS_PAGE_MAX: u32 = 1024;

/// The peer's side of a page of runs asked over the network
/// (`transport::PeerNetwork::fetch_runs`): [`peer_runs`] of shard `shard_uid` from entry
/// `from` on, encoded ([`encode_peer_runs`]); a page the journal cannot give (the shard is not
/// here, a read failed) is answered as one the peer cannot tell (`None`), and so is a request
/// no member makes (entry 0, or the last index there is: the frame comes off the network).
pub async fn answer_runs<S: Storage>(journal: &Journal<S>, shard_uid: u64, from: u64, asked: RunsAsked) -> Bytes {
    if from == 0 || asked.until_index == 0 || asked.until_index == u64::MAX {
        return encode_peer_runs(None);
    }
    let position = RaftPosition { index: asked.until_index, term: asked.until_term };
    let count = u64::from(asked.count.min(PEER_RUNS_PAGE_MAX));
    let page = peer_runs(journal, shard_uid, position, from, count).await.ok().flatten();
    encode_peer_runs(page.as_ref())
}

/// How a member restores from a peer's runs ([`plan_restore`]): the peer's runs from `first`
/// on are written, their records copied from `start` to the snapshot entry's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePlan {
    pub peer: PeerRuns,
    /// The first of the peer's runs this member does not hold alike ([`PeerRuns::runs`]'s
    /// length if it holds every one: nothing is written; or if the peer lists none: then the
    /// snapshot's entry goes as a position-only run where its records end).
    pub first: usize,
    /// Where the records to copy start: the first written run's place.
    pub start: u64,
    /// How the member's records before `start` go, if they must (the peer's start past what
    /// this member holds of the group's log: its retention took the records between).
    pub gap: Option<GapPast>,
}

/// How a restore leaves a gap behind ([`RestorePlan::gap`]): the member's records before the
/// copy's start go, as the peer's retention took them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapPast {
    /// The member's records all lie before the start: the shard restarts there
    /// ([`Journal::restart_shard_at`]) before anything is written.
    Restart,
    /// The member's records reach the start, or past it in entries the first written one
    /// replaces: that one is written first (its run cuts those past the start), then the
    /// records before it are trimmed ([`Journal::trim_shard_durably`]).
    Trim,
}

impl RestorePlan {
    /// The first entry written (the anchor of `settle_restore`) and where it goes.
    fn anchor(&self) -> RaftEntryRun {
        self.peer.runs.get(self.first).copied().unwrap_or(RaftEntryRun {
            position: self.peer.position,
            first_index: self.peer.end,
            end_index: self.peer.end,
        })
    }
}

/// The member's side of a restore, before anything is copied: which of the peer's runs it
/// must write (from the first it does not hold at the same place, with the same position: an
/// index and a term name one entry, and the entries before it then match too), and whether
/// the member's records before the copy's start must go (a gap: the peer's records start past
/// what this member holds of the group's log, [`GapPast`]). The member's entries kept are the leader's: its published ones
/// (committed) and those the peer lists alike; every other one goes. `None` if past a gap
/// the member holds an entry before the first written one whose records run across the
/// copy's start, which no write would cut (unfinished: `docs/replication.md`, "Snapshots into
/// the journal").
pub async fn plan_restore<S: Storage>(
    journal: &Journal<S>,
    shard_uid: u64,
    mut peer: PeerRuns,
) -> Result<Option<RestorePlan>> {
    if peer.through != peer.position.index {
        let reason =
            format!("the peer's runs up to {} do not lead to the snapshot at {:?}", peer.through, peer.position);
        return Err(corrupt(JOURNAL, 0, reason));
    }
    // The peer's retention may have moved between its pages, and taken position-only runs at
    // its trim horizon with the records before them: the runs before such a gap are treated as
    // expired, like the others before the trim; and all of them if the snapshot's own run went
    // (a run is listed only while its records are served, so its gone run lay at the trim
    // horizon, and every run before it at or below: the cluster simulation's journal seed
    // 43214, whose peer listed entries 79 to 102, all position-only runs at record 42, where
    // the snapshot's, 120, ended, and none after them).
    let gap = peer.runs.windows(2).rposition(|pair| pair[1].position.index != pair[0].position.index + 1);
    if peer.runs.last().is_some_and(|last| last.position != peer.position) {
        peer.runs.clear();
    } else if let Some(gap) = gap {
        peer.runs.drain(..=gap);
    }
    let (_, published) = journal.bounds(shard_uid).await?;
    let tip = journal.tip(shard_uid)?.next_index;
    let from = peer.runs.first().map_or(peer.position.index, |run| run.position.index);
    let own = journal.raft_entries_between(shard_uid, from, peer.position.index).await?;
    let mut first = 0;
    // The member's records below here are the leader's.
    let mut verified = published;
    for run in &peer.runs {
        if !own.contains(run) {
            break;
        }
        first += 1;
        verified = verified.max(run.end_index);
    }
    let anchor_index = peer.runs.get(first).map_or(peer.position.index, |run| run.position.index);
    let start = peer.runs.get(first).map_or(peer.end, |run| run.first_index);
    if start < verified {
        let reason = format!("the peer's entry {anchor_index} starts at record {start}, below {verified}");
        return Err(corrupt(JOURNAL, start, reason));
    }
    // Entries of the member between the verified ones and the first written one: none may be
    // left behind it (the write replaces the member's entries from its index on).
    let last_verified = if first > 0 { peer.runs[first - 1].position.index } else { 0 };
    let unverified_before = own.iter().any(|run| {
        run.position.index > last_verified && run.position.index < anchor_index && run.end_index > published
    });
    let gap = match start > verified || unverified_before {
        false => None,
        true if tip < start => Some(GapPast::Restart),
        // The member's records end at the start: the first written run goes at its tip. Or
        // they reach past it: that run replaces the member's entries from its index on, and
        // (as recovery resolves records) those whose records start at or past its place; and
        // it cuts their records from its place on, which must begin an entry of the member's.
        true if tip == start
            || journal.raft_runs(shard_uid)?.tip.is_some_and(|tip| tip.position.index >= anchor_index)
            || begins_an_entry(journal, shard_uid, start).await? =>
        {
            Some(GapPast::Trim)
        }
        true => return Ok(None),
    };
    Ok(Some(RestorePlan { peer, first, start, gap }))
}

/// Whether record `index` of the shard (held) is the first of an entry's: the record before it
/// is another entry's, or gone.
async fn begins_an_entry<S: Storage>(journal: &Journal<S>, shard_uid: u64, index: u64) -> Result<bool> {
    let Some(before) = index.checked_sub(1) else { return Ok(true) };
    let batch = journal.read_log(shard_uid, before, 2, usize::MAX).await?;
    let position_at = |at: u64| {
        let record = batch.records.iter().find(|record| record.sequence_number.record_index() == at);
        record.map(|record| record.raft)
    };
    Ok(match (position_at(before), position_at(index)) {
        (None, _) => true,
        (Some(before), Some(at)) => before.is_none() || before != at,
        (Some(_), None) => false,
    })
}

/// Brings shard `shard_uid` of a member's journal to the snapshot a [`RestorePlan`] is of,
/// before the replica installs it ([`LogStorage::install_snapshot`]), as the copy from the
/// peer brings the records: [`ShardRestore::add`] takes them in order, any number at a time,
/// and [`ShardRestore::finish`] ends the restore. With the log's `codec`, `storage` and `dir`.
/// - Nothing is written until the first entry to write is whole: then the snapshot's
///   membership (as of its index), its bytes (if it holds records) and [`RESTORE_FILE`] go
///   first, so that a restart after a crash settles the restore (`settle_restore`), past
///   membership changes the member may not have applied;
/// - past a gap, the member's records before the copy's start go, as the peer's retention
///   took them ([`GapPast`]): the shard restarts there first, or (its records reaching the
///   start, or past it in entries the first written one replaces) is trimmed once that one is
///   durable;
/// - each of the peer's runs from the first the member does not hold alike is written with
///   its Raft position as soon as its records are in; the first replaces the member's entries
///   from its index on. The snapshot's entry ends up the journal's last Raft run (a
///   position-only run where its records end if the peer lists none), so that no stale entry
///   past it comes back at a restart;
/// - the shard is closed if the snapshot covers a fence (`fence`, its index).
///
/// Every entry the member held and keeps is the leader's, and every one it loses was not (or
/// lies below the peer's trim horizon, which the log's compaction then covers): a member never
/// forgets an entry of the leader's it acknowledged. A restore dropped or failed once it
/// [`ShardRestore::started`] leaves the journal changed under the open log: the group must not
/// run on without opening the log again, which settles the restore. Between two calls of a
/// restore every run it wrote is durable, so a copy that lost its peer there lets the log be
/// opened again at once on the running journal (`replica::Restored::LogChanged`,
/// `Replica::run_reopening`); one whose disk failed, or a crash, leaves it to a restart.
pub struct ShardRestore<'a, S: Storage, C: EntryCodec> {
    journal: &'a Journal<S>,
    shard_uid: u64,
    host: (&'a C, &'a S, &'a Path),
    plan: RestorePlan,
    fence: Option<u64>,
    /// The membership as of the snapshot's entry (its metadata's).
    membership: ConfState,
    /// The next of the peer's runs to write, and the records of it received so far.
    next_run: usize,
    pending: Vec<StoredRecord>,
    /// The record index the next record must have.
    next_index: u64,
    /// Runs written (queued) so far, and those not yet known durable.
    written: usize,
    queued: Vec<QueuedAppend>,
}

impl<'a, S: Storage, C: EntryCodec> ShardRestore<'a, S, C> {
    pub fn new(
        journal: &'a Journal<S>,
        shard_uid: u64,
        host: (&'a C, &'a S, &'a Path),
        plan: RestorePlan,
        fence: Option<u64>,
        membership: ConfState,
    ) -> Self {
        let (next_run, next_index) = (plan.first, plan.start);
        ShardRestore {
            journal,
            shard_uid,
            host,
            plan,
            fence,
            membership,
            next_run,
            pending: Vec::new(),
            next_index,
            written: 0,
            queued: Vec::new(),
        }
    }

    /// Whether the journal may have changed already: the group must reopen the log if the
    /// restore does not finish.
    pub fn started(&self) -> bool {
        self.written > 0
    }

    /// Where the records still to copy start (the snapshot entry's end once all are in).
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Takes the next `records` of the copy (the peer's, from [`ShardRestore::next_index`] on,
    /// with their Raft positions), writing each run they complete, and waits until every run
    /// written so far is durable.
    pub async fn add(&mut self, records: Vec<StoredRecord>) -> Result<()> {
        for record in records {
            let index = record.sequence_number.record_index();
            // The position-only runs before this record's run go first.
            self.write_whole_runs().await?;
            let run = self.plan.peer.runs.get(self.next_run).copied();
            let Some(run) = run.filter(|run| index == self.next_index && run.end_index > index) else {
                let reason = format!("copied record {index} where record {} of the copy was due", self.next_index);
                return Err(corrupt(JOURNAL, index, reason));
            };
            if record.raft != Some(run.position) {
                let reason = format!("copied record {index} is not entry {:?}'s", run.position);
                return Err(corrupt(JOURNAL, index, reason));
            }
            self.pending.push(record);
            self.next_index += 1;
        }
        self.write_whole_runs().await?;
        self.durable().await
    }

    /// Writes the last runs (position-only ones: every record is in) and the snapshot's entry
    /// if the peer listed none, waits until all are durable, and closes the shard if the
    /// snapshot covers a fence.
    pub async fn finish(&mut self) -> Result<()> {
        self.write_whole_runs().await?;
        if self.next_run < self.plan.peer.runs.len() || self.next_index != self.plan.peer.end {
            let reason = format!("the copy ends at record {}, before the snapshot's end", self.next_index);
            return Err(corrupt(JOURNAL, self.next_index, reason));
        }
        if self.plan.peer.runs.is_empty() {
            let anchor = self.plan.anchor();
            self.write_run(anchor, Vec::new()).await?;
        }
        self.durable().await?;
        if self.fence.is_some() {
            self.journal.close_shard(self.shard_uid).await?;
        }
        Ok(())
    }

    /// Writes every run from the next one whose records are all in (none, for a position-only
    /// run).
    async fn write_whole_runs(&mut self) -> Result<()> {
        while let Some(run) = self.plan.peer.runs.get(self.next_run).copied() {
            if (self.pending.len() as u64) < run.end_index - run.first_index {
                return Ok(());
            }
            let records = std::mem::take(&mut self.pending);
            self.next_run += 1;
            self.write_run(run, records).await?;
        }
        Ok(())
    }

    /// Writes entry `run` with its `records`: the first one after the restore's record (and
    /// the restart past a gap); the trim past a gap once the first is durable.
    async fn write_run(&mut self, run: RaftEntryRun, records: Vec<StoredRecord>) -> Result<()> {
        let first = self.written == 0;
        if first {
            self.start(run, &records).await?;
        }
        self.queued.push(queue_run(self.journal, self.shard_uid, run, records).await?);
        self.written += 1;
        if first {
            // The first run replaces the member's entries from its index on: durable before
            // the next is queued, or a failed commit of it with the next written behind would
            // leave the member's entry there before the peer's (`JournalLog::append`).
            self.durable().await?;
            if self.plan.gap == Some(GapPast::Trim) {
                // Once the first run cut the member's records from the start on.
                trim_before_restore(self.journal, self.shard_uid, run).await?;
            }
        }
        Ok(())
    }

    /// What goes before the first run is written: the snapshot's membership, the first run's
    /// bytes beside (if it holds records), the restore's record, and the restart past a gap.
    async fn start(&self, anchor: RaftEntryRun, records: &[StoredRecord]) -> Result<()> {
        let (codec, storage, dir) = self.host;
        raft_files::save_conf(storage, dir, self.plan.peer.position.index, &self.membership).await?;
        if !records.is_empty() {
            let position = anchor.position;
            let entry =
                Entry { index: position.index, term: position.term, data: codec.entry(records), ..Entry::default() };
            write_side_entry(storage, dir, &entry).await?;
        }
        let record = codec::RestoreRecord {
            index: anchor.position.index,
            term: anchor.position.term,
            start: anchor.first_index,
            gap: self.plan.gap.is_some(),
            fence: self.fence.unwrap_or(0),
        };
        write_atomic(storage, &dir.join(RESTORE_FILE), &codec::encode_restore(&record))
            .await
            .map_err(ClusterError::io("write the raft restore record"))?;
        if self.plan.gap == Some(GapPast::Restart) {
            self.journal.restart_shard_at(self.shard_uid, anchor.first_index).await?;
        }
        Ok(())
    }

    /// Waits until every run written so far is durable.
    async fn durable(&mut self) -> Result<()> {
        for mut queued in self.queued.drain(..) {
            queued.durable().await?;
        }
        Ok(())
    }
}

/// Trims the shard's records before the first entry a restore wrote, `anchor`, durably: the
/// hold moves there first, as the watermarks' trim stays at or below it (the log holds the
/// shard again once the snapshot is installed, or when it opens).
async fn trim_before_restore<S: Storage>(journal: &Journal<S>, shard_uid: u64, anchor: RaftEntryRun) -> Result<()> {
    journal.hold_segments_from(shard_uid, anchor.first_index, anchor.position.index)?;
    journal.trim_shard_durably(shard_uid, anchor.first_index).await?;
    Ok(())
}

/// Queues entry `run` with its records as the peer holds them (none: a position-only run).
async fn queue_run<S: Storage>(
    journal: &Journal<S>,
    shard_uid: u64,
    run: RaftEntryRun,
    records: Vec<StoredRecord>,
) -> Result<QueuedAppend> {
    let Some(arrival_ms) = records.first().map(|record| record.timestamp_ms) else {
        return Ok(journal.queue_position(shard_uid, run.first_index, run.position).await?);
    };
    let records = records
        .into_iter()
        .map(|record| AppendRecord { shard_uid, partition_key: record.partition_key, data: record.data, sealed: false })
        .collect();
    Ok(journal.queue_at(records, arrival_ms, run.first_index, Some(run.position)).await?)
}

/// Settles a restore a crash cut short ([`RESTORE_FILE`]), before the log opens. If its first
/// run is durable (or the shard restarted past the gap and nothing is durable since: the run
/// goes again, from its side file), the log is compacted to the journal's newest Raft entry:
/// every entry up to it is a committed one (the leader's, up to the snapshot's entry), held as
/// the leader holds it; a fence among them is kept as a compacted one. The membership is the
/// snapshot's already ([`ShardRestore`] wrote it first): the changes the settled entries hold
/// need not be read (their bytes are not copied). Otherwise the journal holds the member's
/// own log, which opens as it was. Returns the compaction point.
async fn settle_restore<S: Storage, C: EntryCodec>(
    journal: &Journal<S>,
    shard_uid: u64,
    (codec, storage, dir): (&C, &S, &Path),
    store: &LogStore,
    compacted: CompactedRecord,
) -> Result<CompactedRecord> {
    let path = dir.join(RESTORE_FILE);
    let Some(bytes) = read_whole(storage, &path).await.map_err(ClusterError::io("read the raft restore record"))?
    else {
        return Ok(compacted);
    };
    let restore = codec::decode_restore(&bytes).map_err(|reason| corrupt(RESTORE_FILE, 0, reason))?;
    let anchor = RaftPosition { index: restore.index, term: restore.term };
    let runs = journal.raft_entries_between(shard_uid, anchor.index, anchor.index).await?;
    let copied = runs.first().is_some_and(|run| run.position == anchor && run.first_index == restore.start);
    let (trim, _) = journal.bounds(shard_uid).await?;
    let restarted = restore.gap
        && journal.raft_runs(shard_uid)?.tip.is_none()
        && trim >= restore.start
        && journal.tip(shard_uid)?.next_index == restore.start;
    if compacted.index >= anchor.index || !(copied || restarted) {
        // Installed (or settled) already; or nothing of the copy is durable.
        remove_if_present(storage, &path, "delete the raft restore record").await?;
        return Ok(compacted);
    }
    if !copied {
        let mut queued = match read_side_entry(storage, dir, anchor).await? {
            Some(entry) => {
                let Some((arrival_ms, records)) = codec.records(shard_uid, &entry.data) else {
                    return Err(corrupt(SIDE_FILE, 0, format!("the restored entry {anchor:?} holds no records")));
                };
                journal.queue_at(records, arrival_ms, restore.start, Some(anchor)).await?
            }
            None => journal.queue_position(shard_uid, restore.start, anchor).await?,
        };
        queued.durable().await?;
    }
    if restore.gap && trim < restore.start {
        // The first run is durable, the trim before it may not be.
        let anchor_run = RaftEntryRun { position: anchor, first_index: restore.start, end_index: restore.start };
        trim_before_restore(journal, shard_uid, anchor_run).await?;
    }
    let raft_runs = journal.raft_runs(shard_uid)?;
    let Some(tip) = raft_runs.tip.map(|tip| tip.position) else {
        return Err(corrupt(JOURNAL, restore.start, format!("the restored entry {anchor:?} is not in the journal")));
    };
    if restore.fence != 0 && restore.fence <= tip.index {
        let term = raft_runs.term_of(restore.fence).unwrap_or(tip.term);
        let bytes = codec::encode_compacted(&CompactedRecord { index: restore.fence, term });
        write_atomic(storage, &dir.join(FENCE_FILE), &bytes).await.map_err(ClusterError::io("write the raft fence"))?;
        journal.close_shard(shard_uid).await?;
    }
    raft_files::save_compacted(storage, dir, tip.index, tip.term).await?;
    store.restore(tip.index, tip.term);
    remove_if_present(storage, &side_path(dir, anchor), "delete a restored raft entry").await?;
    remove_if_present(storage, &path, "delete the raft restore record").await?;
    Ok(CompactedRecord { index: tip.index, term: tip.term })
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
    /// its place on; the first run of such a replacement is durable before the next is queued.
    async fn append(&mut self, entries: &[Entry]) -> Result<Vec<u64>> {
        let Some(first) = entries.first() else { return Ok(Vec::new()) };
        let replacing = first.index <= self.last_index;
        let mut place = if replacing { self.place_of(first.index).await? } else { self.end };
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
            let mut queued = match records {
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
            self.last_index = entry.index;
            self.end = place;
            if replacing && places.len() == 1 && entries.len() > 1 {
                // The first run of a replacement is durable before the next is queued. Were
                // its commit to fail and the next one's to succeed (the journal goes on after
                // a failed commit), the entry it replaced would fill the hole it left, and the
                // log would reopen with an old entry before the new ones; a hole where
                // nothing was is found at open (the log ends before it).
                queued.durable().await?;
                continue;
            }
            self.queued.push(queued);
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
        for index in (from..=to).take(JOURNAL_LOG_READ_ENTRIES_MAX) {
            let (Some(first), Some(term)) = (store.offset(index), store.term_of(index)) else { break };
            let end_index = self.end_of(index, store);
            runs.push(RaftEntryRun { position: RaftPosition { index, term }, first_index: first, end_index });
        }
        self.read_runs(&runs, bytes_max, JOURNAL_LOG_READ_SIDE_FILES_MAX).await
    }

    /// Places are record indexes: the bytes are those of the journal's segments holding the
    /// shard's records between them, which the view's hold keeps from retention.
    fn held_bytes(&self, from: u64, to: u64, bytes_max: u64) -> u64 {
        self.journal.held_bytes(self.shard_uid, from, to, bytes_max)
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

    /// The journal holds the shard's records up to the end of entry `index` (the host restored
    /// them from a peer with [`ShardRestore`]), and that entry's run is its last Raft run: the
    /// log continues at `index + 1`, at the shard's next record index. No stale run is left
    /// past the snapshot (Raft discards a log the snapshot does not continue), which a restart
    /// would find again; a journal whose last Raft run is another entry's is refused. A
    /// snapshot that covers a fence leaves the shard closed (`ShardRestore` closes it): the
    /// fence is kept as a compacted one.
    async fn install_snapshot(&mut self, index: u64, term: u64) -> Result<()> {
        let position = RaftPosition { index, term };
        let tip = self.journal.raft_runs(self.shard_uid)?.tip.map(|tip| tip.position);
        if tip != Some(position) {
            let reason = format!("a snapshot at entry {index} of term {term}, but the journal's last entry is {tip:?}");
            return Err(corrupt(JOURNAL, 0, reason));
        }
        // The log held is gone, and a fence in it with it: past the snapshot, or at or before
        // it but not the committed one (a stale suffix's). The snapshot covers a committed
        // fence exactly when the host restored the shard closed.
        let closed = self.journal.is_closed(self.shard_uid);
        match self.fence {
            Some(fence) if closed && fence.index <= index => {}
            _ if closed => {
                self.fence = Some(position);
                self.fence_saved = false;
            }
            _ => self.fence = None,
        }
        self.save_fence_before_compaction(index).await?;
        raft_files::save_compacted(&self.storage, &self.dir, index, term).await?;
        remove_if_present(&self.storage, &self.dir.join(RESTORE_FILE), "delete the raft restore record").await?;
        self.compacted = index;
        self.last_index = index;
        self.end = self.journal.tip(self.shard_uid)?.next_index;
        self.journal.hold_segments_from(self.shard_uid, self.end, index + 1)?;
        self.remove_side_files(index).await
    }

    /// Moves the shard's published end to the end of entry `commit`: its records are then
    /// served, here once durable. Closes the shard once its fence is committed.
    fn committed(&mut self, commit: u64, store: &LogStore) -> Result<()> {
        self.journal.publish_until(self.shard_uid, self.end_of(commit, store))?;
        self.close_if_fence_committed(commit);
        Ok(())
    }

    async fn save_conf(&self, index: u64, conf_state: &ConfState) -> Result<()> {
        raft_files::save_conf(&self.storage, &self.dir, index, conf_state).await
    }

    async fn save_hard_state(&self, hard_state: &HardState) -> Result<()> {
        raft_files::save_hard_state(&self.storage, &self.dir, hard_state).await
    }
}
