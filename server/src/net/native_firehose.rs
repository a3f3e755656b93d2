//! The Firehose operations on the native port: a decoded [`FirehoseRequest`] checked into an
//! `ops::firehose_calls::Call` with the checks the HTTP API runs on its JSON bodies
//! (`ops::firehose_bodies`), run by the same `ops::firehose_calls::call`, audited the same
//! way, and its answer turned into a [`FirehoseResponse`]. Only the encoding differs from the
//! HTTP API: record data arrives as raw bytes (slices of the frame), never base64 or JSON.
//!
//! Errors keep Firehose's exception names: each maps to the [`ErrorKind`] of the same name
//! (the native protocol carries it as a code), so a native caller reads the same
//! `ResourceNotFoundException` or `InvalidArgumentException` an HTTP caller does.

use crate::limits::{FIREHOSE_NATIVE_BATCH_ENTRY_ANSWER_BYTES, SMALL_RESPONSE_BYTES};
use crate::ops::auth::Caller;
use crate::ops::firehose::{Firehose, FirehoseError};
use crate::ops::firehose_bodies as bodies;
use crate::ops::firehose_calls::{self as calls, Answer, Call};
use crate::ops::node::Node;
use serde_json::{json, Value};
use sluice_model::{
    ErrorKind, FirehoseOperation, FirehoseRequest, FirehoseResponse, FirehoseTag, KinesisError, PutRecordBatchEntry,
};
use std::rc::Rc;

/// Answers one Firehose request of `caller` and records it in the audit log.
pub async fn answer(
    node: &Rc<Node>,
    caller: &Caller,
    firehose: &Firehose,
    request: FirehoseRequest,
) -> Result<FirehoseResponse, KinesisError> {
    let operation = request.operation();
    // Built before the request is consumed, and only if the call is audited.
    let parameters = crate::ops::audit::records(node, caller).then(|| parameters(&request));
    let answer = match call_of(request) {
        Ok(call) => calls::call(node, caller, firehose, call).await,
        Err(error) => Err(error),
    };
    calls::audit(node, caller, operation, || parameters.unwrap_or(Value::Null), answer.as_ref().map(|_| ()));
    answer.map(|answer| response_of(operation, answer)).map_err(kinesis_error)
}

/// How many bytes the answer to `request` may take, reserved before it is computed.
pub fn response_bytes_max(request: &FirehoseRequest) -> usize {
    match request {
        FirehoseRequest::PutRecordBatch { records, .. } => {
            SMALL_RESPONSE_BYTES.max(records.len().saturating_mul(FIREHOSE_NATIVE_BATCH_ENTRY_ANSWER_BYTES))
        }
        _ => SMALL_RESPONSE_BYTES,
    }
}

/// A Firehose error as the native protocol carries it: the error kind of the same exception.
pub fn kinesis_error(error: FirehoseError) -> KinesisError {
    match ErrorKind::from_exception_name(error.exception) {
        Some(kind) => KinesisError::new(kind, error.message),
        // Every exception Sluice's Firehose answers has a kind; a new one must get its own
        // code rather than be passed off as another.
        None => KinesisError::internal(format!("{}: {}", error.exception, error.message)),
    }
}

