//! Every limit of the agent in one place, each with the reason for its value.
//!
//! The Kinesis Agent's own defaults and bounds (for the `agent.json` keys) are quoted from its
//! documentation ("Agent Configuration Settings" in the Kinesis Data Streams and Firehose
//! developer guides) and, where the documentation is silent or differs, from its source
//! (`KinesisConstants.java`, `FirehoseConstants.java`, `FileFlow.java`,
//! `AgentConfiguration.java` of `awslabs/amazon-kinesis-agent`).

use std::time::Duration;

/// Largest Kinesis record: the data blob plus the partition key may not exceed 1 MiB
/// (PutRecords quota). The AWS agent truncates records to this size minus the key's length.
pub const KINESIS_RECORD_BYTES_MAX: usize = 1024 * 1024;

/// Largest Firehose record: 1,000 KiB (PutRecordBatch quota, `FirehoseConstants`).
pub const FIREHOSE_RECORD_BYTES_MAX: usize = 1000 * 1024;

/// Most records one PutRecords / PutRecordBatch call carries: the upper bound and the default
/// of `maxBufferSizeRecords` for both destinations.
pub const BUFFER_RECORDS_MAX: u64 = 500;

/// Most bytes one PutRecords call carries (5 MiB): the AWS agent's upper bound and default of
/// `maxBufferSizeBytes` for `kinesisStream` flows (its documentation says 4 MiB; its code
/// allows and defaults to the PutRecords quota, and we follow the code).
pub const KINESIS_BUFFER_BYTES_MAX: u64 = 5 * 1024 * 1024;

/// Most bytes one PutRecordBatch call carries (4 MiB): bound and default of
/// `maxBufferSizeBytes` for `deliveryStream` flows.
pub const FIREHOSE_BUFFER_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// `maxBufferAgeMillis`: default one minute, valid from 1 s to 15 min (AWS documentation).
pub const BUFFER_AGE_MS_DEFAULT: u64 = 60_000;
/// Lower bound of `maxBufferAgeMillis`.
pub const BUFFER_AGE_MS_MIN: u64 = 1_000;
/// Upper bound of `maxBufferAgeMillis`.
pub const BUFFER_AGE_MS_MAX: u64 = 900_000;

/// `minTimeBetweenFilePollsMillis` default (AWS documentation): how often files are polled
/// when inotify is not available.
pub const FILE_POLL_MS_DEFAULT: u64 = 100;

/// `maxTimeBetweenFileTrackerRefreshMillis` default (`FileFlow.java`): the longest time between
/// two full rescans of a flow's directory, even when inotify reports nothing (inotify can
/// overflow its queue, and some filesystems, NFS among them, send no events).
pub const RESCAN_MS_DEFAULT: u64 = 10_000;

/// `shutdownTimeoutMillis` default (`AgentConfiguration.java`): how long a stopping agent
/// waits for records in flight to be acknowledged before it exits anyway.
pub const SHUTDOWN_TIMEOUT_MS_DEFAULT: u64 = 10_000;

/// `retryInitialBackoffMillis` / `retryMaxBackoffMillis` defaults (`Constants.java`), handed
/// to the sink (the producer retries; the file sink never fails).
pub const RETRY_INITIAL_BACKOFF_MS_DEFAULT: u64 = 100;
/// See [`RETRY_INITIAL_BACKOFF_MS_DEFAULT`].
pub const RETRY_MAX_BACKOFF_MS_DEFAULT: u64 = 10_000;

/// `log.statusReportingPeriodSeconds` default (`AgentConfiguration.java`): the period of the
/// status line in the log.
pub const STATUS_LOG_PERIOD_S_DEFAULT: u64 = 30;

/// `checkpointTimeToLiveDays` default (`AgentConfiguration.java`): checkpoint entries of files
/// not seen for this long are dropped.
pub const CHECKPOINT_TTL_DAYS_DEFAULT: u64 = 7;

/// Most bytes of one record the splitter holds before the end of the record is found. Past
/// it the record is cut (and later truncated with `truncatedRecordTerminator`) and the rest of
/// it is discarded up to the next record, as the AWS agent does with a record longer than its
/// parser buffer. 5 MiB is that buffer (`DEFAULT_PARSER_BUFFER_SIZE_BYTES`); holding more
/// would only be truncated away.
pub const RECORD_HELD_BYTES_MAX: usize = 5 * 1024 * 1024;

/// Bytes read from a file per `read` call: large enough that reading costs a few system
/// calls per megabyte, small enough that one flow never holds much unsplit data.
pub const READ_CHUNK_BYTES: usize = 256 * 1024;

