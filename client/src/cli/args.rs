//! The command line: `aws kinesis`'s commands and parameter names, mapped to requests.
//!
//! Parameters keep the AWS CLI's spelling (`--stream-name`, `--shard-iterator-type`,
//! `--starting-position`), and structured ones accept its shorthand (`Key=Value,...`) or
//! JSON. Two differences from the AWS CLI, for people typing records: `--data` takes text
//! (`--data-base64` takes binary as base64), and timestamps are epoch seconds. Parsing is
//! done before connecting, and a bad value is reported as the AWS CLI does
//! (`Error parsing parameter '--records': ...`).

use std::collections::BTreeMap;

use crate::cli::queues::EntryOperation;
use crate::cli::settings;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use sluice_client::*;
use std::str::FromStr;

/// Where `sluiced` listens for the native protocol unless `--endpoint` says otherwise.
pub const ENDPOINT_DEFAULT: &str = "127.0.0.1:4568";
/// Where `sluiced` serves the AWS API over HTTP unless `--http-endpoint` says otherwise.
pub const HTTP_ENDPOINT_DEFAULT: &str = "127.0.0.1:4567";

/// Command-line client for sluiced, a Kinesis-compatible streaming server.
///
/// Commands, parameters and JSON output follow `aws kinesis`. Service errors are printed as
/// the AWS CLI prints them, with exit status 255.
#[derive(Debug, Parser)]
#[command(name = "sluice", version)]
pub struct Cli {
    /// The sluiced native-protocol endpoint.
    #[arg(long, global = true, value_name = "HOST:PORT", default_value = ENDPOINT_DEFAULT)]
    pub endpoint: String,

    /// The sluiced HTTP endpoint (its `--http-listen`), for the queue commands and
    /// `firehose --http`, which go over the AWS JSON protocol (a `firehose` command given only
    /// this endpoint goes over HTTP too).
    #[arg(long, global = true, value_name = "HOST:PORT", default_value = HTTP_ENDPOINT_DEFAULT)]
    pub http_endpoint: String,

    /// The region sluiced runs in (its `--region`), part of the key the native handshake
    /// derives (and of SigV4 signatures with `--http`). Default: AWS_REGION,
    /// AWS_DEFAULT_REGION, else us-east-1. Credentials come from where the AWS CLI finds them
    /// (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the AWS_PROFILE
    /// profile of ~/.aws/credentials, or `--profile`).
    #[arg(long, global = true)]
    pub region: Option<String>,

    /// Credentials from this profile of the shared credentials file (AWS_SHARED_CREDENTIALS_FILE,
    /// else ~/.aws/credentials) instead of the environment, as `aws --profile`.
    #[arg(long, global = true)]
    pub profile: Option<String>,

