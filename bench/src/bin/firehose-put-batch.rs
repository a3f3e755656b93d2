//! PutRecordBatch throughput into one Direct PUT delivery stream of a running sluiced, over the
//! native protocol (`Client::call_firehose`, raw record bytes) or over HTTP (AWS JSON 1.1,
//! base64 records, `sluice_client::aws::HttpClient`): the same batches, the same number of
//! requests in flight, one glommio executor. Prints one JSON line: records/s and MB/s of
//! record data acknowledged.
//!
//! ```text
//! firehose-put-batch --endpoint 127.0.0.1:4568 --http-endpoint 127.0.0.1:4567 \
//!     --protocol native --delivery-stream bench --seconds 5
//! ```
//!
//! The delivery stream must exist (created by the caller, e.g. with `sluice firehose`).

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use sluice_client::aws::HttpClient;
use sluice_client::firehose::{FirehoseRecord, PutRecordBatchInput};
use sluice_client::{Client, Encoding, FirehoseRequest, FirehoseResponse};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:4568")]
    endpoint: String,
    #[arg(long, default_value = "127.0.0.1:4567")]
    http_endpoint: String,
    /// `native` or `http`.
    #[arg(long)]
    protocol: String,
    #[arg(long, default_value = "bench")]
    delivery_stream: String,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Records per PutRecordBatch (Firehose: at most 500).
    #[arg(long, default_value_t = 500)]
    records: usize,
    /// Bytes of each record.
    #[arg(long, default_value_t = 1000)]
    record_bytes: usize,
    /// PutRecordBatch calls in flight at once.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
}

enum Sender {
    Native(Client),
    Http(Rc<HttpClient>),
}

impl Sender {
    /// One batch; the number of records acknowledged.
    async fn put(&self, name: &str, records: &[Bytes]) -> anyhow::Result<usize> {
        match self {
            Sender::Native(client) => {
                let request = FirehoseRequest::PutRecordBatch {
                    delivery_stream_name: name.to_owned(),
                    records: records.to_vec(),
                };
                match client.call_firehose(&request).await? {
                    FirehoseResponse::PutRecordBatch { failed_put_count, .. } => {
                        Ok(records.len() - failed_put_count as usize)
                    }
                    other => bail!("unexpected answer {other:?}"),
                }
            }
            Sender::Http(client) => {
                let input = PutRecordBatchInput {
                    delivery_stream_name: name.to_owned(),
                    records: records.iter().map(|data| FirehoseRecord { data: data.clone() }).collect(),
                };
                let output = client.put_record_batch(&input).await?;
                Ok(records.len() - output.failed_put_count as usize)
            }
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let sender = Rc::new(match args.protocol.as_str() {
        "native" => Sender::Native(Client::connect(&args.endpoint).await.context("connect")?),
        "http" => Sender::Http(HttpClient::connect(&args.http_endpoint, Encoding::Json).await.context("connect")?),
        other => bail!("--protocol {other}: native or http"),
    });
    let records: Rc<Vec<Bytes>> = Rc::new(
        (0..args.records)
            .map(|i| {
                let mut data: Vec<u8> = (0..args.record_bytes).map(|j| (i * 31 + j) as u8).collect();
                if let Some(last) = data.last_mut() {
                    *last = b'\n';
                }
                Bytes::from(data)
            })
            .collect(),
    );
    let acknowledged = Rc::new(Cell::new(0usize));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.in_flight)
        .map(|_| {
            let (sender, records, acknowledged, name) =
                (sender.clone(), records.clone(), acknowledged.clone(), args.delivery_stream.clone());
            glommio::spawn_local(async move {
                while Instant::now() < deadline {
                    let stored = sender.put(&name, &records).await?;
                    acknowledged.set(acknowledged.get() + stored);
                }
                Ok::<(), anyhow::Error>(())
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let records_per_s = acknowledged.get() as f64 / seconds;
    let mb_per_s = records_per_s * args.record_bytes as f64 / 1e6;
    println!(
        "{{\"protocol\": \"{}\", \"records_per_s\": {records_per_s:.0}, \"mb_per_s\": {mb_per_s:.2}, \"seconds\": {seconds:.2}}}",
        args.protocol
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let executor = glommio::LocalExecutorBuilder::default()
        .name("firehose-put-batch")
        .make()
        .map_err(|error| anyhow::anyhow!("start the executor: {error}"))?;
    executor.run(run(args))
}
