//! Firehose over HTTP (`X-Amz-Target: Firehose_20150804.<Operation>`, AWS JSON 1.1): each
//! operation's body decoded with serde into botocore's member names, run by
//! `ops::firehose`, and answered with AWS's shapes and error types.
//!
//! Served: CreateDeliveryStream, DescribeDeliveryStream, ListDeliveryStreams,
//! DeleteDeliveryStream, PutRecord, PutRecordBatch, UpdateDestination, TagDeliveryStream,
//! UntagDeliveryStream, ListTagsForDeliveryStream, StartDeliveryStreamEncryption,
//! StopDeliveryStreamEncryption.
//!
//! With `--credentials`, every call is authorized for its caller once its body is decoded:
//! `firehose:<Operation>` on the delivery stream's ARN
//! (`arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME`; ListDeliveryStreams on `*`), and
//! CreateDeliveryStream with `Tags` also `firehose:TagDeliveryStream`, as AWS does. A refusal is
//! AccessDeniedException with IAM's message. Calls of an authenticated caller are audited
//! (`--audit-dir`) with record data and endpoint access keys hidden.
// Unfinished: the native protocol's Firehose operations (the `sluice` CLI's go over this port:
// `client/src/cli/firehose.rs`); CreateDeliveryStream's
// `DeliveryStreamEncryptionConfigurationInput` (refused as unsupported: start encryption
// after creating).
// The bodies are decoded and checked in `firehose_bodies` (fuzzed by
// `fuzz/fuzz_targets/firehose_bodies.rs`, with `CreateDeliveryStreamInput`'s decoder).

use crate::net::http::firehose_bodies::{self as bodies, BodyError};
use crate::net::http::{document, Body, Refusal};
use crate::ops::audit;
use crate::ops::auth::{self, Caller};
use crate::ops::firehose::{Definition, EncryptionStatus, Firehose, FirehoseError, DESTINATION_ID};
use crate::ops::node::Node;
use http::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use sluice_firehose::config::{CreateDeliveryStreamInput, Tag};
use std::rc::Rc;

/// The target prefix of the Firehose API.
pub const TARGET_PREFIX: &str = "Firehose_20150804.";

/// The operations this port serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
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

impl Operation {
    pub fn from_name(name: &str) -> Option<Operation> {
        Some(match name {
            "CreateDeliveryStream" => Operation::CreateDeliveryStream,
            "DeleteDeliveryStream" => Operation::DeleteDeliveryStream,
            "DescribeDeliveryStream" => Operation::DescribeDeliveryStream,
            "ListDeliveryStreams" => Operation::ListDeliveryStreams,
            "PutRecord" => Operation::PutRecord,
            "PutRecordBatch" => Operation::PutRecordBatch,
            "UpdateDestination" => Operation::UpdateDestination,
            "TagDeliveryStream" => Operation::TagDeliveryStream,
            "UntagDeliveryStream" => Operation::UntagDeliveryStream,
            "ListTagsForDeliveryStream" => Operation::ListTagsForDeliveryStream,
            "StartDeliveryStreamEncryption" => Operation::StartDeliveryStreamEncryption,
            "StopDeliveryStreamEncryption" => Operation::StopDeliveryStreamEncryption,
            _ => return None,
        })
    }

    /// The operation's name, as in its `X-Amz-Target`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateDeliveryStream => "CreateDeliveryStream",
            Operation::DeleteDeliveryStream => "DeleteDeliveryStream",
            Operation::DescribeDeliveryStream => "DescribeDeliveryStream",
            Operation::ListDeliveryStreams => "ListDeliveryStreams",
            Operation::PutRecord => "PutRecord",
            Operation::PutRecordBatch => "PutRecordBatch",
            Operation::UpdateDestination => "UpdateDestination",
            Operation::TagDeliveryStream => "TagDeliveryStream",
            Operation::UntagDeliveryStream => "UntagDeliveryStream",
            Operation::ListTagsForDeliveryStream => "ListTagsForDeliveryStream",
            Operation::StartDeliveryStreamEncryption => "StartDeliveryStreamEncryption",
            Operation::StopDeliveryStreamEncryption => "StopDeliveryStreamEncryption",
        }
    }

    /// The IAM action that authorizes it: `firehose:<Operation>`.
    pub fn iam_action(self) -> &'static str {
        match self {
            Operation::CreateDeliveryStream => "firehose:CreateDeliveryStream",
            Operation::DeleteDeliveryStream => "firehose:DeleteDeliveryStream",
            Operation::DescribeDeliveryStream => "firehose:DescribeDeliveryStream",
            Operation::ListDeliveryStreams => "firehose:ListDeliveryStreams",
            Operation::PutRecord => "firehose:PutRecord",
            Operation::PutRecordBatch => "firehose:PutRecordBatch",
            Operation::UpdateDestination => "firehose:UpdateDestination",
            Operation::TagDeliveryStream => TAG_ACTION,
            Operation::UntagDeliveryStream => "firehose:UntagDeliveryStream",
            Operation::ListTagsForDeliveryStream => "firehose:ListTagsForDeliveryStream",
            Operation::StartDeliveryStreamEncryption => "firehose:StartDeliveryStreamEncryption",
            Operation::StopDeliveryStreamEncryption => "firehose:StopDeliveryStreamEncryption",
        }
    }
}