/// The checked call of a native request: the same checks, in the same order, as the HTTP
/// API's bodies get.
fn call_of(request: FirehoseRequest) -> Result<Call, FirehoseError> {
    Ok(match request {
        FirehoseRequest::CreateDeliveryStream { input_json } => {
            Call::CreateDeliveryStream(Box::new(bodies::decode(&input_json)?))
        }
        FirehoseRequest::DeleteDeliveryStream { delivery_stream_name, allow_force_delete: _ } => {
            Call::DeleteDeliveryStream { name: bodies::checked_name(delivery_stream_name)? }
        }
        FirehoseRequest::DescribeDeliveryStream { delivery_stream_name, .. } => {
            Call::DescribeDeliveryStream { name: bodies::checked_name(delivery_stream_name)? }
        }
        FirehoseRequest::ListDeliveryStreams { limit, delivery_stream_type, exclusive_start_delivery_stream_name } => {
            Call::ListDeliveryStreams(bodies::checked_list(
                limit,
                delivery_stream_type,
                exclusive_start_delivery_stream_name,
            )?)
        }
        FirehoseRequest::PutRecord { delivery_stream_name, data } => {
            let (name, data) = bodies::checked_record(delivery_stream_name, data)?;
            Call::PutRecord { name, data }
        }
        FirehoseRequest::PutRecordBatch { delivery_stream_name, records } => {
            let (name, records) = bodies::checked_batch(delivery_stream_name, records)?;
            Call::PutRecordBatch { name, records }
        }
        FirehoseRequest::UpdateDestination { input_json } => {
            Call::UpdateDestination(bodies::update_destination(&input_json)?)
        }
        FirehoseRequest::TagDeliveryStream { delivery_stream_name, tags } => {
            let tags = tags.into_iter().map(|tag| (tag.key, tag.value)).collect();
            Call::TagDeliveryStream(bodies::checked_tags(delivery_stream_name, tags)?)
        }
        FirehoseRequest::UntagDeliveryStream { delivery_stream_name, tag_keys } => {
            let (name, keys) = bodies::checked_untag(delivery_stream_name, tag_keys)?;
            Call::UntagDeliveryStream { name, keys }
        }
        FirehoseRequest::ListTagsForDeliveryStream { delivery_stream_name, exclusive_start_tag_key, limit } => {
            Call::ListTagsForDeliveryStream(bodies::checked_list_tags(
                delivery_stream_name,
                exclusive_start_tag_key,
                limit,
            )?)
        }
        FirehoseRequest::StartDeliveryStreamEncryption { delivery_stream_name, key_type, key_arn } => {
            // The configuration is absent when neither member is given; a key ARN without a
            // type is a configuration without its required `KeyType`, as in JSON.
            let configuration = match (key_type, key_arn) {
                (None, None) => None,
                (Some(key_type), key_arn) => Some((key_type, key_arn)),
                (None, Some(_)) => {
                    return Err(FirehoseError::new(
                        "ValidationException",
                        "1 validation error detected: Value null at 'deliveryStreamEncryptionConfigurationInput.keyType' failed to satisfy constraint: Member must not be null",
                    ))
                }
            };
            Call::StartDeliveryStreamEncryption(bodies::checked_start_encryption(delivery_stream_name, configuration)?)
        }
        FirehoseRequest::StopDeliveryStreamEncryption { delivery_stream_name } => {
            Call::StopDeliveryStreamEncryption { name: bodies::checked_name(delivery_stream_name)? }
        }
    })
}

/// The answer of an `operation` call as the native protocol's values.
fn response_of(operation: FirehoseOperation, answer: Answer) -> FirehoseResponse {
    match answer {
        Answer::Created { arn } => FirehoseResponse::CreateDeliveryStream { delivery_stream_arn: arn },
        Answer::Description(description) => FirehoseResponse::DescribeDeliveryStream {
            description_json: serde_json::to_vec(&description).expect("JSON values serialize").into(),
        },
        Answer::Names { names, more } => {
            FirehoseResponse::ListDeliveryStreams { delivery_stream_names: names, has_more_delivery_streams: more }
        }
        Answer::Put { record_id, encrypted } => FirehoseResponse::PutRecord { record_id, encrypted: Some(encrypted) },
        Answer::Batch { outcomes, encrypted } => {
            let failed = outcomes.iter().filter(|outcome| outcome.is_err()).count();
            let request_responses = outcomes
                .into_iter()
                .map(|outcome| match outcome {
                    Ok(record_id) => PutRecordBatchEntry::Stored { record_id },
                    Err((code, message)) => {
                        PutRecordBatchEntry::Failed { error_code: code.to_string(), error_message: message }
                    }
                })
                .collect();
            FirehoseResponse::PutRecordBatch {
                failed_put_count: i32::try_from(failed).expect("at most 500 records"),
                encrypted: Some(encrypted),
                request_responses,
            }
        }
        Answer::Tags { tags, more } => FirehoseResponse::ListTagsForDeliveryStream {
            tags: tags.into_iter().map(|tag| FirehoseTag { key: tag.key, value: tag.value }).collect(),
            has_more_tags: more,
        },
        // The calls that answer nothing: the empty answer of the request's operation.
        Answer::Done => match operation {
            FirehoseOperation::DeleteDeliveryStream => FirehoseResponse::DeleteDeliveryStream,
            FirehoseOperation::UpdateDestination => FirehoseResponse::UpdateDestination,
            FirehoseOperation::TagDeliveryStream => FirehoseResponse::TagDeliveryStream,
            FirehoseOperation::UntagDeliveryStream => FirehoseResponse::UntagDeliveryStream,
            FirehoseOperation::StartDeliveryStreamEncryption => FirehoseResponse::StartDeliveryStreamEncryption,
            FirehoseOperation::StopDeliveryStreamEncryption => FirehoseResponse::StopDeliveryStreamEncryption,
            other => unreachable!("{other} answers more than nothing"),
        },
    }
}

