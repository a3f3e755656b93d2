//! One Raft group hosted on a glommio executor: its [`Replica`], the clock that ticks it,
//! the appends waiting for their commit, and the committed log they are read from.
//!
//! `sluiced` runs one per shard on the shard's core and one for its catalog (with one
//! [`crate::transport::PeerNetwork`] per core carrying every group's messages;
//! `server/src/ops/cluster/`); the `sluice-cluster-node` binary runs one, to test the layer
//! end to end with real processes.
//!
//! An append is proposed with a context naming this host's boot (a random nonce) and the
//! proposal's number. The replica says where in its log each proposal went, its index and the
//! term it leads in ([`ReplicaEvents::proposed`]), and the append is answered when the entry
//! committed at that index is reported: durable on a quorum, and on this node (`replica`'s
//! rule). By Raft's log matching property an index and a term name one entry, so the entry is
//! the append's exactly when its term is the one it was placed in; the entry's context is not
//! needed to tell (a log whose entries do not keep their contexts, such as the journal the
//! shard groups' logs are to become, answers its proposers alike). So an append whose leader
//! is deposed (a leadership transfer, or a new election this node hears of) is followed to its
//! end: the next leader commits its entry (success, as if nothing happened) or commits another
//! entry at its index (it is in no log and never will be: [`AppendError::NotLeader`], which a
//! caller may send elsewhere at once). Only a wait past [`APPEND_COMMIT_WAIT_MS`], or a snapshot that
//! skips the index, leaves the outcome unknown ("timed out", "leadership lost"); never a
//! false success. Each append is proposed once, so it is in the log at most once; a client
//! that retries after an unknown outcome may store its data twice, as Kinesis' own
//! PutRecords may.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use raft::eraftpb::{ConfChangeV2, ConfState, Entry};
use sluice_engine::format::RaftPosition;

use crate::error::Result;
use crate::limits::{
    APPEND_COMMIT_WAIT_MS, COMMITTED_KEPT_BYTES, INBOX_INPUTS_MAX, PROPOSALS_PENDING_MAX, READ_INDEX_WAIT_MS,
    READ_RESPONSE_BYTES_MAX, TICK_INTERVAL_MS,
};
use crate::log_storage::LogStorage;
use crate::log_store::LogStore;
use crate::replica::{
    CommittedEntry, Input, Replica, ReplicaConfig, ReplicaEvents, Restored, Restoring, SnapshotToRestore, Transport,
};
use crate::wire::{GroupId, NodeStatus, APPEND_DATA_BYTES_MAX, PROPOSAL_CONTEXT_BYTES, READ_CONTEXT_BYTES};

#[derive(Debug, Clone)]
pub struct GroupHostConfig {
    pub group: GroupId,
    pub replica: ReplicaConfig,
    /// Real time per Raft tick (`limits::TICK_INTERVAL_MS` by default).
    pub tick_interval: Duration,
    /// Differs between boots of this node (random): it tells this boot's proposals from an
    /// earlier boot's, which a later leader may still commit.
    pub boot_nonce: u64,
    /// Signalled (`try_send`: a full channel has a signal waiting already) each time this
    /// replica sees the group's leader change, so that whoever publishes leaders need not wait
    /// for its next tick to say so.
    pub leader_changed: Option<async_channel::Sender<()>>,
}

/// An append's success: where its entry is in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub index: u64,
    pub term: u64,
    /// The entry's place in this member's log, as its log storage gave it
    /// (`ReplicaEvents::committed`): for a log kept in the journal
    /// (`journal_log::JournalLog`), the first record index of the entry's records, from which
    /// its proposer tells their sequence numbers; a file offset for `DurableLog`.
    pub place: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Nothing of the append is in the group's committed log, nor ever will be: this node did
    /// not lead when it was proposed, or the entry the group committed at its index is
    /// another one.
    #[error("not the leader (the leader is node {leader}; 0: unknown)")]
    NotLeader { leader: u64 },
    #[error("an append of {length_bytes} bytes (1 to {APPEND_DATA_BYTES_MAX})")]
    Size { length_bytes: usize },
    #[error("{pending} appends are waiting for their commit")]
    Busy { pending: usize },
    #[error("not committed within {waited_ms} ms; it may still be")]
    Timeout { waited_ms: u64 },
    /// The group stopped here, or a snapshot skipped the entry's index: its outcome is unknown.
    #[error("this node stopped leading before the entry committed; it may still be")]
    LeadershipLost,
}

