//! Every limit of the daemon, each with its unit and the reason for its value: the Kinesis
//! account quotas, the per-shard throughput quotas, and the bounds that keep every queue and
//! buffer finite. The limits of the Kinesis API itself (record sizes, page sizes) are the
//! model's (`sluice_model::limits`); those of the native frame format the protocol crate's;
//! the engine's own its `limits.rs`.
//!
//! The ones a test may want to reach quickly are fields of [`Limits`], part of the node's
//! configuration (`[limit-overrides]` in the TOML config file), defaulting to the constants
//! here; error messages are formatted from the value in force.

use serde::Deserialize;
use sluice_engine::limits::COMMIT_BYTES_MAX;

// ---------------------------------------------------------------------------------------------
// Account quotas (Kinesis "Quotas and limits"). One Sluice node is one account.

/// Open shards per account (DescribeLimits `ShardLimit`). AWS defaults to 500 in its largest
/// regions and 200 elsewhere.
pub const SHARD_LIMIT: u32 = 500;
/// Shards one CreateStream or UpdateShardCount may ask for (Kinesis: 10,000 per stream).
pub const SHARDS_PER_STREAM_MAX: u32 = 10_000;
/// On-demand streams per account (Kinesis default quota: 50).
pub const ON_DEMAND_STREAM_LIMIT: u32 = 50;
/// Shards a new on-demand stream starts with: 4 MiB/s of write capacity at 1 MiB/s per shard
/// (Kinesis: "new on-demand streams get 4 MB/s write").
pub const ON_DEMAND_INITIAL_SHARDS: u32 = 4;
/// Most open shards an ON_DEMAND stream grows to: 200 MiB/s of writes at 1 MiB/s per shard
/// (Kinesis' on-demand ceiling in most regions).
pub const ON_DEMAND_SHARDS_MAX: usize = 200;
/// Enhanced fan-out consumers per stream (Kinesis: 20).
pub const CONSUMERS_PER_STREAM_MAX: usize = 20;
/// Tags per stream or consumer (Kinesis: 50).
pub const TAGS_PER_RESOURCE_MAX: usize = 50;
/// Capacity-mode changes (UpdateStreamMode) per stream per [`LIMIT_WINDOW_MS`] (Kinesis: "you
/// can switch between on-demand and provisioned capacity mode twice within 24 hours").
pub const STREAM_MODE_CHANGES_PER_WINDOW_MAX: usize = 2;
/// How long a stream reports UPDATING after StartStreamEncryption or StopStreamEncryption.
/// Kinesis takes a few seconds (its guide: "the stream's status is UPDATING" while encryption
/// is applied, then ACTIVE); ours applies at once (the next append is sealed or not), so the
/// window exists only so that clients written against Kinesis see the transition they wait
/// for. Short, so that tests polling for ACTIVE finish quickly.
pub const ENCRYPTION_UPDATING_MS: i64 = 500;
/// UpdateShardCount calls per stream per [`LIMIT_WINDOW_MS`] (Kinesis: 10).
pub const SCALINGS_PER_WINDOW_MAX: usize = 10;
/// The rolling window of the per-day quotas above: 24 hours, in milliseconds.
pub const LIMIT_WINDOW_MS: i64 = 24 * 3_600_000;
/// A MinimumThroughputBillingCommitment runs at least this long once enabled: 24 hours
/// (`MinimumThroughputBillingCommitmentInput` documentation: "Commitments have a minimum
/// duration of 24 hours that must be honored before they can be disabled").
pub const BILLING_COMMITMENT_MS_MIN: i64 = 24 * 3_600_000;
/// The highest warm throughput an on-demand stream may ask for, MiB/s
/// (UpdateStreamWarmThroughput: "Scale to more than 10 GiBps for an on-demand stream" is not
/// allowed by default).
pub const WARM_THROUGHPUT_MIBPS_MAX: u32 = 10 * 1024;
/// Warm throughput one open shard gives, MiB/s: its write quota.
pub const WARM_THROUGHPUT_MIBPS_PER_SHARD: u32 = (WRITE_BYTES_PER_S >> 20) as u32;
const _: () = assert!(WRITE_BYTES_PER_S.is_multiple_of(1 << 20) && WARM_THROUGHPUT_MIBPS_PER_SHARD >= 1);

// ---------------------------------------------------------------------------------------------
// Per-shard throughput quotas (the token buckets of `kinesis/throttle.rs`).

