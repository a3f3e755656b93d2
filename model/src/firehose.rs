//! The Firehose API (`Firehose_20150804`, delivery streams) as plain values, for the
//! protocols that carry it besides AWS JSON: the native protocol's Firehose tables
//! (`sluice-protocol`) decode into [`FirehoseRequest`] and encode [`FirehoseResponse`].
//!
//! Members are botocore's firehose 2015-08-04 members, snake-cased. Two kinds of member are
//! kept as AWS JSON bytes rather than modelled: the bodies of CreateDeliveryStream and
//! UpdateDestination (a destination configuration is dozens of nested shapes, which the
//! server decodes and checks with the same code whichever protocol brought them), and
//! DescribeDeliveryStream's `DeliveryStreamDescription`. Record data is always raw bytes.
//!
//! These values are not checked: the server checks them as it checks the AWS JSON bodies
//! (names, record sizes, batch bounds, tag patterns), so both protocols refuse the same
//! requests with the same errors.

use bytes::Bytes;
use std::fmt;

/// The `X-Amz-Target` prefix of the Firehose API over HTTP.
pub const FIREHOSE_TARGET_PREFIX: &str = "Firehose_20150804.";

/// The operations of the Firehose API that Sluice serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FirehoseOperation {
    CreateDeliveryStream,
    DeleteDeliveryStream,
    DescribeDeliveryStream,
    ListDeliveryStreams,
    PutRecord,
    PutRecordBatch,
    UpdateDestination,
    TagDeliveryStream,
    UntagDeliveryStream,
    ListTagsForDeliveryStream,
    StartDeliveryStreamEncryption,
    StopDeliveryStreamEncryption,
}

impl FirehoseOperation {
    pub const ALL: &'static [FirehoseOperation] = &[
        FirehoseOperation::CreateDeliveryStream,
        FirehoseOperation::DeleteDeliveryStream,
        FirehoseOperation::DescribeDeliveryStream,
        FirehoseOperation::ListDeliveryStreams,
        FirehoseOperation::PutRecord,
        FirehoseOperation::PutRecordBatch,
        FirehoseOperation::UpdateDestination,
        FirehoseOperation::TagDeliveryStream,
        FirehoseOperation::UntagDeliveryStream,
        FirehoseOperation::ListTagsForDeliveryStream,
        FirehoseOperation::StartDeliveryStreamEncryption,
        FirehoseOperation::StopDeliveryStreamEncryption,
    ];

    /// The operation an `X-Amz-Target` names after [`FIREHOSE_TARGET_PREFIX`].
    pub fn from_name(name: &str) -> Option<FirehoseOperation> {
        FirehoseOperation::ALL.iter().copied().find(|operation| operation.name() == name)
    }

    /// The operation's name, as in its `X-Amz-Target` and the audit log's `eventName`.
    pub fn name(self) -> &'static str {
        match self {
            FirehoseOperation::CreateDeliveryStream => "CreateDeliveryStream",
            FirehoseOperation::DeleteDeliveryStream => "DeleteDeliveryStream",
            FirehoseOperation::DescribeDeliveryStream => "DescribeDeliveryStream",
            FirehoseOperation::ListDeliveryStreams => "ListDeliveryStreams",
            FirehoseOperation::PutRecord => "PutRecord",
            FirehoseOperation::PutRecordBatch => "PutRecordBatch",
            FirehoseOperation::UpdateDestination => "UpdateDestination",
            FirehoseOperation::TagDeliveryStream => "TagDeliveryStream",
            FirehoseOperation::UntagDeliveryStream => "UntagDeliveryStream",
            FirehoseOperation::ListTagsForDeliveryStream => "ListTagsForDeliveryStream",
            FirehoseOperation::StartDeliveryStreamEncryption => "StartDeliveryStreamEncryption",
            FirehoseOperation::StopDeliveryStreamEncryption => "StopDeliveryStreamEncryption",
        }
    }

    /// The IAM action that authorizes it: `firehose:<Operation>`.
    pub fn iam_action(self) -> &'static str {
        match self {
            FirehoseOperation::CreateDeliveryStream => "firehose:CreateDeliveryStream",
            FirehoseOperation::DeleteDeliveryStream => "firehose:DeleteDeliveryStream",
            FirehoseOperation::DescribeDeliveryStream => "firehose:DescribeDeliveryStream",
            FirehoseOperation::ListDeliveryStreams => "firehose:ListDeliveryStreams",
            FirehoseOperation::PutRecord => "firehose:PutRecord",
            FirehoseOperation::PutRecordBatch => "firehose:PutRecordBatch",
            FirehoseOperation::UpdateDestination => "firehose:UpdateDestination",
            FirehoseOperation::TagDeliveryStream => "firehose:TagDeliveryStream",
            FirehoseOperation::UntagDeliveryStream => "firehose:UntagDeliveryStream",
            FirehoseOperation::ListTagsForDeliveryStream => "firehose:ListTagsForDeliveryStream",
            FirehoseOperation::StartDeliveryStreamEncryption => "firehose:StartDeliveryStreamEncryption",
            FirehoseOperation::StopDeliveryStreamEncryption => "firehose:StopDeliveryStreamEncryption",
        }
    }
}