    /// Connect with TLS (the daemon's `--tls-cert`), trusting the CA certificates of this PEM
    /// bundle, as `aws --ca-bundle` does; with `produce --http` / `consume --http`, HTTPS.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_bundle: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a stream (it starts in CREATING).
    CreateStream(CreateStreamArgs),
    /// Write records from stdin through the producer (KPL aggregation, batching, retries).
    Produce(crate::cli::pipe::ProduceArgs),
    /// Read every shard of a stream and print its user records as JSON lines.
    Consume(crate::cli::pipe::ConsumeArgs),
    /// Delete a stream.
    DeleteStream(DeleteStreamArgs),
    /// Describe a stream and a page of its shards.
    DescribeStream(DescribeStreamArgs),
    /// Describe a stream without its shards.
    DescribeStreamSummary(StreamArgs),
    /// List streams.
    ListStreams(ListStreamsArgs),
    /// List a stream's shards.
    ListShards(ListShardsArgs),
    /// Write one record.
    PutRecord(PutRecordArgs),
    /// Write up to 500 records.
    PutRecords(PutRecordsArgs),
    /// Get an iterator to read a shard from.
    GetShardIterator(GetShardIteratorArgs),
    /// Read records with a shard iterator.
    GetRecords(GetRecordsArgs),
    /// Lengthen a stream's retention period.
    IncreaseStreamRetentionPeriod(RetentionArgs),
    /// Shorten a stream's retention period.
    DecreaseStreamRetentionPeriod(RetentionArgs),
    /// Add or update tags of a stream.
    AddTagsToStream(AddTagsToStreamArgs),
    /// Remove tags from a stream.
    RemoveTagsFromStream(RemoveTagsFromStreamArgs),
    /// List a stream's tags.
    ListTagsForStream(ListTagsForStreamArgs),
    /// Split a shard in two at a hash key.
    SplitShard(SplitShardArgs),
    /// Merge two shards with adjacent hash-key ranges.
    MergeShards(MergeShardsArgs),
    /// Scale a stream to a number of shards of equal ranges.
    UpdateShardCount(UpdateShardCountArgs),
    /// Show the shard and on-demand stream limits and usage.
    DescribeLimits,
    /// Register an enhanced fan-out consumer.
    RegisterStreamConsumer(RegisterStreamConsumerArgs),
    /// Deregister a consumer (by --consumer-arn, or --stream-arn and --consumer-name).
    DeregisterStreamConsumer(ConsumerArgs),
    /// Describe a consumer (by --consumer-arn, or --stream-arn and --consumer-name).
    DescribeStreamConsumer(ConsumerArgs),
    /// List a stream's consumers.
    ListStreamConsumers(ListStreamConsumersArgs),
    /// Receive a shard's records as they arrive, one JSON line per event.
    SubscribeToShard(SubscribeToShardArgs),
    /// Create a consumer group (an application of a stream) whose leases sluiced keeps.
    CreateApplication(crate::cli::leases::CreateApplicationArgs),
    /// Describe an application (by --application-arn, or the stream and --application-name).
    DescribeApplication(crate::cli::leases::ApplicationArgs),
    /// List a stream's applications.
    ListApplications(crate::cli::leases::ListApplicationsArgs),
    /// Delete an application and its leases.
    DeleteApplication(crate::cli::leases::ApplicationArgs),
    /// List an application's leases: owner, counter, expiry and checkpoint per shard.
    ListLeases(crate::cli::leases::ListLeasesArgs),
    /// Create a Kinesis queue on an on-demand stream (over HTTP: --http-endpoint).
    CreateQueue(crate::cli::queues::CreateQueueArgs),
    /// Describe a queue.
    DescribeQueue(crate::cli::queues::QueueArnArgs),
    /// List queues (optionally of some streams).
    ListQueues(crate::cli::queues::ListQueuesArgs),
    /// Change a queue's visibility timeout or dead-letter configuration.
    UpdateQueue(crate::cli::queues::UpdateQueueArgs),
    /// Delete a queue.
    DeleteQueue(crate::cli::queues::QueueArnArgs),
    /// Receive up to 10 records of a queue, with their receipt handles.
    ReceiveQueueRecords(crate::cli::queues::ReceiveArgs),
    /// Acknowledge received records so they are not delivered again.
    AcknowledgeQueueRecords(crate::cli::queues::EntriesArgs),
    /// Change the visibility timeout of records in flight (0: visible at once).
    UpdateQueueRecordsVisibility(crate::cli::queues::EntriesArgs),
    /// Receive a queue's dead-letter records.
    ReceiveDeadLetterQueueRecords(crate::cli::queues::ReceiveArgs),
    /// Acknowledge dead-letter records.
    AcknowledgeDeadLetterQueueRecords(crate::cli::queues::EntriesArgs),
    /// Return dead-letter records to the queue with a receive count of 0.
    RestoreDeadLetterQueueRecords(crate::cli::queues::EntriesArgs),
    /// Change the visibility timeout of dead-letter records in flight.
    UpdateDeadLetterQueueRecordsVisibility(crate::cli::queues::EntriesArgs),
    /// Switch a stream between PROVISIONED and ON_DEMAND.
    UpdateStreamMode(crate::cli::settings::UpdateStreamModeArgs),
    /// Start recording shard-level metrics.
    EnableEnhancedMonitoring(crate::cli::settings::EnhancedMonitoringArgs),
    /// Stop recording shard-level metrics.
    DisableEnhancedMonitoring(crate::cli::settings::EnhancedMonitoringArgs),
    /// Change the largest record a stream takes (KiB).
    UpdateMaxRecordSize(crate::cli::settings::UpdateMaxRecordSizeArgs),
    /// Scale an ON_DEMAND stream to take this many MiB/s at once.
    UpdateStreamWarmThroughput(crate::cli::settings::UpdateStreamWarmThroughputArgs),
    /// Route records by partition key (USER_PARTITION_KEY) or spread them (AUTO).
    UpdateStreamRecordDistributionStrategy(crate::cli::settings::UpdateStreamRecordDistributionStrategyArgs),
    /// Show the account's minimum-throughput billing commitment.
    DescribeAccountSettings,
    /// Enable or disable the account's minimum-throughput billing commitment.
    UpdateAccountSettings(crate::cli::settings::UpdateAccountSettingsArgs),
    /// Attach a resource policy to a stream or consumer, replacing its previous one.
    PutResourcePolicy(crate::cli::settings::PutResourcePolicyArgs),
    /// Show a stream's or consumer's resource policy (`{}` when it has none).
    GetResourcePolicy(crate::cli::settings::ResourceArgs),
    /// Remove a stream's or consumer's resource policy.
    DeleteResourcePolicy(crate::cli::settings::ResourceArgs),
    /// Encrypt a stream's new records under a master key.
    StartStreamEncryption(crate::cli::settings::StreamEncryptionArgs),
    /// Stop encrypting a stream's new records.
    StopStreamEncryption(crate::cli::settings::StreamEncryptionArgs),
    /// Add or update tags of a stream or consumer, by ARN.
    TagResource(crate::cli::settings::TagResourceArgs),
    /// Remove tags from a stream or consumer, by ARN.
    UntagResource(crate::cli::settings::UntagResourceArgs),
    /// List a stream's or consumer's tags, by ARN.
    ListTagsForResource(crate::cli::settings::ResourceArgs),
    /// Firehose delivery streams (`aws firehose …`'s commands): over the native protocol
    /// (--endpoint), or over HTTP with `firehose --http` or when only --http-endpoint is given.
    Firehose(crate::cli::firehose::FirehoseArgs),
}

/// The stream an operation acts on: by name or by ARN.
#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct StreamArgs {
    /// The stream's name.
    #[arg(long)]
    pub stream_name: Option<String>,
    /// The stream's ARN.
    #[arg(long)]
    pub stream_arn: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateStreamArgs {
    #[arg(long)]
    pub stream_name: String,
    /// Shards of a PROVISIONED stream.
    #[arg(long)]
    pub shard_count: Option<i32>,
    /// `StreamMode=ON_DEMAND`, `{"StreamMode":"ON_DEMAND"}` or just `ON_DEMAND`.
    #[arg(long, value_name = "STREAM_MODE_DETAILS")]
    pub stream_mode_details: Option<String>,
    /// `k1=v1,k2=v2` or `{"k1":"v1"}`.
    #[arg(long)]
    pub tags: Option<String>,
    /// 1024..=10240 (`--max-record-size-in-ki-b`, the AWS CLI's spelling, works too).
    #[arg(long = "max-record-size-in-kib", alias = "max-record-size-in-ki-b", value_name = "KIB")]
    pub max_record_size_in_kib: Option<i32>,
}

