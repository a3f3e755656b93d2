//! The request bodies of the Firehose operations, and the members of channel bodies that name
//! resources, decoded from untrusted bytes and checked as AWS checks them, with no runtime and
//! nothing of the daemon: `ops::firehose_calls` runs what these answer (for the HTTP API in
//! `net::http::firehose` and the native protocol in `net::native_firehose`), and
//! `net::http::channel_access` reads the channel members. `fuzz/fuzz_targets/firehose_bodies.rs`
//! compiles this file in and feeds it arbitrary bodies (it reads only `crate::limits`).
//!
//! The checks take the decoded values ([`checked_name`], [`checked_list`], [`checked_record`],
//! [`checked_batch`], …), so the native protocol, which brings the same values without JSON,
//! is held to exactly the same bounds and answered with the same errors. CreateDeliveryStream
//! and UpdateDestination come as AWS JSON on both protocols and are decoded here for both.
//!
//! A required member that is absent is AWS's ValidationException (`Member must not be null`);
//! any other decoding failure (a wrong type, not JSON) is a SerializationException, as the
//! Kinesis codec answers.

use crate::limits::{
    FIREHOSE_LIST_DEFAULT, FIREHOSE_LIST_MAX, FIREHOSE_LIST_TAGS_MAX, FIREHOSE_PUT_BATCH_BYTES_MAX,
    FIREHOSE_PUT_BATCH_RECORDS_MAX, FIREHOSE_RECORD_BYTES_MAX, FIREHOSE_TAGS_MAX, FIREHOSE_TAG_KEY_CHARS_MAX,
    FIREHOSE_TAG_VALUE_CHARS_MAX,
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
    checked_name(input.delivery_stream_name)
}

/// A delivery stream's name, once [`check_name`] accepts it.
pub fn checked_name(name: String) -> Result<String, BodyError> {
    check_name(&name)?;
    Ok(name)
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
    checked_list(input.limit, input.delivery_stream_type, input.exclusive_start_delivery_stream_name)
}