impl fmt::Display for FirehoseOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Firehose tag: its value may be absent (AWS lists it so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehoseTag {
    pub key: String,
    pub value: Option<String>,
}

/// One Firehose request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirehoseRequest {
    /// The AWS JSON body of CreateDeliveryStream (`CreateDeliveryStreamInput`).
    CreateDeliveryStream {
        input_json: Bytes,
    },
    DeleteDeliveryStream {
        delivery_stream_name: String,
        allow_force_delete: Option<bool>,
    },
    DescribeDeliveryStream {
        delivery_stream_name: String,
        limit: Option<i64>,
        exclusive_start_destination_id: Option<String>,
    },
    ListDeliveryStreams {
        limit: Option<i64>,
        delivery_stream_type: Option<String>,
        exclusive_start_delivery_stream_name: Option<String>,
    },
    PutRecord {
        delivery_stream_name: String,
        data: Bytes,
    },
    PutRecordBatch {
        delivery_stream_name: String,
        records: Vec<Bytes>,
    },
    /// The AWS JSON body of UpdateDestination (`UpdateDestinationInput`).
    UpdateDestination {
        input_json: Bytes,
    },
    TagDeliveryStream {
        delivery_stream_name: String,
        tags: Vec<FirehoseTag>,
    },
    UntagDeliveryStream {
        delivery_stream_name: String,
        tag_keys: Vec<String>,
    },
    ListTagsForDeliveryStream {
        delivery_stream_name: String,
        exclusive_start_tag_key: Option<String>,
        limit: Option<i64>,
    },
    /// `DeliveryStreamEncryptionConfigurationInput` flattened: both absent when it is.
    StartDeliveryStreamEncryption {
        delivery_stream_name: String,
        key_type: Option<String>,
        key_arn: Option<String>,
    },
    StopDeliveryStreamEncryption {
        delivery_stream_name: String,
    },
}

