//! The agent shipping as it ships to AWS: over HTTPS, every request signed with SigV4 with the
//! credentials of `agent.json` (`awsAccessKeyId`, `awsSecretAccessKey`), to a real `sluiced`
//! with TLS (`--tls-cert`, a test CA) and `--credentials` (it verifies every signature as AWS
//! does). The agent trusts the test CA through `SSL_CERT_FILE`, the variable that replaces the
//! system's roots, so the system-roots path is the one exercised; no `--ca-bundle`.
//!
//! `wrong_secret_is_refused_then_every_line_arrives_once_fixed`: a stream flow (PutRecords,
//! service `kinesis`) and a `deliveryStream` flow (PutRecordBatch, service `firehose`, into a
//! delivery stream delivering to a local directory). First with a wrong secret: the agent logs
//! the refusal by AWS's error type, ships nothing, and stops reading at its window (its lines
//! read stay put, far below the files' lines). Then, stopped, the secret fixed and restarted:
//! every line reaches the stream and the delivered objects exactly once.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{create_stream_via, delivered_lines, read_stream_via, signal, wait_for, Sluiced};
use sluice_client::auth::{Secret, SigningCredentials};
use sluice_client::transport::Endpoint;
use sluice_client::{ConnectOptions, Encoding};
use sluice_testkit::TestCa;

const ACCESS_KEY_ID: &str = "AKIAAGENTTEST0000001";
const SECRET: &str = "agent-test-secret";
/// The window of records in flight per flow while the secret is wrong: reading stops there.
const WINDOW: usize = 200;

/// The test's own client options: the same credentials, trusting the test CA by name.
fn client_options(dir: &Path) -> ConnectOptions {
    ConnectOptions {
        credentials: Some(SigningCredentials {
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: Secret::new(SECRET),
            session_token: None,
        }),
        region: "us-east-1".into(),
        tls: Some(sluice_client::tls::TlsOptions::from_ca_bundle(&dir.join("ca.pem")).unwrap()),
    }
}

/// `agent.json`: a stream flow over `logs/app.log` and a delivery-stream flow over
/// `logs/fh.log`, both to sluiced's HTTPS port, signed with `secret`; a stop (or the end of
/// `--once`) waits `shutdown_ms` for records in flight.
fn write_config(dir: &Path, http: std::net::SocketAddr, secret: &str, shutdown_ms: u64) {
    let logs = dir.join("logs");
    let text = serde_json::json!({
        "checkpointFile": dir.join("checkpoints"),
        "shutdownTimeoutMillis": shutdown_ms,
        "kinesis.endpoint": format!("https://{http}"),
        "awsAccessKeyId": ACCESS_KEY_ID,
        "awsSecretAccessKey": secret,
        "flows": [
            {"filePattern": logs.join("app.log"), "kinesisStream": "s", "initialPosition": "START_OF_FILE",
             "maxBufferAgeMillis": 1000, "maxBufferSizeRecords": 100,
             "retryInitialBackoffMillis": 50, "retryMaxBackoffMillis": 300},
            {"filePattern": logs.join("fh.log"), "deliveryStream": "logs", "initialPosition": "START_OF_FILE",
             "maxBufferAgeMillis": 1000, "maxBufferSizeRecords": 100,
             "retryInitialBackoffMillis": 50, "retryMaxBackoffMillis": 300}
        ]
    });
    std::fs::write(dir.join("agent.json"), serde_json::to_vec_pretty(&text).unwrap()).unwrap();
}

/// The agent with the test CA as the system's roots, and no AWS credentials or bundle from
/// the test's environment.
fn agent(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(common::agent_bin());
    command.arg("--config").arg(dir.join("agent.json")).args(args).env("SSL_CERT_FILE", dir.join("ca.pem"));
    for name in ["SSL_CERT_DIR", "AWS_CA_BUNDLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        command.env_remove(name);
    }
    command
}

fn lines_read(dir: &Path) -> Vec<u64> {
    let Ok(bytes) = std::fs::read(dir.join("checkpoints.status")) else { return Vec::new() };
    let Ok(status) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return Vec::new() };
    status["flows"]
        .as_array()
        .map_or(Vec::new(), |flows| flows.iter().map(|flow| flow["linesRead"].as_u64().unwrap_or(0)).collect())
}