#[derive(Debug, Args)]
pub struct SplitShardArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    #[arg(long)]
    pub shard_to_split: String,
    /// Decimal hash key where the upper child starts.
    #[arg(long)]
    pub new_starting_hash_key: String,
}

#[derive(Debug, clap::Args)]
pub struct MergeShardsArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    #[arg(long)]
    pub shard_to_merge: String,
    #[arg(long)]
    pub adjacent_shard_to_merge: String,
}

#[derive(Debug, clap::Args)]
pub struct UpdateShardCountArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    #[arg(long)]
    pub target_shard_count: i32,
    #[arg(long, default_value = "UNIFORM_SCALING")]
    pub scaling_type: String,
}

#[derive(Debug, clap::Args)]
pub struct DeleteStreamArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Delete the stream even if it has registered consumers.
    #[arg(long, overrides_with = "no_enforce_consumer_deletion")]
    pub enforce_consumer_deletion: bool,
    #[arg(long)]
    pub no_enforce_consumer_deletion: bool,
}

#[derive(Debug, Args)]
pub struct DescribeStreamArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Shards per page.
    #[arg(long)]
    pub limit: Option<i32>,
    #[arg(long)]
    pub exclusive_start_shard_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListStreamsArgs {
    #[arg(long)]
    pub limit: Option<i32>,
    #[arg(long)]
    pub exclusive_start_stream_name: Option<String>,
    #[arg(long)]
    pub next_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListShardsArgs {
    // Optional: a call with --next-token names no stream.
    #[arg(long)]
    pub stream_name: Option<String>,
    #[arg(long)]
    pub stream_arn: Option<String>,
    #[arg(long)]
    pub next_token: Option<String>,
    #[arg(long)]
    pub exclusive_start_shard_id: Option<String>,
    #[arg(long)]
    pub max_results: Option<i32>,
    /// Epoch seconds.
    #[arg(long, value_name = "EPOCH_SECONDS")]
    pub stream_creation_timestamp: Option<String>,
    /// `Type=AFTER_SHARD_ID,ShardId=...`, `Type=AT_TIMESTAMP,Timestamp=EPOCH_SECONDS`, or JSON.
    #[arg(long)]
    pub shard_filter: Option<String>,
}

/// Record data: text, or base64 for binary.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct DataArgs {
    /// The record's data as text (sent as its UTF-8 bytes).
    #[arg(long)]
    pub data: Option<String>,
    /// The record's data as base64, for binary data.
    #[arg(long, value_name = "BASE64")]
    pub data_base64: Option<String>,
}

#[derive(Debug, Args)]
pub struct PutRecordArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long)]
    pub partition_key: String,
    #[arg(long)]
    pub explicit_hash_key: Option<String>,
    #[arg(long)]
    pub sequence_number_for_ordering: Option<String>,
    #[command(flatten)]
    pub route: crate::cli::pipe::RouteArgs,
}

#[derive(Debug, Args)]
pub struct PutRecordsArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// JSON as the AWS CLI takes it, with base64 Data:
    /// `[{"Data":"aGk=","PartitionKey":"k","ExplicitHashKey":"0"}]`, or `file://PATH`.
    #[arg(long)]
    pub records: String,
    #[command(flatten)]
    pub route: crate::cli::pipe::RouteArgs,
}

#[derive(Debug, Args)]
pub struct GetShardIteratorArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    #[arg(long)]
    pub shard_id: String,
    /// AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST or AT_TIMESTAMP.
    #[arg(long)]
    pub shard_iterator_type: ShardIteratorType,
    #[arg(long)]
    pub starting_sequence_number: Option<String>,
    /// Epoch seconds, for AT_TIMESTAMP.
    #[arg(long, value_name = "EPOCH_SECONDS")]
    pub timestamp: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetRecordsArgs {
    #[arg(long)]
    pub shard_iterator: String,
    #[arg(long)]
    pub limit: Option<i32>,
    #[arg(long)]
    pub stream_arn: Option<String>,
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    #[arg(long)]
    pub retention_period_hours: i32,
}

#[derive(Debug, Args)]
pub struct AddTagsToStreamArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// `k1=v1,k2=v2` or `{"k1":"v1"}`.
    #[arg(long)]
    pub tags: String,
}

#[derive(Debug, Args)]
pub struct RemoveTagsFromStreamArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    #[arg(long, num_args = 1.., required = true)]
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListTagsForStreamArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    #[arg(long)]
    pub exclusive_start_tag_key: Option<String>,
    #[arg(long)]
    pub limit: Option<i32>,
}

