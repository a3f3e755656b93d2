//! What the delivery state must know of streams and shards, and the events by which the
//! control plane tells it of changes (reshards, ends of shards, retention, deletion). Both
//! state machines follow the same events, so one event in the log updates leases and queues
//! alike.

use crate::ids::{RecordIndex, ShardNumber, ShardUid, StreamUid};
use serde::{Deserialize, Serialize};

/// A shard as the delivery state sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub uid: ShardUid,
    pub number: ShardNumber,
    /// The shards this one was split or merged from (none, one, or two).
    pub parents: Vec<ShardUid>,
    pub hash_key_start: u128,
    pub hash_key_end: u128,
}

/// A change to a stream that leases and queues on it must follow. The control plane (the
/// catalog's core) appends one to the state log of every core that owns an application or a
/// queue on the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamEvent {
    /// A reshard created these shards; their parents take no new records from now on.
    /// Applications get a lease per new shard (checkpoint TRIM_HORIZON, takeable once every
    /// parent's lease reached SHARD_END); queues start delivering them at their first record.
    ShardsCreated { stream: StreamUid, shards: Vec<ShardInfo> },
    /// A closed shard's records end before `ending_index` (the reshard's fence is durable).
    ShardEnded { stream: StreamUid, shard: ShardUid, ending_index: RecordIndex },
    /// The stream's retention changed: queues stop delivering records older than this.
    RetentionChanged { stream: StreamUid, retention_ms: i64 },
    /// Every record of these closed shards is past retention: their leases and queue state
    /// go (a child whose parent's lease is gone is no longer blocked by it).
    ShardsExpired { stream: StreamUid, shards: Vec<ShardUid> },
    /// The stream is gone: its applications and their leases go with it. (Queues are not
    /// deleted by this: Kinesis refuses DeleteStream while the stream has queues.)
    StreamDeleted { stream: StreamUid },
}

impl StreamEvent {
    pub fn stream(&self) -> StreamUid {
        match self {
            StreamEvent::ShardsCreated { stream, .. }
            | StreamEvent::ShardEnded { stream, .. }
            | StreamEvent::RetentionChanged { stream, .. }
            | StreamEvent::ShardsExpired { stream, .. }
            | StreamEvent::StreamDeleted { stream } => *stream,
        }
    }
}
