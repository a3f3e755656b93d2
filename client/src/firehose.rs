//! Firehose's PutRecordBatch over [`HttpClient`]: the call that puts records into a delivery
//! stream (`X-Amz-Target: Firehose_20150804.PutRecordBatch`, AWS JSON 1.1), as sluiced's HTTP
//! port serves it (`server/src/net/http/firehose.rs`, `docs/firehose.md`) and as AWS does.
//!
//! Only the call a producer needs is here; over the native protocol every Firehose operation
//! is [`crate::Client::call_firehose`] (record data as raw bytes, no base64). The shapes are botocore's `firehose/2015-08-04`
//! members. Firehose always speaks JSON 1.1, whatever encoding the client was made with.
//!
//! Errors: an answer other than 200 is [`ClientError::Service`]. Firehose's throttling
//! exception, `ServiceUnavailableException`, becomes [`ErrorKind::Throttling`] (Kinesis has no
//! such name; the caller backs off on either); the other names Kinesis shares
//! (`ResourceNotFoundException`, `InvalidArgumentException`, `LimitExceededException`, ...)
//! keep their kind, and an unknown one is `InternalFailure` carrying its name in the message.
//! Per-record failures are not errors: they are the answer's [`PutRecordBatchResponseEntry`]
//! error codes, left as Firehose's strings.

use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize, Serializer};
use sluice_model::{ErrorKind, KinesisError};
use sluice_protocol::aws::{self, Encoding};

use crate::aws::{HttpClient, FIREHOSE_TARGET_PREFIX};
use crate::errors::ClientError;

/// Most records in one PutRecordBatch (Firehose's quota, "Amazon Data Firehose Quota").
pub const PUT_RECORD_BATCH_RECORDS_MAX: usize = 500;

/// Most bytes of data in one PutRecordBatch, all records together (Firehose's quota).
pub const PUT_RECORD_BATCH_BYTES_MAX: usize = 4 << 20;

/// Most bytes of one record's data, before base64 (Firehose's quota: 1,000 KiB).
pub const RECORD_BYTES_MAX: usize = 1000 * 1024;

const _: () = assert!(RECORD_BYTES_MAX <= PUT_RECORD_BATCH_BYTES_MAX);

/// The per-record error code of a throttled record, and Firehose's throttling exception.
pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailableException";

/// One record of a PutRecordBatch: its data, sent base64-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FirehoseRecord {
    #[serde(serialize_with = "base64_data")]
    pub data: Bytes,
}

fn base64_data<S: Serializer>(data: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
}

/// PutRecordBatch's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchInput {
    pub delivery_stream_name: String,
    pub records: Vec<FirehoseRecord>,
}

/// One record's answer: a `RecordId`, or why the record was not put.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchResponseEntry {
    pub record_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// PutRecordBatch's answer: one entry per record, in the request's order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchOutput {
    pub failed_put_count: u64,
    #[serde(default)]
    pub encrypted: Option<bool>,
    pub request_responses: Vec<PutRecordBatchResponseEntry>,
}

/// The error of a Firehose answer other than 200.
pub fn decode_firehose_error(body: &[u8]) -> KinesisError {
    let error = aws::decode_error(Encoding::Json, body);
    let named = |name: &str| {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("__type").and_then(|t| t.as_str()).map(|t| t.ends_with(name)))
            .unwrap_or(false)
    };
    if named(SERVICE_UNAVAILABLE) {
        return KinesisError::new(ErrorKind::Throttling, error.message);
    }
    error
}

impl HttpClient {
    /// Firehose's PutRecordBatch: puts `input.records` into the delivery stream and answers
    /// per record. Nothing here checks the quotas above; the service refuses a call over them
    /// (`InvalidArgumentException` / `ValidationException`).
    pub async fn put_record_batch(&self, input: &PutRecordBatchInput) -> Result<PutRecordBatchOutput, ClientError> {
        let body = serde_json::to_vec(input).expect("the request serializes");
        let target = format!("{FIREHOSE_TARGET_PREFIX}PutRecordBatch");
        let (status, body) = self.post(&target, Encoding::Json, body).await?;
        if status != StatusCode::OK {
            return Err(ClientError::Service(decode_firehose_error(&body)));
        }
        decode_put_record_batch(&body, input.records.len())
    }
}

