//! The daemon's limits: Kinesis account and API quotas, and the bounds that keep every queue
//! and buffer finite. Record and request sizes live in `sluice_engine::limits`; per-shard
//! throughput quotas in `throttle`.

/// Open shards per account (DescribeLimits `ShardLimit`). AWS defaults to 500 in its largest
/// regions and 200 elsewhere; one Sluice node is one "account".
pub const SHARD_LIMIT: u32 = 500;
/// Shards one CreateStream or UpdateShardCount may ask for (Kinesis: 10,000 per stream).
pub const SHARDS_PER_STREAM_MAX: u32 = 10_000;
/// On-demand streams per account (Kinesis default quota: 50).
pub const ON_DEMAND_STREAM_LIMIT: u32 = 50;
/// Shards a new on-demand stream starts with: 4 MiB/s of write capacity at 1 MiB/s per shard
/// (Kinesis: "new on-demand streams get 4 MB/s write").
pub const ON_DEMAND_INITIAL_SHARDS: u32 = 4;
/// Enhanced fan-out consumers per stream (Kinesis: 20).
pub const CONSUMERS_PER_STREAM_MAX: usize = 20;
/// Tags per stream (Kinesis: 50).
pub const TAGS_PER_STREAM_MAX: usize = 50;
/// Tag keys are 1..=128 characters, values 0..=256 (Kinesis TagKey / TagValue).
pub const TAG_KEY_CHARS_MAX: usize = 128;
pub const TAG_VALUE_CHARS_MAX: usize = 256;

/// Shards per DescribeStream page (Kinesis `Limit` default and maximum: 100).
pub const DESCRIBE_STREAM_SHARDS_MAX: u32 = 100;
/// Shards per ListShards page (Kinesis `MaxResults` default and maximum: 1,000).
pub const LIST_SHARDS_MAX: u32 = 1000;
/// Streams per ListStreams page (Kinesis default 100).
pub const LIST_STREAMS_DEFAULT: u32 = 100;
/// Consumers per ListStreamConsumers page (Kinesis `MaxResults` 1..=10,000, default 100).
pub const LIST_CONSUMERS_DEFAULT: u32 = 100;
/// Tags per ListTagsForStream page (Kinesis `Limit` 1..=50, default 50).
pub const LIST_TAGS_MAX: u32 = 50;
/// How long a pagination token stays valid (Kinesis: 300 s).
pub const NEXT_TOKEN_LIFETIME_MS: i64 = 300_000;

/// How long one SubscribeToShard lasts before the client must resubscribe (Kinesis: 5 min).
pub const SUBSCRIPTION_LIFETIME_MS: i64 = 300_000;
/// A consumer resubscribing to a shard within this window of its last subscription gets
/// ResourceInUse (Kinesis: 5 s).
pub const RESUBSCRIBE_WINDOW_MS: i64 = 5_000;
/// An idle subscription still sends an (empty) event this often, so the client sees
/// MillisBehindLatest and knows the subscription lives.
pub const SUBSCRIPTION_HEARTBEAT_MS: u64 = 5_000;
/// Events buffered between a subscription's reader (on the shard's core) and its
/// connection. Small: a slow consumer must push back on the reader, not grow memory.
pub const SUBSCRIPTION_EVENTS_QUEUED_MAX: usize = 2;
/// Bytes of records in one SubscribeToShardEvent: the per-consumer quota is 2 MiB/s, so one
/// event carries at most about a second of it.
pub const SUBSCRIPTION_EVENT_BYTES_MAX: usize = 2 << 20;
/// Subscriptions active at once on one core. Each holds an event queue and a task.
pub const SUBSCRIPTIONS_PER_CORE_MAX: usize = 4096;

/// Jobs queued in one core's mailbox from the other cores. A full mailbox makes the sender
/// wait: back-pressure across cores instead of an unbounded queue.
pub const MAILBOX_JOBS_MAX: usize = 1024;
/// Connections one core serves at once; further ones are accepted and closed at once.
pub const CONNECTIONS_PER_CORE_MAX: usize = 4096;
/// Requests in flight on one native connection (pipelining depth). A client beyond it waits
/// for answers: the server stops reading its socket.
pub const REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX: usize = 256;
/// Response frames queued for one connection's writer.
pub const RESPONSE_FRAMES_QUEUED_MAX: usize = 64;
/// How long a shutdown waits for in-flight requests before closing connections anyway.
pub const SHUTDOWN_DRAIN_MS: u64 = 10_000;
/// How often each core enforces retention (drops expired records, deletes segments).
pub const RETENTION_INTERVAL_MS: u64 = 60_000;
/// Registered, pre-faulted I/O memory per core: the engine's tail cache plus the group
/// commits in flight (each up to 16 MiB). Needs RLIMIT_MEMLOCK of this much per core when
/// not running as root; glommio falls back to unregistered memory with a warning.
pub const IO_MEMORY_BYTES_PER_CORE: usize = 96 << 20;
const _: () = assert!(
    IO_MEMORY_BYTES_PER_CORE
        >= sluice_engine::limits::TAIL_CACHE_BYTES_DEFAULT + 2 * sluice_engine::limits::COMMIT_BYTES_MAX
);
/// Bytes of request frames in flight on one native connection. Together with the request
/// count it bounds what one client can make the server hold; it fits the largest frame.
pub const REQUEST_BYTES_IN_FLIGHT_PER_CONNECTION_MAX: usize = 64 << 20;
const _: () = assert!(REQUEST_BYTES_IN_FLIGHT_PER_CONNECTION_MAX >= sluice_protocol::FRAME_BYTES_MAX);
/// Bytes read from a socket at a time when no larger frame is pending.
pub const RECEIVE_CHUNK_BYTES: usize = 64 << 10;
