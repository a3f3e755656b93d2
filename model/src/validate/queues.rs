//! The checks of the twelve queue operations that need no server state.

use crate::enums::{QueueStartingPositionType, TargetType};
use crate::error::{KinesisError, Violation, Violations};
use crate::identity::{invalid_name, is_valid_name, Identity};
use crate::limits::{
    QUEUE_ENTRIES_PER_CALL_MAX, QUEUE_LIST_PAGE_SIZE_MAX, QUEUE_MAX_RECEIVE_COUNT_MAX, QUEUE_MAX_RECEIVE_COUNT_MIN,
    QUEUE_RECEIVE_LIMIT_MAX, QUEUE_VISIBILITY_TIMEOUT_S_MAX, QUEUE_WAIT_TIME_S_MAX, QUEUE_WAIT_TIME_S_MIN,
};
use crate::operations::Request;
use crate::queues::{CreateQueueInput, QueueAttributes, ReceiptHandleEntry, VisibilityEntry};

type Result<T = ()> = std::result::Result<T, KinesisError>;

fn range(value: Option<i32>, min: i32, max: i32, path: &str) -> Result {
    let mut violations = Violations::default();
    match value {
        Some(value) if value < min => violations.push(Violation::min_value(value, path, min)),
        Some(value) if value > max => violations.push(Violation::max_value(value, path, max)),
        _ => {}
    }
    violations.check()
}

fn attributes(attributes: &QueueAttributes, path: &str) -> Result {
    let visibility = format!("{path}.visibilityTimeoutSeconds");
    range(attributes.visibility_timeout_seconds, 0, QUEUE_VISIBILITY_TIMEOUT_S_MAX, &visibility)?;
    if let Some(config) = &attributes.dead_letter_configuration {
        if !config.target_type.is_known() {
            return Err(KinesisError::not_in_enum(
                &config.target_type,
                &format!("{path}.deadLetterConfiguration.targetType"),
            ));
        }
        let count = format!("{path}.deadLetterConfiguration.maxReceiveCount");
        range(config.max_receive_count, QUEUE_MAX_RECEIVE_COUNT_MIN, QUEUE_MAX_RECEIVE_COUNT_MAX, &count)?;
        if config.target_type == TargetType::BuiltIn && config.max_receive_count.is_none() {
            return Err(KinesisError::invalid_argument("MaxReceiveCount is required when TargetType is BUILT_IN"));
        }
    }
    Ok(())
}

fn entry_count(count: usize) -> Result {
    let mut violations = Violations::default();
    if count == 0 {
        violations.push(Violation::min_length("[0 items]", "entries", 1));
    } else if count > QUEUE_ENTRIES_PER_CALL_MAX {
        violations.push(Violation::max_length(&format!("[{count} items]"), "entries", QUEUE_ENTRIES_PER_CALL_MAX));
    }
    violations.check()
}

fn handle(handle: &str) -> Result {
    if handle.is_empty() {
        return Err(KinesisError::validation(Violation::min_length(handle, "entries.member.receiptHandle", 1)));
    }
    Ok(())
}

fn receive(identity: &Identity, arn: &str, limit: Option<i32>, wait: Option<i32>, visibility: Option<i32>) -> Result {
    identity.queue_of(arn)?;
    range(limit, 1, QUEUE_RECEIVE_LIMIT_MAX, "limit")?;
    range(wait, QUEUE_WAIT_TIME_S_MIN, QUEUE_WAIT_TIME_S_MAX, "waitTimeSeconds")?;
    range(visibility, 0, QUEUE_VISIBILITY_TIMEOUT_S_MAX, "visibilityTimeoutSeconds")
}

fn entries(identity: &Identity, arn: &str, handles: &[ReceiptHandleEntry]) -> Result {
    identity.queue_of(arn)?;
    entry_count(handles.len())?;
    handles.iter().try_for_each(|entry| handle(&entry.receipt_handle))
}

fn visibility_entries(identity: &Identity, arn: &str, changes: &[VisibilityEntry]) -> Result {
    identity.queue_of(arn)?;
    entry_count(changes.len())?;
    for entry in changes {
        handle(&entry.receipt_handle)?;
        let seconds = Some(entry.visibility_timeout_seconds);
        range(seconds, 0, QUEUE_VISIBILITY_TIMEOUT_S_MAX, "entries.member.visibilityTimeoutSeconds")?;
    }
    Ok(())
}

/// The checks of a queue request that need no state; `None` for any other request.
pub(crate) fn validate(request: &Request, identity: &Identity) -> Option<Result> {
    request.operation().is_queue().then(|| checks(request, identity))
}

fn checks(request: &Request, identity: &Identity) -> Result {
    match request {
        Request::CreateQueue(input) => create(input, identity),
        Request::DescribeQueue(input) => identity.queue_of(&input.queue_arn).map(drop),
        Request::DeleteQueue(input) => identity.queue_of(&input.queue_arn).map(drop),
        Request::UpdateQueue(input) => {
            identity.queue_of(&input.queue_arn)?;
            attributes(&input.queue_attributes, "queueAttributes")
        }
        Request::ListQueues(input) => {
            let max = i32::try_from(QUEUE_LIST_PAGE_SIZE_MAX).unwrap_or(i32::MAX);
            range(input.max_results, 1, max, "maxResults")?;
            for filter in input.stream_filter.iter().flatten() {
                identity.stream_name_of(&filter.stream_arn)?;
            }
            Ok(())
        }
        Request::ReceiveQueueRecords(i) => {
            receive(identity, &i.queue_arn, i.limit, i.wait_time_seconds, i.visibility_timeout_seconds)
        }
        Request::ReceiveDeadLetterQueueRecords(i) => {
            receive(identity, &i.queue_arn, i.limit, i.wait_time_seconds, i.visibility_timeout_seconds)
        }
        Request::AcknowledgeQueueRecords(i) => entries(identity, &i.queue_arn, &i.entries),
        Request::AcknowledgeDeadLetterQueueRecords(i) => entries(identity, &i.queue_arn, &i.entries),
        Request::RestoreDeadLetterQueueRecords(i) => entries(identity, &i.queue_arn, &i.entries),
        Request::UpdateQueueRecordsVisibility(i) => visibility_entries(identity, &i.queue_arn, &i.entries),
        Request::UpdateDeadLetterQueueRecordsVisibility(i) => visibility_entries(identity, &i.queue_arn, &i.entries),
        _ => Ok(()),
    }
}

fn create(input: &CreateQueueInput, identity: &Identity) -> Result {
    if !is_valid_name(&input.queue_name) {
        return Err(invalid_name(&input.queue_name, "queueName"));
    }
    if input.stream_configuration_list.is_empty() {
        return Err(KinesisError::validation(Violation::min_length("[0 items]", "streamConfigurationList", 1)));
    }
    for config in &input.stream_configuration_list {
        identity.stream_name_of(&config.stream_arn)?;
        if let Some(position) = &config.starting_position {
            if !position.r#type.is_known() {
                return Err(KinesisError::not_in_enum(
                    &position.r#type,
                    "streamConfigurationList.member.startingPosition.type",
                ));
            }
            let at_timestamp = position.r#type == QueueStartingPositionType::AtTimestamp;
            if at_timestamp != position.timestamp.is_some() {
                return Err(KinesisError::invalid_argument(
                    "StartingPosition.Timestamp is required with AT_TIMESTAMP and allowed with no other type",
                ));
            }
        }
    }
    if let Some(given) = &input.queue_attributes {
        attributes(given, "queueAttributes")?;
    }
    Ok(())
}
