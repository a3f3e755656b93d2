//! Record transformation (the `Lambda` processor's role): an external command or an HTTP
//! endpoint that speaks the Firehose data-transformation request/response format.
//!
//! Request (JSON; on the command's stdin, or as the body of a POST):
//! `{"invocationId", "deliveryStreamArn", "region", "records": [{"recordId",
//! "approximateArrivalTimestamp", "data": base64}]}`.
//! Response (the command's stdout, or the response body): `{"records": [{"recordId", "result":
//! "Ok" | "Dropped" | "ProcessingFailed", "data": base64, "metadata": {"partitionKeys": {…}}}]}`.
//!
//! The processor's `LambdaArn` names a function; sluiced's configuration maps function names
//! (the last `:`-separated part of the ARN, or the whole value) to a command or a URL
//! ([`Functions`]), so scripts written for AWS keep their ARNs. An invocation that fails (the
//! command exits non-zero or times out, the endpoint answers non-2xx, the response does not
//! parse) is retried `NumberOfRetries` times; then every record of the batch is failed with
//! that error. A record missing from the response, duplicated, or with an unknown result is
//! failed on its own. Failed records go to the error output under `processing-failed`.

use std::collections::{BTreeMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::limits::TRANSFORM_RESPONSE_BYTES_MAX;

/// What a transformation function is in this Sluice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Function {
    /// A program run once per invocation: request on stdin, response on stdout.
    Command { argv: Vec<String> },
    /// An endpoint POSTed the request, answering with the response.
    Http { url: String },
}

/// The functions sluiced knows, by name.
#[derive(Debug, Clone, Default)]
pub struct Functions {
    by_name: BTreeMap<String, Function>,
}

impl Functions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, function: Function) {
        self.by_name.insert(name.into(), function);
    }

    /// The function a `LambdaArn` names: `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`
    /// resolves by `NAME`; any other value by itself.
    pub fn resolve(&self, lambda_arn: &str) -> Option<&Function> {
        self.by_name.get(function_name(lambda_arn)).or_else(|| self.by_name.get(lambda_arn))
    }
}

/// The function name inside a Lambda ARN (or the value itself when it is not one).
pub fn function_name(lambda_arn: &str) -> &str {
    let parts: Vec<&str> = lambda_arn.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(i) if parts.len() > i + 1 && parts[0] == "arn" => parts[i + 1],
        _ => lambda_arn,
    }
}

/// The outcome of transforming one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok { data: Vec<u8>, partition_keys: Option<BTreeMap<String, String>> },
    Dropped,
    Failed { error_code: String, error_message: String },
}

/// The result of transforming one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// One per record, in order.
    pub outcomes: Vec<Outcome>,
    /// Invocation attempts made (the error records' `attemptsMade`).
    pub attempts: u32,
    /// Whether an invocation answered with a usable response.
    pub succeeded: bool,
}

/// One record given to a transformation.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub arrival_ms: i64,
    pub data: &'a [u8],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    invocation_id: String,
    delivery_stream_arn: &'a str,
    region: &'a str,
    records: Vec<RequestRecord>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestRecord {
    record_id: String,
    approximate_arrival_timestamp: i64,
    data: String,
}

