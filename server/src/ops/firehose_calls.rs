//! The Firehose operations (`Firehose_20150804`), authorized, run and audited: the one code
//! path behind both front ends, the HTTP API (`net::http::firehose`, AWS JSON 1.1) and the
//! native protocol (`net::native_firehose`, flatbuffers). Each front end turns its request
//! into a checked [`Call`] (with [`firehose_bodies`](super::firehose_bodies)' checks, the same
//! for both) and its [`Answer`] into its own encoding; everything between is here.
//!
//! With `--credentials`, every call is authorized for its caller: `firehose:<Operation>` on
//! the delivery stream's ARN (`arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME`;
//! ListDeliveryStreams on `*`), and CreateDeliveryStream with `Tags` also
//! `firehose:TagDeliveryStream`, as AWS does. A refusal is AccessDeniedException with IAM's
//! message. Calls of an authenticated caller are audited (`--audit-dir`, `eventSource`
//! `firehose.amazonaws.com`) with record data and endpoint access keys hidden.

use crate::ops::audit;
use crate::ops::auth::{self, Caller};
use crate::ops::firehose::{
    refuse_on_replicated, Definition, EncryptionStatus, Firehose, FirehoseError, PutOutcome, DESTINATION_ID,
};
use crate::ops::firehose_bodies::{
    self as bodies, BodyError, ListRequest, ListTagsRequest, StartEncryptionRequest, TagRequest,
    UpdateDestinationRequest,
};
use crate::ops::node::Node;
use bytes::Bytes;
use serde_json::{json, Value};
use sluice_firehose::config::{CreateDeliveryStreamInput, Tag};
use sluice_model::FirehoseOperation as Operation;
use std::rc::Rc;

/// The IAM action of tagging a delivery stream, which CreateDeliveryStream with `Tags` needs too.
const TAG_ACTION: &str = "firehose:TagDeliveryStream";

impl From<BodyError> for FirehoseError {
    fn from(error: BodyError) -> FirehoseError {
        FirehoseError::new(error.exception, error.message)
    }
}

/// One Firehose call, decoded and checked by its front end.
#[derive(Debug)]
pub enum Call {
    CreateDeliveryStream(Box<CreateDeliveryStreamInput>),
    DeleteDeliveryStream { name: String },
    DescribeDeliveryStream { name: String },
    ListDeliveryStreams(ListRequest),
    UpdateDestination(UpdateDestinationRequest),
    PutRecord { name: String, data: Bytes },
    PutRecordBatch { name: String, records: Vec<Bytes> },
    TagDeliveryStream(TagRequest),
    UntagDeliveryStream { name: String, keys: Vec<String> },
    ListTagsForDeliveryStream(ListTagsRequest),
    StartDeliveryStreamEncryption(StartEncryptionRequest),
    StopDeliveryStreamEncryption { name: String },
}

impl Call {
    /// The operation of this call.
    pub fn operation(&self) -> Operation {
        match self {
            Call::CreateDeliveryStream(_) => Operation::CreateDeliveryStream,
            Call::DeleteDeliveryStream { .. } => Operation::DeleteDeliveryStream,
            Call::DescribeDeliveryStream { .. } => Operation::DescribeDeliveryStream,
            Call::ListDeliveryStreams(_) => Operation::ListDeliveryStreams,
            Call::UpdateDestination(_) => Operation::UpdateDestination,
            Call::PutRecord { .. } => Operation::PutRecord,
            Call::PutRecordBatch { .. } => Operation::PutRecordBatch,
            Call::TagDeliveryStream(_) => Operation::TagDeliveryStream,
            Call::UntagDeliveryStream { .. } => Operation::UntagDeliveryStream,
            Call::ListTagsForDeliveryStream(_) => Operation::ListTagsForDeliveryStream,
            Call::StartDeliveryStreamEncryption(_) => Operation::StartDeliveryStreamEncryption,
            Call::StopDeliveryStreamEncryption { .. } => Operation::StopDeliveryStreamEncryption,
        }
    }

