//! Kinesis queues (issue 18): per-record delivery state with visibility timeouts, receive
//! counts and built-in dead-letter handling, as the service model documents them.
//!
//! Memory stays bounded: per shard, a queue keeps a *cursor* (every record before it was
//! delivered at least once) and a *window* of the records delivered but not yet
//! acknowledged: in flight, waiting for redelivery, or dead-letter. A record behind the cursor
//! and not in the window was acknowledged or expired. The window is bounded per shard and per
//! queue ([`QueueLimits`]); when it is full no new records are delivered from that shard (a
//! receive returns fewer records) until records are acknowledged or expire.
//!
//! Three ordered indexes over the window make every command cost O(log n) per record it
//! touches: visibility deadlines, records ready for (re)delivery, and arrival times (for
//! retention). They are derived data, rebuilt from the records on restore.
//!
//! Receiving is split in two so that the state machine never does I/O: [`Queue::wants`] says
//! which records the caller should read from the shards, [`Queue::select`] picks among the
//! records read (a pure function of the state, `now_ms` and those records) and returns the
//! `Receive` command to log; applying it, once durable, decides what was delivered.
//!
//! Ordering: the model promises none ("Records are not necessarily received in the order
//! they were written to the data stream"), so none is enforced per partition key. Within a
//! shard new records go out in stream order, redeliveries oldest deadline first, and a child
//! shard's records only after its parents' were all delivered once.

use crate::handle::{Delivery, Side};
use crate::ids::{QueueId, RecordIndex, ShardNumber, ShardUid, StreamUid};
use crate::limits::{
    MAX_RECEIVE_COUNT_DEFAULT, MAX_RECEIVE_COUNT_MAX, MAX_RECEIVE_COUNT_MIN, QUEUE_ENTRIES_PER_CALL_MAX,
    QUEUE_RECEIVE_RECORDS_MAX, QUEUE_TAGS_MAX, QUEUE_WINDOW_RECORDS_MAX, QUEUE_WINDOW_RECORDS_PER_SHARD_MAX,
    SHARD_PARENTS_MAX, TAG_KEY_CHARS_MAX, TAG_VALUE_CHARS_MAX, VISIBILITY_TIMEOUT_S_DEFAULT, VISIBILITY_TIMEOUT_S_MAX,
};
use crate::machine::{InvalidCommand, Machine, RestoreError};
use crate::stream::{ShardInfo, StreamEvent};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where delivery begins (model: `QueueStartingPositionType`, default LATEST).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    AtTimestamp { timestamp_ms: i64 },
}

/// Dead-letter handling (model: `DeadLetterConfiguration`, `TargetType` BUILT_IN or NONE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeadLetter {
    /// A record received `max_receive_count` times without acknowledgement becomes a
    /// dead-letter record when its last visibility timeout ends.
    BuiltIn { max_receive_count: u32 },
    /// Unacknowledged records are redelivered until acknowledged or past retention.
    None,
}

/// Model: `QueueAttributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueAttributes {
    pub visibility_timeout_s: u32,
    pub dead_letter: DeadLetter,
}

impl Default for QueueAttributes {
    /// What CreateQueue uses for attributes it is not given: 30 s, BUILT_IN with 6.
    fn default() -> QueueAttributes {
        QueueAttributes {
            visibility_timeout_s: VISIBILITY_TIMEOUT_S_DEFAULT,
            dead_letter: DeadLetter::BuiltIn { max_receive_count: MAX_RECEIVE_COUNT_DEFAULT },
        }
    }
}

/// A shard of the stream when the queue is created, with the first record to deliver (the
/// caller resolves the starting position against the shard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueShardStart {
    pub info: ShardInfo,
    pub start: RecordIndex,
    pub ending: Option<RecordIndex>,
}

/// Where a record of the window is in its visibility cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Received; invisible until `visible_at_ms`.
    InFlight { visible_at_ms: i64 },
    /// Visible on its side since `since_ms`: the next receive of that side may return it.
    Ready { since_ms: i64 },
}

/// A record delivered at least once and not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub arrival_ms: i64,
    pub first_receive_ms: i64,
    /// Receives since the last restore (model: `ReceiveCount`).
    pub receive_count: u32,
    /// Receives ever: the receipt handle's attempt number.
    pub attempt: u32,
    pub side: Side,
    pub phase: Phase,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueShard {
    pub info: ShardInfo,
    /// Every record before it was delivered at least once (or skipped: trimmed or expired).
    pub cursor: RecordIndex,
    /// The shard's records end before this index (it was closed by a reshard).
    pub ending: Option<RecordIndex>,
    pub records: BTreeMap<RecordIndex, WindowRecord>,
}

impl QueueShard {
    /// Every record was delivered and none is left in the window: the shard can go.
    fn is_finished(&self) -> bool {
        self.ending.is_some_and(|ending| self.cursor >= ending) && self.records.is_empty()
    }

    /// Every record was delivered once (its children may start).
    fn is_drained(&self) -> bool {
        self.ending.is_some_and(|ending| self.cursor >= ending)
    }
}

type Key = (i64, ShardUid, RecordIndex);

/// How full a queue's windows are at some time.
struct Occupancy {
    /// Window records past retention, per shard.
    expired: BTreeMap<ShardUid, usize>,
    /// Window records not past retention, in all.
    total: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub id: QueueId,
    pub name: String,
    pub stream: StreamUid,
    pub created_ms: i64,
    pub retention_ms: i64,
    pub starting_position: StartingPosition,
    /// The effective start (model: `QueueStartingPosition.Timestamp` once ACTIVE).
    pub effective_start_ms: i64,
    pub attributes: QueueAttributes,
    /// Where the next receive starts its round over the shards, so that no shard starves.
    pub rotation: u64,
    /// The queue's tags (CreateQueue's `Tags`, TagResource, UntagResource), at most
    /// [`QUEUE_TAGS_MAX`].
    pub tags: BTreeMap<String, String>,
    shards: BTreeMap<ShardUid, QueueShard>,
    timeouts: BTreeSet<Key>,
    ready: BTreeSet<(Side, i64, ShardUid, RecordIndex)>,
    by_arrival: BTreeSet<Key>,
    window_len: usize,
}

