//! The delivery state of consumer groups and Kinesis queues on a core: `sluice-state`'s
//! deterministic machine, kept durable in an internal shard of the core's journal
//! (docs/state.md).
//!
//! ```text
//!  submit(command) ──► journal.append(internal shard, encoded entry)   (group commit)
//!                        │ durable: index i
//!                        ▼
//!  waiting[i] ──► apply in index order (i = next to apply, then i+1 …) ──► outcome to caller
//! ```
//!
//! A command is applied only once it is durable, and in log order even when appends of one
//! group commit finish in another order: an outcome is never answered from a state that a
//! restart would not rebuild. The outcome of a conditional command (take, checkpoint …) is
//! decided at apply time, so two takes validated against the same state are both logged and
//! the second is refused when applied, exactly as replay will refuse it.
//!
//! The internal shard is registered with the journal like a data shard, under a uid no
//! catalog shard can have ([`internal_shard_uid`]), and is never in the catalog, so no
//! request can route to it. At start-up the whole shard is read and replayed before the core
//! serves; an empty shard gets its `Init` entry first.
//!
//! **Snapshots.** The log would otherwise grow forever and pin every journal segment it has
//! an entry in (the internal shard has no time-based retention). Core 0 writes a snapshot
//! ([`Delivery::snapshot_if_due`]: `log::snapshot_entries`, appended and applied like any
//! entry) every `delivery_snapshot_interval_entries` applied entries, and also whenever the
//! log holds entries in a sealed segment (checked before each retention pass), so that a
//! quiet log never keeps an old segment alive. Once every part is durable it trims the
//! internal shard before `as_of + 1` (`Journal::trim_shard_before`); the next retention pass
//! deletes the segments nothing else needs. A crash while parts are written leaves an
//! incomplete snapshot that replay ignores, and the previous one is still there, because
//! trimming waits for the new one. Start-up replays from the latest complete snapshot and trims
//! the log before it again (a trim is recorded by the next retention pass, which a crash may
//! have preceded).
//!
//! **Replicated** (cluster mode, `docs/replication.md`): the internal shard of core 0 is the
//! log of a Raft group of its own on every member (`cluster::DELIVERY_GROUP`), whose applier
//! stores its committed entries in the journal as a shard's; so every member holds the same
//! entries at the same indexes. Its leader proposes the commands ([`Delivery::submit`]); every
//! member applies them in index order ([`Delivery::follow_log`]) as its applier queues them to
//! the journal ([`Delivery::committed`]: committed, so durable in a quorum's Raft logs, and a
//! restart stores and applies them again from there), or as they reach its journal when the
//! applier did not hand them over (a member restored from a peer's snapshot); so every member
//! has the same state, and the proposer answers with the outcome its own member applied,
//! without waiting for the journal's group commit.
//! Requests reach the leader (`cluster::forward`). The leader writes the snapshots (as
//! entries, like any command); every member trims its own log once a snapshot is whole in it.
//! A new leader first applies everything the log committed before its own term ([`Delivery::barrier`])
//! before it hands out application and queue ids, so that it never gives one twice.

