//! The catalog's metadata and the engine's records as the model's shapes: what DescribeStream,
//! ListShards, GetRecords and their siblings answer with.

use sluice_engine::catalog::{self, CapacityMode, ConsumerMeta, RecordDistribution, ShardMeta, StreamMeta};
use sluice_engine::StoredRecord;
use sluice_model::{
    ChildShard, Consumer, ConsumerDescription, ConsumerStatus, EncryptionType, EnhancedMetrics, HashKey, HashKeyRange,
    Identity, KinesisError, MetricsName, Record, RecordDistributionStrategy, SequenceNumber, SequenceNumberRange,
    Shard, ShardId, StreamDescription, StreamDescriptionSummary, StreamMode, StreamModeDetails, StreamStatus,
    StreamSummary, Timestamp, WarmThroughput,
};

pub fn stream_status(status: catalog::StreamStatus) -> StreamStatus {
    match status {
        catalog::StreamStatus::Creating => StreamStatus::Creating,
        catalog::StreamStatus::Active => StreamStatus::Active,
        catalog::StreamStatus::Updating => StreamStatus::Updating,
        catalog::StreamStatus::Deleting => StreamStatus::Deleting,
    }
}

/// The engine's capacity mode of a stream mode; one this build does not know (refused by
/// validation already) is an error rather than a panic.
pub fn capacity_mode(mode: &StreamMode) -> Result<CapacityMode, KinesisError> {
    match mode {
        StreamMode::Provisioned => Ok(CapacityMode::Provisioned),
        StreamMode::OnDemand => Ok(CapacityMode::OnDemand),
        StreamMode::Unknown(_) => Err(KinesisError::not_in_enum(mode, "streamModeDetails.streamMode")),
    }
}

pub fn stream_mode(mode: CapacityMode) -> StreamMode {
    match mode {
        CapacityMode::Provisioned => StreamMode::Provisioned,
        CapacityMode::OnDemand => StreamMode::OnDemand,
    }
}

fn mode_details(meta: &StreamMeta) -> Option<StreamModeDetails> {
    Some(StreamModeDetails::from(stream_mode(meta.mode)))
}

/// The stream's enabled shard-level metrics, as DescribeStream reports them.
pub fn enhanced_monitoring(meta: &StreamMeta) -> Vec<EnhancedMetrics> {
    vec![EnhancedMetrics { shard_level_metrics: metric_list(meta.shard_level_metrics.iter()) }]
}

/// Metric names as the catalog keeps them (their AWS spelling), as the model's enum.
pub fn metric_list<'a>(names: impl Iterator<Item = &'a String>) -> Vec<MetricsName> {
    names.filter_map(|name| name.parse().ok()).collect()
}

pub fn shard(shard: &ShardMeta, stream: &StreamMeta) -> Shard {
    let parent =
        |number: Option<u32>| number.and_then(|n| stream.shard(n)).map(|parent| ShardId::from_number(parent.number));
    Shard {
        shard_id: ShardId::from_number(shard.number),
        parent_shard_id: parent(shard.parent_shard_number),
        adjacent_parent_shard_id: parent(shard.adjacent_parent_shard_number),
        hash_key_range: HashKeyRange {
            starting_hash_key: HashKey(shard.hash_key_start),
            ending_hash_key: HashKey(shard.hash_key_end),
        },
        sequence_number_range: SequenceNumberRange {
            starting_sequence_number: sequence_number(shard.seq_prefix.sequence_number(0)),
            ending_sequence_number: shard
                .ending_index
                .map(|end| sequence_number(shard.seq_prefix.sequence_number(end.saturating_sub(1)))),
        },
    }
}

/// Kinesis' `ChildShards` of a closed shard: the shards whose parent or adjacent parent it is.
pub fn child_shards(stream: &StreamMeta, number: u32) -> Vec<ChildShard> {
    stream
        .shards
        .iter()
        .filter(|child| child.parent_shard_number == Some(number) || child.adjacent_parent_shard_number == Some(number))
        .map(|child| ChildShard {
            shard_id: ShardId::from_number(child.number),
            parent_shards: [child.parent_shard_number, child.adjacent_parent_shard_number]
                .into_iter()
                .flatten()
                .map(ShardId::from_number)
                .collect(),
            hash_key_range: HashKeyRange {
                starting_hash_key: HashKey(child.hash_key_start),
                ending_hash_key: HashKey(child.hash_key_end),
            },
        })
        .collect()
}

