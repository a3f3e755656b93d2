//! Starting and stopping `sluiced`: configuration, the catalog, one executor per core.
//!
//! Layer: the top; imports everything below it.

use crate::kinesis::shard_iterator::{IteratorKey, ITERATOR_KEY_BYTES};
use crate::kinesis::throttle::LimitsProfile;
use crate::limits::{
    Limits, FORWARDING_MEMBER_IDS_DERIVED, IO_MEMORY_BYTES_PER_CORE, ON_DEMAND_WINDOW_MS_DEFAULT,
    ON_DEMAND_WINDOW_MS_MIN, RAFT_SEGMENT_BYTES_MIN,
};
use crate::net::{http, listener, native};
#[cfg(feature = "firehose")]
use crate::ops::channels::{self, Channels};
use crate::ops::delivery::{self, Delivery};
#[cfg(feature = "firehose")]
use crate::ops::firehose::{self, Firehose};
use crate::ops::node::{Node, Shared};
use crate::ops::{leases, on_demand, reshard};
use crate::runtime::cluster::ClusterConfig;
use crate::runtime::mailbox::{self, Job};
use crate::runtime::{Members, NodeConfig, Security};
use anyhow::Context;
use futures_lite::future;
use serde::Deserialize;
use sluice_cluster::transport::PeerTls;
use sluice_engine::catalog::{write_atomic, Catalog};
use sluice_engine::clock::SystemClock;
use sluice_engine::{Journal, JournalConfig};
use sluice_model::identity::{ACCOUNT_ID_DEFAULT, REGION_DEFAULT};
use sluice_model::Identity;
use sluice_security::audit::{AuditLog, AuditWriter};
use sluice_security::credentials::ReloadableCredentials;
use sluice_security::kms::KeyStore;
use sluice_security::members::ClusterSecret;
use sluice_security::tls::{client_config_from_file, ReloadableServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub mod exposure;

/// Flags, and the same keys in an optional TOML file (`--config`); flags win.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "sluiced", about = "Sluice: a Kinesis-compatible streaming data daemon", version)]
pub struct Args {
    /// TOML file with any of the keys below (data-dir, listen, http-listen, region, account-id,
    /// cores, limits, log-level, on-demand-window-ms, firehose-config, node-id, peers, cluster-secret, cluster-ca-bundle, raft-segment-bytes, join), and a `[limit-overrides]` table of
    /// quotas and bounds to change (see server/src/limits.rs, `Limits`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where streams live. Default: ./data
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Native protocol address. Default: 127.0.0.1:4568
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// AWS-compatible HTTP API address (boto3, AWS CLI, SDKs). Default: 127.0.0.1:4567
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// The AWS region in ARNs (and expected in the ARNs clients send). Default: us-east-1
    #[arg(long)]
    pub region: Option<String>,
    /// The 12-digit AWS account id in ARNs and messages. Default: 000000000000
    #[arg(long)]
    pub account_id: Option<String>,
    /// Executors, one pinned per core. Default: every core. Fixed per data directory.
    #[arg(long)]
    pub cores: Option<usize>,
    /// `kinesis` enforces the AWS per-shard quotas; `unlimited` measures raw capacity.
    #[arg(long)]
    pub limits: Option<LimitsProfile>,
    /// tracing filter, e.g. `info` or `sluice_server=debug`. Default: info
    #[arg(long)]
    pub log_level: Option<String>,
    /// How long the on-demand scaler measures demand before splitting hot shards, in ms.
    /// Default: 10000. Shorter values are for tests.
    #[arg(long)]
    pub on_demand_window_ms: Option<u64>,
    /// TOML file mapping delivery streams' buckets and Lambda functions to directories, S3
    /// endpoints, commands and URLs (see docs/firehose.md). Default: none configured.
    #[arg(long)]
    pub firehose_config: Option<PathBuf>,
    /// Credentials file (TOML: principals, their keys and policies; docs/security.md). When
    /// set, every request must be signed by one of its principals and is authorized by its
    /// policies. Default: none, every caller is served (open mode).
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Directory of the audit log (`audit.log`, rotated at 64 MiB, 9 kept): one CloudTrail-
    /// shaped JSON line per call of an authenticated caller and per refused signature.
    #[arg(long)]
    pub audit_dir: Option<PathBuf>,
    /// Master keys for encryption at rest (StartStreamEncryption's KeyId): a TOML key-store
    /// file or a directory of them (docs/security.md). `alias/aws/kinesis` is always there:
    /// a key file the daemon creates in the data directory (kms/aws-kinesis.key, mode 0600).
    #[arg(long)]
    pub kms_keys: Option<PathBuf>,
    /// PEM certificate chain for TLS on the HTTP and native listeners (with --tls-key); reread
    /// on SIGHUP.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The metrics port: GET /metrics (Prometheus), /health/live, /health/ready.
    /// Default: 127.0.0.1:9464
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// `text` (colours only when stderr is a terminal) or `json` (one object a line, for log
    /// shippers). Default: text
    #[arg(long)]
    pub log_format: Option<LogFormat>,
    /// Validate the configuration (flags and `--config` file), print it, and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Serve a non-loopback --listen or --http-listen address without --credentials or
    /// without TLS, which sluiced otherwise refuses (anyone who can reach it could call every
    /// operation). Logged as a warning at every start.
    #[arg(long)]
    pub insecure: bool,
    /// This node's id in a replicated cluster (with --peers): one of the ids of --peers.
    /// Default: none, a node alone (docs/replication.md).
    #[arg(long)]
    pub node_id: Option<u64>,
    /// Every member of the cluster, this node included: `1=HOST:PORT,2=HOST:PORT,...`. Core
    /// `c` of each member listens for its peers on PORT + c. A member may add its client
    /// listeners, `1=HOST:PORT/native@HOST:PORT/http@HOST:PORT`, so the others forward
    /// requests it leads to it (docs/replication.md).
    #[arg(long)]
    pub peers: Option<String>,
    /// A file holding the secret every member of the cluster shares (one line, at least 32
    /// bytes: `openssl rand -hex 32`; mode 0600). Members prove they hold it on the Raft peer
    /// connections, and with --credentials authenticate to each other with keys derived from
    /// it to forward the requests of clients they authenticated (docs/cluster.md). Default:
    /// none: peers are not authenticated, and a node with --credentials does not forward.
    #[arg(long)]
    pub cluster_secret: Option<PathBuf>,
    /// PEM CA bundle that members' certificates are verified with when one forwards a request
    /// to another's native listener over TLS (each member's certificate must name its address
    /// in --peers). Default: the --tls-cert file, right when the members share one certificate
    /// naming every member's address, or when that file carries the CA that signed them all.
    #[arg(long)]
    pub cluster_ca_bundle: Option<PathBuf>,
    /// Bytes of a Raft log segment in a cluster: each group's log is compacted a whole
    /// segment at a time, once every member holds its entries and this node applied them.
    /// Default: 8388608 (8 MiB); at least 65536.
    #[arg(long)]
    pub raft_segment_bytes: Option<usize>,
    /// This node is new to a running cluster, which adds it in place of a member with the
    /// admin call ReplaceClusterMember (docs/cluster.md, "Replacing a node"): it founds no
    /// group, and copies the catalog and each shard from the members. Its --peers names the
    /// live members and itself.
    #[arg(long)]
    pub join: bool,
}

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    http_listen: Option<SocketAddr>,
    region: Option<String>,
    account_id: Option<String>,
    on_demand_window_ms: Option<u64>,
    raft_segment_bytes: Option<usize>,
    cores: Option<usize>,
    limits: Option<String>,
    log_level: Option<String>,
    firehose_config: Option<PathBuf>,
    metrics_listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    limit_overrides: Limits,
    credentials: Option<PathBuf>,
    audit_dir: Option<PathBuf>,
    kms_keys: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    insecure: bool,
    node_id: Option<u64>,
    peers: Option<String>,
    cluster_secret: Option<PathBuf>,
    cluster_ca_bundle: Option<PathBuf>,
    #[serde(default)]
    join: bool,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub identity: Identity,
    pub cores: usize,
    pub limits: LimitsProfile,
    /// Quotas and bounds (`[limit-overrides]`; the constants of `limits.rs` otherwise).
    pub limit_values: Limits,
    pub log_level: String,
    pub on_demand_window_ms: u64,
    pub firehose_config: Option<PathBuf>,
    pub credentials: Option<PathBuf>,
    pub audit_dir: Option<PathBuf>,
    /// `--kms-keys`.
    pub kms_keys: Option<PathBuf>,
    /// `--tls-cert` and `--tls-key`.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub metrics_listen: SocketAddr,
    pub log_format: LogFormat,
    /// `--insecure`: serve a non-loopback address without credentials or TLS.
    pub insecure: bool,
    /// `--node-id` and `--peers`: replicated; `None`: a node alone.
    pub cluster: Option<ClusterConfig>,
    /// `--cluster-secret`.
    pub cluster_secret: Option<PathBuf>,
    /// `--cluster-ca-bundle`.
    pub cluster_ca_bundle: Option<PathBuf>,
}