/// The IAM action of tagging a delivery stream, which CreateDeliveryStream with `Tags` needs too.
const TAG_ACTION: &str = "firehose:TagDeliveryStream";

/// A refusal of the authorizer as Firehose answers it (AccessDeniedException, or
/// UnrecognizedClientException for a key removed since the connection authenticated).
fn refused(error: sluice_model::KinesisError) -> FirehoseError {
    FirehoseError::new(error.kind.exception_name(), error.message)
}

/// Checks `caller` for `action` on the delivery stream `name` (`*` when `None`).
fn authorize(
    node: &Node,
    caller: &Caller,
    firehose: &Firehose,
    action: &str,
    name: Option<&str>,
    tags: &[Tag],
) -> Result<(), FirehoseError> {
    let resources: Vec<String> = name.map(|name| firehose.arn(name)).into_iter().collect();
    let tags = tags.iter().map(|tag| (tag.key.as_str(), tag.value.as_deref().unwrap_or("")));
    auth::authorize_arns(node, caller, action, &resources, tags).map_err(refused)
}

/// Answers one Firehose call for `caller` (authorized in [`answer`]) and records it in the
/// audit log.
pub async fn respond(
    node: &Rc<Node>,
    caller: &Caller,
    firehose: &Firehose,
    operation: Operation,
    body: &[u8],
) -> Result<Response<Body>, Refusal> {
    let answer = answer(node, caller, firehose, operation, body).await;
    if audit::records(node, caller) {
        let parameters = serde_json::from_slice(body).unwrap_or(Value::Null);
        let outcome = answer.as_ref().map(|_| ()).map_err(|error| (error.exception, error.message.as_str()));
        audit::record_firehose_call(node, caller, operation.name(), parameters, outcome);
    }
    json_answer(answer)
}

impl From<FirehoseError> for Refusal {
    fn from(error: FirehoseError) -> Refusal {
        Refusal {
            status: StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
            exception: error.exception,
            message: error.message,
        }
    }
}

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

impl From<BodyError> for FirehoseError {
    fn from(error: BodyError) -> FirehoseError {
        FirehoseError::new(error.exception, error.message)
    }
}

/// The body as `T` ([`bodies::decode`]), for the channel operations.
pub(super) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FirehoseError> {
    Ok(bodies::decode(body)?)
}

/// AWS's ValidationException for one member ([`bodies::violation`]).
pub(super) fn violation(value: &str, member: &str, constraint: &str) -> FirehoseError {
    bodies::violation(value, member, constraint).into()
}

/// The answer of a Firehose or channel call as the JSON document AWS sends, or its error.
pub fn json_answer(answer: Result<Value, FirehoseError>) -> Result<Response<Body>, Refusal> {
    Ok(document(StatusCode::OK, CONTENT_TYPE, serde_json::to_vec(&answer?).expect("JSON values serialize")))
}

