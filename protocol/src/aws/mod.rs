//! The AWS JSON 1.1 and AWS CBOR 1.1 protocols, both directions, for the server and for
//! clients (the load generator, and clients of AWS itself).
//!
//! Bodies are the model's types through serde: `serde_json` or `ciborium` over an input or an
//! output *is* its AWS body, because the model names its members as AWS does and its blobs and
//! timestamps switch on `is_human_readable()` (base64 and epoch seconds in JSON, byte strings
//! and tag-1 epoch milliseconds in CBOR).
//!
//! A server reads a request in two steps, to answer bad input exactly as AWS does
//! ([`decode_request`]): the body becomes a [`Value`] document, which the shape checker
//! ([`shapes`]) holds against botocore's model of the operation (SerializationException for a
//! member of the wrong type, one ValidationException listing every broken constraint), and only
//! then is the checked document read into the model's input type.
//!
//! - Server: [`decode_request`], [`encode_response`], [`encode_error`], [`encode_event`].
//! - Client: [`encode_request`], [`decode_response`], [`decode_error`], [`decode_event`].

pub mod document;
pub mod put_body;
pub mod shapes;

pub use document::{Encoding, Value};

use serde::Serialize;
use sluice_model::{ErrorKind, KinesisError, Operation, Request, Response, SubscribeToShardEvent};

/// The `X-Amz-Target` prefix of Kinesis operations (the model's `targetPrefix`).
pub const KINESIS_TARGET_PREFIX: &str = "Kinesis_20131202.";

impl Encoding {
    /// The encoding of a request by its `Content-Type`: CBOR if it says so, JSON otherwise (AWS
    /// answers JSON clients that send `application/json` or no type at all, so Sluice does too).
    pub fn of_content_type(content_type: Option<&str>) -> Encoding {
        match content_type {
            Some(content_type) if content_type.trim().starts_with("application/x-amz-cbor") => Encoding::Cbor,
            _ => Encoding::Json,
        }
    }
}

