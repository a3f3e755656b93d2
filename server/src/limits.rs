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
/// Capacity-mode changes (UpdateStreamMode) per stream per [`STREAM_MODE_CHANGE_WINDOW_MS`]
/// (Kinesis: "you can switch between on-demand and provisioned capacity mode twice within
/// 24 hours"); more is LimitExceededException.
pub const STREAM_MODE_CHANGES_PER_WINDOW_MAX: usize = 2;
/// The rolling window of [`STREAM_MODE_CHANGES_PER_WINDOW_MAX`]: 24 hours.
pub const STREAM_MODE_CHANGE_WINDOW_MS: i64 = 24 * 3_600_000;
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
/// Bytes of responses being computed or queued for one connection's writer, reserved before
/// a request runs. A client that stops reading its answers holds at most this much; without
/// it, 256 pipelined GetRecords of 10 MiB each would hold 2.5 GiB for one connection. It fits
/// the largest frame, so a maximal GetRecords answer goes out alone.
pub const RESPONSE_BYTES_QUEUED_PER_CONNECTION_MAX: usize = 16 << 20;
const _: () = assert!(RESPONSE_BYTES_QUEUED_PER_CONNECTION_MAX >= sluice_protocol::FRAME_BYTES_MAX);
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

// ---------------------------------------------------------------------------------------------
// The AWS-compatible HTTP API (server/src/http).

/// Bytes of one HTTP request body. The largest valid request is a PutRecords of 10 MiB of data
/// and partition keys (Kinesis' request limit, `PUT_RECORDS_BYTES_MAX`); in JSON the data is
/// base64, 4/3 as long, and each of its 500 records adds member names, quotes and an explicit
/// hash key (under 128 bytes each). 14 MiB holds that with room to spare; a larger body is
/// refused before it is read (HTTP 413), so one request can never make a core buffer more.
pub const HTTP_BODY_BYTES_MAX: usize = 14 << 20;
const _: () = assert!(
    HTTP_BODY_BYTES_MAX
        >= sluice_engine::limits::PUT_RECORDS_BYTES_MAX / 3 * 4
            + 4
            + sluice_engine::limits::PUT_RECORDS_COUNT_MAX * 128
);
/// Bytes of request bodies one core holds at once, across all its HTTP connections. A request
/// reserves its Content-Length (or [`HTTP_BODY_BYTES_MAX`] if it sends none) before reading
/// its body and keeps it until answered; at the bound new requests wait, unread, and TCP
/// pushes back on their clients. Reserving up front, all at once, cannot deadlock.
pub const HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX: usize = 128 << 20;
const _: () = assert!(HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX >= 4 * HTTP_BODY_BYTES_MAX);
/// HTTP requests one core works on at once (HTTP/1.1 has one per connection; HTTP/2 up to
/// [`HTTP2_STREAMS_PER_CONNECTION_MAX`]). Further ones wait before their body is read.
pub const HTTP_REQUESTS_IN_FLIGHT_PER_CORE_MAX: usize = 4096;
/// HTTP connections one core serves at once; further ones are accepted and closed at once.
pub const HTTP_CONNECTIONS_PER_CORE_MAX: usize = 4096;
/// Concurrent HTTP/2 streams per connection. The Java SDK v2 multiplexes its SubscribeToShard
/// calls (one per shard a KCL worker leases) over few connections; 256 covers a worker holding
/// hundreds of leases without letting one connection monopolise a core.
pub const HTTP2_STREAMS_PER_CONNECTION_MAX: u32 = 256;
/// How long an HTTP/1.1 connection may wait for the whole head of its next request: a
/// connection that trickles header bytes (slowloris) is closed instead of holding a slot
/// forever. hyper counts from when it starts waiting for a head, so this is also the idle
/// timeout of kept-alive connections, and it must outlast the SDKs' own pool idle times (Java
/// 60 s, Go 90 s): with hyper's default of 30 s, clients reused connections the server was
/// closing and saw resets.
pub const HTTP_HEADER_READ_TIMEOUT_MS: u64 = 120_000;
/// How long a client may take to send a request's body once its headers are in: its body
/// reservation (see [`HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX`]) is held meanwhile, so a client
/// that declares a large body and withholds it must let go. A full 14 MiB body in 60 s needs
/// under 250 KB/s; it then gets HTTP 408, which the SDKs retry.
pub const HTTP_BODY_READ_TIMEOUT_MS: u64 = 60_000;