#[test]
fn wrong_secret_is_refused_then_every_line_arrives_once_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    TestCa::new("Sluice agent test CA").write(dir);
    let policy = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["kinesis:*", "firehose:*"], "Resource": "*"}}"#;
    std::fs::write(
        dir.join("credentials.toml"),
        format!(
            "[[principal]]\nname = \"agent\"\naccess_key_id = \"{ACCESS_KEY_ID}\"\nsecret_access_key = \"{SECRET}\"\n\
             policies = ['''{policy}''']\n"
        ),
    )
    .unwrap();
    let delivered = dir.join("delivered");
    std::fs::write(
        dir.join("firehose.toml"),
        format!("[buckets.files]\ndir = {:?}\n", delivered.display().to_string()),
    )
    .unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let sluiced = Sluiced::start_with(
        dir,
        "unlimited",
        &[
            "--credentials",
            &path("credentials.toml"),
            "--tls-cert",
            &path("cert.pem"),
            "--tls-key",
            &path("key.pem"),
            "--firehose-config",
            &path("firehose.toml"),
        ],
    );
    let https = Endpoint::Http { addr: sluiced.http.to_string(), encoding: Encoding::Json };
    create_stream_via(https.clone(), client_options(dir), "s", 2);
    let options = client_options(dir);
    let http = sluiced.http.to_string();
    common::on_glommio(move || async move {
        let client = sluice_client::aws::HttpClient::connect_with(&http, Encoding::Json, &options).await.unwrap();
        let body = br#"{"DeliveryStreamName": "logs", "S3DestinationConfiguration": {"RoleARN": "arn:aws:iam::000000000000:role/firehose",
            "BucketARN": "arn:aws:s3:::files", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}}}"#;
        let (status, answer) =
            client.post("Firehose_20150804.CreateDeliveryStream", Encoding::Json, body.to_vec()).await.unwrap();
        assert_eq!(status, 200, "CreateDeliveryStream: {answer:?}");
    });

    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (stream_lines, delivery_lines) = (4000usize, 2000usize);
    let text = |prefix: &str, count: usize| -> String {
        (0..count).map(|i| format!("{prefix} {i:06} {}\n", "q".repeat(60))).collect()
    };
    std::fs::write(logs.join("app.log"), text("stream", stream_lines)).unwrap();
    std::fs::write(logs.join("fh.log"), text("delivery", delivery_lines)).unwrap();

    // check-config says what the agent will do, naming where the credentials come from.
    write_config(dir, sluiced.http, SECRET, 10_000);
    let check = agent(dir, &["check-config"]).output().unwrap();
    let printed = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{check:?}");
    assert!(
        printed.contains(&format!("signed as {ACCESS_KEY_ID} (agent.json), HTTPS trusting the system's roots")),
        "{printed}"
    );

    // A wrong secret: refused, logged by AWS's error type, nothing shipped, reading stops.
    // A stop waits 0.5 s for records in flight: refused ones never come back.
    write_config(dir, sluiced.http, "not-the-secret", 500);
    let mut refused = agent(dir, &["--window-records", &WINDOW.to_string(), "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = refused.stderr.take().unwrap();
    let (found_tx, found_rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = Vec::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("refused (InvalidSignatureException)") {
                let _ = found_tx.send(line.clone());
            }
            all.push(line);
        }
        all
    });
    let line = found_rx.recv_timeout(Duration::from_secs(60)).expect("the refusal is logged");
    assert!(line.contains("check the credentials"), "{line}");
    // Reading stops at the window: the lines read stay put over two status updates (1 s
    // apart), below the files' lines.
    let start = Instant::now();
    let mut stable = None;
    let mut previous = Vec::new();
    while stable.is_none() {
        assert!(start.elapsed() < Duration::from_secs(60), "reading never stopped: {previous:?}");
        std::thread::sleep(Duration::from_millis(2100));
        let now = lines_read(dir);
        if now.len() == 2 && now == previous {
            stable = Some(now.clone());
        }
        previous = now;
    }
    let stable = stable.unwrap();
    assert!(
        (stable[0] as usize) < stream_lines && (stable[1] as usize) < delivery_lines,
        "reading stopped below the files' lines: {stable:?}"
    );
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", refused.id()))
        .ok()
        .and_then(|status| status.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned));
    signal(&refused, libc::SIGTERM);
    assert!(refused.wait().unwrap().success(), "SIGTERM: a clean stop");
    let logged = log.join().unwrap();
    let stream = read_stream_via(https.clone(), client_options(dir), "s");
    assert!(stream.is_empty(), "nothing shipped with a wrong secret: {} records", stream.len());
    assert!(delivered_lines(&delivered).is_empty(), "nothing delivered with a wrong secret");
    eprintln!(
        "wrong secret: lines read stopped at {stable:?} (window {WINDOW}), {rss_kib:?}, {} log lines, first refusal: {line}",
        logged.len()
    );

    // Fixed and restarted: every line arrives, exactly once.
    write_config(dir, sluiced.http, SECRET, 10_000);
    let shipped = agent(dir, &["--once"]).output().unwrap();
    assert!(shipped.status.success(), "{}", String::from_utf8_lossy(&shipped.stderr));
    let records = read_stream_via(https, client_options(dir), "s");
    let mut seen = vec![0u32; stream_lines];
    for (_, data) in &records {
        let text = std::str::from_utf8(data).unwrap();
        assert!(text.starts_with("stream "), "{text:?}");
        seen[text[7..13].parse::<usize>().unwrap()] += 1;
    }
    let wrong: Vec<(usize, u32)> = seen.iter().copied().enumerate().filter(|&(_, c)| c != 1).take(10).collect();
    assert!(wrong.is_empty(), "every stream line exactly once; (line, copies) not: {wrong:?}");
    wait_for("every delivery-stream line delivered", || {
        (delivered_lines(&delivered).len() >= delivery_lines).then_some(())
    });
    // A duplicate would be delivered with the same buffer interval: give it one more.
    std::thread::sleep(Duration::from_millis(1500));
    let mut seen = vec![0u32; delivery_lines];
    for (line, count) in delivered_lines(&delivered) {
        assert!(line.starts_with("delivery "), "{line:?}");
        seen[line[9..15].parse::<usize>().unwrap()] += count;
    }
    let wrong: Vec<(usize, u32)> = seen.iter().copied().enumerate().filter(|&(_, c)| c != 1).take(10).collect();
    assert!(wrong.is_empty(), "every delivery-stream line exactly once; (line, copies) not: {wrong:?}");
}
