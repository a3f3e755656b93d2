//! Stream and account settings: a stream's largest record (UpdateMaxRecordSize), how it
//! spreads records (UpdateStreamRecordDistributionStrategy), its warm throughput
//! (UpdateStreamWarmThroughput, which starts a scaling towards it), and the account's
//! MinimumThroughputBillingCommitment with its commitment window (UpdateAccountSettings).

use crate::control::{open_shards, stream_mut, Rules};
use crate::limits::{BILLING_COMMITMENT_MS_MIN, WARM_THROUGHPUT_MIBPS_MAX, WARM_THROUGHPUT_MIBPS_PER_SHARD};
use sluice_engine::catalog::{
    AccountSettings, BillingCommitment, CapacityMode, Catalog, RecordDistribution, StreamMeta, StreamStatus,
};
use sluice_model::{
    BillingCommitmentInputStatus, BillingCommitmentStatus, KinesisError, MinimumThroughputBillingCommitment,
    RecordDistributionStrategy, Timestamp, WarmThroughput,
};

type Result<T = ()> = std::result::Result<T, KinesisError>;

fn require_active(stream: &StreamMeta, rules: Rules<'_>, doing: &str) -> Result {
    if stream.status != StreamStatus::Active {
        return Err(KinesisError::stream_not_active(rules.identity, &stream.name, doing));
    }
    Ok(())
}

/// UpdateMaxRecordSize (the model checked the range): from the next record on, the stream
/// takes records of up to `kib` KiB, data plus partition key.
pub fn update_max_record_size(catalog: &mut Catalog, rules: Rules<'_>, name: &str, kib: i32) -> Result {
    let stream = stream_mut(catalog, rules.identity, name)?;
    require_active(stream, rules, "wait until it is")?;
    stream.max_record_size_kib = u32::try_from(kib).map_err(|_| KinesisError::invalid_argument("bad size"))?;
    Ok(())
}

/// UpdateStreamRecordDistributionStrategy: AUTO only on ON_DEMAND streams (the operation's
/// documentation: "Attempting to set AUTO on a provisioned stream results in an
/// InvalidArgumentException").
pub fn update_distribution(
    catalog: &mut Catalog,
    rules: Rules<'_>,
    name: &str,
    strategy: &RecordDistributionStrategy,
) -> Result {
    let stream = stream_mut(catalog, rules.identity, name)?;
    require_active(stream, rules, "wait until it is")?;
    let distribution = match strategy {
        RecordDistributionStrategy::Auto => RecordDistribution::Auto,
        RecordDistributionStrategy::UserPartitionKey => RecordDistribution::UserPartitionKey,
        RecordDistributionStrategy::Unknown(_) => {
            return Err(KinesisError::not_in_enum(strategy, "recordDistributionStrategy"))
        }
    };
    if distribution == RecordDistribution::Auto && stream.mode != CapacityMode::OnDemand {
        return Err(KinesisError::invalid_argument(format!(
            "Stream {name} is in PROVISIONED mode; the AUTO record distribution strategy needs ON_DEMAND"
        )));
    }
    stream.distribution = distribution;
    Ok(())
}

/// The model's strategy of a stream.
pub fn distribution_strategy(stream: &StreamMeta) -> RecordDistributionStrategy {
    match stream.distribution {
        RecordDistribution::Auto => RecordDistributionStrategy::Auto,
        RecordDistribution::UserPartitionKey => RecordDistributionStrategy::UserPartitionKey,
    }
}

/// Whether the account's commitment is in force at `now_ms` (ENABLED, or ENABLED until its
/// earliest allowed end).
pub fn commitment_in_force(account: &AccountSettings, now_ms: i64) -> bool {
    matches!(
        commitment(account, now_ms).status,
        BillingCommitmentStatus::Enabled | BillingCommitmentStatus::EnabledUntilEarliestAllowedEnd
    )
}

