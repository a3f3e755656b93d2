//! The deterministic cluster simulation (feature `simulation`, tests only): replicas on the
//! engine's `SimExecutor`, each with its own `SimDisk` (its machine's disk), joined by a
//! simulated network that drops, duplicates, delays (and so reorders) and partitions messages
//! (a node cut off both ways; with [`SimConfig::link_cut_one_in`], partial cuts too: a node
//! that hears nobody, one nobody hears, one link cut), while a driver crashes and restarts
//! nodes (process kills and power losses) and proposes entries. Everything is a function of
//! one seed, so a failure replays exactly.
//!
//! The driver also replaces members: it kills one for good (its machine is gone) and starts a
//! new node in its place, which the leader adds as a learner (it restores a snapshot), then
//! promotes while it removes the dead one (a joint membership, which raft-rs leaves by
//! itself).
//!
//! The checker sees every commit and every election as it happens and holds Raft to its
//! promises: an entry once reported committed never changes, and is in the log of every later
//! leader (leader completeness); after the faults stop and the cluster heals, every
//! acknowledged entry is committed on every node, and still there after every node loses
//! power at once. Read indexes (`Input::ReadIndex`), asked of random members (the newest
//! leader half the time, deposed or not), must never come back below an entry some node
//! reported committed before they were asked: a read there would miss it. The outcome reports
//! the longest stretch of rounds without a new commit while the faults went on, which a run
//! with partial cuts alone bounds (a majority still reaches itself both ways, so it must keep
//! committing).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::{ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState, Entry, Message};
use sluice_engine::checksum::xxh3_64_with_seed;
use sluice_engine::clock::{Clock, ManualClock};
use sluice_engine::journal::{AppendRecord, Journal, JournalConfig, ShardSpec, StoredRecord};
use sluice_engine::sequence::ShardSeqPrefix;
use sluice_engine::sim::{DiskConfig, RunOutcome, SimDisk, SimExecutor, SimRng, SimStorage, SimTask};
use sluice_engine::storage::{read_whole, Storage};
use sluice_engine::EngineError;

use crate::codec;
use crate::durable_log::DurableLog;
use crate::error::ClusterError;
use crate::journal_log::{self, EntryCodec, JournalLog};
use crate::limits::{COPY_ANSWER_WAIT_MS, ELECTION_TICKS, INBOX_INPUTS_MAX, TICK_INTERVAL_MS};
use crate::log_storage::LogStorage;
use crate::log_store::LogStore;
use crate::raft_files;
use crate::replica::{
    Input, Reopen, Replica, ReplicaConfig, ReplicaEvents, Restored, Restoring, SnapshotToRestore, Transport,
};
use crate::transport::RunsAsked;
use sluice_engine::format::RaftPosition;

/// Bytes of entries each replica keeps in memory: about three of the simulation's, so that
/// followers behind are sent entries read back from disk, and appliers read old ones there.
const ENTRY_CACHE_BYTES: usize = 2 << 10;

/// Bytes of a log segment: a few of the simulation's entries, so that logs are compacted
/// (and segments deleted) many times in every run.
const SEGMENT_BYTES: usize = 4 << 10;

/// Bytes of log a member behind holds back on the others: two segments, so that a member down
/// for a while is often sent a snapshot when it returns.
const LAGGARD_HELD_BYTES_MAX: u64 = 2 * SEGMENT_BYTES as u64;

/// A snapshot's restore copies up to this many pieces from its sender, one after the other.
const COPY_PIECES_MAX: u64 = 4;
/// Runs a page of the peer's run list holds at most, with the log in the journal.
const PEER_RUNS_PAGE: u32 = 32;
/// Records a piece of a restore's copy holds at most, with the log in the journal.
const COPY_PIECE_RECORDS_MAX: u64 = 16;
/// Rounds a piece takes while the sender is reachable.
const COPY_PIECE_ROUNDS: u64 = 2;
/// Rounds a restoring member waits for a piece before it gives up on the snapshot: the host's
/// wait (`COPY_ANSWER_WAIT_MS`), a round for a tick (a round ticks 3 times in 4).
const COPY_ANSWER_WAIT_ROUNDS: u64 = COPY_ANSWER_WAIT_MS / TICK_INTERVAL_MS;

/// How hostile a run is. Probabilities are `1 / n` per round (0: never).
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nodes: u64,
    /// Rounds with faults; each round every live node may tick, due messages arrive, and
    /// the nodes run for `yields_per_round` scheduler picks of the driver.
    pub rounds: u64,
    pub yields_per_round: u64,
    pub drop_one_in: u64,
    pub duplicate_one_in: u64,
    /// A message arrives 1 to `delay_rounds_max` rounds after it was sent.
    pub delay_rounds_max: u64,
    pub crash_one_in: u64,
    /// A crash is a power loss (unsynced bytes may go) one time in this many; else a kill.
    pub power_loss_one_in: u64,
    pub down_rounds_max: u64,
    pub partition_one_in: u64,
    pub partition_rounds_max: u64,
    /// The leader is asked to hand its leadership to another member (leader balancing's
    /// transfer, done only if that member is caught up).
    pub transfer_one_in: u64,
    pub propose_one_in: u64,
    /// Each disk call fails (EIO, torn or short write, ENOSPC) with probability `1 / n`.
    pub disk_fail_one_in: u64,
    /// Most scheduler yields a disk call takes.
    pub disk_yields_max: u64,
    /// Rounds the healed, fault-free cluster gets to commit every acknowledged entry everywhere.
    pub settle_rounds_max: u64,
    /// The replicas' `laggard_held_bytes_max`: logs are compacted past a member this far
    /// behind, which is sent a snapshot (`None`: every member is waited for).
    pub laggard_held_bytes_max: Option<u64>,
    /// Members replaced by new nodes during the faults (one at a time), and the chance per
    /// round that the next replacement starts.
    pub replacements: u64,
    pub replace_one_in: u64,
    /// Bytes of a log segment (small by default, so that logs are compacted often).
    pub segment_bytes: usize,
    /// A read index is asked of a live member (its answer checked: [`Checker`]). Drawn from
    /// a generator of their own, so that with 0 a seed runs as it did before reads existed.
    pub read_index_one_in: u64,
    /// The member that campaigns when the group is new (`ReplicaConfig::campaigns_when_new`),
    /// if any.
    pub campaigner: Option<u64>,
    /// A partial cut starts (or the one under way heals) with probability `1 / n` per round
    /// (0: never): one node hears nobody, or nobody hears it, or one link is cut both ways,
    /// while every other message goes through ([`LinkCut`]). Drawn from a generator of their
    /// own, so that with 0 a seed runs as it did before partial cuts existed.
    pub link_cut_one_in: u64,
    /// Each member keeps the group's log in a journal on its disk ([`JournalLog`], one shard)
    /// instead of a [`DurableLog`]; it compacts every this many entries. `None`: a
    /// `DurableLog`, as before the journal's view existed.
    pub journal_log_compact_entries: Option<u64>,
    /// A proposal is a fence one time in this many (0: never): its value has [`FENCE_BIT`] set,
    /// and a member that keeps its log in a journal stores no records for any entry after it
    /// (a reshard's seal). Drawn from a generator of their own, so that with 0 a seed runs as it
    /// did before fences existed.
    pub fence_one_in: u64,
    /// With the log in the journal: its records expire after this many rounds of the clock
    /// (each round is [`ROUND_MS`]), and each member runs a retention pass every
    /// [`RETENTION_PASS_EVERY_ROUNDS`]. `None`: nothing expires.
    pub journal_retention_rounds: Option<u64>,
}

/// Clock time per round, milliseconds: about a tick's (a node ticks in 3 rounds of 4).
pub const ROUND_MS: i64 = TICK_INTERVAL_MS as i64;

/// Rounds between two retention passes of a member ([`SimConfig::journal_retention_rounds`]).
pub const RETENTION_PASS_EVERY_ROUNDS: u64 = 5;

/// The clock's time before the first round.
const CLOCK_START_MS: i64 = 1_000_000;

/// A retention under which nothing expires.
const KEPT_FOR_EVER_MS: i64 = 1 << 40;

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            nodes: 3,
            rounds: 600,
            yields_per_round: 12,
            drop_one_in: 10,
            duplicate_one_in: 20,
            delay_rounds_max: 4,
            crash_one_in: 60,
            power_loss_one_in: 2,
            down_rounds_max: 60,
            partition_one_in: 80,
            partition_rounds_max: 80,
            transfer_one_in: 40,
            propose_one_in: 2,
            disk_fail_one_in: 3_000,
            disk_yields_max: 2,
            settle_rounds_max: 3_000,
            laggard_held_bytes_max: Some(LAGGARD_HELD_BYTES_MAX),
            replacements: 1,
            replace_one_in: 100,
            segment_bytes: SEGMENT_BYTES,
            read_index_one_in: 3,
            campaigner: None,
            link_cut_one_in: 0,
            journal_log_compact_entries: None,
            fence_one_in: 0,
            journal_retention_rounds: None,
        }
    }
}

