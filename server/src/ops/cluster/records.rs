//! A shard's group: the leader's PutRecord(s) proposes the admitted batch, and every replica
//! applies the committed entries to its journal in log order.
//!
//! Apply: the entry at Raft index `i` holds `n` records; the records of the entries before it
//! take the shard's record indexes from the first (`FIRST_RECORD_INDEX`) to `k - 1`, so its
//! records get `k..k + n`, whichever node applies
//! it, and the leader's arrival time (at least the shard's previous one: `Journal::queue_at`).
//! Each entry's runs in the journal carry its term and index (`format::RaftPosition`). After
//! a restart the applier resumes after the newest entry the journal holds, once the log's
//! entry there has the same term, or else after its saved progress ([`Progress`], or the
//! first entry), reading the committed entries again from there; an entry whose records the
//! journal already holds (its end at or below the journal's next index) is skipped. The
//! journal commits an append whole or not at all, so an entry is in it entirely or not at
//! all; anything else is a disagreement between the two files, which stops the
//! shard's applier (fail-stop) rather than serve different records than the other replicas.
//!
//! Seal: a reshard's parent ends at its seal entry (`entry::ShardEntry::Seal`). Applying it
//! fences the shard in the journal (`Journal::close_shard`) at the records of the entries
//! before it, the same index on every replica; records entries committed after it are
//! refused, stored nowhere, and their proposer routes the records again (to the children).
//! In cluster mode nothing else closes a shard in the journal: not the catalog's closing flag
//! (each node applies that at its own moment), not start-up (the replay meets the seal
//! again). Any member leading a closing parent proposes its seal ([`seal`]); a second seal
//! committed (two leaders in turn) changes nothing.

use crate::limits::FOLLOWER_CATCH_UP_WAIT_MS;
use crate::ops::cluster::applied::Applied;
use crate::ops::cluster::entry::{self, EntryRecord, ShardEntry};
use crate::ops::node::Node;
use sluice_cluster::host::{AppendError, GroupHost};
use sluice_cluster::limits::{APPEND_COMMIT_WAIT_MS, TICK_INTERVAL_MS};
use sluice_cluster::wire::APPEND_DATA_BYTES_MAX;
use sluice_cluster::CommittedEntry;
use sluice_engine::catalog::write_atomic;
use sluice_engine::format::RaftPosition;
use sluice_engine::shard_index::FIRST_RECORD_INDEX;
use sluice_engine::{AppendRecord, Appended, QueuedAppend, RaftTip, ShardTip};
use sluice_model::KinesisError;
use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

/// Applied entries' outcomes kept for the proposers waiting on them (by Raft index). A
/// proposer takes its outcome as soon as its entry is applied; this bounds what proposers
/// that gave up (timed out) leave behind.
const APPLIED_OUTCOMES_KEPT_MAX: usize = 4096;

/// What an applied records entry answers its proposer: its records' acknowledgements, or
/// `None` when it came after the shard's seal and nothing was stored.
type Outcome = Result<Option<Vec<Appended>>, KinesisError>;

/// One shard's group on this core.
pub struct ShardGroup {
    pub uid: u64,
    pub host: GroupHost,
    /// The last Raft index whose outcome is decided, and the outcomes of the entries proposed
    /// here: its records queued to the journal, behind every entry before it, with their
    /// sequence numbers fixed (or nothing to store). A proposer is answered from here (see
    /// [`apply_committed`]).
    decided: Applied<Outcome>,
    /// The last Raft index applied to the journal durably (or found there): what reads and the
    /// seal wait for.
    applied: Applied<()>,
    /// The shard's end (its next record index) once its seal is applied here.
    ending_index: Cell<Option<u64>>,
    /// Where the applier saves how far it got ([`Progress`]), and whether a save is under way.
    progress_path: PathBuf,
    progress_saving: Rc<Cell<bool>>,
    /// A snapshot restored the journal up to here (`snapshot`): the applier continues after
    /// it.
    restored: Cell<Option<Progress>>,
    /// The applier is confirming the journal's newest entry against the log ([`confirm_held`])
    /// and applies nothing until it has: idle, for a restore.
    confirming: Cell<bool>,
    /// Bytes of entries taken from the log since the last save began, and how many call for
    /// the next save: a log segment's, so that the log can drop a segment soon after it fills
    /// (compaction never passes the saved progress).
    unsaved_bytes: Cell<usize>,
    progress_every_bytes: usize,
    /// The entry the last save of the progress began at.
    saved_index: Cell<u64>,
}

/// The applier's progress file in the group's directory.
const PROGRESS_FILE: &str = "applied";

