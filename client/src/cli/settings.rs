//! `sluice`'s commands for a stream's settings, resource policies, encryption and tags of any
//! resource, and the account's settings: `aws kinesis`'s commands of the same names and
//! parameters, over the native protocol like every other single call.

use clap::Args;
use sluice_client::*;

use super::args::{parse_enum, parse_stream_mode_details, parse_structure, parse_tags, ParamError, StreamArgs};

#[derive(Debug, Args)]
pub struct UpdateStreamModeArgs {
    #[arg(long)]
    pub stream_arn: String,
    /// `StreamMode=ON_DEMAND`, `{"StreamMode":"ON_DEMAND"}` or just `ON_DEMAND`.
    #[arg(long, value_name = "STREAM_MODE_DETAILS")]
    pub stream_mode_details: String,
}

#[derive(Debug, Args)]
pub struct EnhancedMonitoringArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Metric names (`IncomingBytes`, ..., or `ALL`).
    #[arg(long, num_args = 1.., required = true)]
    pub shard_level_metrics: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateMaxRecordSizeArgs {
    #[arg(long)]
    pub stream_arn: String,
    /// 1024..=10240 (the AWS CLI's spelling; `--max-record-size-in-kib` works too).
    #[arg(long = "max-record-size-in-ki-b", alias = "max-record-size-in-kib", value_name = "KIB")]
    pub max_record_size_in_kib: i32,
}

#[derive(Debug, Args)]
pub struct UpdateStreamWarmThroughputArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// MiB/s the ON_DEMAND stream should take at once.
    #[arg(long = "warm-throughput-mi-bps", value_name = "MIBPS")]
    pub warm_throughput_mi_bps: i32,
}

#[derive(Debug, Args)]
pub struct UpdateStreamRecordDistributionStrategyArgs {
    #[arg(long)]
    pub stream_arn: String,
    /// AUTO or USER_PARTITION_KEY.
    #[arg(long)]
    pub record_distribution_strategy: String,
}

#[derive(Debug, Args)]
pub struct UpdateAccountSettingsArgs {
    /// `Status=ENABLED`, `{"Status":"DISABLED"}` or just `ENABLED`.
    #[arg(long, value_name = "COMMITMENT")]
    pub minimum_throughput_billing_commitment: String,
}

/// A resource (a stream or a consumer) by its ARN.
#[derive(Debug, Args)]
pub struct ResourceArgs {
    #[arg(long)]
    pub resource_arn: String,
}

#[derive(Debug, Args)]
pub struct PutResourcePolicyArgs {
    #[arg(long)]
    pub resource_arn: String,
    /// The IAM policy document, as JSON text.
    #[arg(long)]
    pub policy: String,
}

#[derive(Debug, Args)]
pub struct StreamEncryptionArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// KMS (NONE is refused, as by AWS).
    #[arg(long)]
    pub encryption_type: String,
    /// A key id, key ARN, alias (`alias/aws/kinesis`) or alias ARN.
    #[arg(long)]
    pub key_id: String,
}

#[derive(Debug, Args)]
pub struct TagResourceArgs {
    #[arg(long)]
    pub resource_arn: String,
    /// `k1=v1,k2=v2` or `{"k1":"v1"}`.
    #[arg(long)]
    pub tags: String,
}

#[derive(Debug, Args)]
pub struct UntagResourceArgs {
    #[arg(long)]
    pub resource_arn: String,
    #[arg(long, num_args = 1.., required = true)]
    pub tag_keys: Vec<String>,
}

fn stream_members(stream: &StreamArgs) -> (Option<String>, Option<StreamArn>) {
    (stream.stream_name.clone(), stream.stream_arn.clone().map(StreamArn::from))
}

pub fn update_stream_mode(args: &UpdateStreamModeArgs) -> Result<Request, ParamError> {
    let stream_mode = parse_stream_mode_details(&args.stream_mode_details)?;
    Ok(UpdateStreamModeInput {
        stream_arn: StreamArn::from(args.stream_arn.as_str()),
        stream_mode_details: StreamModeDetails::from(stream_mode),
    }
    .into())
}

