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
//! trimming waits for the new one. Start-up replays from the latest complete snapshot.

use crate::kinesis::errors::engine_error;
use bytes::Bytes;
use futures_channel::oneshot;
use sluice_engine::sequence::ShardSeqPrefix;
use sluice_engine::{AppendRecord, Journal, ShardSpec};
use sluice_model::KinesisError;
use sluice_state::handle::HandleKey;
use sluice_state::ids::LogIndex;
use sluice_state::{codec, log, Command, Entry, Outcome, State};
use std::cell::{Cell, Ref, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

/// The internal shard of core `core`: from the top of the uid space down, where the catalog's
/// uids (counted up from 0) never reach.
pub fn internal_shard_uid(core: usize) -> u64 {
    u64::MAX - core as u64
}

/// The partition key every entry is appended with (the journal requires one; the log does
/// not use it).
const ENTRY_PARTITION_KEY: &[u8] = b"state";

/// Records read per journal read while replaying at start-up.
const REPLAY_READ_RECORDS_MAX: usize = 4_096;
/// Bytes read per journal read while replaying at start-up.
const REPLAY_READ_BYTES_MAX: usize = 8 << 20;

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
    /// applications and queues run one at a time.
    pub async fn control_permit(&self) -> Result<glommio::sync::Permit<'_>, KinesisError> {
        self.control.acquire_permit(1).await.map_err(|_| KinesisError::internal("the delivery state is closed"))
    }

    /// Registers core `core`'s internal shard with `journal`, replays it, and appends `Init` to
    /// an empty one. Run before the core serves.
    pub async fn open(
        journal: &Journal,
        core: usize,
        now_ms: i64,
        snapshot_interval_entries: u64,
    ) -> Result<Rc<Delivery>, KinesisError> {
        let uid = internal_shard_uid(core);
        let prefix = ShardSeqPrefix::new(0, u32::MAX - core as u32);
        // Retention: forever (the state trims its own log after each snapshot).
        journal.register_shard(ShardSpec { uid, seq_prefix: prefix, retention_ms: i64::MAX });
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
            records
                .extend(batch.records.into_iter().map(|record| (record.sequence_number.record_index(), record.data)));
        }
        let decoded = log::decode_log(records.iter().map(|(index, data)| (LogIndex(*index), data.as_ref())))
            .map_err(|error| KinesisError::internal(format!("the delivery state log of core {core}: {error}")))?;
        let replayed = log::replay(&decoded, log::StartFrom::LatestSnapshot)
            .map_err(|error| KinesisError::internal(format!("the delivery state log of core {core}: {error}")))?;
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
        // Queue ids likewise: an ARN of a deleted queue must never name a new one (the
        // snapshot's counter covers the queues whose entries a trim took).
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
        let delivery = Rc::new(Delivery {
            uid,
            state: RefCell::new(replayed.state),
            next_apply: Cell::new(next),
            waiting: RefCell::new(BTreeMap::new()),
            next_application_id: Cell::new(next_application_id),
            next_queue_id: Cell::new(next_queue_id),
            control: glommio::sync::Semaphore::new(1),
            snapshot_interval_entries: snapshot_interval_entries.max(1),
            applied_since_snapshot: Cell::new(replayed.replayed_count),
            snapshotting: Cell::new(false),
            snapshots_written: Cell::new(0),
        });
        if decoded.is_empty() {
            let mut key = [0u8; sluice_state::limits::HANDLE_KEY_BYTES];
            rand::Rng::fill(&mut rand::thread_rng(), &mut key[..]);
            delivery.submit(journal, now_ms, Command::Init { handle_key: HandleKey(key) }).await?;
        }
        Ok(delivery)
    }

    /// The applied state: only durable commands are in it.
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

    /// Applies every waiting entry whose predecessors are all applied; starts a snapshot once
    /// enough entries were applied since the last.
    fn apply_ready(self: &Rc<Self>, journal: &Journal) {
        loop {
            let next = self.next_apply.get();
            let Some(waiting) = self.waiting.borrow_mut().remove(&next) else { break };
            if !matches!(waiting.entry.command, Command::SnapshotPart(_)) {
                self.applied_since_snapshot.set(self.applied_since_snapshot.get() + 1);
            }
            let outcome = self.state.borrow_mut().apply(LogIndex(next), &waiting.entry);
            self.next_apply.set(next + 1);
            // The caller may have gone (its connection closed): the command still applied.
            let _ = waiting.reply.send(Ok(outcome));
        }
        if self.applied_since_snapshot.get() >= self.snapshot_interval_entries && !self.snapshotting.get() {
            let (this, journal) = (self.clone(), journal.clone());
            glommio::spawn_local(async move {
                if let Err(error) = this.snapshot_if_due(&journal).await {
                    tracing::error!(%error, "could not write a snapshot of the delivery state");
                }
            })
            .detach();
        }
    }

    /// Writes a snapshot if one is due: `snapshot_interval_entries` entries were applied since
    /// the last, or the log holds entries in a sealed journal segment (which a snapshot and a
    /// trim let retention delete). Appends its parts, waits until all are durable and applied,
    /// then trims the log before the snapshot. Returns the snapshot's `as_of`, or `None` if
    /// none was due or one is being written.
    pub async fn snapshot_if_due(self: &Rc<Self>, journal: &Journal) -> Result<Option<LogIndex>, KinesisError> {
        let due = self.applied_since_snapshot.get() >= self.snapshot_interval_entries
            || journal.shard_pins_sealed_segment(self.uid);
        if !due || self.snapshotting.replace(true) {
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