/// One record offered to a receive or chosen by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedRecord {
    pub shard: ShardUid,
    pub index: RecordIndex,
    pub arrival_ms: i64,
}

/// Records before `to` in `shard` will never be delivered: trimmed by retention before the
/// queue reached them, or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    pub shard: ShardUid,
    pub to: RecordIndex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisibilityChange {
    pub delivery: Delivery,
    pub visibility_timeout_s: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueCommand {
    CreateQueue {
        queue: QueueId,
        name: String,
        stream: StreamUid,
        retention_ms: i64,
        starting_position: StartingPosition,
        effective_start_ms: i64,
        attributes: QueueAttributes,
        shards: Vec<QueueShardStart>,
    },
    /// Attributes not given stay as they are. A new visibility timeout applies to records
    /// received afterwards (model: UpdateQueue).
    UpdateQueue {
        queue: QueueId,
        visibility_timeout_s: Option<u32>,
        dead_letter: Option<DeadLetter>,
    },
    DeleteQueue {
        queue: QueueId,
    },
    /// Delivers the records chosen by [`Queue::select`], those still deliverable when applied.
    Receive {
        queue: QueueId,
        side: Side,
        visibility_timeout_s: u32,
        records: Vec<OfferedRecord>,
        skips: Vec<Skip>,
    },
    Acknowledge {
        queue: QueueId,
        side: Side,
        deliveries: Vec<Delivery>,
    },
    ChangeVisibility {
        queue: QueueId,
        side: Side,
        changes: Vec<VisibilityChange>,
    },
    /// Returns dead-letter records to the queue side with a receive count of 0.
    Restore {
        queue: QueueId,
        deliveries: Vec<Delivery>,
    },
    /// Adds or overwrites tags (TagResource on a queue ARN, CreateQueue's `Tags`); refused as
    /// a whole if the queue would have more than [`QUEUE_TAGS_MAX`]. Appended after the first
    /// seven variants (their tags on disk stay).
    Tag {
        queue: QueueId,
        tags: Vec<(String, String)>,
    },
    /// Removes tags by key; keys the queue does not have are ignored (UntagResource).
    Untag {
        queue: QueueId,
        keys: Vec<String>,
    },
}

impl QueueCommand {
    pub fn queue(&self) -> QueueId {
        match self {
            QueueCommand::CreateQueue { queue, .. }
            | QueueCommand::UpdateQueue { queue, .. }
            | QueueCommand::DeleteQueue { queue }
            | QueueCommand::Receive { queue, .. }
            | QueueCommand::Acknowledge { queue, .. }
            | QueueCommand::ChangeVisibility { queue, .. }
            | QueueCommand::Restore { queue, .. }
            | QueueCommand::Tag { queue, .. }
            | QueueCommand::Untag { queue, .. } => *queue,
        }
    }

    /// Checks what the types cannot: names, bounds, list lengths (the model's limits).
    pub fn validate(&self) -> Result<(), InvalidCommand> {
        let visibility = |seconds: u32| {
            if seconds > VISIBILITY_TIMEOUT_S_MAX {
                return Err(InvalidCommand::VisibilityTimeout(seconds));
            }
            Ok(())
        };
        let dead_letter = |config: DeadLetter| match config {
            DeadLetter::BuiltIn { max_receive_count }
                if !(MAX_RECEIVE_COUNT_MIN..=MAX_RECEIVE_COUNT_MAX).contains(&max_receive_count) =>
            {
                Err(InvalidCommand::MaxReceiveCount(max_receive_count))
            }
            _ => Ok(()),
        };
        let entries = |count: usize| {
            if count == 0 || count > QUEUE_ENTRIES_PER_CALL_MAX {
                return Err(InvalidCommand::EntryCount(count));
            }
            Ok(())
        };
        match self {
            QueueCommand::CreateQueue { name, retention_ms, attributes, shards, .. } => {
                if !crate::ids::is_valid_name(name) {
                    return Err(InvalidCommand::Name);
                }
                if *retention_ms <= 0 {
                    return Err(InvalidCommand::Retention(*retention_ms));
                }
                visibility(attributes.visibility_timeout_s)?;
                dead_letter(attributes.dead_letter)?;
                if shards.iter().any(|shard| shard.info.parents.len() > SHARD_PARENTS_MAX) {
                    return Err(InvalidCommand::TooManyParents);
                }
            }
            QueueCommand::UpdateQueue { visibility_timeout_s, dead_letter: config, .. } => {
                visibility_timeout_s.map(visibility).transpose()?;
                config.map(dead_letter).transpose()?;
            }
            QueueCommand::DeleteQueue { .. } => {}
            QueueCommand::Receive { visibility_timeout_s, records, .. } => {
                visibility(*visibility_timeout_s)?;
                if records.len() > QUEUE_RECEIVE_RECORDS_MAX {
                    return Err(InvalidCommand::EntryCount(records.len()));
                }
            }
            QueueCommand::Acknowledge { deliveries, .. } | QueueCommand::Restore { deliveries, .. } => {
                entries(deliveries.len())?;
            }
            QueueCommand::ChangeVisibility { changes, .. } => {
                entries(changes.len())?;
                for change in changes {
                    visibility(change.visibility_timeout_s)?;
                }
            }
            QueueCommand::Tag { tags, .. } => {
                if tags.len() > QUEUE_TAGS_MAX {
                    return Err(InvalidCommand::TagCount(tags.len()));
                }
                if tags.iter().any(|(key, value)| !valid_tag(key, value)) {
                    return Err(InvalidCommand::Tag);
                }
            }
            QueueCommand::Untag { keys, .. } => {
                if keys.len() > QUEUE_TAGS_MAX {
                    return Err(InvalidCommand::TagCount(keys.len()));
                }
                if keys.iter().any(|key| !valid_tag(key, "")) {
                    return Err(InvalidCommand::Tag);
                }
            }
        }
        Ok(())
    }
}

/// One record a receive delivered: the caller reads its data and partition key from the
/// shard and signs `delivery` into a receipt handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub delivery: Delivery,
    pub shard_number: ShardNumber,
    pub arrival_ms: i64,
    pub first_receive_ms: i64,
    pub receive_count: u32,
}

