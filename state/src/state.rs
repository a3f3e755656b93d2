//! The one state of a core: both state machines (leases and queues) behind one log. Every
//! change is a [`Command`] in an [`Entry`]; [`State::apply`] is a pure, deterministic function
//! of the state and the entry, so replaying the log rebuilds the state exactly. Each machine
//! implements [`Machine`](crate::machine::Machine); the log machinery (`log.rs`) and the codec
//! (`codec.rs`) exist once, for both.

use crate::handle::HandleKey;
use crate::ids::LogIndex;
use crate::lease::{LeaseCommand, LeaseItem, LeaseOutcome, Leases};
use crate::machine::{InvalidCommand, Machine, RestoreError};
use crate::queue::{QueueCommand, QueueItem, QueueOutcome, Queues};
use crate::stream::StreamEvent;
use serde::{Deserialize, Serialize};

/// One log entry: a command and the time it was stamped with, by the core that appended it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub now_ms: i64,
    pub command: Command,
}

/// Every command of the log. Variants are only ever appended (their position is their tag on
/// disk; see docs/format.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// The first entry of a new log: the key receipt handles are signed with.
    Init {
        handle_key: HandleKey,
    },
    Stream(StreamEvent),
    Lease(LeaseCommand),
    Queue(QueueCommand),
    /// One part of a snapshot: applying it changes nothing (the live state already is what it
    /// describes); replay starts from the latest complete snapshot.
    SnapshotPart(SnapshotPart),
}

/// A snapshot of the state as of the entry at `as_of` (every entry up to it applied, none
/// after), in `part_count` parts. Parts may be anywhere after `as_of` in the log, interleaved
/// with other entries; the snapshot counts once all its parts are there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPart {
    pub as_of: LogIndex,
    pub part: u32,
    pub part_count: u32,
    pub items: Vec<SnapshotItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotItem {
    /// The state's own fields; always the first item.
    Meta {
        clock_ms: i64,
        handle_key: Option<HandleKey>,
    },
    Lease(LeaseItem),
    Queue(QueueItem),
    /// The ids the log handed out so far (added after the first three variants; a snapshot
    /// without it restores counters of 0). Once a snapshot lets the log's beginning go, the
    /// `CreateApplication` and `CreateQueue` entries of deleted resources are gone with it:
    /// these keep a new application or queue from taking a deleted one's id (its ARN).
    Ids {
        next_application_id: u64,
        next_queue_id: u64,
    },
}

/// What applying an entry answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Initialised,
    Followed,
    Lease(LeaseOutcome),
    Queue(QueueOutcome),
    /// A snapshot part: nothing changes.
    Snapshot,
    /// The command broke a rule and changed nothing.
    Invalid(InvalidCommand),
}

impl Command {
    /// Checks what the types cannot (the decoder runs it on every entry it reads).
    pub fn validate(&self) -> Result<(), InvalidCommand> {
        match self {
            Command::Init { .. } => Ok(()),
            Command::Stream(StreamEvent::ShardsCreated { shards, .. }) => {
                if shards.iter().any(|shard| shard.parents.len() > crate::limits::SHARD_PARENTS_MAX) {
                    return Err(InvalidCommand::TooManyParents);
                }
                Ok(())
            }
            Command::Stream(StreamEvent::RetentionChanged { retention_ms, .. }) if *retention_ms <= 0 => {
                Err(InvalidCommand::Retention(*retention_ms))
            }
            Command::Stream(_) => Ok(()),
            Command::Lease(command) => command.validate(),
            Command::Queue(command) => command.validate(),
            Command::SnapshotPart(part) => {
                if part.part >= part.part_count {
                    return Err(InvalidCommand::SnapshotPart { part: part.part, part_count: part.part_count });
                }
                Ok(())
            }
        }
    }
}