/// What a run did, for the test's report and the replay check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimOutcome {
    /// A hash of every event, every disk's operation trace and durable bytes: equal for two
    /// runs of one seed.
    pub digest: u64,
    pub proposed: u64,
    pub acknowledged: u64,
    pub elections_checked: u64,
    pub crashes: u64,
    pub power_losses: u64,
    pub storage_failures: u64,
    pub partitions: u64,
    /// Leader transfers asked for (each done only if the new leader was caught up).
    pub transfers: u64,
    pub messages_sent: u64,
    pub messages_dropped: u64,
    /// Entries leaders read back from disk to send to followers behind their caches.
    pub entries_read_from_disk: u64,
    /// Log segments deleted by compaction, on all nodes.
    pub segments_deleted: u64,
    /// Compactions past entries whose records expired ([`SimConfig::journal_retention_rounds`]).
    pub gone_compactions: u64,
    /// Journal segments the members' retention passes deleted.
    pub retention_segments_deleted: u64,
    /// Snapshots installed by members behind the others' logs.
    pub snapshots_installed: u64,
    /// Members replaced by new nodes (the new one a voter, the old one removed).
    pub replacements_done: u64,
    /// Read indexes answered (each checked against what was committed before it was asked).
    pub reads_answered: u64,
    /// Restores given up on: the sender died or was cut off while a member copied from it.
    pub restores_failed: u64,
    /// Restores whose copy started past the member's published end (the peer's retention took
    /// the records between): the shard restarted past the gap.
    pub restores_past_gaps: u64,
    /// Restores into the journal refused: the member's records reach into the peer's where
    /// the peer's retention took those it would compare (`journal_log::plan_restore`).
    pub restores_refused: u64,
    /// Restores into the journal a crash cut short ([`RESTORE_CUT_ONE_IN`]).
    pub restores_cut_short: u64,
    /// Members that opened their log with a restore's record left (`journal_log::RESTORE_FILE`):
    /// a crash cut the restore short after it wrote it.
    pub restores_settled: u64,
    /// Members whose log a restore changed before its peer stopped answering, opened again
    /// in place by their replica, their process running on (`Replica::run_reopening`).
    pub logs_reopened: u64,
    /// The round in which a leader was first known, and that leader.
    pub first_leader: Option<(u64, u64)>,
    /// Partial cuts made ([`SimConfig::link_cut_one_in`]).
    pub link_cuts: u64,
    /// The most rounds in a row, while the faults went on, in which nothing new was committed
    /// (the availability a run kept: with crashes or whole partitions a stall can be right,
    /// with partial cuts alone a majority can always commit).
    pub longest_commit_gap: u64,
}

/// A partial cut of the network ([`SimConfig::link_cut_one_in`]): what a firewall rule on one
/// direction, or a broken cable between two machines, does. The node is a node index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkCut {
    /// Nothing reaches the node (it still sends).
    Deaf(usize),
    /// Nothing the node sends arrives (it still hears everyone).
    Mute(usize),
    /// The two nodes do not reach each other; each reaches everyone else.
    Link(usize, usize),
}

impl LinkCut {
    /// Whether a message from node index `from` to `to` is lost to this cut.
    fn loses(self, from: usize, to: usize) -> bool {
        match self {
            LinkCut::Deaf(node) => to == node,
            LinkCut::Mute(node) => from == node,
            LinkCut::Link(one, other) => (from, to) == (one, other) || (from, to) == (other, one),
        }
    }

    /// The words the checker's digest notes for it.
    fn words(self) -> [u64; 4] {
        match self {
            LinkCut::Deaf(node) => [13, 1, node as u64, 0],
            LinkCut::Mute(node) => [13, 2, node as u64, 0],
            LinkCut::Link(one, other) => [13, 3, one as u64, other as u64],
        }
    }
}

/// A client entry: its value (unique per proposal), its arrival time (the clock's when it
/// was proposed, which a journal keeps as its record's), then filler derived from the value,
/// so that the checker can tell a byte-exact copy from a damaged one.
fn client_entry(value: u64, arrival_ms: i64, length: usize) -> Vec<u8> {
    let mut data = value.to_le_bytes().to_vec();
    data.extend(arrival_ms.to_le_bytes());
    data.extend((0..length).map(|at| (value as usize).wrapping_mul(31).wrapping_add(at) as u8));
    data
}

fn client_value(data: &[u8]) -> u64 {
    assert!(data.len() >= 16, "a client entry of {} bytes", data.len());
    let value = u64::from_le_bytes(data[..8].try_into().expect("eight bytes"));
    assert_eq!(data, client_entry(value, client_arrival_ms(data), data.len() - 16), "entry {value} came back changed");
    value
}

fn client_arrival_ms(data: &[u8]) -> i64 {
    i64::from_le_bytes(data[8..16].try_into().expect("eight bytes"))
}

const JOURNAL_DIR: &str = "/sluice/journal";
/// The group's shard, in the journal of each member that keeps its log there.
const SHARD_UID: u64 = 1;

/// The simulation's entries as a journal keeps them: a client entry is one record (its bytes
/// whole); the leaders' empty entries and the membership changes hold none.
struct ClientEntries;

/// Set in the value of a client entry that is a fence ([`SimConfig::fence_one_in`]).
pub const FENCE_BIT: u64 = 1 << 63;

impl EntryCodec for ClientEntries {
    fn records(&self, shard_uid: u64, data: &Bytes) -> Option<(i64, Vec<AppendRecord>)> {
        let partition_key = Bytes::from_static(b"k");
        let record = AppendRecord { shard_uid, partition_key, data: data.clone(), sealed: false };
        (!data.is_empty()).then(|| (client_arrival_ms(data), vec![record]))
    }

    fn entry(&self, records: &[StoredRecord]) -> Bytes {
        records[0].data.clone()
    }

    fn fences(&self, data: &Bytes) -> bool {
        is_fence_entry(data)
    }
}

/// Whether a committed entry's data is a fence's ([`FENCE_BIT`]).
fn is_fence_entry(data: &[u8]) -> bool {
    data.get(..8).is_some_and(|value| u64::from_le_bytes(value.try_into().expect("eight bytes")) & FENCE_BIT != 0)
}

/// A journal with the group's shard, and the log in it.
type OpenedJournalLog = (Journal<SimStorage>, JournalLog<SimStorage, ClientEntries>, LogStore);

/// Opens the journal on a member's disk, with the group's shard (whose records expire after
/// `retention_ms` of `clock`), and the log in it.
async fn open_journal_log(
    storage: SimStorage,
    segment_bytes: usize,
    conf_state: ConfState,
    cache_bytes_max: usize,
    clock: ManualClock,
    retention_ms: i64,
) -> Result<OpenedJournalLog, ClusterError> {
    let mut config = JournalConfig::new(JOURNAL_DIR);
    config.segment_bytes_max = segment_bytes as u64;
    config.tail_cache_bytes_max = 0;
    let journal = Journal::open_in(storage.clone(), config, std::sync::Arc::new(clock)).await?;
    let seq_prefix = ShardSeqPrefix::new(1_700_000_000, 0);
    journal.register_shard(ShardSpec { uid: SHARD_UID, seq_prefix, retention_ms });
    let (log, store) = open_log_in(journal.clone(), storage, conf_state, cache_bytes_max).await?;
    Ok((journal, log, store))
}

/// Opens the group's log in `journal` (when the member starts, and again in place after a
/// restore changed the journal under it).
async fn open_log_in(
    journal: Journal<SimStorage>,
    storage: SimStorage,
    conf_state: ConfState,
    cache_bytes_max: usize,
) -> Result<(JournalLog<SimStorage, ClientEntries>, LogStore), ClusterError> {
    let dir = Path::new(RAFT_DIR);
    JournalLog::open(journal, SHARD_UID, ClientEntries, storage, dir, conf_state, cache_bytes_max).await
}

/// A member's retention passes, one per message on `passes` (`SimConfig::journal_retention_rounds`),
/// counting the segments they delete in `deleted`.
async fn retention_passes(journal: Journal<SimStorage>, passes: async_channel::Receiver<()>, deleted: Rc<Cell<u64>>) {
    while passes.recv().await.is_ok() {
        // A pass that failed (an injected disk fault) deleted less: the next one goes on.
        if let Ok(segments) = journal.enforce_retention().await {
            deleted.set(deleted.get() + segments as u64);
        }
    }
}

/// Whether `error` may stop a replica in the simulation: a failure the simulated disk
/// injected, not a corrupt log (a format or recovery bug) nor a refusal of the journal (the
/// log asked it for something Raft never does) nor raft-rs refusing its state.
fn injected_failure(error: &ClusterError) -> bool {
    match error {
        ClusterError::Io { .. } => true,
        ClusterError::Journal(error) => {
            matches!(error, EngineError::Io { .. } | EngineError::DiskFull { .. } | EngineError::WriteFailed { .. })
        }
        _ => false,
    }
}

/// Everything the nodes reported, and the invariants over it.
#[derive(Default)]
struct Checker {
    /// Every entry any node reported committed, by index: (term, data).
    committed: BTreeMap<u64, (u64, Vec<u8>)>,
    /// Client values acknowledged (committed somewhere), and at which index.
    acknowledged: BTreeMap<u64, u64>,
    /// Where the replica that took each client value's proposal said it put it
    /// (`ReplicaEvents::proposed`; `None`: dropped). A host answers its clients from this: a
    /// value commits only there, so another entry committed at that index means the value is
    /// in no log for good.
    placed: BTreeMap<u64, Option<RaftPosition>>,
    /// The value placed at each (index, term): the entry committed there, if any, must be it,
    /// which is how a host tells its proposal's entry without its context (Raft's log
    /// matching property).
    placed_at: BTreeMap<(u64, u64), u64>,
    /// Per node, how far its reports since its last boot go (they come contiguously from the
    /// commit it opened with).
    reported_to: BTreeMap<u64, u64>,
    /// With the log in the journal, each committed entry's place (the first record index of
    /// its records) as the first member to report it gave it, and that member: every member
    /// must report the same, or a record would have other sequence numbers on another member,
    /// and a proposer told by its own member would answer its client with the wrong ones.
    places: Option<BTreeMap<u64, (u64, u64)>>,
    /// Per node, how far its state machine goes (the checker, which never forgets: the most
    /// it ever reported or restored).
    held: BTreeMap<u64, u64>,
    /// Per node, the snapshot its state machine last restored (an install must follow one).
    restoring: BTreeMap<u64, u64>,
    /// Nodes whose restore's disk failed (or a crash cut it short) after it may have changed
    /// their journal, each with whether it loses power: stopped at the next round.
    doomed: BTreeMap<u64, bool>,
    /// Per node, its membership and the entry that made it.
    membership: BTreeMap<u64, (u64, ConfState)>,
    /// The membership each entry (or snapshot) made, as the first node to apply it saw it:
    /// every other must see the same.
    memberships: BTreeMap<u64, Membership>,
    /// The entries that were membership changes: some node applied one there (as opposed to
    /// a snapshot's membership, or the one a node found on its disk when it started).
    changed_by_entry: std::collections::BTreeSet<u64>,
    /// Nodes started (or whose replica opens its log again in place) whose replica has not
    /// opened yet.
    starting: std::collections::BTreeSet<u64>,
    /// Nodes that joined the running group: each must start from a snapshot, never from the
    /// log's first entry (`Replica::seeded`).
    joiners: std::collections::BTreeSet<u64>,
    /// The newest leader seen: (term, node).
    leader: Option<(u64, u64)>,
    elections_checked: u64,
    entries_read_from_disk: u64,
    segments_deleted: u64,
    gone_compactions: u64,
    snapshots_installed: u64,
    restores_failed: u64,
    restores_past_gaps: u64,
    restores_refused: u64,
    restores_cut_short: u64,
    digest: u64,
}