/// Whether a tag fits the bounds of the model's `TagKey` (1..=128 characters) and `TagValue`
/// (0..=256); the characters are the request checks' business (`sluice_model::validate`).
fn valid_tag(key: &str, value: &str) -> bool {
    (1..=TAG_KEY_CHARS_MAX).contains(&key.chars().count()) && value.chars().count() <= TAG_VALUE_CHARS_MAX
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueReply {
    Created,
    Updated,
    Deleted,
    Tagged,
    Received(Vec<Received>),
    /// One result per entry, in request order (model: `Successful` and `Failed` lists).
    Entries(Vec<Result<(), EntryError>>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("queue {0} does not exist")]
    QueueNotFound(QueueId),
    #[error("queue {queue} would have {count} tags, more than {QUEUE_TAGS_MAX}")]
    TooManyTags { queue: QueueId, count: usize },
}

pub type QueueOutcome = Result<QueueReply, QueueError>;

/// Why one entry of an acknowledge, visibility or restore call failed. The model allows four
/// codes per entry; [`EntryError::kind`] says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("the receipt handle is stale: the record was received again since (attempt {attempt}, now {current})")]
    Stale { attempt: u32, current: u32 },
    #[error("the record is a dead-letter record: use the dead-letter operations")]
    DeadLetter,
    #[error("the record is not a dead-letter record")]
    NotDeadLetter,
    #[error("the record is not in flight: its visibility timeout already ended")]
    NotInFlight,
    #[error("the receipt handle names a record this queue has not delivered")]
    NotDelivered,
    #[error("the record is no longer in the queue: it was acknowledged or its retention period ended")]
    Gone,
}

/// The model's per-entry error codes this state produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryErrorKind {
    /// `InvalidArgumentException`
    InvalidArgument,
    /// `ResourceNotFoundException`
    ResourceNotFound,
}

impl EntryError {
    pub fn kind(&self) -> EntryErrorKind {
        match self {
            EntryError::Gone => EntryErrorKind::ResourceNotFound,
            _ => EntryErrorKind::InvalidArgument,
        }
    }
}

/// Bounds on a queue's window. The defaults are the limits in [`crate::limits`]; tests use
/// small ones to reach them quickly. Only selection enforces them: applying a command does
/// not depend on them, so a log replays the same under any configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    pub window_records_per_shard_max: usize,
    pub window_records_max: usize,
}

impl Default for QueueLimits {
    fn default() -> QueueLimits {
        QueueLimits {
            window_records_per_shard_max: QUEUE_WINDOW_RECORDS_PER_SHARD_MAX,
            window_records_max: QUEUE_WINDOW_RECORDS_MAX,
        }
    }
}

/// Records chosen by receives whose commands are logged but not applied yet. The caller keeps
/// one per queue so that concurrent receives choose different records; it is not state (a
/// crash forgets it, and nothing depends on it for correctness: applying a `Receive` drops
/// records that are no longer deliverable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservations {
    records: BTreeSet<(ShardUid, RecordIndex)>,
}

impl Reservations {
    pub fn reserve(&mut self, receive: &QueueCommand) {
        if let QueueCommand::Receive { records, .. } = receive {
            self.records.extend(records.iter().map(|record| (record.shard, record.index)));
        }
    }

    /// Once the receive was applied, or failed to be logged.
    pub fn release(&mut self, receive: &QueueCommand) {
        if let QueueCommand::Receive { records, .. } = receive {
            for record in records {
                self.records.remove(&(record.shard, record.index));
            }
        }
    }

    pub fn contains(&self, shard: ShardUid, index: RecordIndex) -> bool {
        self.records.contains(&(shard, index))
    }

    /// Reserved records of `shard` at or after `from` (new records, not redeliveries).
    fn fresh_in(&self, shard: ShardUid, from: RecordIndex) -> impl DoubleEndedIterator<Item = RecordIndex> + '_ {
        self.records.range((shard, from)..=(shard, RecordIndex(u64::MAX))).map(|&(_, index)| index)
    }
}

/// What a receive should read before it selects: redeliveries by position, and new records
/// per shard from `from`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wants {
    pub redeliveries: Vec<(ShardUid, RecordIndex)>,
    pub fresh: Vec<FreshWant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshWant {
    pub shard: ShardUid,
    pub from: RecordIndex,
    pub count_max: usize,
}

/// What the caller read for a receive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Offered {
    /// Records found: redeliveries and new records, in any order.
    pub records: Vec<OfferedRecord>,
    /// Per shard read for new records from `from`: the first index at or after `from` of a
    /// record that is retained and not past retention, or the shard's end if there is none.
    /// Greater than `from` when records were trimmed or expired before the queue reached them:
    /// the receive skips them. The records offered for new delivery start there.
    pub horizons: Vec<ShardHorizon>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardHorizon {
    pub shard: ShardUid,
    pub from: RecordIndex,
    pub first_available: RecordIndex,
}