use crate::kinesis::errors::engine_error;
use crate::ops::cluster::applied::Applied;
use bytes::Bytes;
use futures_channel::oneshot;
use sluice_engine::sequence::ShardSeqPrefix;
use sluice_engine::{AppendRecord, Journal, ShardSpec};
use sluice_model::KinesisError;
use sluice_state::handle::HandleKey;
use sluice_state::ids::LogIndex;
use sluice_state::{codec, log, Command, Entry, Outcome, State};
use std::cell::{Cell, Ref, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

/// The internal shard of core `core`: from the top of the uid space down, where the catalog's
/// uids (counted up from 0) never reach.
pub const fn internal_shard_uid(core: usize) -> u64 {
    u64::MAX - core as u64
}

/// The partition key every entry is appended with (the journal requires one; the log does
/// not use it).
const ENTRY_PARTITION_KEY: &[u8] = b"state";

/// Replicated: outcomes of applied entries kept for their proposers (taken at once; this
/// bounds what proposers that gave up leave behind).
const REPLICATED_OUTCOMES_KEPT_MAX: usize = 1024;

/// Replicated: committed entries the applier handed over ([`Delivery::committed`]) and not
/// applied yet. They are applied as they come, so this holds a few; past it (the state stopped
/// following its log) the applier's entries are not kept, and the journal has them.
const COMMITTED_KEPT_MAX: usize = 4_096;

/// Records read per journal read while replaying at start-up.
const REPLAY_READ_RECORDS_MAX: usize = 4_096;
/// Bytes read per journal read while replaying at start-up.
const REPLAY_READ_BYTES_MAX: usize = 8 << 20;

/// How a replicated node's delivery state reaches its Raft group. `ops::cluster` implements it
/// (`cluster::delivery::DeliveryGroup`) and the daemon hands it to [`Delivery::open`], so that
/// this module does not depend on replication.
pub trait Replication {
    /// Whether this member leads the delivery group now (only the leader proposes).
    fn leads(&self) -> bool;
    /// Proposes `record` (of the internal shard) as an entry of the delivery group, stamped
    /// `now_ms`, and answers its record index once the entry is committed and queued to this
    /// member's journal.
    fn propose(&self, now_ms: i64, record: AppendRecord) -> Pin<Box<dyn Future<Output = Result<u64, KinesisError>>>>;
}

/// A command appended and durable, waiting for the commands before it to be applied.
struct Waiting {
    entry: Entry,
    reply: oneshot::Sender<Result<Outcome, KinesisError>>,
}

/// One core's delivery state and its log.
pub struct Delivery {
    uid: u64,
    state: RefCell<State>,
    /// The index the next entry to apply has.
    next_apply: Cell<u64>,
    waiting: RefCell<BTreeMap<u64, Waiting>>,
    /// Applications get ids from here, above every id the log ever used.
    next_application_id: Cell<u64>,
    /// Queues get ids from here, above every id the log ever used.
    next_queue_id: Cell<u64>,
    /// Serializes the control operations (creating and deleting applications), whose checks
    /// read the state before their command is applied.
    control: glommio::sync::Semaphore,
    /// Applied entries (snapshot parts aside) after which a snapshot is written.
    snapshot_interval_entries: u64,
    /// Entries applied since the last snapshot began (snapshot parts aside).
    applied_since_snapshot: Cell<u64>,
    /// A snapshot is being written: one at a time.
    snapshotting: Cell<bool>,
    /// Snapshots completed since start-up (for the logs and tests).
    snapshots_written: Cell<u64>,
    /// Replicated (cluster mode): commands are proposed to the delivery group and applied as
    /// its applier stores them in the journal ([`Delivery::follow_log`]).
    replication: Option<Box<dyn Replication>>,
    /// Replicated: the last index applied here, and the outcomes its proposers take.
    applied: Applied<Result<Outcome, KinesisError>>,
    /// Replicated: the parts of each snapshot applied since the last whole one (as_of → the
    /// parts' numbers), to trim the log once one is whole.
    snapshot_parts: RefCell<BTreeMap<u64, BTreeSet<u32>>>,
    /// Replicated: entries committed and queued to the journal, by index, not applied yet
    /// ([`Delivery::committed`]), at most [`COMMITTED_KEPT_MAX`].
    committed: RefCell<BTreeMap<u64, Bytes>>,
    /// Replicated: [`Delivery::follow_log`] waiting for the next committed entry.
    committed_waiters: RefCell<Vec<async_channel::Sender<()>>>,
}

/// The replayed log: the state and where the log goes on.
struct Replay {
    state: State,
    next: u64,
    next_application_id: u64,
    next_queue_id: u64,
    replayed_count: u64,
}

/// Reads core `core`'s internal shard `uid` whole and replays it from its latest complete
/// snapshot.
async fn replay(journal: &Journal, uid: u64, core: usize) -> Result<Replay, KinesisError> {
    let (trim, next) = journal.bounds(uid).await.map_err(engine_error)?;
    let mut records = Vec::new();
    let mut from = trim;
    while from < next {
        let batch =
            journal.read(uid, from, REPLAY_READ_RECORDS_MAX, REPLAY_READ_BYTES_MAX).await.map_err(engine_error)?;
        if batch.records.is_empty() {
            break;
        }
        from = batch.next_index;
        records.extend(batch.records.into_iter().map(|record| (record.sequence_number.record_index(), record.data)));
    }
    let decoded = log::decode_log(records.iter().map(|(index, data)| (LogIndex(*index), data.as_ref())))
        .map_err(|error| KinesisError::internal(format!("the delivery state log of core {core}: {error}")))?;
    let replayed = log::replay(&decoded, log::StartFrom::LatestSnapshot)
        .map_err(|error| KinesisError::internal(format!("the delivery state log of core {core}: {error}")))?;
    // What the snapshot covers goes again: a trim is recorded by the retention pass after it,
    // so a member stopped before that pass finds the trimmed entries again.
    if let Some(before) = replayed.trim_before.filter(|before| before.0 > trim) {
        journal.trim_shard_before(uid, before.0).await.map_err(engine_error)?;
    }
    let next_application_id = decoded
        .iter()
        .filter_map(|(_, entry)| match &entry.command {
            Command::Lease(sluice_state::lease::LeaseCommand::CreateApplication { application, .. }) => {
                Some(application.0 + 1)
            }
            _ => None,
        })
        .chain(replayed.state.leases.applications().map(|app| app.id.0 + 1))
        .chain([replayed.state.next_application_id()])
        .max()
        .unwrap_or(1)
        .max(1);
    // Queue ids likewise: an ARN of a deleted queue must never name a new one (the snapshot's
    // counter covers the queues whose entries a trim took).
    let next_queue_id = decoded
        .iter()
        .filter_map(|(_, entry)| match &entry.command {
            Command::Queue(sluice_state::queue::QueueCommand::CreateQueue { queue, .. }) => Some(queue.0 + 1),
            _ => None,
        })
        .chain(replayed.state.queues.queues().map(|queue| queue.id.0 + 1))
        .chain([replayed.state.next_queue_id()])
        .max()
        .unwrap_or(1)
        .max(1);
    tracing::info!(
        core,
        entries = decoded.len(),
        snapshot = ?replayed.snapshot,
        replayed = replayed.replayed_count,
        "delivery state replayed"
    );
    Ok(Replay {
        state: replayed.state,
        next,
        next_application_id,
        next_queue_id,
        replayed_count: replayed.replayed_count,
    })
}

/// Clears the snapshotting flag however the snapshot ends (an error, or its future dropped).
struct Snapshotting<'a>(&'a Cell<bool>);

