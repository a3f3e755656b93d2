//! `sluice-firehose`: runs the delivery engine outside sluiced.
//!
//! - `deliver`: delivers the newline-separated records of a file with a delivery stream
//!   configuration (the JSON of a `CreateDeliveryStream` request), checkpointing the byte offset
//!   up to which everything is delivered, and resuming from it when started again. This is the
//!   crash test's subject (SIGKILL it anywhere, start it again) and a way to push a file into a
//!   bucket.
//! - `bench`: delivered MB/s per compression and for Parquet conversion from an in-memory
//!   source, against a plain copy of the same bytes to disk in the same run.
//!
//! Buckets are mapped with `--bucket NAME=DIR` (a directory) or `--s3 NAME=URL` (an
//! S3-compatible endpoint; credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).

use std::io::{BufRead, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use sluice_firehose::config::CreateDeliveryStreamInput;
use sluice_firehose::plan::{DeliveryPlan, EngineOptions, Environment};
use sluice_firehose::store::{Buckets, S3Endpoint};
use sluice_firehose::transform::{Function, Functions};
use sluice_firehose::{Position, SourceRecord};

#[derive(Parser)]
#[command(about = "Run Sluice's delivery engine outside sluiced")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Targets {
    /// Map bucket NAME to a directory: NAME=DIR (repeatable).
    #[arg(long = "bucket")]
    buckets: Vec<String>,
    /// Map bucket NAME to an S3-compatible endpoint: NAME=URL (repeatable).
    #[arg(long = "s3")]
    s3: Vec<String>,
    /// Map a Lambda function name to a command: NAME=PROGRAM (run with no arguments).
    #[arg(long = "function")]
    functions: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Deliver the records of a file, resuming from the checkpoint.
    Deliver {
        /// The CreateDeliveryStream request (JSON).
        #[arg(long)]
        config: PathBuf,
        /// Newline-separated records.
        #[arg(long)]
        input: PathBuf,
        /// Where the delivered offset is kept.
        #[arg(long)]
        checkpoint: PathBuf,
        #[command(flatten)]
        targets: Targets,
    },
    /// Measure delivery throughput from memory.
    Bench {
        /// MiB of JSON records per run.
        #[arg(long, default_value_t = 64)]
        mib: usize,
        /// Pairs of (plain copy, delivery) runs per configuration.
        #[arg(long, default_value_t = 5)]
        pairs: usize,
        /// Directory the local-directory destination and the plain copy write to.
        #[arg(long)]
        dir: PathBuf,
        /// Also deliver to this S3-compatible endpoint's bucket `bench` (must exist).
        #[arg(long)]
        s3_endpoint: Option<String>,
        /// Only these configurations (GZIP, ZIP, Snappy, HADOOP_SNAPPY, ZSTD, UNCOMPRESSED, PARQUET).
        #[arg(long)]
        only: Vec<String>,
    },
}

fn environment(targets: &Targets) -> Result<Environment> {
    let mut buckets = Buckets::new();
    for b in &targets.buckets {
        let (name, dir) = b.split_once('=').context("--bucket takes NAME=DIR")?;
        buckets.insert_directory(name, dir);
    }
    for s in &targets.s3 {
        let (name, url) = s.split_once('=').context("--s3 takes NAME=URL")?;
        buckets.insert_s3(name, &s3_endpoint(url))?;
    }
    let mut functions = Functions::new();
    for f in &targets.functions {
        let (name, program) = f.split_once('=').context("--function takes NAME=PROGRAM")?;
        functions.insert(name, Function::Command { argv: vec![program.to_string()] });
    }
    Ok(Environment {
        buckets,
        functions,
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        options: EngineOptions::default(),
        glue: None,
    })
}

fn s3_endpoint(url: &str) -> S3Endpoint {
    S3Endpoint {
        url: url.to_string(),
        region: std::env::var("AWS_DEFAULT_REGION").unwrap_or_else(|_| "us-east-1".into()),
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "sluice".into()),
        secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "sluice".into()),
    }
}

/// Writes `offset` to `path` so that a crash leaves either the old or the new value.
fn write_checkpoint(path: &Path, offset: u64) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let mut f = std::fs::File::create(&temporary)?;
    f.write_all(offset.to_string().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(if dir.as_os_str().is_empty() { Path::new(".") } else { dir })?.sync_all()?;
    }
    Ok(())
}

fn read_checkpoint(path: &Path) -> Result<u64> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s.trim().parse().context("the checkpoint is not a number")?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e.into()),
    }
}

