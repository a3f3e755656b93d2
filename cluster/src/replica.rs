//! One member of one Raft group: raft-rs' `RawNode` driven by an async loop over an inbox of
//! [`Input`]s, with its log made durable through a [`LogStorage`] (a
//! [`crate::durable_log::DurableLog`], or a shard's journal:
//! [`crate::journal_log::JournalLog`]) before anyone learns of it.
//!
//! The loop follows raft-rs' `Ready` protocol (see the `raft::RawNode` docs): take what the
//! inputs produced; send the leader's messages (they may leave before its own write, as the
//! Raft thesis §10.2.1 allows); write and sync the new entries, then the hard state; only then
//! send the messages that promise them (votes, append responses) and report the committed
//! entries; then advance. So "committed" means durable on a quorum, and on this replica too.
//! The commit index itself is written lazily (with a term or vote change, every
//! `COMMIT_SAVED_EVERY_BYTES` of entries, or a minute of ticks after it moved): a restarted
//! replica learns it again from its leader.
//!
//! Snapshots: a log is compacted once every member holds its entries, or, if the group's
//! `laggard_held_bytes_max` is set, without waiting for a member that far behind. Such a
//! member is sent a snapshot: the index the leader's state machine holds durably and the bytes
//! its host offered with it. The follower's host restores its state machine from a peer
//! ([`ReplicaEvents::restore`]) before raft-rs sees the snapshot; then the log starts after it.
//!
//! Nothing here reads a clock or draws a random number: time is the [`Input::Tick`]s the
//! host delivers, and the election timeout is a per-boot value the host chooses (raft-rs
//! draws its own from a thread-local RNG; pinning its range to one value keeps a seeded
//! simulation replayable).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use raft::eraftpb::{ConfChangeV2, ConfState, Entry, EntryType, HardState, Message, MessageType};
use raft::{Config, RawNode, SnapshotStatus, StateRole};
use sluice_engine::format::RaftPosition;

use crate::error::{ClusterError, Result};
use crate::limits::{
    APPEND_MESSAGES_IN_FLIGHT_MAX, APPEND_MESSAGE_BYTES_MAX, COMMITTED_READ_BYTES_MAX, COMMIT_SAVED_EVERY_BYTES,
    COMPACT_SEGMENTS_MIN, ENTRY_PAYLOAD_BYTES_MAX, FIRST_CAMPAIGN_TICKS, HEARTBEAT_TICKS, READ_INDEXES_PENDING_MAX,
    SNAPSHOT_RETRY_TICKS,
};
use crate::log_storage::LogStorage;
use crate::log_store::LogStore;
use crate::wire::validate_peer_message;

/// What a replica's inbox carries.
#[derive(Debug)]
pub enum Input {
    /// One unit of Raft time passed.
    Tick,
    /// A message from a peer.
    Message(Box<Message>),
    /// A client's entry, to be appended if this replica leads (dropped otherwise). Either way
    /// the replica says so ([`ReplicaEvents::proposed`]); the client learns of success only by
    /// the entry's commit. The context travels with the entry (the host tags its proposals to
    /// recognise them committed).
    Propose { context: Vec<u8>, data: Vec<u8> },
    /// Propose a change of the group's membership, if this replica leads (dropped otherwise,
    /// or while another change is not applied yet: raft-rs allows one at a time). Whoever
    /// drives membership proposes again until the group's membership is what it wants
    /// ([`ReplicaEvents::membership_changed`]).
    ChangeMembership(ConfChangeV2),
    /// Hand the leadership to member `to`, if this replica leads and `to` is caught up (has
    /// every entry of the log and answered recently); ignored otherwise. Leader balancing
    /// asks for it; raft-rs refuses proposals while the transfer is under way (at most an
    /// election timeout), and they are retried as any proposal dropped.
    TransferLeader { to: u64 },
    /// Every node that may send this group messages from now on (`ReplicaConfig::members`):
    /// a member added to the cluster, or one that left it.
    SetMembers(Vec<u64>),
    /// Committed entries from `from` to at most `to` (and at most
    /// `limits::COMMITTED_READ_BYTES_MAX` bytes, but one entry at least), as (index, data):
    /// how the host's appliers read entries it no longer keeps. Empty if `from` is not
    /// committed here.
    ReadCommitted { from: u64, to: u64, reply: CommittedReply },
    /// The commit index the group's leader has once it has confirmed, with a round of
    /// heartbeats to a quorum, that it still leads (raft-rs' ReadIndex, its safe option): a
    /// state machine that has applied up to it holds everything committed before the request
    /// began, so a read there is linearizable. A follower's request goes to its leader. Sent
    /// to `reply`, or dropped (no leader, a leader not yet committed in its term, a leader
    /// change, too many waiting: `limits::READ_INDEXES_PENDING_MAX`): the caller's wait ends
    /// and it asks again. `context` (`wire::READ_CONTEXT_BYTES`) must be unique in the group.
    ReadIndex { context: Vec<u8>, reply: ReadIndexReply },
    /// The host's state machine holds every entry up to `index` durably (it never reads them
    /// from the log again, even after a restart): the log may drop them once every member has
    /// them too (or the group lets it go past a member far behind). `state` is what a member
    /// needs to restore its state machine to `index` from a peer, sent in a snapshot to a
    /// member behind the log's start.
    Compactable { index: u64, state: Bytes },
}

/// A snapshot a follower was sent: its state machine must hold every entry up to `index` (of
/// `term`) before its log can continue after it. `from` sent it (its state machine holds
/// them); `state` is what that member's host offered with it; `membership` is the group's as
/// of `index`.
#[derive(Debug, Clone)]
pub struct SnapshotToRestore {
    pub index: u64,
    pub term: u64,
    pub from: u64,
    pub state: Bytes,
    pub membership: ConfState,
}

/// A restoration under way ([`ReplicaEvents::restore`]).
pub type Restoring = Pin<Box<dyn Future<Output = Restored>>>;