#[derive(Deserialize)]
struct Response {
    records: Vec<ResponseRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseRecord {
    record_id: String,
    result: String,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    metadata: Option<ResponseMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseMetadata {
    #[serde(default)]
    partition_keys: Option<BTreeMap<String, serde_json::Value>>,
}

/// A transformation bound to one delivery stream.
#[derive(Debug, Clone)]
pub struct Transformer {
    pub function: Function,
    pub lambda_arn: String,
    pub retries: u32,
    pub timeout: Duration,
    pub delivery_stream_arn: String,
    pub region: String,
    client: reqwest::Client,
}

impl Transformer {
    pub fn new(
        function: Function,
        lambda_arn: String,
        retries: u32,
        timeout: Duration,
        delivery_stream_arn: String,
        region: String,
    ) -> Self {
        Transformer {
            function,
            lambda_arn,
            retries,
            timeout,
            delivery_stream_arn,
            region,
            client: reqwest::Client::new(),
        }
    }

    /// Transforms `records`: one outcome per record, in order.
    pub async fn transform(&self, records: &[Input<'_>]) -> Invocation {
        let ids: Vec<String> = (0..records.len()).map(|i| format!("{i:020}")).collect();
        let request = Request {
            invocation_id: uuid::Uuid::new_v4().to_string(),
            delivery_stream_arn: &self.delivery_stream_arn,
            region: &self.region,
            records: records
                .iter()
                .zip(&ids)
                .map(|(r, id)| RequestRecord {
                    record_id: id.clone(),
                    approximate_arrival_timestamp: r.arrival_ms,
                    data: base64::engine::general_purpose::STANDARD.encode(r.data),
                })
                .collect(),
        };
        let body = serde_json::to_vec(&request).expect("request serializes");
        let mut attempts = 0;
        let mut last_error = (String::new(), String::new());
        while attempts <= self.retries {
            attempts += 1;
            match self.invoke(&body).await {
                Ok(bytes) => match serde_json::from_slice::<Response>(&bytes) {
                    Ok(response) => {
                        return Invocation { outcomes: match_response(&ids, response), attempts, succeeded: true }
                    }
                    Err(e) => {
                        last_error =
                            ("Lambda.JsonProcessingException".into(), format!("The response does not parse: {e}"))
                    }
                },
                Err(e) => last_error = ("Lambda.FunctionError".into(), e),
            }
            tracing::warn!(function = %self.lambda_arn, attempt = attempts, error = %last_error.1, "transformation failed");
        }
        let failed = Outcome::Failed { error_code: last_error.0, error_message: last_error.1 };
        Invocation { outcomes: vec![failed; records.len()], attempts, succeeded: false }
    }

    async fn invoke(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        match &self.function {
            Function::Command { argv } => {
                let (program, args) = argv.split_first().ok_or("the function's command is empty")?;
                let mut child = tokio::process::Command::new(program)
                    .args(args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| format!("cannot start {program}: {e}"))?;
                let mut stdin = child.stdin.take().expect("piped");
                let mut stdout = child.stdout.take().expect("piped");
                let mut stderr = child.stderr.take().expect("piped");
                let run = async {
                    let write = async {
                        let r = stdin.write_all(body).await;
                        drop(stdin);
                        r
                    };
                    let read = read_bounded(&mut stdout, TRANSFORM_RESPONSE_BYTES_MAX);
                    let read_err = read_bounded(&mut stderr, 4096);
                    let (w, out, err) = tokio::join!(write, read, read_err);
                    let status = child.wait().await.map_err(|e| e.to_string())?;
                    w.map_err(|e| format!("writing the request: {e}"))?;
                    let out = out?;
                    if !status.success() {
                        let err = String::from_utf8_lossy(&err.unwrap_or_default()).trim().to_string();
                        return Err(format!("{program} exited with {status}: {err}"));
                    }
                    Ok(out)
                };
                match tokio::time::timeout(self.timeout, run).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("{program} did not answer within {:?}", self.timeout)),
                }
            }
            Function::Http { url } => {
                let send = async {
                    let mut response = self
                        .client
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body.to_vec())
                        .send()
                        .await
                        .map_err(|e| format!("POST {url}: {e}"))?;
                    let status = response.status();
                    let mut out = Vec::new();
                    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                        if out.len() + chunk.len() > TRANSFORM_RESPONSE_BYTES_MAX {
                            return Err(format!("the response is larger than {TRANSFORM_RESPONSE_BYTES_MAX} bytes"));
                        }
                        out.extend_from_slice(&chunk);
                    }
                    if !status.is_success() {
                        return Err(format!(
                            "{url} answered {status}: {}",
                            String::from_utf8_lossy(&out[..out.len().min(512)])
                        ));
                    }
                    Ok(out)
                };
                match tokio::time::timeout(self.timeout, send).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("{url} did not answer within {:?}", self.timeout)),
                }
            }
        }
    }
}