#[derive(Debug, Args)]
pub struct RegisterStreamConsumerArgs {
    #[arg(long)]
    pub stream_arn: String,
    #[arg(long)]
    pub consumer_name: String,
    /// `k1=v1,k2=v2` or `{"k1":"v1"}`.
    #[arg(long)]
    pub tags: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConsumerArgs {
    #[arg(long)]
    pub stream_arn: Option<String>,
    #[arg(long)]
    pub consumer_name: Option<String>,
    #[arg(long)]
    pub consumer_arn: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListStreamConsumersArgs {
    #[arg(long)]
    pub stream_arn: String,
    #[arg(long)]
    pub next_token: Option<String>,
    #[arg(long)]
    pub max_results: Option<i32>,
    /// Epoch seconds.
    #[arg(long, value_name = "EPOCH_SECONDS")]
    pub stream_creation_timestamp: Option<String>,
}

#[derive(Debug, Args)]
pub struct SubscribeToShardArgs {
    #[arg(long)]
    pub consumer_arn: String,
    #[arg(long)]
    pub shard_id: String,
    /// A type (TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP),
    /// or `Type=...,SequenceNumber=...,Timestamp=EPOCH_SECONDS`, or JSON.
    #[arg(long)]
    pub starting_position: String,
    /// The position's sequence number, if not given in --starting-position.
    #[arg(long)]
    pub starting_sequence_number: Option<String>,
    /// The position's timestamp in epoch seconds, if not given in --starting-position.
    #[arg(long, value_name = "EPOCH_SECONDS")]
    pub timestamp: Option<String>,
    /// Stop after this many events (default: until the server ends the subscription).
    #[arg(long)]
    pub max_events: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// Arguments to requests
// ---------------------------------------------------------------------------------------

/// A parameter whose value cannot be used; printed as the AWS CLI prints `ParamError`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("Error parsing parameter '{parameter}': {message}")]
pub struct ParamError {
    pub parameter: &'static str,
    pub message: String,
}

fn param_error(parameter: &'static str, message: impl ToString) -> ParamError {
    ParamError { parameter, message: message.to_string() }
}

/// One call the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Call {
    CreateStream(CreateStreamInput),
    DeleteStream(DeleteStreamInput),
    DescribeStream(DescribeStreamInput),
    DescribeStreamSummary(DescribeStreamSummaryInput),
    ListStreams(ListStreamsInput),
    ListShards(ListShardsInput),
    PutRecord(PutRecordInput),
    PutRecords(PutRecordsInput),
    GetShardIterator(GetShardIteratorInput),
    GetRecords(GetRecordsInput),
    IncreaseStreamRetentionPeriod(IncreaseStreamRetentionPeriodInput),
    DecreaseStreamRetentionPeriod(DecreaseStreamRetentionPeriodInput),
    AddTagsToStream(AddTagsToStreamInput),
    RemoveTagsFromStream(RemoveTagsFromStreamInput),
    ListTagsForStream(ListTagsForStreamInput),
    SplitShard(SplitShardInput),
    MergeShards(MergeShardsInput),
    UpdateShardCount(UpdateShardCountInput),
    DescribeLimits,
    RegisterStreamConsumer(RegisterStreamConsumerInput),
    DeregisterStreamConsumer(DeregisterStreamConsumerInput),
    DescribeStreamConsumer(DescribeStreamConsumerInput),
    ListStreamConsumers(ListStreamConsumersInput),
    SubscribeToShard {
        request: SubscribeToShardInput,
        max_events: Option<u64>,
    },
    /// Any other single call over the native protocol: consumer groups (`crate::cli::leases`),
    /// settings, policies, encryption and resource tags (`crate::cli::settings`).
    Native(Request),
    /// A queue operation (`crate::cli::queues`), sent over HTTP.
    Queue(Request),
    /// A Firehose operation (`crate::cli::firehose`): its name and AWS JSON body, and whether
    /// `--http` asked for the HTTP API.
    Firehose {
        operation: &'static str,
        body: serde_json::Value,
        http: bool,
    },
}

impl Call {
    /// The request this call sends. SubscribeToShard's is sent by `subscribe_to_shard`.
    pub fn into_request(self) -> Request {
        match self {
            Self::CreateStream(input) => input.into(),
            Self::DeleteStream(input) => input.into(),
            Self::DescribeStream(input) => input.into(),
            Self::DescribeStreamSummary(input) => input.into(),
            Self::ListStreams(input) => input.into(),
            Self::ListShards(input) => input.into(),
            Self::PutRecord(input) => input.into(),
            Self::PutRecords(input) => input.into(),
            Self::GetShardIterator(input) => input.into(),
            Self::GetRecords(input) => input.into(),
            Self::IncreaseStreamRetentionPeriod(input) => input.into(),
            Self::DecreaseStreamRetentionPeriod(input) => input.into(),
            Self::AddTagsToStream(input) => input.into(),
            Self::RemoveTagsFromStream(input) => input.into(),
            Self::ListTagsForStream(input) => input.into(),
            Self::SplitShard(input) => input.into(),
            Self::MergeShards(input) => input.into(),
            Self::UpdateShardCount(input) => input.into(),
            Self::DescribeLimits => DescribeLimitsInput {}.into(),
            Self::RegisterStreamConsumer(input) => input.into(),
            Self::DeregisterStreamConsumer(input) => input.into(),
            Self::DescribeStreamConsumer(input) => input.into(),
            Self::ListStreamConsumers(input) => input.into(),
            Self::SubscribeToShard { request, .. } => request.into(),
            Self::Native(request) | Self::Queue(request) => request,
            Self::Firehose { operation, .. } => unreachable!("{operation} is sent by the firehose path of `run`"),
        }
    }

    /// The AWS operation name, for error messages.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::CreateStream(_) => "CreateStream",
            Self::DeleteStream(_) => "DeleteStream",
            Self::DescribeStream(_) => "DescribeStream",
            Self::DescribeStreamSummary(_) => "DescribeStreamSummary",
            Self::ListStreams(_) => "ListStreams",
            Self::ListShards(_) => "ListShards",
            Self::PutRecord(_) => "PutRecord",
            Self::PutRecords(_) => "PutRecords",
            Self::GetShardIterator(_) => "GetShardIterator",
            Self::GetRecords(_) => "GetRecords",
            Self::IncreaseStreamRetentionPeriod(_) => "IncreaseStreamRetentionPeriod",
            Self::DecreaseStreamRetentionPeriod(_) => "DecreaseStreamRetentionPeriod",
            Self::AddTagsToStream(_) => "AddTagsToStream",
            Self::RemoveTagsFromStream(_) => "RemoveTagsFromStream",
            Self::ListTagsForStream(_) => "ListTagsForStream",
            Self::SplitShard(_) => "SplitShard",
            Self::MergeShards(_) => "MergeShards",
            Self::UpdateShardCount(_) => "UpdateShardCount",
            Self::DescribeLimits => "DescribeLimits",
            Self::RegisterStreamConsumer(_) => "RegisterStreamConsumer",
            Self::DeregisterStreamConsumer(_) => "DeregisterStreamConsumer",
            Self::DescribeStreamConsumer(_) => "DescribeStreamConsumer",
            Self::ListStreamConsumers(_) => "ListStreamConsumers",
            Self::SubscribeToShard { .. } => "SubscribeToShard",
            Self::Native(request) | Self::Queue(request) => request.operation().name(),
            Self::Firehose { operation, .. } => operation,
        }
    }
}

