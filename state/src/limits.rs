//! Every limit of the delivery state, each a named constant with the reason for its value.
//!
//! Queue limits come from the botocore 1.44.5 Kinesis service model
//! (`kinesis/2013-12-02/service-2.json`, shapes named beside each constant); lease limits
//! follow the Kinesis Client Library's defaults. Bounds that protect memory or the journal say
//! which.

/// Longest worker identifier. KCL uses `hostname:UUID`-style ids (its `workerIdentifier`);
/// 256 bytes leaves room for long host names and bounds every lease's size in a snapshot.
pub const WORKER_ID_BYTES_MAX: usize = 256;

/// Application and queue names are 1..=128 characters of `[a-zA-Z0-9_.-]`, like stream and
/// consumer names (model: `QueueName` max 128, pattern `[a-zA-Z0-9_.-]+`).
pub const NAME_CHARS_MAX: usize = 128;

/// Consumer-group applications per stream. Each costs a lease per shard on its home core and
/// one entry in the catalog, and deleting the stream visits every one; a hundred is far more
/// than the distinct consumers a stream has in practice (Kinesis allows 20 registered ones).
pub const APPLICATIONS_PER_STREAM_MAX: usize = 100;

/// How long a lease lasts after a take, steal or renewal unless renewed again: KCL's
/// `failoverTimeMillis` default (10 s). Workers renew at a third of it, as KCL does.
pub const LEASE_DURATION_MS_DEFAULT: i64 = 10_000;
/// Shortest lease an application may ask for: below a second, a worker's renewals compete
/// with its own processing and a garbage-collection pause loses leases.
pub const LEASE_DURATION_MS_MIN: i64 = 1_000;
/// Longest lease an application may ask for: a dead worker's shards wait this long for a
/// new owner, so more than ten minutes is a misconfiguration.
pub const LEASE_DURATION_MS_MAX: i64 = 600_000;
const _: () = assert!(LEASE_DURATION_MS_MIN <= LEASE_DURATION_MS_DEFAULT);
const _: () = assert!(LEASE_DURATION_MS_DEFAULT <= LEASE_DURATION_MS_MAX);

/// Records one ReceiveQueueRecords or ReceiveDeadLetterQueueRecords returns at most, and its
/// default (model: `ReceiveQueueRecordsInputLimit` 1..=10, "The default is 10").
pub const QUEUE_RECEIVE_RECORDS_MAX: usize = 10;
/// Entries of one Acknowledge/UpdateVisibility/Restore call (model: every
/// `…RequestEntryList` has max 10).
pub const QUEUE_ENTRIES_PER_CALL_MAX: usize = 10;

/// A queue's visibility timeout when CreateQueue does not give one (model:
/// `VisibilityTimeoutSeconds`: "If you omit this attribute … the queue uses 30 seconds").
pub const VISIBILITY_TIMEOUT_S_DEFAULT: u32 = 30;
/// Longest visibility timeout, 12 hours (model: `VisibilityTimeoutSeconds` max 43200). Zero
/// is allowed (min 0): the record is visible again at once.
pub const VISIBILITY_TIMEOUT_S_MAX: u32 = 43_200;

/// Receives without acknowledgement before a record becomes a dead-letter record when
/// CreateQueue does not say (model: "enabled by default, with a MaxReceiveCount of 6").
pub const MAX_RECEIVE_COUNT_DEFAULT: u32 = 6;
/// Bounds of `MaxReceiveCount` (model: 1..=1000).
pub const MAX_RECEIVE_COUNT_MIN: u32 = 1;
pub const MAX_RECEIVE_COUNT_MAX: u32 = 1_000;

/// How long a receive waits for a visible record by default, and at most (model:
/// `ReceiveQueueRecordsWaitTimeSeconds` 1..=20, "The default is 9"). The state only names
/// them: waiting is the runtime's.
pub const RECEIVE_WAIT_S_DEFAULT: u32 = 9;
pub const RECEIVE_WAIT_S_MAX: u32 = 20;

