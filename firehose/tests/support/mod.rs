//! Shared by the firehose integration tests: real servers on free ports, the Python
//! environment of `firehose/tests/setup.sh`, and record helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sluice_firehose::config::CreateDeliveryStreamInput;
use sluice_firehose::plan::{DeliveryPlan, EngineOptions, Environment};
use sluice_firehose::store::Buckets;
use sluice_firehose::transform::Functions;
use sluice_firehose::{Position, Progress, SourceRecord};

mod seaweedfs;
pub use seaweedfs::{S3Server, ACCESS_KEY, SECRET_KEY};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The Python of `.venv` (boto3, pyarrow, python-snappy): run `firehose/tests/setup.sh` first.
pub fn python() -> PathBuf {
    let p = root().join(".venv/bin/python");
    assert!(p.exists(), "{} is missing: run firehose/tests/setup.sh", p.display());
    p
}

/// Runs a Python script with arguments; returns its stdout, failing the test on error.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python()).arg("-c").arg(script).args(args).output().expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs a command line; returns its stdout, failing the test on error.
pub fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The engine's view of `server`.
pub fn s3_endpoint(server: &S3Server) -> sluice_firehose::store::S3Endpoint {
    sluice_firehose::store::S3Endpoint {
        url: server.url.clone(),
        region: "us-east-1".into(),
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
    }
}

/// Every file under `dir`, by path relative to it (temporary files excluded).
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries {
            let e = e.expect("entry");
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !e.file_name().to_string_lossy().ends_with(".tmp") {
                let rel = p.strip_prefix(dir).expect("under dir").to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

/// An environment whose buckets are directories under `dir` (one per name).
pub fn dir_env(dir: &Path, buckets: &[&str]) -> Environment {
    let mut b = Buckets::new();
    for name in buckets {
        b.insert_directory(*name, dir.join(name));
    }
    Environment {
        buckets: b,
        functions: Functions::new(),
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        options: EngineOptions::default(),
        glue: None,
    }
}

pub fn config(json: serde_json::Value) -> CreateDeliveryStreamInput {
    serde_json::from_value(json).expect("a CreateDeliveryStream request")
}

pub fn plan(json: serde_json::Value, env: &Environment) -> DeliveryPlan {
    DeliveryPlan::from_create(&config(json), 1, env).expect("plans")
}

pub fn record(i: u64, data: impl Into<Bytes>) -> SourceRecord {
    SourceRecord {
        lane: 0,
        position: Position(Bytes::copy_from_slice(&i.to_be_bytes())),
        arrival_ms: chrono::Utc::now().timestamp_millis(),
        data: data.into(),
    }
}

/// Sends `records`, closes the source and waits for the engine to finish; returns the final
/// progress.
pub async fn deliver_all(
    plan: DeliveryPlan,
    records: Vec<SourceRecord>,
) -> (Progress, Arc<sluice_firehose::metrics::Metrics>) {
    let mut handle = sluice_firehose::spawn(plan);
    for r in records {
        handle.records.send(r).await.expect("engine runs");
    }
    drop(handle.records);
    tokio::time::timeout(Duration::from_secs(120), &mut handle.task)
        .await
        .expect("delivery finishes")
        .expect("no panic");
    let progress = handle.progress.borrow().clone();
    (progress, handle.metrics)
}

/// The offset a position of [`record`] holds.
pub fn index_of(p: &Position) -> u64 {
    u64::from_be_bytes(p.0[..8].try_into().expect("8 bytes"))
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).expect("gzip");
    out
}

/// What an HTTP test server received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub headers: BTreeMap<String, String>,
    /// The body, gunzipped when it came with `Content-Encoding: gzip`.
    pub body: Vec<u8>,
}

/// How an HTTP test server answers one request.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Wait for a permit of this semaphore before answering.
    pub gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl Reply {
    pub fn new(status: u16, body: Vec<u8>) -> Self {
        Reply { status, body, delay: Duration::ZERO, gate: None }
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn gated(mut self, gate: Arc<tokio::sync::Semaphore>) -> Self {
        self.gate = Some(gate);
        self
    }
}

type Handler = Arc<dyn Fn(&Captured, usize) -> Reply + Send + Sync>;

/// A real HTTP/1.1 server (hyper on tokio) on a free port; `handler` decides each answer from
/// the request and its number (0-based).
pub struct HttpServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Captured>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpServer {
    pub async fn start(handler: impl Fn(&Captured, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let requests: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let handler: Handler = Arc::new(handler);
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let handler = handler.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let handler = handler.clone();
                        let seen = seen.clone();
                        async move {
                            let headers: BTreeMap<String, String> = request
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or_default().to_string())
                                })
                                .collect();
                            let body =
                                request.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                            let body = if headers.get("content-encoding").map(String::as_str) == Some("gzip") {
                                gunzip(&body)
                            } else {
                                body
                            };
                            let captured = Captured { headers, body };
                            let n = {
                                let mut s = seen.lock().expect("lock");
                                s.push(captured.clone());
                                s.len() - 1
                            };
                            let reply = handler(&captured, n);
                            if let Some(gate) = &reply.gate {
                                gate.acquire().await.expect("open").forget();
                            }
                            tokio::time::sleep(reply.delay).await;
                            let response = hyper::Response::builder()
                                .status(reply.status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(reply.body)))
                                .expect("response");
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        HttpServer { url, requests, task }
    }
}

/// The Firehose HTTP endpoint success answer to `captured`.
pub fn endpoint_ok(captured: &Captured) -> Vec<u8> {
    let request: serde_json::Value = serde_json::from_slice(&captured.body).expect("json body");
    serde_json::to_vec(&serde_json::json!({"requestId": request["requestId"], "timestamp": 1})).expect("json")
}
