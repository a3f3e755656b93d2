//! Kinesis queues (botocore 1.44.5's model): competing consumers of a stream with receipt
//! handles, visibility timeouts and built-in dead-letter handling. The inputs and outputs of
//! the twelve queue operations and queue ARNs (their validation is in `validate::queues`).
//!
//! A queue's ARN is `arn:aws:kinesis:<region>:<account>:queue/<id>`, with the id the server
//! generated (sixteen hex digits), not the name: the model's `QueueARN` pattern is
//! `arn:aws.*:kinesis:.*:\d{12}:queue/\S+`, and a queue deleted and created again under its
//! name is another queue.

use crate::enums::{QueueStartingPositionType, QueueStatus, TargetType};
use crate::error::{ErrorKind, KinesisError};
use crate::identity::Identity;
use crate::ids::{blob, StreamArn, Timestamp};
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