impl Config {
    pub fn resolve(args: Args) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
                toml::from_str::<FileConfig>(&text).with_context(|| format!("parse {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let limits = match (args.limits, file.limits) {
            (Some(limits), _) => limits,
            (None, Some(text)) => text.parse().map_err(|error| anyhow::anyhow!("limits: {error}"))?,
            (None, None) => LimitsProfile::Kinesis,
        };
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cores = args.cores.or(file.cores).unwrap_or(available);
        anyhow::ensure!(cores >= 1, "--cores must be at least 1");
        let region = args.region.or(file.region).unwrap_or_else(|| REGION_DEFAULT.to_string());
        let account_id = args.account_id.or(file.account_id).unwrap_or_else(|| ACCOUNT_ID_DEFAULT.to_string());
        let identity = Identity::new(&region, &account_id)?;
        file.limit_overrides.check().map_err(|error| anyhow::anyhow!(error))?;
        let config = Config {
            data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("data")),
            listen: args.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:4568".parse().expect("valid default")),
            http_listen: args
                .http_listen
                .or(file.http_listen)
                .unwrap_or_else(|| "127.0.0.1:4567".parse().expect("valid default")),
            identity,
            cores,
            limits,
            limit_values: file.limit_overrides,
            log_level: args.log_level.or(file.log_level).unwrap_or_else(|| "info".to_string()),
            on_demand_window_ms: args
                .on_demand_window_ms
                .or(file.on_demand_window_ms)
                .unwrap_or(ON_DEMAND_WINDOW_MS_DEFAULT)
                .max(ON_DEMAND_WINDOW_MS_MIN),
            firehose_config: args.firehose_config.or(file.firehose_config),
            credentials: args.credentials.or(file.credentials),
            audit_dir: args.audit_dir.or(file.audit_dir),
            kms_keys: args.kms_keys.or(file.kms_keys),
            tls: match (args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key)) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => anyhow::bail!("tls-cert and tls-key go together"),
            },
            metrics_listen: args
                .metrics_listen
                .or(file.metrics_listen)
                .unwrap_or_else(|| "127.0.0.1:9464".parse().expect("valid default")),
            log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            insecure: args.insecure || file.insecure,
            cluster: ClusterConfig::parse(
                args.node_id.or(file.node_id),
                args.peers.as_deref().or(file.peers.as_deref()),
                cores,
            )?
            .map(|cluster| ClusterConfig {
                segment_bytes: args
                    .raft_segment_bytes
                    .or(file.raft_segment_bytes)
                    .unwrap_or(cluster.segment_bytes)
                    .max(RAFT_SEGMENT_BYTES_MIN),
                joining: args.join || file.join,
                ..cluster
            }),
            cluster_secret: args.cluster_secret.or(file.cluster_secret),
            cluster_ca_bundle: args.cluster_ca_bundle.or(file.cluster_ca_bundle),
        };
        if config.cluster.is_none() && (config.cluster_secret.is_some() || config.cluster_ca_bundle.is_some()) {
            anyhow::bail!(
                "cluster-secret and cluster-ca-bundle are for a cluster's members: give --node-id and --peers too"
            );
        }
        if config.cluster_ca_bundle.is_some() && config.tls.is_none() {
            anyhow::bail!(
                "cluster-ca-bundle verifies the members' TLS certificates: give --tls-cert and --tls-key too"
            );
        }
        config.exposure().check()?;
        Ok(config)
    }

    /// Which listeners reach beyond the host, and with what protection (`exposure.rs`).
    pub fn exposure(&self) -> exposure::Exposure<'static> {
        exposure::Exposure {
            listeners: [("--listen", self.listen), ("--http-listen", self.http_listen)],
            credentials: self.credentials.is_some(),
            tls: self.tls.is_some(),
            insecure: self.insecure,
        }
    }
}

