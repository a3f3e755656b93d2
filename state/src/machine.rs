//! What a state machine of the delivery state is: the [`Machine`] trait each one (leases,
//! queues) implements for the shared machinery (apply a command, follow stream events, write
//! itself into snapshot items and read itself back), the errors of both, and how snapshot
//! items are cut.

use crate::limits::SNAPSHOT_ITEM_BYTES_MAX;
use crate::stream::StreamEvent;

/// What a state machine gives the shared log machinery.
pub trait Machine {
    type Command;
    type Outcome;
    /// A piece of a snapshot; small enough for a snapshot part.
    type Item;

    /// Applies one command at `now_ms` (the entry's time; never earlier than any entry before).
    /// Must be deterministic and must not panic on any command that passed validation.
    fn apply(&mut self, now_ms: i64, command: &Self::Command) -> Self::Outcome;
    /// Follows a change of a stream.
    fn follow(&mut self, now_ms: i64, event: &StreamEvent);
    /// Writes the whole machine as items, in an order [`Machine::restore`] accepts.
    fn snapshot(&self, emit: &mut dyn FnMut(Self::Item));
    /// Reads one item back into a machine being restored.
    fn restore(&mut self, item: Self::Item) -> Result<(), RestoreError>;
}

/// A command whose fields break a rule the types cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCommand {
    #[error("names are 1 to 128 characters of [a-zA-Z0-9_.-]")]
    Name,
    #[error("lease duration {0} ms is outside the allowed range")]
    LeaseDuration(i64),
    #[error("a shard has at most two parents")]
    TooManyParents,
    #[error("visibility timeout {0} s is above 43200")]
    VisibilityTimeout(u32),
    #[error("MaxReceiveCount {0} is outside 1..=1000")]
    MaxReceiveCount(u32),
    #[error("{0} entries; a call takes 1 to 10")]
    EntryCount(usize),
    #[error("retention {0} ms must be positive")]
    Retention(i64),
    #[error("snapshot part {part} of {part_count} does not exist")]
    SnapshotPart { part: u32, part_count: u32 },
    #[error("the state was initialised already")]
    AlreadyInitialised,
    #[error("{0} tags in one command; a queue has at most 50")]
    TagCount(usize),
    #[error("a tag key is 1 to 128 characters and a value at most 256")]
    Tag,
}

/// A snapshot whose items do not fit together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("the snapshot has a {0} twice")]
    Duplicate(&'static str),
    #[error("the snapshot has {0} of something it does not have")]
    Orphan(&'static str),
    #[error("the snapshot's {0} contradicts itself")]
    Inconsistent(&'static str),
}

/// Bytes `value` encodes to.
pub(crate) fn encoded_bytes<T: serde::Serialize>(value: &T) -> usize {
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default()).expect("state types serialize")
}

/// Cuts `values` into runs of at most [`SNAPSHOT_ITEM_BYTES_MAX`] encoded bytes, for the
/// snapshot items of a machine (leases of an application, records of a window).
pub(crate) fn chunk_by_size<T: serde::Serialize>(values: impl IntoIterator<Item = T>, mut emit: impl FnMut(Vec<T>)) {
    let mut chunk = Vec::new();
    let mut chunk_bytes = 0;
    for value in values {
        let bytes = encoded_bytes(&value);
        assert!(bytes <= SNAPSHOT_ITEM_BYTES_MAX, "one value of {bytes} bytes is larger than a snapshot item");
        if chunk_bytes + bytes > SNAPSHOT_ITEM_BYTES_MAX {
            emit(std::mem::take(&mut chunk));
            chunk_bytes = 0;
        }
        chunk_bytes += bytes;
        chunk.push(value);
    }
    if !chunk.is_empty() {
        emit(chunk);
    }
}
