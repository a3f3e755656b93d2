//! Streams: create, delete, retention, tags, enhanced monitoring, capacity mode.

use crate::control::{catalog_err, on_demand_streams, open_shards, stream_mut, Rules};
use crate::kinesis::views::{capacity_mode, metric_list};
use crate::limits::LIMIT_WINDOW_MS;
use sluice_engine::catalog::{CapacityMode, Catalog, RecordDistribution, StreamMeta, StreamStatus};
use sluice_model::{CreateStreamInput, EnhancedMonitoringOutput, KinesisError, MetricsName, StreamMode, TagMap};

type Result<T = ()> = std::result::Result<T, KinesisError>;

/// CreateStream, on an input that passed the model's validation.
/// The prefix of the streams the server keeps for itself (`__sluice.firehose.NAME`, a Direct
/// PUT delivery stream's records): the Kinesis API refuses to create them and answers
/// ResourceNotFoundException for any request naming one (`ops::dispatch`), and ListStreams
/// leaves them out; only the server's own features reach them.
pub const INTERNAL_STREAM_PREFIX: &str = "__sluice.";

/// The hidden stream holding a Direct PUT delivery stream's records until they are delivered.
pub fn internal_stream_name(delivery_stream: &str) -> String {
    format!("{INTERNAL_STREAM_PREFIX}firehose.{delivery_stream}")
}

/// Whether `name` is a stream the server keeps for itself.
pub fn is_internal(name: &str) -> bool {
    name.starts_with(INTERNAL_STREAM_PREFIX)
}

pub fn create_stream(catalog: &mut Catalog, now_ms: i64, rules: Rules<'_>, input: &CreateStreamInput) -> Result {
    let Rules { identity, limits } = rules;
    let mode = input.stream_mode_details.as_ref().map_or(&StreamMode::Provisioned, |details| &details.stream_mode);
    let mode = capacity_mode(mode)?;
    let shard_count = match (mode, input.shard_count) {
        (_, Some(count)) => u32::try_from(count).unwrap_or(0),
        (CapacityMode::OnDemand, None) => limits.on_demand_initial_shards,
        (CapacityMode::Provisioned, None) => {
            return Err(KinesisError::invalid_argument("ShardCount is required for streams in PROVISIONED mode"))
        }
    };
    if shard_count > limits.shards_per_stream_max {
        return Err(KinesisError::limit_exceeded(format!(
            "A stream can have at most {} shards",
            limits.shards_per_stream_max
        )));
    }
    let tags = input.tags.clone().unwrap_or_default();
    if tags.len() > limits.tags_per_resource_max {
        return Err(KinesisError::too_many_tags("stream", limits.tags_per_resource_max));
    }
    if catalog.streams.contains_key(&input.stream_name) {
        return Err(KinesisError::stream_exists(identity, &input.stream_name));
    }
    let open = open_shards(catalog);
    if open + shard_count > limits.shard_limit {
        return Err(KinesisError::shard_limit_exceeded(identity, open, limits.shard_limit, shard_count));
    }
    if mode == CapacityMode::OnDemand && on_demand_streams(catalog) >= limits.on_demand_stream_limit {
        return Err(on_demand_limit(limits.on_demand_stream_limit));
    }
    catalog.create_stream(&input.stream_name, shard_count, mode, now_ms).map_err(catalog_err(identity))?;
    let stream = stream_mut(catalog, identity, &input.stream_name)?;
    stream.tags = tags;
    if let Some(kib) = input.max_record_size_in_kib.and_then(|kib| u32::try_from(kib).ok()) {
        // The model checked the range (1,024..=10,240 KiB).
        stream.max_record_size_kib = kib;
    }
    Ok(())
}

fn on_demand_limit(limit: u32) -> KinesisError {
    KinesisError::limit_exceeded(format!(
        "On-demand stream limit reached: an account can have {limit} ON_DEMAND streams"
    ))
}

pub fn delete_stream(catalog: &mut Catalog, rules: Rules<'_>, name: &str, enforce_consumer_deletion: bool) -> Result {
    let stream = stream_mut(catalog, rules.identity, name)?;
    if !stream.consumers.is_empty() && !enforce_consumer_deletion {
        return Err(KinesisError::resource_in_use(format!(
            "Stream {name} has registered consumers; delete them or set EnforceConsumerDeletion"
        )));
    }
    catalog.delete_stream(name).map_err(catalog_err(rules.identity))?;
    Ok(())
}

/// Increase- (`increase`) or DecreaseStreamRetentionPeriod to `hours` (already in range).
pub fn set_retention(catalog: &mut Catalog, rules: Rules<'_>, name: &str, hours: i32, increase: bool) -> Result {
    let current = stream_mut(catalog, rules.identity, name)?.retention_hours;
    let hours = u32::try_from(hours).unwrap_or(0);
    if increase && hours < current {
        return Err(KinesisError::invalid_argument(format!(
            "Requested retention period ({hours} hours) for stream {name} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
        )));
    }
    if !increase && hours > current {
        return Err(KinesisError::invalid_argument(format!(
            "Requested retention period ({hours} hours) for stream {name} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
        )));
    }
    catalog.set_retention(name, hours).map_err(catalog_err(rules.identity))
}