/// Answers one Firehose call whose body has been read, once `caller` is authorized for it.
pub async fn answer(
    node: &Rc<Node>,
    caller: &Caller,
    firehose: &Firehose,
    operation: Operation,
    body: &[u8],
) -> Result<Value, FirehoseError> {
    match operation {
        Operation::CreateDeliveryStream => {
            let input: CreateDeliveryStreamInput = decode(body)?;
            let name = Some(input.delivery_stream_name.as_str());
            let tags = input.tags.as_deref().unwrap_or(&[]);
            authorize(node, caller, firehose, operation.iam_action(), name, tags)?;
            if let Some(tags) = input.tags.as_deref().filter(|tags| !tags.is_empty()) {
                authorize(node, caller, firehose, TAG_ACTION, name, tags)?;
            }
            let arn = firehose.create(node, input).await?;
            Ok(json!({ "DeliveryStreamARN": arn }))
        }
        Operation::DeleteDeliveryStream => {
            let name = bodies::name(body)?;
            authorize(node, caller, firehose, operation.iam_action(), Some(&name), &[])?;
            firehose.delete(node, &name).await?;
            Ok(json!({}))
        }
        Operation::DescribeDeliveryStream => {
            let name = bodies::name(body)?;
            authorize(node, caller, firehose, operation.iam_action(), Some(&name), &[])?;
            let definition = firehose.definition(&name)?;
            let status = firehose.encryption_status(node, &definition);
            Ok(json!({ "DeliveryStreamDescription": description(firehose, &definition, status) }))
        }
        Operation::ListDeliveryStreams => {
            let input = bodies::list(body)?;
            authorize(node, caller, firehose, operation.iam_action(), None, &[])?;
            let limit = input.limit;
            let names = firehose.names(input.delivery_stream_type.as_deref());
            let start = match &input.exclusive_start_delivery_stream_name {
                Some(after) => names.partition_point(|name| name.as_str() <= after.as_str()),
                None => 0,
            };
            let page: Vec<&String> = names[start..].iter().take(limit).collect();
            let more = start + page.len() < names.len();
            Ok(json!({ "DeliveryStreamNames": page, "HasMoreDeliveryStreams": more }))
        }
        Operation::UpdateDestination => {
            let request = bodies::update_destination(body)?;
            let name = request.delivery_stream_name;
            authorize(node, caller, firehose, operation.iam_action(), Some(&name), &[])?;
            let update = request.update.map(|(kind, members)| (kind.configuration_member(), members));
            firehose
                .update_destination(&name, request.current_version_id, &request.destination_id, update, node.now_ms())
                .await?;
            Ok(json!({}))
        }
        Operation::PutRecord => {
            let (name, data) = bodies::put_record(body)?;
            authorize(node, caller, firehose, operation.iam_action(), Some(&name), &[])?;
            let mut results = firehose.put(node, &name, vec![data]).await?;
            let encrypted = encrypted(node, firehose, &name);
            match results.pop().expect("one result per record") {
                Ok(id) => Ok(json!({ "RecordId": id, "Encrypted": encrypted })),
                Err((exception, message)) => Err(FirehoseError::new(exception, message)),
            }
        }
        Operation::PutRecordBatch => {
            let (name, data) = bodies::put_record_batch(body)?;
            authorize(node, caller, firehose, operation.iam_action(), Some(&name), &[])?;
            let results = firehose.put(node, &name, data).await?;
            let encrypted = encrypted(node, firehose, &name);
            let failed = results.iter().filter(|result| result.is_err()).count();
            let responses: Vec<Value> = results
                .into_iter()
                .map(|result| match result {
                    Ok(id) => json!({ "RecordId": id }),
                    Err((code, message)) => json!({ "ErrorCode": code, "ErrorMessage": message }),
                })
                .collect();
            Ok(json!({ "FailedPutCount": failed, "Encrypted": encrypted, "RequestResponses": responses }))
        }
        Operation::TagDeliveryStream => {
            let request = bodies::tag_delivery_stream(body)?;
            let name = request.delivery_stream_name;
            let tags: Vec<Tag> =
                request.tags.iter().map(|(key, value)| Tag { key: key.clone(), value: value.clone() }).collect();
            authorize(node, caller, firehose, operation.iam_action(), Some(&name), &tags)?;
            firehose.tag(&name, request.tags)?;
            Ok(json!({}))
        }
        Operation::UntagDeliveryStream => {
            let (name, keys) = bodies::untag_delivery_stream(body)?;
            authorize(node, caller, firehose, operation.iam_action(), Some(&name), &[])?;
            firehose.untag(&name, &keys)?;
            Ok(json!({}))
        }
        Operation::ListTagsForDeliveryStream => {
            let request = bodies::list_tags(body)?;
            let name = request.delivery_stream_name;
            authorize(node, caller, firehose, operation.iam_action(), Some(&name), &[])?;
            let (tags, more) = firehose.tags(&name, request.exclusive_start_tag_key.as_deref(), request.limit)?;
            Ok(json!({ "Tags": tags, "HasMoreTags": more }))
        }
        Operation::StartDeliveryStreamEncryption => {
            let request = bodies::start_encryption(body)?;
            let name = request.delivery_stream_name;
            authorize(node, caller, firehose, operation.iam_action(), Some(&name), &[])?;
            let principal_arn = caller.principal().map(|principal| principal.arn.clone());
            firehose
                .start_encryption(node, principal_arn.as_deref(), &name, request.key_type.name(), request.key_arn)
                .await?;
            Ok(json!({}))
        }
        Operation::StopDeliveryStreamEncryption => {
            let name = bodies::name(body)?;
            authorize(node, caller, firehose, operation.iam_action(), Some(&name), &[])?;
            firehose.stop_encryption(node, &name).await?;
            Ok(json!({}))
        }
    }
}