/// Everything one core keeps: both state machines, the handle key, the state's clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// The latest entry time applied: entries stamped earlier (a clock step backwards) apply
    /// at this time instead, so that time never runs backwards inside the state.
    clock_ms: i64,
    handle_key: Option<HandleKey>,
    /// The last log index applied.
    applied: Option<LogIndex>,
    /// Above every application id a `CreateApplication` of the log named, applied or refused.
    next_application_id: u64,
    /// Above every queue id a `CreateQueue` of the log named, applied or refused.
    next_queue_id: u64,
    pub leases: Leases,
    pub queues: Queues,
}

impl State {
    pub fn clock_ms(&self) -> i64 {
        self.clock_ms
    }

    pub fn handle_key(&self) -> Option<&HandleKey> {
        self.handle_key.as_ref()
    }

    pub fn applied(&self) -> Option<LogIndex> {
        self.applied
    }

    /// An application id no entry of this log ever named (deleted applications included).
    pub fn next_application_id(&self) -> u64 {
        self.next_application_id
    }

    /// A queue id no entry of this log ever named (deleted queues included).
    pub fn next_queue_id(&self) -> u64 {
        self.next_queue_id
    }

    /// Applies the entry at `index`, which must follow the last one applied.
    pub fn apply(&mut self, index: LogIndex, entry: &Entry) -> Outcome {
        assert!(self.applied.is_none_or(|last| index > last), "log index {index} applied after {:?}", self.applied);
        self.applied = Some(index);
        self.clock_ms = self.clock_ms.max(entry.now_ms);
        let now_ms = self.clock_ms;
        if let Err(invalid) = entry.command.validate() {
            return Outcome::Invalid(invalid);
        }
        match &entry.command {
            Command::Init { handle_key } => {
                if self.handle_key.is_some() {
                    return Outcome::Invalid(InvalidCommand::AlreadyInitialised);
                }
                self.handle_key = Some(handle_key.clone());
                Outcome::Initialised
            }
            Command::Stream(event) => {
                self.leases.follow(now_ms, event);
                self.queues.follow(now_ms, event);
                Outcome::Followed
            }
            Command::Lease(command) => {
                if let LeaseCommand::CreateApplication { application, .. } = command {
                    self.next_application_id = self.next_application_id.max(application.0 + 1);
                }
                Outcome::Lease(self.leases.apply(now_ms, command))
            }
            Command::Queue(command) => {
                if let QueueCommand::CreateQueue { queue, .. } = command {
                    self.next_queue_id = self.next_queue_id.max(queue.0 + 1);
                }
                Outcome::Queue(self.queues.apply(now_ms, command))
            }
            Command::SnapshotPart(_) => Outcome::Snapshot,
        }
    }

    /// The whole state as snapshot items, in restore order.
    pub fn snapshot_items(&self) -> Vec<SnapshotItem> {
        let mut items = vec![
            SnapshotItem::Meta { clock_ms: self.clock_ms, handle_key: self.handle_key.clone() },
            SnapshotItem::Ids { next_application_id: self.next_application_id, next_queue_id: self.next_queue_id },
        ];
        self.leases.snapshot(&mut |item| items.push(SnapshotItem::Lease(item)));
        self.queues.snapshot(&mut |item| items.push(SnapshotItem::Queue(item)));
        items
    }

    /// Rebuilds a state from snapshot items, as of log index `as_of`.
    pub fn restore(as_of: LogIndex, items: impl IntoIterator<Item = SnapshotItem>) -> Result<State, RestoreError> {
        let mut state = State { applied: Some(as_of), ..State::default() };
        let mut items = items.into_iter();
        match items.next() {
            Some(SnapshotItem::Meta { clock_ms, handle_key }) => {
                state.clock_ms = clock_ms;
                state.handle_key = handle_key;
            }
            _ => return Err(RestoreError::Inconsistent("first item")),
        }
        for item in items {
            match item {
                SnapshotItem::Meta { .. } => return Err(RestoreError::Duplicate("meta item")),
                SnapshotItem::Ids { next_application_id, next_queue_id } => {
                    state.next_application_id = next_application_id;
                    state.next_queue_id = next_queue_id;
                }
                SnapshotItem::Lease(item) => state.leases.restore(item)?,
                SnapshotItem::Queue(item) => state.queues.restore(item)?,
            }
        }
        Ok(state)
    }
}