/// How a restoration from a peer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// The state machine holds every entry up to the snapshot's index durably: the replica
    /// installs the snapshot.
    Done,
    /// It could not, and the log is as it was: the snapshot is dropped, and the leader sends
    /// one again.
    Dropped,
    /// It could not, after it had changed the log's storage (a restore into the journal that
    /// keeps the log, whose peer stopped answering halfway, `journal_log::ShardRestore`): the
    /// replica stops with [`ClusterError::LogChanged`], and its log must be opened again,
    /// which settles the restore ([`Replica::run_reopening`]).
    LogChanged,
}

/// Opens a replica's log again from its storage ([`Replica::run_reopening`]).
pub type Reopen<L> = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<(L, LogStore)>>>>>;

/// A committed entry as its group's state machine reads it: its term and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedEntry {
    pub term: u64,
    pub data: Bytes,
}

/// Where the answer to an [`Input::ReadCommitted`] goes: (index, entry) of each entry.
pub type CommittedReply = async_channel::Sender<Vec<(u64, CommittedEntry)>>;

/// Where the answer to an [`Input::ReadIndex`] goes: the confirmed commit index.
pub type ReadIndexReply = async_channel::Sender<u64>;

/// Carries messages to peers. Sending never blocks and may lose the message (Raft retries).
/// Two implement it: the simulated network (`sim`) and TCP between nodes (`transport`).
pub trait Transport {
    fn send(&self, message: Message);
}

/// What a replica tells its host.
pub trait ReplicaEvents {
    /// The replica opened its disk, where entries up to `commit` are committed: they are not
    /// reported again (read them with [`Input::ReadCommitted`]).
    fn opened(&self, node_id: u64, commit: u64);
    /// Entries now committed (durable on a quorum, and here), in index order, from the
    /// `commit` of [`ReplicaEvents::opened`] on, each with its place in this member's log
    /// ([`LogStorage::append`]'s; `None` if the log no longer holds it): for a log kept in the
    /// journal, the first record index of the entry's records, the same on every member.
    fn committed(&self, node_id: u64, entries: &[Entry], places: &[Option<u64>]);
    /// This replica just won the election of `term`; `log` is its log at that moment.
    fn became_leader(&self, node_id: u64, term: u64, log: &LogStore);
    /// The leader this replica knows changed (`leader_id` 0: none), or its role did; `term`
    /// is its current term.
    fn leader_changed(&self, node_id: u64, term: u64, leader_id: u64) {
        let _ = (node_id, term, leader_id);
    }
    /// Proposal `context` ([`Input::Propose`]) is the entry `placed` names in this replica's
    /// log (its index, and the term the leader leads in: by Raft's log matching property the
    /// two name the entry in every log), or (`None`) was dropped: this replica did not lead,
    /// or could not take it, and it is in no log.
    fn proposed(&self, node_id: u64, context: &[u8], placed: Option<RaftPosition>) {
        let _ = (node_id, context, placed);
    }
    /// `entries` older than the cache were read back from disk, for a follower behind or an
    /// applier (the simulation counts them, to know that path ran).
    fn read_from_disk(&self, node_id: u64, entries: usize) {
        let _ = (node_id, entries);
    }
    /// After each round of inputs: on a leader, the most entries another member is not known
    /// to hold ([`Replica::follower_lag`]); 0 on a follower. How far behind a member is, for
    /// the node's metrics.
    fn follower_lag(&self, node_id: u64, entries: u64) {
        let _ = (node_id, entries);
    }
    /// The group's membership is now `conf_state`, from entry (or snapshot) `index` on (also
    /// once when the replica opens, with the membership it found).
    fn membership_changed(&self, node_id: u64, index: u64, conf_state: &ConfState) {
        let _ = (node_id, index, conf_state);
    }
    /// The log now starts after `index`: `segments` segment files were deleted.
    fn compacted(&self, node_id: u64, index: u64, segments: usize) {
        let _ = (node_id, index, segments);
    }
    /// A read found the records of the entries up to `index` gone (retention took them:
    /// [`LogStorage::gone_through`]); the log is compacted past them now.
    fn entries_gone(&self, node_id: u64, index: u64) {
        let _ = (node_id, index);
    }
    /// Brings the state machine up to `snapshot` (from a peer), durably, before the replica
    /// installs it ([`Restored`]). A host whose state machine cannot restore keeps the
    /// default, and its group must wait for every member before compacting (no
    /// `laggard_held_bytes_max`).
    fn restore(&self, node_id: u64, snapshot: SnapshotToRestore) -> Restoring {
        let _ = (node_id, snapshot);
        Box::pin(async { Restored::Dropped })
    }
    /// A snapshot up to `index` is installed: the entries after it are reported as they are
    /// committed ([`ReplicaEvents::committed`] continues at `index + 1`).
    fn restored(&self, node_id: u64, index: u64) {
        let _ = (node_id, index);
    }
}

/// What a leader adds to its heartbeats' context: how far the group's logs may be compacted
/// (the highest index every member holds, or past members far behind: [`Replica::compact`]),
/// so that followers, which cannot see the others' progress, know how far they may compact
/// too. raft-rs uses the heartbeat context for read-index requests (its heartbeats for one
/// carry the request's context, and those go without the hint); a follower takes the hint off
/// before raft-rs sees the message, and leaves a read context on (raft-rs echoes it back).
const COMPACT_TO_MAGIC: [u8; 4] = *b"SLHA";

fn compact_to_context(index: u64) -> Vec<u8> {
    let mut context = COMPACT_TO_MAGIC.to_vec();
    context.extend_from_slice(&index.to_le_bytes());
    context
}

fn compact_to_from_context(context: &[u8]) -> Option<u64> {
    let index = context.strip_prefix(&COMPACT_TO_MAGIC)?;
    Some(u64::from_le_bytes(index.try_into().ok()?))
}