/// `DeliveryStreamDescription`: the stored configuration in the description's shapes (which
/// use the configuration's member names, with `…Description` for nested destinations).
fn description(firehose: &Firehose, definition: &Definition, encryption: EncryptionStatus) -> Value {
    let input = &definition.input;
    let name = &input.delivery_stream_name;
    let config = serde_json::to_value(input).expect("the configuration serializes");
    let created = definition.create_ms as f64 / 1000.0;
    let mut destination = json!({ "DestinationId": DESTINATION_ID });
    let renamed = |value: &Value, from: &str, to: &str| {
        let mut value = value.clone();
        if let Some(object) = value.as_object_mut() {
            if let Some(inner) = object.remove(from) {
                object.insert(to.to_string(), inner);
            }
        }
        value
    };
    if let Some(s3) = config.get("ExtendedS3DestinationConfiguration") {
        destination["ExtendedS3DestinationDescription"] = renamed(s3, "S3BackupConfiguration", "S3BackupDescription");
    }
    if let Some(s3) = config.get("S3DestinationConfiguration") {
        destination["S3DestinationDescription"] = s3.clone();
    }
    if let Some(http) = config.get("HttpEndpointDestinationConfiguration") {
        let mut http = renamed(http, "S3Configuration", "S3DestinationDescription");
        // The description never carries the endpoint's access key.
        if let Some(endpoint) = http.get_mut("EndpointConfiguration").and_then(Value::as_object_mut) {
            endpoint.remove("AccessKey");
        }
        destination["HttpEndpointDestinationDescription"] = http;
    }
    let mut description = json!({
        "DeliveryStreamName": name,
        "DeliveryStreamARN": firehose.arn(name),
        "DeliveryStreamStatus": "ACTIVE",
        "DeliveryStreamType": input.delivery_stream_type.as_deref().unwrap_or("DirectPut"),
        "VersionId": definition.version.to_string(),
        "CreateTimestamp": created,
        "DeliveryStreamEncryptionConfiguration": encryption_configuration(definition, encryption),
        "Destinations": [destination],
        "HasMoreDestinations": false,
    });
    if let Some(update_ms) = definition.update_ms {
        description["LastUpdateTimestamp"] = json!(update_ms as f64 / 1000.0);
    }
    if let Some(source) = &input.kinesis_stream_source_configuration {
        description["Source"] = json!({ "KinesisStreamSourceDescription": {
            "KinesisStreamARN": source.kinesis_stream_arn,
            "RoleARN": source.role_arn,
            "DeliveryStartTimestamp": created,
        }});
    }
    description
}

/// Whether the records of `name` are sealed at rest now (PutRecord(Batch)'s `Encrypted`).
fn encrypted(node: &Node, firehose: &Firehose, name: &str) -> bool {
    firehose.definition(name).is_ok_and(|definition| firehose.encryption_status(node, &definition).is_encrypting())
}

/// `DeliveryStreamEncryptionConfiguration`: the status, and while encrypting the key type and
/// the customer managed key's ARN.
fn encryption_configuration(definition: &Definition, status: EncryptionStatus) -> Value {
    let mut configuration = json!({ "Status": status.name() });
    if let (true, Some(key)) = (status.is_encrypting(), &definition.encryption) {
        configuration["KeyType"] = json!(key.key_type);
        if let Some(arn) = &key.key_arn {
            configuration["KeyARN"] = json!(arn);
        }
    }
    configuration
}