impl Checker {
    fn note(&mut self, words: &[u64]) {
        let bytes: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
        self.digest = xxh3_64_with_seed(&bytes, self.digest);
    }

    fn committed(&mut self, node_id: u64, entries: &[Entry], places: &[Option<u64>]) {
        for (entry, place) in entries.iter().zip(places) {
            if let Some(agreed) = &mut self.places {
                let place =
                    place.unwrap_or_else(|| panic!("node {node_id} reported entry {} without a place", entry.index));
                let (first, first_node) = *agreed.entry(entry.index).or_insert((place, node_id));
                assert_eq!(
                    place, first,
                    "entry {}'s records start at record {place} on node {node_id}, at {first} on node {first_node} \
                     (reported as committed)",
                    entry.index
                );
            }
            let reported = self.reported_to.entry(node_id).or_insert(0);
            assert_eq!(entry.index, *reported + 1, "node {node_id} reported commits out of order");
            assert!(
                entry.index > 1 || !self.joiners.contains(&node_id),
                "node {node_id} joined the group and replayed its log from the first entry"
            );
            *reported = entry.index;
            let held = self.held.entry(node_id).or_insert(0);
            *held = (*held).max(entry.index);
            self.note(&[1, node_id, entry.index, entry.term]);
            match self.committed.get(&entry.index) {
                Some((term, data)) => assert!(
                    *term == entry.term && data[..] == entry.data[..],
                    "entry {} committed twice differently: term {term} then {} (node {node_id})",
                    entry.index,
                    entry.term
                ),
                None => {
                    self.committed.insert(entry.index, (entry.term, entry.data.to_vec()));
                    let value = (!entry.data.is_empty()).then(|| client_value(&entry.data));
                    let placed_here = self.placed_at.get(&(entry.index, entry.term)).copied();
                    assert!(
                        placed_here.is_none() || placed_here == value,
                        "entry {} of term {} holds {value:?}, but value {placed_here:?} was placed there",
                        entry.index,
                        entry.term
                    );
                    if let Some(value) = value {
                        let earlier = self.acknowledged.insert(value, entry.index);
                        assert!(earlier.is_none(), "value {value} committed at {earlier:?} and {}", entry.index);
                        let placed = self.placed.get(&value).copied().flatten();
                        assert_eq!(
                            placed,
                            Some(RaftPosition { term: entry.term, index: entry.index }),
                            "value {value} committed at {}, its proposal was reported placed at {placed:?}",
                            entry.index
                        );
                    }
                }
            }
        }
    }

    /// A member is restoring its state machine (the checker) from a peer: the snapshot must be
    /// of an entry committed with that term, and its sender must have reported it (its state
    /// machine holds it).
    fn restore(&mut self, node_id: u64, snapshot: &SnapshotToRestore) {
        self.note(&[8, node_id, snapshot.index, snapshot.term, snapshot.from]);
        let committed = self.committed.get(&snapshot.index).map(|(term, _)| *term);
        assert_eq!(
            committed,
            Some(snapshot.term),
            "node {node_id} was sent a snapshot at {} of term {} by node {}, which is not a committed entry",
            snapshot.index,
            snapshot.term,
            snapshot.from
        );
        self.restoring.insert(node_id, snapshot.index);
        let sender = self.held.get(&snapshot.from).copied().unwrap_or(0);
        assert!(
            sender >= snapshot.index,
            "node {} sent a snapshot at {} but its state machine holds only up to {sender}",
            snapshot.from,
            snapshot.index
        );
    }

    /// The snapshot is installed: the node's reports continue after it.
    fn restored(&mut self, node_id: u64, index: u64) {
        self.note(&[9, node_id, index]);
        // raft-rs installed it only after the state machine restored it (`Replica::restore_snapshot`).
        assert_eq!(
            self.restoring.remove(&node_id),
            Some(index),
            "node {node_id} installed a snapshot it did not restore"
        );
        let reported = self.reported_to.entry(node_id).or_insert(0);
        assert!(*reported < index, "node {node_id} installed a snapshot at {index}, already past it at {reported}");
        *reported = index;
        let held = self.held.entry(node_id).or_insert(0);
        *held = (*held).max(index);
        self.snapshots_installed += 1;
    }

    fn opened(&mut self, node_id: u64, commit: u64) {
        self.starting.remove(&node_id);
        self.note(&[5, node_id, commit]);
        self.reported_to.insert(node_id, commit);
    }

    /// Leader completeness: every committed entry is in the new leader's log. By Raft's log
    /// matching, an entry of the same index and term is the same entry (the data of each
    /// committed entry is checked where nodes report it).
    fn became_leader(&mut self, node_id: u64, term: u64, log: &LogStore) {
        let last_index = log.last_index();
        self.note(&[2, node_id, term, last_index]);
        self.elections_checked += 1;
        // Entries compacted away were held by every member (`Replica::compact`).
        let from = log.first_index() - 1;
        for (&index, (committed_term, _)) in self.committed.range(from..) {
            let held = log.term_of(index).unwrap_or_else(|| {
                panic!("leader {node_id} of term {term} lacks committed entry {index} (its log ends at {last_index})")
            });
            assert!(
                held == *committed_term,
                "leader {node_id} of term {term} holds an entry of term {held} at committed index {index} (term {committed_term})"
            );
        }
        if self.leader.is_none_or(|(newest, _)| term > newest) {
            self.leader = Some((term, node_id));
        }
    }
}

#[derive(Clone)]
struct Events {
    checker: Rc<RefCell<Checker>>,
    network: Rc<RefCell<Network>>,
    /// Every running member's journal (with the log in the journal), and the storage of its
    /// process: a peer's copy runs there, and dies with it.
    journals: Journals,
    /// Draws which restores into the journal a crash cuts short, and where
    /// ([`RESTORE_CUT_ONE_IN`]).
    restore_cuts: Rc<RefCell<SimRng>>,
}

/// One restore into the journal in this many is cut short by a crash of the restoring member
/// (a kill or a power loss, drawn), after up to [`RESTORE_CUT_YIELDS_MAX`] scheduler yields
/// of its writing: `journal_log::ShardRestore` must leave a journal its log reopens from, whatever
/// part of it was durable.
const RESTORE_CUT_ONE_IN: u64 = 3;
const RESTORE_CUT_YIELDS_MAX: u64 = 400;
/// One restore in this many of the others loses its peer's answers after fewer than
/// [`RESTORE_PEER_LOST_PIECES_MAX`] pieces of at most [`RESTORE_PEER_LOST_PIECE_RECORDS_MAX`]
/// records (small, so that a copy is lost halfway): once its journal changed, its replica
/// must open the log again in place (`Replica::run_reopening`).
const RESTORE_PEER_LOST_ONE_IN: u64 = 3;
const RESTORE_PEER_LOST_PIECES_MAX: u64 = 4;
const RESTORE_PEER_LOST_PIECE_RECORDS_MAX: u64 = 4;

/// Each running member's journal by node id, with its process' storage.
type Journals = Rc<RefCell<BTreeMap<u64, (SimStorage, Journal<SimStorage>)>>>;

/// One piece of a restore's copy: the peer's records from `next` (at most `records_max`, none
/// at or past `end`), with their Raft positions. `None` if they expired meanwhile, or the
/// peer's disk failed.
async fn copy_piece(journal: Journal<SimStorage>, next: u64, end: u64, records_max: u64) -> Option<Vec<StoredRecord>> {
    let count = (end - next).min(records_max) as usize;
    let batch = journal.read_log(SHARD_UID, next, count, usize::MAX).await.ok()?;
    let records: Vec<StoredRecord> = batch.records.into_iter().take(count).collect();
    let contiguous = records.iter().zip(next..).all(|(record, index)| record.sequence_number.record_index() == index);
    (!records.is_empty() && contiguous).then_some(records)
}

/// Runs `writing` unless the crash drawn for it comes first ([`RESTORE_CUT_ONE_IN`]): after
/// `yields` more scheduler yields of the restore's writing (counted down across calls), then
/// `None`.
async fn or_cut_short<T>(writing: impl Future<Output = T>, yields: &Cell<Option<u64>>) -> Option<T> {
    let cut = async {
        let Some(mut left) = yields.get() else { return std::future::pending().await };
        while left > 0 {
            futures_lite::future::yield_now().await;
            left -= 1;
            yields.set(Some(left));
        }
        None
    };
    futures_lite::future::or(async { Some(writing.await) }, cut).await
}

/// Runs `work` on the journal of node `from`, as a task of its process (it dies with it), and
/// waits for its answer while the two are reachable: `None` if `from` is not running, or no
/// answer came within [`COPY_ANSWER_WAIT_ROUNDS`].
async fn ask_peer<T: 'static, F: Future<Output = Option<T>> + 'static>(
    journals: &Journals,
    network: &Rc<RefCell<Network>>,
    (node_id, from): (u64, u64),
    work: impl FnOnce(Journal<SimStorage>) -> F,
) -> Option<T> {
    let (answer, answered) = async_channel::bounded(1);
    let asked = network.borrow().now;
    {
        let journals = journals.borrow();
        let (storage, journal) = journals.get(&from)?;
        let work = work(journal.clone());
        drop(storage.spawn(async move {
            let _ = answer.try_send(work.await);
        }));
    }
    loop {
        futures_lite::future::yield_now().await;
        if network.borrow().now >= asked + COPY_ANSWER_WAIT_ROUNDS {
            return None;
        }
        if !network.borrow().reachable(node_id, from) {
            continue;
        }
        if let Ok(answer) = answered.try_recv() {
            return answer;
        }
    }
}

