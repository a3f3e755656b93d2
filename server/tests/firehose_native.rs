//! Delivery streams over the native protocol: the Firehose operations of a real `sluiced`
//! called with `sluice_client::Client::call_firehose` (record data as raw bytes in the frame)
//! and with the `sluice firehose` CLI over `--endpoint`, delivered to a local directory and
//! read back byte for byte; and the same bad requests refused with the same exception and
//! message over both protocols.
//!
//! Needs no SeaweedFS: the destination is a directory bucket. The CLI test needs
//! `cargo build -p sluice-client --bin sluice`.
#![cfg(feature = "firehose")]

mod common;

use bytes::Bytes;
use common::{sluice_bin, Daemon};
use sluice_client::aws::{HttpClient, FIREHOSE_TARGET_PREFIX};
use sluice_client::{Client, ClientError, Encoding};
use sluice_model::{ErrorKind, FirehoseRequest, FirehoseResponse, FirehoseTag, PutRecordBatchEntry};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROLE: &str = "arn:aws:iam::000000000000:role/firehose";

/// A daemon whose bucket `files` is the directory `files` under `work`.
fn daemon_with_files(work: &Path, limits: &'static str) -> (Daemon, PathBuf) {
    let files = work.join("files");
    let config = work.join("firehose.toml");
    std::fs::write(&config, format!("[buckets.files]\ndir = {:?}\n", files.display().to_string())).unwrap();
    let daemon = Daemon::start_with(limits, 1, &["--firehose-config", config.to_str().unwrap()]);
    (daemon, files)
}

/// CreateDeliveryStream's AWS JSON body: a Direct PUT delivery stream to the bucket `files`
/// under `prefix`, flushed every second.
fn create_body(name: &str, prefix: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "DeliveryStreamName": name,
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::files", "Prefix": prefix,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
        "Tags": [{"Key": "team", "Value": "web"}],
    }))
    .unwrap()
}

