//! Delivery streams (Amazon Data Firehose's API) inside sluiced: their definitions, the
//! delivery engine (`sluice-firehose`) on a tokio runtime of its own, the readers that feed it
//! from the journal, and the checkpoints of what is delivered.
//!
//! ```text
//!  PutRecord(Batch) ──► hidden stream `__sluice.firehose.NAME` (PutRecords: acknowledged once durable)
//!                              │
//!  core 0: one reader per shard (GetShardIterator / GetRecords, the ordinary read path)
//!                              │ bounded tokio mpsc (a full channel holds the reader, not ingest)
//!                              ▼
//!  tokio runtime "sluice-firehose": the engine (buffers, transform, convert, compress, upload)
//!                              │ Progress (per shard: last sequence number delivered)
//!                              ▼
//!  checkpoint task: data-dir/firehose/checkpoints/NAME.json (atomic replace, fsync)
//! ```
//!
//! A Direct PUT delivery stream owns a hidden internal Kinesis stream,
//! `__sluice.firehose.NAME`, which the Kinesis API refuses to create, list or name (see
//! `control::streams::INTERNAL_STREAM_PREFIX`). A
//! `KinesisStreamAsSource` delivery stream reads the user's stream instead, from the time it
//! was created (AWS reads from LATEST). After a crash each reader resumes after its shard's
//! checkpointed sequence number: nothing acknowledged is lost, and what is delivered again is
//! one buffer at most (per partition; see `sluice_firehose::engine`): the engine delivers a
//! buffer only once the checkpoint task reports the one before it durable.
//!
//! Definitions (the CreateDeliveryStream input, its version and creation time) are kept in
//! `data-dir/firehose/delivery-streams.json`, replaced atomically on every change. The Glue
//! Data Catalog that Parquet conversion reads tables from is opened here too (`ops::glue`,
//! `data-dir/firehose/glue-catalog.json`), so every plan's environment shares it.
//!
//! Layer: ops. The HTTP codec is `net::http::firehose`.

use crate::control::encryption::encryption_updating;
use crate::control::streams::internal_stream_name;
use crate::limits::{
    FIREHOSE_CHANNELS_MAX, FIREHOSE_CHECKPOINT_RETRY_MS, FIREHOSE_DELIVERY_STREAMS_MAX, FIREHOSE_INTERNAL_SHARDS,
    FIREHOSE_READ_BACKOFF_MS, FIREHOSE_READ_IDLE_MS, FIREHOSE_READ_RECORDS_MAX, FIREHOSE_TAGS_MAX,
    FIREHOSE_WORKER_THREADS_DEFAULT,
};
use crate::metrics::DeliveryStreamSample;
use crate::ops::catalog::change;
use crate::ops::cluster::meta::refuse_unreplicated;
use crate::ops::glue::{Glue, GlueOpenError};
use crate::ops::node::Node;
use crate::ops::sealing::{key_store, kms_error};
use crate::ops::{records, streams};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_engine::catalog::write_atomic;
use sluice_engine::catalog::StreamEncryption;
use sluice_firehose::config::{CreateDeliveryStreamInput, Tag};
use sluice_firehose::plan::{DeliveryPlan, EngineOptions, Environment};
use sluice_firehose::store::{Buckets, S3Endpoint};
use sluice_firehose::transform::{Function, Functions};
use sluice_firehose::{DeliveryError, Durable, Lane, Position, Progress, SourceRecord};
use sluice_model::{
    CreateStreamInput, DeleteStreamInput, ErrorKind, GetRecordsInput, GetShardIteratorInput, Identity, PutRecordsInput,
    PutRecordsRequestEntry, SequenceNumber, ShardId, ShardIteratorType, Timestamp,
};
use sluice_security::kms::AWS_MANAGED_ALIAS;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The file `--firehose-config` names: where buckets and transformation functions are.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FirehoseConfig {
    /// `[buckets.NAME]`: the bucket of `arn:aws:s3:::NAME`.
    #[serde(default)]
    pub buckets: BTreeMap<String, BucketConfig>,
    /// `[functions.NAME]`: the Lambda function `NAME` of a `LambdaArn`.
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionConfig>,
    /// Threads of the delivery runtime (default 1).
    pub worker_threads: Option<usize>,
    /// Replaces every channel's `DataFreshnessInSeconds` (at least 300 s in the API) as its
    /// buffer interval, in milliseconds: for tests and benchmarks, which cannot wait minutes.
    pub channel_data_freshness_ms: Option<u64>,
}

/// A bucket: a local directory (`dir`), or the bucket of the same name at an S3-compatible
/// `endpoint` (credentials default to `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BucketConfig {
    pub dir: Option<PathBuf>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// A transformation function: a `command` (argv) or an HTTP `url`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FunctionConfig {
    pub command: Option<Vec<String>>,
    pub url: Option<String>,
}

/// Why the delivery streams could not start with the daemon.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parse {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("firehose configuration: {0}")]
    Config(String),
    #[error("bucket {bucket}: {source}")]
    Bucket { bucket: String, source: DeliveryError },
    #[error("start the delivery runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the Glue Data Catalog: {0}")]
    Glue(#[from] GlueOpenError),
}

/// An answer of the Firehose API that is not a success: AWS's exception name, HTTP status and
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehoseError {
    pub exception: &'static str,
    pub status: u16,
    pub message: String,
}

impl FirehoseError {
    pub fn new(exception: &'static str, message: impl Into<String>) -> FirehoseError {
        let status = match exception {
            "ServiceUnavailableException" => 503,
            "InternalFailure" => 500,
            _ => 400,
        };
        FirehoseError { exception, status, message: message.into() }
    }

    pub fn invalid_argument(message: impl Into<String>) -> FirehoseError {
        FirehoseError::new("InvalidArgumentException", message)
    }

    fn not_found(identity: &Identity, name: &str) -> FirehoseError {
        // AWS's text: "Firehose NAME under account ACCOUNT not found."
        FirehoseError::new(
            "ResourceNotFoundException",
            format!("Firehose {name} under account {} not found.", identity.account_id()),
        )
    }
}

impl From<sluice_firehose::ApiError> for FirehoseError {
    fn from(error: sluice_firehose::ApiError) -> FirehoseError {
        FirehoseError::new(error.error_type.as_str(), error.message)
    }
}