/// A request's parameters in AWS's JSON shape, for the audit log (which hides `Data` and
/// `AccessKey`): the JSON bodies as given, the other requests under AWS's member names.
fn parameters(request: &FirehoseRequest) -> Value {
    match request {
        FirehoseRequest::CreateDeliveryStream { input_json } | FirehoseRequest::UpdateDestination { input_json } => {
            serde_json::from_slice(input_json).unwrap_or(Value::Null)
        }
        FirehoseRequest::DeleteDeliveryStream { delivery_stream_name, allow_force_delete } => {
            json!({ "DeliveryStreamName": delivery_stream_name, "AllowForceDelete": allow_force_delete })
        }
        FirehoseRequest::DescribeDeliveryStream { delivery_stream_name, limit, exclusive_start_destination_id } => {
            json!({ "DeliveryStreamName": delivery_stream_name, "Limit": limit,
                    "ExclusiveStartDestinationId": exclusive_start_destination_id })
        }
        FirehoseRequest::ListDeliveryStreams { limit, delivery_stream_type, exclusive_start_delivery_stream_name } => {
            json!({ "Limit": limit, "DeliveryStreamType": delivery_stream_type,
                    "ExclusiveStartDeliveryStreamName": exclusive_start_delivery_stream_name })
        }
        FirehoseRequest::PutRecord { delivery_stream_name, .. } => {
            json!({ "DeliveryStreamName": delivery_stream_name, "Record": { "Data": Value::Null } })
        }
        FirehoseRequest::PutRecordBatch { delivery_stream_name, records } => {
            let records: Vec<Value> = records.iter().map(|_| json!({ "Data": Value::Null })).collect();
            json!({ "DeliveryStreamName": delivery_stream_name, "Records": records })
        }
        FirehoseRequest::TagDeliveryStream { delivery_stream_name, tags } => {
            let tags: Vec<Value> = tags.iter().map(|tag| json!({ "Key": tag.key, "Value": tag.value })).collect();
            json!({ "DeliveryStreamName": delivery_stream_name, "Tags": tags })
        }
        FirehoseRequest::UntagDeliveryStream { delivery_stream_name, tag_keys } => {
            json!({ "DeliveryStreamName": delivery_stream_name, "TagKeys": tag_keys })
        }
        FirehoseRequest::ListTagsForDeliveryStream { delivery_stream_name, exclusive_start_tag_key, limit } => {
            json!({ "DeliveryStreamName": delivery_stream_name, "ExclusiveStartTagKey": exclusive_start_tag_key,
                    "Limit": limit })
        }
        FirehoseRequest::StartDeliveryStreamEncryption { delivery_stream_name, key_type, key_arn } => {
            json!({ "DeliveryStreamName": delivery_stream_name,
                    "DeliveryStreamEncryptionConfigurationInput": { "KeyType": key_type, "KeyARN": key_arn } })
        }
        FirehoseRequest::StopDeliveryStreamEncryption { delivery_stream_name } => {
            json!({ "DeliveryStreamName": delivery_stream_name })
        }
    }
}