async fn deliver(config: PathBuf, input: PathBuf, checkpoint: PathBuf, targets: Targets) -> Result<()> {
    let request: CreateDeliveryStreamInput =
        serde_json::from_slice(&std::fs::read(&config)?).context("reading the configuration")?;
    let plan = DeliveryPlan::from_create(&request, 1, &environment(&targets)?)?;
    let start = read_checkpoint(&checkpoint)?;
    let (mut handle, durable) = sluice_firehose::spawn_checkpointed(plan);
    let records = handle.records.clone();
    drop(handle.records);
    // The reader: one record per line, its position the offset just after it.
    let reader = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut file = std::fs::File::open(&input)?;
        file.seek(SeekFrom::Start(start))?;
        let mut reader = std::io::BufReader::new(file);
        let mut offset = start;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                return Ok(());
            }
            offset += n as u64;
            let record = SourceRecord {
                lane: 0,
                position: Position(Bytes::copy_from_slice(&offset.to_be_bytes())),
                arrival_ms: chrono::Utc::now().timestamp_millis(),
                data: Bytes::copy_from_slice(&line),
            };
            if records.blocking_send(record).is_err() {
                bail!("the engine stopped");
            }
        }
    });
    let mut last = start;
    loop {
        let changed = handle.progress.changed().await;
        let progress = handle.progress.borrow_and_update().clone();
        if let Some(Position(p)) = progress.lanes.get(&0) {
            let offset = u64::from_be_bytes(p[..8].try_into().context("position")?);
            if offset != last {
                write_checkpoint(&checkpoint, offset)?;
                last = offset;
            }
        }
        // Written (and fsynced) above, or nothing new to write: the engine may deliver on.
        durable.report(&progress);
        if changed.is_err() {
            break;
        }
    }
    reader.await??;
    (&mut handle.task).await?;
    Ok(())
}

/// Records for the benchmark: JSON lines of the kind delivery streams carry (clickstream-like,
/// with repeated keys and varied values, so compressors see realistic redundancy).
fn bench_records(mib: usize) -> Vec<Bytes> {
    let pages = ["/", "/cart", "/checkout", "/product/1234", "/search?q=boots", "/account"];
    let agents = ["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)", "curl/8.5.0"];
    let mut out = Vec::new();
    let mut total = 0;
    let mut i: u64 = 0;
    while total < mib << 20 {
        let line = format!(
            "{{\"event_id\":{i},\"customer_id\":\"c-{:06}\",\"page\":\"{}\",\"agent\":\"{}\",\"latency_ms\":{},\"ok\":{},\"ts\":\"2026-01-01T{:02}:{:02}:{:02}Z\",\"score\":{}.{}}}\n",
            (i * 7919) % 100_000,
            pages[(i % 6) as usize],
            agents[(i % 3) as usize],
            (i * 31) % 900,
            !i.is_multiple_of(17),
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60,
            i % 1000,
            (i * 13) % 100
        );
        total += line.len();
        out.push(Bytes::from(line));
        i += 1;
    }
    out
}

fn bench_config(format: &str, bucket: &str) -> CreateDeliveryStreamInput {
    let parquet = format == "PARQUET";
    let mut e = serde_json::json!({
        "RoleARN": "arn:aws:iam::000000000000:role/bench",
        "BucketARN": format!("arn:aws:s3:::{bucket}"),
        "Prefix": format!("{format}/"),
        "BufferingHints": {"SizeInMBs": if parquet { 64 } else { 8 }, "IntervalInSeconds": 900},
        "CompressionFormat": if parquet { "UNCOMPRESSED" } else { format },
    });
    if parquet {
        e["DataFormatConversionConfiguration"] = serde_json::json!({
            "Enabled": true,
            "SchemaConfiguration": {"SluiceColumns": [
                {"Name": "event_id", "Type": "bigint"}, {"Name": "customer_id", "Type": "string"},
                {"Name": "page", "Type": "string"}, {"Name": "agent", "Type": "string"},
                {"Name": "latency_ms", "Type": "int"}, {"Name": "ok", "Type": "boolean"},
                {"Name": "ts", "Type": "timestamp"}, {"Name": "score", "Type": "double"}]},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}}
        });
    }
    serde_json::from_value(serde_json::json!({
        "DeliveryStreamName": "bench",
        "ExtendedS3DestinationConfiguration": e,
    }))
    .expect("bench configuration")
}

