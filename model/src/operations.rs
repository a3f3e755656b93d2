//! Every operation's input and output, and the [`Request`] / [`Response`] pair over all of
//! them, declared from one list ([`operations!`] below): adding an operation to the model is
//! its two structs and one line of that list.
//!
//! Inputs and outputs follow botocore's shapes as the shared structures do (`shapes.rs`):
//! AWS's member names and order, `Option` exactly where the model does not require a member.
//! Operations whose output has no members (CreateStream, ...) answer [`Empty`]. Members
//! Sluice does not serve (`StreamId`, `DryRun`, CreateStream's warm throughput, ...) are not here; serde
//! ignores them in a request as AWS ignores members it does not know.

use crate::enums::{MetricsName, ScalingType, ShardIteratorType};
use crate::ids::{blob, ConsumerArn, HashKey, ResourceArn, SequenceNumber, ShardId, StreamArn, Timestamp};
use crate::leases::*;
use crate::queues::*;
use crate::routes::*;
use crate::settings::*;
use crate::shapes::*;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The output of an operation whose answer has no members: `{}` in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

// ---------------------------------------------------------------------------------------------
// Stream lifecycle.

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateStreamInput {
    pub stream_name: String,
    /// Required for PROVISIONED streams; ON_DEMAND ones start with 4 shards.
    pub shard_count: Option<i32>,
    /// Absent means PROVISIONED.
    pub stream_mode_details: Option<StreamModeDetails>,
    pub tags: Option<TagMap>,
    /// 1024..=10240: the largest record the stream takes (data plus partition key), as
    /// UpdateMaxRecordSize sets it later.
    #[serde(rename = "MaxRecordSizeInKiB")]
    pub max_record_size_in_kib: Option<i32>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteStreamInput {
    pub stream_name: Option<String>,
    pub enforce_consumer_deletion: Option<bool>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamInput {
    pub stream_name: Option<String>,
    pub limit: Option<i32>,
    pub exclusive_start_shard_id: Option<ShardId>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamOutput {
    pub stream_description: StreamDescription,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryOutput {
    pub stream_description_summary: StreamDescriptionSummary,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsInput {
    pub limit: Option<i32>,
    pub exclusive_start_stream_name: Option<String>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsOutput {
    pub stream_names: Vec<String>,
    pub has_more_streams: bool,
    pub next_token: Option<String>,
    #[serde(default)]
    pub stream_summaries: Vec<StreamSummary>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsInput {
    pub stream_name: Option<String>,
    pub next_token: Option<String>,
    pub exclusive_start_shard_id: Option<ShardId>,
    pub max_results: Option<i32>,
    pub stream_creation_timestamp: Option<Timestamp>,
    pub shard_filter: Option<ShardFilter>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsOutput {
    #[serde(default)]
    pub shards: Vec<Shard>,
    pub next_token: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Data plane.

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    pub stream_name: Option<String>,
    #[serde(with = "blob")]
    pub data: Bytes,
    /// Required by Sluice (it routes by key); optional in the model for AUTO distribution.
    pub partition_key: Option<String>,
    pub explicit_hash_key: Option<HashKey>,
    pub sequence_number_for_ordering: Option<SequenceNumber>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    pub shard_id: ShardId,
    pub sequence_number: SequenceNumber,
    pub encryption_type: Option<crate::enums::EncryptionType>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsInput {
    pub records: Vec<PutRecordsRequestEntry>,
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

/// PutRecords' answer. Failed records are not an error of the call: count them with
/// `failed_record_count` and retry the entries that carry an `error_code`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsOutput {
    pub failed_record_count: Option<i32>,
    /// In the order of the request's records.
    pub records: Vec<PutRecordsResultEntry>,
    pub encryption_type: Option<crate::enums::EncryptionType>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorInput {
    pub stream_name: Option<String>,
    pub shard_id: ShardId,
    pub shard_iterator_type: ShardIteratorType,
    /// For `AT_SEQUENCE_NUMBER` and `AFTER_SEQUENCE_NUMBER`.
    pub starting_sequence_number: Option<SequenceNumber>,
    /// For `AT_TIMESTAMP`.
    pub timestamp: Option<Timestamp>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorOutput {
    pub shard_iterator: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsInput {
    pub shard_iterator: String,
    pub limit: Option<i32>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    pub records: Vec<Record>,
    /// Absent once a closed shard has been read to its end.
    pub next_shard_iterator: Option<String>,
    pub millis_behind_latest: Option<i64>,
    /// Present only at the end of a closed shard.
    pub child_shards: Option<Vec<ChildShard>>,
}

// ---------------------------------------------------------------------------------------------
// Retention and tags.

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IncreaseStreamRetentionPeriodInput {
    pub stream_name: Option<String>,
    pub retention_period_hours: i32,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

/// StartStreamEncryption: `KeyId` is a key id, a key ARN, an alias name or alias ARN, or
/// `alias/aws/kinesis` (the model bounds it to 1..=2048 characters).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartStreamEncryptionInput {
    pub stream_name: Option<String>,
    pub encryption_type: crate::enums::EncryptionType,
    pub key_id: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

/// StopStreamEncryption: the same members as [`StartStreamEncryptionInput`].
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StopStreamEncryptionInput {
    pub stream_name: Option<String>,
    pub encryption_type: crate::enums::EncryptionType,
    pub key_id: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecreaseStreamRetentionPeriodInput {
    pub stream_name: Option<String>,
    pub retention_period_hours: i32,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddTagsToStreamInput {
    pub stream_name: Option<String>,
    pub tags: TagMap,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTagsFromStreamInput {
    pub stream_name: Option<String>,
    pub tag_keys: Vec<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamInput {
    pub stream_name: Option<String>,
    pub exclusive_start_tag_key: Option<String>,
    pub limit: Option<i32>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamOutput {
    pub tags: Vec<Tag>,
    pub has_more_tags: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    pub tags: TagMap,
    #[serde(rename = "ResourceARN")]
    pub resource_arn: ResourceArn,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    pub tag_keys: Vec<String>,
    #[serde(rename = "ResourceARN")]
    pub resource_arn: ResourceArn,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: ResourceArn,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceOutput {
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// PutResourcePolicy: attaches a resource policy (an IAM policy document, as JSON text) to a
/// stream or a consumer, replacing the one it had.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutResourcePolicyInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: ResourceArn,
    pub policy: String,
    /// "Not Implemented. Reserved for future use" (the model): accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetResourcePolicyInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: ResourceArn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetResourcePolicyOutput {
    /// The policy document as it was put; `{}` when the resource has none.
    pub policy: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteResourcePolicyInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: ResourceArn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Account and monitoring.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribeLimitsInput {}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeLimitsOutput {
    pub shard_limit: i32,
    pub open_shard_count: i32,
    pub on_demand_stream_count: i32,
    pub on_demand_stream_count_limit: i32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribeAccountSettingsInput {}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAccountSettingsOutput {
    pub minimum_throughput_billing_commitment: Option<MinimumThroughputBillingCommitment>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnableEnhancedMonitoringInput {
    pub stream_name: Option<String>,
    pub shard_level_metrics: Vec<MetricsName>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DisableEnhancedMonitoringInput {
    pub stream_name: Option<String>,
    pub shard_level_metrics: Vec<MetricsName>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

/// The answer of Enable- and DisableEnhancedMonitoring.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMonitoringOutput {
    pub stream_name: Option<String>,
    #[serde(default)]
    pub current_shard_level_metrics: Vec<MetricsName>,
    #[serde(default)]
    pub desired_shard_level_metrics: Vec<MetricsName>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStreamModeInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    pub stream_mode_details: StreamModeDetails,
}

// ---------------------------------------------------------------------------------------------
// Consumers and enhanced fan-out.

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    pub consumer_name: String,
    pub tags: Option<TagMap>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerOutput {
    pub consumer: Consumer,
}

/// Names the consumer by `consumer_arn`, or by `stream_arn` and `consumer_name`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeregisterStreamConsumerInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
    pub consumer_name: Option<String>,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: Option<ConsumerArn>,
}

/// Names the consumer by `consumer_arn`, or by `stream_arn` and `consumer_name`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamConsumerInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
    pub consumer_name: Option<String>,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: Option<ConsumerArn>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamConsumerOutput {
    pub consumer_description: ConsumerDescription,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamConsumersInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    pub next_token: Option<String>,
    pub max_results: Option<i32>,
    pub stream_creation_timestamp: Option<Timestamp>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamConsumersOutput {
    #[serde(default)]
    pub consumers: Vec<Consumer>,
    pub next_token: Option<String>,
}

/// SubscribeToShard. Its answer is a stream of [`SubscribeToShardEvent`]s, which each protocol
/// delivers its own way; the [`Response`] is the acceptance before the first event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardInput {
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: ConsumerArn,
    pub shard_id: ShardId,
    pub starting_position: StartingPosition,
}

// ---------------------------------------------------------------------------------------------
// Resharding.

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SplitShardInput {
    pub stream_name: Option<String>,
    pub shard_to_split: ShardId,
    /// The upper child starts here.
    pub new_starting_hash_key: HashKey,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MergeShardsInput {
    pub stream_name: Option<String>,
    pub shard_to_merge: ShardId,
    pub adjacent_shard_to_merge: ShardId,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountInput {
    pub stream_name: Option<String>,
    pub target_shard_count: i32,
    pub scaling_type: ScalingType,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountOutput {
    pub stream_name: Option<String>,
    pub current_shard_count: Option<i32>,
    pub target_shard_count: Option<i32>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

impl Operation {
    /// Sluice's own operations (consumer-group leases, `crate::leases`; the routing table,
    /// `crate::routes`), which answer to the
    /// `Sluice_20261201` target prefix; every other operation is Kinesis'.
    pub fn is_sluice(self) -> bool {
        matches!(
            self,
            Operation::CheckpointLease
                | Operation::CreateApplication
                | Operation::DeleteApplication
                | Operation::DescribeApplication
                | Operation::DescribeStreamRoutes
                | Operation::ListApplications
                | Operation::ListLeases
                | Operation::ReleaseLease
                | Operation::RenewLease
                | Operation::StealLease
                | Operation::TakeLease
        )
    }

    /// The IAM action a caller needs for this operation: `kinesis:<Name>`, as AWS's service
    /// authorization reference lists them, except DescribeStreamRoutes, which needs
    /// `kinesis:DescribeStream` (`crate::routes` says why).
    pub fn iam_action(self) -> &'static str {
        match self {
            Operation::DescribeStreamRoutes => Operation::DescribeStream.named_iam_action(),
            _ => self.named_iam_action(),
        }
    }

    /// The `X-Amz-Target` of a call: `Kinesis_20131202.PutRecord`, `Sluice_20261201.TakeLease`.
    pub fn target(self) -> String {
        let prefix = if self.is_sluice() { SLUICE_TARGET_PREFIX } else { "Kinesis_20131202." };
        format!("{prefix}{}", self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// The operation list.

/// An input type: which operation it is the input of, and what that operation answers.
/// Implemented for every input by [`operations!`].
pub trait OperationInput: Into<Request> {
    const OPERATION: Operation;
    type Output;

    /// The output, if `response` is this operation's; otherwise the operation it answers.
    fn output_of(response: Response) -> Result<Self::Output, Operation>;
}

/// Declares [`Operation`], [`Request`], [`Response`] and their plumbing from one list of
/// `Name(Input) -> Output` lines. The name is AWS's operation name, which is also the IAM
/// action (`kinesis:<Name>`) and the `X-Amz-Target` suffix.
macro_rules! operations {
    ($( $(#[$meta:meta])* $name:ident($input:ident) -> $output:ident; )*) => {
        /// Every operation of the model, by its AWS name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $( $(#[$meta])* $name, )*
        }

        impl Operation {
            /// Every operation, in alphabetical order.
            pub const ALL: &'static [Operation] = &[$( Operation::$name, )*];

            /// The AWS operation name, e.g. `PutRecords`.
            pub fn name(self) -> &'static str {
                match self {
                    $( Operation::$name => stringify!($name), )*
                }
            }

            /// The operation an AWS name stands for.
            pub fn from_name(name: &str) -> Option<Operation> {
                match name {
                    $( stringify!($name) => Some(Operation::$name), )*
                    _ => None,
                }
            }

            /// `kinesis:<Name>`, the action [`Operation::iam_action`] answers for all but
            /// the operations it names otherwise.
            fn named_iam_action(self) -> &'static str {
                match self {
                    $( Operation::$name => concat!("kinesis:", stringify!($name)), )*
                }
            }
        }

        impl std::fmt::Display for Operation {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        /// A call of any operation, with its input.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Request {
            $( $name($input), )*
        }

        /// The answer of any operation, with its output.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Response {
            $( $name($output), )*
        }

        impl Request {
            pub fn operation(&self) -> Operation {
                match self {
                    $( Request::$name(_) => Operation::$name, )*
                }
            }

            /// Reads the input of `operation` (the input alone, as AWS's JSON protocol carries
            /// it, with the operation named outside the body).
            pub fn deserialize_input<'de, D: Deserializer<'de>>(
                operation: Operation,
                deserializer: D,
            ) -> Result<Request, D::Error> {
                Ok(match operation {
                    $( Operation::$name => Request::$name($input::deserialize(deserializer)?), )*
                })
            }
        }

        /// A request serializes as its input alone.
        impl Serialize for Request {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Request::$name(input) => input.serialize(serializer), )*
                }
            }
        }

        impl Response {
            pub fn operation(&self) -> Operation {
                match self {
                    $( Response::$name(_) => Operation::$name, )*
                }
            }

            /// Reads the output of `operation`.
            pub fn deserialize_output<'de, D: Deserializer<'de>>(
                operation: Operation,
                deserializer: D,
            ) -> Result<Response, D::Error> {
                Ok(match operation {
                    $( Operation::$name => Response::$name($output::deserialize(deserializer)?), )*
                })
            }
        }

        /// A response serializes as its output alone.
        impl Serialize for Response {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Response::$name(output) => output.serialize(serializer), )*
                }
            }
        }

        $(
            impl From<$input> for Request {
                fn from(input: $input) -> Request {
                    Request::$name(input)
                }
            }

            impl OperationInput for $input {
                const OPERATION: Operation = Operation::$name;
                type Output = $output;

                fn output_of(response: Response) -> Result<$output, Operation> {
                    match response {
                        Response::$name(output) => Ok(output),
                        other => Err(other.operation()),
                    }
                }
            }
        )*
    };
}

operations! {
    AcknowledgeDeadLetterQueueRecords(AcknowledgeDeadLetterQueueRecordsInput) -> QueueEntriesOutput;
    AcknowledgeQueueRecords(AcknowledgeQueueRecordsInput) -> QueueEntriesOutput;
    AddTagsToStream(AddTagsToStreamInput) -> Empty;
    CheckpointLease(CheckpointLeaseInput) -> LeaseOutput;
    CreateApplication(CreateApplicationInput) -> ApplicationDescriptionOutput;
    CreateQueue(CreateQueueInput) -> QueueDescriptionOutput;
    CreateStream(CreateStreamInput) -> Empty;
    DecreaseStreamRetentionPeriod(DecreaseStreamRetentionPeriodInput) -> Empty;
    DeleteApplication(DeleteApplicationInput) -> Empty;
    DeleteQueue(DeleteQueueInput) -> Empty;
    DeleteResourcePolicy(DeleteResourcePolicyInput) -> Empty;
    DeleteStream(DeleteStreamInput) -> Empty;
    DeregisterStreamConsumer(DeregisterStreamConsumerInput) -> Empty;
    DescribeAccountSettings(DescribeAccountSettingsInput) -> DescribeAccountSettingsOutput;
    DescribeApplication(DescribeApplicationInput) -> ApplicationDescriptionOutput;
    DescribeLimits(DescribeLimitsInput) -> DescribeLimitsOutput;
    DescribeQueue(DescribeQueueInput) -> QueueDescriptionOutput;
    DescribeStream(DescribeStreamInput) -> DescribeStreamOutput;
    DescribeStreamConsumer(DescribeStreamConsumerInput) -> DescribeStreamConsumerOutput;
    DescribeStreamRoutes(DescribeStreamRoutesInput) -> DescribeStreamRoutesOutput;
    DescribeStreamSummary(DescribeStreamSummaryInput) -> DescribeStreamSummaryOutput;
    DisableEnhancedMonitoring(DisableEnhancedMonitoringInput) -> EnhancedMonitoringOutput;
    EnableEnhancedMonitoring(EnableEnhancedMonitoringInput) -> EnhancedMonitoringOutput;
    GetRecords(GetRecordsInput) -> GetRecordsOutput;
    GetResourcePolicy(GetResourcePolicyInput) -> GetResourcePolicyOutput;
    GetShardIterator(GetShardIteratorInput) -> GetShardIteratorOutput;
    IncreaseStreamRetentionPeriod(IncreaseStreamRetentionPeriodInput) -> Empty;
    ListApplications(ListApplicationsInput) -> ListApplicationsOutput;
    ListLeases(ListLeasesInput) -> ListLeasesOutput;
    ListQueues(ListQueuesInput) -> ListQueuesOutput;
    ListShards(ListShardsInput) -> ListShardsOutput;
    ListStreamConsumers(ListStreamConsumersInput) -> ListStreamConsumersOutput;
    ListStreams(ListStreamsInput) -> ListStreamsOutput;
    ListTagsForResource(ListTagsForResourceInput) -> ListTagsForResourceOutput;
    ListTagsForStream(ListTagsForStreamInput) -> ListTagsForStreamOutput;
    MergeShards(MergeShardsInput) -> Empty;
    PutRecord(PutRecordInput) -> PutRecordOutput;
    PutRecords(PutRecordsInput) -> PutRecordsOutput;
    PutResourcePolicy(PutResourcePolicyInput) -> Empty;
    ReceiveDeadLetterQueueRecords(ReceiveDeadLetterQueueRecordsInput) -> QueueRecordsOutput;
    ReceiveQueueRecords(ReceiveQueueRecordsInput) -> QueueRecordsOutput;
    RegisterStreamConsumer(RegisterStreamConsumerInput) -> RegisterStreamConsumerOutput;
    ReleaseLease(ReleaseLeaseInput) -> LeaseOutput;
    RemoveTagsFromStream(RemoveTagsFromStreamInput) -> Empty;
    RenewLease(RenewLeaseInput) -> LeaseOutput;
    RestoreDeadLetterQueueRecords(RestoreDeadLetterQueueRecordsInput) -> QueueEntriesOutput;
    SplitShard(SplitShardInput) -> Empty;
    StartStreamEncryption(StartStreamEncryptionInput) -> Empty;
    StealLease(StealLeaseInput) -> LeaseOutput;
    StopStreamEncryption(StopStreamEncryptionInput) -> Empty;
    /// The answer is the acceptance; the events follow separately (see [`SubscribeToShardInput`]).
    SubscribeToShard(SubscribeToShardInput) -> Empty;
    TagResource(TagResourceInput) -> Empty;
    TakeLease(TakeLeaseInput) -> LeaseOutput;
    UntagResource(UntagResourceInput) -> Empty;
    UpdateAccountSettings(UpdateAccountSettingsInput) -> UpdateAccountSettingsOutput;
    UpdateDeadLetterQueueRecordsVisibility(UpdateDeadLetterQueueRecordsVisibilityInput) -> QueueEntriesOutput;
    UpdateMaxRecordSize(UpdateMaxRecordSizeInput) -> Empty;
    UpdateQueue(UpdateQueueInput) -> QueueDescriptionOutput;
    UpdateQueueRecordsVisibility(UpdateQueueRecordsVisibilityInput) -> QueueEntriesOutput;
    UpdateShardCount(UpdateShardCountInput) -> UpdateShardCountOutput;
    UpdateStreamMode(UpdateStreamModeInput) -> Empty;
    UpdateStreamRecordDistributionStrategy(UpdateStreamRecordDistributionStrategyInput) -> Empty;
    UpdateStreamWarmThroughput(UpdateStreamWarmThroughputInput) -> UpdateStreamWarmThroughputOutput;
}

impl Operation {
    /// The twelve operations of Kinesis queues.
    pub fn is_queue(self) -> bool {
        matches!(
            self,
            Operation::AcknowledgeDeadLetterQueueRecords
                | Operation::AcknowledgeQueueRecords
                | Operation::CreateQueue
                | Operation::DeleteQueue
                | Operation::DescribeQueue
                | Operation::ListQueues
                | Operation::ReceiveDeadLetterQueueRecords
                | Operation::ReceiveQueueRecords
                | Operation::RestoreDeadLetterQueueRecords
                | Operation::UpdateDeadLetterQueueRecordsVisibility
                | Operation::UpdateQueue
                | Operation::UpdateQueueRecordsVisibility
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_as_aws_names_them() {
        assert_eq!(Operation::ALL.len(), 63);
        for &operation in Operation::ALL {
            assert_eq!(Operation::from_name(operation.name()), Some(operation));
            if operation != Operation::DescribeStreamRoutes {
                assert_eq!(operation.iam_action(), format!("kinesis:{operation}"));
            }
        }
        assert_eq!(Operation::DescribeStreamRoutes.iam_action(), "kinesis:DescribeStream");
        assert!(Operation::DescribeStreamRoutes.is_sluice());
        let mut sorted = Operation::ALL.to_vec();
        sorted.sort_by_key(|operation| operation.name());
        assert_eq!(sorted, Operation::ALL, "the list is alphabetical");
        assert_eq!(Operation::from_name("PutRecord2"), None);
    }

    #[test]
    fn inputs_serialize_with_aws_member_names() {
        let put = PutRecordInput {
            stream_arn: Some(StreamArn::from("arn:aws:kinesis:us-east-1:000000000000:stream/s")),
            data: Bytes::from_static(b"hello"),
            partition_key: Some("k".into()),
            explicit_hash_key: Some(HashKey(7)),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&Request::from(put.clone())).unwrap(),
            r#"{"Data":"aGVsbG8=","PartitionKey":"k","ExplicitHashKey":"7","StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s"}"#
        );
        let json = serde_json::to_vec(&put).unwrap();
        let back = Request::deserialize_input(Operation::PutRecord, &mut serde_json::Deserializer::from_slice(&json));
        assert_eq!(back.unwrap(), Request::PutRecord(put));
        assert_eq!(serde_json::to_string(&Response::CreateStream(Empty {})).unwrap(), "{}");
    }

    #[test]
    fn put_records_error_codes_are_spelled_as_aws_spells_them() {
        let output = PutRecordsOutput {
            failed_record_count: Some(2),
            records: vec![
                PutRecordsResultEntry {
                    error_code: Some(crate::ErrorKind::ProvisionedThroughputExceeded),
                    error_message: Some("Rate exceeded".into()),
                    ..Default::default()
                },
                PutRecordsResultEntry {
                    error_code: Some(crate::ErrorKind::InternalFailure),
                    error_message: Some("Internal service failure.".into()),
                    ..Default::default()
                },
            ],
            encryption_type: None,
        };
        let json = serde_json::to_string(&output).unwrap();
        assert_eq!(
            json,
            r#"{"FailedRecordCount":2,"Records":[{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded"},{"ErrorCode":"InternalFailure","ErrorMessage":"Internal service failure."}]}"#
        );
        assert_eq!(serde_json::from_str::<PutRecordsOutput>(&json).unwrap(), output);
    }
}