impl Command {
    /// Where the command's write goes (`Any` for every command but put-record and
    /// put-records).
    pub fn route(&self) -> crate::cli::pipe::Route {
        match self {
            Self::PutRecord(PutRecordArgs { route, .. }) | Self::PutRecords(PutRecordsArgs { route, .. }) => {
                route.route
            }
            _ => crate::cli::pipe::Route::Any,
        }
    }

    /// The request this command sends, with every parameter parsed.
    pub fn to_call(&self) -> Result<Call, ParamError> {
        Ok(match self {
            Self::Produce(_) | Self::Consume(_) => {
                return Err(param_error("--", "produce and consume are not single calls"))
            }
            Self::CreateStream(args) => Call::CreateStream(CreateStreamInput {
                stream_name: args.stream_name.clone(),
                shard_count: args.shard_count,
                stream_mode_details: args
                    .stream_mode_details
                    .as_deref()
                    .map(parse_stream_mode_details)
                    .transpose()?
                    .map(StreamModeDetails::from),
                tags: args.tags.as_deref().map(|tags| parse_tags("--tags", tags)).transpose()?,
                max_record_size_in_kib: args.max_record_size_in_kib,
            }),
            Self::DeleteStream(args) => Call::DeleteStream(DeleteStreamInput {
                stream_name: args.stream.stream_name.clone(),
                stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                enforce_consumer_deletion: if args.enforce_consumer_deletion {
                    Some(true)
                } else if args.no_enforce_consumer_deletion {
                    Some(false)
                } else {
                    None
                },
            }),
            Self::DescribeStream(args) => Call::DescribeStream(DescribeStreamInput {
                stream_name: args.stream.stream_name.clone(),
                stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                limit: args.limit,
                exclusive_start_shard_id: args.exclusive_start_shard_id.clone().map(ShardId::from),
            }),
            Self::DescribeStreamSummary(args) => Call::DescribeStreamSummary(DescribeStreamSummaryInput {
                stream_name: args.stream_name.clone(),
                stream_arn: args.stream_arn.clone().map(StreamArn::from),
            }),
            Self::ListStreams(args) => Call::ListStreams(ListStreamsInput {
                limit: args.limit,
                exclusive_start_stream_name: args.exclusive_start_stream_name.clone(),
                next_token: args.next_token.clone(),
            }),
            Self::ListShards(args) => Call::ListShards(ListShardsInput {
                stream_name: args.stream_name.clone(),
                stream_arn: args.stream_arn.clone().map(StreamArn::from),
                next_token: args.next_token.clone(),
                exclusive_start_shard_id: args.exclusive_start_shard_id.clone().map(ShardId::from),
                max_results: args.max_results,
                stream_creation_timestamp: args
                    .stream_creation_timestamp
                    .as_deref()
                    .map(|value| parse_timestamp("--stream-creation-timestamp", value))
                    .transpose()?,
                shard_filter: args.shard_filter.as_deref().map(parse_shard_filter).transpose()?,
            }),
            Self::PutRecord(args) => Call::PutRecord(PutRecordInput {
                stream_name: args.stream.stream_name.clone(),
                stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                data: parse_data(&args.data)?,
                partition_key: Some(args.partition_key.clone()),
                explicit_hash_key: parse_value("--explicit-hash-key", args.explicit_hash_key.as_deref())?,
                sequence_number_for_ordering: parse_value(
                    "--sequence-number-for-ordering",
                    args.sequence_number_for_ordering.as_deref(),
                )?,
            }),
            Self::PutRecords(args) => Call::PutRecords(PutRecordsInput {
                stream_name: args.stream.stream_name.clone(),
                stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                records: parse_records(&args.records)?,
            }),
            Self::GetShardIterator(args) => Call::GetShardIterator(GetShardIteratorInput {
                stream_name: args.stream.stream_name.clone(),
                stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                shard_id: ShardId::from(args.shard_id.as_str()),
                shard_iterator_type: args.shard_iterator_type.clone(),
                starting_sequence_number: parse_value(
                    "--starting-sequence-number",
                    args.starting_sequence_number.as_deref(),
                )?,
                timestamp: args.timestamp.as_deref().map(|value| parse_timestamp("--timestamp", value)).transpose()?,
            }),
            Self::GetRecords(args) => Call::GetRecords(GetRecordsInput {
                shard_iterator: args.shard_iterator.clone(),
                limit: args.limit,
                stream_arn: args.stream_arn.clone().map(StreamArn::from),
            }),
            Self::IncreaseStreamRetentionPeriod(args) => {
                Call::IncreaseStreamRetentionPeriod(IncreaseStreamRetentionPeriodInput {
                    stream_name: args.stream.stream_name.clone(),
                    stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                    retention_period_hours: args.retention_period_hours,
                })
            }
            Self::DecreaseStreamRetentionPeriod(args) => {
                Call::DecreaseStreamRetentionPeriod(DecreaseStreamRetentionPeriodInput {
                    stream_name: args.stream.stream_name.clone(),
                    stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                    retention_period_hours: args.retention_period_hours,
                })
            }
            Self::AddTagsToStream(args) => Call::AddTagsToStream(AddTagsToStreamInput {
                stream_name: args.stream.stream_name.clone(),
                stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                tags: parse_tags("--tags", &args.tags)?,
            }),
            Self::RemoveTagsFromStream(args) => Call::RemoveTagsFromStream(RemoveTagsFromStreamInput {
                stream_name: args.stream.stream_name.clone(),
                stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                tag_keys: args.tag_keys.clone(),
            }),
            Self::ListTagsForStream(args) => Call::ListTagsForStream(ListTagsForStreamInput {
                stream_name: args.stream.stream_name.clone(),
                stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                exclusive_start_tag_key: args.exclusive_start_tag_key.clone(),
                limit: args.limit,
            }),
            Self::SplitShard(args) => Call::SplitShard(SplitShardInput {
                stream_name: args.stream.stream_name.clone(),
                stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                shard_to_split: ShardId::from(args.shard_to_split.as_str()),
                new_starting_hash_key: parse_value("--new-starting-hash-key", Some(&args.new_starting_hash_key))?
                    .expect("a value was given"),
            }),
            Self::MergeShards(args) => Call::MergeShards(MergeShardsInput {
                stream_name: args.stream.stream_name.clone(),
                stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                shard_to_merge: ShardId::from(args.shard_to_merge.as_str()),
                adjacent_shard_to_merge: ShardId::from(args.adjacent_shard_to_merge.as_str()),
            }),
            Self::UpdateShardCount(args) => Call::UpdateShardCount(UpdateShardCountInput {
                stream_name: args.stream.stream_name.clone(),
                stream_arn: args.stream.stream_arn.clone().map(StreamArn::from),
                target_shard_count: args.target_shard_count,
                scaling_type: parse_enum("--scaling-type", &args.scaling_type)?,
            }),
            Self::DescribeLimits => Call::DescribeLimits,
            Self::CreateApplication(args) => Call::Native(crate::cli::leases::create_application(args)?),
            Self::DescribeApplication(args) => Call::Native(crate::cli::leases::describe_application(args)),
            Self::ListApplications(args) => Call::Native(crate::cli::leases::list_applications(args)),
            Self::DeleteApplication(args) => Call::Native(crate::cli::leases::delete_application(args)),
            Self::ListLeases(args) => Call::Native(crate::cli::leases::list_leases(args)),
            Self::Firehose(args) => args.command.to_call(args.http)?,
            Self::UpdateStreamMode(args) => Call::Native(settings::update_stream_mode(args)?),
            Self::EnableEnhancedMonitoring(args) => Call::Native(settings::enhanced_monitoring(args, true)?),
            Self::DisableEnhancedMonitoring(args) => Call::Native(settings::enhanced_monitoring(args, false)?),
            Self::UpdateMaxRecordSize(args) => Call::Native(settings::update_max_record_size(args)),
            Self::UpdateStreamWarmThroughput(args) => Call::Native(settings::update_stream_warm_throughput(args)),
            Self::UpdateStreamRecordDistributionStrategy(args) => {
                Call::Native(settings::update_stream_record_distribution_strategy(args)?)
            }
            Self::DescribeAccountSettings => Call::Native(DescribeAccountSettingsInput {}.into()),
            Self::UpdateAccountSettings(args) => Call::Native(settings::update_account_settings(args)?),
            Self::PutResourcePolicy(args) => Call::Native(settings::put_resource_policy(args)),
            Self::GetResourcePolicy(args) => Call::Native(settings::get_resource_policy(args)),
            Self::DeleteResourcePolicy(args) => Call::Native(settings::delete_resource_policy(args)),
            Self::StartStreamEncryption(args) => Call::Native(settings::stream_encryption(args, true)?),
            Self::StopStreamEncryption(args) => Call::Native(settings::stream_encryption(args, false)?),
            Self::TagResource(args) => Call::Native(settings::tag_resource(args)?),
            Self::UntagResource(args) => Call::Native(settings::untag_resource(args)),
            Self::ListTagsForResource(args) => Call::Native(settings::list_tags_for_resource(args)),
            Self::CreateQueue(args) => Call::Queue(crate::cli::queues::create_queue(args)?),
            Self::DescribeQueue(args) => Call::Queue(crate::cli::queues::describe_queue(args)),
            Self::ListQueues(args) => Call::Queue(crate::cli::queues::list_queues(args)?),
            Self::UpdateQueue(args) => Call::Queue(crate::cli::queues::update_queue(args)?),
            Self::DeleteQueue(args) => Call::Queue(crate::cli::queues::delete_queue(args)),
            Self::ReceiveQueueRecords(args) => Call::Queue(crate::cli::queues::receive(args, false)),
            Self::ReceiveDeadLetterQueueRecords(args) => Call::Queue(crate::cli::queues::receive(args, true)),
            Self::AcknowledgeQueueRecords(args) => {
                Call::Queue(crate::cli::queues::entries(args, EntryOperation::Acknowledge)?)
            }
            Self::AcknowledgeDeadLetterQueueRecords(args) => {
                Call::Queue(crate::cli::queues::entries(args, EntryOperation::AcknowledgeDeadLetter)?)
            }
            Self::RestoreDeadLetterQueueRecords(args) => {
                Call::Queue(crate::cli::queues::entries(args, EntryOperation::Restore)?)
            }
            Self::UpdateQueueRecordsVisibility(args) => {
                Call::Queue(crate::cli::queues::entries(args, EntryOperation::Visibility)?)
            }
            Self::UpdateDeadLetterQueueRecordsVisibility(args) => {
                Call::Queue(crate::cli::queues::entries(args, EntryOperation::DeadLetterVisibility)?)
            }
            Self::RegisterStreamConsumer(args) => Call::RegisterStreamConsumer(RegisterStreamConsumerInput {
                stream_arn: StreamArn::from(args.stream_arn.as_str()),
                consumer_name: args.consumer_name.clone(),
                tags: args.tags.as_deref().map(|tags| parse_tags("--tags", tags)).transpose()?,
            }),
            Self::DeregisterStreamConsumer(args) => Call::DeregisterStreamConsumer(DeregisterStreamConsumerInput {
                stream_arn: args.stream_arn.clone().map(StreamArn::from),
                consumer_name: args.consumer_name.clone(),
                consumer_arn: args.consumer_arn.clone().map(ConsumerArn::from),
            }),
            Self::DescribeStreamConsumer(args) => Call::DescribeStreamConsumer(DescribeStreamConsumerInput {
                stream_arn: args.stream_arn.clone().map(StreamArn::from),
                consumer_name: args.consumer_name.clone(),
                consumer_arn: args.consumer_arn.clone().map(ConsumerArn::from),
            }),
            Self::ListStreamConsumers(args) => Call::ListStreamConsumers(ListStreamConsumersInput {
                stream_arn: StreamArn::from(args.stream_arn.as_str()),
                next_token: args.next_token.clone(),
                max_results: args.max_results,
                stream_creation_timestamp: args
                    .stream_creation_timestamp
                    .as_deref()
                    .map(|value| parse_timestamp("--stream-creation-timestamp", value))
                    .transpose()?,
            }),
            Self::SubscribeToShard(args) => Call::SubscribeToShard {
                request: SubscribeToShardInput {
                    consumer_arn: ConsumerArn::from(args.consumer_arn.as_str()),
                    shard_id: ShardId::from(args.shard_id.as_str()),
                    starting_position: parse_starting_position(
                        &args.starting_position,
                        args.starting_sequence_number.as_deref(),
                        args.timestamp.as_deref(),
                    )?,
                },
                max_events: args.max_events,
            },
        })
    }
}