pub fn enhanced_monitoring(args: &EnhancedMonitoringArgs, enable: bool) -> Result<Request, ParamError> {
    let (stream_name, stream_arn) = stream_members(&args.stream);
    let shard_level_metrics = args
        .shard_level_metrics
        .iter()
        .map(|metric| parse_enum("--shard-level-metrics", metric))
        .collect::<Result<Vec<MetricsName>, _>>()?;
    Ok(if enable {
        EnableEnhancedMonitoringInput { stream_name, shard_level_metrics, stream_arn }.into()
    } else {
        DisableEnhancedMonitoringInput { stream_name, shard_level_metrics, stream_arn }.into()
    })
}

pub fn update_max_record_size(args: &UpdateMaxRecordSizeArgs) -> Request {
    UpdateMaxRecordSizeInput {
        stream_arn: Some(StreamArn::from(args.stream_arn.as_str())),
        max_record_size_in_kib: args.max_record_size_in_kib,
    }
    .into()
}

pub fn update_stream_warm_throughput(args: &UpdateStreamWarmThroughputArgs) -> Request {
    let (stream_name, stream_arn) = stream_members(&args.stream);
    UpdateStreamWarmThroughputInput { stream_arn, stream_name, warm_throughput_mi_bps: args.warm_throughput_mi_bps }
        .into()
}

pub fn update_stream_record_distribution_strategy(
    args: &UpdateStreamRecordDistributionStrategyArgs,
) -> Result<Request, ParamError> {
    Ok(UpdateStreamRecordDistributionStrategyInput {
        stream_arn: StreamArn::from(args.stream_arn.as_str()),
        record_distribution_strategy: parse_enum("--record-distribution-strategy", &args.record_distribution_strategy)?,
    }
    .into())
}

pub fn update_account_settings(args: &UpdateAccountSettingsArgs) -> Result<Request, ParamError> {
    const PARAMETER: &str = "--minimum-throughput-billing-commitment";
    let value = &args.minimum_throughput_billing_commitment;
    let status = if !value.contains('=') && !value.trim_start().starts_with('{') {
        value.clone()
    } else {
        let mut structure = parse_structure(PARAMETER, value)?;
        if let Some(key) = structure.keys().find(|key| *key != "Status") {
            return Err(ParamError {
                parameter: PARAMETER,
                message: format!("Unknown member {key:?}; valid members: Status"),
            });
        }
        structure
            .remove("Status")
            .ok_or_else(|| ParamError { parameter: PARAMETER, message: "Status is required".into() })?
    };
    let status = parse_enum(PARAMETER, &status)?;
    Ok(UpdateAccountSettingsInput {
        minimum_throughput_billing_commitment: MinimumThroughputBillingCommitmentInput { status },
    }
    .into())
}

pub fn put_resource_policy(args: &PutResourcePolicyArgs) -> Request {
    PutResourcePolicyInput {
        resource_arn: ResourceArn::from(args.resource_arn.as_str()),
        policy: args.policy.clone(),
        stream_id: None,
    }
    .into()
}

pub fn get_resource_policy(args: &ResourceArgs) -> Request {
    GetResourcePolicyInput { resource_arn: ResourceArn::from(args.resource_arn.as_str()), stream_id: None }.into()
}

pub fn delete_resource_policy(args: &ResourceArgs) -> Request {
    DeleteResourcePolicyInput { resource_arn: ResourceArn::from(args.resource_arn.as_str()), stream_id: None }.into()
}

pub fn stream_encryption(args: &StreamEncryptionArgs, start: bool) -> Result<Request, ParamError> {
    let (stream_name, stream_arn) = stream_members(&args.stream);
    let encryption_type = parse_enum("--encryption-type", &args.encryption_type)?;
    let key_id = args.key_id.clone();
    Ok(if start {
        StartStreamEncryptionInput { stream_name, encryption_type, key_id, stream_arn }.into()
    } else {
        StopStreamEncryptionInput { stream_name, encryption_type, key_id, stream_arn }.into()
    })
}

pub fn tag_resource(args: &TagResourceArgs) -> Result<Request, ParamError> {
    Ok(TagResourceInput {
        tags: parse_tags("--tags", &args.tags)?,
        resource_arn: ResourceArn::from(args.resource_arn.as_str()),
    }
    .into())
}

pub fn untag_resource(args: &UntagResourceArgs) -> Request {
    UntagResourceInput { tag_keys: args.tag_keys.clone(), resource_arn: ResourceArn::from(args.resource_arn.as_str()) }
        .into()
}

pub fn list_tags_for_resource(args: &ResourceArgs) -> Request {
    ListTagsForResourceInput { resource_arn: ResourceArn::from(args.resource_arn.as_str()) }.into()
}