impl ReplicaEvents for Events {
    fn opened(&self, node_id: u64, commit: u64) {
        self.checker.borrow_mut().opened(node_id, commit);
    }

    fn proposed(&self, node_id: u64, context: &[u8], placed: Option<RaftPosition>) {
        let value = u64::from_le_bytes(context.try_into().expect("the simulation's contexts are a client value"));
        let mut checker = self.checker.borrow_mut();
        checker.note(&[8, node_id, value, placed.map_or(0, |placed| placed.index)]);
        let earlier = checker.placed.insert(value, placed);
        assert!(earlier.is_none(), "value {value} proposed twice");
        if let Some(RaftPosition { term, index }) = placed {
            let other = checker.placed_at.insert((index, term), value);
            assert!(other.is_none(), "values {other:?} and {value} both placed at entry {index} of term {term}");
        }
    }

    fn committed(&self, node_id: u64, entries: &[Entry], places: &[Option<u64>]) {
        self.checker.borrow_mut().committed(node_id, entries, places);
    }

    fn became_leader(&self, node_id: u64, term: u64, log: &LogStore) {
        self.checker.borrow_mut().became_leader(node_id, term, log);
    }

    fn read_from_disk(&self, node_id: u64, entries: usize) {
        let mut checker = self.checker.borrow_mut();
        checker.note(&[6, node_id, entries as u64]);
        checker.entries_read_from_disk += entries as u64;
    }

    fn compacted(&self, node_id: u64, index: u64, segments: usize) {
        let mut checker = self.checker.borrow_mut();
        checker.note(&[7, node_id, index, segments as u64]);
        checker.segments_deleted += segments as u64;
    }

    fn entries_gone(&self, node_id: u64, index: u64) {
        let mut checker = self.checker.borrow_mut();
        checker.note(&[15, node_id, index]);
        checker.gone_compactions += 1;
    }

    /// The state machine is the checker: restoring it copies nothing, but is checked, and
    /// takes time as a copy from the sender does: 1 to [`COPY_PIECES_MAX`] pieces of
    /// [`COPY_PIECE_ROUNDS`] each, every one needing the sender up and reachable both ways;
    /// a piece not had within [`COPY_ANSWER_WAIT_ROUNDS`] fails the restore, as in `sluiced`.
    /// The replica takes no other input meanwhile, so a sender that died while its follower
    /// copied keeps that follower from voting until then.
    ///
    /// With the log in the journal, the journal is the state machine of the records: the
    /// restore copies the sender's runs and records as `sluiced` would
    /// (`journal_log::peer_runs`, then `plan_restore`, then the records a piece at a time into
    /// a `ShardRestore`, each written as it comes), each page and piece a task of the sender's
    /// process answered within the same wait. A sender lost once the journal changed leaves
    /// the log changed under the replica, which opens it again in place
    /// (`Replica::run_reopening`); a disk failure stops the member's process; and one restore
    /// in [`RESTORE_CUT_ONE_IN`] is cut short by a crash.
    fn restore(&self, node_id: u64, snapshot: SnapshotToRestore) -> Restoring {
        self.checker.borrow_mut().restore(node_id, &snapshot);
        let (checker, network, journals) = (self.checker.clone(), self.network.clone(), self.journals.clone());
        let restore_cuts = self.restore_cuts.clone();
        let (from, pieces) = (snapshot.from, 1 + snapshot.index % COPY_PIECES_MAX);
        let failed = move |checker: &Rc<RefCell<Checker>>| {
            let mut checker = checker.borrow_mut();
            checker.note(&[14, node_id, snapshot.index]);
            checker.restores_failed += 1;
            Restored::Dropped
        };
        Box::pin(async move {
            // The member's journal, if it keeps the log there: then the copy below is the
            // restore; otherwise these pieces stand for the host's copy of its state.
            let own_journal = journals.borrow().get(&node_id).cloned();
            let pieces = if own_journal.is_some() { 0 } else { pieces };
            for _ in 0..pieces {
                let asked = network.borrow().now;
                loop {
                    futures_lite::future::yield_now().await;
                    let network = network.borrow();
                    if network.now >= asked + COPY_PIECE_ROUNDS && network.reachable(node_id, from) {
                        break;
                    }
                    if network.now >= asked + COPY_ANSWER_WAIT_ROUNDS {
                        return failed(&checker);
                    }
                }
            }
            let Some((storage, journal)) = own_journal else { return Restored::Done };
            // A member whose commit reached the snapshot ignores it (raft-rs): its journal stays.
            let commit = checker.borrow().reported_to.get(&node_id).copied().unwrap_or(0);
            if commit >= snapshot.index {
                return Restored::Done;
            }
            let position = RaftPosition { index: snapshot.index, term: snapshot.term };
            let nodes = (node_id, from);
            // The peer's runs from the first entry this member may not hold as the leader does
            // (those up to its commit are the leader's), a page at a time.
            let mut peer: Option<journal_log::PeerRuns> = None;
            while peer.as_ref().is_none_or(|peer| peer.through < position.index) {
                let from = peer.as_ref().map_or(commit + 1, |peer| peer.through + 1);
                // Encoded and decoded as it travels between members (`PeerNetwork::fetch_runs`).
                let page = ask_peer(&journals, &network, nodes, |peer| async move {
                    let asked =
                        RunsAsked { count: PEER_RUNS_PAGE, until_index: position.index, until_term: position.term };
                    let answer = journal_log::answer_runs(&peer, SHARD_UID, from, asked).await;
                    journal_log::decode_peer_runs(&answer)
                        .unwrap_or_else(|error| panic!("a peer's page of runs: {error}"))
                });
                let Some(page) = page.await else { return failed(&checker) };
                match &mut peer {
                    Some(peer) => peer.add(page),
                    None => peer = Some(page),
                }
            }
            let Some(peer) = peer else { return failed(&checker) };
            let plan = match journal_log::plan_restore(&journal, SHARD_UID, peer).await {
                Ok(Some(plan)) => plan,
                Ok(None) => {
                    checker.borrow_mut().restores_refused += 1;
                    return failed(&checker);
                }
                Err(error) if injected_failure(&error) => return failed(&checker),
                Err(error) => panic!("node {node_id} could not plan its restore from node {from}: {error}"),
            };
            if plan.gap.is_some() {
                checker.borrow_mut().restores_past_gaps += 1;
            }
            let fence = checker
                .borrow()
                .committed
                .range(..=snapshot.index)
                .find_map(|(&index, (_, data))| is_fence_entry(data).then_some(index));
            // A crash may cut the restore short: after some yields of its writing, the member
            // stops (a kill, or a power loss). Or the peer's answers are lost after some
            // pieces, as if it died or was cut off.
            let (mut cut, mut power_loss, mut pieces_answered, mut piece_records) =
                (None, false, u64::MAX, COPY_PIECE_RECORDS_MAX);
            {
                let mut rng = restore_cuts.borrow_mut();
                if rng.one_in(RESTORE_CUT_ONE_IN) {
                    (cut, power_loss) = (Some(rng.below(RESTORE_CUT_YIELDS_MAX)), rng.one_in(2));
                } else if rng.one_in(RESTORE_PEER_LOST_ONE_IN) {
                    pieces_answered = rng.below(RESTORE_PEER_LOST_PIECES_MAX);
                    piece_records = 1 + rng.below(RESTORE_PEER_LOST_PIECE_RECORDS_MAX);
                }
            }
            let cut_yields = Cell::new(cut);
            let end = plan.peer.end;
            let host = (&ClientEntries, &storage, Path::new(RAFT_DIR));
            let membership = snapshot.membership.clone();
            let mut restore = journal_log::ShardRestore::new(&journal, SHARD_UID, host, plan, fence, membership);
            // The copy a piece at a time, each written as it comes; `None` once cut short.
            let mut written = Some(Ok(()));
            let mut pieces = 0;
            while matches!(written, Some(Ok(()))) && restore.next_index() < end {
                let next = restore.next_index();
                let answer = match pieces < pieces_answered {
                    true => {
                        ask_peer(&journals, &network, nodes, |peer| copy_piece(peer, next, end, piece_records)).await
                    }
                    false => None,
                };
                pieces += 1;
                let Some(piece) = answer else {
                    // Once its journal changed, the replica opens its log again.
                    let dropped = failed(&checker);
                    return if restore.started() { Restored::LogChanged } else { dropped };
                };
                written = or_cut_short(restore.add(piece), &cut_yields).await;
            }
            if matches!(written, Some(Ok(()))) {
                written = or_cut_short(restore.finish(), &cut_yields).await;
            }
            match &written {
                Some(Ok(())) => return Restored::Done,
                Some(Err(error)) if !injected_failure(error) => {
                    panic!("node {node_id} could not restore its shard from node {from}: {error}")
                }
                Some(Err(_)) => {}
                None => checker.borrow_mut().restores_cut_short += 1,
            }
            // Its disk failed, or a crash cut it short: the member's process stops (a crash may
            // lose power).
            checker.borrow_mut().doomed.insert(node_id, power_loss && written.is_none());
            std::future::pending::<Restored>().await
        })
    }

    fn restored(&self, node_id: u64, index: u64) {
        self.checker.borrow_mut().restored(node_id, index);
    }