// ---------------------------------------------------------------------------------------
// Parameter values
// ---------------------------------------------------------------------------------------

fn parse_data(args: &DataArgs) -> Result<Bytes, ParamError> {
    match (&args.data, &args.data_base64) {
        (Some(text), _) => Ok(Bytes::from(text.clone().into_bytes())),
        (None, Some(base64)) => BASE64
            .decode(base64)
            .map(Bytes::from)
            .map_err(|error| param_error("--data-base64", format!("Invalid base64: {error}"))),
        // clap's group makes exactly one of them present.
        (None, None) => Err(param_error("--data", "one of --data and --data-base64 is required")),
    }
}

/// An AWS CLI timestamp in epoch seconds, possibly with a fraction (`1704164645.678`).
pub fn parse_timestamp(parameter: &'static str, value: &str) -> Result<Timestamp, ParamError> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| param_error(parameter, format!("Invalid timestamp {value:?}: expected epoch seconds")))?;
    let epoch_ms = (seconds * 1000.0).round();
    // Within ±2^53 ms every millisecond is exact, and the conversion to i64 cannot overflow.
    const EPOCH_MS_MAX: f64 = (1u64 << 53) as f64;
    if !epoch_ms.is_finite() || epoch_ms.abs() > EPOCH_MS_MAX {
        return Err(param_error(parameter, format!("Timestamp {value:?} is out of range")));
    }
    Ok(Timestamp::from_epoch_ms(epoch_ms as i64))
}