async fn read_bounded(reader: &mut (impl AsyncReadExt + Unpin), max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = reader.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > max {
            return Err(format!("the response is larger than {max} bytes"));
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Pairs the response's records with the request's by `recordId`.
fn match_response(ids: &[String], response: Response) -> Vec<Outcome> {
    let mut by_id: BTreeMap<&str, Outcome> = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut duplicated = HashSet::new();
    for record in &response.records {
        if !seen.insert(record.record_id.clone()) {
            duplicated.insert(record.record_id.clone());
            continue;
        }
        let Some(id) = ids.iter().find(|id| **id == record.record_id) else { continue };
        let outcome = match record.result.as_str() {
            "Ok" => match record.data.as_deref().map(|d| base64::engine::general_purpose::STANDARD.decode(d)) {
                Some(Ok(data)) => Outcome::Ok {
                    data,
                    partition_keys: record.metadata.as_ref().and_then(|m| m.partition_keys.as_ref()).map(|keys| {
                        keys.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    match v {
                                        serde_json::Value::String(s) => s.clone(),
                                        other => other.to_string(),
                                    },
                                )
                            })
                            .collect()
                    }),
                },
                Some(Err(e)) => Outcome::Failed {
                    error_code: "Lambda.InvalidBase64".into(),
                    error_message: format!("The data of record {id} is not base64: {e}"),
                },
                None => Outcome::Failed {
                    error_code: "Lambda.MissingData".into(),
                    error_message: format!("Record {id} has result Ok and no data."),
                },
            },
            "Dropped" => Outcome::Dropped,
            "ProcessingFailed" => Outcome::Failed {
                error_code: "Lambda.ProcessingFailedStatus".into(),
                error_message: "The function returned result ProcessingFailed.".into(),
            },
            other => Outcome::Failed {
                error_code: "Lambda.InvalidResult".into(),
                error_message: format!(
                    "The function returned result '{other}' (expected Ok, Dropped or ProcessingFailed)."
                ),
            },
        };
        by_id.insert(id.as_str(), outcome);
    }
    ids.iter()
        .map(|id| {
            if duplicated.contains(id) {
                Outcome::Failed {
                    error_code: "Lambda.DuplicatedRecordId".into(),
                    error_message: format!("The response has record {id} more than once."),
                }
            } else {
                by_id.remove(id.as_str()).unwrap_or(Outcome::Failed {
                    error_code: "Lambda.MissingRecordId".into(),
                    error_message: format!("The response has no record {id}."),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_arns() {
        assert_eq!(function_name("arn:aws:lambda:us-east-1:123456789012:function:upper"), "upper");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:123456789012:function:upper:$LATEST"), "upper");
        assert_eq!(function_name("upper"), "upper");
    }

    #[test]
    fn responses_are_matched_by_record_id() {
        let ids: Vec<String> = (0..5).map(|i| format!("{i:020}")).collect();
        let response: Response = serde_json::from_value(serde_json::json!({"records": [
            {"recordId": ids[0], "result": "Ok", "data": "aGk=", "metadata": {"partitionKeys": {"k": "v", "n": 1}}},
            {"recordId": ids[1], "result": "Dropped"},
            {"recordId": ids[2], "result": "ProcessingFailed"},
            {"recordId": ids[3], "result": "Ok", "data": "%%%"},
            {"recordId": "unknown", "result": "Ok", "data": ""},
        ]}))
        .unwrap();
        let outcomes = match_response(&ids, response);
        assert_eq!(
            outcomes[0],
            Outcome::Ok {
                data: b"hi".to_vec(),
                partition_keys: Some(BTreeMap::from([("k".into(), "v".into()), ("n".into(), "1".into())]))
            }
        );
        assert_eq!(outcomes[1], Outcome::Dropped);
        assert!(
            matches!(&outcomes[2], Outcome::Failed { error_code, .. } if error_code == "Lambda.ProcessingFailedStatus")
        );
        assert!(matches!(&outcomes[3], Outcome::Failed { error_code, .. } if error_code == "Lambda.InvalidBase64"));
        assert!(matches!(&outcomes[4], Outcome::Failed { error_code, .. } if error_code == "Lambda.MissingRecordId"));
    }
}
