//! One member of one Raft group: raft-rs' `RawNode` driven by an async loop over an inbox of
//! [`Input`]s, with its log made durable through [`DurableLog`] before anyone learns of it.
//!
//! The loop follows raft-rs' `Ready` protocol (see the `raft::RawNode` docs): take what the
//! inputs produced; send the leader's messages (they may leave before its own write, as the
//! Raft thesis §10.2.1 allows); write and sync the new entries, then the hard state; only then
//! send the messages that promise them (votes, append responses) and report the committed
//! entries; then advance. So "committed" means durable on a quorum, and on this replica too.
//!
//! Nothing here reads a clock or draws a random number: time is the [`Input::Tick`]s the
//! host delivers, and the election timeout is a per-boot value the host chooses (raft-rs
//! draws its own from a thread-local RNG; pinning its range to one value keeps a seeded
//! simulation replayable).

use std::path::PathBuf;

use raft::eraftpb::{ConfState, Entry, Message, MessageType};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};
use sluice_engine::storage::Storage;

use crate::durable_log::DurableLog;
use crate::error::Result;
use crate::limits::{
    APPEND_MESSAGES_IN_FLIGHT_MAX, APPEND_MESSAGE_BYTES_MAX, ENTRY_PAYLOAD_BYTES_MAX, HEARTBEAT_TICKS,
};
use crate::wire::validate_peer_message;

/// What a replica's inbox carries.
#[derive(Debug)]
pub enum Input {
    /// One unit of Raft time passed.
    Tick,
    /// A message from a peer.
    Message(Box<Message>),
    /// A client's entry, to be appended if this replica leads (dropped otherwise: the client
    /// learns of success only by the entry's commit, and retries elsewhere). The context
    /// travels with the entry (the host tags its proposals to recognise them committed).
    Propose { context: Vec<u8>, data: Vec<u8> },
    /// Hand the leadership to member `to`, if this replica leads and `to` is caught up (has
    /// every entry of the log and answered recently); ignored otherwise. Leader balancing
    /// asks for it; raft-rs refuses proposals while the transfer is under way (at most an
    /// election timeout), and they are retried as any proposal dropped.
    TransferLeader { to: u64 },
}

/// Carries messages to peers. Sending never blocks and may lose the message (Raft retries).
/// Two implement it: the simulated network (`sim`) and TCP between nodes (`transport`).
pub trait Transport {
    fn send(&self, message: Message);
}

/// What a replica tells its host.
pub trait ReplicaEvents {
    /// Entries now committed (durable on a quorum, and here), in index order. After a restart
    /// the replica reports its committed entries again from index 1.
    fn committed(&self, node_id: u64, entries: &[Entry]);
    /// This replica just won the election of `term`; `log` is its whole log at that moment.
    fn became_leader(&self, node_id: u64, term: u64, log: &[Entry]);
    /// The leader this replica knows changed (`leader_id` 0: none), or its role did; `term`
    /// is its current term.
    fn leader_changed(&self, node_id: u64, term: u64, leader_id: u64) {
        let _ = (node_id, term, leader_id);
    }
}

#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// This member's id (not 0, unique in the group).
    pub id: u64,
    /// Every voting member's id, this one's included.
    pub voters: Vec<u64>,
    /// Ticks without a leader before campaigning, drawn from this range for each election
    /// (raft-rs' randomised timeout, so that elections do not split forever); its start, more
    /// than `3 * HEARTBEAT_TICKS`, is also the leader's lease (check-quorum: a member that
    /// heard from a leader within it refuses to vote). The simulation passes a range of one
    /// value, drawn per boot from its seed, because raft-rs draws from a thread-local RNG that
    /// a seed cannot replay.
    pub election_ticks: std::ops::Range<usize>,
    /// Where the Raft files live.
    pub dir: PathBuf,
}

pub struct Replica<S: Storage, T: Transport, E: ReplicaEvents> {
    id: u64,
    voters: Vec<u64>,
    raw: RawNode<MemStorage>,
    log: DurableLog<S>,
    transport: T,
    events: E,
}

impl<S: Storage, T: Transport, E: ReplicaEvents> Replica<S, T, E> {
    /// Opens the replica's files and restores its Raft state from what is durable there.
    pub async fn open(storage: S, config: &ReplicaConfig, transport: T, events: E) -> Result<Self> {
        let (log, recovered) = DurableLog::open(storage, &config.dir).await?;
        // The log's cache in memory, which raft-rs reads from (the durable log is its truth).
        // Unfinished: a snapshot and log compaction; until then the log and its cache grow
        // without bound, and membership is the fixed `voters`.
        let cache = MemStorage::new_with_conf_state(ConfState::from((config.voters.clone(), vec![])));
        cache.wl().append(&recovered.entries)?;
        cache.wl().set_hardstate(recovered.hard_state);
        let raft_config = Config {
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
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&raft_config, cache, &logger)?;
        Ok(Replica { id: config.id, voters: config.voters.clone(), raw, log, transport, events })
    }