/// A rejection of an append (`message`, for the leader's current term) from a follower that
/// already acknowledged every entry up to `matched`: false if it is stale (it rejects an
/// index the follower holds), else true, with its hint raised to `matched` if it was below
/// (and the hint's term dropped, so that the leader probes right after `matched`).
fn reject_within_match(message: &mut Message, matched: u64) -> bool {
    if message.index <= matched {
        return false;
    }
    if message.reject_hint < matched {
        message.reject_hint = matched;
        message.log_term = 0;
    }
    true
}

#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// This member's id (not 0, unique in the group).
    pub id: u64,
    /// The voting members a new group starts with, this one's included (its log starts empty
    /// on every one of them). Empty: this member joins a group that runs already, and waits
    /// until a leader adds it and sends it a snapshot. Once the membership changed, the
    /// replica's files hold it and this is not read.
    pub voters: Vec<u64>,
    /// Every node that may send this group messages: members now or later (a message from
    /// any other is dropped).
    pub members: Vec<u64>,
    /// Ticks without a leader before campaigning, drawn from this range for each election
    /// (raft-rs' randomised timeout, so that elections do not split forever); its start, more
    /// than `3 * HEARTBEAT_TICKS`, is also the leader's lease (check-quorum: a member that
    /// heard from a leader within it refuses to vote). The simulation passes a range of one
    /// value, drawn per boot from its seed, because raft-rs draws from a thread-local RNG that
    /// a seed cannot replay.
    pub election_ticks: std::ops::Range<usize>,
    /// Where the Raft files live.
    pub dir: PathBuf,
    /// Bytes of the newest entries kept in memory (`limits::ENTRY_CACHE_BYTES`; the
    /// simulation keeps few, so that its followers are served from disk).
    pub entry_cache_bytes: usize,
    /// Bytes of a log segment before the next begins (`limits::LOG_SEGMENT_BYTES`; the
    /// simulation's are small, so that it compacts often).
    pub segment_bytes: usize,
    /// Bytes of log a member behind may hold back on the others: past it, the log is
    /// compacted without waiting for that member, which gets a snapshot instead. `None`:
    /// compaction waits for every member (a group whose host cannot restore from snapshots).
    pub laggard_held_bytes_max: Option<u64>,
    /// This member campaigns when the group is new here (no term yet), at each of its first
    /// [`FIRST_CAMPAIGN_TICKS`] ticks while no leader is known, instead of waiting out
    /// an election timeout: every new group had no leader for 0.5 to 1 s, so a new stream's
    /// shards and a reshard's children could not be written meanwhile. One founder per group
    /// is chosen (the others still campaign after their timeout if it cannot win).
    pub campaigns_when_new: bool,
    /// Ticks after which a commit that moved is written to disk however few entries came
    /// since the last write ([`crate::limits::COMMIT_SAVED_EVERY_TICKS`]; the simulation's
    /// are few, so that its final check sees them).
    pub commit_saved_every_ticks: usize,
}

pub struct Replica<L: LogStorage, T: Transport, E: ReplicaEvents> {
    id: u64,
    /// What it was opened with: a replica opened again takes it too.
    config: ReplicaConfig,
    /// `ReplicaConfig::voters`: the members a new group started with.
    founders: Vec<u64>,
    /// `ReplicaConfig::members`.
    members: Vec<u64>,
    raw: RawNode<LogStore>,
    log: L,
    transport: T,
    events: E,
    /// [`Input::ReadCommitted`]s to answer after this round's `Ready`.
    reads: Vec<(u64, u64, CommittedReply)>,
    /// Bytes of entries appended since the hard state was last written.
    bytes_since_saved: usize,
    /// The commit index the hard state on disk holds.
    saved_commit: u64,
    /// Ticks since the hard state was last written, and `ReplicaConfig::commit_saved_every_ticks`.
    ticks_since_saved: usize,
    commit_saved_every_ticks: usize,
    /// The host's state machine holds entries up to here durably ([`Input::Compactable`]).
    durable_applied: u64,
    /// On a follower, how far its leader said the logs may be compacted.
    compact_to_hint: u64,
    /// `ReplicaConfig::laggard_held_bytes_max`.
    laggard_held_bytes_max: Option<u64>,
    /// Ticks left at which this member campaigns while no leader is known
    /// (`ReplicaConfig::campaigns_when_new`); 0 once a leader is.
    first_campaign_ticks: usize,
    /// The newest snapshot received and not yet handled (restored, then stepped).
    snapshot_received: Option<Box<Message>>,
    /// Ticks left during which snapshots are dropped, after one that could not be restored.
    snapshot_retry_ticks: usize,
    /// Members this leader sent a snapshot to in the last `Ready`s, to report to raft-rs.
    snapshots_sent: Vec<u64>,
    /// [`Input::ReadIndex`]es not answered yet, by context.
    read_indexes: HashMap<Vec<u8>, ReadIndexReply>,
    /// Read-index requests (this member's and its followers') that reached it as a leader
    /// before it committed an entry of its term, which raft-rs would drop: stepped once it has
    /// ([`Replica::step_deferred_reads`]).
    deferred_reads: Vec<Message>,
}

