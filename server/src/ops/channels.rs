//! Kinesis channels (CreateChannel, DescribeChannel, ListChannels, UpdateChannel,
//! DeleteChannel of the Kinesis model) inside sluiced: each channel is a delivery from its
//! source stream to a general-purpose bucket, run by the delivery streams' machinery
//! (`ops::firehose`: the engine, the readers on core 0, the checkpoint task) with the plan
//! `sluice_firehose::channel::plan` makes of its configuration.
//!
//! Definitions (the CreateChannel input as updated, its id and creation time) are kept in
//! `data-dir/firehose/channels.json`, replaced atomically on every change; each channel's
//! delivered positions in `data-dir/firehose/channel-checkpoints/NAME.json` (a directory of
//! their own: a channel and a delivery stream may share a name).
//!
//! Statuses: a channel is CREATING until its engine runs and its readers are handed to core 0,
//! UPDATING while UpdateChannel replaces its engine, DELETING while DeleteChannel stops it
//! (after which it is gone: DescribeChannel answers ResourceNotFoundException). Each of these
//! lasts as long as the call; the answer of CreateChannel and UpdateChannel shows the status
//! the call started in, as AWS's does.
//!
//! A channel reads its stream from the time it was created (as a `KinesisStreamAsSource`
//! delivery stream does), and after a restart from its checkpoint.
//
// Unfinished: channels with more than one stream in `StreamConfigurationList` (refused with
// InvalidArgumentException: the engine's lanes are one stream's shard numbers), the S3 Tables
// (Iceberg) destination (refused by the plan, see docs/firehose.md), EncryptionConfiguration
// and LoggingConfiguration (kept and described, not applied), per-caller authorization of the
// channel operations, and CBOR bodies for them (answered as JSON).

use crate::limits::{FIREHOSE_CHANNELS_LIST_DEFAULT, FIREHOSE_CHANNELS_MAX};
use crate::ops::firehose::{stream_of_arn, Delivery, Firehose, FirehoseError, StartError};
use crate::ops::node::Node;
use crate::ops::records;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sluice_engine::catalog::write_atomic;
use sluice_firehose::channel::{self, CreateChannelInput};
use sluice_firehose::limits::{
    CHANNEL_DATA_FRESHNESS_S_DEFAULT, CHANNEL_DATA_FRESHNESS_S_MAX, CHANNEL_DATA_FRESHNESS_S_MIN,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// `ChannelStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "CREATING",
            Status::Active => "ACTIVE",
            Status::Updating => "UPDATING",
            Status::Deleting => "DELETING",
        }
    }
}

/// What is kept of a channel across restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelDefinition {
    /// The CreateChannel input, with UpdateChannel's changes applied.
    pub input: CreateChannelInput,
    /// `ChannelId`: generated at creation; a channel created again under its name is another.
    pub id: String,
    pub create_ms: i64,
    /// When its source stream was created (`StreamCreationTimestamp`).
    pub stream_create_ms: i64,
}

impl ChannelDefinition {
    fn name(&self) -> &str {
        &self.input.channel_name
    }

    fn stream(&self) -> &str {
        stream_of_arn(&self.input.stream_configuration_list[0].stream_arn)
    }
}

struct Entry {
    definition: ChannelDefinition,
    status: Status,
    /// `None` while CREATING or UPDATING, or if its plan failed at start-up (a bucket removed
    /// from the configuration): it is kept, so fixing the configuration brings it back.
    delivery: Option<Delivery>,
}

/// The node's channels, by name.
#[derive(Default)]
struct Registry {
    channels: BTreeMap<String, Entry>,
}

/// Every channel of the node, and the delivery streams' machinery that runs them; shared by
/// all cores. It holds the [`Firehose`] rather than the other way round, so that `ops::firehose`
/// knows nothing of channels.
pub struct Channels {
    firehose: Arc<Firehose>,
    registry: Mutex<Registry>,
}

fn definitions_path(firehose: &Firehose) -> PathBuf {
    firehose.dir().join("channels.json")
}

fn checkpoint_path(firehose: &Firehose, name: &str) -> PathBuf {
    firehose.dir().join("channel-checkpoints").join(format!("{name}.json"))
}

