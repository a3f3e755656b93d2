//! Answers as the AWS CLI prints them: JSON with the Kinesis member names, in the order of
//! botocore's output shapes, indented by four spaces, absent members left out. Blobs are
//! base64 and timestamps epoch seconds with a fraction: the model's types serialize to exactly
//! the Kinesis JSON protocol that `aws kinesis` prints from, so printing is serializing.

use serde::Serialize;
use sluice_client::SubscribeToShardEvent;

/// Serializes `value` as the AWS CLI's JSON output does (`json.dumps(indent=4)`).
pub fn pretty_json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer).expect("the model's types serialize to memory without error");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// One line of JSON, for streams of events.
pub fn json_line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("the model's types serialize to memory without error")
}

/// The AWS CLI's message for a failed call: the same text botocore's `ClientError` has.
pub fn service_error_message(operation: &str, exception: &str, message: &str) -> String {
    format!("An error occurred ({exception}) when calling the {operation} operation: {message}")
}

/// A subscription event as botocore's event stream yields it: `{"SubscribeToShardEvent": ...}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEventJson<'a> {
    subscribe_to_shard_event: &'a SubscribeToShardEvent,
}

pub fn subscribe_to_shard_event(event: &SubscribeToShardEvent) -> SubscribeToShardEventJson<'_> {
    SubscribeToShardEventJson { subscribe_to_shard_event: event }
}

#[cfg(test)]
mod tests;