/// Writes any serde value in `encoding`.
pub fn to_vec<T: Serialize + ?Sized>(encoding: Encoding, value: &T) -> Vec<u8> {
    match encoding {
        Encoding::Json => serde_json::to_vec(value).expect("the model's types always serialize to JSON"),
        Encoding::Cbor => {
            let mut out = Vec::with_capacity(256);
            ciborium::ser::into_writer(value, &mut out).expect("the model's types always serialize to CBOR in memory");
            out
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server.

/// Reads a request body of `operation`: parse, check against the model, type. Every failure
/// is the exception AWS answers: SerializationException for a body that does not parse or a
/// member of the wrong type, ValidationException for broken constraints, InvalidArgumentException
/// for a hash key above 2^128 - 1.
pub fn decode_request(operation: Operation, encoding: Encoding, body: &[u8]) -> Result<Request, KinesisError> {
    // PutRecord and PutRecords bodies of the usual kind skip the document and the checker;
    // anything else (errors included) comes here (see `put_body`).
    if let Some(request) = put_body::decode(operation, encoding, body) {
        return Ok(request);
    }
    decode_request_general(operation, encoding, body)
}

/// [`decode_request`] without the fast path: every body through the document and the shape
/// checker (public so that tests and the fuzz target can hold the fast path against it).
pub fn decode_request_general(operation: Operation, encoding: Encoding, body: &[u8]) -> Result<Request, KinesisError> {
    let mut document =
        document::decode(encoding, body).map_err(|error| KinesisError::serialization(error.to_string()))?;
    shapes::check(operation.name(), &mut document, encoding)?;
    Request::deserialize_input(operation, document).map_err(|error| KinesisError::serialization(error.to_string()))
}

/// An answer's body.
pub fn encode_response(encoding: Encoding, response: &Response) -> Vec<u8> {
    put_body::encode_response(encoding, response).unwrap_or_else(|| to_vec(encoding, response))
}

/// The body of an error answer: `{"__type": "...Exception", "message": "..."}`.
pub fn encode_error(encoding: Encoding, error: &KinesisError) -> Vec<u8> {
    #[derive(Serialize)]
    struct ErrorDocument<'a> {
        #[serde(rename = "__type")]
        exception: &'a str,
        message: &'a str,
    }
    to_vec(encoding, &ErrorDocument { exception: error.kind.exception_name(), message: &error.message })
}

/// The payload of an event-stream exception: `{"message": "..."}`.
pub fn encode_exception_payload(encoding: Encoding, error: &KinesisError) -> Vec<u8> {
    #[derive(Serialize)]
    struct Message<'a> {
        message: &'a str,
    }
    to_vec(encoding, &Message { message: &error.message })
}

/// A SubscribeToShardEvent's payload.
pub fn encode_event(encoding: Encoding, event: &SubscribeToShardEvent) -> Vec<u8> {
    to_vec(encoding, event)
}

// ---------------------------------------------------------------------------------------------
// Client.

/// Why an answer's body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the {operation} answer does not read as AWS's {operation}Output: {reason}")]
pub struct DecodeError {
    pub operation: Operation,
    pub reason: String,
}

/// A request's body.
pub fn encode_request<T: Serialize + ?Sized>(encoding: Encoding, input: &T) -> Vec<u8> {
    to_vec(encoding, input)
}

/// Reads the body of a successful answer to `operation`. An empty body is `{}`.
pub fn decode_response(operation: Operation, encoding: Encoding, body: &[u8]) -> Result<Response, DecodeError> {
    let error = |reason: String| DecodeError { operation, reason };
    let body: &[u8] = if body.is_empty() { empty_document(encoding) } else { body };
    match encoding {
        Encoding::Json => {
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            Response::deserialize_output(operation, &mut deserializer).map_err(|e| error(e.to_string()))
        }
        // ciborium has no public deserializer to hand over; its document, through `Value`
        // (whose blobs and tag-1 timestamps are already what CBOR means), reads the same.
        Encoding::Cbor => {
            let document = document::decode(encoding, body).map_err(|e| error(e.to_string()))?;
            Response::deserialize_output(operation, document).map_err(|e| error(e.to_string()))
        }
    }
}

/// A SubscribeToShardEvent from its event-stream payload.
pub fn decode_event(encoding: Encoding, payload: &[u8]) -> Result<SubscribeToShardEvent, DecodeError> {
    let error = |reason: String| DecodeError { operation: Operation::SubscribeToShard, reason };
    match encoding {
        Encoding::Json => serde_json::from_slice(payload).map_err(|e| error(e.to_string())),
        Encoding::Cbor => ciborium::de::from_reader(payload).map_err(|e| error(e.to_string())),
    }
}

/// The error an error answer carries: its `__type` (read as botocore reads it, an unknown one
/// as InternalFailure) and its `message` (or `Message`).
pub fn decode_error(encoding: Encoding, body: &[u8]) -> KinesisError {
    let (exception, message) = match document::decode(encoding, body) {
        Ok(document) => {
            let text = |name: &str| match document.get(name) {
                Some(Value::Text(text)) => Some(text.clone()),
                _ => None,
            };
            (text("__type"), text("message").or_else(|| text("Message")))
        }
        Err(_) => (None, None),
    };
    let kind = exception.as_deref().and_then(ErrorKind::from_exception_name).unwrap_or(ErrorKind::InternalFailure);
    KinesisError::new(kind, message.unwrap_or_else(|| exception.unwrap_or_default()))
}

fn empty_document(encoding: Encoding) -> &'static [u8] {
    match encoding {
        Encoding::Json => b"{}",
        // A CBOR map of no entries.
        Encoding::Cbor => &[0xa0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use bytes::Bytes;
    use proptest::prelude::*;
    use sluice_model::*;

    const ENCODINGS: [Encoding; 2] = [Encoding::Json, Encoding::Cbor];

    proptest! {
        /// What a client writes, a server reads back unchanged, through the shape checker.
        #[test]
        fn every_request_round_trips_through_the_checker(request in testing::request()) {
            for encoding in ENCODINGS {
                let body = encode_request(encoding, &request);
                prop_assert_eq!(decode_request(request.operation(), encoding, &body), Ok(request.clone()));
            }
        }

        /// Sluice's lease operations, through the checker of `sluice-model.json`.
        #[test]
        fn every_sluice_request_round_trips_through_the_checker(request in testing::sluice_request()) {
            for encoding in ENCODINGS {
                let body = encode_request(encoding, &request);
                prop_assert_eq!(decode_request(request.operation(), encoding, &body), Ok(request.clone()));
            }
        }

        /// The Kinesis queue operations, through the checker of `kinesis-model.json`.
        #[test]
        fn every_queue_request_round_trips_through_the_checker(request in testing::queue_request()) {
            for encoding in ENCODINGS {
                let body = encode_request(encoding, &request);
                prop_assert_eq!(decode_request(request.operation(), encoding, &body), Ok(request.clone()));
            }
        }

        /// The stream and account settings, through the checker of `kinesis-model.json`.
        #[test]
        fn every_settings_request_round_trips_through_the_checker(request in testing::settings_request()) {
            for encoding in ENCODINGS {
                let body = encode_request(encoding, &request);
                prop_assert_eq!(decode_request(request.operation(), encoding, &body), Ok(request.clone()));
            }
        }

        #[test]
        fn every_settings_response_round_trips(response in testing::settings_response()) {
            for encoding in ENCODINGS {
                let body = encode_response(encoding, &response);
                let decoded = decode_response(response.operation(), encoding, &body).map_err(|e| e.to_string());
                prop_assert_eq!(decoded, Ok(response.clone()));
            }
        }

        #[test]
        fn every_queue_response_round_trips(response in testing::queue_response()) {
            for encoding in ENCODINGS {
                let body = encode_response(encoding, &response);
                let decoded = decode_response(response.operation(), encoding, &body).map_err(|e| e.to_string());
                prop_assert_eq!(decoded, Ok(response.clone()));
            }
        }

        /// The resource-policy operations, through the checker of `kinesis-model.json`.
        #[test]
        fn every_policy_request_round_trips_through_the_checker(request in testing::policy_request()) {
            for encoding in ENCODINGS {
                let body = encode_request(encoding, &request);
                prop_assert_eq!(decode_request(request.operation(), encoding, &body), Ok(request.clone()));
            }
        }

        #[test]
        fn every_policy_response_round_trips(response in testing::policy_response()) {
            for encoding in ENCODINGS {
                let body = encode_response(encoding, &response);
                let decoded = decode_response(response.operation(), encoding, &body).map_err(|e| e.to_string());
                prop_assert_eq!(decoded, Ok(response.clone()));
            }
        }

        #[test]
        fn every_sluice_response_round_trips(response in testing::sluice_response()) {
            for encoding in ENCODINGS {
                let body = encode_response(encoding, &response);
                let decoded = decode_response(response.operation(), encoding, &body).map_err(|e| e.to_string());
                prop_assert_eq!(decoded, Ok(response.clone()));
            }
        }

        #[test]
        fn every_response_round_trips(response in testing::response()) {
            for encoding in ENCODINGS {
                let body = encode_response(encoding, &response);
                let decoded = decode_response(response.operation(), encoding, &body).map_err(|e| e.to_string());
                prop_assert_eq!(decoded, Ok(response.clone()));
            }
        }

        #[test]
        fn events_and_errors_round_trip(event in testing::event(), message in "\\PC{0,40}") {
            for encoding in ENCODINGS {
                let decoded = decode_event(encoding, &encode_event(encoding, &event)).map_err(|e| e.to_string());
                prop_assert_eq!(decoded, Ok(event.clone()));
                for &kind in ErrorKind::ALL {
                    let error = KinesisError::new(kind, message.clone());
                    prop_assert_eq!(decode_error(encoding, &encode_error(encoding, &error)), error);
                }
            }
        }
    }

    #[test]
    fn bodies_are_aws_bodies() {
        let put = Request::from(PutRecordInput {
            stream_name: Some("s".into()),
            data: Bytes::from_static(b"hello"),
            partition_key: Some("k".into()),
            ..Default::default()
        });
        assert_eq!(
            String::from_utf8(encode_request(Encoding::Json, &put)).unwrap(),
            r#"{"StreamName":"s","Data":"aGVsbG8=","PartitionKey":"k"}"#
        );
        let error = KinesisError::stream_not_found(&Identity::default(), "s");
        assert_eq!(
            String::from_utf8(encode_error(Encoding::Json, &error)).unwrap(),
            r#"{"__type":"ResourceNotFoundException","message":"Stream s under account 000000000000 not found."}"#
        );
        assert_eq!(
            decode_response(Operation::CreateStream, Encoding::Json, b"").unwrap(),
            Response::CreateStream(Empty {})
        );
        let foreign = decode_error(Encoding::Json, br#"{"__type":"com.amazonaws#SomethingNew","Message":"m"}"#);
        assert_eq!(foreign, KinesisError::new(ErrorKind::InternalFailure, "m"));
    }

    #[test]
    fn hash_keys_beyond_128_bits_are_invalid_arguments() {
        let body = br#"{"StreamName":"s","Data":"","PartitionKey":"k","ExplicitHashKey":"340282366920938463463374607431768211456"}"#;
        let error = decode_request(Operation::PutRecord, Encoding::Json, body).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidArgument);
        assert_eq!(
            error.message,
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was 340282366920938463463374607431768211456"
        );
        // A broken constraint is reported first, as a ValidationException.
        let both = br#"{"Data":"","PartitionKey":"","ExplicitHashKey":"340282366920938463463374607431768211456"}"#;
        assert_eq!(decode_request(Operation::PutRecord, Encoding::Json, both).unwrap_err().kind, ErrorKind::Validation);
        let split = br#"{"StreamName":"s","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"999999999999999999999999999999999999999"}"#;
        let error = decode_request(Operation::SplitShard, Encoding::Json, split).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidArgument);
        assert!(error.message.starts_with("Invalid NewStartingHashKey."), "{}", error.message);
    }

    #[test]
    fn repeated_members_and_nulls_read_as_the_checker_reads_them() {
        let body = br#"{"StreamName":"first","StreamName":"last","Limit":null,"Unknown":[1]}"#;
        let request = decode_request(Operation::DescribeStream, Encoding::Json, body).unwrap();
        assert_eq!(
            request,
            Request::from(DescribeStreamInput { stream_name: Some("last".into()), ..Default::default() })
        );
        let tags = br#"{"StreamName":"s","TagKeys":["a",null,"b"]}"#;
        let Request::RemoveTagsFromStream(input) =
            decode_request(Operation::RemoveTagsFromStream, Encoding::Json, tags).unwrap()
        else {
            panic!("not RemoveTagsFromStream")
        };
        assert_eq!(input.tag_keys, ["a", "b"]);
    }
}