/// ZSTD exists only for channels: bench it through a channel plan.
fn bench_plan(format: &str, bucket: &str, env: &Environment) -> Result<DeliveryPlan> {
    if format == "ZSTD" {
        let input: sluice_firehose::channel::CreateChannelInput = serde_json::from_value(serde_json::json!({
            "ChannelName": "bench",
            "ServiceExecutionRoleARN": "arn:aws:iam::000000000000:role/bench",
            "StreamConfigurationList": [{"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "RecordConfiguration": {"RecordFormatType": "JSON"}}],
            "S3DestinationConfiguration": {"StorageConfiguration": {
                "BucketARN": format!("arn:aws:s3:::{bucket}"), "ExpectedBucketOwner": "000000000000",
                "CompressionType": "ZSTD", "OutputKeyTemplate": "ZSTD/"}}
        }))?;
        let mut plan = sluice_firehose::channel::plan(&input, env, Some(Duration::from_secs(900)))?;
        if let sluice_firehose::plan::Destination::S3(s3) = &mut plan.destination {
            s3.main.buffer.size_bytes = 8 << 20;
        }
        return Ok(plan);
    }
    Ok(DeliveryPlan::from_create(&bench_config(format, bucket), 1, env)?)
}

/// Delivers `records` and returns the seconds until everything was reported done.
async fn bench_once(plan: DeliveryPlan, records: &[Bytes]) -> Result<f64> {
    let started = Instant::now();
    let mut handle = sluice_firehose::spawn(plan);
    let sender = handle.records.clone();
    drop(handle.records);
    for (i, data) in records.iter().enumerate() {
        let record = SourceRecord {
            lane: 0,
            position: Position(Bytes::copy_from_slice(&(i as u64).to_be_bytes())),
            arrival_ms: 0,
            data: data.clone(),
        };
        sender.send(record).await.map_err(|_| anyhow::anyhow!("the engine stopped"))?;
    }
    drop(sender);
    (&mut handle.task).await?;
    let done = handle.progress.borrow().records_done;
    if done != records.len() as u64 {
        bail!("only {done} of {} records were reported done", records.len());
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The baseline: the same bytes written to disk in 8 MiB files, each fsynced (what the
/// directory destination does per object, without buffering, compression or naming).
fn plain_copy(dir: &Path, records: &[Bytes]) -> Result<f64> {
    let started = Instant::now();
    let mut file_index = 0;
    let mut chunk = Vec::with_capacity(8 << 20);
    let mut flush = |chunk: &mut Vec<u8>| -> Result<()> {
        let path = dir.join(format!("copy-{file_index}"));
        file_index += 1;
        let mut f = std::fs::File::create(&path)?;
        f.write_all(chunk)?;
        f.sync_data()?;
        chunk.clear();
        Ok(())
    };
    for r in records {
        chunk.extend_from_slice(r);
        if chunk.len() >= 8 << 20 {
            flush(&mut chunk)?;
        }
    }
    if !chunk.is_empty() {
        flush(&mut chunk)?;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

async fn bench(mib: usize, pairs: usize, dir: PathBuf, s3: Option<String>, only: Vec<String>) -> Result<()> {
    let records = bench_records(mib);
    let bytes: usize = records.iter().map(|r| r.len()).sum();
    let mb = bytes as f64 / 1e6;
    println!("records: {} ({:.1} MB of JSON lines), {pairs} pairs per configuration", records.len(), mb);
    println!("{:<14} {:<6} {:>10} {:>10} {:>12}", "format", "dest", "MB/s", "copy MB/s", "ratio (med)");
    let formats = ["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY", "ZSTD", "PARQUET"];
    for format in formats.iter().filter(|f| only.is_empty() || only.iter().any(|o| o == *f)) {
        for destination in ["dir", "s3"] {
            if destination == "s3" && s3.is_none() {
                continue;
            }
            let mut rates = Vec::new();
            let mut copies = Vec::new();
            let mut ratios = Vec::new();
            for pair in 0..pairs {
                let run_dir = dir.join(format!("{format}-{destination}-{pair}"));
                std::fs::create_dir_all(&run_dir)?;
                let copy_s = plain_copy(&run_dir, &records)?;
                let mut env = environment(&Targets { buckets: vec![], s3: vec![], functions: vec![] })?;
                match destination {
                    "dir" => env.buckets.insert_directory("bench", run_dir.join("bucket")),
                    _ => env.buckets.insert_s3("bench", &s3_endpoint(s3.as_deref().expect("checked")))?,
                }
                let plan = bench_plan(format, "bench", &env)?;
                let deliver_s = bench_once(plan, &records).await?;
                rates.push(mb / deliver_s);
                copies.push(mb / copy_s);
                ratios.push(copy_s / deliver_s);
                std::fs::remove_dir_all(&run_dir)?;
            }
            println!(
                "{:<14} {:<6} {:>10.1} {:>10.1} {:>12.3}",
                format,
                destination,
                median(&mut rates),
                median(&mut copies),
                median(&mut ratios)
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // Delivery runs on a small runtime of its own, as inside sluiced.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    match cli.command {
        Command::Deliver { config, input, checkpoint, targets } => {
            runtime.block_on(deliver(config, input, checkpoint, targets))
        }
        Command::Bench { mib, pairs, dir, s3_endpoint, only } => {
            runtime.block_on(bench(mib, pairs, dir, s3_endpoint, only))
        }
    }
}