impl From<DeliveryError> for FirehoseError {
    fn from(error: DeliveryError) -> FirehoseError {
        match error {
            DeliveryError::Config(api) => api.into(),
            other => FirehoseError::invalid_argument(other.to_string()),
        }
    }
}

/// One record's answer to PutRecord(Batch): its `RecordId`, or AWS's error code and message.
pub type PutOutcome = Result<String, (&'static str, String)>;

/// What is kept of a delivery stream across restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Definition {
    pub input: CreateDeliveryStreamInput,
    /// 1 at creation, one more at each UpdateDestination (`VersionId`).
    pub version: u64,
    pub create_ms: i64,
    /// The last UpdateDestination (`LastUpdateTimestamp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_ms: Option<i64>,
    /// The key StartDeliveryStreamEncryption named, until StopDeliveryStreamEncryption. Whether
    /// records are sealed is the hidden stream's encryption in the catalog (which seals them);
    /// this keeps the key type and ARN as the caller gave them, for DescribeDeliveryStream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<DeliveryEncryption>,
}

/// `DeliveryStreamEncryptionConfigurationInput` as StartDeliveryStreamEncryption took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryEncryption {
    /// `AWS_OWNED_CMK` or `CUSTOMER_MANAGED_CMK`.
    pub key_type: String,
    /// The customer managed key's ARN (none for `AWS_OWNED_CMK`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,
}

/// `DeliveryStreamEncryptionConfiguration.Status`, from the hidden stream's encryption in the
/// catalog: ENABLING and DISABLING for the stream's UPDATING window after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptionStatus {
    Enabled,
    Enabling,
    Disabled,
    Disabling,
}

impl EncryptionStatus {
    pub fn name(self) -> &'static str {
        match self {
            EncryptionStatus::Enabled => "ENABLED",
            EncryptionStatus::Enabling => "ENABLING",
            EncryptionStatus::Disabled => "DISABLED",
            EncryptionStatus::Disabling => "DISABLING",
        }
    }

    pub fn is_encrypting(self) -> bool {
        matches!(self, EncryptionStatus::Enabled | EncryptionStatus::Enabling)
    }
}

impl Definition {
    pub fn is_direct_put(&self) -> bool {
        self.input.delivery_stream_type.as_deref() != Some("KinesisStreamAsSource")
    }

    /// The Sluice stream it reads: its hidden stream, or the user's.
    pub fn source_stream(&self) -> String {
        match &self.input.kinesis_stream_source_configuration {
            Some(source) if !self.is_direct_put() => stream_of_arn(&source.kinesis_stream_arn).to_string(),
            _ => internal_stream_name(&self.input.delivery_stream_name),
        }
    }
}

/// The stream name of a Kinesis stream ARN (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`).
pub(crate) fn stream_of_arn(arn: &str) -> &str {
    arn.rsplit_once(":stream/").map_or(arn, |(_, name)| name)
}

/// A running delivery stream.
struct Running {
    definition: Definition,
    delivery: Delivery,
}

/// The running parts of one delivery (of a delivery stream or a channel): its engine, the task
/// keeping its checkpoint, and the flag that stops its readers.
pub(crate) struct Delivery {
    stop: Arc<AtomicBool>,
    /// The engine's counters, for `/metrics`.
    metrics: Arc<sluice_firehose::metrics::Metrics>,
    engine: tokio::task::JoinHandle<()>,
    checkpoint: tokio::task::JoinHandle<()>,
}

impl Delivery {
    /// Stops the readers, the engine and the checkpoint task. What the engine buffered and had
    /// not delivered is read again from the checkpoint by whatever starts next.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.engine.abort();
        self.checkpoint.abort();
    }
}

/// What core 0 needs to start the readers of one delivery stream.
pub struct ReaderStart {
    name: String,
    stream: String,
    /// Resume after these sequence numbers (per shard number).
    after: BTreeMap<Lane, SequenceNumber>,
    /// Where a shard without a checkpoint starts: its trim horizon, or this time.
    start_ms: Option<i64>,
    records: mpsc::Sender<SourceRecord>,
    stop: Arc<AtomicBool>,
}

/// Every delivery stream of the node; shared by all cores.
pub struct Firehose {
    dir: PathBuf,
    env: Environment,
    identity: Identity,
    runtime: tokio::runtime::Runtime,
    streams: Mutex<Registry>,
    channel_freshness_override: Option<Duration>,
    readers: async_channel::Sender<ReaderStart>,
    readers_rx: async_channel::Receiver<ReaderStart>,
    /// The Glue Data Catalog Parquet conversion reads its tables from (`env.glue` shares it).
    glue: Glue,
}

#[derive(Default)]
struct Registry {
    running: BTreeMap<String, Running>,
    /// Names a CreateDeliveryStream is working on (it awaits the catalog).
    creating: BTreeSet<String>,
}

