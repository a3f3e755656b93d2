//! Firehose over HTTP (`X-Amz-Target: Firehose_20150804.<Operation>`, AWS JSON 1.1): each
//! operation's body decoded with serde into botocore's member names and checked
//! (`ops::firehose_bodies`), authorized, run and audited by `ops::firehose_calls` (the code
//! path the native protocol's Firehose operations share), and answered with AWS's shapes and
//! error types.
//!
//! Served: CreateDeliveryStream, DescribeDeliveryStream, ListDeliveryStreams,
//! DeleteDeliveryStream, PutRecord, PutRecordBatch, UpdateDestination, TagDeliveryStream,
//! UntagDeliveryStream, ListTagsForDeliveryStream, StartDeliveryStreamEncryption,
//! StopDeliveryStreamEncryption.
// Unfinished: CreateDeliveryStream's `DeliveryStreamEncryptionConfigurationInput` (refused as
// unsupported: start encryption after creating).
// The bodies are decoded and checked in `ops::firehose_bodies` (fuzzed by
// `fuzz/fuzz_targets/firehose_bodies.rs`, with `CreateDeliveryStreamInput`'s decoder).

use crate::net::http::{document, Body, Refusal};
use crate::ops::auth::Caller;
use crate::ops::firehose::{Firehose, FirehoseError};
use crate::ops::firehose_bodies as bodies;
use crate::ops::firehose_calls::{self as calls, Answer, Call};
use crate::ops::node::Node;
use http::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::rc::Rc;

/// The target prefix of the Firehose API.
pub const TARGET_PREFIX: &str = sluice_model::FIREHOSE_TARGET_PREFIX;

/// The operations this port serves (the model's, shared with the native protocol).
pub use sluice_model::FirehoseOperation as Operation;

/// Answers one Firehose call for `caller` (decoded, then authorized and run by
/// `ops::firehose_calls`) and records it in the audit log.
pub async fn respond(
    node: &Rc<Node>,
    caller: &Caller,
    firehose: &Firehose,
    operation: Operation,
    body: &[u8],
) -> Result<Response<Body>, Refusal> {
    let answer = match Call::from_json(operation, body) {
        Ok(call) => calls::call(node, caller, firehose, call).await,
        Err(error) => Err(error),
    };
    let parameters = || serde_json::from_slice(body).unwrap_or(Value::Null);
    calls::audit(node, caller, operation, parameters, answer.as_ref().map(|_| ()));
    json_answer(answer.map(json_of))
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

/// An answer in AWS's JSON shape.
fn json_of(answer: Answer) -> Value {
    match answer {
        Answer::Created { arn } => json!({ "DeliveryStreamARN": arn }),
        Answer::Done => json!({}),
        Answer::Description(description) => json!({ "DeliveryStreamDescription": description }),
        Answer::Names { names, more } => json!({ "DeliveryStreamNames": names, "HasMoreDeliveryStreams": more }),
        Answer::Put { record_id, encrypted } => json!({ "RecordId": record_id, "Encrypted": encrypted }),
        Answer::Batch { outcomes, encrypted } => {
            let failed = outcomes.iter().filter(|outcome| outcome.is_err()).count();
            let responses: Vec<Value> = outcomes
                .into_iter()
                .map(|outcome| match outcome {
                    Ok(id) => json!({ "RecordId": id }),
                    Err((code, message)) => json!({ "ErrorCode": code, "ErrorMessage": message }),
                })
                .collect();
            json!({ "FailedPutCount": failed, "Encrypted": encrypted, "RequestResponses": responses })
        }
        Answer::Tags { tags, more } => json!({ "Tags": tags, "HasMoreTags": more }),
    }
}