/// A structure given as AWS CLI shorthand (`Key=Value,Key=Value`) or as a JSON object whose
/// values are strings or numbers. The members come back sorted by key.
pub(crate) fn parse_structure(parameter: &'static str, value: &str) -> Result<BTreeMap<String, String>, ParamError> {
    let value = value.trim();
    if value.starts_with('{') {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(value).map_err(|error| param_error(parameter, format!("Invalid JSON: {error}")))?;
        return object
            .into_iter()
            .map(|(key, member)| match member {
                serde_json::Value::String(text) => Ok((key, text)),
                serde_json::Value::Number(number) => Ok((key, number.to_string())),
                other => Err(param_error(parameter, format!("{key} must be a string or a number, not {other}"))),
            })
            .collect();
    }
    value
        .split(',')
        .map(|pair| match pair.split_once('=') {
            Some((key, member)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), member.trim().to_owned())),
            _ => Err(param_error(parameter, format!("Expected Key=Value, found {pair:?}"))),
        })
        .collect()
}

/// Rejects members a structure does not have, as the AWS CLI does.
fn only_members(
    parameter: &'static str,
    structure: &BTreeMap<String, String>,
    members: &[&str],
) -> Result<(), ParamError> {
    match structure.keys().find(|key| !members.contains(&key.as_str())) {
        Some(key) => {
            Err(param_error(parameter, format!("Unknown member {key:?}; valid members: {}", members.join(", "))))
        }
        None => Ok(()),
    }
}