/// Entries applied between two saves of the applier's progress (or fewer: see
/// `ShardGroup::progress_every_bytes`).
const PROGRESS_SAVED_EVERY_ENTRIES: u64 = 1024;

/// How long an applier waits, with nothing more committed, before it saves what it applied
/// since the last save: a quiet group's log can then be compacted, and a member added to it
/// seeded with a snapshot (which is what the saved progress offers; without it, an added
/// member waited for the group's 1,024th entry).
const PROGRESS_SAVED_WHEN_IDLE_MS: u64 = 1_000;

/// How far a shard's applier got: every entry up to Raft index `index` is in the journal, and
/// the next entry's first record goes at `next_record_index`. Saved every
/// [`PROGRESS_SAVED_EVERY_ENTRIES`] entries or a log segment of them (after they are
/// durable) so that a restart applies from there instead of reading the whole log from its
/// first entry, and so that the log may drop what came before; never past a seal, so
/// that a restart still meets the seal and fences the shard. A stale one only costs reading
/// the entries after it again (each is found in the journal and skipped).
///
/// It is also what the group offers in snapshots (`snapshot`): a member whose log the others
/// compacted past copies the records up to `next_record_index` from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub index: u64,
    pub next_record_index: u64,
}

impl Progress {
    fn read(path: &Path) -> Option<Progress> {
        Progress::decode(&std::fs::read(path).ok()?)
    }

    pub fn decode(bytes: &[u8]) -> Option<Progress> {
        let bytes: [u8; 16] = bytes.try_into().ok()?;
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
        Some(Progress { index: word(0), next_record_index: word(8) })
    }

    /// Offered in snapshots with each report of what the journal holds.
    fn state(&self) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(&self.bytes())
    }

    fn bytes(&self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.index.to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_record_index.to_le_bytes());
        bytes
    }
}

impl ShardGroup {
    /// Starts the applier of `host`'s committed entries, from the progress it saved in `dir`
    /// (from the first entry if none, or if the journal holds less than it says).
    pub fn start(node: &Rc<Node>, uid: u64, host: GroupHost, dir: &Path, segment_bytes: usize) -> Rc<ShardGroup> {
        let path = dir.join(PROGRESS_FILE);
        let saved = Progress::read(&path).filter(|progress| {
            let held = node
                .journal
                .bounds_in_memory(uid)
                .is_ok_and(|(_, next_index)| next_index >= progress.next_record_index);
            if !held {
                // The log may have dropped the entries before the saved progress (compaction
                // follows it), so the replay from the first entry would wait for them forever.
                tracing::error!(
                    shard = uid,
                    entry = progress.index,
                    "replication: the journal holds fewer records than the applier's saved progress; \
                     the entries before it may be compacted away (the journal lost records it had \
                     synced: this member's disk is damaged)"
                );
            }
            held
        });
        if let Some(progress) = saved {
            tracing::info!(
                shard = uid,
                entry = progress.index,
                "replication: the applier resumes after its saved progress"
            );
        }
        let start = saved.unwrap_or(Progress { index: 0, next_record_index: FIRST_RECORD_INDEX });
        // The journal's runs name the entries they came from: the newest one it holds, past
        // the saved progress, is where the applier resumes (once the log confirms it), rather
        // than reading the entries in between again to find them in the journal.
        let held =
            node.journal.raft_runs(uid).ok().and_then(|runs| runs.tip).filter(|tip| tip.position.index > start.index);
        host.compactable(start.index, start.state());
        let group = Rc::new(ShardGroup {
            uid,
            host,
            decided: Applied::new(start.index, APPLIED_OUTCOMES_KEPT_MAX),
            applied: Applied::new(start.index, 0),
            ending_index: Cell::new(None),
            progress_path: path,
            progress_saving: Rc::new(Cell::new(false)),
            restored: Cell::new(None),
            confirming: Cell::new(held.is_some()),
            unsaved_bytes: Cell::new(0),
            progress_every_bytes: segment_bytes,
            saved_index: Cell::new(start.index),
        });
        glommio::spawn_local(apply_committed(node.clone(), group.clone(), start.next_record_index, held)).detach();
        group
    }

    /// The shard's end, once its seal is applied on this node.
    pub fn ending_index(&self) -> Option<u64> {
        self.ending_index.get()
    }

    /// The last Raft index applied to the journal.
    pub fn applied_index(&self) -> u64 {
        self.applied.index()
    }

    /// Whether the applier applies nothing until more is committed here: it has applied every
    /// entry committed, or it waits to confirm the journal's newest entry (whose commit a
    /// restarted member may learn only from a snapshot: its stored commit lags, and a new
    /// leader tells it no commit past what it knows the member holds).
    pub fn applier_idle(&self) -> bool {
        self.confirming.get() || self.apply_lag() == 0
    }