impl Firehose {
    /// Reads the configuration and the definitions, starts the delivery runtime and every
    /// delivery stream's engine; their readers start once core 0 runs [`serve_readers`].
    pub fn open(data_dir: &Path, config: Option<&Path>, identity: Identity) -> Result<Arc<Firehose>, StartError> {
        let config = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| StartError::Read { path: path.to_path_buf(), source })?;
                toml::from_str::<FirehoseConfig>(&text)
                    .map_err(|error| StartError::Parse { path: path.to_path_buf(), message: error.to_string() })?
            }
            None => FirehoseConfig::default(),
        };
        let dir = data_dir.join("firehose");
        let glue = Glue::open(&dir)?;
        let mut env = environment(&config, &identity)?;
        env.glue = Some(glue.shared());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.unwrap_or(FIREHOSE_WORKER_THREADS_DEFAULT).max(1))
            .thread_name("sluice-firehose")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let (readers, readers_rx) = async_channel::bounded(FIREHOSE_DELIVERY_STREAMS_MAX + FIREHOSE_CHANNELS_MAX);
        let firehose = Arc::new(Firehose {
            dir,
            env,
            identity,
            runtime,
            streams: Mutex::new(Registry::default()),
            channel_freshness_override: config.channel_data_freshness_ms.map(Duration::from_millis),
            readers,
            readers_rx,
            glue,
        });
        let definitions_path = firehose.definitions_path();
        let definitions: Vec<Definition> = match std::fs::read(&definitions_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|error| StartError::Parse { path: definitions_path.clone(), message: error.to_string() })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(StartError::Read { path: definitions_path, source }),
        };
        for definition in definitions {
            let name = definition.input.delivery_stream_name.clone();
            // A definition that no longer plans (a bucket removed from the configuration) is
            // kept, not running, so that fixing the configuration brings it back.
            match firehose.launch(definition) {
                Ok((start, running)) => {
                    firehose.streams.lock().expect("not poisoned").running.insert(name, running);
                    firehose.start_readers_now(start);
                }
                Err(error) => tracing::error!(delivery_stream = %name, message = %error.message, "cannot start"),
            }
        }
        Ok(firehose)
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The node's Glue Data Catalog.
    pub fn glue(&self) -> &Glue {
        &self.glue
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn env(&self) -> &Environment {
        &self.env
    }

    pub(crate) fn channel_freshness_override(&self) -> Option<Duration> {
        self.channel_freshness_override
    }

    fn definitions_path(&self) -> PathBuf {
        self.dir.join("delivery-streams.json")
    }

    fn checkpoint_path(&self, name: &str) -> PathBuf {
        self.dir.join("checkpoints").join(format!("{name}.json"))
    }

    pub fn arn(&self, name: &str) -> String {
        format!("arn:aws:firehose:{}:{}:deliverystream/{name}", self.identity.region(), self.identity.account_id())
    }

    /// Plans and spawns the engine and checkpoint task of `definition`; the answer is what
    /// core 0 needs to start its readers, and what to register.
    fn launch(&self, definition: Definition) -> Result<(ReaderStart, Running), FirehoseError> {
        let plan = DeliveryPlan::from_create(&definition.input, definition.version, &self.env)?;
        let name = definition.input.delivery_stream_name.clone();
        let start_ms = (!definition.is_direct_put()).then_some(definition.create_ms);
        let (start, delivery) =
            self.spawn_delivery(plan, definition.source_stream(), self.checkpoint_path(&name), start_ms);
        Ok((start, Running { definition, delivery }))
    }

    /// Spawns the engine of `plan` and the task keeping its checkpoint at `checkpoint_path`;
    /// the readers of `stream` resume after that checkpoint (a shard without one starts at
    /// `start_ms`, or its trim horizon) once [`Firehose::start_readers`] hands them to core 0.
    pub(crate) fn spawn_delivery(
        &self,
        plan: DeliveryPlan,
        stream: String,
        checkpoint_path: PathBuf,
        start_ms: Option<i64>,
    ) -> (ReaderStart, Delivery) {
        let name = plan.name.clone();
        let after = read_checkpoint(&checkpoint_path);
        let _runtime = self.runtime.enter();
        let (handle, durable) = sluice_firehose::spawn_checkpointed(plan);
        let checkpoint = tokio::spawn(keep_checkpoint(checkpoint_path, handle.progress.clone(), durable));
        let stop = Arc::new(AtomicBool::new(false));
        let start = ReaderStart { name, stream, after, start_ms, records: handle.records, stop: stop.clone() };
        (start, Delivery { stop, metrics: handle.metrics, engine: handle.task, checkpoint })
    }

    /// Hands a delivery's readers to core 0 without waiting (at start-up: the channel holds
    /// every delivery stream and channel).
    pub(crate) fn start_readers_now(&self, start: ReaderStart) {
        self.readers.try_send(start).expect("the channel holds every delivery stream and channel");
    }

    /// Hands a delivery's readers to core 0.
    pub(crate) async fn start_readers(&self, start: ReaderStart) -> Result<(), FirehoseError> {
        self.readers.send(start).await.map_err(|_| FirehoseError::new("ServiceUnavailableException", "shutting down"))
    }

    /// Writes every definition (and `extra`) to disk, atomically.
    fn persist(&self, registry: &Registry, extra: Option<&Definition>) -> Result<(), FirehoseError> {
        let mut all: Vec<&Definition> = registry.running.values().map(|running| &running.definition).collect();
        all.extend(extra);
        self.persist_all(&all)
    }

    /// Writes every definition, with `replacement` in place of the one of the same name,
    /// atomically.
    fn persist_replacing(&self, registry: &Registry, replacement: &Definition) -> Result<(), FirehoseError> {
        let name = &replacement.input.delivery_stream_name;
        let all: Vec<&Definition> =
            registry
                .running
                .values()
                .map(|running| {
                    if &running.definition.input.delivery_stream_name == name {
                        replacement
                    } else {
                        &running.definition
                    }
                })
                .collect();
        self.persist_all(&all)
    }

    /// Writes `all` as the definitions, atomically.
    fn persist_all(&self, all: &[&Definition]) -> Result<(), FirehoseError> {
        let bytes = serde_json::to_vec_pretty(&all).expect("definitions serialize");
        std::fs::create_dir_all(self.dir.join("checkpoints")).map_err(|error| {
            FirehoseError::new("InternalFailure", format!("create {}: {error}", self.dir.display()))
        })?;
        write_atomic(&self.definitions_path(), &bytes)
            .map_err(|error| FirehoseError::new("InternalFailure", format!("persist delivery streams: {error}")))
    }

    /// CreateDeliveryStream.
    pub async fn create(&self, node: &Rc<Node>, input: CreateDeliveryStreamInput) -> Result<String, FirehoseError> {
        // Validation and planning first (AWS's ValidationException / InvalidArgumentException,
        // unknown buckets and functions), so a refused request changes nothing.
        DeliveryPlan::from_create(&input, 1, &self.env)?;
        let name = input.delivery_stream_name.clone();
        {
            let mut registry = self.streams.lock().expect("not poisoned");
            if registry.running.contains_key(&name) || registry.creating.contains(&name) {
                return Err(FirehoseError::new(
                    "ResourceInUseException",
                    format!("Firehose {name} under accountId {} already exists", self.identity.account_id()),
                ));
            }
            if registry.running.len() + registry.creating.len() >= FIREHOSE_DELIVERY_STREAMS_MAX {
                return Err(FirehoseError::new(
                    "LimitExceededException",
                    format!("You have already consumed your firehose quota of {FIREHOSE_DELIVERY_STREAMS_MAX} hoses."),
                ));
            }
            registry.creating.insert(name.clone());
        }
        let result = self.create_reserved(node, input).await;
        self.streams.lock().expect("not poisoned").creating.remove(&name);
        result
    }

    async fn create_reserved(
        &self,
        node: &Rc<Node>,
        input: CreateDeliveryStreamInput,
    ) -> Result<String, FirehoseError> {
        let definition = Definition { input, version: 1, create_ms: node.now_ms(), update_ms: None, encryption: None };
        let name = definition.input.delivery_stream_name.clone();
        let stream = definition.source_stream();
        if definition.is_direct_put() {
            let create = CreateStreamInput {
                stream_name: stream.clone(),
                shard_count: Some(FIREHOSE_INTERNAL_SHARDS),
                ..Default::default()
            };
            match streams::create(node, create).await {
                Ok(_) => {}
                // Left by a crash between creating it and persisting the definition: reuse it.
                Err(error) if error.kind == ErrorKind::ResourceInUse => {}
                Err(error) => return Err(FirehoseError::new("LimitExceededException", error.message)),
            }
        } else if records::route_of(node, &stream).is_err() {
            return Err(FirehoseError::invalid_argument(format!(
                "Stream {stream} under account {} not found.",
                self.identity.account_id()
            )));
        }
        let (start, running) = self.launch(definition)?;
        {
            // Persisted and registered under one lock, so a concurrent create or delete never
            // writes a file without this one.
            let mut registry = self.streams.lock().expect("not poisoned");
            if let Err(error) = self.persist(&registry, Some(&running.definition)) {
                running.delivery.stop();
                return Err(error);
            }
            registry.running.insert(name.clone(), running);
        }
        self.start_readers(start).await?;
        Ok(self.arn(&name))
    }

    /// DeleteDeliveryStream: stops it, forgets it, and drops its hidden stream.
    pub async fn delete(&self, node: &Rc<Node>, name: &str) -> Result<(), FirehoseError> {
        let running = {
            let mut registry = self.streams.lock().expect("not poisoned");
            let running =
                registry.running.remove(name).ok_or_else(|| FirehoseError::not_found(&self.identity, name))?;
            if let Err(error) = self.persist(&registry, None) {
                registry.running.insert(name.to_string(), running);
                return Err(error);
            }
            running
        };
        running.delivery.stop();
        let _ = std::fs::remove_file(self.checkpoint_path(name));
        if running.definition.is_direct_put() {
            let delete =
                DeleteStreamInput { stream_name: Some(running.definition.source_stream()), ..Default::default() };
            if let Err(error) = streams::delete(node, delete).await {
                tracing::warn!(delivery_stream = name, %error, "could not delete the hidden stream");
            }
        }
        Ok(())
    }

    /// UpdateDestination: the destination of `name` merged with `update` (see
    /// [`merge_destination`]) as version `current_version_id + 1`, if `current_version_id` is
    /// still its version (ConcurrentModificationException otherwise, as AWS answers two
    /// updates from the same version).
    ///
    /// The new definition is validated and planned first (a refused update changes nothing),
    /// then persisted, then the engine is replaced by one of the new plan that resumes from the
    /// checkpoint: every buffer not yet delivered is delivered under the new configuration,
    /// and nothing acknowledged is lost.
    // Unfinished: an upload in flight at the update is abandoned with its engine and its
    // records delivered again under the new configuration (a duplicate if it had completed
    // before its checkpoint was written), rather than finished under the old one.
    pub async fn update_destination(
        &self,
        name: &str,
        current_version_id: u64,
        destination_id: &str,
        update: Option<(&'static str, serde_json::Map<String, serde_json::Value>)>,
        now_ms: i64,
    ) -> Result<(), FirehoseError> {
        let start = {
            let mut registry = self.streams.lock().expect("not poisoned");
            let running = registry.running.get(name).ok_or_else(|| FirehoseError::not_found(&self.identity, name))?;
            let current = &running.definition;
            if current.version != current_version_id {
                return Err(FirehoseError::new(
                    "ConcurrentModificationException",
                    format!(
                        "Cannot update firehose: {name} since the current version id: {} and the version id in the request: {current_version_id} do not match",
                        current.version
                    ),
                ));
            }
            if destination_id != DESTINATION_ID {
                return Err(FirehoseError::invalid_argument(format!(
                    "Destination Id {destination_id} not found for firehose {name}"
                )));
            }
            let input = match update {
                Some((member, members)) => merge_destination(&current.input, member, members)?,
                None => current.input.clone(),
            };
            let definition = Definition {
                input,
                version: current.version + 1,
                create_ms: current.create_ms,
                update_ms: Some(now_ms),
                encryption: current.encryption.clone(),
            };
            DeliveryPlan::from_create(&definition.input, definition.version, &self.env)?;
            self.persist_replacing(&registry, &definition)?;
            let old = registry.running.remove(name).expect("looked up under this lock");
            old.delivery.stop();
            let (start, running) = self.launch(definition)?;
            registry.running.insert(name.to_string(), running);
            start
        };
        self.start_readers(start).await
    }

    /// Changes the definition of `name` with `edit` and persists it, without touching its
    /// engine (tags and the encryption key are not part of the delivery plan). A refused edit
    /// or a failed write changes nothing.
    fn edit_definition(
        &self,
        name: &str,
        edit: impl FnOnce(&mut Definition) -> Result<(), FirehoseError>,
    ) -> Result<(), FirehoseError> {
        let mut registry = self.streams.lock().expect("not poisoned");
        let running = registry.running.get(name).ok_or_else(|| FirehoseError::not_found(&self.identity, name))?;
        let mut definition = running.definition.clone();
        edit(&mut definition)?;
        self.persist_replacing(&registry, &definition)?;
        registry.running.get_mut(name).expect("looked up under this lock").definition = definition;
        Ok(())
    }

    /// TagDeliveryStream: adds `tags` to those of `name`, replacing the value of a key it
    /// already has, as AWS does; more than [`FIREHOSE_TAGS_MAX`] tags in all is
    /// LimitExceededException and changes nothing. Persisted with the definition.
    pub fn tag(&self, name: &str, tags: Vec<(String, Option<String>)>) -> Result<(), FirehoseError> {
        self.edit_definition(name, |definition| {
            let mut all: BTreeMap<String, Option<String>> =
                definition.input.tags.iter().flatten().map(|tag| (tag.key.clone(), tag.value.clone())).collect();
            all.extend(tags);
            if all.len() > FIREHOSE_TAGS_MAX {
                return Err(FirehoseError::new(
                    "LimitExceededException",
                    format!(
                        "Firehose {name} would have {} tags; a delivery stream has at most {FIREHOSE_TAGS_MAX}.",
                        all.len()
                    ),
                ));
            }
            definition.input.tags = Some(all.into_iter().map(|(key, value)| Tag { key, value }).collect());
            Ok(())
        })
    }

    /// UntagDeliveryStream: removes the tags of `keys`; keys it does not have are ignored, as
    /// AWS ignores them.
    pub fn untag(&self, name: &str, keys: &[String]) -> Result<(), FirehoseError> {
        self.edit_definition(name, |definition| {
            if let Some(tags) = &mut definition.input.tags {
                tags.retain(|tag| !keys.contains(&tag.key));
                if tags.is_empty() {
                    definition.input.tags = None;
                }
            }
            Ok(())
        })
    }

    /// ListTagsForDeliveryStream: up to `limit` tags of `name` after `exclusive_start_key`, in
    /// key order, and whether there are more.
    pub fn tags(
        &self,
        name: &str,
        exclusive_start_key: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Tag>, bool), FirehoseError> {
        let definition = self.definition(name)?;
        let mut tags = definition.input.tags.unwrap_or_default();
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        let start = exclusive_start_key.map_or(0, |after| tags.partition_point(|tag| tag.key.as_str() <= after));
        let page: Vec<Tag> = tags[start..].iter().take(limit).cloned().collect();
        let more = start + page.len() < tags.len();
        Ok((page, more))
    }

    /// The encryption status of `name`'s records at rest: that of its hidden stream.
    pub fn encryption_status(&self, node: &Node, definition: &Definition) -> EncryptionStatus {
        if !definition.is_direct_put() {
            return EncryptionStatus::Disabled;
        }
        let Ok(route) = records::route_of(node, &definition.source_stream()) else {
            return EncryptionStatus::Disabled;
        };
        let updating = encryption_updating(&route.meta, node.now_ms());
        match (route.meta.encryption.is_some(), updating) {
            (true, false) => EncryptionStatus::Enabled,
            (true, true) => EncryptionStatus::Enabling,
            (false, false) => EncryptionStatus::Disabled,
            (false, true) => EncryptionStatus::Disabling,
        }
    }

    /// StartDeliveryStreamEncryption: from now on the records of `name` are sealed in its
    /// hidden stream (the journal holds them until delivered) under the master key that
    /// `key_type` and `key_arn` name: for `AWS_OWNED_CMK`, the data directory's AWS-managed key
    /// (`alias/aws/kinesis`), Sluice having no AWS-owned keys; for `CUSTOMER_MANAGED_CMK`, the
    /// key of the key store (`--kms-keys`) that `key_arn` names, usable by `principal_arn`.
    /// Started again, it changes the key; records already sealed stay sealed under theirs.
    pub async fn start_encryption(
        &self,
        node: &Rc<Node>,
        principal_arn: Option<&str>,
        name: &str,
        key_type: &'static str,
        key_arn: Option<String>,
    ) -> Result<(), FirehoseError> {
        let definition = self.definition(name)?;
        if !definition.is_direct_put() {
            return Err(FirehoseError::invalid_argument(format!(
                "Firehose {name} reads a Kinesis stream (KinesisStreamAsSource): its records are encrypted at rest by the source stream's encryption (StartStreamEncryption), not the delivery stream's."
            )));
        }
        let key_id = key_arn.clone().unwrap_or_else(|| AWS_MANAGED_ALIAS.to_string());
        let keys = key_store(node.shared.config.security.keys.as_deref()).map_err(kms_resource_error)?;
        let key = keys.resolve(&key_id).map_err(|error| kms_resource_error(kms_error(error)))?;
        match principal_arn {
            Some(principal_arn) => key.check_usable(principal_arn, "kms:GenerateDataKey"),
            None => key.check_state(),
        }
        .map_err(|error| kms_resource_error(kms_error(error)))?;
        let encryption = StreamEncryption { key_id, master_key_id: key.key_id.to_string() };
        let stream = definition.source_stream();
        change(node, move |catalog, now_ms, rules| {
            crate::control::encryption::start(catalog, now_ms, rules, &stream, encryption)
        })
        .await
        .map_err(|error| catalog_error(name, error))?;
        self.edit_definition(name, |definition| {
            definition.encryption = Some(DeliveryEncryption { key_type: key_type.to_string(), key_arn });
            Ok(())
        })
    }

    /// StopDeliveryStreamEncryption: records put from now on are stored in plaintext; those
    /// sealed before stay sealed on disk and are opened when read for delivery. Stopping a
    /// delivery stream that is not encrypted changes nothing.
    pub async fn stop_encryption(&self, node: &Rc<Node>, name: &str) -> Result<(), FirehoseError> {
        let definition = self.definition(name)?;
        if !definition.is_direct_put() {
            return Err(FirehoseError::invalid_argument(format!(
                "Firehose {name} reads a Kinesis stream (KinesisStreamAsSource): stop the source stream's encryption instead (StopStreamEncryption)."
            )));
        }
        let stream = definition.source_stream();
        let current = records::route_of(node, &stream).ok().and_then(|route| route.meta.encryption.clone());
        if let Some(current) = current {
            change(node, move |catalog, now_ms, rules| {
                crate::control::encryption::stop(catalog, now_ms, rules, &stream, &current.master_key_id)
            })
            .await
            .map_err(|error| catalog_error(name, error))?;
        }
        self.edit_definition(name, |definition| {
            definition.encryption = None;
            Ok(())
        })
    }

    /// The definition of `name`.
    pub fn definition(&self, name: &str) -> Result<Definition, FirehoseError> {
        let registry = self.streams.lock().expect("not poisoned");
        registry
            .running
            .get(name)
            .map(|running| running.definition.clone())
            .ok_or_else(|| FirehoseError::not_found(&self.identity, name))
    }

    /// The names of every delivery stream (of `kind`, if given), sorted.
    pub fn names(&self, kind: Option<&str>) -> Vec<String> {
        let registry = self.streams.lock().expect("not poisoned");
        registry
            .running
            .values()
            .filter(|running| {
                let own = running.definition.input.delivery_stream_type.as_deref().unwrap_or("DirectPut");
                kind.is_none_or(|kind| kind == own)
            })
            .map(|running| running.definition.input.delivery_stream_name.clone())
            .collect()
    }

    /// PutRecord / PutRecordBatch: appends to the hidden stream and answers once the records
    /// are durable; per record, its id (the sequence number) or AWS's error code and message.
    pub async fn put(&self, node: &Rc<Node>, name: &str, data: Vec<Bytes>) -> Result<Vec<PutOutcome>, FirehoseError> {
        let definition = self.definition(name)?;
        if !definition.is_direct_put() {
            return Err(FirehoseError::invalid_argument(
                "This operation is not permitted on KinesisStreamAsSource delivery stream type.",
            ));
        }
        // Random keys spread the records over the hidden stream's shards.
        let records = data
            .into_iter()
            .map(|data| PutRecordsRequestEntry {
                data,
                explicit_hash_key: None,
                partition_key: Some(format!("{:016x}", rand::random::<u64>())),
            })
            .collect();
        let input = PutRecordsInput { records, stream_name: Some(definition.source_stream()), stream_arn: None };
        let output = records::put_records(node, input)
            .await
            .map_err(|error| FirehoseError::new("ServiceUnavailableException", error.message))?;
        Ok(output
            .records
            .into_iter()
            .map(|entry| match (entry.sequence_number, entry.error_code) {
                (Some(sequence), None) => Ok(sequence.to_string()),
                // AWS's per-record answer to throttling.
                (_, Some(ErrorKind::ProvisionedThroughputExceeded)) => {
                    Err(("ServiceUnavailableException", "Slow down.".to_string()))
                }
                (_, _) => Err(("InternalFailure", entry.error_message.unwrap_or_default())),
            })
            .collect())
    }
}

/// Refuses `operation` on a replicated node (`--peers`), with the message of the other
/// unreplicated operations (`cluster::meta::refuse_unreplicated`): delivery streams and channels
/// keep their definitions and checkpoints in the node's own files, not in the replicated
/// catalog, so each member would have its own and deliver alone, and a write to the hidden
/// stream would reach only the shards this member leads. InvalidArgumentException: retrying
/// does not help.
// Unfinished (issue 13, docs/replication.md "What is left"): delivery streams and channels on
// a replicated node.
pub fn refuse_on_replicated(node: &Node, operation: &str) -> Result<(), FirehoseError> {
    if node.shared.config.cluster.is_none() {
        return Ok(());
    }
    Err(FirehoseError::invalid_argument(refuse_unreplicated(operation).message))
}

/// A KMS error of StartDeliveryStreamEncryption as Firehose answers it:
/// InvalidKMSResourceException, with KMS's message.
// Unfinished: the model's `code` member (KMS's error name, e.g. `KMS.NotFoundException`) is not
// sent; FirehoseError carries AWS's `message` only.
fn kms_resource_error(error: sluice_model::KinesisError) -> FirehoseError {
    FirehoseError::new("InvalidKMSResourceException", error.message)
}

/// A refused catalog change of the hidden stream, in Firehose's words: a change within the
/// window of the previous one is ResourceInUseException, as AWS answers a delivery stream that
/// is ENABLING or DISABLING.
fn catalog_error(name: &str, error: sluice_model::KinesisError) -> FirehoseError {
    match error.kind {
        ErrorKind::ResourceInUse => FirehoseError::new(
            "ResourceInUseException",
            format!("Firehose {name} is changing its encryption; try again once its status is ENABLED or DISABLED."),
        ),
        ErrorKind::ResourceNotFound => FirehoseError::new("ResourceNotFoundException", error.message),
        ErrorKind::LimitExceeded => FirehoseError::new("LimitExceededException", error.message),
        _ => FirehoseError::invalid_argument(error.message),
    }
}

/// The one destination of a delivery stream: Sluice's delivery streams have one, and AWS
/// numbers the first `destinationId-000000000001`.
pub const DESTINATION_ID: &str = "destinationId-000000000001";

/// The configuration's members of the destinations Sluice delivers to.
const DESTINATION_MEMBERS: [&str; 3] =
    ["S3DestinationConfiguration", "ExtendedS3DestinationConfiguration", "HttpEndpointDestinationConfiguration"];

/// `input` with its destination updated as AWS's UpdateDestination does, by an update of the
/// destination configured under `member` (`ExtendedS3DestinationConfiguration` for an
/// `ExtendedS3DestinationUpdate`, …): an update of the
/// destination's own kind (either S3 update on either S3 destination) is merged into it, member
/// by member and into nested structures (`BufferingHints: {SizeInMBs: 5}` keeps the interval),
/// with lists and values replaced; the update shapes' `S3BackupUpdate` and `S3Update` merge into
/// `S3BackupConfiguration` and `S3Configuration`. An update of another kind replaces the
/// destination, so it must be complete (the validation that follows says what is missing).
pub fn merge_destination(
    input: &CreateDeliveryStreamInput,
    member: &str,
    mut members: serde_json::Map<String, serde_json::Value>,
) -> Result<CreateDeliveryStreamInput, FirehoseError> {
    use serde_json::Value;
    for (from, to) in [("S3BackupUpdate", "S3BackupConfiguration"), ("S3Update", "S3Configuration")] {
        if let Some(value) = members.remove(from) {
            members.insert(to.to_string(), value);
        }
    }
    fn merge(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(into), Value::Object(from)) => {
                for (key, value) in from {
                    merge(into.entry(key).or_insert(Value::Null), value);
                }
            }
            (into, from) => *into = from,
        }
    }
    let mut config = serde_json::to_value(input).expect("the configuration serializes");
    let object = config.as_object_mut().expect("the configuration is a structure");
    let current = DESTINATION_MEMBERS.into_iter().find(|known| object.contains_key(*known));
    let is_s3 = |member: &str| member != "HttpEndpointDestinationConfiguration";
    let member = match current {
        Some(current) if current == member || (is_s3(current) && is_s3(member)) => current,
        _ => {
            if let Some(current) = current {
                object.remove(current);
            }
            member
        }
    };
    let member = member.to_string();
    merge(object.entry(member).or_insert(Value::Object(Default::default())), Value::Object(members));
    // A destination replaced by an incomplete update lacks a required member: AWS's
    // ValidationException, as for the same member absent from a create.
    serde_json::from_value(config).map_err(|error| {
        let text = error.to_string();
        match text.strip_prefix("missing field `").and_then(|rest| rest.split_once('`')) {
            Some((member, _)) => FirehoseError::new(
                "ValidationException",
                format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"),
            ),
            None => FirehoseError::invalid_argument(format!("UpdateDestination: {text}")),
        }
    })
}