impl<L: LogStorage, T: Transport, E: ReplicaEvents> Replica<L, T, E> {
    /// Restores the replica's Raft state from its opened log: `log`, and `store`, what the
    /// log held when opened (`DurableLog::open_for`, say).
    pub fn open(log: L, store: LogStore, config: &ReplicaConfig, transport: T, events: E) -> Result<Self> {
        let new_here = store.hard_state().term == 0 && config.voters.contains(&config.id);
        let first_campaign_ticks = if config.campaigns_when_new && new_here { FIRST_CAMPAIGN_TICKS } else { 0 };
        events.membership_changed(config.id, store.conf_index(), &store.conf_state());
        // Entries durable, the hard state written after them not (a crash between the two
        // writes; the journal's group commit may make a run durable before its `sync` is
        // waited for): the log's last term is past the stored term. A member's term must be
        // at least its log's (raft-rs panics rejecting a pre-vote at term 0, tikv/raft-rs#511;
        // the cluster simulation's seed 17722). It sent no vote in those terms (a vote is sent
        // once stored), so it takes the term without one.
        let last_term = store.term_of(store.last_index()).unwrap_or(0);
        let stored = store.hard_state();
        if stored.term < last_term {
            store.set_hard_state(HardState { term: last_term, vote: 0, ..stored });
        }
        // What was committed before is applied as far as raft-rs is concerned: it never
        // reads those entries again, and they may stay on disk only.
        let commit = store.hard_state().commit;
        events.opened(config.id, commit);
        let raft_config = Config {
            applied: commit,
            id: config.id,
            election_tick: config.election_ticks.start,
            heartbeat_tick: HEARTBEAT_TICKS,
            min_election_tick: config.election_ticks.start,
            max_election_tick: config.election_ticks.end,
            max_size_per_msg: APPEND_MESSAGE_BYTES_MAX,
            max_inflight_msgs: APPEND_MESSAGES_IN_FLIGHT_MAX,
            // A leader cut off from a quorum steps down, and a member cut off campaigns only
            // if it could win (pre-vote): a partition heals without needless elections.
            check_quorum: true,
            pre_vote: true,
            ..Config::default()
        };
        raft_config.validate()?;
        // Its lines name the group by its directory (`shard-UID`, say).
        let group = config.dir.file_name().unwrap_or(config.dir.as_os_str()).to_string_lossy().into_owned();
        let logger = crate::raft_log::logger(group);
        let raw = RawNode::new(&raft_config, store, &logger)?;
        Ok(Replica {
            id: config.id,
            config: config.clone(),
            founders: config.voters.clone(),
            members: config.members.clone(),
            raw,
            log,
            transport,
            events,
            reads: Vec::new(),
            bytes_since_saved: 0,
            saved_commit: commit,
            ticks_since_saved: 0,
            commit_saved_every_ticks: config.commit_saved_every_ticks,
            durable_applied: 0,
            compact_to_hint: 0,
            laggard_held_bytes_max: config.laggard_held_bytes_max,
            first_campaign_ticks,
            snapshot_received: None,
            snapshot_retry_ticks: 0,
            snapshots_sent: Vec::new(),
            read_indexes: HashMap::new(),
            deferred_reads: Vec::new(),
        })
    }

    /// Serves the inbox until it closes (Ok) or the storage fails (the error: the replica must
    /// stop, and its host restart it from its disk), or a restore changed the log under it
    /// ([`ClusterError::LogChanged`]: [`Replica::run_reopening`] goes on).
    pub async fn run(mut self, inbox: async_channel::Receiver<Input>) -> Result<()> {
        self.serve(&inbox).await
    }

    /// Serves the inbox as [`Replica::run`] does, except that a replica whose log a restore
    /// changed under it ([`Restored::LogChanged`]) is not stopped: its log is opened again
    /// with `reopen` (which settles the restore) and a replica of it serves the same inbox,
    /// as after a restart of its process but with nothing else of the process restarted
    /// (inputs that arrive meanwhile wait in the inbox, or are lost once it is full, as
    /// messages may be).
    pub async fn run_reopening(mut self, inbox: async_channel::Receiver<Input>, mut reopen: Reopen<L>) -> Result<()> {
        loop {
            match self.serve(&inbox).await {
                Err(ClusterError::LogChanged { .. }) => {
                    let (log, store) = reopen().await?;
                    let Replica { config, transport, events, .. } = self;
                    self = Replica::open(log, store, &config, transport, events)?;
                }
                ended => return ended,
            }
        }
    }

    async fn serve(&mut self, inbox: &async_channel::Receiver<Input>) -> Result<()> {
        while let Ok(input) = inbox.recv().await {
            self.handle(input);
            // Whatever else is waiting joins this round (one write and sync for all of it).
            while let Ok(input) = inbox.try_recv() {
                self.handle(input);
            }
            self.restore_snapshot().await?;
            self.process_ready().await?;
            if self.step_deferred_reads() {
                self.process_ready().await?;
            }
            self.read_from_disk().await?;
            self.compact().await?;
            if self.ticks_since_saved >= self.commit_saved_every_ticks {
                self.save_commit(u64::MAX).await?;
            }
            self.events.follower_lag(self.id, self.follower_lag());
        }
        Ok(())
    }

    /// On a leader, the most entries any other member of the group is not known to hold (the
    /// log's last index less the member's `matched`; a leader elected a moment ago knows no
    /// member's progress yet, so counts each as lacking the whole log until it answers); 0
    /// elsewhere.
    fn follower_lag(&self) -> u64 {
        let raft = &self.raw.raft;
        if raft.state != StateRole::Leader {
            return 0;
        }
        let last_index = raft.raft_log.last_index();
        let others = raft.prs().iter().filter(|(id, _)| **id != self.id);
        others.map(|(_, progress)| last_index.saturating_sub(progress.matched)).max().unwrap_or(0)
    }

    /// Drops the log's oldest segments once every entry in them is durable in the host's
    /// state machine and held by every member (but a member far behind: [`Replica::compact_to`]),
    /// so that no member but those needs them again. The leader knows what each member holds;
    /// a follower learns how far to go from its leader's heartbeats.
    async fn compact(&mut self) -> Result<()> {
        let raft = &self.raw.raft;
        let store = self.raw.store();
        let allowed = if raft.state == StateRole::Leader { self.compact_to() } else { self.compact_to_hint };
        let index = allowed.min(self.durable_applied).min(raft.raft_log.applied).min(store.last_index());
        // Entries whose records retention took (`LogStorage::gone_through`: committed, and
        // applied here) are compacted whatever else waits: a member that needs them gets a
        // snapshot instead.
        let gone = self.log.gone_through().min(raft.raft_log.applied).min(store.last_index());
        let index = index.max(gone);
        let gone_here = gone >= store.first_index();
        if index < store.first_index() || !(gone_here || self.log.freed_by_compaction(index) >= COMPACT_SEGMENTS_MIN) {
            return Ok(());
        }
        if gone_here {
            self.events.entries_gone(self.id, gone);
        }
        let term = store.term_of(index).expect("within the log");
        // A restart must find a commit at least as far as the log's new start (the hard state
        // is written every `COMMIT_SAVED_EVERY_BYTES`, so it mostly is already).
        self.save_commit(index).await?;
        self.raw.store().compact(index);
        let segments = self.log.compact(index, term, self.raw.store()).await?;
        self.events.compacted(self.id, index, segments);
        Ok(())
    }

