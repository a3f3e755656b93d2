//! Kinesis queues (botocore 1.44.5's model): competing consumers of a stream with receipt
//! handles, visibility timeouts and built-in dead-letter handling. The inputs and outputs of
//! the twelve queue operations, their validation, and queue ARNs.
//!
//! A queue's ARN is `arn:aws:kinesis:<region>:<account>:queue/<id>`, with the id the server
//! generated (sixteen hex digits), not the name: the model's `QueueARN` pattern is
//! `arn:aws.*:kinesis:.*:\d{12}:queue/\S+`, and a queue deleted and created again under its
//! name is another queue.

use crate::enums::{QueueStartingPositionType, QueueStatus, TargetType};
use crate::error::{ErrorKind, KinesisError, Violation, Violations};
use crate::identity::{invalid_name, is_valid_name, Identity};
use crate::ids::{blob, StreamArn, Timestamp};
use crate::limits::{
    QUEUE_ENTRIES_PER_CALL_MAX, QUEUE_LIST_PAGE_SIZE_MAX, QUEUE_MAX_RECEIVE_COUNT_MAX, QUEUE_MAX_RECEIVE_COUNT_MIN,
    QUEUE_RECEIVE_LIMIT_MAX, QUEUE_VISIBILITY_TIMEOUT_S_MAX, QUEUE_WAIT_TIME_S_MAX, QUEUE_WAIT_TIME_S_MIN,
};
use crate::operations::Operation;
use crate::operations::Request;
use crate::shapes::TagMap;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Model: `QueueStartingPosition`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueStartingPosition {
    pub r#type: QueueStartingPositionType,
    /// Only with `AT_TIMESTAMP` (required then). In a description: the effective start.
    pub timestamp: Option<Timestamp>,
}

/// Model: `QueueStreamConfiguration`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueStreamConfiguration {
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    /// Absent means LATEST.
    pub starting_position: Option<QueueStartingPosition>,
}

/// Model: `DeadLetterConfiguration`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterConfiguration {
    pub target_type: TargetType,
    /// Required with `BUILT_IN`.
    pub max_receive_count: Option<i32>,
}

/// Model: `QueueAttributes`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueAttributes {
    pub visibility_timeout_seconds: Option<i32>,
    pub dead_letter_configuration: Option<DeadLetterConfiguration>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateQueueInput {
    pub queue_name: String,
    pub stream_configuration_list: Vec<QueueStreamConfiguration>,
    pub queue_attributes: Option<QueueAttributes>,
    pub tags: Option<TagMap>,
}

/// Model: `QueueDescription`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueDescription {
    pub queue_name: String,
    #[serde(rename = "QueueARN")]
    pub queue_arn: String,
    pub queue_status: QueueStatus,
    pub queue_creation_timestamp: Timestamp,
    pub stream_configuration_list: Vec<QueueStreamConfiguration>,
    pub queue_attributes: Option<QueueAttributes>,
}

/// The answer of CreateQueue, DescribeQueue and UpdateQueue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueDescriptionOutput {
    pub queue_description: QueueDescription,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeQueueInput {
    #[serde(rename = "QueueARN")]
    pub queue_arn: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteQueueInput {
    #[serde(rename = "QueueARN")]
    pub queue_arn: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateQueueInput {
    #[serde(rename = "QueueARN")]
    pub queue_arn: String,
    pub queue_attributes: QueueAttributes,
}

/// Model: `QueueStreamFilter`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueStreamFilter {
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    pub stream_creation_timestamp: Option<Timestamp>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueuesInput {
    pub max_results: Option<i32>,
    pub next_token: Option<String>,
    pub stream_filter: Option<Vec<QueueStreamFilter>>,
}

/// Model: `QueueStreamIdentifier`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueStreamIdentifier {
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    pub stream_creation_timestamp: Timestamp,
}

/// Model: `QueueSummary`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueSummary {
    pub queue_name: String,
    #[serde(rename = "QueueARN")]
    pub queue_arn: String,
    pub queue_status: QueueStatus,
    pub queue_creation_timestamp: Timestamp,
    pub streams: Vec<QueueStreamIdentifier>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueuesOutput {
    pub queue_summaries: Vec<QueueSummary>,
    pub next_token: Option<String>,
}

/// Model: `QueueRecord`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueRecord {
    pub receipt_handle: String,
    /// Stable across deliveries and queues: the record's sequence number in decimal.
    pub record_id: String,
    pub partition_key: Option<String>,
    #[serde(with = "blob")]
    pub data: Bytes,
    pub approximate_arrival_timestamp: Timestamp,
    pub first_receive_timestamp: Timestamp,
    pub receive_count: i32,
}