fn arn(firehose: &Firehose, name: &str) -> String {
    let identity = firehose.identity();
    format!("arn:aws:kinesis:{}:{}:channel/{name}", identity.region(), identity.account_id())
}

fn not_found(arn: &str) -> FirehoseError {
    FirehoseError::new("ResourceNotFoundException", format!("Channel {arn} not found."))
}

fn internal(message: String) -> FirehoseError {
    FirehoseError::new("InternalFailure", message)
}

/// Reads the definitions and starts every channel (sluiced's start, after `Firehose::open`).
pub fn open(firehose: Arc<Firehose>) -> Result<Arc<Channels>, StartError> {
    let firehose = &firehose;
    let path = definitions_path(firehose);
    let definitions: Vec<ChannelDefinition> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|error| StartError::Parse { path: path.clone(), message: error.to_string() })?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(StartError::Read { path, source }),
    };
    let mut registry = Registry::default();
    for definition in definitions {
        let name = definition.name().to_string();
        let delivery = match launch(firehose, &definition) {
            Ok((start, delivery)) => {
                firehose.start_readers_now(start);
                Some(delivery)
            }
            Err(error) => {
                tracing::error!(channel = %name, message = %error.message, "cannot start");
                None
            }
        };
        registry.channels.insert(name, Entry { definition, status: Status::Active, delivery });
    }
    Ok(Arc::new(Channels { firehose: firehose.clone(), registry: Mutex::new(registry) }))
}

/// Plans `definition` and spawns its engine (its readers start when the answer's first part
/// reaches core 0).
fn launch(
    firehose: &Firehose,
    definition: &ChannelDefinition,
) -> Result<(crate::ops::firehose::ReaderStart, Delivery), FirehoseError> {
    let plan = channel::plan(&definition.input, firehose.env(), firehose.channel_freshness_override())?;
    Ok(firehose.spawn_delivery(
        plan,
        definition.stream().to_string(),
        checkpoint_path(firehose, definition.name()),
        Some(definition.create_ms),
    ))
}

/// Writes every definition to disk, atomically.
fn persist(firehose: &Firehose, registry: &Registry) -> Result<(), FirehoseError> {
    let all: Vec<&ChannelDefinition> = registry.channels.values().map(|entry| &entry.definition).collect();
    let bytes = serde_json::to_vec_pretty(&all).expect("definitions serialize");
    std::fs::create_dir_all(firehose.dir().join("channel-checkpoints"))
        .map_err(|error| internal(format!("create {}: {error}", firehose.dir().display())))?;
    write_atomic(&definitions_path(firehose), &bytes).map_err(|error| internal(format!("persist channels: {error}")))
}

/// The name a `ChannelARN` of this node names, or ResourceNotFoundException.
fn name_of(firehose: &Firehose, channel_arn: &str) -> Result<String, FirehoseError> {
    let (_, name) = channel_arn.rsplit_once(":channel/").ok_or_else(|| not_found(channel_arn))?;
    if arn(firehose, name) != channel_arn {
        return Err(not_found(channel_arn));
    }
    Ok(name.to_string())
}

