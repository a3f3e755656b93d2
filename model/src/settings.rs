//! Stream and account settings added to Kinesis with its larger records and on-demand
//! features: UpdateMaxRecordSize, UpdateStreamWarmThroughput,
//! UpdateStreamRecordDistributionStrategy and UpdateAccountSettings, member for member as
//! botocore's Kinesis model names them, with the checks that need no server state.

use crate::enums::{BillingCommitmentInputStatus, RecordDistributionStrategy};
use crate::error::{KinesisError, Violation};
use crate::identity::Identity;
use crate::ids::StreamArn;
use crate::limits::{MAX_RECORD_SIZE_KIB_MAX, MAX_RECORD_SIZE_KIB_MIN};
use crate::operations::Request;
use crate::shapes::MinimumThroughputBillingCommitment;
use serde::{Deserialize, Serialize};

type Result<T = ()> = std::result::Result<T, KinesisError>;

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

/// AWS `WarmThroughputObject`: what an on-demand stream is scaled to take now, and what it is
/// heading for.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WarmThroughput {
    pub target_mi_bps: Option<i32>,
    pub current_mi_bps: Option<i32>,
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

/// The checks of a settings request that need no state; `None` for any other request.
pub(crate) fn validate(request: &Request, identity: &Identity) -> Option<Result> {
    Some(match request {
        Request::UpdateMaxRecordSize(input) => update_max_record_size(input, identity),
        Request::UpdateStreamWarmThroughput(input) => {
            if input.warm_throughput_mi_bps < 0 {
                return Some(Err(KinesisError::validation(Violation::min_value(
                    input.warm_throughput_mi_bps,
                    "warmThroughputMiBps",
                    0,
                ))));
            }
            identity.resolve_stream(input.stream_name.as_deref(), input.stream_arn.as_ref()).map(drop)
        }
        Request::UpdateStreamRecordDistributionStrategy(input) => {
            crate::validate::known(&input.record_distribution_strategy, "recordDistributionStrategy")
                .and_then(|()| identity.stream_name_of(&input.stream_arn).map(drop))
        }
        Request::UpdateAccountSettings(input) => crate::validate::known(
            &input.minimum_throughput_billing_commitment.status,
            "minimumThroughputBillingCommitment.status",
        ),
        _ => return None,
    })
}

fn update_max_record_size(input: &UpdateMaxRecordSizeInput, identity: &Identity) -> Result {
    let kib = input.max_record_size_in_kib;
    if kib < MAX_RECORD_SIZE_KIB_MIN {
        return Err(KinesisError::validation(Violation::min_value(kib, "maxRecordSizeInKiB", MAX_RECORD_SIZE_KIB_MIN)));
    }
    if kib > MAX_RECORD_SIZE_KIB_MAX {
        return Err(KinesisError::validation(Violation::max_value(kib, "maxRecordSizeInKiB", MAX_RECORD_SIZE_KIB_MAX)));
    }
    match &input.stream_arn {
        Some(arn) => identity.stream_name_of(arn).map(drop),
        None => Err(KinesisError::invalid_argument("StreamARN must be provided")),
    }
}
