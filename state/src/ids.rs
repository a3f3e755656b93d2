//! Newtypes for every kind of id and position the state handles, so that a shard uid is never
//! passed where a record index is meant. All serialize as the bare integer or string.

use crate::limits::{NAME_CHARS_MAX, WORKER_ID_BYTES_MAX};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! integer_id {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

integer_id!(
    /// A stream, by a uid the catalog never reuses (a stream deleted and created again with
    /// the same name is another stream).
    StreamUid(u64)
);
integer_id!(
    /// A shard, by the catalog's uid that names it in the journals (never reused).
    ShardUid(u64)
);
integer_id!(
    /// The `N` of `shardId-N`: unique within a stream, what clients see.
    ShardNumber(u32)
);
integer_id!(
    /// A consumer-group application, by a uid the catalog assigns (never reused).
    ApplicationId(u64)
);
integer_id!(
    /// A queue, by a uid the catalog assigns (never reused); receipt handles carry it.
    QueueId(u64)
);
integer_id!(
    /// A record's position in its shard: the last field of its sequence number. Dense and
    /// never reused (the journal's invariant).
    RecordIndex(u64)
);
integer_id!(
    /// A command's position in its internal shard: that shard's record index.
    LogIndex(u64)
);

impl ShardNumber {
    /// The shard id clients see, which is also the lease key (as in KCL's lease table).
    pub fn shard_id(self) -> String {
        format!("shardId-{:012}", self.0)
    }
}

/// A worker of a consumer group, as it names itself (KCL's `workerIdentifier`): 1 to
/// [`WORKER_ID_BYTES_MAX`] bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkerId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker id must be 1 to {WORKER_ID_BYTES_MAX} bytes, not {bytes}")]
pub struct InvalidWorkerId {
    pub bytes: usize,
}

impl WorkerId {
    pub fn new(id: impl Into<String>) -> Result<WorkerId, InvalidWorkerId> {
        let id = id.into();
        if id.is_empty() || id.len() > WORKER_ID_BYTES_MAX {
            return Err(InvalidWorkerId { bytes: id.len() });
        }
        Ok(WorkerId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WorkerId {
    type Error = InvalidWorkerId;
    fn try_from(id: String) -> Result<WorkerId, InvalidWorkerId> {
        WorkerId::new(id)
    }
}

impl From<WorkerId> for String {
    fn from(id: WorkerId) -> String {
        id.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether `name` is a valid application or queue name: 1 to [`NAME_CHARS_MAX`] characters of
/// `[a-zA-Z0-9_.-]` (the model's `QueueName`, and Kinesis' stream and consumer names).
pub fn is_valid_name(name: &str) -> bool {
    (1..=NAME_CHARS_MAX).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_are_bounded() {
        assert!(WorkerId::new("").is_err());
        assert!(WorkerId::new("w".repeat(WORKER_ID_BYTES_MAX)).is_ok());
        assert_eq!(
            WorkerId::new("w".repeat(WORKER_ID_BYTES_MAX + 1)),
            Err(InvalidWorkerId { bytes: WORKER_ID_BYTES_MAX + 1 })
        );
    }

    #[test]
    fn names_follow_the_model_pattern() {
        assert!(is_valid_name("orders-app_1.v2"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("has space"));
        assert!(!is_valid_name(&"a".repeat(NAME_CHARS_MAX + 1)));
    }

    #[test]
    fn lease_keys_are_kinesis_shard_ids() {
        assert_eq!(ShardNumber(7).shard_id(), "shardId-000000000007");
    }
}