    /// The entries committed here that the applier has not yet made durable in the journal.
    pub fn apply_lag(&self) -> u64 {
        self.host.status().commit.saturating_sub(self.applied.index())
    }

    /// A snapshot restored the journal up to `progress` (`snapshot::restore`, with the applier
    /// idle): the progress is saved (a restart resumes after it, since the log will start
    /// there), and the applier continues after it.
    pub async fn restored_to(&self, progress: Progress) -> Result<(), String> {
        // A save of an older progress still under way would land after this one.
        while self.progress_saving.replace(true) {
            glommio::timer::sleep(Duration::from_millis(TICK_INTERVAL_MS)).await;
        }
        let path = self.progress_path.clone();
        let bytes = progress.bytes();
        let saved = glommio::executor().spawn_blocking(move || write_atomic(&path, &bytes)).await;
        self.progress_saving.set(false);
        saved.map_err(|error| format!("could not save the progress: {error}"))?;
        self.unsaved_bytes.set(0);
        self.saved_index.set(progress.index);
        self.restored.set(Some(progress));
        self.host.compactable(progress.index, progress.state());
        Ok(())
    }
}

/// On the shard's core: waits until the shard's seal is applied here and returns its end,
/// proposing the seal whenever this member leads the group and has not applied one yet (so
/// whichever member leads the parent seals it, across elections). `None` if this node stops
/// being `still_wanted`'s (the metadata leader stepped down; the catalog no longer has the
/// shard closing) first.
pub async fn seal(group: &ShardGroup, node_id: u64, still_wanted: impl Fn() -> bool) -> Option<u64> {
    loop {
        if let Some(ending_index) = group.ending_index() {
            return Some(ending_index);
        }
        if !still_wanted() {
            return None;
        }
        if group.host.leader() == node_id {
            match group.host.append(entry::encode_seal()).await {
                Ok(appended) => {
                    group.applied.wait(appended.index, Duration::from_millis(APPEND_COMMIT_WAIT_MS)).await;
                    continue;
                }
                Err(error) => {
                    tracing::debug!(shard = group.uid, %error, "replication: the seal was not proposed; again")
                }
            }
        }
        // Woken by the next entry applied here (the seal, proposed by the leader elsewhere:
        // sleeping a whole tick instead cost two thirds of a reshard's steps 50 ms each), or
        // after a tick to look at the leader again.
        let next = group.applied.index() + 1;
        group.applied.wait(next, Duration::from_millis(TICK_INTERVAL_MS)).await;
    }
}

/// On the shard's core: waits until this member has applied every entry shard `uid`'s group
/// had committed when the call began, confirmed by its leader (`GroupHost::read_index`, asked
/// through the leader on a follower), so that the shard's tip here is past every record
/// acknowledged before the call: LATEST must not start before one of them, wherever it is
/// asked, and a leader deposed by a partition cannot confirm its commit. Waits
/// [`FOLLOWER_CATCH_UP_WAIT_MS`] at most for the apply.
pub async fn caught_up_to_commit(uid: u64) -> Result<(), KinesisError> {
    let group = crate::ops::cluster::core().and_then(|core| core.group(uid));
    let Some(group) = group else {
        return Err(KinesisError::internal(format!("shard {uid} has no replication group here yet; retry")));
    };
    let commit = group.host.read_index().await.map_err(|error| {
        KinesisError::internal(format!("shard {uid}'s latest position is not known here right now ({error}); retry"))
    })?;
    if !group.applied.wait(commit, Duration::from_millis(FOLLOWER_CATCH_UP_WAIT_MS)).await {
        return Err(KinesisError::internal(format!(
            "this member has not applied shard {uid}'s records up to its leader's commit within \
             {FOLLOWER_CATCH_UP_WAIT_MS} ms; retry"
        )));
    }
    Ok(())
}

/// Entries an applier has on their way to the journal at once. Applying one entry at a time,
/// each waiting for its group commit, held a shard to one entry per commit's latency: a
/// 3-node cluster acknowledged 27,000-35,000 records/s and PutRecord took seconds at 800 calls/s
/// (`bench/results/2026-12-03-replication-cost/`). The journal's queue bounds the bytes.
const APPLY_IN_FLIGHT_MAX: usize = 64;

/// An entry handed to the journal, or one with nothing to store, in Raft order.
/// `end` is the shard's next record index once the entry is applied; `acks` what its proposer
/// was answered, which the journal's commit must confirm.
enum Applying {
    Queued { index: u64, end: u64, append: QueuedAppend, acks: Vec<Appended> },
    Done { index: u64, end: u64 },
}