/// The bytes of every delivered object under `dir` (temporary files excluded), split into the
/// records they hold (each ends with `\n`), counted.
fn delivered_records(dir: &Path) -> BTreeMap<Vec<u8>, usize> {
    let mut records = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.to_string_lossy().ends_with(".tmp") {
                let bytes = std::fs::read(&path).unwrap();
                for record in bytes.split_inclusive(|&byte| byte == b'\n') {
                    *records.entry(record.to_vec()).or_insert(0) += 1;
                }
            }
        }
    }
    records
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Record `i` of the batch: its index, then bytes of every value but `\n` (so no base64 or
/// UTF-8 step could pass it unchanged by accident), then `\n`; `len` bytes in all.
fn record(i: usize, len: usize) -> Vec<u8> {
    let mut data = format!("{i:05}:").into_bytes();
    let mut byte = i as u8;
    while data.len() < len - 1 {
        byte = byte.wrapping_mul(31).wrapping_add(7);
        data.push(if byte == b'\n' { 0 } else { byte });
    }
    data.push(b'\n');
    data
}

fn service_error(result: Result<FirehoseResponse, ClientError>) -> sluice_model::KinesisError {
    match result {
        Err(ClientError::Service(error)) => error,
        other => panic!("expected a service error, got {other:?}"),
    }
}

/// A delivery stream created, described, listed, written with PutRecord and PutRecordBatch
/// over the native protocol (a batch past the hidden stream's quotas, so some records fail
/// one by one), delivered to a directory and read back byte for byte, tagged and deleted.
#[test]
fn delivery_stream_over_the_native_protocol() {
    let work = tempfile::tempdir().unwrap();
    // `kinesis` limits: the hidden stream's 2 shards take 2 MiB/s, so a 4 MB batch is partly
    // refused, record by record.
    let (daemon, files) = daemon_with_files(work.path(), "kinesis");
    let endpoint = daemon.endpoint();
    // The records acknowledged, filled on the client's executor thread.
    let stored = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let acknowledged = stored.clone();
    common::run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let call = |request: FirehoseRequest| {
            let client = client.clone();
            async move { client.call_firehose(&request).await }
        };

        let created = call(FirehoseRequest::CreateDeliveryStream { input_json: create_body("raw", "native/").into() })
            .await
            .unwrap();
        let FirehoseResponse::CreateDeliveryStream { delivery_stream_arn } = created else { panic!("{created:?}") };
        assert_eq!(delivery_stream_arn, "arn:aws:firehose:us-east-1:000000000000:deliverystream/raw");
        let again = call(FirehoseRequest::CreateDeliveryStream { input_json: create_body("raw", "x/").into() }).await;
        assert_eq!(service_error(again).kind, ErrorKind::ResourceInUse);

        let described = call(FirehoseRequest::DescribeDeliveryStream {
            delivery_stream_name: "raw".into(),
            limit: None,
            exclusive_start_destination_id: None,
        })
        .await
        .unwrap();
        let FirehoseResponse::DescribeDeliveryStream { description_json } = described else { panic!() };
        let description: serde_json::Value = serde_json::from_slice(&description_json).unwrap();
        assert_eq!(description["DeliveryStreamStatus"], "ACTIVE", "{description}");
        assert_eq!(description["Destinations"][0]["ExtendedS3DestinationDescription"]["Prefix"], "native/");

        let listed = call(FirehoseRequest::ListDeliveryStreams {
            limit: None,
            delivery_stream_type: None,
            exclusive_start_delivery_stream_name: None,
        })
        .await
        .unwrap();
        assert_eq!(
            listed,
            FirehoseResponse::ListDeliveryStreams {
                delivery_stream_names: vec!["raw".into()],
                has_more_delivery_streams: false
            }
        );
        let tags = call(FirehoseRequest::ListTagsForDeliveryStream {
            delivery_stream_name: "raw".into(),
            exclusive_start_tag_key: None,
            limit: None,
        })
        .await
        .unwrap();
        let team = FirehoseTag { key: "team".into(), value: Some("web".into()) };
        assert_eq!(tags, FirehoseResponse::ListTagsForDeliveryStream { tags: vec![team], has_more_tags: false });

        let single = record(99_999, 100);
        let put = call(FirehoseRequest::PutRecord { delivery_stream_name: "raw".into(), data: single.clone().into() })
            .await
            .unwrap();
        assert!(
            matches!(put, FirehoseResponse::PutRecord { ref record_id, encrypted: Some(false) } if !record_id.is_empty())
        );
        acknowledged.lock().unwrap().push(single);

        // 500 records of 8,000 bytes: 4 MB, inside PutRecordBatch's 4 MiB, twice what the
        // hidden stream takes in a second.
        let records: Vec<Vec<u8>> = (0..500).map(|i| record(i, 8_000)).collect();
        let batch = call(FirehoseRequest::PutRecordBatch {
            delivery_stream_name: "raw".into(),
            records: records.iter().cloned().map(Into::into).collect(),
        })
        .await
        .unwrap();
        let FirehoseResponse::PutRecordBatch { failed_put_count, request_responses, .. } = batch else { panic!() };
        assert_eq!(request_responses.len(), 500);
        let failed: Vec<&PutRecordBatchEntry> =
            request_responses.iter().filter(|entry| matches!(entry, PutRecordBatchEntry::Failed { .. })).collect();
        assert_eq!(failed.len(), failed_put_count as usize);
        assert!(!failed.is_empty() && failed.len() < 500, "{failed_put_count} of 500 failed");
        for entry in &failed {
            let PutRecordBatchEntry::Failed { error_code, error_message } = entry else { unreachable!() };
            assert_eq!(error_code, "ServiceUnavailableException", "{error_message}");
        }
        for (data, entry) in records.into_iter().zip(&request_responses) {
            if let PutRecordBatchEntry::Stored { .. } = entry {
                acknowledged.lock().unwrap().push(data);
            }
        }

        let missing = call(FirehoseRequest::PutRecord { delivery_stream_name: "nope".into(), data: "x".into() }).await;
        let missing = service_error(missing);
        assert_eq!(missing.kind, ErrorKind::ResourceNotFound);
        assert_eq!(missing.message, "Firehose nope under account 000000000000 not found.");
    });

    // What was acknowledged is delivered, byte for byte, once each; nothing else is.
    let expected: BTreeMap<Vec<u8>, usize> = stored.lock().unwrap().iter().map(|data| (data.clone(), 1)).collect();
    wait_until("the acknowledged records delivered", Duration::from_secs(60), || {
        delivered_records(&files.join("native")).values().sum::<usize>() >= expected.len()
    });
    assert_eq!(delivered_records(&files.join("native")), expected);

    let endpoint = daemon.endpoint();
    common::run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let deleted = client
            .call_firehose(&FirehoseRequest::DeleteDeliveryStream {
                delivery_stream_name: "raw".into(),
                allow_force_delete: None,
            })
            .await
            .unwrap();
        assert_eq!(deleted, FirehoseResponse::DeleteDeliveryStream);
        let gone = client
            .call_firehose(&FirehoseRequest::StopDeliveryStreamEncryption { delivery_stream_name: "raw".into() })
            .await;
        assert_eq!(service_error(gone).kind, ErrorKind::ResourceNotFound);
    });
}