/// CreateChannel: validates, checks the source stream, persists, starts; answers the
/// description (CREATING).
pub async fn create(channels: &Channels, node: &Rc<Node>, input: CreateChannelInput) -> Result<Value, FirehoseError> {
    let firehose = &*channels.firehose;
    // The model's constraints and the destinations' rules first, then what Sluice cannot do
    // yet, then the plan (unknown buckets): a refused request changes nothing.
    channel::validate_create(&input)?;
    if input.stream_configuration_list.len() > 1 {
        return Err(FirehoseError::invalid_argument(
            "Sluice channels read one stream: StreamConfigurationList must have exactly one member.",
        ));
    }
    channel::plan(&input, firehose.env(), None)?;
    let identity = firehose.identity();
    let stream_arn = &input.stream_configuration_list[0].stream_arn;
    let stream = stream_of_arn(stream_arn);
    let own_arn = format!("arn:aws:kinesis:{}:{}:stream/{stream}", identity.region(), identity.account_id());
    let route = match records::route_of(node, stream) {
        Ok(route) if own_arn == *stream_arn => route,
        _ => {
            return Err(FirehoseError::new("ResourceNotFoundException", format!("Stream {stream_arn} not found.")));
        }
    };
    let name = input.channel_name.clone();
    let definition = ChannelDefinition {
        input,
        id: uuid::Uuid::new_v4().to_string(),
        create_ms: node.now_ms(),
        stream_create_ms: route.meta.created_ms,
    };
    let created = {
        let mut registry = channels.registry.lock().expect("not poisoned");
        if registry.channels.contains_key(&name) {
            return Err(FirehoseError::new(
                "ResourceInUseException",
                format!("Channel {} already exists.", arn(firehose, &name)),
            ));
        }
        // An Iceberg table has one writer: two channels committing to it would both write the
        // same next metadata version (see sluice_firehose::iceberg).
        if let Some(table) = table_of(&definition.input) {
            if let Some(other) =
                registry.channels.values().find(|entry| table_of(&entry.definition.input) == Some(table))
            {
                return Err(FirehoseError::new(
                    "ResourceInUseException",
                    format!(
                        "Table {}.{} of {} is already the destination of channel {}.",
                        table.1,
                        table.2,
                        table.0,
                        other.definition.name()
                    ),
                ));
            }
        }
        if registry.channels.len() >= FIREHOSE_CHANNELS_MAX {
            return Err(FirehoseError::new(
                "LimitExceededException",
                format!("This node already has the maximum of {FIREHOSE_CHANNELS_MAX} channels."),
            ));
        }
        registry
            .channels
            .insert(name.clone(), Entry { definition: definition.clone(), status: Status::Creating, delivery: None });
        if let Err(error) = persist(firehose, &registry) {
            registry.channels.remove(&name);
            return Err(error);
        }
        describe_entry(firehose, &registry.channels[&name])
    };
    let (start, delivery) = match launch(firehose, &definition) {
        Ok(launched) => launched,
        Err(error) => {
            let mut registry = channels.registry.lock().expect("not poisoned");
            registry.channels.remove(&name);
            persist(firehose, &registry)?;
            return Err(error);
        }
    };
    firehose.start_readers(start).await?;
    let mut registry = channels.registry.lock().expect("not poisoned");
    match registry.channels.get_mut(&name) {
        Some(entry) if entry.definition.id == definition.id => {
            entry.delivery = Some(delivery);
            entry.status = Status::Active;
        }
        // Deleted while it was being created.
        _ => delivery.stop(),
    }
    Ok(json!({ "ChannelDescription": created }))
}

/// The Iceberg table a channel writes, as (table bucket ARN, namespace, table name).
fn table_of(input: &CreateChannelInput) -> Option<(&str, &str, &str)> {
    let table = input.s3_tables_destination_configuration.as_ref()?.s3_tables_configuration_list.first()?;
    Some((&table.table_bucket_arn, &table.namespace, &table.table_name))
}

/// DescribeChannel.
pub fn describe(channels: &Channels, channel_arn: &str) -> Result<Value, FirehoseError> {
    let firehose = &*channels.firehose;
    let name = name_of(firehose, channel_arn)?;
    let registry = channels.registry.lock().expect("not poisoned");
    let entry = registry.channels.get(&name).ok_or_else(|| not_found(channel_arn))?;
    Ok(json!({ "ChannelDescription": describe_entry(firehose, entry) }))
}

/// ListChannels: every channel (of the streams in `stream_filter`, if given), by name.
pub fn list(
    channels: &Channels,
    stream_filter: Option<&[String]>,
    max_results: Option<usize>,
    next_token: Option<&str>,
) -> Result<Value, FirehoseError> {
    let firehose = &*channels.firehose;
    let registry = channels.registry.lock().expect("not poisoned");
    let after = match next_token {
        // The token is the last name of the previous page.
        Some(token) => {
            if !registry.channels.keys().any(|name| name.as_str() > token) && !registry.channels.contains_key(token) {
                return Err(FirehoseError::invalid_argument(format!("Invalid NextToken: {token}")));
            }
            Some(token)
        }
        None => None,
    };
    let limit = max_results.unwrap_or(FIREHOSE_CHANNELS_LIST_DEFAULT);
    let mut matching = registry
        .channels
        .iter()
        .filter(|(name, _)| after.is_none_or(|after| name.as_str() > after))
        .filter(|(_, entry)| {
            let stream_arn = &entry.definition.input.stream_configuration_list[0].stream_arn;
            stream_filter.is_none_or(|filter| filter.iter().any(|arn| arn == stream_arn))
        })
        .peekable();
    let mut summaries = Vec::new();
    let mut last = None;
    while summaries.len() < limit {
        let Some((name, entry)) = matching.next() else { break };
        summaries.push(summary(firehose, entry));
        last = Some(name.clone());
    }
    let mut answer = json!({ "ChannelSummaries": summaries });
    if matching.peek().is_some() {
        answer["NextToken"] = json!(last);
    }
    Ok(answer)
}