/// Seconds of quota a bucket holds, and so the burst a fresh or idle shard may take at once.
/// AWS lets a fresh shard take one second of quota immediately; more would let a client that
/// idles exceed the per-second quotas by more than AWS does.
pub const BUCKET_CAPACITY_S: u64 = 1;
/// Kinesis quota "write throughput per shard": 1 MiB/s of data plus partition keys
/// (PutRecord and PutRecords; exceeding it is `ProvisionedThroughputExceededException`).
pub const WRITE_BYTES_PER_S: u64 = 1 << 20;
/// Kinesis quota "records written per shard": 1,000 records per second (PutRecord and each
/// record of PutRecords).
pub const WRITE_RECORDS_PER_S: u64 = 1_000;
/// Kinesis quota "GetRecords transactions per shard": 5 calls per second, shared by every
/// polling (non-EFO) consumer of the shard.
pub const GET_RECORDS_CALLS_PER_S: u64 = 5;
/// Kinesis quota "read throughput per shard": 2 MiB/s returned by GetRecords, shared by every
/// polling (non-EFO) consumer of the shard.
pub const READ_BYTES_PER_S: u64 = 2 << 20;
/// Kinesis GetRecords rule: a response of this many bytes (the 10 MiB most one call returns)
/// throttles the calls of the next [`GET_RECORDS_PENALTY_MS`].
pub const GET_RECORDS_PENALTY_BYTES_MIN: u64 = sluice_model::limits::GET_RECORDS_BYTES_MAX as u64;
/// Kinesis GetRecords rule: after a 10 MiB response, calls in the next 5 seconds are throttled.
pub const GET_RECORDS_PENALTY_MS: u64 = 5_000;
/// Kinesis quota "GetShardIterator transactions per shard": 5 calls per second.
pub const GET_SHARD_ITERATOR_CALLS_PER_S: u64 = 5;
/// Kinesis quota "enhanced fan-out read throughput": 2 MiB/s per registered consumer per shard,
/// independent of the shard's other consumers.
pub const EFO_BYTES_PER_S: u64 = 2 << 20;

// A record of the default maximum size fits in a full write bucket, so it is never refused
// forever; larger records (a raised MaxRecordSizeInKiB) go through the burst path of
// `ShardLimits::admit_write`.
const _: () = assert!(WRITE_BYTES_PER_S * BUCKET_CAPACITY_S >= sluice_model::limits::RECORD_BYTES_MAX as u64);
// The two GetRecords rules put the same price on a 10 MiB response: 5 s of read quota.
const _: () = assert!(GET_RECORDS_PENALTY_BYTES_MIN == READ_BYTES_PER_S * GET_RECORDS_PENALTY_MS / 1_000);

// ---------------------------------------------------------------------------------------------
// On-demand scaling.

/// A shard of an ON_DEMAND stream is split once its demand over a window reaches this fraction
/// of its write quota: early enough that the split lands before producers see sustained
/// throttling.
pub const SPLIT_DEMAND_FRACTION: f64 = 0.8;
/// How long the on-demand scaler measures demand before deciding, in milliseconds. Long
/// enough to ignore a burst.
pub const ON_DEMAND_WINDOW_MS_DEFAULT: u64 = 10_000;
/// The shortest window a configuration may ask for: shorter ones would split on noise.
pub const ON_DEMAND_WINDOW_MS_MIN: u64 = 100;

/// The smallest `--raft-segment-bytes`: below it a segment holds one small batch, and every
/// append would start a file (two syncs).
pub const RAFT_SEGMENT_BYTES_MIN: usize = 64 << 10;

/// With `--credentials` and `--cluster-secret`, the member ids whose forwarding keys every
/// member derives at start-up besides its `--peers`' (a member added later by
/// ReplaceClusterMember forwards as its own id; its key is the cluster secret's anyway).
pub const FORWARDING_MEMBER_IDS_DERIVED: u64 = 256;

// ---------------------------------------------------------------------------------------------
// Pages and tokens (Kinesis' defaults; the maximums the model allows are in the model).

/// Shards per DescribeStream page (Kinesis `Limit` default and effective maximum: 100).
pub const DESCRIBE_STREAM_SHARDS_MAX: usize = 100;
/// Shards per ListShards page (Kinesis `MaxResults` default and effective maximum: 1,000).
pub const LIST_SHARDS_MAX: usize = 1000;
/// Streams per ListStreams page by default (Kinesis: 100).
pub const LIST_STREAMS_DEFAULT: usize = 100;
/// Consumers per ListStreamConsumers page by default (Kinesis: 100).
pub const LIST_CONSUMERS_DEFAULT: usize = 100;
/// Tags per ListTagsForStream page by default (Kinesis `Limit` default: 50).
pub const LIST_TAGS_DEFAULT: usize = 50;
/// How long a pagination token stays valid, in milliseconds (Kinesis: 300 s).
pub const NEXT_TOKEN_LIFETIME_MS: i64 = 300_000;
/// Characters of a pagination token accepted for decoding; anything longer is refused unread.
pub const NEXT_TOKEN_CHARS_MAX: usize = 1024;
/// Kinesis: "A shard iterator expires 5 minutes after it is returned to the requester"; using
/// an older one is `ExpiredIteratorException`.
pub const ITERATOR_LIFETIME_MS: i64 = 300_000;