fn environment(config: &FirehoseConfig, identity: &Identity) -> Result<Environment, StartError> {
    let mut buckets = Buckets::new();
    for (name, bucket) in &config.buckets {
        match (&bucket.dir, &bucket.endpoint) {
            (Some(dir), None) => buckets.insert_directory(name, dir),
            (None, Some(url)) => {
                let from_env = |key: &str| std::env::var(key).ok();
                let endpoint = S3Endpoint {
                    url: url.clone(),
                    region: bucket.region.clone().unwrap_or_else(|| identity.region().to_string()),
                    access_key_id: bucket
                        .access_key_id
                        .clone()
                        .or_else(|| from_env("AWS_ACCESS_KEY_ID"))
                        .unwrap_or_default(),
                    secret_access_key: bucket
                        .secret_access_key
                        .clone()
                        .or_else(|| from_env("AWS_SECRET_ACCESS_KEY"))
                        .unwrap_or_default(),
                };
                buckets
                    .insert_s3(name, &endpoint)
                    .map_err(|source| StartError::Bucket { bucket: name.clone(), source })?;
            }
            _ => return Err(StartError::Config(format!("bucket {name} needs exactly one of dir and endpoint"))),
        }
    }
    let mut functions = Functions::new();
    for (name, function) in &config.functions {
        let function = match (&function.command, &function.url) {
            (Some(argv), None) if !argv.is_empty() => Function::Command { argv: argv.clone() },
            (None, Some(url)) => Function::Http { url: url.clone() },
            _ => return Err(StartError::Config(format!("function {name} needs exactly one of command and url"))),
        };
        functions.insert(name, function);
    }
    Ok(Environment {
        buckets,
        functions,
        region: identity.region().to_string(),
        account_id: identity.account_id().to_string(),
        options: EngineOptions::default(),
        glue: None,
    })
}