    fn membership_changed(&self, node_id: u64, index: u64, conf_state: &ConfState) {
        let mut checker = self.checker.borrow_mut();
        let membership = Membership::of(conf_state);
        let mut words = vec![10, node_id, index];
        words.extend(membership.voters.iter().chain(&membership.learners).chain(&membership.outgoing));
        checker.note(&words);
        if index > 0 {
            // A committed entry is applied before it is reported; a snapshot's index is
            // reported before its membership.
            let reported = checker.reported_to.get(&node_id).copied().unwrap_or(0);
            if !checker.starting.contains(&node_id) && reported < index {
                checker.changed_by_entry.insert(index);
            }
            let first = checker.memberships.entry(index).or_insert_with(|| membership.clone());
            assert_eq!(*first, membership, "node {node_id} has another membership than the others at entry {index}");
        }
        checker.membership.insert(node_id, (index, conf_state.clone()));
    }
}

/// A membership in a form that compares (raft-rs lists ids in no particular order).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Membership {
    voters: Vec<u64>,
    learners: Vec<u64>,
    outgoing: Vec<u64>,
    learners_next: Vec<u64>,
    auto_leave: bool,
}

impl Membership {
    fn of(conf_state: &ConfState) -> Membership {
        let sorted = |ids: &[u64]| {
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids
        };
        Membership {
            voters: sorted(&conf_state.voters),
            learners: sorted(&conf_state.learners),
            outgoing: sorted(&conf_state.voters_outgoing),
            learners_next: sorted(&conf_state.learners_next),
            auto_leave: conf_state.auto_leave,
        }
    }
}

/// The wires between the nodes.
struct Network {
    rng: SimRng,
    now: u64,
    /// (round due, send order) → message: a later message can arrive first.
    in_flight: BTreeMap<(u64, u64), Message>,
    sent: u64,
    dropped: u64,
    /// Per node, its side of a partition: messages between sides are lost.
    sides: Vec<u8>,
    /// The partial cut under way, if any.
    link_cut: Option<LinkCut>,
    /// Per node, whether it runs.
    up: Vec<bool>,
    config: SimConfig,
}

impl Network {
    fn cut(&self, from: u64, to: u64) -> bool {
        let (from, to) = (from as usize - 1, to as usize - 1);
        self.sides[from] != self.sides[to] || self.link_cut.is_some_and(|cut| cut.loses(from, to))
    }

    /// Whether nodes `one` and `other` run and reach each other both ways (as a copy needs).
    fn reachable(&self, one: u64, other: u64) -> bool {
        let up = |id: u64| self.up[id as usize - 1];
        up(one) && up(other) && !self.cut(one, other) && !self.cut(other, one)
    }
}

#[derive(Clone)]
struct SimTransport(Rc<RefCell<Network>>);

impl Transport for SimTransport {
    fn send(&self, message: Message) {
        let mut network = self.0.borrow_mut();
        let network = &mut *network;
        network.sent += 1;
        if network.rng.one_in(network.config.drop_one_in) {
            network.dropped += 1;
            return;
        }
        let copies = if network.rng.one_in(network.config.duplicate_one_in) { 2 } else { 1 };
        for copy in 0..copies {
            let due = network.now + network.rng.range(1, network.config.delay_rounds_max + 1);
            // Unique per copy of each message sent: a key taken twice would replace a message
            // in flight, a loss nobody drew or counted. (Before, `sent * 2 + in_flight.len()`
            // was: 137 messages replaced so in one run of 1,500 rounds.)
            let order = network.sent * 2 + copy;
            let replaced = network.in_flight.insert((due, order), message.clone());
            debug_assert!(replaced.is_none(), "two messages in flight with one key");
        }
    }
}