/// The iterator signing key, created once per data directory so iterators survive restarts.
fn iterator_key(data_dir: &Path) -> anyhow::Result<IteratorKey> {
    let path = data_dir.join("iterator.key");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes: [u8; ITERATOR_KEY_BYTES] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{} is not a {ITERATOR_KEY_BYTES}-byte key", path.display()))?;
            Ok(IteratorKey::from_bytes(bytes))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = IteratorKey::generate();
            write_atomic(&path, key.as_bytes()).with_context(|| format!("write {}", path.display()))?;
            Ok(key)
        }
        Err(error) => Err(error).with_context(|| format!("read {}", path.display())),
    }
}

/// Runs the daemon until SIGTERM or SIGINT, then shuts down cleanly.
pub fn run(config: Config) -> anyhow::Result<()> {
    if let Some(unprotected) = config.exposure().unprotected() {
        tracing::warn!(
            exposed = %unprotected.exposed.join(", "),
            missing = %unprotected.missing.join(", "),
            "--insecure: serving a non-loopback address without protection; anyone who can reach it can \
             call every operation this configuration allows, and see the traffic"
        );
    }
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("create {}", config.data_dir.display()))?;
    let _data_dir_lock = crate::ownership::lock_data_dir(&config.data_dir)?;
    let listeners =
        [("native protocol", config.listen), ("HTTP", config.http_listen), ("metrics", config.metrics_listen)];
    crate::ownership::probe_listeners(&listeners)?;
    let metrics_listener = std::net::TcpListener::bind(config.metrics_listen)
        .with_context(|| format!("listen for metrics on {}", config.metrics_listen))?;
    let metrics_addr = metrics_listener.local_addr()?;
    let catalog = Catalog::load_or_new(&config.data_dir, config.cores as u32)?;
    let key = iterator_key(&config.data_dir)?;
    let (security, audit_writer) = security(&config)?;
    let node_config = NodeConfig {
        data_dir: config.data_dir.clone(),
        cores: config.cores,
        profile: config.limits,
        limits: config.limit_values.clone(),
        identity: config.identity.clone(),
        on_demand_window_ms: config.on_demand_window_ms,
        security: security.clone(),
        cluster: config.cluster.clone().map(Arc::new),
    };
    let (shared, mailboxes) = Shared::new(node_config, Arc::new(SystemClock), &catalog, key);

    // Signals go to this thread only: block them before the executors (and the metrics
    // thread) inherit the mask.
    let signals = block_shutdown_signals();
    // Up before recovery, so that /health/live answers while the journals are replayed.
    crate::net::metrics::spawn(metrics_listener, shared.clone()).context("start the metrics thread")?;
    // After the mask: the delivery runtime's threads must not take SIGTERM either.
    #[cfg(feature = "firehose")]
    let firehose = Firehose::open(&config.data_dir, config.firehose_config.as_deref(), config.identity.clone())?;
    #[cfg(feature = "firehose")]
    let channels = channels::open(firehose.clone())?;
    #[cfg(not(feature = "firehose"))]
    if let Some(path) = &config.firehose_config {
        anyhow::bail!(
            "--firehose-config {}: this sluiced was built without delivery streams (cargo feature `firehose`)",
            path.display()
        );
    }

    let mut executors = Vec::new();
    let (ready, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    for (core, mailbox) in mailboxes.into_iter().enumerate() {
        let (shared, ready, listen) = (shared.clone(), ready.clone(), (config.listen, config.http_listen));
        #[cfg(feature = "firehose")]
        let (firehose, channels) = (firehose.clone(), channels.clone());
        let catalog = (core == 0).then(|| catalog.clone());
        let cpu = core % std::thread::available_parallelism().map_or(1, |n| n.get());
        let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(cpu))
            .name(&format!("sluice-core-{core}"))
            .io_memory(IO_MEMORY_BYTES_PER_CORE)
            .spawn(move || async move {
                let core_run = run_core(
                    core,
                    shared,
                    catalog,
                    mailbox,
                    listen,
                    #[cfg(feature = "firehose")]
                    (firehose, channels),
                    &ready,
                );
                if let Err(error) = core_run.await {
                    let _ = ready.send(Err(error));
                }
            })
            .map_err(|error| anyhow::anyhow!("spawn executor for core {core}: {error}"))?;
        executors.push(executor);
    }
    drop(ready);
    for _ in 0..config.cores {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                shared.begin_shutdown();
                return Err(error);
            }
            Err(_) => anyhow::bail!("an executor exited during start-up"),
        }
    }
    if let Err(error) = crate::ownership::verify_listeners(&listeners) {
        shared.begin_shutdown();
        return Err(error);
    }
    let streams = shared.routes.load();
    let keys = shared.config.security.keys.as_deref();
    crate::ops::sealing::warn_of_missing_master_keys(keys, streams.streams.values().map(|s| &s.meta), "start-up");
    shared.health.set_ready();
    tracing::info!(
        listen = %config.listen,
        http_listen = %config.http_listen,
        metrics_listen = %metrics_addr,
        region = %config.identity.region(),
        account_id = %config.identity.account_id(),
        cores = config.cores,
        data_dir = %config.data_dir.display(),
        limits = %config.limits,
        "sluiced ready"
    );

    let signal = loop {
        match wait_for_signal(&signals) {
            "SIGHUP" => {
                reload_credentials(&security);
                reload_tls(&security);
            }
            signal => break signal,
        }
    };
    tracing::info!(signal, "shutting down: finishing in-flight requests");
    shared.begin_shutdown();
    for executor in executors {
        executor.join().map_err(|error| anyhow::anyhow!("executor: {error:?}"))?;
    }
    if let Some(writer) = audit_writer {
        let dropped = security.audit.as_ref().map_or(0, |log| log.dropped());
        writer.shutdown().context("audit log")?;
        tracing::info!(dropped, "audit log closed");
    }
    tracing::info!("sluiced stopped");
    Ok(())
}

