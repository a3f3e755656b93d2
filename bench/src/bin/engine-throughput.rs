//! Durable engine append throughput against the disk's raw O_DIRECT bandwidth, in one run.
//!
//! (a) raw: 1 MiB O_DIRECT writes at queue depth `--queue-depth` into a fresh file whose space
//!     is reserved first (fallocate, timed too), then one fdatasync: the physical limit for
//!     sequential durable writes. Reserved, because writes that extend a file go through
//!     io_uring's worker threads, and the journal reserves its segments' space too.
//! (b) engine: on each of `--cores` cores (default: all), one journal with its own producers
//!     appending batches of `--record-bytes` records to many shards, as `sluiced` runs; every
//!     append resolves only once durable (group commit). The producers share their core with
//!     the journal, as request handling does in the daemon.
//!
//! Both write `--bytes` bytes to the same directory. The last line, `engine/raw ratio: <x>`, is
//! read by scripts; it compares payload bytes (data and keys) against raw bytes.

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use glommio::io::OpenOptions;
use glommio::{LocalExecutorBuilder, Placement};
use sluice_engine::clock::SystemClock;
use sluice_engine::journal::JournalConfig;
use sluice_engine::sequence::ShardSeqPrefix;
use sluice_engine::{AppendRecord, Journal, ShardSpec};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Directory to write in (on the disk to measure). Defaults to a fresh one under ./data.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Bytes each measurement writes.
    #[arg(long, default_value_t = 2 << 30)]
    bytes: u64,
    /// Raw write: in-flight 1 MiB writes.
    #[arg(long, default_value_t = 16)]
    queue_depth: usize,
    /// Engine: size of each record's data.
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// Engine: records per append (a PutRecords call).
    #[arg(long, default_value_t = 500)]
    records_per_append: usize,
    /// Engine: concurrent producers.
    #[arg(long, default_value_t = 64)]
    producers: usize,
    /// Engine: shards the producers spread over, per core.
    #[arg(long, default_value_t = 64)]
    shards: u64,
    /// Engine: cores, each with its own journal. Default: every core.
    #[arg(long)]
    cores: Option<usize>,
    /// Engine: bytes of one batch, the unit of write. Default: the engine's default.
    #[arg(long)]
    batch_bytes: Option<usize>,
    /// Engine: most bytes of one group commit. Default: the engine's default.
    #[arg(long)]
    commit_bytes: Option<usize>,
}

const RAW_BLOCK_BYTES: usize = 1 << 20;

/// Registered, pre-faulted I/O memory: the tail cache plus batches in flight.
const IO_MEMORY_BYTES: usize = 160 << 20;

/// glommio's error carries a non-`Sync` payload; its `io::Error` form is what we report.
fn io(error: glommio::GlommioError<()>) -> std::io::Error {
    error.into()
}

struct Measured {
    bytes: u64,
    elapsed: Duration,
}

impl Measured {
    fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.elapsed.as_secs_f64()
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = args.dir.clone().unwrap_or_else(|| PathBuf::from("data"));
    std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
    let scratch = tempfile::tempdir_in(&root).context("scratch directory")?;
    let dir = scratch.path().to_path_buf();
    println!("directory: {} (removed afterwards)", dir.display());

    let cores = args.cores.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let raw_args = args.clone();
    let raw_dir = dir.clone();
    let raw = LocalExecutorBuilder::new(Placement::Fixed(0))
        .io_memory(IO_MEMORY_BYTES)
        .spawn(move || async move {
            // Prime glommio's IOPOLL probe before the first file of this executor.
            sluice_engine::journal::prime_iopoll_probe(&raw_dir).await?;
            raw_write(&raw_dir, raw_args.bytes, raw_args.queue_depth).await
        })
        .map_err(io)
        .context("spawn executor")?
        .join()
        .map_err(|error| anyhow::anyhow!("executor: {error:?}"))??;

    // Every core's journal opens first, then all start appending together.
    let barrier = Arc::new(std::sync::Barrier::new(cores));
    let executors: Vec<_> = (0..cores)
        .map(|core| {
            let (args, barrier) = (args.clone(), barrier.clone());
            let journal_dir = dir.join(format!("journal-{core}"));
            LocalExecutorBuilder::new(Placement::Fixed(core))
                .io_memory(IO_MEMORY_BYTES)
                .spawn(move || async move {
                    let mut config = JournalConfig::new(&journal_dir);
                    config.segment_bytes_max = 1 << 30;
                    config.batch_bytes_max = args.batch_bytes.unwrap_or(config.batch_bytes_max);
                    config.commit_bytes_max = args.commit_bytes.unwrap_or(config.commit_bytes_max);
                    config.pending_bytes_max = config.pending_bytes_max.max(2 * config.commit_bytes_max);
                    let journal = Journal::open(config, Arc::new(SystemClock)).await?;
                    barrier.wait();
                    let measured = engine_write(&journal, &args, args.bytes / cores as u64).await?;
                    journal.close().await?;
                    Ok::<_, anyhow::Error>(measured)
                })
                .map_err(io)
                .context("spawn executor")
        })
        .collect::<anyhow::Result<_>>()?;
    let (mut bytes, mut elapsed, mut commits) = (0, Duration::ZERO, 0);
    for executor in executors {
        let (measured, core_commits) = executor.join().map_err(|error| anyhow::anyhow!("executor: {error:?}"))??;
        bytes += measured.bytes;
        elapsed = elapsed.max(measured.elapsed);
        commits += core_commits;
    }
    let engine = Measured { bytes, elapsed };