/// Applies the group's committed entries to the journal in log order, with up to
/// [`APPLY_IN_FLIGHT_MAX`] of them on their way to the disk at once (`Journal::queue_at`:
/// each must start where the one before it ends, so an append that fails leaves no hole
/// behind it: the ones queued after it are refused too).
///
/// A proposer is answered once its entry is queued, not once the journal synced it: the entry
/// is committed, so durable in the Raft logs of a quorum, this member's included, and
/// queued behind every entry before it, its records' sequence numbers and arrival time are
/// fixed (`ShardTip::append`, what the commit's framing gives them; checked when the commit
/// answers, and a difference stops the applier). The journal is this member's state machine:
/// after a crash the applier reads the entries after its saved progress again, which is saved
/// only once the journal holds them durably, and the log keeps every entry after it. Waiting
/// for the journal's group commit as well put a second write and fdatasync on every
/// acknowledgement. Reads wait for the journal ([`ShardGroup::applied_index`] moves once an
/// entry and every one before it are durable there), so a record is served only once this
/// member's journal holds it, as before; a GetRecords right after an acknowledgement may come
/// a commit too early to see it (Kinesis makes no promise either), while an iterator at or
/// after its sequence number waits for it (`shard_iterator_here`), and so does LATEST
/// ([`caught_up_to_commit`]).
async fn apply_committed(node: Rc<Node>, group: Rc<ShardGroup>, mut next_record_index: u64, held: Option<RaftTip>) {
    // `next_record_index`: the record index the next entry's first record gets: the shard's
    // first index plus the records of the committed entries before it.
    if let Some(held) = held {
        let confirmed = confirm_held(&group, held).await;
        group.confirming.set(false);
        match confirmed {
            Held::Confirmed => {
                next_record_index = held.end_index;
                group.decided.set(held.position.index, None);
                group.applied.set(held.position.index, None);
            }
            // Taken below.
            Held::Restored => {}
            Held::Refused => return,
        }
    }
    let mut next = group.applied.index() + 1;
    let mut in_flight: VecDeque<Applying> = VecDeque::new();
    // The journal's tip past the appends on their way: taken from the journal whenever
    // nothing is (this applier is the shard's only writer).
    let mut tip: Option<ShardTip> = None;
    loop {
        if let Some(restored) = group.restored.take() {
            // A snapshot brought the journal here while nothing was on its way.
            debug_assert!(in_flight.is_empty(), "a snapshot restored while entries were being applied");
            next = restored.index + 1;
            next_record_index = restored.next_record_index;
            tip = None;
            group.decided.set(restored.index, None);
            group.applied.set(restored.index, None);
        }
        // Entries whose appends are durable already are applied at once, in order.
        if !finish_durable(&group, &mut in_flight) {
            return;
        }
        // Wait for the oldest when the window is full; when nothing more is committed yet, for
        // the oldest or the next commit, whichever comes first (a proposer waits for its
        // entry's commit, not for the journal's).
        if in_flight.len() >= APPLY_IN_FLIGHT_MAX {
            if !finish_oldest(&group, &mut in_flight).await {
                return;
            }
            continue;
        }
        if !in_flight.is_empty() && group.host.status().commit < next {
            if !finish_oldest_or_committed(&group, &mut in_flight, next - 1).await {
                return;
            }
            if group.host.stopped() {
                // The stream was deleted (its group stopped, whose wait for a commit returns
                // at once: going round again would spin without yielding, and starve the
                // journal's flusher the oldest append waits for).
                return;
            }
            continue;
        }
        let index = next;
        if group.saved_index.get() < index - 1 && group.ending_index().is_none() {
            // Entries applied and not saved: saved once nothing more commits for a while.
            let idle = futures_lite::future::or(
                async {
                    group.host.committed_past(index - 1).await;
                    false
                },
                async {
                    glommio::timer::sleep(Duration::from_millis(PROGRESS_SAVED_WHEN_IDLE_MS)).await;
                    true
                },
            );
            if idle.await {
                save_progress(&group, Progress { index: index - 1, next_record_index });
                continue;
            }
        } else {
            group.host.committed_past(index - 1).await;
        }
        if group.host.stopped() {
            // The stream was deleted: the group is gone on this node.
            return;
        }
        let Some(CommittedEntry { term, data }) = group.host.committed_entry(index).await else { continue };
        next += 1;
        group.unsaved_bytes.set(group.unsaved_bytes.get() + data.len());
        // A new leader's first entry is empty: no records.
        if data.is_empty() {
            nothing_to_store(&group, &mut in_flight, index, next_record_index, None);
            continue;
        }
        let entry = match entry::decode_shard_entry(&data) {
            Ok(ShardEntry::Records(entry)) => entry,
            Ok(ShardEntry::Seal) => {
                // The seal closes the shard at the records of every entry before it: those
                // must be durable first.
                if !finish_all(&group, &mut in_flight).await {
                    return;
                }
                if group.ending_index().is_none() {
                    // A barrier behind every append this applier made: the end is durable.
                    match node.journal.close_shard(group.uid).await {
                        Ok(ending_index) if ending_index == next_record_index => {
                            group.ending_index.set(Some(ending_index));
                        }
                        Ok(ending_index) => {
                            tracing::error!(shard = group.uid, index, ending_index, next_record_index, "replication: the journal holds other records than the log before the seal; the shard stops applying");
                            return;
                        }
                        Err(error) => {
                            tracing::error!(shard = group.uid, index, %error, "replication: the seal could not close the shard; the shard stops applying");
                            return;
                        }
                    }
                    tracing::info!(
                        shard = group.uid,
                        index,
                        ending_index = next_record_index,
                        "replication: the shard is sealed"
                    );
                }
                nothing_to_store(&group, &mut in_flight, index, next_record_index, None);
                continue;
            }
            Err(error) => {
                tracing::error!(shard = group.uid, index, %error, "replication: a committed entry does not decode; the shard stops applying");
                return;
            }
        };
        if group.ending_index().is_some() {
            // Committed after the seal: the shard takes no more records, on any replica.
            nothing_to_store(&group, &mut in_flight, index, next_record_index, Some(Ok(None)));
            continue;
        }
        let count = entry.records.len() as u64;
        // Records of this entry the journal holds already: a snapshot's copy from a peer that
        // stopped inside it (`snapshot::restore` gave up, and the log went on here instead).
        // They are the committed ones, the same on every member: the rest follow them.
        let mut stored = 0;
        if in_flight.is_empty() {
            // Where the journal ends tells what a restart already applied; with appends on
            // their way, this applier alone decides where the shard ends.
            let journal_tip = match node.journal.tip(group.uid) {
                Ok(journal_tip) => journal_tip,
                // Deleted (or never adopted here): nothing more to apply.
                Err(error) => {
                    tracing::info!(shard = group.uid, %error, "replication: the shard's applier stops");
                    return;
                }
            };
            if next_record_index + count <= journal_tip.next_index {
                // In the journal already, from before a restart.
                next_record_index += count;
                nothing_to_store(&group, &mut in_flight, index, next_record_index, None);
                continue;
            }
            if next_record_index < journal_tip.next_index {
                stored = journal_tip.next_index - next_record_index;
                tracing::info!(
                    shard = group.uid,
                    index,
                    stored,
                    count,
                    "replication: the journal holds part of an entry already (a copy stopped inside it); the rest follows"
                );
            } else if next_record_index != journal_tip.next_index {
                tracing::error!(
                    shard = group.uid,
                    index,
                    next_record_index,
                    next_index = journal_tip.next_index,
                    "replication: the journal and the Raft log disagree on the shard's records; the shard stops applying"
                );
                return;
            }
            tip = Some(journal_tip);
        }
        let Some(tip) = tip.as_mut() else {
            unreachable!("appends on their way were queued at a tip taken from the journal")
        };
        // The on-demand scaler's demand (`on_demand::scale`, on the metadata leader): on a
        // replicated node, the writes applied, the same on every node.
        let bytes: usize = entry.records.iter().map(|record| record.data.len() + record.partition_key.len()).sum();
        node.shards.with(group.uid, |state| {
            state.demand.bytes += bytes as u64;
            state.demand.records += count;
        });
        // The delivery state applies its group's entries as they are queued here, committed,
        // rather than once the journal synced them (`Delivery::committed`).
        let delivery = node.delivery.as_ref().filter(|_| group.uid == crate::ops::cluster::DELIVERY_GROUP.0);
        let handed: Vec<bytes::Bytes> = match delivery {
            Some(_) => entry.records.iter().skip(stored as usize).map(|record| record.data.clone()).collect(),
            None => Vec::new(),
        };
        let records = entry
            .records
            .into_iter()
            .skip(stored as usize)
            .map(|record| AppendRecord {
                shard_uid: group.uid,
                partition_key: record.partition_key,
                data: record.data,
                sealed: record.sealed,
            })
            .collect();
        let raft = Some(RaftPosition { term, index });
        match node.journal.queue_at(records, entry.arrival_ms, next_record_index + stored, raft).await {
            Ok(append) => {
                next_record_index += count;
                let acks = tip.append(count - stored, entry.arrival_ms);
                if let Some(delivery) = delivery {
                    for (ack, data) in acks.iter().zip(handed) {
                        delivery.committed(ack.sequence_number.record_index(), data);
                    }
                }
                // A proposer here is answered all of its entry's records or nothing; one whose
                // entry a copy partly stored (it lost the leadership meanwhile) retries.
                let outcome = (stored == 0).then(|| Ok(Some(acks.clone())));
                group.decided.set(index, outcome);
                in_flight.push_back(Applying::Queued { index, end: next_record_index, append, acks });
            }
            Err(error) => {
                if finish_all(&group, &mut in_flight).await {
                    applying_failed(&group, index, &error);
                }
                return;
            }
        }
    }
}

