//! What the run index costs (issue 19, "the run index kept bounded for long retention"): the
//! heap the journal holds after many small group commits across many sealed segments, and the
//! cost of reads that land in old (sealed) segments.
//!
//! One journal on one core, on a real directory (O_DIRECT, fdatasync per commit). Each of
//! `--commits` group commits carries one record for each of `--shards` shards, so the index
//! receives `commits × shards` runs: as many as one shard taking one record per commit for
//! that many commits. The tail cache is off, so the heap counted is the journal's state.
//! Then:
//! - probes: for records spread over the sealed segments (one per probe, far apart), a read
//!   of one record, then the same read again: the first read that lands in a segment, then a
//!   read that finds whatever the first one loaded;
//! - a sequential pass: shard 0 read from its first record to its tip, 100 records a call
//!   (a consumer catching up through old segments).
//!
//! Uses only the journal's public API as it was before issue 19's change, so the same source
//! builds against both engines for an A/B comparison (`bench/results/2026-12-02-run-index/`).

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use glommio::LocalExecutorBuilder;
use sluice_engine::clock::SystemClock;
use sluice_engine::journal::JournalConfig;
use sluice_engine::sequence::ShardSeqPrefix;
use sluice_engine::{AppendRecord, Journal, ShardSpec};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The system allocator, counting the bytes live in the process.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; counting is one atomic add.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Directory to write in (a disk that supports O_DIRECT, not tmpfs); a fresh one under it.
    #[arg(long, default_value = "target/run-index")]
    dir: PathBuf,
    /// Shards written by every commit (one record each).
    #[arg(long, default_value_t = 100)]
    shards: u64,
    /// Group commits.
    #[arg(long, default_value_t = 10_000)]
    commits: u64,
    /// Segment size: small, so that the commits fill many sealed segments.
    #[arg(long, default_value_t = 1 << 20)]
    segment_bytes: u64,
    /// Reads landing in old segments, each a record `--probe-stride` records after the last.
    #[arg(long, default_value_t = 20)]
    probes: u64,
    #[arg(long, default_value_t = 400)]
    probe_stride: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    let dir = tempfile::tempdir_in(&args.dir).context("temporary directory")?;
    let path = dir.path().join("journal-0");
    let handle = LocalExecutorBuilder::default()
        .name("run-index")
        .spawn(move || async move { run(args, path).await })
        .map_err(|error| anyhow::anyhow!("spawn executor: {error:?}"))?;
    handle.join().map_err(|_| anyhow::anyhow!("the executor panicked"))?
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

async fn run(args: Args, path: PathBuf) -> anyhow::Result<()> {
    let mut config = JournalConfig::new(&path);
    config.segment_bytes_max = args.segment_bytes;
    config.tail_cache_bytes_max = 0;
    let journal = Journal::open(config, Arc::new(SystemClock)).await?;
    for uid in 1..=args.shards {
        journal.register_shard(ShardSpec {
            uid,
            seq_prefix: ShardSeqPrefix::new(1_700_000_000, uid as u32),
            retention_ms: i64::MAX / 2,
        });
    }
    let heap_before = LIVE_BYTES.load(Ordering::Relaxed);
    let started = Instant::now();
    for _ in 0..args.commits {
        let records = (1..=args.shards)
            .map(|uid| AppendRecord {
                shard_uid: uid,
                partition_key: Bytes::from_static(b"k"),
                data: Bytes::from_static(&[0x5A; 16]),
                sealed: false,
            })
            .collect();
        journal.append(records).await?;
    }
    let write_s = started.elapsed().as_secs_f64();
    let heap = LIVE_BYTES.load(Ordering::Relaxed) - heap_before;
    let runs = args.commits * args.shards;
    println!("commits: {} x {} shards = {runs} runs in {write_s:.1} s", args.commits, args.shards);
    println!("segments: {}", journal.segment_count());
    println!("heap after commits: {heap} B ({:.1} B per run)", heap as f64 / runs as f64);

    // Reads landing in old segments: the first, then the same again.
    let (mut first, mut again) = (Vec::new(), Vec::new());
    for probe in 0..args.probes {
        let index = 1 + probe * args.probe_stride;
        if index >= args.commits {
            break;
        }
        for times in [&mut first, &mut again] {
            let start = Instant::now();
            let batch = journal.read(1, index, 1, usize::MAX).await?;
            times.push(start.elapsed());
            anyhow::ensure!(batch.records.len() == 1, "probe at {index} read {} records", batch.records.len());
        }
    }
    println!("probe reads: {}", first.len());
    println!("first read in an old segment: median {:.1} us", median(&mut first).as_secs_f64() * 1e6);
    println!("same read again: median {:.1} us", median(&mut again).as_secs_f64() * 1e6);

    // A consumer catching up from the first record.
    let start = Instant::now();
    let (mut from, mut calls) = (1u64, 0u64);
    loop {
        let batch = journal.read(1, from, 100, usize::MAX).await?;
        if batch.records.is_empty() {
            break;
        }
        calls += 1;
        from = batch.next_index;
    }
    let scan = start.elapsed();
    anyhow::ensure!(from == args.commits + 1, "the pass ended at {from}");
    println!(
        "sequential pass: {calls} reads of 100 records in {:.1} ms ({:.1} us per read)",
        scan.as_secs_f64() * 1e3,
        scan.as_secs_f64() * 1e6 / calls as f64
    );
    println!("heap after reads: {} B", LIVE_BYTES.load(Ordering::Relaxed) - heap_before);
    journal.close().await?;
    Ok(())
}
