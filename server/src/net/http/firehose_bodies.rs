//! The request bodies of the Firehose operations, and the members of channel bodies that name
//! resources, decoded from untrusted bytes and checked as AWS checks them, with no runtime and
//! nothing of the daemon: `net::http::firehose` and `net::http::channel_access` run what these
//! answer, and `fuzz/fuzz_targets/firehose_bodies.rs` compiles this file in and feeds it
//! arbitrary bodies (it reads only `crate::limits`).
//!
//! A required member that is absent is AWS's ValidationException (`Member must not be null`);
//! any other decoding failure (a wrong type, not JSON) is a SerializationException, as the
//! Kinesis codec answers.

use crate::limits::{
    FIREHOSE_LIST_DEFAULT, FIREHOSE_LIST_MAX, FIREHOSE_PUT_BATCH_BYTES_MAX, FIREHOSE_PUT_BATCH_RECORDS_MAX,
    FIREHOSE_RECORD_BYTES_MAX,
};
use base64::Engine as _;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A refused body: AWS's exception name and message (always HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub exception: &'static str,
    pub message: String,
}

impl BodyError {
    fn new(exception: &'static str, message: impl Into<String>) -> BodyError {
        BodyError { exception, message: message.into() }
    }
}

/// The body as `T` (an empty body is `{}`).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|error| {
        let text = error.to_string();
        match text.strip_prefix("missing field `").and_then(|rest| rest.split_once('`')) {
            Some((member, _)) => BodyError::new(
                "ValidationException",
                format!(
                    "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                    lower_first(member)
                ),
            ),
            None => BodyError::new("SerializationException", text),
        }
    })
}

