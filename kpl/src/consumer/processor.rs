//! The life of a record processor on one shard lease, as a state machine independent of how
//! records arrive (GetRecords polling or SubscribeToShard) and where checkpoints go.
//!
//! ```text
//!  new ──start()──► Processing ──on_records()──► (process_records) ──┐
//!                      │  ▲─────────────────────────────────────────────┘
//!                      ├──on_shard_end()──► (shard_ended, must checkpoint SHARD_END) ──► ShardEnded ──confirmed──► Finished
//!                      ├──on_shutdown_requested()──► (shutdown_requested) ──► ShutDown ──► ReleaseLease
//!                      └──on_lease_lost() (from any live state)──► (lease_lost) ──► LeaseLost
//! ```
//!
//! The processor's callbacks run synchronously inside these calls. A [`Checkpointer`] checks
//! each checkpoint the processor asks for and queues it as an [`Action`] for the driver to
//! write to the lease store; the driver reports the store's answer with
//! [`ShardConsumer::on_checkpoint_result`]. A refused checkpoint (a stale lease counter: the
//! lease was taken over) means the lease is lost.
//!
//! Delivery is at least once: after a takeover, the new owner resumes after the last
//! confirmed checkpoint, so the records processed since (at most one checkpoint interval of
//! them, with [`ShardConsumer::checkpoint_processed`] called each interval) are processed
//! again.

use crate::consumer::checkpoint::{Checkpoint, CheckpointError, CheckpointTracker, Position, StartingPosition};
use crate::consumer::records::{deaggregate_records, ConsumerRecord, DeaggregationIssue, ReceivedRecord};
use crate::types::{HashKeyRange, ShardId};
use std::collections::VecDeque;

/// What `initialize` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitializationInput {
    pub shard_id: ShardId,
    /// The checkpoint the lease held when this worker took it.
    pub checkpoint: Checkpoint,
}