/// PutRecordBatch's answer (a 200's body) to a call of `records` records: one entry per
/// record, or [`ClientError::UnexpectedResponse`] (never a panic, whatever the bytes; the fuzz
/// target `firehose_answer` holds it to that).
pub fn decode_put_record_batch(body: &[u8], records: usize) -> Result<PutRecordBatchOutput, ClientError> {
    let output: PutRecordBatchOutput =
        serde_json::from_slice(body).map_err(|error| ClientError::UnexpectedResponse {
            operation: "PutRecordBatch",
            body: format!("a body that is not PutRecordBatch's answer ({error})"),
        })?;
    if output.request_responses.len() != records {
        return Err(ClientError::UnexpectedResponse {
            operation: "PutRecordBatch",
            body: format!("{} entries for {records} records", output.request_responses.len()),
        });
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_botocores_shape_with_base64_data() {
        let input = PutRecordBatchInput {
            delivery_stream_name: "logs".into(),
            records: vec![FirehoseRecord { data: Bytes::from_static(b"hello\n") }],
        };
        assert_eq!(
            serde_json::to_string(&input).unwrap(),
            r#"{"DeliveryStreamName":"logs","Records":[{"Data":"aGVsbG8K"}]}"#
        );
    }

    #[test]
    fn answers_and_errors_decode() {
        let output: PutRecordBatchOutput = serde_json::from_str(
            r#"{"FailedPutCount":1,"Encrypted":false,"RequestResponses":[{"RecordId":"49"},
                {"ErrorCode":"ServiceUnavailableException","ErrorMessage":"Slow down."}]}"#,
        )
        .unwrap();
        assert_eq!(output.failed_put_count, 1);
        assert_eq!(output.request_responses[0].record_id.as_deref(), Some("49"));
        assert_eq!(output.request_responses[1].error_code.as_deref(), Some(SERVICE_UNAVAILABLE));
        let check =
            |body: &str, kind: ErrorKind| assert_eq!(decode_firehose_error(body.as_bytes()).kind, kind, "{body}");
        check(r#"{"__type":"ServiceUnavailableException","message":"Slow down."}"#, ErrorKind::Throttling);
        check(r#"{"__type":"ResourceNotFoundException","message":"no"}"#, ErrorKind::ResourceNotFound);
        check(r#"{"__type":"InvalidArgumentException","message":"no"}"#, ErrorKind::InvalidArgument);
        check("not json", ErrorKind::InternalFailure);
    }

    /// The answer's decoders read bytes from the network: garbage is an error, never a panic.
    /// Every prefix of a valid answer, every single-byte change of it, and random bytes (the
    /// fuzz target `firehose_answer` goes further).
    #[test]
    fn garbage_answers_are_errors_not_panics() {
        use rand::{Rng, SeedableRng};
        let valid = br#"{"FailedPutCount":1,"Encrypted":false,"RequestResponses":[{"RecordId":"49"},{"ErrorCode":"ServiceUnavailableException","ErrorMessage":"Slow down."}]}"#;
        let decode = |bytes: &[u8]| {
            let _ = decode_put_record_batch(bytes, 2);
            let _ = decode_firehose_error(bytes);
        };
        for end in 0..valid.len() {
            decode(&valid[..end]);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        for at in 0..valid.len() {
            let mut changed = valid.to_vec();
            changed[at] = rng.gen();
            decode(&changed);
        }
        for _ in 0..2_000 {
            let len = rng.gen_range(0..64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            decode(&bytes);
        }
    }
}