// ---------------------------------------------------------------------------------------------
// Writes.

/// Times a PutRecords record is routed again after a reshard closed its shard under it. A
/// reshard publishes its children before it fences the parent, so one retry reaches a child;
/// more cover a second reshard landing meanwhile.
pub const PUT_ROUTING_ATTEMPTS_MAX: usize = 4;

// ---------------------------------------------------------------------------------------------
// Enhanced fan-out.

/// How long one SubscribeToShard lasts before the client must resubscribe, in milliseconds
/// (Kinesis: 5 min).
pub const SUBSCRIPTION_LIFETIME_MS: i64 = 300_000;
/// A consumer resubscribing to a shard within this many milliseconds of its last subscription
/// gets ResourceInUse (Kinesis: 5 s).
pub const RESUBSCRIBE_WINDOW_MS: i64 = 5_000;
/// An idle subscription still sends an (empty) event this often, in milliseconds, so the
/// client sees MillisBehindLatest and knows the subscription lives.
pub const SUBSCRIPTION_HEARTBEAT_MS: u64 = 5_000;
/// Events buffered between a subscription's reader (on the shard's core) and its connection.
/// Small: a slow consumer must push back on the reader, not grow memory.
pub const SUBSCRIPTION_EVENTS_QUEUED_MAX: usize = 2;
/// Bytes of records in one SubscribeToShardEvent: the per-consumer quota is 2 MiB/s, so one
/// event carries at most about a second of it.
pub const SUBSCRIPTION_EVENT_BYTES_MAX: usize = 2 << 20;
/// Subscriptions active at once on one core. Each holds an event queue and a task.
pub const SUBSCRIPTIONS_PER_CORE_MAX: usize = 4096;

// ---------------------------------------------------------------------------------------------
// Cores, connections, shutdown.

/// Jobs queued in one core's mailbox from the other cores. A full mailbox makes the sender
/// wait: back-pressure across cores instead of an unbounded queue.
pub const MAILBOX_JOBS_MAX: usize = 1024;
/// Connections one core serves at once, per protocol; further ones are accepted and closed at
/// once.
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
/// Bytes reserved for the answer of a request that is not a GetRecords: every other answer is
/// small next to a connection's budget (a DescribeStream page of 100 shards is about 20 KiB).
pub const SMALL_RESPONSE_BYTES: usize = 64 << 10;
/// Bytes of request frames in flight on one native connection. Together with the request
/// count it bounds what one client can make the server hold; it fits the largest frame.
pub const REQUEST_BYTES_IN_FLIGHT_PER_CONNECTION_MAX: usize = 64 << 20;
const _: () = assert!(REQUEST_BYTES_IN_FLIGHT_PER_CONNECTION_MAX >= sluice_protocol::FRAME_BYTES_MAX);
/// Bytes read from a socket at a time when no larger frame is pending.
pub const RECEIVE_CHUNK_BYTES: usize = 64 << 10;
/// Bytes of idle frame buffers one core keeps for reuse (`net/frame_pool.rs`): frames larger
/// than [`RECEIVE_CHUNK_BYTES`] are read into reused memory instead of zeroed fresh memory.
/// 32 MiB holds the frames in flight under `bench/peers/iggy.sh`'s load (4 connections x 8
/// PutRecords of about 530 KB, 17 MB, over 2 cores) with room to spare, and is what a core
/// keeps allocated after a burst.
pub const FRAME_POOL_BYTES_PER_CORE_MAX: usize = 32 << 20;
const _: () = assert!(FRAME_POOL_BYTES_PER_CORE_MAX >= sluice_protocol::FRAME_BYTES_MAX);
/// How long a shutdown waits for in-flight requests before closing connections anyway, in
/// milliseconds.
pub const SHUTDOWN_DRAIN_MS: u64 = 10_000;
/// How often each core enforces retention (drops expired records, deletes segments), in
/// milliseconds.
pub const RETENTION_INTERVAL_MS: u64 = 60_000;
/// Bytes of a request head the metrics port reads at most: its requests are
/// `GET /metrics` and the health checks, a few hundred bytes from Prometheus or a load
/// balancer; anything longer is refused (431) rather than buffered.
pub const METRICS_REQUEST_BYTES_MAX: usize = 8 * 1024;
/// Headers of a metrics-port request parsed at most (Prometheus sends about six).
pub const METRICS_REQUEST_HEADERS_MAX: usize = 32;
/// How long the metrics port waits for a request head or for a core's figures, in
/// milliseconds. The port serves one connection at a time, so a client that sends nothing
/// holds it for at most this long; a core that does not answer within it (its mailbox is
/// full, or it is busy for that long) is reported from its previous answer. Below
/// Prometheus's default scrape timeout of 10 s.
pub const METRICS_WAIT_MS: u64 = 2_000;
/// How long an accept that failed (out of file descriptors, say) waits before the next, in
/// milliseconds: long enough not to spin, short enough not to be noticed.
pub const ACCEPT_RETRY_MS: u64 = 10;
/// Connections the kernel queues per listening socket before the core accepts them (as
/// glommio's own `bind` uses): a burst of a thousand clients connecting at once is queued, not
/// refused. The kernel caps it at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: i32 = 1024;
/// Keepalive probes on client connections: the first after this many seconds without a
/// packet, then one every [`CLIENT_KEEPALIVE_INTERVAL_SECS`]; after
/// [`CLIENT_KEEPALIVE_PROBES`] unanswered the connection is closed. A client whose host died
/// or vanished behind a partition (its close never arrived) would otherwise hold one of
/// [`CONNECTIONS_PER_CORE_MAX`] until the daemon restarts; a live client's kernel answers
/// the probes whatever its program does, so only a dead one is closed, within about two
/// minutes. Kafka closes idle connections after `connections.max.idle.ms` instead (ten
/// minutes), which a quiet but live consumer would also lose.
pub const CLIENT_KEEPALIVE_IDLE_SECS: u64 = 60;
/// Seconds between keepalive probes on a client connection that did not answer the last one.
pub const CLIENT_KEEPALIVE_INTERVAL_SECS: u64 = 10;
/// Keepalive probes a client connection may leave unanswered before it is closed.
pub const CLIENT_KEEPALIVE_PROBES: u32 = 6;
/// Registered, pre-faulted I/O memory per core: the engine's tail cache plus the group
/// commits in flight (each up to 16 MiB). Needs RLIMIT_MEMLOCK of this much per core when
/// not running as root; glommio falls back to unregistered memory with a warning.
pub const IO_MEMORY_BYTES_PER_CORE: usize = 96 << 20;
const _: () =
    assert!(IO_MEMORY_BYTES_PER_CORE >= sluice_engine::limits::TAIL_CACHE_BYTES_DEFAULT + 2 * COMMIT_BYTES_MAX);

