//! The client side of `bench/scale/run.sh`: many streams of many shards on one `sluiced`, over
//! the native protocol (issue 19, "Scale").
//!
//! - `create`: CreateStream for `--streams` streams of `--shards` shards, `--concurrency` calls
//!   at a time; prints the total time and each call's latency (p50, p99, max, and the median
//!   of the first and the last hundred calls, which shows a create path that grows with the
//!   catalog).
//! - `write`: one PutRecords per stream putting `--records-per-shard` records into every shard
//!   (explicit hash keys at each shard's start), so that every shard has been written.
//! - `read`: waits for the daemon (connecting until `--wait-s`), then reads every shard from
//!   TRIM_HORIZON and checks it holds at least `--expect-per-shard` records; prints the time
//!   from `--since-ms` (a Unix time in milliseconds, e.g. when the daemon was started) to the
//!   first answered read and to the last shard read.
//! - `fill`: PutRecords of `--record-bytes` records, 500 per call, spread over every shard of
//!   every stream, until `--bytes` were acknowledged (the data directory for the recovery
//!   measurement).
//!
//! Every figure is printed as one `key=value` line for the script to collect.

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use glommio::{LocalExecutorBuilder, Placement};
use sluice_client::{
    Client, CreateStreamInput, GetRecordsInput, GetShardIteratorInput, HashKey, ListShardsInput, PutRecordsInput,
    PutRecordsRequestEntry, ShardId, ShardIteratorType,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser, Debug, Clone)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:4568")]
    endpoint: String,
    /// Stream names are this prefix and a five-digit number.
    #[arg(long, default_value = "scale-")]
    prefix: String,
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// Calls in flight at once (one connection each).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug, Clone)]
enum Command {
    Create {
        #[arg(long, default_value_t = 10)]
        shards: i32,
    },
    Write {
        #[arg(long, default_value_t = 1)]
        records_per_shard: usize,
        #[arg(long, default_value_t = 100)]
        record_bytes: usize,
    },
    Read {
        #[arg(long, default_value_t = 1)]
        expect_per_shard: usize,
        /// Unix time in ms the figures are measured from; default: this program's start.
        #[arg(long)]
        since_ms: Option<u64>,
        /// How long to keep trying to connect.
        #[arg(long, default_value_t = 120)]
        wait_s: u64,
    },
    Fill {
        #[arg(long)]
        bytes: u64,
        #[arg(long, default_value_t = 1024)]
        record_bytes: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(move || async move { run(args).await })
        .map_err(|error| anyhow::anyhow!("{error}"))?
        .join()
        .map_err(|error| anyhow::anyhow!("{error:?}"))?
}

async fn run(args: Args) -> anyhow::Result<()> {
    match args.command.clone() {
        Command::Create { shards } => create(&args, shards).await,
        Command::Write { records_per_shard, record_bytes } => write(&args, records_per_shard, record_bytes).await,
        Command::Read { expect_per_shard, since_ms, wait_s } => {
            read(&args, expect_per_shard, since_ms.unwrap_or_else(unix_ms), wait_s).await
        }
        Command::Fill { bytes, record_bytes } => fill(&args, bytes, record_bytes).await,
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

fn stream_name(args: &Args, stream: usize) -> String {
    format!("{}{stream:05}", args.prefix)
}

/// Runs `work(client, item)` for every item of `0..count`, `concurrency` at a time, each
/// worker on a connection of its own.
async fn for_each<F, Fut>(args: &Args, count: usize, work: F) -> anyhow::Result<()>
where
    F: Fn(Client, usize) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + 'static,
{
    let next = Rc::new(Cell::new(0usize));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let client = Client::connect(&args.endpoint).await.context("connect")?;
        let (next, work) = (next.clone(), work.clone());
        workers.push(glommio::spawn_local(async move {
            loop {
                let item = next.get();
                if item >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                next.set(item + 1);
                work(client.clone(), item).await?;
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn median_of(latencies: &[f64]) -> f64 {
    let mut sorted = latencies.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 0.5)
}

async fn create(args: &Args, shards: i32) -> anyhow::Result<()> {
    let latencies_ms = Rc::new(RefCell::new(vec![0.0f64; args.streams]));
    let started = Instant::now();
    let (names, latencies) = (args.clone(), latencies_ms.clone());
    for_each(args, args.streams, move |client, stream| {
        let (name, latencies) = (stream_name(&names, stream), latencies.clone());
        async move {
            let call = Instant::now();
            let request =
                CreateStreamInput { stream_name: name.clone(), shard_count: Some(shards), ..Default::default() };
            client.call(&request).await.with_context(|| format!("CreateStream {name}"))?;
            latencies.borrow_mut()[stream] = call.elapsed().as_secs_f64() * 1e3;
            Ok(())
        }
    })
    .await?;
    let total_s = started.elapsed().as_secs_f64();
    let latencies = latencies_ms.borrow();
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let edge = latencies.len().min(100);
    println!("create_streams={}", args.streams);
    println!("create_shards_per_stream={shards}");
    println!("create_concurrency={}", args.concurrency);
    println!("create_total_s={total_s:.2}");
    println!("create_p50_ms={:.2}", percentile(&sorted, 0.5));
    println!("create_p99_ms={:.2}", percentile(&sorted, 0.99));
    println!("create_max_ms={:.2}", percentile(&sorted, 1.0));
    println!("create_first100_p50_ms={:.2}", median_of(&latencies[..edge]));
    println!("create_last100_p50_ms={:.2}", median_of(&latencies[latencies.len() - edge..]));
    Ok(())
}

/// Every shard of `stream`, as (shard id, starting hash key), from ListShards.
async fn shards_of(client: &Client, stream: &str) -> anyhow::Result<Vec<(ShardId, HashKey)>> {
    let mut shards = Vec::new();
    let mut next_token = None;
    loop {
        let request = match next_token.take() {
            Some(token) => ListShardsInput { next_token: Some(token), ..Default::default() },
            None => ListShardsInput { stream_name: Some(stream.to_owned()), ..Default::default() },
        };
        let page = client.call(&request).await.with_context(|| format!("ListShards {stream}"))?;
        shards.extend(page.shards.into_iter().map(|shard| (shard.shard_id, shard.hash_key_range.starting_hash_key)));
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => return Ok(shards),
        }
    }
}

async fn write(args: &Args, records_per_shard: usize, record_bytes: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let names = args.clone();
    let data = Bytes::from(vec![0x5Au8; record_bytes]);
    let written = Rc::new(Cell::new(0usize));
    let counted = written.clone();
    for_each(args, args.streams, move |client, stream| {
        let (name, data, counted) = (stream_name(&names, stream), data.clone(), counted.clone());
        async move {
            let shards = shards_of(&client, &name).await?;
            let records: Vec<PutRecordsRequestEntry> = shards
                .iter()
                .flat_map(|(_, start)| {
                    (0..records_per_shard).map(|_| PutRecordsRequestEntry {
                        data: data.clone(),
                        partition_key: Some("k".to_owned()),
                        explicit_hash_key: Some(*start),
                    })
                })
                .collect();
            let request = PutRecordsInput { stream_name: Some(name.clone()), records, ..Default::default() };
            let answer = client.call(&request).await.with_context(|| format!("PutRecords {name}"))?;
            if answer.failed_record_count.unwrap_or(0) > 0 {
                bail!("PutRecords {name}: {} records failed", answer.failed_record_count.unwrap_or(0));
            }
            counted.set(counted.get() + answer.records.len());
            Ok(())
        }
    })
    .await?;
    println!("write_records={}", written.get());
    println!("write_total_s={:.2}", started.elapsed().as_secs_f64());
    Ok(())
}

async fn read(args: &Args, expect_per_shard: usize, since_ms: u64, wait_s: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(wait_s);
    // The first connection succeeds once the daemon listens, which it does once every core
    // has recovered its journal.
    let client = loop {
        match Client::connect(&args.endpoint).await {
            Ok(client) => break client,
            Err(_) if Instant::now() < deadline => glommio::timer::sleep(Duration::from_millis(5)).await,
            Err(error) => return Err(error).context("connect"),
        }
    };
    let connected_ms = unix_ms().saturating_sub(since_ms);
    let first = stream_name(args, 0);
    read_stream(&client, &first, expect_per_shard).await?;
    let first_read_ms = unix_ms().saturating_sub(since_ms);
    let names = args.clone();
    let shards_read = Rc::new(Cell::new(0usize));
    let counted = shards_read.clone();
    for_each(args, args.streams, move |client, stream| {
        let (name, counted) = (stream_name(&names, stream), counted.clone());
        async move {
            // Awaited before the sum is read: other workers add to it meanwhile.
            let read = read_stream(&client, &name, expect_per_shard).await?;
            counted.set(counted.get() + read);
            Ok(())
        }
    })
    .await?;
    println!("read_connected_ms={connected_ms}");
    println!("read_first_stream_ms={first_read_ms}");
    println!("read_all_shards_ms={}", unix_ms().saturating_sub(since_ms));
    println!("read_shards={}", shards_read.get());
    Ok(())
}

/// Reads every shard of `stream` from TRIM_HORIZON; fails unless each holds at least
/// `expect_per_shard` records. Returns how many shards it read.
async fn read_stream(client: &Client, stream: &str, expect_per_shard: usize) -> anyhow::Result<usize> {
    let shards = shards_of(client, stream).await?;
    for (shard_id, _) in &shards {
        let request = GetShardIteratorInput {
            stream_name: Some(stream.to_owned()),
            shard_id: shard_id.clone(),
            shard_iterator_type: ShardIteratorType::TrimHorizon,
            starting_sequence_number: None,
            timestamp: None,
            stream_arn: None,
        };
        let iterator = client.call(&request).await.with_context(|| format!("GetShardIterator {stream}/{shard_id}"))?;
        let iterator = iterator.shard_iterator.context("no iterator")?;
        // Only the records asked for: the figure is when every shard serves, not how fast
        // the whole data directory reads back.
        let limit = Some(i32::try_from(expect_per_shard.max(1)).unwrap_or(i32::MAX));
        let request = GetRecordsInput { shard_iterator: iterator, limit, ..Default::default() };
        let batch = client.call(&request).await.with_context(|| format!("GetRecords {stream}/{shard_id}"))?;
        if batch.records.len() < expect_per_shard {
            bail!("{stream}/{shard_id}: {} records, expected at least {expect_per_shard}", batch.records.len());
        }
    }
    Ok(shards.len())
}

async fn fill(args: &Args, bytes: u64, record_bytes: usize) -> anyhow::Result<()> {
    const RECORDS_PER_CALL: usize = 500;
    let call_bytes = (RECORDS_PER_CALL * record_bytes) as u64;
    let calls = bytes.div_ceil(call_bytes) as usize;
    let started = Instant::now();
    let names = args.clone();
    let data = Bytes::from(vec![0xA5u8; record_bytes]);
    for_each(args, calls, move |client, call| {
        let (name, data) = (stream_name(&names, call % names.streams), data.clone());
        async move {
            // Keys differ per call, so each call spreads over every shard of its stream.
            let records = (0..RECORDS_PER_CALL)
                .map(|i| PutRecordsRequestEntry {
                    data: data.clone(),
                    partition_key: Some(format!("{call}-{i}")),
                    explicit_hash_key: None,
                })
                .collect();
            let request = PutRecordsInput { stream_name: Some(name.clone()), records, ..Default::default() };
            let answer = client.call(&request).await.with_context(|| format!("PutRecords {name}"))?;
            if answer.failed_record_count.unwrap_or(0) > 0 {
                bail!("PutRecords {name}: {} records failed", answer.failed_record_count.unwrap_or(0));
            }
            Ok(())
        }
    })
    .await?;
    let elapsed_s = started.elapsed().as_secs_f64();
    println!("fill_bytes={}", calls as u64 * call_bytes);
    println!("fill_total_s={elapsed_s:.2}");
    println!("fill_mb_per_s={:.1}", calls as f64 * call_bytes as f64 / 1e6 / elapsed_s);
    Ok(())
}