/// ListDeliveryStreams' members, checked: `Limit` 1–[`FIREHOSE_LIST_MAX`] (default
/// [`FIREHOSE_LIST_DEFAULT`]).
pub fn checked_list(
    limit: Option<i64>,
    delivery_stream_type: Option<String>,
    exclusive_start_delivery_stream_name: Option<String>,
) -> Result<ListRequest, BodyError> {
    let limit = match limit {
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
    Ok(ListRequest { limit, delivery_stream_type, exclusive_start_delivery_stream_name })
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
    check_record(&data, member)?;
    Ok(Bytes::from(data))
}

/// A record's data within [`FIREHOSE_RECORD_BYTES_MAX`]; `member` is where it is in the
/// request.
fn check_record(data: &[u8], member: &str) -> Result<(), BodyError> {
    if data.len() > FIREHOSE_RECORD_BYTES_MAX {
        return Err(violation(
            "java.nio.HeapByteBuffer",
            member,
            &format!("Member must have length less than or equal to {FIREHOSE_RECORD_BYTES_MAX}"),
        ));
    }
    Ok(())
}

/// PutRecord's body: the delivery stream's name and the record's data.
pub fn put_record(body: &[u8]) -> Result<(String, Bytes), BodyError> {
    let input: PutRecordInput = decode(body)?;
    check_name(&input.delivery_stream_name)?;
    let data = record_data(&input.record, "record.data")?;
    Ok((input.delivery_stream_name, data))
}

/// PutRecord's members, checked as [`put_record`] checks them.
pub fn checked_record(name: String, data: Bytes) -> Result<(String, Bytes), BodyError> {
    check_name(&name)?;
    check_record(&data, "record.data")?;
    Ok((name, data))
}

/// PutRecordBatch's record count within 1–[`FIREHOSE_PUT_BATCH_RECORDS_MAX`].
fn check_batch_count(count: usize) -> Result<(), BodyError> {
    if count == 0 || count > FIREHOSE_PUT_BATCH_RECORDS_MAX {
        return Err(violation(
            &format!("{count} records"),
            "records",
            &format!(
                "Member must have length less than or equal to {FIREHOSE_PUT_BATCH_RECORDS_MAX} and greater than or equal to 1"
            ),
        ));
    }
    Ok(())
}

/// PutRecordBatch's body: the delivery stream's name and 1–500 records of at most 4 MiB in all.
pub fn put_record_batch(body: &[u8]) -> Result<(String, Vec<Bytes>), BodyError> {
    let input: PutRecordBatchInput = decode(body)?;
    check_name(&input.delivery_stream_name)?;
    check_batch_count(input.records.len())?;
    let data = input
        .records
        .iter()
        .enumerate()
        .map(|(i, record)| record_data(record, &format!("records.{}.member.data", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    check_batch_bytes(&data)?;
    Ok((input.delivery_stream_name, data))
}

/// PutRecordBatch's members, checked as [`put_record_batch`] checks them, in the same order
/// (so the same bad request gets the same error on both protocols).
pub fn checked_batch(name: String, records: Vec<Bytes>) -> Result<(String, Vec<Bytes>), BodyError> {
    check_name(&name)?;
    check_batch_count(records.len())?;
    for (i, data) in records.iter().enumerate() {
        check_record(data, &format!("records.{}.member.data", i + 1))?;
    }
    check_batch_bytes(&records)?;
    Ok((name, records))
}

/// A batch's records within [`FIREHOSE_PUT_BATCH_BYTES_MAX`] in all.
fn check_batch_bytes(data: &[Bytes]) -> Result<(), BodyError> {
    let total: usize = data.iter().map(Bytes::len).sum();
    if total > FIREHOSE_PUT_BATCH_BYTES_MAX {
        return Err(BodyError::new(
            "InvalidArgumentException",
            format!(
                "Records size {total} bytes exceeds the limit of {FIREHOSE_PUT_BATCH_BYTES_MAX} bytes per PutRecordBatch"
            ),
        ));
    }
    Ok(())
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

/// The model's `TagKey` pattern, as AWS quotes it in a ValidationException.
const TAG_KEY_PATTERN: &str = r"^(?!aws:)[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$";
/// The model's `TagValue` pattern.
const TAG_VALUE_PATTERN: &str = r"^[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$";

/// Whether `c` is in the tag patterns' class `[\p{L}\p{Z}\p{N}_.:\/=+\-@%]`: a letter, a
/// separator (Unicode's Zs, Zl, Zp: spaces, not tabs or newlines), a number, or one of the
/// listed signs.
fn is_tag_char(c: char) -> bool {
    let separator = matches!(
        c,
        ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    );
    c.is_alphabetic() || c.is_numeric() || separator || "_.:/=+-@%".contains(c)
}

/// A tag key as the model's `TagKey` allows it (1–128 characters of the pattern, not starting
/// with `aws:`, which AWS reserves); `member` is where it is in the request.
fn check_tag_key(key: &str, member: &str) -> Result<(), BodyError> {
    let chars = key.chars().count();
    if chars == 0 || chars > FIREHOSE_TAG_KEY_CHARS_MAX {
        return Err(violation(
            key,
            member,
            &format!("Member must have length less than or equal to {FIREHOSE_TAG_KEY_CHARS_MAX} and greater than or equal to 1"),
        ));
    }
    if key.starts_with("aws:") || !key.chars().all(is_tag_char) {
        return Err(violation(
            key,
            member,
            &format!("Member must satisfy regular expression pattern: {TAG_KEY_PATTERN}"),
        ));
    }
    Ok(())
}

/// A tag value as the model's `TagValue` allows it (0–256 characters of the pattern).
fn check_tag_value(value: &str, member: &str) -> Result<(), BodyError> {
    if value.chars().count() > FIREHOSE_TAG_VALUE_CHARS_MAX {
        return Err(violation(
            value,
            member,
            &format!("Member must have length less than or equal to {FIREHOSE_TAG_VALUE_CHARS_MAX}"),
        ));
    }
    if !value.chars().all(is_tag_char) {
        return Err(violation(
            value,
            member,
            &format!("Member must satisfy regular expression pattern: {TAG_VALUE_PATTERN}"),
        ));
    }
    Ok(())
}

/// A list member's count within the model's 1–[`FIREHOSE_TAGS_MAX`].
fn check_tag_count(count: usize, member: &str) -> Result<(), BodyError> {
    if count == 0 || count > FIREHOSE_TAGS_MAX {
        return Err(violation(
            &format!("{count} items"),
            member,
            &format!(
                "Member must have length less than or equal to {FIREHOSE_TAGS_MAX} and greater than or equal to 1"
            ),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagInput {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagDeliveryStreamInput {
    delivery_stream_name: String,
    tags: Vec<TagInput>,
}

/// TagDeliveryStream, checked: the delivery stream and its new tags (key, value; an absent
/// `Value` is kept absent, as AWS lists it), in the request's order.
#[derive(Debug, PartialEq, Eq)]
pub struct TagRequest {
    pub delivery_stream_name: String,
    pub tags: Vec<(String, Option<String>)>,
}

pub fn tag_delivery_stream(body: &[u8]) -> Result<TagRequest, BodyError> {
    let input: TagDeliveryStreamInput = decode(body)?;
    let tags = input.tags.into_iter().map(|tag| (tag.key, tag.value)).collect();
    checked_tags(input.delivery_stream_name, tags)
}

/// TagDeliveryStream's members, checked as [`tag_delivery_stream`] checks them.
pub fn checked_tags(name: String, tags: Vec<(String, Option<String>)>) -> Result<TagRequest, BodyError> {
    check_name(&name)?;
    check_tag_count(tags.len(), "tags")?;
    for (i, (key, value)) in tags.iter().enumerate() {
        check_tag_key(key, &format!("tags.{}.member.key", i + 1))?;
        if let Some(value) = value {
            check_tag_value(value, &format!("tags.{}.member.value", i + 1))?;
        }
    }
    Ok(TagRequest { delivery_stream_name: name, tags })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UntagDeliveryStreamInput {
    delivery_stream_name: String,
    tag_keys: Vec<String>,
}

/// UntagDeliveryStream, checked: the delivery stream and the 1–50 keys to remove.
pub fn untag_delivery_stream(body: &[u8]) -> Result<(String, Vec<String>), BodyError> {
    let input: UntagDeliveryStreamInput = decode(body)?;
    checked_untag(input.delivery_stream_name, input.tag_keys)
}

/// UntagDeliveryStream's members, checked as [`untag_delivery_stream`] checks them.
pub fn checked_untag(name: String, keys: Vec<String>) -> Result<(String, Vec<String>), BodyError> {
    check_name(&name)?;
    check_tag_count(keys.len(), "tagKeys")?;
    for (i, key) in keys.iter().enumerate() {
        check_tag_key(key, &format!("tagKeys.{}.member", i + 1))?;
    }
    Ok((name, keys))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTagsInput {
    delivery_stream_name: String,
    exclusive_start_tag_key: Option<String>,
    limit: Option<i64>,
}

/// ListTagsForDeliveryStream, checked.
#[derive(Debug, PartialEq, Eq)]
pub struct ListTagsRequest {
    pub delivery_stream_name: String,
    pub exclusive_start_tag_key: Option<String>,
    /// 1–[`FIREHOSE_LIST_TAGS_MAX`].
    pub limit: usize,
}

pub fn list_tags(body: &[u8]) -> Result<ListTagsRequest, BodyError> {
    let input: ListTagsInput = decode(body)?;
    checked_list_tags(input.delivery_stream_name, input.exclusive_start_tag_key, input.limit)
}

/// ListTagsForDeliveryStream's members, checked as [`list_tags`] checks them.
pub fn checked_list_tags(
    delivery_stream_name: String,
    exclusive_start_tag_key: Option<String>,
    limit: Option<i64>,
) -> Result<ListTagsRequest, BodyError> {
    check_name(&delivery_stream_name)?;
    if let Some(key) = &exclusive_start_tag_key {
        check_tag_key(key, "exclusiveStartTagKey")?;
    }
    let limit = match limit {
        None => FIREHOSE_LIST_TAGS_MAX,
        Some(limit) if (1..=FIREHOSE_LIST_TAGS_MAX as i64).contains(&limit) => limit as usize,
        Some(limit) => {
            return Err(violation(
                &limit.to_string(),
                "limit",
                &format!(
                "Member must have value less than or equal to {FIREHOSE_LIST_TAGS_MAX} and greater than or equal to 1"
            ),
            ))
        }
    };
    Ok(ListTagsRequest { delivery_stream_name, exclusive_start_tag_key, limit })
}

/// `KeyType` of `DeliveryStreamEncryptionConfigurationInput`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    AwsOwnedCmk,
    CustomerManagedCmk,
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::AwsOwnedCmk => "AWS_OWNED_CMK",
            KeyType::CustomerManagedCmk => "CUSTOMER_MANAGED_CMK",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptionConfigurationInput {
    #[serde(rename = "KeyARN")]
    key_arn: Option<String>,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartEncryptionInput {
    delivery_stream_name: String,
    delivery_stream_encryption_configuration_input: Option<EncryptionConfigurationInput>,
}

/// StartDeliveryStreamEncryption, checked: the delivery stream, the key type (AWS_OWNED_CMK
/// when the configuration is absent, as AWS defaults it) and, for a customer managed key, its
/// ARN (AWS requires it then and refuses it otherwise: InvalidArgumentException).
#[derive(Debug, PartialEq, Eq)]
pub struct StartEncryptionRequest {
    pub delivery_stream_name: String,
    pub key_type: KeyType,
    pub key_arn: Option<String>,
}

/// The model's `AWSKMSKeyARNForSSE` bounds (1–512 characters, `arn:…:kms:…`).
fn check_key_arn(arn: &str) -> Result<(), BodyError> {
    const PATTERN: &str = r"arn:.*:kms:[a-zA-Z0-9\-]+:\d{12}:(key|alias)/[a-zA-Z_0-9+=,.@\-_/]+";
    let shaped = || {
        let (_, rest) = arn.strip_prefix("arn:")?.split_once(":kms:")?;
        let (region, rest) = rest.split_once(':')?;
        let (account, resource) = rest.split_once(':')?;
        let name = resource.strip_prefix("key/").or_else(|| resource.strip_prefix("alias/"))?;
        let ok = !region.is_empty()
            && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-/".contains(&b));
        ok.then_some(())
    };
    if arn.is_empty() || arn.chars().count() > 512 {
        return Err(violation(
            arn,
            "deliveryStreamEncryptionConfigurationInput.keyARN",
            "Member must have length less than or equal to 512 and greater than or equal to 1",
        ));
    }
    if shaped().is_none() {
        return Err(violation(
            arn,
            "deliveryStreamEncryptionConfigurationInput.keyARN",
            &format!("Member must satisfy regular expression pattern: {PATTERN}"),
        ));
    }
    Ok(())
}

pub fn start_encryption(body: &[u8]) -> Result<StartEncryptionRequest, BodyError> {
    let input: StartEncryptionInput = decode(body)?;
    let configuration = input
        .delivery_stream_encryption_configuration_input
        .map(|configuration| (configuration.key_type, configuration.key_arn));
    checked_start_encryption(input.delivery_stream_name, configuration)
}

/// StartDeliveryStreamEncryption's members, checked as [`start_encryption`] checks them:
/// `configuration` is `DeliveryStreamEncryptionConfigurationInput`'s `KeyType` and `KeyARN`.
pub fn checked_start_encryption(
    delivery_stream_name: String,
    configuration: Option<(String, Option<String>)>,
) -> Result<StartEncryptionRequest, BodyError> {
    check_name(&delivery_stream_name)?;
    let (key_type, key_arn) = match configuration {
        None => (KeyType::AwsOwnedCmk, None),
        Some((configured_type, configured_arn)) => {
            let key_type = match configured_type.as_str() {
                "AWS_OWNED_CMK" => KeyType::AwsOwnedCmk,
                "CUSTOMER_MANAGED_CMK" => KeyType::CustomerManagedCmk,
                other => {
                    return Err(violation(
                        other,
                        "deliveryStreamEncryptionConfigurationInput.keyType",
                        "Member must satisfy enum value set: [AWS_OWNED_CMK, CUSTOMER_MANAGED_CMK]",
                    ))
                }
            };
            if let Some(arn) = &configured_arn {
                check_key_arn(arn)?;
            }
            match (key_type, &configured_arn) {
                (KeyType::AwsOwnedCmk, Some(_)) => {
                    return Err(BodyError::new(
                        "InvalidArgumentException",
                        "KeyARN must not be specified when KeyType is AWS_OWNED_CMK.",
                    ))
                }
                (KeyType::CustomerManagedCmk, None) => {
                    return Err(BodyError::new(
                        "InvalidArgumentException",
                        "KeyARN must be specified when KeyType is CUSTOMER_MANAGED_CMK.",
                    ))
                }
                _ => {}
            }
            (key_type, configured_arn)
        }
    };
    Ok(StartEncryptionRequest { delivery_stream_name, key_type, key_arn })
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

    #[test]
    fn tag_bodies_keep_the_models_bounds() {
        let tag = tag_delivery_stream(
            br#"{"DeliveryStreamName": "s", "Tags": [{"Key": "team x:/=+-@%_.", "Value": "web"}, {"Key": "k"}]}"#,
        )
        .unwrap();
        assert_eq!(tag.tags, vec![("team x:/=+-@%_.".to_string(), Some("web".to_string())), ("k".to_string(), None)]);
        let refused = |body: &[u8]| tag_delivery_stream(body).unwrap_err();
        assert_eq!(refused(br#"{"DeliveryStreamName": "s", "Tags": []}"#).exception, "ValidationException");
        assert_eq!(refused(br#"{"DeliveryStreamName": "s"}"#).exception, "ValidationException");
        let reserved = refused(br#"{"DeliveryStreamName": "s", "Tags": [{"Key": "aws:x"}]}"#);
        assert!(reserved.message.contains("'tags.1.member.key'"), "{}", reserved.message);
        assert_eq!(
            refused(br#"{"DeliveryStreamName": "s", "Tags": [{"Key": "a\nb"}]}"#).exception,
            "ValidationException"
        );
        assert_eq!(
            refused(br#"{"DeliveryStreamName": "s", "Tags": [{"Key": "k", "Value": "a*b"}]}"#).exception,
            "ValidationException"
        );
        let long_key = format!(r#"{{"DeliveryStreamName": "s", "Tags": [{{"Key": "{}"}}]}}"#, "é".repeat(129));
        assert_eq!(refused(long_key.as_bytes()).exception, "ValidationException");
        let max_key = format!(
            r#"{{"DeliveryStreamName": "s", "Tags": [{{"Key": "{}", "Value": "{}"}}]}}"#,
            "é".repeat(128),
            "v".repeat(256)
        );
        assert!(tag_delivery_stream(max_key.as_bytes()).is_ok());
        let many: Vec<String> = (0..51).map(|i| format!(r#"{{"Key": "k{i}"}}"#)).collect();
        let many = format!(r#"{{"DeliveryStreamName": "s", "Tags": [{}]}}"#, many.join(","));
        assert_eq!(refused(many.as_bytes()).exception, "ValidationException");

        let (name, keys) = untag_delivery_stream(br#"{"DeliveryStreamName": "s", "TagKeys": ["a", "b"]}"#).unwrap();
        assert_eq!((name.as_str(), keys.len()), ("s", 2));
        assert!(untag_delivery_stream(br#"{"DeliveryStreamName": "s", "TagKeys": []}"#).is_err());
        assert!(untag_delivery_stream(br#"{"DeliveryStreamName": "s", "TagKeys": [""]}"#).is_err());

        assert_eq!(list_tags(br#"{"DeliveryStreamName": "s"}"#).unwrap().limit, FIREHOSE_LIST_TAGS_MAX);
        assert_eq!(
            list_tags(br#"{"DeliveryStreamName": "s", "Limit": 51}"#).unwrap_err().exception,
            "ValidationException"
        );
        assert_eq!(
            list_tags(br#"{"DeliveryStreamName": "s", "Limit": 0}"#).unwrap_err().exception,
            "ValidationException"
        );
        let page = list_tags(br#"{"DeliveryStreamName": "s", "Limit": 2, "ExclusiveStartTagKey": "a"}"#).unwrap();
        assert_eq!((page.limit, page.exclusive_start_tag_key.as_deref()), (2, Some("a")));
    }

    #[test]
    fn encryption_bodies_pair_the_key_type_with_its_arn() {
        let start = start_encryption(br#"{"DeliveryStreamName": "s"}"#).unwrap();
        assert_eq!((start.key_type, start.key_arn), (KeyType::AwsOwnedCmk, None));
        let arn = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let body = format!(
            r#"{{"DeliveryStreamName": "s", "DeliveryStreamEncryptionConfigurationInput": {{"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": "{arn}"}}}}"#
        );
        let start = start_encryption(body.as_bytes()).unwrap();
        assert_eq!((start.key_type, start.key_arn.as_deref()), (KeyType::CustomerManagedCmk, Some(arn)));
        let refused = |body: &str| start_encryption(body.as_bytes()).unwrap_err().exception;
        assert_eq!(
            refused(
                r#"{"DeliveryStreamName": "s", "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "CUSTOMER_MANAGED_CMK"}}"#
            ),
            "InvalidArgumentException"
        );
        assert_eq!(refused(&body.replace("CUSTOMER_MANAGED_CMK", "AWS_OWNED_CMK")), "InvalidArgumentException");
        assert_eq!(refused(&body.replace("CUSTOMER_MANAGED_CMK", "OTHER")), "ValidationException");
        assert_eq!(refused(&body.replace(":key/", ":nokey/")), "ValidationException");
        assert_eq!(
            refused(r#"{"DeliveryStreamName": "s", "DeliveryStreamEncryptionConfigurationInput": {}}"#),
            "ValidationException"
        );
    }
}
