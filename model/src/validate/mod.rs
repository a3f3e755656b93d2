//! The checks every request passes before a server acts on it, whichever protocol carried it:
//! the model's constraints on members a typed request can still break (a name's pattern, a
//! page size, a partition key's length) and the rules between members (AT_SEQUENCE_NUMBER
//! needs a sequence number). They need no state; what needs the server's state (does the
//! stream exist, is the shard open, is a quota left) is the server's to check afterwards.
//!
//! Shape constraints are ValidationExceptions worded as AWS words them (see
//! [`Violation`]); rules between members are InvalidArgumentExceptions. The AWS JSON protocol
//! checks the whole document against botocore's model before a request is typed (the
//! protocol crate's shape checker), so over HTTP most of these never fire; over the native
//! protocol they are the only checks.

use crate::enums::{AwsEnum, ShardFilterType, ShardIteratorType, StreamMode};
use crate::error::{KinesisError, Violation, Violations};
use crate::identity::{invalid_name, is_valid_name, Identity};
use crate::ids::{ResourceArn, SequenceNumber, ShardId, StreamArn, Timestamp};
use crate::limits::{
    APPLICATIONS_PER_STREAM_MAX, LEASES_PAGE_SIZE_MAX, LEASE_DURATION_MS_MAX, LEASE_DURATION_MS_MIN,
    WORKER_ID_BYTES_MAX,
};
use crate::limits::{
    LIST_TAGS_PAGE_SIZE_MAX, PAGE_SIZE_MAX, PARTITION_KEY_CHARS_MAX, PUT_RECORDS_BYTES_MAX, PUT_RECORDS_COUNT_MAX,
    RETENTION_HOURS_MAX, RETENTION_HOURS_MIN, STREAM_RECORD_BYTES_MAX, TAG_KEYS_PER_CALL_MAX, TAG_KEY_CHARS_MAX,
    TAG_VALUE_CHARS_MAX,
};
use crate::operations::*;
use crate::shapes::{PutRecordsRequestEntry, TagMap};

mod queues;
mod settings;

type Result<T = ()> = std::result::Result<T, KinesisError>;

/// `MaxRecordSizeInKiB`: 1024..=10240 (the model's `MaxRecordSizeInKiB` shape).
const MAX_RECORD_SIZE_KIB_RANGE: std::ops::RangeInclusive<i32> =
    crate::limits::MAX_RECORD_SIZE_KIB_MIN..=crate::limits::MAX_RECORD_SIZE_KIB_MAX;