/// How the journal's newest entry found at start fared ([`confirm_held`]).
enum Held {
    /// The log's entry there has the journal's term: the applier continues after it.
    Confirmed,
    /// A snapshot was restored first (the log starts after it now): the applier continues
    /// after the snapshot.
    Restored,
    /// The group stopped, or the log's entry has another term: the applier stops.
    Refused,
}

/// Whether the log's committed entry at the journal's newest held one (`held`, found at start)
/// has the term the journal's runs say: entries are committed once and never change, so a
/// difference means the journal and the log are not of one history, and the shard stops
/// applying rather than serve records the other members do not have. Waits for the entry's
/// commit to be known here (the log holds it: it was applied, and the saved progress, which
/// compaction never passes, is before it), or for a snapshot: the stored commit lags the
/// journal (it is written every `COMMIT_SAVED_EVERY_BYTES`), and a leader that does not know
/// what this member holds (a new one) tells it no commit past that, and may send a snapshot
/// instead, after which the log no longer holds the entry. The restore copies from the
/// journal's end (the applier appends committed entries only).
async fn confirm_held(group: &ShardGroup, held: RaftTip) -> Held {
    let index = held.position.index;
    let entry = loop {
        group.host.committed_past(index - 1).await;
        if group.host.stopped() {
            return Held::Refused;
        }
        if group.restored.get().is_some() {
            return Held::Restored;
        }
        if let Some(entry) = group.host.committed_entry(index).await {
            break entry;
        }
    };
    if entry.term != held.position.term {
        tracing::error!(
            shard = group.uid,
            index,
            log_term = entry.term,
            journal_term = held.position.term,
            "replication: the journal holds records of another term than the log's entry; the shard stops applying"
        );
        return Held::Refused;
    }
    tracing::info!(
        shard = group.uid,
        entry = index,
        next_record_index = held.end_index,
        "replication: the applier resumes after the journal's newest entry"
    );
    Held::Confirmed
}