/// The answer of ReceiveQueueRecords and ReceiveDeadLetterQueueRecords.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueRecordsOutput {
    pub queue_records: Vec<QueueRecord>,
}

/// One receipt handle of a request or of a `Successful` list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiptHandleEntry {
    pub receipt_handle: String,
}

/// One entry of UpdateQueueRecordsVisibility or UpdateDeadLetterQueueRecordsVisibility.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VisibilityEntry {
    pub receipt_handle: String,
    pub visibility_timeout_seconds: i32,
}

/// One entry of a `Failed` list.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueEntryError {
    pub receipt_handle: String,
    /// One of ResourceNotFoundException, InvalidArgumentException, ThrottlingException,
    /// InternalFailureException (the operations' documentation).
    pub error_code: String,
    pub error_message: Option<String>,
}

/// The answer of the acknowledge, restore and visibility operations: one entry per request
/// entry, in `Successful` or in `Failed`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueEntriesOutput {
    pub successful: Vec<ReceiptHandleEntry>,
    pub failed: Vec<QueueEntryError>,
}

/// Inputs that are the same shape under several operations: each operation needs a type of
/// its own (the operation list maps a type to its operation).
macro_rules! same_shape {
    ($( $(#[$meta:meta])* $name:ident { $($body:tt)* } )*) => {
        $(
            $(#[$meta])*
            #[serde_with::skip_serializing_none]
            #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
            #[serde(rename_all = "PascalCase")]
            pub struct $name { $($body)* }
        )*
    };
}

same_shape! {
    ReceiveQueueRecordsInput {
        #[serde(rename = "QueueARN")]
        pub queue_arn: String,
        pub limit: Option<i32>,
        pub wait_time_seconds: Option<i32>,
        pub visibility_timeout_seconds: Option<i32>,
    }
    ReceiveDeadLetterQueueRecordsInput {
        #[serde(rename = "QueueARN")]
        pub queue_arn: String,
        pub limit: Option<i32>,
        pub wait_time_seconds: Option<i32>,
        pub visibility_timeout_seconds: Option<i32>,
    }
    AcknowledgeQueueRecordsInput {
        #[serde(rename = "QueueARN")]
        pub queue_arn: String,
        pub entries: Vec<ReceiptHandleEntry>,
    }
    AcknowledgeDeadLetterQueueRecordsInput {
        #[serde(rename = "QueueARN")]
        pub queue_arn: String,
        pub entries: Vec<ReceiptHandleEntry>,
    }
    RestoreDeadLetterQueueRecordsInput {
        #[serde(rename = "QueueARN")]
        pub queue_arn: String,
        pub entries: Vec<ReceiptHandleEntry>,
    }
    UpdateQueueRecordsVisibilityInput {
        #[serde(rename = "QueueARN")]
        pub queue_arn: String,
        pub entries: Vec<VisibilityEntry>,
    }
    UpdateDeadLetterQueueRecordsVisibilityInput {
        #[serde(rename = "QueueARN")]
        pub queue_arn: String,
        pub entries: Vec<VisibilityEntry>,
    }
}

impl QueueEntryError {
    pub fn new(receipt_handle: String, kind: ErrorKind, message: impl Into<String>) -> QueueEntryError {
        QueueEntryError {
            receipt_handle,
            error_code: kind.exception_name().to_owned(),
            error_message: Some(message.into()),
        }
    }
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

/// A queue as its ARN names it: the server's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueRef(pub u64);

impl Identity {
    /// `arn:aws:kinesis:<region>:<account>:queue/<id, 16 hex digits>`.
    pub fn queue_arn(&self, queue: QueueRef) -> String {
        format!("arn:aws:kinesis:{}:{}:queue/{:016x}", self.region(), self.account_id(), queue.0)
    }

    /// The queue a queue ARN of this account and region names.
    pub fn queue_of(&self, arn: &str) -> std::result::Result<QueueRef, KinesisError> {
        let prefix = format!("arn:aws:kinesis:{}:{}:queue/", self.region(), self.account_id());
        arn.strip_prefix(&prefix)
            .filter(|id| id.len() == 16)
            .and_then(|id| u64::from_str_radix(id, 16).ok())
            .map(QueueRef)
            .ok_or_else(|| {
                KinesisError::invalid_argument(format!("QueueARN {arn} is not a queue ARN of this account and region"))
            })
    }
}

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