/// Why a read index ([`GroupHost::read_index`]) was not had; the caller asks again, or another
/// member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadIndexError {
    #[error("the group has no leader right now (an election is under way)")]
    NoLeader,
    #[error("the group's replica has {inputs} inputs waiting already")]
    Busy { inputs: usize },
    #[error("the leader did not confirm its leadership within {waited_ms} ms")]
    Timeout { waited_ms: u64 },
    #[error("the leader changed while it was asked")]
    LeaderChanged,
}

/// A running group. Cloning shares it.
#[derive(Clone)]
pub struct GroupHost {
    inner: Rc<HostInner>,
}

/// How a host's state machine is restored from a peer when its group sends it a snapshot
/// (`ReplicaEvents::restore`): resolves to `Restored::Done` once the state machine durably
/// holds every entry up to the snapshot's index.
pub type Restorer = Rc<dyn Fn(SnapshotToRestore) -> Restoring>;

struct HostInner {
    node_id: u64,
    leader_changed: Option<async_channel::Sender<()>>,
    restorer: Option<Restorer>,
    inbox: async_channel::Sender<Input>,
    boot_nonce: u64,
    next_proposal: Cell<u64>,
    /// The number of the next read-index request.
    next_read: Cell<u64>,
    state: RefCell<HostState>,
}

#[derive(Default)]
struct HostState {
    /// The last committed index.
    commit: u64,
    /// The newest committed entries, ending at `commit` (at most
    /// `limits::COMMITTED_KEPT_BYTES` of data, or the newest entry); older ones are read from
    /// disk.
    committed: VecDeque<CommittedEntry>,
    committed_bytes: usize,
    /// Entries read from disk for an applier behind `committed`: (index, entry), contiguous.
    replay: VecDeque<(u64, CommittedEntry)>,
    term: u64,
    leader: u64,
    /// Proposal number → where its outcome goes.
    pending: HashMap<u64, async_channel::Sender<std::result::Result<Appended, AppendError>>>,
    /// Log index → the term each proposal the replica placed there was placed in, and its
    /// number, while its outcome is not known (more than one if this node led twice and its
    /// log was cut back between): the entry committed at the index decides them all, the one
    /// of its term committed, the others in no log.
    placed: BTreeMap<u64, Vec<(u64, u64)>>,
    /// Who waits for the next commit ([`GroupHost::committed_past`]); woken and cleared on
    /// each. At most one per applier of the group (it is how an applier sleeps).
    commit_waiters: Vec<async_channel::Sender<()>>,
    /// [`GroupHost::stop`] was called.
    stopped: bool,
    /// The group's membership as this replica applied it last.
    membership: ConfState,
    /// `ReplicaEvents::follower_lag`'s last report.
    follower_lag: u64,
}

impl HostState {
    /// Entries up to `commit` are committed, and none of them is kept here (reports continue
    /// after it; older entries are read from the log).
    fn committed_from(&mut self, commit: u64) {
        self.commit = commit;
        self.committed.clear();
        self.committed_bytes = 0;
        self.replay.clear();
    }
}

struct HostEvents(Rc<HostInner>);

impl ReplicaEvents for HostEvents {
    fn opened(&self, _node_id: u64, commit: u64) {
        self.0.state.borrow_mut().committed_from(commit);
    }