    /// Serves the inbox until it closes (Ok) or the storage fails (the error: the replica must
    /// stop, and its host restart it from its disk).
    pub async fn run(mut self, inbox: async_channel::Receiver<Input>) -> Result<()> {
        while let Ok(input) = inbox.recv().await {
            self.handle(input);
            // Whatever else is waiting joins this round (one write and sync for all of it).
            while let Ok(input) = inbox.try_recv() {
                self.handle(input);
            }
            self.process_ready().await?;
        }
        Ok(())
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Tick => {
                self.raw.tick();
            }
            Input::Message(message) => {
                // A message raft-rs must not see (for another member, of a local type, with a
                // snapshot, with entries out of order: `validate_peer_message`) is dropped as a
                // lossy network would drop it; raft-rs ignores stale terms itself. Proposals
                // travel only as client requests (see `Input::Propose`).
                if validate_peer_message(&message, self.id, &self.voters).is_err() {
                    return;
                }
                // raft-rs asserts that a heartbeat's commit is within the log. A leader sends
                // at most what this replica acknowledged, which is durable here, so a larger
                // one is a message from a broken or hostile peer.
                let last_index = self.raw.raft.raft_log.last_index();
                if message.msg_type == MessageType::MsgHeartbeat && message.commit > last_index {
                    return;
                }
                let _ = self.raw.step(*message);
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
            Input::Propose { context, data } => {
                // Only the leader takes a proposal. raft-rs would have a follower forward it as
                // a Raft message, which the network may duplicate: the entry would be appended
                // twice. Requests are forwarded a layer up instead, where the client hears back
                // (issue 13); a proposal dropped here is never acknowledged, and retried.
                let fits = context.len() + data.len() <= ENTRY_PAYLOAD_BYTES_MAX - crate::codec::PAYLOAD_FIXED_BYTES;
                if fits && self.raw.raft.state == StateRole::Leader {
                    // ProposalDropped (a leadership transfer under way) is the same case.
                    let _ = self.raw.propose(context, data);
                }
            }
        }
    }

    /// Handles `Ready`s until raft-rs has nothing more to say (advancing one can make the
    /// next: entries newly committed, messages to send).
    async fn process_ready(&mut self) -> Result<()> {
        while self.raw.has_ready() {
            self.process_one_ready().await?;
        }
        Ok(())
    }

    async fn process_one_ready(&mut self) -> Result<()> {
        let mut ready = self.raw.ready();
        if let Some(soft) = ready.ss() {
            self.events.leader_changed(self.id, self.raw.raft.term, soft.leader_id);
        }
        if ready.ss().is_some_and(|soft| soft.raft_state == StateRole::Leader) {
            let log = self.raw.raft.raft_log.all_entries();
            self.events.became_leader(self.id, self.raw.raft.term, &log);
        }
        for message in ready.take_messages() {
            self.transport.send(message);
        }
        // We never compact the log, so no peer is ever sent a snapshot.
        assert!(ready.snapshot().is_empty(), "a snapshot reached a replica that never makes one");
        let committed = ready.take_committed_entries();
        let hard_state = ready.hs().cloned();
        if !ready.entries().is_empty() {
            self.log.append(ready.entries()).await?;
            self.log.sync().await?;
        }
        if let Some(hard_state) = &hard_state {
            self.log.save_hard_state(hard_state).await?;
        }
        // Durable: now Raft's cache and the peers may learn of it.
        {
            let store = self.raw.mut_store();
            store.wl().append(ready.entries())?;
            if let Some(hard_state) = hard_state {
                store.wl().set_hardstate(hard_state);
            }
        }
        for message in ready.take_persisted_messages() {
            self.transport.send(message);
        }
        self.report(committed);
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            // Kept in the cache; written with the next hard state (a commit index on disk
            // that lags only costs a restarted replica a little re-reporting).
            self.raw.mut_store().wl().mut_hard_state().commit = commit;
        }
        for message in light.take_messages() {
            self.transport.send(message);
        }
        self.report(light.take_committed_entries());
        self.raw.advance_apply();
        Ok(())
    }

    fn report(&self, entries: Vec<Entry>) {
        if !entries.is_empty() {
            self.events.committed(self.id, &entries);
        }
    }
}
