//! Connecting, and the streams, shards and consumers a scenario runs on.

use crate::cli::{Common, Protocol};
use anyhow::{bail, Context};
use sluice_client::{
    Client, ConsumerStatus, CreateStreamRequest, DeleteStreamRequest, DescribeStreamConsumerRequest,
    DescribeStreamSummaryRequest, ErrorCode, ListShardsRequest, RegisterStreamConsumerRequest, StreamStatus,
};
use std::time::{Duration, Instant};

/// How long to wait for a stream or a consumer to become ACTIVE.
const ACTIVE_WAIT_S: u64 = 30;

/// Partition key of every record: the shard is chosen with an explicit hash key, and a
/// one-byte key keeps the bytes the quota counts (data plus key) close to the data size.
pub const PARTITION_KEY: &str = "k";

/// Opens a connection to the daemon.
pub async fn connect(common: &Common) -> anyhow::Result<Client> {
    match common.protocol {
        Protocol::Native => {
            Client::connect(&common.endpoint).await.with_context(|| format!("connect to {}", common.endpoint))
        }
        Protocol::Http => bail!(
            "--protocol http is not supported yet: the load generator speaks the native protocol only \
             (the AWS JSON 1.1 API of sluiced is still being built); use --protocol native"
        ),
    }
}

/// One shard a scenario writes to or reads from.
#[derive(Clone, Debug)]
pub struct Target {
    pub stream: String,
    pub stream_arn: String,
    pub shard_id: String,
    /// The shard's starting hash key: sent as the explicit hash key, it routes to this shard.
    pub hash_key: String,
}

/// A stream name unique to this run, so that runs never read each other's records.
pub fn stream_name(scenario: &str, label: &str) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("loadgen-{scenario}-{label}-{secs}-{}", std::process::id())
}

/// Creates a stream of `shards` shards, waits until it is ACTIVE and returns its shards.
pub async fn create_stream(client: &Client, name: &str, shards: usize) -> anyhow::Result<Vec<Target>> {
    let request = CreateStreamRequest {
        stream_name: name.to_owned(),
        shard_count: Some(i32::try_from(shards).context("--shards")?),
        ..Default::default()
    };
    client.create_stream(&request).await.with_context(|| format!("create stream {name}"))?;
    let deadline = Instant::now() + Duration::from_secs(ACTIVE_WAIT_S);
    let summary = loop {
        let request = DescribeStreamSummaryRequest { stream_name: Some(name.to_owned()), stream_arn: None };
        let summary = client.describe_stream_summary(&request).await?.stream_description_summary;
        if summary.stream_status == StreamStatus::Active {
            break summary;
        }
        if Instant::now() > deadline {
            bail!("stream {name} is still {} after {ACTIVE_WAIT_S} s", summary.stream_status);
        }
        glommio::timer::sleep(Duration::from_millis(50)).await;
    };
    let request = ListShardsRequest { stream_name: Some(name.to_owned()), ..Default::default() };
    let shards = client.list_shards(&request).await?.shards;
    Ok(shards
        .into_iter()
        .map(|shard| Target {
            stream: name.to_owned(),
            stream_arn: summary.stream_arn.clone(),
            shard_id: shard.shard_id,
            hash_key: shard.hash_key_range.starting_hash_key,
        })
        .collect())
}

/// Creates `streams` streams of `shards` shards each; returns every shard of them.
pub async fn create_streams(
    client: &Client,
    scenario: &str,
    label: &str,
    streams: usize,
    shards: usize,
) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    for index in 0..streams {
        let name = stream_name(scenario, &format!("{label}{index}"));
        targets.extend(create_stream(client, &name, shards).await?);
    }
    Ok(targets)
}

/// Registers an enhanced fan-out consumer and waits until it is ACTIVE; returns its ARN.
pub async fn register_consumer(client: &Client, stream_arn: &str, name: &str) -> anyhow::Result<String> {
    let request = RegisterStreamConsumerRequest {
        stream_arn: stream_arn.to_owned(),
        consumer_name: name.to_owned(),
        tags: Vec::new(),
    };
    let consumer = client.register_stream_consumer(&request).await.with_context(|| format!("register {name}"))?;
    let arn = consumer.consumer.consumer_arn;
    let deadline = Instant::now() + Duration::from_secs(ACTIVE_WAIT_S);
    loop {
        let request = DescribeStreamConsumerRequest { consumer_arn: Some(arn.clone()), ..Default::default() };
        let status = client.describe_stream_consumer(&request).await?.consumer_description.consumer_status;
        if status == ConsumerStatus::Active {
            return Ok(arn);
        }
        if Instant::now() > deadline {
            bail!("consumer {name} is still {status} after {ACTIVE_WAIT_S} s");
        }
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

/// Deletes the streams of `targets` (and their consumers), unless told to keep them.
pub async fn delete_streams(client: &Client, targets: &[Target], keep: bool) -> anyhow::Result<()> {
    if keep {
        return Ok(());
    }
    let mut names: Vec<&str> = targets.iter().map(|t| t.stream.as_str()).collect();
    names.dedup();
    for name in names {
        let request = DeleteStreamRequest {
            stream_name: Some(name.to_owned()),
            stream_arn: None,
            enforce_consumer_deletion: Some(true),
        };
        match client.delete_stream(&request).await {
            Ok(()) => {}
            Err(error) if error.code() == Some(ErrorCode::ResourceNotFound) => {}
            Err(error) => return Err(error).with_context(|| format!("delete stream {name}")),
        }
    }
    Ok(())
}