// ---------------------------------------------------------------------------------------------
// The AWS-compatible HTTP API (net/http).

/// Bytes of one HTTP request body. The largest valid request is a PutRecords of 10 MiB of data
/// and partition keys (Kinesis' request limit); in JSON the data is base64, 4/3 as long, and
/// each of its 500 records adds member names, quotes and an explicit hash key (under 128 bytes
/// each). 14 MiB holds that with room to spare; a larger body is refused before it is read
/// (HTTP 413), so one request can never make a core buffer more.
pub const HTTP_BODY_BYTES_MAX: usize = 14 << 20;
const _: () = assert!(
    HTTP_BODY_BYTES_MAX
        >= sluice_model::limits::PUT_RECORDS_BYTES_MAX / 3 * 4 + 4 + sluice_model::limits::PUT_RECORDS_COUNT_MAX * 128
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
/// Concurrent HTTP/2 streams per connection. The Java SDK v2 multiplexes its SubscribeToShard
/// calls (one per shard a KCL worker leases) over few connections; 256 covers a worker holding
/// hundreds of leases without letting one connection monopolise a core.
pub const HTTP2_STREAMS_PER_CONNECTION_MAX: u32 = 256;
/// How long an HTTP/1.1 connection may wait for the whole head of its next request, in
/// milliseconds: a connection that trickles header bytes (slowloris) is closed instead of
/// holding a slot forever. hyper counts from when it starts waiting for a head, so this is also
/// the idle timeout of kept-alive connections, and it must outlast the SDKs' own pool idle
/// times (Java 60 s, Go 90 s): with hyper's default of 30 s, clients reused connections the
/// server was closing and saw resets.
pub const HTTP_HEADER_READ_TIMEOUT_MS: u64 = 120_000;
/// How long a client may take to send a request's body once its headers are in, in
/// milliseconds: its body reservation (see [`HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX`]) is held
/// meanwhile, so a client that declares a large body and withholds it must let go. A full
/// 14 MiB body in 60 s needs under 250 KB/s; it then gets HTTP 408, which the SDKs retry.
pub const HTTP_BODY_READ_TIMEOUT_MS: u64 = 60_000;

/// How long a new connection may take to finish its TLS handshake, in ms. A client that
/// connects and says nothing holds one of the core's connection slots; the handshake is a few
/// round trips, so 10 s is generous for any real client and bounds how long a silent one can.
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// How long a native connection may take to authenticate (Hello, Authenticate) when the daemon
/// has `--credentials`, in ms, TLS handshake not included. Two round trips and four HMACs: 10 s,
/// as for TLS, bounds how long a client that never authenticates holds a connection slot.
pub const NATIVE_AUTH_TIMEOUT_MS: u64 = 10_000;

/// Bytes of a frame the native listener reads from a connection that has not authenticated
/// yet (with `--credentials`). The largest honest one is an Authenticate with a session token
/// of `SESSION_TOKEN_BYTES_MAX`; a larger frame is refused from its length prefix, so an
/// unauthenticated client cannot make the server buffer up to `FRAME_BYTES_MAX`.
pub const NATIVE_AUTH_FRAME_BYTES_MAX: usize = 16 << 10;
const _: () = assert!(NATIVE_AUTH_FRAME_BYTES_MAX > sluice_protocol::native::handshake::SESSION_TOKEN_BYTES_MAX + 1024);

// ---------------------------------------------------------------------------------------------
// Forwarding to a leader (cluster mode, `ops/cluster/forward.rs`).

/// Requests one core forwards to one member at once; each holds one connection of the core's
/// pool to that member (a connection carries one request at a time), so this also bounds the
/// pool. A request beyond it waits for a turn within [`FORWARD_ANSWER_WAIT_MS`], then gets the
/// retriable error: a slow or dead leader holds at most this many of a core's requests and
/// sockets.
pub const FORWARDS_IN_FLIGHT_PER_PEER_MAX: usize = 64;
/// How long a forwarded request may take, connecting included, before the client gets a
/// retriable InternalFailure, in milliseconds. Longer than the leader's own worst case (its
/// commit wait, then its apply wait: it answers a timeout of its own first), shorter than the
/// Rust client's call timeout (6 s), so the client hears why rather than giving up blind.
pub const FORWARD_ANSWER_WAIT_MS: u64 = 5_000;
const _: () = assert!(FORWARD_ANSWER_WAIT_MS > 2 * sluice_cluster::limits::APPEND_COMMIT_WAIT_MS);

/// Least time between two "request failed" log lines of one core, in milliseconds; the line
/// says how many failures it left out since the last (every failure is counted in
/// `sluice_request_errors_total`). A failover makes every request for the dead leader's
/// shards fail until the next one is elected: a line each buried a CI run's test failure
/// under thousands of them.
pub const REQUEST_FAILURE_LOG_INTERVAL_MS: u64 = 1_000;

/// How long GetShardIterator on a replicated node waits for its journal to reach a sequence
/// number past its tip before it asks the shard's leader, in milliseconds: the leader
/// acknowledged the record once a quorum held it, and a follower applies it a moment later
/// (within a heartbeat, 100 ms, when it missed the commit). A member further behind (stalled,
/// cut off, on a loaded host: a CI run once saw a follower resumed from SIGSTOP take over
/// 2 s) forwards the call to the leader, whose iterator reads at every member
/// (`dispatch::shard_iterator`). A client that was given the number by a PutRecord through
/// the leader can then read from it at once through any member. Also how long a LATEST waits
/// for this member to apply up to its group's confirmed commit
/// (`cluster::records::caught_up_to_commit`).
pub const FOLLOWER_CATCH_UP_WAIT_MS: u64 = 500;

/// How often a core of a replicated node looks at who leads the shards' groups and, if this
/// node leads more than the mean, hands some of its groups to the member leading fewest
/// (`ops/cluster/balance.rs`), in milliseconds. Forty Raft ticks: long after the handovers of
/// the previous turn have settled in the leader table, so a turn acts on counts that include
/// them; short enough that a restarted node takes its share back within seconds. Each core
/// acts in turn, at most [`LEADER_TRANSFERS_PER_TURN_MAX`] handovers per turn.
pub const LEADER_BALANCE_INTERVAL_MS: u64 = 2_000;
/// The most groups one core of a member hands over in one turn of leader balancing
/// (`ops/cluster/balance.rs`). Each handover fails the writes in flight on its shard with the
/// retriable error of a leader change, so not all at once; with one at a time, a restarted
/// member of a 120-shard cluster waited 40 s for its share, and 86 to 111 s under writes
/// (`bench/cluster/leaders.py rebalance`).
pub const LEADER_TRANSFERS_PER_TURN_MAX: usize = 16;

/// How long after this node first saw a shard's group led that leader balancing may move it,
/// in milliseconds. A new stream's groups are spread by their first elections, and clients
/// that waited for ACTIVE write at once (AWS's waiters): a handover then would answer their
/// first writes with the retriable error of a leader change.
pub const LEADER_BALANCE_SETTLE_MS: u64 = 10_000;
const _: () = assert!(FORWARD_ANSWER_WAIT_MS < CLIENT_CALL_TIMEOUT_MS);
/// How long a client's write (or catalog change) waits at the member it reached for the
/// leader of its shard's group (or the catalog's) to be known there, when it is not, in
/// milliseconds; then it is forwarded or served as usual (`forward::leader_known`). A new
/// group's chosen founder campaigns within its first five ticks (250 ms), and an election
/// under way ends within a few round trips once a member campaigns: a new stream's first
/// writes, and those that arrive during an election, are served instead of refused with a
/// retriable error. Not long enough to wait out a vote that failed (a new one starts after an
/// election timeout, 500 ms or more): a client that gives a member half a second before trying
/// another would take a member waiting that long for a dead one. With a forward after it,
/// within the Rust client's call timeout.
pub const LEADER_WAIT_MS: u64 = 400;
const _: () = assert!(LEADER_WAIT_MS + FORWARD_ANSWER_WAIT_MS < CLIENT_CALL_TIMEOUT_MS);
/// How often a request waiting for a leader looks at the node's leader table again, in
/// milliseconds (the cores publish a new leader as soon as they see it).
pub const LEADER_POLL_MS: u64 = 5;
/// How long a catalog read (and a member's wait to see a change it forwarded) may wait for the
/// catalog's leader to confirm its commit (`meta::caught_up`), asking again while the group
/// elects a leader or the one asked loses its lead, in milliseconds. Reads are linearizable
/// (`dispatch::catalog_read`), so a read during the catalog's election waits for the new
/// leader instead of failing: the election after a leader's death ends within 1.0 s at p99
/// under load (`bench/results/2026-12-06-report-711ad8f/`, shard groups, whose timeouts are
/// the catalog's), and a vote that fails adds an election timeout (0.5 to 1 s). A member cut
/// off from the majority answers InternalFailure after this. No attempt starts after it, but
/// the last may take its whole wait; with the wait to apply the commit after it, within the
/// Rust client's call timeout.
pub const CATALOG_CONFIRM_WAIT_MS: u64 = 2_500;
const _: () = assert!(
    CATALOG_CONFIRM_WAIT_MS
        + sluice_cluster::limits::READ_INDEX_WAIT_MS
        + sluice_cluster::limits::APPEND_COMMIT_WAIT_MS
        < CLIENT_CALL_TIMEOUT_MS
);
/// The Rust client's call timeout (`sluice_client::transport::CALL_TIMEOUT_MS`, repeated here:
/// the server does not depend on the client crate).
const CLIENT_CALL_TIMEOUT_MS: u64 = 6_000;
/// How long connecting to a member may take, in milliseconds: a dead host that drops SYNs
/// must not hold a request for the whole [`FORWARD_ANSWER_WAIT_MS`] when the client could
/// retry elsewhere sooner.
pub const FORWARD_CONNECT_TIMEOUT_MS: u64 = 1_000;

/// Idle connections to one member's HTTP port a core keeps for the next relayed call
/// (`net/http/relay.rs`); more are closed once answered. Relays beyond this many at once
/// each open one more connection.
pub const RELAY_IDLE_CONNECTIONS_PER_MEMBER_MAX: usize = 8;
/// How long a relay's idle connection is kept, in milliseconds: well inside the member's own
/// idle timeout ([`HTTP_HEADER_READ_TIMEOUT_MS`]), so a relay seldom picks a connection the
/// member is closing.
pub const RELAY_CONNECTION_IDLE_MS: u64 = 30_000;
const _: () = assert!(RELAY_CONNECTION_IDLE_MS < HTTP_HEADER_READ_TIMEOUT_MS / 2);

// ---------------------------------------------------------------------------------------------
// The limits a node is configured with.

/// The limits in force on a node: the constants above unless its configuration says
/// otherwise (`[limit-overrides]`, for tests that want to reach a limit quickly).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Limits {
    pub shard_limit: u32,
    pub shards_per_stream_max: u32,
    pub on_demand_stream_limit: u32,
    pub on_demand_initial_shards: u32,
    pub on_demand_shards_max: usize,
    pub consumers_per_stream_max: usize,
    pub tags_per_resource_max: usize,
    pub stream_mode_changes_per_window_max: usize,
    pub scalings_per_window_max: usize,
    pub subscription_lifetime_ms: i64,
    pub resubscribe_window_ms: i64,
    pub subscription_heartbeat_ms: u64,
    pub subscriptions_per_core_max: usize,
    pub mailbox_jobs_max: usize,
    pub connections_per_core_max: usize,
    pub requests_in_flight_per_connection_max: usize,
    pub shutdown_drain_ms: u64,
    pub retention_interval_ms: u64,
    /// Delivery-state log entries applied after which core 0 writes a snapshot and trims the
    /// log before it (`sluice_state::limits::SNAPSHOT_INTERVAL_ENTRIES` otherwise). Tests make
    /// it small so that snapshots, trims and crashes between them happen in a short run.
    pub delivery_snapshot_interval_entries: u64,
    /// Bytes at which a core's journal starts a new segment file (the engine's
    /// `SEGMENT_BYTES_MAX_DEFAULT` otherwise). Retention deletes whole sealed segments, so
    /// tests that want to see a deletion make them small.
    pub segment_bytes_max: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            shard_limit: SHARD_LIMIT,
            shards_per_stream_max: SHARDS_PER_STREAM_MAX,
            on_demand_stream_limit: ON_DEMAND_STREAM_LIMIT,
            on_demand_initial_shards: ON_DEMAND_INITIAL_SHARDS,
            on_demand_shards_max: ON_DEMAND_SHARDS_MAX,
            consumers_per_stream_max: CONSUMERS_PER_STREAM_MAX,
            tags_per_resource_max: TAGS_PER_RESOURCE_MAX,
            stream_mode_changes_per_window_max: STREAM_MODE_CHANGES_PER_WINDOW_MAX,
            scalings_per_window_max: SCALINGS_PER_WINDOW_MAX,
            subscription_lifetime_ms: SUBSCRIPTION_LIFETIME_MS,
            resubscribe_window_ms: RESUBSCRIBE_WINDOW_MS,
            subscription_heartbeat_ms: SUBSCRIPTION_HEARTBEAT_MS,
            subscriptions_per_core_max: SUBSCRIPTIONS_PER_CORE_MAX,
            mailbox_jobs_max: MAILBOX_JOBS_MAX,
            connections_per_core_max: CONNECTIONS_PER_CORE_MAX,
            requests_in_flight_per_connection_max: REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX,
            shutdown_drain_ms: SHUTDOWN_DRAIN_MS,
            retention_interval_ms: RETENTION_INTERVAL_MS,
            delivery_snapshot_interval_entries: sluice_state::limits::SNAPSHOT_INTERVAL_ENTRIES,
            segment_bytes_max: sluice_engine::limits::SEGMENT_BYTES_MAX_DEFAULT,
        }
    }
}