async fn run_core(
    core_id: usize,
    shared: Arc<Shared>,
    catalog: Option<Catalog>,
    mailbox: async_channel::Receiver<Job<Node>>,
    (listen, http_listen): (SocketAddr, SocketAddr),
    #[cfg(feature = "firehose")] (firehose, channels): (Arc<Firehose>, Arc<Channels>),
    ready: &std::sync::mpsc::Sender<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    // The journal must be the first file this executor opens (glommio IOPOLL probe).
    let dir = shared.config.data_dir.join(format!("journal-{core_id}"));
    let mut journal_config = JournalConfig::new(&dir);
    journal_config.segment_bytes_max = shared.config.limits.segment_bytes_max;
    let journal = Journal::open(journal_config, shared.clock.clone())
        .await
        .with_context(|| format!("open journal {}", dir.display()))?;
    let owned = shared.routes.load().shards_by_core().remove(&core_id).unwrap_or_default();
    let internal = delivery::internal_shard_uid(core_id);
    let live: std::collections::HashSet<u64> = owned.iter().map(|shard| shard.uid).collect();
    journal.retain_shards(|uid| live.contains(&uid) || (core_id == 0 && uid == internal));
    // The delivery state (consumer groups) lives on core 0 and is replayed before it serves.
    let delivery = if core_id == 0 {
        let interval = shared.config.limits.delivery_snapshot_interval_entries;
        // Replicated, its log is the delivery group's (`ops::cluster::delivery`).
        let replication = shared.config.cluster.is_some().then(|| {
            Box::new(crate::ops::cluster::delivery::DeliveryGroup) as Box<dyn crate::ops::delivery::Replication>
        });
        let opened = Delivery::open(&journal, core_id, shared.now_ms(), interval, replication).await;
        Some(opened.map_err(|error| anyhow::anyhow!("open the delivery state: {error}"))?)
    } else {
        None
    };
    let node = Node::new(core_id, shared.clone(), journal, catalog, delivery);
    // Replicated, a closed parent is fenced again when its group's replay applies its seal.
    node.adopt_shards(&owned, shared.config.cluster.is_none());

    let received = |node: &Node| node.metrics.mailbox_jobs.set(node.metrics.mailbox_jobs.get() + 1);
    glommio::spawn_local(mailbox::serve(node.clone(), mailbox, received)).detach();
    if core_id == 0 {
        // Reshards a crash interrupted finish once every core serves (jobs to cores that are
        // still starting wait in their mailboxes).
        let resharder = node.clone();
        // Replicated, the metadata leader finishes them, each time it becomes the leader.
        let alone = shared.config.cluster.is_none();
        if !alone {
            glommio::spawn_local(reshard::finish_interrupted_while_leading(node.clone())).detach();
        }
        glommio::spawn_local(async move {
            if alone {
                if let Err(error) = reshard::finish_interrupted(&resharder).await {
                    tracing::error!(%error, "could not finish an interrupted reshard");
                }
            }
            // The delivery state catches up with what the catalog did before the restart.
            if let Err(error) = leases::follow_streams(&resharder).await {
                tracing::error!(%error, "the delivery state could not follow the catalog");
            }
        })
        .detach();
        glommio::spawn_local(on_demand::scale(node.clone(), shared.config.on_demand_window_ms)).detach();
        #[cfg(feature = "firehose")]
        glommio::spawn_local(firehose::serve_readers(node.clone(), firehose.clone())).detach();
    }
    let retention = node.clone();
    let retention_interval = Duration::from_millis(shared.config.limits.retention_interval_ms);
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(retention_interval).await;
            // A snapshot first, if the delivery-state log pins a sealed segment: the trim
            // lets this pass delete it.
            if let Some(delivery) = &retention.delivery {
                if let Err(error) = delivery.snapshot_if_due(&retention.journal).await {
                    tracing::error!(%error, "could not write a snapshot of the delivery state");
                }
            }
            if let Err(error) = retention.journal.enforce_retention().await {
                tracing::error!(%error, "retention failed");
            }
        }
    })
    .detach();

    if let Some(cluster) = &shared.config.cluster {
        crate::ops::cluster::start(&node, cluster.clone()).await.context("start replication")?;
    }
    let native_listener = listener::bind(listen).with_context(|| format!("listen on {listen}"))?;
    let http_listener = listener::bind(http_listen).with_context(|| format!("listen for HTTP on {http_listen}"))?;
    let _ = ready.send(Ok(()));
    let native_services = std::rc::Rc::new(native::Services {
        #[cfg(feature = "firehose")]
        firehose: firehose.clone(),
    });
    let http_core = http::HttpCore::new(
        node.clone(),
        #[cfg(feature = "firehose")]
        (firehose, channels),
    );
    future::zip(
        listener::serve(node.clone(), native_listener, "native", move |node, stream| {
            native::connection(node, stream, native_services.clone())
        }),
        listener::serve(node.clone(), http_listener, "http", move |_, stream| {
            http::connection(http_core.clone(), stream)
        }),
    )
    .await;
    shared.shutdown.finish_serving(core_id).await;
    node.journal.close().await?;
    Ok(())
}