/// How a queue is written into a snapshot: the queue, then each shard, then its window in
/// chunks of at most [`SNAPSHOT_ITEM_BYTES_MAX`](crate::limits::SNAPSHOT_ITEM_BYTES_MAX) bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueItem {
    Queue {
        id: QueueId,
        name: String,
        stream: StreamUid,
        created_ms: i64,
        retention_ms: i64,
        starting_position: StartingPosition,
        effective_start_ms: i64,
        attributes: QueueAttributes,
        rotation: u64,
    },
    Shard {
        queue: QueueId,
        info: ShardInfo,
        cursor: RecordIndex,
        ending: Option<RecordIndex>,
    },
    Records {
        queue: QueueId,
        shard: ShardUid,
        records: Vec<(RecordIndex, WindowRecord)>,
    },
    /// The queue's tags, right after its `Queue` item when it has any (appended after the
    /// first three variants).
    Tags {
        queue: QueueId,
        tags: Vec<(String, String)>,
    },
}

impl Queue {
    pub fn shards(&self) -> impl Iterator<Item = &QueueShard> {
        self.shards.values()
    }

    pub fn shard(&self, uid: ShardUid) -> Option<&QueueShard> {
        self.shards.get(&uid)
    }

    /// Records in the window, over all shards.
    pub fn window_len(&self) -> usize {
        self.window_len
    }