/// Stops a node's task at its next poll, as SIGKILL stops a process between instructions.
#[derive(Default)]
struct KillSwitch {
    killed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl KillSwitch {
    fn kill(&self) {
        self.killed.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

struct Killable<F: Future> {
    inner: Pin<Box<F>>,
    switch: Rc<KillSwitch>,
}

impl<F: Future> Future for Killable<F> {
    /// `None` if killed.
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        if self.switch.killed.get() {
            return Poll::Ready(None);
        }
        *self.switch.waker.borrow_mut() = Some(context.waker().clone());
        self.inner.as_mut().poll(context).map(Some)
    }
}

struct Running {
    inbox: async_channel::Sender<Input>,
    switch: Rc<KillSwitch>,
    /// Set when the task ends: killed, or stopped by a storage error.
    ended: Rc<Cell<bool>>,
    /// Why the replica stopped by itself, if it did.
    error: Rc<RefCell<Option<ClusterError>>>,
    _task: SimTask<()>,
    /// Asks its journal for a retention pass (`SimConfig::journal_retention_rounds`).
    retention: async_channel::Sender<()>,
}

struct Node {
    id: u64,
    disk: SimDisk,
    running: Option<Running>,
    /// Down until this round.
    down_until: u64,
    /// Not started (a spare, until it replaces a member) or gone for good (replaced).
    out: bool,
    /// Started as a new member of the running group (with no membership of its own).
    joiner: bool,
}

/// A member being replaced: `dead` (gone for good) by `new`, both node indexes.
#[derive(Debug, Clone, Copy)]
struct Replacement {
    dead: usize,
    new: usize,
}

const RAFT_DIR: &str = "/sluice/raft";

/// The replicas' `commit_saved_every_ticks`: few, so that the final check's wait for every
/// member's stored commit to reach what it reported is short.
const COMMIT_SAVED_EVERY_TICKS: usize = 20;

/// Rounds the final check waits after the last member's hard state file is in place, for
/// the directory sync that follows.
const QUIET_ROUNDS_AFTER_SAVED: u64 = 4;

/// A read index asked of node `node_id` when entries up to `floor` were reported committed.
struct Read {
    node_id: u64,
    floor: u64,
    answer: async_channel::Receiver<u64>,
}

struct World {
    executor: SimExecutor,
    rng: SimRng,
    config: SimConfig,
    network: Rc<RefCell<Network>>,
    checker: Rc<RefCell<Checker>>,
    nodes: Vec<Node>,
    next_value: u64,
    outcome: SimOutcome,
    replacing: Option<Replacement>,
    reads_rng: SimRng,
    reads: Vec<Read>,
    /// Draws the partial cuts ([`SimConfig::link_cut_one_in`]).
    cuts_rng: SimRng,
    /// Draws the fences ([`SimConfig::fence_one_in`]).
    fences_rng: SimRng,
    /// [`Events::restore_cuts`].
    restore_cuts: Rc<RefCell<SimRng>>,
    /// Members that opened their log with a restore to settle ([`SimOutcome::restores_settled`]).
    restores_settled: Rc<Cell<u64>>,
    /// [`SimOutcome::logs_reopened`].
    logs_reopened: Rc<Cell<u64>>,
    /// Every member's journal clock (their clocks agree).
    clock: ManualClock,
    /// Each running member's journal ([`Events::journals`]).
    journals: Journals,
    /// Segments the members' retention passes deleted.
    retention_deleted: Rc<Cell<u64>>,
    /// The highest entry committed so far, and the round it was first seen in.
    last_commit: (u64, u64),
}

impl World {
    fn start(&mut self, index: usize) {
        let members: Vec<u64> = self.nodes.iter().map(|node| node.id).collect();
        let node = &mut self.nodes[index];
        let voters = if node.joiner { Vec::new() } else { (1..=self.config.nodes).collect() };
        let config = ReplicaConfig {
            id: node.id,
            voters,
            members,
            election_ticks: {
                let ticks = self.rng.range(ELECTION_TICKS as u64, 2 * ELECTION_TICKS as u64) as usize;
                ticks..ticks + 1
            },
            dir: PathBuf::from(RAFT_DIR),
            entry_cache_bytes: ENTRY_CACHE_BYTES,
            segment_bytes: self.config.segment_bytes,
            laggard_held_bytes_max: self.config.laggard_held_bytes_max,
            campaigns_when_new: self.config.campaigner == Some(node.id),
            commit_saved_every_ticks: COMMIT_SAVED_EVERY_TICKS,
        };
        let storage: SimStorage = node.disk.storage(&self.executor);
        let transport = SimTransport(self.network.clone());
        let events = Events {
            checker: self.checker.clone(),
            network: self.network.clone(),
            journals: self.journals.clone(),
            restore_cuts: self.restore_cuts.clone(),
        };
        self.network.borrow_mut().up[index] = true;
        self.checker.borrow_mut().starting.insert(node.id);
        let (sender, receiver) = async_channel::bounded(INBOX_INPUTS_MAX);
        let switch = Rc::new(KillSwitch::default());
        let ended = Rc::new(Cell::new(false));
        let journal_log = self.config.journal_log_compact_entries;
        let (clock, retention_rounds) = (self.clock.clone(), self.config.journal_retention_rounds);
        let retention_deleted = self.retention_deleted.clone();
        let (journals, node_id) = (self.journals.clone(), node.id);
        let (restores_settled, logs_reopened) = (self.restores_settled.clone(), self.logs_reopened.clone());
        let reopening_checker = self.checker.clone();
        let (retention, retention_asked) = async_channel::bounded(1);
        let serve = async move {
            match journal_log {
                Some(compact_entries) => {
                    let conf_state = ConfState::from((config.voters.clone(), vec![]));
                    let retention_ms = retention_rounds.map_or(KEPT_FOR_EVER_MS, |rounds| rounds as i64 * ROUND_MS);
                    let (segment_bytes, cache_bytes) = (config.segment_bytes, config.entry_cache_bytes);
                    // A restore a crash cut short is settled as the log opens.
                    let restore_file = Path::new(RAFT_DIR).join(journal_log::RESTORE_FILE);
                    if read_whole(&storage, &restore_file).await.is_ok_and(|read| read.is_some()) {
                        restores_settled.set(restores_settled.get() + 1);
                    }
                    let opened = open_journal_log(
                        storage.clone(),
                        segment_bytes,
                        conf_state.clone(),
                        cache_bytes,
                        clock,
                        retention_ms,
                    );
                    let (journal, log, store) = opened.await?;
                    journals.borrow_mut().insert(node_id, (storage.clone(), journal.clone()));
                    // A task of the member's process: it dies with it.
                    drop(storage.spawn(retention_passes(journal.clone(), retention_asked, retention_deleted)));
                    let log = log.compacting_every(compact_entries);
                    // A restore that changed the journal and then lost its peer is settled by
                    // opening the log again on the running journal.
                    let reopen: Reopen<_> = Box::new(move || {
                        logs_reopened.set(logs_reopened.get() + 1);
                        // Its replica opens again: the membership it reports then (the
                        // snapshot's, a restore wrote it first) is no entry's change.
                        reopening_checker.borrow_mut().starting.insert(node_id);
                        let (journal, storage, conf_state) = (journal.clone(), storage.clone(), conf_state.clone());
                        Box::pin(async move {
                            let (log, store) = open_log_in(journal, storage, conf_state, cache_bytes).await?;
                            Ok((log.compacting_every(compact_entries), store))
                        })
                    });
                    Replica::open(log, store, &config, transport, events)?.run_reopening(receiver, reopen).await
                }
                None => {
                    let (log, store) = DurableLog::open_for(storage, &config).await?;
                    Replica::open(log, store, &config, transport, events)?.run(receiver).await
                }
            }
        };
        let killable = Killable { inner: Box::pin(serve), switch: switch.clone() };
        let ended_flag = ended.clone();
        let error = Rc::new(RefCell::new(None));
        let error_slot = error.clone();
        let task = self.executor.spawn(async move {
            if let Some(Err(error)) = killable.await {
                *error_slot.borrow_mut() = Some(error);
            }
            ended_flag.set(true);
        });
        node.running = Some(Running { inbox: sender, switch, ended, error, _task: task, retention });
    }

    /// Kills node `index`'s process (and its machine's power, if `power_loss`), waiting until
    /// its task is gone so that no handle of the old process touches the disk again.
    async fn crash(&mut self, index: usize, power_loss: bool) {
        let Some(running) = self.nodes[index].running.take() else { return };
        self.network.borrow_mut().up[index] = false;
        // Its journal handle dies with its process.
        self.journals.borrow_mut().remove(&self.nodes[index].id);
        running.switch.kill();
        while !running.ended.get() {
            futures_lite::future::yield_now().await;
        }
        drop(running);
        let node = &mut self.nodes[index];
        if power_loss {
            node.disk.power_loss();
            self.outcome.power_losses += 1;
        } else {
            node.disk.kill();
        }
        self.outcome.crashes += 1;
        let id = node.id;
        self.checker.borrow_mut().note(&[3, id, u64::from(power_loss)]);
    }

    fn send(&self, index: usize, input: Input) {
        if let Some(running) = &self.nodes[index].running {
            // A full inbox loses the input, as a full socket buffer would.
            let _ = running.inbox.try_send(input);
        }
    }

    /// The node that won the newest election seen (it may have lost leadership since).
    fn leader_index(&self) -> Option<usize> {
        self.checker.borrow().leader.map(|(_, node_id)| node_id as usize - 1)
    }

    /// Nodes that are members or may become members (neither spares nor replaced).
    fn in_cluster(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&index| !self.nodes[index].out).collect()
    }

    /// The membership the leader last applied, if a leader is known.
    fn leader_membership(&self) -> Option<(usize, ConfState)> {
        let leader = self.leader_index().filter(|&leader| self.nodes[leader].running.is_some())?;
        let checker = self.checker.borrow();
        let (_, conf) = checker.membership.get(&self.nodes[leader].id)?;
        Some((leader, conf.clone()))
    }

    /// Starts a replacement (kills a voter for good, starts a spare in its place) or moves the
    /// one under way along: the leader adds the new node as a learner, then, once it holds
    /// the group's state, makes it a voter and removes the dead one in one joint change.
    async fn replace(&mut self, now: u64, faults: bool) {
        let Some((leader, conf)) = self.leader_membership() else { return };
        let Some(replacement) = self.replacing else {
            let spare = (0..self.nodes.len()).find(|&index| self.nodes[index].out && !self.nodes[index].joiner);
            let wanted = faults && self.outcome.replacements_done < self.config.replacements;
            if !wanted || !self.rng.one_in(self.config.replace_one_in) || !conf.voters_outgoing.is_empty() {
                return;
            }
            // A group of one or two has no quorum without the member replaced.
            let (Some(new), true) = (spare, conf.voters.len() >= 3) else { return };
            let dead_id = conf.voters[self.rng.below(conf.voters.len() as u64) as usize];
            let dead = dead_id as usize - 1;
            self.crash(dead, true).await;
            self.nodes[dead].out = true;
            self.nodes[new].out = false;
            self.nodes[new].joiner = true;
            let new_id = self.nodes[new].id;
            self.checker.borrow_mut().joiners.insert(new_id);
            self.start(new);
            self.checker.borrow_mut().note(&[11, dead_id, new_id, now]);
            self.replacing = Some(Replacement { dead, new });
            return;
        };
        let (dead, new) = (self.nodes[replacement.dead].id, self.nodes[replacement.new].id);
        let single = |change_type: ConfChangeType, node_id: u64| ConfChangeSingle {
            change_type,
            node_id,
            ..ConfChangeSingle::default()
        };
        let change = if conf.voters.contains(&new) && !conf.voters.contains(&dead) && conf.voters_outgoing.is_empty() {
            self.outcome.replacements_done += 1;
            self.replacing = None;
            return;
        } else if !conf.voters_outgoing.is_empty() {
            // raft-rs leaves a joint membership by itself; this only repeats it if a leader
            // change lost the leaving.
            ConfChangeV2::default()
        } else if conf.learners.contains(&new) {
            let checker = self.checker.borrow();
            let added_at = checker.membership.get(&new).map_or(u64::MAX, |(index, _)| *index);
            if checker.held.get(&new).copied().unwrap_or(0) < added_at {
                return;
            }
            ConfChangeV2 {
                changes: vec![single(ConfChangeType::AddNode, new), single(ConfChangeType::RemoveNode, dead)].into(),
                transition: ConfChangeTransition::Auto,
                ..ConfChangeV2::default()
            }
        } else {
            ConfChangeV2 {
                changes: vec![single(ConfChangeType::AddLearnerNode, new)].into(),
                ..ConfChangeV2::default()
            }
        };
        self.send(leader, Input::ChangeMembership(change));
    }

    /// A committed entry read back from a node's log must be a membership change where the
    /// members applied one, and the change they applied: one that changes nothing is raft-rs
    /// leaving a joint membership, which it can only be if the membership before it was
    /// joint. (Neither the kind nor the data of such an entry reaches the checker otherwise:
    /// the replica reports it as an empty entry.)
    fn check_membership_entry(&self, node_id: u64, entry: &Entry) {
        let changed_here = self.checker.borrow().changed_by_entry.contains(&entry.index);
        let is_change = entry.entry_type == raft::eraftpb::EntryType::EntryConfChangeV2;
        assert_eq!(
            is_change, changed_here,
            "node {node_id}: entry {} reads back as {:?}",
            entry.index, entry.entry_type
        );
        if !is_change {
            return;
        }
        let change = ConfChangeV2::parse_from_bytes(&entry.data).unwrap_or_else(|error| {
            panic!("node {node_id}: membership change {} does not decode: {error}", entry.index)
        });
        if !change.changes.is_empty() {
            return;
        }
        let checker = self.checker.borrow();
        let before = checker.memberships.range(..entry.index).next_back().map(|(_, membership)| membership);
        assert!(
            before.is_some_and(|membership| !membership.outgoing.is_empty()),
            "node {node_id}: membership change {} reads back as leaving a joint membership, after {before:?}",
            entry.index
        );
    }

    /// The commit node `index`'s hard state file holds now (0 without one).
    fn stored_commit(&self, index: usize) -> u64 {
        let path = Path::new(RAFT_DIR).join(raft_files::HARD_STATE_FILE);
        let bytes = self.nodes[index].disk.read_file(&path);
        bytes.map_or(0, |bytes| codec::decode_hard_state(&bytes).expect("a hard state written whole").commit)
    }

    fn alive(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&index| self.nodes[index].running.is_some()).collect()
    }

