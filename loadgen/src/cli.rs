//! The command line: one subcommand per scenario, and the flags they share.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "sluice-loadgen",
    version,
    about = "Drives a running sluiced: proves the per-shard limits, measures enhanced fan-out and polling latency, finds the throughput ceiling.",
    after_help = "See docs/benchmarks.md for how to run each scenario and read its output."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Over-drive shards and check that writes, polling reads and enhanced fan-out are held to
    /// their Kinesis quotas (sluiced with `--limits kinesis`, the default).
    Limits(LimitsArgs),
    /// Open-loop producers with polling and enhanced fan-out consumers on the same shards:
    /// put-acknowledged and put-to-delivery latency per consumer kind.
    Latency(LatencyArgs),
    /// The highest durable ingest rate per record and batch size, and the read rate of
    /// consumers (sluiced with `--limits unlimited`).
    Throughput(ThroughputArgs),
    /// Kinesis queues (over HTTP: `--endpoint` is the `--http-listen` port): receive and
    /// acknowledge throughput with N competing consumers, redelivery after the visibility
    /// timeout, and dead-lettering after MaxReceiveCount.
    Queue(QueueArgs),
    /// Continuous writes to a cluster (`--endpoints` of every node) that ride through leader
    /// kills and partitions as a real client would, with a log of every acknowledged record
    /// (`--ack-log`) for an independent checker; runs for `--duration-s` or until SIGTERM.
    Endure(EndureArgs),
    /// Compare a bench-check run's results with a committed baseline, as ratios; exits 1 on a
    /// regression (used by scripts/bench-check.sh).
    Check(CheckArgs),
}

/// Which protocol to speak to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// The native protocol, through sluice-client.
    Native,
    /// The AWS JSON 1.1 protocol on the daemon's `--http-listen` port (`--endpoint` names that
    /// port), as SDKs speak it: one connection per request in flight.
    Http,
}

/// Where writes go in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Route {
    /// Every call to the one node given (`--endpoint`), which forwards writes to the shards'
    /// leaders: a client behind a single address (and what this tool always did).
    Any,
    /// PutRecord and PutRecords straight to each shard's leader, from the routing table
    /// (DescribeStreamRoutes, `sluice_client::RoutedClient`), split by leader; everything else
    /// to the node given. Native protocol only.
    Direct,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Any => "any",
            Route::Direct => "direct",
        }
    }
}

/// Flags every scenario has.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The daemon's address (the native listener for `--protocol native`).
    #[arg(long, default_value = "127.0.0.1:4568")]
    pub endpoint: String,
    #[arg(long, value_enum, default_value_t = Protocol::Native)]
    pub protocol: Protocol,
    /// Where writes go in a cluster: through the one node given, or straight to each shard's
    /// leader.
    #[arg(long, value_enum, default_value_t = Route::Any)]
    pub route: Route,
    /// `--protocol native` over TLS (the daemon's `--tls-cert`), trusting this PEM CA bundle.
    /// Credentials, for a daemon with `--credentials`, come from the AWS environment
    /// (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_REGION).
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// How long to drive load, in seconds (per phase or per configuration; see each scenario).
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Seconds at the start of each measurement that are not counted: connections warm up and
    /// the full token buckets (one second of quota) drain.
    #[arg(long)]
    pub warmup_s: Option<f64>,
    /// Write the result as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Directory for the other outputs (`.hgrm` files, plots). Default: next to `--json`, else
    /// the current directory.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Leave the streams the run created (default: delete them at the end).
    #[arg(long)]
    pub keep_streams: bool,
    /// The daemon's metrics endpoint (`http://127.0.0.1:9464/metrics`): scraped before and
    /// after the run, the server's own figures are put beside the loadgen's.
    #[arg(long)]
    pub metrics: Option<String>,
}

impl Common {
    pub fn duration_s(&self, default: f64) -> f64 {
        self.duration_s.unwrap_or(default)
    }