    println!(
        "raw O_DIRECT:  {:>8.0} MiB/s  ({} MiB in 1 MiB writes, queue depth {}, then fdatasync)",
        raw.mib_per_s(),
        raw.bytes >> 20,
        args.queue_depth
    );
    let records = engine.bytes / (args.record_bytes as u64 + 8);
    println!(
        "engine:        {:>8.0} MiB/s  {:>10.0} records/s  ({} B records, {} per append, {} producers and {} shards per core, {} cores, {} group commits)",
        engine.mib_per_s(),
        records as f64 / engine.elapsed.as_secs_f64(),
        args.record_bytes,
        args.records_per_append,
        args.producers,
        args.shards,
        cores,
        commits
    );
    println!("engine/raw ratio: {:.3}", engine.mib_per_s() / raw.mib_per_s());
    Ok(())
}

async fn raw_write(dir: &std::path::Path, bytes: u64, queue_depth: usize) -> anyhow::Result<Measured> {
    let path = dir.join("raw");
    let file = Rc::new(OpenOptions::new().read(true).write(true).create(true).dma_open(&path).await.map_err(io)?);
    let blocks = bytes / RAW_BLOCK_BYTES as u64;
    let next = Rc::new(std::cell::Cell::new(0u64));
    let start = Instant::now();
    file.pre_allocate(blocks * RAW_BLOCK_BYTES as u64, false).await.map_err(io)?;
    let writers: Vec<_> = (0..queue_depth)
        .map(|_| {
            let (file, next) = (file.clone(), next.clone());
            glommio::spawn_local(async move {
                let mut buffer = file.alloc_dma_buffer(RAW_BLOCK_BYTES);
                buffer.as_bytes_mut().fill(0x5A);
                let buffer = Rc::new(buffer);
                loop {
                    let block = next.get();
                    if block >= blocks {
                        return Ok::<_, anyhow::Error>(());
                    }
                    next.set(block + 1);
                    file.write_rc_at(buffer.clone(), block * RAW_BLOCK_BYTES as u64).await.map_err(io)?;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await?;
    }
    file.fdatasync().await.map_err(io)?;
    let elapsed = start.elapsed();
    file.remove().await.map_err(io)?;
    Ok(Measured { bytes: blocks * RAW_BLOCK_BYTES as u64, elapsed })
}

async fn engine_write(journal: &Journal, args: &Args, bytes: u64) -> anyhow::Result<(Measured, u64)> {
    for uid in 1..=args.shards {
        journal.register_shard(ShardSpec {
            uid,
            seq_prefix: ShardSeqPrefix::new(1, uid as u32),
            retention_ms: 24 * 3_600_000,
        });
    }
    let key = Bytes::from_static(b"partition"); // 9 bytes: record payload is data + key
    let data = Bytes::from(vec![0xA5u8; args.record_bytes]);
    let payload_per_append = ((data.len() + key.len() - 1) * args.records_per_append) as u64;
    let appends = bytes / payload_per_append;
    let next = Rc::new(std::cell::Cell::new(0u64));
    let commits_before = journal.stats().commits;
    let start = Instant::now();
    let producers: Vec<_> = (0..args.producers)
        .map(|_| {
            let (journal, next, key, data) = (journal.clone(), next.clone(), key.clone(), data.clone());
            let (records_per_append, shards) = (args.records_per_append, args.shards);
            glommio::spawn_local(async move {
                loop {
                    let append = next.get();
                    if append >= appends {
                        return Ok::<_, anyhow::Error>(());
                    }
                    next.set(append + 1);
                    let shard_uid = 1 + append % shards;
                    let records = (0..records_per_append)
                        .map(|_| AppendRecord {
                            shard_uid,
                            partition_key: key.clone(),
                            data: data.clone(),
                            sealed: false,
                        })
                        .collect();
                    journal.append(records).await?;
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await?;
    }
    let elapsed = start.elapsed();
    let commits = journal.stats().commits - commits_before;
    Ok((Measured { bytes: appends * payload_per_append, elapsed }, commits))
}