    /// Writes the hard state with the commit as known now if the stored one is below `below`
    /// (`u64::MAX`: if the commit moved at all since the last write). The commit written is
    /// never past the log's durable end: raft-rs may know of a commit beyond what this member
    /// holds.
    async fn save_commit(&mut self, below: u64) -> Result<()> {
        let store = self.raw.store();
        let mut hard_state = store.hard_state();
        hard_state.commit = hard_state.commit.min(store.last_index());
        if self.saved_commit < below && self.saved_commit < hard_state.commit {
            self.log.save_hard_state(&hard_state).await?;
            self.saved(hard_state.commit);
        }
        Ok(())
    }

    /// Notes that the hard state on disk now holds `commit`.
    fn saved(&mut self, commit: u64) {
        self.bytes_since_saved = 0;
        self.ticks_since_saved = 0;
        self.saved_commit = commit;
    }

    /// On a leader, how far the logs may be compacted: the highest index every member holds
    /// (its progress' lowest `matched`), leaving out, if the group has a
    /// `laggard_held_bytes_max`, each member that lacks more than that many bytes of the log
    /// or whose next entry is compacted away already (it gets a snapshot).
    fn compact_to(&self) -> u64 {
        let store = self.raw.store();
        let end = store.offset(store.last_index());
        let far_behind = |matched: u64| {
            let Some(held_max) = self.laggard_held_bytes_max else { return false };
            match (store.offset(matched + 1), end) {
                (Some(next), Some(end)) => self.log.held_bytes(next, end, held_max) > held_max,
                // Its next entry is compacted already; or nothing is left for it to miss.
                (None, _) => matched + 1 < store.first_index(),
                (Some(_), None) => false,
            }
        };
        // A leader elected since knows no follower's progress until it answers (raft-rs starts
        // each at 0): such a member is taken to hold what the log still holds, not to lack it
        // all. Taken as far behind, a member restarted a moment ago was compacted past after
        // each election and had to restore a snapshot (100 leader kills: 6 snapshots, failover
        // p99 5.6 s where it was 1.1 s).
        let unknown_at = store.first_index().saturating_sub(1);
        let matched: Vec<u64> = self
            .raw
            .raft
            .prs()
            .iter()
            .map(|(_, progress)| if progress.matched == 0 { unknown_at } else { progress.matched })
            .collect();
        let held = matched.iter().copied().filter(|&matched| !far_behind(matched)).min();
        // Every member far behind (this leader's own `matched` is its last index, so only if
        // `held_max` is 0): as far as this leader holds.
        held.or_else(|| matched.iter().copied().max()).unwrap_or(0)
    }

    /// Sends `message`; a leader's heartbeat carries how far the logs may be compacted.
    fn send(&mut self, mut message: Message) {
        if message.msg_type == MessageType::MsgHeartbeat && message.context.is_empty() {
            message.context = compact_to_context(self.compact_to()).into();
        }
        if message.msg_type == MessageType::MsgSnapshot {
            self.snapshots_sent.push(message.to);
        }
        self.transport.send(message);
    }

    /// A snapshot received: the host brings its state machine up to it from a peer, then
    /// raft-rs takes it (and its `Ready` installs it in the log). One raft-rs would ignore (of
    /// an older term, not past the commit, or matching the log, which raft-rs then commits up
    /// to) is stepped as it is. One the host could not restore is dropped; the leader sends
    /// another, taken [`SNAPSHOT_RETRY_TICKS`] later. The replica takes no other input
    /// meanwhile, its vote included: the host gives up on a sender that does not answer within
    /// an election timeout (`COPY_ANSWER_WAIT_MS`), so that a member restoring from a leader
    /// that died can vote for the next one.
    async fn restore_snapshot(&mut self) -> Result<()> {
        let Some(message) = self.snapshot_received.take() else { return Ok(()) };
        let metadata = message.get_snapshot().get_metadata();
        let raft = &self.raw.raft;
        let needed = message.term >= raft.term
            && metadata.index > raft.raft_log.committed
            && !raft.raft_log.match_term(metadata.index, metadata.term);
        if needed {
            let snapshot = SnapshotToRestore {
                index: metadata.index,
                term: metadata.term,
                from: message.from,
                state: message.get_snapshot().data.clone(),
                membership: metadata.get_conf_state().clone(),
            };
            match self.events.restore(self.id, snapshot).await {
                Restored::Done => {}
                Restored::Dropped => {
                    self.snapshot_retry_ticks = SNAPSHOT_RETRY_TICKS;
                    return Ok(());
                }
                Restored::LogChanged => return Err(ClusterError::LogChanged { index: metadata.index }),
            }
        }
        let _ = self.raw.step(*message);
        Ok(())
    }

