//! Delivery to an HTTP endpoint in the Firehose HTTP endpoint delivery format.
//!
//! Request: `POST` to the configured URL with `Content-Type: application/json`, headers
//! `X-Amz-Firehose-Protocol-Version: 1.0`, `X-Amz-Firehose-Request-Id` (the same across the
//! retries of one batch, for deduplication), `X-Amz-Firehose-Source-Arn`,
//! `X-Amz-Firehose-Access-Key` (the configured key, verbatim), `X-Amz-Firehose-Common-Attributes`
//! (`{"commonAttributes": {…}}`), `Content-Encoding: gzip` when `ContentEncoding` is `GZIP`; body
//! `{"requestId", "timestamp", "records": [{"data": base64}]}` with at most 10,000 records.
//!
//! Response: only status 200 with a JSON body whose `requestId` matches is a success; anything
//! else (another status, a bad or oversized body, no answer within the response timeout) is a
//! failure, retried with exponential back-off (1 s doubling, ±15 % jitter, capped) until
//! `RetryOptions.DurationInSeconds` has passed since the first attempt. AWS does not send a
//! batch refused with 413 to the error bucket; Sluice does (never silently drops records).

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::compress::gzip;
use crate::limits::{HTTP_BACKOFF_MS_INITIAL, HTTP_REQUEST_RECORDS_MAX, HTTP_RESPONSE_BYTES_MAX};
use crate::plan::HttpPlan;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestBody<'a> {
    request_id: &'a str,
    timestamp: i64,
    records: Vec<RecordBody>,
}

#[derive(Serialize)]
struct RecordBody {
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseBody {
    request_id: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
}

/// Why a batch could not be delivered, after every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub attempts: u32,
    pub error_code: String,
    pub error_message: String,
}

/// Delivers `records` (one buffer) to the endpoint, splitting it into requests of at most
/// 10,000 records. Returns the attempts made, or the failure of the first request that could
/// not be delivered together with the index of its first record (records before it were
/// delivered).
pub async fn deliver(
    client: &reqwest::Client,
    plan: &HttpPlan,
    source_arn: &str,
    response_timeout: Duration,
    backoff_max: Duration,
    records: &[Bytes],
) -> Result<u32, (usize, Failure)> {
    let mut attempts_total = 0;
    let mut start = 0;
    for chunk in records.chunks(HTTP_REQUEST_RECORDS_MAX) {
        match deliver_request(client, plan, source_arn, response_timeout, backoff_max, chunk).await {
            Ok(attempts) => attempts_total += attempts,
            Err(failure) => return Err((start, failure)),
        }
        start += chunk.len();
    }
    Ok(attempts_total)
}

async fn deliver_request(
    client: &reqwest::Client,
    plan: &HttpPlan,
    source_arn: &str,
    response_timeout: Duration,
    backoff_max: Duration,
    records: &[Bytes],
) -> Result<u32, Failure> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = RequestBody {
        request_id: &request_id,
        timestamp: chrono::Utc::now().timestamp_millis(),
        records: records
            .iter()
            .map(|r| RecordBody { data: base64::engine::general_purpose::STANDARD.encode(r) })
            .collect(),
    };
    let mut body = serde_json::to_vec(&body).expect("serializes");
    if plan.gzip {
        body = gzip(&body).expect("gzip into memory does not fail");
    }
    let body = Bytes::from(body);
    let common = (!plan.common_attributes.is_empty())
        .then(|| serde_json::json!({ "commonAttributes": plan.common_attributes }).to_string());
    let first = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let outcome =
            attempt(client, plan, source_arn, &request_id, common.as_deref(), body.clone(), response_timeout).await;
        let (code, message) = match outcome {
            Ok(()) => return Ok(attempts),
            Err(e) => e,
        };
        tracing::warn!(url = %plan.url, attempt = attempts, error = %message, "HTTP endpoint delivery failed");
        let elapsed = first.elapsed();
        if elapsed >= plan.retry_duration {
            return Err(Failure { attempts, error_code: code, error_message: message });
        }
        let base = HTTP_BACKOFF_MS_INITIAL.saturating_mul(1u64 << (attempts - 1).min(20));
        let jittered = (base as f64 * rand::thread_rng().gen_range(0.85..1.15)) as u64;
        let wait = Duration::from_millis(jittered).min(backoff_max).min(plan.retry_duration - elapsed);
        tokio::time::sleep(wait).await;
    }
}

async fn attempt(
    client: &reqwest::Client,
    plan: &HttpPlan,
    source_arn: &str,
    request_id: &str,
    common: Option<&str>,
    body: Bytes,
    response_timeout: Duration,
) -> Result<(), (String, String)> {
    let mut request = client
        .post(&plan.url)
        .header("Content-Type", "application/json")
        .header("X-Amz-Firehose-Protocol-Version", "1.0")
        .header("X-Amz-Firehose-Request-Id", request_id)
        .header("X-Amz-Firehose-Source-Arn", source_arn)
        .timeout(response_timeout)
        .body(body);
    if let Some(key) = &plan.access_key {
        request = request.header("X-Amz-Firehose-Access-Key", key);
    }
    if let Some(common) = common {
        request = request.header("X-Amz-Firehose-Common-Attributes", common);
    }
    if plan.gzip {
        request = request.header("Content-Encoding", "gzip");
    }
    let mut response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            (
                "HttpEndpoint.ResponseTimeout".to_string(),
                format!("The endpoint did not answer within {response_timeout:?}."),
            )
        } else {
            ("HttpEndpoint.ConnectionFailed".to_string(), format!("Could not reach the endpoint: {e}"))
        }
    })?;
    let status = response.status();
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > HTTP_RESPONSE_BYTES_MAX {
                    return Err((
                        "HttpEndpoint.ResponseTooLarge".into(),
                        format!("The response is larger than {HTTP_RESPONSE_BYTES_MAX} bytes."),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => {
                return Err((
                    "HttpEndpoint.ResponseTimeout".into(),
                    format!("The endpoint did not answer within {response_timeout:?}."),
                ))
            }
            Err(e) => return Err(("HttpEndpoint.ConnectionFailed".into(), format!("Reading the response: {e}"))),
        }
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(8192)]).into_owned();
    if status != reqwest::StatusCode::OK {
        return Err((
            "HttpEndpoint.DestinationException".into(),
            format!("Received the following response from the endpoint destination. {status}: {text}"),
        ));
    }
    match serde_json::from_slice::<ResponseBody>(&bytes) {
        Ok(ResponseBody { request_id: Some(id), .. }) if id == request_id => Ok(()),
        Ok(ResponseBody { error_message: Some(m), .. }) => Err(("HttpEndpoint.DestinationException".into(), m)),
        Ok(_) => Err((
            "HttpEndpoint.InvalidResponseFromDestination".into(),
            format!("The response's requestId does not match {request_id}: {text}"),
        )),
        Err(e) => Err((
            "HttpEndpoint.InvalidResponseFromDestination".into(),
            format!("The response is not the expected JSON ({e}): {text}"),
        )),
    }
}