/// Adds or overwrites `tags` in `existing`, within the tag quota of `resource` ("stream",
/// "consumer").
pub fn merge_tags(existing: &mut TagMap, tags: &TagMap, resource: &str, limit: usize) -> Result {
    let mut merged = existing.clone();
    merged.extend(tags.iter().map(|(key, value)| (key.clone(), value.clone())));
    if merged.len() > limit {
        return Err(KinesisError::too_many_tags(resource, limit));
    }
    *existing = merged;
    Ok(())
}

pub fn add_tags(catalog: &mut Catalog, rules: Rules<'_>, name: &str, tags: &TagMap) -> Result {
    let stream = stream_mut(catalog, rules.identity, name)?;
    merge_tags(&mut stream.tags, tags, "stream", rules.limits.tags_per_resource_max)
}

pub fn remove_tags(catalog: &mut Catalog, rules: Rules<'_>, name: &str, keys: &[String]) -> Result {
    let stream = stream_mut(catalog, rules.identity, name)?;
    for key in keys {
        stream.tags.remove(key);
    }
    Ok(())
}

fn require_active(stream: &StreamMeta, rules: Rules<'_>, doing: &str) -> Result {
    if stream.status != StreamStatus::Active {
        return Err(KinesisError::stream_not_active(rules.identity, &stream.name, doing));
    }
    Ok(())
}

/// Enable- (`enable`) or DisableEnhancedMonitoring of `metrics` (`ALL` for every one). Only
/// records the setting, which DescribeStream reports; the metrics themselves are not produced
/// yet.
pub fn set_enhanced_monitoring(
    catalog: &mut Catalog,
    rules: Rules<'_>,
    name: &str,
    metrics: &[MetricsName],
    enable: bool,
) -> Result<EnhancedMonitoringOutput> {
    let stream = stream_mut(catalog, rules.identity, name)?;
    require_active(stream, rules, "wait until it is")?;
    let current = metric_list(stream.shard_level_metrics.iter());
    if let Some(unknown) = metrics.iter().find(|metric| !metric.is_known()) {
        // Refused by validation already; kept an error rather than stored.
        return Err(KinesisError::not_in_enum(unknown, "shardLevelMetrics.member"));
    }
    let named = metrics.iter().flat_map(|metric| match metric {
        MetricsName::All => MetricsName::ALL.iter().filter(|metric| **metric != MetricsName::All).cloned().collect(),
        other => vec![other.clone()],
    });
    for metric in named {
        if enable {
            stream.shard_level_metrics.insert(metric.as_str().to_owned());
        } else {
            stream.shard_level_metrics.remove(metric.as_str());
        }
    }
    Ok(EnhancedMonitoringOutput {
        stream_name: Some(name.to_owned()),
        current_shard_level_metrics: current,
        desired_shard_level_metrics: metric_list(stream.shard_level_metrics.iter()),
        stream_arn: Some(rules.identity.stream_arn(name)),
    })
}