/// The same bad requests over HTTP (AWS JSON) and over the native protocol: the same exception
/// and the same message, from the one set of checks both front ends run.
#[test]
fn both_protocols_refuse_the_same_requests_alike() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, _files) = daemon_with_files(work.path(), "unlimited");
    let (endpoint, http_endpoint) = (daemon.endpoint(), daemon.http_addr.to_string());
    common::run(move || async move {
        let native = Client::connect(&endpoint).await.unwrap();
        let http = HttpClient::connect(&http_endpoint, Encoding::Json).await.unwrap();
        native
            .call_firehose(&FirehoseRequest::CreateDeliveryStream { input_json: create_body("s", "p/").into() })
            .await
            .unwrap();
        let big = vec![b'x'; 1_000 * 1024 + 1];
        let cases: Vec<(FirehoseRequest, &str, serde_json::Value)> = vec![
            (
                FirehoseRequest::PutRecordBatch { delivery_stream_name: "s".into(), records: vec![] },
                "PutRecordBatch",
                serde_json::json!({"DeliveryStreamName": "s", "Records": []}),
            ),
            (
                FirehoseRequest::PutRecordBatch { delivery_stream_name: "s".into(), records: vec!["a".into(); 501] },
                "PutRecordBatch",
                serde_json::json!({"DeliveryStreamName": "s", "Records": vec![serde_json::json!({"Data": "YQ=="}); 501]}),
            ),
            (
                FirehoseRequest::PutRecord { delivery_stream_name: "s".into(), data: big.clone().into() },
                "PutRecord",
                serde_json::json!({"DeliveryStreamName": "s", "Record": {"Data": base64(&big)}}),
            ),
            (
                FirehoseRequest::PutRecord { delivery_stream_name: "a b".into(), data: "x".into() },
                "PutRecord",
                serde_json::json!({"DeliveryStreamName": "a b", "Record": {"Data": "eA=="}}),
            ),
            (
                FirehoseRequest::ListDeliveryStreams {
                    limit: Some(0),
                    delivery_stream_type: None,
                    exclusive_start_delivery_stream_name: None,
                },
                "ListDeliveryStreams",
                serde_json::json!({"Limit": 0}),
            ),
            (
                FirehoseRequest::DescribeDeliveryStream {
                    delivery_stream_name: "missing".into(),
                    limit: None,
                    exclusive_start_destination_id: None,
                },
                "DescribeDeliveryStream",
                serde_json::json!({"DeliveryStreamName": "missing"}),
            ),
            (
                FirehoseRequest::CreateDeliveryStream {
                    input_json: Bytes::from_static(br#"{"DeliveryStreamName": "t"}"#),
                },
                "CreateDeliveryStream",
                serde_json::json!({"DeliveryStreamName": "t"}),
            ),
            (
                FirehoseRequest::UpdateDestination {
                    input_json: Bytes::from_static(
                        br#"{"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "x", "DestinationId": "d"}"#,
                    ),
                },
                "UpdateDestination",
                serde_json::json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "x", "DestinationId": "d"}),
            ),
            (
                FirehoseRequest::TagDeliveryStream {
                    delivery_stream_name: "s".into(),
                    tags: vec![FirehoseTag { key: "aws:x".into(), value: None }],
                },
                "TagDeliveryStream",
                serde_json::json!({"DeliveryStreamName": "s", "Tags": [{"Key": "aws:x"}]}),
            ),
        ];
        for (request, operation, body) in cases {
            let native_error = service_error(native.call_firehose(&request).await);
            let target = format!("{FIREHOSE_TARGET_PREFIX}{operation}");
            let (status, answer) =
                http.post(&target, Encoding::Json, serde_json::to_vec(&body).unwrap()).await.unwrap();
            assert_eq!(status.as_u16(), 400, "{operation}");
            let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
            let exception = answer["__type"].as_str().unwrap().rsplit('#').next().unwrap();
            assert_eq!(native_error.kind.exception_name(), exception, "{operation}: {answer}");
            assert_eq!(native_error.message, answer["message"].as_str().unwrap(), "{operation}");
        }
    });
}

fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Runs `sluice [global…] firehose ARGS…`; its exit code, stdout and stderr.
fn sluice(global: &[&str], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(sluice_bin())
        .args(global)
        .arg("firehose")
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("sluice runs");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("utf-8");
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

fn sluice_ok(global: &[&str], args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = sluice(global, args);
    assert_eq!(code, 0, "sluice firehose {args:?}: {stderr}");
    if stdout.trim().is_empty() {
        return serde_json::json!({});
    }
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

/// `sluice firehose …` over the native protocol (`--endpoint`): a delivery stream created,
/// written with put-record-batch, delivered byte for byte and described; the same command
/// over HTTP (`--http`) prints the same; an error as the AWS CLI prints it.
#[test]
fn the_cli_speaks_the_native_protocol() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, files) = daemon_with_files(work.path(), "unlimited");
    let native = ["--endpoint".to_string(), daemon.endpoint()];
    let native: Vec<&str> = native.iter().map(String::as_str).collect();
    let both = ["--endpoint".to_string(), daemon.endpoint(), "--http-endpoint".into(), daemon.http_addr.to_string()];
    let both: Vec<&str> = both.iter().map(String::as_str).collect();

    let destination = format!(
        r#"{{"RoleARN": "{ROLE}", "BucketARN": "arn:aws:s3:::files", "Prefix": "cli/", "BufferingHints": {{"SizeInMBs": 1, "IntervalInSeconds": 1}}}}"#
    );
    let created = sluice_ok(
        &native,
        &[
            "create-delivery-stream",
            "--delivery-stream-name",
            "c",
            "--extended-s3-destination-configuration",
            &destination,
        ],
    );
    assert_eq!(created["DeliveryStreamARN"], "arn:aws:firehose:us-east-1:000000000000:deliverystream/c");

    let records: Vec<Vec<u8>> = (0..20).map(|i| record(i, 300)).collect();
    let list: Vec<serde_json::Value> = records.iter().map(|data| serde_json::json!({"Data": base64(data)})).collect();
    let list = serde_json::to_string(&list).unwrap();
    let put = sluice_ok(&native, &["put-record-batch", "--delivery-stream-name", "c", "--records", &list]);
    assert_eq!(put["FailedPutCount"], 0, "{put}");
    assert_eq!(put["RequestResponses"].as_array().unwrap().len(), 20);

    let expected: BTreeMap<Vec<u8>, usize> = records.into_iter().map(|data| (data, 1)).collect();
    wait_until("the CLI's records delivered", Duration::from_secs(60), || {
        delivered_records(&files.join("cli")).values().sum::<usize>() >= expected.len()
    });
    assert_eq!(delivered_records(&files.join("cli")), expected);

    // The same description over both protocols.
    let over_native = sluice_ok(&both, &["describe-delivery-stream", "--delivery-stream-name", "c"]);
    let over_http = sluice_ok(&both, &["--http", "describe-delivery-stream", "--delivery-stream-name", "c"]);
    assert_eq!(over_native, over_http);
    assert_eq!(over_native["DeliveryStreamDescription"]["DeliveryStreamName"], "c");

    let (code, _, stderr) = sluice(&native, &["delete-delivery-stream", "--delivery-stream-name", "nope"]);
    assert_eq!(code, 255);
    assert!(stderr.contains("(ResourceNotFoundException) when calling the DeleteDeliveryStream operation"), "{stderr}");
    sluice_ok(&native, &["delete-delivery-stream", "--delivery-stream-name", "c"]);
    let listed = sluice_ok(&native, &["list-delivery-streams"]);
    assert_eq!(listed["DeliveryStreamNames"], serde_json::json!([]));
}

/// A principal of the credentials file with an inline policy of `statements`.
fn principal(name: &str, access_key_id: &str, statements: &str) -> String {
    let policy = format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#);
    format!(
        "[[principal]]\nname = \"{name}\"\naccess_key_id = \"{access_key_id}\"\nsecret_access_key = \"{access_key_id}-secret\"\n\
         policies = ['''{policy}''']\n\n"
    )
}