/// DescribeAccountSettings' view of the commitment at `now_ms`: a disable asked inside the
/// window has taken effect once the window is over.
pub fn commitment(account: &AccountSettings, now_ms: i64) -> MinimumThroughputBillingCommitment {
    let at = Timestamp::from_epoch_ms;
    let Some(c) = account.billing_commitment else {
        return MinimumThroughputBillingCommitment {
            status: BillingCommitmentStatus::Disabled,
            started_at: None,
            ended_at: None,
            earliest_allowed_end_at: None,
        };
    };
    let ended_ms = c.ended_ms.or((c.disable_requested && now_ms >= c.earliest_end_ms).then_some(c.earliest_end_ms));
    let status = match (ended_ms, c.disable_requested) {
        (Some(_), _) => BillingCommitmentStatus::Disabled,
        (None, true) => BillingCommitmentStatus::EnabledUntilEarliestAllowedEnd,
        (None, false) => BillingCommitmentStatus::Enabled,
    };
    MinimumThroughputBillingCommitment {
        status,
        started_at: Some(at(c.started_ms)),
        ended_at: ended_ms.map(at),
        earliest_allowed_end_at: Some(at(c.earliest_end_ms)),
    }
}

/// UpdateAccountSettings: enabling starts a commitment of at least
/// [`BILLING_COMMITMENT_MS_MIN`] (or cancels a pending disable); disabling inside the window
/// schedules the end at the window's end (ENABLED_UNTIL_EARLIEST_ALLOWED_END), after it ends
/// it at once. Asking for the state it is already in changes nothing.
pub fn update_account_settings(
    catalog: &mut Catalog,
    now_ms: i64,
    status: &BillingCommitmentInputStatus,
) -> Result<MinimumThroughputBillingCommitment> {
    let in_force = commitment_in_force(&catalog.account, now_ms);
    let current = &mut catalog.account.billing_commitment;
    match status {
        BillingCommitmentInputStatus::Enabled => match current {
            Some(c) if in_force => c.disable_requested = false,
            _ => {
                *current = Some(BillingCommitment {
                    started_ms: now_ms,
                    earliest_end_ms: now_ms + BILLING_COMMITMENT_MS_MIN,
                    disable_requested: false,
                    ended_ms: None,
                })
            }
        },
        BillingCommitmentInputStatus::Disabled => match current {
            Some(c) if in_force => {
                if now_ms >= c.earliest_end_ms {
                    c.ended_ms = Some(now_ms);
                } else {
                    c.disable_requested = true;
                }
            }
            _ => {}
        },
        BillingCommitmentInputStatus::Unknown(_) => {
            return Err(KinesisError::not_in_enum(status, "minimumThroughputBillingCommitment.status"))
        }
    }
    Ok(commitment(&catalog.account, now_ms))
}

/// Open shards needed for `mibps` of warm throughput: at least one, and never below what an
/// on-demand stream starts with.
pub fn shards_for_throughput(mibps: u32, rules: Rules<'_>) -> u32 {
    mibps.div_ceil(WARM_THROUGHPUT_MIBPS_PER_SHARD).max(rules.limits.on_demand_initial_shards).max(1)
}

/// The warm throughput a description shows: for ON_DEMAND streams while the account's
/// commitment is in force (the `WarmThroughputObject` documentation), else `None`.
pub fn warm_throughput(account: &AccountSettings, now_ms: i64, stream: &StreamMeta) -> Option<WarmThroughput> {
    if stream.mode != CapacityMode::OnDemand || !commitment_in_force(account, now_ms) {
        return None;
    }
    let open = stream.shards.iter().filter(|shard| shard.is_open()).count() as u32;
    let current = open.saturating_mul(WARM_THROUGHPUT_MIBPS_PER_SHARD);
    Some(WarmThroughput {
        target_mi_bps: Some(stream.warm_throughput_target_mibps.unwrap_or(current) as i32),
        current_mi_bps: Some(current as i32),
    })
}