    /// The earliest visibility deadline: a long-polling receive with nothing to deliver can
    /// sleep until then (or until new records arrive).
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.timeouts.first().map(|&(deadline, _, _)| deadline)
    }

    fn max_receive_count(&self) -> Option<u32> {
        match self.attributes.dead_letter {
            DeadLetter::BuiltIn { max_receive_count } => Some(max_receive_count),
            DeadLetter::None => None,
        }
    }

    fn is_expired(&self, arrival_ms: i64, now_ms: i64) -> bool {
        arrival_ms.saturating_add(self.retention_ms) <= now_ms
    }

    /// The side a record whose visibility ended goes to.
    fn side_after_timeout(&self, record: &WindowRecord) -> Side {
        match (record.side, self.max_receive_count()) {
            (Side::Queue, Some(max)) if record.receive_count >= max => Side::DeadLetter,
            (side, _) => side,
        }
    }

    fn record(&self, shard: ShardUid, index: RecordIndex) -> &WindowRecord {
        &self.shards[&shard].records[&index]
    }

    fn record_mut(&mut self, shard: ShardUid, index: RecordIndex) -> &mut WindowRecord {
        self.shards.get_mut(&shard).and_then(|s| s.records.get_mut(&index)).expect("the indexes follow the records")
    }

    fn unindex(&mut self, shard: ShardUid, index: RecordIndex) {
        let record = *self.record(shard, index);
        let removed = match record.phase {
            Phase::InFlight { visible_at_ms } => self.timeouts.remove(&(visible_at_ms, shard, index)),
            Phase::Ready { since_ms } => self.ready.remove(&(record.side, since_ms, shard, index)),
        };
        assert!(removed, "record {shard}/{index} was not in its index");
    }

    fn set_phase(&mut self, shard: ShardUid, index: RecordIndex, side: Side, phase: Phase) {
        self.unindex(shard, index);
        let record = self.record_mut(shard, index);
        record.side = side;
        record.phase = phase;
        match phase {
            Phase::InFlight { visible_at_ms } => self.timeouts.insert((visible_at_ms, shard, index)),
            Phase::Ready { since_ms } => self.ready.insert((side, since_ms, shard, index)),
        };
    }

    fn insert_record(&mut self, shard: ShardUid, index: RecordIndex, record: WindowRecord) {
        match record.phase {
            Phase::InFlight { visible_at_ms } => self.timeouts.insert((visible_at_ms, shard, index)),
            Phase::Ready { since_ms } => self.ready.insert((record.side, since_ms, shard, index)),
        };
        self.by_arrival.insert((record.arrival_ms, shard, index));
        let previous = self.shards.get_mut(&shard).expect("records go into known shards").records.insert(index, record);
        assert!(previous.is_none(), "record {shard}/{index} is already in the window");
        self.window_len += 1;
    }

    fn remove_record(&mut self, shard: ShardUid, index: RecordIndex) {
        self.unindex(shard, index);
        let record = self.shards.get_mut(&shard).and_then(|s| s.records.remove(&index)).expect("indexed record exists");
        assert!(self.by_arrival.remove(&(record.arrival_ms, shard, index)));
        self.window_len -= 1;
    }

    fn remove_shard(&mut self, shard: ShardUid) {
        let indexes: Vec<RecordIndex> =
            self.shards.get(&shard).map(|s| s.records.keys().copied().collect()).unwrap_or_default();
        for index in indexes {
            self.remove_record(shard, index);
        }
        self.shards.remove(&shard);
    }

    /// Brings the queue to `now_ms`: records whose visibility ended become ready (or
    /// dead-letter), records past retention leave.
    fn advance(&mut self, now_ms: i64) {
        while let Some(&(deadline, shard, index)) = self.timeouts.first() {
            if deadline > now_ms {
                break;
            }
            let side = self.side_after_timeout(self.record(shard, index));
            self.set_phase(shard, index, side, Phase::Ready { since_ms: deadline });
        }
        while let Some(&(arrival_ms, shard, index)) = self.by_arrival.first() {
            if !self.is_expired(arrival_ms, now_ms) {
                break;
            }
            self.remove_record(shard, index);
        }
    }

    fn drop_finished_shards(&mut self) {
        self.shards.retain(|_, shard| !shard.is_finished());
    }

    /// New records of `shard` may be delivered: its parents (if the queue still has them)
    /// were all delivered once.
    fn takes_fresh(&self, shard: &QueueShard) -> bool {
        !shard.is_drained()
            && shard.info.parents.iter().all(|parent| self.shards.get(parent).is_none_or(QueueShard::is_drained))
    }

    /// Records of `side` a receive at `now_ms` may return, oldest readiness first, as if the
    /// queue were advanced to `now_ms`.
    fn ready_at(&self, side: Side, now_ms: i64) -> impl Iterator<Item = (ShardUid, RecordIndex)> + '_ {
        let ready = self
            .ready
            .range(
                (side, i64::MIN, ShardUid(0), RecordIndex(0))
                    ..=(side, i64::MAX, ShardUid(u64::MAX), RecordIndex(u64::MAX)),
            )
            .map(|&(_, _, shard, index)| (shard, index));
        let timed_out = self
            .timeouts
            .iter()
            .take_while(move |&&(deadline, _, _)| deadline <= now_ms)
            .filter(move |&&(_, shard, index)| self.side_after_timeout(self.record(shard, index)) == side)
            .map(|&(_, shard, index)| (shard, index));
        ready
            .chain(timed_out)
            .filter(move |&(shard, index)| !self.is_expired(self.record(shard, index).arrival_ms, now_ms))
    }

    /// Where new records of `shard` start for the next selection: after the cursor and after
    /// records reserved by receives not applied yet.
    fn fresh_from(&self, shard: &QueueShard, reserved: &Reservations) -> RecordIndex {
        match reserved.fresh_in(shard.info.uid, shard.cursor).next_back() {
            Some(last) => RecordIndex(last.0 + 1),
            None => shard.cursor,
        }
    }

    /// Window records per shard, and in all, as of `now_ms`: without the records past
    /// retention, which the next applied command drops.
    fn window_at(&self, now_ms: i64) -> Occupancy {
        let mut expired = BTreeMap::new();
        let mut expired_total = 0;
        for &(arrival_ms, shard, _) in &self.by_arrival {
            if !self.is_expired(arrival_ms, now_ms) {
                break;
            }
            *expired.entry(shard).or_insert(0) += 1;
            expired_total += 1;
        }
        Occupancy { expired, total: self.window_len - expired_total }
    }

    /// How many new records `shard` may still take into its window.
    fn fresh_room(
        &self,
        shard: &QueueShard,
        occupancy: &Occupancy,
        limits: &QueueLimits,
        reserved: &Reservations,
    ) -> usize {
        let reserved_fresh = reserved.fresh_in(shard.info.uid, shard.cursor).count();
        let held = shard.records.len() - occupancy.expired.get(&shard.info.uid).copied().unwrap_or(0);
        limits.window_records_per_shard_max.saturating_sub(held + reserved_fresh)
    }

    /// Shards in this receive's round-robin order, starting at the rotation.
    fn rotated_shards(&self) -> Vec<&QueueShard> {
        let mut shards: Vec<&QueueShard> = self.shards.values().collect();
        if !shards.is_empty() {
            let at = (self.rotation % shards.len() as u64) as usize;
            shards.rotate_left(at);
        }
        shards
    }

    /// What a receive of at most `limit` records of `side` at `now_ms` should read.
    pub fn wants(&self, side: Side, now_ms: i64, limit: usize, limits: &QueueLimits, reserved: &Reservations) -> Wants {
        let limit = limit.min(QUEUE_RECEIVE_RECORDS_MAX);
        let redeliveries = self
            .ready_at(side, now_ms)
            .filter(|&(shard, index)| !reserved.contains(shard, index))
            .take(limit)
            .collect();
        let mut fresh = Vec::new();
        let occupancy = self.window_at(now_ms);
        if side == Side::Queue && occupancy.total + reserved.records.len() < limits.window_records_max {
            for shard in self.rotated_shards() {
                let room = self.fresh_room(shard, &occupancy, limits, reserved);
                if room > 0 && self.takes_fresh(shard) {
                    fresh.push(FreshWant {
                        shard: shard.info.uid,
                        from: self.fresh_from(shard, reserved),
                        count_max: room.min(limit),
                    });
                }
            }
        }
        Wants { redeliveries, fresh }
    }

    /// Chooses what a receive returns among the records the caller read: redeliveries first
    /// (oldest readiness first), then new records one shard at a time in round-robin order,
    /// within the window's bounds. Returns the `Receive` command to log; it may choose nothing
    /// (then it need not be logged unless it skips trimmed records).
    #[expect(clippy::too_many_arguments, reason = "a receive's inputs; bundling them would only rename them")]
    pub fn select(
        &self,
        side: Side,
        now_ms: i64,
        limit: usize,
        visibility_timeout_s: Option<u32>,
        limits: &QueueLimits,
        reserved: &Reservations,
        offered: &Offered,
    ) -> QueueCommand {
        let limit = limit.min(QUEUE_RECEIVE_RECORDS_MAX);
        let found: BTreeMap<(ShardUid, RecordIndex), i64> =
            offered.records.iter().map(|record| ((record.shard, record.index), record.arrival_ms)).collect();
        let mut chosen: Vec<OfferedRecord> = Vec::new();
        for (shard, index) in self.ready_at(side, now_ms) {
            if chosen.len() == limit {
                break;
            }
            if !reserved.contains(shard, index) && found.contains_key(&(shard, index)) {
                chosen.push(OfferedRecord { shard, index, arrival_ms: self.record(shard, index).arrival_ms });
            }
        }
        let mut skips = Vec::new();
        if side == Side::Queue {
            let occupancy = self.window_at(now_ms);
            let mut room_total = limits.window_records_max.saturating_sub(occupancy.total + reserved.records.len());
            // Per shard, the new records it can deliver now, in order.
            let mut lanes: Vec<std::collections::VecDeque<OfferedRecord>> = Vec::new();
            for shard in self.rotated_shards() {
                let uid = shard.info.uid;
                let from = self.fresh_from(shard, reserved);
                let Some(horizon) = offered.horizons.iter().find(|h| h.shard == uid && h.from == from) else {
                    continue;
                };
                if !self.takes_fresh(shard) {
                    continue;
                }
                let mut next = from.max(horizon.first_available);
                let mut lane = std::collections::VecDeque::new();
                let room = self.fresh_room(shard, &occupancy, limits, reserved).min(limit);
                while let Some(&arrival_ms) = found.get(&(uid, next)) {
                    if shard.ending.is_some_and(|ending| next >= ending) || lane.len() == room {
                        break;
                    }
                    if lane.is_empty() && self.is_expired(arrival_ms, now_ms) {
                        // Expired before it was ever delivered: never deliver it.
                        next = RecordIndex(next.0 + 1);
                        continue;
                    }
                    if self.is_expired(arrival_ms, now_ms) {
                        break;
                    }
                    lane.push_back(OfferedRecord { shard: uid, index: next, arrival_ms });
                    next = RecordIndex(next.0 + 1);
                }
                let skip_to = lane.front().map_or(next, |first| first.index);
                // A skip while receives of this shard are in flight could pass over records
                // they chose, if they then failed: skip only from the applied cursor.
                if skip_to > shard.cursor && from == shard.cursor {
                    skips.push(Skip { shard: uid, to: skip_to });
                }
                if !lane.is_empty() {
                    lanes.push(lane);
                }
            }
            while chosen.len() < limit && room_total > 0 && !lanes.is_empty() {
                lanes.retain_mut(|lane| {
                    if chosen.len() < limit && room_total > 0 {
                        if let Some(record) = lane.pop_front() {
                            chosen.push(record);
                            room_total -= 1;
                        }
                    }
                    !lane.is_empty()
                });
            }
        }
        QueueCommand::Receive {
            queue: self.id,
            side,
            visibility_timeout_s: visibility_timeout_s.unwrap_or(self.attributes.visibility_timeout_s),
            records: chosen,
            skips,
        }
    }

    fn receive(
        &mut self,
        now_ms: i64,
        side: Side,
        visibility_timeout_s: u32,
        records: &[OfferedRecord],
        skips: &[Skip],
    ) -> Vec<Received> {
        self.advance(now_ms);
        for skip in skips {
            if let Some(shard) = self.shards.get_mut(&skip.shard) {
                let to = shard.ending.map_or(skip.to, |ending| skip.to.min(ending));
                shard.cursor = shard.cursor.max(to);
            }
        }
        let visible_at_ms = now_ms.saturating_add(i64::from(visibility_timeout_s) * 1000);
        let mut received = Vec::new();
        for offered in records {
            let Some(shard) = self.shards.get(&offered.shard) else { continue };
            let (number, uid, index) = (shard.info.number, offered.shard, offered.index);
            if index < shard.cursor {
                // A redelivery: the record must be ready on this side.
                let Some(record) = shard.records.get(&index) else { continue };
                if record.side != side || !matches!(record.phase, Phase::Ready { .. }) || record.attempt == u32::MAX {
                    continue;
                }
                self.set_phase(uid, index, side, Phase::InFlight { visible_at_ms });
                let record = self.record_mut(uid, index);
                record.attempt += 1;
                record.receive_count = record.receive_count.saturating_add(1);
            } else {
                // A first delivery: it must be the shard's next record, on the queue side.
                if side != Side::Queue
                    || index != shard.cursor
                    || !self.takes_fresh(shard)
                    || shard.ending.is_some_and(|ending| index >= ending)
                    || self.is_expired(offered.arrival_ms, now_ms)
                {
                    continue;
                }
                self.shards.get_mut(&uid).expect("looked up above").cursor = RecordIndex(index.0 + 1);
                self.insert_record(
                    uid,
                    index,
                    WindowRecord {
                        arrival_ms: offered.arrival_ms,
                        first_receive_ms: now_ms,
                        receive_count: 1,
                        attempt: 1,
                        side: Side::Queue,
                        phase: Phase::InFlight { visible_at_ms },
                    },
                );
            }
            let record = self.record(uid, index);
            received.push(Received {
                delivery: Delivery { shard: uid, index, attempt: record.attempt, side },
                shard_number: number,
                arrival_ms: record.arrival_ms,
                first_receive_ms: record.first_receive_ms,
                receive_count: record.receive_count,
            });
        }
        self.rotation = self.rotation.wrapping_add(1);
        self.drop_finished_shards();
        received
    }

    /// The window record a delivery names, or why the entry fails. A record that left the
    /// window (acknowledged, expired, or its shard finished) is `Gone`.
    fn delivered(&self, side: Side, delivery: &Delivery) -> Result<&WindowRecord, EntryError> {
        let wrong_side = |side: Side| match side {
            Side::Queue => EntryError::DeadLetter,
            Side::DeadLetter => EntryError::NotDeadLetter,
        };
        if delivery.side != side {
            return Err(wrong_side(side));
        }
        let Some(shard) = self.shards.get(&delivery.shard) else { return Err(EntryError::Gone) };
        let Some(record) = shard.records.get(&delivery.index) else {
            return Err(if delivery.index < shard.cursor { EntryError::Gone } else { EntryError::NotDelivered });
        };
        if record.attempt != delivery.attempt {
            return Err(EntryError::Stale { attempt: delivery.attempt, current: record.attempt });
        }
        if record.side != side {
            return Err(wrong_side(side));
        }
        Ok(record)
    }

    fn acknowledge(&mut self, now_ms: i64, side: Side, deliveries: &[Delivery]) -> Vec<Result<(), EntryError>> {
        self.advance(now_ms);
        let mut results = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let result = match self.delivered(side, delivery) {
                Ok(_) => {
                    self.remove_record(delivery.shard, delivery.index);
                    // The last record of a closed shard: the shard is done.
                    if self.shards.get(&delivery.shard).is_some_and(QueueShard::is_finished) {
                        self.shards.remove(&delivery.shard);
                    }
                    Ok(())
                }
                // Acknowledging what is already gone succeeds: the record will not be
                // delivered again, which is all an acknowledgement promises, and a retry of an
                // acknowledgement whose answer was lost must not fail.
                Err(EntryError::Gone) => Ok(()),
                Err(error) => Err(error),
            };
            results.push(result);
        }
        results
    }

    fn change_visibility(
        &mut self,
        now_ms: i64,
        side: Side,
        changes: &[VisibilityChange],
    ) -> Vec<Result<(), EntryError>> {
        self.advance(now_ms);
        let mut results = Vec::with_capacity(changes.len());
        for change in changes {
            let delivery = change.delivery;
            let result = self.delivered(side, &delivery).and_then(|record| match record.phase {
                Phase::InFlight { .. } => Ok(()),
                Phase::Ready { .. } => Err(EntryError::NotInFlight),
            });
            if result.is_ok() {
                // "measured from when this request is processed"; 0 makes it visible at once
                // (the advance below).
                let visible_at_ms = now_ms.saturating_add(i64::from(change.visibility_timeout_s) * 1000);
                self.set_phase(delivery.shard, delivery.index, side, Phase::InFlight { visible_at_ms });
            }
            results.push(result);
        }
        self.advance(now_ms);
        results
    }

    fn restore(&mut self, now_ms: i64, deliveries: &[Delivery]) -> Vec<Result<(), EntryError>> {
        self.advance(now_ms);
        let mut results = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let result = self.delivered(Side::DeadLetter, delivery).map(|_| ());
            if result.is_ok() {
                self.set_phase(delivery.shard, delivery.index, Side::Queue, Phase::Ready { since_ms: now_ms });
                self.record_mut(delivery.shard, delivery.index).receive_count = 0;
            }
            results.push(result);
        }
        results
    }

    fn update(&mut self, now_ms: i64, visibility_timeout_s: Option<u32>, dead_letter: Option<DeadLetter>) {
        self.advance(now_ms);
        if let Some(seconds) = visibility_timeout_s {
            self.attributes.visibility_timeout_s = seconds;
        }
        if let Some(config) = dead_letter {
            self.attributes.dead_letter = config;
            // Visible records already received as often as the new maximum allows are
            // dead-letter records now; records in flight follow when their timeout ends.
            let now_dead: Vec<(i64, ShardUid, RecordIndex)> = self
                .ready
                .iter()
                .filter(|&&(side, _, shard, index)| {
                    side == Side::Queue && self.side_after_timeout(self.record(shard, index)) == Side::DeadLetter
                })
                .map(|&(_, since_ms, shard, index)| (since_ms, shard, index))
                .collect();
            for (since_ms, shard, index) in now_dead {
                self.set_phase(shard, index, Side::DeadLetter, Phase::Ready { since_ms });
            }
        }
    }

    fn follow(&mut self, now_ms: i64, event: &StreamEvent) {
        match event {
            StreamEvent::ShardsCreated { shards, .. } => {
                for info in shards {
                    // Children start at their first record; a read from index 0 finds it and
                    // the receive skips to it.
                    self.shards.entry(info.uid).or_insert_with(|| QueueShard {
                        info: info.clone(),
                        cursor: RecordIndex(0),
                        ending: None,
                        records: BTreeMap::new(),
                    });
                }
            }
            StreamEvent::ShardEnded { shard, ending_index, .. } => {
                if let Some(shard) = self.shards.get_mut(shard) {
                    shard.ending = Some(*ending_index);
                }
            }
            StreamEvent::RetentionChanged { retention_ms, .. } => {
                self.retention_ms = *retention_ms;
            }
            StreamEvent::ShardsExpired { shards, .. } => {
                for shard in shards {
                    self.remove_shard(*shard);
                }
            }
            StreamEvent::StreamDeleted { .. } => {}
        }
        self.advance(now_ms);
        self.drop_finished_shards();
    }
}