fn options(access_key_id: &str) -> sluice_client::ConnectOptions {
    sluice_client::ConnectOptions {
        credentials: Some(sluice_client::auth::SigningCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: sluice_security::Secret::new(format!("{access_key_id}-secret")),
            session_token: None,
        }),
        region: "us-east-1".into(),
        tls: None,
    }
}

/// With `--credentials`, a native Firehose call is authorized for the principal the native
/// handshake authenticated, on the delivery stream's ARN, and audited as an HTTP one is
/// (`eventSource` `firehose.amazonaws.com`, record data hidden).
#[test]
fn native_calls_are_authorized_per_caller_and_audited() {
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    let config = work.path().join("firehose.toml");
    std::fs::write(&config, format!("[buckets.files]\ndir = {:?}\n", files.display().to_string())).unwrap();
    let credentials = work.path().join("credentials.toml");
    let audit = work.path().join("audit");
    let open = "arn:aws:firehose:us-east-1:000000000000:deliverystream/open-*";
    std::fs::write(
        &credentials,
        principal("admin", "AKIDADMIN", r#"{"Effect": "Allow", "Action": "firehose:*", "Resource": "*"}"#)
            + &principal(
                "producer",
                "AKIDPRODUCER",
                &format!(r#"{{"Effect": "Allow", "Action": "firehose:PutRecordBatch", "Resource": "{open}"}}"#),
            ),
    )
    .unwrap();
    let daemon = Daemon::start_with(
        "unlimited",
        1,
        &[
            "--firehose-config",
            config.to_str().unwrap(),
            "--credentials",
            credentials.to_str().unwrap(),
            "--audit-dir",
            audit.to_str().unwrap(),
        ],
    );
    let endpoint = daemon.endpoint();
    common::run(move || async move {
        let admin = Client::connect_with(&endpoint, &options("AKIDADMIN")).await.unwrap();
        let producer = Client::connect_with(&endpoint, &options("AKIDPRODUCER")).await.unwrap();
        for name in ["open-1", "closed"] {
            let create = FirehoseRequest::CreateDeliveryStream { input_json: create_body(name, "auth/").into() };
            admin.call_firehose(&create).await.unwrap();
        }
        let batch = |name: &str| FirehoseRequest::PutRecordBatch {
            delivery_stream_name: name.into(),
            records: vec![Bytes::from_static(b"allowed\n")],
        };
        let put = producer.call_firehose(&batch("open-1")).await.unwrap();
        assert!(matches!(put, FirehoseResponse::PutRecordBatch { failed_put_count: 0, .. }), "{put:?}");
        let refused = service_error(producer.call_firehose(&batch("closed")).await);
        assert_eq!(refused.kind, ErrorKind::AccessDenied);
        assert!(
            refused.message.contains("firehose:PutRecordBatch")
                && refused.message.contains("arn:aws:firehose:us-east-1:000000000000:deliverystream/closed"),
            "{}",
            refused.message
        );
        let delete =
            FirehoseRequest::DeleteDeliveryStream { delivery_stream_name: "open-1".into(), allow_force_delete: None };
        assert_eq!(service_error(producer.call_firehose(&delete).await).kind, ErrorKind::AccessDenied);
        admin.call_firehose(&delete).await.unwrap();
    });

    // The audit log: the producer's allowed and refused batches, as the caller, data hidden.
    let mut events = Vec::new();
    wait_until("the audit events", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(audit.join("audit.log")).unwrap_or_default();
        events = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["eventName"] == "PutRecordBatch" && event["userIdentity"]["userName"] == "producer")
            .collect();
        events.len() >= 2
    });
    assert!(events.iter().all(|event| event["eventSource"] == "firehose.amazonaws.com"), "{events:?}");
    let refused: Vec<_> = events.iter().filter(|event| event["errorCode"] == "AccessDeniedException").collect();
    assert_eq!(refused.len(), 1, "{events:?}");
    assert_eq!(refused[0]["requestParameters"]["DeliveryStreamName"], "closed");
    assert_eq!(refused[0]["requestParameters"]["Records"][0]["Data"], "HIDDEN_DUE_TO_SECURITY_REASONS");
}