/// The credentials and the audit log the flags name, and the audit log's writer thread.
fn security(config: &Config) -> anyhow::Result<(Security, Option<AuditWriter>)> {
    let credentials = match &config.credentials {
        None => None,
        Some(path) => {
            let credentials = ReloadableCredentials::load(path)?;
            let principals = credentials.current().principals().len();
            tracing::info!(file = %path.display(), principals, "requests must be signed");
            Some(Arc::new(credentials))
        }
    };
    let (audit, writer) = match &config.audit_dir {
        None => (None, None),
        Some(dir) => {
            let (log, writer) = AuditLog::start(dir).with_context(|| format!("audit log in {}", dir.display()))?;
            (Some(log), Some(writer))
        }
    };
    let (http_tls, native_tls) = match &config.tls {
        None => (None, None),
        Some((cert, key)) => {
            let http = ReloadableServerConfig::load(cert, key, &sluice_security::tls::ALPN_HTTP)?;
            let native = ReloadableServerConfig::load(cert, key, &sluice_security::tls::ALPN_NATIVE)?;
            (Some(Arc::new(http)), Some(Arc::new(native)))
        }
    };
    let region = config.identity.region().to_string();
    let account_id = config.identity.account_id().to_string();
    let members = match (&config.cluster_secret, &config.cluster) {
        (Some(path), Some(cluster)) => {
            let secret = ClusterSecret::load(path)?;
            // A member added later (ReplaceClusterMember) forwards as its own id: the keys of
            // the first ids are derived too, since a member's key is the secret's anyway.
            let ids: std::collections::BTreeSet<u64> =
                (1..=FORWARDING_MEMBER_IDS_DERIVED).chain(cluster.members.keys().copied()).collect();
            let store = secret.store(ids)?;
            tracing::info!(file = %path.display(), "members authenticate to each other (peer network, forwarding) with the cluster secret");
            Some(Arc::new(Members { node_id: cluster.node_id, secret, store }))
        }
        _ => None,
    };
    let mut keys = match &config.kms_keys {
        Some(path) => KeyStore::load(path, &region, &account_id)?,
        None => KeyStore::new(&region, &account_id),
    };
    // A record one member seals, every member opens: in a cluster the AWS-managed key is the
    // cluster's (from its secret), not the data directory's; without a secret there is none.
    match (&config.cluster, &members) {
        (None, _) => sluice_security::kms::add_aws_managed_key(&mut keys, &config.data_dir)?,
        (Some(_), Some(members)) => {
            sluice_security::kms::add_aws_managed_key_material(&mut keys, members.secret.aws_managed_key_material())
                .map_err(|problem| anyhow::anyhow!("the cluster's AWS-managed key: {problem}"))?
        }
        (Some(_), None) => tracing::info!(
            "encryption at rest: no AWS-managed key (alias/aws/kinesis) without --cluster-secret in a cluster; \
             streams may be encrypted with the --kms-keys keys, the same file on every member"
        ),
    }
    tracing::info!(master_keys = keys.keys().len(), "encryption at rest: key store loaded");
    let keys = Some(Arc::new(keys));
    // Between members, TLS both ways: forwarding to a member's native listener, and the Raft
    // peer network; the members' certificates are verified by the cluster's CA.
    let (member_tls, peer_tls) = match (&config.cluster, &config.tls) {
        (Some(_), Some((cert, key))) => {
            let bundle = config.cluster_ca_bundle.as_ref().unwrap_or(cert);
            let client = |alpn: &[&[u8]]| {
                client_config_from_file(bundle, alpn).with_context(|| format!("cluster CA bundle {}", bundle.display()))
            };
            let member = client(&sluice_security::tls::ALPN_NATIVE)?;
            let peer = PeerTls {
                server: Arc::new(ReloadableServerConfig::load(cert, key, &sluice_security::tls::ALPN_PEER)?),
                client: Arc::new(client(&sluice_security::tls::ALPN_PEER)?),
            };
            (Some(Arc::new(member)), Some(peer))
        }
        _ => (None, None),
    };
    let security = Security { credentials, audit, http_tls, native_tls, keys, members, member_tls, peer_tls };
    Ok((security, writer))
}

