//! Connecting, and the streams, shards and consumers a scenario runs on.

use crate::cli::{Common, Protocol, Route};
use crate::conn::Conn;
use anyhow::{bail, Context};
use sluice_client::aws::HttpClient;
use sluice_client::tls::TlsOptions;
use sluice_client::{
    Client, ConnectOptions, ConsumerArn, ConsumerStatus, CreateStreamInput, DeleteStreamInput,
    DescribeStreamConsumerInput, DescribeStreamSummaryInput, Encoding, ErrorKind, HashKey, ListShardsInput,
    RegisterStreamConsumerInput, RoutedClient, RoutedConfig, ShardId, StreamArn, StreamStatus,
};
use std::time::{Duration, Instant};

/// How long to wait for a stream or a consumer to become ACTIVE.
const ACTIVE_WAIT_S: u64 = 30;

/// Partition key of every record: the shard is chosen with an explicit hash key, and a
/// one-byte key keeps the bytes the quota counts (data plus key) close to the data size.
pub const PARTITION_KEY: &str = "k";

/// Opens a connection to the daemon (over HTTP: a pool that opens connections as needed).
pub async fn connect(common: &Common) -> anyhow::Result<Conn> {
    let endpoint = &common.endpoint;
    Ok(match common.protocol {
        Protocol::Native => {
            // Credentials as the AWS CLI finds them (for a daemon with `--credentials`), and
            // TLS with `--ca-bundle`.
            let mut options = ConnectOptions::from_environment().context("AWS credentials")?;
            if let Some(bundle) = &common.ca_bundle {
                options.tls = Some(TlsOptions::from_ca_bundle(bundle).context("--ca-bundle")?);
            }
            match common.route {
                Route::Any => {
                    let client = Client::connect_with(endpoint, &options).await;
                    Conn::Native(client.with_context(|| format!("connect to {endpoint}"))?)
                }
                Route::Direct => {
                    let config = RoutedConfig { options, ..RoutedConfig::new(vec![endpoint.clone()]) };
                    let client = RoutedClient::connect(config).await;
                    Conn::Routed(client.with_context(|| format!("connect to {endpoint}"))?)
                }
            }
        }
        Protocol::Http if common.route == Route::Direct => {
            bail!("--route direct needs --protocol native: the routing table and the members' addresses are native")
        }
        Protocol::Http => {
            let client = HttpClient::connect(endpoint, Encoding::Json).await;
            Conn::Http(client.with_context(|| format!("connect to {endpoint}"))?)
        }
    })
}

/// One shard a scenario writes to or reads from.
#[derive(Clone, Debug)]
pub struct Target {
    pub stream: String,
    pub stream_arn: StreamArn,
    pub shard_id: ShardId,
    /// The shard's starting hash key: sent as the explicit hash key, it routes to this shard.
    pub hash_key: HashKey,
}

/// A stream name unique to this run, so that runs never read each other's records.
pub fn stream_name(scenario: &str, label: &str) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("loadgen-{scenario}-{label}-{secs}-{}", std::process::id())
}

/// Creates a stream of `shards` shards, waits until it is ACTIVE and returns its shards.
pub async fn create_stream(client: &Conn, name: &str, shards: usize) -> anyhow::Result<Vec<Target>> {
    let shard_count = i32::try_from(shards).context("--shards")?;
    let create =
        CreateStreamInput { stream_name: name.to_owned(), shard_count: Some(shard_count), ..Default::default() };
    client.call(&create).await.with_context(|| format!("create stream {name}"))?;
    let deadline = Instant::now() + Duration::from_secs(ACTIVE_WAIT_S);
    let describe = DescribeStreamSummaryInput { stream_name: Some(name.to_owned()), stream_arn: None };
    let stream_arn = loop {
        let summary = client.call(&describe).await?.stream_description_summary;
        let status = summary.stream_status;
        if status == StreamStatus::Active {
            break summary.stream_arn;
        }
        if Instant::now() > deadline {
            bail!("stream {name} is still {status} after {ACTIVE_WAIT_S} s");
        }
        glommio::timer::sleep(Duration::from_millis(50)).await;
    };
    let list = ListShardsInput { stream_name: Some(name.to_owned()), ..Default::default() };
    let shards = client.call(&list).await?.shards;
    Ok(shards
        .into_iter()
        .map(|shard| Target {
            stream: name.to_owned(),
            stream_arn: stream_arn.clone(),
            shard_id: shard.shard_id,
            hash_key: shard.hash_key_range.starting_hash_key,
        })
        .collect())
}

/// Creates `streams` streams of `shards` shards each; returns every shard of them.
pub async fn create_streams(
    client: &Conn,
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
pub async fn register_consumer(client: &Conn, stream_arn: &StreamArn, name: &str) -> anyhow::Result<ConsumerArn> {
    let register =
        RegisterStreamConsumerInput { stream_arn: stream_arn.clone(), consumer_name: name.to_owned(), tags: None };
    let arn = client.call(&register).await.with_context(|| format!("register {name}"))?.consumer.consumer_arn;
    let deadline = Instant::now() + Duration::from_secs(ACTIVE_WAIT_S);
    let describe = DescribeStreamConsumerInput { consumer_arn: Some(arn.clone()), ..Default::default() };
    loop {
        let status = client.call(&describe).await?.consumer_description.consumer_status;
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
pub async fn delete_streams(client: &Conn, targets: &[Target], keep: bool) -> anyhow::Result<()> {
    if keep {
        return Ok(());
    }
    crate::server_metrics::before_clean_up();
    let mut names: Vec<&str> = targets.iter().map(|t| t.stream.as_str()).collect();
    names.dedup();
    for name in names {
        let delete = DeleteStreamInput {
            stream_name: Some(name.to_owned()),
            stream_arn: None,
            enforce_consumer_deletion: Some(true),
        };
        match client.call(&delete).await {
            Ok(_) => {}
            Err(error) if error.code() == Some(ErrorKind::ResourceNotFound) => {}
            Err(error) => return Err(error).with_context(|| format!("delete stream {name}")),
        }
    }
    Ok(())
}