    pub fn warmup_s(&self, default: f64) -> f64 {
        self.warmup_s.unwrap_or(default)
    }

    pub fn out_dir(&self) -> PathBuf {
        match (&self.out_dir, &self.json) {
            (Some(dir), _) => dir.clone(),
            (None, Some(json)) => json.parent().map(PathBuf::from).unwrap_or_default(),
            (None, None) => PathBuf::from("."),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LimitsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Streams of each kind: a byte-bound one (large records) and a record-bound one (small
    /// records).
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Shards per stream.
    #[arg(long, default_value_t = 2)]
    pub shards: usize,
    /// Connections the writers share.
    #[arg(long, default_value_t = 2)]
    pub producers: usize,
    /// Polling (GetRecords) consumers per shard; they share the shard's read quota.
    #[arg(long, default_value_t = 2)]
    pub polling_consumers: usize,
    /// Enhanced fan-out consumers; each has its own 2 MiB/s per shard.
    #[arg(long, default_value_t = 2)]
    pub efo_consumers: usize,
    /// Data bytes per record on the byte-bound streams (the write bytes quota binds first).
    #[arg(long, default_value_t = 4096)]
    pub record_bytes: usize,
    /// Data bytes per record on the record-bound streams (the records quota binds first).
    #[arg(long, default_value_t = 100)]
    pub small_record_bytes: usize,
    /// Load offered, as a multiple of each quota.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
}

#[derive(Debug, Clone, Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Shards per stream.
    #[arg(long, default_value_t = 2)]
    pub shards: usize,
    /// Producer connections; the shards are divided among them.
    #[arg(long, default_value_t = 2)]
    pub producers: usize,
    /// Polling consumers per shard, each a GetRecords loop.
    #[arg(long, default_value_t = 1)]
    pub polling_consumers: usize,
    /// Enhanced fan-out consumers, each subscribed to every shard.
    #[arg(long, default_value_t = 1)]
    pub efo_consumers: usize,
    /// Data bytes per record.
    #[arg(long, default_value_t = 1024)]
    pub record_bytes: usize,
    /// Records per second per shard, sent open-loop on a fixed schedule.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Records per PutRecords call.
    #[arg(long, default_value_t = 1)]
    pub batch_records: usize,
    /// Milliseconds between one polling consumer's GetRecords calls on a shard. Default: 200
    /// times the polling consumers, so that together they make 5 calls/s, the shard's quota.
    #[arg(long)]
    pub poll_interval_ms: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct ThroughputArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Shards per stream.
    #[arg(long, default_value_t = 8)]
    pub shards: usize,
    /// Producer connections.
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    /// PutRecords calls each producer connection keeps in flight.
    #[arg(long, default_value_t = 8)]
    pub in_flight: usize,
    /// Executor threads the producers run on (the daemon shares the machine).
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Data bytes per record; a comma-separated list measures each.
    #[arg(long, value_delimiter = ',', default_value = "1024")]
    pub record_bytes: Vec<usize>,
    /// Records per PutRecords call; a comma-separated list measures each.
    #[arg(long, value_delimiter = ',', default_value = "500")]
    pub batch_records: Vec<usize>,
    /// Polling consumers that read the stream back from the start after the writes, one
    /// GetRecords loop per shard each (0 to skip).
    #[arg(long, default_value_t = 1)]
    pub polling_consumers: usize,
    /// Enhanced fan-out consumers that read the stream back from the start (0 to skip).
    #[arg(long, default_value_t = 1)]
    pub efo_consumers: usize,
}

#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    #[command(flatten)]
    pub common: Common,
    /// Competing consumers; a comma-separated list measures each on a fresh queue.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    pub consumers: Vec<usize>,
    /// Records loaded into each throughput run's stream and drained through its queue.
    #[arg(long, default_value_t = 5_000)]
    pub records: usize,
    /// Data bytes per record.
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,
    /// Records of the redelivery phase (0 to skip it).
    #[arg(long, default_value_t = 200)]
    pub redelivery_records: usize,
    /// Consumers of the redelivery phase.
    #[arg(long, default_value_t = 4)]
    pub redelivery_consumers: usize,
    /// Fraction of the redelivery phase's records never acknowledged.
    #[arg(long, default_value_t = 0.1)]
    pub unacked_fraction: f64,
    /// The redelivery queue's VisibilityTimeoutSeconds.
    #[arg(long, default_value_t = 2)]
    pub visibility_timeout_s: i32,
    /// The redelivery queue's MaxReceiveCount (dead-lettering after that many deliveries).
    #[arg(long, default_value_t = 3)]
    pub max_receive_count: i32,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The committed baseline (bench/baseline.json).
    #[arg(long)]
    pub baseline: PathBuf,
    /// JSON of a `limits` run.
    #[arg(long)]
    pub limits: PathBuf,
    /// JSON of a `latency` run.
    #[arg(long)]
    pub latency: PathBuf,
    /// JSON of a `throughput` run.
    #[arg(long)]
    pub throughput: PathBuf,
    /// The output of `engine-throughput` (its `raw O_DIRECT:` and `engine/raw ratio:` lines).
    #[arg(long)]
    pub engine_output: PathBuf,
    /// Write the measured ratios here, in the baseline's format (to refresh the baseline).
    #[arg(long)]
    pub write_measured: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct EndureArgs {
    /// The native-protocol address of every node, comma-separated. Calls go to the node that
    /// answered last and move on to the next when it fails.
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// The stream: created (through any node that answers) unless a node already describes it.
    /// Default: a name unique to this run. The stream is kept at the end, for a checker.
    #[arg(long)]
    pub stream: Option<String>,
    /// The stream exists already: write at once, without describing or creating it first (a
    /// writer that may reach only a cluster member cut off from the majority, which answers
    /// catalog reads InternalFailure rather than what may be stale).
    #[arg(long)]
    pub stream_exists: bool,
    /// Shards of the stream, when it is created here.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Data bytes per record (at least 24, the record's header).
    #[arg(long, default_value_t = 1024)]
    pub record_bytes: usize,
    /// Records per PutRecords call.
    #[arg(long, default_value_t = 10)]
    pub batch_records: usize,
    /// Connections, each with one PutRecords call in flight.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Seconds to write for. Default: until SIGTERM or SIGINT (or stdin's end, with
    /// `--until-stdin-closes`).
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Also stop when stdin reaches its end (a parent process that closes the pipe).
    #[arg(long)]
    pub until_stdin_closes: bool,
    /// `any`: every call to the node that answered last, moving on when it fails. `direct`:
    /// each record to its shard's leader (`sluice_client::RoutedClient`, seeded with
    /// `--endpoints`), retried through any node when the route is stale; the ack log's
    /// endpoint_index is then the endpoint whose address answered the record.
    #[arg(long, value_enum, default_value_t = Route::Any)]
    pub route: Route,
    /// How long a node may take to accept a connection or answer a call before the next node
    /// is tried: a partitioned node answers nothing.
    #[arg(long, default_value_t = 500)]
    pub call_timeout_ms: u64,
    /// How long a node that said nothing is left alone while another node is left.
    #[arg(long, default_value_t = 2_000)]
    pub silent_node_skip_ms: u64,
    /// This process's writer id, part of every record's data: give concurrent runs on one
    /// stream different ids so that their records differ.
    #[arg(long, default_value_t = 0)]
    pub writer_id: u64,
    /// Write a line per acknowledged record here (format in loadgen/src/endure.rs).
    #[arg(long)]
    pub ack_log: Option<PathBuf>,
    /// `--protocol native` over TLS, trusting this PEM CA bundle.
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// Write the summary as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}
