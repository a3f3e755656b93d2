//! Stream and account settings added to Kinesis with its larger records and on-demand
//! features: UpdateMaxRecordSize, UpdateStreamWarmThroughput,
//! UpdateStreamRecordDistributionStrategy and UpdateAccountSettings, member for member as
//! botocore's Kinesis model names them (their checks are in `validate::settings`).

use crate::enums::{BillingCommitmentInputStatus, RecordDistributionStrategy};
use crate::ids::StreamArn;
use crate::shapes::{MinimumThroughputBillingCommitment, WarmThroughput};
use serde::{Deserialize, Serialize};

/// AWS `UpdateMaxRecordSizeInput`: the stream is named by its ARN only (the model has no
/// `StreamName` member here).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateMaxRecordSizeInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
    /// 1024..=10240 (`MaxRecordSizeInKiB` shape).
    #[serde(rename = "MaxRecordSizeInKiB")]
    pub max_record_size_in_kib: i32,
}

/// AWS `UpdateStreamWarmThroughputInput`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStreamWarmThroughputInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
    pub stream_name: Option<String>,
    /// MiB/s the stream should take at once (`NaturalIntegerObject`: at least 0).
    pub warm_throughput_mi_bps: i32,
}

/// AWS `UpdateStreamWarmThroughputOutput`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStreamWarmThroughputOutput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
    pub stream_name: Option<String>,
    pub warm_throughput: Option<WarmThroughput>,
}

/// AWS `UpdateStreamRecordDistributionStrategyInput`: `StreamARN` is required here.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStreamRecordDistributionStrategyInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    pub record_distribution_strategy: RecordDistributionStrategy,
}

/// AWS `MinimumThroughputBillingCommitmentInput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinimumThroughputBillingCommitmentInput {
    pub status: BillingCommitmentInputStatus,
}

/// AWS `UpdateAccountSettingsInput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAccountSettingsInput {
    pub minimum_throughput_billing_commitment: MinimumThroughputBillingCommitmentInput,
}

/// AWS `UpdateAccountSettingsOutput`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAccountSettingsOutput {
    pub minimum_throughput_billing_commitment: Option<MinimumThroughputBillingCommitment>,
}