/// UpdateChannel: a new `DataFreshnessInSeconds` (the one thing the model lets change besides
/// logging), applied by replacing the channel's engine; it resumes from its checkpoint, so
/// what the old engine buffered is read again, not lost.
pub async fn update(
    channels: &Channels,
    channel_arn: &str,
    data_freshness_s: Option<i64>,
    s3_tables_freshness_s: Option<i64>,
    logging: Option<Value>,
) -> Result<Value, FirehoseError> {
    let firehose = &*channels.firehose;
    let name = name_of(firehose, channel_arn)?;
    if let Some(freshness) = data_freshness_s.or(s3_tables_freshness_s) {
        let range = i64::from(CHANNEL_DATA_FRESHNESS_S_MIN)..=i64::from(CHANNEL_DATA_FRESHNESS_S_MAX);
        if !range.contains(&freshness) {
            return Err(FirehoseError::invalid_argument(format!(
                "DataFreshnessInSeconds must be between {CHANNEL_DATA_FRESHNESS_S_MIN} and {CHANNEL_DATA_FRESHNESS_S_MAX}, not {freshness}."
            )));
        }
    }
    let (definition, old, updating) = {
        let mut registry = channels.registry.lock().expect("not poisoned");
        let entry = registry.channels.get_mut(&name).ok_or_else(|| not_found(channel_arn))?;
        if entry.status != Status::Active {
            return Err(FirehoseError::new(
                "ResourceInUseException",
                format!("Channel {channel_arn} is {}, not ACTIVE.", entry.status.as_str()),
            ));
        }
        let mut definition = entry.definition.clone();
        match (&mut definition.input.s3_destination_configuration, data_freshness_s, s3_tables_freshness_s) {
            (Some(s3), Some(freshness), _) => s3.data_freshness_in_seconds = Some(freshness),
            (None, _, Some(freshness)) => {
                if let Some(tables) = &mut definition.input.s3_tables_destination_configuration {
                    tables.data_freshness_in_seconds = Some(freshness);
                }
            }
            (Some(_), None, None) => {}
            (Some(_), None, Some(_)) => {
                return Err(FirehoseError::invalid_argument(
                    "This channel has an S3 destination: use S3DestinationConfiguration.",
                ))
            }
            (None, _, None) => {}
        }
        if let Some(logging) = logging {
            definition.input.logging_configuration = Some(logging);
        }
        let previous = std::mem::replace(&mut entry.definition, definition.clone());
        if let Err(error) = persist(firehose, &registry) {
            registry.channels.get_mut(&name).expect("held under the lock").definition = previous;
            return Err(error);
        }
        let entry = registry.channels.get_mut(&name).expect("held under the lock");
        entry.status = Status::Updating;
        let updating = describe_entry(firehose, entry);
        (definition, entry.delivery.take(), updating)
    };
    if let Some(old) = old {
        old.stop();
    }
    let launched = launch(firehose, &definition);
    let delivery = match launched {
        Ok((start, delivery)) => {
            firehose.start_readers(start).await?;
            Some(delivery)
        }
        Err(error) => {
            tracing::error!(channel = %name, message = %error.message, "cannot restart after UpdateChannel");
            None
        }
    };
    let mut registry = channels.registry.lock().expect("not poisoned");
    match registry.channels.get_mut(&name) {
        Some(entry) if entry.definition.id == definition.id => {
            entry.delivery = delivery;
            entry.status = Status::Active;
        }
        _ => {
            if let Some(delivery) = delivery {
                delivery.stop();
            }
        }
    }
    Ok(json!({ "ChannelDescription": updating }))
}