impl Limits {
    /// Refuses values that would stop the node from working at all (a zero-sized mailbox, no
    /// connections); any value a test could want to reach quickly is allowed.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("mailbox-jobs-max", self.mailbox_jobs_max),
            ("connections-per-core-max", self.connections_per_core_max),
            ("requests-in-flight-per-connection-max", self.requests_in_flight_per_connection_max),
            ("subscriptions-per-core-max", self.subscriptions_per_core_max),
            ("on-demand-initial-shards", self.on_demand_initial_shards as usize),
            ("segment-bytes-max", self.segment_bytes_max.min(usize::MAX as u64) as usize),
            (
                "delivery-snapshot-interval-entries",
                self.delivery_snapshot_interval_entries.min(usize::MAX as u64) as usize,
            ),
        ];
        match positive.iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(format!("limit-overrides.{name} must be at least 1")),
            None if self.subscription_heartbeat_ms == 0 => {
                Err("limit-overrides.subscription-heartbeat-ms must be at least 1".into())
            }
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery streams (Firehose, `ops::firehose`). The engine's own limits are in
// `firehose/src/limits.rs`.

/// Delivery streams per node (Firehose's default quota: 50 per account per region, raisable
/// to 5,000; each costs an engine task, a reader per shard and its buffers' memory).
pub const FIREHOSE_DELIVERY_STREAMS_MAX: usize = 50;