/// Entry `index` stores nothing more (the shard's next record index is `end`): decided at
/// once, applied once every entry before it is.
fn nothing_to_store(
    group: &ShardGroup,
    in_flight: &mut VecDeque<Applying>,
    index: u64,
    end: u64,
    outcome: Option<Outcome>,
) {
    group.decided.set(index, outcome);
    if in_flight.is_empty() {
        applied(group, index, end);
    } else {
        in_flight.push_back(Applying::Done { index, end });
    }
}

/// Waits for the oldest entry on its way and marks it applied; false if its append failed
/// (the applier stops).
async fn finish_oldest(group: &ShardGroup, in_flight: &mut VecDeque<Applying>) -> bool {
    match in_flight.pop_front() {
        Some(Applying::Done { index, end }) => applied(group, index, end),
        Some(Applying::Queued { index, end, mut append, acks }) => {
            let durable = append.durable().await;
            if !confirmed(group, index, &acks, durable) {
                return false;
            }
            applied(group, index, end);
        }
        None => {}
    }
    true
}

/// Waits for the oldest entry on its way, and marks it applied, or for an entry past `index`
/// to be committed, whichever comes first; false if the oldest's append failed (the applier
/// stops).
async fn finish_oldest_or_committed(group: &ShardGroup, in_flight: &mut VecDeque<Applying>, index: u64) -> bool {
    let durable = futures_lite::future::or(
        async {
            match in_flight.front_mut() {
                Some(Applying::Queued { append, .. }) => Some(append.durable().await),
                // Entries with nothing to store wait only behind appends (`nothing_to_store`).
                _ => unreachable!("the oldest entry on its way is an append"),
            }
        },
        async {
            group.host.committed_past(index).await;
            None
        },
    )
    .await;
    let Some(durable) = durable else { return true };
    let Some(Applying::Queued { index, end, acks, .. }) = in_flight.pop_front() else {
        unreachable!("the oldest entry was just seen")
    };
    if !confirmed(group, index, &acks, durable) {
        return false;
    }
    applied(group, index, end);
    true
}