impl Drop for Snapshotting<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl Delivery {
    /// Waits for the control operations' one permit (see `control`): creating and deleting
    /// applications and queues run one at a time. Replicated, the state has then applied
    /// every entry committed before (see [`Delivery::barrier`]), so that its checks and the
    /// ids it hands out see every application and queue.
    pub async fn control_permit(
        self: &Rc<Self>,
        journal: &Journal,
        now_ms: i64,
    ) -> Result<glommio::sync::Permit<'_>, KinesisError> {
        let permit =
            self.control.acquire_permit(1).await.map_err(|_| KinesisError::internal("the delivery state is closed"))?;
        if self.replication.is_some() {
            self.barrier(journal, now_ms).await?;
        }
        Ok(permit)
    }

    /// Replicated: appends an `Init` and waits until it is applied here. Everything the group
    /// committed before it (under any leader) is then applied too, since entries apply in log
    /// order; a log already initialised refuses it (`AlreadyInitialised`) and nothing changes.
    /// An empty log takes it as its first entry (with a fresh handle key).
    pub async fn barrier(self: &Rc<Self>, journal: &Journal, now_ms: i64) -> Result<(), KinesisError> {
        self.submit(journal, now_ms, Command::Init { handle_key: random_handle_key() }).await.map(|_| ())
    }

    /// Registers core `core`'s internal shard with `journal`, replays it, and appends `Init` to
    /// an empty one. Run before the core serves. With a `replication`, the delivery group's
    /// applier fills the shard, [`Delivery::follow_log`] applies what it stores, and the
    /// group's first leader appends `Init` (`cluster::delivery::lead`).
    pub async fn open(
        journal: &Journal,
        core: usize,
        now_ms: i64,
        snapshot_interval_entries: u64,
        replication: Option<Box<dyn Replication>>,
    ) -> Result<Rc<Delivery>, KinesisError> {
        let uid = internal_shard_uid(core);
        let prefix = ShardSeqPrefix::new(0, u32::MAX - core as u32);
        // Retention: forever (the state trims its own log after each snapshot).
        journal.register_shard(ShardSpec { uid, seq_prefix: prefix, retention_ms: i64::MAX });
        let replay = replay(journal, uid, core).await?;
        let empty = replay.state.applied().is_none() && replay.replayed_count == 0;
        let delivery = Rc::new(Delivery {
            uid,
            state: RefCell::new(replay.state),
            next_apply: Cell::new(replay.next),
            waiting: RefCell::new(BTreeMap::new()),
            next_application_id: Cell::new(replay.next_application_id),
            next_queue_id: Cell::new(replay.next_queue_id),
            control: glommio::sync::Semaphore::new(1),
            snapshot_interval_entries: snapshot_interval_entries.max(1),
            applied_since_snapshot: Cell::new(replay.replayed_count),
            snapshotting: Cell::new(false),
            snapshots_written: Cell::new(0),
            applied: Applied::new(replay.next - 1, REPLICATED_OUTCOMES_KEPT_MAX),
            snapshot_parts: RefCell::new(BTreeMap::new()),
            committed: RefCell::new(BTreeMap::new()),
            committed_waiters: RefCell::new(Vec::new()),
            replication,
        });
        if delivery.replication.is_some() {
            glommio::spawn_local(delivery.clone().follow_log(journal.clone())).detach();
        } else if empty {
            delivery.submit(journal, now_ms, Command::Init { handle_key: random_handle_key() }).await?;
        }
        Ok(delivery)
    }

    /// The applied state: only durable commands are in it (replicated: committed ones).
    pub fn state(&self) -> Ref<'_, State> {
        self.state.borrow()
    }

    /// A fresh application id, never used in this log.
    pub fn allocate_application_id(&self) -> u64 {
        let id = self.next_application_id.get();
        self.next_application_id.set(id + 1);
        id
    }

    /// A fresh queue id, never used in this log.
    pub fn allocate_queue_id(&self) -> u64 {
        let id = self.next_queue_id.get();
        self.next_queue_id.set(id + 1);
        id
    }

    /// Appends `command` stamped `now_ms`, waits until it is durable and every entry before it
    /// is applied, applies it, and returns what it answered.
    ///
    /// The append and the apply run in a task of their own: a caller that goes away (its
    /// connection closed) must not leave a durable entry unapplied, which would stall every
    /// entry after it.
    pub async fn submit(
        self: &Rc<Self>,
        journal: &Journal,
        now_ms: i64,
        command: Command,
    ) -> Result<Outcome, KinesisError> {
        // The decoder refuses an invalid command, so one in the log would stop every replay:
        // refuse it here (the request checks should have already).
        command.validate().map_err(|invalid| KinesisError::invalid_argument(invalid.to_string()))?;
        let entry = Entry { now_ms, command };
        let bytes = codec::encode(&entry).map_err(|error| KinesisError::invalid_argument(error.to_string()))?;
        let record = AppendRecord {
            shard_uid: self.uid,
            partition_key: Bytes::from_static(ENTRY_PARTITION_KEY),
            data: Bytes::from(bytes),
            sealed: false,
        };
        if let Some(replication) = &self.replication {
            return self.propose(replication.as_ref(), now_ms, record).await;
        }
        let (reply, outcome) = oneshot::channel();
        let (this, journal) = (self.clone(), journal.clone());
        glommio::spawn_local(async move {
            match journal.append(vec![record]).await {
                Ok(appended) => {
                    let index = appended[0].sequence_number.record_index();
                    this.waiting.borrow_mut().insert(index, Waiting { entry, reply });
                    this.apply_ready(&journal);
                }
                Err(error) => {
                    let _ = reply.send(Err(engine_error(error)));
                }
            }
        })
        .detach();
        outcome.await.map_err(|_| KinesisError::internal("the delivery state stopped before applying the command"))?
    }

    /// Replicated: proposes `record` to the delivery group (this member must lead it: requests
    /// are forwarded to the leader) and answers the outcome of applying it here.
    async fn propose(
        &self,
        replication: &dyn Replication,
        now_ms: i64,
        record: AppendRecord,
    ) -> Result<Outcome, KinesisError> {
        use sluice_cluster::limits::APPEND_COMMIT_WAIT_MS;
        let index = replication.propose(now_ms, record).await?;
        if !self.applied.wait(index, Duration::from_millis(APPEND_COMMIT_WAIT_MS)).await {
            return Err(KinesisError::internal(format!(
                "the delivery state's entry {index} is stored but was not applied within {APPEND_COMMIT_WAIT_MS} ms; retry"
            )));
        }
        self.applied.take(index).unwrap_or_else(|| {
            Err(KinesisError::internal(format!(
                "the delivery state's entry {index} was applied, but its outcome is no longer known here"
            )))
        })
    }

    /// Applies entry `index` (the next one) to the state.
    fn apply_entry(&self, index: u64, entry: &Entry) -> Outcome {
        if !matches!(entry.command, Command::SnapshotPart(_)) {
            self.applied_since_snapshot.set(self.applied_since_snapshot.get() + 1);
        }
        // Ids handed out by another member (replicated) are never handed out here again.
        match &entry.command {
            Command::Lease(sluice_state::lease::LeaseCommand::CreateApplication { application, .. }) => {
                self.next_application_id.set(self.next_application_id.get().max(application.0 + 1));
            }
            Command::Queue(sluice_state::queue::QueueCommand::CreateQueue { queue, .. }) => {
                self.next_queue_id.set(self.next_queue_id.get().max(queue.0 + 1));
            }
            _ => {}
        }
        let outcome = self.state.borrow_mut().apply(LogIndex(index), entry);
        self.next_apply.set(index + 1);
        outcome
    }

    /// Replicated, on core 0 of every member: the delivery group's applier queued entry
    /// `index` (of the internal shard), `data`, to the journal. It is committed: the state
    /// applies it without waiting for the journal ([`Delivery::follow_log`]).
    pub fn committed(&self, index: u64, data: Bytes) {
        {
            let mut committed = self.committed.borrow_mut();
            if index < self.next_apply.get() || committed.len() >= COMMITTED_KEPT_MAX {
                return;
            }
            committed.insert(index, data);
        }
        for waiter in self.committed_waiters.borrow_mut().drain(..) {
            let _ = waiter.try_send(());
        }
    }

    /// Until the applier hands over entry `index` ([`Delivery::committed`]).
    async fn handed_over(&self, index: u64) {
        while !self.committed.borrow().contains_key(&index) {
            let (waker, waiting) = async_channel::bounded(1);
            {
                let mut waiters = self.committed_waiters.borrow_mut();
                // Those whose wait ended otherwise (the journal stored the entry first).
                waiters.retain(|waiter| !waiter.is_closed());
                waiters.push(waker);
            }
            let _ = waiting.recv().await;
        }
    }

    /// Replicated, on core 0 of every member, for the executor's life: applies the delivery
    /// group's committed entries in index order, each as soon as the applier hands it over
    /// ([`Delivery::committed`]) or the journal stores it, whichever comes first, keeping each
    /// outcome for its proposer; trims the log once a snapshot is whole in it; and, on the
    /// leader, writes a snapshot when one is due. A shard restored from a peer past what was
    /// applied here (a member added: `cluster::snapshot`) is replayed again from its start.
    /// An entry that does not decode stops it (the state must not skip what the others
    /// apply).
    async fn follow_log(self: Rc<Self>, journal: Journal) {
        loop {
            let next = self.next_apply.get();
            let handed = {
                let mut committed = self.committed.borrow_mut();
                // Applied from the journal already (a restored shard replayed past them).
                while committed.first_key_value().is_some_and(|(&index, _)| index < next) {
                    committed.pop_first();
                }
                committed.remove(&next)
            };
            if let Some(data) = handed {
                if !self.apply_logged(&journal, next, &data).await {
                    return;
                }
                self.snapshot_when_due(&journal);
                continue;
            }
            match journal.wait_for_index(self.uid, next) {
                Ok(Some(stored)) => {
                    futures_lite::future::or(
                        async {
                            let _ = stored.await;
                        },
                        self.handed_over(next),
                    )
                    .await;
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(%error, "the delivery state stops following its log");
                    return;
                }
            }
            let read = async {
                let (trim, _) = journal.bounds(self.uid).await?;
                if trim > next {
                    return Ok(None);
                }
                journal.read(self.uid, next, REPLAY_READ_RECORDS_MAX, REPLAY_READ_BYTES_MAX).await.map(Some)
            };
            let batch = match read.await {
                Ok(Some(batch)) => batch,
                Ok(None) => {
                    if let Err(error) = self.replay_again(&journal).await {
                        tracing::error!(%error, "the delivery state could not replay its restored log; it stops");
                        return;
                    }
                    continue;
                }
                Err(error) => {
                    tracing::error!(%error, "the delivery state could not read its log; it stops");
                    return;
                }
            };
            for record in batch.records {
                let index = record.sequence_number.record_index();
                if !self.apply_logged(&journal, index, &record.data).await {
                    return;
                }
            }
            self.snapshot_when_due(&journal);
        }
    }

    /// Replicated: applies entry `index` (the next), keeps its outcome for its proposer, and
    /// trims the log once the snapshot it completes (if it is a snapshot's part) is whole.
    /// False if it does not decode: the state stops there.
    async fn apply_logged(&self, journal: &Journal, index: u64, data: &[u8]) -> bool {
        let entry = match codec::decode(data) {
            Ok(entry) => entry,
            Err(error) => {
                tracing::error!(index, %error, "a delivery state entry does not decode; the state stops here");
                return false;
            }
        };
        let outcome = self.apply_entry(index, &entry);
        self.applied.set(index, Some(Ok(outcome)));
        if let Command::SnapshotPart(part) = &entry.command {
            if self.snapshot_whole(part) {
                // Applied as soon as committed: the journal may not hold the snapshot yet, and
                // must before anything before it goes.
                if let Ok(Some(stored)) = journal.wait_for_index(self.uid, index) {
                    let _ = stored.await;
                }
                match journal.trim_shard_before(self.uid, part.as_of.0 + 1).await {
                    Ok(trim) => tracing::info!(
                        as_of = part.as_of.0,
                        trim,
                        "delivery state snapshot applied; the log before it trimmed"
                    ),
                    Err(error) => tracing::warn!(%error, "could not trim the delivery state's log"),
                }
            }
        }
        true
    }

    /// Replicated: whether `part` completes its snapshot (every part of it applied here).
    fn snapshot_whole(&self, part: &sluice_state::state::SnapshotPart) -> bool {
        let mut parts = self.snapshot_parts.borrow_mut();
        let seen = parts.entry(part.as_of.0).or_default();
        seen.insert(part.part);
        if (seen.len() as u32) < part.part_count {
            return false;
        }
        // Older snapshots left incomplete (a leader changed while writing one) are done with.
        parts.retain(|&as_of, _| as_of > part.as_of.0);
        true
    }

    /// Replicated: the shard holds records from past what was applied here (a snapshot of the
    /// group copied them from a peer whose log was trimmed): the state is rebuilt from them.
    async fn replay_again(&self, journal: &Journal) -> Result<(), KinesisError> {
        let replay = replay(journal, self.uid, 0).await?;
        *self.state.borrow_mut() = replay.state;
        self.next_apply.set(replay.next);
        self.next_application_id.set(self.next_application_id.get().max(replay.next_application_id));
        self.next_queue_id.set(self.next_queue_id.get().max(replay.next_queue_id));
        self.applied_since_snapshot.set(replay.replayed_count);
        self.applied.set(replay.next - 1, None);
        Ok(())
    }

    /// Whether this member proposes the delivery state's commands: alone always; replicated,
    /// while it leads the delivery group.
    pub fn proposes_here(&self) -> bool {
        self.replication.as_ref().is_none_or(|replication| replication.leads())
    }

    /// Starts a snapshot in the background if one is due and this member writes them.
    fn snapshot_when_due(self: &Rc<Self>, journal: &Journal) {
        let due = self.applied_since_snapshot.get() >= self.snapshot_interval_entries;
        if due && !self.snapshotting.get() && self.proposes_here() {
            let (this, journal) = (self.clone(), journal.clone());
            glommio::spawn_local(async move {
                if let Err(error) = this.snapshot_if_due(&journal).await {
                    tracing::error!(%error, "could not write a snapshot of the delivery state");
                }
            })
            .detach();
        }
    }

    /// Applies every waiting entry whose predecessors are all applied; starts a snapshot once
    /// enough entries were applied since the last.
    fn apply_ready(self: &Rc<Self>, journal: &Journal) {
        loop {
            let next = self.next_apply.get();
            let Some(waiting) = self.waiting.borrow_mut().remove(&next) else { break };
            let outcome = self.apply_entry(next, &waiting.entry);
            // The caller may have gone (its connection closed): the command still applied.
            let _ = waiting.reply.send(Ok(outcome));
        }
        self.snapshot_when_due(journal);
    }

    /// Writes a snapshot if one is due: `snapshot_interval_entries` entries were applied since
    /// the last, or the log holds entries in a sealed journal segment (which a snapshot and a
    /// trim let retention delete). Appends its parts, waits until all are durable and applied,
    /// then trims the log before the snapshot. Returns the snapshot's `as_of`, or `None` if
    /// none was due or one is being written.
    pub async fn snapshot_if_due(self: &Rc<Self>, journal: &Journal) -> Result<Option<LogIndex>, KinesisError> {
        let due = self.applied_since_snapshot.get() >= self.snapshot_interval_entries
            || journal.shard_pins_sealed_segment(self.uid);
        if !due || !self.proposes_here() || self.snapshotting.replace(true) {
            return Ok(None);
        }
        let _snapshotting = Snapshotting(&self.snapshotting);
        let (entries, counted) = {
            let state = self.state.borrow();
            if state.applied().is_none() {
                return Ok(None);
            }
            (log::snapshot_entries(&state), self.applied_since_snapshot.get())
        };
        let as_of = match &entries[0].command {
            Command::SnapshotPart(part) => part.as_of,
            other => return Err(KinesisError::internal(format!("a snapshot began with {other:?}"))),
        };
        let parts = entries.len();
        for entry in entries {
            self.submit(journal, entry.now_ms, entry.command).await?;
        }
        // Entries applied while the parts were written count towards the next snapshot.
        self.applied_since_snapshot.set(self.applied_since_snapshot.get().saturating_sub(counted));
        if self.replication.is_some() {
            // Every member trims its own log once the snapshot is whole there (`follow_log`).
            self.snapshots_written.set(self.snapshots_written.get() + 1);
            return Ok(Some(as_of));
        }
        let trim = journal.trim_shard_before(self.uid, as_of.0 + 1).await.map_err(engine_error)?;
        self.snapshots_written.set(self.snapshots_written.get() + 1);
        tracing::info!(as_of = as_of.0, parts, trim, "delivery state snapshot written; the log before it trimmed");
        Ok(Some(as_of))
    }

    /// Snapshots completed since start-up.
    pub fn snapshots_written(&self) -> u64 {
        self.snapshots_written.get()
    }

    /// Entries the log holds now (from its trim horizon to its tip; from memory alone, so the
    /// horizon may be a sealed segment's worth low, see `Journal::bounds_in_memory`).
    pub fn log_entries(&self, journal: &Journal) -> u64 {
        journal.bounds_in_memory(self.uid).map_or(0, |(trim, next)| next - trim)
    }
}

/// A fresh key for receipt handles, for an `Init`.
fn random_handle_key() -> HandleKey {
    let mut key = [0u8; sluice_state::limits::HANDLE_KEY_BYTES];
    rand::Rng::fill(&mut rand::thread_rng(), &mut key[..]);
    HandleKey(key)
}
