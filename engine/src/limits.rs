//! Every limit the engine enforces, each a named constant with the reason for its value.
//!
//! Kinesis quotas come from the AWS Kinesis Data Streams developer guide ("Quotas and limits")
//! and the botocore service model (`kinesis/2013-12-02/service-2.json`); see
//! `shared/reference/kinesis-api.md`. Engine-internal bounds say which resource they protect.

use crate::format;

/// Shortest partition key Kinesis accepts (`PartitionKey` min length 1).
pub const PARTITION_KEY_CHARS_MIN: usize = 1;
/// Longest partition key Kinesis accepts, in Unicode characters (`PartitionKey` max length 256).
pub const PARTITION_KEY_CHARS_MAX: usize = 256;
/// The same bound in bytes: UTF-8 spends at most four bytes per character.
pub const PARTITION_KEY_BYTES_MAX: usize = PARTITION_KEY_CHARS_MAX * 4;

/// Largest record the engine stores: data blob plus partition key, 10 MiB, the top of
/// Kinesis' `MaxRecordSizeInKiB` (UpdateMaxRecordSize; 1 MiB unless a stream raises it,
/// which the server checks per stream). A record larger than [`BATCH_BYTES_MAX`] is written
/// as a batch of its own, sized to it.
pub const RECORD_BYTES_MAX: usize = 10 << 20;

/// The largest record a stream takes unless CreateStream or UpdateMaxRecordSize raised it, KiB:
/// Kinesis' default `MaxRecordSizeInKiB`, 1 MiB.
pub const STREAM_RECORD_KIB_DEFAULT: u32 = 1024;
const _: () = assert!(STREAM_RECORD_KIB_DEFAULT as usize * 1024 <= RECORD_BYTES_MAX);

/// Bytes a caller's encryption may add to a record's data beyond [`RECORD_BYTES_MAX`]: the
/// server seals the data of records of encrypted streams (`sluice-security`'s sealed form adds
/// a 44-byte header and a 16-byte tag, 60 bytes; the server checks that at compile time), and
/// a record Kinesis accepts must still fit once sealed.
pub const RECORD_SEALING_BYTES_MAX: usize = 64;

/// Most records in one PutRecords call (Kinesis: 500).
pub const PUT_RECORDS_COUNT_MAX: usize = 500;
/// Most bytes (data plus keys) in one PutRecords call (Kinesis: 10 MiB in the current model).
pub const PUT_RECORDS_BYTES_MAX: usize = 10 << 20;

/// Most records one GetRecords call returns (Kinesis `Limit` max 10,000).
pub const GET_RECORDS_COUNT_MAX: usize = 10_000;
/// Most bytes one GetRecords call returns (Kinesis: 10 MiB).
pub const GET_RECORDS_BYTES_MAX: usize = 10 << 20;

/// Shortest retention Kinesis allows, and its default: 24 hours.
pub const RETENTION_HOURS_MIN: u32 = 24;
/// Kinesis' default retention.
pub const RETENTION_HOURS_DEFAULT: u32 = 24;
/// Longest retention Kinesis allows: 365 days.
pub const RETENTION_HOURS_MAX: u32 = 8760;

/// Stream and consumer names are 1..=128 characters of `[a-zA-Z0-9_.-]`.
pub const STREAM_NAME_CHARS_MAX: usize = 128;

/// Largest encoded size of one append: a maximal PutRecords, each record in its own run
/// (the worst case for framing overhead) with a Raft position (a replica's applier), in one
/// batch.
pub const APPEND_ENCODED_BYTES_MAX: usize = format::BATCH_HEADER_BYTES
    + PUT_RECORDS_BYTES_MAX
    + PUT_RECORDS_COUNT_MAX * (format::RUN_RAFT_HEADER_BYTES + format::RECORD_HEADER_BYTES + RECORD_SEALING_BYTES_MAX);