/// UpdateStreamMode: PROVISIONED <-> ON_DEMAND, at most a few times per rolling 24 hours. The
/// shards stay as they are; the on-demand scaler grows the stream from there.
pub fn update_stream_mode(
    catalog: &mut Catalog,
    now_ms: i64,
    rules: Rules<'_>,
    name: &str,
    mode: &StreamMode,
) -> Result {
    let Rules { limits, .. } = rules;
    let mode = capacity_mode(mode)?;
    let on_demand = on_demand_streams(catalog);
    let stream = stream_mut(catalog, rules.identity, name)?;
    require_active(stream, rules, "wait until it is")?;
    if stream.mode == mode {
        return Err(KinesisError::invalid_argument(format!(
            "Stream {name} is already in {} mode",
            crate::kinesis::views::stream_mode(mode)
        )));
    }
    if mode == CapacityMode::Provisioned && stream.distribution == RecordDistribution::Auto {
        return Err(KinesisError::invalid_argument(format!(
            "Stream {name} uses the AUTO record distribution strategy, which PROVISIONED streams do not support; \
             set USER_PARTITION_KEY first"
        )));
    }
    stream.mode_changes_ms.retain(|&at_ms| now_ms - at_ms < LIMIT_WINDOW_MS);
    if stream.mode_changes_ms.len() >= limits.stream_mode_changes_per_window_max {
        return Err(KinesisError::limit_exceeded(format!(
            "Stream {name} has already changed capacity mode {} times in the last 24 hours",
            limits.stream_mode_changes_per_window_max
        )));
    }
    if mode == CapacityMode::OnDemand && on_demand >= limits.on_demand_stream_limit {
        return Err(on_demand_limit(limits.on_demand_stream_limit));
    }
    stream.mode = mode;
    stream.mode_changes_ms.push(now_ms);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_support::{rules, NOW_MS};
    use sluice_model::{ErrorKind, StreamModeDetails};

    fn create(catalog: &mut Catalog, name: &str, shards: Option<i32>, mode: StreamMode) -> Result {
        let input = CreateStreamInput {
            stream_name: name.into(),
            shard_count: shards,
            stream_mode_details: Some(StreamModeDetails::from(mode)),
            ..Default::default()
        };
        create_stream(catalog, NOW_MS, rules(), &input)
    }

    #[test]
    fn create_stream_keeps_the_account_quotas() {
        let mut catalog = Catalog::new(2);
        create(&mut catalog, "a", Some(2), StreamMode::Provisioned).unwrap();
        assert_eq!(
            create(&mut catalog, "a", Some(2), StreamMode::Provisioned).unwrap_err().kind,
            ErrorKind::ResourceInUse
        );
        let over = create(&mut catalog, "b", Some(499), StreamMode::Provisioned).unwrap_err();
        assert_eq!(over.kind, ErrorKind::LimitExceeded);
        assert!(over.message.contains("Current shard count for the account: 2. Limit: 500."), "{}", over.message);
        create(&mut catalog, "c", None, StreamMode::OnDemand).unwrap();
        assert_eq!(catalog.streams["c"].shards.len(), 4, "on-demand streams start with 4 shards");
        assert_eq!(
            create(&mut catalog, "d", Some(10_001), StreamMode::Provisioned).unwrap_err().kind,
            ErrorKind::LimitExceeded
        );
    }

    #[test]
    fn retention_moves_only_in_the_direction_asked() {
        let mut catalog = Catalog::new(1);
        create(&mut catalog, "s", Some(1), StreamMode::Provisioned).unwrap();
        set_retention(&mut catalog, rules(), "s", 48, true).unwrap();
        assert_eq!(set_retention(&mut catalog, rules(), "s", 30, true).unwrap_err().kind, ErrorKind::InvalidArgument);
        assert_eq!(set_retention(&mut catalog, rules(), "s", 72, false).unwrap_err().kind, ErrorKind::InvalidArgument);
        set_retention(&mut catalog, rules(), "s", 24, false).unwrap();
        assert_eq!(catalog.streams["s"].retention_hours, 24);
        assert_eq!(
            set_retention(&mut catalog, rules(), "nope", 24, false).unwrap_err().kind,
            ErrorKind::ResourceNotFound
        );
    }

    #[test]
    fn tags_stay_within_their_quota() {
        let mut catalog = Catalog::new(1);
        create(&mut catalog, "s", Some(1), StreamMode::Provisioned).unwrap();
        let tags: TagMap = (0..50).map(|i| (format!("k{i}"), String::new())).collect();
        add_tags(&mut catalog, rules(), "s", &tags).unwrap();
        let one_more: TagMap = [("extra".to_owned(), String::new())].into();
        assert_eq!(add_tags(&mut catalog, rules(), "s", &one_more).unwrap_err().kind, ErrorKind::LimitExceeded);
        remove_tags(&mut catalog, rules(), "s", &["k0".to_owned()]).unwrap();
        add_tags(&mut catalog, rules(), "s", &one_more).unwrap();
        assert_eq!(catalog.streams["s"].tags.len(), 50);
    }

    #[test]
    fn capacity_mode_changes_twice_a_day() {
        let mut catalog = Catalog::new(1);
        create(&mut catalog, "s", Some(1), StreamMode::Provisioned).unwrap();
        update_stream_mode(&mut catalog, NOW_MS, rules(), "s", &StreamMode::OnDemand).unwrap();
        let again = update_stream_mode(&mut catalog, NOW_MS, rules(), "s", &StreamMode::OnDemand);
        assert_eq!(again.unwrap_err().kind, ErrorKind::InvalidArgument);
        update_stream_mode(&mut catalog, NOW_MS + 1, rules(), "s", &StreamMode::Provisioned).unwrap();
        let third = update_stream_mode(&mut catalog, NOW_MS + 2, rules(), "s", &StreamMode::OnDemand);
        assert_eq!(third.unwrap_err().kind, ErrorKind::LimitExceeded);
        update_stream_mode(&mut catalog, NOW_MS + LIMIT_WINDOW_MS, rules(), "s", &StreamMode::OnDemand).unwrap();
    }

    #[test]
    fn enhanced_monitoring_expands_all_and_reports_before_and_after() {
        let mut catalog = Catalog::new(1);
        create(&mut catalog, "s", Some(1), StreamMode::Provisioned).unwrap();
        let output = set_enhanced_monitoring(&mut catalog, rules(), "s", &[MetricsName::All], true).unwrap();
        assert!(output.current_shard_level_metrics.is_empty());
        assert_eq!(output.desired_shard_level_metrics.len(), 7);
        let output = set_enhanced_monitoring(&mut catalog, rules(), "s", &[MetricsName::IncomingBytes], false).unwrap();
        assert_eq!(output.current_shard_level_metrics.len(), 7);
        assert_eq!(output.desired_shard_level_metrics.len(), 6);
    }
}