/// Every queue of one core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queues {
    queues: BTreeMap<QueueId, Queue>,
}

impl Queues {
    pub fn queue(&self, id: QueueId) -> Option<&Queue> {
        self.queues.get(&id)
    }

    pub fn queues(&self) -> impl Iterator<Item = &Queue> {
        self.queues.values()
    }

    fn queue_mut(&mut self, id: QueueId) -> Result<&mut Queue, QueueError> {
        self.queues.get_mut(&id).ok_or(QueueError::QueueNotFound(id))
    }
}

impl Machine for Queues {
    type Command = QueueCommand;
    type Outcome = QueueOutcome;
    type Item = QueueItem;

    fn apply(&mut self, now_ms: i64, command: &QueueCommand) -> QueueOutcome {
        match command {
            QueueCommand::CreateQueue {
                queue,
                name,
                stream,
                retention_ms,
                starting_position,
                effective_start_ms,
                attributes,
                shards,
            } => {
                // Applying it again (a restart finishing a creation) changes nothing.
                self.queues.entry(*queue).or_insert_with(|| Queue {
                    id: *queue,
                    name: name.clone(),
                    stream: *stream,
                    created_ms: now_ms,
                    retention_ms: *retention_ms,
                    starting_position: *starting_position,
                    effective_start_ms: *effective_start_ms,
                    attributes: *attributes,
                    rotation: 0,
                    tags: BTreeMap::new(),
                    shards: shards
                        .iter()
                        .map(|start| {
                            let shard = QueueShard {
                                info: start.info.clone(),
                                cursor: start.start,
                                ending: start.ending,
                                records: BTreeMap::new(),
                            };
                            (start.info.uid, shard)
                        })
                        .collect(),
                    timeouts: BTreeSet::new(),
                    ready: BTreeSet::new(),
                    by_arrival: BTreeSet::new(),
                    window_len: 0,
                });
                Ok(QueueReply::Created)
            }
            QueueCommand::UpdateQueue { queue, visibility_timeout_s, dead_letter } => {
                self.queue_mut(*queue)?.update(now_ms, *visibility_timeout_s, *dead_letter);
                Ok(QueueReply::Updated)
            }
            QueueCommand::DeleteQueue { queue } => {
                self.queues.remove(queue).ok_or(QueueError::QueueNotFound(*queue))?;
                Ok(QueueReply::Deleted)
            }
            QueueCommand::Receive { queue, side, visibility_timeout_s, records, skips } => Ok(QueueReply::Received(
                self.queue_mut(*queue)?.receive(now_ms, *side, *visibility_timeout_s, records, skips),
            )),
            QueueCommand::Acknowledge { queue, side, deliveries } => {
                Ok(QueueReply::Entries(self.queue_mut(*queue)?.acknowledge(now_ms, *side, deliveries)))
            }
            QueueCommand::ChangeVisibility { queue, side, changes } => {
                Ok(QueueReply::Entries(self.queue_mut(*queue)?.change_visibility(now_ms, *side, changes)))
            }
            QueueCommand::Restore { queue, deliveries } => {
                Ok(QueueReply::Entries(self.queue_mut(*queue)?.restore(now_ms, deliveries)))
            }
            QueueCommand::Tag { queue, tags } => {
                let existing = &mut self.queue_mut(*queue)?.tags;
                let mut merged = existing.clone();
                merged.extend(tags.iter().cloned());
                if merged.len() > QUEUE_TAGS_MAX {
                    return Err(QueueError::TooManyTags { queue: *queue, count: merged.len() });
                }
                *existing = merged;
                Ok(QueueReply::Tagged)
            }
            QueueCommand::Untag { queue, keys } => {
                let existing = &mut self.queue_mut(*queue)?.tags;
                for key in keys {
                    existing.remove(key);
                }
                Ok(QueueReply::Tagged)
            }
        }
    }