    /// The call an AWS JSON body of `operation` holds, checked.
    pub fn from_json(operation: Operation, body: &[u8]) -> Result<Call, FirehoseError> {
        Ok(match operation {
            Operation::CreateDeliveryStream => Call::CreateDeliveryStream(Box::new(bodies::decode(body)?)),
            Operation::DeleteDeliveryStream => Call::DeleteDeliveryStream { name: bodies::name(body)? },
            Operation::DescribeDeliveryStream => Call::DescribeDeliveryStream { name: bodies::name(body)? },
            Operation::ListDeliveryStreams => Call::ListDeliveryStreams(bodies::list(body)?),
            Operation::UpdateDestination => Call::UpdateDestination(bodies::update_destination(body)?),
            Operation::PutRecord => {
                let (name, data) = bodies::put_record(body)?;
                Call::PutRecord { name, data }
            }
            Operation::PutRecordBatch => {
                let (name, records) = bodies::put_record_batch(body)?;
                Call::PutRecordBatch { name, records }
            }
            Operation::TagDeliveryStream => Call::TagDeliveryStream(bodies::tag_delivery_stream(body)?),
            Operation::UntagDeliveryStream => {
                let (name, keys) = bodies::untag_delivery_stream(body)?;
                Call::UntagDeliveryStream { name, keys }
            }
            Operation::ListTagsForDeliveryStream => Call::ListTagsForDeliveryStream(bodies::list_tags(body)?),
            Operation::StartDeliveryStreamEncryption => {
                Call::StartDeliveryStreamEncryption(bodies::start_encryption(body)?)
            }
            Operation::StopDeliveryStreamEncryption => Call::StopDeliveryStreamEncryption { name: bodies::name(body)? },
        })
    }
}

/// What a call answers, before its front end encodes it.
#[derive(Debug)]
pub enum Answer {
    /// CreateDeliveryStream: the new delivery stream's ARN.
    Created { arn: String },
    /// The calls that answer nothing (Delete, UpdateDestination, tags, encryption).
    Done,
    /// DescribeDeliveryStream: `DeliveryStreamDescription` in AWS's JSON shape.
    Description(Value),
    /// ListDeliveryStreams: a page of names, and whether more follow.
    Names { names: Vec<String>, more: bool },
    /// PutRecord: the record's id, and whether records are sealed at rest.
    Put { record_id: String, encrypted: bool },
    /// PutRecordBatch: each record's id or failure, in the request's order.
    Batch { outcomes: Vec<PutOutcome>, encrypted: bool },
    /// ListTagsForDeliveryStream: a page of tags, and whether more follow.
    Tags { tags: Vec<Tag>, more: bool },
}

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

/// Records a call of `operation` in the audit log (if `caller` is audited): `parameters` is
/// the request in AWS's JSON shape, built only when it is recorded.
pub fn audit(
    node: &Node,
    caller: &Caller,
    operation: Operation,
    parameters: impl FnOnce() -> Value,
    outcome: Result<(), &FirehoseError>,
) {
    if audit::records(node, caller) {
        let outcome = outcome.map_err(|error| (error.exception, error.message.as_str()));
        audit::record_firehose_call(node, caller, operation.name(), parameters(), outcome);
    }
}