impl FirehoseRequest {
    pub fn operation(&self) -> FirehoseOperation {
        match self {
            FirehoseRequest::CreateDeliveryStream { .. } => FirehoseOperation::CreateDeliveryStream,
            FirehoseRequest::DeleteDeliveryStream { .. } => FirehoseOperation::DeleteDeliveryStream,
            FirehoseRequest::DescribeDeliveryStream { .. } => FirehoseOperation::DescribeDeliveryStream,
            FirehoseRequest::ListDeliveryStreams { .. } => FirehoseOperation::ListDeliveryStreams,
            FirehoseRequest::PutRecord { .. } => FirehoseOperation::PutRecord,
            FirehoseRequest::PutRecordBatch { .. } => FirehoseOperation::PutRecordBatch,
            FirehoseRequest::UpdateDestination { .. } => FirehoseOperation::UpdateDestination,
            FirehoseRequest::TagDeliveryStream { .. } => FirehoseOperation::TagDeliveryStream,
            FirehoseRequest::UntagDeliveryStream { .. } => FirehoseOperation::UntagDeliveryStream,
            FirehoseRequest::ListTagsForDeliveryStream { .. } => FirehoseOperation::ListTagsForDeliveryStream,
            FirehoseRequest::StartDeliveryStreamEncryption { .. } => FirehoseOperation::StartDeliveryStreamEncryption,
            FirehoseRequest::StopDeliveryStreamEncryption { .. } => FirehoseOperation::StopDeliveryStreamEncryption,
        }
    }

    /// The bytes of record data it carries (what a connection's budget counts).
    pub fn data_bytes(&self) -> usize {
        match self {
            FirehoseRequest::PutRecord { data, .. } => data.len(),
            FirehoseRequest::PutRecordBatch { records, .. } => records.iter().map(Bytes::len).sum(),
            _ => 0,
        }
    }
}

/// One record's answer in a PutRecordBatch: its id, or why it failed (AWS's
/// `PutRecordBatchResponseEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutRecordBatchEntry {
    Stored { record_id: String },
    Failed { error_code: String, error_message: String },
}

/// One Firehose answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirehoseResponse {
    CreateDeliveryStream {
        delivery_stream_arn: String,
    },
    DeleteDeliveryStream,
    /// The AWS JSON of `DeliveryStreamDescription`.
    DescribeDeliveryStream {
        description_json: Bytes,
    },
    ListDeliveryStreams {
        delivery_stream_names: Vec<String>,
        has_more_delivery_streams: bool,
    },
    PutRecord {
        record_id: String,
        encrypted: Option<bool>,
    },
    PutRecordBatch {
        failed_put_count: i32,
        encrypted: Option<bool>,
        request_responses: Vec<PutRecordBatchEntry>,
    },
    UpdateDestination,
    TagDeliveryStream,
    UntagDeliveryStream,
    ListTagsForDeliveryStream {
        tags: Vec<FirehoseTag>,
        has_more_tags: bool,
    },
    StartDeliveryStreamEncryption,
    StopDeliveryStreamEncryption,
}

impl FirehoseResponse {
    pub fn operation(&self) -> FirehoseOperation {
        match self {
            FirehoseResponse::CreateDeliveryStream { .. } => FirehoseOperation::CreateDeliveryStream,
            FirehoseResponse::DeleteDeliveryStream => FirehoseOperation::DeleteDeliveryStream,
            FirehoseResponse::DescribeDeliveryStream { .. } => FirehoseOperation::DescribeDeliveryStream,
            FirehoseResponse::ListDeliveryStreams { .. } => FirehoseOperation::ListDeliveryStreams,
            FirehoseResponse::PutRecord { .. } => FirehoseOperation::PutRecord,
            FirehoseResponse::PutRecordBatch { .. } => FirehoseOperation::PutRecordBatch,
            FirehoseResponse::UpdateDestination => FirehoseOperation::UpdateDestination,
            FirehoseResponse::TagDeliveryStream => FirehoseOperation::TagDeliveryStream,
            FirehoseResponse::UntagDeliveryStream => FirehoseOperation::UntagDeliveryStream,
            FirehoseResponse::ListTagsForDeliveryStream { .. } => FirehoseOperation::ListTagsForDeliveryStream,
            FirehoseResponse::StartDeliveryStreamEncryption => FirehoseOperation::StartDeliveryStreamEncryption,
            FirehoseResponse::StopDeliveryStreamEncryption => FirehoseOperation::StopDeliveryStreamEncryption,
        }
    }
}