    /// One round: faults, ticks, deliveries, maybe a proposal, then the nodes run.
    async fn round(&mut self, now: u64, faults: bool) {
        self.network.borrow_mut().now = now;
        let doomed = std::mem::take(&mut self.checker.borrow_mut().doomed);
        for (node_id, power_loss) in doomed {
            let index = node_id as usize - 1;
            if self.nodes[index].running.is_some() {
                self.outcome.storage_failures += 1;
                self.crash(index, power_loss).await;
                self.nodes[index].down_until = now + 1;
            }
        }
        self.clock.advance_ms(ROUND_MS);
        if self.config.journal_retention_rounds.is_some() && now.is_multiple_of(RETENTION_PASS_EVERY_ROUNDS) {
            for running in self.nodes.iter().filter_map(|node| node.running.as_ref()) {
                let _ = running.retention.try_send(());
            }
        }
        // A node whose storage failed has stopped itself: its process is gone, the machine not.
        for index in 0..self.nodes.len() {
            if let Some(running) = self.nodes[index].running.as_ref().filter(|running| running.ended.get()) {
                // Only the simulated disk's injected failures may stop a replica: not a
                // corrupt log (our format or recovery is wrong) nor raft-rs refusing its state.
                match running.error.borrow_mut().take() {
                    Some(error) if !injected_failure(&error) => {
                        panic!("node {} stopped: {error}", self.nodes[index].id)
                    }
                    _ => {}
                }
                self.outcome.storage_failures += 1;
                self.crash(index, false).await;
                self.nodes[index].down_until = now + self.rng.range(1, self.config.down_rounds_max + 1);
            }
        }
        self.replace(now, faults).await;
        if faults && self.rng.one_in(self.config.crash_one_in) {
            let alive = self.alive();
            if !alive.is_empty() {
                // The leader half the time: its death is what tests the next election.
                let index = match self.leader_index() {
                    Some(leader) if alive.contains(&leader) && self.rng.coin() => leader,
                    _ => alive[self.rng.below(alive.len() as u64) as usize],
                };
                let power_loss = self.rng.one_in(self.config.power_loss_one_in);
                self.crash(index, power_loss).await;
                self.nodes[index].down_until = now + self.rng.range(1, self.config.down_rounds_max + 1);
            }
        }
        for index in self.in_cluster() {
            if self.nodes[index].running.is_none() && (self.nodes[index].down_until <= now || !faults) {
                self.start(index);
                let id = self.nodes[index].id;
                self.checker.borrow_mut().note(&[4, id, now]);
            }
        }
        if faults && self.rng.one_in(self.config.partition_one_in) {
            let mut network = self.network.borrow_mut();
            if network.sides.iter().all(|&side| side == 0) {
                // Cut one node off (the leader, half the time): a minority and a majority.
                let alone = match self.leader_index() {
                    Some(leader) if self.rng.coin() => leader,
                    _ => self.rng.below(self.nodes.len() as u64) as usize,
                };
                network.sides[alone] = 1;
                self.outcome.partitions += 1;
            } else {
                network.sides.fill(0);
            }
            let sides: Vec<u64> = network.sides.iter().map(|&side| u64::from(side)).collect();
            drop(network);
            self.checker.borrow_mut().note(&sides);
        }
        if faults && self.rng.one_in(self.config.transfer_one_in) {
            if let Some(leader) = self.leader_index().filter(|leader| self.alive().contains(leader)) {
                let others: Vec<u64> =
                    self.nodes.iter().map(|node| node.id).filter(|&id| id != self.nodes[leader].id).collect();
                if !others.is_empty() {
                    let to = others[self.rng.below(others.len() as u64) as usize];
                    self.outcome.transfers += 1;
                    self.send(leader, Input::TransferLeader { to });
                }
            }
        }
        if faults && self.config.link_cut_one_in > 0 && self.cuts_rng.one_in(self.config.link_cut_one_in) {
            self.link_cut();
        }
        if !faults {
            let mut network = self.network.borrow_mut();
            network.sides.fill(0);
            network.link_cut = None;
        }
        for index in self.alive() {
            if self.rng.below(4) != 0 {
                self.send(index, Input::Tick);
            }
            // The state machine is the checker, which holds what a node reported as soon as it
            // reports it; after a restart the node reports again from the commit it stored.
            let reported = self.checker.borrow().reported_to.get(&self.nodes[index].id).copied().unwrap_or(0);
            self.send(index, Input::Compactable { index: reported, state: Bytes::new() });
        }
        loop {
            let due = {
                let mut network = self.network.borrow_mut();
                match network.in_flight.first_key_value() {
                    Some((&(round, _), _)) if round <= now => {
                        let (_, message) = network.in_flight.pop_first().expect("just seen");
                        let lost = network.cut(message.from, message.to);
                        if lost {
                            network.dropped += 1;
                        }
                        Some((message, lost))
                    }
                    _ => None,
                }
            };
            let Some((message, lost)) = due else { break };
            if !lost {
                self.send(message.to as usize - 1, Input::Message(Box::new(message)));
            }
        }
        self.read_index();
        if self.rng.one_in(self.config.propose_one_in) {
            let leader = self.leader_index();
            let alive = self.alive();
            let target = match leader {
                Some(index) if alive.contains(&index) && !self.rng.one_in(8) => Some(index),
                _ if alive.is_empty() => None,
                _ => Some(alive[self.rng.below(alive.len() as u64) as usize]),
            };
            if let Some(index) = target {
                let mut value = self.next_value;
                self.next_value += 1;
                if self.config.fence_one_in > 0 && self.fences_rng.one_in(self.config.fence_one_in) {
                    value |= FENCE_BIT;
                }
                self.outcome.proposed += 1;
                let length = self.rng.below(700) as usize;
                let context = value.to_le_bytes().to_vec();
                let data = client_entry(value, self.clock.now_ms(), length);
                self.send(index, Input::Propose { context, data });
            }
        }
        for _ in 0..self.config.yields_per_round {
            futures_lite::future::yield_now().await;
        }
        if self.outcome.first_leader.is_none() {
            self.outcome.first_leader = self.checker.borrow().leader.map(|(_, node_id)| (now, node_id));
        }
        let newest = self.checker.borrow().committed.keys().next_back().copied().unwrap_or(0);
        if newest > self.last_commit.0 {
            self.last_commit = (newest, now);
        } else if faults {
            self.outcome.longest_commit_gap = self.outcome.longest_commit_gap.max(now - self.last_commit.1);
        }
    }

    /// Starts a partial cut (one node deaf or mute, the leader half the time, or one link
    /// cut), or heals the one under way.
    fn link_cut(&mut self) {
        let members = self.in_cluster();
        let mut network = self.network.borrow_mut();
        let cut = match network.link_cut {
            Some(_) => None,
            None => {
                let rng = &mut self.cuts_rng;
                let leader = self.checker.borrow().leader.map(|(_, node_id)| node_id as usize - 1);
                let node = match leader {
                    Some(leader) if members.contains(&leader) && rng.coin() => leader,
                    _ => members[rng.below(members.len() as u64) as usize],
                };
                let others: Vec<usize> = members.iter().copied().filter(|&other| other != node).collect();
                match rng.below(3) {
                    0 => Some(LinkCut::Deaf(node)),
                    1 => Some(LinkCut::Mute(node)),
                    _ if others.is_empty() => None,
                    _ => Some(LinkCut::Link(node, others[rng.below(others.len() as u64) as usize])),
                }
            }
        };
        network.link_cut = cut;
        drop(network);
        if let Some(cut) = cut {
            self.outcome.link_cuts += 1;
            self.checker.borrow_mut().note(&cut.words());
        } else {
            self.checker.borrow_mut().note(&[13, 0, 0, 0]);
        }
    }

    /// Checks the read indexes answered since the last round, and maybe asks another.
    fn read_index(&mut self) {
        let mut answered = Vec::new();
        self.reads.retain(|read| match read.answer.try_recv() {
            Ok(index) => {
                answered.push((read.node_id, read.floor, index));
                false
            }
            Err(async_channel::TryRecvError::Empty) => true,
            // Dropped: no leader, a leader change, a crash, a full inbox.
            Err(async_channel::TryRecvError::Closed) => false,
        });
        for (node_id, floor, index) in answered {
            assert!(
                index >= floor,
                "node {node_id} answered a read index of {index}, but entry {floor} was committed before it was asked"
            );
            self.checker.borrow_mut().note(&[12, node_id, index]);
            self.outcome.reads_answered += 1;
        }
        if !self.reads_rng.one_in(self.config.read_index_one_in) {
            return;
        }
        let alive = self.alive();
        let target = match self.leader_index() {
            Some(leader) if alive.contains(&leader) && self.reads_rng.coin() => leader,
            _ if alive.is_empty() => return,
            _ => alive[self.reads_rng.below(alive.len() as u64) as usize],
        };
        let node_id = self.nodes[target].id;
        let number = self.reads_rng.next_u64();
        let context: Vec<u8> = [node_id, 0, number].iter().flat_map(|word| word.to_le_bytes()).collect();
        let floor = self.checker.borrow().committed.keys().next_back().copied().unwrap_or(0);
        let (reply, answer) = async_channel::bounded(1);
        self.send(target, Input::ReadIndex { context, reply });
        self.reads.push(Read { node_id, floor, answer });
    }

