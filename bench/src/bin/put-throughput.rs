//! PutRecords throughput against a running `sluiced` over the native protocol.
//!
//! Start the daemon without quotas, create nothing (this program creates its stream), then:
//!
//! ```sh
//! cargo run --release -p sluice-server --bin sluiced -- --limits unlimited --data-dir /tmp/sluice-bench
//! cargo run --release -p bench --bin put-throughput -- --endpoint 127.0.0.1:4568
//! ```
//!
//! Each of `--connections` connections (spread over `--client-cores` executors) keeps
//! `--in-flight` PutRecords requests of `--records-per-call` records pipelined. Every record
//! counted was acknowledged, so it is durable. Prints MB/s and records/s of payload.

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use glommio::{LocalExecutorBuilder, Placement};
use sluice_client::{Client, CreateStreamInput, ErrorKind, PutRecordsInput, PutRecordsRequestEntry};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:4568")]
    endpoint: String,
    #[arg(long, default_value = "put-throughput")]
    stream: String,
    #[arg(long, default_value_t = 8)]
    shards: i32,
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    #[arg(long, default_value_t = 500)]
    records_per_call: usize,
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Executors running connections (the daemon shares the machine).
    #[arg(long, default_value_t = 1)]
    client_cores: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let setup = args.clone();
    LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(move || async move {
            let client = Client::connect(&setup.endpoint).await?;
            let request = CreateStreamInput {
                stream_name: setup.stream.clone(),
                shard_count: Some(setup.shards),
                ..Default::default()
            };
            match client.call(&request).await {
                Ok(_) => Ok(()),
                Err(error) if error.code() == Some(ErrorKind::ResourceInUse) => Ok(()),
                Err(error) => Err(anyhow::Error::from(error)),
            }
        })
        .map_err(|error| anyhow::anyhow!("{error}"))?
        .join()
        .map_err(|error| anyhow::anyhow!("{error:?}"))??;

    let records = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.duration_s);
    let started = Instant::now();
    let executors: Vec<_> = (0..args.client_cores)
        .map(|core| {
            let (args, records, failed) = (args.clone(), records.clone(), failed.clone());
            LocalExecutorBuilder::new(Placement::Unbound)
                .spawn(move || async move { drive(core, args, deadline, records, failed).await })
                .map_err(|error| anyhow::anyhow!("{error}"))
        })
        .collect::<anyhow::Result<_>>()?;
    for executor in executors {
        executor.join().map_err(|error| anyhow::anyhow!("{error:?}"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let records = records.load(Ordering::Relaxed);
    let payload = records * (args.record_bytes as u64 + 8);
    println!(
        "PutRecords: {:.1} MB/s ({:.1} MiB/s), {:.0} records/s of {} B records, {} failed records, {} connections x {} in flight x {} records per call, {:.1} s",
        payload as f64 / 1e6 / elapsed,
        payload as f64 / (1 << 20) as f64 / elapsed,
        records as f64 / elapsed,
        args.record_bytes,
        failed.load(Ordering::Relaxed),
        args.connections,
        args.in_flight,
        args.records_per_call,
        elapsed
    );
    Ok(())
}

async fn drive(
    core: usize,
    args: Args,
    deadline: Instant,
    records: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let data = Bytes::from(vec![0x5Au8; args.record_bytes]);
    let mut tasks = Vec::new();
    for connection in (0..args.connections).filter(|c| c % args.client_cores == core) {
        let client = Client::connect(&args.endpoint).await.context("connect")?;
        for slot in 0..args.in_flight {
            let (client, args, data, records, failed) =
                (client.clone(), args.clone(), data.clone(), records.clone(), failed.clone());
            tasks.push(glommio::spawn_local(async move {
                let mut call = 0u64;
                while Instant::now() < deadline {
                    // 8-byte keys spread the records over every shard.
                    let entries = (0..args.records_per_call)
                        .map(|i| PutRecordsRequestEntry {
                            data: data.clone(),
                            partition_key: Some(format!(
                                "{:08x}",
                                (connection * 7919 + slot * 104_729 + i) as u64 ^ call
                            )),
                            explicit_hash_key: None,
                        })
                        .collect();
                    let request = PutRecordsInput {
                        stream_name: Some(args.stream.clone()),
                        records: entries,
                        ..Default::default()
                    };
                    let response = client.call(&request).await?;
                    let bad = response.failed_record_count.unwrap_or(0) as u64;
                    records.fetch_add(args.records_per_call as u64 - bad, Ordering::Relaxed);
                    failed.fetch_add(bad, Ordering::Relaxed);
                    call += 1;
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
    }
    for task in tasks {
        task.await?;
    }
    Ok(())
}