/// The application's code for one shard (the KCL's `ShardRecordProcessor`).
pub trait RecordProcessor {
    fn initialize(&mut self, input: &InitializationInput);
    /// A batch of user records, in shard order. Checkpointing is optional here.
    fn process_records(&mut self, records: &[ConsumerRecord], checkpointer: &mut Checkpointer<'_>);
    /// Another worker owns the lease now: stop, and do not checkpoint (it cannot succeed).
    fn lease_lost(&mut self);
    /// Every record of the closed shard was delivered: finish, and checkpoint SHARD_END with
    /// `checkpointer.checkpoint()` so the shard's children can start.
    fn shard_ended(&mut self, checkpointer: &mut Checkpointer<'_>);
    /// The worker is shutting down gracefully: checkpoint what is done; the lease is released
    /// for another worker afterwards.
    fn shutdown_requested(&mut self, checkpointer: &mut Checkpointer<'_>);
}

/// Lets a processor ask for checkpoints from inside its callbacks.
pub struct Checkpointer<'a> {
    tracker: &'a CheckpointTracker,
    /// Checkpoints asked for and not yet confirmed; a new one must come after them.
    requested: &'a mut Vec<Checkpoint>,
    at_shard_end: bool,
}

impl Checkpointer<'_> {
    /// Checkpoints every record delivered so far (the KCL's `checkpoint()`); at the end of a
    /// shard, SHARD_END.
    pub fn checkpoint(&mut self) -> Result<(), CheckpointError> {
        let checkpoint = if self.at_shard_end {
            Checkpoint::ShardEnd
        } else {
            match self.tracker.last_delivered() {
                Some(position) => Checkpoint::At(position),
                None => return Ok(()),
            }
        };
        if self.requested.last() == Some(&checkpoint) || self.tracker.checkpointed() == Some(checkpoint) {
            return Ok(());
        }
        self.request(checkpoint)
    }

    /// Checkpoints up to and including `position` (the KCL's `checkpoint(sequence, sub)`).
    pub fn checkpoint_at(&mut self, position: Position) -> Result<(), CheckpointError> {
        if self.at_shard_end {
            return Err(CheckpointError::ShardEndRequired);
        }
        self.request(Checkpoint::At(position))
    }

    fn request(&mut self, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
        self.tracker.validate(checkpoint)?;
        if let (Some(Checkpoint::At(last)), Checkpoint::At(position)) = (self.requested.last(), checkpoint) {
            if position <= *last {
                return Err(CheckpointError::NotAfterLastCheckpoint { requested: position, last: *last });
            }
        }
        self.requested.push(checkpoint);
        Ok(())
    }
}

/// What the driver does for a shard consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this checkpoint to the lease (conditional on the lease counter) and report the
    /// answer with `on_checkpoint_result`.
    Checkpoint(Checkpoint),
    /// The processor shut down: release the lease so another worker takes it at once.
    ReleaseLease,
    /// SHARD_END is durable: the shard is done and its children may be taken.
    ShardFinished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerState {
    /// Created; `start` not called.
    New,
    Processing,
    /// SHARD_END asked for, waiting for the lease store.
    ShardEnded,
    /// SHARD_END confirmed.
    Finished,
    ShutDown,
    LeaseLost,
}

/// A call that the consumer's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("{call} is not allowed in state {state:?}")]
    NotAllowed { call: &'static str, state: ConsumerState },
    #[error("the processor did not checkpoint SHARD_END in shard_ended; the shard stays open for it")]
    ShardEndNotCheckpointed,
    #[error(transparent)]
    OutOfOrder(#[from] crate::consumer::checkpoint::OutOfOrderDelivery),
}

/// The lease store's refusal of a checkpoint: the lease counter moved, someone else owns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the lease store refused the checkpoint: the lease is owned by another worker now")]
pub struct CheckpointRefused;

/// One shard lease's processor and its checkpoint bookkeeping.
pub struct ShardConsumer<P> {
    shard_id: ShardId,
    processor: P,
    state: ConsumerState,
    start: StartingPosition,
    initial_checkpoint: Checkpoint,
    tracker: CheckpointTracker,
    requested: Vec<Checkpoint>,
    /// How many of `requested` were queued as actions already.
    queued: usize,
    actions: VecDeque<Action>,
}

impl<P: RecordProcessor> ShardConsumer<P> {
    /// A consumer for a lease just taken, holding `checkpoint`.
    pub fn new(shard_id: ShardId, checkpoint: Checkpoint, processor: P) -> ShardConsumer<P> {
        ShardConsumer {
            shard_id,
            processor,
            state: ConsumerState::New,
            start: checkpoint.starting_position(),
            initial_checkpoint: checkpoint,
            tracker: CheckpointTracker::new(checkpoint),
            requested: Vec::new(),
            queued: 0,
            actions: VecDeque::new(),
        }
    }

    pub fn state(&self) -> ConsumerState {
        self.state
    }

    pub fn processor(&self) -> &P {
        &self.processor
    }

    pub fn tracker(&self) -> &CheckpointTracker {
        &self.tracker
    }

    fn allow(&self, call: &'static str, states: &[ConsumerState]) -> Result<(), LifecycleError> {
        if states.contains(&self.state) {
            Ok(())
        } else {
            Err(LifecycleError::NotAllowed { call, state: self.state })
        }
    }

    /// Calls `initialize`; returns where the driver starts reading.
    pub fn start(&mut self) -> Result<StartingPosition, LifecycleError> {
        self.allow("start", &[ConsumerState::New])?;
        let input = InitializationInput { shard_id: self.shard_id, checkpoint: self.initial_checkpoint };
        self.processor.initialize(&input);
        self.state = ConsumerState::Processing;
        Ok(self.start)
    }

    /// A batch read from the shard: deaggregates it, drops what the checkpoint already covers,
    /// and hands the rest to `process_records`. Returns what deaggregation could not deliver.
    pub fn on_records(
        &mut self,
        records: Vec<ReceivedRecord>,
        shard_range: Option<HashKeyRange>,
    ) -> Result<Vec<DeaggregationIssue>, LifecycleError> {
        self.allow("on_records", &[ConsumerState::Processing])?;
        let mut batch = deaggregate_records(records, shard_range);
        batch.records.retain(|record| !self.start.skips(record.position()));
        if let Some(last) = self.tracker.last_delivered() {
            // A re-read batch (the driver retried a fetch) is not delivered twice.
            batch.records.retain(|record| record.position() > last);
        }
        if batch.records.is_empty() {
            return Ok(batch.issues);
        }
        for record in &batch.records {
            self.tracker.delivered(record.position())?;
        }
        let mut checkpointer =
            Checkpointer { tracker: &self.tracker, requested: &mut self.requested, at_shard_end: false };
        self.processor.process_records(&batch.records, &mut checkpointer);
        for record in &batch.records {
            self.tracker.processed(record.position());
        }
        self.queue_new_requests();
        Ok(batch.issues)
    }

    /// Checkpoints everything processed so far if that is beyond the last checkpoint: what a
    /// driver calls every checkpoint interval, which bounds the duplicates after a takeover.
    pub fn checkpoint_processed(&mut self) -> Result<(), LifecycleError> {
        self.allow("checkpoint_processed", &[ConsumerState::Processing])?;
        if let Some(Checkpoint::At(position)) = self.tracker.checkpointable() {
            let newer = match self.requested.last() {
                Some(Checkpoint::At(last)) => position > *last,
                _ => true,
            };
            if newer {
                self.requested.push(Checkpoint::At(position));
                self.queue_new_requests();
            }
        }
        Ok(())
    }

    /// Every record of the (closed) shard was read: calls `shard_ended`, which must checkpoint
    /// SHARD_END. If it does not, the call fails and may be repeated.
    pub fn on_shard_end(&mut self) -> Result<(), LifecycleError> {
        self.allow("on_shard_end", &[ConsumerState::Processing])?;
        self.tracker.end_reached();
        let mut checkpointer =
            Checkpointer { tracker: &self.tracker, requested: &mut self.requested, at_shard_end: true };
        self.processor.shard_ended(&mut checkpointer);
        let asked = self.requested.contains(&Checkpoint::ShardEnd);
        self.queue_new_requests();
        if asked {
            self.state = ConsumerState::ShardEnded;
            Ok(())
        } else {
            Err(LifecycleError::ShardEndNotCheckpointed)
        }
    }

    /// The worker shuts down: calls `shutdown_requested`, then asks for the lease's release.
    pub fn on_shutdown_requested(&mut self) -> Result<(), LifecycleError> {
        self.allow("on_shutdown_requested", &[ConsumerState::Processing])?;
        let mut checkpointer =
            Checkpointer { tracker: &self.tracker, requested: &mut self.requested, at_shard_end: false };
        self.processor.shutdown_requested(&mut checkpointer);
        self.queue_new_requests();
        self.state = ConsumerState::ShutDown;
        self.actions.push_back(Action::ReleaseLease);
        Ok(())
    }

    /// The lease was lost (a renewal failed, or another worker took it): calls `lease_lost`;
    /// queued checkpoints are dropped, since the store would refuse them.
    pub fn on_lease_lost(&mut self) {
        if matches!(self.state, ConsumerState::LeaseLost | ConsumerState::Finished) {
            return;
        }
        self.processor.lease_lost();
        self.state = ConsumerState::LeaseLost;
        self.actions.clear();
        self.requested.clear();
        self.queued = 0;
    }

    /// The lease store's answer to an `Action::Checkpoint`.
    pub fn on_checkpoint_result(&mut self, checkpoint: Checkpoint, result: Result<(), CheckpointRefused>) {
        match result {
            Ok(()) => {
                self.tracker.confirmed(checkpoint);
                if let Some(index) = self.requested.iter().position(|c| *c == checkpoint) {
                    self.requested.drain(..=index);
                    self.queued = self.queued.saturating_sub(index + 1);
                }
                if checkpoint == Checkpoint::ShardEnd && self.state == ConsumerState::ShardEnded {
                    self.state = ConsumerState::Finished;
                    self.actions.push_back(Action::ShardFinished);
                }
            }
            Err(CheckpointRefused) => self.on_lease_lost(),
        }
    }

    /// The next thing for the driver to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Turns checkpoints the processor asked for into actions, once each.
    fn queue_new_requests(&mut self) {
        for checkpoint in &self.requested[self.queued..] {
            self.actions.push_back(Action::Checkpoint(*checkpoint));
        }
        self.queued = self.requested.len();
    }
}