/// Waits for every entry on its way and marks each applied; false if an append failed (the
/// applier stops, the failure logged).
async fn finish_all(group: &ShardGroup, in_flight: &mut VecDeque<Applying>) -> bool {
    while !in_flight.is_empty() {
        if !finish_oldest(group, in_flight).await {
            return false;
        }
    }
    true
}

/// Marks applied the oldest entries whose appends already answered (without waiting); false
/// if one failed (the applier stops).
fn finish_durable(group: &ShardGroup, in_flight: &mut VecDeque<Applying>) -> bool {
    loop {
        let answer = match in_flight.front_mut() {
            Some(Applying::Queued { append, .. }) => match append.try_durable() {
                Some(answer) => Some(answer),
                None => return true,
            },
            Some(Applying::Done { .. }) => None,
            None => return true,
        };
        match (in_flight.pop_front(), answer) {
            (Some(Applying::Done { index, end }), _) => applied(group, index, end),
            (Some(Applying::Queued { index, end, acks, .. }), Some(durable)) => {
                if !confirmed(group, index, &acks, durable) {
                    return false;
                }
                applied(group, index, end);
            }
            _ => unreachable!("the front was just seen"),
        }
    }
}

/// Whether entry `index`'s append became durable with the acknowledgements its proposer was
/// given; if not, the failure is logged (the applier stops).
fn confirmed(
    group: &ShardGroup,
    index: u64,
    given: &[Appended],
    durable: Result<Vec<Appended>, sluice_engine::EngineError>,
) -> bool {
    match durable {
        Ok(acks) if acks == given => true,
        Ok(acks) => {
            tracing::error!(
                shard = group.uid,
                index,
                given = ?given.first(),
                stored = ?acks.first(),
                "replication: the journal stored an entry's records otherwise than its proposer was \
                 answered; the shard stops applying"
            );
            false
        }
        Err(error) => {
            applying_failed(group, index, &error);
            false
        }
    }
}

/// Entry `index` is durable in the journal, with every entry before it (the shard's next
/// record index is `end`): reads may serve it, and every [`PROGRESS_SAVED_EVERY_ENTRIES`] (or
/// a segment's bytes) the progress is saved ([`save_progress`]).
fn applied(group: &ShardGroup, index: u64, end: u64) {
    group.applied.set(index, None);
    let due =
        index.is_multiple_of(PROGRESS_SAVED_EVERY_ENTRIES) || group.unsaved_bytes.get() >= group.progress_every_bytes;
    if due {
        save_progress(group, Progress { index, next_record_index: end });
    }
}

/// Saves `progress` in the background (a save still under way skips this one), never once the
/// shard is sealed, and never behind the last save (an applier idle through a restore may
/// offer its own position once the snapshot's is saved: a restart would then resume behind
/// the log's compaction point, and wait for a compacted entry for ever); once saved, the log
/// may drop the entries up to it.
fn save_progress(group: &ShardGroup, progress: Progress) {
    if group.ending_index().is_some() || group.progress_saving.get() || progress.index < group.saved_index.get() {
        return;
    }
    let index = progress.index;
    group.progress_saving.set(true);
    group.unsaved_bytes.set(0);
    group.saved_index.set(index);
    let path = group.progress_path.clone();
    let bytes = progress.bytes();
    let uid = group.uid;
    let saving = group.progress_saving.clone();
    let host = group.host.clone();
    glommio::spawn_local(async move {
        let saved = glommio::executor().spawn_blocking(move || write_atomic(&path, &bytes)).await;
        match saved {
            // A restart resumes after this entry: the log need not keep it.
            Ok(()) => host.compactable(index, progress.state()),
            // The stream was deleted meanwhile: its group stopped and its files are going.
            Err(_) if host.stopped() => {}
            // Only a restart's replay is longer for it.
            Err(error) => tracing::warn!(shard = uid, %error, "replication: could not save the applier's progress"),
        }
        saving.set(false);
    })
    .detach();
}