/// SIGHUP: reread the credentials file (principals, keys, policies). Requests and handshakes
/// that start after it use the new file, connections stay open (a native connection's next
/// request is authorized by its principal's new policies, or refused if its key is gone), and a
/// file that fails to load keeps the previous one.
fn reload_credentials(security: &Security) {
    let Some(credentials) = &security.credentials else { return };
    match credentials.reload() {
        Ok(principals) => {
            tracing::info!(file = %credentials.path().display(), principals, "SIGHUP: credentials reloaded")
        }
        Err(error) => tracing::error!(
            file = %credentials.path().display(),
            %error,
            "SIGHUP: credentials reload failed; keeping the previous credentials"
        ),
    }
}

/// SIGHUP: reread the TLS certificate and key; new connections get them, open ones keep
/// theirs, and a failed reload keeps the old ones.
fn reload_tls(security: &Security) {
    let (Some(tls), Some(native)) = (&security.http_tls, &security.native_tls) else {
        tracing::info!("SIGHUP: no TLS configured, nothing to reload");
        return;
    };
    let peer = security.peer_tls.as_ref().map(|peer| &peer.server);
    match tls.reload().and_then(|()| native.reload()).and_then(|()| peer.map_or(Ok(()), |peer| peer.reload())) {
        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
        Err(error) => tracing::error!(%error, "SIGHUP: TLS reload failed; keeping the previous certificate"),
    }
}

fn block_shutdown_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local, zero-initialised signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> &'static str {
    let mut signal: libc::c_int = 0;
    // SAFETY: `set` was initialised by `block_shutdown_signals`; sigwait writes one int.
    let result = unsafe { libc::sigwait(set, &mut signal) };
    match (result, signal) {
        (0, libc::SIGINT) => "SIGINT",
        (0, libc::SIGTERM) => "SIGTERM",
        (0, libc::SIGHUP) => "SIGHUP",
        _ => "unknown",
    }
}