    fn follow(&mut self, now_ms: i64, event: &StreamEvent) {
        let stream = event.stream();
        if let StreamEvent::StreamDeleted { .. } = event {
            self.queues.retain(|_, queue| queue.stream != stream);
            return;
        }
        for queue in self.queues.values_mut().filter(|queue| queue.stream == stream) {
            queue.follow(now_ms, event);
        }
    }

    fn snapshot(&self, emit: &mut dyn FnMut(QueueItem)) {
        for queue in self.queues.values() {
            emit(QueueItem::Queue {
                id: queue.id,
                name: queue.name.clone(),
                stream: queue.stream,
                created_ms: queue.created_ms,
                retention_ms: queue.retention_ms,
                starting_position: queue.starting_position,
                effective_start_ms: queue.effective_start_ms,
                attributes: queue.attributes,
                rotation: queue.rotation,
            });
            if !queue.tags.is_empty() {
                let tags = queue.tags.iter().map(|(key, value)| (key.clone(), value.clone())).collect();
                emit(QueueItem::Tags { queue: queue.id, tags });
            }
            for shard in queue.shards.values() {
                emit(QueueItem::Shard {
                    queue: queue.id,
                    info: shard.info.clone(),
                    cursor: shard.cursor,
                    ending: shard.ending,
                });
                let uid = shard.info.uid;
                crate::machine::chunk_by_size(
                    shard.records.iter().map(|(&index, &record)| (index, record)),
                    |records| {
                        emit(QueueItem::Records { queue: queue.id, shard: uid, records });
                    },
                );
            }
        }
    }