/// Records of one flow that are in flight: handed to the sink and not yet covered by a durable
/// checkpoint. When the window is full the flow stops reading (back-pressure). It is also the
/// bound on duplicates after a crash: a restart re-sends at most this many records per flow.
/// A record leaves the window only after a checkpoint covering it is durable, so throughput is
/// this window over the round trip (sink write and fdatasync, then checkpoint write and
/// fsyncs). Measured with the file sink on a 200 MB file (`docs/agent.md`): 4,096 capped a
/// flow at ~41,000 lines/s, 32,768 at ~176,000, 65,536 reached ~420,000 (then CPU bound);
/// about 25 MB of records and slots at most (with [`WINDOW_BYTES_MAX`]).
pub const WINDOW_RECORDS_MAX: usize = 64 * 1024;

/// Bytes of records of one flow in flight (same meaning as [`WINDOW_RECORDS_MAX`]): a few
/// PutRecords calls' worth, enough for the window's records at ~250 bytes each.
pub const WINDOW_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Records handed to the sink in one `submit` call (one batch on the sink's queue).
pub const SUBMIT_RECORDS_MAX: usize = 512;

/// Batches queued in the file sink between the flows and its writer thread.
pub const SINK_QUEUE_BATCHES_MAX: usize = 64;

/// PutRecords calls the stream sink holds sealed (queued for their destination's sender, or in
/// flight), over all destinations, before it stops taking submitted records (and `submit`
/// starts waiting): with one call in flight per destination, a few queued behind it keep the
/// connection busy while the next is collected; 16 calls of 500 records is 8,000 records
/// (at most 80 MiB at the 5 MiB call limit, in practice a few MB).
pub const STREAM_SINK_CALLS_HELD_MAX: usize = 16;

/// Memory the stream sink's glommio executor registers for I/O. It only talks to a socket
/// (glommio's 10 MiB default is for file I/O buffers), and registered memory counts against
/// `RLIMIT_MEMLOCK`; 2 MiB keeps the agent's footprint and memlock needs small.
pub const STREAM_SINK_IO_MEMORY_BYTES: usize = 2 * 1024 * 1024;

/// Smallest non-zero `aggregatedRecordSizeBytes` of a stream flow: the KPL's
/// `AggregationMaxSize` minimum (`sluice_kpl::limits::AGGREGATION_MAX_SIZE_MIN`), below which
/// an aggregate's framing leaves no room for data.
pub const AGGREGATED_RECORD_BYTES_MIN: u64 = sluice_kpl::limits::AGGREGATION_MAX_SIZE_MIN as u64;

/// Records the producer sink has handed to its producers and not yet completed, over all
/// flows (the queue between its feeder and completer threads). The flows' windows bound the
/// records in flight already; this only keeps the queue itself bounded, at a whole window.
pub const PRODUCER_SINK_PENDING_MAX: usize = WINDOW_RECORDS_MAX;

/// The producer sink's `RecordTtl`: a year, i.e. never in practice. The KPL fails a record not
/// put within its TTL (30 s by default); the agent must not drop lines, so a record is retried
/// until it is in, as the stream sink does, and back-pressure stops the flows meanwhile.
pub const PRODUCER_SINK_RECORD_TTL_MS: u64 = 365 * 24 * 3600 * 1000;

/// How often a stopping producer sink looks whether its records completed.
pub const PRODUCER_SINK_SHUTDOWN_POLL: Duration = Duration::from_millis(10);

/// A recurring sink problem (sluiced unreachable, a stream that does not exist yet) is logged
/// at most this often per stream: visible, without a line per retry.
pub const STREAM_SINK_LOG_EVERY: Duration = Duration::from_secs(60);

/// How long the stream sink's driver sleeps when no buffer is waiting on its age (it wakes
/// sooner on every submit, flush and shutdown).
pub const STREAM_SINK_IDLE_WAKE: Duration = Duration::from_secs(1);

/// How long one PutRecords / PutRecordBatch call (connecting included) may take before it is
/// given up as a broken connection and sent again on a new one: the AWS Java SDK's default
/// socket timeout (`ClientConfiguration.DEFAULT_SOCKET_TIMEOUT`, 50 s), which the AWS agent
/// runs with. Without it a connection that stops answering (a dead NAT entry on the way to
/// AWS) would hold its destination's records for ever.
pub const STREAM_SINK_CALL_TIMEOUT: Duration = Duration::from_secs(50);

/// At shutdown, after the deadline for records in flight, how long the driver waits for each
/// sender to let go of a call it is in the middle of (a request on a dead connection).
pub const STREAM_SINK_STOP_GRACE: Duration = Duration::from_millis(200);

/// How long `submit` waits for room in the sink before returning to the flow's loop (which
/// then handles acknowledgements and signals and tries again).
pub const SUBMIT_WAIT: Duration = Duration::from_millis(50);

/// Bytes at the start of a file hashed into its fingerprint. A file's identity is its device
/// and inode plus this fingerprint, so a reused inode (a new file with the inode of a deleted
/// one) and a copy (copytruncate) are told apart by content. 1 KiB covers the first lines of
/// a log, which carry timestamps; files whose first KiB is identical are told apart by inode.
pub const FINGERPRINT_BYTES: usize = 1024;

/// Files one flow keeps open at once (an open descriptor lets a rotated or deleted file be
/// read to its end). Older rotations read to their end are closed (dormant) and reopened if
/// they grow; matching files beyond this wait until descriptors are free.
pub const OPEN_FILES_PER_FLOW_MAX: usize = 256;

/// Files one flow tracks at all (open or dormant), each an entry of its checkpoint
/// (~150 bytes of JSON): a directory with more matching files than this has its newest wait.
pub const TRACKED_FILES_PER_FLOW_MAX: usize = 8192;

/// How long a file that was rotated away (renamed out of the pattern, deleted, or followed by
/// a newer file) must stay unchanged at its end before it is retired and an unterminated last
/// line in it is shipped. Writers keep appending to the old file until they reopen (logrotate's
/// `postrotate` signal); five seconds covers that.
pub const ROTATED_FILE_IDLE: Duration = Duration::from_secs(5);

/// Readings of a flow's directory in one scan when names vanish while it is read (a rotation
/// renaming files under way): a rotation is a handful of renames done within a millisecond, so
/// a second reading normally sees it whole; the bound keeps a directory renamed without pause
/// from stalling the flow (a file a listing misses is remembered, not forgotten).
pub const DIR_LIST_ATTEMPTS: usize = 3;

/// How long a new file whose first bytes equal those of a file still being tailed is held back
/// as a probable copy (logrotate `copytruncate` copies, then truncates). If the original is
/// truncated within this time, the copy continues the original's checkpoint; if not, the new
/// file is read as a file of its own.
pub const COPY_SETTLE: Duration = Duration::from_secs(3);

/// How long a multi-line record (with `multiLineStartPattern`) waits at the end of its file for
/// more lines before it is sent: a stack trace is written in well under a second.
pub const MULTILINE_IDLE_FLUSH: Duration = Duration::from_secs(1);

/// Least time between two checkpoint file writes: acknowledgements arriving meanwhile are
/// written together (one fsync for many). Short, because records leave the window only when a
/// checkpoint covering them is durable (see [`WINDOW_RECORDS_MAX`]); an idle agent writes none.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(20);

/// Bytes of a request head the metrics port (`--metrics-listen`) reads at most: Prometheus
/// sends a few hundred; anything longer is refused (431) rather than buffered. As sluiced's
/// `METRICS_REQUEST_BYTES_MAX`.
pub const METRICS_REQUEST_BYTES_MAX: usize = 8 * 1024;
/// Headers of a metrics-port request parsed at most (Prometheus sends about six).
pub const METRICS_REQUEST_HEADERS_MAX: usize = 32;
/// How long the metrics port waits for a request head. It answers one connection at a time,
/// so a client that sends nothing holds it for at most this long; below Prometheus's default
/// scrape timeout of 10 s.
pub const METRICS_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Period of the status file (read by `sluice-agent status`).
pub const STATUS_FILE_INTERVAL: Duration = Duration::from_secs(1);

/// Retired file identities a flow remembers, so a file that disappears and reappears (moved
/// away and back) resumes where it was instead of being read again.
pub const RETIRED_REMEMBERED_MAX: usize = 1024;

/// Largest `agent.json` read; a configuration is a few kilobytes.
pub const CONFIG_BYTES_MAX: u64 = 1024 * 1024;

/// Largest checkpoint file read: every flow at [`TRACKED_FILES_PER_FLOW_MAX`] files of ~200
/// bytes each would be 100 MB; 64 MiB covers a few such flows and typical hosts by far.
pub const CHECKPOINT_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Most flows in one configuration (each is a thread and a window of memory).
pub const FLOWS_MAX: usize = 64;

const _: () = assert!(SUBMIT_RECORDS_MAX <= WINDOW_RECORDS_MAX);
const _: () = assert!(RECORD_HELD_BYTES_MAX >= KINESIS_RECORD_BYTES_MAX);
const _: () = assert!(WINDOW_BYTES_MAX >= KINESIS_RECORD_BYTES_MAX);
const _: () = assert!(READ_CHUNK_BYTES >= FINGERPRINT_BYTES);