/// AWS names members in validation messages with a lower-case first letter.
fn lower_first(member: &str) -> String {
    let mut chars = member.chars();
    chars.next().map(|first| first.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// AWS's ValidationException for one member.
pub fn violation(value: &str, member: &str, constraint: &str) -> BodyError {
    BodyError::new(
        "ValidationException",
        format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        ),
    )
}

/// `DeliveryStreamName`: 1–64 of `[a-zA-Z0-9_.-]`.
pub fn check_name(name: &str) -> Result<(), BodyError> {
    if name.is_empty() || name.len() > 64 {
        return Err(violation(
            name,
            "deliveryStreamName",
            "Member must have length less than or equal to 64 and greater than or equal to 1",
        ));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err(violation(
            name,
            "deliveryStreamName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameInput {
    delivery_stream_name: String,
}

/// DeleteDeliveryStream's and DescribeDeliveryStream's body: the delivery stream's name.
pub fn name(body: &[u8]) -> Result<String, BodyError> {
    let input: NameInput = decode(body)?;
    check_name(&input.delivery_stream_name)?;
    Ok(input.delivery_stream_name)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListInput {
    limit: Option<i64>,
    delivery_stream_type: Option<String>,
    exclusive_start_delivery_stream_name: Option<String>,
}

/// ListDeliveryStreams, checked.
#[derive(Debug)]
pub struct ListRequest {
    pub limit: usize,
    pub delivery_stream_type: Option<String>,
    pub exclusive_start_delivery_stream_name: Option<String>,
}

pub fn list(body: &[u8]) -> Result<ListRequest, BodyError> {
    let input: ListInput = decode(body)?;
    let limit = match input.limit {
        None => FIREHOSE_LIST_DEFAULT,
        Some(limit) if (1..=FIREHOSE_LIST_MAX as i64).contains(&limit) => limit as usize,
        Some(limit) => {
            return Err(violation(
                &limit.to_string(),
                "limit",
                &format!("Member must have value between 1 and {FIREHOSE_LIST_MAX}"),
            ))
        }
    };
    Ok(ListRequest {
        limit,
        delivery_stream_type: input.delivery_stream_type,
        exclusive_start_delivery_stream_name: input.exclusive_start_delivery_stream_name,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordInput {
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordInput {
    delivery_stream_name: String,
    record: RecordInput,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordBatchInput {
    delivery_stream_name: String,
    records: Vec<RecordInput>,
}

/// A record's `Data`: base64, at most [`FIREHOSE_RECORD_BYTES_MAX`] bytes decoded.
fn record_data(record: &RecordInput, member: &str) -> Result<Bytes, BodyError> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(&record.data)
        .map_err(|error| BodyError::new("SerializationException", format!("{member} is not base64: {error}")))?;
    if data.len() > FIREHOSE_RECORD_BYTES_MAX {
        return Err(violation(
            "java.nio.HeapByteBuffer",
            member,
            &format!("Member must have length less than or equal to {FIREHOSE_RECORD_BYTES_MAX}"),
        ));
    }
    Ok(Bytes::from(data))
}

/// PutRecord's body: the delivery stream's name and the record's data.
pub fn put_record(body: &[u8]) -> Result<(String, Bytes), BodyError> {
    let input: PutRecordInput = decode(body)?;
    check_name(&input.delivery_stream_name)?;
    let data = record_data(&input.record, "record.data")?;
    Ok((input.delivery_stream_name, data))
}

/// PutRecordBatch's body: the delivery stream's name and 1–500 records of at most 4 MiB in all.
pub fn put_record_batch(body: &[u8]) -> Result<(String, Vec<Bytes>), BodyError> {
    let input: PutRecordBatchInput = decode(body)?;
    check_name(&input.delivery_stream_name)?;
    if input.records.is_empty() || input.records.len() > FIREHOSE_PUT_BATCH_RECORDS_MAX {
        return Err(violation(
            &format!("{} records", input.records.len()),
            "records",
            &format!(
                "Member must have length less than or equal to {FIREHOSE_PUT_BATCH_RECORDS_MAX} and greater than or equal to 1"
            ),
        ));
    }
    let data = input
        .records
        .iter()
        .enumerate()
        .map(|(i, record)| record_data(record, &format!("records.{}.member.data", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let total: usize = data.iter().map(Bytes::len).sum();
    if total > FIREHOSE_PUT_BATCH_BYTES_MAX {
        return Err(BodyError::new(
            "InvalidArgumentException",
            format!(
                "Records size {total} bytes exceeds the limit of {FIREHOSE_PUT_BATCH_BYTES_MAX} bytes per PutRecordBatch"
            ),
        ));
    }
    Ok((input.delivery_stream_name, data))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateDestinationInput {
    delivery_stream_name: String,
    current_delivery_stream_version_id: String,
    destination_id: String,
    #[serde(rename = "S3DestinationUpdate")]
    s3_destination_update: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "ExtendedS3DestinationUpdate")]
    extended_s3_destination_update: Option<serde_json::Map<String, serde_json::Value>>,
    http_endpoint_destination_update: Option<serde_json::Map<String, serde_json::Value>>,
    /// The update members of destinations Sluice does not deliver to (Redshift, Splunk, …).
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

/// The destination an UpdateDestination changes, as the update's member names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    /// `S3DestinationUpdate` (deprecated) or `ExtendedS3DestinationUpdate`: both update the
    /// one S3 destination.
    S3 {
        extended: bool,
    },
    HttpEndpoint,
}

impl DestinationKind {
    /// The member of `CreateDeliveryStream` that configures this destination.
    pub fn configuration_member(self) -> &'static str {
        match self {
            DestinationKind::S3 { extended: false } => "S3DestinationConfiguration",
            DestinationKind::S3 { extended: true } => "ExtendedS3DestinationConfiguration",
            DestinationKind::HttpEndpoint => "HttpEndpointDestinationConfiguration",
        }
    }
}

/// UpdateDestination, checked: the members of the one update given (none: the version moves on
/// and nothing else changes, as AWS accepts it).
#[derive(Debug)]
pub struct UpdateDestinationRequest {
    pub delivery_stream_name: String,
    pub current_version_id: u64,
    pub destination_id: String,
    pub update: Option<(DestinationKind, serde_json::Map<String, serde_json::Value>)>,
}

pub fn update_destination(body: &[u8]) -> Result<UpdateDestinationRequest, BodyError> {
    let input: UpdateDestinationInput = decode(body)?;
    check_name(&input.delivery_stream_name)?;
    let version = &input.current_delivery_stream_version_id;
    if version.is_empty() || version.len() > 50 || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(violation(
            version,
            "currentDeliveryStreamVersionId",
            "Member must satisfy regular expression pattern: [0-9]+ and have length between 1 and 50",
        ));
    }
    let id = &input.destination_id;
    if id.is_empty() || id.len() > 100 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(violation(
            id,
            "destinationId",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9-]+ and have length between 1 and 100",
        ));
    }
    // A version id this long names no version this daemon wrote: it can only mismatch.
    let current_version_id = version.parse::<u64>().unwrap_or(u64::MAX);
    if let Some(member) = input.other.keys().find(|member| member.ends_with("DestinationUpdate")) {
        return Err(BodyError::new(
            "InvalidArgumentException",
            format!("{member}: Sluice delivers to S3-compatible stores, directories and HTTP endpoints only"),
        ));
    }
    let updates = [
        input.s3_destination_update.map(|update| (DestinationKind::S3 { extended: false }, update)),
        input.extended_s3_destination_update.map(|update| (DestinationKind::S3 { extended: true }, update)),
        input.http_endpoint_destination_update.map(|update| (DestinationKind::HttpEndpoint, update)),
    ];
    let mut given = updates.into_iter().flatten();
    let update = given.next();
    if given.next().is_some() {
        return Err(BodyError::new("InvalidArgumentException", "Only one destination update may be given"));
    }
    Ok(UpdateDestinationRequest {
        delivery_stream_name: input.delivery_stream_name,
        current_version_id,
        destination_id: input.destination_id,
        update,
    })
}

/// The members of any channel request that name resources or set tags (every one optional,
/// of the same type as in the operation's own shape, so a body the operation reads this reads).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelPeek {
    pub channel_name: Option<String>,
    #[serde(rename = "ChannelARN")]
    pub channel_arn: Option<String>,
    pub stream_configuration_list: Option<Vec<StreamArnOnly>>,
    pub stream_filter: Option<Vec<StreamArnOnly>>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamArnOnly {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
}

/// The resource-naming members of a channel body; `None` when it cannot be read.
pub fn channel_peek(body: &[u8]) -> Option<ChannelPeek> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_as_aws_checks_them() {
        assert_eq!(name(br#"{"DeliveryStreamName": "a.b-c_1"}"#), Ok("a.b-c_1".to_string()));
        assert_eq!(name(b"").unwrap_err().exception, "ValidationException");
        assert_eq!(name(br#"{"DeliveryStreamName": "a b"}"#).unwrap_err().exception, "ValidationException");
        assert_eq!(name(br#"{"DeliveryStreamName": 1}"#).unwrap_err().exception, "SerializationException");
        assert_eq!(list(br#"{"Limit": 0}"#).unwrap_err().exception, "ValidationException");
        assert_eq!(list(b"{}").unwrap().limit, FIREHOSE_LIST_DEFAULT);
        let (stream, data) = put_record(br#"{"DeliveryStreamName": "s", "Record": {"Data": "aGk="}}"#).unwrap();
        assert_eq!((stream.as_str(), &data[..]), ("s", &b"hi"[..]));
        let bad = put_record(br#"{"DeliveryStreamName": "s", "Record": {"Data": "!"}}"#).unwrap_err();
        assert_eq!(bad.exception, "SerializationException");
        let empty = put_record_batch(br#"{"DeliveryStreamName": "s", "Records": []}"#).unwrap_err();
        assert_eq!(empty.exception, "ValidationException");
        assert!(channel_peek(b"[]").is_none());
        let update = update_destination(
            br#"{"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "3", "DestinationId": "destinationId-000000000001",
                 "ExtendedS3DestinationUpdate": {"Prefix": "new/"}}"#,
        )
        .unwrap();
        assert_eq!(update.current_version_id, 3);
        assert_eq!(update.update.unwrap().0, DestinationKind::S3 { extended: true });
        let redshift = br#"{"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "1", "DestinationId": "d",
                            "RedshiftDestinationUpdate": {}}"#;
        assert_eq!(update_destination(redshift).unwrap_err().exception, "InvalidArgumentException");
        let bad_version =
            br#"{"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "x", "DestinationId": "d"}"#;
        assert_eq!(update_destination(bad_version).unwrap_err().exception, "ValidationException");
        assert_eq!(channel_peek(br#"{"ChannelARN": "x"}"#).unwrap().channel_arn.as_deref(), Some("x"));
    }
}