impl Request {
    /// Checks what can be checked without the server's state; see the module docs.
    pub fn validate(&self, identity: &Identity) -> Result {
        if let Some(checked) = queues::validate(self, identity) {
            return checked;
        }
        if let Some(checked) = settings::validate(self, identity) {
            return checked;
        }
        match self {
            Request::AddTagsToStream(input) => {
                stream(identity, &input.stream_name, &input.stream_arn)?;
                tags(&input.tags, true)
            }
            Request::CreateStream(input) => create_stream(input),
            Request::DecreaseStreamRetentionPeriod(input) => {
                stream(identity, &input.stream_name, &input.stream_arn)?;
                retention(input.retention_period_hours)
            }
            Request::DeleteStream(input) => stream(identity, &input.stream_name, &input.stream_arn),
            Request::DeregisterStreamConsumer(input) => {
                consumer(identity, &input.stream_arn, &input.consumer_name, &input.consumer_arn)
            }
            Request::DescribeAccountSettings(_) | Request::DescribeLimits(_) => Ok(()),
            Request::DescribeStream(input) => {
                stream(identity, &input.stream_name, &input.stream_arn)?;
                page(input.limit, PAGE_SIZE_MAX, "limit")?;
                shard_id_argument(input.exclusive_start_shard_id.as_ref(), "ExclusiveStartShardId")
            }
            Request::DescribeStreamConsumer(input) => {
                consumer(identity, &input.stream_arn, &input.consumer_name, &input.consumer_arn)
            }
            Request::DescribeStreamSummary(input) => stream(identity, &input.stream_name, &input.stream_arn),
            Request::DescribeStreamRoutes(input) => stream(identity, &input.stream_name, &input.stream_arn),
            Request::DisableEnhancedMonitoring(input) => {
                stream(identity, &input.stream_name, &input.stream_arn)?;
                metrics(&input.shard_level_metrics)
            }
            Request::EnableEnhancedMonitoring(input) => {
                stream(identity, &input.stream_name, &input.stream_arn)?;
                metrics(&input.shard_level_metrics)
            }
            Request::GetRecords(input) => match input.limit {
                // InvalidArgument rather than Validation: what Sluice has always answered over
                // its native protocol (over HTTP the shape checker answers first).
                Some(limit) if !(1..=crate::limits::GET_RECORDS_COUNT_MAX as i64).contains(&i64::from(limit)) => {
                    Err(KinesisError::invalid_argument(format!(
                        "Limit must be between 1 and {}",
                        crate::limits::GET_RECORDS_COUNT_MAX
                    )))
                }
                _ => Ok(()),
            },
            Request::GetShardIterator(input) => {
                known(&input.shard_iterator_type, "shardIteratorType")?;
                stream(identity, &input.stream_name, &input.stream_arn)?;
                position(&input.shard_iterator_type, input.starting_sequence_number.as_ref(), input.timestamp)
            }
            Request::IncreaseStreamRetentionPeriod(input) => {
                stream(identity, &input.stream_name, &input.stream_arn)?;
                retention(input.retention_period_hours)
            }
            Request::ListShards(input) => list_shards(identity, input),
            Request::ListStreamConsumers(input) => {
                identity.stream_name_of(&input.stream_arn)?;
                page(input.max_results, PAGE_SIZE_MAX, "maxResults")
            }
            Request::ListStreams(input) => {
                page(input.limit, PAGE_SIZE_MAX, "limit")?;
                if input.next_token.is_some() && input.exclusive_start_stream_name.is_some() {
                    return Err(KinesisError::invalid_argument(
                        "NextToken and ExclusiveStartStreamName cannot be combined",
                    ));
                }
                Ok(())
            }
            Request::ListTagsForResource(input) => tagged_resource(identity, &input.resource_arn),
            Request::ListTagsForStream(input) => {
                stream(identity, &input.stream_name, &input.stream_arn)?;
                page(input.limit, LIST_TAGS_PAGE_SIZE_MAX, "limit")
            }
            Request::MergeShards(input) => stream(identity, &input.stream_name, &input.stream_arn),
            Request::PutRecord(input) => {
                stream(identity, &input.stream_name, &input.stream_arn)?;
                record(&input.data, input.partition_key.as_deref(), str::to_owned)
            }
            Request::PutRecords(input) => put_records(identity, input),
            Request::RegisterStreamConsumer(input) => {
                identity.stream_name_of(&input.stream_arn)?;
                if !is_valid_name(&input.consumer_name) {
                    return Err(invalid_name(&input.consumer_name, "consumerName"));
                }
                input.tags.as_ref().map_or(Ok(()), |map| tags(map, false))
            }
            Request::RemoveTagsFromStream(input) => {
                stream(identity, &input.stream_name, &input.stream_arn)?;
                tag_keys(&input.tag_keys, Some(TAG_KEYS_PER_CALL_MAX))
            }
            Request::SplitShard(input) => stream(identity, &input.stream_name, &input.stream_arn),
            Request::SubscribeToShard(input) => {
                identity.consumer_of(&input.consumer_arn)?;
                let start = &input.starting_position;
                known(&start.r#type, "startingPosition.type")?;
                position(&start.r#type, start.sequence_number.as_ref(), start.timestamp)
            }
            Request::TagResource(input) => {
                tagged_resource(identity, &input.resource_arn)?;
                tags(&input.tags, true)
            }
            // The document itself is parsed by the server, against the IAM grammar it enforces.
            Request::PutResourcePolicy(input) => identity.resource_of(&input.resource_arn).map(drop),
            Request::GetResourcePolicy(input) => identity.resource_of(&input.resource_arn).map(drop),
            Request::DeleteResourcePolicy(input) => identity.resource_of(&input.resource_arn).map(drop),
            Request::UntagResource(input) => {
                tagged_resource(identity, &input.resource_arn)?;
                tag_keys(&input.tag_keys, None)
            }
            Request::UpdateShardCount(input) => {
                known(&input.scaling_type, "scalingType")?;
                if input.target_shard_count < 1 {
                    return Err(KinesisError::validation(Violation::min_value(
                        input.target_shard_count,
                        "targetShardCount",
                        1,
                    )));
                }
                stream(identity, &input.stream_name, &input.stream_arn)
            }
            Request::StartStreamEncryption(input) => {
                encryption(&input.encryption_type, &input.key_id)?;
                stream(identity, &input.stream_name, &input.stream_arn)
            }
            Request::StopStreamEncryption(input) => {
                encryption(&input.encryption_type, &input.key_id)?;
                stream(identity, &input.stream_name, &input.stream_arn)
            }
            Request::UpdateStreamMode(input) => {
                known(&input.stream_mode_details.stream_mode, "streamModeDetails.streamMode")?;
                identity.stream_name_of(&input.stream_arn).map(drop)
            }
            // Checked by `settings::validate` above.
            Request::UpdateAccountSettings(_)
            | Request::UpdateMaxRecordSize(_)
            | Request::UpdateStreamRecordDistributionStrategy(_)
            | Request::UpdateStreamWarmThroughput(_) => Ok(()),
            Request::CreateApplication(input) => {
                stream(identity, &input.stream_name, &input.stream_arn)?;
                if !is_valid_name(&input.application_name) {
                    return Err(invalid_name(&input.application_name, "applicationName"));
                }
                if let Some(position) = &input.initial_position {
                    known(&position.r#type, "initialPosition.type")?;
                    let at_timestamp = position.r#type == crate::enums::InitialPositionType::AtTimestamp;
                    if at_timestamp != position.timestamp.is_some() {
                        return Err(KinesisError::invalid_argument(
                            "InitialPosition.Timestamp is required with AT_TIMESTAMP and allowed with no other type",
                        ));
                    }
                }
                match input.lease_duration_millis {
                    Some(ms) if !(LEASE_DURATION_MS_MIN..=LEASE_DURATION_MS_MAX).contains(&ms) => {
                        Err(KinesisError::validation(Violation::value(
                            &ms.to_string(),
                            "leaseDurationMillis",
                            format!("Member must be between {LEASE_DURATION_MS_MIN} and {LEASE_DURATION_MS_MAX}"),
                        )))
                    }
                    _ => Ok(()),
                }
            }
            Request::ListApplications(input) => {
                stream(identity, &input.stream_name, &input.stream_arn)?;
                page(input.max_results, APPLICATIONS_PER_STREAM_MAX, "maxResults")
            }
            Request::DescribeApplication(input) => application(identity, input),
            Request::DeleteApplication(input) => application(identity, input),
            Request::ListLeases(input) => {
                application(identity, input)?;
                page(input.max_results, LEASES_PAGE_SIZE_MAX, "maxResults")
            }
            Request::TakeLease(input) => {
                lease(identity, input, &input.lease_key, &input.worker_id, input.lease_counter)
            }
            Request::RenewLease(input) => {
                lease(identity, input, &input.lease_key, &input.worker_id, input.lease_counter)
            }
            Request::ReleaseLease(input) => {
                lease(identity, input, &input.lease_key, &input.worker_id, input.lease_counter)
            }
            Request::StealLease(input) => {
                lease(identity, input, &input.lease_key, &input.worker_id, input.lease_counter)?;
                worker(&input.lease_owner, "leaseOwner")
            }
            // Checked by `queues::validate` above.
            Request::AcknowledgeDeadLetterQueueRecords(_)
            | Request::AcknowledgeQueueRecords(_)
            | Request::CreateQueue(_)
            | Request::DeleteQueue(_)
            | Request::DescribeQueue(_)
            | Request::ListQueues(_)
            | Request::ReceiveDeadLetterQueueRecords(_)
            | Request::ReceiveQueueRecords(_)
            | Request::RestoreDeadLetterQueueRecords(_)
            | Request::UpdateDeadLetterQueueRecordsVisibility(_)
            | Request::UpdateQueue(_)
            | Request::UpdateQueueRecordsVisibility(_) => Ok(()),
            Request::CheckpointLease(input) => {
                lease(identity, input, &input.lease_key, &input.worker_id, input.lease_counter)?;
                if input.checkpoint_sub_sequence_number.is_some_and(|n| n < 0) {
                    return Err(KinesisError::validation(Violation::min_value(
                        input.checkpoint_sub_sequence_number.unwrap_or_default(),
                        "checkpointSubSequenceNumber",
                        0,
                    )));
                }
                Ok(())
            }
        }
    }
}

/// The application a lease request names.
fn application(identity: &Identity, input: &dyn crate::leases::ApplicationRef) -> Result {
    identity.resolve_application(input.application_ref()).map(drop)
}

/// A worker id: 1..=256 bytes (KCL's `workerIdentifier`).
fn worker(id: &str, path: &str) -> Result {
    if id.is_empty() {
        return Err(KinesisError::validation(Violation::min_length(id, path, 1)));
    }
    if id.len() > WORKER_ID_BYTES_MAX {
        return Err(KinesisError::validation(Violation::max_length(id, path, WORKER_ID_BYTES_MAX)));
    }
    Ok(())
}

/// The members every lease operation shares: the application, a shard id as lease key, the
/// worker, a counter that is not negative.
fn lease(
    identity: &Identity,
    input: &dyn crate::leases::ApplicationRef,
    lease_key: &str,
    worker_id: &str,
    lease_counter: i64,
) -> Result {
    application(identity, input)?;
    if ShardId::from(lease_key).number().is_none() {
        return Err(KinesisError::invalid_argument(format!(
            "LeaseKey {lease_key} is not a shard id (shardId-000000000000)"
        )));
    }
    worker(worker_id, "workerId")?;
    if lease_counter < 0 {
        return Err(KinesisError::validation(Violation::min_value(lease_counter, "leaseCounter", 0)));
    }
    Ok(())
}

/// The stream a request names by `StreamName` or `StreamARN`.
fn stream(identity: &Identity, name: &Option<String>, arn: &Option<StreamArn>) -> Result {
    identity.resolve_stream(name.as_deref(), arn.as_ref()).map(drop)
}

/// A consumer named by its ARN, or by its stream's ARN and its name.
fn consumer(
    identity: &Identity,
    stream_arn: &Option<StreamArn>,
    name: &Option<String>,
    arn: &Option<crate::ids::ConsumerArn>,
) -> Result {
    match (arn, stream_arn, name) {
        (Some(arn), _, _) => identity.consumer_of(arn).map(drop),
        (None, Some(stream_arn), Some(_)) => identity.stream_name_of(stream_arn).map(drop),
        _ => Err(KinesisError::invalid_argument("Either ConsumerARN, or StreamARN and ConsumerName, must be provided")),
    }
}

/// A page size in `1..=max`.
fn page(requested: Option<i32>, max: usize, path: &str) -> Result {
    let mut violations = Violations::default();
    if let Some(size) = requested {
        if size < 1 {
            violations.push(Violation::min_value(size, path, 1));
        } else if size as usize > max {
            violations.push(Violation::max_value(size, path, max));
        }
    }
    violations.check()
}

/// A member that must name a shard Sluice could have made.
fn shard_id_argument(shard: Option<&ShardId>, member: &str) -> Result {
    match shard {
        Some(shard) if shard.number().is_none() => Err(KinesisError::invalid_shard_id(member, shard)),
        _ => Ok(()),
    }
}

fn retention(hours: i32) -> Result {
    if (RETENTION_HOURS_MIN..=RETENTION_HOURS_MAX).contains(&hours) {
        Ok(())
    } else {
        Err(KinesisError::retention_out_of_range(i64::from(hours), RETENTION_HOURS_MIN, RETENTION_HOURS_MAX))
    }
}

/// The resource TagResource and its siblings name: a stream, a consumer, or a queue (the
/// model: "The Kinesis resource can be a data stream, a queue, or an enhanced fan-out
/// consumer").
fn tagged_resource(identity: &Identity, arn: &ResourceArn) -> Result {
    if identity.queue_of(arn.as_str()).is_ok() {
        return Ok(());
    }
    identity.resource_of(arn).map(drop)
}

/// Tag keys of 1..=128 characters and values of at most 256 (`TagKey`, `TagValue`); the map
/// itself non-empty where the model requires entries.
fn tags(map: &TagMap, required: bool) -> Result {
    let mut violations = Violations::default();
    if required && map.is_empty() {
        violations.push(Violation::min_length("{0 entries}", "tags", 1));
    }
    for (key, value) in map {
        if key.is_empty() {
            violations.push(Violation::min_length(key, "tags.key", 1));
        } else if key.chars().count() > TAG_KEY_CHARS_MAX {
            violations.push(Violation::max_length(key, "tags.key", TAG_KEY_CHARS_MAX));
        }
        if value.chars().count() > TAG_VALUE_CHARS_MAX {
            violations.push(Violation::max_length(value, "tags.value", TAG_VALUE_CHARS_MAX));
        }
    }
    violations.check()
}

/// A non-empty list of tag keys, each 1..=128 characters, at most `max` of them.
fn tag_keys(keys: &[String], max: Option<usize>) -> Result {
    let mut violations = Violations::default();
    let shown = format!("[{} items]", keys.len());
    if keys.is_empty() {
        violations.push(Violation::min_length(&shown, "tagKeys", 1));
    }
    if let Some(max) = max.filter(|&max| keys.len() > max) {
        violations.push(Violation::max_length(&shown, "tagKeys", max));
    }
    for (index, key) in keys.iter().enumerate() {
        let path = format!("tagKeys.{}.member", index + 1);
        if key.is_empty() {
            violations.push(Violation::min_length(key, &path, 1));
        } else if key.chars().count() > TAG_KEY_CHARS_MAX {
            violations.push(Violation::max_length(key, &path, TAG_KEY_CHARS_MAX));
        }
    }
    violations.check()
}

/// A value of the enum's set: a request may not carry one this build does not know.
/// StartStreamEncryption's and StopStreamEncryption's `EncryptionType` and `KeyId`: the model's
/// enum and length bounds, then Kinesis's rule that only `KMS` names an encryption to start or
/// stop. Whether the key exists is the server's question (a KMS error).
fn encryption(encryption_type: &crate::enums::EncryptionType, key_id: &str) -> Result {
    known(encryption_type, "encryptionType")?;
    let chars = key_id.chars().count();
    if chars < 1 {
        return Err(KinesisError::validation(Violation::min_length(key_id, "keyId", 1)));
    }
    if chars > crate::limits::KEY_ID_CHARS_MAX {
        return Err(KinesisError::validation(Violation::max_length(key_id, "keyId", crate::limits::KEY_ID_CHARS_MAX)));
    }
    if *encryption_type != crate::enums::EncryptionType::Kms {
        return Err(KinesisError::invalid_argument(format!(
            "Encryption type {encryption_type} is not supported: the only valid value is KMS."
        )));
    }
    Ok(())
}

pub(crate) fn known<E: AwsEnum>(value: &E, path: &str) -> Result {
    if value.is_known() {
        Ok(())
    } else {
        Err(KinesisError::not_in_enum(value, path))
    }
}

fn metrics(metrics: &[crate::enums::MetricsName]) -> Result {
    if metrics.is_empty() {
        return Err(KinesisError::validation(Violation::min_length("[0 items]", "shardLevelMetrics", 1)));
    }
    for (index, metric) in metrics.iter().enumerate() {
        known(metric, &format!("shardLevelMetrics.{}.member", index + 1))?;
    }
    Ok(())
}

/// What an iterator type or a starting position needs besides its type.
fn position(
    kind: &ShardIteratorType,
    sequence_number: Option<&SequenceNumber>,
    timestamp: Option<Timestamp>,
) -> Result {
    match kind {
        ShardIteratorType::AtSequenceNumber | ShardIteratorType::AfterSequenceNumber if sequence_number.is_none() => {
            Err(KinesisError::invalid_argument(
                "StartingSequenceNumber is required for AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER",
            ))
        }
        ShardIteratorType::AtTimestamp if timestamp.is_none() => {
            Err(KinesisError::invalid_argument("Timestamp is required for AT_TIMESTAMP"))
        }
        _ => Ok(()),
    }
}

/// One record: a partition key of 1..=256 characters, and data plus key within the largest
/// record any stream may take (10 MiB); the stream's own `MaxRecordSizeInKiB` (1 MiB unless
/// UpdateMaxRecordSize raised it) is the server's check, which knows the stream.
/// `path` names a member of the record (`partitionKey`, `data`) in an error message. It is a
/// function so that the path is formatted only when there is an error: PutRecords checks up to
/// 500 records per call on the ingest path.
fn record(data: &[u8], partition_key: Option<&str>, path: impl Fn(&str) -> String) -> Result {
    let Some(key) = partition_key else {
        return Err(KinesisError::validation(Violation::null(&path("partitionKey"))));
    };
    let chars = key.chars().count();
    if chars == 0 {
        return Err(KinesisError::validation(Violation::min_length(key, &path("partitionKey"), 1)));
    }
    if chars > PARTITION_KEY_CHARS_MAX {
        return Err(KinesisError::validation(Violation::max_length(
            key,
            &path("partitionKey"),
            PARTITION_KEY_CHARS_MAX,
        )));
    }
    let bytes = data.len() + key.len();
    if bytes > STREAM_RECORD_BYTES_MAX {
        return Err(KinesisError::validation(Violation::max_length(
            &format!("[{bytes} bytes of data and partition key]"),
            &path("data"),
            STREAM_RECORD_BYTES_MAX,
        )));
    }
    Ok(())
}

fn put_records(identity: &Identity, input: &PutRecordsInput) -> Result {
    stream(identity, &input.stream_name, &input.stream_arn)?;
    let count = input.records.len();
    if count == 0 {
        return Err(KinesisError::validation(Violation::min_length("[0 items]", "records", 1)));
    }
    if count > PUT_RECORDS_COUNT_MAX {
        return Err(KinesisError::validation(Violation::max_length(
            &format!("[{count} items]"),
            "records",
            PUT_RECORDS_COUNT_MAX,
        )));
    }
    let mut total = 0;
    for (index, PutRecordsRequestEntry { data, partition_key, .. }) in input.records.iter().enumerate() {
        record(data, partition_key.as_deref(), |member| format!("records.{}.member.{member}", index + 1))?;
        total += data.len() + partition_key.as_deref().map_or(0, str::len);
    }
    if total > PUT_RECORDS_BYTES_MAX {
        return Err(KinesisError::invalid_argument(format!(
            "Records size {total} exceeds the PutRecords limit of {PUT_RECORDS_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

fn create_stream(input: &CreateStreamInput) -> Result {
    if !is_valid_name(&input.stream_name) {
        return Err(invalid_name(&input.stream_name, "streamName"));
    }
    let mut violations = Violations::default();
    if let Some(count) = input.shard_count.filter(|&count| count < 1) {
        violations.push(Violation::min_value(count, "shardCount", 1));
    }
    if let Some(kib) = input.max_record_size_in_kib.filter(|kib| !MAX_RECORD_SIZE_KIB_RANGE.contains(kib)) {
        let violation = if kib < *MAX_RECORD_SIZE_KIB_RANGE.start() {
            Violation::min_value(kib, "maxRecordSizeInKiB", MAX_RECORD_SIZE_KIB_RANGE.start())
        } else {
            Violation::max_value(kib, "maxRecordSizeInKiB", MAX_RECORD_SIZE_KIB_RANGE.end())
        };
        violations.push(violation);
    }
    violations.check()?;
    if let Some(map) = &input.tags {
        tags(map, false)?;
    }
    let mode = input.stream_mode_details.as_ref().map_or(&StreamMode::Provisioned, |details| &details.stream_mode);
    known(mode, "streamModeDetails.streamMode")?;
    if *mode == StreamMode::Provisioned && input.shard_count.is_none() {
        return Err(KinesisError::invalid_argument("ShardCount is required for streams in PROVISIONED mode"));
    }
    Ok(())
}

fn list_shards(identity: &Identity, input: &ListShardsInput) -> Result {
    page(input.max_results, PAGE_SIZE_MAX, "maxResults")?;
    if input.next_token.is_some() {
        if input.stream_name.is_some() || input.stream_arn.is_some() || input.exclusive_start_shard_id.is_some() {
            return Err(KinesisError::invalid_argument(
                "NextToken cannot be combined with StreamName, StreamARN or ExclusiveStartShardId",
            ));
        }
    } else {
        stream(identity, &input.stream_name, &input.stream_arn)?;
    }
    shard_id_argument(input.exclusive_start_shard_id.as_ref(), "ExclusiveStartShardId")?;
    if let Some(filter) = &input.shard_filter {
        known(&filter.r#type, "shardFilter.type")?;
        match filter.r#type {
            ShardFilterType::AfterShardId => match &filter.shard_id {
                None => return Err(KinesisError::invalid_argument("ShardFilter AFTER_SHARD_ID needs a ShardId")),
                Some(shard) => shard_id_argument(Some(shard), "ShardId")?,
            },
            ShardFilterType::AtTimestamp | ShardFilterType::FromTimestamp if filter.timestamp.is_none() => {
                return Err(KinesisError::invalid_argument("ShardFilter needs a Timestamp"));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::routes::DescribeStreamRoutesInput;
    use crate::shapes::StreamModeDetails;
    use bytes::Bytes;

    fn kind(request: impl Into<Request>) -> Option<ErrorKind> {
        request.into().validate(&Identity::default()).err().map(|error| error.kind)
    }

    fn named(name: &str) -> Option<String> {
        Some(name.to_owned())
    }

    #[test]
    fn enum_values_this_build_does_not_know_are_refused() {
        let input = GetShardIteratorInput {
            stream_name: named("s"),
            shard_id: ShardId::from_number(0),
            shard_iterator_type: ShardIteratorType::Unknown(crate::enums::UnknownValue::Text("NEWEST".into())),
            starting_sequence_number: None,
            timestamp: None,
            stream_arn: None,
        };
        let error = Request::from(input).validate(&Identity::default()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Validation);
        assert!(error.message.contains("'NEWEST' at 'shardIteratorType' failed to satisfy constraint"), "{error}");
        assert!(error.message.contains("enum value set: [AT_SEQUENCE_NUMBER, "), "{error}");
    }

    #[test]
    fn streams_must_be_named_well() {
        assert_eq!(kind(DescribeStreamSummaryInput::default()), Some(ErrorKind::InvalidArgument));
        assert_eq!(
            kind(DescribeStreamSummaryInput { stream_name: named("a b"), ..Default::default() }),
            Some(ErrorKind::Validation)
        );
        assert_eq!(kind(DescribeStreamSummaryInput { stream_name: named("s"), ..Default::default() }), None);
        let foreign = StreamArn::from("arn:aws:kinesis:eu-west-1:000000000000:stream/s");
        assert_eq!(
            kind(DescribeStreamSummaryInput { stream_arn: Some(foreign), ..Default::default() }),
            Some(ErrorKind::InvalidArgument)
        );
        assert_eq!(kind(DescribeStreamRoutesInput::default()), Some(ErrorKind::InvalidArgument));
        assert_eq!(
            kind(DescribeStreamRoutesInput { stream_name: named("a b"), ..Default::default() }),
            Some(ErrorKind::Validation)
        );
        assert_eq!(kind(DescribeStreamRoutesInput { stream_name: named("s"), ..Default::default() }), None);
    }

    #[test]
    fn create_stream_checks_its_members_then_its_arguments() {
        let create = |count: Option<i32>, mode: Option<StreamMode>| CreateStreamInput {
            stream_name: "s".into(),
            shard_count: count,
            stream_mode_details: mode.map(StreamModeDetails::from),
            ..Default::default()
        };
        assert_eq!(kind(create(Some(1), None)), None);
        assert_eq!(kind(create(Some(0), None)), Some(ErrorKind::Validation));
        assert_eq!(kind(create(None, None)), Some(ErrorKind::InvalidArgument));
        assert_eq!(kind(create(None, Some(StreamMode::OnDemand))), None);
        let long_tag =
            CreateStreamInput { tags: Some([("k".repeat(129), String::new())].into()), ..create(Some(1), None) };
        assert_eq!(kind(long_tag), Some(ErrorKind::Validation));
    }

    #[test]
    fn records_are_checked_entry_by_entry() {
        let entry = |key: Option<&str>, bytes: usize| PutRecordsRequestEntry {
            data: Bytes::from(vec![0; bytes]),
            partition_key: key.map(str::to_owned),
            explicit_hash_key: None,
        };
        let put = |records| PutRecordsInput { records, stream_name: named("s"), stream_arn: None };
        assert_eq!(kind(put(vec![entry(Some("k"), 1)])), None);
        assert_eq!(kind(put(Vec::new())), Some(ErrorKind::Validation));
        assert_eq!(kind(put(vec![entry(Some("k"), 1); 501])), Some(ErrorKind::Validation));
        let error = put(vec![entry(Some("k"), 1), entry(None, 1)]).into_request_error();
        assert!(error.message.contains("'records.2.member.partitionKey'"), "{}", error.message);
        assert_eq!(kind(put(vec![entry(Some(&"k".repeat(257)), 1)])), Some(ErrorKind::Validation));
        assert_eq!(kind(put(vec![entry(Some("k"), STREAM_RECORD_BYTES_MAX)])), Some(ErrorKind::Validation));
        assert_eq!(
            kind(put(vec![entry(Some("k"), crate::limits::RECORD_BYTES_MAX)])),
            None,
            "a stream may take records up to 10 MiB"
        );
        assert_eq!(
            kind(put(vec![entry(Some("k"), crate::limits::RECORD_BYTES_MAX - 1); 11])),
            Some(ErrorKind::InvalidArgument)
        );
    }

    #[test]
    fn positions_need_what_their_type_needs() {
        let iterator = |kind: ShardIteratorType, sequence: Option<u128>| GetShardIteratorInput {
            stream_name: named("s"),
            shard_id: ShardId::from_number(0),
            shard_iterator_type: kind,
            starting_sequence_number: sequence.map(SequenceNumber::new),
            timestamp: None,
            stream_arn: None,
        };
        assert_eq!(kind(iterator(ShardIteratorType::Latest, None)), None);
        assert_eq!(kind(iterator(ShardIteratorType::AtSequenceNumber, None)), Some(ErrorKind::InvalidArgument));
        assert_eq!(kind(iterator(ShardIteratorType::AfterSequenceNumber, Some(1))), None);
        assert_eq!(kind(iterator(ShardIteratorType::AtTimestamp, None)), Some(ErrorKind::InvalidArgument));
    }

    #[test]
    fn pages_and_limits_stay_in_range() {
        assert_eq!(kind(ListStreamsInput { limit: Some(0), ..Default::default() }), Some(ErrorKind::Validation));
        assert_eq!(kind(ListStreamsInput { limit: Some(10_001), ..Default::default() }), Some(ErrorKind::Validation));
        assert_eq!(
            kind(GetRecordsInput { shard_iterator: "x".into(), limit: Some(0), stream_arn: None }),
            Some(ErrorKind::InvalidArgument)
        );
        let retention = |hours| IncreaseStreamRetentionPeriodInput {
            stream_name: named("s"),
            retention_period_hours: hours,
            stream_arn: None,
        };
        assert_eq!(kind(retention(23)), Some(ErrorKind::InvalidArgument));
        assert_eq!(kind(retention(8760)), None);
        let remove = |count| RemoveTagsFromStreamInput {
            stream_name: named("s"),
            tag_keys: vec!["k".into(); count],
            stream_arn: None,
        };
        assert_eq!(kind(remove(0)), Some(ErrorKind::Validation));
        assert_eq!(kind(remove(51)), Some(ErrorKind::Validation));
        assert_eq!(kind(remove(50)), None);
    }

    impl PutRecordsInput {
        fn into_request_error(self) -> KinesisError {
            Request::from(self).validate(&Identity::default()).unwrap_err()
        }
    }
}