pub fn consumer(identity: &Identity, stream: &StreamMeta, consumer: &ConsumerMeta) -> Consumer {
    Consumer {
        consumer_name: consumer.name.clone(),
        consumer_arn: identity.consumer_arn(&stream.name, &consumer.name, consumer.created_ms),
        consumer_status: match consumer.status {
            catalog::StreamStatus::Deleting => ConsumerStatus::Deleting,
            catalog::StreamStatus::Creating => ConsumerStatus::Creating,
            _ => ConsumerStatus::Active,
        },
        consumer_creation_timestamp: Timestamp::from_epoch_ms(consumer.created_ms),
    }
}

pub fn consumer_description(identity: &Identity, stream: &StreamMeta, meta: &ConsumerMeta) -> ConsumerDescription {
    let Consumer { consumer_name, consumer_arn, consumer_status, consumer_creation_timestamp } =
        consumer(identity, stream, meta);
    ConsumerDescription {
        consumer_name,
        consumer_arn,
        consumer_status,
        consumer_creation_timestamp,
        stream_arn: identity.stream_arn(&stream.name),
    }
}

/// A DescribeStream page: `shards` of the stream's, and whether more follow.
pub fn stream_description(
    identity: &Identity,
    meta: &StreamMeta,
    shards: Vec<Shard>,
    has_more_shards: bool,
) -> StreamDescription {
    StreamDescription {
        stream_name: meta.name.clone(),
        stream_arn: identity.stream_arn(&meta.name),
        stream_status: stream_status(meta.status),
        stream_mode_details: mode_details(meta),
        shards,
        has_more_shards,
        retention_period_hours: meta.retention_hours as i32,
        stream_creation_timestamp: Timestamp::from_epoch_ms(meta.created_ms),
        enhanced_monitoring: enhanced_monitoring(meta),
        encryption_type: Some(encryption_type(meta)),
        key_id: meta.encryption.as_ref().map(|encryption| encryption.key_id.clone()),
    }
}

/// `KMS` while StartStreamEncryption's key is in force, else `NONE`.
pub fn encryption_type(meta: &StreamMeta) -> EncryptionType {
    if meta.encryption.is_some() {
        EncryptionType::Kms
    } else {
        EncryptionType::None
    }
}

/// A DescribeStreamSummary; `warm_throughput` as `control::settings::warm_throughput` has it.
pub fn stream_description_summary(
    identity: &Identity,
    meta: &StreamMeta,
    warm_throughput: Option<WarmThroughput>,
) -> StreamDescriptionSummary {
    StreamDescriptionSummary {
        stream_name: meta.name.clone(),
        stream_arn: identity.stream_arn(&meta.name),
        stream_status: stream_status(meta.status),
        stream_mode_details: mode_details(meta),
        retention_period_hours: meta.retention_hours as i32,
        stream_creation_timestamp: Timestamp::from_epoch_ms(meta.created_ms),
        enhanced_monitoring: enhanced_monitoring(meta),
        encryption_type: Some(encryption_type(meta)),
        key_id: meta.encryption.as_ref().map(|encryption| encryption.key_id.clone()),
        open_shard_count: meta.shards.iter().filter(|shard| shard.is_open()).count() as i32,
        consumer_count: Some(meta.consumers.len() as i32),
        warm_throughput,
        max_record_size_in_kib: Some(meta.max_record_size_kib as i32),
        record_distribution_strategy: Some(match meta.distribution {
            RecordDistribution::Auto => RecordDistributionStrategy::Auto,
            RecordDistribution::UserPartitionKey => RecordDistributionStrategy::UserPartitionKey,
        }),
    }
}

pub fn stream_summary(identity: &Identity, meta: &StreamMeta) -> StreamSummary {
    StreamSummary {
        stream_name: meta.name.clone(),
        stream_arn: identity.stream_arn(&meta.name),
        stream_status: stream_status(meta.status),
        stream_mode_details: mode_details(meta),
        stream_creation_timestamp: Some(Timestamp::from_epoch_ms(meta.created_ms)),
    }
}

pub fn sequence_number(number: sluice_engine::sequence::SequenceNumber) -> SequenceNumber {
    SequenceNumber::new(number.as_u128())
}

/// A stored record as GetRecords and SubscribeToShard return it.
pub fn record(record: StoredRecord) -> Record {
    Record {
        sequence_number: sequence_number(record.sequence_number),
        approximate_arrival_timestamp: Some(Timestamp::from_epoch_ms(record.timestamp_ms)),
        data: record.data,
        partition_key: Some(String::from_utf8_lossy(&record.partition_key).into_owned()),
        encryption_type: record.sealed.then_some(EncryptionType::Kms),
    }
}