    fn committed(&self, _node_id: u64, entries: &[Entry], places: &[Option<u64>]) {
        let inner = &self.0;
        let mut state = inner.state.borrow_mut();
        for (entry, &place) in entries.iter().zip(places) {
            assert_eq!(entry.index, state.commit + 1, "the replica reported a commit out of order");
            state.commit = entry.index;
            state.committed_bytes += entry.data.len();
            state.committed.push_back(CommittedEntry { term: entry.term, data: entry.data.clone() });
            while state.committed_bytes > COMMITTED_KEPT_BYTES && state.committed.len() > 1 {
                let dropped = state.committed.pop_front().expect("more than one");
                state.committed_bytes -= dropped.data.len();
            }
            // The proposal placed at this index in this entry's term is this entry; those
            // placed there in another term sat in a log cut back since: the group committed
            // another entry there, so they are in no log, for good.
            for (term, number) in state.placed.remove(&entry.index).unwrap_or_default() {
                let Some(outcome) = state.pending.remove(&number) else { continue };
                let result = if term == entry.term {
                    Ok(Appended { index: entry.index, term: entry.term, place })
                } else {
                    Err(inner.not_leader(state.leader))
                };
                let _ = outcome.try_send(result);
            }
        }
        for waiter in state.commit_waiters.drain(..) {
            let _ = waiter.try_send(());
        }
    }

    fn became_leader(&self, _node_id: u64, term: u64, _log: &LogStore) {
        self.0.state.borrow_mut().term = term;
    }

    fn restore(&self, _node_id: u64, snapshot: SnapshotToRestore) -> Restoring {
        match &self.0.restorer {
            Some(restorer) => restorer(snapshot),
            None => Box::pin(async { Restored::Dropped }),
        }
    }

    fn follower_lag(&self, _node_id: u64, entries: u64) {
        self.0.state.borrow_mut().follower_lag = entries;
    }

    fn membership_changed(&self, _node_id: u64, _index: u64, conf_state: &ConfState) {
        self.0.state.borrow_mut().membership = conf_state.clone();
    }

    fn restored(&self, _node_id: u64, index: u64) {
        let mut state = self.0.state.borrow_mut();
        state.committed_from(index);
        // The entries up to the snapshot's index are not reported: whether those proposals
        // were committed is not known here.
        let later = state.placed.split_off(&(index + 1));
        for (_, number) in std::mem::replace(&mut state.placed, later).into_values().flatten() {
            if let Some(outcome) = state.pending.remove(&number) {
                let _ = outcome.try_send(Err(AppendError::LeadershipLost));
            }
        }
        // An applier waiting for the entry after its own position moves on to the snapshot's.
        for waiter in state.commit_waiters.drain(..) {
            let _ = waiter.try_send(());
        }
    }

    fn leader_changed(&self, _node_id: u64, term: u64, leader_id: u64) {
        let mut state = self.0.state.borrow_mut();
        if state.stopped {
            return;
        }
        state.term = term;
        let changed = state.leader != leader_id;
        state.leader = leader_id;
        if changed {
            if let Some(signal) = &self.0.leader_changed {
                let _ = signal.try_send(());
            }
        }
        // Appends waiting here keep waiting when this node stops leading: the entries the
        // group commits decide them (`committed`), or their wait ends (`GroupHost::append`).
    }

    fn proposed(&self, _node_id: u64, context: &[u8], placed: Option<RaftPosition>) {
        let inner = &self.0;
        let Some(number) = inner.own_proposal(context) else { return };
        let mut state = inner.state.borrow_mut();
        match placed {
            // Past the commit (a leader appends there): the commit of that index decides it.
            Some(RaftPosition { term, index }) if index > state.commit => {
                state.placed.entry(index).or_default().push((term, number))
            }
            // A leader's new entry is never at or below the commit it reported: left to the
            // append's wait, as an outcome not known.
            Some(_) => {}
            None => {
                if let Some(outcome) = state.pending.remove(&number) {
                    let _ = outcome.try_send(Err(inner.not_leader(state.leader)));
                }
            }
        }
    }
}

impl HostInner {
    fn proposal_context(&self, number: u64) -> Vec<u8> {
        let mut context = Vec::with_capacity(PROPOSAL_CONTEXT_BYTES);
        context.extend_from_slice(&self.boot_nonce.to_le_bytes());
        context.extend_from_slice(&number.to_le_bytes());
        context
    }

