//! HTTP endpoint destinations against a real HTTP server that fails, times out and recovers.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use sluice_testkit::free_port;
use support::*;

fn http_config(url: &str, retry_s: u64, backup: &str) -> serde_json::Value {
    json!({"DeliveryStreamName": "to-http", "HttpEndpointDestinationConfiguration": {
        "EndpointConfiguration": {"Url": url, "Name": "receiver", "AccessKey": "secret-key-123"},
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "RequestConfiguration": {"ContentEncoding": "GZIP", "CommonAttributes": [{"AttributeName": "env", "AttributeValue": "test"}]},
        "RetryOptions": {"DurationInSeconds": retry_s},
        "S3BackupMode": backup,
        "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::errors", "Prefix": "http/",
                            "ErrorOutputPrefix": "failed/!{firehose:error-output-type}/"}}})
}

fn decoded_records(body: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap())
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn endpoint_fails_times_out_and_recovers() {
    // Request 0: 500 with an error body. Request 1: answered after the response timeout.
    // Request 2: 200 with a wrong requestId. Then correct answers.
    let server = HttpServer::start(|captured, n| match n {
        0 => Reply::new(500, br#"{"requestId":"x","timestamp":1,"errorMessage":"down for maintenance"}"#.to_vec()),
        1 => Reply::new(200, endpoint_ok(captured)).delayed(Duration::from_secs(3)),
        2 => Reply::new(200, br#"{"requestId":"not-it","timestamp":1}"#.to_vec()),
        _ => Reply::new(200, endpoint_ok(captured)),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = dir_env(dir.path(), &["errors"]);
    env.options.http_response_timeout = Duration::from_millis(500);
    env.options.http_backoff_max = Duration::from_millis(100);
    let data: Vec<String> = (0..50).map(|i| format!("record-{i}")).collect();
    let recs = data.iter().enumerate().map(|(i, d)| record(i as u64, d.clone())).collect();
    let (progress, metrics) = deliver_all(plan(http_config(&server.url, 60, "FailedDataOnly"), &env), recs).await;
    assert_eq!(progress.records_done, 50);
    let requests = server.requests.lock().unwrap().clone();
    assert!(requests.len() >= 4, "{} requests", requests.len());
    // One batch, retried: the same request id and body every time.
    let ids: BTreeSet<&str> = requests.iter().map(|r| r.headers["x-amz-firehose-request-id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "the request id is kept across retries");
    for r in &requests {
        assert_eq!(r.headers["x-amz-firehose-access-key"], "secret-key-123");
        assert_eq!(r.headers["x-amz-firehose-protocol-version"], "1.0");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["content-encoding"], "gzip");
        assert_eq!(
            r.headers["x-amz-firehose-source-arn"],
            "arn:aws:firehose:us-east-1:000000000000:deliverystream/to-http"
        );
        let common: serde_json::Value = serde_json::from_str(&r.headers["x-amz-firehose-common-attributes"]).unwrap();
        assert_eq!(common, json!({"commonAttributes": {"env": "test"}}));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["requestId"], r.headers["x-amz-firehose-request-id"].as_str());
        assert!(body["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
        assert_eq!(decoded_records(&r.body), data);
    }
    assert!(files(&dir.path().join("errors")).is_empty(), "nothing failed for good");
    let m: std::collections::BTreeMap<_, _> = metrics.snapshot(0).into_iter().collect();
    assert_eq!(m["DeliveryToHttpEndpoint.Records"], 50);
    assert!(m["DeliveryToHttpEndpoint.Success.Attempts"] >= 4);
}

#[tokio::test]
async fn records_go_to_the_error_bucket_after_the_retry_duration() {
    let server = HttpServer::start(|_, _| {
        Reply::new(503, br#"{"requestId":"x","timestamp":1,"errorMessage":"unavailable"}"#.to_vec())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = dir_env(dir.path(), &["errors"]);
    env.options.http_backoff_max = Duration::from_millis(100);
    let data: Vec<String> = (0..20).map(|i| format!("record-{i}")).collect();
    let recs = data.iter().enumerate().map(|(i, d)| record(i as u64, d.clone())).collect();
    let (progress, _) = deliver_all(plan(http_config(&server.url, 1, "AllData"), &env), recs).await;
    assert_eq!(progress.records_done, 20, "failed records are done once in the error output");
    let objects = files(&dir.path().join("errors"));
    let failed: Vec<&String> = objects.keys().filter(|k| k.starts_with("failed/http-endpoint-failed/")).collect();
    assert_eq!(failed.len(), 1, "{:?}", objects.keys());
    let lines: Vec<serde_json::Value> = objects[failed[0]]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    for (line, want) in lines.iter().zip(&data) {
        assert_eq!(line["errorCode"], "HttpEndpoint.DestinationException");
        assert!(line["errorMessage"].as_str().unwrap().contains("unavailable"));
        assert!(line["attemptsMade"].as_u64().unwrap() >= 2);
        let raw = base64::engine::general_purpose::STANDARD.decode(line["rawData"].as_str().unwrap()).unwrap();
        assert_eq!(&raw, want.as_bytes());
    }
    // AllData: every source record is also in the backup prefix.
    let backup: Vec<u8> = objects.iter().filter(|(k, _)| k.starts_with("http/")).flat_map(|(_, v)| v.clone()).collect();
    assert_eq!(backup, data.concat().into_bytes());
}

#[tokio::test]
async fn unreachable_endpoint_is_a_failure_not_a_hang() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut env = dir_env(dir.path(), &["errors"]);
    env.options.http_backoff_max = Duration::from_millis(100);
    let recs = vec![record(0, "only")];
    let (progress, _) =
        deliver_all(plan(http_config(&format!("http://127.0.0.1:{port}/"), 1, "FailedDataOnly"), &env), recs).await;
    assert_eq!(progress.records_done, 1);
    let objects = files(&dir.path().join("errors"));
    let line: serde_json::Value =
        serde_json::from_slice(objects.values().next().unwrap().split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["errorCode"], "HttpEndpoint.ConnectionFailed");
}