/// The checkpoint file: shard number → the last sequence number delivered.
fn read_checkpoint(path: &Path) -> BTreeMap<Lane, SequenceNumber> {
    let Ok(bytes) = std::fs::read(path) else { return BTreeMap::new() };
    match serde_json::from_slice::<BTreeMap<Lane, String>>(&bytes) {
        Ok(lanes) => lanes.into_iter().filter_map(|(lane, sequence)| Some((lane, sequence.parse().ok()?))).collect(),
        Err(error) => {
            // Written by atomic replacement, so this is damage from outside: say so, and start
            // from the trim horizon (duplicates, never loss).
            tracing::error!(path = %path.display(), %error, "unreadable checkpoint; delivering from the start");
            BTreeMap::new()
        }
    }
}

/// Writes the delivered positions whenever they move, and reports each write to the engine,
/// which delivers its next buffer only once the positions of the last one are durable (see
/// `sluice_firehose::engine`). Progress published while a write runs is taken together by the
/// next write, so a busy delivery stream costs one write and fsync per delivered buffer at
/// most, off the tokio workers.
async fn keep_checkpoint(path: PathBuf, mut progress: watch::Receiver<Progress>, durable: Durable) {
    let mut written = BTreeMap::new();
    loop {
        let open = progress.changed().await.is_ok();
        // Until the latest progress is durable: the engine waits for it, so a failed write is
        // retried rather than left for the next change, which would never come.
        loop {
            let latest = progress.borrow_and_update().clone();
            if latest.lanes == written {
                durable.report(&latest);
                break;
            }
            let text: BTreeMap<Lane, String> = latest
                .lanes
                .iter()
                .map(|(lane, Position(bytes))| (*lane, String::from_utf8_lossy(bytes).into_owned()))
                .collect();
            let bytes = serde_json::to_vec(&text).expect("positions serialize");
            let target = path.clone();
            match tokio::task::spawn_blocking(move || write_atomic(&target, &bytes)).await {
                Ok(Ok(())) => {
                    written = latest.lanes.clone();
                    durable.report(&latest);
                    break;
                }
                Ok(Err(error)) => tracing::error!(%error, "checkpoint not written; retrying"),
                Err(error) => tracing::error!(%error, "checkpoint task failed; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(FIREHOSE_CHECKPOINT_RETRY_MS)).await;
        }
        if !open {
            return;
        }
    }
}

impl crate::metrics::DeliveryMetrics for Firehose {
    /// Every running delivery stream's engine counters (AWS/Firehose names), and its data
    /// freshness under its destination's name.
    fn samples(&self, now_ms: i64) -> Vec<DeliveryStreamSample> {
        let registry = self.streams.lock().expect("not poisoned");
        registry
            .running
            .iter()
            .map(|(name, running)| {
                let metrics = &running.delivery.metrics;
                let counters = metrics
                    .snapshot(now_ms)
                    .into_iter()
                    .filter(|(name, _)| !name.ends_with(".DataFreshness"))
                    .collect();
                let http = running.definition.input.http_endpoint_destination_configuration.is_some();
                DeliveryStreamSample {
                    name: name.clone(),
                    counters,
                    data_freshness_name: if http {
                        "DeliveryToHttpEndpoint.DataFreshness"
                    } else {
                        "DeliveryToS3.DataFreshness"
                    },
                    data_freshness_s: metrics.data_freshness_s(now_ms),
                }
            })
            .collect()
    }
}

/// Core 0: starts the readers of every delivery stream it is told of, for the life of the node,
/// and registers the delivery streams' figures for `/metrics`.
// Unfinished: channels run on the same engine, but their figures are not exported yet.
pub async fn serve_readers(node: Rc<Node>, firehose: Arc<Firehose>) {
    let _ = node.shared.delivery_metrics.set(firehose.clone());
    while let Ok(start) = firehose.readers_rx.recv().await {
        let start = Rc::new(start);
        let shards: Vec<u32> = match records::route_of(&node, &start.stream) {
            Ok(route) => route.meta.shards.iter().map(|shard| shard.number).collect(),
            Err(error) => {
                // Its stream is gone (deleted under a KinesisStreamAsSource delivery stream,
                // say): nothing to read until it comes back and sluiced restarts.
                tracing::warn!(delivery_stream = %start.name, %error, "source stream not found");
                Vec::new()
            }
        };
        for shard in shards {
            glommio::spawn_local(read_shard(node.clone(), start.clone(), shard)).detach();
        }
    }
}

/// One shard of a delivery stream's source into its engine, from its checkpoint on.
// Unfinished: a KinesisStreamAsSource delivery stream reads the shards its stream had when
// the reader started; children of a later reshard are not picked up until a restart, and
// parents are not read before children.
async fn read_shard(node: Rc<Node>, start: Rc<ReaderStart>, shard: u32) {
    let sleep = |ms| glommio::timer::sleep(Duration::from_millis(ms));
    let mut after = start.after.get(&shard).cloned();
    'iterator: while !start.stop.load(Ordering::Acquire) {
        let (kind, timestamp) = match (&after, start.start_ms) {
            (Some(_), _) => (ShardIteratorType::AfterSequenceNumber, None),
            (None, Some(ms)) => (ShardIteratorType::AtTimestamp, Some(Timestamp::from_epoch_ms(ms))),
            (None, None) => (ShardIteratorType::TrimHorizon, None),
        };
        let input = GetShardIteratorInput {
            stream_name: Some(start.stream.clone()),
            shard_id: ShardId::from_number(shard),
            shard_iterator_type: kind,
            starting_sequence_number: after.clone(),
            timestamp,
            stream_arn: None,
        };
        let mut iterator = match records::get_shard_iterator(&node, input).await {
            Ok(output) => match output.shard_iterator {
                Some(iterator) => iterator,
                None => return,
            },
            Err(error) if error.kind == ErrorKind::ResourceNotFound => return,
            Err(error) => {
                tracing::debug!(delivery_stream = %start.name, %error, "GetShardIterator failed; retrying");
                sleep(FIREHOSE_READ_BACKOFF_MS).await;
                continue;
            }
        };
        loop {
            if start.stop.load(Ordering::Acquire) {
                return;
            }
            let input = GetRecordsInput {
                shard_iterator: iterator.clone(),
                limit: Some(FIREHOSE_READ_RECORDS_MAX),
                stream_arn: None,
            };
            match records::get_records(&node, input).await {
                Ok(output) => {
                    let empty = output.records.is_empty();
                    for record in output.records {
                        let sequence = record.sequence_number;
                        let source = SourceRecord {
                            lane: shard,
                            position: Position(Bytes::from(sequence.to_string())),
                            arrival_ms: record
                                .approximate_arrival_timestamp
                                .map_or_else(|| node.now_ms(), Timestamp::epoch_ms),
                            data: record.data,
                        };
                        // The engine's channel is bounded: a slow destination holds this
                        // reader here, never the writers of the stream.
                        if start.records.send(source).await.is_err() {
                            return;
                        }
                        after = Some(sequence);
                    }
                    match output.next_shard_iterator {
                        Some(next) => iterator = next,
                        None => return,
                    }
                    if empty {
                        sleep(FIREHOSE_READ_IDLE_MS).await;
                    }
                }
                Err(error) if error.kind == ErrorKind::ExpiredIterator => continue 'iterator,
                Err(error) if error.kind == ErrorKind::ResourceNotFound => return,
                Err(error) => {
                    tracing::debug!(delivery_stream = %start.name, %error, "GetRecords failed; retrying");
                    sleep(FIREHOSE_READ_BACKOFF_MS).await;
                    continue 'iterator;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn input(config: Value) -> CreateDeliveryStreamInput {
        serde_json::from_value(config).unwrap()
    }

    fn update(members: Value) -> serde_json::Map<String, Value> {
        members.as_object().unwrap().clone()
    }

    #[test]
    fn an_update_of_the_same_kind_merges_and_another_kind_replaces() {
        let s3 = input(json!({"DeliveryStreamName": "d", "ExtendedS3DestinationConfiguration": {
            "RoleARN": "r", "BucketARN": "arn:aws:s3:::a", "Prefix": "v1/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}}}));
        let merged = merge_destination(
            &s3,
            "S3DestinationConfiguration",
            update(json!({"BufferingHints": {"SizeInMBs": 5}, "S3BackupUpdate": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::b"}})),
        )
        .unwrap();
        let merged = serde_json::to_value(&merged).unwrap();
        let s3 = &merged["ExtendedS3DestinationConfiguration"];
        assert_eq!(s3["BufferingHints"], json!({"SizeInMBs": 5, "IntervalInSeconds": 60}));
        assert_eq!((s3["Prefix"].as_str(), s3["BucketARN"].as_str()), (Some("v1/"), Some("arn:aws:s3:::a")));
        assert_eq!(s3["S3BackupConfiguration"]["BucketARN"], "arn:aws:s3:::b");
        assert!(merged.get("S3DestinationConfiguration").is_none());

        let http = input(json!({"DeliveryStreamName": "d", "ExtendedS3DestinationConfiguration": {
            "RoleARN": "r", "BucketARN": "arn:aws:s3:::a"}}));
        let replaced = merge_destination(
            &http,
            "HttpEndpointDestinationConfiguration",
            update(json!({"EndpointConfiguration": {"Url": "https://e"},
                          "S3Update": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::a"}})),
        )
        .unwrap();
        assert!(replaced.extended_s3_destination_configuration.is_none());
        let replaced = serde_json::to_value(&replaced).unwrap();
        assert_eq!(replaced["HttpEndpointDestinationConfiguration"]["S3Configuration"]["BucketARN"], "arn:aws:s3:::a");

        // Another kind replaces the destination, so the update must be complete.
        let incomplete = merge_destination(
            &http,
            "HttpEndpointDestinationConfiguration",
            update(json!({"EndpointConfiguration": {"Url": "https://e"}})),
        );
        assert_eq!(incomplete.unwrap_err().exception, "ValidationException");
    }
}