/// UpdateStreamWarmThroughput's first step: checks the stream, the account and the quotas,
/// records the target and, if the open shards differ from what it needs, marks the stream
/// UPDATING towards that many shards (the scaling of UpdateShardCount then runs, and a
/// restart resumes it). Returns the warm throughput to answer.
pub fn begin_warm_throughput(
    catalog: &mut Catalog,
    now_ms: i64,
    rules: Rules<'_>,
    name: &str,
    mibps: i32,
) -> Result<WarmThroughput> {
    let Rules { identity, limits } = rules;
    let in_force = commitment_in_force(&catalog.account, now_ms);
    let open_account = open_shards(catalog);
    let stream = stream_mut(catalog, identity, name)?;
    if stream.mode != CapacityMode::OnDemand {
        return Err(KinesisError::invalid_argument(format!(
            "Stream {name} is in PROVISIONED mode; warm throughput is only supported for ON_DEMAND streams"
        )));
    }
    if !in_force {
        return Err(KinesisError::invalid_argument(
            "Warm throughput is only supported in accounts that have MinimumThroughputBillingCommitment enabled",
        ));
    }
    require_active(stream, rules, "wait until it is")?;
    let mibps = u32::try_from(mibps).unwrap_or(0);
    if mibps > WARM_THROUGHPUT_MIBPS_MAX {
        return Err(KinesisError::limit_exceeded(format!(
            "WarmThroughputMiBps {mibps} is above the limit of {WARM_THROUGHPUT_MIBPS_MAX} MiB/s for an on-demand stream"
        )));
    }
    let target = shards_for_throughput(mibps, rules);
    let current = stream.shards.iter().filter(|shard| shard.is_open()).count() as u32;
    let stream_max = (limits.on_demand_shards_max as u32).min(limits.shards_per_stream_max);
    if target > stream_max {
        return Err(KinesisError::limit_exceeded(format!(
            "WarmThroughputMiBps {mibps} needs {target} shards; an on-demand stream can have at most {stream_max}"
        )));
    }
    if open_account - current + target > limits.shard_limit {
        return Err(KinesisError::shard_limit_exceeded(
            identity,
            open_account,
            limits.shard_limit,
            target.saturating_sub(current),
        ));
    }
    stream.warm_throughput_target_mibps = Some(mibps);
    if target != current {
        stream.scaling_target = Some(target);
        stream.status = StreamStatus::Updating;
    }
    Ok(WarmThroughput {
        target_mi_bps: Some(mibps as i32),
        current_mi_bps: Some(current.saturating_mul(WARM_THROUGHPUT_MIBPS_PER_SHARD) as i32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_support::{rules, NOW_MS};
    use sluice_model::ErrorKind;

    fn catalog_with(mode: CapacityMode) -> Catalog {
        let mut catalog = Catalog::new(1);
        catalog.create_stream("s", 4, mode, NOW_MS).unwrap();
        catalog
    }

    fn status(catalog: &Catalog, now_ms: i64) -> BillingCommitmentStatus {
        commitment(&catalog.account, now_ms).status
    }

    #[test]
    fn a_commitment_runs_its_window_before_it_ends() {
        let mut catalog = Catalog::new(1);
        assert_eq!(status(&catalog, NOW_MS), BillingCommitmentStatus::Disabled);
        let enabled = update_account_settings(&mut catalog, NOW_MS, &BillingCommitmentInputStatus::Enabled).unwrap();
        assert_eq!(enabled.status, BillingCommitmentStatus::Enabled);
        assert_eq!(enabled.earliest_allowed_end_at, Some(Timestamp::from_epoch_ms(NOW_MS + BILLING_COMMITMENT_MS_MIN)));
        // Disabling inside the window schedules the end at the window's end.
        let hour = 3_600_000;
        let disabled =
            update_account_settings(&mut catalog, NOW_MS + hour, &BillingCommitmentInputStatus::Disabled).unwrap();
        assert_eq!(disabled.status, BillingCommitmentStatus::EnabledUntilEarliestAllowedEnd);
        assert_eq!(disabled.ended_at, None);
        // Enabling again cancels the pending disable, in the same commitment.
        let again = update_account_settings(&mut catalog, NOW_MS + 2 * hour, &BillingCommitmentInputStatus::Enabled);
        assert_eq!(again.unwrap().started_at, enabled.started_at);
        update_account_settings(&mut catalog, NOW_MS + 3 * hour, &BillingCommitmentInputStatus::Disabled).unwrap();
        let end = NOW_MS + BILLING_COMMITMENT_MS_MIN;
        assert_eq!(status(&catalog, end - 1), BillingCommitmentStatus::EnabledUntilEarliestAllowedEnd);
        let over = commitment(&catalog.account, end + hour);
        assert_eq!(
            (over.status, over.ended_at),
            (BillingCommitmentStatus::Disabled, Some(Timestamp::from_epoch_ms(end)))
        );
        // After the window a disable ends it at once; enabling starts a new window.
        let mut late = Catalog::new(1);
        update_account_settings(&mut late, NOW_MS, &BillingCommitmentInputStatus::Enabled).unwrap();
        let ended = update_account_settings(&mut late, end + 5, &BillingCommitmentInputStatus::Disabled).unwrap();
        assert_eq!(
            (ended.status, ended.ended_at),
            (BillingCommitmentStatus::Disabled, Some(Timestamp::from_epoch_ms(end + 5)))
        );
        let renewed = update_account_settings(&mut late, end + 10, &BillingCommitmentInputStatus::Enabled).unwrap();
        assert_eq!(renewed.started_at, Some(Timestamp::from_epoch_ms(end + 10)));
        assert_eq!(renewed.status, BillingCommitmentStatus::Enabled);
    }

    #[test]
    fn warm_throughput_needs_on_demand_and_a_commitment_and_scales_to_its_shards() {
        let mut provisioned = catalog_with(CapacityMode::Provisioned);
        update_account_settings(&mut provisioned, NOW_MS, &BillingCommitmentInputStatus::Enabled).unwrap();
        let refused = begin_warm_throughput(&mut provisioned, NOW_MS, rules(), "s", 10).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::InvalidArgument);
        let mut catalog = catalog_with(CapacityMode::OnDemand);
        let refused = begin_warm_throughput(&mut catalog, NOW_MS, rules(), "s", 10).unwrap_err();
        assert!(refused.message.contains("MinimumThroughputBillingCommitment"), "{}", refused.message);
        update_account_settings(&mut catalog, NOW_MS, &BillingCommitmentInputStatus::Enabled).unwrap();
        let over = begin_warm_throughput(&mut catalog, NOW_MS, rules(), "s", 10_241).unwrap_err();
        assert_eq!(over.kind, ErrorKind::LimitExceeded);
        let answer = begin_warm_throughput(&mut catalog, NOW_MS, rules(), "s", 10).unwrap();
        assert_eq!((answer.target_mi_bps, answer.current_mi_bps), (Some(10), Some(4)));
        let stream = &catalog.streams["s"];
        assert_eq!((stream.scaling_target, stream.status), (Some(10), StreamStatus::Updating));
        let busy = begin_warm_throughput(&mut catalog, NOW_MS, rules(), "s", 12).unwrap_err();
        assert_eq!(busy.kind, ErrorKind::ResourceInUse);
        assert_eq!(warm_throughput(&catalog.account, NOW_MS, &catalog.streams["s"]).unwrap().target_mi_bps, Some(10));
    }

    #[test]
    fn auto_distribution_is_for_on_demand_streams_only() {
        let mut provisioned = catalog_with(CapacityMode::Provisioned);
        let refused = update_distribution(&mut provisioned, rules(), "s", &RecordDistributionStrategy::Auto);
        assert_eq!(refused.unwrap_err().kind, ErrorKind::InvalidArgument);
        update_distribution(&mut provisioned, rules(), "s", &RecordDistributionStrategy::UserPartitionKey).unwrap();
        let mut on_demand = catalog_with(CapacityMode::OnDemand);
        update_distribution(&mut on_demand, rules(), "s", &RecordDistributionStrategy::Auto).unwrap();
        assert_eq!(distribution_strategy(&on_demand.streams["s"]), RecordDistributionStrategy::Auto);
        update_max_record_size(&mut on_demand, rules(), "s", 10_240).unwrap();
        assert_eq!(on_demand.streams["s"].max_record_size_kib, 10_240);
        let missing = update_max_record_size(&mut on_demand, rules(), "t", 2048).unwrap_err();
        assert_eq!(missing.kind, ErrorKind::ResourceNotFound);
    }
}