/// Kinesis channels per node (`ops::channels`). AWS documents no channel quota in the model;
/// each channel costs what a delivery stream does (an engine task, a reader per shard, up to
/// 128 MiB of buffers), so it gets the same budget.
pub const FIREHOSE_CHANNELS_MAX: usize = FIREHOSE_DELIVERY_STREAMS_MAX;

/// ListChannels' page size when `MaxResults` is absent (the model bounds it to 1..=10,000 and
/// documents no default; Sluice answers every channel, at most [`FIREHOSE_CHANNELS_MAX`]).
pub const FIREHOSE_CHANNELS_LIST_DEFAULT: usize = FIREHOSE_CHANNELS_MAX;
/// Shards of a Direct PUT delivery stream's hidden internal stream. Direct PUT goes through
/// the per-shard quotas like any PutRecords (`--limits kinesis`): 2 shards give 2 MiB/s and
/// 2,000 records/s, above Firehose's smallest regional quota (1 MiB/s, 1,000 records/s).
pub const FIREHOSE_INTERNAL_SHARDS: i32 = 2;
/// PutRecordBatch: most records per call (Firehose: 500).
pub const FIREHOSE_PUT_BATCH_RECORDS_MAX: usize = 500;
/// PutRecordBatch: most bytes of record data per call (Firehose: 4 MiB).
pub const FIREHOSE_PUT_BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;
/// One record's data (Firehose: 1,000 KiB before base64). Below the Kinesis record limit of
/// the hidden stream (1 MiB with the partition key), so every accepted record fits there.
pub const FIREHOSE_RECORD_BYTES_MAX: usize = 1_000 * 1024;
/// Records one reader asks a shard for per GetRecords (Kinesis' maximum).
pub const FIREHOSE_READ_RECORDS_MAX: i32 = 10_000;
/// How long a reader waits after an empty read before asking again: 250 ms keeps it under
/// the 5 GetRecords calls/s of a shard with a margin for the user's own consumers, and bounds
/// the delay a record waits to reach the engine.
pub const FIREHOSE_READ_IDLE_MS: u64 = 250;
/// How long a reader waits after a throttled or failed read.
pub const FIREHOSE_READ_BACKOFF_MS: u64 = 1_000;
/// How long the checkpoint keeper waits before writing a delivery stream's delivered
/// positions again after a write failed (a full or failing disk). The engine delivers nothing
/// more until the write succeeds (see `sluice_firehose::engine`), so this bounds the stall
/// after the disk recovers; the positions themselves are written as soon as they move, one
/// fsync per delivered buffer at most.
pub const FIREHOSE_CHECKPOINT_RETRY_MS: u64 = 1_000;
/// Worker threads of the delivery runtime (tokio) by default: compression and Parquet
/// conversion are CPU-bound, and the ingest cores must keep theirs.
pub const FIREHOSE_WORKER_THREADS_DEFAULT: usize = 1;
/// Tags of one delivery stream (Firehose: "Each delivery stream can have up to 50 tags";
/// TagDeliveryStream beyond it is LimitExceededException). Also the most tags and tag keys one
/// TagDeliveryStream / UntagDeliveryStream names (the model's list bounds).
pub const FIREHOSE_TAGS_MAX: usize = 50;
/// A tag key's length in characters (the model's `TagKey`: 1–128).
pub const FIREHOSE_TAG_KEY_CHARS_MAX: usize = 128;
/// A tag value's length in characters (the model's `TagValue`: 0–256).
pub const FIREHOSE_TAG_VALUE_CHARS_MAX: usize = 256;
/// ListTagsForDeliveryStream: the largest `Limit` (the model: 1–50), also its page size when
/// `Limit` is absent (AWS documents no default; one page then holds every tag).
pub const FIREHOSE_LIST_TAGS_MAX: usize = FIREHOSE_TAGS_MAX;
/// ListDeliveryStreams: names per page when `Limit` is absent (Firehose: 10).
pub const FIREHOSE_LIST_DEFAULT: usize = 10;
/// ListDeliveryStreams: the largest `Limit` (Firehose's model: 10,000).
pub const FIREHOSE_LIST_MAX: usize = 10_000;
/// Bytes reserved in a native connection's answer budget per record of a PutRecordBatch: an
/// entry's table and vtable (about 48 bytes) and its record id (56 digits in Sluice) or its
/// error code and message (about 150 bytes for ServiceUnavailableException's).
pub const FIREHOSE_NATIVE_BATCH_ENTRY_ANSWER_BYTES: usize = 256;
const _: () = assert!(
    FIREHOSE_PUT_BATCH_RECORDS_MAX * FIREHOSE_NATIVE_BATCH_ENTRY_ANSWER_BYTES
        <= RESPONSE_BYTES_QUEUED_PER_CONNECTION_MAX
);