    /// Serves the reads that need the disk: entries raft-rs wants to send to a follower that
    /// is behind the cache (then it is told to ask again), and committed entries the host's
    /// appliers asked for. One round per turn of the loop, so that a follower far behind
    /// does not hold up the ticks and messages waiting in the inbox: raft-rs asks for the
    /// rest at the follower's next answer.
    async fn read_from_disk(&mut self) -> Result<()> {
        let wanted = self.raw.store().take_wanted();
        let reads = std::mem::take(&mut self.reads);
        if wanted.is_empty() && reads.is_empty() {
            return Ok(());
        }
        for wanted in wanted {
            let bytes_max = wanted.max_size.unwrap_or(APPEND_MESSAGE_BYTES_MAX).min(APPEND_MESSAGE_BYTES_MAX) as usize;
            let entries = self.log.read(wanted.low, wanted.high - 1, bytes_max, self.raw.store()).await?;
            if !entries.is_empty() {
                self.events.read_from_disk(self.id, entries.len());
                self.raw.store().add_fetched(entries);
                self.raw.on_entries_fetched(wanted.context);
            }
        }
        let raft_log = &self.raw.raft.raft_log;
        let committed = raft_log.committed.min(raft_log.persisted);
        for (from, to, reply) in reads {
            let to = to.min(committed);
            let entries = if from < 1 || from > to {
                Vec::new()
            } else {
                match self.raw.store().cached_from(from, COMMITTED_READ_BYTES_MAX) {
                    Some(cached) => cached,
                    None => {
                        let entries = self.log.read(from, to, COMMITTED_READ_BYTES_MAX, self.raw.store()).await?;
                        self.events.read_from_disk(self.id, entries.len());
                        entries
                    }
                }
            };
            let entries = entries.into_iter().take_while(|entry| entry.index <= to);
            let entries = entries.map(|entry| (entry.index, CommittedEntry { term: entry.term, data: entry.data }));
            let _ = reply.try_send(entries.collect());
        }
        self.process_ready().await
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Tick => {
                self.snapshot_retry_ticks = self.snapshot_retry_ticks.saturating_sub(1);
                self.ticks_since_saved += 1;
                self.raw.tick();
                self.campaign_if_new();
            }
            Input::Message(message) => {
                // A message raft-rs must not see (for another member, of a local type, with a
                // snapshot, with entries out of order: `validate_peer_message`) is dropped as a
                // lossy network would drop it; raft-rs ignores stale terms itself. Proposals
                // travel only as client requests (see `Input::Propose`).
                if validate_peer_message(&message, self.id, &self.members).is_err() {
                    return;
                }
                // raft-rs asserts that a heartbeat's commit is within the log. A leader sends
                // at most what this replica acknowledged, which is durable here, so a larger
                // one is a message from a broken or hostile peer.
                let last_index = self.raw.raft.raft_log.last_index();
                if message.msg_type == MessageType::MsgHeartbeat && message.commit > last_index {
                    return;
                }
                let mut message = *message;
                if !self.fix_stale_rejection(&mut message) || !self.seeded(&mut message) {
                    return;
                }
                if message.msg_type == MessageType::MsgHeartbeat {
                    if let Some(index) = compact_to_from_context(&message.context) {
                        self.compact_to_hint = self.compact_to_hint.max(index);
                        message.context = Default::default();
                    }
                }
                if message.msg_type == MessageType::MsgSnapshot {
                    // Restored from a peer before raft-rs sees it (`restore_snapshot`); not
                    // again right after a restore that failed (`SNAPSHOT_RETRY_TICKS`).
                    if self.snapshot_retry_ticks == 0 {
                        self.snapshot_received = Some(Box::new(message));
                    }
                    return;
                }
                if message.msg_type == MessageType::MsgReadIndex {
                    self.read_index(message);
                    return;
                }
                let _ = self.raw.step(message);
            }
            Input::ChangeMembership(change) => {
                if self.raw.raft.state == StateRole::Leader {
                    let _ = self.raw.propose_conf_change(Vec::new(), change);
                }
            }
            Input::TransferLeader { to } => {
                let raft = &self.raw.raft;
                let last_index = raft.raft_log.last_index();
                let caught_up =
                    raft.prs().get(to).is_some_and(|progress| progress.recent_active && progress.matched == last_index);
                if raft.state == StateRole::Leader && to != self.id && caught_up {
                    self.raw.transfer_leader(to);
                }
            }
            Input::SetMembers(members) => self.members = members,
            Input::ReadCommitted { from, to, reply } => self.reads.push((from, to, reply)),
            Input::ReadIndex { context, reply } => {
                // Those whose caller gave up go first; past the bound, the request is dropped.
                self.read_indexes.retain(|_, waiting| !waiting.is_closed());
                if self.read_indexes.len() < READ_INDEXES_PENDING_MAX {
                    // What `RawNode::read_index` steps.
                    let entry = Entry { data: context.clone().into(), ..Default::default() };
                    let request = Message {
                        msg_type: MessageType::MsgReadIndex,
                        entries: vec![entry].into(),
                        ..Default::default()
                    };
                    self.read_indexes.insert(context, reply);
                    self.read_index(request);
                }
            }
            Input::Compactable { index, state } => {
                self.durable_applied = self.durable_applied.max(index);
                // Offered whatever the laggard rule: a member added to the group starts from a
                // snapshot even when the log is whole (`seeded`).
                self.raw.store().offer_snapshot(index, state);
            }
            Input::Propose { context, data } => {
                // Only the leader takes a proposal. raft-rs would have a follower forward it as
                // a Raft message, which the network may duplicate: the entry would be appended
                // twice. Requests are forwarded a layer up instead, where the client hears back
                // (issue 13); a proposal dropped here is never acknowledged, and retried.
                let fits = context.len() + data.len() <= ENTRY_PAYLOAD_BYTES_MAX - crate::codec::PAYLOAD_FIXED_BYTES;
                let mut placed = None;
                if fits && self.raw.raft.state == StateRole::Leader {
                    // ProposalDropped (a leadership transfer under way) is the same case. An
                    // accepted proposal is the last entry of the leader's log.
                    if self.raw.propose(context.clone(), data).is_ok() {
                        let index = self.raw.raft.raft_log.last_index();
                        placed = Some(RaftPosition { term: self.raw.raft.term, index });
                    }
                }
                self.events.proposed(self.id, &context, placed);
            }
        }
    }

    /// Steps read-index request `request` (this member's, or a follower's), or defers it while
    /// this member leads without an entry of its term committed: raft-rs would drop it then
    /// (it cannot know its commit index is the group's yet), and the caller would wait out its
    /// timeout for nothing, right after each election.
    fn read_index(&mut self, request: Message) {
        let raft = &self.raw.raft;
        if raft.state == StateRole::Leader && !raft.commit_to_current_term() {
            if self.deferred_reads.len() < READ_INDEXES_PENDING_MAX {
                self.deferred_reads.push(request);
            }
            return;
        }
        let _ = self.raw.step(request);
    }

    /// Steps the deferred read-index requests once this leader has committed an entry of its
    /// term (drops them if it no longer leads: their callers ask again); whether it did.
    fn step_deferred_reads(&mut self) -> bool {
        let raft = &self.raw.raft;
        if self.deferred_reads.is_empty() || (raft.state == StateRole::Leader && !raft.commit_to_current_term()) {
            return false;
        }
        if raft.state != StateRole::Leader {
            self.deferred_reads.clear();
            return false;
        }
        for request in std::mem::take(&mut self.deferred_reads) {
            let _ = self.raw.step(request);
        }
        true
    }

    /// A new group's chosen founder campaigns at each of its first ticks while no leader is
    /// known ([`FIRST_CAMPAIGN_TICKS`] at most), not only once: its peers may not host the
    /// group yet when the first (pre-)vote requests arrive (they start it on applying the same
    /// catalog command, a few milliseconds apart), and drop them. A member already campaigning (a
    /// candidate) waits for its votes: campaigning again would raise the term for nothing.
    fn campaign_if_new(&mut self) {
        if self.first_campaign_ticks == 0 {
            return;
        }
        let raft = &self.raw.raft;
        if raft.leader_id != raft::INVALID_ID {
            self.first_campaign_ticks = 0;
            return;
        }
        self.first_campaign_ticks -= 1;
        if matches!(raft.state, StateRole::Follower | StateRole::PreCandidate) {
            // raft-rs refuses only a campaign it cannot run now (a configuration change not
            // applied yet, which a new group does not have); the election timeout remains.
            let _ = self.raw.campaign();
        }
    }

    /// A member that joined the group (not one of its founders) starts from a snapshot, never
    /// from the log's first entry: the log does not hold the founders' membership (it is not
    /// an entry), so the conf changes in it would build another membership from nothing. On
    /// the leader, such a member's rejection that says its log is empty asks raft-rs for a
    /// snapshot (the rejection's `request_snapshot`, as a follower asking for one would); on
    /// the member, while it has no membership, an append from the log's start is dropped.
    fn seeded(&self, message: &mut Message) -> bool {
        let raft = &self.raw.raft;
        let empty_rejection = message.msg_type == MessageType::MsgAppendResponse
            && message.reject
            && message.reject_hint == 0
            && raft.state == StateRole::Leader;
        if empty_rejection && !self.founders.contains(&message.from) && message.request_snapshot == 0 {
            message.request_snapshot = 1;
        }
        let conf = self.raw.store().conf_state();
        let without_membership = conf.voters.is_empty() && conf.learners.is_empty();
        !(without_membership
            && message.msg_type == MessageType::MsgAppend
            && message.index == 0
            && !message.entries.is_empty())
    }

    /// Applies the membership changes among `entries` (committed, in order) to raft-rs, and
    /// keeps each new membership on disk before anything after it is reported. A change raft-rs
    /// refuses (or that does not decode) is refused the same way on every member, and skipped.
    /// One at or before the membership the files hold was applied before a restart.
    async fn apply_membership_changes(&mut self, entries: &[Entry]) -> Result<()> {
        for entry in entries {
            use protobuf::Message as _;
            let change = match entry.entry_type {
                // Only `Input::ChangeMembership`'s form (and raft-rs' own leaving of a joint
                // membership) is ever proposed here.
                EntryType::EntryConfChange => None,
                EntryType::EntryConfChangeV2 => ConfChangeV2::parse_from_bytes(&entry.data).ok(),
                EntryType::EntryNormal => continue,
            };
            if entry.index <= self.raw.store().conf_index() {
                continue;
            }
            let Some(conf_state) = change.and_then(|change| self.raw.apply_conf_change(&change).ok()) else {
                continue;
            };
            self.log.save_conf(entry.index, &conf_state).await?;
            self.raw.store().set_conf_state(entry.index, conf_state.clone());
            self.events.membership_changed(self.id, entry.index, &conf_state);
        }
        Ok(())
    }

    /// On a leader, a follower's rejection of an append that contradicts what the follower
    /// already acknowledged in this term (a duplicated or late message: the network may
    /// deliver either) is dropped (false), and one whose hint points below it is pointed at it.
    /// raft-rs 0.7 moves the follower's next index to `min(rejected, hint + 1)` in the probe
    /// state, even below `matched + 1` (etcd's raft clamps it to `matched + 1`); with the log
    /// compacted up to `matched` that asks for a snapshot, which a group that waits for every
    /// member before compacting cannot send, and the follower would never be sent another
    /// entry (a group with `laggard_held_bytes_max` would send one needlessly). The cluster simulation found it (a
    /// follower stuck at the leader's compaction point while the others went on).
    fn fix_stale_rejection(&self, message: &mut Message) -> bool {
        let raft = &self.raw.raft;
        if message.msg_type != MessageType::MsgAppendResponse
            || !message.reject
            || raft.state != StateRole::Leader
            || message.term != raft.term
        {
            return true;
        }
        let Some(progress) = raft.prs().get(message.from) else { return true };
        reject_within_match(message, progress.matched)
    }

    /// Handles `Ready`s until raft-rs has nothing more to say (advancing one can make the
    /// next: entries newly committed, messages to send).
    async fn process_ready(&mut self) -> Result<()> {
        loop {
            while self.raw.has_ready() {
                self.process_one_ready().await?;
            }
            // The snapshot is a small message (the state comes from a peer, at the follower's
            // pace), so it is reported delivered once sent: raft-rs probes the follower again,
            // which answers once it has restored, or rejects and gets another snapshot.
            if self.snapshots_sent.is_empty() {
                return Ok(());
            }
            for to in std::mem::take(&mut self.snapshots_sent) {
                self.raw.report_snapshot(to, SnapshotStatus::Finish);
            }
        }
    }

    async fn process_one_ready(&mut self) -> Result<()> {
        let mut ready = self.raw.ready();
        if let Some(soft) = ready.ss() {
            self.events.leader_changed(self.id, self.raw.raft.term, soft.leader_id);
            // A request the old leader had is lost with it: its caller asks again.
            self.read_indexes.clear();
        }
        for read in ready.take_read_states() {
            if let Some(reply) = self.read_indexes.remove(&read.request_ctx) {
                let _ = reply.try_send(read.index);
            }
        }
        if ready.ss().is_some_and(|soft| soft.raft_state == StateRole::Leader) {
            self.events.became_leader(self.id, self.raw.raft.term, self.raw.store());
        }
        for message in ready.take_messages() {
            self.send(message);
        }
        if !ready.snapshot().is_empty() {
            // The state machine holds its entries (`restore_snapshot`): the log starts after it.
            let metadata = ready.snapshot().get_metadata();
            let (index, term) = (metadata.index, metadata.term);
            // The membership first: a log that starts after the snapshot must never open with
            // the membership of before it (a crash before the rest only brings the snapshot
            // again, and the membership with it).
            let conf_state = metadata.get_conf_state().clone();
            self.log.save_conf(index, &conf_state).await?;
            self.log.install_snapshot(index, term).await?;
            let mut hard_state = ready.hs().cloned().unwrap_or_else(|| self.raw.store().hard_state());
            hard_state.commit = hard_state.commit.max(index);
            self.log.save_hard_state(&hard_state).await?;
            self.saved(hard_state.commit);
            self.raw.store().restore(index, term);
            self.raw.store().set_conf_state(index, conf_state.clone());
            self.durable_applied = self.durable_applied.max(index);
            self.events.restored(self.id, index);
            self.events.membership_changed(self.id, index, &conf_state);
        }
        let committed = ready.take_committed_entries();
        // Membership changes among them first (they are durable already; raft-rs' own example
        // applies committed entries before it persists the rest of a `Ready`): the hard state
        // written below may hold a commit past them, and a member restarted with that commit
        // takes them as applied and never reads them again, so a crash between that write and
        // the membership's would lose the change.
        self.apply_membership_changes(&committed).await?;
        let hard_state = ready.hs().cloned();
        let mut offsets = Vec::new();
        if !ready.entries().is_empty() {
            offsets = self.log.append(ready.entries()).await?;
            self.log.sync().await?;
        }
        self.bytes_since_saved += ready.entries().iter().map(|entry| entry.data.len()).sum::<usize>();
        if let Some(hard_state) = &hard_state {
            // The term and the vote must be durable before any message that depends on them
            // leaves. The commit index need not be (a restarted replica learns it again from
            // its leader, and re-reports the entries after the one stored), so a change of
            // the commit alone is written only once `limits::COMMIT_SAVED_EVERY_BYTES` of
            // entries were appended since the last write: writing the file (a temporary file,
            // two fsyncs and a rename) at every `Ready` was most of a group's disk work.
            let saved = self.raw.store().hard_state();
            let vote_or_term = hard_state.term != saved.term || hard_state.vote != saved.vote;
            if vote_or_term || self.bytes_since_saved >= COMMIT_SAVED_EVERY_BYTES {
                self.log.save_hard_state(hard_state).await?;
                self.saved(hard_state.commit);
            }
        }
        // Durable: now Raft's cache and the peers may learn of it.
        {
            let store = self.raw.store();
            store.append(ready.entries(), &offsets);
            if let Some(hard_state) = hard_state {
                store.set_hard_state(hard_state);
            }
        }
        for message in ready.take_persisted_messages() {
            self.send(message);
        }
        self.report(committed);
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            // Kept in the cache; written with the next hard state (a commit index on disk
            // that lags only costs a restarted replica a little re-reporting).
            self.raw.store().set_commit(commit);
        }
        for message in light.take_messages() {
            self.send(message);
        }
        let committed = light.take_committed_entries();
        self.apply_membership_changes(&committed).await?;
        self.report(committed);
        let commit = self.raw.store().hard_state().commit;
        self.log.committed(commit, self.raw.store())?;
        self.raw.advance_apply();
        self.raw.store().evict(self.raw.raft.raft_log.applied);
        Ok(())
    }

    /// Reports committed entries to the host; a membership change's is reported without its
    /// data (the replica applied it: the host's state machine has nothing to do with it).
    fn report(&self, mut entries: Vec<Entry>) {
        for entry in &mut entries {
            if entry.entry_type != EntryType::EntryNormal {
                entry.entry_type = EntryType::EntryNormal;
                entry.data = Bytes::new();
            }
        }
        if !entries.is_empty() {
            let store = self.raw.store();
            let places: Vec<Option<u64>> = entries.iter().map(|entry| store.offset(entry.index)).collect();
            self.events.committed(self.id, &entries, &places);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(index: u64, reject_hint: u64, log_term: u64) -> Message {
        Message {
            msg_type: MessageType::MsgAppendResponse,
            reject: true,
            index,
            reject_hint,
            log_term,
            ..Default::default()
        }
    }

    #[test]
    fn a_rejection_never_sends_the_leader_back_below_what_the_follower_matched() {
        // A late or duplicated rejection of an index the follower has since acknowledged.
        assert!(!reject_within_match(&mut rejection(143, 142, 3), 143));
        assert!(!reject_within_match(&mut rejection(100, 99, 3), 143));
        // A rejection past it with a hint below it: probe right after `matched`.
        let mut low_hint = rejection(150, 120, 3);
        assert!(reject_within_match(&mut low_hint, 143));
        assert_eq!((low_hint.reject_hint, low_hint.log_term), (143, 0));
        // One that does not contradict it passes unchanged.
        let mut fine = rejection(150, 146, 3);
        assert!(reject_within_match(&mut fine, 143));
        assert_eq!((fine.reject_hint, fine.log_term), (146, 3));
    }
}