/// DeleteChannel: stops it and forgets it, with its checkpoint.
pub fn delete(channels: &Channels, channel_arn: &str) -> Result<(), FirehoseError> {
    let firehose = &*channels.firehose;
    let name = name_of(firehose, channel_arn)?;
    let mut registry = channels.registry.lock().expect("not poisoned");
    let mut entry = registry.channels.remove(&name).ok_or_else(|| not_found(channel_arn))?;
    entry.status = Status::Deleting;
    if let Err(error) = persist(firehose, &registry) {
        entry.status = Status::Active;
        registry.channels.insert(name, entry);
        return Err(error);
    }
    drop(registry);
    if let Some(delivery) = entry.delivery.take() {
        delivery.stop();
    }
    let _ = std::fs::remove_file(checkpoint_path(firehose, &name));
    Ok(())
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// `ChannelDescription`.
fn describe_entry(firehose: &Firehose, entry: &Entry) -> Value {
    let definition = &entry.definition;
    let input = &definition.input;
    let streams: Vec<Value> = input
        .stream_configuration_list
        .iter()
        .map(|stream| {
            json!({
                "StreamARN": stream.stream_arn,
                "StreamCreationTimestamp": seconds(definition.stream_create_ms),
                "RecordConfiguration": stream.record_configuration,
            })
        })
        .collect();
    let mut description = json!({
        "ChannelName": input.channel_name,
        "ChannelARN": arn(firehose, &input.channel_name),
        "ChannelId": definition.id,
        "ChannelStatus": entry.status.as_str(),
        "ChannelCreationTimestamp": seconds(definition.create_ms),
        "ServiceExecutionRoleARN": input.service_execution_role_arn,
        "StreamConfigurationList": streams,
        "LoggingConfiguration": input.logging_configuration.clone()
            .unwrap_or_else(|| json!({"CloudWatchLogs": {"Enabled": false}})),
    });
    if entry.delivery.is_none() && entry.status == Status::Active {
        description["ChannelStatusReason"] =
            json!("The channel's destination is not configured on this node (see sluiced's log).");
    }
    if let Some(s3) = &input.s3_destination_configuration {
        // The description requires a dead-letter configuration: without one, failed records go
        // to the destination bucket (see `sluice_firehose::channel`), which is what it shows.
        let dead_letter =
            s3.dead_letter_queue_s3_configuration.clone().unwrap_or_else(|| channel::DeadLetterQueueS3Configuration {
                bucket_arn: s3.storage_configuration.bucket_arn.clone(),
                expected_bucket_owner: s3.storage_configuration.expected_bucket_owner.clone(),
                error_output_prefix: None,
            });
        description["S3DestinationConfiguration"] = json!({
            "DataFreshnessInSeconds": s3.data_freshness_in_seconds.unwrap_or(i64::from(CHANNEL_DATA_FRESHNESS_S_DEFAULT)),
            "DeadLetterQueueS3Configuration": dead_letter,
            "StorageConfiguration": s3.storage_configuration,
        });
    }
    if let Some(tables) = &input.s3_tables_destination_configuration {
        // `S3TablesDestinationDescription`: the same members, the freshness always present.
        let mut shown = serde_json::to_value(tables).expect("configurations serialize");
        shown["DataFreshnessInSeconds"] =
            json!(tables.data_freshness_in_seconds.unwrap_or(i64::from(CHANNEL_DATA_FRESHNESS_S_DEFAULT)));
        description["S3TablesDestinationConfiguration"] = shown;
    }
    if let Some(encryption) = &input.encryption_configuration {
        description["EncryptionConfiguration"] = encryption.clone();
    }
    description
}

/// `ChannelSummary`.
fn summary(firehose: &Firehose, entry: &Entry) -> Value {
    let definition = &entry.definition;
    let input = &definition.input;
    json!({
        "ChannelName": input.channel_name,
        "ChannelARN": arn(firehose, &input.channel_name),
        "ChannelId": definition.id,
        "ChannelStatus": entry.status.as_str(),
        "ChannelCreationTimestamp": seconds(definition.create_ms),
        "ChannelDestinationType": if input.s3_destination_configuration.is_some() { "S3" } else { "S3_TABLES" },
        "Streams": input.stream_configuration_list.iter().map(|stream| json!({
            "StreamARN": stream.stream_arn,
            "StreamCreationTimestamp": seconds(definition.stream_create_ms),
        })).collect::<Vec<_>>(),
    })
}