/// A long-polling ReceiveQueueRecords with nothing to deliver looks again at most this often
/// (sooner when a visibility timeout ends first): new records are noticed within this delay.
/// 50 ms costs an idle receive 20 reads of its shards' tips a second, all in memory.
/// Unfinished: wake on `journal.wait_for_index` of the queue's shards instead of polling.
pub const QUEUE_RECEIVE_POLL_MS: u64 = 50;
/// Bytes a receive reads from all shards at once for new records (data plus keys): 10
/// records of at most 1 MiB each, the most one receive returns, plus room for the keys.
pub const QUEUE_RECEIVE_READ_BYTES_MAX: usize = 11 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_read_from_toml_and_default_the_rest() {
        let limits: Limits = toml::from_str("shard-limit = 3\nsubscription-lifetime-ms = 2000").unwrap();
        assert_eq!(limits.shard_limit, 3);
        assert_eq!(limits.subscription_lifetime_ms, 2000);
        assert_eq!(limits.consumers_per_stream_max, CONSUMERS_PER_STREAM_MAX);
        assert!(toml::from_str::<Limits>("no-such-limit = 1").is_err());
        assert!(Limits { mailbox_jobs_max: 0, ..Limits::default() }.check().is_err());
        assert!(Limits::default().check().is_ok());
    }
}