/// Registered consumers per stream, enhanced fan-out consumers and queues together (model,
/// CreateQueue: "A queue counts as a registered consumer … 20 on On-demand Standard"). Checked
/// by the control plane, which knows both kinds.
pub const REGISTERED_CONSUMERS_PER_STREAM_MAX: usize = 20;

/// Records of one shard a queue may hold in its window (in flight, waiting for redelivery, or
/// dead-letter). This is what bounds a queue's memory per shard: at a shard's full write quota
/// of 1,000 records/s it is ten seconds of records outstanding at once. When a shard's window
/// is full the queue delivers no new records from it (receives return fewer records) until
/// some are acknowledged or expire; redeliveries go on.
pub const QUEUE_WINDOW_RECORDS_PER_SHARD_MAX: usize = 10_000;
/// Records one queue may hold in its windows over all shards: SQS's in-flight quota for a
/// standard queue (120,000), a figure users of queues already plan for. At about 150 bytes of
/// memory per record (the record and its three index entries) that is 18 MB per queue.
pub const QUEUE_WINDOW_RECORDS_MAX: usize = 120_000;
const _: () = assert!(QUEUE_WINDOW_RECORDS_PER_SHARD_MAX <= QUEUE_WINDOW_RECORDS_MAX);

/// Largest encoded log entry: a record of Kinesis' default size (1 MiB; the journal takes up
/// to `RECORD_BYTES_MAX` in `sluice_engine::limits`, 10 MiB), so every entry is one journal
/// record that fits an ordinary batch. Larger commands (a
/// CreateApplication for a stream with tens of thousands of shards) are split by the caller.
pub const LOG_ENTRY_BYTES_MAX: usize = 1 << 20;

/// Most bytes of one snapshot part: half a journal record, so that a part plus its header
/// always fits [`LOG_ENTRY_BYTES_MAX`] and one part never fills a group commit by itself.
pub const SNAPSHOT_PART_BYTES_MAX: usize = 512 << 10;
const _: () = assert!(SNAPSHOT_PART_BYTES_MAX + 64 <= LOG_ENTRY_BYTES_MAX);

/// Most bytes of the leases or window records in one snapshot item: the item's other fields
/// and the part's header fit in the rest of a part. Items are cut by encoded size, so a lease
/// with a long worker id or a window of large indexes never makes an item too big.
pub const SNAPSHOT_ITEM_BYTES_MAX: usize = SNAPSHOT_PART_BYTES_MAX - 4096;

/// Log entries applied since the last snapshot after which the owner writes a new one.
/// Replay after a crash applies at most this many entries past the snapshot (each a few
/// microseconds), and retention can trim everything before it.
pub const SNAPSHOT_INTERVAL_ENTRIES: u64 = 10_000;

/// Receipt handles are at most 1,024 characters (model: `ReceiptHandle` max 1024); ours are
/// 62. The verifier refuses longer input before decoding it.
pub const RECEIPT_HANDLE_CHARS_MAX: usize = 1_024;

/// Bytes of the key that signs receipt handles (HMAC-SHA-256 takes any length; 32 bytes is
/// its block-size-safe full strength).
pub const HANDLE_KEY_BYTES: usize = 32;

/// Parents a shard can have: one after a split, two after a merge.
pub const SHARD_PARENTS_MAX: usize = 2;

/// Tags of one queue (model: TagResource and CreateQueue's `Tags`, "up to 50 tags per
/// resource", the same quota as streams and consumers).
pub const QUEUE_TAGS_MAX: usize = 50;
/// Longest tag key and value, in characters (model: `TagKey` max 128, `TagValue` max 256).
pub const TAG_KEY_CHARS_MAX: usize = 128;
pub const TAG_VALUE_CHARS_MAX: usize = 256;