pub(crate) fn parse_enum<T>(parameter: &'static str, value: &str) -> Result<T, ParamError>
where
    T: std::str::FromStr<Err = ParseEnumError>,
{
    value.trim().parse().map_err(|error| param_error(parameter, error))
}

pub(crate) fn parse_stream_mode_details(value: &str) -> Result<StreamMode, ParamError> {
    const PARAMETER: &str = "--stream-mode-details";
    if !value.contains('=') && !value.trim_start().starts_with('{') {
        return parse_enum(PARAMETER, value);
    }
    let structure = parse_structure(PARAMETER, value)?;
    only_members(PARAMETER, &structure, &["StreamMode"])?;
    let mode = structure.get("StreamMode").ok_or_else(|| param_error(PARAMETER, "StreamMode is required"))?;
    parse_enum(PARAMETER, mode)
}

/// Tags as `k1=v1,k2=v2` or as a JSON object `{"k1":"v1"}` (AWS `TagMap`).
pub fn parse_tags(parameter: &'static str, value: &str) -> Result<TagMap, ParamError> {
    parse_structure(parameter, value)
}

/// A parameter of a type with a text form (a hash key, a sequence number), if given.
fn parse_value<T>(parameter: &'static str, value: Option<&str>) -> Result<Option<T>, ParamError>
where
    T: FromStr<Err = ParseIdError>,
{
    value.map(|value| value.trim().parse().map_err(|error| param_error(parameter, error))).transpose()
}

fn parse_shard_filter(value: &str) -> Result<ShardFilter, ParamError> {
    const PARAMETER: &str = "--shard-filter";
    let structure = parse_structure(PARAMETER, value)?;
    only_members(PARAMETER, &structure, &["Type", "ShardId", "Timestamp"])?;
    let filter_type = structure.get("Type").ok_or_else(|| param_error(PARAMETER, "Type is required"))?;
    Ok(ShardFilter {
        r#type: parse_enum(PARAMETER, filter_type)?,
        shard_id: structure.get("ShardId").map(|id| ShardId::from(id.as_str())),
        timestamp: structure.get("Timestamp").map(|value| parse_timestamp(PARAMETER, value)).transpose()?,
    })
}

/// `--starting-position` as a bare type or a structure; `--starting-sequence-number` and
/// `--timestamp` fill in what the structure leaves out.
fn parse_starting_position(
    value: &str,
    sequence_number: Option<&str>,
    timestamp: Option<&str>,
) -> Result<StartingPosition, ParamError> {
    const PARAMETER: &str = "--starting-position";
    let mut position = if value.contains('=') || value.trim_start().starts_with('{') {
        let structure = parse_structure(PARAMETER, value)?;
        only_members(PARAMETER, &structure, &["Type", "SequenceNumber", "Timestamp"])?;
        let position_type = structure.get("Type").ok_or_else(|| param_error(PARAMETER, "Type is required"))?;
        StartingPosition {
            r#type: parse_enum(PARAMETER, position_type)?,
            sequence_number: parse_value(PARAMETER, structure.get("SequenceNumber").map(String::as_str))?,
            timestamp: structure.get("Timestamp").map(|value| parse_timestamp(PARAMETER, value)).transpose()?,
        }
    } else {
        StartingPosition::new(parse_enum(PARAMETER, value)?)
    };
    if position.sequence_number.is_none() {
        position.sequence_number = parse_value("--starting-sequence-number", sequence_number)?;
    }
    if position.timestamp.is_none() {
        position.timestamp = timestamp.map(|value| parse_timestamp("--timestamp", value)).transpose()?;
    }
    Ok(position)
}

/// One PutRecords entry as the AWS CLI's JSON has it.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct PutRecordsEntryJson {
    /// base64, as in the AWS JSON protocol.
    data: String,
    partition_key: String,
    explicit_hash_key: Option<String>,
}

/// `--records`: a JSON list of `{"Data": base64, "PartitionKey": ..., "ExplicitHashKey": ...}`,
/// inline or from `file://PATH`.
pub fn parse_records(value: &str) -> Result<Vec<PutRecordsRequestEntry>, ParamError> {
    const PARAMETER: &str = "--records";
    let json = match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|error| param_error(PARAMETER, format!("Unable to load paramfile {value}: {error}")))?,
        None => value.to_owned(),
    };
    let entries: Vec<PutRecordsEntryJson> =
        serde_json::from_str(&json).map_err(|error| param_error(PARAMETER, format!("Invalid JSON: {error}")))?;
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let data = BASE64.decode(&entry.data).map_err(|error| {
                param_error(PARAMETER, format!("Records[{index}].Data is not valid base64: {error}"))
            })?;
            Ok(PutRecordsRequestEntry {
                data: Bytes::from(data),
                partition_key: Some(entry.partition_key),
                explicit_hash_key: parse_value(PARAMETER, entry.explicit_hash_key.as_deref())?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