    fn restore(&mut self, item: QueueItem) -> Result<(), RestoreError> {
        match item {
            QueueItem::Queue {
                id,
                name,
                stream,
                created_ms,
                retention_ms,
                starting_position,
                effective_start_ms,
                attributes,
                rotation,
            } => {
                let queue = Queue {
                    id,
                    name,
                    stream,
                    created_ms,
                    retention_ms,
                    starting_position,
                    effective_start_ms,
                    attributes,
                    rotation,
                    tags: BTreeMap::new(),
                    shards: BTreeMap::new(),
                    timeouts: BTreeSet::new(),
                    ready: BTreeSet::new(),
                    by_arrival: BTreeSet::new(),
                    window_len: 0,
                };
                if self.queues.insert(id, queue).is_some() {
                    return Err(RestoreError::Duplicate("queue"));
                }
            }
            QueueItem::Tags { queue, tags } => {
                let queue = self.queues.get_mut(&queue).ok_or(RestoreError::Orphan("queue tags"))?;
                if !queue.tags.is_empty() {
                    return Err(RestoreError::Duplicate("queue tags"));
                }
                queue.tags = tags.into_iter().collect();
            }
            QueueItem::Shard { queue, info, cursor, ending } => {
                let queue = self.queues.get_mut(&queue).ok_or(RestoreError::Orphan("queue shard"))?;
                let uid = info.uid;
                if queue.shards.insert(uid, QueueShard { info, cursor, ending, records: BTreeMap::new() }).is_some() {
                    return Err(RestoreError::Duplicate("queue shard"));
                }
            }
            QueueItem::Records { queue, shard, records } => {
                let queue = self.queues.get_mut(&queue).ok_or(RestoreError::Orphan("queue records"))?;
                let Some(known) = queue.shards.get(&shard) else { return Err(RestoreError::Orphan("queue records")) };
                let cursor = known.cursor;
                for (index, record) in records {
                    if index >= cursor || queue.shards[&shard].records.contains_key(&index) {
                        return Err(RestoreError::Duplicate("window record"));
                    }
                    queue.insert_record(shard, index, record);
                }
            }
        }
        Ok(())
    }
}