fn applying_failed(group: &ShardGroup, index: u64, error: &sluice_engine::EngineError) {
    // The leader validated the records before proposing them, so a refusal here is the disk
    // (or a deleted shard): applying past it would skip records the other replicas keep.
    // Appends queued after it are refused by the journal (each must start where the one
    // before ends), so nothing of the entries after it is stored either.
    if matches!(error, sluice_engine::EngineError::UnknownShard(_)) {
        // DeleteStream took the shard out of the journal before its group stopped.
        tracing::info!(shard = group.uid, index, "replication: the shard was deleted; its applier stops");
        return;
    }
    if matches!(error, sluice_engine::EngineError::Closed) {
        // The node is stopping: its journal closed (`Journal::close`) under the applier, which
        // finds its place again from the journal at the next start. Every clean stop under
        // writes logged this as an error, one line per shard.
        tracing::info!(
            shard = group.uid,
            index,
            "replication: the journal closed (the node is stopping); the applier stops"
        );
        return;
    }
    tracing::error!(shard = group.uid, index, %error, "replication: applying a committed entry failed; the shard stops applying");
}

/// On the shards' core, in cluster mode: proposes each shard's admitted records as one entry
/// of its group and answers per record once the entry is committed and applied here; `None`
/// for a record whose entry came after its shard's seal (stored nowhere: route it again).
pub async fn append(node: &Rc<Node>, records: Vec<AppendRecord>) -> Vec<Option<Result<Appended, KinesisError>>> {
    let Some(core) = crate::ops::cluster::core() else {
        return records
            .iter()
            .map(|_| Some(Err(KinesisError::internal("replication is not running on this core"))))
            .collect();
    };
    let mut outcomes: Vec<Option<Result<Appended, KinesisError>>> = vec![None; records.len()];
    // Per shard, in request order: positions and records.
    let mut by_shard: BTreeMap<u64, (Vec<usize>, Vec<AppendRecord>)> = BTreeMap::new();
    for (position, record) in records.into_iter().enumerate() {
        let (positions, shard_records) = by_shard.entry(record.shard_uid).or_default();
        positions.push(position);
        shard_records.push(record);
    }
    let now_ms = node.now_ms();
    let proposals: Vec<_> = by_shard
        .into_iter()
        .map(|(uid, (positions, shard_records))| {
            let group = core.group(uid);
            let core = core.clone();
            let task = glommio::spawn_local(async move {
                let Some(group) = group else {
                    return Err(KinesisError::internal(format!(
                        "shard {uid} has no replication group here yet; retry"
                    )));
                };
                propose(&core, &group, now_ms, &shard_records).await
            });
            (positions, task)
        })
        .collect();
    for (positions, task) in proposals {
        match task.await {
            Ok(Some(acks)) => {
                for (position, ack) in positions.into_iter().zip(acks) {
                    outcomes[position] = Some(Ok(ack));
                }
            }
            Ok(None) => {}
            Err(error) => {
                for position in positions {
                    outcomes[position] = Some(Err(error.clone()));
                }
            }
        }
    }
    outcomes
}

/// Proposes `records` (of `group`'s shard) as one entry and answers once it is committed and
/// its outcome decided here ([`apply_committed`]): the records' acknowledgements, or `None`
/// if the shard was sealed before it.
pub async fn propose(
    core: &crate::ops::cluster::ClusterCore,
    group: &ShardGroup,
    now_ms: i64,
    records: &[AppendRecord],
) -> Outcome {
    let records: Vec<EntryRecord> = records
        .iter()
        .map(|record| EntryRecord {
            partition_key: record.partition_key.clone(),
            data: record.data.clone(),
            sealed: record.sealed,
        })
        .collect();
    if entry::encoded_bytes(&records) > APPEND_DATA_BYTES_MAX {
        return Err(KinesisError::internal("the shard's records of this request exceed one replicated entry"));
    }
    let appended = group.host.append(entry::encode(now_ms, &records)).await.map_err(|error| match error {
        // A forwarded request, or forwarding unavailable (see `forward`): the client retries,
        // on this node or the one named.
        AppendError::NotLeader { leader } => core.not_leader(&format!("shard uid {}", group.uid), leader),
        other => KinesisError::internal(format!("Replication of shard uid {}: {other}; retry", group.uid)),
    })?;
    if !group.decided.wait(appended.index, Duration::from_millis(APPEND_COMMIT_WAIT_MS)).await {
        return Err(KinesisError::internal(format!(
            "Shard uid {}'s entry {} committed but was not applied within {APPEND_COMMIT_WAIT_MS} ms; retry",
            group.uid, appended.index
        )));
    }
    match group.decided.take(appended.index) {
        Some(outcome) => outcome,
        // Kept only for `APPLIED_OUTCOMES_KEPT_MAX` entries, or the applier stopped.
        None => Err(KinesisError::internal(format!(
            "Shard uid {}'s entry {} committed, but its outcome is unknown here; it may be stored",
            group.uid, appended.index
        ))),
    }
}
