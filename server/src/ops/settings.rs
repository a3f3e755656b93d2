//! Stream and account settings: UpdateMaxRecordSize, UpdateStreamRecordDistributionStrategy,
//! UpdateStreamWarmThroughput (which scales the stream towards its target in the background,
//! as UpdateShardCount does) and Describe/UpdateAccountSettings. The rules are pure
//! (`control::settings`); the records' side is in `records.rs`.

use crate::control;
use crate::ops::cluster::meta::{edit, MetaCommand};
use crate::ops::node::Node;
use sluice_model::*;
use std::rc::Rc;

type Result<T> = std::result::Result<T, KinesisError>;

pub async fn update_max_record_size(node: &Rc<Node>, input: UpdateMaxRecordSizeInput) -> Result<Empty> {
    let arn = input.stream_arn.ok_or_else(|| KinesisError::invalid_argument("StreamARN must be provided"))?;
    let name = node.identity().stream_name_of(&arn)?.to_owned();
    let kib = input.max_record_size_in_kib;
    edit(node, MetaCommand::UpdateMaxRecordSize { name, kib }).await?;
    Ok(Empty {})
}

pub async fn update_distribution(node: &Rc<Node>, input: UpdateStreamRecordDistributionStrategyInput) -> Result<Empty> {
    let name = node.identity().stream_name_of(&input.stream_arn)?.to_owned();
    let strategy = input.record_distribution_strategy;
    edit(node, MetaCommand::UpdateRecordDistribution { name, strategy }).await?;
    Ok(Empty {})
}

/// UpdateStreamWarmThroughput: records the target and returns at once; the stream is UPDATING
/// while it splits (or merges) to the shards the target needs.
pub async fn update_warm_throughput(
    node: &Rc<Node>,
    input: UpdateStreamWarmThroughputInput,
) -> Result<UpdateStreamWarmThroughputOutput> {
    let name = node.identity().resolve_stream(input.stream_name.as_deref(), input.stream_arn.as_ref())?.to_owned();
    let mibps = input.warm_throughput_mi_bps;
    let stream = name.clone();
    let warm = node
        .run_on(0, move |core0| async move {
            // Replicated, proposed by the catalog's leader (others forward it), whose scaling
            // below reaches the target; a new leader resumes it (`reshard`).
            let command = MetaCommand::BeginWarmThroughput { now_ms: core0.now_ms(), name: stream.clone(), mibps };
            let warm = edit(&core0, command).await?.into_warm()?;
            crate::ops::reshard::spawn_scaling(&core0, stream);
            Ok::<_, KinesisError>(warm)
        })
        .await??;
    Ok(UpdateStreamWarmThroughputOutput {
        stream_arn: Some(node.identity().stream_arn(&name)),
        stream_name: Some(name),
        warm_throughput: Some(warm),
    })
}

pub fn describe_account_settings(node: &Node) -> DescribeAccountSettingsOutput {
    let commitment = control::settings::commitment(&node.routes().account, node.now_ms());
    DescribeAccountSettingsOutput { minimum_throughput_billing_commitment: Some(commitment) }
}

pub async fn update_account_settings(
    node: &Rc<Node>,
    input: UpdateAccountSettingsInput,
) -> Result<UpdateAccountSettingsOutput> {
    let status = input.minimum_throughput_billing_commitment.status;
    // The commitment's window starts at the proposer's time, the same on every node.
    let command = MetaCommand::UpdateAccountSettings { now_ms: node.now_ms(), status };
    let commitment = edit(node, command).await?.into_commitment()?;
    Ok(UpdateAccountSettingsOutput { minimum_throughput_billing_commitment: Some(commitment) })
}