/// Authorizes and runs one call for `caller`.
pub async fn call(node: &Rc<Node>, caller: &Caller, firehose: &Firehose, call: Call) -> Result<Answer, FirehoseError> {
    refuse_on_replicated(node, call.operation().name())?;
    match call {
        Call::CreateDeliveryStream(input) => {
            let operation = Operation::CreateDeliveryStream;
            let name = Some(input.delivery_stream_name.as_str());
            let tags = input.tags.as_deref().unwrap_or(&[]);
            authorize(node, caller, firehose, operation.iam_action(), name, tags)?;
            if let Some(tags) = input.tags.as_deref().filter(|tags| !tags.is_empty()) {
                authorize(node, caller, firehose, TAG_ACTION, name, tags)?;
            }
            let arn = firehose.create(node, *input).await?;
            Ok(Answer::Created { arn })
        }
        Call::DeleteDeliveryStream { name } => {
            authorize(node, caller, firehose, Operation::DeleteDeliveryStream.iam_action(), Some(&name), &[])?;
            firehose.delete(node, &name).await?;
            Ok(Answer::Done)
        }
        Call::DescribeDeliveryStream { name } => {
            authorize(node, caller, firehose, Operation::DescribeDeliveryStream.iam_action(), Some(&name), &[])?;
            let definition = firehose.definition(&name)?;
            let status = firehose.encryption_status(node, &definition);
            Ok(Answer::Description(description(firehose, &definition, status)))
        }
        Call::ListDeliveryStreams(input) => {
            authorize(node, caller, firehose, Operation::ListDeliveryStreams.iam_action(), None, &[])?;
            let names = firehose.names(input.delivery_stream_type.as_deref());
            let start = match &input.exclusive_start_delivery_stream_name {
                Some(after) => names.partition_point(|name| name.as_str() <= after.as_str()),
                None => 0,
            };
            let page: Vec<String> = names[start..].iter().take(input.limit).cloned().collect();
            let more = start + page.len() < names.len();
            Ok(Answer::Names { names: page, more })
        }
        Call::UpdateDestination(request) => {
            let name = request.delivery_stream_name;
            authorize(node, caller, firehose, Operation::UpdateDestination.iam_action(), Some(&name), &[])?;
            let update = request.update.map(|(kind, members)| (kind.configuration_member(), members));
            firehose
                .update_destination(&name, request.current_version_id, &request.destination_id, update, node.now_ms())
                .await?;
            Ok(Answer::Done)
        }
        Call::PutRecord { name, data } => {
            authorize(node, caller, firehose, Operation::PutRecord.iam_action(), Some(&name), &[])?;
            let mut results = firehose.put(node, &name, vec![data]).await?;
            let encrypted = encrypted(node, firehose, &name);
            match results.pop().expect("one result per record") {
                Ok(record_id) => Ok(Answer::Put { record_id, encrypted }),
                Err((exception, message)) => Err(FirehoseError::new(exception, message)),
            }
        }
        Call::PutRecordBatch { name, records } => {
            authorize(node, caller, firehose, Operation::PutRecordBatch.iam_action(), Some(&name), &[])?;
            let outcomes = firehose.put(node, &name, records).await?;
            let encrypted = encrypted(node, firehose, &name);
            Ok(Answer::Batch { outcomes, encrypted })
        }
        Call::TagDeliveryStream(request) => {
            let name = request.delivery_stream_name;
            let tags: Vec<Tag> =
                request.tags.iter().map(|(key, value)| Tag { key: key.clone(), value: value.clone() }).collect();
            authorize(node, caller, firehose, Operation::TagDeliveryStream.iam_action(), Some(&name), &tags)?;
            firehose.tag(&name, request.tags)?;
            Ok(Answer::Done)
        }
        Call::UntagDeliveryStream { name, keys } => {
            authorize(node, caller, firehose, Operation::UntagDeliveryStream.iam_action(), Some(&name), &[])?;
            firehose.untag(&name, &keys)?;
            Ok(Answer::Done)
        }
        Call::ListTagsForDeliveryStream(request) => {
            let name = request.delivery_stream_name;
            let action = Operation::ListTagsForDeliveryStream.iam_action();
            authorize(node, caller, firehose, action, Some(&name), &[])?;
            let (tags, more) = firehose.tags(&name, request.exclusive_start_tag_key.as_deref(), request.limit)?;
            Ok(Answer::Tags { tags, more })
        }
        Call::StartDeliveryStreamEncryption(request) => {
            let name = request.delivery_stream_name;
            let action = Operation::StartDeliveryStreamEncryption.iam_action();
            authorize(node, caller, firehose, action, Some(&name), &[])?;
            let principal_arn = caller.principal().map(|principal| principal.arn.clone());
            firehose
                .start_encryption(node, principal_arn.as_deref(), &name, request.key_type.name(), request.key_arn)
                .await?;
            Ok(Answer::Done)
        }
        Call::StopDeliveryStreamEncryption { name } => {
            let action = Operation::StopDeliveryStreamEncryption.iam_action();
            authorize(node, caller, firehose, action, Some(&name), &[])?;
            firehose.stop_encryption(node, &name).await?;
            Ok(Answer::Done)
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