    async fn run(mut self) -> SimOutcome {
        for index in self.in_cluster() {
            self.start(index);
        }
        for now in 0..self.config.rounds {
            self.round(now, true).await;
        }
        // Heal: no more faults; every node up; the network whole and reliable.
        for node in &self.nodes {
            node.disk.set_fail_one_in(0);
        }
        {
            let mut network = self.network.borrow_mut();
            network.config.drop_one_in = 0;
            network.config.duplicate_one_in = 0;
        }
        let settle_start = self.config.rounds;
        let floor = self.next_value;
        let mut now = settle_start;
        loop {
            let target = self.checker.borrow().committed.keys().next_back().copied().unwrap_or(0);
            let members = self.in_cluster();
            // Done once every member has every commit, including one proposed after the heal,
            // and a replacement under way is done. A member still opening counts only once
            // opened: what it reported is its last boot's (seed 22198: one started 4 rounds
            // before the final power loss, not yet opened, its last boot's hard state file in
            // place but not durable, the directory's sync having failed).
            let (everywhere, fresh, opened) = {
                let checker = self.checker.borrow();
                let id = |index: usize| self.nodes[index].id;
                let reported = |index: usize| checker.reported_to.get(&id(index)).copied().unwrap_or(0);
                (
                    members.iter().all(|&index| reported(index) >= target),
                    checker.acknowledged.range(floor..).next().is_some(),
                    members.iter().all(|&index| !checker.starting.contains(&id(index))),
                )
            };
            if everywhere && fresh && opened && self.alive().len() == members.len() && self.replacing.is_none() {
                break;
            }
            assert!(
                now < settle_start + self.config.settle_rounds_max,
                "the healed cluster did not commit everywhere in {} rounds (committed up to {target}, reported {:?})",
                self.config.settle_rounds_max,
                self.checker.borrow().reported_to
            );
            self.round(now, false).await;
            now += 1;
        }
        // Every member holds these.
        let everywhere = self.checker.borrow().committed.clone();
        // The cluster runs on (nothing else written than what it commits, in entries far
        // fewer bytes than `COMMIT_SAVED_EVERY_BYTES`) until every member's stored commit is at
        // least what it reported here: written once `COMMIT_SAVED_EVERY_TICKS` ticks passed.
        let members = self.in_cluster();
        let reported_before: Vec<(usize, u64)> = {
            let checker = self.checker.borrow();
            let reported = |index: usize| checker.reported_to.get(&self.nodes[index].id).copied().unwrap_or(0);
            members.iter().map(|&index| (index, reported(index))).collect()
        };
        let quiet_start = now;
        while let Some(&(index, reported)) =
            reported_before.iter().find(|&&(index, reported)| self.stored_commit(index) < reported)
        {
            assert!(
                now < quiet_start + self.config.settle_rounds_max,
                "node {}'s stored commit is {} after {} rounds, below the {reported} it had reported",
                self.nodes[index].id,
                self.stored_commit(index),
                self.config.settle_rounds_max
            );
            self.round(now, false).await;
            now += 1;
        }
        // The file is in place; its directory's sync follows at once.
        for _ in 0..QUIET_ROUNDS_AFTER_SAVED {
            self.round(now, false).await;
            now += 1;
        }
        // Every machine loses power; what each node reported committed must be on its disk,
        // and every entry committed anywhere on a quorum of disks. (The nodes still up commit
        // more while the first ones go down, and did while the cluster ran on: those entries
        // need not be everywhere.)
        for &index in &members {
            self.crash(index, true).await;
        }
        let committed = self.checker.borrow().committed.clone();
        // The first fence committed: a member whose stored commit reaches it has the shard
        // closed in its journal.
        let fence = committed.iter().find_map(|(&index, (_, data))| is_fence_entry(data).then_some(index));
        let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
        // With the log in the journal, each committed entry's place (its first record index)
        // and the node that had it first: every member must agree, or the same record would
        // have other sequence numbers on different members.
        let mut places: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for node in members.iter().map(|&index| &self.nodes[index]) {
            let storage = node.disk.storage(&self.executor);
            // Nothing kept in memory: every entry is read back through the log's index, as
            // followers far behind and appliers after a restart are served.
            let conf_state = ConfState::from(((1..=self.config.nodes).collect::<Vec<u64>>(), vec![]));
            let (store, entries) = match self.config.journal_log_compact_entries {
                Some(_) => {
                    // Nothing expires now: every entry the log did not compact is still on disk.
                    let clock = ManualClock::new(self.clock.now_ms());
                    let opened =
                        open_journal_log(storage, self.config.segment_bytes, conf_state, 0, clock, KEPT_FOR_EVER_MS);
                    let (journal, log, store) =
                        opened.await.unwrap_or_else(|error| panic!("node {} does not reopen: {error}", node.id));
                    let fence_committed = fence.is_some_and(|fence| fence <= store.hard_state().commit);
                    assert_eq!(
                        journal.is_closed(SHARD_UID),
                        fence_committed,
                        "node {}: the shard's closing, with fence {fence:?} and commit {}",
                        node.id,
                        store.hard_state().commit
                    );
                    let entries = read_whole_log(&log, &store).await;
                    (store, entries)
                }
                None => {
                    let segment_bytes = self.config.segment_bytes;
                    let opened = DurableLog::open(storage, Path::new(RAFT_DIR), conf_state, 0, segment_bytes).await;
                    let (log, store) =
                        opened.unwrap_or_else(|error| panic!("node {} does not reopen: {error}", node.id));
                    let entries = read_whole_log(&log, &store).await;
                    (store, entries)
                }
            };
            let entries = entries.unwrap_or_else(|error| panic!("node {} cannot read its log back: {error}", node.id));
            let (first_index, last_index) = (store.first_index(), store.last_index());
            let stored_commit = store.hard_state().commit;
            let reported = reported_before.iter().find(|&&(index, _)| self.nodes[index].id == node.id).map(|r| r.1);
            assert!(
                stored_commit >= reported.unwrap_or(0),
                "node {}'s stored commit {stored_commit} after the power loss is below the {} it had reported",
                node.id,
                reported.unwrap_or(0)
            );
            assert_eq!(
                entries.len() as u64,
                last_index + 1 - first_index,
                "node {} read back part of its log",
                node.id
            );
            for (&index, (term, data)) in &committed {
                if index < first_index {
                    // Compacted: applied durably here, and held by every member before.
                    *copies.entry(index).or_default() += 1;
                    continue;
                }
                match entries.get((index - first_index) as usize) {
                    // A membership change is reported without its data (the replica applies it).
                    Some(entry) if entry.term == *term && reported_data(entry) == &data[..] => {
                        self.check_membership_entry(node.id, entry);
                        *copies.entry(index).or_default() += 1;
                        if self.config.journal_log_compact_entries.is_some() {
                            let place = store.offset(index).expect("an entry in the log has a place");
                            let (first_place, first_node) = *places.entry(index).or_insert((place, node.id));
                            assert_eq!(
                                place, first_place,
                                "entry {index}'s records start at record {place} on node {}, at {first_place} on node {first_node}",
                                node.id
                            );
                        }
                    }
                    // A node that never reported it committed may lag, or hold an entry of a
                    // deposed leader there that the next leader would have replaced.
                    held => assert!(
                        !everywhere.contains_key(&index),
                        "node {} lost or changed committed entry {index} (its log ends at {}, holds {:?})",
                        node.id,
                        last_index,
                        held.map(|entry| entry.term)
                    ),
                }
            }
        }
        let quorum = members.len() / 2 + 1;
        for &index in committed.keys() {
            let held = copies.get(&index).copied().unwrap_or(0);
            assert!(held >= quorum, "committed entry {index} is on {held} disks, fewer than a quorum");
        }
        let checker = self.checker.borrow();
        let network = self.network.borrow();
        let mut digest = checker.digest;
        for node in &self.nodes {
            digest = xxh3_64_with_seed(&node.disk.trace().to_le_bytes(), digest);
            digest = xxh3_64_with_seed(&node.disk.durable_digest().to_le_bytes(), digest);
        }
        SimOutcome {
            digest,
            acknowledged: checker.acknowledged.len() as u64,
            elections_checked: checker.elections_checked,
            entries_read_from_disk: checker.entries_read_from_disk,
            segments_deleted: checker.segments_deleted,
            gone_compactions: checker.gone_compactions,
            retention_segments_deleted: self.retention_deleted.get(),
            snapshots_installed: checker.snapshots_installed,
            restores_failed: checker.restores_failed,
            restores_past_gaps: checker.restores_past_gaps,
            restores_refused: checker.restores_refused,
            restores_cut_short: checker.restores_cut_short,
            restores_settled: self.restores_settled.get(),
            logs_reopened: self.logs_reopened.get(),
            messages_sent: network.sent,
            messages_dropped: network.dropped,
            ..self.outcome.clone()
        }
    }
}

/// Every entry `log` holds, read back from its storage (a read may return fewer than asked:
/// until one returns none).
async fn read_whole_log(log: &impl LogStorage, store: &LogStore) -> Result<Vec<Entry>, ClusterError> {
    let mut entries = Vec::new();
    let mut next = store.first_index();
    while next <= store.last_index() {
        let read = log.read(next, store.last_index(), usize::MAX, store).await?;
        if read.is_empty() {
            break;
        }
        next += read.len() as u64;
        entries.extend(read);
    }
    Ok(entries)
}

/// An entry's data as the replica reports it committed: none for a membership change.
fn reported_data(entry: &Entry) -> &[u8] {
    match entry.entry_type {
        raft::eraftpb::EntryType::EntryNormal => &entry.data,
        _ => &[],
    }
}

/// Runs one seeded simulation; panics (naming what broke) if an invariant fails.
pub fn run(seed: u64, config: &SimConfig) -> SimOutcome {
    let mut rng = SimRng::new(seed);
    let executor = SimExecutor::new(rng.fork());
    // The members, then a spare for each replacement.
    let slots = config.nodes + config.replacements;
    let nodes: Vec<Node> = (1..=slots)
        .map(|id| {
            let disk_config = DiskConfig {
                fail_one_in: config.disk_fail_one_in,
                yields_max: config.disk_yields_max,
                ..DiskConfig::default()
            };
            let disk = SimDisk::new(disk_config, rng.fork());
            Node { id, disk, running: None, down_until: 0, out: id > config.nodes, joiner: false }
        })
        .collect();
    let network = Network {
        rng: rng.fork(),
        now: 0,
        in_flight: BTreeMap::new(),
        sent: 0,
        dropped: 0,
        sides: vec![0; slots as usize],
        link_cut: None,
        up: vec![false; slots as usize],
        config: config.clone(),
    };
    let world = World {
        executor: executor.clone(),
        rng: rng.fork(),
        config: config.clone(),
        network: Rc::new(RefCell::new(network)),
        checker: Rc::new(RefCell::new(Checker {
            places: config.journal_log_compact_entries.is_some().then(BTreeMap::new),
            ..Checker::default()
        })),
        nodes,
        next_value: 0,
        outcome: SimOutcome::default(),
        replacing: None,
        // Forked last: the other generators draw as they did before reads existed.
        reads_rng: rng.fork(),
        reads: Vec::new(),
        // After the reads' generator, for the same reason.
        cuts_rng: rng.fork(),
        // After the cuts' generator, for the same reason.
        fences_rng: rng.fork(),
        // After the fences' generator, for the same reason.
        restore_cuts: Rc::new(RefCell::new(rng.fork())),
        restores_settled: Rc::new(Cell::new(0)),
        logs_reopened: Rc::new(Cell::new(0)),
        clock: ManualClock::new(CLOCK_START_MS),
        journals: Rc::new(RefCell::new(BTreeMap::new())),
        retention_deleted: Rc::new(Cell::new(0)),
        last_commit: (0, 0),
    };
    let polls_max = (config.rounds + config.settle_rounds_max) * (config.yields_per_round + 1) * 64;
    let outcome = executor.run(world.run(), || false, polls_max);
    let polls = executor.polls();
    executor.shutdown();
    match outcome {
        RunOutcome::Finished(outcome) => {
            SimOutcome { digest: xxh3_64_with_seed(&polls.to_le_bytes(), outcome.digest), ..outcome }
        }
        RunOutcome::Stopped => unreachable!("the simulation has no stop condition"),
        RunOutcome::Deadlock => panic!("seed {seed}: nothing ready but the driver unfinished (a lost wake-up)"),
        RunOutcome::Exhausted => panic!("seed {seed}: {polls_max} polls spent (a livelock)"),
    }
}