    /// The context of read-index request `number` (`wire::READ_CONTEXT_BYTES`).
    fn read_context(&self, number: u64) -> Vec<u8> {
        let mut context = Vec::with_capacity(READ_CONTEXT_BYTES);
        for word in [self.node_id, self.boot_nonce, number] {
            context.extend_from_slice(&word.to_le_bytes());
        }
        context
    }

    /// The refusal of one of this node's appends that is in no log, naming the leader it knows
    /// unless that is this node (handing its leadership over, or leading again): 0, unknown.
    fn not_leader(&self, leader: u64) -> AppendError {
        AppendError::NotLeader { leader: if leader == self.node_id { 0 } else { leader } }
    }

    /// The proposal number, if `context` is one of this boot's proposals.
    fn own_proposal(&self, context: &[u8]) -> Option<u64> {
        if context.len() != PROPOSAL_CONTEXT_BYTES || context[..8] != self.boot_nonce.to_le_bytes() {
            return None;
        }
        Some(u64::from_le_bytes(context[8..].try_into().expect("eight bytes")))
    }
}

impl GroupHost {
    /// Starts the group's replica, from its opened log (`log` and what it held, `store`:
    /// `DurableLog::open_for`, say), and its clock on the current glommio executor. The task
    /// ends only if the replica's storage fails (the error): the replica has stopped, and the
    /// process must restart it from its disk.
    /// `restorer` brings the state machine up to a snapshot the group is sent (required if
    /// the group's `laggard_held_bytes_max` is set: its peers compact past members far behind).
    pub fn start<L, T>(
        (log, store): (L, LogStore),
        config: GroupHostConfig,
        transport: T,
        restorer: Option<Restorer>,
    ) -> Result<(GroupHost, glommio::Task<Result<()>>)>
    where
        L: LogStorage + 'static,
        T: Transport + 'static,
    {
        let (inbox, inputs) = async_channel::bounded(INBOX_INPUTS_MAX);
        let inner = Rc::new(HostInner {
            node_id: config.replica.id,
            leader_changed: config.leader_changed.clone(),
            restorer,
            inbox,
            boot_nonce: config.boot_nonce,
            next_proposal: Cell::new(1),
            next_read: Cell::new(1),
            state: RefCell::new(HostState::default()),
        });
        let replica = Replica::open(log, store, &config.replica, transport, HostEvents(inner.clone()))?;
        let running = glommio::spawn_local(replica.run(inputs));
        let clock = inner.inbox.clone();
        let tick_interval = config.tick_interval;
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(tick_interval).await;
                // A full inbox skips a tick (the replica is behind anyway); a closed one means
                // the replica stopped.
                if let Err(async_channel::TrySendError::Closed(_)) = clock.try_send(Input::Tick) {
                    break;
                }
            }
        })
        .detach();
        Ok((GroupHost { inner }, running))
    }

    /// Asks the replica to hand the leadership to member `to` (see `Input::TransferLeader`:
    /// done only if this member leads and `to` is caught up). Nothing waits for it: the
    /// leader it produces shows in [`GroupHost::leader`].
    pub fn transfer_leader(&self, to: u64) {
        let _ = self.inner.inbox.try_send(Input::TransferLeader { to });
    }

    /// Asks the replica to propose `change` of the group's membership (see
    /// `Input::ChangeMembership`: only a leader does, one change at a time). Nothing waits for
    /// it: the membership it produces shows in [`GroupHost::membership`].
    pub fn change_membership(&self, change: ConfChangeV2) {
        let _ = self.inner.inbox.try_send(Input::ChangeMembership(change));
    }

    /// The group's membership as this replica applied it last (voters, learners, and while a
    /// change is under way the outgoing voters).
    pub fn membership(&self) -> ConfState {
        self.inner.state.borrow().membership.clone()
    }

    /// The nodes that may send this group messages from now on (`ReplicaConfig::members`).
    /// A full inbox drops the news; the caller repeats it.
    pub fn set_members(&self, members: Vec<u64>) -> bool {
        self.inner.inbox.try_send(Input::SetMembers(members)).is_ok()
    }

    /// The state machine holds every entry up to `index` durably, and will never read them
    /// again, even after a restart: the replica may drop them from its log once every member
    /// has them (`Input::Compactable`); `state` is what another member needs to restore its
    /// state machine to `index` from this one. A full inbox drops the news; the next call
    /// repeats it.
    pub fn compactable(&self, index: u64, state: Bytes) {
        let _ = self.inner.inbox.try_send(Input::Compactable { index, state });
    }

    /// Where the network delivers this group's messages.
    pub fn inbox(&self) -> async_channel::Sender<Input> {
        self.inner.inbox.clone()
    }

    /// Appends `data` and waits until its entry is committed (durable on a quorum and here).
    pub async fn append(&self, data: Bytes) -> std::result::Result<Appended, AppendError> {
        if data.is_empty() || data.len() > APPEND_DATA_BYTES_MAX {
            return Err(AppendError::Size { length_bytes: data.len() });
        }
        let inner = &self.inner;
        let number = inner.next_proposal.get();
        let (outcome, waiting) = async_channel::bounded(1);
        {
            let mut state = inner.state.borrow_mut();
            if state.leader != inner.node_id {
                return Err(AppendError::NotLeader { leader: state.leader });
            }
            if state.pending.len() >= PROPOSALS_PENDING_MAX {
                return Err(AppendError::Busy { pending: state.pending.len() });
            }
            let proposal = Input::Propose { context: inner.proposal_context(number), data: data.to_vec() };
            if inner.inbox.try_send(proposal).is_err() {
                return Err(AppendError::Busy { pending: state.pending.len() });
            }
            state.pending.insert(number, outcome);
        }
        inner.next_proposal.set(number + 1);
        let answered = futures_lite::future::or(async { waiting.recv().await.ok() }, async {
            glommio::timer::sleep(Duration::from_millis(APPEND_COMMIT_WAIT_MS)).await;
            None
        })
        .await;
        match answered {
            Some(result) => result,
            None => {
                let mut state = inner.state.borrow_mut();
                state.pending.remove(&number);
                // Its place too: the index may not be committed for long (a group left idle).
                state.placed.retain(|_, numbers| {
                    numbers.retain(|(_, placed)| *placed != number);
                    !numbers.is_empty()
                });
                Err(AppendError::Timeout { waited_ms: APPEND_COMMIT_WAIT_MS })
            }
        }
    }

    /// The group's commit index once its leader has confirmed it still leads
    /// (`Input::ReadIndex`): wait until the state machine has applied it, and a read of it
    /// sees every entry committed before this call. Asked of the leader, through it on a
    /// follower; waits [`READ_INDEX_WAIT_MS`] at most.
    pub async fn read_index(&self) -> std::result::Result<u64, ReadIndexError> {
        let inner = &self.inner;
        if inner.state.borrow().leader == 0 {
            return Err(ReadIndexError::NoLeader);
        }
        let number = inner.next_read.get();
        inner.next_read.set(number + 1);
        let (reply, answer) = async_channel::bounded(1);
        let request = Input::ReadIndex { context: inner.read_context(number), reply };
        if inner.inbox.try_send(request).is_err() {
            return Err(ReadIndexError::Busy { inputs: INBOX_INPUTS_MAX });
        }
        let answered = futures_lite::future::or(async { Some(answer.recv().await) }, async {
            glommio::timer::sleep(Duration::from_millis(READ_INDEX_WAIT_MS)).await;
            None
        })
        .await;
        match answered {
            Some(Ok(index)) => Ok(index),
            // Dropped by the replica: a leader change, or too many waiting.
            Some(Err(_)) => Err(ReadIndexError::LeaderChanged),
            None => Err(ReadIndexError::Timeout { waited_ms: READ_INDEX_WAIT_MS }),
        }
    }

    /// Committed entries from index `from` (1 is the first) on: at most `count_max`, and no
    /// more bytes than `limits::READ_RESPONSE_BYTES_MAX` (but at least one entry, if any).
    /// Empty data is an entry Raft made itself (a new leader's first).
    pub async fn read(&self, from: u64, count_max: usize) -> Vec<Bytes> {
        let mut entries = Vec::new();
        let mut bytes = 0;
        for index in from.max(1).. {
            if entries.len() >= count_max {
                break;
            }
            let Some(CommittedEntry { data, .. }) = self.committed_entry(index).await else { break };
            bytes += 4 + data.len();
            if bytes > READ_RESPONSE_BYTES_MAX && !entries.is_empty() {
                break;
            }
            entries.push(data);
        }
        entries
    }

    /// Resolves once the committed log is longer than `index` entries (at once if it is).
    /// How an applier of the committed entries waits for more.
    pub async fn committed_past(&self, index: u64) {
        let waiting = {
            let mut state = self.inner.state.borrow_mut();
            if state.commit > index || state.stopped {
                return;
            }
            let (waker, waiting) = async_channel::bounded(1);
            state.commit_waiters.push(waker);
            waiting
        };
        let _ = waiting.recv().await;
    }

    /// The committed entry at `index` (1 is the first), if committed: from memory if it is
    /// among the newest, else from disk through the replica (with the entries after it, for
    /// the next calls). `None` also if the replica has stopped (after a pause of one tick, so
    /// that an applier retrying does not spin).
    pub async fn committed_entry(&self, index: u64) -> Option<CommittedEntry> {
        let commit = {
            let mut state = self.inner.state.borrow_mut();
            if index == 0 || index > state.commit {
                return None;
            }
            let kept_from = state.commit + 1 - state.committed.len() as u64;
            if index >= kept_from {
                return state.committed.get((index - kept_from) as usize).cloned();
            }
            while state.replay.front().is_some_and(|(at, _)| *at < index) {
                state.replay.pop_front();
            }
            if let Some((at, entry)) = state.replay.front() {
                if *at == index {
                    return Some(entry.clone());
                }
            }
            state.commit
        };
        let (reply, answer) = async_channel::bounded(1);
        let asked = self.inner.inbox.send(Input::ReadCommitted { from: index, to: commit, reply }).await;
        let entries = match asked {
            Ok(()) => answer.recv().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let found = entries.first().filter(|(at, _)| *at == index).map(|(_, entry)| entry.clone());
        if found.is_none() {
            glommio::timer::sleep(Duration::from_millis(TICK_INTERVAL_MS)).await;
        }
        self.inner.state.borrow_mut().replay = entries.into();
        found
    }

    /// Stops the group on this node for good (its shard was deleted): the replica ends once
    /// it has handled what its inbox holds, appends waiting hear "leadership lost", and an
    /// applier waiting for commits wakes and sees [`GroupHost::stopped`].
    pub fn stop(&self) {
        self.inner.inbox.close();
        let mut state = self.inner.state.borrow_mut();
        state.stopped = true;
        state.leader = 0;
        state.placed.clear();
        for (_, outcome) in state.pending.drain() {
            let _ = outcome.try_send(Err(AppendError::LeadershipLost));
        }
        for waiter in state.commit_waiters.drain(..) {
            let _ = waiter.try_send(());
        }
    }

    pub fn stopped(&self) -> bool {
        self.inner.state.borrow().stopped
    }

    /// On the group's leader, the most entries another member is not known to hold yet (0 on
    /// a follower): how far the slowest member is behind.
    pub fn follower_lag(&self) -> u64 {
        self.inner.state.borrow().follower_lag
    }

    /// Whether this node leads the group, and the leader it knows (0: none).
    pub fn leader(&self) -> u64 {
        self.inner.state.borrow().leader
    }

    pub fn status(&self) -> NodeStatus {
        let state = self.inner.state.borrow();
        NodeStatus { node: self.inner.node_id, term: state.term, leader: state.leader, commit: state.commit }
    }
}