/// Most bytes of one batch, the unit of write. A commit is framed into batches that are all
/// written at once, so the disk sees a queue of writes (measured here: 1 MiB writes at queue
/// depth 16 reach several times the bandwidth of one 16 MiB write). It must hold the largest
/// record of the default size (1 MiB) with its headers, and stay a multiple of any device's
/// alignment (4 KiB). Larger records (up to [`RECORD_BYTES_MAX`]) each get an oversized batch
/// of their own (`journal::commit`), so a batch is at most [`BATCH_BYTES_OVERSIZED_MAX`].
pub const BATCH_BYTES_MAX: usize = 2 << 20;
const _: () = assert!(
    BATCH_BYTES_MAX
        >= format::BATCH_HEADER_BYTES
            + format::RUN_RAFT_HEADER_BYTES
            + format::RECORD_HEADER_BYTES
            + (1 << 20)
            + RECORD_SEALING_BYTES_MAX
);
/// The largest batch: one record of [`RECORD_BYTES_MAX`] (sealed, at most) with its headers,
/// rounded up to the largest alignment a device asks (4 KiB).
pub const BATCH_BYTES_OVERSIZED_MAX: usize = (format::BATCH_HEADER_BYTES
    + format::RUN_RAFT_HEADER_BYTES
    + format::RECORD_HEADER_BYTES
    + RECORD_BYTES_MAX
    + RECORD_SEALING_BYTES_MAX)
    .next_multiple_of(4096);
const _: () = assert!(COMMIT_BYTES_MAX >= BATCH_BYTES_OVERSIZED_MAX + format::BLOCK_BYTES);
const _: () = assert!(BATCH_BYTES_MAX.is_multiple_of(4096));

/// Most bytes one group commit writes. A commit holds whole appends only, so it must fit the
/// largest append; beyond that, bigger commits only add latency to the appends queued behind.
pub const COMMIT_BYTES_MAX: usize = 16 << 20;
const _: () = assert!(COMMIT_BYTES_MAX >= APPEND_ENCODED_BYTES_MAX + format::BLOCK_BYTES);

/// Default bound on bytes queued for the next group commits on one core. Appenders beyond it
/// wait: this is the back-pressure that keeps a burst of producers from growing memory.
pub const PENDING_BYTES_MAX_DEFAULT: usize = 64 << 20;
const _: () = assert!(PENDING_BYTES_MAX_DEFAULT >= COMMIT_BYTES_MAX);

/// Default size at which a journal segment is sealed and a new one started. Segments are the
/// unit of retention (deleted whole), and recovery reads the unsealed one into memory once.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 128 << 20;
const _: () = assert!(SEGMENT_BYTES_MAX_DEFAULT >= 2 * COMMIT_BYTES_MAX as u64);

/// Default bytes the active segment reserves on the disk ahead of its end (fallocate, at most to
/// `segment_bytes_max`), so that a commit's writes land in reserved space instead of extending
/// the file: io_uring then does them inline, where an extending O_DIRECT write goes to one of
/// its worker threads (issue 19: the engine's durable appends went 1.78x as fast, in
/// `bench/results/2026-12-03-reserved-segments/`). As large as the largest commit, so one
/// reservation per commit at most; recovery reads this much of zeros past the last commit at
/// most.
pub const SEGMENT_RESERVE_BYTES_DEFAULT: u64 = COMMIT_BYTES_MAX as u64;

/// Largest file-system block commits are aligned to: a file system reporting larger blocks
/// (network and copy-on-write ones report their record size) gets commits aligned to this,
/// rather than padding each commit of a light load to a large block.
pub const COMMIT_ALIGNMENT_BYTES_MAX: usize = 16 << 10;

/// Default bytes of recently committed batches kept in memory per core, so that consumers
/// at the tip (the common case) never touch the disk.
pub const TAIL_CACHE_BYTES_DEFAULT: usize = 64 << 20;

/// Most shards' sealed-segment run lists a core's journal keeps loaded (issue 19: the run
/// index holds one span per shard and sealed segment; reads inside a span load that shard's
/// runs of the segment from its checkpoint). A consumer reading through old segments needs
/// one entry at a time (the segment it is in), and each entry serves every GetRecords call
/// until the reader leaves the segment; 256 entries let 256 such readers (or a reshard's
/// parents and its children) on one core go on without re-reading a checkpoint.
pub const SEALED_RUNS_CACHE_ENTRIES_MAX: usize = 256;

/// Most runs (32 bytes each in memory) the loaded run lists hold together on one core: 64 MiB.
/// One shard's runs in one default 128 MiB segment are at most about 2.7 million (a run of
/// one 1-byte record takes 49 bytes), so one hot shard's list alone may exceed it: the cache
/// then holds that list only, and a read always gets the list it asked for.
pub const SEALED_RUNS_CACHE_RUNS_MAX: usize = 2 << 20;

/// Record indexes occupy 48 bits of a sequence number: 2.8e14 records per shard, about
/// 8,900 years at the Kinesis quota of 1,000 records/s.
pub const RECORD_INDEX_MAX: u64 = (1 << 48) - 1;
